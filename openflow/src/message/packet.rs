//! Packets to and from the controller: PACKET_IN (a packet the switch sends up, with its
//! match) and PACKET_OUT (a packet the controller injects, with actions to apply).

use bytes::{BufMut, BytesMut};

use crate::action::Action;
use crate::error::Result;
use crate::oxm::Match;
use crate::wire::{Emit, Reader, patch_u16, put_zeros, wire_enum};

wire_enum! {
    pub enum PacketInReason: u8 { NoMatch = 0, Action = 1, InvalidTtl = 2, }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    pub buffer_id: u32,
    pub total_len: u16,
    pub reason: PacketInReason,
    pub table_id: u8,
    pub cookie: u64,
    pub r#match: Match,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut {
    pub buffer_id: u32,
    pub in_port: u32,
    pub actions: Vec<Action>,
    pub data: Vec<u8>,
}

impl PacketIn {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        let buffer_id = r.u32("buffer_id")?;
        let total_len = r.u16("total_len")?;
        let reason = PacketInReason::from(r.u8("reason")?);
        let table_id = r.u8("table_id")?;
        let cookie = r.u64("cookie")?;
        let m = Match::parse(r)?;
        r.skip(2, "pad")?;
        Ok(PacketIn {
            buffer_id,
            total_len,
            reason,
            table_id,
            cookie,
            r#match: m,
            data: r.take_rest().to_vec(),
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.buffer_id);
        buf.put_u16(self.total_len);
        buf.put_u8(self.reason.into());
        buf.put_u8(self.table_id);
        buf.put_u64(self.cookie);
        self.r#match.emit(buf);
        put_zeros(buf, 2);
        buf.put_slice(&self.data);
    }
}

impl PacketOut {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        let buffer_id = r.u32("buffer_id")?;
        let in_port = r.u32("in_port")?;
        let actions_len = usize::from(r.u16("actions_len")?);
        r.skip(6, "pad")?;
        let mut ab = r.sub(actions_len, "packet-out actions")?;
        let actions = Action::parse_list(&mut ab, 0)?;
        Ok(PacketOut {
            buffer_id,
            in_port,
            actions,
            data: r.take_rest().to_vec(),
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.buffer_id);
        buf.put_u32(self.in_port);
        let len_at = buf.len();
        buf.put_u16(0);
        put_zeros(buf, 6);
        let start = buf.len();
        for a in &self.actions {
            a.emit(buf);
        }
        patch_u16(buf, len_at, buf.len() - start);
        buf.put_slice(&self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::testing::*;
    use crate::message::{Message, ofpt};
    use crate::oxm::Field;
    use crate::types::{NO_BUFFER, port};

    #[test]
    fn packet_in() {
        let mut body = vec![
            0xff, 0xff, 0xff, 0xff, // buffer_id: none
            0x00, 0x04, // total_len 4
            0x01, // reason: action
            0x1e, // table 30
            0, 0, 0, 0, 0, 0, 0, 0x05, // cookie 5
        ];
        body.extend_from_slice(&IN_PORT_3_MATCH);
        body.extend_from_slice(&[
            0, 0, /* pad */
            0xaa, 0xbb, 0xcc, 0xdd, /* packet */
        ]);
        check(
            &with_header(ofpt::PACKET_IN, &body),
            msg(Message::PacketIn(PacketIn {
                buffer_id: NO_BUFFER,
                total_len: 4,
                reason: PacketInReason::Action,
                table_id: 30,
                cookie: 5,
                r#match: Match::new(vec![Field::InPort(3, None)]),
                data: vec![0xaa, 0xbb, 0xcc, 0xdd],
            })),
        );
    }

    #[test]
    fn packet_out() {
        let body = [
            0xff, 0xff, 0xff, 0xff, // buffer_id: none
            0xff, 0xff, 0xff, 0xfd, // in_port CONTROLLER
            0x00, 0x10, // actions_len 16
            0, 0, 0, 0, 0, 0, // pad
            0x00, 0x00, 0x00, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, // output:1
            0x01, 0x02, // packet
        ];
        check(
            &with_header(ofpt::PACKET_OUT, &body),
            msg(Message::PacketOut(PacketOut {
                buffer_id: NO_BUFFER,
                in_port: port::CONTROLLER,
                actions: vec![Action::output(1)],
                data: vec![1, 2],
            })),
        );
    }
}
