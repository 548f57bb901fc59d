//! The OpenFlow southbound: switches' integration bridges connect in (`tcp:0.0.0.0:6653`),
//! one task per connection runs a [`session::Session`] over the socket, finds the node the
//! switch belongs to by datapath id, and keeps the switch's flows and groups equal to the
//! node's desired state with the [`crate::reconcile`] diff: a dump on (re)connect, then
//! only the difference, inside one atomic ordered bundle followed by a barrier. Never a
//! flush: a reconnect or a weftd restart leaves traffic flowing.
//!
//! Wiring (weftd): `serve(cfg.openflow_listen, topology, channels, observed, shutdown_token)`; the
//! returned [`OpenFlowServer`] reports the bound address and counters.

pub use openflow::session;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::{Sink, SinkExt, StreamExt};
use openflow::codec::{CodecError, OfpCodec};
use openflow::{
    BundleCtrlType, ErrorKind, ErrorMsg, ErrorType, FlowContent, FlowKey, Message, OfpMessage,
    bundle_flags, print::print_message,
};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::codec::{Decoder, Encoder, Framed};
use tokio_util::sync::CancellationToken;

use crate::compiler::cookie_for;

use crate::channels::Channels;
use crate::desired::{DesiredNode, GroupSpec};
use crate::observed::{FlowRejection, InstalledFlows, ObservedState, TransportNode};
use crate::reconcile;
use crate::topology::TransportNodes;
use openflow::session::{
    CloseReason, Session, SessionConfig, SessionEvent, describe_error, error_name,
};

/// Tunables of the OpenFlow southbound.
#[derive(Debug, Clone, Copy)]
pub struct OpenFlowSettings {
    pub session: SessionConfig,
    /// How long one round trip (dump, bundle + barrier) may take before the connection is
    /// given up as broken.
    pub request_timeout: Duration,
    /// How often to log that a switch's datapath id still matches no known node.
    pub association_log_interval: Duration,
    /// First and largest wait before retrying a failed install.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// How long one write to a switch may make no progress (it is not reading what we
    /// send: its socket buffer and ours are full) before the connection is dropped. What
    /// is queued per connection is bounded by the session (one reply per message read)
    /// and the codec's buffer, never by the peer.
    pub write_stall_timeout: Duration,
    /// How often, at most, to log a summary of what a switch sent that weftd drops
    /// (PACKET_INs, undecodable messages).
    pub noise_log_interval: Duration,
    /// How many switches are resynchronised (flow dump, diff, install) at once. After a
    /// weftd restart or a network blip thousands of switches connect together; taking
    /// all their dumps at once starves the runtime for longer than the switches' echo
    /// timeouts, they drop the connection, and the resync feeds on itself. The others
    /// wait their turn with their sessions alive (echoes answered).
    pub max_concurrent_resyncs: usize,
}

/// Default [`OpenFlowSettings::max_concurrent_resyncs`]: enough to keep every core busy
/// while one resync waits on its switch, few enough to keep each one short.
pub fn default_concurrent_resyncs() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 32).max(32)
}

impl Default for OpenFlowSettings {
    fn default() -> Self {
        OpenFlowSettings {
            session: SessionConfig::default(),
            request_timeout: Duration::from_secs(60),
            association_log_interval: Duration::from_secs(10),
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            write_stall_timeout: Duration::from_secs(10),
            noise_log_interval: Duration::from_secs(10),
            max_concurrent_resyncs: default_concurrent_resyncs(),
        }
    }
}

/// Counters for tests and `system_status`.
#[derive(Debug, Default)]
pub struct OpenFlowStats {
    /// Connections that completed the handshake.
    pub sessions: AtomicU64,
    /// Flow/group dumps taken (one per association, plus one per failed install).
    pub dumps: AtomicU64,
    /// Reconciliations that found the switch already in the desired state.
    pub empty_diffs: AtomicU64,
    /// Installs (bundle or plain) acknowledged by a barrier without error.
    pub installs: AtomicU64,
    /// Flow and group mods sent in successful and failed installs.
    pub changes_sent: AtomicU64,
    /// Installs the switch rejected.
    pub failed_installs: AtomicU64,
    /// Resyncs that had to wait for a turn ([`OpenFlowSettings::max_concurrent_resyncs`]).
    pub resync_waits: AtomicU64,
}

impl OpenFlowStats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
    fn bump(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// A running listener.
#[derive(Debug)]
pub struct OpenFlowServer {
    pub local_addr: SocketAddr,
    pub stats: Arc<OpenFlowStats>,
    task: JoinHandle<()>,
}

impl OpenFlowServer {
    /// Waits for the accept loop to end (after the shutdown token is cancelled).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// Binds `listen` and serves switches until `shutdown` is cancelled.
pub async fn serve(
    listen: SocketAddr,
    topology: Arc<TransportNodes>,
    channels: Arc<Channels>,
    observed: Arc<ObservedState>,
    shutdown: CancellationToken,
) -> std::io::Result<OpenFlowServer> {
    serve_with(
        listen,
        topology,
        channels,
        observed,
        shutdown,
        OpenFlowSettings::default(),
    )
    .await
}

/// [`serve`] with explicit settings.
pub async fn serve_with(
    listen: SocketAddr,
    topology: Arc<TransportNodes>,
    channels: Arc<Channels>,
    observed: Arc<ObservedState>,
    shutdown: CancellationToken,
    settings: OpenFlowSettings,
) -> std::io::Result<OpenFlowServer> {
    // A deep accept queue: thousands of switches connect at once after a weftd restart.
    let listener = ovsdb::listen_tcp(&listen.to_string(), ovsdb::LISTEN_BACKLOG).await?;
    let local_addr = listener.local_addr()?;
    tracing::info!(%local_addr, "OpenFlow listener up");
    let stats = Arc::new(OpenFlowStats::default());
    let ctx = Arc::new(Ctx {
        current: std::sync::Mutex::new(BTreeMap::new()),
        released: tokio::sync::Notify::new(),
        next_conn: AtomicU64::new(1),
        topology,
        channels,
        observed,
        settings,
        stats: stats.clone(),
        shutdown: shutdown.clone(),
        resyncs: tokio::sync::Semaphore::new(settings.max_concurrent_resyncs.max(1)),
    });
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let ctx = ctx.clone();
                    tokio::spawn(async move { run_connection(stream, peer, ctx).await });
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "OpenFlow accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        tracing::info!(%local_addr, "OpenFlow listener stopped");
    });
    Ok(OpenFlowServer {
        local_addr,
        stats,
        task,
    })
}

