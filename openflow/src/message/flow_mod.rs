//! One flow-table entry on the wire: FLOW_MOD (add, modify, delete) and FLOW_REMOVED (the
//! switch reporting an entry gone, with its counters).

use bytes::{BufMut, BytesMut};

use super::expect_len;
use crate::error::Result;
use crate::instruction::Instruction;
use crate::oxm::Match;
use crate::wire::{Emit, Reader, put_zeros, wire_enum};

wire_enum! {
    pub enum FlowModCommand: u8 { Add = 0, Modify = 1, ModifyStrict = 2, Delete = 3, DeleteStrict = 4, }
}
wire_enum! {
    pub enum FlowRemovedReason: u8 { IdleTimeout = 0, HardTimeout = 1, Delete = 2, GroupDelete = 3, }
}

/// Flow-mod flags (`OFPFF_*`).
pub mod flow_flags {
    pub const SEND_FLOW_REM: u16 = 1;
    pub const CHECK_OVERLAP: u16 = 2;
    pub const RESET_COUNTS: u16 = 4;
    pub const NO_PKT_COUNTS: u16 = 8;
    pub const NO_BYT_COUNTS: u16 = 16;
}

/// OFPT_FLOW_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowMod {
    pub cookie: u64,
    pub cookie_mask: u64,
    pub table_id: u8,
    pub command: FlowModCommand,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub buffer_id: u32,
    pub out_port: u32,
    pub out_group: u32,
    pub flags: u16,
    pub r#match: Match,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRemoved {
    pub cookie: u64,
    pub priority: u16,
    pub reason: FlowRemovedReason,
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub packet_count: u64,
    pub byte_count: u64,
    pub r#match: Match,
}

