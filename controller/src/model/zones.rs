//! The conntrack-zone allocator's state: one bit per zone, shared between snapshots.

use std::sync::Arc;

/// Which conntrack zones are taken, one bit per zone; 8 KiB, shared between snapshots
/// until a write touches it.
#[derive(Clone)]
pub(super) struct ZoneBitmap(Arc<[u64; 1024]>);

impl Default for ZoneBitmap {
    fn default() -> Self {
        ZoneBitmap(Arc::new([0; 1024]))
    }
}

impl ZoneBitmap {
    pub(super) fn set(&mut self, zone: u16, used: bool) {
        let words = Arc::make_mut(&mut self.0);
        let (w, b) = (usize::from(zone / 64), zone % 64);
        if let Some(word) = words.get_mut(w) {
            if used {
                *word |= 1 << b;
            } else {
                *word &= !(1 << b);
            }
        }
    }

    pub(super) fn is_set(&self, zone: u16) -> bool {
        let (w, b) = (usize::from(zone / 64), zone % 64);
        self.0.get(w).is_some_and(|word| word & (1 << b) != 0)
    }

    /// First free zone at or after `from`, wrapping around; zone 0 is never handed out
    /// (it is the default zone of traffic Weft does not track).
    pub(super) fn next_free(&self, from: u16) -> Option<u16> {
        let start = from.max(1);
        (start..=u16::MAX)
            .chain(1..start)
            .find(|&z| !self.is_set(z))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_next_fit_and_wrap() {
        let mut z = ZoneBitmap::default();
        assert_eq!(z.next_free(0), Some(1));
        z.set(1, true);
        assert_eq!(z.next_free(1), Some(2));
        z.set(u16::MAX, true);
        assert_eq!(z.next_free(u16::MAX), Some(2));
    }
}
