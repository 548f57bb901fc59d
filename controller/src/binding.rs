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
/// nodes agree. Persistent maps: the compiler task publishes a snapshot after every round
/// in O(1), and [`imbl::OrdMap::diff`] finds what changed between two.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bindings {
    /// Logical port -> where it is bound.
    pub ports: imbl::OrdMap<Uuid, PortBinding>,
    /// The same, indexed by node: system-id -> (port -> ofport).
    pub by_node: imbl::OrdMap<String, imbl::OrdMap<Uuid, u32>>,
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
        let mut by_node: imbl::OrdMap<String, imbl::OrdMap<Uuid, u32>> = imbl::OrdMap::new();
        for (id, b) in &ports {
            by_node
                .entry(b.node.clone())
                .or_default()
                .insert(*id, b.ofport);
        }
        Bindings {
            ports: ports.into_iter().collect(),
            by_node,
        }
    }

    /// Ports bound on `node`, with their ofport.
    pub fn on_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = (Uuid, u32)> + 'a {
        self.by_node
            .get(node)
            .into_iter()
            .flat_map(|m| m.iter().map(|(id, o)| (*id, *o)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::model::fixtures::blue;
    use crate::topology::{EncapType, NodeView, Vif};

    /// A node whose VIFs are `(iface-id, ofport)`.
    pub(crate) fn node(id: &str, vifs: &[(&str, u32)]) -> (String, NodeView) {
        let view = NodeView {
            id: id.into(),
            encap_ip: "192.0.2.1".parse().expect("ip"),
            encap_type: EncapType::Geneve,
            bridge: "br-int".into(),
            datapath_id: None,
            vifs: vifs
                .iter()
                .map(|&(iface, ofport)| {
                    let vif = Vif {
                        ofport,
                        interface: Uuid::from_u128(u128::from(ofport)),
                        name: format!("tap{ofport}"),
                    };
                    (iface.to_owned(), vif)
                })
                .collect::<BTreeMap<_, _>>(),
            tunnels: BTreeMap::new(),
            bridge_mappings: Default::default(),
            patches: Default::default(),
        };
        (id.to_owned(), view)
    }

    pub(crate) fn topology(nodes: Vec<(String, NodeView)>) -> Arc<Topology> {
        Arc::new(Topology {
            nodes: nodes.into_iter().collect(),
            ..Topology::default()
        })
    }

    #[test]
    fn two_vifs_claiming_one_port_bind_it_once_to_the_first_node_by_system_id() {
        let m = blue(&[(1, "a1"), (2, "a2")]);
        // hv2 sorts after hv1 whatever order the views arrive in; a1 is claimed by name
        // on hv2 and by id on hv1.
        let a1_id = Uuid::from_u128(1).to_string();
        let t = topology(vec![
            node("hv2", &[("a1", 7), ("a2", 8)]),
            node("hv1", &[(a1_id.as_str(), 9)]),
        ]);
        let b = Bindings::compute(&m, &t);
        let hv1 = PortBinding {
            node: "hv1".into(),
            ofport: 9,
        };
        assert_eq!(b.ports.get(&Uuid::from_u128(1)), Some(&hv1));
        assert_eq!(b.ports[&Uuid::from_u128(2)].node, "hv2");
        assert_eq!(
            b.on_node("hv1").collect::<Vec<_>>(),
            [(Uuid::from_u128(1), 9)]
        );
        assert_eq!(
            b.on_node("hv2").collect::<Vec<_>>(),
            [(Uuid::from_u128(2), 8)]
        );
    }

    #[test]
    fn within_a_node_the_lowest_ofport_wins() {
        let m = blue(&[(1, "a1")]);
        let a1_id = Uuid::from_u128(1).to_string();
        let t = topology(vec![node("hv1", &[("a1", 12), (a1_id.as_str(), 4)])]);
        let b = Bindings::compute(&m, &t);
        assert_eq!(b.ports[&Uuid::from_u128(1)].ofport, 4);
    }
}