struct Ctx {
    /// The connection serving each node. A second connection that presents the same
    /// datapath id (a duplicate or impersonating switch, or the real switch reconnecting
    /// while its old connection is not yet known dead) waits until this one ends.
    current: std::sync::Mutex<BTreeMap<String, Holder>>,
    /// Woken when a connection gives up its node.
    released: tokio::sync::Notify,
    next_conn: AtomicU64,
    topology: Arc<TransportNodes>,
    channels: Arc<Channels>,
    observed: Arc<ObservedState>,
    settings: OpenFlowSettings,
    stats: Arc<OpenFlowStats>,
    shutdown: CancellationToken,
    /// Turns for resyncs (see [`OpenFlowSettings::max_concurrent_resyncs`]).
    resyncs: tokio::sync::Semaphore,
}

/// The connection that serves a node.
#[derive(Debug, Clone)]
struct Holder {
    id: u64,
    peer: SocketAddr,
    /// Asks that connection to prove it is alive ([`Session::probe`]).
    probe: Arc<tokio::sync::Notify>,
}

impl Ctx {
    fn current_conns(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Holder>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("{0}")]
    Closed(CloseReason),
    #[error("connection closed by the switch")]
    Eof,
    #[error("{0}")]
    Codec(#[from] CodecError),
    #[error("timed out waiting for the switch ({0})")]
    Timeout(&'static str),
    #[error("write to the switch made no progress for {0:?}: it is not reading")]
    WriteStalled(Duration),
    #[error(
        "undecodable message (type {msg_type}, xid {xid:#x}) before the handshake finished: {error}"
    )]
    Undecodable {
        msg_type: u8,
        xid: u32,
        error: openflow::Error,
    },
    #[error("shutting down")]
    Shutdown,
}

/// [`OfpCodec`], except that a frame that does not decode is handed up as an item (the
/// driver decides: fatal during the handshake, counted and skipped after it) instead of
/// ending the stream, and PACKET_INs are dropped without being decoded: Weft installs no
/// flow that sends to the controller, so they are noise, and a flood of them must cost as
/// little as possible.
#[derive(Debug, Default)]
struct LenientCodec(OfpCodec);

/// OFPT_PACKET_IN.
const OFPT_PACKET_IN: u8 = 10;

#[derive(Debug)]
enum Frame {
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

/// What a switch sent that weftd drops, counted for rate-limited log lines.
#[derive(Debug, Default)]
struct Noise {
    packet_ins: u64,
    undecodable: u64,
    /// Counts already logged.
    reported: (u64, u64),
    last_report: Option<tokio::time::Instant>,
}

impl Noise {
    /// Logs what was dropped since the last report, at most once per `every` (at once
    /// the first time, or when `force`d at the end), so a flood costs one line per
    /// interval, not one per message.
    fn report(&mut self, switch: &str, every: Duration, force: bool) {
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

/// A connection's read or write buffer larger than this is freed once empty.
const SHRINK_BUFFER_ABOVE: usize = 64 * 1024;

/// A socket plus its session.
struct Conn {
    framed: Framed<TcpStream, LenientCodec>,
    session: Session,
    label: String,
    shutdown: CancellationToken,
    write_stall_timeout: Duration,
    /// Another connection claimed this one's datapath: prove the switch is alive.
    probe: Arc<tokio::sync::Notify>,
    noise: Noise,
    noise_log_interval: Duration,
}

impl Conn {
    /// Sends everything the session queued. Cancel-safe: a message leaves the session
    /// only once the codec has room for it, so a flush cut short by a select loses
    /// nothing and the next one resumes.
    async fn flush(&mut self) -> Result<(), ConnError> {
        // Also when only the codec's buffer holds bytes (a flush cut short by a select).
        if !self.session.has_output() && self.framed.write_buffer().is_empty() {
            return Ok(());
        }
        // A switch that stops reading must not hold this task (or its memory) forever:
        // each step (room in the codec's buffer, the final flush) must progress in time.
        let stall = self.write_stall_timeout;
        while self.session.has_output() {
            let framed = &mut self.framed;
            tokio::time::timeout(
                stall,
                std::future::poll_fn(|cx| std::pin::Pin::new(&mut *framed).poll_ready(cx)),
            )
            .await
            .map_err(|_| ConnError::WriteStalled(stall))??;
            if let Some(m) = self.session.poll_output() {
                std::pin::Pin::new(&mut self.framed).start_send(m)?;
            }
        }
        tokio::time::timeout(stall, self.framed.flush())
            .await
            .map_err(|_| ConnError::WriteStalled(stall))??;
        // An install of thousands of flow mods grows the codec's buffer to the size of
        // the whole bundle, and a BytesMut keeps its capacity: at thousands of switches
        // that is gigabytes held between installs. Give it back once sent.
        if self.framed.write_buffer().is_empty()
            && self.framed.write_buffer().capacity() > SHRINK_BUFFER_ABOVE
        {
            *self.framed.write_buffer_mut() = BytesMut::new();
        }
        Ok(())
    }

    /// The next session event, pumping the socket and the clock. Cancel-safe between
    /// events: a message read is always handed to the session first.
    async fn next_event(&mut self) -> Result<SessionEvent, ConnError> {
        loop {
            if let Some(ev) = self.session.poll_event() {
                if let SessionEvent::Closed(reason) = ev {
                    // Best effort: the HELLO_FAILED error and the like.
                    let _ = self.flush().await;
                    return Err(ConnError::Closed(reason));
                }
                return Ok(ev);
            }
            self.flush().await?;
            let deadline = self
                .session
                .next_timeout()
                .map(tokio::time::Instant::from_std);
            // Likewise for a flow dump's multipart replies, once all of it was decoded.
            if self.framed.read_buffer().is_empty()
                && self.framed.read_buffer().capacity() > SHRINK_BUFFER_ABOVE
            {
                *self.framed.read_buffer_mut() = BytesMut::new();
            }
            // Biased, the socket before the clock: after this task waited for a busy
            // runtime, the switch's echo replies are in the socket while the echo
            // deadline has passed too; an unbiased select picks the timer half the time
            // and counts replies that did arrive as missed. The clock is still advanced
            // after every frame, so a switch that keeps sending cannot hold it off.
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Err(ConnError::Shutdown),
                frame = self.framed.next() => match frame {
                    Some(Ok(Frame::Message(m))) => self.session.handle_input(m),
                    Some(Ok(Frame::PacketIn)) => {
                        self.noise.packet_ins += 1;
                        self.noise.report(&self.label, self.noise_log_interval, false);
                    }
                    Some(Ok(Frame::Undecodable { msg_type, xid, error })) => {
                        // Before the handshake a peer that sends what we cannot read is
                        // not an OpenFlow 1.3 switch; after it, skip (OVS may send
                        // extensions we do not model) but count.
                        if !self.session.is_ready() {
                            return Err(ConnError::Undecodable { msg_type, xid, error });
                        }
                        tracing::debug!(switch = %self.label, msg_type, xid, %error, "undecodable message from switch; skipped");
                        self.noise.undecodable += 1;
                        self.noise.report(&self.label, self.noise_log_interval, false);
                    }
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err(ConnError::Eof),
                },
                _ = self.probe.notified() => {
                    tracing::info!(switch = %self.label, "another connection claims this datapath id; probing this one");
                    let within = self.session.config().echo_interval;
                    self.session.probe(std::time::Instant::now(), within);
                }
                _ = sleep_until_opt(deadline) => {}
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                self.session.handle_timeout(std::time::Instant::now());
            }
        }
    }
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn run_connection(stream: TcpStream, peer: SocketAddr, ctx: Arc<Ctx>) {
    let label = peer.to_string();
    tracing::info!(%peer, "OpenFlow connection accepted");
    let mut conn = Conn {
        framed: Framed::new(stream, LenientCodec::default()),
        session: Session::new(ctx.settings.session, std::time::Instant::now(), &label),
        label,
        shutdown: ctx.shutdown.clone(),
        write_stall_timeout: ctx.settings.write_stall_timeout,
        probe: Arc::new(tokio::sync::Notify::new()),
        noise: Noise::default(),
        noise_log_interval: ctx.settings.noise_log_interval,
    };
    let dpid = match handshake(&mut conn).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "OpenFlow handshake failed; connection closed");
            return;
        }
    };
    OpenFlowStats::bump(&ctx.stats.sessions, 1);
    let id = ctx.next_conn.fetch_add(1, Ordering::Relaxed);
    let node = match associate(&mut conn, dpid, &ctx).await {
        Ok(n) => n,
        Err(e) => {
            conn.noise
                .report(&conn.label, ctx.settings.noise_log_interval, true);
            log_end(
                peer,
                None,
                &e,
                "OpenFlow connection ended before association",
            );
            return;
        }
    };
    conn.label = format!("{node} ({peer})");
    conn.session.set_label(conn.label.clone());
    if let Err(e) = claim(&mut conn, &ctx, &node, id, peer).await {
        conn.noise
            .report(&conn.label, ctx.settings.noise_log_interval, true);
        log_end(
            peer,
            Some(&node),
            &e,
            "OpenFlow connection ended before it could serve its node",
        );
        return;
    }
    tracing::info!(%peer, %node, dpid = %format_args!("{dpid:016x}"), "OpenFlow switch associated with node");
    set_connected(&ctx.observed, &node, dpid, true);
    let end = Installer::new(&node, &ctx).run(&mut conn).await;
    let still_current = {
        let mut cur = ctx.current_conns();
        let mine = cur.get(&node).is_some_and(|h| h.id == id);
        if mine {
            cur.remove(&node);
        }
        mine
    };
    ctx.released.notify_waiters();
    if still_current {
        set_connected(&ctx.observed, &node, dpid, false);
    }
    conn.noise
        .report(&conn.label, ctx.settings.noise_log_interval, true);
    log_end(peer, Some(&node), &end, "OpenFlow connection ended");
}

