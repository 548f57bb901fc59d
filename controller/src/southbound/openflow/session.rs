//! The OpenFlow 1.3 session with one switch, without I/O: feed it every message the switch
//! sends ([`Session::handle_input`]) and the clock ([`Session::handle_timeout`]); take what
//! to send from [`Session::poll_output`] and what happened from [`Session::poll_event`].
//! Time is passed in, so tests drive it on virtual time.
//!
//! It owns the protocol mechanics: HELLO version negotiation (OpenFlow 1.3 only),
//! FEATURES_REQUEST for the datapath id, echo keepalives both ways, xid allocation,
//! barrier tracking, multipart reply reassembly, the switch's port table (PORT_STATUS) and
//! logging of ERROR messages with the offending request decoded. What to install is the
//! driver's business ([`super::serve`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use openflow::{
    ErrorKind, ErrorMsg, ErrorType, Hello, Message, MultipartReplyBody, OfpMessage, Port,
    PortReason, SwitchFeatures, print::print_message,
};

/// Timers and bounds of a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    /// Send an ECHO_REQUEST when this long passed since the last one.
    pub echo_interval: Duration,
    /// Declare the switch dead after this many echo requests in a row went unanswered.
    pub echo_max_missed: u32,
    /// Give up when HELLO + FEATURES have not completed in this time.
    pub handshake_timeout: Duration,
    /// Most parts one multipart reply may have before the session gives up on the switch.
    /// A part is at most 64 KiB on the wire, so this bounds what one reply can make us
    /// hold (OVS fills parts, so 4096 of them carry well over a million flows).
    pub max_multipart_parts: usize,
    /// Most ports the session tracks for one switch (PORT_STATUS, port description); a
    /// switch that announces more is broken or hostile and is disconnected. OVS's own
    /// limit is 65280 ports per bridge.
    pub max_ports: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            echo_interval: Duration::from_secs(5),
            echo_max_missed: 3,
            handshake_timeout: Duration::from_secs(30),
            max_multipart_parts: 4096,
            max_ports: 65_536,
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    #[error("the switch does not speak OpenFlow 1.3 (its HELLO: version {version:#x}, {hello})")]
    IncompatibleVersion { version: u8, hello: String },
    #[error("the switch refused our HELLO: {0}")]
    HelloRejected(String),
    #[error("no echo reply to {0} echo requests in a row: switch presumed dead")]
    EchoTimeout(u32),
    #[error("handshake (HELLO, FEATURES) not finished within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("no echo reply within {0:?} to a liveness probe")]
    ProbeTimeout(Duration),
    #[error("protocol violation: {0}")]
    Protocol(String),
}

/// What the session reports to its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// HELLO and FEATURES done: the switch is ready for requests.
    Ready(SwitchFeatures),
    /// A complete multipart reply (all parts, in order) to request `xid`.
    Multipart {
        xid: u32,
        parts: Vec<MultipartReplyBody>,
    },
    /// The BARRIER_REPLY for barrier `xid`: everything sent before it is processed.
    Barrier { xid: u32 },
    /// An ERROR answering request `xid` (already logged with the offending message).
    Error { xid: u32, error: ErrorMsg },
    /// A bundle control reply (open, commit, discard).
    BundleReply {
        xid: u32,
        ctrl: openflow::BundleControl,
    },
    /// A port was added, removed or changed.
    PortStatus { reason: PortReason, port: Port },
    /// The session is over; the driver sends what is queued and closes the connection.
    Closed(CloseReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// HELLO sent, waiting for the switch's.
    AwaitHello,
    /// FEATURES_REQUEST sent with this xid.
    AwaitFeatures(u32),
    Ready,
    Closed,
}

