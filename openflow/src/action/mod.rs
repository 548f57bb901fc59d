//! Actions: the OpenFlow 1.3 standard set and Nicira's extension actions (experimenter
//! 0x00002320) as one model, [`Action`] with a [`Nicira`] sub-enum. Unknown standard action
//! types and unknown Nicira subtypes are kept raw and re-emit byte-exact.
//!
//! This module owns the [`Action`] enum, the standard actions' wire form and the
//! experimenter dispatch; Nicira's actions are in `nicira`, with conntrack/NAT, learn and
//! controller2 properties in their own modules.

mod conntrack;
mod controller;
mod learn;
mod nicira;

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Result};
use crate::oxm::{Field, FieldHeader};
use crate::types::NX_VENDOR_ID;
use crate::wire::{Emit, Reader, pad8, patch_u16, put_zeros};

pub use conntrack::{Ct, CtZone, Nat};
pub use controller::Controller2Prop;
pub use learn::{Learn, LearnDst, LearnSpec, LearnSrc};
pub use nicira::{Nicira, nxast};

/// How deep `ct(exec(...))` (or similar) may nest before the parser refuses: bounds stack
/// use on hostile input. OVS itself never nests more than a couple of levels.
pub const MAX_NESTING: usize = 8;

/// OpenFlow 1.3 action type numbers.
pub mod ofpat {
    pub const OUTPUT: u16 = 0;
    pub const COPY_TTL_OUT: u16 = 11;
    pub const COPY_TTL_IN: u16 = 12;
    pub const SET_MPLS_TTL: u16 = 15;
    pub const DEC_MPLS_TTL: u16 = 16;
    pub const PUSH_VLAN: u16 = 17;
    pub const POP_VLAN: u16 = 18;
    pub const PUSH_MPLS: u16 = 19;
    pub const POP_MPLS: u16 = 20;
    pub const SET_QUEUE: u16 = 21;
    pub const GROUP: u16 = 22;
    pub const SET_NW_TTL: u16 = 23;
    pub const DEC_NW_TTL: u16 = 24;
    pub const SET_FIELD: u16 = 25;
    pub const PUSH_PBB: u16 = 26;
    pub const POP_PBB: u16 = 27;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// A bit range of a field, as Nicira actions address registers: `NXM_NX_REG7[0..15]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subfield {
    pub field: FieldHeader,
    pub ofs: u16,
    pub n_bits: u16,
}

impl Subfield {
    /// The whole of `field` (`NXM_NX_REG7[]`).
    pub fn whole(field: FieldHeader) -> Self {
        Subfield {
            field,
            ofs: 0,
            n_bits: field.value_bits(),
        }
    }

    /// Bits `ofs..ofs+n_bits` of `field`.
    pub fn bits(field: FieldHeader, ofs: u16, n_bits: u16) -> Self {
        Subfield { field, ofs, n_bits }
    }

    /// Decodes the `ofs_nbits` encoding (`ofs << 6 | (n_bits - 1)`).
    pub(crate) fn from_ofs_nbits(field: FieldHeader, ofs_nbits: u16) -> Self {
        Subfield {
            field,
            ofs: ofs_nbits >> 6,
            n_bits: (ofs_nbits & 0x3f) + 1,
        }
    }

    pub(crate) fn ofs_nbits(&self) -> u16 {
        (self.ofs << 6) | (self.n_bits.saturating_sub(1) & 0x3f)
    }
}

