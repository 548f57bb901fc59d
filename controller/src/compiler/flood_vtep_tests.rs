//! Compiler tests of flood-and-learn VTEPs (docs/pipeline.md, "Flood-and-learn VTEPs"),
//! walked on the software flow table. The table does not execute `learn`, so a learned
//! flow is inserted by hand, exactly as OVS would add it; the OVS-backed tests
//! (tests/flood_vteps.rs) show OVS adding it.
//!
//! Fabric: the ordinary test fabric (tests.rs) with switch A (VNI 5001) given two flood
//! VTEPs; hv1 (a1 ofport 1, a2 2, a4 4, tunnel to hv2 10) has tunnel ports 20 and 21 to
//! them.

use crate::desired::{TunnelSpec, vtep_remote};
use std::net::IpAddr;

use openflow::{Action, Field, FlowContent, FlowKey, Instruction, Mac, Match, Nicira};

use super::table::{FlowTable, FromDesired, Packet};
use super::tests::{VNI_A, VNI_B, model, topology};
use super::*;
use crate::topology::EncapType;

const VTEP1: &str = "192.168.9.1";
const VTEP2: &str = "192.168.9.2";
const WV1: u32 = 20;
const WV2: u32 = 21;
const A1: u32 = 1;
const A2: u32 = 2;
const A4: u32 = 4;
const TO_HV2: u32 = 10;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn with_vteps(vteps: &[&str]) -> (LogicalModel, Topology) {
    let mut m = model();
    let mut a = m.find_switch("A").unwrap().clone();
    a.flood_vteps = vteps.iter().map(|s| ip(s)).collect();
    m.apply(&crate::model::Change::PutSwitch(a));
    let mut t = topology();
    let hv1 = t.nodes.get_mut("hv1").unwrap();
    hv1.tunnels.insert(vtep_remote(ip(VTEP1)), WV1);
    hv1.tunnels.insert(vtep_remote(ip(VTEP2)), WV2);
    (m, t)
}

pub(super) fn mac(s: &str) -> Mac {
    Mac(s.parse::<crate::model::MacAddr>().unwrap().0)
}

/// An IPv4 packet from a1 (port security lets it through) to `dst`.
fn from_a1(dst: Mac) -> Packet {
    unicast(A1, 0, "02:00:00:00:00:01", dst)
}

/// An IPv4 packet 10.0.0.1 → 10.0.0.200 from `src` to `dst`, arriving on `in_port`
/// (with `tun_id` when that is a tunnel).
pub(super) fn unicast(in_port: u32, tun_id: u64, src: &str, dst: Mac) -> Packet {
    Packet {
        in_port,
        tun_id,
        eth_src: mac(src),
        eth_dst: dst,
        eth_type: 0x0800,
        ip4_src: "10.0.0.1".parse().unwrap(),
        ip4_dst: "10.0.0.200".parse().unwrap(),
        ..Packet::default()
    }
}

/// An ARP request broadcast from `src`, arriving on `in_port` (with `tun_id`).
pub(super) fn broadcast_from(in_port: u32, tun_id: u64, src: &str) -> Packet {
    Packet {
        in_port,
        tun_id,
        eth_src: mac(src),
        eth_dst: Mac::BROADCAST,
        eth_type: 0x0806,
        arp_op: 1,
        arp_sha: mac(src),
        arp_spa: "10.0.0.1".parse().unwrap(),
        arp_tpa: "10.0.0.99".parse().unwrap(),
        ..Packet::default()
    }
}

/// The flow OVS's `learn` adds when a frame from `src` arrives through `ofport`.
fn learned(t: &mut FlowTable, src: &str, ofport: u32) {
    t.insert_flow(
        FlowKey {
            table_id: tables::LEARNED,
            priority: 100,
            r#match: Match::new(vec![
                Field::Metadata(u64::from(VNI_A), None),
                Field::EthDst(mac(src), None),
            ])
            .into_canonical(),
        },
        FlowContent {
            cookie: learned_cookie(VNI_A),
            instructions: vec![Instruction::ApplyActions(vec![
                Action::SetField(Field::TunnelId(u64::from(VNI_A), None)),
                Action::output(ofport),
            ])],
        },
    );
}

