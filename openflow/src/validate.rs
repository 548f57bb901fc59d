//! Prerequisite checks, separate from parsing: the wire parser stays lenient (as OVS's
//! is) and the controller runs these passes on what it builds, so a flow the switch would
//! reject is caught before it is sent. [`validate`] checks a match (OFPBMC_BAD_PREREQ);
//! [`validate_actions`] checks a flow's actions against its match as OVS's
//! `ofpacts_check` does for OpenFlow 1.3 (OFPBAC_MATCH_INCONSISTENT): `dec_ttl` needs an
//! IP match, `set_field:...->nd_tll` an ND advertisement match, and so on.

use crate::action::{Action, Nicira, Subfield};
use crate::instruction::Instruction;
use crate::oxm::{Field, Match, OFPVID_PRESENT};

/// Why a match, or a flow's actions against its match, is not valid OpenFlow 1.3.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrereqError {
    #[error("{field} requires {needs}")]
    Missing { field: String, needs: &'static str },
    #[error("{field} appears twice")]
    Duplicate { field: String },
    #[error("{field} does not allow a mask")]
    MaskNotAllowed { field: String },
    /// An action whose prerequisites the flow's match does not pin (OVS refuses the flow
    /// with OFPBAC_MATCH_INCONSISTENT).
    #[error("action {action} needs {needs} in the match")]
    Inconsistent { action: String, needs: &'static str },
}

/// What a match pins down, as far as prerequisites go.
#[derive(Clone, Copy, Debug, Default)]
struct Pinned {
    eth_type: Option<u16>,
    ip_proto: Option<u8>,
    icmp6_type: Option<u8>,
    /// The match's `vlan_vid` requires a tag (or, for actions, an earlier `push_vlan`
    /// added one).
    tagged: bool,
}

impl Pinned {
    fn of(m: &Match) -> Self {
        let mut p = Pinned::default();
        for f in &m.fields {
            match f {
                Field::EthType(t, None) => p.eth_type = Some(*t),
                Field::IpProto(v, None) => p.ip_proto = Some(*v),
                Field::Icmpv6Type(t, None) => p.icmp6_type = Some(*t),
                Field::VlanVid(v, mk) => {
                    p.tagged |= v & mk.unwrap_or(u16::MAX) & OFPVID_PRESENT != 0;
                }
                _ => {}
            }
        }
        p
    }

    fn is_ip(&self) -> bool {
        matches!(self.eth_type, Some(0x0800 | 0x86dd))
    }

    fn is_icmp6(&self) -> bool {
        self.eth_type == Some(0x86dd) && self.ip_proto == Some(58)
    }

    /// The requirement of `f` this leaves unmet, if any. Nicira fields have none.
    fn unmet(&self, f: &Field) -> Option<&'static str> {
        use Field::*;
        let et = self.eth_type;
        let proto = self.ip_proto;
        let need = |cond: bool, needs: &'static str| (!cond).then_some(needs);
        match f {
            IpDscp(..) | IpEcn(..) | IpProto(..) | IpTtl(..) => {
                need(self.is_ip(), "eth_type=0x0800 or 0x86dd")
            }
            Ipv4Src(..) | Ipv4Dst(..) => need(et == Some(0x0800), "eth_type=0x0800"),
            TcpSrc(..) | TcpDst(..) | TcpFlags(..) => {
                need(self.is_ip() && proto == Some(6), "ip_proto=6")
            }
            UdpSrc(..) | UdpDst(..) => need(self.is_ip() && proto == Some(17), "ip_proto=17"),
            SctpSrc(..) | SctpDst(..) => need(self.is_ip() && proto == Some(132), "ip_proto=132"),
            Icmpv4Type(..) | Icmpv4Code(..) => {
                need(et == Some(0x0800) && proto == Some(1), "ip_proto=1 (IPv4)")
            }
            ArpOp(..) | ArpSpa(..) | ArpTpa(..) | ArpSha(..) | ArpTha(..) => {
                need(et == Some(0x0806), "eth_type=0x0806")
            }
            Ipv6Src(..) | Ipv6Dst(..) | Ipv6Flabel(..) | Ipv6Exthdr(..) => {
                need(et == Some(0x86dd), "eth_type=0x86dd")
            }
            Icmpv6Type(..) | Icmpv6Code(..) => need(self.is_icmp6(), "ip_proto=58 (IPv6)"),
            Ipv6NdTarget(..) | NdReserved(..) | NdOptionsType(..) => need(
                self.is_icmp6() && matches!(self.icmp6_type, Some(135 | 136)),
                "icmpv6_type=135 or 136",
            ),
            // As OVS: the SLL option belongs to a solicitation, the TLL to an advertisement.
            Ipv6NdSll(..) => need(
                self.is_icmp6() && self.icmp6_type == Some(135),
                "icmpv6_type=135",
            ),
            Ipv6NdTll(..) => need(
                self.is_icmp6() && self.icmp6_type == Some(136),
                "icmpv6_type=136",
            ),
            MplsLabel(..) | MplsTc(..) | MplsBos(..) => need(
                matches!(et, Some(0x8847 | 0x8848)),
                "eth_type=0x8847 or 0x8848",
            ),
            PbbIsid(..) => need(et == Some(0x88e7), "eth_type=0x88e7"),
            VlanPcp(..) => need(self.tagged, "vlan_vid other than none"),
            _ => None,
        }
    }
}

