//! Observed state: what the southbound learns from hypervisors (transport nodes, where
//! each logical port is plugged, whether its flows are installed).
//!
//! None of this is stored durably: it is rebuilt from OVSDB and OpenFlow sessions after a
//! restart. The API reads it (`node_list`, `node_get`, `node_flows`, `port_get`); the
//! southbound (OVSDB/OpenFlow session tasks, the reconciler) writes it through the methods
//! below, each of which emits the matching [`Event`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::binding::PortBinding;
use crate::events::Event;
use crate::hardware_vtep::HardwareVteps;
use crate::metrics::Metrics;
use crate::topology::EncapType;

/// A hypervisor as seen through its OVSDB and OpenFlow sessions (DESIGN.md §4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportNode {
    /// `external_ids:system-id`.
    pub id: String,
    pub encap_ip: Option<IpAddr>,
    pub encap_type: EncapType,
    pub bridge: String,
    pub ovsdb_connected: bool,
    pub openflow_connected: bool,
    pub datapath_id: Option<u64>,
    /// Logical ports bound on this node.
    pub ports: Vec<Uuid>,
    /// Installed flows, as the reconciler last knew them (`node_flows` prints them).
    pub flows: InstalledFlows,
}

/// A node's installed flow table as the OpenFlow session knows it, shared with that
/// session (and, after an install, with the node's desired state), not copied: at 3,000
/// nodes × ~1,800 flows, keeping every table as text cost about 870 MB and every
/// `node_list` copied it. The `ovs-ofctl` style text is built only when the API asks for
/// one node's flows ([`InstalledFlows::text`]).
#[derive(Clone, Default)]
pub struct InstalledFlows(FlowsRepr);

#[derive(Clone, Default)]
enum FlowsRepr {
    #[default]
    None,
    Table(Arc<crate::desired::DesiredNode>),
    Text(Arc<[String]>),
}

impl InstalledFlows {
    /// The flows of `table` (its groups and the rest are not shown).
    pub fn table(table: Arc<crate::desired::DesiredNode>) -> Self {
        InstalledFlows(FlowsRepr::Table(table))
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            FlowsRepr::None => 0,
            FlowsRepr::Table(t) => t.flows.len(),
            FlowsRepr::Text(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Installed groups (unknown, so 0, for a table known only as text).
    pub fn group_count(&self) -> usize {
        match &self.0 {
            FlowsRepr::Table(t) => t.groups.len(),
            FlowsRepr::None | FlowsRepr::Text(_) => 0,
        }
    }

    /// One line per flow, `ovs-ofctl dump-flows` style, in table/priority/match order.
    pub fn text(&self) -> Vec<String> {
        match &self.0 {
            FlowsRepr::None => Vec::new(),
            FlowsRepr::Table(t) => t.flows_text(),
            FlowsRepr::Text(t) => t.to_vec(),
        }
    }
}

impl From<Vec<String>> for InstalledFlows {
    fn from(lines: Vec<String>) -> Self {
        InstalledFlows(FlowsRepr::Text(lines.into()))
    }
}

impl std::fmt::Debug for InstalledFlows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InstalledFlows({} flows)", self.len())
    }
}

impl PartialEq for InstalledFlows {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (FlowsRepr::Table(a), FlowsRepr::Table(b)) if Arc::ptr_eq(a, b) => true,
            _ => self.len() == other.len() && self.text() == other.text(),
        }
    }
}

impl Eq for InstalledFlows {}

impl Serialize for InstalledFlows {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.text().serialize(s)
    }
}

impl<'de> Deserialize<'de> for InstalledFlows {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<String>::deserialize(d).map(Self::from)
    }
}

/// Observed status of one logical port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatus {
    pub binding: Option<PortBinding>,
    pub up: bool,
}

/// A node runs without an ACL's flows because its switch refused them (or refused the
/// flows of a drop rule above it): the ACL's `status` in the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclRejection {
    pub node: String,
    /// OpenFlow's name for the switch's error.
    pub error: String,
    /// The refused message, `ovs-ofctl` style.
    pub flow: String,
    /// The ACL whose flow the switch refused (this one, or a drop above it).
    pub refused: Uuid,
}

