//! Nicira's extension actions (experimenter 0x00002320): their subtype numbers, the
//! [`Nicira`] enum and its wire form. Unknown subtypes are kept raw.

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Result};
use crate::oxm::{Field, FieldHeader};
use crate::wire::{Emit, Reader, put_zeros};

use super::conntrack::{Ct, CtZone, Nat};
use super::controller::Controller2Prop;
use super::learn::{Learn, LearnSpec};
use super::{Action, MAX_NESTING, Subfield, check_padding};

/// Nicira action subtypes (`NXAST_*`).
pub mod nxast {
    pub const RESUBMIT: u16 = 1;
    pub const SET_TUNNEL: u16 = 2;
    pub const REG_MOVE: u16 = 6;
    pub const REG_LOAD: u16 = 7;
    pub const NOTE: u16 = 8;
    pub const SET_TUNNEL64: u16 = 9;
    pub const RESUBMIT_TABLE: u16 = 14;
    pub const OUTPUT_REG: u16 = 15;
    pub const LEARN: u16 = 16;
    pub const EXIT: u16 = 17;
    pub const DEC_TTL: u16 = 18;
    pub const CONTROLLER: u16 = 20;
    pub const CONTROLLER2: u16 = 37;
    pub const OUTPUT_REG2: u16 = 32;
    pub const REG_LOAD2: u16 = 33;
    pub const CONJUNCTION: u16 = 34;
    pub const CT: u16 = 35;
    pub const NAT: u16 = 36;
    pub const CT_CLEAR: u16 = 43;
    pub const RESUBMIT_TABLE_CT: u16 = 44;
}

/// Nicira extension actions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Nicira {
    /// NXAST_RESUBMIT: re-search the current table as if from `in_port` (16-bit port).
    Resubmit {
        in_port: u16,
    },
    /// NXAST_RESUBMIT_TABLE (or _CT with `ct`): re-search `table` (255 = current).
    ResubmitTable {
        in_port: u16,
        table: u8,
        ct: bool,
    },
    SetTunnel(u32),
    SetTunnel64(u64),
    /// NXAST_REG_MOVE: copy `src.n_bits` bits (dst has the same width).
    RegMove {
        src: Subfield,
        dst: Subfield,
    },
    /// NXAST_REG_LOAD: load an immediate into a subfield.
    RegLoad {
        dst: Subfield,
        value: u64,
    },
    /// NXAST_REG_LOAD2: set_field carried as a Nicira action (any field, optional mask).
    RegLoad2(Field),
    /// NXAST_OUTPUT_REG: output to the port number held in a subfield.
    OutputReg {
        src: Subfield,
        max_len: u16,
    },
    /// NXAST_OUTPUT_REG2: same, with room for experimenter-class fields.
    OutputReg2 {
        src: Subfield,
        max_len: u16,
    },
    /// Boxed, as are `Nat` and `Learn`: these large, rare actions would otherwise set the
    /// size of every [`Action`] of every flow (with `Field` at 64 bytes, they made it 80
    /// instead of 48).
    Ct(Box<Ct>),
    CtClear,
    DecTtl,
    Exit,
    Conjunction {
        id: u32,
        clause: u8,
        n_clauses: u8,
    },
    /// NXAST_NOTE: opaque bytes (including their zero padding).
    Note(Vec<u8>),
    Controller {
        max_len: u16,
        controller_id: u16,
        reason: u8,
    },
    Nat(Box<Nat>),
    /// NXAST_CONTROLLER2: send to the controller, with properties.
    Controller2(Vec<Controller2Prop>),
    Learn(Box<Learn>),
    /// A subtype this codec does not model; `data` follows the subtype.
    Raw {
        subtype: u16,
        data: Vec<u8>,
    },
}

