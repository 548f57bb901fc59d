//! The rewrites routing and provider networks rely on, walked through the model: `nw_ttl`
//! matches, `dec_ttl` (IPv4 TTL, IPv6 hop limit, non-IP), VLAN match/push/pop/set, the
//! ND and ICMP responders' `set_field`s, and `move` between those fields. Each expectation
//! is OVS's behaviour for the same flows (checked by hand with `ofproto/trace` and, for
//! the ND responder, packets through a dummy-datapath `ovs-vswitchd`).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::action::{Nicira, Subfield};
use crate::oxm::{ERICOXM_OF, FieldHeader, NXM_NX, NXM_OF, OFPXMC_OPENFLOW_BASIC};
use crate::types::Mac;

const IP: u16 = 0x0800;
const IPV6: u16 = 0x86dd;
const ROUTER_MAC: Mac = Mac([2, 0, 0, 0, 0, 0xfe]);
const VM_MAC: Mac = Mac([2, 0, 0, 0, 0, 1]);

/// A table with `flows` added as a switch adds them (refusing what OVS refuses).
fn table(flows: Vec<FlowMod>) -> FlowTable {
    let mut t = FlowTable::new();
    for f in &flows {
        t.apply_flow_mod(f).unwrap();
    }
    t
}

fn flow(table: u8, prio: u16, fields: Vec<Field>, insts: Vec<Instruction>) -> FlowMod {
    FlowMod::add(table, prio, Match::new(fields), insts)
}

fn apply(a: Vec<Action>) -> Instruction {
    Instruction::ApplyActions(a)
}

fn ip4(ttl: u8) -> Packet {
    Packet {
        in_port: 1,
        eth_type: IP,
        ip_proto: 1,
        ip4_src: Ipv4Addr::new(10, 0, 0, 1),
        ip4_dst: Ipv4Addr::new(10, 0, 1, 1),
        ip_ttl: ttl,
        ..Packet::default()
    }
}

fn ip6(hop_limit: u8) -> Packet {
    Packet {
        in_port: 1,
        eth_type: IPV6,
        ip_proto: 17,
        ip6_src: "2001:db8::1".parse().unwrap(),
        ip6_dst: "2001:db8:1::1".parse().unwrap(),
        ip_ttl: hop_limit,
        ..Packet::default()
    }
}

fn notes(o: &Outcome) -> Vec<String> {
    o.steps.iter().flat_map(|s| s.notes.clone()).collect()
}

fn header(class: u16, field: u8) -> FieldHeader {
    FieldHeader::known(class, field, None).unwrap()
}

#[test]
fn nw_ttl_matches_ipv4_ttl_and_ipv6_hop_limit() {
    let t = table(vec![
        flow(
            0,
            20,
            vec![Field::EthType(IP, None), Field::IpTtl(1, None)],
            vec![],
        ),
        flow(
            0,
            20,
            vec![Field::EthType(IPV6, None), Field::IpTtl(0, None)],
            vec![],
        ),
        flow(0, 10, vec![], vec![apply(vec![Action::output(2)])]),
    ]);
    assert!(t.process(&ip4(1), 0).outputs.is_empty());
    assert_eq!(t.process(&ip4(2), 0).ports(), vec![2]);
    assert!(t.process(&ip6(0), 0).outputs.is_empty());
    assert_eq!(t.process(&ip6(2), 0).ports(), vec![2]);
    // The v4 flow does not match a v6 packet of the same TTL.
    assert_eq!(t.process(&ip6(1), 0).ports(), vec![2]);
}

/// Table 0 decrements and goes on to table 1, which outputs: what a router stage does.
fn dec_then_output(dec: Action) -> FlowTable {
    let dec_flow = |eth_type| {
        flow(
            0,
            10,
            vec![Field::EthType(eth_type, None)],
            vec![
                apply(vec![
                    dec.clone(),
                    Action::SetField(Field::EthSrc(ROUTER_MAC, None)),
                ]),
                Instruction::GotoTable(1),
            ],
        )
    };
    table(vec![
        dec_flow(IP),
        dec_flow(IPV6),
        flow(1, 10, vec![], vec![apply(vec![Action::output(2)])]),
    ])
}

