//! Compiler unit tests: compile a small fabric and ask the software flow table where
//! packets go (no switch needed).
//!
//! Fabric: switch A (VNI 5001) and switch B (VNI 5002) with overlapping MACs and IPs.
//! hv1: a1, a2, a4 (port security off), b1, b2; hv2: a3; hv3: b3; hv4: nothing of ours.

use crate::desired::{TunnelSpec, vtep_remote};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use openflow::{Action, Ct, Field, FlowContent, FlowKey, Instruction, Mac, Nicira};
use uuid::Uuid;

use super::table::{FromDesired, Packet};
use super::trace::{TracePacket, trace, walk};
use super::*;
use crate::model::{Acl, AclAction, Direction, Ethertype, LogicalPort, LogicalSwitch, MacAddr};
use crate::topology::EncapType;
use crate::topology::{NodeView, Vif};

pub(super) const VNI_A: u32 = 5001;
pub(super) const VNI_B: u32 = 5002;

pub(super) fn sw(n: u128, name: &str, vni: u32) -> LogicalSwitch {
    LogicalSwitch {
        id: Uuid::from_u128(n),
        name: name.into(),
        vni,
        description: String::new(),
        provider: None,
        flood_vteps: Vec::new(),
    }
}

fn lport(n: u128, name: &str, switch: u128, key: u16, mac: &str, ips: &[&str]) -> LogicalPort {
    LogicalPort {
        id: Uuid::from_u128(n),
        name: name.into(),
        switch: Uuid::from_u128(switch),
        mac: mac.parse().unwrap(),
        ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        port_security: true,
        key,
        zone: n as u16,
    }
}

pub(super) fn model() -> LogicalModel {
    let mut a4 = lport(0x104, "a4", 0xa, 4, "02:00:00:00:00:04", &["10.0.0.4"]);
    a4.port_security = false;
    LogicalModel::from_objects(
        1,
        vec![sw(0xa, "A", VNI_A), sw(0xb, "B", VNI_B)],
        vec![
            lport(
                0x101,
                "a1",
                0xa,
                1,
                "02:00:00:00:00:01",
                &["10.0.0.1", "fd00::1"],
            ),
            lport(0x102, "a2", 0xa, 2, "02:00:00:00:00:02", &["10.0.0.2"]),
            lport(0x103, "a3", 0xa, 3, "02:00:00:00:00:03", &["10.0.0.3"]),
            a4,
            // B overlaps A: b1 has a1's MAC and IP, b2/b3 A's IPs with other MACs.
            lport(0x201, "b1", 0xb, 1, "02:00:00:00:00:01", &["10.0.0.1"]),
            lport(0x202, "b2", 0xb, 2, "02:00:00:00:00:12", &["10.0.0.2"]),
            lport(0x203, "b3", 0xb, 3, "02:00:00:00:00:13", &["10.0.0.3"]),
        ],
        vec![],
    )
    .unwrap()
}

pub(super) fn node(id: &str, ip: &str, vifs: &[(&str, u32)], tunnels: &[(&str, u32)]) -> NodeView {
    NodeView {
        id: id.into(),
        encap_ip: ip.parse().unwrap(),
        encap_type: EncapType::Geneve,
        bridge: "br-int".into(),
        datapath_id: None,
        vifs: vifs
            .iter()
            .map(|(iface, ofport)| {
                (
                    iface.to_string(),
                    Vif {
                        ofport: *ofport,
                        interface: Uuid::from_u128(u128::from(*ofport) + 0xf000),
                        name: format!("vif-{iface}"),
                    },
                )
            })
            .collect(),
        tunnels: tunnels.iter().map(|(r, o)| (r.to_string(), *o)).collect(),
        bridge_mappings: Default::default(),
        patches: Default::default(),
    }
}

pub(super) fn topology() -> Topology {
    let mut t = Topology::default();
    for n in [
        node(
            "hv1",
            "192.168.0.1",
            &[("a1", 1), ("a2", 2), ("a4", 4), ("b1", 3), ("b2", 5)],
            &[("hv2", 10), ("hv3", 11)],
        ),
        // hv2 names its VIF by the port's id, not its name.
        node(
            "hv2",
            "192.168.0.2",
            &[("00000000-0000-0000-0000-000000000103", 1)],
            &[("hv1", 10)],
        ),
        node("hv3", "192.168.0.3", &[("b3", 1)], &[("hv1", 10)]),
        node("hv4", "192.168.0.4", &[("nobody", 1)], &[]),
    ] {
        t.nodes.insert(n.id.clone(), n);
    }
    t
}

fn port<'a>(m: &'a LogicalModel, name: &str) -> &'a LogicalPort {
    m.find_port(name).unwrap()
}

fn to_mac(p: &LogicalPort) -> MacAddr {
    p.mac
}

fn ping(dst: &LogicalPort) -> TracePacket {
    TracePacket {
        eth_dst: Some(dst.mac),
        protocol: Some("icmp".into()),
        ip_dst: dst.ips.first().copied(),
        ..Default::default()
    }
}

pub(super) fn run(m: &LogicalModel, t: &Topology, from: &str, p: &TracePacket) -> trace::Trace {
    trace(m, t, None, from, p).unwrap()
}

#[test]
fn compiler_every_same_switch_pair_reaches_and_switches_are_isolated() {
    let m = model();
    let t = topology();
    let ports: Vec<&LogicalPort> = m.ports().collect();
    for src in &ports {
        for dst in &ports {
            if src.id == dst.id {
                continue;
            }
            let tr = run(&m, &t, &src.name, &ping(dst));
            for d in &tr.delivered {
                let got = port(&m, &d.port);
                assert_eq!(
                    got.switch, src.switch,
                    "{} -> {}: leaked to {}",
                    src.name, dst.name, d.port
                );
            }
            if src.switch == dst.switch {
                assert_eq!(
                    tr.delivered_ports(),
                    vec![dst.name.clone()],
                    "{} -> {}: {:#?}",
                    src.name,
                    dst.name,
                    tr
                );
                let frame = &tr.delivered[0].frame;
                assert_eq!(frame.eth_dst, Mac(to_mac(dst).0));
                assert_eq!(frame.eth_src, Mac(src.mac.0));
            } else {
                // Cross-switch: delivered only to a port of src's own switch that happens
                // to share the MAC (b1 has a1's MAC), never to dst.
                assert!(tr.delivered.iter().all(|d| d.port_id != dst.id));
            }
        }
    }
}

#[test]
fn compiler_remote_unicast_crosses_one_tunnel_with_the_vni() {
    let m = model();
    let t = topology();
    let tr = run(&m, &t, "a1", &ping(port(&m, "a3")));
    assert_eq!(tr.hops.len(), 2, "{tr:#?}");
    assert_eq!(tr.hops[0].outputs.len(), 1);
    assert_eq!(tr.hops[0].outputs[0].ofport, 10);
    assert_eq!(tr.hops[1].node, "hv2");
    assert_eq!(tr.delivered[0].frame.tun_id, u64::from(VNI_A));
    let tr = run(&m, &t, "b3", &ping(port(&m, "b1")));
    assert_eq!(tr.delivered_ports(), vec!["b1".to_string()]);
    assert_eq!(tr.delivered[0].frame.tun_id, u64::from(VNI_B));
}

fn broadcast() -> TracePacket {
    TracePacket {
        eth_dst: Some("ff:ff:ff:ff:ff:ff".parse().unwrap()),
        protocol: Some("udp".into()),
        ip_dst: Some("255.255.255.255".parse().unwrap()),
        tp_dst: Some(67),
        ..Default::default()
    }
}

#[test]
fn compiler_broadcast_reaches_exactly_the_switch_members_once() {
    let m = model();
    let t = topology();
    for src in m.ports() {
        let tr = run(&m, &t, &src.name, &broadcast());
        let mut want: Vec<String> = m
            .ports_of_switch(&src.switch)
            .filter(|p| p.id != src.id)
            .map(|p| p.name.clone())
            .collect();
        want.sort();
        assert_eq!(tr.delivered_ports(), want, "from {}: {tr:#?}", src.name);
        // One copy per remote node that has members of the switch.
        let tunnel_copies = tr.hops[0]
            .outputs
            .iter()
            .filter(|o| matches!(o.to, trace::OutputTarget::Tunnel { .. }))
            .count();
        let remote_nodes: BTreeSet<&str> = match src.name.as_str() {
            "a3" | "b3" => ["hv1"].into(),
            n if n.starts_with('a') => ["hv2"].into(),
            _ => ["hv3"].into(),
        };
        assert_eq!(tunnel_copies, remote_nodes.len(), "from {}", src.name);
    }
}

