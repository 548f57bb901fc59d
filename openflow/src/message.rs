//! OpenFlow 1.3 messages: the 8-byte header plus a typed body per message type, in both
//! directions. [`OfpMessage::decode`] never panics; message types (and multipart types)
//! this codec does not model decode to raw variants that re-encode byte-exact.

use bytes::{BufMut, BytesMut};

use crate::action::Action;
use crate::error::{Error, Result};
use crate::instruction::Instruction;
use crate::oxm::Match;
use crate::types::{Mac, ONF_VENDOR_ID};
use crate::wire::{
    Emit, FixedStr, Reader, pad8, patch_u16, put_fixed_str, put_zeros, read_fixed_str, wire_enum,
};

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

/// ONF extension 230 (bundles for OpenFlow 1.3), experimenter message types.
pub const ONFT_BUNDLE_CONTROL: u32 = 2300;
pub const ONFT_BUNDLE_ADD_MESSAGE: u32 = 2301;

wire_enum! {
    /// `ofp_error_msg.type`.
    pub enum ErrorType: u16 {
        HelloFailed = 0, BadRequest = 1, BadAction = 2, BadInstruction = 3, BadMatch = 4,
        FlowModFailed = 5, GroupModFailed = 6, PortModFailed = 7, TableModFailed = 8,
        QueueOpFailed = 9, SwitchConfigFailed = 10, RoleRequestFailed = 11,
        MeterModFailed = 12, TableFeaturesFailed = 13,
    }
}
wire_enum! {
    pub enum FlowModCommand: u8 { Add = 0, Modify = 1, ModifyStrict = 2, Delete = 3, DeleteStrict = 4, }
}
wire_enum! {
    pub enum GroupModCommand: u16 { Add = 0, Modify = 1, Delete = 2, }
}
wire_enum! {
    pub enum GroupType: u8 { All = 0, Select = 1, Indirect = 2, FastFailover = 3, }
}
wire_enum! {
    pub enum MeterModCommand: u16 { Add = 0, Modify = 1, Delete = 2, }
}
wire_enum! {
    pub enum PacketInReason: u8 { NoMatch = 0, Action = 1, InvalidTtl = 2, }
}
wire_enum! {
    pub enum FlowRemovedReason: u8 { IdleTimeout = 0, HardTimeout = 1, Delete = 2, GroupDelete = 3, }
}
wire_enum! {
    pub enum PortReason: u8 { Add = 0, Delete = 1, Modify = 2, }
}
wire_enum! {
    pub enum ControllerRole: u32 { NoChange = 0, Equal = 1, Master = 2, Slave = 3, }
}
wire_enum! {
    /// ONF bundle control message types.
    pub enum BundleCtrlType: u16 {
        OpenRequest = 0, OpenReply = 1, CloseRequest = 2, CloseReply = 3,
        CommitRequest = 4, CommitReply = 5, DiscardRequest = 6, DiscardReply = 7,
    }
}
wire_enum! {
    pub enum MultipartType: u16 {
        Desc = 0, Flow = 1, Aggregate = 2, Table = 3, PortStats = 4, Queue = 5, Group = 6,
        GroupDesc = 7, GroupFeatures = 8, Meter = 9, MeterConfig = 10, MeterFeatures = 11,
        TableFeatures = 12, PortDesc = 13, Experimenter = 0xffff,
    }
}

/// Flow-mod flags (`OFPFF_*`).
pub mod flow_flags {
    pub const SEND_FLOW_REM: u16 = 1;
    pub const CHECK_OVERLAP: u16 = 2;
    pub const RESET_COUNTS: u16 = 4;
    pub const NO_PKT_COUNTS: u16 = 8;
    pub const NO_BYT_COUNTS: u16 = 16;
}