/// Checks OpenFlow 1.3 prerequisites (§7.2.3.8), duplicates and masks on fields that do not
/// allow one. Nicira fields have no prerequisites.
pub fn validate(m: &Match) -> Result<(), PrereqError> {
    let mut seen = std::collections::HashSet::new();
    for f in &m.fields {
        if !seen.insert(f.id()) {
            return Err(PrereqError::Duplicate { field: f.name() });
        }
    }
    let pinned = Pinned::of(m);
    for f in &m.fields {
        use Field::*;
        if let Some(needs) = pinned.unmet(f) {
            return Err(PrereqError::Missing {
                field: f.name(),
                needs,
            });
        }
        let maskable = matches!(
            f,
            Metadata(..)
                | EthDst(..)
                | EthSrc(..)
                | VlanVid(..)
                | Ipv4Src(..)
                | Ipv4Dst(..)
                | ArpSpa(..)
                | ArpTpa(..)
                | ArpSha(..)
                | ArpTha(..)
                | Ipv6Src(..)
                | Ipv6Dst(..)
                | Ipv6Flabel(..)
                | PbbIsid(..)
                | TunnelId(..)
                | Ipv6Exthdr(..)
                | Reg(..)
                | XReg(..)
                | TunIpv4Src(..)
                | TunIpv4Dst(..)
                | PktMark(..)
                | CtState(..)
                | CtMark(..)
                | CtLabel(..)
                | TunMetadata(..)
                | TcpFlags(..)
                | Raw(..)
        );
        if f.has_mask() && !maskable {
            return Err(PrereqError::MaskNotAllowed { field: f.name() });
        }
    }
    Ok(())
}

/// Checks a flow's apply- and write-actions against its match the way OVS does before it
/// accepts an OpenFlow 1.3 flow: a field an action writes or reads (`set_field`, `load`,
/// `move`) must have its prerequisites pinned by the match; `dec_ttl`, `mod_nw_ttl` and
/// `ct` need an IP match; `set_field` of `vlan_vid`/`vlan_pcp` and `pop_vlan` need a tag,
/// from the match or an earlier `push_vlan`. A `set_field` of `icmpv6_type` does not count
/// as a match: OVS refuses `icmp_type=135` with `set_field:136->icmpv6_type` followed by
/// `set_field:...->nd_tll`, so an ND responder writes `nd_tll` in a second flow that
/// matches the advertisement.
pub fn validate_actions(m: &Match, instructions: &[Instruction]) -> Result<(), PrereqError> {
    let mut pinned = Pinned::of(m);
    // A priority match implies a tag too (OVS sets the CFI bit for it).
    pinned.tagged |= m.fields.iter().any(|f| matches!(f, Field::VlanPcp(..)));
    for i in instructions {
        if let Instruction::ApplyActions(a) | Instruction::WriteActions(a) = i {
            check_actions(a, &mut pinned)?;
        }
    }
    Ok(())
}

