//! Compiler tests of hardware VTEPs (docs/pipeline.md, "Hardware VTEPs"), walked on the
//! software flow table; the OVS-backed test with real packets is tests/hardware_vtep.rs.
//!
//! Fabric: the ordinary test fabric (tests.rs); switch A (VNI 5001) has a1, a2, a4 on hv1
//! and a3 on hv2 (tunnel 10). Hardware VTEP `sw1` at VTEP1 (hv1 reaches it through
//! ofport 20) has HOST behind it on A.

use crate::desired::vtep_remote;
use std::net::IpAddr;
use std::sync::Arc;

use openflow::Field;

use super::flood_vtep_tests::{broadcast_from as broadcast, mac, unicast};
use super::table::{FlowTable, FromDesired};
use super::tests::{VNI_A, VNI_B, model, topology};
use super::*;
use crate::hardware_vtep::HardwareVtepEndpoint;
use crate::topology::EncapType;

const VTEP1: &str = "192.168.9.1";
const WV1: u32 = 20;
const A1: u32 = 1;
const A2: u32 = 2;
const A4: u32 = 4;
const TO_HV2: u32 = 10;
const HOST: &str = "0a:00:00:00:00:99";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn endpoint(macs: &[&str]) -> HardwareVtepEndpoint {
    HardwareVtepEndpoint {
        vtep: "sw1".into(),
        tunnel_ip: ip(VTEP1),
        macs: macs.iter().map(|m| m.parse().unwrap()).collect(),
    }
}

/// The test fabric with switch A's hardware VTEP reporting `macs`, hv1's tunnel port to it
/// reported when `port`.
fn fabric(macs: &[&str], port: bool) -> (LogicalModel, Topology) {
    let m = model();
    let a = m.find_switch("A").unwrap().id;
    let mut t = topology();
    t.hardware_vteps = Arc::new([(a, vec![endpoint(macs)])].into());
    if port {
        let hv1 = t.nodes.get_mut("hv1").unwrap();
        hv1.tunnels.insert(vtep_remote(ip(VTEP1)), WV1);
    }
    (m, t)
}

#[test]
fn a_vtep_mac_goes_into_the_vtep_tunnel_with_the_vni() {
    let (m, t) = fabric(&[HOST], true);
    let d = compile_node(&m, &t, "hv1");
    let spec = d.tunnels.iter().find(|s| s.vtep_ip() == Some(ip(VTEP1)));
    assert_eq!(
        spec.map(|s| s.encap),
        Some(EncapType::Vxlan),
        "{:?}",
        d.tunnels
    );
    let table = FlowTable::from_desired(&d);
    let out = table.process(&unicast(A1, 0, "02:00:00:00:00:01", mac(HOST)), 0);
    assert_eq!(out.ports(), vec![WV1]);
    assert_eq!(out.outputs[0].packet.tun_id, u64::from(VNI_A));
    // From another hypervisor's tunnel: not re-sent to the VTEP (split horizon).
    let from_hv2 = unicast(TO_HV2, u64::from(VNI_A), "02:00:00:00:00:03", mac(HOST));
    assert!(table.process(&from_hv2, 0).outputs.is_empty());
    // No learning for a hardware VTEP, and no unknown-unicast flooding to it.
    assert!(!d.flows.keys().any(|k| k.table_id == tables::LEARNED));
    let unknown = unicast(A1, 0, "02:00:00:00:00:01", mac("0a:00:00:00:00:77"));
    assert!(table.process(&unknown, 0).outputs.is_empty());
    assert!(d.bound_ports.contains(&m.find_port("a1").unwrap().id));
}

#[test]
fn from_the_vtep_reaches_local_ports_only() {
    let (m, t) = fabric(&[HOST], true);
    let table = FlowTable::from_desired(&compile_node(&m, &t, "hv1"));
    let vni = u64::from(VNI_A);
    let to_a1 = unicast(WV1, vni, HOST, mac("02:00:00:00:00:01"));
    assert_eq!(table.process(&to_a1, 0).ports(), vec![A1]);
    // a3 is on hv2: the VTEP sends there itself.
    let to_a3 = unicast(WV1, vni, HOST, mac("02:00:00:00:00:03"));
    assert!(table.process(&to_a3, 0).outputs.is_empty());
    assert_eq!(
        table.process(&broadcast(WV1, vni, HOST), 0).ports(),
        vec![A1, A2, A4]
    );
    // Another VNI on the VTEP's tunnel is not A's.
    let other = table.process(&broadcast(WV1, u64::from(VNI_B), HOST), 0);
    assert!(other.outputs.is_empty(), "{:?}", other.outputs);
}

#[test]
fn broadcast_from_a_local_port_reaches_the_vtep() {
    // Bound but no MAC learned yet: flooded to all the same.
    let (m, t) = fabric(&[], true);
    let table = FlowTable::from_desired(&compile_node(&m, &t, "hv1"));
    let out = table.process(&broadcast(A1, 0, "02:00:00:00:00:01"), 0);
    assert_eq!(out.ports(), vec![A2, A4, TO_HV2, WV1]);
    let e = out.outputs.iter().find(|e| e.ofport == WV1).unwrap();
    assert_eq!(e.packet.tun_id, u64::from(VNI_A));
}

