//! The framing of a switch connection: [`LenientCodec`] cuts the byte stream into
//! OpenFlow frames within the codec's bounds, drops PACKET_INs undecoded, keeps flow-stats
//! replies in wire form and hands up what does not decode instead of failing; [`Noise`]
//! counts what is dropped for rate-limited log lines.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use openflow::codec::{CodecError, OfpCodec};
use openflow::message::ofpt;
use openflow::{Message, MultipartReply, MultipartReplyBody, MultipartType, OfpMessage};
use tokio_util::codec::{Decoder, Encoder};

/// [`OfpCodec`], except that a frame that does not decode is handed up as an item (the
/// driver decides: fatal during the handshake, counted and skipped after it) instead of
/// ending the stream, and PACKET_INs are dropped without being decoded: Weft installs no
/// flow that sends to the controller, so they are noise, and a flood of them must cost as
/// little as possible.
#[derive(Debug, Default)]
pub(super) struct LenientCodec(OfpCodec);

/// OFPT_PACKET_IN.
const OFPT_PACKET_IN: u8 = 10;
/// The OpenFlow header and the multipart header (type, flags, pad) before a reply's body.
const MULTIPART_HEADERS: usize = openflow::message::HEADER_LEN + 8;

#[derive(Debug)]
pub(super) enum Frame {
    Message(OfpMessage),
    Undecodable {
        msg_type: u8,
        xid: u32,
        error: openflow::Error,
    },
    PacketIn,
}

impl Decoder for LenientCodec {
    type Item = Frame;
    type Error = CodecError;
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        if let Some(len) = OfpMessage::peek_len(src)
            && (openflow::message::HEADER_LEN..=self.0.max_len).contains(&len)
            && src.len() >= len
            && src.get(1) == Some(&OFPT_PACKET_IN)
        {
            src.advance(len);
            return Ok(Some(Frame::PacketIn));
        }
        if let Some(m) = self.raw_flow_stats(src) {
            return Ok(Some(Frame::Message(m)));
        }
        let msg_type = src.get(1).copied().unwrap_or(0);
        match self.0.decode(src) {
            Ok(m) => Ok(m.map(Frame::Message)),
            Err(CodecError::Decode { xid, source }) => Ok(Some(Frame::Undecodable {
                msg_type,
                xid,
                error: source,
            })),
            Err(e) => Err(e),
        }
    }
}

impl LenientCodec {
    /// An OpenFlow 1.3 flow-stats reply whose body is left in wire form
    /// ([`MultipartReplyBody::Raw`]): the installer first compares a dump's digest with
    /// the flows it wants ([`openflow::digest`]) and decodes the entries only if they
    /// differ. A reconnect storm dumps every switch's whole table, and decoding each
    /// entry was a fifth of weftd's work in it. Takes the frame off `src` only when it
    /// is one.
    fn raw_flow_stats(&self, src: &mut BytesMut) -> Option<OfpMessage> {
        let len = OfpMessage::peek_len(src)?;
        let is_flow_reply = src.len() >= len
            && (MULTIPART_HEADERS..=self.0.max_len).contains(&len)
            && src[0] == openflow::message::OFP_VERSION
            && src[1] == ofpt::MULTIPART_REPLY
            && MultipartType::from(u16::from_be_bytes([src[8], src[9]])) == MultipartType::Flow;
        if !is_flow_reply {
            return None;
        }
        let frame = src.split_to(len);
        Some(OfpMessage {
            version: frame[0],
            xid: u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
            body: Message::MultipartReply(MultipartReply {
                flags: u16::from_be_bytes([frame[10], frame[11]]),
                body: MultipartReplyBody::Raw {
                    mp_type: MultipartType::Flow,
                    body: frame[MULTIPART_HEADERS..].to_vec(),
                },
            }),
        })
    }
}

/// What a switch sent that weftd drops, counted for rate-limited log lines.
#[derive(Debug, Default)]
pub(super) struct Noise {
    pub(super) packet_ins: u64,
    pub(super) undecodable: u64,
    /// Counts already logged.
    reported: (u64, u64),
    last_report: Option<tokio::time::Instant>,
}

