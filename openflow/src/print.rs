//! Text output in `ovs-ofctl` style: matches and actions formatted (and ordered) as Open
//! vSwitch prints them, a dump-flows style `Display` for flows, [`ofp_print`] for any
//! message (like `ovs-ofctl ofp-print`) and [`roundtrip`] for checking that bytes re-encode
//! exactly.

use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::action::{Action, Ct, CtZone, Nicira};
use crate::instruction::Instruction;
use crate::message::*;
use crate::oxm::{Field, Fmt, Match, OxmValue, format_masked, hex};
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
        if let Some(mk) = mk.filter(|m| *m != u128::MAX) {
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
    if let Some(VlanVid(v, mk)) = find(&|f| matches!(f, VlanVid(..))) {
        match mk {
            None if v & 0x1000 != 0 => {
                let _ = write!(s, "dl_vlan={},", v & 0xfff);
            }
            None if v == 0 => s.push_str("vlan_tci=0x0000/0x1fff,"),
            _ => {
                let _ = write!(s, "vlan_vid={},", format_masked(&v, mk.as_ref(), Fmt::Hex));
            }
        }
    }
    if let Some(VlanPcp(v, _)) = find(&|f| matches!(f, VlanPcp(..))) {
        let _ = write!(s, "dl_vlan_pcp={v},");
    }
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

fn format_field_name(f: &Field) -> String {
    f.name()
}

fn format_action(a: &Action, s: &mut String) {
    match a {
        Action::Output { port: p, max_len } => {
            if *p < port::MAX {
                let _ = write!(s, "output:{p}");
            } else {
                s.push_str(&port::format(*p));
                if *p == port::CONTROLLER {
                    let _ = write!(s, ":{max_len}");
                }
            }
        }
        Action::CopyTtlOut => s.push_str("copy_ttl_out"),
        Action::CopyTtlIn => s.push_str("copy_ttl_in"),
        Action::SetMplsTtl(t) => {
            let _ = write!(s, "set_mpls_ttl({t})");
        }
        Action::DecMplsTtl => s.push_str("dec_mpls_ttl"),
        Action::PushVlan(e) => {
            let _ = write!(s, "push_vlan:0x{e:04x}");
        }
        Action::PopVlan => s.push_str("pop_vlan"),
        Action::PushMpls(e) => {
            let _ = write!(s, "push_mpls:0x{e:04x}");
        }
        Action::PopMpls(e) => {
            let _ = write!(s, "pop_mpls:0x{e:04x}");
        }
        Action::SetQueue(q) => {
            let _ = write!(s, "set_queue:{q}");
        }
        Action::Group(g) => {
            let _ = write!(s, "group:{g}");
        }
        Action::SetNwTtl(t) => {
            let _ = write!(s, "mod_nw_ttl:{t}");
        }
        Action::DecNwTtl => s.push_str("dec_ttl"),
        Action::SetField(f) => {
            let _ = write!(
                s,
                "set_field:{}->{}",
                f.format_value(),
                format_field_name(f)
            );
        }
        Action::PushPbb(e) => {
            let _ = write!(s, "push_pbb:0x{e:04x}");
        }
        Action::PopPbb => s.push_str("pop_pbb"),
        Action::Nicira(n) => format_nicira(n, s),
        Action::Experimenter { experimenter, data } => {
            let _ = write!(s, "experimenter(0x{experimenter:08x},{})", hex_dots(data));
        }
        Action::Raw { action_type, data } => {
            let _ = write!(s, "action(type={action_type},{})", hex_dots(data));
        }
    }
}

fn hex_dots(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(".")
}

fn format_nicira(n: &Nicira, s: &mut String) {
    match n {
        Nicira::Resubmit { in_port } => {
            let _ = write!(s, "resubmit:{}", port::format(port::from_ofp10(*in_port)));
        }
        Nicira::ResubmitTable { in_port, table, ct } => {
            let p = port::from_ofp10(*in_port);
            if p != port::IN_PORT && *table == 255 && !ct {
                let _ = write!(s, "resubmit:{}", port::format(p));
            } else {
                s.push_str("resubmit(");
                if p != port::IN_PORT {
                    s.push_str(&port::format(p));
                }
                s.push(',');
                if *table != 255 {
                    let _ = write!(s, "{table}");
                }
                if *ct {
                    s.push_str(",ct");
                }
                s.push(')');
            }
        }
        Nicira::SetTunnel(v) => {
            let _ = write!(s, "set_tunnel:{}", hex(u128::from(*v)));
        }
        Nicira::SetTunnel64(v) => {
            let _ = write!(s, "set_tunnel64:{}", hex(u128::from(*v)));
        }
        Nicira::RegMove { src, dst } => {
            let _ = write!(s, "move:{src}->{dst}");
        }
        Nicira::RegLoad { dst, value } => {
            let _ = write!(s, "load:{}->{dst}", hex(u128::from(*value)));
        }
        Nicira::RegLoad2(f) => {
            let _ = write!(
                s,
                "set_field:{}->{}",
                f.format_value(),
                format_field_name(f)
            );
        }
        Nicira::OutputReg { src, max_len } | Nicira::OutputReg2 { src, max_len } => {
            if *max_len == 0 || *max_len == u16::MAX {
                let _ = write!(s, "output:{src}");
            } else {
                let _ = write!(s, "output(port={src},max_len={max_len})");
            }
        }
        Nicira::Ct(ct) => format_ct(ct, s),
        Nicira::CtClear => s.push_str("ct_clear"),
        Nicira::DecTtl => s.push_str("dec_ttl"),
        Nicira::Exit => s.push_str("exit"),
        Nicira::Conjunction {
            id,
            clause,
            n_clauses,
        } => {
            let _ = write!(
                s,
                "conjunction({id},{}/{n_clauses})",
                u16::from(*clause) + 1
            );
        }
        Nicira::Note(b) => {
            let _ = write!(s, "note:{}", hex_dots(b));
        }
        Nicira::Controller {
            max_len,
            controller_id,
            reason,
        } => format_controller(*max_len, *controller_id, *reason, None, false, None, s),
        Nicira::Nat(n) => format_nat(n, s),
        Nicira::Controller2(props) => {
            use crate::action::Controller2Prop as P;
            let (mut max_len, mut id, mut reason, mut userdata, mut pause, mut meter) =
                (u16::MAX, 0, 1, None, false, None);
            for p in props {
                match p {
                    P::MaxLen(v) => max_len = *v,
                    P::ControllerId(v) => id = *v,
                    P::Reason(v) => reason = *v,
                    P::Userdata(d) => userdata = Some(d.as_slice()),
                    P::Pause => pause = true,
                    P::MeterId(v) => meter = Some(*v),
                    P::Unknown { .. } => {}
                }
            }
            format_controller(max_len, id, reason, userdata, pause, meter, s)
        }
        Nicira::Learn(l) => format_learn(l, s),
        Nicira::Raw { subtype, data } => {
            let _ = write!(s, "nx_action(subtype={subtype},{})", hex_dots(data));
        }
    }
}

/// `ds_put_hex` as OVS does it: `0x` and the value without leading zero bytes.
fn hex_value(b: &[u8]) -> String {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    let rest = b.get(start..).unwrap_or(&[]);
    if rest.is_empty() {
        return "0".into();
    }
    let mut out = format!("0x{:x}", rest[0]);
    for x in rest.get(1..).unwrap_or(&[]) {
        let _ = write!(out, "{x:02x}");
    }
    out
}

fn format_learn(l: &crate::action::Learn, s: &mut String) {
    use crate::action::{LearnDst, LearnSrc};
    let _ = write!(s, "learn(table={}", l.table_id);
    if l.idle_timeout != 0 {
        let _ = write!(s, ",idle_timeout={}", l.idle_timeout);
    }
    if l.hard_timeout != 0 {
        let _ = write!(s, ",hard_timeout={}", l.hard_timeout);
    }
    if l.fin_idle_timeout != 0 {
        let _ = write!(s, ",fin_idle_timeout={}", l.fin_idle_timeout);
    }
    if l.fin_hard_timeout != 0 {
        let _ = write!(s, ",fin_hard_timeout={}", l.fin_hard_timeout);
    }
    if l.priority != DEFAULT_PRIORITY {
        let _ = write!(s, ",priority={}", l.priority);
    }
    if l.flags & 1 != 0 {
        s.push_str(",send_flow_rem");
    }
    if l.flags & 2 != 0 {
        s.push_str(",delete_learned");
    }
    if l.cookie != 0 {
        let _ = write!(s, ",cookie={:#x}", l.cookie);
    }
    for spec in &l.specs {
        s.push(',');
        match (&spec.src, &spec.dst) {
            (LearnSrc::Immediate(v), LearnDst::Match(dst)) => {
                let whole = dst.ofs == 0 && dst.n_bits == dst.field.value_bits();
                let width = usize::from(dst.field.value_bits() / 8);
                let field = whole.then(|| {
                    let mut b = bytes::BytesMut::new();
                    let mut h = crate::oxm::FieldHeader {
                        has_mask: false,
                        ..dst.field
                    };
                    if let Some((class, field)) = crate::oxm::oxm_twin(h.class, h.field) {
                        h.class = class;
                        h.field = field;
                    }
                    h.emit(&mut b);
                    b.extend_from_slice(v.get(v.len().saturating_sub(width)..).unwrap_or(&[]));
                    crate::oxm::Field::parse(&mut crate::wire::Reader::with_base(&b, 0)).ok()
                });
                match field
                    .flatten()
                    .filter(|f| !matches!(f, crate::oxm::Field::Raw(_)))
                {
                    Some(f) => {
                        let _ = write!(s, "{}={}", f.name(), f.format_value());
                    }
                    None => {
                        let _ = write!(s, "{dst}={}", hex_value(v));
                    }
                }
            }
            (LearnSrc::Field(src), LearnDst::Match(dst)) => {
                let _ = write!(s, "{dst}");
                let same = (src.field.class, src.field.field, src.field.experimenter)
                    == (dst.field.class, dst.field.field, dst.field.experimenter);
                if !same || src.ofs != dst.ofs {
                    let _ = write!(s, "={src}");
                }
            }
            (LearnSrc::Immediate(v), LearnDst::Load(dst)) => {
                let _ = write!(s, "load:{}->{dst}", hex_value(v));
            }
            (LearnSrc::Field(src), LearnDst::Load(dst)) => {
                let _ = write!(s, "load:{src}->{dst}");
            }
            (LearnSrc::Field(src), LearnDst::Output) => {
                let _ = write!(s, "output:{src}");
            }
            (LearnSrc::Immediate(v), LearnDst::Output) => {
                let _ = write!(s, "output:{}", hex_value(v));
            }
        }
    }
    s.push(')');
}

fn format_controller(
    max_len: u16,
    id: u16,
    reason: u8,
    userdata: Option<&[u8]>,
    pause: bool,
    meter: Option<u32>,
    s: &mut String,
) {
    if reason == 1 && id == 0 && userdata.is_none() && !pause && meter.is_none() {
        let _ = write!(s, "CONTROLLER:{max_len}");
        return;
    }
    s.push_str("controller(");
    if reason != 1 {
        let name = match reason {
            0 => "no_match".to_string(),
            2 => "invalid_ttl".into(),
            3 => "action_set".into(),
            4 => "group".into(),
            5 => "packet_out".into(),
            r => r.to_string(),
        };
        let _ = write!(s, "reason={name},");
    }
    if max_len != u16::MAX {
        let _ = write!(s, "max_len={max_len},");
    }
    if id != 0 {
        let _ = write!(s, "id={id},");
    }
    if let Some(d) = userdata {
        let _ = write!(s, "userdata={},", hex_dots(d));
    }
    if pause {
        s.push_str("pause,");
    }
    if let Some(m) = meter {
        let _ = write!(s, "meter_id={m},");
    }
    if s.ends_with(',') {
        s.pop();
    }
    s.push(')');
}

fn format_nat(n: &crate::action::Nat, s: &mut String) {
    use crate::action::Nat;
    s.push_str("nat");
    if n.flags & (Nat::SRC | Nat::DST) == 0 {
        return;
    }
    s.push('(');
    s.push_str(if n.flags & Nat::SRC != 0 {
        "src"
    } else {
        "dst"
    });
    let proto = n.proto.filter(|(min, _)| *min != 0);
    if let Some((min, max)) = n.ipv4 {
        let _ = write!(s, "={min}");
        if let Some(m) = max.filter(|m| *m != min && !m.is_unspecified()) {
            let _ = write!(s, "-{m}");
        }
    } else if let Some((min, max)) = n.ipv6 {
        let br = |a: std::net::Ipv6Addr| {
            if proto.is_some() {
                format!("[{a}]")
            } else {
                a.to_string()
            }
        };
        let _ = write!(s, "={}", br(min));
        if let Some(m) = max.filter(|m| *m != min && !m.is_unspecified()) {
            let _ = write!(s, "-{}", br(m));
        }
    }
    if (n.ipv4.is_some() || n.ipv6.is_some())
        && let Some((min, max)) = proto
    {
        let _ = write!(s, ":{min}");
        if let Some(m) = max.filter(|m| *m != min && *m != 0) {
            let _ = write!(s, "-{m}");
        }
    }
    s.push(',');
    if n.flags & Nat::PERSISTENT != 0 {
        s.push_str("persistent,");
    }
    if n.flags & Nat::PROTO_HASH != 0 {
        s.push_str("hash,");
    }
    if n.flags & Nat::PROTO_RANDOM != 0 {
        s.push_str("random,");
    }
    s.pop();
    s.push(')');
}

fn format_ct(ct: &Ct, s: &mut String) {
    s.push_str("ct(");
    if ct.flags & Ct::COMMIT != 0 {
        s.push_str("commit,");
    }
    if ct.flags & Ct::FORCE != 0 {
        s.push_str("force,");
    }
    if ct.recirc_table != Ct::NO_RECIRC {
        let _ = write!(s, "table={},", ct.recirc_table);
    }
    match ct.zone {
        CtZone::Field(sf) => {
            let _ = write!(s, "zone={sf},");
        }
        CtZone::Immediate(0) => {}
        CtZone::Immediate(z) => {
            let _ = write!(s, "zone={z},");
        }
    }
    // As OVS does: a leading nat is shown outside the exec() envelope.
    let mut actions = ct.actions.as_slice();
    if let Some((Action::Nicira(Nicira::Nat(n)), rest)) = actions.split_first() {
        format_nat(n, s);
        s.push(',');
        actions = rest;
    }
    if !actions.is_empty() {
        let _ = write!(s, "exec({}),", format_actions(actions));
    }
    match ct.alg {
        0 => {}
        21 => s.push_str("alg=ftp,"),
        69 => s.push_str("alg=tftp,"),
        a => {
            let _ = write!(s, "alg={a},");
        }
    }
    if s.ends_with(',') {
        s.pop();
    }
    s.push(')');
}

/// Formats an action list as `ovs-ofctl` does (`drop` when empty).
pub fn format_actions(acts: &[Action]) -> String {
    if acts.is_empty() {
        return "drop".into();
    }
    let mut s = String::new();
    for (i, a) in acts.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        format_action(a, &mut s);
    }
    s
}

