//! Routing on the software flow table (no switch needed).
//!
//! Tenant 1: router r1 with switches A (10.0.1.0/24, fd00:1::/64), B (10.0.2.0/24,
//! fd00:2::/64) and C (10.0.3.0/24), and a static route 192.168.50.0/24 via the
//! appliance `app` on B (port security off). Tenant 2: router r2 with switches D and E,
//! the same subnets as A and B. hv1: a1, b1, d1; hv2: a2, b2, app, e1; hv3: c1.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;
use openflow::Mac;
use uuid::Uuid;

use super::table::Packet;
use super::tests::{node, run, sw};
use super::trace::TracePacket;
use super::*;
use crate::model::{
    Acl, AclAction, Change, Direction, Ethertype, LogicalPort, LogicalRouter, MacAddr, Protocol,
    Route, RouterPort,
};

fn lport(n: u128, name: &str, switch: u128, mac: &str, ips: &[&str]) -> LogicalPort {
    LogicalPort {
        id: Uuid::from_u128(n),
        name: name.into(),
        switch: Uuid::from_u128(switch),
        mac: mac.parse().unwrap(),
        ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        port_security: true,
        key: (n & 0xff) as u16,
        zone: n as u16,
    }
}

fn router(n: u128, name: &str, key: u32) -> LogicalRouter {
    LogicalRouter {
        id: Uuid::from_u128(n),
        name: name.into(),
        description: String::new(),
        key,
    }
}

fn rport(n: u128, name: &str, router: u128, switch: u128, mac: &str, ips: &[&str]) -> RouterPort {
    RouterPort {
        id: Uuid::from_u128(n),
        name: name.into(),
        router: Uuid::from_u128(router),
        switch: Uuid::from_u128(switch),
        mac: mac.parse().unwrap(),
        ips: ips.iter().map(|s| s.parse::<IpNet>().unwrap()).collect(),
    }
}

const R1: u128 = 0xe1;
const R2: u128 = 0xe2;
const ROUTE: u128 = 0xf1;

pub(super) fn model() -> LogicalModel {
    let mut app = lport(0x206, "app", 0xb, "02:00:00:00:02:06", &["10.0.2.100"]);
    app.port_security = false;
    LogicalModel::from_objects(
        1,
        vec![
            sw(0xa, "A", 5001),
            sw(0xb, "B", 5002),
            sw(0xc, "C", 5003),
            sw(0xd, "D", 6001),
            sw(0xe, "E", 6002),
        ],
        vec![
            lport(
                0x101,
                "a1",
                0xa,
                "02:00:00:00:01:01",
                &["10.0.1.5", "fd00:1::5"],
            ),
            lport(0x102, "a2", 0xa, "02:00:00:00:01:02", &["10.0.1.6"]),
            lport(
                0x201,
                "b1",
                0xb,
                "02:00:00:00:02:01",
                &["10.0.2.5", "fd00:2::5"],
            ),
            lport(
                0x202,
                "b2",
                0xb,
                "02:00:00:00:02:02",
                &["10.0.2.6", "fd00:2::6"],
            ),
            app,
            lport(0x301, "c1", 0xc, "02:00:00:00:03:01", &["10.0.3.5"]),
            // Tenant 2 reuses tenant 1's addresses.
            lport(0x401, "d1", 0xd, "02:00:00:00:04:01", &["10.0.1.5"]),
            lport(0x501, "e1", 0xe, "02:00:00:00:05:01", &["10.0.2.5"]),
        ],
        vec![],
    )
    .unwrap()
    .with_routing(
        vec![router(R1, "r1", 1), router(R2, "r2", 2)],
        vec![
            rport(
                0xea,
                "r1-a",
                R1,
                0xa,
                "02:00:00:00:aa:01",
                &["10.0.1.1/24", "fd00:1::1/64"],
            ),
            rport(
                0xeb,
                "r1-b",
                R1,
                0xb,
                "02:00:00:00:bb:01",
                &["10.0.2.1/24", "fd00:2::1/64"],
            ),
            rport(0xec, "r1-c", R1, 0xc, "02:00:00:00:cc:01", &["10.0.3.1/24"]),
            rport(0xed, "r2-d", R2, 0xd, "02:00:00:00:aa:01", &["10.0.1.1/24"]),
            rport(0xee, "r2-e", R2, 0xe, "02:00:00:00:bb:01", &["10.0.2.1/24"]),
        ],
        vec![Route {
            id: Uuid::from_u128(ROUTE),
            router: Uuid::from_u128(R1),
            prefix: "192.168.50.0/24".parse().unwrap(),
            nexthop: "10.0.2.100".parse().unwrap(),
        }],
    )
    .unwrap()
}

