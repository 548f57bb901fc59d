//! HELLO: the first message each side sends, carrying the OpenFlow versions it speaks.

use bytes::{BufMut, BytesMut};

use super::OFP_VERSION;
use crate::error::{Error, Result};
use crate::wire::{Reader, pad8, patch_u16, put_zeros};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hello {
    pub elements: Vec<HelloElement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloElement {
    /// Bitmaps of supported versions: bit n of word i = version 32*i+n.
    VersionBitmap(Vec<u32>),
    Unknown {
        element_type: u16,
        data: Vec<u8>,
    },
}

impl Hello {
    /// A HELLO advertising exactly OpenFlow 1.3.
    pub fn of13() -> Self {
        Hello {
            elements: vec![HelloElement::VersionBitmap(vec![1 << OFP_VERSION])],
        }
    }

    /// Whether the peer (sending this HELLO at `header_version`) supports OpenFlow 1.3.
    pub fn supports_of13(&self, header_version: u8) -> bool {
        for e in &self.elements {
            if let HelloElement::VersionBitmap(words) = e {
                return words.first().is_some_and(|w| w & (1 << OFP_VERSION) != 0);
            }
        }
        header_version >= OFP_VERSION
    }
}

impl Hello {
    /// Parses a HELLO body: its elements, each padded to 8 bytes.
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        let mut elements = Vec::new();
        while !r.is_empty() {
            let at = r.offset();
            let et = r.u16("hello element type")?;
            let len = usize::from(r.u16("hello element length")?);
            if len < 4 {
                return Err(Error::BadLength {
                    what: "hello element",
                    offset: at,
                    len,
                });
            }
            let mut b = r.sub(len - 4, "hello element")?;
            let pad = pad8(len).min(r.remaining());
            r.skip(pad, "hello element padding")?;
            if et == 1 && b.remaining() % 4 == 0 {
                let mut words = Vec::new();
                while !b.is_empty() {
                    words.push(b.u32("version bitmap")?);
                }
                elements.push(HelloElement::VersionBitmap(words));
            } else {
                elements.push(HelloElement::Unknown {
                    element_type: et,
                    data: b.take_rest().to_vec(),
                });
            }
        }
        Ok(Hello { elements })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        for e in &self.elements {
            let start = buf.len();
            match e {
                HelloElement::VersionBitmap(words) => {
                    buf.put_u16(1);
                    buf.put_u16(0);
                    for w in words {
                        buf.put_u32(*w);
                    }
                }
                HelloElement::Unknown { element_type, data } => {
                    buf.put_u16(*element_type);
                    buf.put_u16(0);
                    buf.put_slice(data);
                }
            }
            let len = buf.len() - start;
            patch_u16(buf, start + 2, len);
            put_zeros(buf, pad8(len));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::testing::*;
    use crate::message::{Message, ofpt};

    #[test]
    fn hello_with_version_bitmap() {
        let body = [
            0x00, 0x01, 0x00, 0x08, // element VERSIONBITMAP, len 8
            0x00, 0x00, 0x00, 0x10, // bit 4 = OpenFlow 1.3
        ];
        check(
            &with_header(ofpt::HELLO, &body),
            msg(Message::Hello(Hello::of13())),
        );
        assert!(Hello::of13().supports_of13(4));
    }
}
