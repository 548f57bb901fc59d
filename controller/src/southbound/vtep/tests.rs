//! Row building and diffing against hand-made databases, and decoding of hostile rows.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ovsdb::{Datum, Operation, Uuid};

use super::converge::plan;
use super::desired::{DesiredSwitch, DesiredVtep, RemoteMac};
use super::rows::*;
use crate::model::MacAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn mac(last: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 1, last])
}

/// A VTEP `br0` with ports p0 and p1, nothing bound.
fn bare_db() -> (VtepDb, Uuid, Uuid) {
    let (p0, p1) = (Uuid::new_v4(), Uuid::new_v4());
    let mut db = VtepDb::default();
    db.switches.push(PhysicalSwitch {
        uuid: Uuid::new_v4(),
        name: "br0".into(),
        ports: [p0, p1].into(),
        tunnel_ips: vec![ip("10.99.1.100")],
    });
    for (u, n) in [(p0, "p0"), (p1, "p1")] {
        db.ports.insert(
            u,
            PhysicalPort {
                uuid: u,
                name: n.into(),
                vlan_bindings: BTreeMap::new(),
            },
        );
    }
    (db, p0, p1)
}

fn want_one(sw: Uuid, hv: &[(&str, u8)]) -> DesiredVtep {
    let mut ds = DesiredSwitch {
        switch: sw,
        name: "ls1".into(),
        vni: 5001,
        remote: BTreeMap::new(),
        flood: BTreeSet::new(),
    };
    for (h, m) in hv {
        ds.remote.insert(
            mac(*m),
            RemoteMac {
                ipaddr: format!("10.0.0.{m}"),
                locator: ip(h),
            },
        );
        ds.flood.insert(ip(h));
    }
    let mut want = served();
    want.switches.insert(sw, ds);
    want.bindings
        .entry("br0".into())
        .or_default()
        .entry("p0".into())
        .or_default()
        .insert(0, sw);
    want
}

/// Nothing bound, for a database serving `br0`.
fn served() -> DesiredVtep {
    DesiredVtep {
        vteps: ["br0".to_string()].into(),
        ..Default::default()
    }
}