#[derive(Default)]
struct Inner {
    nodes: BTreeMap<String, TransportNode>,
    ports: HashMap<Uuid, PortStatus>,
    /// ACL id -> node -> why that node runs without the ACL's flows.
    acl_rejections: HashMap<Uuid, BTreeMap<String, AclRejection>>,
    /// When each bound port that is not up yet was bound: the start of its
    /// plug-to-installed time ([`Metrics::plug_to_installed`]).
    plugged_at: HashMap<Uuid, Instant>,
}

/// A node's numbers for a metrics scrape, read without copying its port list or flows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCounts {
    pub id: String,
    pub ovsdb_connected: bool,
    pub openflow_connected: bool,
    pub flows: usize,
    pub groups: usize,
}

/// What a switch refused, as the installer reports it (see [`Event::FlowsRejected`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRejection {
    pub node: String,
    pub acl: Option<Uuid>,
    pub port: Option<Uuid>,
    pub flow: String,
    pub error: String,
    /// ACLs the node now runs without.
    pub withheld: Vec<Uuid>,
}

/// Shared observed state; cheap to read, written by the southbound.
pub struct ObservedState {
    inner: RwLock<Inner>,
    events: broadcast::Sender<Event>,
    metrics: Arc<Metrics>,
    /// Hardware VTEPs (their own owner; here so every reader of the observed state has it).
    vteps: Arc<HardwareVteps>,
}

impl std::fmt::Debug for ObservedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedState").finish_non_exhaustive()
    }
}

impl ObservedState {
    /// Observed state recording into a registry of its own.
    pub fn new(events: broadcast::Sender<Event>) -> Self {
        Self::with_metrics(events, Arc::default())
    }

    /// Observed state recording plug-to-installed times and flow rejections into
    /// `metrics` (the daemon's registry).
    pub fn with_metrics(events: broadcast::Sender<Event>, metrics: Arc<Metrics>) -> Self {
        ObservedState {
            inner: RwLock::new(Inner::default()),
            vteps: Arc::new(HardwareVteps::new(events.clone())),
            events,
            metrics,
        }
    }

    /// The observed hardware VTEPs.
    pub fn vteps(&self) -> &Arc<HardwareVteps> {
        &self.vteps
    }

    /// The registry this state records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Every node's connection state and installed flow and group counts, in id order.
    pub fn node_counts(&self) -> Vec<NodeCounts> {
        self.read()
            .nodes
            .values()
            .map(|n| NodeCounts {
                id: n.id.clone(),
                ovsdb_connected: n.ovsdb_connected,
                openflow_connected: n.openflow_connected,
                flows: n.flows.len(),
                groups: n.flows.group_count(),
            })
            .collect()
    }

    /// How many (ACL, node) pairs run without the ACL's flows.
    pub fn withheld_acl_count(&self) -> usize {
        self.read().acl_rejections.values().map(BTreeMap::len).sum()
    }

