//! Compiler tests of provider networks (docs/pipeline.md, "Provider networks"): what a node
//! gets for switches bridged onto a physical network, walked on the software flow table
//! where it models the fields (untagged frames), checked flow by flow where it does not
//! yet (802.1Q); `ovs_tests.rs` walks the tagged cases on a real ovs-vswitchd.
//!
//! Fabric: F (VNI 6001) untagged and V (VNI 6002) on VLAN 100, both on physnet1; O
//! (VNI 6003) an ordinary overlay switch. hv1: f1, f4, v1, o1, patch ofport 20; hv2: f2,
//! v2, o2, patch ofport 21; hv3: f3, maps no physnet; hv4: f5, maps physnet1 but its patch
//! port has no ofport yet.

use std::collections::{BTreeMap, BTreeSet};

use openflow::{Action, Field, Instruction, Mac};
use uuid::Uuid;

use super::table::{FlowTable, FromDesired, Packet};
use super::*;
use crate::desired::PatchSpec;
use crate::model::{LogicalPort, LogicalSwitch, ProviderNet};
use crate::topology::NodeView;

pub(super) const VNI_F: u32 = 6001;
pub(super) const VNI_V: u32 = 6002;
pub(super) const PATCH_HV1: u32 = 20;

fn sw(n: u128, name: &str, vni: u32, provider: Option<(&str, Option<u16>)>) -> LogicalSwitch {
    LogicalSwitch {
        id: Uuid::from_u128(n),
        name: name.into(),
        vni,
        description: String::new(),
        flood_vteps: Vec::new(),
        provider: provider.map(|(physnet, vlan)| ProviderNet {
            physnet: physnet.into(),
            vlan,
        }),
    }
}

fn lport(n: u128, switch: u128, key: u16, ip: &str) -> LogicalPort {
    LogicalPort {
        id: Uuid::from_u128(n),
        name: format!("p{n:x}"),
        switch: Uuid::from_u128(switch),
        mac: format!("02:00:00:00:{:02x}:{:02x}", (n >> 8) as u8, n as u8)
            .parse()
            .unwrap(),
        ips: vec![ip.parse().unwrap()],
        port_security: true,
        key,
        zone: n as u16,
    }
}

/// Port names: `pf1` is F's port 1 (id 0xf1), `pa1` V's, `pc1` O's.
pub(super) fn model() -> LogicalModel {
    LogicalModel::from_objects(
        1,
        vec![
            sw(0xf, "F", VNI_F, Some(("physnet1", None))),
            sw(0xa, "V", VNI_V, Some(("physnet1", Some(100)))),
            sw(0xc, "O", 6003, None),
        ],
        vec![
            lport(0xf1, 0xf, 1, "10.1.0.1"),
            lport(0xf2, 0xf, 2, "10.1.0.2"),
            lport(0xf3, 0xf, 3, "10.1.0.3"),
            lport(0xf4, 0xf, 4, "10.1.0.4"),
            lport(0xf5, 0xf, 5, "10.1.0.5"),
            lport(0xa1, 0xa, 1, "10.2.0.1"),
            lport(0xa2, 0xa, 2, "10.2.0.2"),
            lport(0xc1, 0xc, 1, "10.3.0.1"),
            lport(0xc2, 0xc, 2, "10.3.0.2"),
        ],
        vec![],
    )
    .unwrap()
}

fn node(
    id: &str,
    n: u8,
    vifs: &[(&str, u32)],
    tunnels: &[(&str, u32)],
    mapped: bool,
    patch: Option<u32>,
) -> NodeView {
    let mut v = super::tests::node(id, &format!("192.168.0.{n}"), vifs, tunnels);
    if mapped {
        v.bridge_mappings = BTreeMap::from([("physnet1".to_owned(), "br-ex".to_owned())]);
    }
    v.patches = patch
        .map(|p| BTreeMap::from([("physnet1".to_owned(), p)]))
        .unwrap_or_default();
    v
}

