//! The lab's naming scheme, in one place, because cleanup depends on it: everything a lab
//! creates carries its [`LabId`] (creator PID + per-process sequence number), so
//! [`crate::Lab::cleanup_stale`] can recognise leftovers of crashed runs by name, check that
//! the creating process is gone, and remove exactly those and nothing else.
//!
//! | object | name | where |
//! |---|---|---|
//! | state dir | `$TMPDIR/weftlab-<id>/` | file system |
//! | underlay namespace | `weftlab-<id>-ul` | netns |
//! | hypervisor namespace | `weftlab-<id>-hv<N>` | netns |
//! | VM namespace | `weftlab-<id>-vm-<name>` | netns |
//! | root-side controller veth | `wft<id>` (≤ 15 chars) | root namespace |
//! | subnet reservation | `$TMPDIR/weftlab-nets/10.<K>` (holds the id) | file system |
//!
//! `<id>` is `<pid base36>-<seq base36>`, e.g. `2lfls-0`: at most 5 + 1 + 2 characters for
//! any Linux PID (≤ 2^22) and the first 1296 labs of a process, which keeps `wft<id>` within
//! the 15-character interface-name limit. Interfaces inside our own namespaces (`ul`,
//! `hvN`, `ul0`, VM ports) need no unique names: namespaces scope them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

const NETNS_PREFIX: &str = "weftlab-";
const LINK_PREFIX: &str = "wft";
/// Marker file in a lab's state dir: the lab was deliberately left running (`weft-lab up`),
/// so its creator's death does not make it stale.
pub(crate) const KEEP_MARKER: &str = "keep";

static NEXT_SEQ: AtomicU32 = AtomicU32::new(0);

/// Identity of one lab instance: the creating process and a per-process counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabId {
    /// PID of the process that created the lab.
    pub pid: u32,
    /// Sequence number of the lab within that process.
    pub seq: u32,
}

impl LabId {
    /// A fresh id for a lab created by this process.
    pub(crate) fn next() -> Self {
        LabId {
            pid: std::process::id(),
            seq: NEXT_SEQ.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Parses the `<pid36>-<seq36>` form.
    pub fn parse(text: &str) -> Option<Self> {
        let (pid, seq) = text.split_once('-')?;
        Some(LabId {
            pid: from_base36(pid)?,
            seq: from_base36(seq)?,
        })
    }

    /// `weftlab-<id>`: prefix of every namespace, and the state dir's name.
    pub(crate) fn stem(&self) -> String {
        format!("{NETNS_PREFIX}{self}")
    }

    pub(crate) fn underlay_netns(&self) -> String {
        format!("{}-ul", self.stem())
    }

    /// Namespace of hypervisor number `n` (1-based, as in `hv1`).
    pub(crate) fn hv_netns(&self, n: usize) -> String {
        format!("{}-hv{n}", self.stem())
    }

    pub(crate) fn vm_netns(&self, vm: &str) -> String {
        format!("{}-vm-{vm}", self.stem())
    }

    /// The root-namespace end of the controller veth.
    pub(crate) fn root_link(&self) -> String {
        format!("{LINK_PREFIX}{self}")
    }

    pub(crate) fn state_dir(&self) -> PathBuf {
        std::env::temp_dir().join(self.stem())
    }

    /// A lab is live while its creator runs, or when it was deliberately kept.
    pub(crate) fn is_live(&self) -> bool {
        pid_alive(self.pid) || self.state_dir().join(KEEP_MARKER).exists()
    }

    /// Lab id encoded in a namespace or state-dir name of ours.
    pub(crate) fn from_netns(name: &str) -> Option<Self> {
        let rest = name.strip_prefix(NETNS_PREFIX)?;
        // <pid36>-<seq36>[-suffix]
        let mut parts = rest.splitn(3, '-');
        let pid = parts.next()?;
        let seq = parts.next()?;
        LabId::parse(&format!("{pid}-{seq}"))
    }

    /// Lab id encoded in a root-namespace link name of ours (`wft<pid36>-<seq36>`, exact).
    pub(crate) fn from_root_link(name: &str) -> Option<Self> {
        LabId::parse(name.strip_prefix(LINK_PREFIX)?)
    }
}

impl fmt::Display for LabId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", to_base36(self.pid), to_base36(self.seq))
    }
}

fn to_base36(mut n: u32) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// Strict: lowercase base36 digits only, no empty string, no overflow, no leading zeros
/// (so every id has exactly one spelling and unrelated names do not parse).
fn from_base36(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 7 || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    let mut n: u32 = 0;
    for c in text.chars() {
        let d = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'a'..='z' => c as u32 - 'a' as u32 + 10,
            _ => return None,
        };
        n = n.checked_mul(36)?.checked_add(d)?;
    }
    Some(n)
}

/// Whether a process with this PID exists (zombies count as gone).
pub(crate) fn pid_alive(pid: u32) -> bool {
    let stat = Path::new("/proc").join(pid.to_string()).join("stat");
    match std::fs::read_to_string(stat) {
        // Format: "pid (comm) S ...": the state follows the last ')'.
        Ok(text) => text
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_fit_interface_names() {
        let worst = LabId {
            pid: 4_194_304,
            seq: 1295,
        };
        assert_eq!(LabId::parse(&worst.to_string()), Some(worst));
        assert!(worst.root_link().len() <= 15, "{}", worst.root_link());
        let id = LabId { pid: 1234, seq: 0 };
        assert_eq!(id.to_string(), "ya-0");
        assert_eq!(LabId::from_netns(&id.hv_netns(3)), Some(id));
        assert_eq!(LabId::from_netns(&id.vm_netns("a-b-c")), Some(id));
        assert_eq!(LabId::from_netns(&id.underlay_netns()), Some(id));
        assert_eq!(LabId::from_root_link(&id.root_link()), Some(id));
    }

    #[test]
    fn foreign_names_are_not_ours() {
        for name in [
            "wlan0", "wft", "wftX-1", "wft01-1", "wft1-", "eth0", "weftlab-", "la-hv1",
        ] {
            assert_eq!(LabId::from_root_link(name), None, "{name}");
            assert_eq!(LabId::from_netns(name), None, "{name}");
        }
        assert_eq!(LabId::from_netns("weftlab-zzzzzzzz-1-hv1"), None);
    }

    #[test]
    fn own_pid_is_alive() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(u32::MAX));
    }
}
