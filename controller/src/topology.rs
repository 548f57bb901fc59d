//! What hypervisors report, as one consistent snapshot: each transport node's identity,
//! tunnel endpoint, VM interfaces (VIFs) and Weft's tunnel ports with their ofports.
//!
//! OVSDB sessions are the only writers ([`crate::fabric::Fabric::upsert_node`] and the
//! grace hold); the compiler task, the binding resolution and `trace` read snapshots.
//! Nothing here is stored: it is rebuilt from the hypervisors after a restart.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

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
}

impl Topology {
    /// Whether `id` is in the topology and served by a live OVSDB session.
    pub fn is_live(&self, id: &str) -> bool {
        self.nodes.contains_key(id) && !self.held.contains(id)
    }
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
