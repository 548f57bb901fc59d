//! Bounds-checked reading of big-endian wire data and small emit helpers. Every read goes
//! through [`Reader`], which knows its absolute offset so errors can say where they happened;
//! no accessor here can panic.

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Result};

/// A cursor over a byte slice that never reads past its end.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Absolute offset of `buf[0]` in the outermost buffer, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            base: 0,
        }
    }

    pub(crate) fn with_base(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// Absolute offset of the next byte to be read.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let have = self.remaining();
        if n > have {
            return Err(Error::Truncated {
                what,
                offset: self.offset(),
                need: n,
                have,
            });
        }
        let out = self.buf.get(self.pos..self.pos + n).unwrap_or(&[]);
        self.pos += n;
        Ok(out)
    }

    /// Splits off the next `n` bytes as their own reader (for a length-delimited element).
    pub(crate) fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>> {
        let base = self.offset();
        let b = self.bytes(n, what)?;
        Ok(Reader::with_base(b, base))
    }

    pub(crate) fn take_rest(&mut self) -> &'a [u8] {
        let r = self.rest();
        self.pos = self.buf.len();
        r
    }

    pub(crate) fn skip(&mut self, n: usize, what: &'static str) -> Result<()> {
        self.bytes(n, what).map(|_| ())
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let b = self.bytes(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn bad_len(&self, what: &'static str, len: usize) -> Error {
        Error::BadLength {
            what,
            offset: self.offset(),
            len,
        }
    }
    pub(crate) fn bad_value(&self, what: &'static str, value: u64) -> Error {
        Error::BadValue {
            what,
            offset: self.offset(),
            value,
        }
    }
}

/// Bytes needed to pad `len` up to a multiple of 8.
pub(crate) fn pad8(len: usize) -> usize {
    (8 - len % 8) % 8
}

pub(crate) fn put_zeros(buf: &mut BytesMut, n: usize) {
    buf.put_bytes(0, n);
}

/// Writes `len` as a big-endian u16 at `at` (a length placeholder written earlier).
pub(crate) fn patch_u16(buf: &mut BytesMut, at: usize, len: usize) {
    let v = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
    if let Some(s) = buf.get_mut(at..at + 2) {
        s.copy_from_slice(&v);
    }
}

/// Writes a fixed-width, NUL-padded string field (truncating to `width` bytes).
pub(crate) fn put_fixed_str(buf: &mut BytesMut, s: &FixedStr, width: usize) {
    let b = s.as_bytes();
    let n = b.len().min(width);
    buf.put_slice(b.get(..n).unwrap_or(&[]));
    put_zeros(buf, width - n);
}

/// Reads a fixed-width, NUL-padded string field.
pub(crate) fn read_fixed_str(
    r: &mut Reader<'_>,
    width: usize,
    what: &'static str,
) -> Result<FixedStr> {
    let b = r.bytes(width, what)?;
    let end = b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    Ok(FixedStr(b.get(..end).unwrap_or(&[]).to_vec()))
}

/// A fixed-width, NUL-padded text field (port name, switch description). Keeps the exact
/// bytes (less trailing NULs) so that odd contents from a switch re-encode unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FixedStr(pub Vec<u8>);

impl FixedStr {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// The text up to the first NUL, lossily decoded.
    pub fn to_str_lossy(&self) -> String {
        let end = self.0.iter().position(|&c| c == 0).unwrap_or(self.0.len());
        String::from_utf8_lossy(self.0.get(..end).unwrap_or(&[])).into_owned()
    }
}

impl From<&str> for FixedStr {
    fn from(s: &str) -> Self {
        FixedStr(s.as_bytes().to_vec())
    }
}

impl std::fmt::Display for FixedStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_str_lossy())
    }
}

/// Anything with a wire form of known length.
pub trait Emit {
    /// Bytes [`Emit::emit`] will append.
    fn buffer_len(&self) -> usize;
    /// Appends the wire form to `buf`.
    fn emit(&self, buf: &mut BytesMut);
}

/// Numeric wire enums: named values plus `Unknown(raw)`, convertible both ways.
macro_rules! wire_enum {
    ($(#[$m:meta])* pub enum $name:ident : $ty:ty { $($(#[$vm:meta])* $var:ident = $val:expr,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vm])* $var,)*
            /// A value this codec has no name for; kept so it re-encodes unchanged.
            Unknown($ty),
        }
        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                match v {
                    $($val => Self::$var,)*
                    other => Self::Unknown(other),
                }
            }
        }
        impl From<$name> for $ty {
            fn from(v: $name) -> $ty {
                match v {
                    $($name::$var => $val,)*
                    $name::Unknown(o) => o,
                }
            }
        }
    };
}
pub(crate) use wire_enum;
