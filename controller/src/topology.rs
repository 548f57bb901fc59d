//! What hypervisors report, as one consistent snapshot: each transport node's identity,
//! tunnel endpoint, VM interfaces (VIFs), Weft's tunnel ports with their ofports, and
//! its physical networks (bridge mappings and Weft's patch ports towards them).
//!
//! [`TransportNodes`] is its single owner: OVSDB sessions report to it (and it applies
//! the node grace when one ends); the compiler task, the port-status task, the OpenFlow
//! sessions (datapath id -> node) and `trace` read its snapshots.
//! Nothing here is stored: it is rebuilt from the hypervisors after a restart.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Tunnel encapsulation a transport node asks for (`external_ids:weft-encap-type`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EncapType {
    #[default]
    Geneve,
    Vxlan,
    Stt,
}

/// A VM interface on a node's integration bridge that carries `external_ids:iface-id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vif {
    /// The OpenFlow port number OVS assigned (only interfaces with a valid ofport are
    /// reported).
    pub ofport: u32,
    /// The OVSDB Interface row, for writing `weft-installed` back.
    pub interface: Uuid,
    /// The Interface name (for logs and the API).
    pub name: String,
}

/// One hypervisor as its OVSDB session currently sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// `Open_vSwitch.external_ids:system-id`.
    pub id: String,
    /// `weft-encap-ip`: where other nodes send tunnelled traffic for this one.
    pub encap_ip: IpAddr,
    pub encap_type: EncapType,
    /// Integration bridge name (`weft-bridge`, default br-int).
    pub bridge: String,
    /// `Bridge.datapath_id` of the integration bridge, how an OpenFlow connection is
    /// matched to its node.
    pub datapath_id: Option<u64>,
    /// VM interfaces by `iface-id` (a logical port's name or id).
    pub vifs: BTreeMap<String, Vif>,
    /// Weft-owned tunnel ports that OVS accepted: remote system-id -> ofport.
    pub tunnels: BTreeMap<String, u32>,
    /// `weft-bridge-mappings`: physical network -> the OVS bridge that carries it here
    /// (only well-formed entries).
    pub bridge_mappings: BTreeMap<String, String>,
    /// Weft-owned patch ports on the integration bridge that OVS accepted, towards each
    /// mapped physical network's bridge: physnet -> ofport.
    pub patches: BTreeMap<String, u32>,
}

/// Every connected node's view, keyed by system-id.
///
/// Cloning is O(1) and an update of one node copies one path of a persistent tree plus
/// that node's view, not the other nodes' views: thousands of hypervisors reconnecting
/// one by one cost O(N log N), not O(N²) view clones. [`NodeMap::diff`] names the nodes
/// that changed between two snapshots without visiting shared subtrees.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    pub nodes: NodeMap,
    /// Nodes in `nodes` whose OVSDB session ended and that are kept as last seen for the
    /// node grace: the compiler keeps tunnelling to them, the API shows their ports down.
    pub held: imbl::OrdSet<String>,
    /// Nodes in `nodes` whose view holds only what the node's root row says (who it is,
    /// where it tunnels from), none of its ports: cluster mode's standby sessions watch
    /// no more than that, since the owner publishes the rest. In the merged topology,
    /// also a node seen through its owner's record alone, whose tunnel ports (which no
    /// record carries) this instance does not know: compiled from such a view, a node
    /// would lose its flows towards every other node. Nothing here is compiled.
    pub partial: imbl::OrdSet<String>,
    /// Per logical switch, the hardware VTEPs its hypervisors reach. Not
    /// [`TransportNodes`]' fact (it always publishes this empty): the owner is
    /// [`crate::hardware_vtep::HardwareVteps`], and a reader that compiles (the realize
    /// task, the API's `trace`) puts a snapshot of its [`endpoints`] here, so the compiler
    /// and its change tracking read it with the rest of the topology.
    ///
    /// [`endpoints`]: crate::hardware_vtep::endpoints
    pub hardware_vteps: Arc<crate::hardware_vtep::VtepEndpoints>,
}

impl Topology {
    /// Whether `id` is in the topology and served by a live OVSDB session.
    pub fn is_live(&self, id: &str) -> bool {
        self.nodes.contains_key(id) && !self.held.contains(id)
    }
}