#[test]
fn compiler_broadcast_from_a_tunnel_reaches_only_local_ports() {
    let m = model();
    let t = topology();
    let b = Bindings::compute(&m, &t);
    let a3 = port(&m, "a3");
    let pkt = Packet {
        in_port: 10, // hv1's tunnel to hv2
        tun_id: u64::from(VNI_A),
        eth_src: Mac(a3.mac.0),
        eth_dst: Mac::BROADCAST,
        eth_type: 0x0806,
        arp_op: 1,
        arp_spa: "10.0.0.3".parse().unwrap(),
        arp_tpa: "10.0.0.99".parse().unwrap(),
        ..Packet::default()
    };
    let tr = walk(&m, &t, &b, "hv1", pkt.clone());
    assert_eq!(
        tr.hops.len(),
        1,
        "split horizon: nothing goes back into a tunnel"
    );
    assert_eq!(tr.delivered_ports(), vec!["a1", "a2", "a4"]);
    // Unicast from a tunnel to a MAC that is not local is dropped, not re-tunnelled.
    let mut uni = pkt.clone();
    uni.eth_dst = Mac([2, 0, 0, 0, 0, 0x13]); // b3's MAC, but VNI A
    let tr = walk(&m, &t, &b, "hv1", uni);
    assert!(tr.delivered.is_empty() && tr.hops.len() == 1, "{tr:#?}");
    // The same VNI from a tunnel that does not carry it is dropped at classify.
    let mut wrong = pkt;
    wrong.in_port = 11; // hv3 shares only B with hv1
    let tr = walk(&m, &t, &b, "hv1", wrong);
    assert!(tr.delivered.is_empty());
    assert!(tr.dropped.iter().any(|d| d.contains("table 0")), "{tr:#?}");
}

fn arp_request(tpa: &str) -> TracePacket {
    TracePacket {
        protocol: Some("arp".into()),
        arp_tpa: Some(tpa.parse().unwrap()),
        ..Default::default()
    }
}

#[test]
fn compiler_arp_for_known_ip_is_answered_locally_with_the_right_mac() {
    let m = model();
    let t = topology();
    for (src, tpa, owner) in [
        ("a1", "10.0.0.3", "a3"), // remote owner
        ("a1", "10.0.0.2", "a2"), // local owner
        ("b1", "10.0.0.3", "b3"), // same IP, other switch, other MAC
        ("b3", "10.0.0.1", "b1"),
    ] {
        let tr = run(&m, &t, src, &arp_request(tpa));
        assert_eq!(
            tr.hops.len(),
            1,
            "{src} who-has {tpa}: never leaves the node"
        );
        assert_eq!(tr.delivered_ports(), vec![src.to_string()]);
        let f = &tr.delivered[0].frame;
        let o = port(&m, owner);
        let s = port(&m, src);
        assert_eq!(f.arp_op, 2);
        assert_eq!(f.eth_src, Mac(o.mac.0));
        assert_eq!(f.arp_sha, Mac(o.mac.0));
        assert_eq!(f.arp_spa, tpa.parse::<Ipv4Addr>().unwrap());
        assert_eq!(f.eth_dst, Mac(s.mac.0));
        assert_eq!(f.arp_tha, Mac(s.mac.0));
        assert_eq!(Some(IpAddr::V4(f.arp_tpa)), s.ips.first().copied());
    }
    // Asking for its own address is not answered: it is broadcast like any request.
    let tr = run(&m, &t, "a1", &arp_request("10.0.0.1"));
    assert_eq!(tr.delivered_ports(), vec!["a2", "a3", "a4"]);
    // Unknown address: broadcast too.
    let tr = run(&m, &t, "b2", &arp_request("10.0.0.99"));
    assert_eq!(tr.delivered_ports(), vec!["b1", "b3"]);
}

#[test]
fn compiler_unknown_unicast_is_dropped() {
    let m = model();
    let t = topology();
    let tr = run(
        &m,
        &t,
        "a1",
        &TracePacket {
            eth_dst: Some("02:00:00:00:00:99".parse().unwrap()),
            protocol: Some("tcp".into()),
            ip_dst: Some("10.0.0.2".parse().unwrap()),
            tp_dst: Some(80),
            ..Default::default()
        },
    );
    assert!(tr.delivered.is_empty());
    assert!(tr.dropped.iter().any(|d| d.contains("table 30")), "{tr:#?}");
}

#[test]
fn compiler_spoofed_sources_are_dropped_unless_port_security_is_off() {
    let m = model();
    let t = topology();
    let a2 = port(&m, "a2");
    let spoofs = [
        TracePacket {
            eth_src: Some("02:00:00:00:00:66".parse().unwrap()),
            ..ping(a2)
        },
        TracePacket {
            ip_src: Some("10.0.0.66".parse().unwrap()),
            ..ping(a2)
        },
        TracePacket {
            arp_spa: Some("10.0.0.2".parse().unwrap()),
            ..arp_request("10.0.0.3")
        },
        TracePacket {
            arp_sha: Some("02:00:00:00:00:66".parse().unwrap()),
            ..arp_request("10.0.0.3")
        },
        TracePacket {
            eth_dst: Some(a2.mac),
            protocol: Some("ipv6".into()),
            ip_src: Some("fd00::66".parse().unwrap()),
            ip_dst: Some("fd00::2".parse().unwrap()),
            ..Default::default()
        },
    ];
    for p in &spoofs {
        let tr = run(&m, &t, "a1", p);
        assert!(tr.delivered.is_empty(), "spoof passed: {p:?}");
        assert!(tr.dropped.iter().any(|d| d.contains("table 10")), "{tr:#?}");
        // a4 has port security off: the same packet passes.
        let tr = run(&m, &t, "a4", p);
        assert!(!tr.delivered.is_empty(), "a4 should pass {p:?}: {tr:#?}");
    }
}

#[test]
fn compiler_ipv6_own_link_local_dad_and_neighbour_discovery_pass() {
    let m = model();
    let t = topology();
    let a1 = port(&m, "a1");
    let a2 = port(&m, "a2");
    let v6 = |src: &str, dst: &str, eth_dst: MacAddr| TracePacket {
        eth_dst: Some(eth_dst),
        protocol: Some("icmp6".into()),
        ip_src: Some(src.parse().unwrap()),
        ip_dst: Some(dst.parse().unwrap()),
        ..Default::default()
    };
    // ping -6 to a2's MAC from the global and the link-local address.
    for src in ["fd00::1", &link_local(a1.mac).to_string()] {
        let tr = run(&m, &t, "a1", &v6(src, "fd00::2", a2.mac));
        assert_eq!(tr.delivered_ports(), vec!["a2"], "from {src}");
    }
    // DAD neighbour solicitation from :: to the solicited-node multicast group.
    let mcast: MacAddr = "33:33:ff:00:00:01".parse().unwrap();
    let dad = TracePacket {
        icmp_type: Some(135),
        nd_target: Some("fd00::1".parse().unwrap()),
        ..v6("::", "ff02::1:ff00:1", mcast)
    };
    assert_eq!(
        run(&m, &t, "a1", &dad).delivered_ports(),
        vec!["a2", "a3", "a4"]
    );
    // Neighbour advertisement for its own address, with and without the TLL option.
    for tll in [Some(a1.mac), None] {
        let na = TracePacket {
            icmp_type: Some(136),
            nd_target: Some("fd00::1".parse().unwrap()),
            nd_tll: tll,
            ..v6("fd00::1", "fd00::2", a2.mac)
        };
        assert_eq!(run(&m, &t, "a1", &na).delivered_ports(), vec!["a2"]);
    }
    // ... but not for somebody else's address, nor with another link-layer address.
    for (target, tll) in [("fd00::2", Some(a1.mac)), ("fd00::1", Some(a2.mac))] {
        let na = TracePacket {
            icmp_type: Some(136),
            nd_target: Some(target.parse().unwrap()),
            nd_tll: tll,
            ..v6("fd00::1", "fd00::2", a2.mac)
        };
        assert!(run(&m, &t, "a1", &na).delivered.is_empty(), "{target}");
    }
    // a2 has no IPv6 address: its IPv6 is dropped (it has IPs, so IP families are checked).
    let tr = run(
        &m,
        &t,
        "a2",
        &v6(&link_local(a2.mac).to_string(), "fd00::1", a1.mac),
    );
    assert!(tr.delivered.is_empty());
}

