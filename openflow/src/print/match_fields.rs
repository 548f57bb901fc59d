//! Matches as `ovs-ofctl` prints them: field names, masks, the ct_state flag syntax and
//! OVS's field order.

use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::oxm::{Field, Fmt, Match, OxmValue, format_masked};
use crate::types::{Mac, port};

/// Default flow priority; `ovs-ofctl` omits it from output.
pub const DEFAULT_PRIORITY: u16 = 0x8000;

const CT_STATE_NAMES: [&str; 8] = ["new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"];

/// Formats ct_state bits as OVS does: `+est+trk` with a mask, `est|trk` without.
pub fn ct_state_flags(value: u32, mask: u32) -> String {
    let mut s = String::new();
    if mask == u32::MAX {
        for (i, n) in CT_STATE_NAMES.iter().enumerate() {
            if value & (1 << i) != 0 {
                if !s.is_empty() {
                    s.push('|');
                }
                s.push_str(n);
            }
        }
        if value & !0xff != 0 {
            let _ = write!(
                s,
                "{}0x{:x}",
                if s.is_empty() { "" } else { "|" },
                value & !0xff
            );
        }
        if s.is_empty() {
            s.push('0');
        }
        return s;
    }
    for i in 0..32 {
        let bit = 1u32 << i;
        if mask & bit == 0 {
            continue;
        }
        s.push(if value & bit != 0 { '+' } else { '-' });
        match CT_STATE_NAMES.get(i) {
            Some(n) => s.push_str(n),
            None => {
                let _ = write!(s, "0x{bit:x}");
            }
        }
    }
    s
}

/// `name=addr[/prefix|/mask],` as ovs-ofctl prints it: no suffix for an exact match, a
/// prefix length for a CIDR mask, the mask itself otherwise. `ones`/`zeros` are the mask's
/// leading ones and trailing zeros, `width` its bit count.
fn addr_masked(
    name: &str,
    v: impl fmt::Display,
    m: Option<(impl fmt::Display, u32, u32, u32)>,
    out: &mut String,
) {
    let _ = write!(out, "{name}={v}");
    match m {
        Some((_, ones, _, width)) if ones == width => {}
        Some((_, ones, zeros, width)) if ones + zeros == width => {
            let _ = write!(out, "/{ones}");
        }
        Some((m, ..)) => {
            let _ = write!(out, "/{m}");
        }
        None => {}
    }
    out.push(',');
}

fn ip_netmask(name: &str, v: Ipv4Addr, m: Option<Ipv4Addr>, out: &mut String) {
    let m = m.map(|m| {
        (
            m,
            u32::from(m).leading_ones(),
            u32::from(m).trailing_zeros(),
            32,
        )
    });
    addr_masked(name, v, m, out);
}

fn ipv6_netmask(name: &str, v: Ipv6Addr, m: Option<Ipv6Addr>, out: &mut String) {
    let m = m.map(|m| {
        (
            m,
            u128::from(m).leading_ones(),
            u128::from(m).trailing_zeros(),
            128,
        )
    });
    addr_masked(name, v, m, out);
}

fn eth_masked(name: &str, v: Mac, m: Option<Mac>, out: &mut String) {
    match m {
        Some(m) if m != Mac::BROADCAST => {
            let _ = write!(out, "{name}={v}/{m},");
        }
        _ => {
            let _ = write!(out, "{name}={v},");
        }
    }
}

fn hex_masked<T: OxmValue>(name: &str, v: &T, m: Option<&T>, out: &mut String) {
    let _ = write!(out, "{name}={},", format_masked(v, m, Fmt::Hex));
}

fn dec_masked16(name: &str, v: u16, m: Option<u16>, out: &mut String) {
    match m {
        Some(m) if m != u16::MAX => {
            let _ = write!(out, "{name}={v}/0x{m:x},");
        }
        _ => {
            let _ = write!(out, "{name}={v},");
        }
    }
}