/// Puts `id` in `set` or takes it out (a node's `held` or `partial` mark); whether that
/// changed the set.
pub fn mark(set: &mut imbl::OrdSet<String>, id: &str, member: bool) -> bool {
    if member == set.contains(id) {
        return false;
    }
    if member {
        set.insert(id.to_owned());
    } else {
        set.remove(id);
    }
    true
}

/// System-id -> [`NodeView`], each view shared behind an `Arc` between snapshots. Reads
/// like a `BTreeMap<String, NodeView>` (sorted by system-id); `get_mut` copies the one
/// view it hands out if another snapshot still shares it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NodeMap(imbl::OrdMap<String, Arc<NodeView>>);

/// One node that differs between two topologies (see [`NodeMap::diff`]): `old` is `None`
/// for a node that joined, `new` is `None` for one that left.
#[derive(Debug)]
pub struct NodeChange<'a> {
    pub id: &'a str,
    pub old: Option<&'a NodeView>,
    pub new: Option<&'a NodeView>,
}

impl NodeMap {
    pub fn get<Q: Ord + ?Sized>(&self, id: &Q) -> Option<&NodeView>
    where
        String: Borrow<Q>,
    {
        self.0.get(id).map(|v| &**v)
    }

    /// The shared view itself (cheap to keep past this snapshot).
    pub fn get_shared<Q: Ord + ?Sized>(&self, id: &Q) -> Option<&Arc<NodeView>>
    where
        String: Borrow<Q>,
    {
        self.0.get(id)
    }

    pub fn get_mut<Q: Ord + ?Sized>(&mut self, id: &Q) -> Option<&mut NodeView>
    where
        String: Borrow<Q>,
    {
        self.0.get_mut(id).map(Arc::make_mut)
    }

    pub fn insert(&mut self, id: String, view: impl Into<Arc<NodeView>>) -> Option<Arc<NodeView>> {
        self.0.insert(id, view.into())
    }

