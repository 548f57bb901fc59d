//! The per-node hand-offs between the compiler task and the southbound: each node's
//! desired state out to its OpenFlow and OVSDB sessions, acknowledged installs back, the
//! bindings to the port-status task and its `weft-installed` marks to the OVSDB session,
//! and the OpenFlow session's word that the node's switch connected.
//!
//! Watch channels keep only the latest value: a session that falls behind skips straight
//! to the newest desired state instead of replaying stale ones.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::watch;
use uuid::Uuid;

use crate::binding::Bindings;
use crate::desired::{DesiredNode, PatchSpec, TunnelSpec};
use crate::plug_trace::PlugTrace;

/// The hub; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Channels {
    nodes: Mutex<BTreeMap<String, NodeChannels>>,
    /// Where every port is bound, as the compiler task last decided ([`crate::binding`]).
    bindings: watch::Sender<Arc<Bindings>>,
    /// Per node, the logical ports whose flows its switch acknowledged (barrier) in the
    /// last install: one map, so the port-status task wakes once for any node's report.
    installed: watch::Sender<Arc<InstalledPorts>>,
    /// The plugs in flight, each hop stamped by whoever hands it on.
    pub plugs: PlugTrace,
}

#[derive(Debug)]
struct NodeChannels {
    desired: watch::Sender<Arc<DesiredNode>>,
    /// False until the compiler published this node's state once: the channel's initial
    /// (empty) value is a placeholder, and acting on it would remove everything the
    /// switch holds, e.g. right after a weftd restart.
    published: bool,
    /// The tunnel ports the node needs (its desired state's, for its OVSDB session): a
    /// channel of its own, so a change of flows alone does not wake the OVSDB session.
    tunnels: watch::Sender<Arc<BTreeSet<TunnelSpec>>>,
    /// False until the compiler published this node's tunnels once, with its desired
    /// state or ahead of it ([`Channels::publish_tunnels`]); like `published`, for the
    /// channel's initial (empty) value.
    tunnels_published: bool,
    /// The physical networks to patch br-int to (provider switches), for the same session
    /// and for the same reason as `tunnels`.
    patches: watch::Sender<Arc<BTreeSet<PatchSpec>>>,
    /// The ofports of the VIFs to mark `weft-installed` (the port-status task's answer,
    /// for the node's OVSDB session).
    marks: watch::Sender<Arc<BTreeSet<u32>>>,
    /// When a switch connection last identified itself as this node (its OpenFlow
    /// session, once the datapath id is known): what the node's OVSDB session asks before
    /// it makes the switch dial again ([`crate::southbound::ovsdb`]'s redial).
    switch_arrived: Option<Instant>,
}

/// System-id -> the logical ports whose flows that node's switch acknowledged.
pub type InstalledPorts = imbl::OrdMap<String, Arc<BTreeSet<Uuid>>>;

impl NodeChannels {
    /// Sends `tunnels` if they differ from the last ones, or are the first.
    fn send_tunnels(&mut self, tunnels: &BTreeSet<TunnelSpec>) {
        let first = !self.tunnels_published;
        self.tunnels_published = true;
        self.tunnels.send_if_modified(|t| {
            if **t == *tunnels && !first {
                return false;
            }
            *t = Arc::new(tunnels.clone());
            true
        });
    }

    fn new() -> Self {
        NodeChannels {
            desired: watch::channel(Arc::new(DesiredNode::default())).0,
            published: false,
            tunnels: watch::channel(Arc::new(BTreeSet::new())).0,
            tunnels_published: false,
            patches: watch::channel(Arc::new(BTreeSet::new())).0,
            marks: watch::channel(Arc::new(BTreeSet::new())).0,
            switch_arrived: None,
        }
    }
}

impl Channels {
    pub fn new() -> Arc<Self> {
        Arc::new(Channels {
            nodes: Mutex::new(BTreeMap::new()),
            bindings: watch::channel(Arc::new(Bindings::default())).0,
            installed: watch::channel(Arc::new(InstalledPorts::new())).0,
            plugs: PlugTrace::default(),
        })
    }

