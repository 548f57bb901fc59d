//! A router's presence on the switches it is attached to (docs/pipeline.md, "Routing"),
//! in table 25 next to the ARP responder: its port addresses answer ARP, neighbour
//! solicitation and ping on the sender's hypervisor, and frames sent to its MAC enter the
//! router (table 26) with `metadata` switched from the VNI to the router's.
//!
//! The neighbour advertisement takes two steps because Open vSwitch checks a `set_field`'s
//! prerequisites against the flow as it stands: `nd_tll` may only be written once the
//! packet is an advertisement, so table 25 turns the solicitation into one and table 26
//! writes the target link-layer address and sends it back (checked with real packets on
//! the dummy datapath, docs/pipeline.md).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use openflow::{Action, Field, FieldHeader, Nicira, Subfield, oxm};

use super::{ETH_IP, ETH_IPV6, FlowBuilder, PROTO_ICMPV6, apply, goto, mac, nxm, set};
use crate::compiler::ids::{cookie_for, router_metadata, tables};
use crate::model::{LogicalRouter, MacAddr, RouterPort};

const PROTO_ICMP: u8 = 1;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;
/// Router, solicited and override flags of a neighbour advertisement.
const NA_FLAGS_ROUTER_SOLICITED_OVERRIDE: u32 = 0xe000_0000;
/// ND option type "target link-layer address".
const ND_OPT_TARGET_LINKADDR: u8 = 2;
/// Echo replies in table 26: above the TTL checks (1000).
const ECHO_PRIORITY: u16 = 1500;
/// TTL / hop limit of what the router itself sends.
const ROUTER_TTL: u8 = 255;

impl FlowBuilder<'_> {
    /// Router port `rp` of `router` on switch `vni`, where this node has local ports:
    /// ARP and ND answers for `rp`'s addresses, and the way into the router.
    pub(crate) fn router_port_local(&mut self, vni: u32, router: &LogicalRouter, rp: &RouterPort) {
        let cookie = cookie_for(&rp.id);
        let md = || Field::Metadata(u64::from(vni), None);
        for ip in rp.addrs() {
            match ip {
                IpAddr::V4(a) => self.router_arp(vni, rp, a),
                IpAddr::V6(a) => self.router_nd(vni, rp, a),
            }
        }
        self.add(
            tables::ARP_RESPONDER,
            50,
            vec![md(), Field::EthDst(mac(rp.mac), None)],
            vec![
                apply(vec![set(Field::Metadata(
                    router_metadata(router.key),
                    None,
                ))]),
                goto(tables::L3_LOOKUP),
            ],
            cookie,
        );
    }

    fn router_arp(&mut self, vni: u32, rp: &RouterPort, ip: Ipv4Addr) {
        self.arp_reply(vni, rp.mac, ip, cookie_for(&rp.id));
    }

    /// Neighbour solicitation for a router address, step one: the reply, addressed back,
    /// with the advertisement's type and flags; table 26 finishes it. Duplicate address
    /// detection (from `::`) is not answered.
    fn router_nd(&mut self, vni: u32, rp: &RouterPort, ip: Ipv6Addr) {
        let cookie = cookie_for(&rp.id);
        let ns = |extra: Option<Field>| {
            let mut f = vec![
                Field::Metadata(u64::from(vni), None),
                Field::EthType(ETH_IPV6, None),
                Field::IpProto(PROTO_ICMPV6, None),
                Field::Icmpv6Type(ND_NEIGHBOR_SOLICIT, None),
                Field::Icmpv6Code(0, None),
                Field::Ipv6NdTarget(ip, None),
            ];
            f.extend(extra);
            f
        };
        self.add(
            tables::ARP_RESPONDER,
            110,
            ns(Some(Field::Ipv6Src(Ipv6Addr::UNSPECIFIED, None))),
            vec![goto(tables::L2_LOOKUP)],
            cookie,
        );
        let mut actions = swap_addresses(ReplyMac::Is(rp.mac), IpAddr::V6(ip));
        actions.extend([
            set(Field::Icmpv6Type(ND_NEIGHBOR_ADVERT, None)),
            set(Field::NdReserved(NA_FLAGS_ROUTER_SOLICITED_OVERRIDE, None)),
            set(Field::NdOptionsType(ND_OPT_TARGET_LINKADDR, None)),
        ]);
        self.add(
            tables::ARP_RESPONDER,
            100,
            ns(None),
            vec![apply(actions), goto(tables::L3_LOOKUP)],
            cookie,
        );
        self.add(
            tables::L3_LOOKUP,
            2000,
            vec![
                Field::Metadata(u64::from(vni), None),
                Field::EthType(ETH_IPV6, None),
                Field::IpProto(PROTO_ICMPV6, None),
                Field::Icmpv6Type(ND_NEIGHBOR_ADVERT, None),
                Field::Icmpv6Code(0, None),
                Field::Ipv6NdTarget(ip, None),
            ],
            vec![apply(vec![
                set(Field::Ipv6NdTll(mac(rp.mac), None)),
                Action::output(openflow::port::IN_PORT),
            ])],
            cookie,
        );
    }

    /// Ping of router address `ip` (of port `rp`), from any switch of the router: answered
    /// inside the router (table 26, above the TTL checks: a router answers a ping that
    /// reached it whatever its TTL), back out of the asking port with `ip` as the source
    /// and the router MAC it was sent to as the Ethernet source. One flow per address,
    /// not per address and switch.
    pub(crate) fn router_echo(&mut self, router: &LogicalRouter, rp: &RouterPort, ip: IpAddr) {
        let (fields, reply_type) = match ip {
            IpAddr::V4(a) => (
                vec![
                    Field::EthType(ETH_IP, None),
                    Field::IpProto(PROTO_ICMP, None),
                    Field::Ipv4Dst(a, None),
                    Field::Icmpv4Type(ICMP_ECHO_REQUEST, None),
                ],
                set(Field::Icmpv4Type(ICMP_ECHO_REPLY, None)),
            ),
            IpAddr::V6(a) => (
                vec![
                    Field::EthType(ETH_IPV6, None),
                    Field::IpProto(PROTO_ICMPV6, None),
                    Field::Ipv6Dst(a, None),
                    Field::Icmpv6Type(ICMPV6_ECHO_REQUEST, None),
                ],
                set(Field::Icmpv6Type(ICMPV6_ECHO_REPLY, None)),
            ),
        };
        let mut m = vec![Field::Metadata(router_metadata(router.key), None)];
        m.extend(fields);
        let mut actions = swap_addresses(ReplyMac::WasDestination, ip);
        actions.push(reply_type);
        actions.push(Action::output(openflow::port::IN_PORT));
        self.add(
            tables::L3_LOOKUP,
            ECHO_PRIORITY,
            m,
            vec![apply(actions)],
            cookie_for(&rp.id),
        );
    }
}