/// One line per ended connection, naming the peer: a warning unless the switch closed
/// the connection itself or weftd is shutting down.
fn log_end(peer: SocketAddr, node: Option<&str>, reason: &ConnError, what: &str) {
    let node = node.unwrap_or("?");
    if matches!(reason, ConnError::Eof | ConnError::Shutdown) {
        tracing::info!(%peer, %node, %reason, "{what}");
    } else {
        tracing::warn!(%peer, %node, %reason, "{what}; connection closed");
    }
}

/// Makes this connection the one serving `node`. While another connection serves it,
/// that one is asked to prove it is alive ([`Session::probe`]) and this one waits,
/// keeping its own session alive: a switch presenting a datapath id that a live
/// connection already holds (an impersonator, a duplicate, or the real switch whose old
/// connection is not yet known dead) never takes the node's flows away from it. If the
/// holder fails the probe or ends, the waiter takes over within a probe interval.
async fn claim(
    conn: &mut Conn,
    ctx: &Ctx,
    node: &str,
    id: u64,
    peer: SocketAddr,
) -> Result<(), ConnError> {
    let recheck = ctx.settings.session.echo_interval;
    let mut warned = false;
    loop {
        let released = ctx.released.notified();
        let holder = {
            let mut cur = ctx.current_conns();
            match cur.get(node) {
                Some(h) => h.clone(),
                None => {
                    cur.insert(
                        node.to_string(),
                        Holder {
                            id,
                            peer,
                            probe: conn.probe.clone(),
                        },
                    );
                    return Ok(());
                }
            }
        };
        if !warned {
            tracing::warn!(%peer, %node, holder = %holder.peer, holder_conn = holder.id,
                "this switch presents the datapath id of a node that a live connection already serves; \
                 probing that connection, this one waits and takes over only if it ends (duplicate or impersonating switch?)");
            warned = true;
        }
        holder.probe.notify_one();
        tokio::select! {
            _ = released => {}
            _ = tokio::time::sleep(recheck) => {}
            ev = conn.next_event() => { ev?; }
        }
    }
}

async fn handshake(conn: &mut Conn) -> Result<u64, ConnError> {
    loop {
        if let SessionEvent::Ready(f) = conn.next_event().await? {
            return Ok(f.datapath_id);
        }
    }
}

