//! Actions: the OpenFlow 1.3 standard set and Nicira's extension actions (experimenter
//! 0x00002320) as one model, [`Action`] with a [`Nicira`] sub-enum. Unknown standard action
//! types and unknown Nicira subtypes are kept raw and re-emit byte-exact.

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Result};
use crate::oxm::{Field, FieldHeader};
use crate::types::NX_VENDOR_ID;
use crate::wire::{Emit, Reader, pad8, patch_u16, put_zeros};

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

/// Where `ct` takes its zone from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CtZone {
    Immediate(u16),
    Field(Subfield),
}

/// NXAST_CT: send the packet through the connection tracker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ct {
    /// [`Ct::COMMIT`], [`Ct::FORCE`].
    pub flags: u16,
    pub zone: CtZone,
    /// Table to recirculate to; [`Ct::NO_RECIRC`] = none.
    pub recirc_table: u8,
    /// Application layer gateway (21 = ftp, 69 = tftp), 0 = none.
    pub alg: u16,
    /// Nested actions run on commit (only set_field of ct_mark/ct_label and nat are legal).
    pub actions: Vec<Action>,
}

impl Ct {
    pub const COMMIT: u16 = 1;
    pub const FORCE: u16 = 2;
    pub const NO_RECIRC: u8 = 255;
}

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
    fn parse(r: &mut Reader<'_>) -> Result<Option<LearnSpec>> {
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

    fn emit(&self, buf: &mut BytesMut) {
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

/// NXAST_NAT (only meaningful inside `ct`): source or destination NAT over an optional
/// address and port range.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Nat {
    /// [`Nat::SRC`], [`Nat::DST`], [`Nat::PERSISTENT`], [`Nat::PROTO_HASH`], [`Nat::PROTO_RANDOM`].
    pub flags: u16,
    pub ipv4: Option<(std::net::Ipv4Addr, Option<std::net::Ipv4Addr>)>,
    pub ipv6: Option<(std::net::Ipv6Addr, Option<std::net::Ipv6Addr>)>,
    pub proto: Option<(u16, Option<u16>)>,
}

impl Nat {
    pub const SRC: u16 = 1;
    pub const DST: u16 = 2;
    pub const PERSISTENT: u16 = 4;
    pub const PROTO_HASH: u16 = 8;
    pub const PROTO_RANDOM: u16 = 16;

    fn range_present(&self) -> u16 {
        let mut p = 0;
        if let Some((_, max)) = self.ipv4 {
            p |= 1 | if max.is_some() { 2 } else { 0 };
        }
        if let Some((_, max)) = self.ipv6 {
            p |= 4 | if max.is_some() { 8 } else { 0 };
        }
        if let Some((_, max)) = self.proto {
            p |= 16 | if max.is_some() { 32 } else { 0 };
        }
        p
    }

    fn parse(b: &mut Reader<'_>, at: usize, len: usize) -> Result<Nat> {
        b.skip(2, "pad")?;
        let flags = b.u16("nat flags")?;
        let present = b.u16("nat range_present")?;
        let bad = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(Error::BadValue {
                    what: "nat range_present",
                    offset: at,
                    value: present.into(),
                })
            }
        };
        // A maximum without its minimum cannot be represented (and OVS rejects it).
        bad(present & !0x3f == 0
            && (present & 2 == 0 || present & 1 != 0)
            && (present & 8 == 0 || present & 4 != 0)
            && (present & 32 == 0 || present & 16 != 0))?;
        let mut nat = Nat {
            flags,
            ..Nat::default()
        };
        if present & 1 != 0 {
            let min = std::net::Ipv4Addr::from(b.u32("nat ipv4 min")?);
            let max = if present & 2 != 0 {
                Some(std::net::Ipv4Addr::from(b.u32("nat ipv4 max")?))
            } else {
                None
            };
            nat.ipv4 = Some((min, max));
        }
        if present & 4 != 0 {
            let min = std::net::Ipv6Addr::from(b.array::<16>("nat ipv6 min")?);
            let max = if present & 8 != 0 {
                Some(std::net::Ipv6Addr::from(b.array::<16>("nat ipv6 max")?))
            } else {
                None
            };
            nat.ipv6 = Some((min, max));
        }
        if present & 16 != 0 {
            let min = b.u16("nat proto min")?;
            let max = if present & 32 != 0 {
                Some(b.u16("nat proto max")?)
            } else {
                None
            };
            nat.proto = Some((min, max));
        }
        check_padding(b, at, len)?;
        Ok(nat)
    }

    fn emit(&self, buf: &mut BytesMut) {
        put_zeros(buf, 2);
        buf.put_u16(self.flags);
        buf.put_u16(self.range_present());
        if let Some((min, max)) = self.ipv4 {
            buf.put_slice(&min.octets());
            if let Some(m) = max {
                buf.put_slice(&m.octets());
            }
        }
        if let Some((min, max)) = self.ipv6 {
            buf.put_slice(&min.octets());
            if let Some(m) = max {
                buf.put_slice(&m.octets());
            }
        }
        if let Some((min, max)) = self.proto {
            buf.put_u16(min);
            if let Some(m) = max {
                buf.put_u16(m);
            }
        }
    }
}

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
    fn parse(r: &mut Reader<'_>) -> Result<Self> {
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

    fn emit(&self, buf: &mut BytesMut) {
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
    Ct(Ct),
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
    Nat(Nat),
    /// NXAST_CONTROLLER2: send to the controller, with properties.
    Controller2(Vec<Controller2Prop>),
    Learn(Learn),
    /// A subtype this codec does not model; `data` follows the subtype.
    Raw {
        subtype: u16,
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
fn check_padding(b: &Reader<'_>, at: usize, len: usize) -> Result<()> {
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

impl Nicira {
    fn parse(b: &mut Reader<'_>, at: usize, len: usize, depth: usize) -> Result<Nicira> {
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
                Nicira::Ct(Ct {
                    flags,
                    zone,
                    recirc_table,
                    alg,
                    actions,
                })
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
            NAT => Nicira::Nat(Nat::parse(b, at, len)?),
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
                Nicira::Learn(Learn {
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
                })
            }
            _ => Nicira::Raw {
                subtype,
                data: b.take_rest().to_vec(),
            },
        })
    }

    fn subtype(&self) -> u16 {
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
    fn emit_body(&self, buf: &mut BytesMut) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(bytes: &[u8], expected: Action) {
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
    fn ct_commit_with_zone_from_reg13_and_nested_set_field() {
        roundtrip(
            &[
                0xff, 0xff, 0x00, 0x28, // experimenter, len 40
                0x00, 0x00, 0x23, 0x20, // Nicira
                0x00, 0x23, // NXAST_CT
                0x00, 0x01, // flags: commit
                0x00, 0x01, 0x1a, 0x04, // zone_src: NXM_NX_REG13
                0x00, 0x0f, // ofs 0, n_bits 16
                0x15, // recirc table 21
                0, 0, 0, // pad
                0x00, 0x00, // alg none
                0x00, 0x19, 0x00, 0x10, // nested OFPAT_SET_FIELD, len 16
                0x00, 0x01, 0xd6, 0x04, 0, 0, 0, 1, // NXM_NX_CT_MARK = 1
                0, 0, 0, 0, // pad to 16
            ],
            Action::Nicira(Nicira::Ct(Ct {
                flags: Ct::COMMIT,
                zone: CtZone::Field(Subfield::bits(FieldHeader::reg(13), 0, 16)),
                recirc_table: 21,
                alg: 0,
                actions: vec![Action::SetField(Field::CtMark(1, None))],
            })),
        );
    }

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

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut inner = BytesMut::new();
        let mut a = Action::ct_clear();
        for _ in 0..20 {
            a = Action::Nicira(Nicira::Ct(Ct {
                flags: 0,
                zone: CtZone::Immediate(0),
                recirc_table: 255,
                alg: 0,
                actions: vec![a],
            }));
        }
        a.emit(&mut inner);
        assert!(Action::parse(&mut Reader::new(&inner), 0).is_err());
    }
}