#[test]
fn ports_wait_for_the_vtep_tunnel_port() {
    let (m, t) = fabric(&[HOST], false);
    let d = compile_node(&m, &t, "hv1");
    assert!(d.tunnels.iter().any(|s| s.vtep_ip() == Some(ip(VTEP1))));
    assert!(!d.bound_ports.contains(&m.find_port("a1").unwrap().id));
    // hv3 has no port on A: no tunnel to the VTEP.
    let d3 = compile_node(&m, &t, "hv3");
    assert!(d3.tunnels.iter().all(|s| s.vtep_ip().is_none()));
}

#[test]
fn a_weft_mac_reported_by_a_vtep_stays_weft_s() {
    let (m, t) = fabric(&["02:00:00:00:00:01", "02:00:00:00:00:03", HOST], true);
    let d = compile_node(&m, &t, "hv1");
    let table = FlowTable::from_desired(&d);
    let to_a1 = unicast(A2, 0, "02:00:00:00:00:02", mac("02:00:00:00:00:01"));
    let mut to_a1 = to_a1;
    to_a1.ip4_src = "10.0.0.2".parse().unwrap();
    assert_eq!(table.process(&to_a1, 0).ports(), vec![A1]);
    let to_a3 = unicast(A1, 0, "02:00:00:00:00:01", mac("02:00:00:00:00:03"));
    assert_eq!(table.process(&to_a3, 0).ports(), vec![TO_HV2]);
    // Nothing collided: every port on hv1 is complete.
    for p in ["a1", "a2", "a4"] {
        assert!(d.bound_ports.contains(&m.find_port(p).unwrap().id), "{p}");
    }
}

#[test]
fn a_flood_vtep_at_the_same_address_shares_the_port() {
    let (mut m, t) = fabric(&[HOST], true);
    let mut a = m.find_switch("A").unwrap().clone();
    a.flood_vteps = [ip(VTEP1)].into_iter().collect();
    m.apply(&crate::model::Change::PutSwitch(a));
    let d = compile_node(&m, &t, "hv1");
    assert_eq!(
        d.tunnels.iter().filter(|s| s.vtep_ip().is_some()).count(),
        1
    );
    let table = FlowTable::from_desired(&d);
    // One bucket to it, and the MAC's static flow wins over the learned table.
    let out = table.process(&broadcast(A1, 0, "02:00:00:00:00:01"), 0);
    assert_eq!(out.ports(), vec![A2, A4, TO_HV2, WV1]);
    let out = table.process(&unicast(A1, 0, "02:00:00:00:00:01", mac(HOST)), 0);
    assert_eq!(out.ports(), vec![WV1]);
    let classify: Vec<_> = d
        .flows
        .keys()
        .filter(|k| {
            k.table_id == tables::CLASSIFY && k.r#match.fields.contains(&Field::InPort(WV1, None))
        })
        .collect();
    assert_eq!(classify.len(), 1, "{classify:?}");
    assert!(d.bound_ports.contains(&m.find_port("a1").unwrap().id));
}

#[test]
fn trace_ends_at_the_hardware_vtep() {
    use super::trace::{OutputTarget, walk};
    let (m, t) = fabric(&[HOST], true);
    let b = crate::binding::Bindings::compute(&m, &t);
    let tr = walk(
        &m,
        &t,
        &b,
        "hv1",
        unicast(A1, 0, "02:00:00:00:00:01", mac(HOST)),
    );
    let to: Vec<&OutputTarget> = tr.hops[0].outputs.iter().map(|o| &o.to).collect();
    assert_eq!(to, vec![&OutputTarget::Vtep { ip: ip(VTEP1) }]);
}

/// The incremental compiler recompiles exactly the members of a switch whose VTEP
/// endpoints changed, and its result equals a from-scratch compile.
#[test]
fn an_endpoint_change_recompiles_the_switch_s_nodes() {
    let (m, t0) = fabric(&[], true);
    let mut ic = IncrementalCompiler::new();
    ic.update(&m, &t0);
    let (_, t1) = fabric(&[HOST], true);
    let mut t1 = t1;
    t1.nodes = t0.nodes.clone();
    let got = ic.update(&m, &t1);
    let nodes: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(nodes, ["hv1", "hv2"], "the members of A, not hv3");
    for (n, d) in &got {
        assert_eq!(*d, compile_node(&m, &t1, n), "{n}");
    }
    assert!(ic.update(&m, &t1).is_empty(), "nothing changed");
    // The VTEP disconnects: its endpoints go.
    let mut t2 = t1.clone();
    t2.hardware_vteps = Arc::default();
    let got = ic.update(&m, &t2);
    assert_eq!(got.len(), 2);
    assert!(
        got.iter()
            .all(|(_, d)| d.tunnels.iter().all(|s| s.vtep_ip().is_none()))
    );
}