impl std::fmt::Display for Subfield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.field.nxm_name() {
            Some(n) => f.write_str(&n)?,
            None => write!(f, "{:#010x}", self.field.to_u32())?,
        }
        if self.ofs == 0 && self.n_bits == self.field.value_bits() {
            f.write_str("[]")
        } else if self.n_bits == 1 {
            write!(f, "[{}]", self.ofs)
        } else {
            write!(
                f,
                "[{}..{}]",
                self.ofs,
                (u32::from(self.ofs) + u32::from(self.n_bits)).saturating_sub(1)
            )
        }
    }
}

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Send out `port` (a number or a reserved port from [`crate::types::port`]);
    /// `max_len` bytes go to the controller when `port` is CONTROLLER.
    Output {
        port: u32,
        max_len: u16,
    },
    CopyTtlOut,
    CopyTtlIn,
    SetMplsTtl(u8),
    DecMplsTtl,
    PushVlan(u16),
    PopVlan,
    PushMpls(u16),
    PopMpls(u16),
    SetQueue(u32),
    Group(u32),
    SetNwTtl(u8),
    DecNwTtl,
    /// OFPAT_SET_FIELD: write a whole field (the field's mask, if any, is not used by OF1.3).
    SetField(Field),
    PushPbb(u16),
    PopPbb,
    /// A Nicira extension action.
    Nicira(Nicira),
    /// An experimenter action from a vendor other than Nicira.
    Experimenter {
        experimenter: u32,
        data: Vec<u8>,
    },
    /// A standard action type this codec does not model (`data` follows type and length).
    Raw {
        action_type: u16,
        data: Vec<u8>,
    },
}

impl Action {
    /// `output:port`.
    pub fn output(port: u32) -> Self {
        Action::Output { port, max_len: 0 }
    }
    /// Output to the controller with the whole packet.
    pub fn to_controller() -> Self {
        Action::Output {
            port: crate::types::port::CONTROLLER,
            max_len: 0xffff,
        }
    }
    /// `resubmit(,table)`.
    pub fn resubmit(table: u8) -> Self {
        Action::Nicira(Nicira::ResubmitTable {
            in_port: 0xfff8,
            table,
            ct: false,
        })
    }
    /// `output:NXM_NX_REGn[]` (max_len 65535, as ovs-ofctl encodes it).
    pub fn output_reg(n: u8) -> Self {
        Action::Nicira(Nicira::OutputReg {
            src: Subfield::whole(FieldHeader::reg(n)),
            max_len: u16::MAX,
        })
    }
    /// `move:src->dst` of whole fields.
    pub fn reg_move(src: FieldHeader, dst: FieldHeader) -> Self {
        let src = Subfield::whole(src);
        Action::Nicira(Nicira::RegMove {
            src,
            dst: Subfield {
                field: dst,
                ofs: 0,
                n_bits: src.n_bits,
            },
        })
    }
    /// `load:value->dst`.
    pub fn reg_load(dst: Subfield, value: u64) -> Self {
        Action::Nicira(Nicira::RegLoad { dst, value })
    }
    pub fn ct_clear() -> Self {
        Action::Nicira(Nicira::CtClear)
    }

