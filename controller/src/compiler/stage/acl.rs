//! Tables 20/21 (egress ACL, from the VM) and 40/41 (ingress ACL, to the VM): reflexive
//! ACLs on conntrack, one zone per port.

use std::collections::BTreeSet;

use ipnet::IpNet;
use openflow::{Action, Ct, CtZone, Field, FieldHeader, Nicira, Subfield};
use uuid::Uuid;

use super::{ETH_IP, ETH_IPV6, FlowBuilder, apply, goto, set};
use crate::compiler::ids::{cookie_for, tables};
use crate::desired::AclFlows;
use crate::model::{Acl, AclAction, Direction, Ethertype, LogicalPort};

impl FlowBuilder<'_> {
    /// Tables 20/21 (egress, from the VM) and 40/41 (ingress, to the VM) for one port.
    ///
    /// A port without ACLs never meets conntrack. A port with ACLs in at least one
    /// direction sends its IP traffic through conntrack in its zone in *both* directions:
    /// the direction without ACLs is open, and it commits every new connection (a
    /// lowest-priority `ct(commit)` instead of the drop), so that replies to connections
    /// the VM opened through the open direction are `+est` when they meet the restricted
    /// one. Without that commit, a port with only ingress ACLs could open nothing: every
    /// reply would be `+new` on ingress and dropped (OVN commits all traffic of a port
    /// with stateful ACLs for the same reason).
    pub(super) fn acls(&mut self, vni: u32, p: &LogicalPort, acls: &[&Acl]) {
        use tables::*;
        let pc = cookie_for(&p.id);
        let md = || Field::Metadata(u64::from(vni), None);
        let zone = || CtZone::Field(Subfield::bits(FieldHeader::reg(13), 0, 16));
        if acls.is_empty() {
            return;
        }
        // Replies and related traffic pass, in both directions, only for connections
        // whose mark names a rule of this port that still exists. Each pass flow sits at
        // its admitting rule's priority, so that a higher-priority drop of the same
        // direction (its established-traffic flow below) wins over it.
        let mut marks: Vec<(u32, u16, u64)> = acls
            .iter()
            .filter(|a| a.action == AclAction::AllowRelated)
            .map(|a| (acl_mark(&a.id), acl_flow_priority(a), cookie_for(&a.id)))
            .collect();
        let both = [Direction::Egress, Direction::Ingress];
        if !both.iter().all(|d| acls.iter().any(|a| a.direction == *d)) {
            marks.push((OPEN_DIRECTION_MARK, OPEN_DIRECTION_PRIORITY, pc));
        }
        for (ct_table, next, reg) in [
            (EGRESS_ACL_CT, ARP_RESPONDER, 6),
            (INGRESS_ACL_CT, OUTPUT, 7),
        ] {
            for (mark, priority, cookie) in &marks {
                // Established and related in one flow: tracked, neither new nor invalid
                // is exactly one of the two (and `+inv` is dropped above everything).
                self.add(
                    ct_table,
                    *priority,
                    vec![
                        md(),
                        Field::Reg(reg, u32::from(p.key), None),
                        ct_match(ct_bits::TRK, ct_bits::NEW | ct_bits::INV | ct_bits::TRK),
                        Field::CtMark(*mark, None),
                    ],
                    vec![goto(next)],
                    *cookie,
                );
            }
        }
        for dir in [Direction::Egress, Direction::Ingress] {
            let rules: Vec<&&Acl> = acls.iter().filter(|a| a.direction == dir).collect();
            let (table, ct_table, next, reg) = match dir {
                Direction::Egress => (EGRESS_ACL, EGRESS_ACL_CT, ARP_RESPONDER, 6),
                Direction::Ingress => (INGRESS_ACL, INGRESS_ACL_CT, OUTPUT, 7),
            };
            let key = Field::Reg(reg, u32::from(p.key), None);
            for et in [ETH_IP, ETH_IPV6] {
                let mut actions = Vec::new();
                if dir == Direction::Ingress {
                    // The sender's zone (same node) must not leak into the receiver's.
                    actions.push(Action::Nicira(Nicira::CtClear));
                    actions.push(set(Field::Reg(13, u32::from(p.zone), None)));
                }
                actions.push(Action::Nicira(Nicira::Ct(Box::new(Ct {
                    flags: 0,
                    zone: zone(),
                    recirc_table: ct_table,
                    alg: 0,
                    actions: vec![],
                }))));
                self.add(
                    table,
                    100,
                    vec![md(), key.clone(), Field::EthType(et, None)],
                    vec![apply(actions)],
                    pc,
                );
            }
            if rules.is_empty() {
                // The open direction: every new connection is admitted and committed
                // (`ct` needs an IP ethertype in the match, hence one flow per family).
                for et in [ETH_IP, ETH_IPV6] {
                    self.add(
                        ct_table,
                        OPEN_DIRECTION_PRIORITY,
                        vec![
                            md(),
                            key.clone(),
                            ct_match(ct_bits::NEW | ct_bits::TRK, ct_bits::NEW | ct_bits::TRK),
                            Field::EthType(et, None),
                        ],
                        vec![
                            apply(vec![commit_with_mark(zone(), OPEN_DIRECTION_MARK)]),
                            goto(next),
                        ],
                        pc,
                    );
                }
                continue;
            }
            for acl in &rules {
                let mut withhold = BTreeSet::from([cookie_for(&acl.id)]);
                if acl.action == AclAction::Drop {
                    withhold.extend(
                        rules
                            .iter()
                            .filter(|r| r.action != AclAction::Drop && r.priority < acl.priority)
                            .map(|r| cookie_for(&r.id)),
                    );
                }
                self.out.acls.insert(
                    cookie_for(&acl.id),
                    AclFlows {
                        acl: acl.id,
                        port: p.id,
                        direction: dir,
                        withhold,
                    },
                );
                let et = match acl.ethertype {
                    Ethertype::Ipv4 => ETH_IP,
                    Ethertype::Ipv6 => ETH_IPV6,
                };
                // The rule's own match, without the conntrack state.
                let mut base = vec![md(), key.clone(), Field::EthType(et, None)];
                if let Some(proto) = acl.protocol {
                    base.push(Field::IpProto(proto.number(), None));
                }
                if let Some(net) = acl.remote_cidr
                    && let Some(f) = cidr_field(net, dir)
                {
                    base.push(f);
                }
                let new = ct_match(ct_bits::NEW | ct_bits::TRK, ct_bits::NEW | ct_bits::TRK);
                let insts = match acl.action {
                    AclAction::Drop => vec![],
                    AclAction::Allow => vec![goto(next)],
                    AclAction::AllowRelated => vec![
                        apply(vec![commit_with_mark(zone(), acl_mark(&acl.id))]),
                        goto(next),
                    ],
                };
                // A drop is also evaluated for established traffic in the connection's
                // original direction (`-rpl`: a packet of the side that opened it, in the
                // direction the rule guards). It wins over the pass flow of a
                // lower-priority rule that admitted the connection, and re-commits the
                // connection with [`BLOCKED_MARK`], which no flow passes, so the replies
                // in the other direction stop too. Replies (`+rpl`) are never matched:
                // a drop in one direction does not cut what the port opened in the other
                // (reflexive replies belong to the connection, not to this direction).
                let blocked = (acl.action == AclAction::Drop).then(|| {
                    (
                        ct_match(ct_bits::EST | ct_bits::TRK, CT_NEW_EST_RPL_TRK),
                        vec![apply(vec![commit_with_mark(zone(), BLOCKED_MARK)])],
                    )
                });
                let priority = acl_flow_priority(acl);
                let ranges = match (acl.protocol, acl.port_min, acl.port_max) {
                    (Some(proto), lo, hi)
                        if proto.has_ports() && (lo.is_some() || hi.is_some()) =>
                    {
                        let lo = lo.unwrap_or(0);
                        let hi = hi.unwrap_or(u16::MAX).max(lo);
                        port_masks(lo, hi)
                            .into_iter()
                            .map(|(v, m)| {
                                if m == 0 {
                                    return None; // every port
                                }
                                let m = (m != u16::MAX).then_some(m);
                                Some(if proto.number() == 6 {
                                    Field::TcpDst(v, m)
                                } else {
                                    Field::UdpDst(v, m)
                                })
                            })
                            .collect()
                    }
                    _ => vec![None],
                };
                for r in ranges {
                    let mut fields = base.clone();
                    fields.extend(r);
                    let mut new_fields = fields.clone();
                    new_fields.push(new.clone());
                    self.add(
                        ct_table,
                        priority,
                        new_fields,
                        insts.clone(),
                        cookie_for(&acl.id),
                    );
                    if let Some((est, cut)) = &blocked {
                        fields.push(est.clone());
                        self.add(ct_table, priority, fields, cut.clone(), cookie_for(&acl.id));
                    }
                }
            }
        }
    }
}