impl FlowMod {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        let cookie = r.u64("cookie")?;
        let cookie_mask = r.u64("cookie_mask")?;
        let table_id = r.u8("table_id")?;
        let command = FlowModCommand::from(r.u8("command")?);
        let idle_timeout = r.u16("idle_timeout")?;
        let hard_timeout = r.u16("hard_timeout")?;
        let priority = r.u16("priority")?;
        let buffer_id = r.u32("buffer_id")?;
        let out_port = r.u32("out_port")?;
        let out_group = r.u32("out_group")?;
        let flags = r.u16("flags")?;
        r.skip(2, "pad")?;
        let m = Match::parse(r)?;
        let instructions = Instruction::parse_list(r)?;
        Ok(FlowMod {
            cookie,
            cookie_mask,
            table_id,
            command,
            idle_timeout,
            hard_timeout,
            priority,
            buffer_id,
            out_port,
            out_group,
            flags,
            r#match: m,
            instructions,
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u64(self.cookie);
        buf.put_u64(self.cookie_mask);
        buf.put_u8(self.table_id);
        buf.put_u8(self.command.into());
        buf.put_u16(self.idle_timeout);
        buf.put_u16(self.hard_timeout);
        buf.put_u16(self.priority);
        buf.put_u32(self.buffer_id);
        buf.put_u32(self.out_port);
        buf.put_u32(self.out_group);
        buf.put_u16(self.flags);
        put_zeros(buf, 2);
        self.r#match.emit(buf);
        for i in &self.instructions {
            i.emit(buf);
        }
    }
}

impl FlowRemoved {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        let cookie = r.u64("cookie")?;
        let priority = r.u16("priority")?;
        let reason = FlowRemovedReason::from(r.u8("reason")?);
        let table_id = r.u8("table_id")?;
        let duration_sec = r.u32("duration_sec")?;
        let duration_nsec = r.u32("duration_nsec")?;
        let idle_timeout = r.u16("idle_timeout")?;
        let hard_timeout = r.u16("hard_timeout")?;
        let packet_count = r.u64("packet_count")?;
        let byte_count = r.u64("byte_count")?;
        let m = Match::parse(r)?;
        expect_len(r, 0, "flow removed")?;
        Ok(FlowRemoved {
            cookie,
            priority,
            reason,
            table_id,
            duration_sec,
            duration_nsec,
            idle_timeout,
            hard_timeout,
            packet_count,
            byte_count,
            r#match: m,
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u64(self.cookie);
        buf.put_u16(self.priority);
        buf.put_u8(self.reason.into());
        buf.put_u8(self.table_id);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
        buf.put_u16(self.idle_timeout);
        buf.put_u16(self.hard_timeout);
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
        self.r#match.emit(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Action;
    use crate::message::testing::*;
    use crate::message::{Message, ofpt};
    use crate::oxm::Field;
    use crate::types::Mac;

    #[test]
    fn flow_removed() {
        let mut body = vec![
            0, 0, 0, 0, 0, 0, 0, 0x05, // cookie
            0x00, 0x64, // priority 100
            0x02, // reason: delete
            0x1e, // table 30
            0x00, 0x00, 0x00, 0x0a, // duration_sec
            0x00, 0x00, 0x00, 0x00, // duration_nsec
            0x00, 0x00, // idle_timeout
            0x00, 0x00, // hard_timeout
            0, 0, 0, 0, 0, 0, 0, 0x07, // packet_count
            0, 0, 0, 0, 0, 0, 0x02, 0x00, // byte_count
        ];
        body.extend_from_slice(&IN_PORT_3_MATCH);
        check(
            &with_header(ofpt::FLOW_REMOVED, &body),
            msg(Message::FlowRemoved(FlowRemoved {
                cookie: 5,
                priority: 100,
                reason: FlowRemovedReason::Delete,
                table_id: 30,
                duration_sec: 10,
                duration_nsec: 0,
                idle_timeout: 0,
                hard_timeout: 0,
                packet_count: 7,
                byte_count: 512,
                r#match: Match::new(vec![Field::InPort(3, None)]),
            })),
        );
    }

    #[test]
    fn flow_mod_as_ovs_ofctl_sends_it() {
        // ovs-ofctl -O OpenFlow13 add-flow ... 'table=30,priority=100,metadata=0x1389,
        //   dl_dst=02:00:00:00:00:01,cookie=0x5 actions=set_field:0x1389->tun_id,output:3'
        let bytes = [
            0x04, 0x0e, 0x00, 0x78, 0x00, 0x00, 0x00,
            0x02, // header: FLOW_MOD, len 120, xid 2
            0, 0, 0, 0, 0, 0, 0, 0x05, // cookie 5
            0, 0, 0, 0, 0, 0, 0, 0,    // cookie_mask
            0x1e, // table 30
            0x00, // command ADD
            0x00, 0x00, 0x00, 0x00, // idle, hard timeout
            0x00, 0x64, // priority 100
            0xff, 0xff, 0xff, 0xff, // buffer_id none
            0xff, 0xff, 0xff, 0xff, // out_port ANY
            0xff, 0xff, 0xff, 0xff, // out_group ANY
            0x00, 0x00, 0x00, 0x00, // flags, pad
            0x00, 0x01, 0x00, 0x1a, // match OXM, len 26
            0x80, 0x00, 0x06, 0x06, 0x02, 0, 0, 0, 0, 0x01, // eth_dst
            0x80, 0x00, 0x04, 0x08, 0, 0, 0, 0, 0, 0, 0x13, 0x89, // metadata
            0, 0, 0, 0, 0, 0, // pad to 32
            0x00, 0x04, 0x00, 0x28, 0, 0, 0, 0, // APPLY_ACTIONS, len 40
            0x00, 0x19, 0x00, 0x10, 0x80, 0x00, 0x4c, 0x08, 0, 0, 0, 0, 0, 0, 0x13,
            0x89, // set_field tun_id
            0x00, 0x00, 0x00, 0x10, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, // output:3
        ];
        let fm = FlowMod::add(
            30,
            100,
            Match::new(vec![
                Field::EthDst(Mac([2, 0, 0, 0, 0, 1]), None),
                Field::Metadata(0x1389, None),
            ]),
            vec![Instruction::ApplyActions(vec![
                Action::SetField(Field::TunnelId(0x1389, None)),
                Action::output(3),
            ])],
        )
        .with_cookie(5);
        check(&bytes, fm.clone().into_message(2));
        assert_eq!(
            fm.to_string(),
            "cookie=0x5, table=30, priority=100,metadata=0x1389,dl_dst=02:00:00:00:00:01 actions=set_field:0x1389->tun_id,output:3"
        );
    }
}
