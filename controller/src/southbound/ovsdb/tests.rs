use std::collections::{BTreeMap, BTreeSet};

use ovsdb::Replica;
use ovsdb::vswitch::{self, OpenVSwitch};
use uuid::Uuid;

use super::converge::*;
use super::settings::*;
use super::*;
use crate::desired::TunnelSpec;
use crate::topology::{EncapType, Vif};

#[test]
fn tunnel_names_are_stable_fnv1a() {
    // FNV-1a 32 of "" is the offset basis; of "a" is 0xe40c292c (published vectors).
    assert_eq!(tunnel_port_name(""), "wt-811c9dc5");
    assert_eq!(tunnel_port_name("a"), "wt-e40c292c");
    assert_eq!(tunnel_port_name("hv2"), tunnel_port_name("hv2"));
    assert_ne!(tunnel_port_name("hv2"), tunnel_port_name("hv3"));
    assert!(tunnel_port_name("some-very-long-system-id-0123456789").len() <= 15);
}

#[test]
fn ovs_tunnels_skip_self_and_name_collisions() {
    // Two system-ids whose port names collide (FNV-1a is 32 bits; found by search).
    let (a, b) = ("hv549599", "hv712382");
    assert_eq!(tunnel_port_name(a), tunnel_port_name(b));
    let t = |remote: &str, last: u8| TunnelSpec {
        remote: remote.to_owned(),
        remote_ip: IpAddr::from([192, 0, 2, last]),
        local_ip: IpAddr::from([192, 0, 2, 1]),
        encap: EncapType::Geneve,
    };
    let tunnels = BTreeSet::from([t("self", 1), t(a, 2), t(b, 3), t("zz", 4)]);
    let specs = ovs_tunnels("self", &tunnels);
    let remotes: Vec<_> = specs
        .iter()
        .map(|s| s.external_ids[KEY_REMOTE].as_str())
        .collect();
    // BTreeSet order: the first of the colliding pair (by TunnelSpec order) wins.
    let first = tunnels
        .iter()
        .find(|x| x.remote == a || x.remote == b)
        .unwrap();
    assert_eq!(remotes, vec![first.remote.as_str(), "zz"]);
    assert_eq!(specs[1].name, tunnel_port_name("zz"));
    assert_eq!(specs[1].remote_ip, "192.0.2.4");
    assert_eq!(specs[1].local_ip.as_deref(), Some("192.0.2.1"));
}

const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// A replica holding `tables` (update2 `initial` rows), with the real vswitch schema.
fn replica(tables: serde_json::Value) -> Replica {
    let text = std::fs::read_to_string(SCHEMA)
        .unwrap_or_else(|e| panic!("{SCHEMA}: {e} (install openvswitch-common)"));
    let schema = ovsdb::DatabaseSchema::from_json(&serde_json::from_str(&text).unwrap())
        .expect("vswitch schema");
    let mut r = Replica::new(schema);
    r.set_monitored(&vswitch::monitor_requests());
    r.apply(ovsdb::UpdateFormat::Update2, &tables).unwrap();
    r
}

#[test]
fn bridge_contents_reports_working_vifs_and_tunnels_only() {
    let u = |n: u8| Uuid::from_bytes([n; 16]);
    let uuid = |n: u8| serde_json::json!(["uuid", u(n).to_string()]);
    let ports: Vec<_> = (10..18).map(uuid).collect();
    let port = |i: u8, name: &str, owner: Option<(&str, &str)>| {
        let ext: Vec<_> = owner.map(|(k, v)| vec![k, v]).into_iter().collect();
        (
            u(10 + i).to_string(),
            serde_json::json!({"initial": {"name": name, "interfaces": uuid(20 + i),
                    "external_ids": ["map", ext]}}),
        )
    };
    let iface = |i: u8, name: &str, ofport: i64, ext: Vec<[&str; 2]>, error: &str| {
        let error = if error.is_empty() {
            serde_json::json!(["set", []])
        } else {
            serde_json::json!(error)
        };
        (
            u(20 + i).to_string(),
            serde_json::json!({"initial": {"name": name, "ofport": ofport,
                    "external_ids": ["map", ext], "error": error}}),
        )
    };
    let p: serde_json::Map<_, _> = [
        port(0, "vm1", None),
        port(1, "vm2", None),
        port(2, "vm1-again", None),
        port(3, "wt-a", Some((KEY_REMOTE, "hv2"))),
        port(4, "wt-b", Some((KEY_REMOTE, "hv3"))),
        port(5, "plain", None),
        port(6, "wpi-1", Some((KEY_PHYSNET, "physnet1"))),
        port(7, "wpi-2", Some((KEY_PHYSNET, "physnet2"))),
    ]
    .into_iter()
    .collect();
    let i: serde_json::Map<_, _> = [
        iface(0, "vm1", 7, vec![[KEY_IFACE_ID, "lp1"]], ""),
        iface(1, "vm2", -1, vec![[KEY_IFACE_ID, "lp2"]], ""),
        iface(2, "vm1-again", 9, vec![[KEY_IFACE_ID, "lp1"]], ""),
        iface(3, "wt-a", 3, vec![], ""),
        iface(4, "wt-b", -1, vec![], "could not add network device wt-b"),
        iface(5, "plain", 4, vec![], ""),
        iface(6, "wpi-1", 12, vec![], ""),
        iface(7, "wpi-2", -1, vec![], "peer wpe-2 does not exist"),
    ]
    .into_iter()
    .collect();
    let r = replica(serde_json::json!({
        "Bridge": {u(1).to_string(): {"initial": {"name": "br-int",
            "ports": ["set", ports]}}},
        "Port": p,
        "Interface": i,
    }));
    let bridge = vswitch::bridge_by_name(&r, "br-int").unwrap().unwrap();
    let c = bridge_contents(&r, "hv1", &bridge);
    assert_eq!(
        c.vifs,
        BTreeMap::from([(
            "lp1".to_owned(),
            Vif {
                ofport: 7,
                interface: u(20),
                name: "vm1".into()
            }
        )])
    );
    assert_eq!(c.tunnels, BTreeMap::from([("hv2".to_owned(), 3)]));
    assert_eq!(c.patches, BTreeMap::from([("physnet1".to_owned(), 12)]));
    assert_eq!(
        c.tunnel_errors,
        BTreeMap::from([
            ("wpi-2".to_owned(), "peer wpe-2 does not exist".to_owned()),
            (
                "wt-b".to_owned(),
                "could not add network device wt-b".to_owned()
            ),
        ])
    );
    assert_eq!(c.duplicate_iface_ids, BTreeSet::from(["lp1".to_owned()]));
}

