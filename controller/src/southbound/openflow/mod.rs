//! The OpenFlow southbound: switches' integration bridges connect in (`tcp:0.0.0.0:6653`),
//! one task per connection runs a [`session::Session`] over the socket, finds the node the
//! switch belongs to by datapath id, and keeps the switch's flows and groups equal to the
//! node's desired state with the [`crate::reconcile`] diff: a dump on (re)connect, then
//! only the difference, inside one atomic ordered bundle followed by a barrier. Never a
//! flush: a reconnect or a weftd restart leaves traffic flowing.
//!
//! Wiring (weftd): `serve(cfg.openflow_listen, topology, channels, observed, shutdown_token)`
//! (`serve_with_tls` for an `ssl:` listener); the returned [`OpenFlowServer`] reports the
//! bound address and counters.
//!
//! Over TLS, the switch's certificate must name the node whose datapath id it claims:
//! once the datapath id is associated with a node (a bridge of the OVSDB node with that
//! system-id), the certificate's CN name ([`crate::tls::PeerIdentity::names`]) must be
//! that system-id, or the connection is closed before it claims the node or touches a
//! flow, with a warning naming the peer, the CN and the claimed node.
//!
//! One module per concept:
//! - `codec`: framing (frame bounds, PACKET_INs dropped undecoded, undecodable frames
//!   handed up) and the count of what is dropped;
//! - `conn`: the connection driver (`Conn`: flush, next event, keepalive and probes);
//! - `association`: which node a switch serves, by datapath id, and the one connection
//!   holding each node;
//! - `installer`: dump, diff, bundle install with plain fallback, barrier, retry;
//! - `refusals`: what the switch refused, and the fail-closed withholding of refused ACLs;
//! - `role`: master/slave role requests in cluster mode (only the owner writes);
//! - here: settings, counters, the listener and the life of one connection.

pub use openflow::session;

mod announce;
mod association;
mod codec;
mod conn;
mod installer;
mod refusals;
mod role;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openflow::session::{Session, SessionConfig};
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use crate::channels::Channels;
use crate::cluster::Ownership;
use crate::observed::ObservedState;
use crate::tls::{PeerIdentity, SouthboundTls, Transport};
use crate::topology::TransportNodes;

use association::{Holder, associate, claim, set_connected};
use codec::{LenientCodec, Noise};
use conn::{Conn, ConnError, handshake};
use installer::Installer;

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
    /// How long after repairing a returning switch its tables are dumped and compared
    /// again. A switch that comes back (vswitchd restarted) may be having its saved
    /// flows put back by `weft-ovs-restart` while we read and repair it; those adds can
    /// land after ours and bring back flows the model no longer has.
    pub recheck_after: Duration,
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
            // Like the OVSDB side and like OVS's own probes: an idle switch is probed
            // once, and dropped if it stays silent for one more interval.
            session: SessionConfig {
                echo_interval: super::PROBE_INTERVAL,
                echo_max_missed: 1,
                ..SessionConfig::default()
            },
            request_timeout: Duration::from_secs(60),
            association_log_interval: Duration::from_secs(10),
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            write_stall_timeout: Duration::from_secs(10),
            noise_log_interval: Duration::from_secs(10),
            max_concurrent_resyncs: default_concurrent_resyncs(),
            recheck_after: Duration::from_secs(2),
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
    /// Dumps found to hold exactly the desired flows by their digest, without decoding
    /// them (`reconcile::dump_holds_exactly`).
    pub dumps_matched_by_digest: AtomicU64,
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

/// What the OpenFlow sessions read and report to.
#[derive(Clone, Debug)]
pub struct OpenFlowContext {
    pub topology: Arc<TransportNodes>,
    pub channels: Arc<Channels>,
    pub observed: Arc<ObservedState>,
    /// Which nodes this instance installs flows on (all of them without `--etcd`).
    pub ownership: Ownership,
}