/// One switch connection's protocol state.
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    phase: Phase,
    started: Instant,
    next_xid: u32,
    out: VecDeque<OfpMessage>,
    events: VecDeque<SessionEvent>,
    features: Option<SwitchFeatures>,
    last_echo_sent: Instant,
    echo_outstanding: u32,
    /// Set by [`Session::probe`]: the switch must answer an echo by then or is dead.
    probe_deadline: Option<Instant>,
    barriers: BTreeSet<u32>,
    multipart: BTreeMap<u32, Vec<MultipartReplyBody>>,
    ports: BTreeMap<u32, Port>,
    /// A label for log lines (peer address, later the node).
    label: String,
}

impl Session {
    /// A new session; queues our HELLO at once.
    pub fn new(cfg: SessionConfig, now: Instant, label: impl Into<String>) -> Self {
        let mut s = Session {
            cfg,
            phase: Phase::AwaitHello,
            started: now,
            next_xid: 1,
            out: VecDeque::new(),
            events: VecDeque::new(),
            features: None,
            last_echo_sent: now,
            echo_outstanding: 0,
            probe_deadline: None,
            barriers: BTreeSet::new(),
            multipart: BTreeMap::new(),
            ports: BTreeMap::new(),
            label: label.into(),
        };
        let xid = s.alloc_xid();
        s.out.push_back(OfpMessage::hello(xid));
        s
    }

    /// Renames the session in log lines (e.g. once the node is known).
    pub fn set_label(&mut self, label: impl Into<String>) {
        self.label = label.into();
    }

    /// A fresh transaction id (never 0, wraps around).
    pub fn alloc_xid(&mut self) -> u32 {
        let x = self.next_xid;
        self.next_xid = self.next_xid.checked_add(1).unwrap_or(1);
        x
    }

    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    pub fn features(&self) -> Option<&SwitchFeatures> {
        self.features.as_ref()
    }

    /// The switch's ports as PORT_STATUS and the port description reported them.
    pub fn ports(&self) -> &BTreeMap<u32, Port> {
        &self.ports
    }

    /// Barriers sent whose reply has not arrived.
    pub fn pending_barriers(&self) -> usize {
        self.barriers.len()
    }

    /// Queues a request with a fresh xid; returns the xid.
    pub fn send(&mut self, body: Message) -> u32 {
        let xid = self.alloc_xid();
        self.send_with_xid(xid, body);
        xid
    }

    /// Queues a message with a given xid (bundle adds carry their own). Barriers and
    /// multipart requests sent this way are tracked like any other.
    pub fn send_with_xid(&mut self, xid: u32, body: Message) {
        if self.phase == Phase::Closed {
            return;
        }
        match &body {
            Message::BarrierRequest => {
                self.barriers.insert(xid);
            }
            Message::MultipartRequest(_) => {
                self.multipart.insert(xid, Vec::new());
            }
            _ => {}
        }
        self.out.push_back(OfpMessage::new(xid, body));
    }

    /// Queues a barrier; returns its xid.
    pub fn barrier(&mut self) -> u32 {
        self.send(Message::BarrierRequest)
    }

    /// Whether messages are waiting to be sent.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// The next message to send.
    pub fn poll_output(&mut self) -> Option<OfpMessage> {
        self.out.pop_front()
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] next has something to do.
    pub fn next_timeout(&self) -> Option<Instant> {
        let t = match self.phase {
            Phase::Closed => return None,
            Phase::AwaitHello | Phase::AwaitFeatures(_) => (self.started
                + self.cfg.handshake_timeout)
                .min(self.last_echo_sent + self.cfg.echo_interval),
            Phase::Ready => self.last_echo_sent + self.cfg.echo_interval,
        };
        Some(self.probe_deadline.map_or(t, |p| p.min(t)))
    }