#[test]
fn settings_require_system_id_and_encap_ip() {
    let mut root = OpenVSwitch {
        uuid: Uuid::nil(),
        bridges: vec![],
        manager_options: vec![],
        external_ids: BTreeMap::new(),
        other_config: BTreeMap::new(),
        ovs_version: None,
        datapath_types: vec![],
        iface_types: vec![],
        cur_cfg: None,
        next_cfg: None,
    };
    assert!(node_settings(&root).unwrap_err().contains("system-id"));
    root.external_ids.insert("system-id".into(), "hv1".into());
    assert!(node_settings(&root).unwrap_err().contains(KEY_ENCAP_IP));
    root.external_ids.insert(KEY_ENCAP_IP.into(), "nope".into());
    assert!(node_settings(&root).unwrap_err().contains("not an IP"));
    root.external_ids
        .insert(KEY_ENCAP_IP.into(), "192.0.2.1".into());
    let s = node_settings(&root).unwrap();
    assert_eq!(s.encap_type, EncapType::Geneve);
    assert_eq!(s.bridge, "br-int");
    assert_eq!(s.datapath_type, None);
    root.external_ids
        .insert(KEY_ENCAP_TYPE.into(), "vxlan".into());
    root.external_ids.insert(KEY_BRIDGE.into(), "br-x".into());
    let s = node_settings(&root).unwrap();
    assert_eq!(
        (s.encap_type, s.bridge.as_str()),
        (EncapType::Vxlan, "br-x")
    );
    assert!(s.bridge_mappings.is_empty() && s.mapping_errors.is_empty());
    root.external_ids.insert(
        KEY_BRIDGE_MAPPINGS.into(),
        "physnet1:br-ex,junk,physnet2:br-x".into(),
    );
    let s = node_settings(&root).unwrap();
    assert_eq!(
        s.bridge_mappings,
        BTreeMap::from([("physnet1".to_owned(), "br-ex".to_owned())]),
        "junk is malformed and br-x is the integration bridge here"
    );
    assert_eq!(s.mapping_errors.len(), 2, "{:?}", s.mapping_errors);
    root.external_ids
        .insert(KEY_ENCAP_TYPE.into(), "gre".into());
    assert!(node_settings(&root).unwrap_err().contains("gre"));
}

/// A replica with br-int whose Controller rows have these targets.
fn bridge_with_controllers(targets: &[&str]) -> (Replica, vswitch::Bridge) {
    let u = |n: u8| Uuid::from_bytes([n; 16]);
    let refs: Vec<_> = (0..targets.len() as u8)
        .map(|i| serde_json::json!(["uuid", u(30 + i).to_string()]))
        .collect();
    let rows: serde_json::Map<_, _> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                u(30 + i as u8).to_string(),
                serde_json::json!({"initial": {"target": t}}),
            )
        })
        .collect();
    let r = replica(serde_json::json!({
        "Bridge": {u(1).to_string(): {"initial": {"name": "br-int",
            "controller": ["set", refs]}}},
        "Controller": rows,
    }));
    let bridge = vswitch::bridge_by_name(&r, "br-int").unwrap().unwrap();
    (r, bridge)
}

fn ops(txn: &ovsdb::Transaction) -> Vec<String> {
    txn.operations
        .iter()
        .map(|o| o.op_name().to_string())
        .collect()
}

