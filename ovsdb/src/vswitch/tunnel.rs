//! Tunnel ports to remote transport nodes: their spec, adding one, and reconciling the set
//! the controller owns on a bridge. Ownership is an `external_ids` key the caller names;
//! ports without it are never touched.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::datum::{Atom, Datum, Row};
use crate::monitor::Replica;
use crate::ops::{Condition, Mutation, NamedRow, Transaction};

use super::bridge::wait_bridge_ports;
use super::lookup::{cached_interfaces_of, cached_ports_of, ports_of};
use super::map_keys::string_map;
use super::typed::RowError;
use super::{BRIDGE, Bridge, DATABASE, INTERFACE, PORT, Port};

/// Tunnel ports the controller owns on `bridge`: those whose Port carries
/// `external_ids:<owner_key>`, keyed by that key's value (the remote's identity). Ports
/// without the key belong to someone else and are left alone.
pub fn owned_tunnels(
    replica: &Replica,
    bridge: &Bridge,
    owner_key: &str,
) -> Result<BTreeMap<String, Port>, RowError> {
    Ok(ports_of(replica, bridge)?
        .into_iter()
        .filter_map(|p| {
            p.external_ids
                .get(owner_key)
                .cloned()
                .map(|remote| (remote, p))
        })
        .collect())
}

/// A tunnel port to one remote transport node.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelPort {
    pub name: String,
    /// `geneve`, `vxlan` or `stt`.
    pub kind: String,
    pub remote_ip: String,
    pub local_ip: Option<String>,
    /// `flow`: the VNI is set per packet by the pipeline.
    pub key: String,
    pub external_ids: BTreeMap<String, String>,
}

/// Inserts a tunnel Interface and Port and adds the port to `bridge`.
pub fn add_tunnel_port(txn: &mut Transaction, bridge: Uuid, spec: &TunnelPort) -> NamedRow {
    let port = insert_tunnel_rows(txn, spec);
    txn.mutate(
        BRIDGE,
        vec![Condition::uuid(bridge)],
        vec![Mutation::insert("ports", port.datum())],
    );
    port
}

/// The Interface and Port rows of a tunnel port, not yet attached to a bridge.
fn insert_tunnel_rows(txn: &mut Transaction, spec: &TunnelPort) -> NamedRow {
    let options = spec.options();
    let iface = txn.insert(
        INTERFACE,
        Row::from([
            ("name".into(), Datum::scalar(spec.name.as_str())),
            ("type".into(), Datum::scalar(spec.kind.as_str())),
            ("options".into(), string_map(&options)),
            ("external_ids".into(), string_map(&spec.external_ids)),
        ]),
    );
    txn.insert(
        PORT,
        Row::from([
            ("name".into(), Datum::scalar(spec.name.as_str())),
            ("interfaces".into(), iface.datum()),
            ("external_ids".into(), string_map(&spec.external_ids)),
        ]),
    )
}

impl TunnelPort {
    /// Whether an interface's `options` are exactly [`TunnelPort::options`], without
    /// building that map.
    fn options_match(&self, have: &BTreeMap<String, String>) -> bool {
        have.len() == 2 + usize::from(self.local_ip.is_some())
            && have.get("remote_ip") == Some(&self.remote_ip)
            && have.get("key") == Some(&self.key)
            && self
                .local_ip
                .as_ref()
                .is_none_or(|l| have.get("local_ip") == Some(l))
    }

    fn options(&self) -> BTreeMap<String, String> {
        let mut options = BTreeMap::from([
            ("remote_ip".to_owned(), self.remote_ip.clone()),
            ("key".to_owned(), self.key.clone()),
        ]);
        if let Some(l) = &self.local_ip {
            options.insert("local_ip".into(), l.clone());
        }
        options
    }
}

