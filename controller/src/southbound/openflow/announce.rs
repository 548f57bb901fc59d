//! Announcing ports to external VXLAN endpoints: gratuitous ARP, as PACKET_OUTs straight
//! into each endpoint's tunnel with the switch's VNI, for every port that newly became
//! complete on this node (a VM plugged or moved here). A legacy VTEP learns the port's MAC
//! behind this node from it, and the legacy hosts behind it update their ARP caches, so
//! traffic follows a moved VM at once instead of after the VTEP's ageing time.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use openflow::types::NO_BUFFER;
use openflow::{Action, Field, Message, PacketOut, port};
use uuid::Uuid;

use crate::desired::Announcement;

/// The PACKET_OUTs announcing what is in `now` and was not announced as it is in `before`.
pub(super) fn announcements(
    before: &BTreeMap<Uuid, Announcement>,
    now: &BTreeMap<Uuid, Announcement>,
) -> Vec<Message> {
    now.iter()
        .filter(|(id, a)| before.get(id) != Some(a))
        .flat_map(|(_, a)| {
            a.ipv4.iter().map(move |ip| {
                let mut actions = vec![Action::SetField(Field::TunnelId(u64::from(a.vni), None))];
                actions.extend(a.tunnel_ofports.iter().map(|p| Action::output(*p)));
                Message::PacketOut(PacketOut {
                    buffer_id: NO_BUFFER,
                    in_port: port::CONTROLLER,
                    actions,
                    data: gratuitous_arp(a.mac.0, *ip),
                })
            })
        })
        .collect()
}

/// A broadcast ARP request from `mac` for its own address `ip` (sender and target
/// address equal): what Linux sends for `arping -U`, and what updates an existing entry
/// in every receiver's cache.
pub(super) fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    f.extend_from_slice(&0x0800u16.to_be_bytes()); // protocol: IPv4
    f.extend_from_slice(&[6, 4]);
    f.extend_from_slice(&1u16.to_be_bytes()); // request
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&ip.octets());
    f.resize(60, 0); // minimum Ethernet frame, without FCS
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MacAddr;

    #[test]
    fn garp_bytes() {
        let f = gratuitous_arp([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(f.len(), 60);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1], "request");
        assert_eq!(&f[22..28], &[2, 0, 0, 0, 0, 1], "sha");
        assert_eq!(&f[28..32], &[10, 0, 0, 1], "spa");
        assert_eq!(&f[38..42], &[10, 0, 0, 1], "tpa = spa");
    }

    #[test]
    fn only_new_or_changed_ports_are_announced() {
        let a = Announcement {
            vni: 5001,
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            ipv4: vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 1, 1)],
            tunnel_ofports: vec![20, 21],
        };
        let id = Uuid::from_u128(1);
        let now = BTreeMap::from([(id, a.clone())]);
        let msgs = announcements(&BTreeMap::new(), &now);
        assert_eq!(msgs.len(), 2, "one per address");
        let Message::PacketOut(po) = &msgs[0] else {
            panic!("{msgs:?}")
        };
        assert_eq!(
            po.actions,
            vec![
                Action::SetField(Field::TunnelId(5001, None)),
                Action::output(20),
                Action::output(21)
            ]
        );
        assert!(announcements(&now, &now).is_empty());
        let mut moved = a;
        moved.tunnel_ofports = vec![20];
        assert_eq!(announcements(&now, &BTreeMap::from([(id, moved)])).len(), 2);
    }
}
