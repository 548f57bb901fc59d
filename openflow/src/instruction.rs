//! OpenFlow 1.3 instructions. Unknown instruction types keep their bytes.

use bytes::{BufMut, BytesMut};

use crate::action::Action;
use crate::error::{Error, Result};
use crate::wire::{Emit, Reader, patch_u16, put_zeros};

pub mod ofpit {
    pub const GOTO_TABLE: u16 = 1;
    pub const WRITE_METADATA: u16 = 2;
    pub const WRITE_ACTIONS: u16 = 3;
    pub const APPLY_ACTIONS: u16 = 4;
    pub const CLEAR_ACTIONS: u16 = 5;
    pub const METER: u16 = 6;
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Instruction {
    GotoTable(u8),
    WriteMetadata {
        metadata: u64,
        mask: u64,
    },
    WriteActions(Vec<Action>),
    ApplyActions(Vec<Action>),
    ClearActions,
    Meter(u32),
    /// An instruction type this codec does not model; `data` follows type and length.
    Raw {
        instruction_type: u16,
        data: Vec<u8>,
    },
}

impl Instruction {
    pub(crate) fn parse_list(r: &mut Reader<'_>) -> Result<Vec<Instruction>> {
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Instruction::parse(r)?);
        }
        Ok(out)
    }

    fn parse(r: &mut Reader<'_>) -> Result<Instruction> {
        let at = r.offset();
        let itype = r.u16("instruction type")?;
        let len = usize::from(r.u16("instruction length")?);
        // Instruction lengths are multiples of 8 in OpenFlow 1.3 (OFPBIC_BAD_LEN otherwise).
        if len < 8 || len % 8 != 0 {
            return Err(Error::BadLength {
                what: "instruction",
                offset: at,
                len,
            });
        }
        let mut b = r.sub(len - 4, "instruction body")?;
        let fixed = |b: &Reader<'_>, n: usize| {
            if b.remaining() != n {
                Err(Error::BadLength {
                    what: "instruction",
                    offset: at,
                    len,
                })
            } else {
                Ok(())
            }
        };
        use ofpit::*;
        Ok(match itype {
            GOTO_TABLE => {
                fixed(&b, 4)?;
                Instruction::GotoTable(b.u8("table_id")?)
            }
            WRITE_METADATA => {
                fixed(&b, 20)?;
                b.skip(4, "pad")?;
                let metadata = b.u64("metadata")?;
                let mask = b.u64("metadata_mask")?;
                Instruction::WriteMetadata { metadata, mask }
            }
            WRITE_ACTIONS | APPLY_ACTIONS => {
                b.skip(4, "pad")?;
                let acts = Action::parse_list(&mut b, 0)?;
                if itype == WRITE_ACTIONS {
                    Instruction::WriteActions(acts)
                } else {
                    Instruction::ApplyActions(acts)
                }
            }
            CLEAR_ACTIONS => {
                fixed(&b, 4)?;
                Instruction::ClearActions
            }
            METER => {
                fixed(&b, 4)?;
                Instruction::Meter(b.u32("meter_id")?)
            }
            _ => Instruction::Raw {
                instruction_type: itype,
                data: b.take_rest().to_vec(),
            },
        })
    }

    /// Raw parts inside (unknown instruction, raw actions).
    pub fn raw_count(&self) -> usize {
        match self {
            Instruction::Raw { .. } => 1,
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                a.iter().map(Action::raw_count).sum()
            }
            _ => 0,
        }
    }
}

impl Emit for Instruction {
    fn buffer_len(&self) -> usize {
        let mut b = BytesMut::new();
        self.emit(&mut b);
        b.len()
    }
    fn emit(&self, buf: &mut BytesMut) {
        use ofpit::*;
        let start = buf.len();
        let itype = match self {
            Instruction::GotoTable(_) => GOTO_TABLE,
            Instruction::WriteMetadata { .. } => WRITE_METADATA,
            Instruction::WriteActions(_) => WRITE_ACTIONS,
            Instruction::ApplyActions(_) => APPLY_ACTIONS,
            Instruction::ClearActions => CLEAR_ACTIONS,
            Instruction::Meter(_) => METER,
            Instruction::Raw {
                instruction_type, ..
            } => *instruction_type,
        };
        buf.put_u16(itype);
        buf.put_u16(0);
        match self {
            Instruction::GotoTable(t) => {
                buf.put_u8(*t);
                put_zeros(buf, 3);
            }
            Instruction::WriteMetadata { metadata, mask } => {
                put_zeros(buf, 4);
                buf.put_u64(*metadata);
                buf.put_u64(*mask);
            }
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                put_zeros(buf, 4);
                for x in a {
                    x.emit(buf);
                }
            }
            Instruction::ClearActions => put_zeros(buf, 4),
            Instruction::Meter(m) => buf.put_u32(*m),
            Instruction::Raw { data, .. } => buf.put_slice(data),
        }
        patch_u16(buf, start + 2, buf.len() - start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goto_and_apply() {
        let bytes: &[u8] = &[
            0x00, 0x04, 0x00, 0x18, 0, 0, 0, 0, // APPLY_ACTIONS, len 24, pad
            0x00, 0x00, 0x00, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, // output:1
            0x00, 0x01, 0x00, 0x08, 0x28, 0, 0, 0, // GOTO_TABLE 40
        ];
        let l = Instruction::parse_list(&mut Reader::new(bytes)).unwrap();
        assert_eq!(
            l,
            vec![
                Instruction::ApplyActions(vec![Action::output(1)]),
                Instruction::GotoTable(40)
            ]
        );
        let mut out = BytesMut::new();
        for i in &l {
            i.emit(&mut out);
        }
        assert_eq!(&out[..], bytes);
    }
}
