//! tokio-util framing: split a byte stream into OpenFlow messages by the 8-byte header's
//! length field, enforce a maximum message size, and turn garbage into a typed error.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::message::{HEADER_LEN, OfpMessage};

/// Why a stream could not be framed or a message encoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The header's length is below 8 or above the configured maximum. The stream cannot be
    /// resynchronised: close the connection.
    #[error("bad message length {len} (min {HEADER_LEN}, max {max})")]
    BadFrameLength { len: usize, max: usize },
    /// A complete frame whose contents do not decode. The frame has been consumed, so the
    /// caller may log it (and answer OFPT_ERROR) and keep reading.
    #[error("undecodable message (xid {xid:#x}): {source}")]
    Decode {
        xid: u32,
        #[source]
        source: crate::Error,
    },
    #[error("cannot encode: {0}")]
    Encode(crate::Error),
}

/// Frames OpenFlow messages. `max_len` bounds what one message may claim (OpenFlow allows
/// 65535; a controller may want less).
#[derive(Debug, Clone, Copy)]
pub struct OfpCodec {
    pub max_len: usize,
}

impl Default for OfpCodec {
    fn default() -> Self {
        OfpCodec {
            max_len: usize::from(u16::MAX),
        }
    }
}

impl Decoder for OfpCodec {
    type Item = OfpMessage;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<OfpMessage>, CodecError> {
        let Some(len) = OfpMessage::peek_len(src) else {
            return Ok(None);
        };
        if len < HEADER_LEN || len > self.max_len {
            return Err(CodecError::BadFrameLength {
                len,
                max: self.max_len,
            });
        }
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        let frame = src.split_to(len);
        let xid = frame
            .get(4..8)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        OfpMessage::decode(&frame)
            .map(Some)
            .map_err(|source| CodecError::Decode { xid, source })
    }
}

impl Encoder<OfpMessage> for OfpCodec {
    type Error = CodecError;

    fn encode(&mut self, item: OfpMessage, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&item, dst)
    }
}

impl Encoder<&OfpMessage> for OfpCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &OfpMessage, dst: &mut BytesMut) -> Result<(), CodecError> {
        let start = dst.len();
        item.encode(dst).map_err(CodecError::Encode)?;
        if dst.len() - start > self.max_len {
            let len = dst.len() - start;
            dst.truncate(start);
            return Err(CodecError::BadFrameLength {
                len,
                max: self.max_len,
            });
        }
        Ok(())
    }
}

/// Drops `n` bytes (e.g. to resynchronise after a framing error). Exposed for callers
/// that prefer to skip a bad message rather than close the connection.
pub fn skip(src: &mut BytesMut, n: usize) {
    src.advance(n.min(src.len()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    #[test]
    fn frames_partial_and_multiple() {
        let mut c = OfpCodec::default();
        let mut b = BytesMut::new();
        let m1 = OfpMessage::new(1, Message::BarrierRequest);
        let m2 = OfpMessage::new(2, Message::EchoRequest(vec![1, 2, 3]));
        Encoder::<&OfpMessage>::encode(&mut c, &m1, &mut b).unwrap();
        Encoder::<&OfpMessage>::encode(&mut c, &m2, &mut b).unwrap();
        let mut partial = b.split_to(5);
        assert!(c.decode(&mut partial).unwrap().is_none());
        partial.unsplit(b);
        assert_eq!(c.decode(&mut partial).unwrap(), Some(m1));
        assert_eq!(c.decode(&mut partial).unwrap(), Some(m2));
        assert_eq!(c.decode(&mut partial).unwrap(), None);
    }

    #[test]
    fn garbage_is_a_typed_error() {
        let mut c = OfpCodec { max_len: 1024 };
        let mut b = BytesMut::from(&[4u8, 0, 0, 3, 0, 0, 0, 0][..]);
        assert!(matches!(
            c.decode(&mut b),
            Err(CodecError::BadFrameLength { len: 3, .. })
        ));
        let mut b = BytesMut::from(&[4u8, 0, 0xff, 0xff, 0, 0, 0, 0][..]);
        assert!(matches!(
            c.decode(&mut b),
            Err(CodecError::BadFrameLength { len: 65535, .. })
        ));
        // FEATURES_REPLY with a short body.
        let mut b = BytesMut::from(&[4u8, 6, 0, 12, 0, 0, 0, 9, 1, 2, 3, 4][..]);
        assert!(matches!(
            c.decode(&mut b),
            Err(CodecError::Decode { xid: 9, .. })
        ));
    }
}

#[cfg(test)]
mod more_tests {
    use super::*;
    use crate::message::Message;

    #[test]
    fn stream_continues_after_an_undecodable_frame() {
        let mut c = OfpCodec::default();
        let mut b = BytesMut::from(&[4u8, 6, 0, 12, 0, 0, 0, 9, 1, 2, 3, 4][..]);
        b.extend_from_slice(&OfpMessage::barrier(10).to_bytes().unwrap());
        assert!(c.decode(&mut b).is_err());
        assert_eq!(
            c.decode(&mut b).unwrap(),
            Some(OfpMessage::new(10, Message::BarrierRequest))
        );
    }
}
