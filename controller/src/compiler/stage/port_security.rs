//! Table 10, port security: what a VM sends must carry its own MAC and addresses
//! (ARP sha/spa, IPv4 and IPv6 sources, its link-local and `::` for DAD).

use std::net::Ipv6Addr;

use openflow::{Field, Mac};

use super::{
    ETH_ARP, ETH_IP, ETH_IPV6, FlowBuilder, ND_NEIGHBOR_ADVERT, PROTO_ICMPV6, goto, mac, v4, v6,
};
use crate::compiler::ids::{cookie_for, tables};
use crate::model::{LogicalPort, MacAddr};

impl FlowBuilder<'_> {
    pub(super) fn port_security(&mut self, vni: u32, p: &LogicalPort) {
        use tables::*;
        let pc = cookie_for(&p.id);
        let base = || {
            vec![
                Field::Metadata(u64::from(vni), None),
                Field::Reg(6, u32::from(p.key), None),
            ]
        };
        let with = |extra: Vec<Field>| {
            let mut f = base();
            f.extend(extra);
            f
        };
        let m = mac(p.mac);
        if !p.port_security {
            self.add(PORT_SECURITY, 100, base(), vec![goto(EGRESS_ACL)], pc);
            return;
        }
        if !p.ips.is_empty() {
            for ip in p.ips.iter().filter_map(v4) {
                self.add(
                    PORT_SECURITY,
                    100,
                    with(vec![
                        Field::EthType(ETH_ARP, None),
                        Field::EthSrc(m, None),
                        Field::ArpSha(m, None),
                        Field::ArpSpa(ip, None),
                    ]),
                    vec![goto(EGRESS_ACL)],
                    pc,
                );
                self.add(
                    PORT_SECURITY,
                    100,
                    with(vec![
                        Field::EthType(ETH_IP, None),
                        Field::EthSrc(m, None),
                        Field::Ipv4Src(ip, None),
                    ]),
                    vec![goto(EGRESS_ACL)],
                    pc,
                );
            }
            let own6: Vec<Ipv6Addr> = p.ips.iter().filter_map(v6).collect();
            if !own6.is_empty() {
                let ll = link_local(p.mac);
                let mut sources = own6.clone();
                sources.push(ll);
                sources.push(Ipv6Addr::UNSPECIFIED);
                sources.sort();
                sources.dedup();
                for src in &sources {
                    self.add(
                        PORT_SECURITY,
                        100,
                        with(vec![
                            Field::EthType(ETH_IPV6, None),
                            Field::EthSrc(m, None),
                            Field::Ipv6Src(*src, None),
                        ]),
                        vec![goto(EGRESS_ACL)],
                        pc,
                    );
                }
                // Neighbour advertisements may only announce the port's own addresses,
                // with its own MAC (or without a target link-layer option).
                let mut targets = own6;
                targets.push(ll);
                targets.sort();
                targets.dedup();
                for t in &targets {
                    for tll in [m, Mac::ZERO] {
                        self.add(
                            PORT_SECURITY,
                            110,
                            with(vec![
                                Field::EthType(ETH_IPV6, None),
                                Field::IpProto(PROTO_ICMPV6, None),
                                Field::Icmpv6Type(ND_NEIGHBOR_ADVERT, None),
                                Field::Icmpv6Code(0, None),
                                Field::EthSrc(m, None),
                                Field::Ipv6NdTarget(*t, None),
                                Field::Ipv6NdTll(tll, None),
                            ]),
                            vec![goto(EGRESS_ACL)],
                            pc,
                        );
                    }
                }
                self.add(
                    PORT_SECURITY,
                    105,
                    with(vec![
                        Field::EthType(ETH_IPV6, None),
                        Field::IpProto(PROTO_ICMPV6, None),
                        Field::Icmpv6Type(ND_NEIGHBOR_ADVERT, None),
                        Field::Icmpv6Code(0, None),
                    ]),
                    vec![],
                    pc,
                );
            }
            for et in [ETH_ARP, ETH_IP, ETH_IPV6] {
                self.add(
                    PORT_SECURITY,
                    90,
                    with(vec![Field::EthType(et, None)]),
                    vec![],
                    pc,
                );
            }
        }
        self.add(
            PORT_SECURITY,
            80,
            with(vec![Field::EthSrc(m, None)]),
            vec![goto(EGRESS_ACL)],
            pc,
        );
    }
}

/// The EUI-64 link-local address a NIC derives from its MAC (`fe80::` + modified EUI-64).
pub fn link_local(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 2,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}