/// Formats instructions in OVS's order (meter, apply, clear, write, metadata, goto).
pub fn format_instructions(insts: &[Instruction]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let rank = |i: &Instruction| match i {
        Instruction::Meter(_) => 0,
        Instruction::ApplyActions(_) => 1,
        Instruction::ClearActions => 2,
        Instruction::WriteActions(_) => 3,
        Instruction::WriteMetadata { .. } => 4,
        Instruction::GotoTable(_) => 5,
        Instruction::Raw { .. } => 6,
    };
    let mut sorted: Vec<&Instruction> = insts.iter().collect();
    sorted.sort_by_key(|i| rank(i));
    for i in sorted {
        match i {
            Instruction::Meter(m) => parts.push(format!("meter:{m}")),
            Instruction::ApplyActions(a) => {
                if !a.is_empty() {
                    parts.push(format_actions(a));
                }
            }
            Instruction::ClearActions => parts.push("clear_actions".into()),
            Instruction::WriteActions(a) => {
                parts.push(format!("write_actions({})", format_actions(a)))
            }
            Instruction::WriteMetadata { metadata, mask } => {
                if *mask == u64::MAX {
                    parts.push(format!("write_metadata:{}", hex(u128::from(*metadata))));
                } else {
                    parts.push(format!(
                        "write_metadata:{}/{}",
                        hex(u128::from(*metadata)),
                        hex(u128::from(*mask))
                    ));
                }
            }
            Instruction::GotoTable(t) => parts.push(format!("goto_table:{t}")),
            Instruction::Raw {
                instruction_type,
                data,
            } => parts.push(format!(
                "instruction(type={instruction_type},{})",
                hex_dots(data)
            )),
        }
    }
    if parts.is_empty() {
        "drop".into()
    } else {
        parts.join(",")
    }
}