/// `ct_mark` of connections committed by the open direction of a port (see
/// [`OPEN_DIRECTION_PRIORITY`]). ACL marks ([`acl_mark`]) have the top bit set, so never
/// equal it.
pub const OPEN_DIRECTION_MARK: u32 = 1;

/// `ct_mark` of the connections an `allow-related` ACL committed: the low 31 bits of its
/// id with the top bit set (never 0, the mark of an unmarked connection). Replies and
/// related packets pass only while a flow names a live ACL's mark, so deleting the ACL
/// cuts the connections it admitted. Two ACLs of one port sharing 31 random bits would
/// keep each other's connections alive; that is the whole cost of a collision.
pub fn acl_mark(id: &Uuid) -> u32 {
    (id.as_u128() as u32) | 0x8000_0000
}

fn commit_with_mark(zone: CtZone, mark: u32) -> Action {
    Action::Nicira(Nicira::Ct(Box::new(Ct {
        flags: Ct::COMMIT,
        zone,
        recirc_table: Ct::NO_RECIRC,
        alg: 0,
        actions: vec![Action::SetField(Field::CtMark(mark, None))],
    })))
}

/// `ct_mark` of a connection a drop rule cut (see [`FlowBuilder::acls`]): no flow passes
/// it, in either direction, whatever rules exist later; the endpoints have to open a new
/// connection, which meets the rules as they are then. Distinct from
/// [`OPEN_DIRECTION_MARK`] and from every [`acl_mark`] (top bit clear).
pub const BLOCKED_MARK: u32 = 2;

