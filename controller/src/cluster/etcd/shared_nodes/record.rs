//! The value of `<prefix>/observed/nodes/<system-id>`: what every instance needs of a
//! hypervisor it does not own, in order to compile the hypervisors it does own (reach
//! this one's VMs, bind its interfaces, match its OpenFlow connection).
//!
//! The node's own tunnel ports are left out on purpose: one per peer, they would make
//! every record grow with the fabric (N² bytes in etcd) and change whenever any node
//! joins, and only the node's owner compiles with them (from its own session).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::topology::{EncapType, NodeView, Vif};

/// One hypervisor as its owner's OVSDB session sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The instance that wrote it (the node's owner at the time).
    pub instance: String,
    pub encap_ip: IpAddr,
    pub encap_type: EncapType,
    pub bridge: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datapath_id: Option<u64>,
    /// iface-id -> the interface carrying it.
    #[serde(default)]
    pub vifs: BTreeMap<String, VifRecord>,
    #[serde(default)]
    pub bridge_mappings: BTreeMap<String, String>,
    /// physnet -> ofport of Weft's patch port towards it.
    #[serde(default)]
    pub patches: BTreeMap<String, u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VifRecord {
    pub ofport: u32,
    pub interface: Uuid,
    pub name: String,
}

/// A record that could not be read (written by a newer weftd, or damaged).
#[derive(Debug, thiserror::Error)]
#[error("observed node record for {node:?} unreadable: {error}")]
pub struct RecordError {
    pub node: String,
    #[source]
    pub error: serde_json::Error,
}

impl NodeRecord {
    pub fn from_view(instance: &str, view: &NodeView) -> NodeRecord {
        NodeRecord {
            instance: instance.to_string(),
            encap_ip: view.encap_ip,
            encap_type: view.encap_type,
            bridge: view.bridge.clone(),
            datapath_id: view.datapath_id,
            vifs: view
                .vifs
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        VifRecord {
                            ofport: v.ofport,
                            interface: v.interface,
                            name: v.name.clone(),
                        },
                    )
                })
                .collect(),
            bridge_mappings: view.bridge_mappings.clone(),
            patches: view.patches.clone(),
        }
    }

    /// The node as other instances see it: no tunnel ports (see the module comment).
    pub fn into_view(self, id: &str) -> NodeView {
        NodeView {
            id: id.to_string(),
            encap_ip: self.encap_ip,
            encap_type: self.encap_type,
            bridge: self.bridge,
            datapath_id: self.datapath_id,
            vifs: self
                .vifs
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        Vif {
                            ofport: v.ofport,
                            interface: v.interface,
                            name: v.name,
                        },
                    )
                })
                .collect(),
            tunnels: BTreeMap::new(),
            bridge_mappings: self.bridge_mappings,
            patches: self.patches,
        }
    }

    /// The record's bytes: deterministic (sorted maps), so equal records compare equal
    /// as bytes and an unchanged node is never written again.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(node: &str, bytes: &[u8]) -> Result<NodeRecord, RecordError> {
        serde_json::from_slice(bytes).map_err(|error| RecordError {
            node: node.to_string(),
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_round_trips_without_its_tunnels() {
        let (_, mut view) = crate::binding::tests::node("hv1", &[("vm-a", 3), ("vm-b", 4)]);
        view.datapath_id = Some(0xfeed);
        view.bridge_mappings
            .insert("physnet1".into(), "br-ex".into());
        view.patches.insert("physnet1".into(), 9);
        let bytes = NodeRecord::from_view("c1", &view).encode();
        let back = NodeRecord::decode("hv1", &bytes).unwrap();
        assert_eq!(back.instance, "c1");
        assert_eq!(back.clone().encode(), bytes, "encoding is deterministic");
        let mut expected = view.clone();
        expected.tunnels.clear();
        view.tunnels.insert("hv2".into(), 7);
        assert_eq!(back.into_view("hv1"), expected);
        assert!(NodeRecord::decode("hv1", b"{\"encap_ip\":1}").is_err());
    }
}