    fn channels(&self) -> MutexGuard<'_, BTreeMap<String, NodeChannels>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes a node's desired state (compiler task only). Returns whether it changed.
    pub fn publish_desired(&self, node: &str, desired: Arc<DesiredNode>) -> bool {
        let mut nodes = self.channels();
        let ch = nodes
            .entry(node.to_string())
            .or_insert_with(NodeChannels::new);
        let first = !ch.published;
        ch.published = true;
        ch.send_tunnels(&desired.tunnels);
        ch.patches.send_if_modified(|p| {
            if **p == desired.patches && !first {
                return false;
            }
            *p = Arc::new(desired.patches.clone());
            true
        });
        ch.desired.send_if_modified(|d| {
            if **d == *desired && !first {
                return false;
            }
            self.plugs
                .compiled(desired.bound_ports.difference(&d.bound_ports));
            *d = desired;
            true
        })
    }

    /// Publishes the tunnel ports a node needs ahead of its desired state (compiler task
    /// only): its OVSDB session creates them, its OpenFlow session still waits for the
    /// desired state, which is compiled once their ofports are reported
    /// ([`crate::compiler::IncrementalCompiler::update_tunnels_first`]).
    pub fn publish_tunnels(&self, node: &str, tunnels: BTreeSet<TunnelSpec>) {
        self.channels()
            .entry(node.to_string())
            .or_insert_with(NodeChannels::new)
            .send_tunnels(&tunnels);
    }

    /// Withdraws a node's desired state and tunnels (compiler task only: this instance no
    /// longer compiles it): [`Channels::desired_published`] is false until the next
    /// publish, which wakes its watchers even if equal to the last one.
    pub fn retract_desired(&self, node: &str) {
        if let Some(ch) = self.channels().get_mut(node) {
            ch.published = false;
            ch.tunnels_published = false;
        }
    }

    /// Whether the compiler published `node`'s tunnels yet (with its desired state or
    /// ahead of it): until then the tunnels' watch holds a placeholder, and acting on it
    /// would delete every tunnel port.
    pub fn tunnels_published(&self, node: &str) -> bool {
        self.channels()
            .get(node)
            .is_some_and(|c| c.tunnels_published)
    }

    /// The tunnel ports a node needs, as a watch (its OVSDB session). Like the desired
    /// state, meaningful only once [`Channels::desired_published`].
    pub fn watch_tunnels(&self, node: &str) -> watch::Receiver<Arc<BTreeSet<TunnelSpec>>> {
        self.channels()
            .entry(node.to_string())
            .or_insert_with(NodeChannels::new)
            .tunnels
            .subscribe()
    }

    /// The physical networks a node must be patched to, as a watch (its OVSDB session).
    /// Like the desired state, meaningful only once [`Channels::desired_published`].
    pub fn watch_patches(&self, node: &str) -> watch::Receiver<Arc<BTreeSet<PatchSpec>>> {
        self.channels()
            .entry(node.to_string())
            .or_insert_with(NodeChannels::new)
            .patches
            .subscribe()
    }

    /// Whether the compiler published `node`'s desired state yet. Sessions install
    /// nothing (and so remove nothing) before it has: the watch's initial value is empty.
    pub fn desired_published(&self, node: &str) -> bool {
        self.channels().get(node).is_some_and(|c| c.published)
    }

    /// The desired state of a node, as a watch (OpenFlow and OVSDB sessions).
    pub fn watch_desired(&self, node: &str) -> watch::Receiver<Arc<DesiredNode>> {
        self.channels()
            .entry(node.to_string())
            .or_insert_with(NodeChannels::new)
            .desired
            .subscribe()
    }

    /// Reported by the OpenFlow session after the barrier that followed an install.
    pub fn report_installed(&self, node: &str, ports: BTreeSet<Uuid>) {
        self.installed.send_if_modified(|cur| {
            if cur.get(node).is_some_and(|c| **c == ports) {
                return false;
            }
            match cur.get(node) {
                Some(before) => self.plugs.installed(ports.difference(before)),
                None => self.plugs.installed(&ports),
            }
            Arc::make_mut(cur).insert(node.to_owned(), Arc::new(ports));
            true
        });
    }