impl Noise {
    /// Logs what was dropped since the last report, at most once per `every` (at once
    /// the first time, or when `force`d at the end), so a flood costs one line per
    /// interval, not one per message.
    pub(super) fn report(&mut self, switch: &str, every: Duration, force: bool) {
        let now = tokio::time::Instant::now();
        let due = self.last_report.is_none_or(|t| now >= t + every);
        let new = (
            self.packet_ins - self.reported.0,
            self.undecodable - self.reported.1,
        );
        if (!due && !force) || new == (0, 0) {
            return;
        }
        tracing::warn!(%switch, packet_ins = new.0, undecodable = new.1,
            total_packet_ins = self.packet_ins, total_undecodable = self.undecodable,
            "dropped messages from the switch (Weft asks for no PACKET_IN; undecodable messages are skipped)");
        self.reported = (self.packet_ins, self.undecodable);
        self.last_report = Some(now);
    }
}

impl Encoder<OfpMessage> for LenientCodec {
    type Error = CodecError;
    fn encode(&mut self, item: OfpMessage, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.0.encode(&item, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PACKET_INs are dropped from the byte stream without decoding; other messages, and
    /// undecodable ones after them, still come through in order.
    #[test]
    fn codec_drops_packet_ins_undecoded() {
        let mut buf = BytesMut::new();
        // A PACKET_IN whose body would not even decode.
        buf.extend_from_slice(&[4, OFPT_PACKET_IN, 0, 12, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]);
        buf.extend_from_slice(&OfpMessage::echo_request(2, Vec::new()).to_bytes().unwrap());
        // A header-only FLOW_MOD: too short to decode.
        buf.extend_from_slice(&[4, 14, 0, 8, 0, 0, 0, 3]);
        let mut codec = LenientCodec::default();
        assert!(matches!(codec.decode(&mut buf), Ok(Some(Frame::PacketIn))));
        assert!(matches!(
            codec.decode(&mut buf),
            Ok(Some(Frame::Message(OfpMessage { xid: 2, .. })))
        ));
        assert!(matches!(
            codec.decode(&mut buf),
            Ok(Some(Frame::Undecodable {
                msg_type: 14,
                xid: 3,
                ..
            }))
        ));
        assert!(matches!(codec.decode(&mut buf), Ok(None)));
        // A truncated PACKET_IN waits for the rest like any frame.
        buf.extend_from_slice(&[4, OFPT_PACKET_IN, 0, 12, 0, 0, 0, 1]);
        assert!(matches!(codec.decode(&mut buf), Ok(None)));
        assert_eq!(buf.len(), 8);
    }

    /// A flow-stats reply reaches the installer with its body in wire form, the same
    /// bytes the switch sent; other replies are decoded as before.
    #[test]
    fn flow_stats_replies_keep_their_body_in_wire_form() {
        let entry = openflow::FlowStats {
            table_id: 30,
            duration_sec: 1,
            duration_nsec: 2,
            priority: 100,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
            cookie: 5,
            packet_count: 6,
            byte_count: 7,
            r#match: openflow::Match::new(vec![openflow::Field::InPort(1, None)]),
            instructions: vec![openflow::Instruction::GotoTable(40)],
        };
        let reply = |body| OfpMessage {
            version: openflow::message::OFP_VERSION,
            xid: 9,
            body: Message::MultipartReply(MultipartReply {
                flags: openflow::message::MULTIPART_MORE,
                body,
            }),
        };
        let flows = reply(MultipartReplyBody::Flow(vec![entry.clone(), entry]));
        let groups = reply(MultipartReplyBody::GroupDesc(vec![]));
        let mut buf = BytesMut::new();
        let flow_bytes = flows.to_bytes().unwrap();
        buf.extend_from_slice(&flow_bytes);
        buf.extend_from_slice(&groups.to_bytes().unwrap());
        let mut codec = LenientCodec::default();
        let Ok(Some(Frame::Message(got))) = codec.decode(&mut buf) else {
            panic!("no message");
        };
        let Message::MultipartReply(MultipartReply { flags, body }) = &got.body else {
            panic!("{got:?}");
        };
        assert_eq!((got.xid, *flags), (9, openflow::message::MULTIPART_MORE));
        assert!(
            matches!(body, MultipartReplyBody::Raw { mp_type: MultipartType::Flow, body }
            if body[..] == flow_bytes[MULTIPART_HEADERS..])
        );
        assert_eq!(
            body.clone().decoded().unwrap(),
            match flows.body {
                Message::MultipartReply(r) => r.body,
                _ => unreachable!(),
            }
        );
        let Ok(Some(Frame::Message(next))) = codec.decode(&mut buf) else {
            panic!("no second message");
        };
        assert_eq!(next, groups);
        // A flow reply cut short waits for its remainder, like any frame.
        buf.extend_from_slice(&flow_bytes[..flow_bytes.len() - 1]);
        assert!(matches!(codec.decode(&mut buf), Ok(None)));
        assert_eq!(buf.len(), flow_bytes.len() - 1);
    }
}