/// The VLAN part of a match as OVS prints it: OVS folds OXM `vlan_vid` (value and mask,
/// the present bit being 802.1Q's CFI bit) and `vlan_pcp` into one `vlan_tci` and prints
/// `dl_vlan`/`dl_vlan_pcp` only when that reads as "tagged, this id/priority", else the
/// raw `vlan_tci=value/mask`.
fn vlan_tci(vid: Option<(u16, Option<u16>)>, pcp: Option<u8>, out: &mut String) {
    const CFI: u16 = crate::oxm::OFPVID_PRESENT;
    const VID_MASK: u16 = 0x0fff;
    const PCP_MASK: u16 = 0xe000;
    let (mut tci, mut mask) = match vid {
        Some((v, m)) => {
            let m = m.unwrap_or(u16::MAX) & (CFI | VID_MASK);
            (v & m, m)
        }
        None => (0, 0),
    };
    if let Some(p) = pcp {
        tci = (tci & !PCP_MASK) | (u16::from(p & 7) << 13) | CFI;
        mask |= PCP_MASK | CFI;
    }
    if mask == 0 {
        return;
    }
    let (vid_mask, pcp_mask) = (mask & VID_MASK, mask & PCP_MASK);
    if mask & CFI != 0
        && tci & CFI != 0
        && (vid_mask == 0 || vid_mask == VID_MASK)
        && (pcp_mask == 0 || pcp_mask == PCP_MASK)
        && (vid_mask | pcp_mask) != 0
    {
        if vid_mask != 0 {
            let _ = write!(out, "dl_vlan={},", tci & VID_MASK);
        }
        if pcp_mask != 0 {
            let _ = write!(out, "dl_vlan_pcp={},", tci >> 13);
        }
    } else if mask == u16::MAX {
        let _ = write!(out, "vlan_tci=0x{tci:04x},");
    } else {
        let _ = write!(out, "vlan_tci=0x{tci:04x}/0x{mask:04x},");
    }
}