#[test]
fn dec_ttl_decrements_ipv4_and_notes_it() {
    let t = dec_then_output(Action::DecNwTtl);
    let o = t.process(&ip4(64), 0);
    assert_eq!(o.ports(), vec![2]);
    assert_eq!(o.outputs[0].packet.ip_ttl, 63);
    assert_eq!(o.outputs[0].packet.eth_src, ROUTER_MAC);
    assert!(
        notes(&o).contains(&"dec_ttl: 64 -> 63".to_string()),
        "{o:#?}"
    );
    // The step records the packet as it met table 1: already decremented.
    assert_eq!(o.steps[1].packet.ip_ttl, 63);
    assert!(o.outputs[0].packet.headers().contains("nw_ttl=63"));
}

#[test]
fn dec_ttl_at_one_or_zero_stops_the_packet() {
    for dec in [Action::DecNwTtl, Action::Nicira(Nicira::DecTtl)] {
        let t = dec_then_output(dec);
        for ttl in [1, 0] {
            let o = t.process(&ip4(ttl), 0);
            assert!(o.outputs.is_empty(), "ttl {ttl}: {o:#?}");
            assert_eq!(o.steps.len(), 1, "goto_table is not followed");
            assert!(
                o.drops.iter().any(|d| d.contains("invalid_ttl")),
                "{:?}",
                o.drops
            );
            // Nothing after dec_ttl ran.
            assert_eq!(o.steps[0].packet.eth_src, Mac::ZERO);
            assert!(
                notes(&o).iter().any(|n| n.contains("would reach 0")),
                "{o:#?}"
            );
        }
    }
}

#[test]
fn dec_ttl_applies_to_the_ipv6_hop_limit() {
    let t = dec_then_output(Action::DecNwTtl);
    let o = t.process(&ip6(255), 0);
    assert_eq!(o.outputs[0].packet.ip_ttl, 254);
    assert!(notes(&o).contains(&"dec_ttl: 255 -> 254".to_string()));
    let o = t.process(&ip6(1), 0);
    assert!(o.outputs.is_empty());
    assert!(o.drops.iter().any(|d| d.contains("hop limit 1")), "{o:#?}");
}

#[test]
fn dec_ttl_without_an_ip_match_is_refused_and_does_nothing_to_non_ip() {
    let any = flow(
        0,
        10,
        vec![],
        vec![
            apply(vec![
                Action::DecNwTtl,
                Action::SetField(Field::EthSrc(ROUTER_MAC, None)),
            ]),
            Instruction::GotoTable(1),
        ],
    );
    let mut t = FlowTable::new();
    let e = t.apply_flow_mod(&any).unwrap_err();
    assert!(matches!(e, TableError::MatchInconsistent(_)), "{e}");
    assert_eq!(
        e.error_kind(),
        Some(ErrorKind::Standard {
            err_type: ErrorType::BadAction,
            code: code::BA_MATCH_INCONSISTENT
        })
    );
    // Installed unchecked (as a compiled table is), it leaves a non-IP packet alone.
    t.insert_flow(any.key(), any.content());
    t.apply_flow_mod(&flow(1, 10, vec![], vec![apply(vec![Action::output(2)])]))
        .unwrap();
    let arp = Packet {
        in_port: 1,
        eth_type: 0x0806,
        arp_op: 1,
        ip_ttl: 0,
        ..Packet::default()
    };
    let o = t.process(&arp, 0);
    assert_eq!(o.ports(), vec![2]);
    assert_eq!(o.outputs[0].packet.ip_ttl, 0);
    assert_eq!(o.outputs[0].packet.eth_src, ROUTER_MAC);
}

