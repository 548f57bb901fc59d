//! Flows as one dump-flows style line: the `Display` impls of flow mods, flow stats, matches
//! and actions, and the flow-mod body `ofp-print` shows.

use std::fmt::{self, Write as _};

use crate::action::Action;
use crate::instruction::Instruction;
use crate::message::*;
use crate::oxm::Match;
use crate::types::port;

use super::actions::{format_action, format_instructions};
use super::match_fields::format_match;

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