/// Dump-flows style line without counters:
/// `cookie=0x5, table=30, priority=100,metadata=0x1389 actions=output:3`.
fn format_flow_line(
    cookie: u64,
    table: u8,
    priority: u16,
    m: &Match,
    insts: &[Instruction],
) -> String {
    let mut s = format!("cookie={:#x}, table={table}, ", cookie);
    let mt = format_match(m, Some(priority));
    s.push_str(&mt);
    if !mt.is_empty() {
        s.push(' ');
    }
    s.push_str("actions=");
    s.push_str(&format_instructions(insts));
    s
}

impl fmt::Display for FlowMod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_flow_line(
            self.cookie,
            self.table_id,
            self.priority,
            &self.r#match,
            &self.instructions,
        ))
    }
}

impl fmt::Display for FlowStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_flow_line(
            self.cookie,
            self.table_id,
            self.priority,
            &self.r#match,
            &self.instructions,
        ))
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_match(self, None))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        format_action(self, &mut s);
        f.write_str(&s)
    }
}

/// The part of `ovs-ofctl ofp-print` output for a flow mod after the command word: match
/// (with priority) and actions, as `ovs-ofctl` prints them.
pub fn format_flow_mod_body(fm: &FlowMod) -> String {
    let mut s = String::new();
    let cmd = match fm.command {
        FlowModCommand::Add => "ADD".to_string(),
        FlowModCommand::Modify => "MOD".into(),
        FlowModCommand::ModifyStrict => "MOD_STRICT".into(),
        FlowModCommand::Delete => "DEL".into(),
        FlowModCommand::DeleteStrict => "DEL_STRICT".into(),
        FlowModCommand::Unknown(c) => format!("cmd:{c}"),
    };
    s.push_str(&cmd);
    if fm.table_id != 0 {
        let _ = write!(s, " table:{}", fm.table_id);
    }
    s.push(' ');
    let mt = format_match(&fm.r#match, Some(fm.priority));
    s.push_str(&mt);
    if !s.ends_with(' ') {
        s.push(' ');
    }
    // As OVS decodes OF1.3: an ADD sets the cookie (the mask is ignored); other commands
    // select flows by cookie/mask.
    if fm.command == FlowModCommand::Add {
        if fm.cookie != 0 && fm.cookie != u64::MAX {
            let _ = write!(s, "cookie:{:#x} ", fm.cookie);
        }
    } else if fm.cookie_mask != 0 {
        let _ = write!(s, "cookie:{:#x}/{:#x} ", fm.cookie, fm.cookie_mask);
    }
    if fm.idle_timeout != 0 {
        let _ = write!(s, "idle:{} ", fm.idle_timeout);
    }
    if fm.hard_timeout != 0 {
        let _ = write!(s, "hard:{} ", fm.hard_timeout);
    }
    if fm.buffer_id != crate::types::NO_BUFFER {
        let _ = write!(s, "buf:{:#x} ", fm.buffer_id);
    }
    if fm.out_port != port::ANY {
        let _ = write!(s, "out_port:{} ", port::format(fm.out_port));
    }
    let is_delete = matches!(
        fm.command,
        FlowModCommand::Delete | FlowModCommand::DeleteStrict
    );
    if is_delete && fm.out_group != crate::types::group::ANY {
        let _ = write!(s, "out_group:{} ", fm.out_group);
    }
    for (bit, name) in [
        (1, "send_flow_rem"),
        (2, "check_overlap"),
        (4, "reset_counts"),
        (8, "no_packet_counts"),
        (16, "no_byte_counts"),
    ] {
        if fm.flags & bit != 0 {
            let _ = write!(s, "{name} ");
        }
    }
    s.push_str("actions=");
    s.push_str(&format_instructions(&fm.instructions));
    s
}

fn msg_name(m: &Message) -> &'static str {
    match m {
        Message::Hello(_) => "OFPT_HELLO",
        Message::Error(_) => "OFPT_ERROR",
        Message::EchoRequest(_) => "OFPT_ECHO_REQUEST",
        Message::EchoReply(_) => "OFPT_ECHO_REPLY",
        Message::Experimenter(_) => "OFPT_EXPERIMENTER",
        Message::FeaturesRequest => "OFPT_FEATURES_REQUEST",
        Message::FeaturesReply(_) => "OFPT_FEATURES_REPLY",
        Message::GetConfigRequest => "OFPT_GET_CONFIG_REQUEST",
        Message::GetConfigReply(_) => "OFPT_GET_CONFIG_REPLY",
        Message::SetConfig(_) => "OFPT_SET_CONFIG",
        Message::PacketIn(_) => "OFPT_PACKET_IN",
        Message::FlowRemoved(_) => "OFPT_FLOW_REMOVED",
        Message::PortStatus(_) => "OFPT_PORT_STATUS",
        Message::PacketOut(_) => "OFPT_PACKET_OUT",
        Message::FlowMod(_) => "OFPT_FLOW_MOD",
        Message::GroupMod(_) => "OFPT_GROUP_MOD",
        Message::PortMod(_) => "OFPT_PORT_MOD",
        Message::TableMod(_) => "OFPT_TABLE_MOD",
        Message::MultipartRequest(_) | Message::MultipartReply(_) => "OFPST",
        Message::BarrierRequest => "OFPT_BARRIER_REQUEST",
        Message::BarrierReply => "OFPT_BARRIER_REPLY",
        Message::RoleRequest(_) => "OFPT_ROLE_REQUEST",
        Message::RoleReply(_) => "OFPT_ROLE_REPLY",
        Message::GetAsyncRequest => "OFPT_GET_ASYNC_REQUEST",
        Message::GetAsyncReply(_) => "OFPT_GET_ASYNC_REPLY",
        Message::SetAsync(_) => "OFPT_SET_ASYNC",
        Message::MeterMod(_) => "OFPT_METER_MOD",
        Message::BundleControl(_) => "ONFT_BUNDLE_CONTROL",
        Message::BundleAdd(_) => "ONFT_BUNDLE_ADD_MESSAGE",
        Message::Raw { .. } => "OFPT_UNKNOWN",
    }
}