/// Priority, in tables 21 and 41, of an ACL's flows: its new-connection flows, a drop's
/// established-traffic flows and an `allow-related` rule's pass flows for its mark.
pub fn acl_flow_priority(acl: &Acl) -> u16 {
    1000u16.saturating_add(acl.priority)
}

/// Priority, in tables 21 and 41, of the flow that commits every new connection in the
/// direction of a port that has no ACLs while the other direction has some. Below every
/// ACL (1000 + priority), above the table-miss drop.
pub const OPEN_DIRECTION_PRIORITY: u16 = 1;

/// `ct_state` bits (ovs-fields(7)).
pub(super) mod ct_bits {
    pub const NEW: u32 = 0x01;
    pub const EST: u32 = 0x02;
    pub const RPL: u32 = 0x08;
    pub const INV: u32 = 0x10;
    pub const TRK: u32 = 0x20;
}
pub(super) const CT_INV_TRK: u32 = ct_bits::INV | ct_bits::TRK;
pub(super) const CT_NEW_EST_TRK: u32 = ct_bits::NEW | ct_bits::EST | ct_bits::TRK;
pub(super) const CT_NEW_EST_RPL_TRK: u32 = CT_NEW_EST_TRK | ct_bits::RPL;

pub(super) fn ct_match(value: u32, mask: u32) -> Field {
    Field::CtState(value, Some(mask))
}

/// The remote end of an ACL: destination for egress, source for ingress. `None` for
/// `/0`, which matches everything.
fn cidr_field(net: IpNet, dir: Direction) -> Option<Field> {
    if net.prefix_len() == 0 {
        return None;
    }
    let full = net.prefix_len() == net.max_prefix_len();
    Some(match (net, dir) {
        (IpNet::V4(n), Direction::Egress) => {
            Field::Ipv4Dst(n.network(), (!full).then(|| n.netmask()))
        }
        (IpNet::V4(n), Direction::Ingress) => {
            Field::Ipv4Src(n.network(), (!full).then(|| n.netmask()))
        }
        (IpNet::V6(n), Direction::Egress) => {
            Field::Ipv6Dst(n.network(), (!full).then(|| n.netmask()))
        }
        (IpNet::V6(n), Direction::Ingress) => {
            Field::Ipv6Src(n.network(), (!full).then(|| n.netmask()))
        }
    })
}

/// The minimal set of `value/mask` matches covering exactly the ports `lo..=hi`: greedy
/// largest aligned power-of-two blocks. `0..=65535` is one match with mask 0 (the caller
/// keeps it: it still requires the protocol).
pub fn port_masks(lo: u16, hi: u16) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let (mut lo, hi) = (u32::from(lo), u32::from(hi));
    while lo <= hi {
        let mut size: u32 = if lo == 0 {
            1 << 16
        } else {
            lo & lo.wrapping_neg()
        };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        // Both fit in 16 bits: lo <= hi <= 65535 and size <= 65536.
        out.push((lo as u16, (!(size - 1) & 0xffff) as u16));
        lo += size;
    }
    out
}
