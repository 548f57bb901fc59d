//! Connection tracking actions: `ct` (zone, commit, recirculation, nested actions) and the
//! `nat` it may carry.

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Result};
use crate::wire::{Reader, put_zeros};

use super::{Action, Subfield, check_padding};

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

    pub(super) fn parse(b: &mut Reader<'_>, at: usize, len: usize) -> Result<Nat> {
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

    pub(super) fn emit(&self, buf: &mut BytesMut) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::tests::roundtrip;
    use crate::action::{Action, Nicira, Subfield};
    use crate::oxm::{Field, FieldHeader};

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
            Action::Nicira(Nicira::Ct(Box::new(Ct {
                flags: Ct::COMMIT,
                zone: CtZone::Field(Subfield::bits(FieldHeader::reg(13), 0, 16)),
                recirc_table: 21,
                alg: 0,
                actions: vec![Action::SetField(Field::CtMark(1, None))],
            }))),
        );
    }
}