/// Plans one transaction that makes the tunnel ports the controller owns on `bridge`
/// (ports with `external_ids:<owner_key>`) exactly `desired`, matched by port name:
/// missing ones are added, unwanted ones removed, and an existing one whose type or
/// options differ is updated in place. Each of `desired` should carry `owner_key` in its
/// `external_ids`, or the port it adds is not recognised as owned on the next sync. The
/// transaction starts with a `wait` on the bridge's port set as this replica saw it, so a
/// concurrent change makes it fail rather than act on stale data; re-read and retry then.
/// Returns `None` when nothing needs to change. Ports without `owner_key` are never
/// touched.
pub fn sync_tunnels(
    replica: &Replica,
    bridge: &Bridge,
    owner_key: &str,
    desired: &[TunnelPort],
) -> Result<Option<Transaction>, RowError> {
    let mut txn = Transaction::new(DATABASE);
    wait_bridge_ports(&mut txn, bridge);
    let ports = cached_ports_of(replica, bridge)?;
    let owned: BTreeMap<&str, &Port> = ports
        .iter()
        .filter(|p| p.external_ids.contains_key(owner_key))
        .map(|p| (p.name.as_str(), &**p))
        .collect();
    // The bridge's port set changes by one mutate for all tunnels, not one per tunnel:
    // a hypervisor joining a fabric gains a hundred tunnels in one sync.
    let mut added: Vec<Atom> = Vec::new();
    let mut removed: Vec<Atom> = Vec::new();
    for spec in desired {
        match owned.get(spec.name.as_str()) {
            None => {
                added.push(Atom::NamedUuid(
                    insert_tunnel_rows(&mut txn, spec).name().to_owned(),
                ));
            }
            Some(port) => {
                for iface in cached_interfaces_of(replica, port)? {
                    if iface.kind != spec.kind || !spec.options_match(&iface.options) {
                        txn.update(
                            INTERFACE,
                            vec![Condition::uuid(iface.uuid)],
                            Row::from([
                                ("type".into(), Datum::scalar(spec.kind.as_str())),
                                ("options".into(), string_map(&spec.options())),
                            ]),
                        );
                    }
                }
            }
        }
    }
    let wanted: BTreeSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
    for (name, port) in &owned {
        if !wanted.contains(name) {
            removed.push(Atom::Uuid(port.uuid));
        }
    }
    let mut mutations = Vec::new();
    if !added.is_empty() {
        mutations.push(Mutation::insert("ports", Datum::set(added)));
    }
    if !removed.is_empty() {
        mutations.push(Mutation::delete("ports", Datum::set(removed)));
    }
    if !mutations.is_empty() {
        txn.mutate(BRIDGE, vec![Condition::uuid(bridge.uuid)], mutations);
    }
    Ok((txn.operations.len() > 1).then_some(txn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vswitch::set_interface_external_id;
    use serde_json::json;

    #[test]
    fn tunnel_port_ops() {
        let mut t = Transaction::new(DATABASE);
        let br = Uuid::new_v4();
        add_tunnel_port(
            &mut t,
            br,
            &TunnelPort {
                name: "wt-0a0b0c0d".into(),
                kind: "geneve".into(),
                remote_ip: "192.0.2.2".into(),
                local_ip: Some("192.0.2.1".into()),
                key: "flow".into(),
                external_ids: BTreeMap::from([("ctl-remote".into(), "hv2".into())]),
            },
        );
        set_interface_external_id(&mut t, br, "ctl-installed", "true");
        let p = t.to_params();
        assert_eq!(
            p[1]["row"]["options"],
            json!([
                "map",
                [
                    ["key", "flow"],
                    ["local_ip", "192.0.2.1"],
                    ["remote_ip", "192.0.2.2"]
                ]
            ])
        );
        assert_eq!(p[3]["op"], "mutate");
        assert_eq!(
            p[4]["mutations"],
            json!([
                ["external_ids", "delete", "ctl-installed"],
                [
                    "external_ids",
                    "insert",
                    ["map", [["ctl-installed", "true"]]]
                ]
            ])
        );
    }
}
