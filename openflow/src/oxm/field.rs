//! The [`Field`] enum: every match field this codec knows, declared once in one table
//! (value type, OXM/NXM class and number, `ovs-ofctl` and NXM names, format), plus the
//! NXM-only names, raw fields, and the fields' wire form.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};

use crate::error::Result;
use crate::types::{Mac, ONF_VENDOR_ID};
use crate::wire::{Emit, Reader};

use super::value::{Fmt, OxmValue, U128Be, format_masked, split};
use super::{
    ERICOXM_OF, FieldHeader, NXM_NX, NXM_OF, OFPXMC_EXPERIMENTER, OFPXMC_OPENFLOW_BASIC,
    OFPXMC_PACKET_REGS,
};

macro_rules! opt {
    () => {
        None
    };
    ($e:expr) => {
        Some($e)
    };
}

macro_rules! fields {
    ($($(#[$m:meta])* $var:ident($ty:ty) = $class:ident : $field:literal $(@ $exp:expr)?, $name:literal, $nxm:literal, $fmt:ident;)*) => {
        /// One match field with its value and optional mask (`None` = exact match).
        ///
        /// Masks are accepted on every field when parsing (as OVS's wire parser is lenient);
        /// [`crate::validate`] says which fields allow them.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field {
            $($(#[$m])* $var($ty, Option<$ty>),)*
            /// NXM_NX_REG0..15: 32-bit registers.
            Reg(u8, u32, Option<u32>),
            /// OXM_OF_PKT_REG0..7: 64-bit registers (`xreg0`..`xreg7`).
            XReg(u8, u64, Option<u64>),
            /// NXM_NX_TUN_METADATA0..63: variable-length Geneve option data. Boxed slices,
            /// not `Vec`s, so that this rare field does not make every `Field` (and every
            /// `set_field` action) of the thousands of flows per switch larger.
            TunMetadata(u8, Box<[u8]>, Option<Box<[u8]>>),
            /// A field this codec does not model; re-emits byte-exact.
            Raw(RawField),
        }

        fn parse_known(h: &FieldHeader, payload: &[u8]) -> Option<Field> {
            $(
                if h.class == $class && h.field == $field && h.experimenter == opt!($($exp)?) {
                    let (v, m) = split::<$ty>(payload, h.has_mask)?;
                    return Some(Field::$var(v, m));
                }
            )*
            None
        }

        fn known_names(class: u16, field: u8, exp: Option<u32>) -> Option<(&'static str, &'static str, usize)> {
            $(
                if class == $class && field == $field && exp == opt!($($exp)?) {
                    return Some(($name, $nxm, <$ty as OxmValue>::LEN));
                }
            )*
            None
        }

        impl Field {
            /// (class, field, experimenter) of this field.
            pub fn id(&self) -> (u16, u8, Option<u32>) {
                match self {
                    $(Field::$var(..) => ($class, $field, opt!($($exp)?)),)*
                    Field::Reg(n, ..) => (NXM_NX, *n, None),
                    Field::XReg(n, ..) => (OFPXMC_PACKET_REGS, *n, None),
                    Field::TunMetadata(n, ..) => (NXM_NX, 40 + *n, None),
                    Field::Raw(r) => (r.class, r.field, r.experimenter),
                }
            }

            fn emit_payload(&self, buf: &mut BytesMut) {
                match self {
                    $(Field::$var(v, m) => {
                        v.write(buf);
                        if let Some(m) = m { m.write(buf); }
                    })*
                    Field::Reg(_, v, m) => { v.write(buf); if let Some(m) = m { m.write(buf); } }
                    Field::XReg(_, v, m) => { v.write(buf); if let Some(m) = m { m.write(buf); } }
                    Field::TunMetadata(_, v, m) => { buf.put_slice(v); if let Some(m) = m { buf.put_slice(m); } }
                    Field::Raw(r) => buf.put_slice(&r.payload),
                }
            }

            fn payload_len(&self) -> usize {
                match self {
                    $(Field::$var(_, m) => <$ty as OxmValue>::LEN * if m.is_some() { 2 } else { 1 },)*
                    Field::Reg(_, _, m) => 4 * if m.is_some() { 2 } else { 1 },
                    Field::XReg(_, _, m) => 8 * if m.is_some() { 2 } else { 1 },
                    Field::TunMetadata(_, v, m) => v.len() + m.as_ref().map_or(0, |m| m.len()),
                    Field::Raw(r) => r.payload.len(),
                }
            }

            /// The same constraint in the form a switch reports it: an all-ones mask
            /// dropped, value bits outside the mask cleared.
            pub fn normalized(&self) -> Field {
                fn norm<T: OxmValue>(v: &T, m: &Option<T>) -> (T, Option<T>) {
                    match m {
                        Some(m) if m.is_all_ones() => (v.clone(), None),
                        Some(m) => (v.and(m), Some(m.clone())),
                        None => (v.clone(), None),
                    }
                }
                match self {
                    $(Field::$var(v, m) => { let (v, m) = norm(v, m); Field::$var(v, m) })*
                    Field::Reg(n, v, m) => { let (v, m) = norm(v, m); Field::Reg(*n, v, m) }
                    Field::XReg(n, v, m) => { let (v, m) = norm(v, m); Field::XReg(*n, v, m) }
                    Field::TunMetadata(n, v, Some(m)) if m.len() == v.len() => {
                        if m.iter().all(|&b| b == 0xff) {
                            Field::TunMetadata(*n, v.clone(), None)
                        } else {
                            Field::TunMetadata(*n, v.iter().zip(m).map(|(a, b)| a & b).collect(), Some(m.clone()))
                        }
                    }
                    other => other.clone(),
                }
            }

            /// True when a mask is present.
            pub fn has_mask(&self) -> bool {
                match self {
                    $(Field::$var(_, m) => m.is_some(),)*
                    Field::Reg(_, _, m) => m.is_some(),
                    Field::XReg(_, _, m) => m.is_some(),
                    Field::TunMetadata(_, _, m) => m.is_some(),
                    Field::Raw(r) => r.has_mask,
                }
            }

            /// The value (and mask if partial) formatted as `ovs-ofctl` prints it after
            /// `set_field:`.
            pub fn format_value(&self) -> String {
                match self {
                    $(Field::$var(v, m) => format_masked(v, m.as_ref(), Fmt::$fmt),)*
                    Field::Reg(_, v, m) => format_masked(v, m.as_ref(), Fmt::Hex),
                    Field::XReg(_, v, m) => format_masked(v, m.as_ref(), Fmt::Hex),
                    Field::TunMetadata(_, v, m) => {
                        let mut s = hex_bytes(v);
                        if let Some(m) = m { s.push('/'); s.push_str(&hex_bytes(m)); }
                        s
                    }
                    Field::Raw(r) => hex_bytes(&r.payload),
                }
            }
        }
    };
}

fn hex_bytes(b: &[u8]) -> String {
    let mut s = String::from("0x");
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

const OXM: u16 = OFPXMC_OPENFLOW_BASIC;
const NX: u16 = NXM_NX;
const EXP: u16 = OFPXMC_EXPERIMENTER;
const ERIC: u16 = ERICOXM_OF;

fields! {
    InPort(u32) = OXM:0, "in_port", "OXM_OF_IN_PORT", Port;
    InPhyPort(u32) = OXM:1, "in_phy_port", "OXM_OF_IN_PHY_PORT", Port;
    Metadata(u64) = OXM:2, "metadata", "OXM_OF_METADATA", Hex;
    EthDst(Mac) = OXM:3, "eth_dst", "NXM_OF_ETH_DST", Mac;
    EthSrc(Mac) = OXM:4, "eth_src", "NXM_OF_ETH_SRC", Mac;
    EthType(u16) = OXM:5, "eth_type", "NXM_OF_ETH_TYPE", Hex;
    /// OpenFlow 1.3 VLAN id: bit 0x1000 ([`OFPVID_PRESENT`](super::OFPVID_PRESENT)) says a
    /// tag is present, the low 12 bits are the id. `VlanVid(0, None)` matches untagged
    /// packets, `VlanVid(0x1000, Some(0x1000))` any tagged one; `set_field` must carry
    /// the present bit (OVS refuses the action without it).
    VlanVid(u16) = OXM:6, "vlan_vid", "OXM_OF_VLAN_VID", Dec;
    VlanPcp(u8) = OXM:7, "vlan_pcp", "OXM_OF_VLAN_PCP", Dec;
    IpDscp(u8) = OXM:8, "ip_dscp", "OXM_OF_IP_DSCP", Dec;
    IpEcn(u8) = OXM:9, "nw_ecn", "NXM_NX_IP_ECN", Dec;
    IpProto(u8) = OXM:10, "nw_proto", "NXM_OF_IP_PROTO", Dec;
    Ipv4Src(Ipv4Addr) = OXM:11, "ip_src", "NXM_OF_IP_SRC", Ip;
    Ipv4Dst(Ipv4Addr) = OXM:12, "ip_dst", "NXM_OF_IP_DST", Ip;
    TcpSrc(u16) = OXM:13, "tcp_src", "NXM_OF_TCP_SRC", Dec;
    TcpDst(u16) = OXM:14, "tcp_dst", "NXM_OF_TCP_DST", Dec;
    UdpSrc(u16) = OXM:15, "udp_src", "NXM_OF_UDP_SRC", Dec;
    UdpDst(u16) = OXM:16, "udp_dst", "NXM_OF_UDP_DST", Dec;
    SctpSrc(u16) = OXM:17, "sctp_src", "OXM_OF_SCTP_SRC", Dec;
    SctpDst(u16) = OXM:18, "sctp_dst", "OXM_OF_SCTP_DST", Dec;
    Icmpv4Type(u8) = OXM:19, "icmp_type", "NXM_OF_ICMP_TYPE", Dec;
    Icmpv4Code(u8) = OXM:20, "icmp_code", "NXM_OF_ICMP_CODE", Dec;
    ArpOp(u16) = OXM:21, "arp_op", "NXM_OF_ARP_OP", Dec;
    ArpSpa(Ipv4Addr) = OXM:22, "arp_spa", "NXM_OF_ARP_SPA", Ip;
    ArpTpa(Ipv4Addr) = OXM:23, "arp_tpa", "NXM_OF_ARP_TPA", Ip;
    ArpSha(Mac) = OXM:24, "arp_sha", "NXM_NX_ARP_SHA", Mac;
    ArpTha(Mac) = OXM:25, "arp_tha", "NXM_NX_ARP_THA", Mac;
    Ipv6Src(Ipv6Addr) = OXM:26, "ipv6_src", "NXM_NX_IPV6_SRC", Ip;
    Ipv6Dst(Ipv6Addr) = OXM:27, "ipv6_dst", "NXM_NX_IPV6_DST", Ip;
    Ipv6Flabel(u32) = OXM:28, "ipv6_label", "NXM_NX_IPV6_LABEL", Hex;
    Icmpv6Type(u8) = OXM:29, "icmpv6_type", "NXM_NX_ICMPV6_TYPE", Dec;
    Icmpv6Code(u8) = OXM:30, "icmpv6_code", "NXM_NX_ICMPV6_CODE", Dec;
    Ipv6NdTarget(Ipv6Addr) = OXM:31, "nd_target", "NXM_NX_ND_TARGET", Ip;
    Ipv6NdSll(Mac) = OXM:32, "nd_sll", "NXM_NX_ND_SLL", Mac;
    Ipv6NdTll(Mac) = OXM:33, "nd_tll", "NXM_NX_ND_TLL", Mac;
    MplsLabel(u32) = OXM:34, "mpls_label", "OXM_OF_MPLS_LABEL", Dec;
    MplsTc(u8) = OXM:35, "mpls_tc", "OXM_OF_MPLS_TC", Dec;
    MplsBos(u8) = OXM:36, "mpls_bos", "OXM_OF_MPLS_BOS", Dec;
    PbbIsid([u8; 3]) = OXM:37, "pbb_isid", "OXM_OF_PBB_ISID", Hex;
    TunnelId(u64) = OXM:38, "tun_id", "NXM_NX_TUN_ID", Hex;
    Ipv6Exthdr(u16) = OXM:39, "ipv6_exthdr", "OXM_OF_IPV6_EXTHDR", Hex;
    /// IPv4 TTL or IPv6 hop limit (OVS's `nw_ttl` covers both).
    IpTtl(u8) = NX:29, "nw_ttl", "NXM_NX_IP_TTL", Dec;
    TunIpv4Src(Ipv4Addr) = NX:31, "tun_src", "NXM_NX_TUN_IPV4_SRC", Ip;
    TunIpv4Dst(Ipv4Addr) = NX:32, "tun_dst", "NXM_NX_TUN_IPV4_DST", Ip;
    PktMark(u32) = NX:33, "pkt_mark", "NXM_NX_PKT_MARK", Hex;
    ConjId(u32) = NX:37, "conj_id", "NXM_NX_CONJ_ID", Dec;
    CtState(u32) = NX:105, "ct_state", "NXM_NX_CT_STATE", CtState;
    CtZone(u16) = NX:106, "ct_zone", "NXM_NX_CT_ZONE", Dec;
    CtMark(u32) = NX:107, "ct_mark", "NXM_NX_CT_MARK", Hex;
    CtLabel(U128Be) = NX:108, "ct_label", "NXM_NX_CT_LABEL", Hex;
    /// ONF extension 242 field for OpenFlow 1.3 (OVS's encoding of `tcp_flags` there).
    TcpFlags(u16) = EXP:42 @ ONF_VENDOR_ID, "tcp_flags", "ONFOXM_ET_TCP_FLAGS", Hex;
    ActsetOutput(u32) = EXP:43 @ ONF_VENDOR_ID, "actset_output", "ONFOXM_ET_ACTSET_OUTPUT", Port;
    /// The 32-bit word after an ND message's checksum: reserved in a solicitation, the
    /// R|S|O flags (0xe0000000 = all three) in an advertisement. OVS >= 2.11.
    NdReserved(u32) = ERIC:1, "nd_reserved", "ERICOXM_OF_ICMPV6_ND_RESERVED", Dec;
    /// The type of an ND message's first option (1 = source, 2 = target link-layer
    /// address): writing 2 turns a solicitation's SLL option into an advertisement's TLL.
    NdOptionsType(u8) = ERIC:2, "nd_options_type", "ERICOXM_OF_ICMPV6_ND_OPTIONS_TYPE", Dec;
}

/// Names of NXM fields that have no [`Field`] variant of their own (their OXM twin has),
/// so subfields in `reg_move`/`output_reg` written with NXM headers still print by name.
const NXM_ONLY_NAMES: &[(u16, u8, &str, &str, usize)] = &[
    (NXM_OF, 0, "in_port", "NXM_OF_IN_PORT", 2),
    (NXM_OF, 1, "eth_dst", "NXM_OF_ETH_DST", 6),
    (NXM_OF, 2, "eth_src", "NXM_OF_ETH_SRC", 6),
    (NXM_OF, 3, "eth_type", "NXM_OF_ETH_TYPE", 2),
    (NXM_OF, 4, "vlan_tci", "NXM_OF_VLAN_TCI", 2),
    (NXM_OF, 5, "nw_tos", "NXM_OF_IP_TOS", 1),
    (NXM_OF, 6, "nw_proto", "NXM_OF_IP_PROTO", 1),
    (NXM_OF, 7, "ip_src", "NXM_OF_IP_SRC", 4),
    (NXM_OF, 8, "ip_dst", "NXM_OF_IP_DST", 4),
    (NXM_OF, 9, "tcp_src", "NXM_OF_TCP_SRC", 2),
    (NXM_OF, 10, "tcp_dst", "NXM_OF_TCP_DST", 2),
    (NXM_OF, 11, "udp_src", "NXM_OF_UDP_SRC", 2),
    (NXM_OF, 12, "udp_dst", "NXM_OF_UDP_DST", 2),
    (NXM_OF, 13, "icmp_type", "NXM_OF_ICMP_TYPE", 1),
    (NXM_OF, 14, "icmp_code", "NXM_OF_ICMP_CODE", 1),
    (NXM_OF, 15, "arp_op", "NXM_OF_ARP_OP", 2),
    (NXM_OF, 16, "arp_spa", "NXM_OF_ARP_SPA", 4),
    (NXM_OF, 17, "arp_tpa", "NXM_OF_ARP_TPA", 4),
    (NXM_NX, 16, "tun_id", "NXM_NX_TUN_ID", 8),
    (NXM_NX, 17, "arp_sha", "NXM_NX_ARP_SHA", 6),
    (NXM_NX, 18, "arp_tha", "NXM_NX_ARP_THA", 6),
    (NXM_NX, 19, "ipv6_src", "NXM_NX_IPV6_SRC", 16),
    (NXM_NX, 20, "ipv6_dst", "NXM_NX_IPV6_DST", 16),
    (NXM_NX, 21, "icmpv6_type", "NXM_NX_ICMPV6_TYPE", 1),
    (NXM_NX, 22, "icmpv6_code", "NXM_NX_ICMPV6_CODE", 1),
    (NXM_NX, 23, "nd_target", "NXM_NX_ND_TARGET", 16),
    (NXM_NX, 24, "nd_sll", "NXM_NX_ND_SLL", 6),
    (NXM_NX, 25, "nd_tll", "NXM_NX_ND_TLL", 6),
];

/// The OXM field an OpenFlow-1.0-era NXM field is the same as (NXM_OF_ETH_TYPE ->
/// OXM_OF_ETH_TYPE), so values written with either header format the same way.
pub fn oxm_twin(class: u16, field: u8) -> Option<(u16, u8)> {
    let f = match (class, field) {
        (NXM_OF, 1) => 3,
        (NXM_OF, 2) => 4,
        (NXM_OF, 3) => 5,
        (NXM_OF, 6) => 10,
        (NXM_OF, 7) => 11,
        (NXM_OF, 8) => 12,
        (NXM_OF, n @ 9..=12) => n + 4,
        (NXM_OF, 13) => 19,
        (NXM_OF, 14) => 20,
        (NXM_OF, n @ 15..=17) => n + 6,
        (NXM_NX, 16) => 38,
        (NXM_NX, 17) => 24,
        (NXM_NX, 18) => 25,
        (NXM_NX, 19) => 26,
        (NXM_NX, 20) => 27,
        (NXM_NX, n @ 21..=25) => n + 8,
        _ => return None,
    };
    Some((OFPXMC_OPENFLOW_BASIC, f))
}

pub(super) fn names(class: u16, field: u8, exp: Option<u32>) -> Option<(String, String)> {
    if let Some((n, x, _)) = known_names(class, field, exp) {
        return Some((n.into(), x.into()));
    }
    if exp.is_none() {
        if let Some(&(_, _, n, x, _)) = NXM_ONLY_NAMES.iter().find(|e| e.0 == class && e.1 == field)
        {
            return Some((n.into(), x.into()));
        }
        if class == NXM_NX && field < 16 {
            return Some((format!("reg{field}"), format!("NXM_NX_REG{field}")));
        }
        if class == OFPXMC_PACKET_REGS && field < 8 {
            return Some((format!("xreg{field}"), format!("OXM_OF_PKT_REG{field}")));
        }
        if class == NXM_NX && (40..104).contains(&field) {
            let n = field - 40;
            return Some((
                format!("tun_metadata{n}"),
                format!("NXM_NX_TUN_METADATA{n}"),
            ));
        }
    }
    None
}

pub(super) fn field_width(class: u16, field: u8, exp: Option<u32>) -> Option<usize> {
    if let Some((_, _, w)) = known_names(class, field, exp) {
        return Some(w);
    }
    if exp.is_none() {
        if let Some(e) = NXM_ONLY_NAMES.iter().find(|e| e.0 == class && e.1 == field) {
            return Some(e.4);
        }
        if class == NXM_NX && field < 16 {
            return Some(4);
        }
        if class == OFPXMC_PACKET_REGS && field < 8 {
            return Some(8);
        }
    }
    None
}

/// An OXM TLV this codec does not interpret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RawField {
    pub class: u16,
    pub field: u8,
    pub has_mask: bool,
    pub experimenter: Option<u32>,
    /// Value and mask bytes (after the experimenter id, if any); a boxed slice to keep
    /// [`Field`] small.
    pub payload: Box<[u8]>,
}

impl Field {
    /// This field's wire header.
    pub fn header(&self) -> FieldHeader {
        let (class, field, experimenter) = self.id();
        let len = self.payload_len() + if experimenter.is_some() { 4 } else { 0 };
        FieldHeader {
            class,
            field,
            has_mask: self.has_mask(),
            len: u8::try_from(len).unwrap_or(u8::MAX),
            experimenter,
        }
    }

    /// OVS's name for the field (`tun_id`, `reg7`, `eth_src`).
    pub fn name(&self) -> String {
        let h = self.header();
        h.name()
            .unwrap_or_else(|| format!("field{:#x}", h.to_u32()))
    }

    /// Parses one TLV. Malformed payloads of known fields fall back to [`Field::Raw`]
    /// (lenient, like OVS), only a header or payload past the buffer is an error.
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Field> {
        let h = FieldHeader::parse(r)?;
        let exp_len = if h.experimenter.is_some() { 4 } else { 0 };
        let plen = usize::from(h.len)
            .checked_sub(exp_len)
            .ok_or_else(|| r.bad_len("oxm field", usize::from(h.len)))?;
        let payload = r.bytes(plen, "oxm payload")?;
        if let Some(f) = parse_known(&h, payload) {
            return Ok(f);
        }
        if h.experimenter.is_none() {
            if h.class == NXM_NX
                && h.field < 16
                && let Some((v, m)) = split::<u32>(payload, h.has_mask)
            {
                return Ok(Field::Reg(h.field, v, m));
            }
            if h.class == OFPXMC_PACKET_REGS
                && h.field < 8
                && let Some((v, m)) = split::<u64>(payload, h.has_mask)
            {
                return Ok(Field::XReg(h.field, v, m));
            }
            if h.class == NXM_NX && (40..104).contains(&h.field) && !payload.is_empty() {
                let ok = !h.has_mask || payload.len() % 2 == 0;
                if ok {
                    let (v, m) = if h.has_mask {
                        let (v, m) = payload.split_at(payload.len() / 2);
                        (v.into(), Some(m.into()))
                    } else {
                        (payload.into(), None)
                    };
                    return Ok(Field::TunMetadata(h.field - 40, v, m));
                }
            }
        }
        Ok(Field::Raw(RawField {
            class: h.class,
            field: h.field,
            has_mask: h.has_mask,
            experimenter: h.experimenter,
            payload: payload.into(),
        }))
    }

    /// A zero-valued field of the identity `h` names (an NXM header stands for its OXM
    /// twin), for asking what a subfield of it requires; `None` for a field this codec
    /// does not model.
    pub fn probe(h: &FieldHeader) -> Option<Field> {
        let mut h = FieldHeader {
            has_mask: false,
            ..*h
        };
        if h.experimenter.is_none()
            && let Some((class, field)) = oxm_twin(h.class, h.field)
        {
            h.class = class;
            h.field = field;
        }
        let width = field_width(h.class, h.field, h.experimenter)?;
        h.len = u8::try_from(width + if h.experimenter.is_some() { 4 } else { 0 }).ok()?;
        let mut b = BytesMut::new();
        h.emit(&mut b);
        b.put_bytes(0, width);
        match Field::parse(&mut Reader::with_base(&b, 0)) {
            Ok(Field::Raw(_)) | Err(_) => None,
            Ok(f) => Some(f),
        }
    }

    /// Key used to order fields canonically: by protocol layer, then wire identity (then
    /// value). The layer comes first because OVS checks each OXM field's prerequisites
    /// against the fields before it in the match: `nw_ttl` (an NXM field, class 1) must
    /// follow `eth_type` (class 0x8000), `nd_target` the ICMPv6 type.
    pub(super) fn sort_key(&self) -> (u8, u16, Option<u32>, u8) {
        let (c, f, e) = self.id();
        (self.layer(), c, e, f)
    }

    /// How deep in the packet a field is: 0 pipeline metadata (no prerequisite), 1
    /// Ethernet, 2 network, 3 transport, 4 what depends on a transport field (ND).
    fn layer(&self) -> u8 {
        use Field::*;
        match self {
            EthDst(..) | EthSrc(..) | EthType(..) | VlanVid(..) | VlanPcp(..) => 1,
            IpDscp(..) | IpEcn(..) | IpProto(..) | Ipv4Src(..) | Ipv4Dst(..) | ArpOp(..)
            | ArpSpa(..) | ArpTpa(..) | ArpSha(..) | ArpTha(..) | Ipv6Src(..) | Ipv6Dst(..)
            | Ipv6Flabel(..) | MplsLabel(..) | MplsTc(..) | MplsBos(..) | PbbIsid(..)
            | Ipv6Exthdr(..) | IpTtl(..) => 2,
            TcpSrc(..) | TcpDst(..) | UdpSrc(..) | UdpDst(..) | SctpSrc(..) | SctpDst(..)
            | Icmpv4Type(..) | Icmpv4Code(..) | Icmpv6Type(..) | Icmpv6Code(..) | TcpFlags(..) => 3,
            Ipv6NdTarget(..) | Ipv6NdSll(..) | Ipv6NdTll(..) | NdReserved(..)
            | NdOptionsType(..) => 4,
            _ => 0,
        }
    }
}

impl Emit for Field {
    fn buffer_len(&self) -> usize {
        self.header().header_len() + self.payload_len()
    }
    fn emit(&self, buf: &mut BytesMut) {
        self.header().emit(buf);
        self.emit_payload(buf);
    }
}

// Every flow's match fields and `set_field` actions are `Field`s; at thousands of switches
// × ~1,700 flows each byte counts (see `U128Be` and `Field::TunMetadata`).
const _: () = assert!(std::mem::size_of::<Field>() <= 40);