    // A panic while holding the lock leaves plain data behind, still usable.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, event: Event) {
        // No subscribers is not an error.
        let _ = self.events.send(event);
    }

    /// Sends an event that is not about the observed state itself (ownership changes).
    pub fn notify(&self, event: Event) {
        self.emit(event);
    }

    /// All known transport nodes, in id order.
    pub fn nodes(&self) -> Vec<TransportNode> {
        self.read().nodes.values().cloned().collect()
    }

    pub fn node(&self, id: &str) -> Option<TransportNode> {
        self.read().nodes.get(id).cloned()
    }

    /// Observed status of a port (unbound and down if nothing is known).
    pub fn port_status(&self, port: &Uuid) -> PortStatus {
        self.read().ports.get(port).cloned().unwrap_or_default()
    }

    /// Inserts or replaces a node; emits `node_connected` when it was not connected before.
    pub fn upsert_node(&self, node: TransportNode) {
        let was_connected = {
            let mut inner = self.write();
            let was = inner
                .nodes
                .get(&node.id)
                .is_some_and(|n| n.ovsdb_connected || n.openflow_connected);
            inner.nodes.insert(node.id.clone(), node.clone());
            was
        };
        if !was_connected && (node.ovsdb_connected || node.openflow_connected) {
            self.emit(Event::NodeConnected { node: node.id });
        }
    }

    /// Changes some fields of a node in place (creating it, with this id, if unknown), so
    /// that the OVSDB and OpenFlow sessions each update their own fields without
    /// overwriting the other's. Emits `node_connected` / `node_disconnected` when the node
    /// goes from no session to some session or back; the node itself is kept.
    pub fn update_node(&self, id: &str, f: impl FnOnce(&mut TransportNode)) {
        let (was, now) = {
            let mut inner = self.write();
            let node = inner
                .nodes
                .entry(id.to_string())
                .or_insert_with(|| TransportNode {
                    id: id.to_string(),
                    ..Default::default()
                });
            let was = node.ovsdb_connected || node.openflow_connected;
            f(node);
            node.id = id.to_string();
            (was, node.ovsdb_connected || node.openflow_connected)
        };
        if !was && now {
            self.emit(Event::NodeConnected {
                node: id.to_string(),
            });
        } else if was && !now {
            self.emit(Event::NodeDisconnected {
                node: id.to_string(),
            });
        }
    }

    /// Forgets a node and unbinds every port bound on it.
    pub fn remove_node(&self, id: &str) {
        let unbound: Vec<Uuid> = {
            let mut inner = self.write();
            if inner.nodes.remove(id).is_none() {
                return;
            }
            inner.acl_rejections.retain(|_, per_node| {
                per_node.remove(id);
                !per_node.is_empty()
            });
            let mut unbound = Vec::new();
            for (port, status) in inner.ports.iter_mut() {
                if status.binding.as_ref().is_some_and(|b| b.node == id) {
                    status.binding = None;
                    status.up = false;
                    unbound.push(*port);
                }
            }
            for port in &unbound {
                inner.plugged_at.remove(port);
            }
            unbound
        };
        for port in unbound {
            self.emit(Event::PortUnbound {
                port,
                node: id.to_string(),
            });
        }
        self.emit(Event::NodeDisconnected {
            node: id.to_string(),
        });
    }

    /// Records that `port` is plugged at `binding`; whether that is new.
    pub fn bind_port(&self, port: Uuid, binding: PortBinding) -> bool {
        {
            let mut inner = self.write();
            let status = inner.ports.entry(port).or_default();
            if status.binding.as_ref() == Some(&binding) {
                return false;
            }
            status.binding = Some(binding.clone());
            status.up = false;
            inner.plugged_at.insert(port, Instant::now());
            if let Some(node) = inner.nodes.get_mut(&binding.node)
                && !node.ports.contains(&port)
            {
                node.ports.push(port);
            }
        }
        self.emit(Event::PortBound {
            port,
            node: binding.node,
            ofport: binding.ofport,
        });
        true
    }

    /// Records that `port` is no longer plugged anywhere.
    pub fn unbind_port(&self, port: Uuid) {
        let node = {
            let mut inner = self.write();
            inner.plugged_at.remove(&port);
            let Some(old) = inner.ports.remove(&port).and_then(|s| s.binding) else {
                return;
            };
            if let Some(n) = inner.nodes.get_mut(&old.node) {
                n.ports.retain(|p| *p != port);
            }
            old.node
        };
        self.emit(Event::PortUnbound { port, node });
    }

    /// Marks a bound port's flows as installed (or not).
    pub fn set_port_up(&self, port: Uuid, up: bool) {
        {
            let mut inner = self.write();
            let Some(status) = inner.ports.get_mut(&port) else {
                return;
            };
            if status.up == up {
                return;
            }
            status.up = up;
            if up && let Some(at) = inner.plugged_at.remove(&port) {
                self.metrics.plug_to_installed.observe(at.elapsed());
            }
        }
        self.emit(Event::PortUp { port, up });
    }

    /// Records and announces that a switch refused flows; the `withheld` ACLs are marked
    /// as not in force on that node until [`Self::acl_restored`].
    pub fn flows_rejected(&self, r: FlowRejection) {
        self.metrics.flow_rejections.inc();
        {
            let mut inner = self.write();
            for acl in &r.withheld {
                inner.acl_rejections.entry(*acl).or_default().insert(
                    r.node.clone(),
                    AclRejection {
                        node: r.node.clone(),
                        error: r.error.clone(),
                        flow: r.flow.clone(),
                        refused: r.acl.unwrap_or(*acl),
                    },
                );
            }
        }
        self.emit(Event::FlowsRejected {
            node: r.node,
            acl: r.acl,
            port: r.port,
            flow: r.flow,
            error: r.error,
            withheld: r.withheld,
        });
    }

    /// A withheld ACL is in force on `node` again (accepted on a retry), or no longer
    /// concerns it (deleted, or its port left the node): clears its rejection there and
    /// announces `acl_restored` if there was one.
    pub fn acl_restored(&self, node: &str, acl: Uuid) {
        let was = {
            let mut inner = self.write();
            let Some(per_node) = inner.acl_rejections.get_mut(&acl) else {
                return;
            };
            let was = per_node.remove(node).is_some();
            if per_node.is_empty() {
                inner.acl_rejections.remove(&acl);
            }
            was
        };
        if was {
            self.emit(Event::AclRestored {
                node: node.to_string(),
                acl,
            });
        }
    }

    /// The nodes that run without `acl`'s flows, and why (empty: in force wherever its
    /// port is installed).
    pub fn acl_rejections(&self, acl: &Uuid) -> Vec<AclRejection> {
        self.read()
            .acl_rejections
            .get(acl)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Replaces a node's installed flows (what `node_flows` returns).
    pub fn set_node_flows(&self, node: &str, flows: impl Into<InstalledFlows>) {
        if let Some(n) = self.write().nodes.get_mut(node) {
            n.flows = flows.into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_unbind_emit_events() {
        let (tx, mut rx) = broadcast::channel(16);
        let obs = ObservedState::new(tx);
        obs.upsert_node(TransportNode {
            id: "hv1".into(),
            ovsdb_connected: true,
            ..Default::default()
        });
        let port = Uuid::new_v4();
        obs.bind_port(
            port,
            PortBinding {
                node: "hv1".into(),
                ofport: 3,
            },
        );
        obs.set_port_up(port, true);
        assert!(obs.port_status(&port).up);
        assert_eq!(obs.node("hv1").unwrap().ports, vec![port]);
        obs.remove_node("hv1");
        assert_eq!(obs.port_status(&port), PortStatus::default());
        let got: Vec<Event> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(
            got,
            vec![
                Event::NodeConnected { node: "hv1".into() },
                Event::PortBound {
                    port,
                    node: "hv1".into(),
                    ofport: 3
                },
                Event::PortUp { port, up: true },
                Event::PortUnbound {
                    port,
                    node: "hv1".into()
                },
                Event::NodeDisconnected { node: "hv1".into() },
            ]
        );
    }

    #[test]
    fn update_node_keeps_other_fields_and_reports_transitions() {
        let (tx, mut rx) = broadcast::channel(16);
        let obs = ObservedState::new(tx);
        obs.update_node("hv1", |n| n.openflow_connected = true);
        obs.update_node("hv1", |n| n.ovsdb_connected = true);
        let n = obs.node("hv1").unwrap();
        assert!(n.openflow_connected && n.ovsdb_connected);
        obs.update_node("hv1", |n| n.openflow_connected = false);
        obs.update_node("hv1", |n| n.ovsdb_connected = false);
        assert!(obs.node("hv1").is_some(), "disconnected, not forgotten");
        let got: Vec<Event> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(
            got,
            vec![
                Event::NodeConnected { node: "hv1".into() },
                Event::NodeDisconnected { node: "hv1".into() },
            ]
        );
    }
}