/// Waits until an OVSDB session reports the bridge with this datapath id.
async fn associate(conn: &mut Conn, dpid: u64, ctx: &Ctx) -> Result<String, ConnError> {
    let mut topo = ctx.topology.watch();
    let mut waited = Duration::ZERO;
    loop {
        if let Some(node) = ctx.topology.node_by_datapath(dpid) {
            return Ok(node);
        }
        let step = ctx.settings.association_log_interval;
        tokio::select! {
            r = topo.changed() => if r.is_err() { return Err(ConnError::Shutdown) },
            ev = conn.next_event() => { ev?; }
            _ = tokio::time::sleep(step) => {
                waited += step;
                tracing::warn!(switch = %conn.label, dpid = %format_args!("{dpid:016x}"), ?waited,
                    "no OVSDB session has reported a bridge with this datapath id yet; still waiting");
            }
        }
    }
}

fn set_connected(observed: &ObservedState, node: &str, dpid: u64, up: bool) {
    let mut n = observed.node(node).unwrap_or_else(|| TransportNode {
        id: node.to_string(),
        ..Default::default()
    });
    n.openflow_connected = up;
    if up {
        n.datapath_id = Some(dpid);
    }
    observed.upsert_node(n);
}

/// Outcome of one install attempt.
enum Install {
    Done,
    /// The switch refused the install (nothing of it took effect: bundles are atomic);
    /// what it named, if anything.
    Rejected(Vec<Refusal>),
}

/// One ERROR the switch answered an install with, and the message it refers to (by xid,
/// else decoded from the start of the request the ERROR carries).
struct Refusal {
    message: Option<Message>,
    error: ErrorMsg,
}

impl Refusal {
    fn new(message: Option<&Message>, error: ErrorMsg) -> Self {
        let message = message.cloned().or_else(|| {
            error.offending().map(|m| match m.body {
                Message::BundleAdd(b) => b.message.body,
                other => other,
            })
        });
        Refusal { message, error }
    }

    /// The cookie of the refused flow mod, if the refusal names one.
    fn cookie(&self) -> Option<u64> {
        match &self.message {
            Some(Message::FlowMod(fm)) => Some(fm.cookie),
            _ => None,
        }
    }

    fn text(&self) -> String {
        match &self.message {
            Some(m) => change_text(m),
            None => "bundle commit".into(),
        }
    }
}

/// An ACL (by cookie) the node runs without because the switch refused its flows.
#[derive(Debug, Clone)]
struct Withheld {
    /// Every ACL withheld with it (itself first), for status and events.
    acls: Vec<uuid::Uuid>,
    /// How long to wait before the next attempt, doubled after each refusal.
    backoff: Duration,
    retry_at: tokio::time::Instant,
}

/// The per-connection reconciliation loop.
struct Installer<'a> {
    node: &'a str,
    ctx: &'a Ctx,
    /// What we believe the switch holds (its flows and groups); `None` = unknown, dump
    /// first. After a successful install this is the very state that was installed,
    /// shared with the node's desired state and the observed state, not a copy.
    installed: Option<Arc<DesiredNode>>,
    use_bundles: bool,
    next_bundle: u32,
    /// ACLs (by cookie) whose flows are left out of what is installed, fail closed.
    withheld: BTreeMap<u64, Withheld>,
    /// Withheld ACLs being tried again in the current install.
    retrying: BTreeMap<u64, Withheld>,
}

impl<'a> Installer<'a> {
    fn new(node: &'a str, ctx: &'a Ctx) -> Self {
        Installer {
            node,
            ctx,
            installed: None,
            use_bundles: true,
            next_bundle: 1,
            withheld: BTreeMap::new(),
            retrying: BTreeMap::new(),
        }
    }

    /// What to install: the desired state without the withheld ACLs' flows. Withheld
    /// ACLs the desired state no longer has (deleted, port moved away) are forgotten.
    fn effective(&mut self, desired: &Arc<DesiredNode>) -> Arc<DesiredNode> {
        let gone: Vec<u64> = self
            .withheld
            .keys()
            .chain(self.retrying.keys())
            .filter(|c| !desired.acls.contains_key(c))
            .copied()
            .collect();
        for c in gone {
            let w = self
                .withheld
                .remove(&c)
                .or_else(|| self.retrying.remove(&c));
            for acl in w.map(|w| w.acls).unwrap_or_default() {
                self.ctx.observed.acl_restored(self.node, acl);
            }
        }
        if self.withheld.is_empty() {
            return desired.clone();
        }
        Arc::new(desired.without_acls(&self.withheld.keys().copied().collect()))
    }

    /// `installed` went through: its ACLs are in force on this node. Clears their
    /// rejections, those of retried ACLs and any a previous connection to this switch left.
    fn installed_ok(&mut self, installed: &DesiredNode) {
        for (_, w) in std::mem::take(&mut self.retrying) {
            tracing::info!(node = self.node, acls = ?w.acls, "refused ACL flows accepted on retry; in force again");
        }
        for a in installed.acls.values() {
            self.ctx.observed.acl_restored(self.node, a.acl);
        }
    }

    /// Moves withheld ACLs whose retry is due into the next install.
    fn release_due(&mut self) {
        let now = tokio::time::Instant::now();
        let due: Vec<u64> = self
            .withheld
            .iter()
            .filter(|(_, w)| w.retry_at <= now)
            .map(|(c, _)| *c)
            .collect();
        for c in due {
            if let Some(w) = self.withheld.remove(&c) {
                tracing::info!(node = self.node, acls = ?w.acls, "retrying refused ACL flows");
                self.retrying.insert(c, w);
            }
        }
    }

    fn next_retry(&self) -> Option<tokio::time::Instant> {
        self.withheld.values().map(|w| w.retry_at).min()
    }

