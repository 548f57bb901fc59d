//! The OVSDB southbound: one session per hypervisor's `Open_vSwitch` database (and, for a
//! peer that is a hardware VTEP, a [`vtep`](crate::southbound::vtep) session instead).
//!
//! [`serve`] listens for ovsdb-servers that were told `ovs-vsctl set-manager
//! tcp:CONTROLLER:6640` and dials the active targets (`tcp:`/`unix:`, reconnecting with
//! exponential backoff). Each connection gets its own task ([`Session`]) that
//! - monitors `Open_vSwitch`, `Bridge`, `Port`, `Interface`, `Controller` (`monitor_cond`,
//!   falling back to `monitor`) into a [`Replica`];
//! - waits until the root row has `external_ids:system-id` and `weft-encap-ip`;
//! - keeps the integration bridge as DESIGN.md §3 says (`fail_mode=secure`,
//!   `protocols=OpenFlow13`, the advertised controller target, `disable-in-band`), creating
//!   it when missing and repairing it when someone changes it;
//! - publishes a [`NodeView`] to the [`TransportNodes`] and the [`TransportNode`] / port bindings
//!   to [`ObservedState`];
//! - keeps the node's tunnel ports equal to its desired [`TunnelSpec`]s (one guarded
//!   transaction per change), and its patch ports to the bridges of its physical networks
//!   (`weft-bridge-mappings`) equal to its desired
//!   [`PatchSpec`](crate::desired::PatchSpec)s, and writes `external_ids:weft-installed`
//!   from the set of ports whose flows the OpenFlow side confirmed.
//!
//! Over TLS (an `ssl:` listener or target, [`crate::tls::SouthboundTls`]) the peer's
//! certificate must be signed by the CA, and its CN must name the system-id the
//! `Open_vSwitch` row states ([`crate::tls::PeerIdentity::names`]): otherwise the session
//! ends before its first write, with a warning naming the peer, the CN and the claimed
//! system-id. A failed handshake closes that connection only, never the listener.
//!
//! A session never writes a row Weft does not own: tunnel ports are recognised by
//! `external_ids:weft-remote`, patch ports (on br-int and on a mapped bridge) by
//! `external_ids:weft-physnet`, and `weft-installed` is the only key set on VM
//! interfaces. A mapped bridge is never created or otherwise changed: if it does not
//! exist, the session logs it and patches nothing to it.
//!
//! Patch port names: `wpi-` (br-int side) and `wpe-` (mapped bridge side) followed by the
//! same hash of the physnet name ([`patch_port_names`]).
//!
//! Writes and the replica: ovsdb-server (3.1) sends the monitor update that shows a
//! transaction's effect *before* the `transact` reply; the session, waiting for that
//! reply, holds the update (`Session::write`) and applies it to the replica only after
//! the reply (a server that sent it after the reply would be handled the same way). So
//! when the reply comes the replica does not show the write yet: after a successful
//! write of one kind (bridge, tunnels, installed marks) the session does not plan that
//! kind again until the replica has changed (the held update applied), or after a few
//! seconds should no update come (a write that changed nothing). A failed write (e.g.
//! its optimistic `wait` saw a concurrent change) is re-planned on the next update or
//! after a short retry delay.
//!
//! Tunnel port names: `wt-` followed by the 32-bit FNV-1a hash of the remote's system-id
//! (UTF-8 bytes), as 8 lowercase hex digits ([`tunnel_port_name`]). The hash is stable
//! across versions and machines; 11 characters fit Linux's 15-byte interface names.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ovsdb::{Client, ClientConfig, Listener};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::channels::Channels;
use crate::cluster::Ownership;
use crate::config::{Config, Endpoint};
use crate::observed::ObservedState;
use crate::tls::{PeerIdentity, SouthboundTls};
use crate::topology::TransportNodes;

/// `external_ids` keys of the hypervisor's root row and interfaces (DESIGN.md §3).
pub const KEY_SYSTEM_ID: &str = "system-id";
pub const KEY_ENCAP_IP: &str = "weft-encap-ip";
pub const KEY_ENCAP_TYPE: &str = "weft-encap-type";
pub const KEY_BRIDGE: &str = "weft-bridge";
pub const KEY_DATAPATH_TYPE: &str = "weft-datapath-type";
pub const KEY_REMOTE: &str = "weft-remote";
/// Marks Weft's tunnel ports to external VXLAN endpoints (flood VTEPs) with their address.
pub const KEY_VTEP: &str = "weft-vtep";
/// Root row: which bridge carries each physical network (`physnet1:br-ex,...`).
pub const KEY_BRIDGE_MAPPINGS: &str = "weft-bridge-mappings";
/// Marks Weft's patch ports (both ends) with the physical network they reach.
pub const KEY_PHYSNET: &str = "weft-physnet";
pub const KEY_INSTALLED: &str = "weft-installed";
pub const KEY_IFACE_ID: &str = "iface-id";
pub const DEFAULT_BRIDGE: &str = "br-int";