/// OVS stops processing for the *current table* only: a resubmit's caller carries on,
/// and so does a group's other bucket.
#[test]
fn dec_ttl_stop_ends_only_the_current_table() {
    let t = table(vec![
        flow(
            0,
            10,
            vec![],
            vec![apply(vec![Action::resubmit(1), Action::output(3)])],
        ),
        flow(
            1,
            10,
            vec![Field::EthType(IP, None)],
            vec![apply(vec![Action::DecNwTtl, Action::output(2)])],
        ),
    ]);
    assert_eq!(t.process(&ip4(1), 0).ports(), vec![3]);
    assert_eq!(t.process(&ip4(2), 0).ports(), vec![2, 3]);

    let mut t = FlowTable::new();
    t.apply_group_mod(&GroupMod::add(
        1,
        GroupType::All,
        vec![
            Bucket::new(vec![Action::DecNwTtl, Action::output(2)]),
            Bucket::new(vec![Action::output(3)]),
        ],
    ))
    .unwrap();
    t.apply_flow_mod(&flow(0, 10, vec![], vec![apply(vec![Action::Group(1)])]))
        .unwrap();
    assert_eq!(t.process(&ip4(1), 0).ports(), vec![3]);
}

#[test]
fn set_nw_ttl_and_set_field_nw_ttl() {
    let t = table(vec![flow(
        0,
        10,
        vec![Field::EthType(IP, None)],
        vec![apply(vec![
            Action::SetNwTtl(9),
            Action::DecNwTtl,
            Action::output(2),
            Action::SetField(Field::IpTtl(1, None)),
            Action::output(3),
        ])],
    )]);
    let o = t.process(&ip4(64), 0);
    let ttls: Vec<(u32, u8)> = o
        .outputs
        .iter()
        .map(|e| (e.ofport, e.packet.ip_ttl))
        .collect();
    assert_eq!(ttls, vec![(2, 8), (3, 1)]);
}

#[test]
fn vlan_vid_matches_follow_ofpvid_present() {
    let t = table(vec![
        flow(
            0,
            30,
            vec![Field::VlanVid(0x1000 | 5, None)],
            vec![apply(vec![Action::output(5)])],
        ),
        flow(
            0,
            20,
            vec![Field::VlanVid(0, None)],
            vec![apply(vec![Action::output(2)])],
        ),
        flow(
            0,
            10,
            vec![Field::VlanVid(0x1000, Some(0x1000))],
            vec![apply(vec![Action::output(3)])],
        ),
    ]);
    assert_eq!(t.process(&ip4(64), 0).ports(), vec![2], "untagged");
    assert_eq!(t.process(&ip4(64).with_vlan(5), 0).ports(), vec![5]);
    assert_eq!(t.process(&ip4(64).with_vlan(7), 0).ports(), vec![3]);
    // vid 0 with a tag is tagged: not the untagged flow.
    assert_eq!(t.process(&ip4(64).with_vlan(0), 0).ports(), vec![3]);
    // A priority match implies a tag.
    let pcp = table(vec![flow(
        0,
        10,
        vec![Field::VlanPcp(0, None)],
        vec![apply(vec![Action::output(4)])],
    )]);
    assert!(pcp.process(&ip4(64), 0).outputs.is_empty());
    assert_eq!(pcp.process(&ip4(64).with_vlan(9), 0).ports(), vec![4]);
}

