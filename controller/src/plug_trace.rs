//! Where the time of a plug goes: for each VIF that appears on a hypervisor, the moments
//! it passes each hop between the OVSDB update that shows it and the `weft-installed`
//! mark on it, so that plug → installed can be cut where it is spent, not guessed at.
//!
//! The hops, and who reports them:
//! 1. **seen**: the OVSDB session read the new Interface (iface-id and ofport) and
//!    reported it to the topology (update received and parsed);
//! 2. **compiled**: the compiler task published a desired state for that node in which
//!    the port is bound ([`crate::channels::Channels::publish_desired`]);
//! 3. **installed**: the switch acknowledged (barrier) an install of that state;
//! 4. **sent**: the OVSDB session sent the transaction that sets `weft-installed=true`
//!    on the Interface (the port-status task's turn and the session's queue before it);
//! 5. **marked**: the OVSDB server acknowledged that transaction (the hypervisor's side).
//!
//! The OVSDB side knows VIFs by (node, ofport), the compiler and the switch by logical
//! port; the port-status task, which knows both, joins them
//! ([`PlugTrace::bound`]). Entries of plugs that never complete (unplugged first) go when
//! the port is unbound, and the table is bounded.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// At most this many plugs are followed at once; past it the oldest are dropped (a plug
/// that never completes must not grow the table forever).
const MAX_TRACKED: usize = 65_536;

/// The hops of one plug, as durations from the previous hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlugHops {
    pub port: Uuid,
    /// seen → compiled (the compiler task's queueing and compile).
    pub compile: Duration,
    /// compiled → installed (the OpenFlow bundle and barrier).
    pub install: Duration,
    /// installed → the mark's transaction sent (port status, the session's queue).
    pub queue: Duration,
    /// sent → acknowledged by ovsdb-server (the network and the hypervisor).
    pub write: Duration,
}

impl PlugHops {
    pub fn total(&self) -> Duration {
        self.compile + self.install + self.queue + self.write
    }
}

#[derive(Debug, Default)]
struct Stamps {
    seen: Option<Instant>,
    compiled: Option<Instant>,
    installed: Option<Instant>,
}

#[derive(Debug, Default)]
struct Inner {
    /// (node, ofport) → when the OVSDB session first reported the VIF.
    seen: HashMap<(String, u32), Instant>,
    /// Logical port → its hops so far.
    ports: HashMap<Uuid, Stamps>,
    /// (node, ofport) → the logical port bound there.
    at: HashMap<(String, u32), Uuid>,
}

/// The table of plugs in flight; one per weftd, shared through
/// [`crate::channels::Channels`].
#[derive(Debug, Default)]
pub struct PlugTrace {
    inner: Mutex<Inner>,
}

impl PlugTrace {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hop 1: a VIF with a valid ofport appeared on `node`.
    pub fn seen(&self, node: &str, ofport: u32) {
        let mut inner = self.lock();
        if inner.seen.len() >= MAX_TRACKED {
            inner.seen.clear();
        }
        inner
            .seen
            .entry((node.to_owned(), ofport))
            .or_insert_with(Instant::now);
    }

    /// Hop 2: `ports` are bound in the desired state just published for their node.
    pub fn compiled<'a>(&self, ports: impl IntoIterator<Item = &'a Uuid>) {
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.ports.len() >= MAX_TRACKED {
            inner.ports.clear();
            inner.at.clear();
        }
        for port in ports {
            inner
                .ports
                .entry(*port)
                .or_default()
                .compiled
                .get_or_insert(now);
        }
    }

    /// Hop 3: the switch acknowledged an install in which `ports` are complete.
    pub fn installed<'a>(&self, ports: impl IntoIterator<Item = &'a Uuid>) {
        let now = Instant::now();
        let mut inner = self.lock();
        for port in ports {
            if let Some(s) = inner.ports.get_mut(port)
                && s.compiled.is_some()
            {
                s.installed.get_or_insert(now);
            }
        }
    }

    /// Joins the two sides: `port` is bound at (`node`, `ofport`). Bindings are known
    /// before the round's nodes are compiled, so this may come before or after hop 2.
    pub fn bound(&self, port: Uuid, node: &str, ofport: u32) {
        let mut inner = self.lock();
        let key = (node.to_owned(), ofport);
        let Some(seen) = inner.seen.remove(&key) else {
            return;
        };
        if inner.ports.len() >= MAX_TRACKED {
            inner.ports.clear();
            inner.at.clear();
        }
        inner.ports.entry(port).or_default().seen = Some(seen);
        inner.at.insert(key, port);
    }

    /// The port is no longer bound: forget its plug.
    pub fn unbound(&self, port: Uuid) {
        let mut inner = self.lock();
        inner.ports.remove(&port);
        inner.at.retain(|_, p| *p != port);
    }

    /// Hops 4 and 5: `weft-installed=true` on (`node`, `ofport`) was sent at `sent` and
    /// is acknowledged now. Returns the plug's hops when all of them were seen.
    pub fn marked(&self, node: &str, ofport: u32, sent: Instant) -> Option<PlugHops> {
        let now = Instant::now();
        let mut inner = self.lock();
        let key = (node.to_owned(), ofport);
        let port = inner.at.remove(&key)?;
        let s = inner.ports.remove(&port)?;
        let (seen, compiled, installed) = (s.seen?, s.compiled?, s.installed?);
        Some(PlugHops {
            port,
            compile: compiled.saturating_duration_since(seen),
            install: installed.saturating_duration_since(compiled),
            queue: sent.saturating_duration_since(installed),
            write: now.saturating_duration_since(sent.max(installed)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plug_is_followed_through_every_hop_once() {
        let t = PlugTrace::default();
        let p = Uuid::from_u128(7);
        t.seen("hv1", 3);
        t.compiled([&p]);
        t.bound(p, "hv1", 3);
        t.installed([&p]);
        let sent = Instant::now();
        let hops = t.marked("hv1", 3, sent).expect("complete");
        assert_eq!(hops.port, p);
        assert!(hops.total() < Duration::from_secs(5));
        assert_eq!(t.marked("hv1", 3, sent), None, "reported once");
    }

    #[test]
    fn a_plug_bound_before_its_node_is_compiled_is_followed() {
        let t = PlugTrace::default();
        let p = Uuid::from_u128(10);
        t.seen("hv1", 6);
        t.bound(p, "hv1", 6);
        t.compiled([&p]);
        t.installed([&p]);
        let hops = t.marked("hv1", 6, Instant::now()).expect("complete");
        assert_eq!(hops.port, p);
    }

    #[test]
    fn a_plug_missing_a_hop_or_unbound_is_not_reported() {
        let t = PlugTrace::default();
        let p = Uuid::from_u128(8);
        // Never seen by the OVSDB side (e.g. bound before this weftd started).
        t.compiled([&p]);
        t.bound(p, "hv1", 4);
        t.installed([&p]);
        assert_eq!(t.marked("hv1", 4, Instant::now()), None);
        // Unplugged before it was installed.
        let q = Uuid::from_u128(9);
        t.seen("hv2", 5);
        t.compiled([&q]);
        t.bound(q, "hv2", 5);
        t.unbound(q);
        t.installed([&q]);
        assert_eq!(t.marked("hv2", 5, Instant::now()), None);
    }
}
