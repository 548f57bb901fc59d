//! Actions and instructions as `ovs-ofctl` prints them, the Nicira extensions (learn,
//! conntrack, NAT, controller) included.

use std::fmt::Write as _;

use crate::action::{Action, Ct, CtZone, Nicira};
use crate::instruction::Instruction;
use crate::oxm::hex;
use crate::types::port;

use super::match_fields::{DEFAULT_PRIORITY, format_field_name};

pub(super) fn format_action(a: &Action, s: &mut String) {
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

pub(super) fn hex_dots(b: &[u8]) -> String {
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