/// Formats a match the way `ovs-ofctl` does (OVS's field order, `ip`/`tcp`/`arp`
/// shorthands), with `priority=` first unless it is the default. No trailing comma.
pub fn format_match(m: &Match, priority: Option<u16>) -> String {
    let mut s = String::new();
    if let Some(p) = priority
        && p != DEFAULT_PRIORITY
    {
        let _ = write!(s, "priority={p},");
    }
    let find = |pred: &dyn Fn(&Field) -> bool| m.fields.iter().find(|f| pred(f)).cloned();
    use Field::*;
    if let Some(PktMark(v, mk)) = find(&|f| matches!(f, PktMark(..))) {
        hex_masked("pkt_mark", &v, mk.as_ref(), &mut s);
    }
    if let Some(ConjId(v, _)) = find(&|f| matches!(f, ConjId(..))) {
        let _ = write!(s, "conj_id={v},");
    }
    if let Some(ActsetOutput(v, _)) = find(&|f| matches!(f, ActsetOutput(..))) {
        let _ = write!(s, "actset_output={},", port::format(v));
    }
    if let Some(CtState(v, mk)) = find(&|f| matches!(f, CtState(..))) {
        let _ = write!(s, "ct_state={},", ct_state_flags(v, mk.unwrap_or(u32::MAX)));
    }
    if let Some(CtZone(v, mk)) = find(&|f| matches!(f, CtZone(..))) {
        let _ = write!(s, "ct_zone={},", format_masked(&v, mk.as_ref(), Fmt::Dec));
    }
    if let Some(CtMark(v, mk)) = find(&|f| matches!(f, CtMark(..))) {
        hex_masked("ct_mark", &v, mk.as_ref(), &mut s);
    }
    if let Some(CtLabel(v, mk)) = find(&|f| matches!(f, CtLabel(..))) {
        let _ = write!(s, "ct_label={:#x}", v);
        if let Some(mk) = mk.filter(|m| m.get() != u128::MAX) {
            let _ = write!(s, "/{mk:#x}");
        }
        s.push(',');
    }
    let eth_type = find(&|f| matches!(f, EthType(_, None)))
        .and_then(|f| if let EthType(t, _) = f { Some(t) } else { None });
    let proto = find(&|f| matches!(f, IpProto(_, None)))
        .and_then(|f| if let IpProto(p, _) = f { Some(p) } else { None });
    let mut skip_type = false;
    let mut skip_proto = false;
    if let Some(t) = eth_type {
        skip_type = true;
        let short = match (t, proto) {
            (0x0800, Some(1)) => Some("icmp"),
            (0x0800, Some(2)) => Some("igmp"),
            (0x0800, Some(6)) => Some("tcp"),
            (0x0800, Some(17)) => Some("udp"),
            (0x0800, Some(132)) => Some("sctp"),
            (0x86dd, Some(58)) => Some("icmp6"),
            (0x86dd, Some(6)) => Some("tcp6"),
            (0x86dd, Some(17)) => Some("udp6"),
            (0x86dd, Some(132)) => Some("sctp6"),
            _ => None,
        };
        if let Some(n) = short {
            skip_proto = true;
            let _ = write!(s, "{n},");
        } else {
            match t {
                0x0800 => s.push_str("ip,"),
                0x86dd => s.push_str("ipv6,"),
                0x0806 => s.push_str("arp,"),
                0x8035 => s.push_str("rarp,"),
                0x8847 => s.push_str("mpls,"),
                0x8848 => s.push_str("mplsm,"),
                _ => skip_type = false,
            }
        }
    }
    for i in 0..16u8 {
        if let Some(Reg(_, v, mk)) = find(&|f| matches!(f, Reg(n, ..) if *n == i)) {
            hex_masked(&format!("reg{i}"), &v, mk.as_ref(), &mut s);
        }
    }
    for i in 0..8u8 {
        if let Some(XReg(_, v, mk)) = find(&|f| matches!(f, XReg(n, ..) if *n == i)) {
            hex_masked(&format!("xreg{i}"), &v, mk.as_ref(), &mut s);
        }
    }
    if let Some(TunnelId(v, mk)) = find(&|f| matches!(f, TunnelId(..))) {
        hex_masked("tun_id", &v, mk.as_ref(), &mut s);
    }
    if let Some(TunIpv4Src(v, mk)) = find(&|f| matches!(f, TunIpv4Src(..))) {
        ip_netmask("tun_src", v, mk, &mut s);
    }
    if let Some(TunIpv4Dst(v, mk)) = find(&|f| matches!(f, TunIpv4Dst(..))) {
        ip_netmask("tun_dst", v, mk, &mut s);
    }
    for f in &m.fields {
        if let TunMetadata(..) = f {
            let _ = write!(s, "{}={},", f.name(), f.format_value());
        }
    }
    if let Some(Metadata(v, mk)) = find(&|f| matches!(f, Metadata(..))) {
        hex_masked("metadata", &v, mk.as_ref(), &mut s);
    }
    if let Some(InPort(v, _)) = find(&|f| matches!(f, InPort(..))) {
        let _ = write!(s, "in_port={},", port::format(v));
    }
    let vid = find(&|f| matches!(f, VlanVid(..))).and_then(|f| {
        if let VlanVid(v, m) = f {
            Some((v, m))
        } else {
            None
        }
    });
    let pcp = find(&|f| matches!(f, VlanPcp(..)))
        .and_then(|f| if let VlanPcp(v, _) = f { Some(v) } else { None });
    vlan_tci(vid, pcp, &mut s);
    if let Some(EthSrc(v, mk)) = find(&|f| matches!(f, EthSrc(..))) {
        eth_masked("dl_src", v, mk, &mut s);
    }
    if let Some(EthDst(v, mk)) = find(&|f| matches!(f, EthDst(..))) {
        eth_masked("dl_dst", v, mk, &mut s);
    }
    if !skip_type && let Some(EthType(v, _)) = find(&|f| matches!(f, EthType(..))) {
        let _ = write!(s, "dl_type=0x{v:04x},");
    }
    if let Some(Ipv6Src(v, mk)) = find(&|f| matches!(f, Ipv6Src(..))) {
        ipv6_netmask("ipv6_src", v, mk, &mut s);
    }
    if let Some(Ipv6Dst(v, mk)) = find(&|f| matches!(f, Ipv6Dst(..))) {
        ipv6_netmask("ipv6_dst", v, mk, &mut s);
    }
    if let Some(Ipv6Flabel(v, mk)) = find(&|f| matches!(f, Ipv6Flabel(..))) {
        hex_masked("ipv6_label", &v, mk.as_ref(), &mut s);
    }
    if let Some(ArpSpa(v, mk)) = find(&|f| matches!(f, ArpSpa(..))) {
        ip_netmask("arp_spa", v, mk, &mut s);
    }
    if let Some(ArpTpa(v, mk)) = find(&|f| matches!(f, ArpTpa(..))) {
        ip_netmask("arp_tpa", v, mk, &mut s);
    }
    if let Some(Ipv4Src(v, mk)) = find(&|f| matches!(f, Ipv4Src(..))) {
        ip_netmask("nw_src", v, mk, &mut s);
    }
    if let Some(Ipv4Dst(v, mk)) = find(&|f| matches!(f, Ipv4Dst(..))) {
        ip_netmask("nw_dst", v, mk, &mut s);
    }
    if !skip_proto && let Some(IpProto(v, _)) = find(&|f| matches!(f, IpProto(..))) {
        let _ = write!(s, "nw_proto={v},");
    }
    if let Some(ArpOp(v, _)) = find(&|f| matches!(f, ArpOp(..))) {
        let _ = write!(s, "arp_op={v},");
    }
    if let Some(ArpSha(v, mk)) = find(&|f| matches!(f, ArpSha(..))) {
        eth_masked("arp_sha", v, mk, &mut s);
    }
    if let Some(ArpTha(v, mk)) = find(&|f| matches!(f, ArpTha(..))) {
        eth_masked("arp_tha", v, mk, &mut s);
    }
    if let Some(IpDscp(v, _)) = find(&|f| matches!(f, IpDscp(..))) {
        let _ = write!(s, "nw_tos={},", u16::from(v) << 2);
    }
    if let Some(IpEcn(v, _)) = find(&|f| matches!(f, IpEcn(..))) {
        let _ = write!(s, "nw_ecn={v},");
    }
    if let Some(IpTtl(v, _)) = find(&|f| matches!(f, IpTtl(..))) {
        let _ = write!(s, "nw_ttl={v},");
    }
    if let Some(MplsLabel(v, _)) = find(&|f| matches!(f, MplsLabel(..))) {
        let _ = write!(s, "mpls_label={v},");
    }
    if let Some(MplsTc(v, _)) = find(&|f| matches!(f, MplsTc(..))) {
        let _ = write!(s, "mpls_tc={v},");
    }
    if let Some(MplsBos(v, _)) = find(&|f| matches!(f, MplsBos(..))) {
        let _ = write!(s, "mpls_bos={v},");
    }
    for f in &m.fields {
        match f {
            Icmpv4Type(v, _) => {
                let _ = write!(s, "icmp_type={v},");
            }
            Icmpv4Code(v, _) => {
                let _ = write!(s, "icmp_code={v},");
            }
            Icmpv6Type(v, _) => {
                let _ = write!(s, "icmp_type={v},");
            }
            Icmpv6Code(v, _) => {
                let _ = write!(s, "icmp_code={v},");
            }
            _ => {}
        }
    }
    for (name, f) in [("nd_target", 0), ("nd_sll", 1), ("nd_tll", 2)] {
        let hit = m.fields.iter().find(|x| {
            matches!(
                (f, x),
                (0, Ipv6NdTarget(..)) | (1, Ipv6NdSll(..)) | (2, Ipv6NdTll(..))
            )
        });
        if let Some(x) = hit {
            let _ = write!(s, "{name}={},", x.format_value());
        }
    }
    if let Some(NdReserved(v, _)) = find(&|f| matches!(f, NdReserved(..))) {
        let _ = write!(s, "nd_reserved={v},");
    }
    if let Some(NdOptionsType(v, _)) = find(&|f| matches!(f, NdOptionsType(..))) {
        let _ = write!(s, "nd_options_type={v},");
    }
    for f in &m.fields {
        match f {
            TcpSrc(v, mk) | UdpSrc(v, mk) | SctpSrc(v, mk) => {
                dec_masked16("tp_src", *v, *mk, &mut s)
            }
            _ => {}
        }
    }
    for f in &m.fields {
        match f {
            TcpDst(v, mk) | UdpDst(v, mk) | SctpDst(v, mk) => {
                dec_masked16("tp_dst", *v, *mk, &mut s)
            }
            _ => {}
        }
    }
    if let Some(TcpFlags(v, mk)) = find(&|f| matches!(f, TcpFlags(..))) {
        hex_masked("tcp_flags", &v, mk.as_ref(), &mut s);
    }
    for f in &m.fields {
        match f {
            InPhyPort(..) | PbbIsid(..) | Ipv6Exthdr(..) | Raw(_) => {
                let _ = write!(s, "{}={},", f.name(), f.format_value());
            }
            _ => {}
        }
    }
    if s.ends_with(',') {
        s.pop();
    }
    s
}

