//! The meeting point of the southbound sessions and the compiler task.
//!
//! OVSDB sessions report what each hypervisor is ([`NodeView`]: identity, tunnel endpoint,
//! VM interfaces, Weft's tunnel ports); the compiler task turns the logical model plus
//! that [`Topology`] into one [`DesiredNode`] per hypervisor and publishes it on a watch
//! channel; OpenFlow sessions install it and report back which ports' flows are in place,
//! which the OVSDB session turns into `external_ids:weft-installed=true`.
//!
//! Watch channels keep only the latest value: a session that falls behind skips straight
//! to the newest desired state instead of replaying stale ones.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use uuid::Uuid;

use crate::binding::Bindings;
use crate::desired::DesiredNode;
use crate::topology::{NodeView, Topology};

/// Shared registry; cheap to clone behind an `Arc`.
#[derive(Debug)]
pub struct Fabric {
    topology: watch::Sender<Arc<Topology>>,
    nodes: Mutex<BTreeMap<String, NodeChannels>>,
    /// Where every port is bound, as the compiler task last decided ([`crate::binding`]).
    bindings: watch::Sender<Arc<Bindings>>,
    /// Per node, the logical ports whose flows its switch acknowledged (barrier) in the
    /// last install: one map, so the port-status task wakes once for any node's report.
    installed: watch::Sender<Arc<InstalledPorts>>,
    /// Nodes whose OVSDB session ended but that stay in the topology as last seen for a
    /// while (see [`Fabric::hold_node`]).
    held: Mutex<Held>,
}

/// The held nodes, and which of them claim each `iface-id`: a node's upsert looks up
/// only its own VIFs here instead of scanning every held node's VIFs (after a reconnect
/// storm all 3,000 nodes are held, and that scan, under the topology's lock, took a
/// quarter of weftd's CPU).
#[derive(Debug, Default)]
struct Held {
    nodes: BTreeSet<String>,
    /// iface-id -> held nodes whose view (as held) has it.
    vifs: HashMap<String, BTreeSet<String>>,
}

impl Held {
    /// Stops holding `id`, whose view as held is `view`.
    fn release(&mut self, id: &str, view: Option<&NodeView>) {
        if !self.nodes.remove(id) {
            return;
        }
        for k in view.into_iter().flat_map(|v| v.vifs.keys()) {
            self.forget(k, id);
        }
    }

    fn forget(&mut self, iface: &str, node: &str) {
        if let Some(set) = self.vifs.get_mut(iface) {
            set.remove(node);
            if set.is_empty() {
                self.vifs.remove(iface);
            }
        }
    }
}

#[derive(Debug)]
struct NodeChannels {
    desired: watch::Sender<Arc<DesiredNode>>,
    /// False until the compiler published this node's state once: the channel's initial
    /// (empty) value is a placeholder, and acting on it would remove everything the
    /// switch holds, e.g. right after a weftd restart.
    published: bool,
    /// The ofports of the VIFs to mark `weft-installed` (the port-status task's answer,
    /// for the node's OVSDB session).
    marks: watch::Sender<Arc<BTreeSet<u32>>>,
}

/// System-id -> the logical ports whose flows that node's switch acknowledged.
pub type InstalledPorts = imbl::OrdMap<String, Arc<BTreeSet<Uuid>>>;

impl NodeChannels {
    fn new() -> Self {
        NodeChannels {
            desired: watch::channel(Arc::new(DesiredNode::default())).0,
            published: false,
            marks: watch::channel(Arc::new(BTreeSet::new())).0,
        }
    }
}

impl Default for Fabric {
    fn default() -> Self {
        Fabric {
            topology: watch::channel(Arc::new(Topology::default())).0,
            nodes: Mutex::new(BTreeMap::new()),
            bindings: watch::channel(Arc::new(Bindings::default())).0,
            installed: watch::channel(Arc::new(InstalledPorts::new())).0,
            held: Mutex::new(Held::default()),
        }
    }
}

impl Fabric {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn channels(&self) -> MutexGuard<'_, BTreeMap<String, NodeChannels>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    // Lock order: `held`, then the topology; never the other way round.
    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by an OVSDB session whenever its view of the node changes. A VM interface it
    /// reports is taken away from held nodes (a VM evacuated from a hypervisor that is
    /// down is bound where it runs now, not where it was last seen).
    pub fn upsert_node(&self, view: NodeView) {
        self.channels()
            .entry(view.id.clone())
            .or_insert_with(NodeChannels::new);
        // (held node, iface-id) pairs this view takes away from held nodes.
        let stale: Vec<(String, String)> = {
            let mut h = self.held();
            if h.nodes.contains(&view.id) {
                let old = self.topology.borrow().nodes.get_shared(&view.id).cloned();
                h.release(&view.id, old.as_deref());
            }
            let stale: Vec<(String, String)> = view
                .vifs
                .keys()
                .flat_map(|k| {
                    h.vifs
                        .get(k)
                        .into_iter()
                        .flatten()
                        .filter(|n| **n != view.id)
                        .map(move |n| (n.clone(), k.clone()))
                })
                .collect();
            for (n, k) in &stale {
                h.forget(k, n);
            }
            stale
        };
        self.topology.send_if_modified(|t| {
            if stale.is_empty()
                && t.nodes.get(&view.id) == Some(&view)
                && !t.held.contains(&view.id)
            {
                return false;
            }
            let t = Arc::make_mut(t);
            t.held.remove(&view.id);
            for (h, vif) in stale {
                tracing::info!(node = %h, iface_id = %vif, now_on = %view.id,
                    "interface moved away from a disconnected hypervisor");
                if let Some(n) = t.nodes.get_mut(&h) {
                    n.vifs.remove(&vif);
                }
            }
            t.nodes.insert(view.id.clone(), view);
            true
        });
    }