    /// Handles a refused install: every refusal is logged and announced, naming the ACL
    /// or port its flow came from. A refused ACL is withheld (with what
    /// [`crate::desired::AclFlows::withhold`] says goes with it) and retried with
    /// backoff; returns whether any was, i.e. whether installing the rest right away can
    /// succeed.
    fn refused(&mut self, desired: &DesiredNode, refusals: &[Refusal]) -> bool {
        let mut withheld_any = false;
        // A failed retry puts its ACLs back, with a longer wait.
        let mut retried = std::mem::take(&mut self.retrying);
        let empty = [Refusal {
            message: None,
            error: ErrorMsg {
                kind: ErrorKind::Standard {
                    err_type: ErrorType::BadRequest,
                    code: 0,
                },
                data: Vec::new(),
            },
        }];
        let refusals = if refusals.is_empty() {
            &empty[..]
        } else {
            refusals
        };
        for r in refusals {
            let flow = r.text();
            let error = error_name(&r.error);
            let cookie = r.cookie();
            let owner = cookie.and_then(|c| desired.acls.get(&c).map(|a| (c, a)));
            if let Some((c, _)) = owner
                && self.withheld.contains_key(&c)
            {
                continue; // another refusal of the same ACL in this install
            }
            if let Some((c, a)) = owner {
                let backoff = retried
                    .remove(&c)
                    .map(|w| (w.backoff * 2).min(self.ctx.settings.retry_max))
                    .unwrap_or(self.ctx.settings.retry_min);
                let mut acls = vec![a.acl];
                acls.extend(
                    a.withhold
                        .iter()
                        .filter(|w| **w != c)
                        .filter_map(|w| desired.acls.get(w).map(|x| x.acl)),
                );
                tracing::error!(
                    node = self.node, acl = %a.acl, port = %a.port, direction = ?a.direction,
                    %flow, %error, withheld = ?acls, retry_in = ?backoff,
                    "switch refused an ACL's flows; installing the rest without them (fail closed)"
                );
                self.ctx.observed.flows_rejected(FlowRejection {
                    node: self.node.to_string(),
                    acl: Some(a.acl),
                    port: Some(a.port),
                    flow,
                    error,
                    withheld: acls.clone(),
                });
                self.withheld.insert(
                    c,
                    Withheld {
                        acls,
                        backoff,
                        retry_at: tokio::time::Instant::now() + backoff,
                    },
                );
                withheld_any = true;
            } else {
                let port = cookie.and_then(|c| {
                    desired
                        .bound_ports
                        .iter()
                        .find(|p| cookie_for(p) == c)
                        .copied()
                });
                tracing::error!(
                    node = self.node, port = ?port, cookie = ?cookie.map(|c| format!("{c:#x}")),
                    %flow, %error,
                    "switch refused part of the desired state; not reported installed, will re-dump and retry"
                );
                self.ctx.observed.flows_rejected(FlowRejection {
                    node: self.node.to_string(),
                    acl: None,
                    port,
                    flow,
                    error,
                    withheld: Vec::new(),
                });
            }
        }
        // Retried ACLs the refusal did not name stay withheld, with a longer wait: the
        // install failed, so they were not accepted either.
        for (c, mut w) in retried {
            w.backoff = (w.backoff * 2).min(self.ctx.settings.retry_max);
            w.retry_at = tokio::time::Instant::now() + w.backoff;
            self.withheld.insert(c, w);
            withheld_any = true;
        }
        withheld_any
    }

    async fn run(&mut self, conn: &mut Conn) -> ConnError {
        let mut desired_rx = self.ctx.channels.watch_desired(self.node);
        let mut backoff = self.ctx.settings.retry_min;
        // Nothing is compiled for this node yet (weftd just started): the switch keeps
        // what it has until there is a real desired state to compare it with.
        while !self.ctx.channels.desired_published(self.node) {
            tracing::debug!(
                node = self.node,
                "waiting for the node's first desired state"
            );
            tokio::select! {
                r = desired_rx.changed() => if r.is_err() { return ConnError::Shutdown },
                ev = conn.next_event() => if let Err(e) = ev { return e },
            }
        }
        loop {
            // A resync (the switch's tables unknown: dump first) waits for its turn; the
            // desired state is read after the wait, so the newest one is installed.
            let turn = if self.installed.is_none() {
                match self.resync_turn(conn).await {
                    Ok(t) => Some(t),
                    Err(e) => return e,
                }
            } else {
                None
            };
            let desired = desired_rx.borrow_and_update().clone();
            let effective = self.effective(&desired);
            let result = self.reconcile(conn, &effective).await;
            drop(turn);
            match result {
                Err(e) => return e,
                Ok(Install::Done) => {
                    backoff = self.ctx.settings.retry_min;
                    self.installed_ok(&effective);
                }
                Ok(Install::Rejected(refusals)) => {
                    // Nothing of the bundle took effect; re-dump before the next try.
                    self.installed = None;
                    if self.refused(&desired, &refusals) {
                        // Fail closed: install the rest at once, without the refused ACL.
                        continue;
                    }
                    // Not an ACL's flow: retry everything after a pause; a new desired
                    // state is picked up by the retry.
                    tracing::info!(
                        node = self.node,
                        ?backoff,
                        "retrying the install after a pause"
                    );
                    if let Err(e) = pump_for(conn, backoff).await {
                        return e;
                    }
                    backoff = (backoff * 2).min(self.ctx.settings.retry_max);
                    continue;
                }
            }
            // Idle until the desired state changes or a withheld ACL is due for another
            // try, keeping the session alive.
            loop {
                tokio::select! {
                    r = desired_rx.changed() => {
                        if r.is_err() { return ConnError::Shutdown }
                        break;
                    }
                    _ = sleep_until_opt(self.next_retry()) => {
                        self.release_due();
                        break;
                    }
                    ev = conn.next_event() => if let Err(e) = ev { return e },
                }
            }
        }
    }