fn format_buckets(buckets: &[Bucket], s: &mut String) {
    for b in buckets {
        s.push_str(",bucket=");
        if b.weight != 0 {
            let _ = write!(s, "weight:{},", b.weight);
        }
        if b.watch_port != port::ANY {
            let _ = write!(s, "watch_port:{},", port::format(b.watch_port));
        }
        if b.watch_group != crate::types::group::ANY {
            let _ = write!(s, "watch_group:{},", b.watch_group);
        }
        let _ = write!(s, "actions={}", format_actions(&b.actions));
    }
}

fn group_type_name(t: GroupType) -> String {
    match t {
        GroupType::All => "all".into(),
        GroupType::Select => "select".into(),
        GroupType::Indirect => "indirect".into(),
        GroupType::FastFailover => "ff".into(),
        GroupType::Unknown(n) => format!("type{n}"),
    }
}

/// Body text of one message (what follows `OFPT_X (OF1.3) (xid=...):`).
fn format_body(m: &Message, s: &mut String) {
    match m {
        Message::Hello(h) => {
            for e in &h.elements {
                match e {
                    HelloElement::VersionBitmap(w) => {
                        let mut vs = Vec::new();
                        for (i, word) in w.iter().enumerate() {
                            for b in 0..32 {
                                if word & (1 << b) != 0 {
                                    vs.push(format!("0x{:02x}", i * 32 + b));
                                }
                            }
                        }
                        let _ = write!(s, "\n version bitmap: {}", vs.join(", "));
                    }
                    HelloElement::Unknown { element_type, data } => {
                        let _ = write!(
                            s,
                            "\n unknown element type {element_type}: {}",
                            hex_dots(data)
                        );
                    }
                }
            }
        }
        Message::Error(e) => {
            match e.kind {
                ErrorKind::Standard { err_type, code } => {
                    let _ = write!(s, " {}", error_name(err_type, code));
                }
                ErrorKind::Experimenter {
                    exp_type,
                    experimenter,
                } => {
                    let _ = write!(s, " experimenter=0x{experimenter:08x} exp_type={exp_type}");
                }
            }
            match e.offending() {
                Some(inner) => {
                    let _ = write!(s, "\n{}", print_message(&inner));
                }
                None => {
                    let _ = write!(s, "\n{}", hex_dump(&e.data));
                }
            }
        }
        Message::EchoRequest(d) | Message::EchoReply(d) => {
            let _ = write!(s, " {} bytes of payload", d.len());
        }
        Message::Experimenter(e) => {
            let _ = write!(
                s,
                " experimenter=0x{:08x} exp_type={} {} bytes",
                e.experimenter,
                e.exp_type,
                e.data.len()
            );
        }
        Message::FeaturesReply(f) => {
            let _ = write!(
                s,
                " dpid:{:016x}\nn_tables:{}, n_buffers:{}, auxiliary_id:{}\ncapabilities:",
                f.datapath_id, f.n_tables, f.n_buffers, f.auxiliary_id
            );
            for (bit, name) in [
                (1, "FLOW_STATS"),
                (2, "TABLE_STATS"),
                (4, "PORT_STATS"),
                (8, "GROUP_STATS"),
                (32, "IP_REASM"),
                (64, "QUEUE_STATS"),
                (256, "PORT_BLOCKED"),
            ] {
                if f.capabilities & bit != 0 {
                    let _ = write!(s, " {name}");
                }
            }
        }
        Message::GetConfigReply(c) | Message::SetConfig(c) => {
            let frags = ["normal", "drop", "reassemble", "nx-match"][usize::from(c.flags & 3)];
            let _ = write!(s, " frags={frags}");
            if c.flags & 4 != 0 {
                s.push_str(" invalid_ttl_to_controller");
            }
            let _ = write!(s, " miss_send_len={}", c.miss_send_len);
        }
        Message::PacketIn(p) => {
            if p.table_id != 0 {
                let _ = write!(s, " table_id={}", p.table_id);
            }
            if p.cookie != u64::MAX {
                let _ = write!(s, " cookie={:#x}", p.cookie);
            }
            let reason = match p.reason {
                PacketInReason::NoMatch => "no_match".to_string(),
                PacketInReason::Action => "action".into(),
                PacketInReason::InvalidTtl => "invalid_ttl".into(),
                PacketInReason::Unknown(3) => "action_set".into(),
                PacketInReason::Unknown(4) => "group".into(),
                PacketInReason::Unknown(5) => "packet_out".into(),
                PacketInReason::Unknown(n) => n.to_string(),
            };
            let _ = write!(
                s,
                " total_len={} {} (via {reason}) data_len={}",
                p.total_len,
                format_match(&p.r#match, None),
                p.data.len()
            );
            if p.buffer_id == u32::MAX {
                s.push_str(" (unbuffered)");
            } else {
                let _ = write!(s, " buffer=0x{:08x}", p.buffer_id);
            }
        }
        Message::FlowRemoved(f) => {
            let reason = match f.reason {
                FlowRemovedReason::IdleTimeout => "idle".to_string(),
                FlowRemovedReason::HardTimeout => "hard".into(),
                FlowRemovedReason::Delete => "delete".into(),
                FlowRemovedReason::GroupDelete => "group_delete".into(),
                FlowRemovedReason::Unknown(n) => n.to_string(),
            };
            let _ = write!(
                s,
                " {} reason={reason}",
                format_match(&f.r#match, Some(f.priority))
            );
            if f.table_id != 255 {
                let _ = write!(s, " table_id={}", f.table_id);
            }
            if f.cookie != 0 {
                let _ = write!(s, " cookie:{:#x}", f.cookie);
            }
            let _ = write!(
                s,
                " duration{} idle{}",
                duration(f.duration_sec, f.duration_nsec),
                f.idle_timeout
            );
            if f.hard_timeout != 0 {
                let _ = write!(s, " hard{}", f.hard_timeout);
            }
            let _ = write!(s, " pkts{} bytes{}", f.packet_count, f.byte_count);
        }
        Message::PortStatus(p) => {
            let _ = write!(
                s,
                " {:?}: {}({}): addr:{}",
                p.reason, p.desc.port_no, p.desc.name, p.desc.hw_addr
            );
        }
        Message::PacketOut(p) => {
            let _ = write!(
                s,
                " in_port={} actions={}",
                port::format(p.in_port),
                format_actions(&p.actions)
            );
            if p.buffer_id == u32::MAX {
                let _ = write!(s, " data_len={}", p.data.len());
            } else {
                let _ = write!(s, " buffer=0x{:08x}", p.buffer_id);
            }
        }
        Message::FlowMod(f) => {
            s.push(' ');
            s.push_str(&format_flow_mod_body(f));
        }
        Message::GroupMod(g) => {
            let cmd = match g.command {
                GroupModCommand::Add => "ADD".to_string(),
                GroupModCommand::Modify => "MOD".into(),
                GroupModCommand::Delete => "DEL".into(),
                GroupModCommand::Unknown(c) => format!("cmd:{c}"),
            };
            let _ = write!(
                s,
                "\n {cmd} group_id={},type={}",
                g.group_id,
                group_type_name(g.group_type)
            );
            format_buckets(&g.buckets, s);
        }
        Message::PortMod(p) => {
            let _ = write!(
                s,
                " port: {}: addr:{} config: 0x{:x} mask: 0x{:x}",
                p.port_no, p.hw_addr, p.config, p.mask
            );
        }
        Message::TableMod(t) => {
            let _ = write!(s, " table_id={} config=0x{:x}", t.table_id, t.config);
        }
        Message::MultipartRequest(m) => match &m.body {
            MultipartRequestBody::Flow(q) | MultipartRequestBody::Aggregate(q) => {
                if q.table_id != crate::types::TABLE_ALL {
                    let _ = write!(s, " table={}", q.table_id);
                }
                if q.out_port != port::ANY {
                    let _ = write!(s, " out_port={}", port::format(q.out_port));
                }
                if q.out_group != crate::types::group::ANY {
                    let _ = write!(s, " out_group={}", q.out_group);
                }
                if q.cookie_mask != 0 {
                    let _ = write!(s, " cookie={:#x}/{:#x}", q.cookie, q.cookie_mask);
                }
                let mt = format_match(&q.r#match, None);
                if !mt.is_empty() {
                    let _ = write!(s, " {mt}");
                }
            }
            MultipartRequestBody::PortDesc => s.push_str(" port=ANY"),
            MultipartRequestBody::GroupDesc => s.push_str(" group_id=ALL"),
            MultipartRequestBody::Desc
            | MultipartRequestBody::Table
            | MultipartRequestBody::GroupFeatures => {}
            MultipartRequestBody::Raw { mp_type, body } => {
                let _ = write!(s, " {mp_type:?} ({} bytes, not decoded)", body.len());
            }
            other => {
                let _ = write!(s, " {:?}", other);
            }
        },
        Message::MultipartReply(m) => match &m.body {
            MultipartReplyBody::Flow(v) => {
                for f in v {
                    let _ = write!(
                        s,
                        "\n cookie={:#x}, duration={}, table={}, n_packets={}, n_bytes={}, ",
                        f.cookie,
                        duration(f.duration_sec, f.duration_nsec),
                        f.table_id,
                        f.packet_count,
                        f.byte_count
                    );
                    if f.idle_timeout != 0 {
                        let _ = write!(s, "idle_timeout={}, ", f.idle_timeout);
                    }
                    if f.hard_timeout != 0 {
                        let _ = write!(s, "hard_timeout={}, ", f.hard_timeout);
                    }
                    let mt = format_match(&f.r#match, Some(f.priority));
                    s.push_str(&mt);
                    if !mt.is_empty() {
                        s.push(' ');
                    }
                    let _ = write!(s, "actions={}", format_instructions(&f.instructions));
                }
            }
            MultipartReplyBody::GroupDesc(v) => {
                for g in v {
                    let _ = write!(
                        s,
                        "\n group_id={},type={}",
                        g.group_id,
                        group_type_name(g.group_type)
                    );
                    format_buckets(&g.buckets, s);
                }
            }
            MultipartReplyBody::PortDesc(v) => {
                for p in v {
                    let _ = write!(
                        s,
                        "\n {}({}): addr:{}",
                        port::format(p.port_no),
                        p.name,
                        p.hw_addr
                    );
                }
            }
            MultipartReplyBody::Raw { mp_type, body } => {
                let _ = write!(s, " {mp_type:?} ({} bytes, not decoded)", body.len());
            }
            other => {
                let _ = write!(s, " {:?}", other);
            }
        },
        Message::RoleRequest(r) | Message::RoleReply(r) => {
            let role = match r.role {
                ControllerRole::NoChange => "nochange".to_string(),
                ControllerRole::Equal => "equal".into(),
                ControllerRole::Master => "primary".into(),
                ControllerRole::Slave => "secondary".into(),
                ControllerRole::Unknown(n) => n.to_string(),
            };
            let _ = write!(s, " role={role}");
            if r.role != ControllerRole::NoChange {
                let _ = write!(s, " generation_id={}", r.generation_id);
            }
        }
        Message::GetAsyncReply(a) | Message::SetAsync(a) => {
            let _ = write!(s, " {:?}", a);
        }
        Message::MeterMod(m) => {
            let _ = write!(
                s,
                " {:?} meter={} flags=0x{:x} bands={}",
                m.command,
                m.meter_id,
                m.flags,
                m.bands.len()
            );
        }
        Message::BundleControl(b) => {
            let _ = write!(
                s,
                "\n bundle_id={:#x} type={:?} flags=0x{:x}",
                b.bundle_id, b.ctrl_type, b.flags
            );
        }
        Message::BundleAdd(b) => {
            let _ = write!(
                s,
                "\n bundle_id={:#x} flags=0x{:x}\n{}",
                b.bundle_id,
                b.flags,
                print_message(&b.message)
            );
        }
        Message::Raw { msg_type, body } => {
            let _ = write!(s, " type={msg_type}\n{}", hex_dump(body));
        }
        Message::FeaturesRequest
        | Message::GetConfigRequest
        | Message::BarrierRequest
        | Message::BarrierReply
        | Message::GetAsyncRequest => {}
    }
}

/// One decoded message as text, `ovs-ofctl ofp-print` style.
pub fn print_message(m: &OfpMessage) -> String {
    let name = match &m.body {
        Message::MultipartRequest(r) => format!("OFPST_{} request", mp_name(r.body_type())),
        Message::MultipartReply(r) => format!("OFPST_{} reply", mp_name(r.body_type())),
        other => msg_name(other).to_string(),
    };
    let mut s = format!(
        "{name} (OF1.{}) (xid={:#x}):",
        m.version.saturating_sub(1),
        m.xid
    );
    format_body(&m.body, &mut s);
    s
}

fn mp_name(t: MultipartType) -> String {
    use MultipartType as T;
    match t {
        T::Desc => "DESC".into(),
        T::Flow => "FLOW".into(),
        T::Aggregate => "AGGREGATE".into(),
        T::Table => "TABLE".into(),
        T::PortStats => "PORT".into(),
        T::Queue => "QUEUE".into(),
        T::Group => "GROUP".into(),
        T::GroupDesc => "GROUP_DESC".into(),
        T::GroupFeatures => "GROUP_FEATURES".into(),
        T::Meter => "METER".into(),
        T::MeterConfig => "METER_CONFIG".into(),
        T::MeterFeatures => "METER_FEATURES".into(),
        T::TableFeatures => "TABLE_FEATURES".into(),
        T::PortDesc => "PORT_DESC".into(),
        T::Experimenter => "EXPERIMENTER".into(),
        T::Unknown(n) => format!("TYPE{n}"),
    }
}

/// `ofp_print_duration`: seconds, and the fraction without trailing zeros.
fn duration(sec: u32, nsec: u32) -> String {
    if nsec == 0 {
        return format!("{sec}s");
    }
    let frac = format!("{nsec:09}");
    format!("{sec}.{}s", frac.trim_end_matches('0'))
}

fn hex_dump(b: &[u8]) -> String {
    let mut s = String::new();
    for (i, chunk) in b.chunks(16).enumerate() {
        if i > 0 {
            s.push('\n');
        }
        let _ = write!(s, "{:08x}  ", i * 16);
        for x in chunk {
            let _ = write!(s, "{x:02x} ");
        }
    }
    s
}

/// Pretty-prints every message in `bytes` (one or more, back to back), like
/// `ovs-ofctl ofp-print`. Undecodable input is reported with the error and a hex dump.
pub fn ofp_print(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match OfpMessage::decode_prefix(rest) {
            Ok((m, used)) => {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&print_message(&m));
                rest = rest.get(used..).unwrap_or(&[]);
            }
            Err(e) => {
                if !out.is_empty() {
                    out.push('\n');
                }
                let _ = write!(out, "*** decode error: {e}\n{}", hex_dump(rest));
                break;
            }
        }
    }
    out
}

/// Result of decoding and re-encoding bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoundTrip {
    /// Re-encoding reproduced every byte.
    Exact {
        messages: usize,
        raw_parts: usize,
    },
    /// Re-encoding differs first at `offset`.
    Differs {
        offset: usize,
        original_len: usize,
        reencoded_len: usize,
    },
    DecodeError(crate::Error),
    EncodeError(crate::Error),
}

impl fmt::Display for RoundTrip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoundTrip::Exact {
                messages,
                raw_parts,
            } => {
                write!(
                    f,
                    "byte-exact ({messages} message(s), {raw_parts} raw part(s))"
                )
            }
            RoundTrip::Differs {
                offset,
                original_len,
                reencoded_len,
            } => write!(
                f,
                "differs at offset {offset} (original {original_len} bytes, re-encoded {reencoded_len} bytes)"
            ),
            RoundTrip::DecodeError(e) => write!(f, "decode error: {e}"),
            RoundTrip::EncodeError(e) => write!(f, "encode error: {e}"),
        }
    }
}

