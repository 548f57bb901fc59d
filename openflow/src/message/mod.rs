//! OpenFlow 1.3 messages: the 8-byte header plus a typed body per message type, in both
//! directions. [`OfpMessage::decode`] never panics; message types (and multipart types)
//! this codec does not model decode to raw variants that re-encode byte-exact.
//!
//! This module owns the header, the [`Message`] enum and the dispatch on the message type;
//! each message family's types, parsing and emitting live in their own file.

mod bundle;
mod error_msg;
mod experimenter;
mod flow_mod;
mod group;
mod hello;
mod meter;
mod multipart;
mod packet;
mod port;
mod role;
mod switch;
#[cfg(test)]
mod testing;

use bytes::{BufMut, BytesMut};

use crate::action::Action;
use crate::error::{Error, Result};
use crate::instruction::Instruction;
use crate::oxm::Match;
use crate::wire::{Reader, patch_u16};

pub use bundle::{
    BundleAdd, BundleControl, BundleCtrlType, ONFT_BUNDLE_ADD_MESSAGE, ONFT_BUNDLE_CONTROL,
    bundle_flags,
};
pub use error_msg::{ErrorKind, ErrorMsg, ErrorType, error_name};
pub use experimenter::Experimenter;
pub use flow_mod::{FlowMod, FlowModCommand, FlowRemoved, FlowRemovedReason, flow_flags};
pub use group::{Bucket, GroupMod, GroupModCommand, GroupType};
pub use hello::{Hello, HelloElement};
pub use meter::{MeterBand, MeterMod, MeterModCommand};
pub use multipart::{
    AggregateStats, Desc, FlowStats, FlowStatsOf, FlowStatsRequest, FlowStatsView, GroupDesc,
    GroupFeatures, GroupStats, MULTIPART_MORE, MultipartReply, MultipartReplyBody,
    MultipartRequest, MultipartRequestBody, MultipartType, PortStats, TableStats,
};
pub(crate) use multipart::{FLOW_STATS_FIXED, FLOW_STATS_MIN};
pub use packet::{PacketIn, PacketInReason, PacketOut};
pub use port::{Port, PortMod, PortReason, PortStatus};
pub use role::{AsyncConfig, ControllerRole, RoleMsg};
pub use switch::{SwitchConfig, SwitchFeatures, TableMod};

/// The OpenFlow 1.3 wire version.
pub const OFP_VERSION: u8 = 4;
/// Size of the common header.
pub const HEADER_LEN: usize = 8;
/// How deep bundle-add messages may nest inside each other.
const MAX_MESSAGE_NESTING: usize = 2;

/// Message type numbers (`OFPT_*`).
pub mod ofpt {
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const EXPERIMENTER: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const GET_CONFIG_REQUEST: u8 = 7;
    pub const GET_CONFIG_REPLY: u8 = 8;
    pub const SET_CONFIG: u8 = 9;
    pub const PACKET_IN: u8 = 10;
    pub const FLOW_REMOVED: u8 = 11;
    pub const PORT_STATUS: u8 = 12;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    pub const GROUP_MOD: u8 = 15;
    pub const PORT_MOD: u8 = 16;
    pub const TABLE_MOD: u8 = 17;
    pub const MULTIPART_REQUEST: u8 = 18;
    pub const MULTIPART_REPLY: u8 = 19;
    pub const BARRIER_REQUEST: u8 = 20;
    pub const BARRIER_REPLY: u8 = 21;
    pub const QUEUE_GET_CONFIG_REQUEST: u8 = 22;
    pub const QUEUE_GET_CONFIG_REPLY: u8 = 23;
    pub const ROLE_REQUEST: u8 = 24;
    pub const ROLE_REPLY: u8 = 25;
    pub const GET_ASYNC_REQUEST: u8 = 26;
    pub const GET_ASYNC_REPLY: u8 = 27;
    pub const SET_ASYNC: u8 = 28;
    pub const METER_MOD: u8 = 29;
}

/// A whole message: header fields plus typed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfpMessage {
    /// Wire version; 4 for everything this codec types (other versions decode as raw,
    /// except HELLO, which is version-independent).
    pub version: u8,
    pub xid: u32,
    pub body: Message,
}

