//! A simulated OpenFlow 1.3 switch, sans-IO: [`Switch::handle_frame`] takes one framed
//! message, [`Switch::poll_output`] gives what to send, [`Switch::handle_timeout`] drives
//! echo keepalives. Its flow and group tables are the shared OpenFlow 1.3 model,
//! [`openflow::table::FlowTable`] (flow-mod and group-mod semantics, flow-stats and
//! group-desc contents); this module adds the connection around them: ONF bundles (open,
//! add, close, atomic commit, discard; module `bundle`), barriers, and flow-stats / group-desc / port-desc
//! multipart replies split into parts the way OVS does. Bad requests get the OpenFlow
//! error OVS would send.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use openflow::{
    Desc, ErrorKind, ErrorMsg, ErrorType, FixedStr, Hello, Mac, Message, MultipartReply,
    MultipartReplyBody, MultipartRequestBody, MultipartType, OfpMessage, Port, RoleMsg,
    SwitchConfig, SwitchFeatures, port,
};

mod bundle;
mod roles;
mod tables;

use bundle::Bundle;
pub use roles::{ConnId, Roles, SharedRoles};
pub use tables::Tables;

const ONF_EXPERIMENTER: u32 = 0x4f4e_4600;
/// Bytes of multipart body per reply message before OVS starts another part.
const PART_BUDGET: usize = 65_000;

/// OpenFlow error codes used here (OpenFlow 1.3 §A.4.4, ONF ext 230); the flow-mod and
/// group-mod ones are the table's ([`openflow::table::code`]).
mod code {
    pub const BAD_TYPE: u16 = 1; // OFPBRC_BAD_TYPE
    pub const BAD_MULTIPART: u16 = 2; // OFPBRC_BAD_MULTIPART
    pub const BAD_EXPERIMENTER: u16 = 3; // OFPBRC_BAD_EXPERIMENTER
    pub const BAD_LEN: u16 = 6; // OFPBRC_BAD_LEN
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

/// Multipart reply bodies of type `mp_type`, each entry encoded straight into its part:
/// a part ends before the entry that would take it past [`PART_BUDGET`] (an entry larger
/// than the budget gets a part of its own). Copying each of a switch's ~1,700 flows into
/// a `FlowStats` and sizing it before encoding it was a third of the simulator's CPU in a
/// reconnect storm, where every switch is dumped at once.
fn encoded_parts<T>(
    mp_type: MultipartType,
    entries: &[T],
    emit: impl Fn(&T, &mut BytesMut),
) -> Vec<MultipartReplyBody> {
    let mut parts = Vec::new();
    let mut buf = BytesMut::new();
    for e in entries {
        let start = buf.len();
        emit(e, &mut buf);
        if buf.len() > PART_BUDGET && start > 0 {
            let entry = buf.split_off(start);
            parts.push(buf);
            buf = entry;
        }
    }
    parts.push(buf);
    parts
        .into_iter()
        .map(|body| MultipartReplyBody::Raw {
            mp_type,
            body: body.to_vec(),
        })
        .collect()
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
    /// Writes refused because this connection was a slave.
    pub slave_refusals: u64,
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
    /// The bridge's roles (shared with its other connections) and this connection's id.
    roles: SharedRoles,
    conn: ConnId,
    next_xid: u32,
    echo_interval: Duration,
    last_rx: Instant,
    echo_sent: Option<Instant>,
    close_reason: Option<String>,
}

impl Switch {
    /// A new connection: queues our HELLO.
    pub fn new(datapath_id: u64, now: Instant, echo_interval: Duration) -> Switch {
        let roles = SharedRoles::default();
        let conn = roles.lock().unwrap_or_else(|e| e.into_inner()).connect();
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
            roles,
            conn,
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

    /// Makes this connection one of several to the same bridge: its role is arbitrated
    /// with theirs through `roles`.
    pub fn join_roles(&mut self, roles: SharedRoles) {
        self.lock_roles().disconnect(self.conn);
        self.conn = roles.lock().unwrap_or_else(|e| e.into_inner()).connect();
        self.roles = roles;
    }

    /// This connection's id in its [`Roles`].
    pub fn conn_id(&self) -> ConnId {
        self.conn
    }

    /// This connection's role now (another connection's master request can demote it).
    pub fn role(&self) -> openflow::ControllerRole {
        self.lock_roles().role(self.conn)
    }

    fn lock_roles(&self) -> std::sync::MutexGuard<'_, Roles> {
        self.roles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slave's write is refused with OFPBRC_IS_SLAVE, as OVS does.
    fn refuse_slave(&mut self, xid: u32, frame: &[u8]) -> bool {
        if self.lock_roles().may_write(self.conn) {
            return false;
        }
        self.stats.slave_refusals += 1;
        self.error(xid, std_err(ErrorType::BadRequest, roles::IS_SLAVE), frame);
        true
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
                let answer = self
                    .lock_roles()
                    .request(self.conn, r.role, r.generation_id);
                match answer {
                    Ok(role) => self.out.push_back(OfpMessage::new(
                        xid,
                        Message::RoleReply(RoleMsg {
                            role,
                            generation_id: r.generation_id,
                        }),
                    )),
                    Err(refusal) => self.error(xid, refusal, frame),
                }
            }
            Message::FlowMod(_)
            | Message::GroupMod(_)
            | Message::BundleControl(_)
            | Message::BundleAdd(_)
                if self.refuse_slave(xid, frame) => {}
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
            Message::BundleAdd(a) => self.bundle_add(xid, a, frame),
            Message::MultipartRequest(r) => self.multipart(xid, r.body, frame, tables),
            Message::Experimenter(_) => self.error(
                xid,
                std_err(ErrorType::BadRequest, code::BAD_EXPERIMENTER),
                frame,
            ),
            _ => self.error(xid, std_err(ErrorType::BadRequest, code::BAD_TYPE), frame),
        }
    }