#[test]
fn push_set_and_pop_vlan_reach_the_output_packet() {
    // Provider network: from the VM (port 1) tag with vlan 100 towards the physical
    // bridge (port 7); from there (vlan 100) pop the tag towards the VM.
    let t = table(vec![
        flow(
            0,
            10,
            vec![Field::InPort(1, None)],
            vec![apply(vec![
                Action::PushVlan(0x8100),
                Action::SetField(Field::VlanVid(0x1000 | 100, None)),
                Action::output(7),
            ])],
        ),
        flow(
            0,
            10,
            vec![Field::InPort(7, None), Field::VlanVid(0x1000 | 100, None)],
            vec![apply(vec![Action::PopVlan, Action::output(1)])],
        ),
        flow(
            0,
            5,
            vec![Field::InPort(8, None)],
            vec![apply(vec![Action::PushVlan(0x8100), Action::output(9)])],
        ),
    ]);
    let o = t.process(&ip4(64), 0);
    assert_eq!(o.ports(), vec![7]);
    assert_eq!(o.outputs[0].packet.vlan_vid(), Some(100));
    assert!(o.outputs[0].packet.headers().contains("dl_vlan=100"));
    assert!(notes(&o).iter().any(|n| n.starts_with("push_vlan")));

    let back = Packet {
        in_port: 7,
        ..ip4(64).with_vlan(100)
    };
    let o = t.process(&back, 0);
    assert_eq!(o.ports(), vec![1]);
    assert_eq!(o.outputs[0].packet.vlan_vid(), None);
    assert_eq!(o.outputs[0].packet.vlan_tci, 0);
    assert!(notes(&o).contains(&"pop_vlan: tag of vid 100 removed".to_string()));
    // Another VLAN from the physical side matches nothing.
    let other = Packet {
        in_port: 7,
        ..ip4(64).with_vlan(101)
    };
    assert!(t.process(&other, 0).outputs.is_empty());

    // push_vlan alone tags with vid 0.
    let plain = Packet {
        in_port: 8,
        ..ip4(64)
    };
    let o = t.process(&plain, 0);
    assert_eq!(o.outputs[0].packet.vlan_vid(), Some(0));
    assert!(o.outputs[0].packet.is_tagged());
}

#[test]
fn vlan_set_fields_that_ovs_would_not_apply_are_ignored() {
    let f = flow(
        0,
        10,
        vec![],
        vec![apply(vec![
            Action::SetField(Field::VlanVid(5, None)),
            Action::SetField(Field::VlanPcp(3, None)),
            Action::output(2),
        ])],
    );
    let mut t = FlowTable::new();
    // OVS refuses both set_fields without a tag in the match (or a push_vlan before).
    assert!(matches!(
        t.apply_flow_mod(&f),
        Err(TableError::MatchInconsistent(_))
    ));
    t.insert_flow(f.key(), f.content());
    let o = t.process(&ip4(64), 0);
    assert_eq!(o.outputs[0].packet.vlan_tci, 0);
    let n = notes(&o);
    assert!(
        n.iter().any(|n| n.contains("lacks OFPVID_PRESENT")),
        "{n:?}"
    );
    assert!(
        n.iter()
            .any(|n| n.contains("vlan_pcp: the packet has no such header")),
        "{n:?}"
    );
    // On a tagged packet the priority is written.
    let o = t.process(&ip4(64).with_vlan(4), 0);
    assert_eq!(o.outputs[0].packet.vlan_pcp(), Some(3));
    assert_eq!(o.outputs[0].packet.vlan_vid(), Some(4));
}

fn nd_solicitation(target: Ipv6Addr) -> Packet {
    Packet {
        in_port: 4,
        eth_src: VM_MAC,
        eth_dst: Mac([0x33, 0x33, 0xff, 0, 0, 0xfe]),
        eth_type: IPV6,
        ip_proto: 58,
        ip6_src: "2001:db8::1".parse().unwrap(),
        ip6_dst: "ff02::1:ff00:fe".parse().unwrap(),
        ip_ttl: 255,
        tp_src: 135,
        nd_target: target,
        nd_sll: VM_MAC,
        nd_options_type: 1,
        ..Packet::default()
    }
}

fn icmp6_type(t: u8) -> Vec<Field> {
    vec![
        Field::EthType(IPV6, None),
        Field::IpProto(58, None),
        Field::Icmpv6Type(t, None),
    ]
}

/// The solicitation's rewrite into an advertisement, up to (not including) the TLL.
fn ns_to_na(router_ip: Ipv6Addr) -> Vec<Action> {
    vec![
        Action::reg_move(header(NXM_OF, 2), header(NXM_OF, 1)),
        Action::SetField(Field::EthSrc(ROUTER_MAC, None)),
        Action::reg_move(header(OFPXMC_OPENFLOW_BASIC, 26), header(NXM_NX, 20)),
        Action::SetField(Field::Ipv6Src(router_ip, None)),
        Action::SetField(Field::Icmpv6Type(136, None)),
        Action::SetField(Field::NdReserved(0xe000_0000, None)),
        Action::SetField(Field::NdOptionsType(2, None)),
    ]
}

