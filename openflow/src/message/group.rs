//! Groups: GROUP_MOD and the buckets of actions a group holds (also used by the
//! group-description multipart reply).

use bytes::{BufMut, BytesMut};

use crate::action::Action;
use crate::error::{Error, Result};
use crate::wire::{Emit, Reader, patch_u16, put_zeros, wire_enum};

wire_enum! {
    pub enum GroupModCommand: u16 { Add = 0, Modify = 1, Delete = 2, }
}
wire_enum! {
    pub enum GroupType: u8 { All = 0, Select = 1, Indirect = 2, FastFailover = 3, }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket {
    pub weight: u16,
    pub watch_port: u32,
    pub watch_group: u32,
    pub actions: Vec<Action>,
}

/// OFPT_GROUP_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupMod {
    pub command: GroupModCommand,
    pub group_type: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

pub(super) fn parse_buckets(r: &mut Reader<'_>) -> Result<Vec<Bucket>> {
    let mut out = Vec::new();
    while !r.is_empty() {
        let at = r.offset();
        let len = usize::from(r.u16("bucket length")?);
        if len < 16 {
            return Err(Error::BadLength {
                what: "bucket",
                offset: at,
                len,
            });
        }
        let mut b = r.sub(len - 2, "bucket")?;
        let weight = b.u16("weight")?;
        let watch_port = b.u32("watch_port")?;
        let watch_group = b.u32("watch_group")?;
        b.skip(4, "pad")?;
        let actions = Action::parse_list(&mut b, 0)?;
        out.push(Bucket {
            weight,
            watch_port,
            watch_group,
            actions,
        });
    }
    Ok(out)
}

pub(super) fn emit_buckets(buckets: &[Bucket], buf: &mut BytesMut) {
    for bk in buckets {
        let start = buf.len();
        buf.put_u16(0);
        buf.put_u16(bk.weight);
        buf.put_u32(bk.watch_port);
        buf.put_u32(bk.watch_group);
        put_zeros(buf, 4);
        for a in &bk.actions {
            a.emit(buf);
        }
        patch_u16(buf, start, buf.len() - start);
    }
}

impl GroupMod {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        let command = GroupModCommand::from(r.u16("command")?);
        let group_type = GroupType::from(r.u8("group type")?);
        r.skip(1, "pad")?;
        let group_id = r.u32("group_id")?;
        Ok(GroupMod {
            command,
            group_type,
            group_id,
            buckets: parse_buckets(r)?,
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u16(self.command.into());
        buf.put_u8(self.group_type.into());
        buf.put_u8(0);
        buf.put_u32(self.group_id);
        emit_buckets(&self.buckets, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Action;
    use crate::message::testing::*;
    use crate::message::{Message, ofpt};

    #[test]
    fn group_mod() {
        let body = [
            0x00, 0x00, // command ADD
            0x00, // type ALL
            0x00, // pad
            0x00, 0x00, 0x00, 0x05, // group 5
            0x00, 0x20, // bucket len 32
            0x00, 0x00, // weight
            0xff, 0xff, 0xff, 0xff, // watch_port ANY
            0xff, 0xff, 0xff, 0xff, // watch_group ANY
            0, 0, 0, 0, // pad
            0x00, 0x00, 0x00, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, // output:1
        ];
        check(
            &with_header(ofpt::GROUP_MOD, &body),
            msg(Message::GroupMod(GroupMod::add(
                5,
                GroupType::All,
                vec![Bucket::new(vec![Action::output(1)])],
            ))),
        );
    }
}