/// Binds `listen` and serves switches until `shutdown` is cancelled.
pub async fn serve(
    listen: SocketAddr,
    ctx: OpenFlowContext,
    shutdown: CancellationToken,
) -> std::io::Result<OpenFlowServer> {
    serve_with(listen, ctx, shutdown, OpenFlowSettings::default()).await
}

/// [`serve`] with explicit settings.
pub async fn serve_with(
    listen: SocketAddr,
    ctx: OpenFlowContext,
    shutdown: CancellationToken,
    settings: OpenFlowSettings,
) -> std::io::Result<OpenFlowServer> {
    serve_with_tls(listen, ctx, shutdown, settings, None).await
}

/// [`serve_with`], as an `ssl:` listener when `tls` is given: every switch must complete
/// a mutual TLS handshake (a certificate signed by the CA) and its certificate must name
/// the node it serves. A failed handshake closes that connection only.
pub async fn serve_with_tls(
    listen: SocketAddr,
    ctx: OpenFlowContext,
    shutdown: CancellationToken,
    settings: OpenFlowSettings,
    tls: Option<SouthboundTls>,
) -> std::io::Result<OpenFlowServer> {
    let OpenFlowContext {
        topology,
        channels,
        observed,
        ownership,
    } = ctx;
    // A deep accept queue: thousands of switches connect at once after a weftd restart.
    let listener = ovsdb::listen_tcp(&listen.to_string(), ovsdb::LISTEN_BACKLOG).await?;
    let local_addr = listener.local_addr()?;
    tracing::info!(%local_addr, tls = tls.is_some(), "OpenFlow listener up");
    let stats = Arc::new(OpenFlowStats::default());
    let ctx = Arc::new(Ctx {
        current: std::sync::Mutex::new(BTreeMap::new()),
        released: tokio::sync::Notify::new(),
        next_conn: AtomicU64::new(1),
        topology,
        channels,
        observed,
        ownership,
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
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let (stream, identity): (Box<dyn Transport>, _) = match tls {
                            None => (Box::new(stream), None),
                            Some(tls) => match tls.accept(stream).await {
                                Ok((s, id)) => (s, Some(id)),
                                Err(e) => {
                                    tracing::warn!(%peer, error = %e,
                                        "OpenFlow TLS handshake failed; connection closed");
                                    return;
                                }
                            },
                        };
                        run_connection(stream, peer, identity, ctx).await
                    });
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
    ownership: Ownership,
    settings: OpenFlowSettings,
    stats: Arc<OpenFlowStats>,
    shutdown: CancellationToken,
    /// Turns for resyncs (see [`OpenFlowSettings::max_concurrent_resyncs`]).
    resyncs: tokio::sync::Semaphore,
}

async fn run_connection(
    stream: Box<dyn Transport>,
    peer: SocketAddr,
    identity: Option<PeerIdentity>,
    ctx: Arc<Ctx>,
) {
    let label = peer.to_string();
    match &identity {
        Some(id) => tracing::info!(%peer, cn = %id.common_name, "OpenFlow TLS connection accepted"),
        None => tracing::info!(%peer, "OpenFlow connection accepted"),
    }
    let mut conn = Conn {
        framed: Framed::new(stream, LenientCodec::default()),
        session: Session::new(ctx.settings.session, std::time::Instant::now(), &label),
        label,
        shutdown: ctx.shutdown.clone(),
        write_stall_timeout: ctx.settings.write_stall_timeout,
        stalled_since: None,
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
    if let Some(id) = identity.as_ref().filter(|id| !id.names(&node)) {
        tracing::warn!(%peer, cn = %id.common_name, claimed_node = %node,
            dpid = %format_args!("{dpid:016x}"),
            "OpenFlow switch refused: its certificate does not name the node whose datapath id it claims; connection closed");
        return;
    }
    conn.label = format!("{node} ({peer})");
    conn.session.set_label(conn.label.clone());
    // Before the claim, which may wait on a half-open connection of the switch's
    // previous run: the node's switch has reached us, it needs no redial.
    ctx.channels.note_switch_arrival(&node);
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