pub(super) fn topology() -> Topology {
    let mut t = Topology::default();
    for n in [
        node(
            "hv1",
            "192.168.0.1",
            &[("a1", 1), ("b1", 2), ("d1", 3)],
            &[("hv2", 10), ("hv3", 11)],
        ),
        node(
            "hv2",
            "192.168.0.2",
            &[("a2", 1), ("b2", 2), ("app", 3), ("e1", 4)],
            &[("hv1", 10), ("hv3", 11)],
        ),
        node(
            "hv3",
            "192.168.0.3",
            &[("c1", 1)],
            &[("hv1", 10), ("hv2", 11)],
        ),
    ] {
        t.nodes.insert(n.id.clone(), n);
    }
    t
}

fn gateway_mac(m: &LogicalModel, p: &LogicalPort) -> MacAddr {
    m.router_port_of_switch(&p.switch).unwrap().mac
}

/// A ping from `src` to `dst_ip`, sent to `src`'s gateway (as a VM with a default route
/// does).
fn routed_ping(m: &LogicalModel, src: &str, dst_ip: &str) -> TracePacket {
    let p = m.find_port(src).unwrap();
    let dst: IpAddr = dst_ip.parse().unwrap();
    TracePacket {
        eth_dst: Some(gateway_mac(m, p)),
        protocol: Some(if dst.is_ipv6() { "icmp6" } else { "icmp" }.into()),
        ip_dst: Some(dst),
        ..Default::default()
    }
}

#[test]
fn routing_on_one_hypervisor_rewrites_macs_and_decrements_ttl_without_a_tunnel() {
    let m = model();
    let t = topology();
    let tr = run(&m, &t, "a1", &routed_ping(&m, "a1", "10.0.2.5"));
    assert_eq!(tr.delivered_ports(), vec!["b1"], "{tr:#?}");
    assert_eq!(tr.hops.len(), 1, "no tunnel: {tr:#?}");
    let f = &tr.delivered[0].frame;
    assert_eq!(
        f.eth_src,
        Mac([2, 0, 0, 0, 0xbb, 1]),
        "source is the egress router port"
    );
    assert_eq!(
        f.eth_dst,
        Mac([2, 0, 0, 0, 2, 1]),
        "destination is b1's MAC"
    );
    assert_eq!(f.ip_ttl, 63);
    assert_eq!(tr.routing.len(), 1);
    let d = &tr.routing[0];
    assert_eq!((d.verdict, d.kind), ("routed", Some("connected")));
    assert_eq!(d.prefix.as_deref(), Some("10.0.2.0/24"));
    assert_eq!(d.egress.as_deref(), Some("r1-b"));
    assert_eq!((d.ttl, d.ttl_out), (64, Some(63)));
}