    /// Marks a node whose OVSDB session ended as held: it stays in the topology as last
    /// seen (its tunnels and the flows towards its VMs stay everywhere) until
    /// [`Fabric::remove_node`] or a new [`Fabric::upsert_node`] for it.
    pub fn hold_node(&self, id: &str) {
        let mut h = self.held();
        if !h.nodes.insert(id.to_owned()) {
            return;
        }
        {
            let t = self.topology.borrow();
            for k in t.nodes.get(id).into_iter().flat_map(|v| v.vifs.keys()) {
                h.vifs.entry(k.clone()).or_default().insert(id.to_owned());
            }
        }
        self.topology.send_if_modified(|t| {
            if !t.nodes.contains_key(id) {
                return false;
            }
            Arc::make_mut(t).held.insert(id.to_owned());
            true
        });
    }

    /// Called when a node's OVSDB session ends (its flows stay on the switch; other nodes
    /// stop tunnelling to it once the compiler runs).
    pub fn remove_node(&self, id: &str) {
        {
            let mut h = self.held();
            let old = self.topology.borrow().nodes.get_shared(id).cloned();
            h.release(id, old.as_deref());
        }
        self.topology.send_if_modified(|t| {
            if !t.nodes.contains_key(id) {
                return false;
            }
            let t = Arc::make_mut(t);
            t.nodes.remove(id);
            t.held.remove(id);
            true
        });
    }

    pub fn topology(&self) -> Arc<Topology> {
        self.topology.borrow().clone()
    }

    pub fn watch_topology(&self) -> watch::Receiver<Arc<Topology>> {
        self.topology.subscribe()
    }

    /// The node whose integration bridge has this datapath id, if an OVSDB session has
    /// reported it.
    pub fn node_by_datapath(&self, dpid: u64) -> Option<String> {
        self.topology
            .borrow()
            .nodes
            .values()
            .find(|n| n.datapath_id == Some(dpid))
            .map(|n| n.id.clone())
    }

    /// Publishes a node's desired state (compiler task only). Returns whether it changed.
    pub fn publish_desired(&self, node: &str, desired: Arc<DesiredNode>) -> bool {
        let mut nodes = self.channels();
        let ch = nodes
            .entry(node.to_string())
            .or_insert_with(NodeChannels::new);
        let first = !ch.published;
        ch.published = true;
        ch.desired.send_if_modified(|d| {
            if **d == *desired && !first {
                return false;
            }
            *d = desired;
            true
        })
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
            Arc::make_mut(cur).insert(node.to_owned(), Arc::new(ports));
            true
        });
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
    use crate::topology::{EncapType, Vif};

    fn node(id: &str, vifs: &[&str]) -> NodeView {
        NodeView {
            id: id.into(),
            encap_ip: "192.0.2.1".parse().expect("ip"),
            encap_type: EncapType::Geneve,
            bridge: "br-int".into(),
            datapath_id: None,
            vifs: vifs
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let vif = Vif {
                        ofport: i as u32 + 1,
                        interface: Uuid::nil(),
                        name: (*v).into(),
                    };
                    ((*v).to_owned(), vif)
                })
                .collect(),
            tunnels: BTreeMap::new(),
        }
    }

    #[test]
    fn a_held_node_stays_until_its_vifs_show_up_elsewhere() {
        let f = Fabric::new();
        f.upsert_node(node("hv1", &["a"]));
        f.upsert_node(node("hv2", &["b", "c"]));
        f.hold_node("hv2");
        // Held: still there as last seen.
        assert_eq!(f.topology().nodes["hv2"], node("hv2", &["b", "c"]));
        // c was evacuated to hv1: hv2 no longer claims it, b stays.
        f.upsert_node(node("hv1", &["a", "c"]));
        let t = f.topology();
        assert_eq!(
            t.nodes["hv2"].vifs.keys().collect::<Vec<_>>(),
            vec!["b"],
            "held node keeps only what no live node reports"
        );
        assert!(t.nodes["hv1"].vifs.contains_key("c"));
        // hv2 back: its fresh view replaces the held one and it is no longer held.
        f.upsert_node(node("hv2", &["b"]));
        f.upsert_node(node("hv1", &["a", "c", "b2"]));
        assert_eq!(f.topology().nodes["hv2"], node("hv2", &["b"]));
        // Forgotten for good.
        f.hold_node("hv2");
        f.remove_node("hv2");
        assert!(!f.topology().nodes.contains_key("hv2"));
    }

    #[test]
    fn first_publish_wakes_watchers_even_when_empty() {
        let f = Fabric::new();
        let mut rx = f.watch_desired("hv1");
        assert!(!f.desired_published("hv1"));
        assert!(f.publish_desired("hv1", Arc::new(DesiredNode::default())));
        assert!(f.desired_published("hv1"));
        assert!(rx.has_changed().expect("sender alive"));
        rx.borrow_and_update();
        assert!(!f.publish_desired("hv1", Arc::new(DesiredNode::default())));
    }
}