    /// Parses a list of actions filling all of `r`.
    pub(crate) fn parse_list(r: &mut Reader<'_>, depth: usize) -> Result<Vec<Action>> {
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Action::parse(r, depth)?);
        }
        Ok(out)
    }

    pub(crate) fn parse(r: &mut Reader<'_>, depth: usize) -> Result<Action> {
        let at = r.offset();
        let atype = r.u16("action type")?;
        let len = usize::from(r.u16("action length")?);
        if len < 4 {
            return Err(Error::BadLength {
                what: "action",
                offset: at,
                len,
            });
        }
        let mut b = r.sub(len - 4, "action body")?;
        let fixed = |b: &Reader<'_>, n: usize| -> Result<()> {
            if b.remaining() != n {
                Err(Error::BadLength {
                    what: "action",
                    offset: at,
                    len,
                })
            } else {
                Ok(())
            }
        };
        use ofpat::*;
        let a = match atype {
            OUTPUT => {
                fixed(&b, 12)?;
                let port = b.u32("output port")?;
                let max_len = b.u16("output max_len")?;
                Action::Output { port, max_len }
            }
            COPY_TTL_OUT | COPY_TTL_IN | DEC_MPLS_TTL | POP_VLAN | DEC_NW_TTL | POP_PBB => {
                fixed(&b, 4)?;
                match atype {
                    COPY_TTL_OUT => Action::CopyTtlOut,
                    COPY_TTL_IN => Action::CopyTtlIn,
                    DEC_MPLS_TTL => Action::DecMplsTtl,
                    POP_VLAN => Action::PopVlan,
                    DEC_NW_TTL => Action::DecNwTtl,
                    _ => Action::PopPbb,
                }
            }
            SET_MPLS_TTL | SET_NW_TTL => {
                fixed(&b, 4)?;
                let ttl = b.u8("ttl")?;
                if atype == SET_MPLS_TTL {
                    Action::SetMplsTtl(ttl)
                } else {
                    Action::SetNwTtl(ttl)
                }
            }
            PUSH_VLAN | PUSH_MPLS | POP_MPLS | PUSH_PBB => {
                fixed(&b, 4)?;
                let et = b.u16("ethertype")?;
                match atype {
                    PUSH_VLAN => Action::PushVlan(et),
                    PUSH_MPLS => Action::PushMpls(et),
                    POP_MPLS => Action::PopMpls(et),
                    _ => Action::PushPbb(et),
                }
            }
            SET_QUEUE | GROUP => {
                fixed(&b, 4)?;
                let v = b.u32("action argument")?;
                if atype == SET_QUEUE {
                    Action::SetQueue(v)
                } else {
                    Action::Group(v)
                }
            }
            SET_FIELD => {
                let f = Field::parse(&mut b)?;
                check_padding(&b, at, len)?;
                Action::SetField(f)
            }
            EXPERIMENTER => {
                let experimenter = b.u32("experimenter id")?;
                if experimenter == NX_VENDOR_ID {
                    Action::Nicira(Nicira::parse(&mut b, at, len, depth)?)
                } else {
                    Action::Experimenter {
                        experimenter,
                        data: b.take_rest().to_vec(),
                    }
                }
            }
            _ => Action::Raw {
                action_type: atype,
                data: b.take_rest().to_vec(),
            },
        };
        Ok(a)
    }

    /// Number of [`Action::Raw`]/[`Nicira::Raw`]/raw-field parts in this action.
    pub fn raw_count(&self) -> usize {
        match self {
            Action::Raw { .. } | Action::Experimenter { .. } => 1,
            Action::SetField(Field::Raw(_)) => 1,
            Action::Nicira(Nicira::Raw { .. })
            | Action::Nicira(Nicira::RegLoad2(Field::Raw(_))) => 1,
            Action::Nicira(Nicira::Ct(ct)) => ct.actions.iter().map(Action::raw_count).sum(),
            _ => 0,
        }
    }
}

/// What remains after a variable-length element must be zero padding shorter than 8
/// bytes; anything else would not re-encode byte-exact.
pub(super) fn check_padding(b: &Reader<'_>, at: usize, len: usize) -> Result<()> {
    let rest = b.rest();
    if rest.len() >= 8 || rest.iter().any(|&x| x != 0) {
        return Err(Error::BadLength {
            what: "action padding",
            offset: at,
            len,
        });
    }
    Ok(())
}

impl Emit for Action {
    fn buffer_len(&self) -> usize {
        // Variable-length actions are rare enough that emitting to measure is fine.
        let mut b = BytesMut::new();
        self.emit(&mut b);
        b.len()
    }