#[test]
fn routing_across_hypervisors_takes_one_tunnel_hop_with_the_destination_vni() {
    let m = model();
    let t = topology();
    for (src, dst, port, node, vni) in [
        ("a1", "10.0.2.6", "b2", "hv2", 5002u64),
        ("b2", "10.0.1.5", "a1", "hv1", 5001),
        // C has no port on hv1: hv1 still reaches c1 on hv3, and hv3 takes VNI 5003 from hv1.
        ("a1", "10.0.3.5", "c1", "hv3", 5003),
        ("c1", "10.0.1.5", "a1", "hv1", 5001),
    ] {
        let tr = run(&m, &t, src, &routed_ping(&m, src, dst));
        assert_eq!(tr.delivered_ports(), vec![port], "{src} -> {dst}: {tr:#?}");
        assert_eq!(tr.hops.len(), 2, "{src} -> {dst}");
        assert_eq!(tr.hops[1].node, node);
        let f = &tr.delivered[0].frame;
        assert_eq!(f.tun_id, vni, "{src} -> {dst}");
        assert_eq!(f.ip_ttl, 63, "{src} -> {dst}");
    }
}

#[test]
fn routing_leaves_switched_traffic_alone() {
    let m = model();
    let t = topology();
    let a2 = m.find_port("a2").unwrap();
    let tr = run(
        &m,
        &t,
        "a1",
        &TracePacket {
            eth_dst: Some(a2.mac),
            protocol: Some("icmp".into()),
            ip_dst: Some("10.0.1.6".parse().unwrap()),
            ..Default::default()
        },
    );
    assert_eq!(tr.delivered_ports(), vec!["a2"]);
    assert_eq!(tr.delivered[0].frame.ip_ttl, 64);
    assert!(tr.routing.is_empty());
}

#[test]
fn routing_drops_what_would_reach_ttl_zero() {
    let m = model();
    let t = topology();
    for ttl in [0, 1] {
        let mut p = routed_ping(&m, "a1", "10.0.2.6");
        p.ttl = Some(ttl);
        let tr = run(&m, &t, "a1", &p);
        assert!(tr.delivered.is_empty(), "ttl {ttl}: {tr:#?}");
        assert_eq!(tr.routing[0].verdict, "ttl_expired");
    }
    let mut p = routed_ping(&m, "a1", "10.0.2.6");
    p.ttl = Some(2);
    let tr = run(&m, &t, "a1", &p);
    assert_eq!(tr.delivered[0].frame.ip_ttl, 1);
}

#[test]
fn routing_ipv6_decrements_the_hop_limit() {
    let m = model();
    let t = topology();
    for (dst, port) in [("fd00:2::5", "b1"), ("fd00:2::6", "b2")] {
        let tr = run(&m, &t, "a1", &routed_ping(&m, "a1", dst));
        assert_eq!(tr.delivered_ports(), vec![port], "{tr:#?}");
        let f = &tr.delivered[0].frame;
        assert_eq!(f.ip_ttl, 63);
        assert_eq!(f.eth_src, Mac([2, 0, 0, 0, 0xbb, 1]));
    }
}

#[test]
fn routing_static_route_goes_to_the_next_hop_port() {
    let m = model();
    let t = topology();
    let tr = run(&m, &t, "a1", &routed_ping(&m, "a1", "192.168.50.7"));
    assert_eq!(tr.delivered_ports(), vec!["app"], "{tr:#?}");
    let f = &tr.delivered[0].frame;
    assert_eq!(f.eth_dst, Mac([2, 0, 0, 0, 2, 6]));
    assert_eq!(
        f.ip4_dst,
        "192.168.50.7".parse::<std::net::Ipv4Addr>().unwrap()
    );
    let d = &tr.routing[0];
    assert_eq!(d.kind, Some("static"));
    assert_eq!(d.nexthop, Some("10.0.2.100".parse().unwrap()));
    // No route: dropped, and trace says so.
    let tr = run(&m, &t, "a1", &routed_ping(&m, "a1", "172.16.0.1"));
    assert!(tr.delivered.is_empty());
    assert_eq!(tr.routing[0].verdict, "no_route");
}

