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

/// The 802.1Q CFI bit's place in [`Packet::vlan_tci`], which OVS uses to mean "tagged"
/// (and which OpenFlow 1.3 calls OFPVID_PRESENT).
pub const VLAN_CFI: u16 = oxm::OFPVID_PRESENT;
const VLAN_VID_MASK: u16 = 0x0fff;

/// A packet and its pipeline metadata, as the flow table sees it. Fields that do not apply
/// to the packet's protocol stay zero (as in OVS's `struct flow`), except `ip_ttl`, which
/// starts at 64 so that an IP packet built from [`Packet::default`] is routable as a
/// freshly sent one is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub in_port: u32,
    pub metadata: u64,
    pub regs: [u32; 16],
    pub tun_id: u64,
    pub eth_src: Mac,
    pub eth_dst: Mac,
    /// The (one) 802.1Q tag as OVS's `vlan_tci` holds it: 0 when untagged, else
    /// `pcp << 13 | VLAN_CFI | vid` ([`Packet::vlan_vid`], [`Packet::with_vlan`]).
    pub vlan_tci: u16,
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
    /// IPv4 TTL or IPv6 hop limit (`nw_ttl`).
    pub ip_ttl: u8,
    /// TCP/UDP source port, or ICMP type.
    pub tp_src: u16,
    /// TCP/UDP destination port, or ICMP code.
    pub tp_dst: u16,
    pub nd_target: Ipv6Addr,
    pub nd_sll: Mac,
    pub nd_tll: Mac,
    /// ND flags word (R|S|O in an advertisement) and first option's type (`nd_reserved`,
    /// `nd_options_type`).
    pub nd_reserved: u32,
    pub nd_options_type: u8,
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
            vlan_tci: 0,
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
            ip_ttl: 64,
            tp_src: 0,
            tp_dst: 0,
            nd_target: Ipv6Addr::UNSPECIFIED,
            nd_sll: Mac::ZERO,
            nd_tll: Mac::ZERO,
            nd_reserved: 0,
            nd_options_type: 0,
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
    /// The whole TCI (NXM_OF_VLAN_TCI).
    VlanTci,
    /// OpenFlow 1.3's 13-bit view of it: present bit and id.
    VlanVid,
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
    IpTtl,
    TpSrc,
    TpDst,
    NdTarget,
    NdSll,
    NdTll,
    NdReserved,
    NdOptionsType,
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
        Fk::InPort | Fk::Reg(_) | Fk::CtState | Fk::CtMark | Fk::NdReserved => 32,
        Fk::Metadata | Fk::TunId => 64,
        Fk::EthSrc | Fk::EthDst | Fk::ArpSha | Fk::ArpTha | Fk::NdSll | Fk::NdTll => 48,
        Fk::EthType | Fk::ArpOp | Fk::TpSrc | Fk::TpDst | Fk::CtZone | Fk::VlanTci => 16,
        Fk::VlanVid => 13,
        Fk::ArpSpa | Fk::ArpTpa | Fk::Ip4Src | Fk::Ip4Dst => 32,
        Fk::Ip6Src | Fk::Ip6Dst | Fk::NdTarget => 128,
        Fk::IpProto | Fk::IpTtl | Fk::NdOptionsType => 8,
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
        VlanVid(v, mk) => (Fk::VlanVid, (*v).into(), m(*mk, u128::from)),
        // As OVS: a priority match (or write) implies a tag.
        VlanPcp(v, _) => (
            Fk::VlanTci,
            u128::from((u16::from(*v & 7) << 13) | VLAN_CFI),
            Some(0xf000),
        ),
        IpTtl(v, mk) => (Fk::IpTtl, (*v).into(), m(*mk, u128::from)),
        NdReserved(v, mk) => (Fk::NdReserved, (*v).into(), m(*mk, u128::from)),
        NdOptionsType(v, mk) => (Fk::NdOptionsType, (*v).into(), m(*mk, u128::from)),
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
    if h.experimenter.is_some() {
        return None;
    }
    let (class, field) = oxm::oxm_twin(h.class, h.field).unwrap_or((h.class, h.field));
    Some(match (class, field) {
        (oxm::NXM_NX, n) if n < 16 => Fk::Reg(n),
        (oxm::NXM_OF, 0) | (oxm::OFPXMC_OPENFLOW_BASIC, 0) => Fk::InPort,
        (oxm::NXM_OF, 4) => Fk::VlanTci,
        (oxm::NXM_NX, 29) => Fk::IpTtl,
        (oxm::ERICOXM_OF, 1) => Fk::NdReserved,
        (oxm::ERICOXM_OF, 2) => Fk::NdOptionsType,
        (oxm::OFPXMC_OPENFLOW_BASIC, f) => match f {
            2 => Fk::Metadata,
            3 => Fk::EthDst,
            4 => Fk::EthSrc,
            5 => Fk::EthType,
            6 => Fk::VlanVid,
            10 => Fk::IpProto,
            11 => Fk::Ip4Src,
            12 => Fk::Ip4Dst,
            13 | 15 | 17 | 19 | 29 => Fk::TpSrc,
            14 | 16 | 18 | 20 | 30 => Fk::TpDst,
            21 => Fk::ArpOp,
            22 => Fk::ArpSpa,
            23 => Fk::ArpTpa,
            24 => Fk::ArpSha,
            25 => Fk::ArpTha,
            26 => Fk::Ip6Src,
            27 => Fk::Ip6Dst,
            31 => Fk::NdTarget,
            32 => Fk::NdSll,
            33 => Fk::NdTll,
            38 => Fk::TunId,
            _ => return None,
        },
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
            Fk::VlanTci => self.vlan_tci.into(),
            Fk::VlanVid => (self.vlan_tci & (VLAN_CFI | VLAN_VID_MASK)).into(),
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
            Fk::IpTtl => self.ip_ttl.into(),
            Fk::TpSrc => self.tp_src.into(),
            Fk::TpDst => self.tp_dst.into(),
            Fk::NdTarget => u128::from(self.nd_target),
            Fk::NdSll => mac_u(self.nd_sll),
            Fk::NdTll => mac_u(self.nd_tll),
            Fk::NdReserved => self.nd_reserved.into(),
            Fk::NdOptionsType => self.nd_options_type.into(),
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
            Fk::VlanTci => self.vlan_tci = v as u16,
            Fk::VlanVid => {
                let keep = self.vlan_tci & !(VLAN_CFI | VLAN_VID_MASK);
                self.vlan_tci = keep | (v as u16 & (VLAN_CFI | VLAN_VID_MASK));
            }
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
            Fk::IpTtl => self.ip_ttl = v as u8,
            Fk::TpSrc => self.tp_src = v as u16,
            Fk::TpDst => self.tp_dst = v as u16,
            Fk::NdTarget => self.nd_target = Ipv6Addr::from(v),
            Fk::NdSll => self.nd_sll = u_mac(v),
            Fk::NdTll => self.nd_tll = u_mac(v),
            Fk::NdReserved => self.nd_reserved = v as u32,
            Fk::NdOptionsType => self.nd_options_type = v as u8,
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

    /// Whether the packet has the header `f` lives in, as OVS asks before it executes a
    /// `set_field` or `load` (`mf_are_prereqs_ok`): a write to a header the packet does not
    /// have (after earlier rewrites, e.g. `nd_sll` once `icmpv6_type` became 136) is
    /// skipped.
    pub(super) fn has_header_of(&self, f: &Field) -> bool {
        use Field::*;
        let ip = self.is_ip();
        let (v4, v6) = (self.eth_type == 0x0800, self.eth_type == 0x86dd);
        let icmp6 = v6 && self.ip_proto == 58;
        let nd = icmp6 && matches!(self.tp_src, 135 | 136) && self.tp_dst == 0;
        match f {
            VlanVid(..) | VlanPcp(..) => self.is_tagged(),
            IpDscp(..) | IpEcn(..) | IpProto(..) | IpTtl(..) => ip,
            Ipv4Src(..) | Ipv4Dst(..) => v4,
            Ipv6Src(..) | Ipv6Dst(..) | Ipv6Flabel(..) => v6,
            TcpSrc(..) | TcpDst(..) | TcpFlags(..) => ip && self.ip_proto == 6,
            UdpSrc(..) | UdpDst(..) => ip && self.ip_proto == 17,
            SctpSrc(..) | SctpDst(..) => ip && self.ip_proto == 132,
            Icmpv4Type(..) | Icmpv4Code(..) => v4 && self.ip_proto == 1,
            Icmpv6Type(..) | Icmpv6Code(..) => icmp6,
            ArpOp(..) | ArpSpa(..) | ArpTpa(..) | ArpSha(..) | ArpTha(..) => {
                matches!(self.eth_type, 0x0806 | 0x8035)
            }
            Ipv6NdTarget(..) | NdReserved(..) | NdOptionsType(..) => nd,
            Ipv6NdSll(..) => nd && self.tp_src == 135,
            Ipv6NdTll(..) => nd && self.tp_src == 136,
            _ => true,
        }
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

    /// The VLAN id when the packet is tagged.
    pub fn vlan_vid(&self) -> Option<u16> {
        self.is_tagged().then_some(self.vlan_tci & VLAN_VID_MASK)
    }

    /// The VLAN priority when the packet is tagged.
    pub fn vlan_pcp(&self) -> Option<u8> {
        self.is_tagged().then_some((self.vlan_tci >> 13) as u8)
    }

    pub fn is_tagged(&self) -> bool {
        self.vlan_tci & VLAN_CFI != 0
    }

    /// The same packet tagged with VLAN `vid` (priority 0).
    pub fn with_vlan(mut self, vid: u16) -> Self {
        self.vlan_tci = VLAN_CFI | (vid & VLAN_VID_MASK);
        self
    }

    /// IPv4 or IPv6: the packets `dec_ttl` and `nw_ttl` apply to.
    pub fn is_ip(&self) -> bool {
        matches!(self.eth_type, 0x0800 | 0x86dd)
    }

    /// A short ovs-ofctl-like description of the headers (for traces).
    pub fn headers(&self) -> String {
        let mut s = format!("eth_src={},eth_dst={}", self.eth_src, self.eth_dst);
        if self.tun_id != 0 {
            s = format!("tun_id={:#x},{s}", self.tun_id);
        }
        if let (Some(vid), Some(pcp)) = (self.vlan_vid(), self.vlan_pcp()) {
            s.push_str(&format!(",dl_vlan={vid}"));
            if pcp != 0 {
                s.push_str(&format!(",dl_vlan_pcp={pcp}"));
            }
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
        if self.is_ip() {
            s.push_str(&format!(",nw_ttl={}", self.ip_ttl));
            match (self.eth_type, self.ip_proto) {
                (_, 6 | 17) => {
                    s.push_str(&format!(",tp_src={},tp_dst={}", self.tp_src, self.tp_dst))
                }
                (0x0800, 1) | (0x86dd, 58) => s.push_str(&format!(
                    ",icmp_type={},icmp_code={}",
                    self.tp_src, self.tp_dst
                )),
                _ => {}
            }
            if self.eth_type == 0x86dd && self.ip_proto == 58 && matches!(self.tp_src, 135 | 136) {
                s.push_str(&format!(",nd_target={}", self.nd_target));
                if self.nd_sll != Mac::ZERO {
                    s.push_str(&format!(",nd_sll={}", self.nd_sll));
                }
                if self.nd_tll != Mac::ZERO {
                    s.push_str(&format!(",nd_tll={}", self.nd_tll));
                }
                s.push_str(&format!(
                    ",nd_reserved={:#x},nd_options_type={}",
                    self.nd_reserved, self.nd_options_type
                ));
            }
        }
        s
    }
}

impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "in_port={},{}", self.in_port, self.headers())
    }
}
