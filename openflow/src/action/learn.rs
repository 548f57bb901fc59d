//! NXAST_LEARN: adding a flow from the packet, described by a list of specs (match on,
//! load into, or output to a subfield).

use bytes::{BufMut, BytesMut};

use crate::error::Result;
use crate::oxm::FieldHeader;
use crate::wire::Reader;

use super::Subfield;

/// Where a learn spec takes its value from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LearnSrc {
    Field(Subfield),
    /// Big-endian value, `2 * ceil(n_bits / 16)` bytes.
    Immediate(Vec<u8>),
}

/// What a learn spec does with its value in the learned flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LearnDst {
    /// Match the learned flow on this subfield.
    Match(Subfield),
    /// Load the value into this subfield (a `load` action in the learned flow).
    Load(Subfield),
    /// Output to the port in the value.
    Output,
}

/// One `nx_flow_mod_spec`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LearnSpec {
    pub n_bits: u16,
    pub src: LearnSrc,
    pub dst: LearnDst,
}

impl LearnSpec {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Option<LearnSpec>> {
        let h = r.u16("learn spec header")?;
        if h == 0 {
            return Ok(None);
        }
        // Bits 10, 14 and 15 are reserved; a header using them would not re-encode.
        if h & 0xc400 != 0 {
            return Err(r.bad_value("learn spec header", h.into()));
        }
        let n_bits = h & 0x3ff;
        let src = if h & (1 << 13) != 0 {
            let n = 2 * usize::from(n_bits).div_ceil(16);
            LearnSrc::Immediate(r.bytes(n, "learn spec immediate")?.to_vec())
        } else {
            let field = FieldHeader::parse(r)?;
            LearnSrc::Field(Subfield {
                field,
                ofs: r.u16("learn src ofs")?,
                n_bits,
            })
        };
        let dst_type = (h >> 11) & 3;
        let dst = match dst_type {
            0 | 1 => {
                let field = FieldHeader::parse(r)?;
                let sf = Subfield {
                    field,
                    ofs: r.u16("learn dst ofs")?,
                    n_bits,
                };
                if dst_type == 0 {
                    LearnDst::Match(sf)
                } else {
                    LearnDst::Load(sf)
                }
            }
            2 => LearnDst::Output,
            _ => return Err(r.bad_value("learn spec dst type", dst_type.into())),
        };
        Ok(Some(LearnSpec { n_bits, src, dst }))
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        let src_bit = if matches!(self.src, LearnSrc::Immediate(_)) {
            1 << 13
        } else {
            0
        };
        let dst_bits = match self.dst {
            LearnDst::Match(_) => 0,
            LearnDst::Load(_) => 1 << 11,
            LearnDst::Output => 2 << 11,
        };
        buf.put_u16(src_bit | dst_bits | (self.n_bits & 0x3ff));
        match &self.src {
            LearnSrc::Field(sf) => {
                sf.field.emit(buf);
                buf.put_u16(sf.ofs);
            }
            LearnSrc::Immediate(v) => buf.put_slice(v),
        }
        match self.dst {
            LearnDst::Match(sf) | LearnDst::Load(sf) => {
                sf.field.emit(buf);
                buf.put_u16(sf.ofs);
            }
            LearnDst::Output => {}
        }
    }
}

/// NXAST_LEARN: add a flow from the packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Learn {
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub cookie: u64,
    pub flags: u16,
    pub table_id: u8,
    pub fin_idle_timeout: u16,
    pub fin_hard_timeout: u16,
    pub specs: Vec<LearnSpec>,
    /// What follows the last spec: zero padding, or (leniently) specs this codec could not
    /// parse, kept byte-exact.
    pub trailer: Vec<u8>,
}
