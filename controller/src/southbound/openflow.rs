//! The OpenFlow southbound: switches' integration bridges connect in (`tcp:0.0.0.0:6653`),
//! one task per connection runs a [`session::Session`] over the socket, finds the node the
//! switch belongs to by datapath id, and keeps the switch's flows and groups equal to the
//! node's desired state with the [`crate::reconcile`] diff: a dump on (re)connect, then
//! only the difference, inside one atomic ordered bundle followed by a barrier. Never a
//! flush: a reconnect or a weftd restart leaves traffic flowing.
//!
//! Wiring (weftd): `serve(cfg.openflow_listen, fabric, observed, shutdown_token)`; the
//! returned [`OpenFlowServer`] reports the bound address and counters.

pub mod session;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use openflow::codec::{CodecError, OfpCodec};
use openflow::{
    BundleCtrlType, ErrorKind, ErrorMsg, ErrorType, FlowContent, FlowKey, Message, OfpMessage,
    bundle_flags, print::print_message,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::codec::{Decoder, Encoder, Framed};
use tokio_util::sync::CancellationToken;

use crate::compiler::{DesiredNode, GroupSpec};
use crate::fabric::Fabric;
use crate::observed::{ObservedState, TransportNode};
use crate::reconcile;
use session::{CloseReason, Session, SessionConfig, SessionEvent, describe_error};

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
}

