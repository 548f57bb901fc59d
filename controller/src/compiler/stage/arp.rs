//! Table 25, the ARP responder: requests for a known address of the switch are turned
//! into replies on the asking VM's hypervisor and never cross the overlay.

use std::net::Ipv4Addr;

use openflow::{Action, Field, oxm};

use super::{ETH_ARP, FlowBuilder, apply, goto, mac, nxm, set, v4};
use crate::compiler::ids::{cookie_for, tables};
use crate::model::{LogicalPort, MacAddr};

impl FlowBuilder<'_> {
    /// Answers ARP for a local port's IPv4 addresses; the port's own requests for them
    /// (probes, gratuitous ARP) are not answered and go on to the L2 lookup.
    pub(super) fn arp_local(&mut self, vni: u32, p: &LogicalPort) {
        for ip in p.ips.iter().filter_map(v4) {
            self.arp_reply(vni, p.mac, ip, cookie_for(&p.id));
            self.add(
                tables::ARP_RESPONDER,
                110,
                vec![
                    Field::Metadata(u64::from(vni), None),
                    Field::Reg(6, u32::from(p.key), None),
                    Field::EthType(ETH_ARP, None),
                    Field::ArpOp(1, None),
                    Field::ArpTpa(ip, None),
                ],
                vec![goto(tables::L2_LOOKUP)],
                cookie_for(&p.id),
            );
        }
    }

    /// Answers ARP for a remote port's IPv4 addresses, on this node.
    pub(super) fn arp_remote(&mut self, vni: u32, p: &LogicalPort) {
        for ip in p.ips.iter().filter_map(v4) {
            self.arp_reply(vni, p.mac, ip, cookie_for(&p.id));
        }
    }

    /// Answers ARP requests for `ip` on switch `vni` with `owner` (a port's or a router
    /// port's MAC), back out of the port that asked.
    pub(super) fn arp_reply(&mut self, vni: u32, owner: MacAddr, ip: Ipv4Addr, cookie: u64) {
        let eth_src = nxm(oxm::NXM_OF, 2, 6);
        let eth_dst = nxm(oxm::NXM_OF, 1, 6);
        let arp_spa = nxm(oxm::NXM_OF, 16, 4);
        let arp_tpa = nxm(oxm::NXM_OF, 17, 4);
        let arp_sha = nxm(oxm::NXM_NX, 17, 6);
        let arp_tha = nxm(oxm::NXM_NX, 18, 6);
        self.add(
            tables::ARP_RESPONDER,
            100,
            vec![
                Field::Metadata(u64::from(vni), None),
                Field::EthType(ETH_ARP, None),
                Field::ArpOp(1, None),
                Field::ArpTpa(ip, None),
            ],
            vec![apply(vec![
                Action::reg_move(eth_src, eth_dst),
                set(Field::EthSrc(mac(owner), None)),
                set(Field::ArpOp(2, None)),
                Action::reg_move(arp_sha, arp_tha),
                set(Field::ArpSha(mac(owner), None)),
                Action::reg_move(arp_spa, arp_tpa),
                set(Field::ArpSpa(ip, None)),
                Action::output(openflow::port::IN_PORT),
            ])],
            cookie,
        );
    }
}