/// The `max_backoff` (ms) Weft writes into br-int's Controller row: vswitchd's smallest
/// allowed value. A switch that lost weftd (weftd restarting, a cut connection) tries
/// again at least every ~2 s (1 s connect timeout + 1 s wait) instead of growing to
/// vswitchd's default 8 s + 8 s, so it is back under control soon after weftd is.
/// Forwarding does not depend on it (fail_mode secure keeps the flows).
pub const CONTROLLER_MAX_BACKOFF_MS: i64 = 1000;

/// Settings of the OVSDB southbound.
#[derive(Clone, Debug)]
pub struct OvsdbSouthbound {
    /// Manager listener (`tcp:0.0.0.0:6640` by default); `None` listens nowhere.
    pub listen: Option<SocketAddr>,
    /// The manager listener is `ssl:` (needs [`Self::tls`]).
    pub listen_ssl: bool,
    /// Certificates for the `ssl:` listener and `ssl:` active targets.
    pub tls: Option<SouthboundTls>,
    /// Active targets (`tcp:IP:PORT`, `unix:PATH`), dialled and redialled with backoff.
    pub active: Vec<Endpoint>,
    /// What each br-int's Controller row points at; `None` leaves Controller rows alone.
    pub openflow_advertise: Option<SocketAddr>,
    /// Write the Controller target as `ssl:` (the OpenFlow listener is `ssl:`).
    pub advertise_ssl: bool,
    /// Idle time after which we `echo` a peer; it is dead after as long again.
    pub inactivity_probe: Duration,
    /// How long one request (get_schema, monitor, transact) may take.
    pub request_timeout: Duration,
    /// Notifications buffered per connection before reading that socket pauses.
    pub event_capacity: usize,
    /// Connections served at once; further accepted connections are closed at once.
    /// Twice the largest fabric it is meant for: when every hypervisor reconnects at
    /// once, the old sessions are still being reaped while the new ones arrive.
    pub max_sessions: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a node whose OVSDB session ended stays in the topology, as last
    /// seen, before it is forgotten. Forgetting it makes every other node drop its tunnel
    /// and flows towards it, so an ovsdb-server restart or a short underlay cut must not
    /// do that: the node's data plane keeps forwarding while its session is down.
    /// weftd: `--node-grace` / `node_grace_secs` (default 60 s).
    pub node_hold: Duration,
}

/// Sessions that fetch the schema and the initial monitor contents at once (the
/// CPU-heavy part of a session's setup). When thousands of hypervisors (re)connect together, setting them
/// all up at once fills the runtime's run queue for longer than the peers' inactivity
/// probes, they drop the connections and the reconnects feed on themselves. Waiting
/// sessions cost nothing and their connections stay alive: the client answers the peer's
/// echoes on its own task.
pub const MAX_CONCURRENT_SETUPS: usize = 64;

/// Largest JSON-RPC message a hypervisor may send: a full vswitch monitor reply of a
/// hypervisor with thousands of ports is a few MiB; a bigger frame is refused (and the
/// peer disconnected) as soon as 32 MiB of it are buffered, which bounds what one
/// connection can make weftd hold.
pub const SOUTHBOUND_MAX_FRAME: usize = 32 * 1024 * 1024;

impl Default for OvsdbSouthbound {
    fn default() -> Self {
        OvsdbSouthbound {
            listen: Some(SocketAddr::from(([0, 0, 0, 0], 6640))),
            listen_ssl: false,
            tls: None,
            active: Vec::new(),
            openflow_advertise: None,
            advertise_ssl: false,
            inactivity_probe: super::PROBE_INTERVAL,
            request_timeout: Duration::from_secs(30),
            event_capacity: 256,
            max_sessions: 8192,
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            node_hold: Duration::from_secs(60),
        }
    }
}

impl OvsdbSouthbound {
    /// The southbound part of weftd's configuration; `tls` is what weftd loaded from
    /// [`Config::tls`].
    pub fn from_config(cfg: &Config, tls: Option<SouthboundTls>) -> Self {
        OvsdbSouthbound {
            listen: Some(cfg.ovsdb_listen),
            listen_ssl: cfg.ovsdb_ssl,
            tls,
            active: cfg.ovsdb.clone(),
            openflow_advertise: cfg.openflow_advertise,
            advertise_ssl: cfg.openflow_ssl,
            node_hold: cfg.node_grace,
            ..Default::default()
        }
    }