    fn emit(&self, buf: &mut BytesMut) {
        use ofpat::*;
        let start = buf.len();
        let (atype, pad_to_8) = match self {
            Action::Output { .. } => (OUTPUT, false),
            Action::CopyTtlOut => (COPY_TTL_OUT, false),
            Action::CopyTtlIn => (COPY_TTL_IN, false),
            Action::SetMplsTtl(_) => (SET_MPLS_TTL, false),
            Action::DecMplsTtl => (DEC_MPLS_TTL, false),
            Action::PushVlan(_) => (PUSH_VLAN, false),
            Action::PopVlan => (POP_VLAN, false),
            Action::PushMpls(_) => (PUSH_MPLS, false),
            Action::PopMpls(_) => (POP_MPLS, false),
            Action::SetQueue(_) => (SET_QUEUE, false),
            Action::Group(_) => (GROUP, false),
            Action::SetNwTtl(_) => (SET_NW_TTL, false),
            Action::DecNwTtl => (DEC_NW_TTL, false),
            Action::SetField(_) => (SET_FIELD, true),
            Action::PushPbb(_) => (PUSH_PBB, false),
            Action::PopPbb => (POP_PBB, false),
            Action::Nicira(n) => (
                EXPERIMENTER,
                !matches!(n, Nicira::Raw { .. } | Nicira::Note(_)),
            ),
            Action::Experimenter { .. } => (EXPERIMENTER, false),
            Action::Raw { action_type, .. } => (*action_type, false),
        };
        buf.put_u16(atype);
        buf.put_u16(0);
        match self {
            Action::Output { port, max_len } => {
                buf.put_u32(*port);
                buf.put_u16(*max_len);
                put_zeros(buf, 6);
            }
            Action::CopyTtlOut
            | Action::CopyTtlIn
            | Action::DecMplsTtl
            | Action::PopVlan
            | Action::DecNwTtl
            | Action::PopPbb => put_zeros(buf, 4),
            Action::SetMplsTtl(t) | Action::SetNwTtl(t) => {
                buf.put_u8(*t);
                put_zeros(buf, 3);
            }
            Action::PushVlan(e) | Action::PushMpls(e) | Action::PopMpls(e) | Action::PushPbb(e) => {
                buf.put_u16(*e);
                put_zeros(buf, 2);
            }
            Action::SetQueue(v) | Action::Group(v) => buf.put_u32(*v),
            Action::SetField(f) => f.emit(buf),
            Action::Nicira(n) => {
                buf.put_u32(NX_VENDOR_ID);
                buf.put_u16(n.subtype());
                n.emit_body(buf);
            }
            Action::Experimenter { experimenter, data } => {
                buf.put_u32(*experimenter);
                buf.put_slice(data);
            }
            Action::Raw { data, .. } => buf.put_slice(data),
        }
        if pad_to_8 {
            put_zeros(buf, pad8(buf.len() - start));
        }
        patch_u16(buf, start + 2, buf.len() - start);
    }
}

// Actions are most of a flow's memory (an ARP responder has eight); the large, rare ones
// are boxed to keep this bound (see `Nicira::Ct`).
const _: () = assert!(std::mem::size_of::<Action>() <= 48);

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn roundtrip(bytes: &[u8], expected: Action) {
        let a = Action::parse(&mut Reader::new(bytes), 0).unwrap();
        assert_eq!(a, expected);
        let mut out = BytesMut::new();
        a.emit(&mut out);
        assert_eq!(&out[..], bytes);
    }

    #[test]
    fn output() {
        roundtrip(
            &[
                0x00, 0x00, 0x00, 0x10, // OFPAT_OUTPUT, len 16
                0x00, 0x00, 0x00, 0x03, // port 3
                0x00, 0x00, // max_len 0
                0, 0, 0, 0, 0, 0, // pad
            ],
            Action::output(3),
        );
    }

    #[test]
    fn set_field_tun_id() {
        roundtrip(
            &[
                0x00, 0x19, 0x00, 0x10, // OFPAT_SET_FIELD, len 16
                0x80, 0x00, 0x4c, 0x08, // OXM_OF_TUNNEL_ID, 8 bytes
                0, 0, 0, 0, 0, 0, 0x13, 0x89, // 0x1389
            ],
            Action::SetField(Field::TunnelId(0x1389, None)),
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut inner = BytesMut::new();
        let mut a = Action::ct_clear();
        for _ in 0..20 {
            a = Action::Nicira(Nicira::Ct(Box::new(Ct {
                flags: 0,
                zone: CtZone::Immediate(0),
                recirc_table: 255,
                alg: 0,
                actions: vec![a],
            })));
        }
        a.emit(&mut inner);
        assert!(Action::parse(&mut Reader::new(&inner), 0).is_err());
    }
}
