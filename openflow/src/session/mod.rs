//! The OpenFlow 1.3 session with one switch, without I/O: feed it every message the switch
//! sends ([`Session::handle_input`]) and the clock ([`Session::handle_timeout`]); take what
//! to send from [`Session::poll_output`] and what happened from [`Session::poll_event`].
//! Time is passed in, so tests drive it on virtual time.
//!
//! It owns the protocol mechanics: HELLO version negotiation (OpenFlow 1.3 only),
//! FEATURES_REQUEST for the datapath id, echo keepalives both ways, xid allocation,
//! barrier tracking, multipart reply reassembly, the switch's port table (PORT_STATUS) and
//! logging of ERROR messages with the offending request decoded. What to install is the
//! driver's business (Weft's controller runs it over a socket in its OpenFlow southbound).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::{
    ErrorKind, ErrorMsg, ErrorType, Hello, Message, MultipartReplyBody, OfpMessage, Port,
    PortReason, SwitchFeatures, print::print_message,
};

/// Timers and bounds of a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    /// Send an ECHO_REQUEST when the switch sent nothing else for this long. Only an idle
    /// connection is probed: every probe wakes the switch's main loop and, when the
    /// controller is reached over a userspace-datapath bridge, crosses that datapath
    /// twice, which a hypervisor pays for in CPU its VMs could use.
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
            echo_interval: Duration::from_secs(10),
            echo_max_missed: 2,
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
        ctrl: crate::BundleControl,
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

/// How many slots a drained queue keeps. An install queues a whole bundle (thousands of
/// flow mods) at once; a queue never gives back the room it grew to, so without this every
/// connection kept that bundle's slots for good (about 190 KB per switch, 0.2 GB at 1,000
/// switches, with nothing in them).
const KEPT_QUEUE_SLOTS: usize = 64;

/// The front of `queue`; when that empties a queue that had grown past
/// [`KEPT_QUEUE_SLOTS`], its room goes back to the allocator.
fn pop_releasing<T>(queue: &mut VecDeque<T>) -> Option<T> {
    let front = queue.pop_front();
    if queue.is_empty() && queue.capacity() > KEPT_QUEUE_SLOTS {
        queue.shrink_to(KEPT_QUEUE_SLOTS);
    }
    front
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
    /// Start of the current liveness interval: at its end the switch is probed unless it
    /// was [`Self::heard`] from meanwhile.
    tick: Instant,
    /// Something other than an echo reply arrived in the current interval.
    heard: bool,
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
            tick: now,
            heard: false,
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
        pop_releasing(&mut self.out)
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        pop_releasing(&mut self.events)
    }

    /// When [`Session::handle_timeout`] next has something to do.
    pub fn next_timeout(&self) -> Option<Instant> {
        let t = match self.phase {
            Phase::Closed => return None,
            Phase::AwaitHello | Phase::AwaitFeatures(_) => {
                (self.started + self.cfg.handshake_timeout).min(self.tick + self.cfg.echo_interval)
            }
            Phase::Ready => self.tick + self.cfg.echo_interval,
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

    /// Advances the clock: sends an echo after an interval in which the switch sent
    /// nothing, declares it dead after too many unanswered ones in a row, and enforces the
    /// handshake deadline.
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
        if now >= self.tick + self.cfg.echo_interval {
            self.tick = now;
            if std::mem::take(&mut self.heard) {
                // It spoke: alive, whatever became of an earlier echo.
                self.echo_outstanding = 0;
                return;
            }
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
        // An echo reply answers our probe and does not count as the switch speaking, so
        // that an idle connection is probed once an interval, not every other one.
        if !matches!(msg.body, Message::EchoReply(_)) {
            self.heard = true;
        }
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
            err.version = version.min(crate::OFP_VERSION);
            self.out.push_back(err);
            self.close(reason);
            return;
        }
        let xid = self.alloc_xid();
        self.out.push_back(OfpMessage::features_request(xid));
        self.phase = Phase::AwaitFeatures(xid);
    }

    fn on_multipart(&mut self, xid: u32, reply: crate::MultipartReply) {
        if !self.multipart.contains_key(&xid) {
            tracing::debug!(switch = %self.label, xid, "multipart reply to no request of ours");
            return;
        }
        let more = reply.flags & crate::MULTIPART_MORE != 0;
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
        ErrorKind::Standard { err_type, code } => crate::error_name(err_type, code),
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
mod tests;
