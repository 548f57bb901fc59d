//! Whole messages as `ovs-ofctl ofp-print` prints them: the message name, header and a
//! body per message type.

use std::fmt::Write as _;

use crate::message::*;
use crate::types::port;

use super::actions::{format_actions, format_instructions, hex_dots};
use super::flow::format_flow_mod_body;
use super::match_fields::format_match;

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

pub(super) fn hex_dump(b: &[u8]) -> String {
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