pub(super) fn format_field_name(f: &Field) -> String {
    f.name()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vlan(fields: Vec<Field>) -> String {
        format_match(&Match::new(fields), None)
    }

    /// Each expectation is what `ovs-ofctl -O OpenFlow13 parse-flows` (OVS 3.1) prints for
    /// the same match.
    #[test]
    fn vlan_matches_print_as_ovs_does() {
        use Field::*;
        assert_eq!(vlan(vec![VlanVid(0x1005, None)]), "dl_vlan=5");
        assert_eq!(vlan(vec![VlanVid(0, None)]), "vlan_tci=0x0000/0x1fff");
        assert_eq!(
            vlan(vec![VlanVid(0x1000, Some(0x1000))]),
            "vlan_tci=0x1000/0x1000"
        );
        assert_eq!(
            vlan(vec![VlanVid(0x1005, Some(0x1ff0))]),
            "vlan_tci=0x1000/0x1ff0"
        );
        assert_eq!(
            vlan(vec![VlanVid(0x5, Some(0xfff))]),
            "vlan_tci=0x0005/0x0fff"
        );
        assert_eq!(
            vlan(vec![VlanVid(0x1000, Some(0x1000)), VlanPcp(3, None)]),
            "dl_vlan_pcp=3"
        );
        assert_eq!(
            vlan(vec![VlanVid(0x1005, None), VlanPcp(0, None)]),
            "dl_vlan=5,dl_vlan_pcp=0"
        );
    }

    #[test]
    fn ttl_and_nd_fields_print_in_ovs_order() {
        use Field::*;
        let m = Match::new(vec![
            NdOptionsType(1, None),
            NdReserved(0, None),
            Icmpv6Type(135, None),
            IpTtl(255, None),
            IpProto(58, None),
            EthType(0x86dd, None),
            VlanVid(0x1005, None),
            Ipv6NdTarget("::2".parse().unwrap(), None),
        ]);
        assert_eq!(
            format_match(&m, None),
            "icmp6,dl_vlan=5,nw_ttl=255,icmp_type=135,nd_target=::2,nd_reserved=0,nd_options_type=1"
        );
    }

    #[test]
    fn ct_state_formats() {
        assert_eq!(ct_state_flags(0x22, 0x22), "+est+trk");
        assert_eq!(ct_state_flags(0x20, 0x21), "-new+trk");
        assert_eq!(ct_state_flags(0x22, u32::MAX), "est|trk");
    }
}