impl Default for OpenFlowSettings {
    fn default() -> Self {
        OpenFlowSettings {
            session: SessionConfig::default(),
            request_timeout: Duration::from_secs(60),
            association_log_interval: Duration::from_secs(10),
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
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
    fabric: Arc<Fabric>,
    observed: Arc<ObservedState>,
    shutdown: CancellationToken,
) -> std::io::Result<OpenFlowServer> {
    serve_with(
        listen,
        fabric,
        observed,
        shutdown,
        OpenFlowSettings::default(),
    )
    .await
}

/// [`serve`] with explicit settings.
pub async fn serve_with(
    listen: SocketAddr,
    fabric: Arc<Fabric>,
    observed: Arc<ObservedState>,
    shutdown: CancellationToken,
    settings: OpenFlowSettings,
) -> std::io::Result<OpenFlowServer> {
    let listener = TcpListener::bind(listen).await?;
    let local_addr = listener.local_addr()?;
    tracing::info!(%local_addr, "OpenFlow listener up");
    let stats = Arc::new(OpenFlowStats::default());
    let ctx = Arc::new(Ctx {
        current: std::sync::Mutex::new(BTreeMap::new()),
        next_conn: AtomicU64::new(1),
        fabric,
        observed,
        settings,
        stats: stats.clone(),
        shutdown: shutdown.clone(),
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
    /// The newest connection of each node: a stale connection that ends after its
    /// successor took over must not mark the node disconnected.
    current: std::sync::Mutex<BTreeMap<String, u64>>,
    next_conn: AtomicU64,
    fabric: Arc<Fabric>,
    observed: Arc<ObservedState>,
    settings: OpenFlowSettings,
    stats: Arc<OpenFlowStats>,
    shutdown: CancellationToken,
}

impl Ctx {
    fn current_conns(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
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
    #[error("shutting down")]
    Shutdown,
}

/// [`OfpCodec`], except that a frame that does not decode is handed up as an error item
/// (logged, connection kept) instead of ending the stream.
#[derive(Debug, Default)]
struct LenientCodec(OfpCodec);

type Frame = Result<OfpMessage, (u32, openflow::Error)>;

impl Decoder for LenientCodec {
    type Item = Frame;
    type Error = CodecError;
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        match self.0.decode(src) {
            Ok(m) => Ok(m.map(Ok)),
            Err(CodecError::Decode { xid, source }) => Ok(Some(Err((xid, source)))),
            Err(e) => Err(e),
        }
    }
}

impl Encoder<OfpMessage> for LenientCodec {
    type Error = CodecError;
    fn encode(&mut self, item: OfpMessage, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.0.encode(&item, dst)
    }
}

/// A socket plus its session.
struct Conn {
    framed: Framed<TcpStream, LenientCodec>,
    session: Session,
    label: String,
    shutdown: CancellationToken,
    write_timeout: Duration,
}

impl Conn {
    /// Sends everything the session queued.
    async fn flush(&mut self) -> Result<(), ConnError> {
        // Also when only the codec's buffer holds bytes (a flush cut short by a select).
        if self.session.has_output() || !self.framed.write_buffer().is_empty() {
            // A switch that stops reading must not hold this task forever.
            tokio::time::timeout(self.write_timeout, self.write_all())
                .await
                .map_err(|_| ConnError::Timeout("switch not reading what we send"))??;
        }
        Ok(())
    }

    async fn write_all(&mut self) -> Result<(), ConnError> {
        while let Some(m) = self.session.poll_output() {
            self.framed.feed(m).await?;
        }
        self.framed.flush().await?;
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
            tokio::select! {
                _ = self.shutdown.cancelled() => return Err(ConnError::Shutdown),
                frame = self.framed.next() => match frame {
                    Some(Ok(Ok(m))) => self.session.handle_input(m),
                    Some(Ok(Err((xid, e)))) => {
                        tracing::warn!(switch = %self.label, xid, error = %e, "undecodable message from switch; ignored");
                    }
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err(ConnError::Eof),
                },
                _ = sleep_until_opt(deadline) => {
                    self.session.handle_timeout(std::time::Instant::now());
                }
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
        write_timeout: ctx.settings.request_timeout,
    };
    let dpid = match handshake(&mut conn).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "OpenFlow handshake failed");
            return;
        }
    };
    OpenFlowStats::bump(&ctx.stats.sessions, 1);
    let node = match associate(&mut conn, dpid, &ctx).await {
        Ok(n) => n,
        Err(e) => {
            tracing::info!(%peer, dpid = %format_args!("{dpid:016x}"), reason = %e, "OpenFlow connection ended before association");
            return;
        }
    };
    conn.label = format!("{node} ({peer})");
    conn.session.set_label(conn.label.clone());
    tracing::info!(%peer, %node, dpid = %format_args!("{dpid:016x}"), "OpenFlow switch associated with node");
    let id = ctx.next_conn.fetch_add(1, Ordering::Relaxed);
    if let Some(old) = ctx.current_conns().insert(node.clone(), id) {
        tracing::info!(%node, "a newer OpenFlow connection replaces connection #{old}");
    }
    set_connected(&ctx.observed, &node, dpid, true);
    let end = Installer::new(&node, &ctx).run(&mut conn).await;
    let still_current = {
        let mut cur = ctx.current_conns();
        let mine = cur.get(&node) == Some(&id);
        if mine {
            cur.remove(&node);
        }
        mine
    };
    if still_current {
        set_connected(&ctx.observed, &node, dpid, false);
    }
    tracing::info!(%peer, %node, reason = %end, "OpenFlow connection ended");
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
    let mut topo = ctx.fabric.watch_topology();
    let mut waited = Duration::ZERO;
    loop {
        if let Some(node) = ctx.fabric.node_by_datapath(dpid) {
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
    Rejected,
}

/// The per-connection reconciliation loop.
struct Installer<'a> {
    node: &'a str,
    ctx: &'a Ctx,
    /// What we believe the switch holds; `None` = unknown, dump first.
    flows: Option<BTreeMap<FlowKey, FlowContent>>,
    groups: BTreeMap<u32, GroupSpec>,
    use_bundles: bool,
    next_bundle: u32,
}

impl<'a> Installer<'a> {
    fn new(node: &'a str, ctx: &'a Ctx) -> Self {
        Installer {
            node,
            ctx,
            flows: None,
            groups: BTreeMap::new(),
            use_bundles: true,
            next_bundle: 1,
        }
    }

    async fn run(&mut self, conn: &mut Conn) -> ConnError {
        let mut desired_rx = self.ctx.fabric.watch_desired(self.node);
        let mut backoff = self.ctx.settings.retry_min;
        // Nothing is compiled for this node yet (weftd just started): the switch keeps
        // what it has until there is a real desired state to compare it with.
        while !self.ctx.fabric.desired_published(self.node) {
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
            let desired = desired_rx.borrow_and_update().clone();
            match self.reconcile(conn, &desired).await {
                Err(e) => return e,
                Ok(Install::Done) => backoff = self.ctx.settings.retry_min,
                Ok(Install::Rejected) => {
                    // Re-dump and retry after a pause; a new desired state is picked up
                    // by the retry.
                    self.flows = None;
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
            // Idle until the desired state changes, keeping the session alive.
            loop {
                tokio::select! {
                    r = desired_rx.changed() => {
                        if r.is_err() { return ConnError::Shutdown }
                        break;
                    }
                    ev = conn.next_event() => if let Err(e) = ev { return e },
                }
            }
        }
    }

    async fn reconcile(
        &mut self,
        conn: &mut Conn,
        desired: &DesiredNode,
    ) -> Result<Install, ConnError> {
        let dumped = self.flows.is_none();
        let mut flows = match self.flows.take() {
            Some(f) => f,
            None => {
                let (f, g) = self.dump(conn).await?;
                self.groups = g;
                f
            }
        };
        let changes = reconcile::diff(desired, &flows, &self.groups);
        if changes.is_empty() {
            OpenFlowStats::bump(&self.ctx.stats.empty_diffs, 1);
            tracing::info!(
                node = self.node,
                flows = flows.len(),
                groups = self.groups.len(),
                "switch already holds the desired state; nothing sent"
            );
        } else {
            OpenFlowStats::bump(&self.ctx.stats.changes_sent, changes.len() as u64);
            let ok = if self.use_bundles {
                match self.install_bundle(conn, &changes).await? {
                    Some(ok) => ok,
                    None => {
                        self.use_bundles = false;
                        self.install_plain(conn, &changes).await?
                    }
                }
            } else {
                self.install_plain(conn, &changes).await?
            };
            if !ok {
                OpenFlowStats::bump(&self.ctx.stats.failed_installs, 1);
                return Ok(Install::Rejected);
            }
            OpenFlowStats::bump(&self.ctx.stats.installs, 1);
            reconcile::apply(&mut flows, &mut self.groups, &changes);
            tracing::info!(
                node = self.node,
                changes = changes.len(),
                flows = flows.len(),
                groups = self.groups.len(),
                "installed the desired state"
            );
        }
        self.ctx
            .fabric
            .report_installed(self.node, desired.bound_ports.clone());
        // Printing the table costs ~5 µs a flow (0.5 s at 100k): only when what the
        // switch holds changed, or was just dumped, not on every no-op reconcile.
        if dumped || !changes.is_empty() {
            self.ctx
                .observed
                .set_node_flows(self.node, reconcile::flows_as_text(&flows));
        }
        self.flows = Some(flows);
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
                        flows = Some(reconcile::flows_from_parts(&parts));
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
    /// the switch does not do bundles (fall back); `Ok(Some(ok))`: whether it took them.
    async fn install_bundle(
        &mut self,
        conn: &mut Conn,
        changes: &[Message],
    ) -> Result<Option<bool>, ConnError> {
        let flags = bundle_flags::ATOMIC | bundle_flags::ORDERED;
        let id = self.next_bundle;
        self.next_bundle = self.next_bundle.wrapping_add(1).max(1);
        let s = &mut conn.session;
        let open = s.alloc_xid();
        s.send_with_xid(open, OfpMessage::bundle_open(open, id, flags).body);
        let mut sent = BTreeMap::new();
        for c in changes {
            let xid = s.alloc_xid();
            s.send_with_xid(xid, OfpMessage::bundle_add(xid, id, flags, c.clone()).body);
            sent.insert(xid, c);
        }
        let commit = s.alloc_xid();
        s.send_with_xid(commit, OfpMessage::bundle_commit(commit, id, flags).body);
        let barrier = s.barrier();
        let mut committed = false;
        let mut failed = false;
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
                        if let Some(c) = sent.get(&xid) {
                            log_rejection(node, &change_text(c), &error);
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
        Ok(Some(committed && !failed))
    }

    /// Installs `changes` as plain messages followed by a barrier (switches without
    /// bundles; not atomic, but still only the difference).
    async fn install_plain(
        &mut self,
        conn: &mut Conn,
        changes: &[Message],
    ) -> Result<bool, ConnError> {
        let s = &mut conn.session;
        let mut sent = BTreeMap::new();
        for c in changes {
            let xid = s.send(c.clone());
            sent.insert(xid, c);
        }
        let barrier = s.barrier();
        let node = self.node;
        let mut failed = false;
        let wait = async {
            loop {
                match conn.next_event().await? {
                    SessionEvent::Barrier { xid } if xid == barrier => {
                        return Ok::<_, ConnError>(());
                    }
                    SessionEvent::Error { xid, error } => match sent.get(&xid) {
                        Some(c) => {
                            log_rejection(node, &change_text(c), &error);
                            failed = true;
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
        Ok(!failed)
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

fn log_rejection(node: &str, what: &str, error: &ErrorMsg) {
    tracing::error!(%node, flow = %what, error = %describe_error(error),
        "switch rejected part of the desired state; not reported installed, will re-dump and retry");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::NodeView;
    use openflow::{Field, FlowMod, Instruction, Match, MultipartReply, MultipartReplyBody};
    use std::collections::BTreeSet;
    use uuid::Uuid;

    /// A scripted switch without bundle support: the driver falls back to plain flow mods
    /// and still reports the state installed after the barrier, while a silent connection
    /// sits in its handshake.
    #[tokio::test]
    async fn falls_back_to_plain_flow_mods_without_bundles() {
        let fabric = Fabric::new();
        let (events, _) = tokio::sync::broadcast::channel(16);
        let observed = Arc::new(ObservedState::new(events));
        let shutdown = CancellationToken::new();
        let server = serve(
            "127.0.0.1:0".parse().unwrap(),
            fabric.clone(),
            observed.clone(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        fabric.upsert_node(NodeView {
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
        fabric.publish_desired("hv9", Arc::new(d));
        let mut installed = fabric.watch_installed("hv9");

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
                        if **installed.borrow() == BTreeSet::from([port]) { break }
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
