//! Patch ports between bridges (`type=patch`, `options:peer`): their spec and reconciling
//! the set a controller owns on every bridge of the database. Ownership is an
//! `external_ids` key the caller names; ports without it are never touched, and a bridge
//! is only ever given or relieved of owned ports, never otherwise changed.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::datum::{Atom, Datum, Row};
use crate::monitor::Replica;
use crate::ops::{Condition, Mutation, Transaction};

use super::bridge::wait_bridge_ports;
use super::cache::cached_rows;
use super::lookup::{cached_interfaces_of, cached_ports_of};
use super::map_keys::string_map;
use super::typed::RowError;
use super::{BRIDGE, Bridge, DATABASE, INTERFACE, PORT, Port};

/// One end of a patch-port pair: a port named `name` whose packets come out of the port
/// named `peer` (on another bridge) and the other way round.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PatchPort {
    pub name: String,
    pub peer: String,
    pub external_ids: BTreeMap<String, String>,
}

impl PatchPort {
    fn options(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("peer".to_owned(), self.peer.clone())])
    }
}

/// Plans one transaction that makes the patch ports the controller owns (ports with
/// `external_ids:<owner_key>`) on every bridge exactly `desired` (bridge name -> its
/// ports), matched by port name: missing ones are added, unwanted ones removed (on any
/// bridge, also one no longer named in `desired`), and one whose type or peer differs is
/// updated in place. Each desired port should carry `owner_key` in its `external_ids`.
/// A bridge named in `desired` that does not exist is skipped: creating bridges is not
/// this function's business (the caller reports it). Every bridge whose ports change is
/// guarded by a `wait` on its port set as the replica saw it, so a concurrent change
/// fails the transaction rather than acting on stale data. Returns `None` when nothing
/// needs to change.
pub fn sync_patch_ports(
    replica: &Replica,
    owner_key: &str,
    desired: &BTreeMap<String, Vec<PatchPort>>,
) -> Result<Option<Transaction>, RowError> {
    let mut txn = Transaction::new(DATABASE);
    let mut bridges: Vec<Bridge> = Vec::new();
    for b in cached_rows::<Bridge>(replica) {
        bridges.push(b?.into_owned());
    }
    bridges.sort_by(|a, b| a.name.cmp(&b.name));
    let empty = Vec::new();
    for bridge in &bridges {
        let wanted = desired.get(&bridge.name).unwrap_or(&empty);
        let ports = cached_ports_of(replica, bridge)?;
        let owned: BTreeMap<&str, &Port> = ports
            .iter()
            .filter(|p| p.external_ids.contains_key(owner_key))
            .map(|p| (p.name.as_str(), &**p))
            .collect();
        let mut missing: Vec<&PatchPort> = Vec::new();
        let mut updates: Vec<(Uuid, &PatchPort)> = Vec::new();
        for spec in wanted {
            match owned.get(spec.name.as_str()) {
                None => missing.push(spec),
                Some(port) => {
                    for iface in cached_interfaces_of(replica, port)? {
                        if iface.kind != "patch" || iface.options != spec.options() {
                            updates.push((iface.uuid, spec));
                        }
                    }
                }
            }
        }
        let names: BTreeSet<&str> = wanted.iter().map(|s| s.name.as_str()).collect();
        let removed: Vec<Atom> = owned
            .iter()
            .filter(|(name, _)| !names.contains(*name))
            .map(|(_, p)| Atom::Uuid(p.uuid))
            .collect();
        if missing.is_empty() && updates.is_empty() && removed.is_empty() {
            continue;
        }
        wait_bridge_ports(&mut txn, bridge);
        let added: Vec<Atom> = missing
            .into_iter()
            .map(|s| Atom::NamedUuid(insert_patch_rows(&mut txn, s)))
            .collect();
        for (iface, spec) in updates {
            txn.update(
                INTERFACE,
                vec![Condition::uuid(iface)],
                Row::from([
                    ("type".into(), Datum::scalar("patch")),
                    ("options".into(), string_map(&spec.options())),
                ]),
            );
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
    }
    Ok((!txn.operations.is_empty()).then_some(txn))
}

/// The Interface and Port rows of one patch port, not yet attached to a bridge; returns
/// the Port's named uuid.
fn insert_patch_rows(txn: &mut Transaction, spec: &PatchPort) -> String {
    let iface = txn.insert(
        INTERFACE,
        Row::from([
            ("name".into(), Datum::scalar(spec.name.as_str())),
            ("type".into(), Datum::scalar("patch")),
            ("options".into(), string_map(&spec.options())),
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
    .name()
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::UpdateFormat;
    use crate::vswitch::monitor_requests;
    use crate::vswitch::test_schema::vswitch_schema;
    use serde_json::json;

    fn patch(name: &str, peer: &str) -> PatchPort {
        PatchPort {
            name: name.into(),
            peer: peer.into(),
            external_ids: BTreeMap::from([("ctl-physnet".into(), "physnet1".into())]),
        }
    }

    /// br-int holds a VM port and an owned patch port; br-ex an operator's uplink and
    /// an owned patch port to an old peer name; br-old an owned leftover.
    fn replica() -> Replica {
        let mut r = Replica::new(vswitch_schema());
        r.set_monitored(&monitor_requests());
        let u = |n: u128| Uuid::from_u128(n).to_string();
        r.apply(
            UpdateFormat::Update2,
            &json!({
                "Bridge": {
                    u(1): {"initial": {"name": "br-int", "ports": ["set", [["uuid", u(11)], ["uuid", u(12)]]]}},
                    u(2): {"initial": {"name": "br-ex", "ports": ["set", [["uuid", u(21)], ["uuid", u(22)]]]}},
                    u(3): {"initial": {"name": "br-old", "ports": ["uuid", u(31)]}},
                },
                "Port": {
                    u(11): {"initial": {"name": "vm1", "interfaces": ["uuid", u(111)]}},
                    u(12): {"initial": {"name": "pi", "interfaces": ["uuid", u(121)],
                        "external_ids": ["map", [["ctl-physnet", "physnet1"]]]}},
                    u(21): {"initial": {"name": "eth1", "interfaces": ["uuid", u(211)]}},
                    u(22): {"initial": {"name": "pe", "interfaces": ["uuid", u(221)],
                        "external_ids": ["map", [["ctl-physnet", "physnet1"]]]}},
                    u(31): {"initial": {"name": "px", "interfaces": ["uuid", u(311)],
                        "external_ids": ["map", [["ctl-physnet", "physnet0"]]]}},
                },
                "Interface": {
                    u(111): {"initial": {"name": "vm1"}},
                    u(121): {"initial": {"name": "pi", "type": "patch",
                        "options": ["map", [["peer", "pe"]]]}},
                    u(211): {"initial": {"name": "eth1"}},
                    u(221): {"initial": {"name": "pe", "type": "patch",
                        "options": ["map", [["peer", "old"]]]}},
                    u(311): {"initial": {"name": "px", "type": "patch",
                        "options": ["map", [["peer", "py"]]]}},
                },
            }),
        )
        .unwrap();
        r
    }

    #[test]
    fn syncs_owned_patch_ports_only() {
        let r = replica();
        let desired = BTreeMap::from([
            ("br-int".to_owned(), vec![patch("pi", "pe")]),
            ("br-ex".to_owned(), vec![patch("pe", "pi")]),
            // Does not exist: skipped, never created.
            ("br-missing".to_owned(), vec![patch("pm", "pn")]),
        ]);
        let txn = sync_patch_ports(&r, "ctl-physnet", &desired)
            .unwrap()
            .expect("br-ex's peer and br-old's leftover need changes");
        let ops = txn.to_params();
        let text = ops.to_string();
        // br-int is in sync: no wait or mutate names it.
        assert!(!text.contains(&Uuid::from_u128(1).to_string()), "{text}");
        assert!(!text.contains("pm"), "{text}");
        // br-ex: its patch port's peer is repaired in place (one update, of that
        // interface); eth1 is only named by the guard on br-ex's port set.
        assert!(text.contains(r#"["peer","pi"]"#), "{text}");
        let updates: Vec<&serde_json::Value> = ops
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["op"] == "update")
            .collect();
        assert_eq!(updates.len(), 1, "{text}");
        assert_eq!(
            updates[0]["where"],
            json!([["_uuid", "==", ["uuid", Uuid::from_u128(221).to_string()]]])
        );
        // br-old: the leftover is removed; the only mutation.
        let deletes: Vec<&serde_json::Value> = ops
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["op"] == "mutate")
            .collect();
        assert_eq!(deletes.len(), 1, "{text}");
        assert_eq!(
            deletes[0]["mutations"],
            json!([["ports", "delete", ["uuid", Uuid::from_u128(31).to_string()]]])
        );

        // Nothing wanted anywhere: every owned port goes, nothing else does.
        let txn = sync_patch_ports(&r, "ctl-physnet", &BTreeMap::new())
            .unwrap()
            .unwrap();
        let text = txn.to_params().to_string();
        for gone in [12, 22, 31] {
            assert!(text.contains(&Uuid::from_u128(gone).to_string()), "{text}");
        }
        let mutations: Vec<String> = txn
            .to_params()
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["op"] == "mutate")
            .map(|o| o["mutations"].to_string())
            .collect();
        assert_eq!(mutations.len(), 3, "{text}");
        for kept in [11, 21] {
            let kept = Uuid::from_u128(kept).to_string();
            assert!(mutations.iter().all(|m| !m.contains(&kept)), "{text}");
        }
    }

    #[test]
    fn adds_missing_pair_and_is_quiet_when_in_sync() {
        let r = replica();
        let desired = BTreeMap::from([
            (
                "br-int".to_owned(),
                vec![patch("pi", "pe"), patch("pi2", "pe2")],
            ),
            (
                "br-ex".to_owned(),
                vec![patch("pe", "pi"), patch("pe2", "pi2")],
            ),
        ]);
        let text = sync_patch_ports(&r, "ctl-physnet", &desired)
            .unwrap()
            .unwrap()
            .to_params()
            .to_string();
        for name in ["pi2", "pe2"] {
            assert!(text.contains(&format!(r#""name":"{name}""#)), "{text}");
        }
        assert!(text.contains(r#""type":"patch""#), "{text}");

        let in_sync = BTreeMap::from([
            ("br-int".to_owned(), vec![patch("pi", "pe")]),
            ("br-ex".to_owned(), vec![patch("pe", "old")]),
            ("br-old".to_owned(), vec![patch("px", "py")]),
        ]);
        assert!(
            sync_patch_ports(&r, "ctl-physnet", &in_sync)
                .unwrap()
                .is_none()
        );
    }
}