/// An ICMPv6 neighbour solicitation for the router's address, answered in pure OpenFlow
/// the one way OVS accepts and executes correctly: table 0 turns the solicitation into an
/// advertisement, table 1 (matching the advertisement) writes the TLL. Verified against
/// OVS 3.1 with a real packet: the reply's option is type 2 with the router's MAC.
#[test]
fn nd_responder_answers_in_two_flows() {
    let router_ip: Ipv6Addr = "2001:db8::fe".parse().unwrap();
    let mut na_rewrite = ns_to_na(router_ip);
    na_rewrite.push(Action::SetField(Field::IpTtl(255, None)));
    let mut m0 = icmp6_type(135);
    m0.push(Field::Ipv6NdTarget(router_ip, None));
    let mut m1 = icmp6_type(136);
    m1.push(Field::Ipv6NdTarget(router_ip, None));
    let t = table(vec![
        flow(
            0,
            100,
            m0,
            vec![apply(na_rewrite), Instruction::GotoTable(1)],
        ),
        flow(
            1,
            100,
            m1,
            vec![apply(vec![
                Action::SetField(Field::Ipv6NdTll(ROUTER_MAC, None)),
                Action::output(port::IN_PORT),
            ])],
        ),
    ]);
    let o = t.process(&nd_solicitation(router_ip), 0);
    assert_eq!(o.ports(), vec![4]);
    let na = &o.outputs[0].packet;
    assert_eq!((na.eth_src, na.eth_dst), (ROUTER_MAC, VM_MAC));
    let vm_ip: Ipv6Addr = "2001:db8::1".parse().unwrap();
    assert_eq!((na.ip6_src, na.ip6_dst), (router_ip, vm_ip));
    assert_eq!((na.tp_src, na.tp_dst), (136, 0));
    assert_eq!(na.nd_reserved, 0xe000_0000);
    assert_eq!(na.nd_options_type, 2);
    assert_eq!(na.nd_tll, ROUTER_MAC);
    assert_eq!(na.nd_target, router_ip);
    assert!(
        na.headers()
            .contains("nd_tll=02:00:00:00:00:fe,nd_reserved=0xe0000000,nd_options_type=2"),
        "{}",
        na.headers()
    );
    // A solicitation for another address is not answered.
    let other = t.process(&nd_solicitation("2001:db8::77".parse().unwrap()), 0);
    assert!(other.outputs.is_empty());
}

/// The one-flow shortcuts do not work in OVS, and the model says so: `nd_tll` under an
/// `icmp_type=135` match is refused when the flow is added, and `nd_sll` written after
/// `icmpv6_type=136` is skipped at run time (the packet is no longer a solicitation).
#[test]
fn nd_responder_in_one_flow_is_refused_or_leaves_the_tll_unset() {
    let router_ip: Ipv6Addr = "2001:db8::fe".parse().unwrap();
    let mut with_tll = ns_to_na(router_ip);
    with_tll.push(Action::SetField(Field::Ipv6NdTll(ROUTER_MAC, None)));
    with_tll.push(Action::output(port::IN_PORT));
    let mut t = FlowTable::new();
    let e = t
        .apply_flow_mod(&flow(0, 100, icmp6_type(135), vec![apply(with_tll)]))
        .unwrap_err();
    assert!(e.to_string().contains("nd_tll"), "{e}");

    let mut with_sll = ns_to_na(router_ip);
    with_sll.push(Action::SetField(Field::Ipv6NdSll(ROUTER_MAC, None)));
    with_sll.push(Action::output(port::IN_PORT));
    let t = table(vec![flow(0, 100, icmp6_type(135), vec![apply(with_sll)])]);
    let o = t.process(&nd_solicitation(router_ip), 0);
    assert_ne!(o.outputs[0].packet.nd_tll, ROUTER_MAC);
    assert_eq!(o.outputs[0].packet.nd_sll, VM_MAC, "skipped");
    assert!(
        notes(&o)
            .iter()
            .any(|n| n.contains("nd_sll: the packet has no such header")),
        "{o:#?}"
    );
}

