//! The properties of NXAST_CONTROLLER2 (sending a packet to the controller with a reason,
//! an id, userdata or a pause).

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Result};
use crate::wire::{Reader, pad8, patch_u16, put_zeros};

/// One property of NXAST_CONTROLLER2 (`NXAC2PT_*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Controller2Prop {
    MaxLen(u16),
    ControllerId(u16),
    Reason(u8),
    Userdata(Vec<u8>),
    Pause,
    MeterId(u32),
    Unknown { prop_type: u16, data: Vec<u8> },
}

impl Controller2Prop {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        let at = r.offset();
        let prop_type = r.u16("controller2 property type")?;
        let len = usize::from(r.u16("controller2 property length")?);
        if len < 4 {
            return Err(Error::BadLength {
                what: "controller2 property",
                offset: at,
                len,
            });
        }
        let mut b = r.sub(len - 4, "controller2 property")?;
        let pad = pad8(len).min(r.remaining());
        r.skip(pad, "controller2 property padding")?;
        let n = b.remaining();
        // OVS writes 16-bit properties as value + 2 zero bytes inside the stated length.
        let u16_prop = n == 4 && b.rest().get(2..) == Some(&[0, 0][..]);
        Ok(match (prop_type, n) {
            (0, 4) if u16_prop => Controller2Prop::MaxLen(b.u16("max_len")?),
            (1, 4) if u16_prop => Controller2Prop::ControllerId(b.u16("controller_id")?),
            (2, 1) => Controller2Prop::Reason(b.u8("reason")?),
            (3, _) => Controller2Prop::Userdata(b.take_rest().to_vec()),
            (4, 0) => Controller2Prop::Pause,
            (5, 4) => Controller2Prop::MeterId(b.u32("meter_id")?),
            _ => Controller2Prop::Unknown {
                prop_type,
                data: b.take_rest().to_vec(),
            },
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        let start = buf.len();
        let t = match self {
            Controller2Prop::MaxLen(_) => 0,
            Controller2Prop::ControllerId(_) => 1,
            Controller2Prop::Reason(_) => 2,
            Controller2Prop::Userdata(_) => 3,
            Controller2Prop::Pause => 4,
            Controller2Prop::MeterId(_) => 5,
            Controller2Prop::Unknown { prop_type, .. } => *prop_type,
        };
        buf.put_u16(t);
        buf.put_u16(0);
        match self {
            Controller2Prop::MaxLen(v) | Controller2Prop::ControllerId(v) => {
                buf.put_u16(*v);
                put_zeros(buf, 2);
            }
            Controller2Prop::Reason(v) => buf.put_u8(*v),
            Controller2Prop::Userdata(d) | Controller2Prop::Unknown { data: d, .. } => {
                buf.put_slice(d)
            }
            Controller2Prop::Pause => {}
            Controller2Prop::MeterId(v) => buf.put_u32(*v),
        }
        let len = buf.len() - start;
        patch_u16(buf, start + 2, len);
        put_zeros(buf, pad8(len));
    }
}