    /// Asks the switch to prove it is alive now: an echo request goes out at once, and
    /// unless some echo reply arrives within `within` the session closes with
    /// [`CloseReason::ProbeTimeout`]. Used when another connection claims the same
    /// datapath: the live holder keeps its node, a dead one gives way quickly instead of
    /// after several echo intervals. A probe already running is not restarted.
    pub fn probe(&mut self, now: Instant, within: Duration) {
        if self.phase == Phase::Closed || self.probe_deadline.is_some() {
            return;
        }
        self.probe_deadline = Some(now + within);
        self.echo_outstanding += 1;
        self.last_echo_sent = now;
        let xid = self.alloc_xid();
        self.out
            .push_back(OfpMessage::echo_request(xid, Vec::new()));
    }

    fn close(&mut self, reason: CloseReason) {
        if self.phase == Phase::Closed {
            return;
        }
        tracing::warn!(switch = %self.label, %reason, "OpenFlow session closing");
        self.phase = Phase::Closed;
        self.events.push_back(SessionEvent::Closed(reason));
    }

    /// Advances the clock: sends an echo when due, declares the switch dead after too many
    /// unanswered ones, and enforces the handshake deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        if !self.is_ready() && now >= self.started + self.cfg.handshake_timeout {
            self.close(CloseReason::HandshakeTimeout(self.cfg.handshake_timeout));
            return;
        }
        if let Some(deadline) = self.probe_deadline
            && now >= deadline
        {
            let waited = now.saturating_duration_since(self.last_echo_sent);
            self.close(CloseReason::ProbeTimeout(waited));
            return;
        }
        if now >= self.last_echo_sent + self.cfg.echo_interval {
            if self.echo_outstanding >= self.cfg.echo_max_missed {
                self.close(CloseReason::EchoTimeout(self.echo_outstanding));
                return;
            }
            self.echo_outstanding += 1;
            self.last_echo_sent = now;
            let xid = self.alloc_xid();
            self.out
                .push_back(OfpMessage::echo_request(xid, Vec::new()));
        }
    }

    /// Processes one message from the switch.
    pub fn handle_input(&mut self, msg: OfpMessage) {
        if self.phase == Phase::Closed {
            return;
        }
        let xid = msg.xid;
        match (self.phase, msg.body) {
            // Echo works in every phase, both ways.
            (_, Message::EchoRequest(data)) => {
                self.out
                    .push_back(OfpMessage::new(xid, Message::EchoReply(data)));
            }
            (_, Message::EchoReply(_)) => {
                self.echo_outstanding = 0;
                self.probe_deadline = None;
            }
            (Phase::AwaitHello, Message::Hello(hello)) => self.on_hello(msg.version, &hello),
            (Phase::AwaitHello, Message::Error(e)) => {
                let text = describe_error(&e);
                self.close(CloseReason::HelloRejected(text));
            }
            (Phase::AwaitHello, other) => self.close(CloseReason::Protocol(format!(
                "expected HELLO first, got message type {}",
                other.msg_type()
            ))),
            (Phase::AwaitFeatures(want), Message::FeaturesReply(f)) if xid == want => {
                tracing::info!(switch = %self.label, dpid = %format_args!("{:016x}", f.datapath_id), n_tables = f.n_tables, "OpenFlow switch ready");
                self.features = Some(f);
                self.phase = Phase::Ready;
                let xid = self.alloc_xid();
                self.send_with_xid(xid, port_desc_body());
                self.events.push_back(SessionEvent::Ready(f));
            }
            (_, Message::Error(e)) => {
                self.barriers.remove(&xid);
                self.multipart.remove(&xid);
                tracing::warn!(switch = %self.label, xid, error = %describe_error(&e), "switch reported an error");
                if matches!(self.phase, Phase::AwaitFeatures(want) if want == xid) {
                    self.close(CloseReason::Protocol(format!(
                        "FEATURES_REQUEST failed: {}",
                        describe_error(&e)
                    )));
                    return;
                }
                self.events.push_back(SessionEvent::Error { xid, error: e });
            }
            (_, Message::BarrierReply) => {
                if self.barriers.remove(&xid) {
                    self.events.push_back(SessionEvent::Barrier { xid });
                } else {
                    tracing::debug!(switch = %self.label, xid, "barrier reply to no barrier of ours");
                }
            }
            (_, Message::MultipartReply(r)) => self.on_multipart(xid, r),
            (_, Message::PortStatus(ps)) => {
                match ps.reason {
                    PortReason::Delete => {
                        self.ports.remove(&ps.desc.port_no);
                    }
                    _ => {
                        self.ports.insert(ps.desc.port_no, ps.desc.clone());
                        if self.too_many_ports() {
                            return;
                        }
                    }
                }
                tracing::debug!(switch = %self.label, port = ps.desc.port_no, reason = ?ps.reason, "port status");
                self.events.push_back(SessionEvent::PortStatus {
                    reason: ps.reason,
                    port: ps.desc,
                });
            }
            (_, Message::BundleControl(ctrl)) => {
                self.events
                    .push_back(SessionEvent::BundleReply { xid, ctrl });
            }
            (_, Message::Hello(_)) => {
                tracing::debug!(switch = %self.label, "ignoring a second HELLO");
            }
            (_, other) => {
                tracing::debug!(switch = %self.label, xid, msg_type = other.msg_type(), "ignoring unsolicited message");
            }
        }
    }

    fn on_hello(&mut self, version: u8, hello: &Hello) {
        if !hello.supports_of13(version) {
            let reason = CloseReason::IncompatibleVersion {
                version,
                hello: format!("{hello:?}"),
            };
            let text = format!(
                "weftd supports only OpenFlow 1.3 (wire version 0x04); this switch offered version {version:#x}"
            );
            // Reply in the peer's own version, which it can parse (the ERROR layout is
            // the same in every version).
            let mut err = OfpMessage::new(
                0,
                Message::Error(ErrorMsg {
                    kind: ErrorKind::Standard {
                        err_type: ErrorType::HelloFailed,
                        code: 0, // OFPHFC_INCOMPATIBLE
                    },
                    data: text.into_bytes(),
                }),
            );
            err.version = version.min(openflow::OFP_VERSION);
            self.out.push_back(err);
            self.close(reason);
            return;
        }
        let xid = self.alloc_xid();
        self.out.push_back(OfpMessage::features_request(xid));
        self.phase = Phase::AwaitFeatures(xid);
    }

    fn on_multipart(&mut self, xid: u32, reply: openflow::MultipartReply) {
        if !self.multipart.contains_key(&xid) {
            tracing::debug!(switch = %self.label, xid, "multipart reply to no request of ours");
            return;
        }
        let more = reply.flags & openflow::MULTIPART_MORE != 0;
        if let MultipartReplyBody::PortDesc(ports) = &reply.body {
            for p in ports {
                self.ports.insert(p.port_no, p.clone());
            }
            if self.too_many_ports() {
                return;
            }
        }
        let Some(parts) = self.multipart.get_mut(&xid) else {
            return;
        };
        parts.push(reply.body);
        if parts.len() > self.cfg.max_multipart_parts {
            self.close(CloseReason::Protocol(format!(
                "multipart reply {xid} has more than {} parts",
                self.cfg.max_multipart_parts
            )));
            return;
        }
        if !more && let Some(parts) = self.multipart.remove(&xid) {
            self.events
                .push_back(SessionEvent::Multipart { xid, parts });
        }
    }
}