/// The ICMP echo responder's rewrite.
#[test]
fn echo_responder_rewrites_addresses_and_type() {
    let t = table(vec![flow(
        0,
        100,
        vec![
            Field::EthType(IP, None),
            Field::IpProto(1, None),
            Field::Icmpv4Type(8, None),
            Field::Ipv4Dst(Ipv4Addr::new(10, 0, 0, 254), None),
        ],
        vec![apply(vec![
            Action::reg_move(header(NXM_OF, 2), header(NXM_OF, 1)),
            Action::SetField(Field::EthSrc(ROUTER_MAC, None)),
            Action::reg_move(header(NXM_OF, 7), header(NXM_OF, 8)),
            Action::SetField(Field::Ipv4Src(Ipv4Addr::new(10, 0, 0, 254), None)),
            Action::SetField(Field::Icmpv4Type(0, None)),
            Action::SetField(Field::Icmpv4Code(0, None)),
            Action::output(port::IN_PORT),
        ])],
    )]);
    let echo = Packet {
        in_port: 4,
        eth_src: VM_MAC,
        eth_dst: ROUTER_MAC,
        tp_src: 8,
        ip4_dst: Ipv4Addr::new(10, 0, 0, 254),
        ..ip4(64)
    };
    let o = t.process(&echo, 0);
    let reply = &o.outputs[0].packet;
    assert_eq!((reply.eth_src, reply.eth_dst), (ROUTER_MAC, VM_MAC));
    assert_eq!(reply.ip4_src, Ipv4Addr::new(10, 0, 0, 254));
    assert_eq!(reply.ip4_dst, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!((reply.tp_src, reply.tp_dst), (0, 0));
    assert!(reply.headers().contains("icmp_type=0,icmp_code=0"));
}

#[test]
fn moves_and_loads_reach_the_new_fields() {
    let ttl = header(NXM_NX, 29);
    let nd_reserved = header(ERICOXM_OF, 1);
    let nd_options_type = header(ERICOXM_OF, 2);
    let vlan_tci = header(NXM_OF, 4);
    let icmpv6_type = header(NXM_NX, 21);
    let t = table(vec![flow(
        0,
        10,
        icmp6_type(135),
        vec![apply(vec![
            // reg0[0..7] := nw_ttl; nd_options_type := icmpv6_type; reg1 := vlan_tci
            Action::Nicira(Nicira::RegMove {
                src: Subfield::whole(ttl),
                dst: Subfield::bits(FieldHeader::reg(0), 0, 8),
            }),
            Action::Nicira(Nicira::RegMove {
                src: Subfield::whole(icmpv6_type),
                dst: Subfield::whole(nd_options_type),
            }),
            Action::Nicira(Nicira::RegMove {
                src: Subfield::whole(vlan_tci),
                dst: Subfield::bits(FieldHeader::reg(1), 0, 16),
            }),
            Action::reg_load(Subfield::bits(nd_reserved, 29, 3), 7),
            Action::reg_load(Subfield::whole(ttl), 3),
            Action::output(2),
        ])],
    )]);
    let p = Packet {
        ip_proto: 58,
        tp_src: 135,
        ..ip6(77).with_vlan(0x123)
    };
    let o = t.process(&p, 0);
    let out = &o.outputs[0].packet;
    assert_eq!(out.regs[0], 77);
    assert_eq!(out.nd_options_type, 135);
    assert_eq!(out.regs[1], u32::from(VLAN_CFI | 0x123));
    assert_eq!(out.nd_reserved, 0xe000_0000);
    assert_eq!(out.ip_ttl, 3);
    assert!(notes(&o).is_empty(), "everything is modelled: {o:#?}");
}