    /// Waits for a resync turn, keeping the session alive (echoes both ways) meanwhile.
    async fn resync_turn(
        &self,
        conn: &mut Conn,
    ) -> Result<tokio::sync::SemaphorePermit<'a>, ConnError> {
        let resyncs = &self.ctx.resyncs;
        if let Ok(p) = resyncs.try_acquire() {
            return Ok(p);
        }
        OpenFlowStats::bump(&self.ctx.stats.resync_waits, 1);
        let started = tokio::time::Instant::now();
        let acquire = resyncs.acquire();
        tokio::pin!(acquire);
        loop {
            tokio::select! {
                p = &mut acquire => {
                    let waited = started.elapsed();
                    if waited > Duration::from_secs(1) {
                        tracing::info!(node = self.node, ?waited, "resync waited for its turn \
                            (many switches resynchronising at once)");
                    }
                    return p.map_err(|_| ConnError::Shutdown);
                }
                ev = conn.next_event() => { ev?; }
            }
        }
    }

    async fn reconcile(
        &mut self,
        conn: &mut Conn,
        desired: &Arc<DesiredNode>,
    ) -> Result<Install, ConnError> {
        let have = match self.installed.take() {
            Some(h) => h,
            None => {
                let (flows, groups) = self.dump(conn).await?;
                Arc::new(DesiredNode {
                    flows,
                    groups,
                    ..Default::default()
                })
            }
        };
        let changes = reconcile::diff(desired, &have.flows, &have.groups);
        if changes.is_empty() {
            OpenFlowStats::bump(&self.ctx.stats.empty_diffs, 1);
            tracing::info!(
                node = self.node,
                flows = have.flows.len(),
                groups = have.groups.len(),
                "switch already holds the desired state; nothing sent"
            );
        } else {
            OpenFlowStats::bump(&self.ctx.stats.changes_sent, changes.len() as u64);
            let changed = changes.len();
            // The bundle takes the messages themselves; the rare paths that need them
            // again (refusals, no bundle support) recompute the same diff.
            let again = || reconcile::diff(desired, &have.flows, &have.groups);
            let result = if self.use_bundles {
                match self.install_bundle(conn, changes, again).await? {
                    Some(r) => r,
                    None => {
                        self.use_bundles = false;
                        self.install_plain(conn, &again()).await?
                    }
                }
            } else {
                self.install_plain(conn, &changes).await?
            };
            if let Err(refusals) = result {
                OpenFlowStats::bump(&self.ctx.stats.failed_installs, 1);
                return Ok(Install::Rejected(refusals));
            }
            OpenFlowStats::bump(&self.ctx.stats.installs, 1);
            tracing::info!(
                node = self.node,
                changes = changed,
                flows = desired.flows.len(),
                groups = desired.groups.len(),
                "installed the desired state"
            );
        }
        drop(have);
        // The diff is empty or was applied whole: the switch's Weft flows and its groups
        // are now exactly `desired`'s (what `reconcile::apply` would compute). Keeping
        // `desired` itself, not a copy, means one table per node in memory, shared with
        // the node's channel and with `node_flows`, which prints it only when asked.
        self.ctx
            .channels
            .report_installed(self.node, desired.bound_ports.clone());
        self.ctx
            .observed
            .set_node_flows(self.node, InstalledFlows::table(desired.clone()));
        self.installed = Some(desired.clone());
        Ok(Install::Done)
    }

    /// Dumps Weft's flows (by cookie) and all groups.
    async fn dump(
        &mut self,
        conn: &mut Conn,
    ) -> Result<(BTreeMap<FlowKey, FlowContent>, BTreeMap<u32, GroupSpec>), ConnError> {
        OpenFlowStats::bump(&self.ctx.stats.dumps, 1);
        let fx = conn.session.send(
            OfpMessage::flow_stats_request(
                0,
                crate::compiler::COOKIE_WEFT,
                crate::compiler::COOKIE_MASK,
            )
            .body,
        );
        let gx = conn.session.send(OfpMessage::group_desc_request(0).body);
        let (mut flows, mut groups) = (None, None);
        let wait = async {
            while flows.is_none() || groups.is_none() {
                match conn.next_event().await? {
                    SessionEvent::Multipart { xid, parts } if xid == fx => {
                        flows = Some(reconcile::flows_from_owned_parts(parts));
                    }
                    SessionEvent::Multipart { xid, parts } if xid == gx => {
                        groups = Some(reconcile::groups_from_parts(&parts));
                    }
                    SessionEvent::Error { xid, error } if xid == gx => {
                        // A switch without group support has no groups.
                        tracing::warn!(node = self.node, error = %describe_error(&error), "group dump failed; assuming no groups");
                        groups = Some(BTreeMap::new());
                    }
                    SessionEvent::Error { xid, error } if xid == fx => {
                        tracing::error!(node = self.node, error = %describe_error(&error), "flow dump failed");
                        return Err(ConnError::Timeout("flow dump refused"));
                    }
                    _ => {}
                }
            }
            Ok(())
        };
        tokio::time::timeout(self.ctx.settings.request_timeout, wait)
            .await
            .map_err(|_| ConnError::Timeout("flow/group dump"))??;
        let (flows, groups) = (flows.unwrap_or_default(), groups.unwrap_or_default());
        tracing::info!(
            node = self.node,
            flows = flows.len(),
            groups = groups.len(),
            "dumped installed flows and groups"
        );
        Ok((flows, groups))
    }

    /// Installs `changes` in one atomic, ordered bundle followed by a barrier. `Ok(None)`:
    /// the switch does not do bundles (fall back); `Ok(Some(r))`: whether it took them,
    /// or what it refused. OVS answers a failed commit with an ERROR for the message that
    /// failed (the inner flow mod, whose xid is its BUNDLE_ADD's) and one for the commit.
    ///
    /// `changes` are moved into the bundle, not copied (a cold start sends ~1,700 flow
    /// mods per node); `again` recomputes them, only to name what the switch refused.
    async fn install_bundle(
        &mut self,
        conn: &mut Conn,
        changes: Vec<Message>,
        again: impl Fn() -> Vec<Message>,
    ) -> Result<Option<Result<(), Vec<Refusal>>>, ConnError> {
        let flags = bundle_flags::ATOMIC | bundle_flags::ORDERED;
        let id = self.next_bundle;
        self.next_bundle = self.next_bundle.wrapping_add(1).max(1);
        let s = &mut conn.session;
        let open = s.alloc_xid();
        s.send_with_xid(open, OfpMessage::bundle_open(open, id, flags).body);
        // xid of each BUNDLE_ADD -> the position of its change in `changes`.
        let mut sent = BTreeMap::new();
        for (i, c) in changes.into_iter().enumerate() {
            let xid = s.alloc_xid();
            s.send_with_xid(xid, OfpMessage::bundle_add(xid, id, flags, c).body);
            sent.insert(xid, i);
        }
        let commit = s.alloc_xid();
        s.send_with_xid(commit, OfpMessage::bundle_commit(commit, id, flags).body);
        let barrier = s.barrier();
        let mut committed = false;
        let mut failed = false;
        // Refused changes, by position, with the switch's error.
        let mut refused: Vec<(usize, ErrorMsg)> = Vec::new();
        let node = self.node;
        let wait = async {
            loop {
                match conn.next_event().await? {
                    SessionEvent::Barrier { xid } if xid == barrier => {
                        return Ok::<_, ConnError>(None);
                    }
                    SessionEvent::BundleReply { xid, ctrl }
                        if xid == commit && ctrl.ctrl_type == BundleCtrlType::CommitReply =>
                    {
                        committed = true;
                    }
                    SessionEvent::Error { xid, error } if xid == open => {
                        if is_unsupported(&error) {
                            tracing::warn!(%node, error = %describe_error(&error),
                                "switch does not support bundles; falling back to plain flow mods");
                            // Wait for the barrier so the rest of the bundle's errors are
                            // drained before the plain install.
                            return Ok(Some(()));
                        }
                        log_rejection(node, "bundle open", &error);
                        failed = true;
                    }
                    SessionEvent::Error { xid, error } => {
                        if let Some(i) = sent.get(&xid) {
                            refused.push((*i, error));
                        } else if xid == commit {
                            log_rejection(node, "bundle commit", &error);
                        } else {
                            tracing::warn!(%node, xid, error = %describe_error(&error), "unrelated switch error during install");
                            continue;
                        }
                        failed = true;
                    }
                    _ => {}
                }
            }
        };
        let unsupported = tokio::time::timeout(self.ctx.settings.request_timeout, wait)
            .await
            .map_err(|_| ConnError::Timeout("bundle commit and barrier"))??;
        if unsupported.is_some() {
            // Drain to our barrier so stray errors do not confuse the plain install.
            let drain = async {
                loop {
                    if let SessionEvent::Barrier { xid } = conn.next_event().await?
                        && xid == barrier
                    {
                        return Ok::<(), ConnError>(());
                    }
                }
            };
            tokio::time::timeout(self.ctx.settings.request_timeout, drain)
                .await
                .map_err(|_| ConnError::Timeout("barrier"))??;
            return Ok(None);
        }
        if committed && !failed {
            return Ok(Some(Ok(())));
        }
        let changes = if refused.is_empty() {
            Vec::new()
        } else {
            again()
        };
        let refusals = refused
            .into_iter()
            .map(|(i, error)| {
                let c = changes.get(i);
                match c {
                    Some(c) => log_rejection(node, &change_text(c), &error),
                    None => log_rejection(node, "bundle message", &error),
                }
                Refusal::new(c, error)
            })
            .collect();
        Ok(Some(Err(refusals)))
    }

    /// Installs `changes` as plain messages followed by a barrier (switches without
    /// bundles; not atomic, but still only the difference).
    async fn install_plain(
        &mut self,
        conn: &mut Conn,
        changes: &[Message],
    ) -> Result<Result<(), Vec<Refusal>>, ConnError> {
        let s = &mut conn.session;
        let mut sent = BTreeMap::new();
        for c in changes {
            let xid = s.send(c.clone());
            sent.insert(xid, c);
        }
        let barrier = s.barrier();
        let node = self.node;
        let mut refusals = Vec::new();
        let wait = async {
            loop {
                match conn.next_event().await? {
                    SessionEvent::Barrier { xid } if xid == barrier => {
                        return Ok::<_, ConnError>(());
                    }
                    SessionEvent::Error { xid, error } => match sent.get(&xid) {
                        Some(c) => {
                            log_rejection(node, &change_text(c), &error);
                            refusals.push(Refusal::new(Some(c), error));
                        }
                        None => {
                            tracing::warn!(%node, xid, error = %describe_error(&error), "unrelated switch error during install")
                        }
                    },
                    _ => {}
                }
            }
        };
        tokio::time::timeout(self.ctx.settings.request_timeout, wait)
            .await
            .map_err(|_| ConnError::Timeout("flow mods and barrier"))??;
        Ok(if refusals.is_empty() {
            Ok(())
        } else {
            Err(refusals)
        })
    }
}

