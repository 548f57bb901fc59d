//! Multipart (statistics and description) requests and replies: flows, aggregates,
//! tables, ports, groups, switch description. Types this codec does not model stay raw.

use std::borrow::Borrow;

use bytes::{BufMut, BytesMut};

use super::expect_len;
use super::group::{Bucket, GroupType, emit_buckets, parse_buckets};
use super::port::{Port, emit_port, parse_port};
use crate::error::{Error, Result};
use crate::instruction::Instruction;
use crate::oxm::Match;
use crate::wire::{
    Emit, FixedStr, Reader, patch_u16, put_fixed_str, put_zeros, read_fixed_str, wire_enum,
};

wire_enum! {
    pub enum MultipartType: u16 {
        Desc = 0, Flow = 1, Aggregate = 2, Table = 3, PortStats = 4, Queue = 5, Group = 6,
        GroupDesc = 7, GroupFeatures = 8, Meter = 9, MeterConfig = 10, MeterFeatures = 11,
        TableFeatures = 12, PortDesc = 13, Experimenter = 0xffff,
    }
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

impl FlowStatsRequest {
    /// Every flow of every table whose cookie matches `cookie/cookie_mask`.
    pub fn every_flow(cookie: u64, cookie_mask: u64) -> FlowStatsRequest {
        FlowStatsRequest {
            table_id: crate::types::TABLE_ALL,
            out_port: crate::types::port::ANY,
            out_group: crate::types::group::ANY,
            cookie,
            cookie_mask,
            r#match: Match::default(),
        }
    }
}

/// The fixed part of an `ofp_flow_stats` entry, before its match.
pub(crate) const FLOW_STATS_FIXED: usize = 48;
/// The shortest `ofp_flow_stats` entry: the fixed part and an empty match, padded.
pub(crate) const FLOW_STATS_MIN: usize = FLOW_STATS_FIXED + 8;

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

/// One installed flow, as a flow-stats reply describes it: owned ([`FlowStats`], what a
/// dump decodes to) or with its match and instructions borrowed ([`FlowStatsView`], what
/// a switch that keeps its flows in a table encodes without first copying each one: the
/// simulator answers a thousand switches' dumps at once in a reconnect storm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowStatsOf<M, I> {
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
    pub r#match: M,
    pub instructions: I,
}

pub type FlowStats = FlowStatsOf<Match, Vec<Instruction>>;
pub type FlowStatsView<'a> = FlowStatsOf<&'a Match, &'a [Instruction]>;

impl<M: Borrow<Match>, I: AsRef<[Instruction]>> FlowStatsOf<M, I> {
    /// The entry as an `OFPMP_FLOW` reply body carries it (`ofp_flow_stats`).
    pub fn emit(&self, buf: &mut BytesMut) {
        let start = buf.len();
        buf.put_u16(0);
        buf.put_u8(self.table_id);
        buf.put_u8(0);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
        buf.put_u16(self.priority);
        buf.put_u16(self.idle_timeout);
        buf.put_u16(self.hard_timeout);
        buf.put_u16(self.flags);
        put_zeros(buf, 4);
        buf.put_u64(self.cookie);
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
        self.r#match.borrow().emit(buf);
        for i in self.instructions.as_ref() {
            i.emit(buf);
        }
        patch_u16(buf, start, buf.len() - start);
    }
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

impl GroupDesc {
    /// The entry as an `OFPMP_GROUP_DESC` reply body carries it (`ofp_group_desc`).
    pub fn emit(&self, buf: &mut BytesMut) {
        let start = buf.len();
        buf.put_u16(0);
        buf.put_u8(self.group_type.into());
        buf.put_u8(0);
        buf.put_u32(self.group_id);
        emit_buckets(&self.buckets, buf);
        patch_u16(buf, start, buf.len() - start);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupFeatures {
    pub types: u32,
    pub capabilities: u32,
    pub max_groups: [u32; 4],
    pub actions: [u32; 4],
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
    /// Parses the multipart header (type, flags) and the typed body.
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        let mp_type = MultipartType::from(r.u16("multipart type")?);
        let flags = r.u16("multipart flags")?;
        r.skip(4, "pad")?;
        Ok(MultipartRequest {
            flags,
            body: MultipartRequestBody::parse(mp_type, r)?,
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u16(self.body.mp_type().into());
        buf.put_u16(self.flags);
        put_zeros(buf, 4);
        self.body.emit(buf);
    }
}

impl MultipartReply {
    /// Parses the multipart header (type, flags) and the typed body.
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        let mp_type = MultipartType::from(r.u16("multipart type")?);
        let flags = r.u16("multipart flags")?;
        r.skip(4, "pad")?;
        Ok(MultipartReply {
            flags,
            body: MultipartReplyBody::parse(mp_type, r)?,
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u16(self.body.mp_type().into());
        buf.put_u16(self.flags);
        put_zeros(buf, 4);
        self.body.emit(buf);
    }
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
    /// A [`MultipartReplyBody::Raw`] body decoded by its type (a body kept raw by a
    /// reader that wanted to look at its bytes first); any other body as it is.
    pub fn decoded(self) -> Result<Self> {
        match self {
            Self::Raw { mp_type, body } => Self::parse(mp_type, &mut Reader::new(&body)),
            typed => Ok(typed),
        }
    }

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
                    if len < FLOW_STATS_MIN {
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
                    s.emit(buf);
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
                    g.emit(buf);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::OfpMessage;
    use crate::message::testing::*;
    use crate::message::{Message, ofpt};
    use crate::oxm::Field;

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
}
