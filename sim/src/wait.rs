//! Waiting for the stragglers of a fleet-wide step (installs, a takeover, a resync) to
//! reach none, with a progress line every 10 s so that a long run at 3,000 nodes shows it
//! is moving.

use std::time::{Duration, Instant};

/// How often a wait says how many are left.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Polls `pending` every `pause` until it returns 0: the time that took, or how many
/// were still pending once `timeout` passed. Progress lines read `N <what> yet`.
pub async fn until_none(
    what: &str,
    timeout: Duration,
    pause: Duration,
    mut pending: impl FnMut() -> usize,
) -> Result<Duration, usize> {
    let t0 = Instant::now();
    let mut last_log = t0;
    loop {
        let n = pending();
        if n == 0 {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > timeout {
            return Err(n);
        }
        if last_log.elapsed() > PROGRESS_EVERY {
            eprintln!("  [{:>6.1}s] {n} {what} yet", t0.elapsed().as_secs_f64());
            last_log = Instant::now();
        }
        tokio::time::sleep(pause).await;
    }
}

/// The pause between polls that lock every node: at least 100 ms, and 100 µs per node,
/// so polling stays a small share of one core at 3,000 nodes.
pub fn node_poll_pause(nodes: usize) -> Duration {
    Duration::from_millis(100).max(Duration::from_micros(100 * nodes as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ends_when_none_is_left_or_on_timeout() {
        let mut left = 3;
        let took = until_none("left", Duration::from_secs(5), Duration::ZERO, || {
            left -= 1;
            left
        })
        .await;
        assert!(took.is_ok());
        let stuck = until_none(
            "stuck",
            Duration::from_millis(20),
            Duration::from_millis(5),
            || 2,
        );
        assert_eq!(stuck.await, Err(2));
    }
}