/// Keeps the session alive for `d`.
async fn pump_for(conn: &mut Conn, d: Duration) -> Result<(), ConnError> {
    let until = tokio::time::Instant::now() + d;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return Ok(()),
            ev = conn.next_event() => { ev?; }
        }
    }
}

/// Whether an error to BUNDLE_CONTROL open means "no bundle support".
fn is_unsupported(e: &ErrorMsg) -> bool {
    matches!(
        e.kind,
        ErrorKind::Standard {
            err_type: ErrorType::BadRequest,
            code: 1 | 3 | 4 // BAD_TYPE, BAD_EXPERIMENTER, BAD_EXP_TYPE
        }
    )
}

fn change_text(m: &Message) -> String {
    print_message(&OfpMessage::new(0, m.clone()))
}

/// Logs one ERROR answering an install; [`Installer::refused`] then says what Weft does
/// about it, naming the ACL or port.
fn log_rejection(node: &str, what: &str, error: &ErrorMsg) {
    tracing::warn!(%node, flow = %what, error = %describe_error(error),
        "switch refused a message of the install");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::Channels;
    use crate::topology::{NodeView, TransportNodes};
    use openflow::{Field, FlowMod, Instruction, Match, MultipartReply, MultipartReplyBody};
    use std::collections::BTreeSet;
    use uuid::Uuid;

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

    /// A switch that speaks just enough OpenFlow for an install: handshake, empty dumps,
    /// barriers and echoes; bundles refused, so flows arrive as plain flow mods.
    async fn minimal_switch(addr: SocketAddr, dpid: u64) {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut sw = Framed::new(stream, OfpCodec::default());
        sw.send(OfpMessage::hello(1)).await.unwrap();
        while let Some(Ok(m)) = sw.next().await {
            let body = match &m.body {
                Message::FeaturesRequest => Message::FeaturesReply(openflow::SwitchFeatures {
                    datapath_id: dpid,
                    n_tables: 254,
                    ..Default::default()
                }),
                Message::MultipartRequest(r) => {
                    let body = match r.body {
                        openflow::MultipartRequestBody::Flow(_) => MultipartReplyBody::Flow(vec![]),
                        openflow::MultipartRequestBody::GroupDesc => {
                            MultipartReplyBody::GroupDesc(vec![])
                        }
                        _ => MultipartReplyBody::PortDesc(vec![]),
                    };
                    Message::MultipartReply(MultipartReply { flags: 0, body })
                }
                Message::BundleControl(_) | Message::BundleAdd(_) => Message::Error(ErrorMsg {
                    kind: ErrorKind::Standard {
                        err_type: ErrorType::BadRequest,
                        code: 1,
                    },
                    data: m.to_bytes().unwrap(),
                }),
                Message::BarrierRequest => Message::BarrierReply,
                Message::EchoRequest(d) => Message::EchoReply(d.clone()),
                _ => continue,
            };
            if sw.send(OfpMessage::new(m.xid, body)).await.is_err() {
                return;
            }
        }
    }

    /// With room for one resync at a time, every switch still gets its turn: a turn is
    /// given back once its install is done, not held while the switch idles.
    #[tokio::test]
    async fn resync_turns_are_given_back() {
        let topology = TransportNodes::new();
        let channels = Channels::new();
        let (events, _) = tokio::sync::broadcast::channel(16);
        let observed = Arc::new(ObservedState::new(events));
        let shutdown = CancellationToken::new();
        let settings = OpenFlowSettings {
            max_concurrent_resyncs: 1,
            ..Default::default()
        };
        let server = serve_with(
            "127.0.0.1:0".parse().unwrap(),
            topology.clone(),
            channels.clone(),
            observed.clone(),
            shutdown.clone(),
            settings,
        )
        .await
        .unwrap();
        let mut waits = Vec::new();
        for n in 1..=3u64 {
            let id = format!("hv{n}");
            topology.report(NodeView {
                id: id.clone(),
                encap_ip: format!("192.0.2.{n}").parse().unwrap(),
                encap_type: Default::default(),
                bridge: "br-int".into(),
                datapath_id: Some(n),
                vifs: BTreeMap::new(),
                tunnels: BTreeMap::new(),
            });
            let port = Uuid::new_v4();
            let fm = FlowMod::add(
                0,
                100,
                Match::new(vec![Field::InPort(n as u32, None)]),
                vec![Instruction::GotoTable(10)],
            )
            .with_cookie(crate::compiler::COOKIE_WEFT | n);
            let mut d = DesiredNode {
                bound_ports: BTreeSet::from([port]),
                ..Default::default()
            };
            d.flows.insert(fm.key(), fm.content());
            channels.publish_desired(&id, Arc::new(d));
            let mut installed = channels.watch_installed();
            waits.push(async move {
                while !installed
                    .borrow_and_update()
                    .get(&id)
                    .is_some_and(|p| p.contains(&port))
                {
                    installed.changed().await.unwrap();
                }
            });
            tokio::spawn(minimal_switch(server.local_addr, n));
        }
        tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(waits))
            .await
            .expect("a switch never got its turn to be installed");
        assert_eq!(OpenFlowStats::get(&server.stats.installs), 3);
        shutdown.cancel();
        server.join().await;
    }

    /// A scripted switch without bundle support: the driver falls back to plain flow mods
    /// and still reports the state installed after the barrier, while a silent connection
    /// sits in its handshake.
    #[tokio::test]
    async fn falls_back_to_plain_flow_mods_without_bundles() {
        let topology = TransportNodes::new();
        let channels = Channels::new();
        let (events, _) = tokio::sync::broadcast::channel(16);
        let observed = Arc::new(ObservedState::new(events));
        let shutdown = CancellationToken::new();
        let server = serve(
            "127.0.0.1:0".parse().unwrap(),
            topology.clone(),
            channels.clone(),
            observed.clone(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        topology.report(NodeView {
            id: "hv9".into(),
            encap_ip: "192.0.2.9".parse().unwrap(),
            encap_type: Default::default(),
            bridge: "br-int".into(),
            datapath_id: Some(42),
            vifs: BTreeMap::new(),
            tunnels: BTreeMap::new(),
        });
        let port = Uuid::new_v4();
        let fm = FlowMod::add(
            0,
            100,
            Match::new(vec![Field::InPort(1, None)]),
            vec![Instruction::GotoTable(10)],
        )
        .with_cookie(crate::compiler::COOKIE_WEFT | 1);
        let mut d = DesiredNode {
            bound_ports: BTreeSet::from([port]),
            ..Default::default()
        };
        d.flows.insert(fm.key(), fm.content());
        channels.publish_desired("hv9", Arc::new(d));
        let mut installed = channels.watch_installed();

        // A broken switch that connects and never speaks must not hold up the good one.
        let _silent = TcpStream::connect(server.local_addr).await.unwrap();
        let stream = TcpStream::connect(server.local_addr).await.unwrap();
        let mut sw = Framed::new(stream, OfpCodec::default());
        sw.send(OfpMessage::hello(1)).await.unwrap();
        let mut flow_mods = Vec::new();
        let refuse = |m: &OfpMessage| {
            OfpMessage::new(
                m.xid,
                Message::Error(ErrorMsg {
                    kind: ErrorKind::Standard {
                        err_type: ErrorType::BadRequest,
                        code: 1,
                    },
                    data: m.to_bytes().unwrap(),
                }),
            )
        };
        // Bounded so a broken driver fails the test instead of hanging it.
        let script = async {
            loop {
                tokio::select! {
                    r = installed.changed() => {
                        r.unwrap();
                        if installed.borrow().get("hv9").is_some_and(|p| **p == BTreeSet::from([port])) { break }
                    }
                    m = sw.next() => {
                        let m = m.expect("weftd closed").unwrap();
                        let reply = match &m.body {
                            Message::Hello(_) => None,
                            Message::FeaturesRequest => Some(OfpMessage::new(m.xid, Message::FeaturesReply(openflow::SwitchFeatures { datapath_id: 42, n_tables: 254, ..Default::default() }))),
                            Message::MultipartRequest(r) => {
                                let body = match r.body {
                                    openflow::MultipartRequestBody::Flow(_) => MultipartReplyBody::Flow(vec![]),
                                    openflow::MultipartRequestBody::GroupDesc => MultipartReplyBody::GroupDesc(vec![]),
                                    _ => MultipartReplyBody::PortDesc(vec![]),
                                };
                                Some(OfpMessage::new(m.xid, Message::MultipartReply(MultipartReply { flags: 0, body })))
                            }
                            Message::BundleControl(_) | Message::BundleAdd(_) => Some(refuse(&m)),
                            Message::BarrierRequest => Some(OfpMessage::new(m.xid, Message::BarrierReply)),
                            Message::FlowMod(f) => { flow_mods.push(f.clone()); None }
                            _ => None,
                        };
                        if let Some(r) = reply { sw.send(r).await.unwrap(); }
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), script)
            .await
            .expect("weftd never reported the state installed");
        assert_eq!(flow_mods, vec![fm]);
        assert!(
            observed
                .node("hv9")
                .is_some_and(|n| n.openflow_connected && n.flows.len() == 1)
        );
        assert_eq!(OpenFlowStats::get(&server.stats.installs), 1);
        shutdown.cancel();
        server.join().await;
    }
}
