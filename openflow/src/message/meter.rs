//! Meters: METER_MOD and its rate bands.

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Result};
use crate::wire::{Reader, patch_u16, wire_enum};

wire_enum! {
    pub enum MeterModCommand: u16 { Add = 0, Modify = 1, Delete = 2, }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterBand {
    pub band_type: u16,
    pub rate: u32,
    pub burst_size: u32,
    /// Type-specific tail (drop: padding; dscp_remark: prec_level + padding).
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterMod {
    pub command: MeterModCommand,
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<MeterBand>,
}

impl MeterMod {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        let command = MeterModCommand::from(r.u16("command")?);
        let flags = r.u16("flags")?;
        let meter_id = r.u32("meter_id")?;
        let mut bands = Vec::new();
        while !r.is_empty() {
            let at = r.offset();
            let band_type = r.u16("band type")?;
            let len = usize::from(r.u16("band length")?);
            if len < 12 {
                return Err(Error::BadLength {
                    what: "meter band",
                    offset: at,
                    len,
                });
            }
            let mut b = r.sub(len - 4, "meter band")?;
            let rate = b.u32("rate")?;
            let burst_size = b.u32("burst_size")?;
            bands.push(MeterBand {
                band_type,
                rate,
                burst_size,
                data: b.take_rest().to_vec(),
            });
        }
        Ok(MeterMod {
            command,
            flags,
            meter_id,
            bands,
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u16(self.command.into());
        buf.put_u16(self.flags);
        buf.put_u32(self.meter_id);
        for b in &self.bands {
            let start = buf.len();
            buf.put_u16(b.band_type);
            buf.put_u16(0);
            buf.put_u32(b.rate);
            buf.put_u32(b.burst_size);
            buf.put_slice(&b.data);
            patch_u16(buf, start + 2, buf.len() - start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::testing::*;
    use crate::message::{Message, ofpt};

    #[test]
    fn meter_mod() {
        let body = [
            0x00, 0x00, // command ADD
            0x00, 0x01, // flags KBPS
            0x00, 0x00, 0x00, 0x01, // meter 1
            0x00, 0x01, 0x00, 0x10, // band DROP, len 16
            0x00, 0x00, 0x03, 0xe8, // rate 1000
            0x00, 0x00, 0x00, 0x00, // burst
            0, 0, 0, 0, // pad
        ];
        check(
            &with_header(ofpt::METER_MOD, &body),
            msg(Message::MeterMod(MeterMod {
                command: MeterModCommand::Add,
                flags: 1,
                meter_id: 1,
                bands: vec![MeterBand {
                    band_type: 1,
                    rate: 1000,
                    burst_size: 0,
                    data: vec![0; 4],
                }],
            })),
        );
    }
}