/// The typed body of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    Error(ErrorMsg),
    EchoRequest(Vec<u8>),
    EchoReply(Vec<u8>),
    Experimenter(Experimenter),
    FeaturesRequest,
    FeaturesReply(SwitchFeatures),
    GetConfigRequest,
    GetConfigReply(SwitchConfig),
    SetConfig(SwitchConfig),
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    PortStatus(PortStatus),
    PacketOut(PacketOut),
    FlowMod(FlowMod),
    GroupMod(GroupMod),
    PortMod(PortMod),
    TableMod(TableMod),
    MultipartRequest(MultipartRequest),
    MultipartReply(MultipartReply),
    BarrierRequest,
    BarrierReply,
    RoleRequest(RoleMsg),
    RoleReply(RoleMsg),
    GetAsyncRequest,
    GetAsyncReply(AsyncConfig),
    SetAsync(AsyncConfig),
    MeterMod(MeterMod),
    BundleControl(BundleControl),
    BundleAdd(BundleAdd),
    /// A message type (or version) this codec does not model: body after the header.
    Raw {
        msg_type: u8,
        body: Vec<u8>,
    },
}

pub(super) fn expect_len(r: &Reader<'_>, n: usize, what: &'static str) -> Result<()> {
    if r.remaining() != n {
        Err(r.bad_len(what, r.remaining()))
    } else {
        Ok(())
    }
}

impl OfpMessage {
    pub fn new(xid: u32, body: Message) -> Self {
        OfpMessage {
            version: OFP_VERSION,
            xid,
            body,
        }
    }

    /// Length of the message at the start of `buf` according to its header, once at least
    /// the header is present.
    pub fn peek_len(buf: &[u8]) -> Option<usize> {
        let b = buf.get(2..4)?;
        Some(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    /// Decodes exactly one message filling all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<OfpMessage> {
        let (m, used) = Self::decode_prefix(bytes)?;
        if used != bytes.len() {
            return Err(Error::BadLength {
                what: "message (trailing bytes)",
                offset: 0,
                len: bytes.len(),
            });
        }
        Ok(m)
    }

    /// Decodes the message at the start of `bytes`; returns it and its length.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(OfpMessage, usize)> {
        Self::decode_at(bytes, 0, 0)
    }

    pub(super) fn decode_at(
        bytes: &[u8],
        base: usize,
        depth: usize,
    ) -> Result<(OfpMessage, usize)> {
        let mut r = Reader::with_base(bytes, base);
        let version = r.u8("header version")?;
        let msg_type = r.u8("header type")?;
        let len = usize::from(r.u16("header length")?);
        let xid = r.u32("header xid")?;
        if len < HEADER_LEN {
            return Err(Error::BadLength {
                what: "message",
                offset: base,
                len,
            });
        }
        let mut b = r.sub(len - HEADER_LEN, "message body")?;
        let body = if version != OFP_VERSION && msg_type != ofpt::HELLO {
            Message::Raw {
                msg_type,
                body: b.take_rest().to_vec(),
            }
        } else {
            Message::parse_body(msg_type, &mut b, depth)?
        };
        Ok((OfpMessage { version, xid, body }, len))
    }

    /// Appends the encoded message to `buf`; fails (leaving `buf` unchanged) if it would
    /// exceed 65535 bytes.
    pub fn encode(&self, buf: &mut BytesMut) -> Result<()> {
        let start = buf.len();
        buf.put_u8(self.version);
        buf.put_u8(self.body.msg_type());
        buf.put_u16(0);
        buf.put_u32(self.xid);
        self.body.emit_body(buf);
        let len = buf.len() - start;
        if len > usize::from(u16::MAX) {
            buf.truncate(start);
            return Err(Error::TooLong {
                what: "message",
                len,
                max: usize::from(u16::MAX),
            });
        }
        patch_u16(buf, start + 2, len);
        Ok(())
    }

    /// Encodes into a fresh vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut b = BytesMut::new();
        self.encode(&mut b)?;
        Ok(b.to_vec())
    }

    /// How many parts of this message decoded to a raw/unknown variant (0 = fully typed).
    pub fn raw_count(&self) -> usize {
        self.body.raw_count()
    }
}

