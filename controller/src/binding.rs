//! The one place that decides which logical port a VM interface is.
//!
//! A VIF binds to a logical port when its `iface-id` is the port's name or id. If one port
//! is claimed by several VIFs (a VM moving between hypervisors, or a stale interface), the
//! claim from the node whose system-id sorts first wins, and within a node the lowest
//! ofport: exactly one node ever programs a port, and the flows, `weft-installed` and the
//! API all read this answer ([`Bindings::compute`]; the compiler task keeps it up to date
//! incrementally and publishes it, see `compiler::IncrementalCompiler`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::LogicalModel;
use crate::topology::Topology;

/// Where a logical port is plugged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    pub node: String,
    pub ofport: u32,
}

/// Where every logical port is bound, decided once for the whole topology so that all
/// nodes agree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bindings {
    /// Logical port -> where it is bound.
    pub ports: BTreeMap<Uuid, PortBinding>,
    /// The same, indexed by node: system-id -> (port -> ofport).
    pub by_node: BTreeMap<String, BTreeMap<Uuid, u32>>,
}

impl Bindings {
    /// Binds each VIF whose `iface-id` names a logical port (by name or id). When several
    /// VIFs claim one port, the node whose system-id sorts first wins, then the lowest
    /// ofport: deterministic, so two nodes never both program the port.
    pub fn compute(model: &LogicalModel, topology: &Topology) -> Self {
        let mut ports: BTreeMap<Uuid, PortBinding> = BTreeMap::new();
        for (node_id, view) in &topology.nodes {
            for (iface_id, vif) in &view.vifs {
                let Some(port) = model.find_port(iface_id) else {
                    continue;
                };
                let claim = PortBinding {
                    node: node_id.clone(),
                    ofport: vif.ofport,
                };
                match ports.get(&port.id) {
                    Some(cur) if (&cur.node, cur.ofport) <= (&claim.node, claim.ofport) => {
                        if cur.node != claim.node {
                            tracing::debug!(
                                port = %port.name, winner = %cur.node, loser = %claim.node,
                                "port claimed by two nodes; binding it to the first by system-id"
                            );
                        }
                    }
                    _ => {
                        ports.insert(port.id, claim);
                    }
                }
            }
        }
        let mut by_node: BTreeMap<String, BTreeMap<Uuid, u32>> = BTreeMap::new();
        for (id, b) in &ports {
            by_node
                .entry(b.node.clone())
                .or_default()
                .insert(*id, b.ofport);
        }
        Bindings { ports, by_node }
    }

    /// Ports bound on `node`, with their ofport.
    pub fn on_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = (Uuid, u32)> + 'a {
        self.by_node
            .get(node)
            .into_iter()
            .flat_map(|m| m.iter().map(|(id, o)| (*id, *o)))
    }
}