#[test]
fn controller_rows_change_one_at_a_time_and_never_empty() {
    let want = |ts: &[&str]| ts.iter().map(|t| t.to_string()).collect::<BTreeSet<_>>();
    // A missing instance is added first, alone, behind a wait on the controller set.
    let (r, b) = bridge_with_controllers(&["tcp:10.0.0.1:6653"]);
    let (txn, what) = fence::plan_controllers(
        &r,
        &b,
        &want(&[
            "tcp:10.0.0.1:6653",
            "tcp:10.0.0.2:6653",
            "tcp:10.0.0.3:6653",
        ]),
    )
    .unwrap();
    assert!(
        what.contains("adding") && what.contains("10.0.0.2"),
        "{what}"
    );
    assert_eq!(ops(&txn), ["wait", "insert", "mutate"]);
    // A gone instance is removed, one per transaction.
    let (r, b) = bridge_with_controllers(&["tcp:10.0.0.1:6653", "tcp:10.0.0.2:6653"]);
    let (txn, what) = fence::plan_controllers(&r, &b, &want(&["tcp:10.0.0.1:6653"])).unwrap();
    assert!(
        what.contains("removing") && what.contains("10.0.0.2"),
        "{what}"
    );
    assert_eq!(ops(&txn), ["wait", "mutate"]);
    // Never the last row, and nothing when they match or nothing is wanted.
    let (r, b) = bridge_with_controllers(&["tcp:10.0.0.9:6653"]);
    let (txn, _) = fence::plan_controllers(&r, &b, &want(&["tcp:10.0.0.1:6653"])).unwrap();
    assert_eq!(
        ops(&txn),
        ["wait", "insert", "mutate"],
        "add before removing"
    );
    let (r, b) = bridge_with_controllers(&["tcp:10.0.0.1:6653"]);
    assert!(fence::plan_controllers(&r, &b, &want(&["tcp:10.0.0.1:6653"])).is_none());
    assert!(fence::plan_controllers(&r, &b, &want(&[])).is_none());
    // A row in the other spelling of a wanted target (a redial) is that target's: not
    // added again, not removed; two spellings of one target are one row too many.
    let (r, b) = bridge_with_controllers(&["tcp:10.0.0.1:06653", "tcp:10.0.0.2:6653"]);
    let both = want(&["tcp:10.0.0.1:6653", "tcp:10.0.0.2:6653"]);
    assert!(fence::plan_controllers(&r, &b, &both).is_none());
    let (r, b) = bridge_with_controllers(&["tcp:10.0.0.1:6653", "tcp:10.0.0.1:06653"]);
    let (txn, what) = fence::plan_controllers(&r, &b, &want(&["tcp:10.0.0.1:6653"])).unwrap();
    assert!(what.contains("removing"), "{what}");
    assert_eq!(ops(&txn), ["wait", "mutate"]);
}

#[test]
fn the_fence_guards_with_a_wait_on_the_owner_key() {
    let f = fence::Fence::new(Uuid::from_bytes([7; 16]), "c1", 42);
    assert_eq!(f.value, "c1:42");
    assert!(f.is_set(&BTreeMap::from([(
        fence::KEY_OWNER.to_owned(),
        "c1:42".to_owned()
    )])));
    assert!(!f.is_set(&BTreeMap::from([(
        fence::KEY_OWNER.to_owned(),
        "c2:43".to_owned()
    )])));
    let mut txn = ovsdb::Transaction::new(vswitch::DATABASE);
    f.guard(&mut txn);
    let json = txn.to_params().to_string();
    assert!(json.contains(r#""op":"wait""#), "{json}");
    assert!(json.contains(r#""until":"!=""#), "{json}");
    assert!(json.contains(r#"["weft-owner","c1:42"]"#), "{json}");
}

/// Weft's own Manager write and a switch's Controller status come back as updates; only
/// the rows the bridge's contents are read from make the session read them again.
#[test]
fn only_bridge_tables_change_the_contents() {
    let (m, c, i) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut r = replica(serde_json::json!({
        "Manager": {m.to_string(): {"initial": {"target": "tcp:192.0.2.9:6640"}}},
        "Controller": {c.to_string(): {"initial": {"target": "tcp:192.0.2.9:6653"}}},
        "Interface": {i.to_string(): {"initial": {"name": "vm1"}}},
    }));
    let mut apply = |update: serde_json::Value| {
        let changes = r.apply(ovsdb::UpdateFormat::Update2, &update).unwrap();
        assert!(!changes.changes.is_empty(), "{update}");
        session::changes_contents(&changes)
    };
    let modify = |table: &str, uuid: Uuid, row: serde_json::Value| serde_json::json!({table: {uuid.to_string(): {"modify": row}}});
    assert!(!apply(modify(
        "Manager",
        m,
        serde_json::json!({"inactivity_probe": 30000})
    )));
    assert!(!apply(modify(
        "Controller",
        c,
        serde_json::json!({"is_connected": true})
    )));
    assert!(apply(modify(
        "Interface",
        i,
        serde_json::json!({"ofport": 1})
    )));
    let mut both = modify("Manager", m, serde_json::json!({"inactivity_probe": 5000}));
    both["Interface"] =
        modify("Interface", i, serde_json::json!({"ofport": 2}))["Interface"].clone();
    assert!(apply(both));
}