impl Message {
    fn parse_body(msg_type: u8, r: &mut Reader<'_>, depth: usize) -> Result<Message> {
        use ofpt::*;
        let m = match msg_type {
            HELLO => Message::Hello(Hello::parse(r)?),
            ERROR => Message::Error(ErrorMsg::parse(r)?),
            ECHO_REQUEST => Message::EchoRequest(r.take_rest().to_vec()),
            ECHO_REPLY => Message::EchoReply(r.take_rest().to_vec()),
            EXPERIMENTER => experimenter::parse(r, depth)?,
            FEATURES_REQUEST => {
                expect_len(r, 0, "features request")?;
                Message::FeaturesRequest
            }
            FEATURES_REPLY => Message::FeaturesReply(SwitchFeatures::parse(r)?),
            GET_CONFIG_REQUEST => {
                expect_len(r, 0, "get config request")?;
                Message::GetConfigRequest
            }
            GET_CONFIG_REPLY => Message::GetConfigReply(SwitchConfig::parse(r)?),
            SET_CONFIG => Message::SetConfig(SwitchConfig::parse(r)?),
            PACKET_IN => Message::PacketIn(PacketIn::parse(r)?),
            FLOW_REMOVED => Message::FlowRemoved(FlowRemoved::parse(r)?),
            PORT_STATUS => Message::PortStatus(PortStatus::parse(r)?),
            PACKET_OUT => Message::PacketOut(PacketOut::parse(r)?),
            FLOW_MOD => Message::FlowMod(FlowMod::parse(r)?),
            GROUP_MOD => Message::GroupMod(GroupMod::parse(r)?),
            PORT_MOD => Message::PortMod(PortMod::parse(r)?),
            TABLE_MOD => Message::TableMod(TableMod::parse(r)?),
            MULTIPART_REQUEST => Message::MultipartRequest(MultipartRequest::parse(r)?),
            MULTIPART_REPLY => Message::MultipartReply(MultipartReply::parse(r)?),
            BARRIER_REQUEST | BARRIER_REPLY | GET_ASYNC_REQUEST => {
                expect_len(r, 0, "empty message")?;
                match msg_type {
                    BARRIER_REQUEST => Message::BarrierRequest,
                    BARRIER_REPLY => Message::BarrierReply,
                    _ => Message::GetAsyncRequest,
                }
            }
            ROLE_REQUEST => Message::RoleRequest(RoleMsg::parse(r)?),
            ROLE_REPLY => Message::RoleReply(RoleMsg::parse(r)?),
            GET_ASYNC_REPLY => Message::GetAsyncReply(role::parse_async(r)?),
            SET_ASYNC => Message::SetAsync(role::parse_async(r)?),
            METER_MOD => Message::MeterMod(MeterMod::parse(r)?),
            _ => Message::Raw {
                msg_type,
                body: r.take_rest().to_vec(),
            },
        };
        Ok(m)
    }

    /// The `OFPT_*` number of this body.
    pub fn msg_type(&self) -> u8 {
        use ofpt::*;
        match self {
            Message::Hello(_) => HELLO,
            Message::Error(_) => ERROR,
            Message::EchoRequest(_) => ECHO_REQUEST,
            Message::EchoReply(_) => ECHO_REPLY,
            Message::Experimenter(_) | Message::BundleControl(_) | Message::BundleAdd(_) => {
                EXPERIMENTER
            }
            Message::FeaturesRequest => FEATURES_REQUEST,
            Message::FeaturesReply(_) => FEATURES_REPLY,
            Message::GetConfigRequest => GET_CONFIG_REQUEST,
            Message::GetConfigReply(_) => GET_CONFIG_REPLY,
            Message::SetConfig(_) => SET_CONFIG,
            Message::PacketIn(_) => PACKET_IN,
            Message::FlowRemoved(_) => FLOW_REMOVED,
            Message::PortStatus(_) => PORT_STATUS,
            Message::PacketOut(_) => PACKET_OUT,
            Message::FlowMod(_) => FLOW_MOD,
            Message::GroupMod(_) => GROUP_MOD,
            Message::PortMod(_) => PORT_MOD,
            Message::TableMod(_) => TABLE_MOD,
            Message::MultipartRequest(_) => MULTIPART_REQUEST,
            Message::MultipartReply(_) => MULTIPART_REPLY,
            Message::BarrierRequest => BARRIER_REQUEST,
            Message::BarrierReply => BARRIER_REPLY,
            Message::RoleRequest(_) => ROLE_REQUEST,
            Message::RoleReply(_) => ROLE_REPLY,
            Message::GetAsyncRequest => GET_ASYNC_REQUEST,
            Message::GetAsyncReply(_) => GET_ASYNC_REPLY,
            Message::SetAsync(_) => SET_ASYNC,
            Message::MeterMod(_) => METER_MOD,
            Message::Raw { msg_type, .. } => *msg_type,
        }
    }