fn check_actions(actions: &[Action], pinned: &mut Pinned) -> Result<(), PrereqError> {
    let bad = |a: &Action, needs| PrereqError::Inconsistent {
        action: a.to_string(),
        needs,
    };
    let subfield = |a: &Action, sf: &Subfield, pinned: &Pinned| match Field::probe(&sf.field) {
        Some(f) => pinned.unmet(&f).map_or(Ok(()), |needs| Err(bad(a, needs))),
        None => Ok(()),
    };
    for a in actions {
        match a {
            Action::DecNwTtl | Action::SetNwTtl(_) | Action::Nicira(Nicira::DecTtl)
                if !pinned.is_ip() =>
            {
                return Err(bad(a, "eth_type=0x0800 or 0x86dd"));
            }
            Action::Nicira(Nicira::Ct(ct)) => {
                if !pinned.is_ip() {
                    return Err(bad(a, "eth_type=0x0800 or 0x86dd"));
                }
                check_actions(&ct.actions, pinned)?;
            }
            Action::PushVlan(_) => pinned.tagged = true,
            Action::PopVlan => {
                if !pinned.tagged {
                    return Err(bad(a, "a VLAN tag"));
                }
                pinned.tagged = false;
            }
            Action::SetField(f) | Action::Nicira(Nicira::RegLoad2(f)) => {
                if matches!(f, Field::VlanVid(..) | Field::VlanPcp(..)) && !pinned.tagged {
                    return Err(bad(a, "a VLAN tag"));
                }
                if let Some(needs) = pinned.unmet(f) {
                    return Err(bad(a, needs));
                }
            }
            Action::Nicira(Nicira::RegLoad { dst, .. }) => subfield(a, dst, pinned)?,
            Action::Nicira(Nicira::RegMove { src, dst }) => {
                subfield(a, src, pinned)?;
                subfield(a, dst, pinned)?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_port_needs_proto_and_eth_type() {
        let bad = Match::new(vec![Field::TcpDst(80, None)]);
        assert!(matches!(validate(&bad), Err(PrereqError::Missing { .. })));
        let good = Match::new(vec![
            Field::EthType(0x0800, None),
            Field::IpProto(6, None),
            Field::TcpDst(80, None),
        ]);
        assert_eq!(validate(&good), Ok(()));
        let arp = Match::new(vec![Field::ArpOp(1, None)]);
        assert!(validate(&arp).is_err());
        let masked = Match::new(vec![Field::EthType(0x0800, Some(0xffff))]);
        assert!(matches!(
            validate(&masked),
            Err(PrereqError::MaskNotAllowed { .. })
        ));
        let ttl = Match::new(vec![Field::IpTtl(1, None)]);
        assert!(validate(&ttl).is_err());
        let ttl = Match::new(vec![Field::EthType(0x86dd, None), Field::IpTtl(1, None)]);
        assert_eq!(validate(&ttl), Ok(()));
        let dup = Match::new(vec![Field::Reg(6, 1, None), Field::Reg(6, 2, None)]);
        assert!(matches!(validate(&dup), Err(PrereqError::Duplicate { .. })));
    }

    #[test]
    fn nd_fields_need_the_right_nd_message() {
        let nd = |ty: u8, f: Field| {
            validate(&Match::new(vec![
                Field::EthType(0x86dd, None),
                Field::IpProto(58, None),
                Field::Icmpv6Type(ty, None),
                f,
            ]))
        };
        assert_eq!(nd(135, Field::NdReserved(0, None)), Ok(()));
        assert_eq!(nd(136, Field::NdOptionsType(2, None)), Ok(()));
        assert!(nd(128, Field::NdReserved(0, None)).is_err());
        assert_eq!(nd(135, Field::Ipv6NdSll(crate::Mac::ZERO, None)), Ok(()));
        assert!(nd(136, Field::Ipv6NdSll(crate::Mac::ZERO, None)).is_err());
        assert!(nd(135, Field::Ipv6NdTll(crate::Mac::ZERO, None)).is_err());
        assert!(matches!(
            nd(135, Field::NdReserved(0, Some(1))),
            Err(PrereqError::MaskNotAllowed { .. })
        ));
    }

    fn apply(actions: Vec<Action>) -> Vec<Instruction> {
        vec![Instruction::ApplyActions(actions)]
    }

    /// Each refusal and acceptance here is what `ovs-ofctl -O OpenFlow13 parse-flow`
    /// (OVS 3.1) says about the same flow.
    #[test]
    fn actions_are_checked_against_the_match_as_ovs_does() {
        use crate::oxm::FieldHeader;
        let ip = Match::new(vec![Field::EthType(0x0800, None)]);
        let any = Match::default();
        let ok = |m: &Match, a: Vec<Action>| validate_actions(m, &apply(a));
        assert_eq!(ok(&ip, vec![Action::DecNwTtl]), Ok(()));
        assert!(ok(&any, vec![Action::DecNwTtl]).is_err());
        assert!(ok(&any, vec![Action::SetNwTtl(5)]).is_err());
        assert!(ok(&any, vec![Action::SetField(Field::IpTtl(1, None))]).is_err());
        let ttl = FieldHeader::known(crate::oxm::NXM_NX, 29, None).unwrap();
        assert!(ok(&any, vec![Action::reg_load(Subfield::whole(ttl), 1)]).is_err());
        assert!(ok(&any, vec![Action::reg_move(ttl, FieldHeader::reg(0))]).is_err());
        assert_eq!(
            ok(&ip, vec![Action::reg_move(ttl, FieldHeader::reg(0))]),
            Ok(())
        );
        assert!(ok(&ip, vec![Action::SetField(Field::TcpSrc(1, None))]).is_err());
        // VLAN: a tag from the match or a push.
        assert!(ok(&any, vec![Action::PopVlan]).is_err());
        assert!(ok(&any, vec![Action::SetField(Field::VlanVid(0x1005, None))]).is_err());
        assert_eq!(
            ok(
                &any,
                vec![
                    Action::PushVlan(0x8100),
                    Action::SetField(Field::VlanVid(0x1005, None)),
                    Action::PopVlan,
                ]
            ),
            Ok(())
        );
        let tagged = Match::new(vec![Field::VlanVid(0x1003, None)]);
        assert_eq!(ok(&tagged, vec![Action::PopVlan]), Ok(()));
        assert_eq!(
            ok(&tagged, vec![Action::SetField(Field::VlanPcp(3, None))]),
            Ok(())
        );
        // ND: nd_tll only where the match says advertisement, whatever set_field did.
        let ns = Match::new(vec![
            Field::EthType(0x86dd, None),
            Field::IpProto(58, None),
            Field::Icmpv6Type(135, None),
        ]);
        assert_eq!(
            ok(
                &ns,
                vec![
                    Action::SetField(Field::Icmpv6Type(136, None)),
                    Action::SetField(Field::NdReserved(0xe000_0000, None)),
                    Action::SetField(Field::NdOptionsType(2, None)),
                ]
            ),
            Ok(())
        );
        let tll = Action::SetField(Field::Ipv6NdTll(crate::Mac::ZERO, None));
        assert!(
            ok(
                &ns,
                vec![Action::SetField(Field::Icmpv6Type(136, None)), tll.clone()]
            )
            .is_err()
        );
        let na = Match::new(vec![
            Field::EthType(0x86dd, None),
            Field::IpProto(58, None),
            Field::Icmpv6Type(136, None),
        ]);
        assert_eq!(ok(&na, vec![tll]), Ok(()));
        let icmp6 = Match::new(vec![Field::EthType(0x86dd, None), Field::IpProto(58, None)]);
        assert!(ok(&icmp6, vec![Action::SetField(Field::NdReserved(0, None))]).is_err());
        // ct needs IP, and its nested actions are checked too.
        let ct = |actions| {
            Action::Nicira(Nicira::Ct(Box::new(crate::action::Ct {
                flags: crate::action::Ct::COMMIT,
                zone: crate::action::CtZone::Immediate(1),
                recirc_table: crate::action::Ct::NO_RECIRC,
                alg: 0,
                actions,
            })))
        };
        assert!(ok(&any, vec![ct(vec![])]).is_err());
        assert_eq!(
            ok(
                &ip,
                vec![ct(vec![Action::SetField(Field::CtMark(1, None))])]
            ),
            Ok(())
        );
    }
}
