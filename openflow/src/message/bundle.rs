//! ONF extension 230 for OpenFlow 1.3: bundles, so that a batch of flow and group changes
//! applies atomically and in order. Carried in EXPERIMENTER messages.

use bytes::{BufMut, BytesMut};

use super::{MAX_MESSAGE_NESTING, OfpMessage};
use crate::error::Result;
use crate::types::ONF_VENDOR_ID;
use crate::wire::{Reader, put_zeros, wire_enum};

/// ONF extension 230 (bundles for OpenFlow 1.3), experimenter message types.
pub const ONFT_BUNDLE_CONTROL: u32 = 2300;
pub const ONFT_BUNDLE_ADD_MESSAGE: u32 = 2301;

wire_enum! {
    /// ONF bundle control message types.
    pub enum BundleCtrlType: u16 {
        OpenRequest = 0, OpenReply = 1, CloseRequest = 2, CloseReply = 3,
        CommitRequest = 4, CommitReply = 5, DiscardRequest = 6, DiscardReply = 7,
    }
}

/// Bundle flags.
pub mod bundle_flags {
    pub const ATOMIC: u16 = 1;
    pub const ORDERED: u16 = 2;
}

/// ONF bundle control (open/close/commit/discard and their replies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleControl {
    pub bundle_id: u32,
    pub ctrl_type: BundleCtrlType,
    pub flags: u16,
    /// Bundle properties, kept in wire form.
    pub properties: Vec<u8>,
}

/// ONF bundle add: one message to apply when the bundle commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleAdd {
    pub bundle_id: u32,
    pub flags: u16,
    pub message: Box<OfpMessage>,
    /// Padding and properties after the inner message, kept in wire form.
    pub trailer: Vec<u8>,
}

impl BundleControl {
    /// Parses the body after the experimenter id and type.
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        let bundle_id = r.u32("bundle_id")?;
        let ctrl_type = BundleCtrlType::from(r.u16("bundle ctrl type")?);
        let flags = r.u16("bundle flags")?;
        Ok(BundleControl {
            bundle_id,
            ctrl_type,
            flags,
            properties: r.take_rest().to_vec(),
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(ONF_VENDOR_ID);
        buf.put_u32(ONFT_BUNDLE_CONTROL);
        buf.put_u32(self.bundle_id);
        buf.put_u16(self.ctrl_type.into());
        buf.put_u16(self.flags);
        buf.put_slice(&self.properties);
    }
}

impl BundleAdd {
    /// Parses the body after the experimenter id and type; the inner message at `depth + 1`.
    pub(super) fn parse(r: &mut Reader<'_>, depth: usize) -> Result<Self> {
        if depth >= MAX_MESSAGE_NESTING {
            return Err(r.bad_value("bundle nesting depth", depth as u64));
        }
        let bundle_id = r.u32("bundle_id")?;
        r.skip(2, "pad")?;
        let flags = r.u16("bundle flags")?;
        let base = r.offset();
        let (inner, used) = OfpMessage::decode_at(r.rest(), base, depth + 1)?;
        r.skip(used, "bundled message")?;
        Ok(BundleAdd {
            bundle_id,
            flags,
            message: Box::new(inner),
            trailer: r.take_rest().to_vec(),
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(ONF_VENDOR_ID);
        buf.put_u32(ONFT_BUNDLE_ADD_MESSAGE);
        buf.put_u32(self.bundle_id);
        put_zeros(buf, 2);
        buf.put_u16(self.flags);
        // An inner message too long to encode leaves nothing; the outer length
        // check then still applies to what was written.
        let _ = self.message.encode(buf);
        buf.put_slice(&self.trailer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::OfpMessage;
    use crate::message::testing::*;
    use crate::message::{Message, ofpt};

    #[test]
    fn bundle_control_and_add() {
        let body = [
            0x4f, 0x4e, 0x46, 0x00, // experimenter: ONF
            0x00, 0x00, 0x08, 0xfc, // ONFT_BUNDLE_CONTROL (2300)
            0x00, 0x00, 0x00, 0x01, // bundle_id 1
            0x00, 0x00, // OPEN_REQUEST
            0x00, 0x01, // flags ATOMIC
        ];
        check(
            &with_header(ofpt::EXPERIMENTER, &body),
            OfpMessage::bundle_open(XID, 1, bundle_flags::ATOMIC),
        );
        let body = [
            0x4f, 0x4e, 0x46, 0x00, // experimenter: ONF
            0x00, 0x00, 0x08, 0xfd, // ONFT_BUNDLE_ADD_MESSAGE (2301)
            0x00, 0x00, 0x00, 0x01, // bundle_id 1
            0x00, 0x00, // pad
            0x00, 0x01, // flags ATOMIC
            0x04, 0x14, 0x00, 0x08, 0x12, 0x34, 0x56, 0x78, // inner BARRIER_REQUEST
        ];
        check(
            &with_header(ofpt::EXPERIMENTER, &body),
            OfpMessage::bundle_add(XID, 1, bundle_flags::ATOMIC, Message::BarrierRequest),
        );
    }
}