#[test]
fn routing_router_addresses_answer_arp_nd_and_ping_locally() {
    let m = model();
    let t = topology();
    let a1 = m.find_port("a1").unwrap();
    let rmac = Mac([2, 0, 0, 0, 0xaa, 1]);
    // ARP for the gateway.
    let tr = run(
        &m,
        &t,
        "a1",
        &TracePacket {
            arp_tpa: Some("10.0.1.1".parse().unwrap()),
            ..Default::default()
        },
    );
    assert_eq!(tr.delivered_ports(), vec!["a1"], "{tr:#?}");
    let f = &tr.delivered[0].frame;
    assert_eq!((f.arp_op, f.arp_sha), (2, rmac));
    // Ping of the gateway and of the router's address on another switch.
    for ip in ["10.0.1.1", "10.0.3.1"] {
        let tr = run(&m, &t, "a1", &routed_ping(&m, "a1", ip));
        assert_eq!(tr.delivered_ports(), vec!["a1"], "{ip}: {tr:#?}");
        assert_eq!(tr.hops.len(), 1);
        let f = &tr.delivered[0].frame;
        assert_eq!(f.tp_src, 0, "echo reply");
        assert_eq!(f.ip4_src.to_string(), ip);
        assert_eq!(f.ip4_dst, "10.0.1.5".parse::<std::net::Ipv4Addr>().unwrap());
        assert_eq!((f.eth_src, f.eth_dst), (rmac, Mac(a1.mac.0)));
    }
    // Neighbour solicitation for the IPv6 gateway: an advertisement with the router's MAC.
    let gw6: Ipv6Addr = "fd00:1::1".parse().unwrap();
    let tr = run(
        &m,
        &t,
        "a1",
        &TracePacket {
            protocol: Some("icmp6".into()),
            ip_dst: Some("ff02::1:ff00:1".parse().unwrap()),
            eth_dst: Some("33:33:ff:00:00:01".parse().unwrap()),
            icmp_type: Some(135),
            nd_target: Some(gw6),
            nd_sll: Some(a1.mac),
            ..Default::default()
        },
    );
    assert_eq!(tr.delivered_ports(), vec!["a1"], "{tr:#?}");
    let f = &tr.delivered[0].frame;
    assert_eq!(f.tp_src, 136);
    assert_eq!((f.nd_target, f.nd_tll, f.nd_options_type), (gw6, rmac, 2));
    assert_eq!(f.nd_reserved, 0xe000_0000);
    assert_eq!((f.ip6_src, f.ip6_dst), (gw6, "fd00:1::5".parse().unwrap()));
    // ICMPv6 echo of the gateway.
    let tr = run(&m, &t, "a1", &routed_ping(&m, "a1", "fd00:1::1"));
    assert_eq!(tr.delivered_ports(), vec!["a1"]);
    assert_eq!(tr.delivered[0].frame.tp_src, 129);
}

#[test]
fn routing_tenants_with_overlapping_subnets_never_meet() {
    let m = model();
    let t = topology();
    let tr = run(&m, &t, "d1", &routed_ping(&m, "d1", "10.0.2.5"));
    assert_eq!(tr.delivered_ports(), vec!["e1"], "{tr:#?}");
    let tr = run(&m, &t, "a1", &routed_ping(&m, "a1", "10.0.2.5"));
    assert_eq!(tr.delivered_ports(), vec!["b1"]);
    // Every port of tenant 2, to every address tenant 1 uses: never a tenant-1 port.
    let tenant1: BTreeSet<Uuid> = [0xa, 0xb, 0xc].map(Uuid::from_u128).into();
    for src in ["d1", "e1"] {
        for p in m.ports().filter(|p| tenant1.contains(&p.switch)) {
            for ip in &p.ips {
                let tr = run(&m, &t, src, &routed_ping(&m, src, &ip.to_string()));
                for d in &tr.delivered {
                    let got = m.find_port(&d.port).unwrap();
                    assert!(
                        !tenant1.contains(&got.switch),
                        "{src} -> {ip} leaked to {}",
                        d.port
                    );
                }
            }
        }
    }
}