    fn multipart(&mut self, xid: u32, body: MultipartRequestBody, frame: &[u8], tables: &Tables) {
        let bodies: Vec<MultipartReplyBody> = match body {
            MultipartRequestBody::Flow(req) => {
                self.stats.flow_dumps += 1;
                encoded_parts(MultipartType::Flow, &tables.flow_stats(&req), |s, b| {
                    s.emit(b)
                })
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
                encoded_parts(MultipartType::GroupDesc, &tables.group_descs(), |g, b| {
                    g.emit(b)
                })
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

impl Drop for Switch {
    /// A closed connection holds no role (a master's departure leaves none).
    fn drop(&mut self) {
        self.lock_roles().disconnect(self.conn);
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
    use openflow::flow_flags::CHECK_OVERLAP as FLAG_CHECK_OVERLAP;
    use openflow::table::code;
    use openflow::{
        Action, BundleCtrlType, Field, FlowMod, FlowModCommand, GroupMod, GroupType, Instruction,
        Match, bundle_flags,
    };

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
        let mut parts: Vec<Vec<openflow::FlowStats>> = Vec::new();
        for (i, m) in out.iter().enumerate() {
            // As the controller reads it: the parts are encoded straight from the table.
            let bytes = m.to_bytes().unwrap();
            assert!(bytes.len() <= 65535);
            let m = OfpMessage::decode(&bytes).unwrap();
            let Message::MultipartReply(r) = m.body else {
                panic!()
            };
            assert_eq!(r.flags & openflow::MULTIPART_MORE != 0, i + 1 < out.len());
            let MultipartReplyBody::Flow(f) = r.body else {
                panic!("{:?}", r.body)
            };
            parts.push(f);
        }
        let len = |f: &openflow::FlowStats| {
            let mut b = BytesMut::new();
            f.emit(&mut b);
            b.len()
        };
        for pair in parts.windows(2) {
            let full: usize = pair[0].iter().map(len).sum();
            assert!(full <= PART_BUDGET && full + len(&pair[1][0]) > PART_BUDGET);
        }
        let dumped: Vec<_> = parts.into_iter().flatten().collect();
        assert_eq!(dumped.len(), 1000, "the flows with Weft's cookie");
        let req =
            openflow::FlowStatsRequest::every_flow(0x5745_0000_0000_0000, 0xffff_0000_0000_0000);
        let table = s.tables.flow_stats(&req);
        assert_eq!(dumped.len(), table.len());
        for (d, t) in dumped.iter().zip(&table) {
            let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
            d.emit(&mut a);
            t.emit(&mut b);
            assert_eq!(a, b);
        }
    }
}
