//! Prerequisite checks for matches, separate from parsing: the wire parser stays lenient (as
//! OVS's is) and the controller runs this pass on what it builds, so a flow the switch would
//! reject with OFPBMC_BAD_PREREQ is caught before it is sent.

use crate::oxm::{Field, Match};

/// Why a match is not valid OpenFlow 1.3.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrereqError {
    #[error("{field} requires {needs}")]
    Missing { field: String, needs: &'static str },
    #[error("{field} appears twice")]
    Duplicate { field: String },
    #[error("{field} does not allow a mask")]
    MaskNotAllowed { field: String },
}

fn eth_type(m: &Match) -> Option<u16> {
    m.fields.iter().find_map(|f| {
        if let Field::EthType(t, None) = f {
            Some(*t)
        } else {
            None
        }
    })
}

fn ip_proto(m: &Match) -> Option<u8> {
    m.fields.iter().find_map(|f| {
        if let Field::IpProto(p, None) = f {
            Some(*p)
        } else {
            None
        }
    })
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
    let et = eth_type(m);
    let proto = ip_proto(m);
    let is_ip = matches!(et, Some(0x0800) | Some(0x86dd));
    let is_icmp6 = et == Some(0x86dd) && proto == Some(58);
    let icmp6_type = m.fields.iter().find_map(|f| match f {
        Field::Icmpv6Type(t, None) => Some(*t),
        _ => None,
    });
    for f in &m.fields {
        use Field::*;
        let need = |cond: bool, needs: &'static str| {
            if cond {
                Ok(())
            } else {
                Err(PrereqError::Missing {
                    field: f.name(),
                    needs,
                })
            }
        };
        match f {
            IpDscp(..) | IpEcn(..) | IpProto(..) => need(is_ip, "eth_type=0x0800 or 0x86dd")?,
            Ipv4Src(..) | Ipv4Dst(..) => need(et == Some(0x0800), "eth_type=0x0800")?,
            TcpSrc(..) | TcpDst(..) => need(is_ip && proto == Some(6), "ip_proto=6")?,
            UdpSrc(..) | UdpDst(..) => need(is_ip && proto == Some(17), "ip_proto=17")?,
            SctpSrc(..) | SctpDst(..) => need(is_ip && proto == Some(132), "ip_proto=132")?,
            Icmpv4Type(..) | Icmpv4Code(..) => {
                need(et == Some(0x0800) && proto == Some(1), "ip_proto=1 (IPv4)")?
            }
            ArpOp(..) | ArpSpa(..) | ArpTpa(..) | ArpSha(..) | ArpTha(..) => {
                need(et == Some(0x0806), "eth_type=0x0806")?
            }
            Ipv6Src(..) | Ipv6Dst(..) | Ipv6Flabel(..) | Ipv6Exthdr(..) => {
                need(et == Some(0x86dd), "eth_type=0x86dd")?
            }
            Icmpv6Type(..) | Icmpv6Code(..) => need(
                et == Some(0x86dd) && proto == Some(58),
                "ip_proto=58 (IPv6)",
            )?,
            Ipv6NdTarget(..) | NdReserved(..) | NdOptionsType(..) => need(
                is_icmp6 && icmp6_type.is_some_and(|t| t == 135 || t == 136),
                "icmpv6_type=135 or 136",
            )?,
            // As OVS: the SLL option belongs to a solicitation, the TLL to an advertisement.
            Ipv6NdSll(..) => need(is_icmp6 && icmp6_type == Some(135), "icmpv6_type=135")?,
            Ipv6NdTll(..) => need(is_icmp6 && icmp6_type == Some(136), "icmpv6_type=136")?,
            IpTtl(..) => need(is_ip, "eth_type=0x0800 or 0x86dd")?,
            MplsLabel(..) | MplsTc(..) | MplsBos(..) => need(
                matches!(et, Some(0x8847 | 0x8848)),
                "eth_type=0x8847 or 0x8848",
            )?,
            PbbIsid(..) => need(et == Some(0x88e7), "eth_type=0x88e7")?,
            VlanPcp(..) => need(
                m.fields
                    .iter()
                    .any(|g| matches!(g, VlanVid(v, None) if *v != 0)),
                "vlan_vid other than none",
            )?,
            TcpFlags(..) => need(is_ip && proto == Some(6), "ip_proto=6")?,
            _ => {}
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
}