/// Where a reply's Ethernet source comes from.
enum ReplyMac {
    /// The router port's MAC, known when the flow is per port.
    Is(MacAddr),
    /// The request's destination: the router MAC the asker sent to, whichever switch it
    /// is on. Swapped with the source through reg0/reg1 (a MAC is 48 bits), which the
    /// pipeline uses nowhere else.
    WasDestination,
}

/// The start of every reply the router sends back where a request came from: Ethernet
/// and IP addresses swapped, `src` (a router address) as the source, a fresh TTL.
fn swap_addresses(mac_src: ReplyMac, src: IpAddr) -> Vec<Action> {
    let eth_src = nxm(oxm::NXM_OF, 2, 6);
    let eth_dst = nxm(oxm::NXM_OF, 1, 6);
    let mut a = match mac_src {
        ReplyMac::Is(m) => vec![
            Action::reg_move(eth_src, eth_dst),
            set(Field::EthSrc(mac(m), None)),
        ],
        ReplyMac::WasDestination => {
            let part = |field, ofs, n_bits| Subfield { field, ofs, n_bits };
            let (reg0, reg1) = (FieldHeader::reg(0), FieldHeader::reg(1));
            let mv = |src: Subfield, dst: Subfield| Action::Nicira(Nicira::RegMove { src, dst });
            vec![
                mv(part(eth_dst, 0, 32), part(reg0, 0, 32)),
                mv(part(eth_dst, 32, 16), part(reg1, 0, 16)),
                Action::reg_move(eth_src, eth_dst),
                mv(part(reg0, 0, 32), part(eth_src, 0, 32)),
                mv(part(reg1, 0, 16), part(eth_src, 32, 16)),
            ]
        }
    };
    match src {
        IpAddr::V4(s) => {
            a.push(Action::reg_move(
                nxm(oxm::NXM_OF, 7, 4),
                nxm(oxm::NXM_OF, 8, 4),
            ));
            a.push(set(Field::Ipv4Src(s, None)));
        }
        IpAddr::V6(s) => {
            a.push(Action::reg_move(
                nxm(oxm::NXM_NX, 19, 16),
                nxm(oxm::NXM_NX, 20, 16),
            ));
            a.push(set(Field::Ipv6Src(s, None)));
        }
    }
    a.push(set(Field::IpTtl(ROUTER_TTL, None)));
    a
}