#[test]
fn vtep_tunnels_are_vxlan_whatever_the_node_encap() {
    let (m, t) = with_vteps(&[VTEP1, VTEP2]);
    let d = compile_node(&m, &t, "hv1");
    let vteps: Vec<&TunnelSpec> = d.tunnels.iter().filter(|s| s.vtep_ip().is_some()).collect();
    assert_eq!(vteps.len(), 2, "{:?}", d.tunnels);
    for s in vteps {
        assert_eq!(s.encap, EncapType::Vxlan);
        assert_eq!(s.local_ip, ip("192.168.0.1"));
    }
    // hv3 has no port on A: no VTEP tunnels there.
    let d3 = compile_node(&m, &t, "hv3");
    assert!(
        d3.tunnels.iter().all(|s| s.vtep_ip().is_none()),
        "{:?}",
        d3.tunnels
    );
    // Ports are complete: every tunnel port has an ofport.
    assert!(d.bound_ports.contains(&m.find_port("a1").unwrap().id));
}

#[test]
fn ports_wait_for_the_vtep_tunnel_ports() {
    let (m, mut t) = with_vteps(&[VTEP1, VTEP2]);
    t.nodes
        .get_mut("hv1")
        .unwrap()
        .tunnels
        .remove(&vtep_remote(ip(VTEP2)));
    let d = compile_node(&m, &t, "hv1");
    assert!(!d.bound_ports.contains(&m.find_port("a1").unwrap().id));
    let table = FlowTable::from_desired(&d);
    let out = table.process(&broadcast_from(A1, 0, "02:00:00:00:00:01"), 0);
    assert_eq!(out.ports(), vec![A2, A4, TO_HV2, WV1]);
}

#[test]
fn a_hypervisor_address_is_never_a_vtep() {
    let (m, t) = with_vteps(&["192.168.0.1", "192.168.0.2"]);
    let d = compile_node(&m, &t, "hv1");
    assert!(
        d.tunnels.iter().all(|s| s.vtep_ip().is_none()),
        "{:?}",
        d.tunnels
    );
}

#[test]
fn broadcast_reaches_vteps_only_from_local_ports() {
    let (m, t) = with_vteps(&[VTEP1, VTEP2]);
    let table = FlowTable::from_desired(&compile_node(&m, &t, "hv1"));
    let vni = u64::from(VNI_A);
    let local = table.process(&broadcast_from(A1, 0, "02:00:00:00:00:01"), 0);
    assert_eq!(local.ports(), vec![A2, A4, TO_HV2, WV1, WV2]);
    for e in &local.outputs {
        if e.ofport == WV1 || e.ofport == WV2 {
            assert_eq!(e.packet.tun_id, vni);
        }
    }
    // From a flood VTEP: local ports only (the VTEP replicates to every hypervisor).
    let from_vtep = table.process(&broadcast_from(WV1, vni, "0a:00:00:00:00:99"), 0);
    assert_eq!(from_vtep.ports(), vec![A1, A2, A4]);
    // From another hypervisor: it already sent its copy to the VTEPs.
    let from_hv2 = table.process(&broadcast_from(TO_HV2, vni, "02:00:00:00:00:03"), 0);
    assert_eq!(from_hv2.ports(), vec![A1, A2, A4]);
    // Another VNI on the VTEP's tunnel is not A's.
    let other = table.process(
        &broadcast_from(WV1, u64::from(VNI_B), "0a:00:00:00:00:99"),
        0,
    );
    assert!(other.outputs.is_empty(), "{:?}", other.outputs);
}