    /// Forgets what was installed on `node` (cluster mode: this instance just became its
    /// owner, and only installs it acknowledges from now on count).
    pub fn forget_installed(&self, node: &str) {
        self.installed.send_if_modified(|cur| {
            if !cur.contains_key(node) {
                return false;
            }
            Arc::make_mut(cur).remove(node);
            true
        });
    }

    /// Whether an install on `node` was reported (since it was last forgotten).
    pub fn installed_reported(&self, node: &str) -> bool {
        self.installed.borrow().contains_key(node)
    }

    /// Every node's installed ports (the port-status task).
    pub fn watch_installed(&self) -> watch::Receiver<Arc<InstalledPorts>> {
        self.installed.subscribe()
    }

    /// Publishes where every port is bound (compiler task only).
    pub fn publish_bindings(&self, bindings: Arc<Bindings>) {
        self.bindings.send_replace(bindings);
    }

    /// Where every port is bound (the port-status task).
    pub fn watch_bindings(&self) -> watch::Receiver<Arc<Bindings>> {
        self.bindings.subscribe()
    }

    /// Publishes the ofports to mark `weft-installed` on `node` (port-status task only).
    pub fn publish_marks(&self, node: &str, marks: BTreeSet<u32>) {
        let mut nodes = self.channels();
        let ch = nodes
            .entry(node.to_string())
            .or_insert_with(NodeChannels::new);
        ch.marks.send_if_modified(|cur| {
            if **cur == marks {
                return false;
            }
            *cur = Arc::new(marks);
            true
        });
    }

    /// Notes that a switch connection just identified itself as `node` (its OpenFlow
    /// session).
    pub fn note_switch_arrival(&self, node: &str) {
        self.channels()
            .entry(node.to_string())
            .or_insert_with(NodeChannels::new)
            .switch_arrived = Some(Instant::now());
    }

    /// Whether a switch connection identified itself as `node` at or after `since`.
    pub fn switch_arrived_since(&self, node: &str, since: Instant) -> bool {
        self.channels()
            .get(node)
            .and_then(|c| c.switch_arrived)
            .is_some_and(|at| at >= since)
    }

    /// The ofports to mark `weft-installed` on `node` (its OVSDB session).
    pub fn watch_marks(&self, node: &str) -> watch::Receiver<Arc<BTreeSet<u32>>> {
        self.channels()
            .entry(node.to_string())
            .or_insert_with(NodeChannels::new)
            .marks
            .subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_publish_wakes_watchers_even_when_empty() {
        let f = Channels::new();
        let mut rx = f.watch_desired("hv1");
        assert!(!f.desired_published("hv1"));
        assert!(f.publish_desired("hv1", Arc::new(DesiredNode::default())));
        assert!(f.desired_published("hv1"));
        assert!(rx.has_changed().expect("sender alive"));
        rx.borrow_and_update();
        assert!(!f.publish_desired("hv1", Arc::new(DesiredNode::default())));
    }

    /// Tunnels published ahead of the desired state reach the OVSDB session's watch,
    /// while the OpenFlow session still waits for a compiled state.
    #[test]
    fn tunnels_ahead_of_the_desired_state() {
        let f = Channels::new();
        let mut tunnels = f.watch_tunnels("hv1");
        let spec = TunnelSpec {
            remote: "hv2".into(),
            remote_ip: "192.0.2.2".parse().expect("ip"),
            local_ip: "192.0.2.1".parse().expect("ip"),
            encap: crate::topology::EncapType::Geneve,
        };
        assert!(!f.tunnels_published("hv1"));
        f.publish_tunnels("hv1", BTreeSet::from([spec.clone()]));
        assert!(f.tunnels_published("hv1"));
        assert!(!f.desired_published("hv1"));
        assert!(tunnels.has_changed().expect("sender alive"));
        assert_eq!(
            *tunnels.borrow_and_update(),
            Arc::new(BTreeSet::from([spec]))
        );
        f.retract_desired("hv1");
        assert!(
            !f.tunnels_published("hv1"),
            "withdrawn with the desired state"
        );
    }
}