#[test]
fn routing_applies_the_receivers_ingress_acl() {
    let mut m = model();
    let t = topology();
    let drop = Acl {
        id: Uuid::from_u128(0xacc),
        port: Uuid::from_u128(0x202),
        direction: Direction::Ingress,
        priority: 10,
        protocol: Some(Protocol::Icmp),
        ethertype: Ethertype::Ipv4,
        remote_cidr: None,
        port_min: None,
        port_max: None,
        action: AclAction::Drop,
    };
    m.apply(&Change::PutAcl(drop));
    let tr = run(&m, &t, "a1", &routed_ping(&m, "a1", "10.0.2.6"));
    assert!(tr.delivered.is_empty(), "{tr:#?}");
    assert!(tr.acl.iter().any(|d| d.port == "b2" && d.verdict == "drop"));
    m.apply(&Change::DeleteAcl {
        id: Uuid::from_u128(0xacc),
    });
    let tr = run(&m, &t, "a1", &routed_ping(&m, "a1", "10.0.2.6"));
    assert_eq!(tr.delivered_ports(), vec!["b2"]);
}

#[test]
fn routing_stops_with_the_router_but_switching_goes_on() {
    let mut m = model();
    let t = topology();
    for rp in [0xea, 0xeb, 0xec] {
        m.apply(&Change::DeleteRouterPort {
            id: Uuid::from_u128(rp),
        });
    }
    m.apply(&Change::DeleteRoute {
        id: Uuid::from_u128(ROUTE),
    });
    m.apply(&Change::DeleteRouter {
        id: Uuid::from_u128(R1),
    });
    let a1 = m.find_port("a1").unwrap();
    let tr = run(
        &m,
        &t,
        "a1",
        &TracePacket {
            eth_dst: Some("02:00:00:00:aa:01".parse().unwrap()),
            protocol: Some("icmp".into()),
            ip_dst: Some("10.0.2.5".parse().unwrap()),
            ..Default::default()
        },
    );
    assert!(tr.delivered.is_empty(), "{tr:#?}");
    let a2 = m.find_port("a2").unwrap();
    let tr = run(
        &m,
        &t,
        &a1.name,
        &TracePacket {
            eth_dst: Some(a2.mac),
            protocol: Some("icmp".into()),
            ip_dst: Some("10.0.1.6".parse().unwrap()),
            ..Default::default()
        },
    );
    assert_eq!(tr.delivered_ports(), vec!["a2"]);
    // hv1 no longer has r1's lookup, nor anything for C (reachable only through r1);
    // r2's flows (d1 is on hv1) stay.
    let d = compile_node(&m, &t, "hv1");
    let r1 = openflow::Field::Metadata(router_metadata(1), None);
    let c = openflow::Field::Metadata(5003, None);
    assert!(!d.flows.keys().any(|k| k.r#match.fields.contains(&r1)));
    assert!(!d.flows.keys().any(|k| k.r#match.fields.contains(&c)));
    let r2 = openflow::Field::Metadata(router_metadata(2), None);
    assert!(d.flows.keys().any(|k| k.r#match.fields.contains(&r2)));
}

#[test]
fn routing_gives_every_router_node_tunnels_to_the_whole_router() {
    let m = model();
    let t = topology();
    let remotes = |n: &str| -> BTreeSet<String> {
        compile_node(&m, &t, n)
            .tunnels
            .iter()
            .map(|t| t.remote.clone())
            .collect()
    };
    assert_eq!(remotes("hv3"), ["hv1", "hv2"].map(String::from).into());
    assert_eq!(remotes("hv1"), ["hv2", "hv3"].map(String::from).into());
    // A node waiting for a tunnel to a node it reaches only through the router is not
    // complete: the first routed packet would be lost.
    let mut t2 = t.clone();
    t2.nodes.get_mut("hv1").unwrap().tunnels.remove("hv3");
    let d = compile_node(&m, &t2, "hv1");
    assert!(!d.bound_ports.contains(&Uuid::from_u128(0x101)));
    assert!(
        d.bound_ports.contains(&Uuid::from_u128(0x401)),
        "d1's router does not span hv3"
    );
}

/// `nodes` hypervisors hv0.. with a tunnel to each other (ofport 100 + the peer's index).
fn mesh(nodes: usize) -> Topology {
    let mut t = Topology::default();
    for n in 0..nodes {
        let tunnels: Vec<(String, u32)> = (0..nodes)
            .filter(|o| *o != n)
            .map(|o| (format!("hv{o}"), 100 + o as u32))
            .collect();
        let tun: Vec<(&str, u32)> = tunnels.iter().map(|(s, o)| (s.as_str(), *o)).collect();
        let name = format!("hv{n}");
        let v = node(&name, &format!("192.168.0.{}", n + 1), &[], &tun);
        t.nodes.insert(name, v);
    }
    t
}

/// Router 0x99's ports on switches s0..s`n` (ids 0x10 + s): `10.s.0.1/24`, and
/// `fd00:s::1/64` with `v6`.
fn router_ports_over(n: u128, v6: bool) -> Vec<RouterPort> {
    (0..n)
        .map(|s| {
            let v4 = format!("10.{s}.0.1/24");
            let v6a = format!("fd00:{s}::1/64");
            let ips: Vec<&str> = if v6 { vec![&v4, &v6a] } else { vec![&v4] };
            rport(
                0x900 + s,
                &format!("rp{s}"),
                0x99,
                0x10 + s,
                &format!("02:00:00:aa:{s:02x}:01"),
                &ips,
            )
        })
        .collect()
}

/// For random routers, placements and pairs: a routed packet between any two ports of a
/// router's different switches arrives exactly as "switch to the router port, route,
/// switch to the destination" would leave it: once, at the destination only, source MAC
/// the egress router port's, destination MAC the destination's, TTL one less, addresses
/// untouched, through at most one tunnel.
#[test]
fn routing_equals_switch_route_switch_on_random_fabrics() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    for seed in 0..30u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let switches = rng.random_range(2..5u128);
        let nodes = rng.random_range(1..4usize);
        let mut ports = Vec::new();
        let mut t = mesh(nodes);
        for s in 0..switches {
            for i in 0..rng.random_range(1..4u128) {
                let name = format!("p{s}x{i}");
                let p = lport(
                    0x1000 + s * 0x100 + i + 1,
                    &name,
                    0x10 + s,
                    &format!("02:00:00:00:{s:02x}:{:02x}", i + 1),
                    &[
                        &format!("10.{s}.0.{}", i + 10),
                        &format!("fd00:{s}::{:x}", i + 10),
                    ],
                );
                let n = format!("hv{}", rng.random_range(0..nodes));
                let of = 1 + ports.len() as u32;
                let vif = node("x", "1.1.1.1", &[(&name, of)], &[]).vifs;
                t.nodes.get_mut(&n).unwrap().vifs.extend(vif);
                ports.push(p);
            }
        }
        let m = LogicalModel::from_objects(
            1,
            (0..switches)
                .map(|s| sw(0x10 + s, &format!("s{s}"), 7000 + s as u32))
                .collect(),
            ports.clone(),
            vec![],
        )
        .unwrap()
        .with_routing(
            vec![router(0x99, "r", 7)],
            router_ports_over(switches, true),
            vec![],
        )
        .unwrap();
        for _ in 0..10 {
            let src = &ports[rng.random_range(0..ports.len())];
            let dst = &ports[rng.random_range(0..ports.len())];
            if src.switch == dst.switch {
                continue;
            }
            let ip = dst.ips[rng.random_range(0..2)];
            let tr = run(
                &m,
                &t,
                &src.name,
                &routed_ping(&m, &src.name, &ip.to_string()),
            );
            assert_eq!(
                tr.delivered_ports(),
                vec![dst.name.clone()],
                "seed {seed}: {tr:#?}"
            );
            let f: &Packet = &tr.delivered[0].frame;
            let egress = m.router_port_of_switch(&dst.switch).unwrap();
            assert_eq!(f.eth_src, Mac(egress.mac.0), "seed {seed}");
            assert_eq!(f.eth_dst, Mac(dst.mac.0), "seed {seed}");
            assert_eq!(f.ip_ttl, 63, "seed {seed}");
            match ip {
                IpAddr::V4(a) => {
                    assert_eq!(f.ip4_dst, a);
                    assert_eq!(Some(IpAddr::V4(f.ip4_src)), src.ips.first().copied());
                }
                IpAddr::V6(a) => assert_eq!(f.ip6_dst, a),
            }
            assert!(tr.hops.len() <= 2, "seed {seed}: more than one tunnel hop");
        }
    }
}

/// Every compiled flow, switching and routing, is one OVS would accept: its actions fit
/// its match (`dec_ttl` only on IP, ND fields only on the right ICMPv6 type, ...).
#[test]
fn routing_every_compiled_flow_is_consistent_with_its_match() {
    let fabrics = [
        (model(), topology()),
        (super::tests::model_with_acls(), super::tests::topology()),
    ];
    for (m, t) in &fabrics {
        for n in t.nodes.keys() {
            for (k, c) in compile_node(m, t, n).flows.iter() {
                if let Err(e) = openflow::validate::validate_actions(&k.r#match, &c.instructions) {
                    panic!(
                        "{n}: table {} priority {} {}: {e}",
                        k.table_id, k.priority, k.r#match
                    );
                }
            }
        }
    }
}

/// Flows a router adds to a hypervisor, for the record (`cargo test -p weft-controller
/// --lib routing_flow_cost -- --ignored --nocapture`): N switches of 8 ports each (one
/// IPv4 address per port), spread over 8 nodes so that every node has one port on every
/// switch, compiled without and with one router attaching all N switches.
#[test]
#[ignore]
fn routing_flow_cost_measure() {
    for n in [2u128, 4, 8, 16, 32] {
        let nodes = 8usize;
        let mut t = mesh(nodes);
        let mut ports = Vec::new();
        for s in 0..n {
            for i in 0..nodes as u128 {
                let name = format!("p{s}x{i}");
                ports.push(lport(
                    0x10000 + s * 0x100 + i + 1,
                    &name,
                    0x10 + s,
                    &format!("02:00:00:00:{s:02x}:{:02x}", i + 1),
                    &[&format!("10.{s}.0.{}", i + 10)],
                ));
                let vif = node("x", "1.1.1.1", &[(&name, 1 + s as u32)], &[]).vifs;
                t.nodes.get_mut(&format!("hv{i}")).unwrap().vifs.extend(vif);
            }
        }
        let switches: Vec<_> = (0..n)
            .map(|s| sw(0x10 + s, &format!("s{s}"), 7000 + s as u32))
            .collect();
        let plain = LogicalModel::from_objects(1, switches, ports, vec![]).unwrap();
        let routed = plain
            .clone()
            .with_routing(
                vec![router(0x99, "r", 7)],
                router_ports_over(n, false),
                vec![],
            )
            .unwrap();
        let before = compile_node(&plain, &t, "hv0").flows.len();
        let after = compile_node(&routed, &t, "hv0").flows.len();
        // One node with a port on one switch only: what routing pulls in from the rest.
        let mut t1 = t.clone();
        for s in 1..n {
            t1.nodes
                .get_mut("hv0")
                .unwrap()
                .vifs
                .remove(&format!("p{s}x0"));
        }
        let before1 = compile_node(&plain, &t1, "hv0").flows.len();
        let after1 = compile_node(&routed, &t1, "hv0").flows.len();
        println!(
            "router with {n:>2} switches x 8 ports: node with a port on every switch {before} -> \
             {after} flows (+{}); node with a port on one switch {before1} -> {after1} (+{})",
            after - before,
            after1 - before1
        );
    }
}