impl Session {
    /// Closes the session if the switch announced more ports than any real one has.
    fn too_many_ports(&mut self) -> bool {
        if self.ports.len() <= self.cfg.max_ports {
            return false;
        }
        let n = self.ports.len();
        self.ports.clear();
        self.close(CloseReason::Protocol(format!(
            "the switch announced {n} ports, more than the {} a session tracks",
            self.cfg.max_ports
        )));
        true
    }
}

fn port_desc_body() -> Message {
    OfpMessage::port_desc_request(0).body
}

/// ONF's experimenter id (`"ONF\0"`), under which OpenFlow 1.3 bundle errors come.
const ONF_EXPERIMENTER: u32 = 0x4f4e_4600;

/// Names of the ONF extension 230 bundle errors (OpenFlow 1.3), as OVS prints them.
fn onf_bundle_error(exp_type: u16) -> Option<&'static str> {
    const NAMES: &[&str] = &[
        "UNKNOWN",
        "EPERM",
        "BAD_ID",
        "BUNDLE_EXIST",
        "BUNDLE_CLOSED",
        "OUT_OF_BUNDLES",
        "BAD_TYPE",
        "BAD_FLAGS",
        "MSG_BAD_LEN",
        "MSG_BAD_XID",
        "MSG_UNSUP",
        "MSG_CONFLICT",
        "MSG_TOO_MANY",
        "MSG_FAILED",
        "TIMEOUT",
        "BUNDLE_IN_PROGRESS",
    ];
    exp_type
        .checked_sub(2300)
        .and_then(|i| NAMES.get(usize::from(i)).copied())
}