fn ops(p: &super::converge::Plan) -> Vec<(String, String)> {
    p.txn
        .as_ref()
        .map(|t| {
            t.operations
                .iter()
                .map(|o| match o {
                    Operation::Insert { table, .. } => ("insert".into(), table.clone()),
                    Operation::Update { table, .. } => ("update".into(), table.clone()),
                    Operation::Delete { table, .. } => ("delete".into(), table.clone()),
                    other => (other.op_name().into(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn count(ops: &[(String, String)], op: &str, table: &str) -> usize {
    ops.iter().filter(|(o, t)| o == op && t == table).count()
}

/// Applies what a plan would have written, the way ovsdb-server would show it back.
fn written_db(
    sw: Uuid,
    p0: Uuid,
    hv: &[(&str, u8)],
    base: &VtepDb,
) -> (VtepDb, BTreeMap<String, Uuid>) {
    let mut db = base.clone();
    let ls = Uuid::new_v4();
    db.logical_switches.insert(
        ls,
        LogicalSwitchRow {
            uuid: ls,
            name: "ls1".into(),
            tunnel_key: Some(5001),
            weft_switch: Some(sw.to_string()),
        },
    );
    db.ports.get_mut(&p0).unwrap().vlan_bindings.insert(0, ls);
    let mut locs = BTreeMap::new();
    for (h, m) in hv {
        let l = *locs.entry(h.to_string()).or_insert_with(|| {
            let u = Uuid::new_v4();
            db.locators.insert(
                u,
                Locator {
                    uuid: u,
                    encapsulation: VXLAN_OVER_IPV4.into(),
                    dst_ip: h.to_string(),
                    tunnel_key: None,
                },
            );
            u
        });
        db.ucast_remote.push(UcastMac {
            uuid: Uuid::new_v4(),
            mac: mac(*m),
            logical_switch: ls,
            locator: l,
            ipaddr: format!("10.0.0.{m}"),
        });
    }
    let set = Uuid::new_v4();
    db.locator_sets
        .insert(set, locs.values().copied().collect());
    db.mcast_remote.push(McastMac {
        uuid: Uuid::new_v4(),
        mac: UNKNOWN_DST.into(),
        logical_switch: ls,
        locator_set: set,
    });
    locs.insert("ls".into(), ls);
    (db, locs)
}

#[test]
fn first_write_creates_everything_in_one_transaction() {
    let (db, _, _) = bare_db();
    let sw = Uuid::new_v4();
    let want = want_one(sw, &[("10.99.0.1", 1), ("10.99.0.2", 2), ("10.99.0.1", 3)]);
    let p = plan(&db, &want);
    let o = ops(&p);
    assert_eq!(count(&o, "insert", LOGICAL_SWITCH), 1);
    assert_eq!(
        count(&o, "insert", PHYSICAL_LOCATOR),
        2,
        "one locator per hypervisor"
    );
    assert_eq!(count(&o, "insert", UCAST_MACS_REMOTE), 3);
    assert_eq!(count(&o, "insert", PHYSICAL_LOCATOR_SET), 1);
    assert_eq!(count(&o, "insert", MCAST_MACS_REMOTE), 1);
    assert_eq!(count(&o, "update", PHYSICAL_PORT), 1, "only p0 is bound");
    assert!(p.pending.is_empty());
    // The Logical_Switch row carries the VNI and Weft's mark.
    let Some(Operation::Insert { row, .. }) = p.txn.as_ref().unwrap().operations.first() else {
        panic!("first op is not the logical switch insert");
    };
    assert_eq!(row["tunnel_key"], Datum::scalar(5001i64));
    assert_eq!(
        row["other_config"],
        Datum::map([(KEY_WEFT_SWITCH, sw.to_string())])
    );
}

#[test]
fn a_database_that_is_right_gets_no_transaction() {
    let (base, p0, _) = bare_db();
    let sw = Uuid::new_v4();
    let hv = [("10.99.0.1", 1), ("10.99.0.2", 2)];
    let (db, _) = written_db(sw, p0, &hv, &base);
    let p = plan(&db, &want_one(sw, &hv));
    assert!(p.txn.is_none(), "{:?}", p.summary);
}

#[test]
fn a_vm_move_updates_its_locator_and_the_flood_set() {
    let (base, p0, _) = bare_db();
    let sw = Uuid::new_v4();
    let (db, locs) = written_db(sw, p0, &[("10.99.0.1", 1), ("10.99.0.2", 2)], &base);
    // Port 2 moves to hypervisor 1: existing locator reused, one update, a new set.
    let p = plan(&db, &want_one(sw, &[("10.99.0.1", 1), ("10.99.0.1", 2)]));
    let o = ops(&p);
    assert_eq!(count(&o, "update", UCAST_MACS_REMOTE), 1);
    assert_eq!(
        count(&o, "insert", PHYSICAL_LOCATOR),
        0,
        "locators are reused"
    );
    assert_eq!(count(&o, "insert", PHYSICAL_LOCATOR_SET), 1);
    assert_eq!(count(&o, "update", MCAST_MACS_REMOTE), 1);
    assert_eq!(o.len(), 3, "{o:?}");
    let moved = p
        .txn
        .unwrap()
        .operations
        .into_iter()
        .find_map(|op| match op {
            Operation::Update { table, row, .. } if table == UCAST_MACS_REMOTE => Some(row),
            _ => None,
        });
    assert_eq!(moved.unwrap()["locator"], Datum::uuid(locs["10.99.0.1"]));
}

#[test]
fn port_removal_and_unbinding_remove_what_was_written() {
    let (base, p0, _) = bare_db();
    let sw = Uuid::new_v4();
    let (mut db, locs) = written_db(sw, p0, &[("10.99.0.1", 1), ("10.99.0.2", 2)], &base);
    let p = plan(&db, &want_one(sw, &[("10.99.0.1", 1)]));
    let o = ops(&p);
    assert_eq!(count(&o, "delete", UCAST_MACS_REMOTE), 1);
    assert_eq!(count(&o, "update", MCAST_MACS_REMOTE), 1);
    // Unbinding: the logical switch goes with every row that refers to it, the VTEP's
    // local MACs included, and p0's vlan binding.
    db.ucast_local.push(UcastMac {
        uuid: Uuid::new_v4(),
        mac: mac(0x60),
        logical_switch: locs["ls"],
        locator: Uuid::new_v4(),
        ipaddr: String::new(),
    });
    // Bindings of a physical switch the session does not serve are not touched.
    let p = plan(&db, &DesiredVtep::default());
    assert_eq!(count(&ops(&p), "update", PHYSICAL_PORT), 0);
    let p = plan(&db, &served());
    let o = ops(&p);
    assert_eq!(count(&o, "delete", LOGICAL_SWITCH), 1);
    assert_eq!(count(&o, "delete", UCAST_MACS_REMOTE), 2);
    assert_eq!(count(&o, "delete", UCAST_MACS_LOCAL), 1);
    assert_eq!(count(&o, "delete", MCAST_MACS_REMOTE), 1);
    assert_eq!(count(&o, "update", PHYSICAL_PORT), 1);
    let bindings = p
        .txn
        .unwrap()
        .operations
        .into_iter()
        .find_map(|op| match op {
            Operation::Update { table, row, .. } if table == PHYSICAL_PORT => Some(row),
            _ => None,
        });
    assert_eq!(bindings.unwrap()["vlan_bindings"], Datum::empty_map());
}

#[test]
fn foreign_bindings_are_kept_and_missing_ports_are_pending() {
    let (mut db, p0, _) = bare_db();
    let other = Uuid::new_v4();
    db.logical_switches.insert(
        other,
        LogicalSwitchRow {
            uuid: other,
            name: "not-weft".into(),
            tunnel_key: Some(9),
            weft_switch: None,
        },
    );
    db.ports
        .get_mut(&p0)
        .unwrap()
        .vlan_bindings
        .insert(7, other);
    let sw = Uuid::new_v4();
    let mut want = want_one(sw, &[]);
    want.bindings
        .get_mut("br0")
        .unwrap()
        .entry("p9".into())
        .or_default()
        .insert(5, sw);
    let p = plan(&db, &want);
    assert_eq!(p.pending, vec!["br0 port p9: no such port".to_string()]);
    let row = p
        .txn
        .unwrap()
        .operations
        .into_iter()
        .find_map(|op| match op {
            Operation::Update { table, row, .. } if table == PHYSICAL_PORT => Some(row),
            _ => None,
        });
    let map = row.unwrap()["vlan_bindings"].clone();
    assert_eq!(
        map.as_map().unwrap().len(),
        2,
        "vlan 7 kept, vlan 0 added: {map:?}"
    );
    // No ports on the switch: no flood row (a locator set may not be empty).
    assert_eq!(
        count(
            &ops(&plan(&db, &want_one(sw, &[]))),
            "insert",
            MCAST_MACS_REMOTE
        ),
        0
    );
}

#[test]
fn hostile_rows_are_typed_errors() {
    let text = std::fs::read_to_string("/usr/share/openvswitch/vtep.ovsschema")
        .expect("openvswitch-vtep installed (scripts/test.sh)");
    let schema = ovsdb::DatabaseSchema::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
    let mut replica = ovsdb::Replica::new(schema);
    replica.set_monitored(&monitor_requests());
    let ls = Uuid::new_v4();
    let bad_mac = Uuid::new_v4();
    let update = serde_json::json!({
        "Logical_Switch": {ls.to_string(): {"new": {"name": "ls1", "tunnel_key": ["set", []]}}},
        "Ucast_Macs_Local": {bad_mac.to_string(): {"new": {
            "MAC": "not-a-mac", "logical_switch": ["uuid", ls.to_string()],
            "locator": ["uuid", Uuid::new_v4().to_string()]}}},
        "Physical_Switch": {Uuid::new_v4().to_string(): {"new": {"name": "br0",
            "tunnel_ips": ["set", ["10.0.0.1", "garbage"]]}}},
    });
    // Whatever the replica accepts, reading it never panics and names the bad rows.
    if replica.apply(ovsdb::UpdateFormat::Update, &update).is_ok() {
        let (db, errors) = VtepDb::read(&replica);
        assert!(
            errors.iter().any(|e| e.row == bad_mac && e.column == "MAC"),
            "{errors:?}"
        );
        assert_eq!(db.switches[0].tunnel_ips, vec![ip("10.0.0.1")]);
        assert!(db.ucast_local.is_empty());
    }
}