    pub fn remove<Q: Ord + ?Sized>(&mut self, id: &Q) -> Option<Arc<NodeView>>
    where
        String: Borrow<Q>,
    {
        self.0.remove(id)
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, id: &Q) -> bool
    where
        String: Borrow<Q>,
    {
        self.0.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> {
        self.0.keys()
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &NodeView> {
        self.0.values().map(|v| &**v)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &NodeView)> {
        self.0.iter().map(|(k, v)| (k, &**v))
    }

    /// The nodes that differ from `older` to `self`, in system-id order. Subtrees and
    /// views the two snapshots share are skipped without being compared, so consecutive
    /// snapshots of the fabric diff in time proportional to what changed.
    pub fn diff<'a>(&'a self, older: &'a NodeMap) -> impl Iterator<Item = NodeChange<'a>> {
        use imbl::ordmap::DiffItem;
        older.0.diff(&self.0).filter_map(|d| match d {
            DiffItem::Add(id, v) => Some(NodeChange {
                id,
                old: None,
                new: Some(&**v),
            }),
            DiffItem::Remove(id, v) => Some(NodeChange {
                id,
                old: Some(&**v),
                new: None,
            }),
            DiffItem::Update { old, new } => {
                (!Arc::ptr_eq(old.1, new.1) && old.1 != new.1).then(|| NodeChange {
                    id: new.0,
                    old: Some(&**old.1),
                    new: Some(&**new.1),
                })
            }
        })
    }
}

impl std::fmt::Debug for NodeMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<Q: Ord + ?Sized> std::ops::Index<&Q> for NodeMap
where
    String: Borrow<Q>,
{
    type Output = NodeView;

    /// Panics when the node is absent, like `BTreeMap`'s index (tests and callers that
    /// just checked presence).
    fn index(&self, id: &Q) -> &NodeView {
        &self.0[id]
    }
}

impl<'a> IntoIterator for &'a NodeMap {
    type Item = (&'a String, &'a NodeView);
    type IntoIter = Box<dyn DoubleEndedIterator<Item = (&'a String, &'a NodeView)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl FromIterator<(String, NodeView)> for NodeMap {
    fn from_iter<I: IntoIterator<Item = (String, NodeView)>>(iter: I) -> Self {
        NodeMap(iter.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

/// The single owner of the topology. OVSDB sessions report each node's view and when
/// their session ended; a node whose session ended is held as last seen for the node
/// grace and forgotten after it unless a session reports it again. Everything else reads
/// snapshots. (Cluster mode keeps the same facts in a shared store behind these calls.)
#[derive(Debug)]
pub struct TransportNodes {
    snapshot: watch::Sender<Arc<Topology>>,
    /// Nodes whose OVSDB session ended but that stay in the topology as last seen for a
    /// while (see [`TransportNodes::session_ended`]).
    held: Mutex<Held>,
    /// Hypervisor connections not yet through their first pass ([`Arrival`]s alive).
    arrivals: Arc<Mutex<Arrivals>>,
}

/// A hypervisor connection that weftd has accepted but not yet identified: it may be a
/// held node coming back. While it is alive, the grace of a held node it may be is not
/// over (see [`TransportNodes::session_ended`]). The OVSDB session takes one when it
/// starts and drops it after its first pass, when it has reported its node (or found it
/// cannot).
#[derive(Debug)]
pub struct Arrival {
    arrivals: Arc<Mutex<Arrivals>>,
    /// Its place in accept order.
    number: u64,
}

impl Arrival {
    /// The connection has named its system-id (it waits for that node's previous
    /// session to end): from now on it may only be that node coming back, and it no
    /// longer keeps any other held node.
    pub fn claim(&self, system_id: &str) {
        if let Some(claim) = lock(&self.arrivals).alive.get_mut(&self.number) {
            *claim = Some(system_id.to_owned());
        }
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        lock(&self.arrivals).alive.remove(&self.number);
    }
}

/// The arrivals alive, numbered in accept order.
#[derive(Debug, Default)]
struct Arrivals {
    /// Arrivals numbered so far (the last one's number).
    accepted: u64,
    /// Arrival number -> the system-id it claims, once it has named one.
    alive: BTreeMap<u64, Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TransportNodes {
    pub fn new() -> Arc<Self> {
        Arc::new(TransportNodes {
            snapshot: watch::channel(Arc::new(Topology::default())).0,
            held: Mutex::new(Held::default()),
            arrivals: Arc::default(),
        })
    }

    /// Counts a newly accepted hypervisor connection as arriving until the guard drops.
    pub fn arrival(&self) -> Arrival {
        let mut a = lock(&self.arrivals);
        a.accepted += 1;
        let number = a.accepted;
        a.alive.insert(number, None);
        Arrival {
            arrivals: self.arrivals.clone(),
            number,
        }
    }

    /// Hypervisor connections accepted and not yet through their first pass.
    pub fn arriving(&self) -> usize {
        lock(&self.arrivals).alive.len()
    }

    /// How many connections were accepted so far (the number of the newest arrival).
    fn accepted(&self) -> u64 {
        lock(&self.arrivals).accepted
    }

    /// Arrivals still alive among the first `accepted` that may be node `id`: those that
    /// named no system-id yet, or named this one.
    fn may_be(&self, id: &str, accepted: u64) -> usize {
        lock(&self.arrivals)
            .alive
            .range(..=accepted)
            .filter(|(_, claim)| claim.as_deref().is_none_or(|c| c == id))
            .count()
    }

    /// The node's OVSDB session ended: its ports show down at once, but the other
    /// nodes keep their tunnels and flows towards it for `grace` (a restart or a short
    /// cut costs nothing); then it is forgotten, unless a session reported it again
    /// meanwhile. A zero grace forgets it now.
    ///
    /// A node whose connection is back within its grace is not forgotten, however long
    /// weftd takes to set that connection up: after a reconnect storm of thousands of
    /// hypervisors on a loaded machine the last ones are identified well after the
    /// grace, and forgetting them would make all their neighbours drop and re-add every
    /// tunnel and flow towards them although nothing changed. weftd cannot tell which
    /// node a connection is before its first pass, so when the grace ends the node is
    /// held for as long as any connection accepted by then is still arriving and may be
    /// it (has named no other system-id), re-checked every grace. Connections accepted
    /// after the grace do not count: the hold is bounded by the setup of those already
    /// there, and a flood of new connections cannot keep a node that is really gone.
    /// (A cap of four extra graces used to bound it instead; with a 1 s grace it forgot
    /// nodes whose connection was accepted 0.1 s after the storm and identified 6.5 s
    /// later, behind 49 others.)
    pub fn session_ended(self: &Arc<Self>, id: &str, grace: Duration) {
        if grace.is_zero() {
            self.forget(id);
            return;
        }
        tracing::info!(node = %id, hold = ?grace, "keeping the hypervisor in the topology while it may come back");
        self.hold(id);
        let epoch = self.held().epoch(id);
        let nodes = self.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            // Connections accepted within the grace: the node may be one of them.
            let accepted = nodes.accepted();
            loop {
                if nodes.held().epoch(&id) != epoch {
                    return;
                }
                let arriving = nodes.may_be(&id, accepted);
                if arriving == 0 {
                    break;
                }
                tracing::info!(node = %id, arriving, hold = ?grace,
                    "hypervisor still disconnected, but connections accepted within its grace \
                     that may be it are still being set up: holding it for another grace");
                tokio::time::sleep(grace).await;
            }
            tracing::info!(node = %id, "hypervisor still disconnected; other nodes stop tunnelling to it");
            nodes.forget(&id);
        });
    }

    // Lock order: `held`, then the snapshot; never the other way round.
    fn held(&self) -> MutexGuard<'_, Held> {
        lock(&self.held)
    }

    /// Called by an OVSDB session whenever its view of the node changes (and so also
    /// when it serves the node again after a cut). A VM interface it reports is taken
    /// away from held nodes (a VM evacuated from a hypervisor that is down is bound where
    /// it runs now, not where it was last seen).
    pub fn report(&self, view: NodeView) {
        self.report_as(view, false);
    }

    /// [`TransportNodes::report`] for a session that sees only the node's root row: the
    /// node is present (an instance claims the hypervisors it is connected to) but its
    /// view is marked [`Topology::partial`].
    pub fn report_identity(&self, view: NodeView) {
        self.report_as(view, true);
    }

    fn report_as(&self, view: NodeView, partial: bool) {
        // (held node, iface-id) pairs this view takes away from held nodes.
        let stale: Vec<(String, String)> = {
            let mut h = self.held();
            if h.nodes.contains_key(&view.id) {
                let old = self.snapshot.borrow().nodes.get_shared(&view.id).cloned();
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
        self.snapshot.send_if_modified(|t| {
            if stale.is_empty()
                && t.nodes.get(&view.id) == Some(&view)
                && !t.held.contains(&view.id)
                && t.partial.contains(&view.id) == partial
            {
                return false;
            }
            let t = Arc::make_mut(t);
            t.held.remove(&view.id);
            mark(&mut t.partial, &view.id, partial);
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

    /// Marks a node as held: it stays in the topology as last seen (its tunnels and the
    /// flows towards its VMs stay everywhere) until [`TransportNodes::forget`] or a new
    /// [`TransportNodes::report`] for it.
    fn hold(&self, id: &str) {
        let mut h = self.held();
        if h.nodes.contains_key(id) {
            return;
        }
        h.holds += 1;
        let hold = h.holds;
        h.nodes.insert(id.to_owned(), hold);
        {
            let t = self.snapshot.borrow();
            for k in t.nodes.get(id).into_iter().flat_map(|v| v.vifs.keys()) {
                h.vifs.entry(k.clone()).or_default().insert(id.to_owned());
            }
        }
        self.snapshot.send_if_modified(|t| {
            if !t.nodes.contains_key(id) {
                return false;
            }
            Arc::make_mut(t).held.insert(id.to_owned());
            true
        });
    }

    /// Takes the node out of the topology (its flows stay on its switch; the other nodes
    /// stop tunnelling to it once the compiler runs).
    pub fn forget(&self, id: &str) {
        {
            let mut h = self.held();
            let old = self.snapshot.borrow().nodes.get_shared(id).cloned();
            h.release(id, old.as_deref());
        }
        self.snapshot.send_if_modified(|t| {
            if !t.nodes.contains_key(id) {
                return false;
            }
            let t = Arc::make_mut(t);
            t.nodes.remove(id);
            t.held.remove(id);
            t.partial.remove(id);
            true
        });
    }

    pub fn snapshot(&self) -> Arc<Topology> {
        self.snapshot.borrow().clone()
    }

    /// Publishes a topology assembled elsewhere: cluster mode's shared topology, merged
    /// from this instance's sessions and the owners' etcd records
    /// (`cluster::etcd::shared_nodes::merge`), which nothing else reports to. `edit`
    /// returns whether it changed anything; only then do readers wake.
    pub fn edit(&self, edit: impl FnOnce(&mut Topology) -> bool) -> bool {
        self.snapshot.send_if_modified(|t| edit(Arc::make_mut(t)))
    }

    pub fn watch(&self) -> watch::Receiver<Arc<Topology>> {
        self.snapshot.subscribe()
    }

    /// The node whose integration bridge has this datapath id, if an OVSDB session has
    /// reported it.
    pub fn node_by_datapath(&self, dpid: u64) -> Option<String> {
        self.snapshot
            .borrow()
            .nodes
            .values()
            .find(|n| n.datapath_id == Some(dpid))
            .map(|n| n.id.clone())
    }
}

/// The held nodes, and which of them claim each `iface-id`: a node's upsert looks up
/// only its own VIFs here instead of scanning every held node's VIFs (after a reconnect
/// storm all 3,000 nodes are held, and that scan, under the topology's lock, took a
/// quarter of weftd's CPU).
#[derive(Debug, Default)]
struct Held {
    /// Held node -> the hold it is in (a node held again after coming back is in a new
    /// one: the first hold's timer must not forget it).
    nodes: BTreeMap<String, u64>,
    /// Holds started so far.
    holds: u64,
    /// iface-id -> held nodes whose view (as held) has it.
    vifs: HashMap<String, BTreeSet<String>>,
}

impl Held {
    /// The hold `id` is in, if held.
    fn epoch(&self, id: &str) -> Option<u64> {
        self.nodes.get(id).copied()
    }

    /// Stops holding `id`, whose view as held is `view`.
    fn release(&mut self, id: &str, view: Option<&NodeView>) {
        if self.nodes.remove(id).is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A node whose VIFs get ofports 1, 2, ... in the order given.
    fn node(id: &str, vifs: &[&str]) -> NodeView {
        let vifs: Vec<(&str, u32)> = vifs.iter().copied().zip(1..).collect();
        crate::binding::tests::node(id, &vifs).1
    }

    #[test]
    fn a_held_node_stays_until_its_vifs_show_up_elsewhere() {
        let f = TransportNodes::new();
        f.report(node("hv1", &["a"]));
        f.report(node("hv2", &["b", "c"]));
        f.hold("hv2");
        // Held: still there as last seen.
        assert_eq!(f.snapshot().nodes["hv2"], node("hv2", &["b", "c"]));
        // c was evacuated to hv1: hv2 no longer claims it, b stays.
        f.report(node("hv1", &["a", "c"]));
        let t = f.snapshot();
        assert_eq!(
            t.nodes["hv2"].vifs.keys().collect::<Vec<_>>(),
            vec!["b"],
            "held node keeps only what no live node reports"
        );
        assert!(t.nodes["hv1"].vifs.contains_key("c"));
        // hv2 back: its fresh view replaces the held one and it is no longer held.
        f.report(node("hv2", &["b"]));
        f.report(node("hv1", &["a", "c", "b2"]));
        assert_eq!(f.snapshot().nodes["hv2"], node("hv2", &["b"]));
        // Forgotten for good.
        f.hold("hv2");
        f.forget("hv2");
        assert!(!f.snapshot().nodes.contains_key("hv2"));
    }

    #[test]
    fn a_standby_report_marks_the_node_partial_until_a_whole_one() {
        let f = TransportNodes::new();
        f.report_identity(node("hv1", &[]));
        let t = f.snapshot();
        assert!(t.nodes.contains_key("hv1") && t.partial.contains("hv1"));
        // The same view from a session that sees the whole bridge: no longer partial.
        f.report(node("hv1", &[]));
        assert!(!f.snapshot().partial.contains("hv1"));
        f.report_identity(node("hv1", &[]));
        assert!(f.snapshot().partial.contains("hv1"));
        f.forget("hv1");
        let t = f.snapshot();
        assert!(t.nodes.is_empty() && t.partial.is_empty());
    }

    /// Issue 18: after a reconnect storm a held node's session may still be queued for
    /// setup when its grace ends; it is kept while connections are arriving, and
    /// forgotten at the first grace end that finds none.
    #[tokio::test(start_paused = true)]
    async fn a_held_node_is_kept_while_connections_are_still_arriving() {
        let grace = Duration::from_millis(200);
        let f = TransportNodes::new();
        f.report(node("hv1", &["a"]));
        f.report(node("hv2", &["b"]));
        let arriving = f.arrival();
        assert_eq!(f.arriving(), 1);
        f.session_ended("hv2", grace);
        tokio::time::sleep(grace * 3 / 2).await;
        assert!(
            f.snapshot().nodes.contains_key("hv2"),
            "forgotten while a connection that may be it was still being set up"
        );
        drop(arriving);
        assert_eq!(f.arriving(), 0);
        tokio::time::sleep(grace * 2).await;
        assert!(
            !f.snapshot().nodes.contains_key("hv2"),
            "a node that did not come back must still be forgotten"
        );
        assert!(f.snapshot().nodes.contains_key("hv1"));
    }

    /// Issue 18, found with a 1 s grace: a node whose connection was accepted within its
    /// grace is kept for as long as that connection's setup takes, however many graces
    /// (the old cap of 4 extra graces forgot such nodes), and forgotten once no connection
    /// accepted within the grace is still arriving.
    #[tokio::test(start_paused = true)]
    async fn a_node_back_within_its_grace_is_kept_however_long_its_setup_takes() {
        let grace = Duration::from_millis(50);
        let f = TransportNodes::new();
        f.report(node("hv2", &["b"]));
        f.session_ended("hv2", grace);
        let back = f.arrival();
        for _ in 0..8 {
            tokio::time::sleep(grace).await;
            assert!(
                f.snapshot().nodes.contains_key("hv2"),
                "forgotten while its connection, accepted within the grace, was being set up"
            );
        }
        drop(back);
        tokio::time::sleep(grace * 3).await;
        assert!(
            !f.snapshot().nodes.contains_key("hv2"),
            "kept after every connection accepted within the grace was through"
        );
    }

    /// The hold is bounded by the connections that were there when the grace ended: new
    /// ones arriving after it (a flood, other nodes) do not keep a node that is gone.
    #[tokio::test(start_paused = true)]
    async fn connections_accepted_after_the_grace_do_not_keep_a_node() {
        let grace = Duration::from_millis(50);
        let f = TransportNodes::new();
        f.report(node("hv2", &["b"]));
        let within = f.arrival();
        f.session_ended("hv2", grace);
        tokio::time::sleep(grace * 3 / 2).await;
        let later = f.arrival();
        assert!(f.snapshot().nodes.contains_key("hv2"));
        drop(within);
        tokio::time::sleep(grace * 3).await;
        assert!(
            !f.snapshot().nodes.contains_key("hv2"),
            "kept by a connection accepted after its grace"
        );
        drop(later);
    }

    /// A connection that has named another system-id (it waits for that node's previous
    /// session) cannot be this node: it does not keep it. One that named this node does.
    #[tokio::test(start_paused = true)]
    async fn a_connection_that_named_another_node_does_not_keep_this_one() {
        let grace = Duration::from_millis(50);
        let f = TransportNodes::new();
        for (id, vif) in [("hv1", "a"), ("hv2", "b"), ("hv3", "c")] {
            f.report(node(id, &[vif]));
        }
        let other = f.arrival();
        other.claim("hv1");
        let same = f.arrival();
        same.claim("hv3");
        f.session_ended("hv2", grace);
        f.session_ended("hv3", grace);
        tokio::time::sleep(grace * 5 / 2).await;
        let t = f.snapshot();
        assert!(
            !t.nodes.contains_key("hv2"),
            "kept by a connection that named another node"
        );
        assert!(
            t.nodes.contains_key("hv3"),
            "a connection that named this node must keep it"
        );
        drop(same);
        tokio::time::sleep(grace * 5 / 2).await;
        assert!(!f.snapshot().nodes.contains_key("hv3"));
        drop(other);
    }

    /// Without arriving connections the grace is what it always was.
    #[tokio::test(start_paused = true)]
    async fn a_held_node_is_forgotten_after_its_grace() {
        let grace = Duration::from_millis(100);
        let f = TransportNodes::new();
        f.report(node("hv2", &["b"]));
        f.session_ended("hv2", grace);
        assert!(f.snapshot().held.contains("hv2"));
        tokio::time::sleep(grace * 3).await;
        assert!(!f.snapshot().nodes.contains_key("hv2"));
    }
}