#[test]
fn compiler_moved_port_is_claimed_by_exactly_one_node() {
    let m = model();
    let mut t = topology();
    // a3 shows up on hv3 too (migration in progress), and on hv2 under its name as well.
    t.nodes.get_mut("hv3").unwrap().vifs.insert(
        "a3".into(),
        node("x", "1.1.1.1", &[("a3", 7)], &[]).vifs["a3"].clone(),
    );
    let claims = |t: &Topology| -> Vec<String> {
        ["hv1", "hv2", "hv3", "hv4"]
            .into_iter()
            .filter(|n| {
                compile_node(&m, t, n)
                    .bound_ports
                    .contains(&Uuid::from_u128(0x103))
            })
            .map(String::from)
            .collect()
    };
    assert_eq!(claims(&t), vec!["hv2"]);
    let hv3 = compile_node(&m, &t, "hv3");
    assert!(
        !hv3.flows
            .keys()
            .any(|k| k.r#match.fields.contains(&Field::InPort(7, None))),
        "hv3 must not program a3"
    );
    // Once hv2 lets go, hv3 claims it.
    t.nodes.get_mut("hv2").unwrap().vifs.clear();
    assert_eq!(claims(&t), vec!["hv3"]);
}

#[test]
fn compiler_tunnel_set_is_exactly_the_sharing_nodes() {
    let m = model();
    let t = topology();
    let remotes = |n: &str| -> Vec<String> {
        compile_node(&m, &t, n)
            .tunnels
            .iter()
            .map(|s| s.remote.clone())
            .collect()
    };
    assert_eq!(remotes("hv1"), vec!["hv2", "hv3"]);
    assert_eq!(remotes("hv2"), vec!["hv1"]);
    assert_eq!(remotes("hv3"), vec!["hv1"]);
    assert!(remotes("hv4").is_empty());
    let spec = compile_node(&m, &t, "hv2")
        .tunnels
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(
        spec,
        TunnelSpec {
            remote: "hv1".into(),
            remote_ip: "192.168.0.1".parse().unwrap(),
            local_ip: "192.168.0.2".parse().unwrap(),
            encap: EncapType::Geneve,
        }
    );
}

#[test]
fn compiler_node_without_bound_ports_gets_nothing() {
    let m = model();
    let t = topology();
    assert_eq!(compile_node(&m, &t, "hv4"), DesiredNode::default());
    assert_eq!(compile_node(&m, &t, "no-such-node"), DesiredNode::default());
}

#[test]
fn compiler_unknown_tunnel_ofport_leaves_remote_flows_out_until_reported() {
    let m = model();
    let mut t = topology();
    t.nodes.get_mut("hv1").unwrap().tunnels.remove("hv2");
    let d = compile_node(&m, &t, "hv1");
    // Still asks for the tunnel ...
    assert!(d.tunnels.iter().any(|s| s.remote == "hv2"));
    // ... but nothing outputs to it, a3's MAC is unknown and the flood group has no bucket.
    let a3_mac = Field::EthDst(Mac([2, 0, 0, 0, 0, 3]), None);
    assert!(!d.flows.keys().any(|k| k.r#match.fields.contains(&a3_mac)));
    let flood = &d.groups[&flood_group(VNI_A)];
    assert_eq!(flood.buckets.len(), 3, "a1, a2, a4 only");
    // Ports of the switch that needs the missing tunnel are not complete (DESIGN §3:
    // `weft-installed` only once the tunnels its switches need have an ofport); the
    // other switch's are.
    let names: BTreeSet<&str> = d
        .bound_ports
        .iter()
        .map(|id| m.port(id).unwrap().name.as_str())
        .collect();
    assert_eq!(names, ["b1", "b2"].into());
    let with_tunnel = compile_node(&m, &topology(), "hv1");
    let names: BTreeSet<&str> = with_tunnel
        .bound_ports
        .iter()
        .map(|id| m.port(id).unwrap().name.as_str())
        .collect();
    assert_eq!(names, ["a1", "a2", "a4", "b1", "b2"].into());
    // A ping to a3 is dropped for now; broadcast reaches the locals.
    let tr = run(&m, &t, "a1", &ping(port(&m, "a3")));
    assert!(tr.delivered.is_empty());
    assert_eq!(
        run(&m, &t, "a1", &broadcast()).delivered_ports(),
        vec!["a2", "a4"]
    );
}

#[test]
fn compiler_is_deterministic_and_tags_every_flow() {
    let m = model();
    let t = topology();
    for n in ["hv1", "hv2", "hv3"] {
        let a = compile_node(&m, &t, n);
        let b = compile_node(&m, &t, n);
        assert_eq!(a, b);
        assert_eq!(a.flows_text(), b.flows_text());
        assert!(!a.flows.is_empty());
        for c in a.flows.values() {
            assert_eq!(c.cookie & COOKIE_MASK, COOKIE_WEFT);
        }
    }
    // The same topology built in another order compiles the same.
    let mut t2 = Topology::default();
    for (k, v) in t.nodes.iter().rev() {
        t2.nodes.insert(k.clone(), v.clone());
    }
    assert_eq!(compile_node(&m, &t, "hv1"), compile_node(&m, &t2, "hv1"));
    // Port flows carry the port's cookie; groups are numbered from the VNI.
    let d = compile_node(&m, &t, "hv1");
    let a1 = cookie_for(&Uuid::from_u128(0x101));
    assert_eq!(a1, 0x5745_0000_0000_0101);
    assert!(d.flows.iter().any(|(k, c)| {
        k.table_id == tables::OUTPUT
            && c.cookie == a1
            && c.instructions == vec![Instruction::ApplyActions(vec![Action::output(1)])]
    }));
    let ids: Vec<u32> = d.groups.keys().copied().collect();
    assert_eq!(ids, vec![10002, 10003, 10004, 10005]);
}

#[test]
fn compiler_fingerprint_names_only_nodes_whose_inputs_changed() {
    let m = model();
    let t = topology();
    assert!(nodes_affected(&m, &m, &t, &t).is_empty());
    // Changing a3's addresses touches switch A's nodes, not hv3 (B only) or hv4.
    let mut ports: Vec<LogicalPort> = m.ports().cloned().collect();
    for p in &mut ports {
        if p.name == "a3" {
            p.ips = vec!["10.0.0.33".parse().unwrap()];
        }
    }
    let m2 = LogicalModel::from_objects(2, m.switches().cloned().collect(), ports, vec![]).unwrap();
    let got = nodes_affected(&m, &m2, &t, &t);
    assert_eq!(got, ["hv1", "hv2"].into_iter().map(String::from).collect());
    // And a node compiles differently exactly when its fingerprint changes.
    for n in ["hv1", "hv2", "hv3", "hv4"] {
        let changed = compile_node(&m, &t, n) != compile_node(&m2, &t, n);
        assert_eq!(changed, got.contains(n), "{n}");
    }
    // A VIF nobody claims changes nothing; hv3's tunnel to hv1 going away touches hv3.
    let mut t2 = t.clone();
    t2.nodes
        .get_mut("hv4")
        .unwrap()
        .vifs
        .insert("stranger".into(), t.nodes["hv4"].vifs["nobody"].clone());
    assert!(nodes_affected(&m, &m, &t, &t2).is_empty());
    t2.nodes.get_mut("hv3").unwrap().tunnels.clear();
    assert_eq!(
        nodes_affected(&m, &m, &t, &t2),
        ["hv3".to_string()].into_iter().collect::<BTreeSet<_>>()
    );
}

#[allow(clippy::too_many_arguments)] // a test table row, read positionally
fn acl(
    n: u128,
    port: u128,
    direction: Direction,
    priority: u16,
    action: AclAction,
    protocol: Option<crate::model::Protocol>,
    cidr: Option<&str>,
    ports: Option<(u16, u16)>,
) -> Acl {
    Acl {
        id: Uuid::from_u128(n),
        port: Uuid::from_u128(port),
        direction,
        priority,
        protocol,
        ethertype: Ethertype::Ipv4,
        remote_cidr: cidr.map(|c| crate::model::parse_cidr(c).unwrap()),
        port_min: ports.map(|p| p.0),
        port_max: ports.map(|p| p.1),
        action,
    }
}

/// The unit-test fabric plus ACLs: a2 may only open TCP 8000-8080 into 10.0.0.0/24;
/// a1 admits ICMP from 10.0.0.0/24 except from a3, and DNS over UDP statelessly.
pub(super) fn model_with_acls() -> LogicalModel {
    use crate::model::Protocol::*;
    let m = model();
    LogicalModel::from_objects(
        2,
        m.switches().cloned().collect(),
        m.ports().cloned().collect(),
        vec![
            acl(
                0x301,
                0x102,
                Direction::Egress,
                10,
                AclAction::AllowRelated,
                Some(Tcp),
                Some("10.0.0.0/24"),
                Some((8000, 8080)),
            ),
            acl(
                0x302,
                0x101,
                Direction::Ingress,
                5,
                AclAction::AllowRelated,
                Some(Icmp),
                Some("10.0.0.0/24"),
                None,
            ),
            acl(
                0x303,
                0x101,
                Direction::Ingress,
                20,
                AclAction::Drop,
                Some(Icmp),
                Some("10.0.0.3"),
                None,
            ),
            acl(
                0x304,
                0x101,
                Direction::Ingress,
                1,
                AclAction::Allow,
                Some(Udp),
                None,
                Some((53, 53)),
            ),
        ],
    )
    .unwrap()
}

fn tcp(dst: &LogicalPort, port: u16) -> TracePacket {
    TracePacket {
        eth_dst: Some(dst.mac),
        protocol: Some("tcp".into()),
        ip_dst: dst.ips.first().copied(),
        tp_dst: Some(port),
        ..Default::default()
    }
}

#[test]
fn compiler_acl_egress_allows_only_the_admitted_connections() {
    let m = model_with_acls();
    let t = topology();
    let a3 = port(&m, "a3");
    for (p, ok) in [
        (8000, true),
        (8063, true),
        (8064, true),
        (8080, true),
        (7999, false),
        (8081, false),
        (9000, false),
    ] {
        let tr = run(&m, &t, "a2", &tcp(a3, p));
        assert_eq!(!tr.delivered.is_empty(), ok, "a2 -> a3 tcp {p}: {tr:#?}");
    }
    // Other protocols from a2 are dropped; ARP still works; a1 (no egress ACL) is free.
    assert!(run(&m, &t, "a2", &ping(a3)).delivered.is_empty());
    assert_eq!(
        run(&m, &t, "a2", &arp_request("10.0.0.3")).delivered_ports(),
        vec!["a2"]
    );
    assert_eq!(
        run(&m, &t, "a4", &tcp(a3, 9000)).delivered_ports(),
        vec!["a3"]
    );
}

#[test]
fn compiler_acl_ingress_priorities_stateless_allow_and_replies() {
    let m = model_with_acls();
    let t = topology();
    let a1 = port(&m, "a1");
    // ICMP from a4 is admitted; from a3 the higher-priority drop wins.
    assert_eq!(run(&m, &t, "a4", &ping(a1)).delivered_ports(), vec!["a1"]);
    assert!(run(&m, &t, "a3", &ping(a1)).delivered.is_empty());
    // Stateless UDP 53 passes, UDP 54 and new TCP do not.
    let udp = |p: u16| TracePacket {
        protocol: Some("udp".into()),
        tp_dst: Some(p),
        ..ping(a1)
    };
    assert_eq!(run(&m, &t, "a4", &udp(53)).delivered_ports(), vec!["a1"]);
    assert!(run(&m, &t, "a4", &udp(54)).delivered.is_empty());
    assert!(run(&m, &t, "a4", &tcp(a1, 22)).delivered.is_empty());
    // A reply to a connection a1 opened (through its open egress: conntrack says +est
    // with the open-direction mark) passes; +inv never does; nor does +est traffic of a
    // connection with no mark or with the mark of a rule that no longer exists.
    let b = Bindings::compute(&m, &t);
    let table = table::FlowTable::from_desired(&compile_node_with(&m, &t, &b, "hv1"));
    let mut pkt = tcp(a1, 22).build(port(&m, "a4")).unwrap();
    pkt.in_port = 4;
    use table::ct_state::*;
    let open = OPEN_DIRECTION_MARK;
    assert_eq!(table.process_ct(&pkt, TRK | EST, open).ports(), vec![1]);
    assert_eq!(table.process_ct(&pkt, TRK | REL, open).ports(), vec![1]);
    assert!(table.process(&pkt, TRK | NEW).ports().is_empty());
    assert!(
        table
            .process_ct(&pkt, TRK | INV | EST, open)
            .ports()
            .is_empty()
    );
    assert!(table.process(&pkt, TRK | EST).ports().is_empty());
    let gone = acl_mark(&Uuid::from_u128(0x399));
    assert!(table.process_ct(&pkt, TRK | EST, gone).ports().is_empty());
    // ICMP admitted by a1's ingress allow-related (0x302): its replies leave a1.
    let mut back = ping(port(&m, "a4")).build(a1).unwrap();
    back.in_port = 1;
    let icmp = acl_mark(&Uuid::from_u128(0x302));
    assert_eq!(table.process_ct(&back, TRK | EST, icmp).ports(), vec![4]);
    // IPv6 neighbour discovery reaches a1 despite its (IPv4) ACLs; other IPv6 does not.
    let v6 = |icmp_type: u8| TracePacket {
        eth_dst: Some(a1.mac),
        protocol: Some("icmp6".into()),
        ip_dst: Some("fd00::1".parse().unwrap()),
        icmp_type: Some(icmp_type),
        nd_target: Some("fd00::1".parse().unwrap()),
        ..Default::default()
    };
    assert_eq!(run(&m, &t, "a4", &v6(135)).delivered_ports(), vec!["a1"]);
    assert!(run(&m, &t, "a4", &v6(128)).delivered.is_empty());
}

#[test]
fn compiler_acl_flows_only_for_ports_with_acls() {
    let m = model_with_acls();
    let t = topology();
    let d = compile_node(&m, &t, "hv1");
    let ct_ports: BTreeSet<(u8, u32)> = d
        .flows
        .iter()
        .filter(|(k, _)| {
            matches!(k.table_id, tables::EGRESS_ACL | tables::INGRESS_ACL) && k.priority == 100
        })
        .filter_map(|(k, _)| {
            k.r#match.fields.iter().find_map(|f| match f {
                Field::Reg(r @ (6 | 7), v, None) => Some((*r, *v)),
                _ => None,
            })
        })
        .collect();
    // a1 (key 1, ingress ACLs) and a2 (key 2, egress ACLs), in both directions (the open
    // direction commits); a4 (no ACLs) never meets conntrack.
    assert_eq!(ct_ports, [(6, 1), (6, 2), (7, 1), (7, 2)].into());
    // The 8000-8080 range is three masked matches; ACL flows carry the ACL's cookie.
    // An allow-related ACL also owns two flows (one per direction of its port) that pass
    // the established and related packets of connections carrying its mark, and go away
    // with it.
    let flows: Vec<(&FlowKey, &FlowContent)> = d
        .flows
        .iter()
        .filter(|(_, c)| c.cookie == cookie_for(&Uuid::from_u128(0x301)))
        .map(|(k, c)| (&**k, &**c))
        .collect();
    // All of them sit at the rule's priority (1000 + 10), so that a higher-priority drop
    // wins over the pass flows too.
    assert!(flows.iter().all(|(k, _)| k.priority == 1010));
    let mark = Field::CtMark(acl_mark(&Uuid::from_u128(0x301)), None);
    let (est, range): (Vec<&FlowKey>, Vec<&FlowKey>) = flows
        .iter()
        .map(|(k, _)| *k)
        .partition(|k| k.r#match.fields.contains(&mark));
    assert_eq!(range.len(), 3);
    assert!(range.iter().all(|k| k.table_id == tables::EGRESS_ACL_CT));
    assert_eq!(est.len(), 2);
    assert_eq!(flows.len(), 5);
    // A drop compiles to one flow for new connections and one that cuts established
    // ones (per port-range mask).
    let drop_flows = d
        .flows
        .iter()
        .filter(|(_, c)| c.cookie == cookie_for(&Uuid::from_u128(0x303)))
        .count();
    assert_eq!(drop_flows, 2);
}

/// A port with ACLs in one direction only commits every new connection in the open
/// direction, so replies to what the VM opened there are `+est` in the restricted one.
#[test]
fn compiler_acl_open_direction_commits_so_replies_pass_the_restricted_one() {
    let m = model_with_acls();
    let t = topology();
    let b = Bindings::compute(&m, &t);
    let d = compile_node_with(&m, &t, &b, "hv1");
    let commits = |table: u8, reg: u8, key: u32| -> usize {
        d.flows
            .iter()
            .filter(|(k, c)| {
                k.table_id == table
                    && k.priority == OPEN_DIRECTION_PRIORITY
                    && k.r#match.fields.contains(&Field::Reg(reg, key, None))
                    && c.instructions.iter().any(|i| match i {
                        Instruction::ApplyActions(a) => a.iter().any(|a| {
                            matches!(a, Action::Nicira(Nicira::Ct(ct)) if ct.flags & Ct::COMMIT != 0)
                        }),
                        _ => false,
                    })
            })
            .count()
    };
    // a1 has only ingress ACLs: its egress commits; a2 only egress: its ingress commits
    // (one flow per IP family).
    assert_eq!(commits(tables::EGRESS_ACL_CT, 6, 1), 2);
    assert_eq!(commits(tables::INGRESS_ACL_CT, 7, 2), 2);
    // The restricted directions do not have that flow, nor does a4 (no ACLs) anywhere.
    assert_eq!(commits(tables::INGRESS_ACL_CT, 7, 1), 0);
    assert_eq!(commits(tables::EGRESS_ACL_CT, 6, 2), 0);
    assert_eq!(commits(tables::EGRESS_ACL_CT, 6, 4), 0);
    assert_eq!(commits(tables::INGRESS_ACL_CT, 7, 4), 0);

    let table = table::FlowTable::from_desired(&d);
    use table::ct_state::*;
    // a1 opens TCP 22 to a4 (new, committed in a1's zone by the open egress) ...
    let mut out = tcp(port(&m, "a4"), 22).build(port(&m, "a1")).unwrap();
    out.in_port = 1;
    assert_eq!(table.process(&out, TRK | NEW).ports(), vec![4]);
    // ... and a4's reply, +est in a1's zone, passes a1's restricted ingress, while the
    // same packet as a new connection does not.
    let mut reply = tcp(port(&m, "a1"), 40000).build(port(&m, "a4")).unwrap();
    reply.in_port = 4;
    assert_eq!(
        table
            .process_ct(&reply, TRK | EST, OPEN_DIRECTION_MARK)
            .ports(),
        vec![1]
    );
    assert!(table.process(&reply, TRK | NEW).ports().is_empty());
    // a2's open ingress admits a new connection from a4 (and commits it).
    let mut to_a2 = tcp(port(&m, "a2"), 22).build(port(&m, "a4")).unwrap();
    to_a2.in_port = 4;
    assert_eq!(table.process(&to_a2, TRK | NEW).ports(), vec![2]);
}

/// Once both directions of a port have ACLs, nothing is open any more: the open-direction
/// commit and the flows passing its mark go away, so connections the VM opened while
/// that direction was open are cut like those of a deleted ACL.
#[test]
fn compiler_acl_closing_the_open_direction_revokes_its_connections() {
    let m = model_with_acls();
    let t = topology();
    let open_mark = Field::CtMark(OPEN_DIRECTION_MARK, None);
    let open_flows = |m: &LogicalModel| -> usize {
        compile_node(m, &t, "hv1")
            .flows
            .iter()
            .filter(|(k, _)| {
                k.r#match.fields.contains(&Field::Reg(6, 1, None))
                    || k.r#match.fields.contains(&Field::Reg(7, 1, None))
            })
            .filter(|(k, c)| {
                k.r#match.fields.contains(&open_mark)
                    || (k.priority == OPEN_DIRECTION_PRIORITY
                        && c.cookie == cookie_for(&port(m, "a1").id))
            })
            .count()
    };
    // a1 (ingress ACLs only): the open mark's pass flow in both tables, plus the commit
    // (IPv4 and IPv6) in its open egress.
    assert_eq!(open_flows(&m), 4);
    let mut acls: Vec<Acl> = m.acls().cloned().collect();
    acls.push(acl(
        0x305,
        0x101,
        Direction::Egress,
        1,
        AclAction::AllowRelated,
        Some(crate::model::Protocol::Tcp),
        None,
        None,
    ));
    let closed = LogicalModel::from_objects(
        3,
        m.switches().cloned().collect(),
        m.ports().cloned().collect(),
        acls,
    )
    .unwrap();
    assert_eq!(open_flows(&closed), 0);
    let b = Bindings::compute(&closed, &t);
    let table = table::FlowTable::from_desired(&compile_node_with(&closed, &t, &b, "hv1"));
    let a1 = port(&closed, "a1");
    let mut reply = tcp(a1, 40000).build(port(&closed, "a4")).unwrap();
    reply.in_port = 4;
    use table::ct_state::*;
    assert!(
        table
            .process_ct(&reply, TRK | EST, OPEN_DIRECTION_MARK)
            .ports()
            .is_empty()
    );
    let new_rule = acl_mark(&Uuid::from_u128(0x305));
    assert_eq!(
        table.process_ct(&reply, TRK | EST, new_rule).ports(),
        vec![1]
    );
}

/// A drop is evaluated for established traffic too: a higher-priority drop matching a
/// connection that an `allow-related` rule admitted cuts it (the packet is dropped and the
/// connection re-committed with the blocked mark, which nothing passes, so its replies
/// stop too); a lower-priority drop does not; and replies to what the port opened are
/// never matched by a drop of the other direction.
#[test]
fn compiler_acl_higher_priority_drop_cuts_established_connections() {
    use crate::model::Protocol::Tcp;
    use table::ct_state::*;
    let base = model_with_acls();
    let t = topology();
    let with = |extra: Vec<Acl>| {
        let mut acls: Vec<Acl> = base.acls().cloned().collect();
        acls.extend(extra);
        LogicalModel::from_objects(
            3,
            base.switches().cloned().collect(),
            base.ports().cloned().collect(),
            acls,
        )
        .unwrap()
    };
    let drop_to_a3 = |n: u128, priority: u16| {
        acl(
            n,
            0x102,
            Direction::Egress,
            priority,
            AclAction::Drop,
            Some(Tcp),
            Some("10.0.0.3/32"),
            None,
        )
    };
    // Everything runs on hv1 (a1, a2, a4); a3 is on hv2, its packets arrive by tunnel.
    let on_hv1 = |m: &LogicalModel, from: &str, p: &TracePacket, state: u32, mark: u32| {
        let b = Bindings::compute(m, &t);
        let table = table::FlowTable::from_desired(&compile_node_with(m, &t, &b, "hv1"));
        let mut pkt = p.build(port(m, from)).unwrap();
        if from == "a3" {
            pkt.in_port = 10;
            pkt.tun_id = 5001;
        } else {
            pkt.in_port = b.ports[&port(m, from).id].ofport;
        }
        table.process_ct(&pkt, state, mark)
    };
    let passes = |m: &LogicalModel, from: &str, to: &str, state: u32, mark: u32| -> bool {
        let p = tcp(port(m, to), 8000);
        !on_hv1(m, from, &p, state, mark).outputs.is_empty()
    };
    let admitted = acl_mark(&Uuid::from_u128(0x301));
    // a2's TCP 8000 stream to a3, admitted by 0x301 (priority 10), flows both ways.
    assert!(passes(&base, "a2", "a3", TRK | EST, admitted));
    assert!(passes(&base, "a3", "a2", TRK | EST | RPL, admitted));
    // A lower-priority drop leaves it alone (it refuses only new connections that
    // nothing above it admits).
    let low = with(vec![drop_to_a3(0x306, 5)]);
    assert!(passes(&low, "a2", "a3", TRK | EST, admitted));
    // A higher-priority drop cuts it: a2's next packet is dropped and re-commits the
    // connection with the blocked mark ...
    let high = with(vec![drop_to_a3(0x306, 20)]);
    assert!(!passes(&high, "a2", "a3", TRK | NEW, 0));
    let out = on_hv1(
        &high,
        "a2",
        &tcp(port(&high, "a3"), 8000),
        TRK | EST,
        admitted,
    );
    assert!(out.outputs.is_empty());
    let last = out.steps.last().and_then(|s| s.flow.clone()).unwrap();
    assert!(
        last.contains("commit") && last.contains("0x2->ct_mark"),
        "{last}"
    );
    // ... after which nothing of it passes in either direction, whatever rules exist.
    for m in [&base, &high] {
        assert!(!passes(m, "a2", "a3", TRK | EST, BLOCKED_MARK));
        assert!(!passes(m, "a3", "a2", TRK | EST | RPL, BLOCKED_MARK));
    }
    // Other connections of the same rule keep flowing (a4 is outside the drop's /32).
    assert!(passes(&high, "a2", "a4", TRK | EST, admitted));
    // a1's ingress drop of ICMP from a3 cuts ICMP that a3 started (once admitted by the
    // lower-priority 0x302), not the replies to pings a1 sent through its open egress.
    let ping_a1 = ping(port(&base, "a1"));
    let icmp = acl_mark(&Uuid::from_u128(0x302));
    assert!(
        on_hv1(&base, "a3", &ping_a1, TRK | EST, icmp)
            .outputs
            .is_empty()
    );
    assert!(
        !on_hv1(&base, "a4", &ping_a1, TRK | EST, icmp)
            .outputs
            .is_empty()
    );
    let open = OPEN_DIRECTION_MARK;
    assert!(
        !on_hv1(&base, "a3", &ping_a1, TRK | EST | RPL, open)
            .outputs
            .is_empty()
    );
}

/// When a switch refuses an ACL's flows the node runs without them, fail closed: an
/// allow's traffic meets the default deny; a drop takes the allow rules below it along
/// (withholding the drop alone would admit what it blocks).
#[test]
fn compiler_acl_withheld_on_refusal_fails_closed() {
    let m = model_with_acls();
    let t = topology();
    let d = compile_node(&m, &t, "hv1");
    let c = |n: u128| cookie_for(&Uuid::from_u128(n));
    assert_eq!(d.acls[&c(0x301)].withhold, [c(0x301)].into());
    // a1's ingress drop (20) sits above the ICMP allow-related (5) and the UDP allow (1).
    assert_eq!(
        d.acls[&c(0x303)].withhold,
        [c(0x302), c(0x303), c(0x304)].into()
    );
    assert_eq!(d.acls[&c(0x303)].port, Uuid::from_u128(0x101));
    let without = d.without_acls(&[c(0x303)].into());
    assert!(
        without
            .flows
            .values()
            .all(|f| ![c(0x302), c(0x303), c(0x304)].contains(&f.cookie))
    );
    assert_eq!(
        without.acls.keys().copied().collect::<Vec<_>>(),
        vec![c(0x301)]
    );
    // Fail closed: with its rules withheld, a1's ingress admits nothing new (ICMP from
    // a4 and stateless UDP 53 no longer pass) and the port's other flows stay.
    let table = table::FlowTable::from_desired(&without);
    let mut p = ping(port(&m, "a1")).build(port(&m, "a4")).unwrap();
    p.in_port = 4;
    assert!(
        table
            .process(&p, table::ct_state::TRK | table::ct_state::NEW)
            .outputs
            .is_empty()
    );
    let full = table::FlowTable::from_desired(&d);
    assert_eq!(
        full.process(&p, table::ct_state::TRK | table::ct_state::NEW)
            .ports(),
        vec![1]
    );
    assert!(without.bound_ports.contains(&Uuid::from_u128(0x101)));
}

/// `trace` names every ACL decision: the rule (id, priority, action) that admitted or
/// dropped the packet, or that conntrack state, the open direction or the default deny
/// decided it.
#[test]
fn compiler_trace_names_the_acl_decision() {
    let m = model_with_acls();
    let t = topology();
    let a1 = port(&m, "a1");
    let one = |from: &str, p: &TracePacket| -> trace::AclDecision {
        let tr = run(&m, &t, from, p);
        let v: Vec<&trace::AclDecision> = tr.acl.iter().filter(|d| d.port == "a1").collect();
        assert_eq!(v.len(), 1, "{:#?}", tr.acl);
        v[0].clone()
    };
    // New ICMP from a4: admitted by the allow-related 0x302 (priority 5).
    let d = one("a4", &ping(a1));
    assert_eq!(
        (d.verdict, d.by, d.conntrack.as_str()),
        ("allow", "acl", "new")
    );
    assert_eq!(d.direction, Direction::Ingress);
    let rule = d.rule.unwrap();
    assert_eq!(
        (rule.id, rule.priority, rule.action),
        (Uuid::from_u128(0x302), 5, AclAction::AllowRelated)
    );
    // From a3 the drop 0x303 (20) wins; TCP 22 meets the default deny.
    let d = one("a3", &ping(a1));
    assert_eq!((d.verdict, d.by), ("drop", "acl"));
    assert_eq!(d.rule.unwrap().id, Uuid::from_u128(0x303));
    let d = one("a4", &tcp(a1, 22));
    assert_eq!((d.verdict, d.by), ("drop", "default_deny"));
    // Conntrack decides: an established connection admitted by 0x302 passes through its
    // mark; from a3 the drop above it cuts it; an unmarked one has no live rule; +inv.
    let est = |acl: Option<u128>| TracePacket {
        ct_state: Some("est".into()),
        ct_acl: acl.map(Uuid::from_u128).into_iter().collect(),
        ..ping(a1)
    };
    let d = one("a4", &est(Some(0x302)));
    assert_eq!(
        (d.verdict, d.by, d.conntrack.as_str()),
        ("allow", "acl", "est")
    );
    assert_eq!(d.rule.unwrap().id, Uuid::from_u128(0x302));
    let d = one("a3", &est(Some(0x302)));
    assert_eq!((d.verdict, d.by), ("drop", "acl"));
    assert_eq!(d.rule.unwrap().action, AclAction::Drop);
    let d = one("a4", &est(None));
    assert_eq!((d.verdict, d.by), ("drop", "no_live_rule"));
    let inv = TracePacket {
        ct_state: Some("inv".into()),
        ..ping(a1)
    };
    assert_eq!(one("a4", &inv).by, "invalid");
    // a1's own egress is open: its new connection is admitted and committed there.
    let tr = run(&m, &t, "a1", &tcp(port(&m, "a4"), 22));
    let d = &tr.acl[0];
    assert_eq!(
        (d.port.as_str(), d.direction, d.by),
        ("a1", Direction::Egress, "open_direction")
    );
    // Bad conntrack input names its field.
    let bad = TracePacket {
        ct_state: Some("est+new".into()),
        ..ping(a1)
    };
    assert!(matches!(
        trace(&m, &t, None, "a4", &bad),
        Err(trace::TraceError::BadPacket {
            field: "ct_state",
            ..
        })
    ));
}

#[test]
fn compiler_port_ranges_compile_to_minimal_exact_masks() {
    assert_eq!(port_masks(0, 65535), vec![(0, 0)]);
    assert_eq!(port_masks(80, 80), vec![(80, 0xffff)]);
    assert_eq!(
        port_masks(8000, 8080),
        vec![(8000, 0xffc0), (8064, 0xfff0), (8080, 0xffff)]
    );
    assert_eq!(port_masks(1, 65535).len(), 16);
    assert_eq!(port_masks(1024, 65535).len(), 6);
    for (lo, hi) in [
        (0, 0),
        (1, 2),
        (3, 17),
        (1000, 1999),
        (65535, 65535),
        (0, 32768),
        (33, 65534),
    ] {
        let masks = port_masks(lo, hi);
        for p in 0..=u16::MAX {
            let hits = masks.iter().filter(|(v, m)| p & m == *v).count();
            let want = usize::from((lo..=hi).contains(&p));
            assert_eq!(hits, want, "{lo}-{hi}: port {p} covered {hits} times");
        }
        // Minimal: no two blocks could merge into one aligned block.
        for w in masks.windows(2) {
            let (a, am) = w[0];
            let (b, bm) = w[1];
            let merged = am == bm && (a & (am << 1)) == (b & (bm << 1)) && (am << 1) != 0;
            assert!(!merged, "{lo}-{hi}: {w:?} could be one match");
        }
    }
}

#[test]
fn compiler_incremental_recompiles_only_changed_nodes() {
    let m = model();
    let t = topology();
    let mut ic = IncrementalCompiler::new();
    let first: Vec<String> = ic.update(&m, &t).into_iter().map(|(n, _)| n).collect();
    assert_eq!(first, vec!["hv1", "hv2", "hv3", "hv4"]);
    assert!(ic.update(&m, &t).is_empty());
    // An ACL on a1 (bound on hv1) only touches hv1.
    let m2 = LogicalModel::from_objects(
        3,
        m.switches().cloned().collect(),
        m.ports().cloned().collect(),
        vec![acl(
            0x399,
            0x101,
            Direction::Ingress,
            1,
            AclAction::Drop,
            None,
            None,
            None,
        )],
    )
    .unwrap();
    let changed = ic.update(&m2, &t);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].0, "hv1");
    assert_eq!(changed[0].1, compile_node(&m2, &t, "hv1"));
    assert_ne!(changed[0].1, compile_node(&m, &t, "hv1"));
    // hv2's tunnel to hv1 is (re)numbered: only hv2.
    let mut t2 = t.clone();
    t2.nodes
        .get_mut("hv2")
        .unwrap()
        .tunnels
        .insert("hv1".into(), 20);
    let changed: Vec<String> = ic.update(&m2, &t2).into_iter().map(|(n, _)| n).collect();
    assert_eq!(changed, vec!["hv2"]);
}