pub(super) fn topology() -> Topology {
    let mut t = Topology::default();
    for n in [
        node(
            "hv1",
            1,
            &[("pf1", 1), ("pf4", 4), ("pa1", 2), ("pc1", 3)],
            &[("hv2", 10)],
            true,
            Some(PATCH_HV1),
        ),
        node(
            "hv2",
            2,
            &[("pf2", 1), ("pa2", 2), ("pc2", 3)],
            &[("hv1", 10)],
            true,
            Some(21),
        ),
        node("hv3", 3, &[("pf3", 1)], &[], false, None),
        node("hv4", 4, &[("pf5", 1)], &[], true, None),
    ] {
        t.nodes.insert(n.id.clone(), n);
    }
    t
}

fn compiled(node: &str) -> DesiredNode {
    compile_node(&model(), &topology(), node)
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// A frame from `in_port` with the source and destination MACs of two ports (or any).
fn frame(in_port: u32, src: Mac, dst: Mac) -> Packet {
    Packet {
        in_port,
        eth_src: src,
        eth_dst: dst,
        eth_type: 0x0800,
        ip4_src: "10.1.0.1".parse().unwrap(),
        ip4_dst: "10.1.0.99".parse().unwrap(),
        ..Packet::default()
    }
}

pub(super) fn mac_of(n: u128) -> Mac {
    Mac(lport(n, 0, 0, "10.0.0.1").mac.0)
}

const PHYSICAL_HOST: Mac = Mac([0x02, 0, 0, 0, 0xee, 0x01]);
const BROADCAST: Mac = Mac([0xff; 6]);

#[test]
fn provider_switches_get_no_tunnels_and_a_patch_pair() {
    let d = compiled("hv1");
    let remotes: Vec<&str> = d.tunnels.iter().map(|t| t.remote.as_str()).collect();
    // hv2 shares the overlay switch O; hv3 and hv4 share only provider switch F.
    assert_eq!(remotes, ["hv2"]);
    assert_eq!(
        d.patches,
        BTreeSet::from([PatchSpec {
            physnet: "physnet1".into(),
            bridge: Some("br-ex".into()),
        }])
    );
    // No flow of hv1 names a tunnel for F or V: nothing matches or sets their VNI as
    // tun_id.
    for (k, c) in d.flows.iter() {
        let text = format!("{} {:?}", k.r#match, c.instructions);
        for vni in [VNI_F, VNI_V] {
            assert!(
                !text.contains(&format!("TunnelId({vni},")),
                "tunnel flow for a provider switch: {text}"
            );
        }
    }
    // A node with nothing but provider ports has no tunnels at all.
    assert!(compiled("hv3").tunnels.is_empty());
    assert!(compiled("hv4").tunnels.is_empty());
}

#[test]
fn provider_ports_are_complete_only_with_a_patch_ofport() {
    let d = compiled("hv1");
    for p in [0xf1, 0xf4, 0xa1, 0xc1] {
        assert!(d.bound_ports.contains(&id(p)), "{p:x} complete on hv1");
    }
    // hv3 does not map physnet1: local flows, but not complete; it asks for an unmapped
    // patch, which its OVSDB session reports.
    let d3 = compiled("hv3");
    assert!(d3.bound_ports.is_empty());
    assert_eq!(
        d3.patches,
        BTreeSet::from([PatchSpec {
            physnet: "physnet1".into(),
            bridge: None,
        }])
    );
    assert!(
        d3.flows
            .keys()
            .any(|k| k.table_id == tables::CLASSIFY && k.r#match.to_string().contains("in_port=1")),
        "hv3 still classifies its local port"
    );
    // hv4 maps it but the patch has no ofport yet: not complete either.
    let d4 = compiled("hv4");
    assert!(d4.bound_ports.is_empty());
    assert_eq!(
        d4.patches.first().and_then(|p| p.bridge.as_deref()),
        Some("br-ex")
    );
    // Once the patch port reports an ofport, it is.
    let mut t = topology();
    t.nodes
        .get_mut("hv4")
        .unwrap()
        .patches
        .insert("physnet1".into(), 7);
    let d4 = compile_node(&model(), &t, "hv4");
    assert_eq!(d4.bound_ports, BTreeSet::from([id(0xf5)]));
}

#[test]
fn local_ports_reach_the_physical_network_and_each_other() {
    let table = FlowTable::from_desired(&compiled("hv1"));
    // Unicast to a port on another hypervisor and to a physical host: out of the patch,
    // untagged, once.
    for dst in [mac_of(0xf2), PHYSICAL_HOST] {
        let out = table.process(&frame(1, mac_of(0xf1), dst), 0);
        assert_eq!(out.ports(), vec![PATCH_HV1], "{out:#?}");
    }
    // To a local port of the same switch: stays local.
    let out = table.process(&frame(1, mac_of(0xf1), mac_of(0xf4)), 0);
    assert_eq!(out.ports(), vec![4], "{out:#?}");
    // Broadcast: the other local port and the physical network, not the sender.
    let out = table.process(&frame(1, mac_of(0xf1), BROADCAST), 0);
    assert_eq!(out.ports(), vec![4, PATCH_HV1], "{out:#?}");
    // Port security still applies: a spoofed source goes nowhere.
    let out = table.process(&frame(1, PHYSICAL_HOST, mac_of(0xf2)), 0);
    assert!(out.ports().is_empty(), "{out:#?}");
    // The overlay switch on the same node still tunnels.
    let mut p = frame(3, mac_of(0xc1), mac_of(0xc2));
    p.ip4_src = "10.3.0.1".parse().unwrap();
    let out = table.process(&p, 0);
    assert_eq!(out.ports(), vec![10], "{out:#?}");
    assert_eq!(out.outputs[0].packet.tun_id, 6003);
}

#[test]
fn arp_for_the_switchs_ports_elsewhere_is_answered_locally() {
    let table = FlowTable::from_desired(&compiled("hv1"));
    let mut arp = frame(1, mac_of(0xf1), BROADCAST);
    arp.eth_type = 0x0806;
    arp.arp_op = 1;
    arp.arp_sha = mac_of(0xf1);
    arp.arp_spa = "10.1.0.1".parse().unwrap();
    arp.arp_tpa = "10.1.0.2".parse().unwrap();
    let out = table.process(&arp, 0);
    assert_eq!(out.ports(), vec![1], "answered back to the asker: {out:#?}");
    assert_eq!(out.outputs[0].packet.arp_sha, mac_of(0xf2));
    // An address Weft does not know (a physical host) is asked on the segment.
    arp.arp_tpa = "10.1.0.200".parse().unwrap();
    let out = table.process(&arp, 0);
    assert_eq!(out.ports(), vec![4, PATCH_HV1], "{out:#?}");
}

/// The flows the software table cannot walk yet (802.1Q), as docs/pipeline.md writes
/// them; ovs_tests.rs walks them on a real ovs-vswitchd.
#[test]
fn patch_flows_are_as_specified() {
    let d = compiled("hv1");
    let find = |table: u8, prio: u16, fields: &[Field]| {
        let want = openflow::Match::new(fields.to_vec()).into_canonical();
        d.flows
            .iter()
            .find(|(k, _)| k.table_id == table && k.priority == prio && k.r#match == want)
            .map(|(_, c)| c.instructions.clone())
            .unwrap_or_else(|| panic!("no flow table={table} priority={prio} {want}"))
    };
    let md = |vni: u32| Field::Metadata(u64::from(vni), None);
    let to_l2 = |mut actions: Vec<Action>, vni: u32| {
        actions.extend([
            Action::SetField(md(vni)),
            Action::SetField(Field::Reg(6, 0, None)),
        ]);
        vec![
            Instruction::ApplyActions(actions),
            Instruction::GotoTable(tables::L2_LOOKUP),
        ]
    };
    assert_eq!(
        find(
            tables::CLASSIFY,
            100,
            &[Field::InPort(PATCH_HV1, None), Field::VlanVid(0, None)]
        ),
        to_l2(vec![], VNI_F)
    );
    assert_eq!(
        find(
            tables::CLASSIFY,
            100,
            &[
                Field::InPort(PATCH_HV1, None),
                Field::VlanVid(0x1000 | 100, None)
            ]
        ),
        to_l2(vec![Action::PopVlan], VNI_V)
    );
    let tagged = vec![
        Action::PushVlan(0x8100),
        Action::SetField(Field::VlanVid(0x1000 | 100, None)),
        Action::output(PATCH_HV1),
    ];
    assert_eq!(
        find(tables::L2_LOOKUP, 70, &[md(VNI_F)]),
        vec![Instruction::ApplyActions(vec![Action::output(PATCH_HV1)])]
    );
    assert_eq!(
        find(tables::L2_LOOKUP, 70, &[md(VNI_V)]),
        vec![Instruction::ApplyActions(tagged.clone())]
    );
    let flood = &d.groups[&flood_group(VNI_V)];
    assert_eq!(flood.buckets.last().map(|b| &b.actions), Some(&tagged));
    // The local-only group (what came from the physical network) never goes back out.
    for vni in [VNI_F, VNI_V] {
        let local = &d.groups[&local_group(vni)];
        assert!(
            local
                .buckets
                .iter()
                .all(|b| !b.actions.contains(&Action::output(PATCH_HV1))),
            "{local:?}"
        );
    }
    // What came from the patch and is not for a local port stops at the shared
    // split-horizon drop, above the flow to the physical network.
    let split = find(tables::L2_LOOKUP, 95, &[Field::Reg(6, 0, None)]);
    assert!(split.is_empty());
}

#[test]
fn provider_switches_stay_apart_on_the_physical_side() {
    // Untagged from the patch classifies to F only, VLAN 100 to V only: two flows, on
    // distinct vlan_vid values, both from the one patch port.
    let d = compiled("hv1");
    let classify: Vec<String> = d
        .flows
        .iter()
        .filter(|(k, _)| {
            k.table_id == tables::CLASSIFY && k.r#match.to_string().contains("in_port=20")
        })
        .map(|(k, c)| format!("{} {:?}", k.r#match, c.instructions))
        .collect();
    assert_eq!(classify.len(), 2, "{classify:#?}");
    assert!(
        classify
            .iter()
            .any(|f| f.contains("vlan_tci=0x0000/0x1fff")
                && f.contains(&format!("Metadata({VNI_F},"))),
        "{classify:#?}"
    );
    assert!(
        classify
            .iter()
            .any(|f| f.contains("dl_vlan=100") && f.contains(&format!("Metadata({VNI_V},"))),
        "{classify:#?}"
    );
}

#[test]
fn incremental_compiler_follows_patch_ports_and_mappings() {
    let m = model();
    let mut t = topology();
    let mut ic = IncrementalCompiler::new();
    ic.update(&m, &t);
    assert!(ic.update(&m, &t).is_empty());
    // hv4's patch port gets its ofport: only hv4 is recompiled, and now complete.
    t.nodes
        .get_mut("hv4")
        .unwrap()
        .patches
        .insert("physnet1".into(), 7);
    let changed = ic.update(&m, &t);
    assert_eq!(
        changed.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["hv4"]
    );
    assert_eq!(changed[0].1, compile_node(&m, &t, "hv4"));
    assert_eq!(changed[0].1.bound_ports, BTreeSet::from([id(0xf5)]));
    // hv3 starts mapping physnet1: recompiled, asking for the patch to its bridge.
    t.nodes
        .get_mut("hv3")
        .unwrap()
        .bridge_mappings
        .insert("physnet1".into(), "br-phys".into());
    let changed = ic.update(&m, &t);
    assert_eq!(
        changed.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["hv3"]
    );
    assert_eq!(
        changed[0]
            .1
            .patches
            .first()
            .and_then(|p| p.bridge.as_deref()),
        Some("br-phys")
    );
    assert_eq!(changed[0].1, compile_node(&m, &t, "hv3"));
}
