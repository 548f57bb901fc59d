//! The controller's standing with the switch: role request/reply (master, slave, equal)
//! and the asynchronous-message masks (GET_ASYNC / SET_ASYNC).

use bytes::{BufMut, BytesMut};

use super::expect_len;
use crate::error::Result;
use crate::wire::{Reader, put_zeros, wire_enum};

wire_enum! {
    pub enum ControllerRole: u32 { NoChange = 0, Equal = 1, Master = 2, Slave = 3, }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleMsg {
    pub role: ControllerRole,
    pub generation_id: u64,
}

/// Async message masks: index 0 = master/equal, 1 = slave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AsyncConfig {
    pub packet_in_mask: [u32; 2],
    pub port_status_mask: [u32; 2],
    pub flow_removed_mask: [u32; 2],
}

impl RoleMsg {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        expect_len(r, 16, "role message")?;
        let role = ControllerRole::from(r.u32("role")?);
        r.skip(4, "pad")?;
        Ok(RoleMsg {
            role,
            generation_id: r.u64("generation_id")?,
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.role.into());
        put_zeros(buf, 4);
        buf.put_u64(self.generation_id);
    }
}

pub(super) fn parse_async(r: &mut Reader<'_>) -> Result<AsyncConfig> {
    expect_len(r, 24, "async config")?;
    let mut a = AsyncConfig::default();
    for i in 0..2 {
        a.packet_in_mask[i] = r.u32("packet_in_mask")?;
    }
    for i in 0..2 {
        a.port_status_mask[i] = r.u32("port_status_mask")?;
    }
    for i in 0..2 {
        a.flow_removed_mask[i] = r.u32("flow_removed_mask")?;
    }
    Ok(a)
}

impl AsyncConfig {
    pub(super) fn emit(&self, buf: &mut BytesMut) {
        for v in self
            .packet_in_mask
            .iter()
            .chain(&self.port_status_mask)
            .chain(&self.flow_removed_mask)
        {
            buf.put_u32(*v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::testing::*;
    use crate::message::{Message, ofpt};

    #[test]
    fn barrier_role_async() {
        check(
            &with_header(ofpt::BARRIER_REQUEST, &[]),
            msg(Message::BarrierRequest),
        );
        check(
            &with_header(ofpt::BARRIER_REPLY, &[]),
            msg(Message::BarrierReply),
        );
        let body = [
            0x00, 0x00, 0x00, 0x02, // role MASTER
            0, 0, 0, 0, // pad
            0, 0, 0, 0, 0, 0, 0, 0x01, // generation_id
        ];
        let r = RoleMsg {
            role: ControllerRole::Master,
            generation_id: 1,
        };
        check(
            &with_header(ofpt::ROLE_REQUEST, &body),
            msg(Message::RoleRequest(r)),
        );
        check(
            &with_header(ofpt::ROLE_REPLY, &body),
            msg(Message::RoleReply(r)),
        );
        check(
            &with_header(ofpt::GET_ASYNC_REQUEST, &[]),
            msg(Message::GetAsyncRequest),
        );
        let body = [
            0, 0, 0, 0x03, 0, 0, 0, 0x00, // packet_in mask (master, slave)
            0, 0, 0, 0x07, 0, 0, 0, 0x07, // port_status mask
            0, 0, 0, 0x0f, 0, 0, 0, 0x00, // flow_removed mask
        ];
        let a = AsyncConfig {
            packet_in_mask: [3, 0],
            port_status_mask: [7, 7],
            flow_removed_mask: [15, 0],
        };
        check(
            &with_header(ofpt::GET_ASYNC_REPLY, &body),
            msg(Message::GetAsyncReply(a)),
        );
        check(
            &with_header(ofpt::SET_ASYNC, &body),
            msg(Message::SetAsync(a)),
        );
    }
}