#[test]
fn compiler_trace_packet_reads_ovs_ofctl_like_json() {
    let m = model();
    let t = topology();
    let p: TracePacket = serde_json::from_str(
        r#"{"eth_dst": "02:00:00:00:00:03", "ip_dst": "10.0.0.3", "protocol": "tcp", "tp_dst": 80}"#,
    )
    .unwrap();
    let tr = run(&m, &t, "a1", &p);
    assert_eq!(tr.delivered_ports(), vec!["a3"]);
    let f = &tr.delivered[0].frame;
    assert_eq!(
        (f.ip4_src, f.ip_proto, f.tp_dst),
        ("10.0.0.1".parse().unwrap(), 6, 80)
    );
    let json = serde_json::to_value(&tr).unwrap();
    assert_eq!(json["hops"][0]["node"], "hv1");
    assert_eq!(json["hops"][0]["outputs"][0]["to"]["kind"], "tunnel");
    assert_eq!(json["delivered"][0]["port"], "a3");
    assert!(serde_json::from_str::<TracePacket>(r#"{"bogus": 1}"#).is_err());
    assert!(matches!(
        trace(&m, &t, None, "nope", &p),
        Err(trace::TraceError::PortNotFound(_))
    ));
    assert!(matches!(
        trace(&m, &t, Some("hv2"), "a1", &p),
        Err(trace::TraceError::PortNotOnNode { .. })
    ));
    let bad = TracePacket {
        protocol: Some("ip".into()),
        ..Default::default()
    };
    assert!(matches!(
        trace(&m, &t, None, "a1", &bad),
        Err(trace::TraceError::BadPacket {
            field: "ip_dst",
            ..
        })
    ));
}

/// Scale figures (not an assertion): `cargo test -p weft-controller --lib
/// compiler_scale -- --ignored --nocapture`.
#[test]
#[ignore]
fn compiler_scale_measure() {
    use std::time::Instant;
    const NODES: usize = 200;
    const SWITCHES: usize = 1000;
    const PER_SWITCH: usize = 20;
    let switches: Vec<LogicalSwitch> = (0..SWITCHES)
        .map(|s| sw(0x1_0000 + s as u128, &format!("s{s}"), 100 + s as u32))
        .collect();
    let mut ports = Vec::new();
    let mut t = Topology::default();
    let node_name = |n: usize| format!("hv{n:03}");
    for n in 0..NODES {
        let others: Vec<(String, u32)> = (0..NODES)
            .filter(|o| *o != n)
            .map(|o| (node_name(o), 1000 + o as u32))
            .collect();
        let mut v = node(
            &node_name(n),
            &format!("10.1.{}.{}", n / 250, n % 250 + 1),
            &[],
            &[],
        );
        v.tunnels = others.into_iter().collect();
        t.nodes.insert(v.id.clone(), v);
    }
    for s in 0..SWITCHES {
        for i in 0..PER_SWITCH {
            let idx = s * PER_SWITCH + i;
            let mut p = lport(
                0x100_0000 + idx as u128,
                &format!("p{idx}"),
                0x1_0000 + s as u128,
                (i + 1) as u16,
                &format!(
                    "02:00:00:{:02x}:{:02x}:{:02x}",
                    idx >> 16,
                    (idx >> 8) & 0xff,
                    idx & 0xff
                ),
                &[&format!("10.{}.{}.{}", 100 + s / 250, s % 250, i + 1)],
            );
            p.zone = (idx + 1) as u16;
            let n = (s * 7 + i) % NODES;
            let vif = node(
                "x",
                "1.1.1.1",
                &[(&p.name, (i + 1 + s % 50 * 20) as u32)],
                &[],
            )
            .vifs;
            t.nodes.get_mut(&node_name(n)).unwrap().vifs.extend(vif);
            ports.push(p);
        }
    }
    let m = LogicalModel::from_objects(1, switches, ports, vec![]).unwrap();
    let t0 = Instant::now();
    let b = Bindings::compute(&m, &t);
    let bind = t0.elapsed();
    let t0 = Instant::now();
    let mut flows = 0;
    for n in t.nodes.keys() {
        flows += compile_node_with(&m, &t, &b, n).flows.len();
    }
    let all = t0.elapsed();
    let mut ic = IncrementalCompiler::new();
    let t0 = Instant::now();
    let first = ic.update(&m, &t).len();
    let full = t0.elapsed();
    let t0 = Instant::now();
    let again = ic.update(&m, &t).len();
    let noop = t0.elapsed();
    println!(
        "{NODES} nodes, {SWITCHES} switches, {} ports: bindings {bind:?}; compile all nodes {all:?} \
         ({flows} flows, {:?}/node); IncrementalCompiler first update {full:?} ({first} nodes), \
         unchanged update {noop:?} ({again} nodes)",
        SWITCHES * PER_SWITCH,
        all / NODES as u32
    );
}

/// The incremental compiler against a from-scratch compile, on randomised sequences of
/// model writes (applied to the previous snapshot, as the writer does, so the diff runs
/// on shared persistent maps) and topology changes (VIFs plugged and unplugged by name or
/// id, nodes joining and leaving, endpoints and tunnel ports changing, hardware VTEPs
/// changing): after every
/// update, the newest state handed out for each node equals `compile_node`, and the
/// incremental bindings equal `Bindings::compute`.
#[test]
fn compiler_incremental_equals_from_scratch_on_random_changes() {
    use crate::model::{Change, Protocol};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const SWITCHES: u128 = 4;
    const PORTS: usize = 24;
    const NODES: usize = 6;
    let node_id = |n: usize| format!("hv{n}");
    let port_id = |i: usize| Uuid::from_u128(0x5000 + i as u128);
    let make_port = |i: usize, generation: u32, rng: &mut StdRng| {
        let sw = rng.random_range(0..SWITCHES);
        let mut p = lport(
            0x5000 + i as u128,
            &format!("p{i}"),
            0xa000 + sw,
            (i + 1) as u16,
            &format!(
                "02:00:00:{:02x}:{:02x}:{:02x}",
                generation & 0xff,
                i,
                rng.random_range(0..4u8)
            ),
            &[&format!("10.{sw}.{generation}.{}", i + 1)],
        );
        p.port_security = rng.random_bool(0.8);
        if rng.random_bool(0.2) {
            p.ips.push(format!("fd00::{:x}", i + 1).parse().unwrap());
        }
        p
    };
    for seed in 0..12u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut m = LogicalModel::from_objects(
            1,
            (0..SWITCHES)
                .map(|s| sw(0xa000 + s, &format!("s{s}"), 7000 + s as u32))
                .collect(),
            vec![],
            vec![],
        )
        .unwrap();
        let mut t = Topology::default();
        let mut ic = IncrementalCompiler::new();
        let mut latest: BTreeMap<String, DesiredNode> = BTreeMap::new();
        let mut next_acl = 0x9000u128;
        for step in 0..60u32 {
            let before = m.clone();
            let mut next = m.clone();
            for _ in 0..rng.random_range(1..4) {
                match rng.random_range(0..15) {
                    // A port created or updated (new MAC/IPs, maybe another switch).
                    0..=2 => {
                        let i = rng.random_range(0..PORTS);
                        let p = make_port(i, step, &mut rng);
                        let taken = next
                            .port_by_mac(p.switch, p.mac)
                            .is_some_and(|o| o.id != p.id);
                        if !taken {
                            next.apply(&Change::PutPort(p));
                        }
                    }
                    // A port deleted with its ACLs.
                    3 => {
                        let id = port_id(rng.random_range(0..PORTS));
                        let acls: Vec<Uuid> = next.acls_of_port(&id).map(|a| a.id).collect();
                        for a in acls {
                            next.apply(&Change::DeleteAcl { id: a });
                        }
                        next.apply(&Change::DeletePort { id });
                    }
                    // An ACL added to or removed from a port.
                    4 | 5 => {
                        let id = port_id(rng.random_range(0..PORTS));
                        if next.port(&id).is_none() {
                            continue;
                        }
                        let existing: Vec<Uuid> = next.acls_of_port(&id).map(|a| a.id).collect();
                        if !existing.is_empty() && rng.random_bool(0.4) {
                            let a = existing[rng.random_range(0..existing.len())];
                            next.apply(&Change::DeleteAcl { id: a });
                        } else {
                            next_acl += 1;
                            let dir = if rng.random_bool(0.5) {
                                Direction::Ingress
                            } else {
                                Direction::Egress
                            };
                            let prio = next_acl as u16;
                            let action =
                                [AclAction::Allow, AclAction::AllowRelated, AclAction::Drop]
                                    [rng.random_range(0..3)];
                            next.apply(&Change::PutAcl(acl(
                                next_acl,
                                id.as_u128(),
                                dir,
                                prio,
                                action,
                                Some(Protocol::Tcp),
                                Some("10.0.0.0/16"),
                                Some((80, 90)),
                            )));
                        }
                    }
                    // A switch renamed or given another VNI.
                    6 => {
                        let s = rng.random_range(0..SWITCHES);
                        let vni = 7000 + s as u32 + 100 * rng.random_range(0..3u32);
                        next.apply(&Change::PutSwitch(sw(0xa000 + s, &format!("s{s}"), vni)));
                    }
                    // A VIF plugged (by port name or id), moved or unplugged.
                    7..=9 => {
                        let n = node_id(rng.random_range(0..NODES));
                        let i = rng.random_range(0..PORTS);
                        let iface = if rng.random_bool(0.1) {
                            // Any spelling of the id binds, as find_port resolves it.
                            port_id(i).simple().to_string().to_uppercase()
                        } else if rng.random_bool(0.3) {
                            port_id(i).to_string()
                        } else {
                            format!("p{i}")
                        };
                        if let Some(v) = t.nodes.get_mut(&n) {
                            if v.vifs.contains_key(&iface) && rng.random_bool(0.5) {
                                v.vifs.remove(&iface);
                            } else {
                                let of = rng.random_range(1..6u32);
                                let vif = node("x", "1.1.1.1", &[(&iface, of)], &[]).vifs;
                                v.vifs.extend(vif);
                            }
                        }
                    }
                    // A switch attached to or detached from one of two routers.
                    12 => {
                        let s = rng.random_range(0..SWITCHES);
                        let r = rng.random_range(0..2u128);
                        let rp_id = Uuid::from_u128(0xc000 + s);
                        if next.router_port(&rp_id).is_some() {
                            next.apply(&Change::DeleteRouterPort { id: rp_id });
                        } else {
                            if next.router(&Uuid::from_u128(0xb000 + r)).is_none() {
                                next.apply(&Change::PutRouter(crate::model::LogicalRouter {
                                    id: Uuid::from_u128(0xb000 + r),
                                    name: format!("r{r}"),
                                    description: String::new(),
                                    key: r as u32 + 1,
                                }));
                            }
                            next.apply(&Change::PutRouterPort(crate::model::RouterPort {
                                id: rp_id,
                                name: format!("rp{s}"),
                                router: Uuid::from_u128(0xb000 + r),
                                switch: Uuid::from_u128(0xa000 + s),
                                mac: format!("02:aa:00:00:00:{s:02x}").parse().unwrap(),
                                ips: vec![format!("10.{s}.255.254/16").parse().unwrap()],
                            }));
                        }
                    }
                    // A static route added or removed, via some port's address.
                    13 => {
                        let r = rng.random_range(0..2u128);
                        let router = Uuid::from_u128(0xb000 + r);
                        let id = Uuid::from_u128(0xd000 + rng.random_range(0..4u128));
                        if next.route(&id).is_some() {
                            next.apply(&Change::DeleteRoute { id });
                        } else if next.router(&router).is_some() {
                            let via = next
                                .port(&port_id(rng.random_range(0..PORTS)))
                                .and_then(|p| p.ips.first().copied());
                            if let Some(nexthop) = via {
                                next.apply(&Change::PutRoute(crate::model::Route {
                                    id,
                                    router,
                                    prefix: format!("172.16.{}.0/24", id.as_u128() & 0xf)
                                        .parse()
                                        .unwrap(),
                                    nexthop,
                                }));
                            }
                        }
                    }
                    // A router deleted with its ports and routes.
                    14 => {
                        let router = Uuid::from_u128(0xb000 + rng.random_range(0..2u128));
                        let rps: Vec<Uuid> = next.ports_of_router(&router).map(|p| p.id).collect();
                        let routes: Vec<Uuid> =
                            next.routes_of_router(&router).map(|r| r.id).collect();
                        for id in rps {
                            next.apply(&Change::DeleteRouterPort { id });
                        }
                        for id in routes {
                            next.apply(&Change::DeleteRoute { id });
                        }
                        next.apply(&Change::DeleteRouter { id: router });
                    }
                    // A switch's hardware VTEPs change (connect, learn or age a MAC, go),
                    // or a node's tunnel ports to them come or go.
                    11 => {
                        let vtep_ips = ["192.168.9.1", "192.168.9.2", "192.168.1.1"];
                        if rng.random_bool(0.5) {
                            let s = Uuid::from_u128(0xa000 + rng.random_range(0..SWITCHES));
                            let eps: Vec<crate::hardware_vtep::HardwareVtepEndpoint> = (0..rng
                                .random_range(0..3))
                                .map(|v| crate::hardware_vtep::HardwareVtepEndpoint {
                                    vtep: format!("vtep{v}"),
                                    tunnel_ip: vtep_ips[rng.random_range(0..3)].parse().unwrap(),
                                    macs: (0..rng.random_range(0..3))
                                        .map(|_| {
                                            // Sometimes a Weft port's MAC (make_port's form).
                                            format!(
                                                "02:00:00:{:02x}:{:02x}:00",
                                                rng.random_range(0..2u8),
                                                rng.random_range(0..4u8),
                                            )
                                            .parse()
                                            .unwrap()
                                        })
                                        .collect::<std::collections::BTreeSet<_>>()
                                        .into_iter()
                                        .collect(),
                                })
                                .collect();
                            let mut all = (*t.hardware_vteps).clone();
                            if eps.is_empty() {
                                all.remove(&s);
                            } else {
                                all.insert(s, eps);
                            }
                            t.hardware_vteps = std::sync::Arc::new(all);
                        } else if let Some(v) =
                            t.nodes.get_mut(&node_id(rng.random_range(0..NODES)))
                        {
                            for (i, ip) in vtep_ips.iter().enumerate() {
                                let remote = vtep_remote(ip.parse().unwrap());
                                if rng.random_bool(0.5) {
                                    v.tunnels.insert(remote, 30 + i as u32);
                                } else {
                                    v.tunnels.remove(&remote);
                                }
                            }
                        }
                    }
                    // A node joins, leaves, moves its endpoint or renumbers its tunnels.
                    _ => {
                        let k = rng.random_range(0..NODES);
                        let n = node_id(k);
                        match rng.random_range(0..4) {
                            0 => {
                                t.nodes.remove(&n);
                            }
                            1 if !t.nodes.contains_key(&n) => {
                                let v = node(&n, &format!("192.168.1.{}", k + 1), &[], &[]);
                                t.nodes.insert(n, v);
                            }
                            2 => {
                                if let Some(v) = t.nodes.get_mut(&n) {
                                    v.encap_ip =
                                        format!("192.168.{}.{}", rng.random_range(1..3), k + 1)
                                            .parse()
                                            .unwrap();
                                }
                            }
                            _ => {
                                let peers: Vec<(String, u32)> = (0..NODES)
                                    .filter(|o| *o != k && rng.random_bool(0.6))
                                    .map(|o| (node_id(o), 10 + o as u32))
                                    .collect();
                                if let Some(v) = t.nodes.get_mut(&n) {
                                    v.tunnels = peers.into_iter().collect();
                                    v.datapath_id = Some(rng.random_range(1..4));
                                }
                            }
                        }
                    }
                }
            }
            next.set_revision(before.revision() + 1);
            m = next;
            for (n, d) in ic.update(&m, &t) {
                latest.insert(n, d);
            }
            latest.retain(|n, _| t.nodes.contains_key(n));
            assert_eq!(
                ic.bindings(),
                &Bindings::compute(&m, &t),
                "seed {seed} step {step}: bindings"
            );
            for n in t.nodes.keys() {
                let want = compile_node(&m, &t, n);
                let got = latest.get(n);
                assert!(
                    got == Some(&want),
                    "seed {seed} step {step}: node {n} differs from a from-scratch compile \
                     ({:?} flows vs {} expected)",
                    got.map(|d| d.flows.len()),
                    want.flows.len()
                );
            }
        }
    }
}

#[test]
fn compiler_colliding_port_keeps_the_first_flow_and_is_not_complete() {
    // b1 (switch B) reports a1's ofport: both want `table=0, in_port=1`. Switch A is
    // compiled first, so a1's classify flow stays and b1, missing its own, is not
    // reported installed; a1 and the rest of hv1 are unaffected.
    let m = model();
    let mut t = topology();
    t.nodes.insert(
        "hv1".into(),
        node(
            "hv1",
            "192.168.0.1",
            &[("a1", 1), ("a2", 2), ("a4", 4), ("b1", 1), ("b2", 5)],
            &[("hv2", 10), ("hv3", 11)],
        ),
    );
    let d = compile_node(&m, &t, "hv1");
    let classify: Vec<&FlowContent> = d
        .flows
        .iter()
        .filter(|(k, _)| k.table_id == 0 && k.r#match.fields == vec![Field::InPort(1, None)])
        .map(|(_, c)| &**c)
        .collect();
    assert_eq!(classify.len(), 1);
    assert_eq!(classify[0].cookie, cookie_for(&Uuid::from_u128(0x101)));
    assert!(d.bound_ports.contains(&Uuid::from_u128(0x101)));
    assert!(!d.bound_ports.contains(&Uuid::from_u128(0x201)));
    assert!(d.bound_ports.contains(&Uuid::from_u128(0x202)));
    // The map holds each key once, in order.
    assert!(d.flows.keys().is_sorted());
}