impl Nicira {
    pub(super) fn parse(b: &mut Reader<'_>, at: usize, len: usize, depth: usize) -> Result<Nicira> {
        let subtype = b.u16("nicira subtype")?;
        let fixed = |b: &Reader<'_>, n: usize| -> Result<()> {
            if b.remaining() != n {
                Err(Error::BadLength {
                    what: "nicira action",
                    offset: at,
                    len,
                })
            } else {
                Ok(())
            }
        };
        use nxast::*;
        Ok(match subtype {
            RESUBMIT => {
                fixed(b, 6)?;
                Nicira::Resubmit {
                    in_port: b.u16("resubmit in_port")?,
                }
            }
            RESUBMIT_TABLE | RESUBMIT_TABLE_CT => {
                fixed(b, 6)?;
                let in_port = b.u16("resubmit in_port")?;
                let table = b.u8("resubmit table")?;
                Nicira::ResubmitTable {
                    in_port,
                    table,
                    ct: subtype == RESUBMIT_TABLE_CT,
                }
            }
            SET_TUNNEL => {
                fixed(b, 6)?;
                b.skip(2, "pad")?;
                Nicira::SetTunnel(b.u32("tun_id")?)
            }
            SET_TUNNEL64 => {
                fixed(b, 14)?;
                b.skip(6, "pad")?;
                Nicira::SetTunnel64(b.u64("tun_id")?)
            }
            REG_MOVE => {
                let n_bits = b.u16("n_bits")?;
                let src_ofs = b.u16("src_ofs")?;
                let dst_ofs = b.u16("dst_ofs")?;
                let src = FieldHeader::parse(b)?;
                let dst = FieldHeader::parse(b)?;
                check_padding(b, at, len)?;
                Nicira::RegMove {
                    src: Subfield {
                        field: src,
                        ofs: src_ofs,
                        n_bits,
                    },
                    dst: Subfield {
                        field: dst,
                        ofs: dst_ofs,
                        n_bits,
                    },
                }
            }
            REG_LOAD => {
                fixed(b, 14)?;
                let ofs_nbits = b.u16("ofs_nbits")?;
                let dst = FieldHeader::from_u32(b.u32("dst")?);
                let value = b.u64("value")?;
                Nicira::RegLoad {
                    dst: Subfield::from_ofs_nbits(dst, ofs_nbits),
                    value,
                }
            }
            REG_LOAD2 => {
                let f = Field::parse(b)?;
                check_padding(b, at, len)?;
                Nicira::RegLoad2(f)
            }
            OUTPUT_REG => {
                fixed(b, 14)?;
                let ofs_nbits = b.u16("ofs_nbits")?;
                let src = FieldHeader::from_u32(b.u32("src")?);
                let max_len = b.u16("max_len")?;
                if b.rest().iter().any(|&x| x != 0) {
                    return Err(Error::BadLength {
                        what: "output_reg padding",
                        offset: at,
                        len,
                    });
                }
                Nicira::OutputReg {
                    src: Subfield::from_ofs_nbits(src, ofs_nbits),
                    max_len,
                }
            }
            OUTPUT_REG2 => {
                let ofs_nbits = b.u16("ofs_nbits")?;
                let max_len = b.u16("max_len")?;
                let src = FieldHeader::parse(b)?;
                check_padding(b, at, len)?;
                Nicira::OutputReg2 {
                    src: Subfield::from_ofs_nbits(src, ofs_nbits),
                    max_len,
                }
            }
            CT => {
                if depth >= MAX_NESTING {
                    return Err(Error::BadValue {
                        what: "ct action nesting depth",
                        offset: at,
                        value: depth as u64,
                    });
                }
                let flags = b.u16("ct flags")?;
                let zone_src = b.u32("ct zone_src")?;
                let zone_v = b.u16("ct zone")?;
                let recirc_table = b.u8("ct recirc_table")?;
                b.skip(3, "pad")?;
                let alg = b.u16("ct alg")?;
                let actions = Action::parse_list(b, depth + 1)?;
                let zone = if zone_src == 0 {
                    CtZone::Immediate(zone_v)
                } else {
                    CtZone::Field(Subfield::from_ofs_nbits(
                        FieldHeader::from_u32(zone_src),
                        zone_v,
                    ))
                };
                Nicira::Ct(Box::new(Ct {
                    flags,
                    zone,
                    recirc_table,
                    alg,
                    actions,
                }))
            }
            CT_CLEAR | DEC_TTL | EXIT => {
                fixed(b, 6)?;
                match subtype {
                    CT_CLEAR => Nicira::CtClear,
                    DEC_TTL => Nicira::DecTtl,
                    _ => Nicira::Exit,
                }
            }
            CONJUNCTION => {
                fixed(b, 6)?;
                let clause = b.u8("clause")?;
                let n_clauses = b.u8("n_clauses")?;
                Nicira::Conjunction {
                    clause,
                    n_clauses,
                    id: b.u32("conjunction id")?,
                }
            }
            NOTE => Nicira::Note(b.take_rest().to_vec()),
            CONTROLLER => {
                fixed(b, 6)?;
                let max_len = b.u16("max_len")?;
                let controller_id = b.u16("controller_id")?;
                let reason = b.u8("reason")?;
                Nicira::Controller {
                    max_len,
                    controller_id,
                    reason,
                }
            }
            NAT => Nicira::Nat(Box::new(Nat::parse(b, at, len)?)),
            CONTROLLER2 => {
                b.skip(6, "controller2 zeros")?;
                let mut props = Vec::new();
                while !b.is_empty() {
                    props.push(Controller2Prop::parse(b)?);
                }
                Nicira::Controller2(props)
            }
            LEARN => {
                let idle_timeout = b.u16("idle_timeout")?;
                let hard_timeout = b.u16("hard_timeout")?;
                let priority = b.u16("priority")?;
                let cookie = b.u64("cookie")?;
                let flags = b.u16("flags")?;
                let table_id = b.u8("table_id")?;
                b.skip(1, "pad")?;
                let fin_idle_timeout = b.u16("fin_idle_timeout")?;
                let fin_hard_timeout = b.u16("fin_hard_timeout")?;
                let mut specs = Vec::new();
                loop {
                    let mut attempt = b.clone();
                    match LearnSpec::parse(&mut attempt) {
                        Ok(Some(spec)) => {
                            specs.push(spec);
                            *b = attempt;
                        }
                        _ => break,
                    }
                }
                Nicira::Learn(Box::new(Learn {
                    idle_timeout,
                    hard_timeout,
                    priority,
                    cookie,
                    flags,
                    table_id,
                    fin_idle_timeout,
                    fin_hard_timeout,
                    specs,
                    trailer: b.take_rest().to_vec(),
                }))
            }
            _ => Nicira::Raw {
                subtype,
                data: b.take_rest().to_vec(),
            },
        })
    }

    pub(super) fn subtype(&self) -> u16 {
        use nxast::*;
        match self {
            Nicira::Resubmit { .. } => RESUBMIT,
            Nicira::ResubmitTable { ct: false, .. } => RESUBMIT_TABLE,
            Nicira::ResubmitTable { ct: true, .. } => RESUBMIT_TABLE_CT,
            Nicira::SetTunnel(_) => SET_TUNNEL,
            Nicira::SetTunnel64(_) => SET_TUNNEL64,
            Nicira::RegMove { .. } => REG_MOVE,
            Nicira::RegLoad { .. } => REG_LOAD,
            Nicira::RegLoad2(_) => REG_LOAD2,
            Nicira::OutputReg { .. } => OUTPUT_REG,
            Nicira::OutputReg2 { .. } => OUTPUT_REG2,
            Nicira::Ct(_) => CT,
            Nicira::CtClear => CT_CLEAR,
            Nicira::DecTtl => DEC_TTL,
            Nicira::Exit => EXIT,
            Nicira::Conjunction { .. } => CONJUNCTION,
            Nicira::Note(_) => NOTE,
            Nicira::Controller { .. } => CONTROLLER,
            Nicira::Controller2(_) => CONTROLLER2,
            Nicira::Nat(_) => NAT,
            Nicira::Learn(_) => LEARN,
            Nicira::Raw { subtype, .. } => *subtype,
        }
    }

    /// Writes the body after the subtype (unpadded).
    pub(super) fn emit_body(&self, buf: &mut BytesMut) {
        match self {
            Nicira::Resubmit { in_port } => {
                buf.put_u16(*in_port);
                put_zeros(buf, 4);
            }
            Nicira::ResubmitTable { in_port, table, .. } => {
                buf.put_u16(*in_port);
                buf.put_u8(*table);
                put_zeros(buf, 3);
            }
            Nicira::SetTunnel(v) => {
                put_zeros(buf, 2);
                buf.put_u32(*v);
            }
            Nicira::SetTunnel64(v) => {
                put_zeros(buf, 6);
                buf.put_u64(*v);
            }
            Nicira::RegMove { src, dst } => {
                buf.put_u16(src.n_bits);
                buf.put_u16(src.ofs);
                buf.put_u16(dst.ofs);
                src.field.emit(buf);
                dst.field.emit(buf);
            }
            Nicira::RegLoad { dst, value } => {
                buf.put_u16(dst.ofs_nbits());
                buf.put_u32(dst.field.to_u32());
                buf.put_u64(*value);
            }
            Nicira::RegLoad2(f) => f.emit(buf),
            Nicira::OutputReg { src, max_len } => {
                buf.put_u16(src.ofs_nbits());
                buf.put_u32(src.field.to_u32());
                buf.put_u16(*max_len);
                put_zeros(buf, 6);
            }
            Nicira::OutputReg2 { src, max_len } => {
                buf.put_u16(src.ofs_nbits());
                buf.put_u16(*max_len);
                src.field.emit(buf);
            }
            Nicira::Ct(ct) => {
                buf.put_u16(ct.flags);
                match ct.zone {
                    CtZone::Immediate(z) => {
                        buf.put_u32(0);
                        buf.put_u16(z);
                    }
                    CtZone::Field(sf) => {
                        buf.put_u32(sf.field.to_u32());
                        buf.put_u16(sf.ofs_nbits());
                    }
                }
                buf.put_u8(ct.recirc_table);
                put_zeros(buf, 3);
                buf.put_u16(ct.alg);
                for a in &ct.actions {
                    a.emit(buf);
                }
            }
            Nicira::CtClear | Nicira::DecTtl | Nicira::Exit => put_zeros(buf, 6),
            Nicira::Conjunction {
                id,
                clause,
                n_clauses,
            } => {
                buf.put_u8(*clause);
                buf.put_u8(*n_clauses);
                buf.put_u32(*id);
            }
            Nicira::Note(n) => buf.put_slice(n),
            Nicira::Controller {
                max_len,
                controller_id,
                reason,
            } => {
                buf.put_u16(*max_len);
                buf.put_u16(*controller_id);
                buf.put_u8(*reason);
                buf.put_u8(0);
            }
            Nicira::Nat(n) => n.emit(buf),
            Nicira::Controller2(props) => {
                put_zeros(buf, 6);
                for p in props {
                    p.emit(buf);
                }
            }
            Nicira::Learn(l) => {
                buf.put_u16(l.idle_timeout);
                buf.put_u16(l.hard_timeout);
                buf.put_u16(l.priority);
                buf.put_u64(l.cookie);
                buf.put_u16(l.flags);
                buf.put_u8(l.table_id);
                buf.put_u8(0);
                buf.put_u16(l.fin_idle_timeout);
                buf.put_u16(l.fin_hard_timeout);
                for spec in &l.specs {
                    spec.emit(buf);
                }
                buf.put_slice(&l.trailer);
            }
            Nicira::Raw { data, .. } => buf.put_slice(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::action::Action;
    use crate::action::tests::roundtrip;

    #[test]
    fn output_reg7() {
        roundtrip(
            &[
                0xff, 0xff, 0x00, 0x18, 0x00, 0x00, 0x23, 0x20, // experimenter Nicira, len 24
                0x00, 0x0f, // NXAST_OUTPUT_REG
                0x00, 0x1f, // ofs 0, n_bits 32
                0x00, 0x01, 0x0e, 0x04, // NXM_NX_REG7
                0xff, 0xff, // max_len 65535
                0, 0, 0, 0, 0, 0, // zero
            ],
            Action::output_reg(7),
        );
    }
}