    fn client_config(&self) -> ClientConfig {
        ClientConfig {
            request_timeout: self.request_timeout,
            inactivity_probe: Some(self.inactivity_probe),
            event_capacity: self.event_capacity,
            // A peer that does not read what we send is dropped, not waited on forever.
            write_timeout: self.request_timeout,
            max_frame: SOUTHBOUND_MAX_FRAME,
        }
    }

    fn controller_target(&self) -> Option<String> {
        let scheme = if self.advertise_ssl { "ssl" } else { "tcp" };
        self.openflow_advertise.map(|a| format!("{scheme}:{a}"))
    }
}

/// What the sessions read and write.
#[derive(Clone, Debug)]
pub struct OvsdbContext {
    pub topology: Arc<TransportNodes>,
    pub channels: Arc<Channels>,
    pub observed: Arc<ObservedState>,
    /// Which hypervisors this instance may write to (all of them without `--etcd`).
    pub ownership: Ownership,
    /// The logical model, for hardware VTEP sessions to write from; None: VTEPs are
    /// only observed.
    pub model: Option<watch::Receiver<Arc<crate::model::LogicalModel>>>,
}

impl OvsdbContext {
    fn vtep_context(&self) -> crate::southbound::vtep::session::VtepContext {
        crate::southbound::vtep::session::VtepContext {
            observed: self.observed.clone(),
            model: self.model.clone(),
            bindings: self.channels.watch_bindings(),
            topology: self.topology.watch(),
        }
    }
}

/// The running southbound, returned by [`serve`].
#[derive(Debug)]
pub struct OvsdbServer {
    local_addr: Option<SocketAddr>,
    task: tokio::task::JoinHandle<()>,
}

impl OvsdbServer {
    /// The address the manager listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Waits until every listener, dialler and session has ended (after `shutdown` was
    /// cancelled). Sessions mark their nodes disconnected on the way out.
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "OVSDB southbound task failed");
        }
    }
}

/// Starts the OVSDB southbound: binds the manager listener (so a bad address fails here),
/// then runs the listener and one dialler per active target in the background until
/// `shutdown` is cancelled.
///
/// Wiring in weftd (the fabric is the one the compiler task and the OpenFlow side share):
/// ```ignore
/// let shutdown = CancellationToken::new();
/// let ovsdb = southbound::ovsdb::serve(
///     OvsdbSouthbound::from_config(&cfg),
///     OvsdbContext {
///         topology: nodes.clone(),
///         channels: channels.clone(),
///         observed: controller.observed().clone(),
///         ownership: Ownership::single("weftd"),
///         model: Some(controller.watch_model()),
///     },
///     shutdown.clone(),
/// )
/// .await?;
/// // ... on shutdown:
/// shutdown.cancel();
/// ovsdb.join().await; // every node marked disconnected
/// ```
pub async fn serve(
    cfg: OvsdbSouthbound,
    ctx: OvsdbContext,
    shutdown: CancellationToken,
) -> io::Result<OvsdbServer> {
    let needs_tls = cfg.listen_ssl && cfg.listen.is_some()
        || cfg.active.iter().any(|e| matches!(e, Endpoint::Ssl(_)));
    if needs_tls && cfg.tls.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "ssl: OVSDB listener or target without TLS certificates",
        ));
    }
    let listener = match cfg.listen {
        Some(addr) => {
            let bound =
                |e: io::Error| io::Error::new(e.kind(), format!("OVSDB listener {addr}: {e}"));
            match (&cfg.tls, cfg.listen_ssl) {
                (Some(tls), true) => Some(Passive::Tls(
                    ovsdb::listen_tcp(&addr.to_string(), ovsdb::LISTEN_BACKLOG)
                        .await
                        .map_err(bound)?,
                    tls.clone(),
                )),
                _ => Some(Passive::Plain(
                    Listener::bind(&addr.to_string(), cfg.client_config())
                        .await
                        .map_err(bound)?,
                )),
            }
        }
        None => None,
    };
    let local_addr = listener.as_ref().map(Passive::local_addr).transpose()?;
    if let Some(addr) = local_addr {
        tracing::info!(%addr, tls = cfg.listen_ssl, "OVSDB manager listener up");
    }
    if cfg.openflow_advertise.is_none() {
        tracing::warn!(
            "no --openflow-advertise configured: integration bridges' Controller rows are left alone"
        );
    }
    let shared = Arc::new(Shared {
        cfg,
        ctx,
        owners: Mutex::new(HashMap::new()),
        next_session: AtomicU64::new(1),
        slots: Arc::new(Semaphore::new(0)),
        setups: Semaphore::new(MAX_CONCURRENT_SETUPS),
        released: watch::channel(0).0,
        schemas: ovsdb::SharedSchemas::new(),
        carry: carry::CarryOver::default(),
    });
    shared.slots.add_permits(shared.cfg.max_sessions.max(1));
    let task = tokio::spawn(run(shared, listener, shutdown));
    Ok(OvsdbServer { local_addr, task })
}