/// Bundle flags.
pub mod bundle_flags {
    pub const ATOMIC: u16 = 1;
    pub const ORDERED: u16 = 2;
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

/// Error type and code: standard, or experimenter-defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Standard { err_type: ErrorType, code: u16 },
    Experimenter { exp_type: u16, experimenter: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMsg {
    pub kind: ErrorKind,
    /// Usually (the start of) the offending request.
    pub data: Vec<u8>,
}

/// OpenFlow's name for an error type/code pair (`OFPBMC_BAD_PREREQ`), as OVS prints it;
/// unnamed codes print as `OFPET<type>_CODE<code>`-style numbers.
pub fn error_name(err_type: ErrorType, code: u16) -> String {
    const HELLO: &[&str] = &["INCOMPATIBLE", "EPERM"];
    const REQ: &[&str] = &[
        "BAD_VERSION",
        "BAD_TYPE",
        "BAD_MULTIPART",
        "BAD_EXPERIMENTER",
        "BAD_EXP_TYPE",
        "EPERM",
        "BAD_LEN",
        "BUFFER_EMPTY",
        "BUFFER_UNKNOWN",
        "BAD_TABLE_ID",
        "IS_SLAVE",
        "BAD_PORT",
        "BAD_PACKET",
        "MULTIPART_BUFFER_OVERFLOW",
    ];
    const ACT: &[&str] = &[
        "BAD_TYPE",
        "BAD_LEN",
        "BAD_EXPERIMENTER",
        "BAD_EXP_TYPE",
        "BAD_OUT_PORT",
        "BAD_ARGUMENT",
        "EPERM",
        "TOO_MANY",
        "BAD_QUEUE",
        "BAD_OUT_GROUP",
        "MATCH_INCONSISTENT",
        "UNSUPPORTED_ORDER",
        "BAD_TAG",
        "BAD_SET_TYPE",
        "BAD_SET_LEN",
        "BAD_SET_ARGUMENT",
    ];
    const INST: &[&str] = &[
        "UNKNOWN_INST",
        "UNSUP_INST",
        "BAD_TABLE_ID",
        "UNSUP_METADATA",
        "UNSUP_METADATA_MASK",
        "BAD_EXPERIMENTER",
        "BAD_EXP_TYPE",
        "BAD_LEN",
        "EPERM",
    ];
    const MATCH: &[&str] = &[
        "BAD_TYPE",
        "BAD_LEN",
        "BAD_TAG",
        "BAD_DL_ADDR_MASK",
        "BAD_NW_ADDR_MASK",
        "BAD_WILDCARDS",
        "BAD_FIELD",
        "BAD_VALUE",
        "BAD_MASK",
        "BAD_PREREQ",
        "DUP_FIELD",
        "EPERM",
    ];
    const FLOW: &[&str] = &[
        "UNKNOWN",
        "TABLE_FULL",
        "BAD_TABLE_ID",
        "OVERLAP",
        "EPERM",
        "BAD_TIMEOUT",
        "BAD_COMMAND",
        "BAD_FLAGS",
    ];
    const GROUP: &[&str] = &[
        "GROUP_EXISTS",
        "INVALID_GROUP",
        "WEIGHT_UNSUPPORTED",
        "OUT_OF_GROUPS",
        "OUT_OF_BUCKETS",
        "CHAINING_UNSUPPORTED",
        "WATCH_UNSUPPORTED",
        "LOOP",
        "UNKNOWN_GROUP",
        "CHAINED_GROUP",
        "BAD_TYPE",
        "BAD_COMMAND",
        "BAD_BUCKET",
        "BAD_WATCH",
        "EPERM",
    ];
    let (prefix, names) = match err_type {
        ErrorType::HelloFailed => ("OFPHFC", HELLO),
        ErrorType::BadRequest => ("OFPBRC", REQ),
        ErrorType::BadAction => ("OFPBAC", ACT),
        ErrorType::BadInstruction => ("OFPBIC", INST),
        ErrorType::BadMatch => ("OFPBMC", MATCH),
        ErrorType::FlowModFailed => ("OFPFMFC", FLOW),
        ErrorType::GroupModFailed => ("OFPGMFC", GROUP),
        other => return format!("{other:?}(code={code})"),
    };
    match names.get(usize::from(code)) {
        Some(n) => format!("{prefix}_{n}"),
        None => format!("{err_type:?}(code={code})"),
    }
}

impl ErrorMsg {
    /// The offending message carried in `data`, when it is complete enough to decode.
    pub fn offending(&self) -> Option<OfpMessage> {
        OfpMessage::decode(&self.data).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Experimenter {
    pub experimenter: u32,
    pub exp_type: u32,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwitchFeatures {
    pub datapath_id: u64,
    pub n_buffers: u32,
    pub n_tables: u8,
    pub auxiliary_id: u8,
    pub capabilities: u32,
    pub reserved: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwitchConfig {
    pub flags: u16,
    pub miss_send_len: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    pub buffer_id: u32,
    pub total_len: u16,
    pub reason: PacketInReason,
    pub table_id: u8,
    pub cookie: u64,
    pub r#match: Match,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRemoved {
    pub cookie: u64,
    pub priority: u16,
    pub reason: FlowRemovedReason,
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub packet_count: u64,
    pub byte_count: u64,
    pub r#match: Match,
}

/// `ofp_port`: a port's description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Port {
    pub port_no: u32,
    pub hw_addr: Mac,
    pub name: FixedStr,
    pub config: u32,
    pub state: u32,
    pub curr: u32,
    pub advertised: u32,
    pub supported: u32,
    pub peer: u32,
    pub curr_speed: u32,
    pub max_speed: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    pub reason: PortReason,
    pub desc: Port,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut {
    pub buffer_id: u32,
    pub in_port: u32,
    pub actions: Vec<Action>,
    pub data: Vec<u8>,
}

/// OFPT_FLOW_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowMod {
    pub cookie: u64,
    pub cookie_mask: u64,
    pub table_id: u8,
    pub command: FlowModCommand,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub buffer_id: u32,
    pub out_port: u32,
    pub out_group: u32,
    pub flags: u16,
    pub r#match: Match,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket {
    pub weight: u16,
    pub watch_port: u32,
    pub watch_group: u32,
    pub actions: Vec<Action>,
}

/// OFPT_GROUP_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupMod {
    pub command: GroupModCommand,
    pub group_type: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMod {
    pub port_no: u32,
    pub hw_addr: Mac,
    pub config: u32,
    pub mask: u32,
    pub advertise: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableMod {
    pub table_id: u8,
    pub config: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleMsg {
    pub role: ControllerRole,
    pub generation_id: u64,
}

/// Async message masks: index 0 = master/equal, 1 = slave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AsyncConfig {
    pub packet_in_mask: [u32; 2],
    pub port_status_mask: [u32; 2],
    pub flow_removed_mask: [u32; 2],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterBand {
    pub band_type: u16,
    pub rate: u32,
    pub burst_size: u32,
    /// Type-specific tail (drop: padding; dscp_remark: prec_level + padding).
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterMod {
    pub command: MeterModCommand,
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<MeterBand>,
}

/// ONF bundle control (open/close/commit/discard and their replies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleControl {
    pub bundle_id: u32,
    pub ctrl_type: BundleCtrlType,
    pub flags: u16,
    /// Bundle properties, kept in wire form.
    pub properties: Vec<u8>,
}

/// ONF bundle add: one message to apply when the bundle commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleAdd {
    pub bundle_id: u32,
    pub flags: u16,
    pub message: Box<OfpMessage>,
    /// Padding and properties after the inner message, kept in wire form.
    pub trailer: Vec<u8>,
}

/// Multipart request (`OFPT_MULTIPART_REQUEST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartRequest {
    pub flags: u16,
    pub body: MultipartRequestBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartRequestBody {
    Desc,
    Flow(FlowStatsRequest),
    Aggregate(FlowStatsRequest),
    Table,
    PortStats {
        port_no: u32,
    },
    Group {
        group_id: u32,
    },
    GroupDesc,
    GroupFeatures,
    PortDesc,
    Raw {
        mp_type: MultipartType,
        body: Vec<u8>,
    },
}

/// Body of flow and aggregate stats requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStatsRequest {
    pub table_id: u8,
    pub out_port: u32,
    pub out_group: u32,
    pub cookie: u64,
    pub cookie_mask: u64,
    pub r#match: Match,
}

/// Multipart reply (`OFPT_MULTIPART_REPLY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartReply {
    pub flags: u16,
    pub body: MultipartReplyBody,
}

/// OFPMPF_REPLY_MORE: more replies follow.
pub const MULTIPART_MORE: u16 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartReplyBody {
    Desc(Desc),
    Flow(Vec<FlowStats>),
    Aggregate(AggregateStats),
    Table(Vec<TableStats>),
    PortStats(Vec<PortStats>),
    PortDesc(Vec<Port>),
    Group(Vec<GroupStats>),
    GroupDesc(Vec<GroupDesc>),
    GroupFeatures(GroupFeatures),
    Raw {
        mp_type: MultipartType,
        body: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Desc {
    pub mfr_desc: FixedStr,
    pub hw_desc: FixedStr,
    pub sw_desc: FixedStr,
    pub serial_num: FixedStr,
    pub dp_desc: FixedStr,
}

/// One installed flow, as a flow-stats reply describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStats {
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: u16,
    pub cookie: u64,
    pub packet_count: u64,
    pub byte_count: u64,
    pub r#match: Match,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AggregateStats {
    pub packet_count: u64,
    pub byte_count: u64,
    pub flow_count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableStats {
    pub table_id: u8,
    pub active_count: u32,
    pub lookup_count: u64,
    pub matched_count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    pub port_no: u32,
    /// rx_packets, tx_packets, rx_bytes, tx_bytes, rx_dropped, tx_dropped, rx_errors,
    /// tx_errors, rx_frame_err, rx_over_err, rx_crc_err, collisions.
    pub counters: [u64; 12],
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupStats {
    pub group_id: u32,
    pub ref_count: u32,
    pub packet_count: u64,
    pub byte_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    /// (packet_count, byte_count) per bucket.
    pub bucket_stats: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDesc {
    pub group_type: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupFeatures {
    pub types: u32,
    pub capabilities: u32,
    pub max_groups: [u32; 4],
    pub actions: [u32; 4],
}

fn expect_len(r: &Reader<'_>, n: usize, what: &'static str) -> Result<()> {
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

    fn decode_at(bytes: &[u8], base: usize, depth: usize) -> Result<(OfpMessage, usize)> {
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

fn parse_port(r: &mut Reader<'_>) -> Result<Port> {
    let port_no = r.u32("port_no")?;
    r.skip(4, "pad")?;
    let hw_addr = Mac(r.array("hw_addr")?);
    r.skip(2, "pad")?;
    let name = read_fixed_str(r, 16, "port name")?;
    Ok(Port {
        port_no,
        hw_addr,
        name,
        config: r.u32("config")?,
        state: r.u32("state")?,
        curr: r.u32("curr")?,
        advertised: r.u32("advertised")?,
        supported: r.u32("supported")?,
        peer: r.u32("peer")?,
        curr_speed: r.u32("curr_speed")?,
        max_speed: r.u32("max_speed")?,
    })
}

fn emit_port(p: &Port, buf: &mut BytesMut) {
    buf.put_u32(p.port_no);
    put_zeros(buf, 4);
    buf.put_slice(&p.hw_addr.0);
    put_zeros(buf, 2);
    put_fixed_str(buf, &p.name, 16);
    for v in [
        p.config,
        p.state,
        p.curr,
        p.advertised,
        p.supported,
        p.peer,
        p.curr_speed,
        p.max_speed,
    ] {
        buf.put_u32(v);
    }
}

fn parse_buckets(r: &mut Reader<'_>) -> Result<Vec<Bucket>> {
    let mut out = Vec::new();
    while !r.is_empty() {
        let at = r.offset();
        let len = usize::from(r.u16("bucket length")?);
        if len < 16 {
            return Err(Error::BadLength {
                what: "bucket",
                offset: at,
                len,
            });
        }
        let mut b = r.sub(len - 2, "bucket")?;
        let weight = b.u16("weight")?;
        let watch_port = b.u32("watch_port")?;
        let watch_group = b.u32("watch_group")?;
        b.skip(4, "pad")?;
        let actions = Action::parse_list(&mut b, 0)?;
        out.push(Bucket {
            weight,
            watch_port,
            watch_group,
            actions,
        });
    }
    Ok(out)
}

fn emit_buckets(buckets: &[Bucket], buf: &mut BytesMut) {
    for bk in buckets {
        let start = buf.len();
        buf.put_u16(0);
        buf.put_u16(bk.weight);
        buf.put_u32(bk.watch_port);
        buf.put_u32(bk.watch_group);
        put_zeros(buf, 4);
        for a in &bk.actions {
            a.emit(buf);
        }
        patch_u16(buf, start, buf.len() - start);
    }
}

fn parse_async(r: &mut Reader<'_>) -> Result<AsyncConfig> {
    expect_len(r, 24, "async config")?;
    let mut a = AsyncConfig::default();
    for i in 0..2 {
        a.packet_in_mask[i] = r.u32("packet_in_mask")?;
    }
    for i in 0..2 {
        a.port_status_mask[i] = r.u32("port_status_mask")?;
    }
    for i in 0..2 {
        a.flow_removed_mask[i] = r.u32("flow_removed_mask")?;
    }
    Ok(a)
}

fn parse_flow_stats_request(r: &mut Reader<'_>) -> Result<FlowStatsRequest> {
    let table_id = r.u8("table_id")?;
    r.skip(3, "pad")?;
    let out_port = r.u32("out_port")?;
    let out_group = r.u32("out_group")?;
    r.skip(4, "pad")?;
    let cookie = r.u64("cookie")?;
    let cookie_mask = r.u64("cookie_mask")?;
    let m = Match::parse(r)?;
    expect_len(r, 0, "flow stats request")?;
    Ok(FlowStatsRequest {
        table_id,
        out_port,
        out_group,
        cookie,
        cookie_mask,
        r#match: m,
    })
}

fn emit_flow_stats_request(q: &FlowStatsRequest, buf: &mut BytesMut) {
    buf.put_u8(q.table_id);
    put_zeros(buf, 3);
    buf.put_u32(q.out_port);
    buf.put_u32(q.out_group);
    put_zeros(buf, 4);
    buf.put_u64(q.cookie);
    buf.put_u64(q.cookie_mask);
    q.r#match.emit(buf);
}

impl MultipartRequest {
    /// The multipart type of the body.
    pub fn body_type(&self) -> MultipartType {
        self.body.mp_type()
    }
}

impl MultipartReply {
    /// The multipart type of the body.
    pub fn body_type(&self) -> MultipartType {
        self.body.mp_type()
    }
}

impl MultipartRequestBody {
    fn parse(mp_type: MultipartType, r: &mut Reader<'_>) -> Result<Self> {
        use MultipartType as T;
        Ok(match mp_type {
            T::Desc | T::Table | T::GroupDesc | T::GroupFeatures | T::PortDesc => {
                expect_len(r, 0, "multipart request")?;
                match mp_type {
                    T::Desc => Self::Desc,
                    T::Table => Self::Table,
                    T::GroupDesc => Self::GroupDesc,
                    T::GroupFeatures => Self::GroupFeatures,
                    _ => Self::PortDesc,
                }
            }
            T::Flow => Self::Flow(parse_flow_stats_request(r)?),
            T::Aggregate => Self::Aggregate(parse_flow_stats_request(r)?),
            T::PortStats | T::Group => {
                expect_len(r, 8, "multipart request")?;
                let v = r.u32("port/group id")?;
                if mp_type == T::PortStats {
                    Self::PortStats { port_no: v }
                } else {
                    Self::Group { group_id: v }
                }
            }
            _ => Self::Raw {
                mp_type,
                body: r.take_rest().to_vec(),
            },
        })
    }

    fn mp_type(&self) -> MultipartType {
        use MultipartType as T;
        match self {
            Self::Desc => T::Desc,
            Self::Flow(_) => T::Flow,
            Self::Aggregate(_) => T::Aggregate,
            Self::Table => T::Table,
            Self::PortStats { .. } => T::PortStats,
            Self::Group { .. } => T::Group,
            Self::GroupDesc => T::GroupDesc,
            Self::GroupFeatures => T::GroupFeatures,
            Self::PortDesc => T::PortDesc,
            Self::Raw { mp_type, .. } => *mp_type,
        }
    }

    fn emit(&self, buf: &mut BytesMut) {
        match self {
            Self::Flow(q) | Self::Aggregate(q) => emit_flow_stats_request(q, buf),
            Self::PortStats { port_no: v } | Self::Group { group_id: v } => {
                buf.put_u32(*v);
                put_zeros(buf, 4);
            }
            Self::Raw { body, .. } => buf.put_slice(body),
            _ => {}
        }
    }
}

impl MultipartReplyBody {
    fn parse(mp_type: MultipartType, r: &mut Reader<'_>) -> Result<Self> {
        use MultipartType as T;
        Ok(match mp_type {
            T::Desc => {
                expect_len(r, 1056, "desc reply")?;
                Self::Desc(Desc {
                    mfr_desc: read_fixed_str(r, 256, "mfr_desc")?,
                    hw_desc: read_fixed_str(r, 256, "hw_desc")?,
                    sw_desc: read_fixed_str(r, 256, "sw_desc")?,
                    serial_num: read_fixed_str(r, 32, "serial_num")?,
                    dp_desc: read_fixed_str(r, 256, "dp_desc")?,
                })
            }
            T::Flow => {
                let mut out = Vec::new();
                while !r.is_empty() {
                    let at = r.offset();
                    let len = usize::from(r.u16("flow stats length")?);
                    if len < 56 {
                        return Err(Error::BadLength {
                            what: "flow stats",
                            offset: at,
                            len,
                        });
                    }
                    let mut b = r.sub(len - 2, "flow stats")?;
                    let table_id = b.u8("table_id")?;
                    b.skip(1, "pad")?;
                    let duration_sec = b.u32("duration_sec")?;
                    let duration_nsec = b.u32("duration_nsec")?;
                    let priority = b.u16("priority")?;
                    let idle_timeout = b.u16("idle_timeout")?;
                    let hard_timeout = b.u16("hard_timeout")?;
                    let flags = b.u16("flags")?;
                    b.skip(4, "pad")?;
                    let cookie = b.u64("cookie")?;
                    let packet_count = b.u64("packet_count")?;
                    let byte_count = b.u64("byte_count")?;
                    let m = Match::parse(&mut b)?;
                    let instructions = Instruction::parse_list(&mut b)?;
                    out.push(FlowStats {
                        table_id,
                        duration_sec,
                        duration_nsec,
                        priority,
                        idle_timeout,
                        hard_timeout,
                        flags,
                        cookie,
                        packet_count,
                        byte_count,
                        r#match: m,
                        instructions,
                    });
                }
                Self::Flow(out)
            }
            T::Aggregate => {
                expect_len(r, 24, "aggregate reply")?;
                let a = AggregateStats {
                    packet_count: r.u64("packet_count")?,
                    byte_count: r.u64("byte_count")?,
                    flow_count: r.u32("flow_count")?,
                };
                Self::Aggregate(a)
            }
            T::Table => {
                if !r.remaining().is_multiple_of(24) {
                    return Err(r.bad_len("table stats", r.remaining()));
                }
                let mut out = Vec::new();
                while !r.is_empty() {
                    let table_id = r.u8("table_id")?;
                    r.skip(3, "pad")?;
                    out.push(TableStats {
                        table_id,
                        active_count: r.u32("active_count")?,
                        lookup_count: r.u64("lookup_count")?,
                        matched_count: r.u64("matched_count")?,
                    });
                }
                Self::Table(out)
            }
            T::PortStats => {
                if !r.remaining().is_multiple_of(112) {
                    return Err(r.bad_len("port stats", r.remaining()));
                }
                let mut out = Vec::new();
                while !r.is_empty() {
                    let port_no = r.u32("port_no")?;
                    r.skip(4, "pad")?;
                    let mut counters = [0u64; 12];
                    for c in &mut counters {
                        *c = r.u64("port counter")?;
                    }
                    out.push(PortStats {
                        port_no,
                        counters,
                        duration_sec: r.u32("duration_sec")?,
                        duration_nsec: r.u32("duration_nsec")?,
                    });
                }
                Self::PortStats(out)
            }
            T::PortDesc => {
                if !r.remaining().is_multiple_of(64) {
                    return Err(r.bad_len("port desc", r.remaining()));
                }
                let mut out = Vec::new();
                while !r.is_empty() {
                    out.push(parse_port(r)?);
                }
                Self::PortDesc(out)
            }
            T::Group => {
                let mut out = Vec::new();
                while !r.is_empty() {
                    let at = r.offset();
                    let len = usize::from(r.u16("group stats length")?);
                    if len < 40 || (len - 40) % 16 != 0 {
                        return Err(Error::BadLength {
                            what: "group stats",
                            offset: at,
                            len,
                        });
                    }
                    let mut b = r.sub(len - 2, "group stats")?;
                    b.skip(2, "pad")?;
                    let group_id = b.u32("group_id")?;
                    let ref_count = b.u32("ref_count")?;
                    b.skip(4, "pad")?;
                    let packet_count = b.u64("packet_count")?;
                    let byte_count = b.u64("byte_count")?;
                    let duration_sec = b.u32("duration_sec")?;
                    let duration_nsec = b.u32("duration_nsec")?;
                    let mut bucket_stats = Vec::new();
                    while !b.is_empty() {
                        bucket_stats
                            .push((b.u64("bucket packet_count")?, b.u64("bucket byte_count")?));
                    }
                    out.push(GroupStats {
                        group_id,
                        ref_count,
                        packet_count,
                        byte_count,
                        duration_sec,
                        duration_nsec,
                        bucket_stats,
                    });
                }
                Self::Group(out)
            }
            T::GroupDesc => {
                let mut out = Vec::new();
                while !r.is_empty() {
                    let at = r.offset();
                    let len = usize::from(r.u16("group desc length")?);
                    if len < 8 {
                        return Err(Error::BadLength {
                            what: "group desc",
                            offset: at,
                            len,
                        });
                    }
                    let mut b = r.sub(len - 2, "group desc")?;
                    let group_type = GroupType::from(b.u8("group type")?);
                    b.skip(1, "pad")?;
                    let group_id = b.u32("group_id")?;
                    let buckets = parse_buckets(&mut b)?;
                    out.push(GroupDesc {
                        group_type,
                        group_id,
                        buckets,
                    });
                }
                Self::GroupDesc(out)
            }
            T::GroupFeatures => {
                expect_len(r, 40, "group features")?;
                let types = r.u32("types")?;
                let capabilities = r.u32("capabilities")?;
                let mut max_groups = [0u32; 4];
                for v in &mut max_groups {
                    *v = r.u32("max_groups")?;
                }
                let mut actions = [0u32; 4];
                for v in &mut actions {
                    *v = r.u32("actions")?;
                }
                Self::GroupFeatures(GroupFeatures {
                    types,
                    capabilities,
                    max_groups,
                    actions,
                })
            }
            _ => Self::Raw {
                mp_type,
                body: r.take_rest().to_vec(),
            },
        })
    }

    fn mp_type(&self) -> MultipartType {
        use MultipartType as T;
        match self {
            Self::Desc(_) => T::Desc,
            Self::Flow(_) => T::Flow,
            Self::Aggregate(_) => T::Aggregate,
            Self::Table(_) => T::Table,
            Self::PortStats(_) => T::PortStats,
            Self::PortDesc(_) => T::PortDesc,
            Self::Group(_) => T::Group,
            Self::GroupDesc(_) => T::GroupDesc,
            Self::GroupFeatures(_) => T::GroupFeatures,
            Self::Raw { mp_type, .. } => *mp_type,
        }
    }

    fn emit(&self, buf: &mut BytesMut) {
        match self {
            Self::Desc(d) => {
                put_fixed_str(buf, &d.mfr_desc, 256);
                put_fixed_str(buf, &d.hw_desc, 256);
                put_fixed_str(buf, &d.sw_desc, 256);
                put_fixed_str(buf, &d.serial_num, 32);
                put_fixed_str(buf, &d.dp_desc, 256);
            }
            Self::Flow(v) => {
                for s in v {
                    let start = buf.len();
                    buf.put_u16(0);
                    buf.put_u8(s.table_id);
                    buf.put_u8(0);
                    buf.put_u32(s.duration_sec);
                    buf.put_u32(s.duration_nsec);
                    buf.put_u16(s.priority);
                    buf.put_u16(s.idle_timeout);
                    buf.put_u16(s.hard_timeout);
                    buf.put_u16(s.flags);
                    put_zeros(buf, 4);
                    buf.put_u64(s.cookie);
                    buf.put_u64(s.packet_count);
                    buf.put_u64(s.byte_count);
                    s.r#match.emit(buf);
                    for i in &s.instructions {
                        i.emit(buf);
                    }
                    patch_u16(buf, start, buf.len() - start);
                }
            }
            Self::Aggregate(a) => {
                buf.put_u64(a.packet_count);
                buf.put_u64(a.byte_count);
                buf.put_u32(a.flow_count);
                put_zeros(buf, 4);
            }
            Self::Table(v) => {
                for t in v {
                    buf.put_u8(t.table_id);
                    put_zeros(buf, 3);
                    buf.put_u32(t.active_count);
                    buf.put_u64(t.lookup_count);
                    buf.put_u64(t.matched_count);
                }
            }
            Self::PortStats(v) => {
                for p in v {
                    buf.put_u32(p.port_no);
                    put_zeros(buf, 4);
                    for c in p.counters {
                        buf.put_u64(c);
                    }
                    buf.put_u32(p.duration_sec);
                    buf.put_u32(p.duration_nsec);
                }
            }
            Self::PortDesc(v) => {
                for p in v {
                    emit_port(p, buf);
                }
            }
            Self::Group(v) => {
                for g in v {
                    let start = buf.len();
                    buf.put_u16(0);
                    put_zeros(buf, 2);
                    buf.put_u32(g.group_id);
                    buf.put_u32(g.ref_count);
                    put_zeros(buf, 4);
                    buf.put_u64(g.packet_count);
                    buf.put_u64(g.byte_count);
                    buf.put_u32(g.duration_sec);
                    buf.put_u32(g.duration_nsec);
                    for (p, b) in &g.bucket_stats {
                        buf.put_u64(*p);
                        buf.put_u64(*b);
                    }
                    patch_u16(buf, start, buf.len() - start);
                }
            }
            Self::GroupDesc(v) => {
                for g in v {
                    let start = buf.len();
                    buf.put_u16(0);
                    buf.put_u8(g.group_type.into());
                    buf.put_u8(0);
                    buf.put_u32(g.group_id);
                    emit_buckets(&g.buckets, buf);
                    patch_u16(buf, start, buf.len() - start);
                }
            }
            Self::GroupFeatures(g) => {
                buf.put_u32(g.types);
                buf.put_u32(g.capabilities);
                for v in g.max_groups {
                    buf.put_u32(v);
                }
                for v in g.actions {
                    buf.put_u32(v);
                }
            }
            Self::Raw { body, .. } => buf.put_slice(body),
        }
    }
}

impl Message {
    fn parse_body(msg_type: u8, r: &mut Reader<'_>, depth: usize) -> Result<Message> {
        use ofpt::*;
        let m = match msg_type {
            HELLO => {
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
                Message::Hello(Hello { elements })
            }
            ERROR => {
                let t = r.u16("error type")?;
                let kind = if t == 0xffff {
                    let exp_type = r.u16("error exp_type")?;
                    ErrorKind::Experimenter {
                        exp_type,
                        experimenter: r.u32("error experimenter")?,
                    }
                } else {
                    ErrorKind::Standard {
                        err_type: ErrorType::from(t),
                        code: r.u16("error code")?,
                    }
                };
                Message::Error(ErrorMsg {
                    kind,
                    data: r.take_rest().to_vec(),
                })
            }
            ECHO_REQUEST => Message::EchoRequest(r.take_rest().to_vec()),
            ECHO_REPLY => Message::EchoReply(r.take_rest().to_vec()),
            EXPERIMENTER => {
                let experimenter = r.u32("experimenter id")?;
                let exp_type = r.u32("experimenter type")?;
                if experimenter == ONF_VENDOR_ID && exp_type == ONFT_BUNDLE_CONTROL {
                    let bundle_id = r.u32("bundle_id")?;
                    let ctrl_type = BundleCtrlType::from(r.u16("bundle ctrl type")?);
                    let flags = r.u16("bundle flags")?;
                    Message::BundleControl(BundleControl {
                        bundle_id,
                        ctrl_type,
                        flags,
                        properties: r.take_rest().to_vec(),
                    })
                } else if experimenter == ONF_VENDOR_ID && exp_type == ONFT_BUNDLE_ADD_MESSAGE {
                    if depth >= MAX_MESSAGE_NESTING {
                        return Err(r.bad_value("bundle nesting depth", depth as u64));
                    }
                    let bundle_id = r.u32("bundle_id")?;
                    r.skip(2, "pad")?;
                    let flags = r.u16("bundle flags")?;
                    let base = r.offset();
                    let (inner, used) = OfpMessage::decode_at(r.rest(), base, depth + 1)?;
                    r.skip(used, "bundled message")?;
                    Message::BundleAdd(BundleAdd {
                        bundle_id,
                        flags,
                        message: Box::new(inner),
                        trailer: r.take_rest().to_vec(),
                    })
                } else {
                    Message::Experimenter(Experimenter {
                        experimenter,
                        exp_type,
                        data: r.take_rest().to_vec(),
                    })
                }
            }
            FEATURES_REQUEST => {
                expect_len(r, 0, "features request")?;
                Message::FeaturesRequest
            }
            FEATURES_REPLY => {
                expect_len(r, 24, "features reply")?;
                let datapath_id = r.u64("datapath_id")?;
                let n_buffers = r.u32("n_buffers")?;
                let n_tables = r.u8("n_tables")?;
                let auxiliary_id = r.u8("auxiliary_id")?;
                r.skip(2, "pad")?;
                Message::FeaturesReply(SwitchFeatures {
                    datapath_id,
                    n_buffers,
                    n_tables,
                    auxiliary_id,
                    capabilities: r.u32("capabilities")?,
                    reserved: r.u32("reserved")?,
                })
            }
            GET_CONFIG_REQUEST => {
                expect_len(r, 0, "get config request")?;
                Message::GetConfigRequest
            }
            GET_CONFIG_REPLY | SET_CONFIG => {
                expect_len(r, 4, "switch config")?;
                let c = SwitchConfig {
                    flags: r.u16("flags")?,
                    miss_send_len: r.u16("miss_send_len")?,
                };
                if msg_type == SET_CONFIG {
                    Message::SetConfig(c)
                } else {
                    Message::GetConfigReply(c)
                }
            }
            PACKET_IN => {
                let buffer_id = r.u32("buffer_id")?;
                let total_len = r.u16("total_len")?;
                let reason = PacketInReason::from(r.u8("reason")?);
                let table_id = r.u8("table_id")?;
                let cookie = r.u64("cookie")?;
                let m = Match::parse(r)?;
                r.skip(2, "pad")?;
                Message::PacketIn(PacketIn {
                    buffer_id,
                    total_len,
                    reason,
                    table_id,
                    cookie,
                    r#match: m,
                    data: r.take_rest().to_vec(),
                })
            }
            FLOW_REMOVED => {
                let cookie = r.u64("cookie")?;
                let priority = r.u16("priority")?;
                let reason = FlowRemovedReason::from(r.u8("reason")?);
                let table_id = r.u8("table_id")?;
                let duration_sec = r.u32("duration_sec")?;
                let duration_nsec = r.u32("duration_nsec")?;
                let idle_timeout = r.u16("idle_timeout")?;
                let hard_timeout = r.u16("hard_timeout")?;
                let packet_count = r.u64("packet_count")?;
                let byte_count = r.u64("byte_count")?;
                let m = Match::parse(r)?;
                expect_len(r, 0, "flow removed")?;
                Message::FlowRemoved(FlowRemoved {
                    cookie,
                    priority,
                    reason,
                    table_id,
                    duration_sec,
                    duration_nsec,
                    idle_timeout,
                    hard_timeout,
                    packet_count,
                    byte_count,
                    r#match: m,
                })
            }
            PORT_STATUS => {
                expect_len(r, 72, "port status")?;
                let reason = PortReason::from(r.u8("reason")?);
                r.skip(7, "pad")?;
                Message::PortStatus(PortStatus {
                    reason,
                    desc: parse_port(r)?,
                })
            }
            PACKET_OUT => {
                let buffer_id = r.u32("buffer_id")?;
                let in_port = r.u32("in_port")?;
                let actions_len = usize::from(r.u16("actions_len")?);
                r.skip(6, "pad")?;
                let mut ab = r.sub(actions_len, "packet-out actions")?;
                let actions = Action::parse_list(&mut ab, 0)?;
                Message::PacketOut(PacketOut {
                    buffer_id,
                    in_port,
                    actions,
                    data: r.take_rest().to_vec(),
                })
            }
            FLOW_MOD => {
                let cookie = r.u64("cookie")?;
                let cookie_mask = r.u64("cookie_mask")?;
                let table_id = r.u8("table_id")?;
                let command = FlowModCommand::from(r.u8("command")?);
                let idle_timeout = r.u16("idle_timeout")?;
                let hard_timeout = r.u16("hard_timeout")?;
                let priority = r.u16("priority")?;
                let buffer_id = r.u32("buffer_id")?;
                let out_port = r.u32("out_port")?;
                let out_group = r.u32("out_group")?;
                let flags = r.u16("flags")?;
                r.skip(2, "pad")?;
                let m = Match::parse(r)?;
                let instructions = Instruction::parse_list(r)?;
                Message::FlowMod(FlowMod {
                    cookie,
                    cookie_mask,
                    table_id,
                    command,
                    idle_timeout,
                    hard_timeout,
                    priority,
                    buffer_id,
                    out_port,
                    out_group,
                    flags,
                    r#match: m,
                    instructions,
                })
            }
            GROUP_MOD => {
                let command = GroupModCommand::from(r.u16("command")?);
                let group_type = GroupType::from(r.u8("group type")?);
                r.skip(1, "pad")?;
                let group_id = r.u32("group_id")?;
                Message::GroupMod(GroupMod {
                    command,
                    group_type,
                    group_id,
                    buckets: parse_buckets(r)?,
                })
            }
            PORT_MOD => {
                expect_len(r, 32, "port mod")?;
                let port_no = r.u32("port_no")?;
                r.skip(4, "pad")?;
                let hw_addr = Mac(r.array("hw_addr")?);
                r.skip(2, "pad")?;
                let config = r.u32("config")?;
                let mask = r.u32("mask")?;
                let advertise = r.u32("advertise")?;
                Message::PortMod(PortMod {
                    port_no,
                    hw_addr,
                    config,
                    mask,
                    advertise,
                })
            }
            TABLE_MOD => {
                expect_len(r, 8, "table mod")?;
                let table_id = r.u8("table_id")?;
                r.skip(3, "pad")?;
                Message::TableMod(TableMod {
                    table_id,
                    config: r.u32("config")?,
                })
            }
            MULTIPART_REQUEST | MULTIPART_REPLY => {
                let mp_type = MultipartType::from(r.u16("multipart type")?);
                let flags = r.u16("multipart flags")?;
                r.skip(4, "pad")?;
                if msg_type == MULTIPART_REQUEST {
                    Message::MultipartRequest(MultipartRequest {
                        flags,
                        body: MultipartRequestBody::parse(mp_type, r)?,
                    })
                } else {
                    Message::MultipartReply(MultipartReply {
                        flags,
                        body: MultipartReplyBody::parse(mp_type, r)?,
                    })
                }
            }
            BARRIER_REQUEST | BARRIER_REPLY | GET_ASYNC_REQUEST => {
                expect_len(r, 0, "empty message")?;
                match msg_type {
                    BARRIER_REQUEST => Message::BarrierRequest,
                    BARRIER_REPLY => Message::BarrierReply,
                    _ => Message::GetAsyncRequest,
                }
            }
            ROLE_REQUEST | ROLE_REPLY => {
                expect_len(r, 16, "role message")?;
                let role = ControllerRole::from(r.u32("role")?);
                r.skip(4, "pad")?;
                let m = RoleMsg {
                    role,
                    generation_id: r.u64("generation_id")?,
                };
                if msg_type == ROLE_REQUEST {
                    Message::RoleRequest(m)
                } else {
                    Message::RoleReply(m)
                }
            }
            GET_ASYNC_REPLY => Message::GetAsyncReply(parse_async(r)?),
            SET_ASYNC => Message::SetAsync(parse_async(r)?),
            METER_MOD => {
                let command = MeterModCommand::from(r.u16("command")?);
                let flags = r.u16("flags")?;
                let meter_id = r.u32("meter_id")?;
                let mut bands = Vec::new();
                while !r.is_empty() {
                    let at = r.offset();
                    let band_type = r.u16("band type")?;
                    let len = usize::from(r.u16("band length")?);
                    if len < 12 {
                        return Err(Error::BadLength {
                            what: "meter band",
                            offset: at,
                            len,
                        });
                    }
                    let mut b = r.sub(len - 4, "meter band")?;
                    let rate = b.u32("rate")?;
                    let burst_size = b.u32("burst_size")?;
                    bands.push(MeterBand {
                        band_type,
                        rate,
                        burst_size,
                        data: b.take_rest().to_vec(),
                    });
                }
                Message::MeterMod(MeterMod {
                    command,
                    flags,
                    meter_id,
                    bands,
                })
            }
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
            Message::Hello(h) => {
                for e in &h.elements {
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
            Message::Error(e) => {
                match e.kind {
                    ErrorKind::Standard { err_type, code } => {
                        buf.put_u16(err_type.into());
                        buf.put_u16(code);
                    }
                    ErrorKind::Experimenter {
                        exp_type,
                        experimenter,
                    } => {
                        buf.put_u16(0xffff);
                        buf.put_u16(exp_type);
                        buf.put_u32(experimenter);
                    }
                }
                buf.put_slice(&e.data);
            }
            Message::EchoRequest(d) | Message::EchoReply(d) => buf.put_slice(d),
            Message::Experimenter(e) => {
                buf.put_u32(e.experimenter);
                buf.put_u32(e.exp_type);
                buf.put_slice(&e.data);
            }
            Message::BundleControl(b) => {
                buf.put_u32(ONF_VENDOR_ID);
                buf.put_u32(ONFT_BUNDLE_CONTROL);
                buf.put_u32(b.bundle_id);
                buf.put_u16(b.ctrl_type.into());
                buf.put_u16(b.flags);
                buf.put_slice(&b.properties);
            }
            Message::BundleAdd(b) => {
                buf.put_u32(ONF_VENDOR_ID);
                buf.put_u32(ONFT_BUNDLE_ADD_MESSAGE);
                buf.put_u32(b.bundle_id);
                put_zeros(buf, 2);
                buf.put_u16(b.flags);
                // An inner message too long to encode leaves nothing; the outer length
                // check then still applies to what was written.
                let _ = b.message.encode(buf);
                buf.put_slice(&b.trailer);
            }
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply
            | Message::GetAsyncRequest => {}
            Message::FeaturesReply(f) => {
                buf.put_u64(f.datapath_id);
                buf.put_u32(f.n_buffers);
                buf.put_u8(f.n_tables);
                buf.put_u8(f.auxiliary_id);
                put_zeros(buf, 2);
                buf.put_u32(f.capabilities);
                buf.put_u32(f.reserved);
            }
            Message::GetConfigReply(c) | Message::SetConfig(c) => {
                buf.put_u16(c.flags);
                buf.put_u16(c.miss_send_len);
            }
            Message::PacketIn(p) => {
                buf.put_u32(p.buffer_id);
                buf.put_u16(p.total_len);
                buf.put_u8(p.reason.into());
                buf.put_u8(p.table_id);
                buf.put_u64(p.cookie);
                p.r#match.emit(buf);
                put_zeros(buf, 2);
                buf.put_slice(&p.data);
            }
            Message::FlowRemoved(f) => {
                buf.put_u64(f.cookie);
                buf.put_u16(f.priority);
                buf.put_u8(f.reason.into());
                buf.put_u8(f.table_id);
                buf.put_u32(f.duration_sec);
                buf.put_u32(f.duration_nsec);
                buf.put_u16(f.idle_timeout);
                buf.put_u16(f.hard_timeout);
                buf.put_u64(f.packet_count);
                buf.put_u64(f.byte_count);
                f.r#match.emit(buf);
            }
            Message::PortStatus(p) => {
                buf.put_u8(p.reason.into());
                put_zeros(buf, 7);
                emit_port(&p.desc, buf);
            }
            Message::PacketOut(p) => {
                buf.put_u32(p.buffer_id);
                buf.put_u32(p.in_port);
                let len_at = buf.len();
                buf.put_u16(0);
                put_zeros(buf, 6);
                let start = buf.len();
                for a in &p.actions {
                    a.emit(buf);
                }
                patch_u16(buf, len_at, buf.len() - start);
                buf.put_slice(&p.data);
            }
            Message::FlowMod(f) => {
                buf.put_u64(f.cookie);
                buf.put_u64(f.cookie_mask);
                buf.put_u8(f.table_id);
                buf.put_u8(f.command.into());
                buf.put_u16(f.idle_timeout);
                buf.put_u16(f.hard_timeout);
                buf.put_u16(f.priority);
                buf.put_u32(f.buffer_id);
                buf.put_u32(f.out_port);
                buf.put_u32(f.out_group);
                buf.put_u16(f.flags);
                put_zeros(buf, 2);
                f.r#match.emit(buf);
                for i in &f.instructions {
                    i.emit(buf);
                }
            }
            Message::GroupMod(g) => {
                buf.put_u16(g.command.into());
                buf.put_u8(g.group_type.into());
                buf.put_u8(0);
                buf.put_u32(g.group_id);
                emit_buckets(&g.buckets, buf);
            }
            Message::PortMod(p) => {
                buf.put_u32(p.port_no);
                put_zeros(buf, 4);
                buf.put_slice(&p.hw_addr.0);
                put_zeros(buf, 2);
                buf.put_u32(p.config);
                buf.put_u32(p.mask);
                buf.put_u32(p.advertise);
                put_zeros(buf, 4);
            }
            Message::TableMod(t) => {
                buf.put_u8(t.table_id);
                put_zeros(buf, 3);
                buf.put_u32(t.config);
            }
            Message::MultipartRequest(m) => {
                buf.put_u16(m.body.mp_type().into());
                buf.put_u16(m.flags);
                put_zeros(buf, 4);
                m.body.emit(buf);
            }
            Message::MultipartReply(m) => {
                buf.put_u16(m.body.mp_type().into());
                buf.put_u16(m.flags);
                put_zeros(buf, 4);
                m.body.emit(buf);
            }
            Message::RoleRequest(r) | Message::RoleReply(r) => {
                buf.put_u32(r.role.into());
                put_zeros(buf, 4);
                buf.put_u64(r.generation_id);
            }
            Message::GetAsyncReply(a) | Message::SetAsync(a) => {
                for v in a
                    .packet_in_mask
                    .iter()
                    .chain(&a.port_status_mask)
                    .chain(&a.flow_removed_mask)
                {
                    buf.put_u32(*v);
                }
            }
            Message::MeterMod(m) => {
                buf.put_u16(m.command.into());
                buf.put_u16(m.flags);
                buf.put_u32(m.meter_id);
                for b in &m.bands {
                    let start = buf.len();
                    buf.put_u16(b.band_type);
                    buf.put_u16(0);
                    buf.put_u32(b.rate);
                    buf.put_u32(b.burst_size);
                    buf.put_slice(&b.data);
                    patch_u16(buf, start + 2, buf.len() - start);
                }
            }
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
    use crate::oxm::Field;
    use crate::types::{NO_BUFFER, port};

    /// `bytes` decodes to `expected` and `expected` encodes to `bytes`.
    fn check(bytes: &[u8], expected: OfpMessage) {
        let got = OfpMessage::decode(bytes).unwrap();
        assert_eq!(got, expected);
        assert_eq!(expected.to_bytes().unwrap(), bytes);
    }

    const XID: u32 = 0x1234_5678;
    const XID_BYTES: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

    fn msg(body: Message) -> OfpMessage {
        OfpMessage::new(XID, body)
    }

    fn with_header(t: u8, body: &[u8]) -> Vec<u8> {
        let len = (8 + body.len()) as u16;
        let mut v = vec![4, t, (len >> 8) as u8, len as u8];
        v.extend_from_slice(&XID_BYTES);
        v.extend_from_slice(body);
        v
    }

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

    #[test]
    fn error_with_offending_message() {
        let body = [
            0x00, 0x05, // OFPET_FLOW_MOD_FAILED
            0x00, 0x01, // code 1 (table full)
            0x04, 0x14, 0x00, 0x08, 0x12, 0x34, 0x56, 0x78, // the offending BARRIER_REQUEST
        ];
        let m = msg(Message::Error(ErrorMsg {
            kind: ErrorKind::Standard {
                err_type: ErrorType::FlowModFailed,
                code: 1,
            },
            data: body[4..].to_vec(),
        }));
        check(&with_header(ofpt::ERROR, &body), m.clone());
        let Message::Error(e) = m.body else {
            unreachable!()
        };
        assert_eq!(e.offending(), Some(msg(Message::BarrierRequest)));
    }

    #[test]
    fn echo_and_experimenter() {
        check(
            &with_header(ofpt::ECHO_REQUEST, &[0xde, 0xad, 0xbe, 0xef]),
            msg(Message::EchoRequest(vec![0xde, 0xad, 0xbe, 0xef])),
        );
        check(
            &with_header(ofpt::ECHO_REPLY, &[]),
            msg(Message::EchoReply(vec![])),
        );
        let body = [
            0x00, 0x00, 0x23, 0x20, // experimenter: Nicira
            0x00, 0x00, 0x00, 0x0a, // exp_type 10
            0x01, 0x02, 0x03, 0x04, // data
        ];
        check(
            &with_header(ofpt::EXPERIMENTER, &body),
            msg(Message::Experimenter(Experimenter {
                experimenter: 0x2320,
                exp_type: 10,
                data: vec![1, 2, 3, 4],
            })),
        );
    }

    #[test]
    fn features_and_config() {
        check(
            &with_header(ofpt::FEATURES_REQUEST, &[]),
            msg(Message::FeaturesRequest),
        );
        let body = [
            0, 0, 0, 0, 0, 0, 0, 0x01, // datapath_id 1
            0x00, 0x00, 0x01, 0x00, // n_buffers 256
            0xfe, // n_tables 254
            0x00, // auxiliary_id
            0x00, 0x00, // pad
            0x00, 0x00, 0x00, 0x4f, // capabilities
            0x00, 0x00, 0x00, 0x00, // reserved
        ];
        check(
            &with_header(ofpt::FEATURES_REPLY, &body),
            msg(Message::FeaturesReply(SwitchFeatures {
                datapath_id: 1,
                n_buffers: 256,
                n_tables: 254,
                auxiliary_id: 0,
                capabilities: 0x4f,
                reserved: 0,
            })),
        );
        check(
            &with_header(ofpt::GET_CONFIG_REQUEST, &[]),
            msg(Message::GetConfigRequest),
        );
        let cfg = [
            0x00, 0x00, /* flags */
            0xff, 0xe5, /* miss_send_len */
        ];
        let c = SwitchConfig {
            flags: 0,
            miss_send_len: 0xffe5,
        };
        check(
            &with_header(ofpt::SET_CONFIG, &cfg),
            msg(Message::SetConfig(c)),
        );
        check(
            &with_header(ofpt::GET_CONFIG_REPLY, &cfg),
            msg(Message::GetConfigReply(c)),
        );
    }

    const IN_PORT_3_MATCH: [u8; 16] = [
        0x00, 0x01, 0x00, 0x0c, // OXM match, len 12
        0x80, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x03, // in_port=3
        0x00, 0x00, 0x00, 0x00, // pad to 8
    ];

    #[test]
    fn packet_in() {
        let mut body = vec![
            0xff, 0xff, 0xff, 0xff, // buffer_id: none
            0x00, 0x04, // total_len 4
            0x01, // reason: action
            0x1e, // table 30
            0, 0, 0, 0, 0, 0, 0, 0x05, // cookie 5
        ];
        body.extend_from_slice(&IN_PORT_3_MATCH);
        body.extend_from_slice(&[
            0, 0, /* pad */
            0xaa, 0xbb, 0xcc, 0xdd, /* packet */
        ]);
        check(
            &with_header(ofpt::PACKET_IN, &body),
            msg(Message::PacketIn(PacketIn {
                buffer_id: NO_BUFFER,
                total_len: 4,
                reason: PacketInReason::Action,
                table_id: 30,
                cookie: 5,
                r#match: Match::new(vec![Field::InPort(3, None)]),
                data: vec![0xaa, 0xbb, 0xcc, 0xdd],
            })),
        );
    }

    #[test]
    fn packet_out() {
        let body = [
            0xff, 0xff, 0xff, 0xff, // buffer_id: none
            0xff, 0xff, 0xff, 0xfd, // in_port CONTROLLER
            0x00, 0x10, // actions_len 16
            0, 0, 0, 0, 0, 0, // pad
            0x00, 0x00, 0x00, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, // output:1
            0x01, 0x02, // packet
        ];
        check(
            &with_header(ofpt::PACKET_OUT, &body),
            msg(Message::PacketOut(PacketOut {
                buffer_id: NO_BUFFER,
                in_port: port::CONTROLLER,
                actions: vec![Action::output(1)],
                data: vec![1, 2],
            })),
        );
    }

    #[test]
    fn flow_removed() {
        let mut body = vec![
            0, 0, 0, 0, 0, 0, 0, 0x05, // cookie
            0x00, 0x64, // priority 100
            0x02, // reason: delete
            0x1e, // table 30
            0x00, 0x00, 0x00, 0x0a, // duration_sec
            0x00, 0x00, 0x00, 0x00, // duration_nsec
            0x00, 0x00, // idle_timeout
            0x00, 0x00, // hard_timeout
            0, 0, 0, 0, 0, 0, 0, 0x07, // packet_count
            0, 0, 0, 0, 0, 0, 0x02, 0x00, // byte_count
        ];
        body.extend_from_slice(&IN_PORT_3_MATCH);
        check(
            &with_header(ofpt::FLOW_REMOVED, &body),
            msg(Message::FlowRemoved(FlowRemoved {
                cookie: 5,
                priority: 100,
                reason: FlowRemovedReason::Delete,
                table_id: 30,
                duration_sec: 10,
                duration_nsec: 0,
                idle_timeout: 0,
                hard_timeout: 0,
                packet_count: 7,
                byte_count: 512,
                r#match: Match::new(vec![Field::InPort(3, None)]),
            })),
        );
    }

    #[test]
    fn port_status() {
        let mut body = vec![
            0x00, // reason: add
            0, 0, 0, 0, 0, 0, 0, // pad
            0x00, 0x00, 0x00, 0x03, // port_no 3
            0, 0, 0, 0, // pad
            0x02, 0, 0, 0, 0, 0x03, // hw_addr
            0, 0, // pad
        ];
        body.extend_from_slice(b"vm1\0\0\0\0\0\0\0\0\0\0\0\0\0"); // name[16]
        body.extend_from_slice(&[
            0, 0, 0, 0, // config
            0, 0, 0, 4, // state: live
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, // curr, advertised, supported, peer
            0, 0, 0x27, 0x10, // curr_speed 10000
            0, 0, 0, 0, // max_speed
        ]);
        check(
            &with_header(ofpt::PORT_STATUS, &body),
            msg(Message::PortStatus(PortStatus {
                reason: PortReason::Add,
                desc: Port {
                    port_no: 3,
                    hw_addr: Mac([2, 0, 0, 0, 0, 3]),
                    name: "vm1".into(),
                    state: 4,
                    curr_speed: 10000,
                    ..Port::default()
                },
            })),
        );
    }

    #[test]
    fn flow_mod_as_ovs_ofctl_sends_it() {
        // ovs-ofctl -O OpenFlow13 add-flow ... 'table=30,priority=100,metadata=0x1389,
        //   dl_dst=02:00:00:00:00:01,cookie=0x5 actions=set_field:0x1389->tun_id,output:3'
        let bytes = [
            0x04, 0x0e, 0x00, 0x78, 0x00, 0x00, 0x00,
            0x02, // header: FLOW_MOD, len 120, xid 2
            0, 0, 0, 0, 0, 0, 0, 0x05, // cookie 5
            0, 0, 0, 0, 0, 0, 0, 0,    // cookie_mask
            0x1e, // table 30
            0x00, // command ADD
            0x00, 0x00, 0x00, 0x00, // idle, hard timeout
            0x00, 0x64, // priority 100
            0xff, 0xff, 0xff, 0xff, // buffer_id none
            0xff, 0xff, 0xff, 0xff, // out_port ANY
            0xff, 0xff, 0xff, 0xff, // out_group ANY
            0x00, 0x00, 0x00, 0x00, // flags, pad
            0x00, 0x01, 0x00, 0x1a, // match OXM, len 26
            0x80, 0x00, 0x06, 0x06, 0x02, 0, 0, 0, 0, 0x01, // eth_dst
            0x80, 0x00, 0x04, 0x08, 0, 0, 0, 0, 0, 0, 0x13, 0x89, // metadata
            0, 0, 0, 0, 0, 0, // pad to 32
            0x00, 0x04, 0x00, 0x28, 0, 0, 0, 0, // APPLY_ACTIONS, len 40
            0x00, 0x19, 0x00, 0x10, 0x80, 0x00, 0x4c, 0x08, 0, 0, 0, 0, 0, 0, 0x13,
            0x89, // set_field tun_id
            0x00, 0x00, 0x00, 0x10, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, // output:3
        ];
        let fm = FlowMod::add(
            30,
            100,
            Match::new(vec![
                Field::EthDst(Mac([2, 0, 0, 0, 0, 1]), None),
                Field::Metadata(0x1389, None),
            ]),
            vec![Instruction::ApplyActions(vec![
                Action::SetField(Field::TunnelId(0x1389, None)),
                Action::output(3),
            ])],
        )
        .with_cookie(5);
        check(&bytes, fm.clone().into_message(2));
        assert_eq!(
            fm.to_string(),
            "cookie=0x5, table=30, priority=100,metadata=0x1389,dl_dst=02:00:00:00:00:01 actions=set_field:0x1389->tun_id,output:3"
        );
    }

    #[test]
    fn group_mod_port_mod_table_mod() {
        let body = [
            0x00, 0x00, // command ADD
            0x00, // type ALL
            0x00, // pad
            0x00, 0x00, 0x00, 0x05, // group 5
            0x00, 0x20, // bucket len 32
            0x00, 0x00, // weight
            0xff, 0xff, 0xff, 0xff, // watch_port ANY
            0xff, 0xff, 0xff, 0xff, // watch_group ANY
            0, 0, 0, 0, // pad
            0x00, 0x00, 0x00, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, // output:1
        ];
        check(
            &with_header(ofpt::GROUP_MOD, &body),
            msg(Message::GroupMod(GroupMod::add(
                5,
                GroupType::All,
                vec![Bucket::new(vec![Action::output(1)])],
            ))),
        );
        let body = [
            0x00, 0x00, 0x00, 0x03, // port 3
            0, 0, 0, 0, // pad
            0x02, 0, 0, 0, 0, 0x03, // hw_addr
            0, 0, // pad
            0x00, 0x00, 0x00, 0x01, // config: port down
            0x00, 0x00, 0x00, 0x01, // mask
            0x00, 0x00, 0x00, 0x00, // advertise
            0, 0, 0, 0, // pad
        ];
        check(
            &with_header(ofpt::PORT_MOD, &body),
            msg(Message::PortMod(PortMod {
                port_no: 3,
                hw_addr: Mac([2, 0, 0, 0, 0, 3]),
                config: 1,
                mask: 1,
                advertise: 0,
            })),
        );
        let body = [
            0xff, /* all tables */
            0, 0, 0, /* pad */
            0, 0, 0, 0, /* config */
        ];
        check(
            &with_header(ofpt::TABLE_MOD, &body),
            msg(Message::TableMod(TableMod {
                table_id: 0xff,
                config: 0,
            })),
        );
    }

    #[test]
    fn multipart_flow_stats_request_and_reply() {
        let body = [
            0x00, 0x01, // OFPMP_FLOW
            0x00, 0x00, // flags
            0, 0, 0, 0,    // pad
            0xff, // all tables
            0, 0, 0, // pad
            0xff, 0xff, 0xff, 0xff, // out_port ANY
            0xff, 0xff, 0xff, 0xff, // out_group ANY
            0, 0, 0, 0, // pad
            0x57, 0x46, 0, 0, 0, 0, 0, 0, // cookie
            0xff, 0xff, 0, 0, 0, 0, 0, 0, // cookie_mask
            0x00, 0x01, 0x00, 0x04, 0, 0, 0, 0, // empty match
        ];
        check(
            &with_header(ofpt::MULTIPART_REQUEST, &body),
            OfpMessage::flow_stats_request(XID, 0x5746 << 48, 0xffff << 48),
        );
        let body = [
            0x00, 0x01, // OFPMP_FLOW
            0x00, 0x00, // flags: last
            0, 0, 0, 0, // pad
            0x00, 0x48, // flow stats len 72
            0x1e, // table 30
            0x00, // pad
            0, 0, 0, 0x0a, 0, 0, 0, 0, // duration 10.0 s
            0x00, 0x64, // priority 100
            0x00, 0x00, 0x00, 0x00, // idle, hard
            0x00, 0x00, // flags
            0, 0, 0, 0, // pad
            0, 0, 0, 0, 0, 0, 0, 0x05, // cookie
            0, 0, 0, 0, 0, 0, 0, 0x01, // packets
            0, 0, 0, 0, 0, 0, 0, 0x40, // bytes
            0x00, 0x01, 0x00, 0x0c, 0x00, 0x01, 0x0e, 0x04, 0, 0, 0, 0x02, 0, 0, 0,
            0, // match reg7=2
            0x00, 0x01, 0x00, 0x08, 0x28, 0, 0, 0, // goto_table 40
        ];
        let fs = FlowStats {
            table_id: 30,
            duration_sec: 10,
            duration_nsec: 0,
            priority: 100,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
            cookie: 5,
            packet_count: 1,
            byte_count: 64,
            r#match: Match::new(vec![Field::Reg(7, 2, None)]),
            instructions: vec![Instruction::GotoTable(40)],
        };
        check(
            &with_header(ofpt::MULTIPART_REPLY, &body),
            msg(Message::MultipartReply(MultipartReply {
                flags: 0,
                body: MultipartReplyBody::Flow(vec![fs.clone()]),
            })),
        );
        assert_eq!(
            fs.to_string(),
            "cookie=0x5, table=30, priority=100,reg7=0x2 actions=goto_table:40"
        );
        let desc = [
            0x00, 0x00, /* OFPMP_DESC */
            0, 0, /* flags */
            0, 0, 0, 0, /* pad */
        ];
        check(
            &with_header(ofpt::MULTIPART_REQUEST, &desc),
            msg(Message::MultipartRequest(MultipartRequest {
                flags: 0,
                body: MultipartRequestBody::Desc,
            })),
        );
    }

    #[test]
    fn barrier_role_async_meter() {
        check(
            &with_header(ofpt::BARRIER_REQUEST, &[]),
            msg(Message::BarrierRequest),
        );
        check(
            &with_header(ofpt::BARRIER_REPLY, &[]),
            msg(Message::BarrierReply),
        );
        let body = [
            0x00, 0x00, 0x00, 0x02, // role MASTER
            0, 0, 0, 0, // pad
            0, 0, 0, 0, 0, 0, 0, 0x01, // generation_id
        ];
        let r = RoleMsg {
            role: ControllerRole::Master,
            generation_id: 1,
        };
        check(
            &with_header(ofpt::ROLE_REQUEST, &body),
            msg(Message::RoleRequest(r)),
        );
        check(
            &with_header(ofpt::ROLE_REPLY, &body),
            msg(Message::RoleReply(r)),
        );
        check(
            &with_header(ofpt::GET_ASYNC_REQUEST, &[]),
            msg(Message::GetAsyncRequest),
        );
        let body = [
            0, 0, 0, 0x03, 0, 0, 0, 0x00, // packet_in mask (master, slave)
            0, 0, 0, 0x07, 0, 0, 0, 0x07, // port_status mask
            0, 0, 0, 0x0f, 0, 0, 0, 0x00, // flow_removed mask
        ];
        let a = AsyncConfig {
            packet_in_mask: [3, 0],
            port_status_mask: [7, 7],
            flow_removed_mask: [15, 0],
        };
        check(
            &with_header(ofpt::GET_ASYNC_REPLY, &body),
            msg(Message::GetAsyncReply(a)),
        );
        check(
            &with_header(ofpt::SET_ASYNC, &body),
            msg(Message::SetAsync(a)),
        );
        let body = [
            0x00, 0x00, // command ADD
            0x00, 0x01, // flags KBPS
            0x00, 0x00, 0x00, 0x01, // meter 1
            0x00, 0x01, 0x00, 0x10, // band DROP, len 16
            0x00, 0x00, 0x03, 0xe8, // rate 1000
            0x00, 0x00, 0x00, 0x00, // burst
            0, 0, 0, 0, // pad
        ];
        check(
            &with_header(ofpt::METER_MOD, &body),
            msg(Message::MeterMod(MeterMod {
                command: MeterModCommand::Add,
                flags: 1,
                meter_id: 1,
                bands: vec![MeterBand {
                    band_type: 1,
                    rate: 1000,
                    burst_size: 0,
                    data: vec![0; 4],
                }],
            })),
        );
    }

    #[test]
    fn bundle_control_and_add() {
        let body = [
            0x4f, 0x4e, 0x46, 0x00, // experimenter: ONF
            0x00, 0x00, 0x08, 0xfc, // ONFT_BUNDLE_CONTROL (2300)
            0x00, 0x00, 0x00, 0x01, // bundle_id 1
            0x00, 0x00, // OPEN_REQUEST
            0x00, 0x01, // flags ATOMIC
        ];
        check(
            &with_header(ofpt::EXPERIMENTER, &body),
            OfpMessage::bundle_open(XID, 1, bundle_flags::ATOMIC),
        );
        let body = [
            0x4f, 0x4e, 0x46, 0x00, // experimenter: ONF
            0x00, 0x00, 0x08, 0xfd, // ONFT_BUNDLE_ADD_MESSAGE (2301)
            0x00, 0x00, 0x00, 0x01, // bundle_id 1
            0x00, 0x00, // pad
            0x00, 0x01, // flags ATOMIC
            0x04, 0x14, 0x00, 0x08, 0x12, 0x34, 0x56, 0x78, // inner BARRIER_REQUEST
        ];
        check(
            &with_header(ofpt::EXPERIMENTER, &body),
            OfpMessage::bundle_add(XID, 1, bundle_flags::ATOMIC, Message::BarrierRequest),
        );
    }

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
