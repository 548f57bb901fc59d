//! OXM match fields (`ofp_match` of type OXM) and the Nicira/ONF extension fields OVS carries
//! inside it. [`Field`] is the one wire-independent model of "a field, its value, an optional
//! mask", shared by matches, `set_field` and `NXAST_REG_LOAD2`. Unknown fields keep their raw
//! bytes ([`Field::Raw`]) and re-emit byte-exact.//!
//! This module owns the OXM classes and [`FieldHeader`]; the field table and [`Field`] are in
//! `field`, value encodings in `value`, and [`Match`] in `flow_match`.

mod field;
mod flow_match;
mod value;

use bytes::{BufMut, BytesMut};

use crate::error::Result;
use crate::wire::Reader;

pub use field::{Field, RawField, oxm_twin};
pub use flow_match::{Match, OFPMT_OXM};
pub use value::U128Be;
pub(crate) use value::{Fmt, OxmValue, format_masked, hex};

use field::{field_width, names};

/// OXM class of the OpenFlow basic fields.
pub const OFPXMC_OPENFLOW_BASIC: u16 = 0x8000;
/// OXM class of OVS's 64-bit "packet registers" (xreg0-7).
pub const OFPXMC_PACKET_REGS: u16 = 0x8001;
/// NXM class of OVS's OpenFlow-1.0-era fields (`NXM_OF_*`).
pub const NXM_OF: u16 = 0x0000;
/// NXM class of Nicira extension fields (`NXM_NX_*`).
pub const NXM_NX: u16 = 0x0001;
/// OXM experimenter class: a 4-byte experimenter id follows the header.
pub const OFPXMC_EXPERIMENTER: u16 = 0xffff;
/// OVS's class for Ericsson's ND fields (`nd_reserved`, `nd_options_type`): despite the
/// "experimenter" name in OVS's sources it is a plain 16-bit class, no experimenter id.
pub const ERICOXM_OF: u16 = 0x1000;
/// The OpenFlow 1.3 `vlan_vid` bit that says a VLAN tag is present (the 802.1Q CFI bit's
/// place in OVS's `vlan_tci`).
pub const OFPVID_PRESENT: u16 = 0x1000;

/// An OXM/NXM field header: which field, whether a mask follows, payload length. Used on
/// its own by actions that name a field without a value (`reg_move`, `output_reg`, `ct`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldHeader {
    pub class: u16,
    pub field: u8,
    pub has_mask: bool,
    /// Payload length as the header states it (including the experimenter id, if any).
    pub len: u8,
    /// Present only for class [`OFPXMC_EXPERIMENTER`].
    pub experimenter: Option<u32>,
}

impl FieldHeader {
    /// Header of NXM_NX_REGn (32 bits).
    pub fn reg(n: u8) -> Self {
        FieldHeader {
            class: NXM_NX,
            field: n,
            has_mask: false,
            len: 4,
            experimenter: None,
        }
    }

    /// Header of the known field `class:field` (unmasked), with its width from the table.
    pub fn known(class: u16, field: u8, experimenter: Option<u32>) -> Option<Self> {
        let width = field_width(class, field, experimenter)?;
        let len = width + if experimenter.is_some() { 4 } else { 0 };
        Some(FieldHeader {
            class,
            field,
            has_mask: false,
            len: u8::try_from(len).ok()?,
            experimenter,
        })
    }

    /// Width in bits of the field's value (from the header length).
    pub fn value_bits(&self) -> u16 {
        let payload =
            usize::from(self.len).saturating_sub(if self.experimenter.is_some() { 4 } else { 0 });
        let value = if self.has_mask { payload / 2 } else { payload };
        u16::try_from(value * 8).unwrap_or(u16::MAX)
    }

    pub(crate) fn to_u32(self) -> u32 {
        (u32::from(self.class) << 16)
            | (u32::from(self.field & 0x7f) << 9)
            | (u32::from(self.has_mask) << 8)
            | u32::from(self.len)
    }

    pub(crate) fn from_u32(h: u32) -> Self {
        FieldHeader {
            class: (h >> 16) as u16,
            field: ((h >> 9) & 0x7f) as u8,
            has_mask: (h >> 8) & 1 == 1,
            len: (h & 0xff) as u8,
            experimenter: None,
        }
    }

    /// Reads a header (4 bytes, or 8 for the experimenter class).
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        let mut h = Self::from_u32(r.u32("oxm header")?);
        if h.class == OFPXMC_EXPERIMENTER {
            h.experimenter = Some(r.u32("oxm experimenter id")?);
        }
        Ok(h)
    }

    /// Wire size of the header itself.
    pub fn header_len(&self) -> usize {
        if self.experimenter.is_some() { 8 } else { 4 }
    }

    pub(crate) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.to_u32());
        if let Some(e) = self.experimenter {
            buf.put_u32(e);
        }
    }

    /// OVS's NXM-style name (`NXM_NX_REG7`, `NXM_OF_ETH_SRC`, `OXM_OF_METADATA`), as
    /// `ovs-ofctl` prints subfields; `None` for a field this codec does not know.
    pub fn nxm_name(&self) -> Option<String> {
        names(self.class, self.field, self.experimenter).map(|(_, n)| n)
    }

    /// OVS's field name (`reg7`, `eth_src`, `tun_id`).
    pub fn name(&self) -> Option<String> {
        names(self.class, self.field, self.experimenter).map(|(n, _)| n)
    }
}