/// OpenFlow's (or ONF's bundle extension's) name for an ERROR, e.g. `OFPFMFC_TABLE_FULL`.
pub fn error_name(e: &ErrorMsg) -> String {
    match e.kind {
        ErrorKind::Standard { err_type, code } => openflow::error_name(err_type, code),
        ErrorKind::Experimenter {
            exp_type,
            experimenter,
        } => match (experimenter, onf_bundle_error(exp_type)) {
            (ONF_EXPERIMENTER, Some(n)) => format!("ONFBFC_{n}"),
            _ => format!("experimenter {experimenter:#x} type {exp_type}"),
        },
    }
}

/// An ERROR as one line: its name and the offending request decoded (`ovs-ofctl`
/// style), or the text a HELLO_FAILED carries.
pub fn describe_error(e: &ErrorMsg) -> String {
    let name = error_name(e);
    let detail = match (e.kind, e.offending()) {
        (
            ErrorKind::Standard {
                err_type: ErrorType::HelloFailed,
                ..
            },
            _,
        ) => String::from_utf8_lossy(&e.data).into_owned(),
        (_, Some(m)) => print_message(&m),
        (_, None) if e.data.is_empty() => String::new(),
        (_, None) => format!("{} bytes of an undecodable request", e.data.len()),
    };
    if detail.is_empty() {
        name
    } else {
        format!("{name}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openflow::{HelloElement, MULTIPART_MORE, MultipartReply, MultipartReplyBody};

    fn drain(s: &mut Session) -> Vec<OfpMessage> {
        std::iter::from_fn(|| s.poll_output()).collect()
    }
    fn events(s: &mut Session) -> Vec<SessionEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    fn features(dpid: u64) -> SwitchFeatures {
        SwitchFeatures {
            datapath_id: dpid,
            n_tables: 254,
            ..Default::default()
        }
    }

    /// A session past HELLO and FEATURES, outputs drained.
    fn ready(t0: Instant) -> Session {
        let mut s = Session::new(SessionConfig::default(), t0, "test");
        let out = drain(&mut s);
        assert!(matches!(
            out[..],
            [OfpMessage {
                body: Message::Hello(_),
                ..
            }]
        ));
        s.handle_input(OfpMessage::new(1, Message::Hello(Hello::of13())));
        let out = drain(&mut s);
        let [
            OfpMessage {
                xid,
                body: Message::FeaturesRequest,
                ..
            },
        ] = out[..]
        else {
            panic!("{out:?}")
        };
        s.handle_input(OfpMessage::new(
            xid,
            Message::FeaturesReply(features(0xabc)),
        ));
        assert_eq!(events(&mut s), vec![SessionEvent::Ready(features(0xabc))]);
        drain(&mut s);
        s
    }

    #[test]
    fn negotiates_of13_and_learns_the_datapath() {
        let t0 = Instant::now();
        let s = ready(t0);
        assert!(s.is_ready());
        assert_eq!(s.features().map(|f| f.datapath_id), Some(0xabc));
    }

    #[test]
    fn hello_with_a_bitmap_including_1_3_is_accepted_whatever_the_header() {
        let mut s = Session::new(SessionConfig::default(), Instant::now(), "t");
        drain(&mut s);
        let mut h = OfpMessage::new(
            9,
            Message::Hello(Hello {
                elements: vec![HelloElement::VersionBitmap(vec![(1 << 4) | (1 << 6)])],
            }),
        );
        h.version = 6;
        s.handle_input(h);
        assert!(matches!(
            drain(&mut s)[..],
            [OfpMessage {
                body: Message::FeaturesRequest,
                ..
            }]
        ));
    }

    #[test]
    fn of10_only_hello_gets_hello_failed_and_close() {
        let mut s = Session::new(SessionConfig::default(), Instant::now(), "t");
        drain(&mut s);
        let mut h = OfpMessage::new(3, Message::Hello(Hello::default()));
        h.version = 1;
        s.handle_input(h);
        let out = drain(&mut s);
        let [
            OfpMessage {
                version: 1,
                body: Message::Error(ref e),
                ..
            },
        ] = out[..]
        else {
            panic!("{out:?}")
        };
        assert_eq!(
            e.kind,
            ErrorKind::Standard {
                err_type: ErrorType::HelloFailed,
                code: 0
            }
        );
        assert!(String::from_utf8_lossy(&e.data).contains("only OpenFlow 1.3"));
        // The error must encode (version 1 header) for the driver to send it.
        assert!(out[0].to_bytes().is_ok());
        assert!(matches!(
            events(&mut s)[..],
            [SessionEvent::Closed(CloseReason::IncompatibleVersion {
                version: 1,
                ..
            })]
        ));
        assert!(s.is_closed());
        // A closed session ignores everything.
        s.handle_input(OfpMessage::new(4, Message::EchoRequest(vec![])));
        assert!(drain(&mut s).is_empty());
    }

    #[test]
    fn answers_echo_and_keeps_its_own_alive() {
        let t0 = Instant::now();
        let mut s = ready(t0);
        s.handle_input(OfpMessage::new(77, Message::EchoRequest(vec![1, 2])));
        assert_eq!(
            drain(&mut s),
            vec![OfpMessage::new(77, Message::EchoReply(vec![1, 2]))]
        );
        let iv = SessionConfig::default().echo_interval;
        assert_eq!(s.next_timeout(), Some(t0 + iv));
        s.handle_timeout(t0 + iv - Duration::from_millis(1));
        assert!(drain(&mut s).is_empty());
        // Answered echoes keep the session alive indefinitely.
        for i in 1..=10u32 {
            s.handle_timeout(t0 + iv * i);
            let out = drain(&mut s);
            let [
                OfpMessage {
                    xid,
                    body: Message::EchoRequest(_),
                    ..
                },
            ] = out[..]
            else {
                panic!("{out:?}")
            };
            s.handle_input(OfpMessage::new(xid, Message::EchoReply(vec![])));
        }
        assert!(!s.is_closed());
    }

    #[test]
    fn unanswered_echoes_declare_the_switch_dead() {
        let t0 = Instant::now();
        let mut s = ready(t0);
        let cfg = SessionConfig::default();
        for i in 1..=cfg.echo_max_missed {
            s.handle_timeout(t0 + cfg.echo_interval * i);
            assert!(matches!(
                drain(&mut s)[..],
                [OfpMessage {
                    body: Message::EchoRequest(_),
                    ..
                }]
            ));
            assert!(!s.is_closed());
        }
        s.handle_timeout(t0 + cfg.echo_interval * (cfg.echo_max_missed + 1));
        assert!(s.is_closed());
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::Closed(CloseReason::EchoTimeout(
                cfg.echo_max_missed
            ))]
        );
    }

    #[test]
    fn handshake_has_a_deadline() {
        let t0 = Instant::now();
        let cfg = SessionConfig::default();
        let mut s = Session::new(cfg, t0, "t");
        s.handle_timeout(t0 + cfg.handshake_timeout);
        assert!(s.is_closed());
    }

    #[test]
    fn multipart_parts_are_reassembled_until_more_is_clear() {
        let t0 = Instant::now();
        let mut s = ready(t0);
        let xid = s.send(OfpMessage::group_desc_request(0).body);
        drain(&mut s);
        let part = |flags, id| {
            Message::MultipartReply(MultipartReply {
                flags,
                body: MultipartReplyBody::GroupDesc(vec![openflow::GroupDesc {
                    group_type: openflow::GroupType::All,
                    group_id: id,
                    buckets: vec![],
                }]),
            })
        };
        s.handle_input(OfpMessage::new(xid, part(MULTIPART_MORE, 1)));
        s.handle_input(OfpMessage::new(xid, part(MULTIPART_MORE, 2)));
        // A reply to someone else's request does not disturb ours.
        s.handle_input(OfpMessage::new(xid + 100, part(0, 9)));
        assert!(events(&mut s).is_empty());
        s.handle_input(OfpMessage::new(xid, part(0, 3)));
        let ev = events(&mut s);
        let [
            SessionEvent::Multipart {
                xid: got,
                ref parts,
            },
        ] = ev[..]
        else {
            panic!("{ev:?}")
        };
        assert_eq!(got, xid);
        let ids: Vec<u32> = parts
            .iter()
            .flat_map(|p| match p {
                MultipartReplyBody::GroupDesc(v) => v.iter().map(|g| g.group_id).collect(),
                _ => vec![],
            })
            .collect();
        assert_eq!(ids, vec![1, 2, 3]);
    }

    #[test]
    fn barriers_are_tracked_and_errors_reported_with_their_xid() {
        let t0 = Instant::now();
        let mut s = ready(t0);
        let fm = openflow::FlowMod::add(0, 1, openflow::Match::default(), vec![]);
        let fm_xid = s.send(Message::FlowMod(fm.clone()));
        let b1 = s.barrier();
        let b2 = s.barrier();
        assert_eq!(s.pending_barriers(), 2);
        let out = drain(&mut s);
        assert_eq!(out.len(), 3);
        let offending = out[0].to_bytes().unwrap();
        let err = ErrorMsg {
            kind: ErrorKind::Standard {
                err_type: ErrorType::BadInstruction,
                code: 2,
            },
            data: offending,
        };
        s.handle_input(OfpMessage::new(fm_xid, Message::Error(err.clone())));
        s.handle_input(OfpMessage::new(b2, Message::BarrierReply));
        s.handle_input(OfpMessage::new(b1, Message::BarrierReply));
        s.handle_input(OfpMessage::new(b1, Message::BarrierReply)); // duplicate: ignored
        assert_eq!(
            events(&mut s),
            vec![
                SessionEvent::Error {
                    xid: fm_xid,
                    error: err.clone()
                },
                SessionEvent::Barrier { xid: b2 },
                SessionEvent::Barrier { xid: b1 },
            ]
        );
        assert_eq!(s.pending_barriers(), 0);
        let text = describe_error(&err);
        assert!(
            text.starts_with("OFPBIC_BAD_TABLE_ID: OFPT_FLOW_MOD"),
            "{text}"
        );
    }

    #[test]
    fn port_status_updates_the_port_table() {
        let t0 = Instant::now();
        let mut s = ready(t0);
        let port = Port {
            port_no: 5,
            ..Default::default()
        };
        s.handle_input(OfpMessage::new(
            0,
            Message::PortStatus(openflow::PortStatus {
                reason: PortReason::Add,
                desc: port.clone(),
            }),
        ));
        assert!(s.ports().contains_key(&5));
        s.handle_input(OfpMessage::new(
            0,
            Message::PortStatus(openflow::PortStatus {
                reason: PortReason::Delete,
                desc: port,
            }),
        ));
        assert!(!s.ports().contains_key(&5));
        assert_eq!(events(&mut s).len(), 2);
    }

    #[test]
    fn two_sessions_talk_to_each_other() {
        // Our session against a minimal scripted switch, on virtual time.
        let t0 = Instant::now();
        let mut s = Session::new(SessionConfig::default(), t0, "t");
        let mut ready = false;
        for _ in 0..10 {
            while let Some(m) = s.poll_output() {
                let reply = match m.body {
                    Message::Hello(_) => {
                        Some(OfpMessage::new(m.xid, Message::Hello(Hello::of13())))
                    }
                    Message::FeaturesRequest => {
                        Some(OfpMessage::new(m.xid, Message::FeaturesReply(features(7))))
                    }
                    _ => None,
                };
                if let Some(r) = reply {
                    // Round-trip through bytes, as on the wire.
                    let b = r.to_bytes().unwrap();
                    s.handle_input(OfpMessage::decode(&b).unwrap());
                }
            }
            while let Some(e) = s.poll_event() {
                ready |= matches!(e, SessionEvent::Ready(f) if f.datapath_id == 7);
            }
        }
        assert!(ready);
    }

    /// Another connection claimed this datapath: a probe demands an echo reply within
    /// its deadline. Answered, the session lives on; unanswered, it closes at the
    /// deadline, long before the regular echo timeout.
    #[test]
    fn probe_keeps_a_live_switch_and_closes_a_silent_one() {
        let t0 = Instant::now();
        let within = Duration::from_secs(2);
        let mut s = ready(t0);
        s.probe(t0, within);
        let out = drain(&mut s);
        let [
            OfpMessage {
                xid,
                body: Message::EchoRequest(_),
                ..
            },
        ] = out[..]
        else {
            panic!("{out:?}")
        };
        assert_eq!(s.next_timeout(), Some(t0 + within));
        s.handle_input(OfpMessage::new(xid, Message::EchoReply(Vec::new())));
        s.handle_timeout(t0 + within);
        assert!(!s.is_closed());

        let t1 = t0 + Duration::from_secs(3);
        s.probe(t1, within);
        drain(&mut s);
        s.handle_timeout(t1 + Duration::from_secs(1));
        assert!(!s.is_closed());
        s.handle_timeout(t1 + within);
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::Closed(CloseReason::ProbeTimeout(within))]
        );
    }

    /// A switch announcing more ports than any real bridge has is disconnected, and the
    /// port table it filled is released.
    #[test]
    fn too_many_ports_close_the_session() {
        let t0 = Instant::now();
        let cfg = SessionConfig {
            max_ports: 3,
            ..SessionConfig::default()
        };
        let mut s = Session::new(cfg, t0, "t");
        drain(&mut s);
        s.handle_input(OfpMessage::new(1, Message::Hello(Hello::of13())));
        let xid = drain(&mut s)[0].xid;
        s.handle_input(OfpMessage::new(xid, Message::FeaturesReply(features(1))));
        events(&mut s);
        for port_no in 1..=4 {
            s.handle_input(OfpMessage::new(
                0,
                Message::PortStatus(openflow::PortStatus {
                    reason: PortReason::Add,
                    desc: Port {
                        port_no,
                        ..Default::default()
                    },
                }),
            ));
        }
        let ev = events(&mut s);
        assert!(
            matches!(ev.last(), Some(SessionEvent::Closed(CloseReason::Protocol(m))) if m.contains("4 ports")),
            "{ev:?}"
        );
        assert!(s.is_closed());
        assert!(s.ports().is_empty());
    }
}