    fn emit_body(&self, buf: &mut BytesMut) {
        match self {
            Message::Hello(h) => h.emit(buf),
            Message::Error(e) => e.emit(buf),
            Message::EchoRequest(d) | Message::EchoReply(d) => buf.put_slice(d),
            Message::Experimenter(e) => e.emit(buf),
            Message::BundleControl(b) => b.emit(buf),
            Message::BundleAdd(b) => b.emit(buf),
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply
            | Message::GetAsyncRequest => {}
            Message::FeaturesReply(f) => f.emit(buf),
            Message::GetConfigReply(c) | Message::SetConfig(c) => c.emit(buf),
            Message::PacketIn(p) => p.emit(buf),
            Message::FlowRemoved(f) => f.emit(buf),
            Message::PortStatus(p) => p.emit(buf),
            Message::PacketOut(p) => p.emit(buf),
            Message::FlowMod(f) => f.emit(buf),
            Message::GroupMod(g) => g.emit(buf),
            Message::PortMod(p) => p.emit(buf),
            Message::TableMod(t) => t.emit(buf),
            Message::MultipartRequest(m) => m.emit(buf),
            Message::MultipartReply(m) => m.emit(buf),
            Message::RoleRequest(r) | Message::RoleReply(r) => r.emit(buf),
            Message::GetAsyncReply(a) | Message::SetAsync(a) => a.emit(buf),
            Message::MeterMod(m) => m.emit(buf),
            Message::Raw { body, .. } => buf.put_slice(body),
        }
    }

    /// How many parts decoded to raw/unknown variants.
    pub fn raw_count(&self) -> usize {
        let acts = |a: &[Action]| a.iter().map(Action::raw_count).sum::<usize>();
        let insts = |i: &[Instruction]| i.iter().map(Instruction::raw_count).sum::<usize>();
        let fields = |m: &Match| {
            m.fields
                .iter()
                .filter(|f| matches!(f, crate::oxm::Field::Raw(_)))
                .count()
        };
        let buckets = |b: &[Bucket]| b.iter().map(|b| acts(&b.actions)).sum::<usize>();
        match self {
            Message::Raw { .. } | Message::Experimenter(_) => 1,
            Message::Hello(h) => h
                .elements
                .iter()
                .filter(|e| matches!(e, HelloElement::Unknown { .. }))
                .count(),
            Message::FlowMod(f) => fields(&f.r#match) + insts(&f.instructions),
            Message::PacketIn(p) => fields(&p.r#match),
            Message::FlowRemoved(f) => fields(&f.r#match),
            Message::PacketOut(p) => acts(&p.actions),
            Message::GroupMod(g) => buckets(&g.buckets),
            Message::BundleAdd(b) => b.message.raw_count(),
            Message::MultipartRequest(m) => match &m.body {
                MultipartRequestBody::Raw { .. } => 1,
                MultipartRequestBody::Flow(q) | MultipartRequestBody::Aggregate(q) => {
                    fields(&q.r#match)
                }
                _ => 0,
            },
            Message::MultipartReply(m) => match &m.body {
                MultipartReplyBody::Raw { .. } => 1,
                MultipartReplyBody::Flow(v) => v
                    .iter()
                    .map(|s| fields(&s.r#match) + insts(&s.instructions))
                    .sum(),
                MultipartReplyBody::GroupDesc(v) => v.iter().map(|g| buckets(&g.buckets)).sum(),
                _ => 0,
            },
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::OfpMessage;
    use crate::message::testing::*;
    use crate::message::{Message, ofpt};

    #[test]
    fn unknown_type_and_version_stay_raw() {
        let bytes = with_header(99, &[1, 2, 3]);
        check(
            &bytes,
            msg(Message::Raw {
                msg_type: 99,
                body: vec![1, 2, 3],
            }),
        );
        let mut v1 = with_header(ofpt::FLOW_MOD, &[9, 9]);
        v1[0] = 1;
        let m = OfpMessage::decode(&v1).unwrap();
        assert_eq!(m.version, 1);
        assert_eq!(m.to_bytes().unwrap(), v1);
    }

    #[test]
    fn errors_say_what_and_where() {
        assert!(matches!(
            OfpMessage::decode(&[4, 0, 0]),
            Err(Error::Truncated {
                what: "header length",
                offset: 2,
                need: 2,
                have: 1
            })
        ));
        assert!(matches!(
            OfpMessage::decode(&[4, 0, 0, 4, 0, 0, 0, 0]),
            Err(Error::BadLength { len: 4, .. })
        ));
        // A FLOW_MOD whose match claims more bytes than the message has.
        let mut fm = FlowMod::add(0, 1, Match::default(), vec![])
            .into_message(1)
            .to_bytes()
            .unwrap();
        fm[50] = 0xff;
        let e = OfpMessage::decode(&fm).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Truncated {
                    what: "match fields",
                    ..
                }
            ),
            "{e}"
        );
    }
}
