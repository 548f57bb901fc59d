//! The packet the software flow table walks: headers and pipeline metadata as OVS's
//! `struct flow` holds them, and how match fields, `set_field` and Nicira subfields read
//! and write it. Everything is reduced to (field, value, mask) over a `u128`, so one
//! comparison serves every field width.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::oxm::{self, Field, FieldHeader, Match};
use crate::types::Mac;

/// `ct_state` bits (ovs-fields(7)).
pub mod ct_state {
    pub const NEW: u32 = 0x01;
    pub const EST: u32 = 0x02;
    pub const REL: u32 = 0x04;
    pub const RPL: u32 = 0x08;
    pub const INV: u32 = 0x10;
    pub const TRK: u32 = 0x20;
}

/// A packet and its pipeline metadata, as the flow table sees it. Fields that do not apply
/// to the packet's protocol stay zero (as in OVS's `struct flow`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub in_port: u32,
    pub metadata: u64,
    pub regs: [u32; 16],
    pub tun_id: u64,
    pub eth_src: Mac,
    pub eth_dst: Mac,
    pub eth_type: u16,
    pub arp_op: u16,
    pub arp_spa: Ipv4Addr,
    pub arp_tpa: Ipv4Addr,
    pub arp_sha: Mac,
    pub arp_tha: Mac,
    pub ip4_src: Ipv4Addr,
    pub ip4_dst: Ipv4Addr,
    pub ip6_src: Ipv6Addr,
    pub ip6_dst: Ipv6Addr,
    pub ip_proto: u8,
    /// TCP/UDP source port, or ICMP type.
    pub tp_src: u16,
    /// TCP/UDP destination port, or ICMP code.
    pub tp_dst: u16,
    pub nd_target: Ipv6Addr,
    pub nd_sll: Mac,
    pub nd_tll: Mac,
    pub ct_state: u32,
    pub ct_zone: u16,
    pub ct_mark: u32,
}

impl Default for Packet {
    fn default() -> Self {
        Packet {
            in_port: 0,
            metadata: 0,
            regs: [0; 16],
            tun_id: 0,
            eth_src: Mac::ZERO,
            eth_dst: Mac::ZERO,
            eth_type: 0,
            arp_op: 0,
            arp_spa: Ipv4Addr::UNSPECIFIED,
            arp_tpa: Ipv4Addr::UNSPECIFIED,
            arp_sha: Mac::ZERO,
            arp_tha: Mac::ZERO,
            ip4_src: Ipv4Addr::UNSPECIFIED,
            ip4_dst: Ipv4Addr::UNSPECIFIED,
            ip6_src: Ipv6Addr::UNSPECIFIED,
            ip6_dst: Ipv6Addr::UNSPECIFIED,
            ip_proto: 0,
            tp_src: 0,
            tp_dst: 0,
            nd_target: Ipv6Addr::UNSPECIFIED,
            nd_sll: Mac::ZERO,
            nd_tll: Mac::ZERO,
            ct_state: 0,
            ct_zone: 0,
            ct_mark: 0,
        }
    }
}

/// The fields the model understands, by identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fk {
    InPort,
    Metadata,
    Reg(u8),
    TunId,
    EthSrc,
    EthDst,
    EthType,
    ArpOp,
    ArpSpa,
    ArpTpa,
    ArpSha,
    ArpTha,
    Ip4Src,
    Ip4Dst,
    Ip6Src,
    Ip6Dst,
    IpProto,
    TpSrc,
    TpDst,
    NdTarget,
    NdSll,
    NdTll,
    CtState,
    CtZone,
    CtMark,
}

fn mac_u(m: Mac) -> u128 {
    m.0.iter().fold(0u128, |a, b| (a << 8) | u128::from(*b))
}

fn u_mac(v: u128) -> Mac {
    let b = v.to_be_bytes();
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[10..16]);
    Mac(m)
}

