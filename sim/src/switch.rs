//! A simulated OpenFlow 1.3 switch, sans-IO: [`Switch::handle_frame`] takes one framed
//! message, [`Switch::poll_output`] gives what to send, [`Switch::handle_timeout`] drives
//! echo keepalives. It keeps a real flow table and group table with OpenFlow 1.3
//! semantics: ADD replaces an identical (table, priority, match) entry (with
//! `CHECK_OVERLAP` refusing overlapping ones), MODIFY/DELETE loose and strict with cookie
//! masks and `out_port`/`out_group` filters, group add/modify/delete (deleting a group
//! deletes the flows that use it), ONF bundles (open, add, close, atomic commit, discard),
//! barriers, and flow-stats / group-desc / port-desc multipart replies split into parts
//! the way OVS does. Bad requests get the OpenFlow error OVS would send.
//!
//! Flows are stored compactly as the encoded `FLOW_MOD` (canonical match, `ADD`), keyed by
//! table, priority and the encoded canonical match: a few hundred bytes per flow.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use openflow::{
    Action, Bucket, BundleControl, BundleCtrlType, Desc, Emit, ErrorKind, ErrorMsg, ErrorType,
    FixedStr, FlowContent, FlowKey, FlowMod, FlowModCommand, FlowStats, FlowStatsRequest,
    GroupDesc, GroupMod, GroupModCommand, GroupType, Hello, Instruction, Mac, Match, Message,
    MultipartReply, MultipartReplyBody, MultipartRequestBody, OfpMessage, Port, RoleMsg,
    SwitchConfig, SwitchFeatures, port,
};

const ONF_EXPERIMENTER: u32 = 0x4f4e_4600;
/// OFPFF_CHECK_OVERLAP.
const FLAG_CHECK_OVERLAP: u16 = 1 << 1;
/// Bytes of multipart body per reply message before OVS starts another part.
const PART_BUDGET: usize = 65_000;
/// Open bundles per connection, and messages per bundle.
const MAX_BUNDLES: usize = 64;
const MAX_BUNDLE_MSGS: usize = 1_000_000;
const MAX_TABLE: u8 = 253;

/// OpenFlow error codes used here (OpenFlow 1.3 §A.4.4, ONF ext 230).
mod code {
    pub const BAD_TYPE: u16 = 1; // OFPBRC_BAD_TYPE
    pub const BAD_MULTIPART: u16 = 2; // OFPBRC_BAD_MULTIPART
    pub const BAD_EXPERIMENTER: u16 = 3; // OFPBRC_BAD_EXPERIMENTER
    pub const BAD_LEN: u16 = 6; // OFPBRC_BAD_LEN
    pub const FM_BAD_TABLE_ID: u16 = 2;
    pub const FM_OVERLAP: u16 = 3;
    pub const FM_BAD_COMMAND: u16 = 6;
    pub const BI_BAD_TABLE_ID: u16 = 2; // OFPBIC_BAD_TABLE_ID
    pub const BA_BAD_TYPE: u16 = 0; // OFPBAC_BAD_TYPE
    pub const BA_BAD_OUT_GROUP: u16 = 9;
    pub const GM_GROUP_EXISTS: u16 = 0;
    pub const GM_INVALID_GROUP: u16 = 1;
    pub const GM_UNKNOWN_GROUP: u16 = 8;
    pub const GM_BAD_COMMAND: u16 = 11;
    pub const BF_BAD_ID: u16 = 2302;
    pub const BF_BUNDLE_EXIST: u16 = 2303;
    pub const BF_BUNDLE_CLOSED: u16 = 2304;
    pub const BF_OUT_OF_BUNDLES: u16 = 2305;
    pub const BF_BAD_TYPE: u16 = 2306;
    pub const BF_MSG_BAD_XID: u16 = 2309;
    pub const BF_MSG_UNSUP: u16 = 2310;
    pub const BF_MSG_TOO_MANY: u16 = 2312;
    pub const BF_MSG_FAILED: u16 = 2313;
}

/// Why a request was refused: the error kind for an ERROR message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal(pub ErrorKind);

fn std_err(err_type: ErrorType, code: u16) -> Refusal {
    Refusal(ErrorKind::Standard { err_type, code })
}

fn onf_err(exp_type: u16) -> Refusal {
    Refusal(ErrorKind::Experimenter {
        exp_type,
        experimenter: ONF_EXPERIMENTER,
    })
}

/// One OXM field of an encoded match: identity (class, field, experimenter), value, mask.
struct Oxm<'a> {
    id: (u16, u8, u32),
    value: &'a [u8],
    mask: Option<&'a [u8]>,
}

/// Splits an encoded `ofp_match` (OXM type) into its fields. Malformed input yields the
/// fields parsed so far (the bytes came from our own encoder).
fn oxm_fields(m: &[u8]) -> Vec<Oxm<'_>> {
    let mut out = Vec::new();
    let len = match m.get(2..4) {
        Some(b) => usize::from(u16::from_be_bytes([b[0], b[1]])),
        None => return out,
    };
    let body = m.get(4..len.min(m.len())).unwrap_or(&[]);
    let mut pos = 0;
    while let Some(h) = body.get(pos..pos + 4) {
        let class = u16::from_be_bytes([h[0], h[1]]);
        let field = h[2] >> 1;
        let has_mask = h[2] & 1 == 1;
        let plen = usize::from(h[3]);
        let Some(mut payload) = body.get(pos + 4..pos + 4 + plen) else {
            break;
        };
        pos += 4 + plen;
        let mut exp = 0;
        if class == 0xffff {
            let Some(e) = payload.get(..4) else {
                break;
            };
            exp = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            payload = payload.get(4..).unwrap_or(&[]);
        }
        let (value, mask) = if has_mask {
            let half = payload.len() / 2;
            (&payload[..half], Some(&payload[half..]))
        } else {
            (payload, None)
        };
        out.push(Oxm {
            id: (class, field, exp),
            value,
            mask,
        });
    }
    out
}