/// State every session of one southbound shares.
#[derive(Debug)]
struct Shared {
    cfg: OvsdbSouthbound,
    ctx: OvsdbContext,
    /// system-id → the session that speaks for it. The first session to identify a node
    /// keeps it while it lives; another one for the same system-id (a hypervisor that
    /// reconnected before its old connection was found dead, or one reachable both
    /// actively and passively) waits, logged, and takes over when the first ends. So two
    /// sessions never write the same database and duplicates never flap.
    owners: Mutex<HashMap<String, u64>>,
    next_session: AtomicU64,
    slots: Arc<Semaphore>,
    /// Turns for a session's setup (schema and initial monitor contents); see
    /// [`MAX_CONCURRENT_SETUPS`].
    setups: Semaphore,
    /// Bumped whenever a session gives up a node, to wake the sessions waiting for it.
    released: watch::Sender<u64>,
    /// The schemas the replicas of all sessions share (one parsed copy per version).
    schemas: ovsdb::SharedSchemas,
    /// What ended sessions left for their nodes' next sessions.
    carry: carry::CarryOver,
}

impl Shared {
    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The manager listener: plain (the ovsdb crate's) or TLS (accepted here, handshaken on
/// the connection's own task so a slow or failing peer never holds the listener).
enum Passive {
    Plain(Listener),
    Tls(tokio::net::TcpListener, SouthboundTls),
}

impl Passive {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Passive::Plain(l) => l.local_addr(),
            Passive::Tls(l, _) => l.local_addr(),
        }
    }
}

/// A connection accepted by [`Passive`], not yet a client for TLS ones.
enum Accepted {
    Plain(Client, tokio::sync::mpsc::Receiver<ovsdb::Event>),
    Tls(tokio::net::TcpStream, SouthboundTls),
}

impl Passive {
    /// The connection, its peer, and the address the peer dialled.
    async fn accept(&self) -> io::Result<(Accepted, SocketAddr, SocketAddr)> {
        match self {
            Passive::Plain(l) => {
                let a = l.accept().await?;
                Ok((Accepted::Plain(a.client, a.events), a.peer, a.local))
            }
            Passive::Tls(l, tls) => {
                let (s, peer) = l.accept().await?;
                s.set_nodelay(true)?;
                let local = s.local_addr()?;
                Ok((Accepted::Tls(s, tls.clone()), peer, local))
            }
        }
    }
}