fn ones(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

fn width(k: Fk) -> u32 {
    match k {
        Fk::InPort | Fk::Reg(_) | Fk::CtState | Fk::CtMark => 32,
        Fk::Metadata | Fk::TunId => 64,
        Fk::EthSrc | Fk::EthDst | Fk::ArpSha | Fk::ArpTha | Fk::NdSll | Fk::NdTll => 48,
        Fk::EthType | Fk::ArpOp | Fk::TpSrc | Fk::TpDst | Fk::CtZone => 16,
        Fk::ArpSpa | Fk::ArpTpa | Fk::Ip4Src | Fk::Ip4Dst => 32,
        Fk::Ip6Src | Fk::Ip6Dst | Fk::NdTarget => 128,
        Fk::IpProto => 8,
    }
}

/// A field of a match or set_field: identity, value, mask (all ones = exact). `None` for a
/// field the model does not know, which then never matches.
fn decompose(f: &Field) -> Option<(Fk, u128, Option<u128>)> {
    use Field::*;
    fn m<T: Copy>(v: Option<T>, conv: impl Fn(T) -> u128) -> Option<u128> {
        v.map(conv)
    }
    let u = |v: u64| u128::from(v);
    Some(match f {
        InPort(v, mk) => (Fk::InPort, (*v).into(), m(*mk, u128::from)),
        Metadata(v, mk) => (Fk::Metadata, u(*v), m(*mk, u128::from)),
        Reg(n, v, mk) => (Fk::Reg(*n), (*v).into(), m(*mk, u128::from)),
        TunnelId(v, mk) => (Fk::TunId, u(*v), m(*mk, u128::from)),
        EthSrc(v, mk) => (Fk::EthSrc, mac_u(*v), m(*mk, mac_u)),
        EthDst(v, mk) => (Fk::EthDst, mac_u(*v), m(*mk, mac_u)),
        EthType(v, mk) => (Fk::EthType, (*v).into(), m(*mk, u128::from)),
        ArpOp(v, mk) => (Fk::ArpOp, (*v).into(), m(*mk, u128::from)),
        ArpSpa(v, mk) => (
            Fk::ArpSpa,
            u32::from(*v).into(),
            m(*mk, |x| u32::from(x).into()),
        ),
        ArpTpa(v, mk) => (
            Fk::ArpTpa,
            u32::from(*v).into(),
            m(*mk, |x| u32::from(x).into()),
        ),
        ArpSha(v, mk) => (Fk::ArpSha, mac_u(*v), m(*mk, mac_u)),
        ArpTha(v, mk) => (Fk::ArpTha, mac_u(*v), m(*mk, mac_u)),
        Ipv4Src(v, mk) => (
            Fk::Ip4Src,
            u32::from(*v).into(),
            m(*mk, |x| u32::from(x).into()),
        ),
        Ipv4Dst(v, mk) => (
            Fk::Ip4Dst,
            u32::from(*v).into(),
            m(*mk, |x| u32::from(x).into()),
        ),
        Ipv6Src(v, mk) => (Fk::Ip6Src, u128::from(*v), m(*mk, u128::from)),
        Ipv6Dst(v, mk) => (Fk::Ip6Dst, u128::from(*v), m(*mk, u128::from)),
        IpProto(v, mk) => (Fk::IpProto, (*v).into(), m(*mk, u128::from)),
        TcpSrc(v, mk) | UdpSrc(v, mk) | SctpSrc(v, mk) => {
            (Fk::TpSrc, (*v).into(), m(*mk, u128::from))
        }
        TcpDst(v, mk) | UdpDst(v, mk) | SctpDst(v, mk) => {
            (Fk::TpDst, (*v).into(), m(*mk, u128::from))
        }
        Icmpv4Type(v, mk) | Icmpv6Type(v, mk) => (Fk::TpSrc, (*v).into(), m(*mk, u128::from)),
        Icmpv4Code(v, mk) | Icmpv6Code(v, mk) => (Fk::TpDst, (*v).into(), m(*mk, u128::from)),
        Ipv6NdTarget(v, mk) => (Fk::NdTarget, u128::from(*v), m(*mk, u128::from)),
        Ipv6NdSll(v, mk) => (Fk::NdSll, mac_u(*v), m(*mk, mac_u)),
        Ipv6NdTll(v, mk) => (Fk::NdTll, mac_u(*v), m(*mk, mac_u)),
        CtState(v, mk) => (Fk::CtState, (*v).into(), m(*mk, u128::from)),
        CtZone(v, mk) => (Fk::CtZone, (*v).into(), m(*mk, u128::from)),
        CtMark(v, mk) => (Fk::CtMark, (*v).into(), m(*mk, u128::from)),
        _ => return None,
    })
}

/// The field a Nicira subfield names (NXM or OXM header).
pub(super) fn header_fk(h: &FieldHeader) -> Option<Fk> {
    let (class, field) = oxm::oxm_twin(h.class, h.field).unwrap_or((h.class, h.field));
    if h.experimenter.is_some() {
        return None;
    }
    Some(match (class, field) {
        (oxm::NXM_NX, n) if n < 16 => Fk::Reg(n),
        (oxm::NXM_OF, 0) | (oxm::OFPXMC_OPENFLOW_BASIC, 0) => Fk::InPort,
        (oxm::OFPXMC_OPENFLOW_BASIC, f) => {
            let probe = match f {
                2 => Field::Metadata(0, None),
                3 => Field::EthDst(Mac::ZERO, None),
                4 => Field::EthSrc(Mac::ZERO, None),
                5 => Field::EthType(0, None),
                10 => Field::IpProto(0, None),
                11 => Field::Ipv4Src(Ipv4Addr::UNSPECIFIED, None),
                12 => Field::Ipv4Dst(Ipv4Addr::UNSPECIFIED, None),
                13 => Field::TcpSrc(0, None),
                14 => Field::TcpDst(0, None),
                15 => Field::UdpSrc(0, None),
                16 => Field::UdpDst(0, None),
                21 => Field::ArpOp(0, None),
                22 => Field::ArpSpa(Ipv4Addr::UNSPECIFIED, None),
                23 => Field::ArpTpa(Ipv4Addr::UNSPECIFIED, None),
                24 => Field::ArpSha(Mac::ZERO, None),
                25 => Field::ArpTha(Mac::ZERO, None),
                26 => Field::Ipv6Src(Ipv6Addr::UNSPECIFIED, None),
                27 => Field::Ipv6Dst(Ipv6Addr::UNSPECIFIED, None),
                38 => Field::TunnelId(0, None),
                _ => return None,
            };
            decompose(&probe)?.0
        }
        _ => return None,
    })
}

impl Packet {
    fn get(&self, k: Fk) -> u128 {
        match k {
            Fk::InPort => self.in_port.into(),
            Fk::Metadata => self.metadata.into(),
            Fk::Reg(n) => self.regs.get(usize::from(n)).copied().unwrap_or(0).into(),
            Fk::TunId => self.tun_id.into(),
            Fk::EthSrc => mac_u(self.eth_src),
            Fk::EthDst => mac_u(self.eth_dst),
            Fk::EthType => self.eth_type.into(),
            Fk::ArpOp => self.arp_op.into(),
            Fk::ArpSpa => u32::from(self.arp_spa).into(),
            Fk::ArpTpa => u32::from(self.arp_tpa).into(),
            Fk::ArpSha => mac_u(self.arp_sha),
            Fk::ArpTha => mac_u(self.arp_tha),
            Fk::Ip4Src => u32::from(self.ip4_src).into(),
            Fk::Ip4Dst => u32::from(self.ip4_dst).into(),
            Fk::Ip6Src => u128::from(self.ip6_src),
            Fk::Ip6Dst => u128::from(self.ip6_dst),
            Fk::IpProto => self.ip_proto.into(),
            Fk::TpSrc => self.tp_src.into(),
            Fk::TpDst => self.tp_dst.into(),
            Fk::NdTarget => u128::from(self.nd_target),
            Fk::NdSll => mac_u(self.nd_sll),
            Fk::NdTll => mac_u(self.nd_tll),
            Fk::CtState => self.ct_state.into(),
            Fk::CtZone => self.ct_zone.into(),
            Fk::CtMark => self.ct_mark.into(),
        }
    }

    fn put(&mut self, k: Fk, v: u128) {
        // Truncation to the field's width is intended: v was masked to it by the caller.
        match k {
            Fk::InPort => self.in_port = v as u32,
            Fk::Metadata => self.metadata = v as u64,
            Fk::Reg(n) => {
                if let Some(r) = self.regs.get_mut(usize::from(n)) {
                    *r = v as u32;
                }
            }
            Fk::TunId => self.tun_id = v as u64,
            Fk::EthSrc => self.eth_src = u_mac(v),
            Fk::EthDst => self.eth_dst = u_mac(v),
            Fk::EthType => self.eth_type = v as u16,
            Fk::ArpOp => self.arp_op = v as u16,
            Fk::ArpSpa => self.arp_spa = Ipv4Addr::from(v as u32),
            Fk::ArpTpa => self.arp_tpa = Ipv4Addr::from(v as u32),
            Fk::ArpSha => self.arp_sha = u_mac(v),
            Fk::ArpTha => self.arp_tha = u_mac(v),
            Fk::Ip4Src => self.ip4_src = Ipv4Addr::from(v as u32),
            Fk::Ip4Dst => self.ip4_dst = Ipv4Addr::from(v as u32),
            Fk::Ip6Src => self.ip6_src = Ipv6Addr::from(v),
            Fk::Ip6Dst => self.ip6_dst = Ipv6Addr::from(v),
            Fk::IpProto => self.ip_proto = v as u8,
            Fk::TpSrc => self.tp_src = v as u16,
            Fk::TpDst => self.tp_dst = v as u16,
            Fk::NdTarget => self.nd_target = Ipv6Addr::from(v),
            Fk::NdSll => self.nd_sll = u_mac(v),
            Fk::NdTll => self.nd_tll = u_mac(v),
            Fk::CtState => self.ct_state = v as u32,
            Fk::CtZone => self.ct_zone = v as u16,
            Fk::CtMark => self.ct_mark = v as u32,
        }
    }

    pub(super) fn matches(&self, m: &Match) -> bool {
        m.fields.iter().all(|f| match decompose(f) {
            Some((k, v, mask)) => {
                let mask = mask.unwrap_or(ones(width(k)));
                self.get(k) & mask == v & mask
            }
            None => false,
        })
    }

    pub(super) fn set_field(&mut self, f: &Field) -> bool {
        match decompose(f) {
            Some((k, v, mask)) => {
                let mask = mask.unwrap_or(ones(width(k)));
                let cur = self.get(k);
                self.put(k, (cur & !mask) | (v & mask));
                true
            }
            None => false,
        }
    }

    pub(super) fn read_bits(&self, k: Fk, ofs: u16, n: u16) -> u128 {
        self.get(k).checked_shr(u32::from(ofs)).unwrap_or(0) & ones(u32::from(n))
    }

    /// Writes `n` bits at `ofs` (bits past the field's width are dropped by `put`).
    pub(super) fn write_bits(&mut self, k: Fk, ofs: u16, n: u16, v: u128) {
        let mask = ones(u32::from(n)).checked_shl(u32::from(ofs)).unwrap_or(0);
        let v = v.checked_shl(u32::from(ofs)).unwrap_or(0);
        let cur = self.get(k);
        self.put(k, (cur & !mask) | (v & mask));
    }

    /// A short ovs-ofctl-like description of the headers (for traces).
    pub fn headers(&self) -> String {
        let mut s = format!("eth_src={},eth_dst={}", self.eth_src, self.eth_dst);
        if self.tun_id != 0 {
            s = format!("tun_id={:#x},{s}", self.tun_id);
        }
        match self.eth_type {
            0x0806 => {
                s.push_str(&format!(
                    ",arp,arp_op={},arp_spa={},arp_tpa={},arp_sha={},arp_tha={}",
                    self.arp_op, self.arp_spa, self.arp_tpa, self.arp_sha, self.arp_tha
                ));
            }
            0x0800 => s.push_str(&format!(
                ",ip,nw_src={},nw_dst={},nw_proto={}",
                self.ip4_src, self.ip4_dst, self.ip_proto
            )),
            0x86dd => s.push_str(&format!(
                ",ipv6,ipv6_src={},ipv6_dst={},nw_proto={}",
                self.ip6_src, self.ip6_dst, self.ip_proto
            )),
            t => s.push_str(&format!(",dl_type={t:#06x}")),
        }
        if matches!(self.ip_proto, 6 | 17) && self.eth_type != 0x0806 {
            s.push_str(&format!(",tp_src={},tp_dst={}", self.tp_src, self.tp_dst));
        }
        s
    }
}

impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "in_port={},{}", self.in_port, self.headers())
    }
}