#[test]
fn unknown_unicast_goes_to_every_vtep_and_a_learned_mac_to_its_own() {
    let (m, t) = with_vteps(&[VTEP1, VTEP2]);
    let mut table = FlowTable::from_desired(&compile_node(&m, &t, "hv1"));
    let host = mac("0a:00:00:00:00:99");
    assert_eq!(table.process(&from_a1(host), 0).ports(), vec![WV1, WV2]);
    learned(&mut table, "0a:00:00:00:00:99", WV2);
    let out = table.process(&from_a1(host), 0);
    assert_eq!(out.ports(), vec![WV2]);
    assert_eq!(out.outputs[0].packet.tun_id, u64::from(VNI_A));
    // Unicast from a VTEP to a MAC behind another VTEP is not Weft's to forward.
    let mut p = from_a1(host);
    p.in_port = WV1;
    p.tun_id = u64::from(VNI_A);
    assert!(table.process(&p, 0).outputs.is_empty());
}

#[test]
fn a_vtep_cannot_steal_a_weft_mac() {
    let (m, t) = with_vteps(&[VTEP1]);
    let mut table = FlowTable::from_desired(&compile_node(&m, &t, "hv1"));
    learned(&mut table, "02:00:00:00:00:01", WV1);
    learned(&mut table, "02:00:00:00:00:03", WV1);
    let mut p = from_a1(mac("02:00:00:00:00:01"));
    p.in_port = A2;
    p.eth_src = mac("02:00:00:00:00:02");
    p.ip4_src = "10.0.0.2".parse().unwrap();
    assert_eq!(table.process(&p, 0).ports(), vec![A1]);
    // a3 is on hv2: its tunnel, not the VTEP.
    assert_eq!(
        table.process(&from_a1(mac("02:00:00:00:00:03")), 0).ports(),
        vec![TO_HV2]
    );
}

#[test]
fn switches_without_vteps_still_drop_unknown_unicast() {
    let (m, t) = with_vteps(&[VTEP1]);
    let table = FlowTable::from_desired(&compile_node(&m, &t, "hv1"));
    // b1 (ofport 3, on B) to an unknown MAC.
    let mut p = from_a1(mac("0a:00:00:00:00:99"));
    p.in_port = 3;
    assert!(table.process(&p, 0).outputs.is_empty());
}

#[test]
fn learning_is_outside_weft_cookies() {
    let (m, t) = with_vteps(&[VTEP1]);
    let d = compile_node(&m, &t, "hv1");
    let learns: Vec<&openflow::Learn> = d
        .flows
        .iter()
        .filter(|(k, _)| k.table_id == tables::CLASSIFY)
        .flat_map(|(_, c)| c.instructions.iter())
        .flat_map(|i| match i {
            Instruction::ApplyActions(a) => a.iter().collect::<Vec<_>>(),
            _ => vec![],
        })
        .filter_map(|a| match a {
            Action::Nicira(Nicira::Learn(l)) => Some(&**l),
            _ => None,
        })
        .collect();
    assert_eq!(learns.len(), 1);
    let l = learns[0];
    assert_eq!(l.table_id, tables::LEARNED);
    assert_ne!(l.cookie & COOKIE_MASK, COOKIE_WEFT);
    assert_eq!(l.idle_timeout, LEARN_IDLE_TIMEOUT_DEFAULT);
    assert!(!crate::reconcile::is_weft_cookie(l.cookie));
}

#[test]
fn trace_ends_at_the_vteps() {
    use super::trace::{OutputTarget, walk};
    let (m, t) = with_vteps(&[VTEP1, VTEP2]);
    let b = crate::binding::Bindings::compute(&m, &t);
    let tr = walk(&m, &t, &b, "hv1", from_a1(mac("0a:00:00:00:00:99")));
    assert_eq!(tr.hops.len(), 1, "{tr:?}");
    let to: Vec<&OutputTarget> = tr.hops[0].outputs.iter().map(|o| &o.to).collect();
    assert_eq!(
        to,
        vec![
            &OutputTarget::Vtep { ip: ip(VTEP1) },
            &OutputTarget::Vtep { ip: ip(VTEP2) }
        ]
    );
    assert!(tr.dropped.is_empty(), "{:?}", tr.dropped);
}