async fn run(shared: Arc<Shared>, listener: Option<Passive>, shutdown: CancellationToken) {
    let mut tasks = JoinSet::new();
    for target in shared.cfg.active.clone() {
        tasks.spawn(dial_loop(shared.clone(), target, shutdown.clone()));
    }
    if let Some(listener) = listener {
        tasks.spawn(accept_loop(shared.clone(), listener, shutdown.clone()));
    }
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            tracing::error!(error = %e, "OVSDB southbound task failed");
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: Passive, shutdown: CancellationToken) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(r) = sessions.join_next(), if !sessions.is_empty() => {
                if let Err(e) = r {
                    tracing::error!(error = %e, "OVSDB session task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((accepted, peer, local)) => {
                    let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, max = shared.cfg.max_sessions,
                            "OVSDB connection refused: too many sessions");
                        if let Accepted::Plain(client, _) = accepted {
                            client.close().await;
                        }
                        continue;
                    };
                    // Counted here, not in the task: on a loaded machine the task may
                    // start long after the accept, and a held node's grace must see
                    // the connection that may be it as soon as weftd has it.
                    let arrival = shared.ctx.topology.arrival();
                    if let Accepted::Plain(..) = accepted {
                        tracing::info!(%peer, "OVSDB manager connection accepted");
                    }
                    let shared = shared.clone();
                    let shutdown = shutdown.clone();
                    sessions.spawn(async move {
                        let vtep_ctx = shared.ctx.vtep_context();
                        let (client, events, session) = match accepted {
                            Accepted::Plain(client, events) => {
                                let session = Session::new(shared, format!("tcp:{peer}"), arrival)
                                    .reached_at(local);
                                (client, events, session)
                            }
                            Accepted::Tls(tcp, tls) => {
                                let handshake = tokio::select! {
                                    _ = shutdown.cancelled() => return,
                                    h = tls.accept(tcp) => h,
                                };
                                let (stream, id) = match handshake {
                                    Ok(ok) => ok,
                                    Err(e) => {
                                        tracing::warn!(%peer, error = %e,
                                            "OVSDB TLS handshake failed; connection closed");
                                        return;
                                    }
                                };
                                tracing::info!(%peer, cn = %id.common_name,
                                    "OVSDB manager TLS connection accepted");
                                let (client, events) =
                                    Client::from_stream(stream, shared.cfg.client_config());
                                let session = Session::new(shared, format!("ssl:{peer}"), arrival)
                                    .with_identity(id)
                                    .reached_at(local);
                                (client, events, session)
                            }
                        };
                        if crate::southbound::vtep::is_vtep(&client).await {
                            // No hypervisor: it must not count as one arriving.
                            let peer = session.peer.clone();
                            drop(session);
                            crate::southbound::vtep::session::run(
                                client, events, vtep_ctx, peer, shutdown,
                            )
                            .await;
                        } else {
                            session.run(client, events, shutdown).await;
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    // EMFILE and friends: do not spin.
                    tracing::warn!(error = %e, "OVSDB accept failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            }
        }
    }
    while let Some(r) = sessions.join_next().await {
        if let Err(e) = r {
            tracing::error!(error = %e, "OVSDB session task failed");
        }
    }
}

/// Dials one active target until shutdown, with exponential backoff and jitter between
/// attempts; the backoff resets after a session that got as far as identifying its node.
async fn dial_loop(shared: Arc<Shared>, target: Endpoint, shutdown: CancellationToken) {
    let peer = target.to_string();
    let mut backoff = shared.cfg.min_backoff;
    loop {
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = dial(&shared.cfg, &target) => r,
        };
        match attempt {
            Ok((client, events, identity)) => {
                tracing::info!(%peer, cn = identity.as_ref().map(|i| i.common_name.as_str()),
                    "OVSDB connected");
                if crate::southbound::vtep::is_vtep(&client).await {
                    let ctx = shared.ctx.vtep_context();
                    crate::southbound::vtep::session::run(
                        client,
                        events,
                        ctx,
                        peer.clone(),
                        shutdown.clone(),
                    )
                    .await;
                    backoff = shared.cfg.min_backoff;
                } else {
                    let arrival = shared.ctx.topology.arrival();
                    let mut session = Session::new(shared.clone(), peer.clone(), arrival);
                    session.identity = identity;
                    session.run_ref(client, events, shutdown.clone()).await;
                    if session.node.is_some() {
                        backoff = shared.cfg.min_backoff;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, retry_in = ?backoff, "OVSDB connect failed");
            }
        }
        let jitter = backoff.mul_f64(rand_fraction() * 0.25);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff + jitter) => {}
        }
        backoff = (backoff * 2).min(shared.cfg.max_backoff);
    }
}

/// Why dialling an active target failed.
#[derive(Debug, thiserror::Error)]
enum DialError {
    #[error("{0}")]
    Client(#[from] ovsdb::ClientError),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Tls(#[from] crate::tls::HandshakeError),
}

/// Connects to one active target: `tcp:`/`unix:` through the ovsdb crate, `ssl:` with a
/// TLS handshake here (the peer's certificate identity comes back with the client).
async fn dial(
    cfg: &OvsdbSouthbound,
    target: &Endpoint,
) -> Result<
    (
        Client,
        tokio::sync::mpsc::Receiver<ovsdb::Event>,
        Option<PeerIdentity>,
    ),
    DialError,
> {
    match (target, &cfg.tls) {
        (Endpoint::Ssl(addr), Some(tls)) => {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let (stream, id) = tls.connect(tcp).await?;
            let (client, events) = Client::from_stream(stream, cfg.client_config());
            Ok((client, events, Some(id)))
        }
        _ => {
            let (client, events) = ovsdb::connect(&target.to_string(), cfg.client_config()).await?;
            Ok((client, events, None))
        }
    }
}

/// A fraction in [0, 1) from the clock (jitter only; no need for a real RNG).
fn rand_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

mod carry;
mod converge;
pub mod fence;
mod memo;
mod redial;
mod session;
mod settings;
#[cfg(test)]
mod tests;

use session::Session;
pub use settings::{patch_port_names, tunnel_port_name, vtep_port_name};