fn mask_byte(mask: Option<&[u8]>, i: usize) -> u8 {
    mask.map_or(0xff, |m| m.get(i).copied().unwrap_or(0))
}

/// Whether a flow with match `flow` is covered by a loose request match `req`: the flow
/// is at least as specific as the request on every field the request names.
fn covers(req: &[u8], flow: &[u8]) -> bool {
    let f = oxm_fields(flow);
    oxm_fields(req).iter().all(|r| {
        let Some(x) = f.iter().find(|x| x.id == r.id) else {
            return r.mask.is_some_and(|m| m.iter().all(|b| *b == 0));
        };
        r.value.len() == x.value.len()
            && (0..r.value.len()).all(|i| {
                let mr = mask_byte(r.mask, i);
                let mf = mask_byte(x.mask, i);
                mf & mr == mr && x.value[i] & mr == r.value[i] & mr
            })
    })
}

/// Whether some packet could match both matches (same-priority overlap).
fn overlaps(a: &[u8], b: &[u8]) -> bool {
    let fb = oxm_fields(b);
    oxm_fields(a).iter().all(|x| {
        let Some(y) = fb.iter().find(|y| y.id == x.id) else {
            return true;
        };
        x.value.len() != y.value.len()
            || (0..x.value.len()).all(|i| {
                let m = mask_byte(x.mask, i) & mask_byte(y.mask, i);
                x.value[i] & m == y.value[i] & m
            })
    })
}

fn encode_match(m: &Match) -> Box<[u8]> {
    let mut b = BytesMut::with_capacity(m.buffer_len());
    m.emit(&mut b);
    b.to_vec().into_boxed_slice()
}

/// Identity of a flow entry: table, priority, encoded canonical match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FlowId {
    table: u8,
    priority: u16,
    r#match: Box<[u8]>,
}

/// The flow and group tables of one switch.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    /// Flow id → encoded OFPFC_ADD flow mod (canonical match).
    flows: HashMap<FlowId, Box<[u8]>>,
    groups: BTreeMap<u32, (GroupType, Vec<Bucket>)>,
}

fn decode_flow(bytes: &[u8]) -> Option<FlowMod> {
    match OfpMessage::decode(bytes).ok()?.body {
        Message::FlowMod(f) => Some(f),
        _ => None,
    }
}

fn actions_of(insts: &[Instruction]) -> impl Iterator<Item = &Action> {
    insts.iter().flat_map(|i| match i {
        Instruction::ApplyActions(a) | Instruction::WriteActions(a) => a.as_slice(),
        _ => &[],
    })
}

