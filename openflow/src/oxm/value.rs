//! Field values: how each value type is read from and written to an OXM payload, masked,
//! and formatted the way `ovs-ofctl` prints it.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};

use crate::types::Mac;

/// How `ovs-ofctl` formats a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fmt {
    Hex,
    Dec,
    Mac,
    Ip,
    Port,
    CtState,
}

/// A value type that can appear in an OXM payload.
pub(crate) trait OxmValue: Sized + Clone {
    const LEN: usize;
    fn read(b: &[u8]) -> Option<Self>;
    fn write(&self, buf: &mut BytesMut);
    /// Formats the value (and mask, when partial) as OVS does for this kind of field.
    fn format(&self, fmt: Fmt) -> String;
    fn is_all_ones(&self) -> bool;
    /// Bitwise AND (to clear value bits a mask ignores).
    fn and(&self, m: &Self) -> Self;
}

macro_rules! int_value {
    ($t:ty) => {
        impl OxmValue for $t {
            const LEN: usize = std::mem::size_of::<$t>();
            fn read(b: &[u8]) -> Option<Self> {
                Some(<$t>::from_be_bytes(b.try_into().ok()?))
            }
            fn write(&self, buf: &mut BytesMut) {
                buf.put_slice(&self.to_be_bytes());
            }
            fn format(&self, fmt: Fmt) -> String {
                match fmt {
                    Fmt::Dec => self.to_string(),
                    Fmt::Port => crate::types::port::format(u32::try_from(*self).unwrap_or(0)),
                    Fmt::CtState => {
                        crate::print::ct_state_flags(u32::try_from(*self).unwrap_or(0), u32::MAX)
                    }
                    _ => hex(*self as u128),
                }
            }
            fn is_all_ones(&self) -> bool {
                *self == <$t>::MAX
            }
            fn and(&self, m: &Self) -> Self {
                *self & *m
            }
        }
    };
}
int_value!(u8);
int_value!(u16);
int_value!(u32);
int_value!(u64);
int_value!(u128);

/// A 128-bit field value (`ct_label`) kept as its big-endian bytes. A `u128` is 16-byte
/// aligned, which made every [`super::Field`] 64 bytes instead of 40, and with it every
/// match field and `set_field` action of the thousands of flows per switch. Big-endian
/// bytes order as the number does, so flows sort as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct U128Be(pub [u8; 16]);

impl U128Be {
    pub fn get(self) -> u128 {
        u128::from_be_bytes(self.0)
    }
}

impl From<u128> for U128Be {
    fn from(v: u128) -> Self {
        U128Be(v.to_be_bytes())
    }
}

impl From<U128Be> for u128 {
    fn from(v: U128Be) -> Self {
        v.get()
    }
}

impl std::fmt::LowerHex for U128Be {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::LowerHex::fmt(&self.get(), f)
    }
}

impl OxmValue for U128Be {
    const LEN: usize = 16;
    fn read(b: &[u8]) -> Option<Self> {
        Some(U128Be(b.try_into().ok()?))
    }
    fn write(&self, buf: &mut BytesMut) {
        buf.put_slice(&self.0);
    }
    fn format(&self, fmt: Fmt) -> String {
        self.get().format(fmt)
    }
    fn is_all_ones(&self) -> bool {
        self.get() == u128::MAX
    }
    fn and(&self, m: &Self) -> Self {
        U128Be::from(self.get() & m.get())
    }
}

/// `%#x` as C prints it: `0` for zero, else `0x…`.
pub(crate) fn hex(v: u128) -> String {
    if v == 0 {
        "0".into()
    } else {
        format!("{v:#x}")
    }
}

impl OxmValue for [u8; 3] {
    const LEN: usize = 3;
    fn read(b: &[u8]) -> Option<Self> {
        b.try_into().ok()
    }
    fn write(&self, buf: &mut BytesMut) {
        buf.put_slice(self);
    }
    fn format(&self, _: Fmt) -> String {
        hex(u128::from(u32::from_be_bytes([
            0, self[0], self[1], self[2],
        ])))
    }
    fn is_all_ones(&self) -> bool {
        self.iter().all(|&b| b == 0xff)
    }
    fn and(&self, m: &Self) -> Self {
        [self[0] & m[0], self[1] & m[1], self[2] & m[2]]
    }
}

impl OxmValue for Mac {
    const LEN: usize = 6;
    fn read(b: &[u8]) -> Option<Self> {
        Some(Mac(b.try_into().ok()?))
    }
    fn write(&self, buf: &mut BytesMut) {
        buf.put_slice(&self.0);
    }
    fn format(&self, _: Fmt) -> String {
        self.to_string()
    }
    fn is_all_ones(&self) -> bool {
        *self == Mac::BROADCAST
    }
    fn and(&self, m: &Self) -> Self {
        let mut out = self.0;
        for (o, b) in out.iter_mut().zip(m.0) {
            *o &= b;
        }
        Mac(out)
    }
}

impl OxmValue for Ipv4Addr {
    const LEN: usize = 4;
    fn read(b: &[u8]) -> Option<Self> {
        Some(Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?))
    }
    fn write(&self, buf: &mut BytesMut) {
        buf.put_slice(&self.octets());
    }
    fn format(&self, _: Fmt) -> String {
        self.to_string()
    }
    fn is_all_ones(&self) -> bool {
        *self == Ipv4Addr::BROADCAST
    }
    fn and(&self, m: &Self) -> Self {
        Ipv4Addr::from(u32::from(*self) & u32::from(*m))
    }
}

impl OxmValue for Ipv6Addr {
    const LEN: usize = 16;
    fn read(b: &[u8]) -> Option<Self> {
        Some(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?))
    }
    fn write(&self, buf: &mut BytesMut) {
        buf.put_slice(&self.octets());
    }
    fn format(&self, _: Fmt) -> String {
        self.to_string()
    }
    fn is_all_ones(&self) -> bool {
        self.octets().iter().all(|&b| b == 0xff)
    }
    fn and(&self, m: &Self) -> Self {
        Ipv6Addr::from(u128::from(*self) & u128::from(*m))
    }
}

pub(super) fn split<T: OxmValue>(payload: &[u8], has_mask: bool) -> Option<(T, Option<T>)> {
    if has_mask {
        if payload.len() != 2 * T::LEN {
            return None;
        }
        let (v, m) = payload.split_at(T::LEN);
        Some((T::read(v)?, Some(T::read(m)?)))
    } else {
        if payload.len() != T::LEN {
            return None;
        }
        Some((T::read(payload)?, None))
    }
}

/// Formats `value[/mask]` for `set_field`/`load` style output.
pub(crate) fn format_masked<T: OxmValue>(v: &T, m: Option<&T>, fmt: Fmt) -> String {
    match m {
        Some(m) if !m.is_all_ones() => format!("{}/{}", v.format(fmt), m.format(fmt)),
        _ => v.format(fmt),
    }
}