/// Decodes every message in `bytes`, re-encodes them, and compares byte by byte.
pub fn roundtrip(bytes: &[u8]) -> RoundTrip {
    let mut rest = bytes;
    let mut out = bytes::BytesMut::new();
    let mut messages = 0;
    let mut raw_parts = 0;
    while !rest.is_empty() {
        match OfpMessage::decode_prefix(rest) {
            Ok((m, used)) => {
                if let Err(e) = m.encode(&mut out) {
                    return RoundTrip::EncodeError(e);
                }
                messages += 1;
                raw_parts += m.raw_count();
                rest = rest.get(used..).unwrap_or(&[]);
            }
            Err(e) => return RoundTrip::DecodeError(e),
        }
    }
    match bytes.iter().zip(out.iter()).position(|(a, b)| a != b) {
        Some(offset) => RoundTrip::Differs {
            offset,
            original_len: bytes.len(),
            reencoded_len: out.len(),
        },
        None if bytes.len() != out.len() => RoundTrip::Differs {
            offset: bytes.len().min(out.len()),
            original_len: bytes.len(),
            reencoded_len: out.len(),
        },
        None => RoundTrip::Exact {
            messages,
            raw_parts,
        },
    }
}

/// Parses hex as users paste it (`0x` prefix, spaces, colons and newlines allowed), for
/// `weftctl ofp-print <hex>`.
pub fn parse_hex(s: &str) -> std::result::Result<Vec<u8>, String> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    let digits: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b':' && *c != b'-')
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, p)| {
            let t = std::str::from_utf8(p).map_err(|_| format!("bad hex at digit {}", 2 * i))?;
            u8::from_str_radix(t, 16).map_err(|_| format!("bad hex {t:?} at digit {}", 2 * i))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_and_roundtrip_from_pasted_hex() {
        let bytes = parse_hex("0x04 14 00 08\n00 00 00 05").unwrap();
        assert_eq!(ofp_print(&bytes), "OFPT_BARRIER_REQUEST (OF1.3) (xid=0x5):");
        assert_eq!(
            roundtrip(&bytes),
            RoundTrip::Exact {
                messages: 1,
                raw_parts: 0
            }
        );
        assert!(parse_hex("abc").is_err());
        let t = ofp_print(&[4, 14, 0, 9, 0, 0, 0, 1, 0]);
        assert!(t.starts_with("*** decode error"), "{t}");
    }

    #[test]
    fn ct_state_formats() {
        assert_eq!(ct_state_flags(0x22, 0x22), "+est+trk");
        assert_eq!(ct_state_flags(0x20, 0x21), "-new+trk");
        assert_eq!(ct_state_flags(0x22, u32::MAX), "est|trk");
    }
}