impl Tables {
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Bytes held by flow entries (keys and encoded flow mods), for memory reports.
    pub fn flow_bytes(&self) -> usize {
        self.flows
            .iter()
            .map(|(k, v)| k.r#match.len() + v.len() + 48)
            .sum()
    }

    /// Whether some flow's encoded match contains `needle` (e.g. a MAC address): a cheap
    /// probe for "has the flow for this port arrived" without decoding the table.
    pub fn any_match_contains(&self, needle: &[u8]) -> bool {
        !needle.is_empty()
            && self
                .flows
                .keys()
                .any(|k| k.r#match.windows(needle.len()).any(|w| w == needle))
    }

    /// Every flow as (identity, content), for comparing with the compiler's output.
    pub fn flows(&self) -> BTreeMap<FlowKey, FlowContent> {
        self.flows
            .values()
            .filter_map(|b| decode_flow(b))
            .map(|f| (f.key(), f.content()))
            .collect()
    }

    pub fn groups(&self) -> &BTreeMap<u32, (GroupType, Vec<Bucket>)> {
        &self.groups
    }

    fn flow_mods(&self) -> impl Iterator<Item = (&FlowId, FlowMod)> {
        self.flows
            .iter()
            .filter_map(|(k, b)| decode_flow(b).map(|f| (k, f)))
    }

    fn check_instructions(&self, fm: &FlowMod) -> Result<(), Refusal> {
        for i in &fm.instructions {
            match i {
                Instruction::GotoTable(t) if *t <= fm.table_id || *t > MAX_TABLE => {
                    return Err(std_err(ErrorType::BadInstruction, code::BI_BAD_TABLE_ID));
                }
                Instruction::Raw { .. } => {
                    return Err(std_err(ErrorType::BadInstruction, 0));
                }
                _ => {}
            }
        }
        for a in actions_of(&fm.instructions) {
            match a {
                Action::Group(g) if !self.groups.contains_key(g) => {
                    return Err(std_err(ErrorType::BadAction, code::BA_BAD_OUT_GROUP));
                }
                Action::Raw { .. } => return Err(std_err(ErrorType::BadAction, code::BA_BAD_TYPE)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether an installed flow passes a request's cookie, out_port and out_group filters.
    fn passes_filters(
        f: &FlowMod,
        cookie: u64,
        cookie_mask: u64,
        out_port: u32,
        out_group: u32,
    ) -> bool {
        if f.cookie & cookie_mask != cookie & cookie_mask {
            return false;
        }
        if out_port != port::ANY
            && !actions_of(&f.instructions)
                .any(|a| matches!(a, Action::Output { port, .. } if *port == out_port))
        {
            return false;
        }
        if out_group != openflow::types::group::ANY
            && !actions_of(&f.instructions)
                .any(|a| matches!(a, Action::Group(g) if *g == out_group))
        {
            return false;
        }
        true
    }

    /// Applies one flow mod with OpenFlow 1.3 semantics.
    pub fn flow_mod(&mut self, fm: &FlowMod) -> Result<(), Refusal> {
        if fm
            .r#match
            .fields
            .iter()
            .any(|f| matches!(f, openflow::Field::Raw(_)))
        {
            return Err(std_err(ErrorType::BadMatch, 0));
        }
        let canonical = fm.r#match.canonical();
        let mbytes = encode_match(&canonical);
        match fm.command {
            FlowModCommand::Add => {
                if fm.table_id > MAX_TABLE {
                    return Err(std_err(ErrorType::FlowModFailed, code::FM_BAD_TABLE_ID));
                }
                self.check_instructions(fm)?;
                let id = FlowId {
                    table: fm.table_id,
                    priority: fm.priority,
                    r#match: mbytes,
                };
                if fm.flags & FLAG_CHECK_OVERLAP != 0
                    && self.flows.keys().any(|k| {
                        k.table == id.table
                            && k.priority == id.priority
                            && k.r#match != id.r#match
                            && overlaps(&k.r#match, &id.r#match)
                    })
                {
                    return Err(std_err(ErrorType::FlowModFailed, code::FM_OVERLAP));
                }
                let stored = FlowMod {
                    command: FlowModCommand::Add,
                    cookie_mask: 0,
                    buffer_id: openflow::types::NO_BUFFER,
                    out_port: port::ANY,
                    out_group: openflow::types::group::ANY,
                    r#match: canonical,
                    ..fm.clone()
                };
                let bytes = stored
                    .into_message(0)
                    .to_bytes()
                    .map_err(|_| std_err(ErrorType::BadRequest, code::BAD_LEN))?;
                self.flows.insert(id, bytes.into_boxed_slice());
                Ok(())
            }
            FlowModCommand::Modify | FlowModCommand::ModifyStrict => {
                if fm.table_id > MAX_TABLE {
                    return Err(std_err(ErrorType::FlowModFailed, code::FM_BAD_TABLE_ID));
                }
                self.check_instructions(fm)?;
                let strict = fm.command == FlowModCommand::ModifyStrict;
                let hits = self.select(fm, strict, &mbytes, false);
                for id in hits {
                    if let Some(mut f) = self.flows.get(&id).and_then(|b| decode_flow(b)) {
                        // OpenFlow 1.3 modify replaces the instructions; the cookie stays.
                        f.instructions = fm.instructions.clone();
                        if let Ok(b) = f.into_message(0).to_bytes() {
                            self.flows.insert(id, b.into_boxed_slice());
                        }
                    }
                }
                Ok(())
            }
            FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
                if fm.table_id > MAX_TABLE && fm.table_id != openflow::types::TABLE_ALL {
                    return Err(std_err(ErrorType::FlowModFailed, code::FM_BAD_TABLE_ID));
                }
                let strict = fm.command == FlowModCommand::DeleteStrict;
                for id in self.select(fm, strict, &mbytes, true) {
                    self.flows.remove(&id);
                }
                Ok(())
            }
            FlowModCommand::Unknown(_) => {
                Err(std_err(ErrorType::FlowModFailed, code::FM_BAD_COMMAND))
            }
        }
    }

    /// Flows a modify/delete request selects.
    fn select(&self, fm: &FlowMod, strict: bool, mbytes: &[u8], delete: bool) -> Vec<FlowId> {
        let (out_port, out_group) = if delete {
            (fm.out_port, fm.out_group)
        } else {
            (port::ANY, openflow::types::group::ANY)
        };
        let all_tables = fm.table_id == openflow::types::TABLE_ALL;
        if strict {
            let id = FlowId {
                table: fm.table_id,
                priority: fm.priority,
                r#match: mbytes.into(),
            };
            return match self.flows.get(&id).and_then(|b| decode_flow(b)) {
                Some(f)
                    if Self::passes_filters(&f, fm.cookie, fm.cookie_mask, out_port, out_group) =>
                {
                    vec![id]
                }
                _ => Vec::new(),
            };
        }
        self.flow_mods()
            .filter(|(k, _)| all_tables || k.table == fm.table_id)
            .filter(|(k, _)| covers(mbytes, &k.r#match))
            .filter(|(_, f)| {
                Self::passes_filters(f, fm.cookie, fm.cookie_mask, out_port, out_group)
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Applies one group mod.
    pub fn group_mod(&mut self, gm: &GroupMod) -> Result<(), Refusal> {
        use openflow::types::group;
        match gm.command {
            GroupModCommand::Add => {
                if gm.group_id > group::MAX {
                    return Err(std_err(ErrorType::GroupModFailed, code::GM_INVALID_GROUP));
                }
                if self.groups.contains_key(&gm.group_id) {
                    return Err(std_err(ErrorType::GroupModFailed, code::GM_GROUP_EXISTS));
                }
                self.groups
                    .insert(gm.group_id, (gm.group_type, gm.buckets.clone()));
                Ok(())
            }
            GroupModCommand::Modify => match self.groups.get_mut(&gm.group_id) {
                Some(g) => {
                    *g = (gm.group_type, gm.buckets.clone());
                    Ok(())
                }
                None => Err(std_err(ErrorType::GroupModFailed, code::GM_UNKNOWN_GROUP)),
            },
            GroupModCommand::Delete => {
                let gone: Vec<u32> = if gm.group_id == group::ALL {
                    self.groups.keys().copied().collect()
                } else {
                    vec![gm.group_id]
                };
                let mut any = false;
                for g in &gone {
                    any |= self.groups.remove(g).is_some();
                }
                if any {
                    // OpenFlow 1.3 §6.5: flows that forward to a deleted group go too.
                    let users: Vec<FlowId> = self
                        .flow_mods()
                        .filter(|(_, f)| {
                            actions_of(&f.instructions)
                                .any(|a| matches!(a, Action::Group(g) if gone.contains(g)))
                        })
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in users {
                        self.flows.remove(&k);
                    }
                }
                Ok(())
            }
            GroupModCommand::Unknown(_) => {
                Err(std_err(ErrorType::GroupModFailed, code::GM_BAD_COMMAND))
            }
        }
    }

    fn apply(&mut self, m: &Message) -> Result<(), Refusal> {
        match m {
            Message::FlowMod(f) => self.flow_mod(f),
            Message::GroupMod(g) => self.group_mod(g),
            _ => Err(onf_err(code::BF_MSG_UNSUP)),
        }
    }

    fn flow_stats(&self, req: &FlowStatsRequest) -> Vec<FlowStats> {
        let mbytes = encode_match(&req.r#match.canonical());
        let mut out: Vec<(FlowId, FlowStats)> = self
            .flow_mods()
            .filter(|(k, _)| req.table_id == openflow::types::TABLE_ALL || k.table == req.table_id)
            .filter(|(k, _)| covers(&mbytes, &k.r#match))
            .filter(|(_, f)| {
                Self::passes_filters(f, req.cookie, req.cookie_mask, req.out_port, req.out_group)
            })
            .map(|(k, f)| {
                (
                    k.clone(),
                    FlowStats {
                        table_id: f.table_id,
                        duration_sec: 0,
                        duration_nsec: 0,
                        priority: f.priority,
                        idle_timeout: f.idle_timeout,
                        hard_timeout: f.hard_timeout,
                        flags: f.flags,
                        cookie: f.cookie,
                        packet_count: 0,
                        byte_count: 0,
                        r#match: f.r#match,
                        instructions: f.instructions,
                    },
                )
            })
            .collect();
        out.sort_by(|a, b| {
            (a.0.table, std::cmp::Reverse(a.0.priority), &a.0.r#match).cmp(&(
                b.0.table,
                std::cmp::Reverse(b.0.priority),
                &b.0.r#match,
            ))
        });
        out.into_iter().map(|(_, s)| s).collect()
    }
}

/// Splits multipart entries into replies of at most [`PART_BUDGET`] bytes each.
fn split_parts<T>(items: Vec<T>, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut parts = vec![Vec::new()];
    let mut used = 0;
    for it in items {
        let n = size(&it);
        if used + n > PART_BUDGET && parts.last().is_some_and(|p| !p.is_empty()) {
            parts.push(Vec::new());
            used = 0;
        }
        used += n;
        if let Some(p) = parts.last_mut() {
            p.push(it);
        }
    }
    parts
}

fn flow_stats_len(s: &FlowStats) -> usize {
    48 + s.r#match.buffer_len() + s.instructions.iter().map(Emit::buffer_len).sum::<usize>()
}

fn group_desc_len(g: &GroupDesc) -> usize {
    8 + g
        .buckets
        .iter()
        .map(|b| 16 + b.actions.iter().map(Emit::buffer_len).sum::<usize>())
        .sum::<usize>()
}

/// An ONF bundle being filled.
#[derive(Debug, Default)]
struct Bundle {
    closed: bool,
    msgs: Vec<(u32, Message)>,
}

/// Counters of one switch.
#[derive(Debug, Default, Clone, Copy)]
pub struct SwitchStats {
    pub flow_mods: u64,
    pub group_mods: u64,
    pub bundles_committed: u64,
    pub bundles_failed: u64,
    pub barriers: u64,
    pub errors_sent: u64,
    pub flow_dumps: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitHello,
    Ready,
    Closed,
}

/// One simulated switch connection's protocol state plus the bridge's tables (the tables
/// outlive connections: keep the `Tables` and start a new `Switch` on reconnect).
#[derive(Debug)]
pub struct Switch {
    pub datapath_id: u64,
    pub ports: BTreeMap<u32, String>,
    pub stats: SwitchStats,
    phase: Phase,
    out: VecDeque<OfpMessage>,
    bundles: HashMap<u32, Bundle>,
    config: SwitchConfig,
    role: openflow::ControllerRole,
    next_xid: u32,
    echo_interval: Duration,
    last_rx: Instant,
    echo_sent: Option<Instant>,
    close_reason: Option<String>,
}

impl Switch {
    /// A new connection: queues our HELLO.
    pub fn new(datapath_id: u64, now: Instant, echo_interval: Duration) -> Switch {
        let mut s = Switch {
            datapath_id,
            ports: BTreeMap::new(),
            stats: SwitchStats::default(),
            phase: Phase::AwaitHello,
            out: VecDeque::new(),
            bundles: HashMap::new(),
            config: SwitchConfig {
                flags: 0,
                miss_send_len: 128,
            },
            role: openflow::ControllerRole::Equal,
            next_xid: 1,
            echo_interval,
            last_rx: now,
            echo_sent: None,
            close_reason: None,
        };
        s.out
            .push_back(OfpMessage::new(0, Message::Hello(Hello::of13())));
        s
    }

    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Why the switch closed the connection, once it did.
    pub fn closed(&self) -> Option<&str> {
        self.close_reason.as_deref()
    }

    pub fn poll_output(&mut self) -> Option<OfpMessage> {
        self.out.pop_front()
    }

    fn close(&mut self, why: String) {
        self.phase = Phase::Closed;
        self.close_reason = Some(why);
    }

    fn error(&mut self, xid: u32, refusal: Refusal, offending: &[u8]) {
        self.stats.errors_sent += 1;
        let data = offending
            .get(..offending.len().min(64))
            .unwrap_or(&[])
            .to_vec();
        self.out.push_back(OfpMessage::new(
            xid,
            Message::Error(ErrorMsg {
                kind: refusal.0,
                data,
            }),
        ));
    }

    /// Echo keepalive: an idle peer is probed, one that stays silent is given up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        match self.echo_sent {
            Some(at) if now.duration_since(at) >= self.echo_interval => {
                self.close("controller did not answer an echo request".into());
            }
            None if now.duration_since(self.last_rx) >= self.echo_interval => {
                let xid = self.alloc_xid();
                self.out
                    .push_back(OfpMessage::echo_request(xid, Vec::new()));
                self.echo_sent = Some(now);
            }
            _ => {}
        }
    }

    /// When [`Switch::handle_timeout`] next has something to do.
    pub fn next_timeout(&self) -> Instant {
        match self.echo_sent {
            Some(at) => at + self.echo_interval,
            None => self.last_rx + self.echo_interval,
        }
    }

    fn alloc_xid(&mut self) -> u32 {
        let x = self.next_xid;
        self.next_xid = self.next_xid.wrapping_add(1).max(1);
        x
    }

    /// Handles one framed message (exactly one message's bytes).
    pub fn handle_frame(&mut self, frame: &[u8], now: Instant, tables: &mut Tables) {
        self.last_rx = now;
        self.echo_sent = None;
        let xid = frame
            .get(4..8)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let msg = match OfpMessage::decode(frame) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(dpid = %format_args!("{:016x}", self.datapath_id), error = %e, "undecodable message");
                self.error(xid, std_err(ErrorType::BadRequest, code::BAD_LEN), frame);
                return;
            }
        };
        self.handle_message(msg, frame, tables);
    }

    fn handle_message(&mut self, msg: OfpMessage, frame: &[u8], tables: &mut Tables) {
        let xid = msg.xid;
        if self.phase == Phase::Closed {
            return;
        }
        if self.phase == Phase::AwaitHello {
            match &msg.body {
                Message::Hello(h) if h.supports_of13(msg.version) => {
                    self.phase = Phase::Ready;
                }
                Message::Hello(_) => {
                    self.error(
                        xid,
                        std_err(ErrorType::HelloFailed, 0),
                        b"no common version",
                    );
                    self.close(format!(
                        "controller offered version {:#x} only",
                        msg.version
                    ));
                }
                _ => self.close("controller did not start with HELLO".into()),
            }
            return;
        }
        if msg.version != openflow::OFP_VERSION {
            self.error(xid, std_err(ErrorType::BadRequest, 0), frame);
            return;
        }
        match msg.body {
            Message::Hello(_) => {}
            Message::EchoRequest(d) => self
                .out
                .push_back(OfpMessage::new(xid, Message::EchoReply(d))),
            Message::EchoReply(_) => {}
            Message::FeaturesRequest => self.out.push_back(OfpMessage::new(
                xid,
                Message::FeaturesReply(SwitchFeatures {
                    datapath_id: self.datapath_id,
                    n_buffers: 0,
                    n_tables: 254,
                    auxiliary_id: 0,
                    // FLOW_STATS | TABLE_STATS | PORT_STATS | GROUP_STATS | QUEUE_STATS
                    capabilities: 0x4f,
                    reserved: 0,
                }),
            )),
            Message::GetConfigRequest => self
                .out
                .push_back(OfpMessage::new(xid, Message::GetConfigReply(self.config))),
            Message::SetConfig(c) => self.config = c,
            Message::BarrierRequest => {
                self.stats.barriers += 1;
                self.out
                    .push_back(OfpMessage::new(xid, Message::BarrierReply));
            }
            Message::RoleRequest(r) => {
                if r.role != openflow::ControllerRole::NoChange {
                    self.role = r.role;
                }
                self.out.push_back(OfpMessage::new(
                    xid,
                    Message::RoleReply(RoleMsg {
                        role: self.role,
                        generation_id: r.generation_id,
                    }),
                ));
            }
            Message::GetAsyncRequest => self.out.push_back(OfpMessage::new(
                xid,
                Message::GetAsyncReply(openflow::AsyncConfig::default()),
            )),
            Message::SetAsync(_) | Message::PacketOut(_) => {}
            Message::FlowMod(f) => {
                self.stats.flow_mods += 1;
                if let Err(r) = tables.flow_mod(&f) {
                    self.error(xid, r, frame);
                }
            }
            Message::GroupMod(g) => {
                self.stats.group_mods += 1;
                if let Err(r) = tables.group_mod(&g) {
                    self.error(xid, r, frame);
                }
            }
            Message::BundleControl(c) => self.bundle_control(xid, c, frame, tables),
            Message::BundleAdd(a) => {
                let refusal = if a.message.xid != xid {
                    Some(onf_err(code::BF_MSG_BAD_XID))
                } else if !matches!(a.message.body, Message::FlowMod(_) | Message::GroupMod(_)) {
                    Some(onf_err(code::BF_MSG_UNSUP))
                } else if !self.bundles.contains_key(&a.bundle_id)
                    && self.bundles.len() >= MAX_BUNDLES
                {
                    Some(onf_err(code::BF_OUT_OF_BUNDLES))
                } else {
                    // Adding to a bundle that is not open opens it (as OVS does).
                    let b = self.bundles.entry(a.bundle_id).or_default();
                    if b.closed {
                        Some(onf_err(code::BF_BUNDLE_CLOSED))
                    } else if b.msgs.len() >= MAX_BUNDLE_MSGS {
                        Some(onf_err(code::BF_MSG_TOO_MANY))
                    } else {
                        b.msgs.push((xid, a.message.body));
                        None
                    }
                };
                if let Some(r) = refusal {
                    self.error(xid, r, frame);
                }
            }
            Message::MultipartRequest(r) => self.multipart(xid, r.body, frame, tables),
            Message::Experimenter(_) => self.error(
                xid,
                std_err(ErrorType::BadRequest, code::BAD_EXPERIMENTER),
                frame,
            ),
            _ => self.error(xid, std_err(ErrorType::BadRequest, code::BAD_TYPE), frame),
        }
    }

    fn bundle_control(&mut self, xid: u32, c: BundleControl, frame: &[u8], tables: &mut Tables) {
        let reply = |t: BundleCtrlType| {
            OfpMessage::new(
                xid,
                Message::BundleControl(BundleControl {
                    bundle_id: c.bundle_id,
                    ctrl_type: t,
                    flags: c.flags,
                    properties: Vec::new(),
                }),
            )
        };
        match c.ctrl_type {
            BundleCtrlType::OpenRequest => {
                if self.bundles.contains_key(&c.bundle_id) {
                    self.error(xid, onf_err(code::BF_BUNDLE_EXIST), frame);
                } else if self.bundles.len() >= MAX_BUNDLES {
                    self.error(xid, onf_err(code::BF_OUT_OF_BUNDLES), frame);
                } else {
                    self.bundles.insert(c.bundle_id, Bundle::default());
                    self.out.push_back(reply(BundleCtrlType::OpenReply));
                }
            }
            BundleCtrlType::CloseRequest => match self.bundles.get_mut(&c.bundle_id) {
                None => self.error(xid, onf_err(code::BF_BAD_ID), frame),
                Some(b) if b.closed => self.error(xid, onf_err(code::BF_BUNDLE_CLOSED), frame),
                Some(b) => {
                    b.closed = true;
                    self.out.push_back(reply(BundleCtrlType::CloseReply));
                }
            },
            BundleCtrlType::CommitRequest => {
                let Some(b) = self.bundles.remove(&c.bundle_id) else {
                    self.error(xid, onf_err(code::BF_BAD_ID), frame);
                    return;
                };
                // Atomic: apply to a copy, keep it only if every message succeeded.
                let mut work = tables.clone();
                for (mxid, m) in &b.msgs {
                    match m {
                        Message::FlowMod(_) => self.stats.flow_mods += 1,
                        _ => self.stats.group_mods += 1,
                    }
                    if let Err(r) = work.apply(m) {
                        let bytes = OfpMessage::new(*mxid, m.clone())
                            .to_bytes()
                            .unwrap_or_default();
                        self.error(*mxid, r, &bytes);
                        self.error(xid, onf_err(code::BF_MSG_FAILED), frame);
                        self.stats.bundles_failed += 1;
                        return;
                    }
                }
                *tables = work;
                self.stats.bundles_committed += 1;
                self.out.push_back(reply(BundleCtrlType::CommitReply));
            }
            BundleCtrlType::DiscardRequest => {
                if self.bundles.remove(&c.bundle_id).is_some() {
                    self.out.push_back(reply(BundleCtrlType::DiscardReply));
                } else {
                    self.error(xid, onf_err(code::BF_BAD_ID), frame);
                }
            }
            _ => self.error(xid, onf_err(code::BF_BAD_TYPE), frame),
        }
    }

    fn multipart(&mut self, xid: u32, body: MultipartRequestBody, frame: &[u8], tables: &Tables) {
        let bodies: Vec<MultipartReplyBody> = match body {
            MultipartRequestBody::Flow(req) => {
                self.stats.flow_dumps += 1;
                let stats = tables.flow_stats(&req);
                split_parts(stats, flow_stats_len)
                    .into_iter()
                    .map(MultipartReplyBody::Flow)
                    .collect()
            }
            MultipartRequestBody::Aggregate(req) => {
                let n = tables.flow_stats(&req).len();
                vec![MultipartReplyBody::Aggregate(openflow::AggregateStats {
                    packet_count: 0,
                    byte_count: 0,
                    flow_count: u32::try_from(n).unwrap_or(u32::MAX),
                })]
            }
            MultipartRequestBody::GroupDesc => {
                let groups: Vec<GroupDesc> = tables
                    .groups
                    .iter()
                    .map(|(id, (t, b))| GroupDesc {
                        group_type: *t,
                        group_id: *id,
                        buckets: b.clone(),
                    })
                    .collect();
                split_parts(groups, group_desc_len)
                    .into_iter()
                    .map(MultipartReplyBody::GroupDesc)
                    .collect()
            }
            MultipartRequestBody::PortDesc => {
                let mut ports: Vec<Port> = self
                    .ports
                    .iter()
                    .map(|(no, name)| sim_port(*no, name))
                    .collect();
                ports.push(sim_port(port::LOCAL, "br-int"));
                vec![MultipartReplyBody::PortDesc(ports)]
            }
            MultipartRequestBody::Desc => vec![MultipartReplyBody::Desc(Desc {
                mfr_desc: FixedStr(b"Weft simulator".to_vec()),
                hw_desc: FixedStr(b"weft-sim".to_vec()),
                sw_desc: FixedStr(b"weft-sim".to_vec()),
                serial_num: FixedStr(Vec::new()),
                dp_desc: FixedStr(format!("sim {:016x}", self.datapath_id).into_bytes()),
            })],
            _ => {
                self.error(
                    xid,
                    std_err(ErrorType::BadRequest, code::BAD_MULTIPART),
                    frame,
                );
                return;
            }
        };
        let n = bodies.len();
        for (i, body) in bodies.into_iter().enumerate() {
            let flags = if i + 1 < n {
                openflow::MULTIPART_MORE
            } else {
                0
            };
            self.out.push_back(OfpMessage::new(
                xid,
                Message::MultipartReply(MultipartReply { flags, body }),
            ));
        }
    }
}

fn sim_port(no: u32, name: &str) -> Port {
    let b = no.to_be_bytes();
    Port {
        port_no: no,
        hw_addr: Mac([0x02, 0x5e, b[0], b[1], b[2], b[3]]),
        name: FixedStr(name.as_bytes().iter().take(15).copied().collect()),
        ..Port::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openflow::{Field, bundle_flags};

    struct Sw {
        s: Switch,
        tables: Tables,
    }

    fn sw() -> Sw {
        let now = Instant::now();
        let mut s = Switch::new(42, now, Duration::from_secs(5));
        let mut tables = Tables::default();
        assert!(matches!(s.poll_output().unwrap().body, Message::Hello(_)));
        s.handle_message(OfpMessage::hello(1), &[], &mut tables);
        assert!(s.is_ready());
        Sw { s, tables }
    }

    fn send(s: &mut Sw, m: OfpMessage) -> Vec<OfpMessage> {
        let bytes = m.to_bytes().unwrap();
        s.s.handle_frame(&bytes, Instant::now(), &mut s.tables);
        std::iter::from_fn(|| s.s.poll_output()).collect()
    }

    fn flow(table: u8, prio: u16, fields: Vec<Field>, out: u32, cookie: u64) -> FlowMod {
        FlowMod::add(
            table,
            prio,
            Match::new(fields),
            vec![Instruction::ApplyActions(vec![Action::output(out)])],
        )
        .with_cookie(cookie)
    }

    #[test]
    fn add_replaces_identical_and_delete_loose_filters() {
        let mut s = sw();
        let m1 = vec![Field::Reg(6, 1, None), Field::Metadata(5, None)];
        let m1_reordered = vec![Field::Metadata(5, None), Field::Reg(6, 1, None)];
        assert!(send(&mut s, flow(0, 10, m1, 1, 0x10).into_message(2)).is_empty());
        assert!(send(&mut s, flow(0, 10, m1_reordered, 2, 0x11).into_message(3)).is_empty());
        assert_eq!(
            s.tables.flow_count(),
            1,
            "same match, other field order: replaced"
        );
        send(
            &mut s,
            flow(0, 20, vec![Field::Metadata(5, None)], 3, 0x20).into_message(4),
        );
        send(
            &mut s,
            flow(1, 20, vec![Field::Metadata(6, None)], 3, 0x30).into_message(5),
        );
        assert_eq!(s.tables.flow_count(), 3);

        // Loose delete of metadata=5 in all tables with cookie 0x20/0xff: only the prio-20 one.
        let mut del = FlowMod::delete_strict(
            openflow::types::TABLE_ALL,
            0,
            Match::new(vec![Field::Metadata(5, None)]),
        );
        del.command = FlowModCommand::Delete;
        del.cookie = 0x20;
        del.cookie_mask = 0xff;
        send(&mut s, del.clone().into_message(6));
        assert_eq!(s.tables.flow_count(), 2);
        // out_port filter: output 2 only.
        del.cookie_mask = 0;
        del.out_port = 3;
        send(&mut s, del.clone().into_message(7));
        assert_eq!(s.tables.flow_count(), 2, "no metadata=5 flow outputs to 3");
        del.out_port = 2;
        send(&mut s, del.into_message(8));
        assert_eq!(s.tables.flow_count(), 1);
    }

    #[test]
    fn modify_keeps_cookie_and_strict_needs_exact_match() {
        let mut s = sw();
        send(
            &mut s,
            flow(0, 10, vec![Field::Reg(6, 1, None)], 1, 0x10).into_message(2),
        );
        let mut m = FlowMod::modify_strict(0, 11, Match::new(vec![Field::Reg(6, 1, None)]), vec![]);
        send(&mut s, m.clone().into_message(3));
        let f = s.tables.flows();
        assert_eq!(
            f.values().next().unwrap().instructions.len(),
            1,
            "other priority: untouched"
        );
        m.priority = 10;
        m.cookie = 0x99;
        send(&mut s, m.into_message(4));
        let f = s.tables.flows();
        let c = f.values().next().unwrap();
        assert!(c.instructions.is_empty());
        assert_eq!(c.cookie, 0x10);
    }

    #[test]
    fn overlap_check_and_errors() {
        let mut s = sw();
        send(
            &mut s,
            flow(0, 10, vec![Field::Reg(6, 1, None)], 1, 0).into_message(2),
        );
        let mut f = flow(0, 10, vec![Field::Metadata(5, None)], 1, 0);
        f.flags = FLAG_CHECK_OVERLAP;
        let out = send(&mut s, f.into_message(3));
        assert!(
            matches!(&out[0].body, Message::Error(e) if e.kind == ErrorKind::Standard { err_type: ErrorType::FlowModFailed, code: code::FM_OVERLAP })
        );
        // Unknown group in an action.
        let g = FlowMod::add(
            0,
            1,
            Match::default(),
            vec![Instruction::ApplyActions(vec![Action::Group(7)])],
        );
        let out = send(&mut s, g.into_message(4));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].xid, 4);
    }

    #[test]
    fn bundle_commit_is_atomic() {
        let mut s = sw();
        let flags = bundle_flags::ATOMIC | bundle_flags::ORDERED;
        let out = send(&mut s, OfpMessage::bundle_open(10, 1, flags));
        assert!(
            matches!(&out[0].body, Message::BundleControl(c) if c.ctrl_type == BundleCtrlType::OpenReply)
        );
        send(
            &mut s,
            OfpMessage::bundle_add(11, 1, flags, Message::FlowMod(flow(0, 1, vec![], 1, 1))),
        );
        send(
            &mut s,
            OfpMessage::bundle_add(
                12,
                1,
                flags,
                Message::GroupMod(GroupMod::modify(9, GroupType::All, vec![])),
            ),
        );
        let out = send(&mut s, OfpMessage::bundle_commit(13, 1, flags));
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].xid, 12);
        assert_eq!(out[1].xid, 13);
        assert_eq!(s.tables.flow_count(), 0, "nothing applied");

        send(&mut s, OfpMessage::bundle_open(20, 2, flags));
        send(
            &mut s,
            OfpMessage::bundle_add(
                21,
                2,
                flags,
                Message::GroupMod(GroupMod::add(9, GroupType::All, vec![])),
            ),
        );
        send(
            &mut s,
            OfpMessage::bundle_add(
                22,
                2,
                flags,
                Message::FlowMod(FlowMod::add(
                    0,
                    1,
                    Match::default(),
                    vec![Instruction::ApplyActions(vec![Action::Group(9)])],
                )),
            ),
        );
        let out = send(&mut s, OfpMessage::bundle_commit(23, 2, flags));
        assert!(
            matches!(&out[0].body, Message::BundleControl(c) if c.ctrl_type == BundleCtrlType::CommitReply)
        );
        assert_eq!((s.tables.flow_count(), s.tables.group_count()), (1, 1));
        // Deleting the group deletes its user.
        send(&mut s, GroupMod::delete(9).into_message(24));
        assert_eq!((s.tables.flow_count(), s.tables.group_count()), (0, 0));
    }

    #[test]
    fn flow_dump_splits_into_parts_and_filters_by_cookie() {
        let mut s = sw();
        for i in 0..2000u32 {
            send(
                &mut s,
                flow(
                    0,
                    10,
                    vec![Field::Reg(6, i, None), Field::Metadata(u64::from(i), None)],
                    i,
                    if i % 2 == 0 { 0x5745_0000_0000_0001 } else { 7 },
                )
                .into_message(i + 2),
            );
        }
        let out = send(
            &mut s,
            OfpMessage::flow_stats_request(99, 0x5745_0000_0000_0000, 0xffff_0000_0000_0000),
        );
        assert!(out.len() > 1, "split into several parts");
        let mut n = 0;
        for (i, m) in out.iter().enumerate() {
            let Message::MultipartReply(r) = &m.body else {
                panic!()
            };
            assert_eq!(r.flags & openflow::MULTIPART_MORE != 0, i + 1 < out.len());
            assert!(m.to_bytes().unwrap().len() <= 65535);
            if let MultipartReplyBody::Flow(f) = &r.body {
                n += f.len();
            }
        }
        assert_eq!(n, 1000);
    }
}
