//! The OVSDB southbound: one session per hypervisor's `Open_vSwitch` database.
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
//!   transaction per change) and writes `external_ids:weft-installed` from the set of
//!   ports whose flows the OpenFlow side confirmed.
//!
//! A session never writes a row Weft does not own: tunnel ports are recognised by
//! `external_ids:weft-remote`, and `weft-installed` is the only key set on VM interfaces.
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ovsdb::vswitch::{self, Bridge, Interface, OpenVSwitch};
use ovsdb::{Client, ClientConfig, ClientError, Event, Listener, Replica, Transaction};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::channels::Channels;
use crate::config::{Config, Endpoint};
use crate::desired::{DesiredNode, TunnelSpec};
use crate::observed::{ObservedState, TransportNode};
use crate::topology::EncapType;
use crate::topology::{NodeView, TransportNodes, Vif};

/// `external_ids` keys of the hypervisor's root row and interfaces (DESIGN.md §3).
pub const KEY_SYSTEM_ID: &str = "system-id";
pub const KEY_ENCAP_IP: &str = "weft-encap-ip";
pub const KEY_ENCAP_TYPE: &str = "weft-encap-type";
pub const KEY_BRIDGE: &str = "weft-bridge";
pub const KEY_DATAPATH_TYPE: &str = "weft-datapath-type";
pub const KEY_REMOTE: &str = "weft-remote";
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
    /// Active targets (`tcp:IP:PORT`, `unix:PATH`), dialled and redialled with backoff.
    pub active: Vec<Endpoint>,
    /// What each br-int's Controller row points at; `None` leaves Controller rows alone.
    pub openflow_advertise: Option<SocketAddr>,
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
            active: Vec::new(),
            openflow_advertise: None,
            inactivity_probe: Duration::from_secs(5),
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
    /// The southbound part of weftd's configuration.
    pub fn from_config(cfg: &Config) -> Self {
        OvsdbSouthbound {
            listen: Some(cfg.ovsdb_listen),
            active: cfg.ovsdb.clone(),
            openflow_advertise: cfg.openflow_advertise,
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
        self.openflow_advertise.map(|a| format!("tcp:{a}"))
    }
}

/// What the sessions read and write.
#[derive(Clone, Debug)]
pub struct OvsdbContext {
    pub topology: Arc<TransportNodes>,
    pub channels: Arc<Channels>,
    pub observed: Arc<ObservedState>,
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
///         model: controller.watch_model(),
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
    let listener = match cfg.listen {
        Some(addr) => {
            let l = Listener::bind(&addr.to_string(), cfg.client_config())
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("OVSDB listener {addr}: {e}")))?;
            Some(l)
        }
        None => None,
    };
    let local_addr = listener.as_ref().map(Listener::local_addr).transpose()?;
    if let Some(addr) = local_addr {
        tracing::info!(%addr, "OVSDB manager listener up");
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
}

impl Shared {
    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn run(shared: Arc<Shared>, listener: Option<Listener>, shutdown: CancellationToken) {
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

async fn accept_loop(shared: Arc<Shared>, listener: Listener, shutdown: CancellationToken) {
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
                Ok((client, events, peer)) => {
                    let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, max = shared.cfg.max_sessions,
                            "OVSDB connection refused: too many sessions");
                        client.close().await;
                        continue;
                    };
                    tracing::info!(%peer, "OVSDB manager connection accepted");
                    let shared = shared.clone();
                    let shutdown = shutdown.clone();
                    sessions.spawn(async move {
                        Session::new(shared, format!("tcp:{peer}"))
                            .run(client, events, shutdown)
                            .await;
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
            r = ovsdb::connect(&peer, shared.cfg.client_config()) => r,
        };
        match attempt {
            Ok((client, events)) => {
                tracing::info!(%peer, "OVSDB connected");
                let mut session = Session::new(shared.clone(), peer.clone());
                session.run_ref(client, events, shutdown.clone()).await;
                if session.node.is_some() {
                    backoff = shared.cfg.min_backoff;
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

/// A fraction in [0, 1) from the clock (jitter only; no need for a real RNG).
fn rand_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

/// `wt-` + 8 hex digits of the 32-bit FNV-1a hash of the remote's system-id.
pub fn tunnel_port_name(remote_system_id: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in remote_system_id.as_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("wt-{h:08x}")
}

fn encap_name(e: EncapType) -> &'static str {
    match e {
        EncapType::Geneve => "geneve",
        EncapType::Vxlan => "vxlan",
        EncapType::Stt => "stt",
    }
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionEnd {
    #[error("shutting down")]
    Shutdown,
    #[error("peer disconnected: {0:?}")]
    Disconnected(ovsdb::DisconnectReason),
    #[error("{step}: {error}")]
    Client {
        step: &'static str,
        #[source]
        error: ClientError,
    },
    #[error("bad monitor update: {0}")]
    Replica(#[from] ovsdb::ReplicaError),
}

/// The hypervisor's settings from its root row.
#[derive(Clone, Debug, PartialEq)]
struct NodeSettings {
    id: String,
    encap_ip: IpAddr,
    encap_type: EncapType,
    bridge: String,
    datapath_type: Option<String>,
}

/// Reads and validates the root row; `Err` explains what the operator must fix.
fn node_settings(root: &OpenVSwitch) -> Result<NodeSettings, String> {
    let id = root
        .external_id(KEY_SYSTEM_ID)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("external_ids:{KEY_SYSTEM_ID} is not set"))?;
    let ip = root.external_id(KEY_ENCAP_IP).ok_or_else(|| {
        format!(
            "external_ids:{KEY_ENCAP_IP} is not set (ovs-vsctl set Open_vSwitch . external_ids:{KEY_ENCAP_IP}=IP)"
        )
    })?;
    let encap_ip: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| format!("external_ids:{KEY_ENCAP_IP}={ip:?} is not an IP address"))?;
    let encap_type = match root.external_id(KEY_ENCAP_TYPE).map(str::trim) {
        None | Some("") | Some("geneve") => EncapType::Geneve,
        Some("vxlan") => EncapType::Vxlan,
        Some("stt") => EncapType::Stt,
        Some(other) => {
            return Err(format!(
                "external_ids:{KEY_ENCAP_TYPE}={other:?} is not geneve, vxlan or stt"
            ));
        }
    };
    let bridge = root
        .external_id(KEY_BRIDGE)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_BRIDGE)
        .to_owned();
    let datapath_type = root
        .external_id(KEY_DATAPATH_TYPE)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok(NodeSettings {
        id: id.to_owned(),
        encap_ip,
        encap_type,
        bridge,
        datapath_type,
    })
}

/// Most notifications a session holds while one transaction is in flight.
const HOLD_MAX: usize = 4096;

/// What woke a session's loop.
enum Wake {
    Event(Option<Event>),
    Desired(bool),
    Marks(bool),
    Released,
    Retry,
}

/// The kinds of write a session makes, each planned and tracked on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum WriteKind {
    Bridge,
    Tunnels,
    Installed,
}

/// What a session learned from the replica on its last pass.
#[derive(Default)]
struct Observed {
    /// Last logged error per tunnel port name (to log each new error once).
    tunnel_errors: BTreeMap<String, String>,
    /// Last "waiting because ..." message (logged once per change).
    waiting: Option<String>,
    /// iface-ids on several interfaces (logged once each).
    duplicates: BTreeSet<String>,
}

/// One connection to one hypervisor's database.
struct Session {
    shared: Arc<Shared>,
    id: u64,
    peer: String,
    node: Option<NodeSettings>,
    desired: Option<watch::Receiver<Arc<DesiredNode>>>,
    /// The ofports of this node's VIFs to mark `weft-installed` ([`crate::port_status`]).
    marks: Option<watch::Receiver<Arc<BTreeSet<u32>>>>,
    released: watch::Receiver<u64>,
    /// Another session serves this system-id; wake when some session releases a node.
    waiting_for_owner: bool,
    /// Notifications received while a transaction was in flight, applied after it.
    held: Vec<Event>,
    /// Bumped on every applied monitor update.
    generation: u64,
    /// Bumped on every applied monitor update that changed a row of a table other than
    /// `Controller`: what the bridge holds (publishing, tunnels, weft-installed) is read
    /// from those tables only, and a live switch updates its Controller rows' status on
    /// its own (connection state, role), which must not make the session re-read the
    /// whole bridge.
    contents_generation: u64,
    /// For each write kind, the generation at which the last successful write was sent.
    written_at: HashMap<WriteKind, u64>,
    retry_at: Option<Instant>,
    seen: Observed,
    memo: Memo,
}

/// Steps of [`Session::reconcile`] that found nothing to do, with the inputs they saw.
///
/// A pass runs on every wake (a monitor update, a new desired state, newly installed
/// ports), and each step used to decode every Port and Interface row of the bridge again:
/// at hundreds of tunnels a node, on 2 cores, that was over half of weftd's CPU during a
/// cold start, on the runtime threads that must also read the sockets. A step whose
/// inputs (the replica's generation, or for the bridge's contents its
/// `contents_generation`; the desired tunnels, the marks) are the ones it last ran with, and that then had nothing to write, is skipped:
/// it would find nothing again. Cleared when the node or the write state is reset
/// (identity change, retry timer). (Rows themselves are decoded once per version by the
/// replica, see `vswitch::cached_row`.)
#[derive(Debug, Default)]
struct Memo {
    /// The integration bridge needed no change at this replica generation.
    bridge_clean: Option<u64>,
    /// What was published at this contents generation.
    published: Option<Published>,
    /// The tunnel ports matched these desired tunnels at this contents generation.
    tunnels_clean: Option<(u64, BTreeSet<TunnelSpec>)>,
    /// The weft-installed marks matched these marks at this contents generation.
    installed_clean: Option<(u64, Arc<BTreeSet<u32>>)>,
    /// The OVS tunnel ports for these desired tunnels: rebuilt only when the desired
    /// tunnels change, not on every pass that plans them.
    specs: Option<(BTreeSet<TunnelSpec>, Arc<Vec<vswitch::TunnelSpec>>)>,
}

#[derive(Debug)]
struct Published {
    generation: u64,
    vifs: Arc<BTreeMap<String, Vif>>,
}

impl Session {
    fn new(shared: Arc<Shared>, peer: String) -> Session {
        let id = shared.next_session.fetch_add(1, Ordering::Relaxed);
        let released = shared.released.subscribe();
        Session {
            released,
            waiting_for_owner: false,
            held: Vec::new(),
            shared,
            id,
            peer,
            node: None,
            desired: None,
            marks: None,
            generation: 0,
            contents_generation: 0,
            written_at: HashMap::new(),
            retry_at: None,
            seen: Observed::default(),
            memo: Memo::default(),
        }
    }

    async fn run(
        mut self,
        client: Client,
        events: mpsc::Receiver<Event>,
        shutdown: CancellationToken,
    ) -> SessionEnd {
        self.run_ref(client, events, shutdown).await
    }

    /// Runs the session to its end, logs why it ended (with the peer and, if known, the
    /// node), undoes what it published (the node is marked disconnected, not forgotten)
    /// and closes the connection.
    async fn run_ref(
        &mut self,
        client: Client,
        mut events: mpsc::Receiver<Event>,
        shutdown: CancellationToken,
    ) -> SessionEnd {
        let mut end = tokio::select! {
            // Shutdown first: a session woken by another's release must not start
            // serving a node during shutdown.
            biased;
            _ = shutdown.cancelled() => SessionEnd::Shutdown,
            end = self.serve(&client, &mut events) => end,
        };
        // A request that failed because the connection dropped says only "connection
        // closed"; the client's last event says why (garbage, keepalive timeout, ...).
        if let SessionEnd::Client {
            error: ClientError::Disconnected,
            ..
        } = end
        {
            // The connection's task sends that event just after failing the request:
            // wait for it briefly rather than log a reason-less line.
            let wait = Duration::from_secs(1);
            while let Ok(Some(ev)) = tokio::time::timeout(wait, events.recv()).await {
                if let Event::Disconnected(reason) = ev {
                    end = SessionEnd::Disconnected(reason);
                    break;
                }
            }
        }
        if matches!(end, SessionEnd::Shutdown)
            || matches!(
                end,
                SessionEnd::Disconnected(ovsdb::DisconnectReason::PeerClosed)
            )
        {
            tracing::info!(peer = %self.peer, node = self.node_name(), reason = %end,
                "OVSDB session ended");
        } else {
            tracing::warn!(peer = %self.peer, node = self.node_name(), reason = %end,
                "OVSDB session ended; connection closed");
        }
        self.release();
        client.close().await;
        end
    }

    fn node_name(&self) -> &str {
        self.node.as_ref().map_or("?", |n| n.id.as_str())
    }

    async fn serve(&mut self, client: &Client, events: &mut mpsc::Receiver<Event>) -> SessionEnd {
        let step = |step| move |error| SessionEnd::Client { step, error };
        let shared = self.shared.clone();
        let setup_turn = match shared.setups.acquire().await {
            Ok(t) => t,
            Err(_) => return SessionEnd::Shutdown,
        };
        let schema = match client.get_schema(vswitch::DATABASE).await {
            Ok(s) => s,
            Err(e) => return step("get_schema")(e),
        };
        let requests = vswitch::monitor_requests_for(&schema);
        let mut replica = Replica::new(schema);
        replica.set_monitored(&requests);
        let start = match client
            .monitor_auto(
                vswitch::DATABASE,
                serde_json::json!(["weft", self.id]),
                &requests,
            )
            .await
        {
            Ok(s) => s,
            Err(e) => return step("monitor")(e),
        };
        if let Err(e) = replica.apply(start.format, &start.initial) {
            return e.into();
        }
        // Fetched: the next session may fetch. The first reconcile pass is not part of
        // the turn: it waits on the peer's replies, and holding turns across those makes
        // nodes join the topology in waves, each wave recompiling their neighbours again.
        drop(setup_turn);
        tracing::debug!(peer = %self.peer, format = ?start.format, "OVSDB monitor started");
        loop {
            if let Err(end) = self.reconcile(client, &replica, events).await {
                return end;
            }
            // Updates that arrived while a transaction was in flight come first.
            if !self.held.is_empty() {
                for ev in std::mem::take(&mut self.held) {
                    if let Err(end) = self.handle_event(Some(ev), &mut replica) {
                        return end;
                    }
                }
                continue;
            }
            let retry_at = self.retry_at;
            let wake = tokio::select! {
                ev = events.recv() => Wake::Event(ev),
                ok = changed(&mut self.desired) => Wake::Desired(ok),
                ok = changed(&mut self.marks) => Wake::Marks(ok),
                // Only a session waiting for a node listens; Shared holds the sender as
                // long as this session lives.
                _ = self.released.changed(), if self.waiting_for_owner => Wake::Released,
                _ = sleep_until_opt(retry_at) => Wake::Retry,
            };
            match wake {
                Wake::Event(ev) => {
                    if let Err(end) = self.handle_event(ev, &mut replica) {
                        return end;
                    }
                    // Apply whatever else is already queued before reconciling once.
                    while let Ok(ev) = events.try_recv() {
                        if let Err(end) = self.handle_event(Some(ev), &mut replica) {
                            return end;
                        }
                    }
                }
                Wake::Desired(ok) => {
                    if !ok {
                        self.desired = None;
                    }
                }
                Wake::Marks(ok) => {
                    if !ok {
                        self.marks = None;
                    }
                }
                Wake::Released => {}
                Wake::Retry => {
                    self.retry_at = None;
                    self.written_at.clear();
                    self.memo = Memo::default();
                }
            }
        }
    }

    fn handle_event(&mut self, ev: Option<Event>, replica: &mut Replica) -> Result<(), SessionEnd> {
        match ev {
            Some(Event::Update {
                format, updates, ..
            }) => {
                let changes = replica.apply(format, &updates)?;
                self.generation += 1;
                if changes
                    .changes
                    .iter()
                    .any(|c| c.table != vswitch::CONTROLLER)
                {
                    self.contents_generation += 1;
                }
                Ok(())
            }
            Some(Event::Disconnected(reason)) => Err(SessionEnd::Disconnected(reason)),
            None => Err(SessionEnd::Disconnected(ovsdb::DisconnectReason::Closed)),
            Some(other) => {
                tracing::debug!(peer = %self.peer, event = ?other, "OVSDB notification ignored");
                Ok(())
            }
        }
    }

    /// Logs why the session is waiting, once per distinct reason.
    fn wait_for(&mut self, why: String) {
        if self.seen.waiting.as_deref() != Some(why.as_str()) {
            tracing::warn!(peer = %self.peer, node = self.node_name(), "waiting: {why}");
            self.seen.waiting = Some(why);
        }
    }

    /// One pass: identify the node, then bring each part of the database to what Weft
    /// wants and publish what it shows.
    async fn reconcile(
        &mut self,
        client: &Client,
        replica: &Replica,
        events: &mut mpsc::Receiver<Event>,
    ) -> Result<(), SessionEnd> {
        let root = match vswitch::cached_root(replica) {
            None => {
                self.wait_for("the database has no Open_vSwitch row".into());
                return Ok(());
            }
            Some(Err(e)) => {
                self.wait_for(format!("unreadable Open_vSwitch row: {e}"));
                return Ok(());
            }
            Some(Ok(r)) => r,
        };
        let settings = match node_settings(&root) {
            Ok(s) => s,
            Err(why) => {
                self.wait_for(why);
                return Ok(());
            }
        };
        let id = settings.id.clone();
        if !self.identify(settings) {
            return Ok(());
        }
        if self.seen.waiting.take().is_some() {
            tracing::info!(peer = %self.peer, node = %id, "no longer waiting");
        }
        let Some(node) = self.node.clone() else {
            return Ok(());
        };

        // 1. The integration bridge.
        let bridge = match vswitch::cached_bridge_by_name(replica, &node.bridge).transpose() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(node = %node.id, error = %e, "unreadable bridge row");
                None
            }
        };
        let spec = vswitch::BridgeSpec {
            name: node.bridge.clone(),
            fail_mode: Some("secure".into()),
            protocols: vec!["OpenFlow13".into()],
            // Only for a bridge we create: never change an existing bridge's datapath.
            datapath_type: if bridge.is_none() {
                node.datapath_type.clone()
            } else {
                None
            },
            controller: self.shared.cfg.controller_target(),
            controller_max_backoff: Some(CONTROLLER_MAX_BACKOFF_MS),
            other_config: BTreeMap::from([("disable-in-band".into(), "true".into())]),
            external_ids: BTreeMap::new(),
        };
        if self.may_write(WriteKind::Bridge) && self.memo.bridge_clean != Some(self.generation) {
            match vswitch::ensure_bridge(replica, root.uuid, &spec) {
                Ok(Some(txn)) => {
                    let what = if bridge.is_none() {
                        "creating"
                    } else {
                        "repairing"
                    };
                    tracing::info!(node = %node.id, bridge = %node.bridge, "{what} integration bridge");
                    self.write(client, events, WriteKind::Bridge, &txn).await?;
                }
                Ok(None) => self.memo.bridge_clean = Some(self.generation),
                Err(e) => tracing::warn!(node = %node.id, error = %e, "cannot plan bridge"),
            }
        }
        let Some(bridge) = bridge else {
            return Ok(());
        };

        // 2. What the bridge holds: VIFs and Weft's tunnels.
        let fresh = self
            .memo
            .published
            .as_ref()
            .is_some_and(|p| p.generation == self.contents_generation);
        if !fresh {
            let (vifs, tunnels) = self.read_bridge(replica, &node, &bridge);
            let datapath_id = bridge
                .datapath_id
                .as_deref()
                .and_then(|s| u64::from_str_radix(s.trim(), 16).ok());
            self.publish(&node, datapath_id, &vifs, &tunnels);
            self.memo.published = Some(Published {
                generation: self.contents_generation,
                vifs: Arc::new(vifs),
            });
        }
        let vifs = self
            .memo
            .published
            .as_ref()
            .map(|p| p.vifs.clone())
            .unwrap_or_default();

        // 3. Tunnel ports.
        if self.may_write(WriteKind::Tunnels)
            && let Some(txn) = self.plan_tunnels(replica, &node, &bridge)
        {
            self.write(client, events, WriteKind::Tunnels, &txn).await?;
        }

        // 4. weft-installed.
        if self.may_write(WriteKind::Installed)
            && let Some(txn) = self.plan_installed(replica, &node, &vifs)
        {
            self.write(client, events, WriteKind::Installed, &txn)
                .await?;
        }
        Ok(())
    }

    /// Takes on the node's identity (or a changed one), claiming it in the registry.
    /// Returns false while another live session serves this system-id.
    fn identify(&mut self, settings: NodeSettings) -> bool {
        if self.node.as_ref().is_some_and(|n| n.id != settings.id) {
            tracing::warn!(peer = %self.peer, old = self.node_name(), new = %settings.id,
                "hypervisor changed its system-id");
            self.release();
        }
        if self.node.is_none() {
            let taken = {
                let mut owners = self.shared.owners();
                match owners.get(&settings.id) {
                    Some(other) if *other != self.id => true,
                    _ => {
                        owners.insert(settings.id.clone(), self.id);
                        false
                    }
                }
            };
            self.waiting_for_owner = taken;
            if taken {
                self.wait_for(format!(
                    "system-id {} is already served by another OVSDB session; \
                     this one takes over when that one ends",
                    settings.id
                ));
                return false;
            }
            self.desired = Some(self.shared.ctx.channels.watch_desired(&settings.id));
            self.marks = Some(self.shared.ctx.channels.watch_marks(&settings.id));
            self.written_at.clear();
            self.memo = Memo::default();
            tracing::info!(peer = %self.peer, node = %settings.id, encap_ip = %settings.encap_ip,
                encap = encap_name(settings.encap_type), bridge = %settings.bridge,
                "hypervisor identified");
        } else if self.node.as_ref() != Some(&settings) {
            tracing::info!(peer = %self.peer, node = %settings.id, encap_ip = %settings.encap_ip,
                encap = encap_name(settings.encap_type), bridge = %settings.bridge,
                "hypervisor settings changed");
        }
        self.node = Some(settings);
        true
    }

    /// Undoes what this session published, unless a newer session owns the node now.
    fn release(&mut self) {
        let Some(node) = self.node.take() else {
            return;
        };
        self.desired = None;
        self.marks = None;
        // Only the owner changes its own entry (others insert only when it is absent), so
        // this check stays true until we remove the entry below. The state is cleaned up
        // first, then the node is handed over: a waiting session must not publish its
        // state before ours is gone.
        if self.shared.owners().get(&node.id) != Some(&self.id) {
            return;
        }
        let ctx = &self.shared.ctx;
        // Held, the node's ports show down and unbound in the API at once
        // (`port_status`), while the other nodes keep tunnelling to it for the grace.
        ctx.topology
            .session_ended(&node.id, self.shared.cfg.node_hold);
        ctx.observed
            .update_node(&node.id, |n| n.ovsdb_connected = false);
        tracing::info!(peer = %self.peer, node = %node.id, "hypervisor marked disconnected");
        self.shared.owners().remove(&node.id);
        self.shared.released.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn may_write(&self, kind: WriteKind) -> bool {
        self.written_at
            .get(&kind)
            .is_none_or(|at| *at != self.generation)
    }

    /// Sends one transaction. Notifications that arrive meanwhile are held (up to
    /// [`HOLD_MAX`], then the client's own backpressure applies) rather than left in the
    /// client's channel: a full channel stops the client reading the socket, and so
    /// reading the reply this call waits for.
    async fn write(
        &mut self,
        client: &Client,
        events: &mut mpsc::Receiver<Event>,
        kind: WriteKind,
        txn: &Transaction,
    ) -> Result<(), SessionEnd> {
        let sent_at = self.generation;
        let reply = {
            let call = client.transact(txn);
            tokio::pin!(call);
            loop {
                tokio::select! {
                    biased;
                    r = &mut call => break r,
                    ev = events.recv(), if self.held.len() < HOLD_MAX => match ev {
                        Some(ev) => self.held.push(ev),
                        None => break call.await,
                    },
                }
            }
        };
        match reply {
            Ok(_) => {
                self.written_at.insert(kind, sent_at);
                // Normally the monitor update that shows this write re-opens planning;
                // should none come (a write that changed nothing), re-plan anyway.
                self.retry_at
                    .get_or_insert(Instant::now() + Duration::from_secs(5));
                Ok(())
            }
            Err(ClientError::Transaction(e)) => {
                // Usually a `wait` that saw a concurrent change: re-plan on the next
                // update, or after a short delay if none comes.
                tracing::info!(node = self.node_name(), ?kind, error = %e,
                    "OVSDB transaction not applied; will re-plan");
                self.written_at.remove(&kind);
                self.retry_at = Some(Instant::now() + Duration::from_secs(1));
                Ok(())
            }
            Err(ClientError::Rpc { method, error }) => {
                tracing::warn!(node = self.node_name(), ?kind, %method, error = %error,
                    "OVSDB server refused the transaction; will retry");
                self.written_at.insert(kind, sent_at);
                self.retry_at = Some(Instant::now() + Duration::from_secs(2));
                Ok(())
            }
            Err(error) => Err(SessionEnd::Client {
                step: "transact",
                error,
            }),
        }
    }

    /// VIFs and working tunnels on the bridge; logs each tunnel error once.
    fn read_bridge(
        &mut self,
        replica: &Replica,
        node: &NodeSettings,
        bridge: &Bridge,
    ) -> (BTreeMap<String, Vif>, BTreeMap<String, u32>) {
        let contents = bridge_contents(replica, &node.id, bridge);
        for (port, error) in &contents.tunnel_errors {
            if self.seen.tunnel_errors.get(port) != Some(error) {
                tracing::warn!(node = %node.id, port = %port, error = %error,
                    "tunnel port failed in OVS");
            }
        }
        for port in self.seen.tunnel_errors.keys() {
            if !contents.tunnel_errors.contains_key(port) {
                tracing::info!(node = %node.id, port = %port, "tunnel port error cleared");
            }
        }
        self.seen.tunnel_errors = contents.tunnel_errors;
        for id in contents
            .duplicate_iface_ids
            .difference(&self.seen.duplicates)
        {
            tracing::warn!(node = %node.id, iface_id = %id,
                "several interfaces carry this iface-id; using the first");
        }
        self.seen.duplicates = contents.duplicate_iface_ids;
        (contents.vifs, contents.tunnels)
    }

    /// Publishes the node: the API's view of it first, then the topology (from which the
    /// compiler task decides the bindings and the port-status task shows them, on the
    /// node the API already knows).
    fn publish(
        &mut self,
        node: &NodeSettings,
        datapath_id: Option<u64>,
        vifs: &BTreeMap<String, Vif>,
        tunnels: &BTreeMap<String, u32>,
    ) {
        let ctx = &self.shared.ctx;
        ctx.observed.update_node(&node.id, |n: &mut TransportNode| {
            n.encap_ip = Some(node.encap_ip);
            n.encap_type = node.encap_type;
            n.bridge = node.bridge.clone();
            n.ovsdb_connected = true;
            n.datapath_id = datapath_id;
        });
        ctx.topology.report(NodeView {
            id: node.id.clone(),
            encap_ip: node.encap_ip,
            encap_type: node.encap_type,
            bridge: node.bridge.clone(),
            datapath_id,
            vifs: vifs.clone(),
            tunnels: tunnels.clone(),
        });
    }

    fn plan_tunnels(
        &mut self,
        replica: &Replica,
        node: &NodeSettings,
        bridge: &Bridge,
    ) -> Option<Transaction> {
        if !self.shared.ctx.channels.desired_published(&node.id) {
            // Not compiled yet: an empty placeholder would delete every tunnel.
            return None;
        }
        let desired = self.desired.as_ref()?.borrow().clone();
        if let Some((generation, tunnels)) = &self.memo.tunnels_clean
            && *generation == self.contents_generation
            && *tunnels == desired.tunnels
        {
            return None;
        }
        let specs = match &self.memo.specs {
            Some((tunnels, specs)) if *tunnels == desired.tunnels => specs.clone(),
            _ => {
                let specs = Arc::new(ovs_tunnels(&node.id, &desired.tunnels));
                self.memo.specs = Some((desired.tunnels.clone(), specs.clone()));
                specs
            }
        };
        match vswitch::sync_tunnels(replica, bridge, KEY_REMOTE, &specs) {
            Ok(Some(txn)) => {
                tracing::info!(node = %node.id, tunnels = specs.len(), "syncing tunnel ports");
                Some(txn)
            }
            Ok(None) => {
                self.memo.tunnels_clean = Some((self.contents_generation, desired.tunnels.clone()));
                None
            }
            Err(e) => {
                tracing::warn!(node = %node.id, error = %e, "cannot plan tunnel ports");
                None
            }
        }
    }

    /// Sets `weft-installed=true` on the VIFs the port-status task names (by ofport),
    /// removes it from every other interface that has it.
    fn plan_installed(
        &mut self,
        replica: &Replica,
        node: &NodeSettings,
        vifs: &BTreeMap<String, Vif>,
    ) -> Option<Transaction> {
        let marks = self
            .marks
            .as_ref()
            .map(|rx| rx.borrow().clone())
            .unwrap_or_default();
        let key = (self.contents_generation, marks.clone());
        if self.memo.installed_clean.as_ref() == Some(&key) {
            return None;
        }
        let want: BTreeSet<Uuid> = vifs
            .values()
            .filter(|v| marks.contains(&v.ofport))
            .map(|v| v.interface)
            .collect();
        let mut txn = Transaction::new(vswitch::DATABASE);
        let (mut set, mut cleared) = (0, 0);
        for iface in vswitch::cached_rows::<Interface>(replica).flatten() {
            let has = iface.external_ids.get(KEY_INSTALLED).map(String::as_str) == Some("true");
            let marked = iface.external_ids.contains_key(KEY_INSTALLED);
            if want.contains(&iface.uuid) {
                if !has {
                    vswitch::set_interface_external_id(&mut txn, iface.uuid, KEY_INSTALLED, "true");
                    set += 1;
                }
            } else if marked {
                vswitch::remove_interface_external_id(&mut txn, iface.uuid, KEY_INSTALLED);
                cleared += 1;
            }
        }
        if txn.operations.is_empty() {
            self.memo.installed_clean = Some(key);
            return None;
        }
        tracing::info!(node = %node.id, set, cleared, "updating weft-installed");
        Some(txn)
    }
}

/// What a bridge holds, as the southbound reports it.
#[derive(Debug, Default, PartialEq)]
struct BridgeContents {
    /// Interfaces with `external_ids:iface-id` and a valid ofport, by iface-id.
    vifs: BTreeMap<String, Vif>,
    /// Weft's tunnel ports (`weft-remote`) with a valid ofport and no error: remote → ofport.
    tunnels: BTreeMap<String, u32>,
    /// Weft's tunnel ports OVS could not set up: port name → `Interface.error`.
    tunnel_errors: BTreeMap<String, String>,
    /// iface-ids carried by more than one interface (the first one, in port order, wins).
    duplicate_iface_ids: BTreeSet<String>,
}

fn bridge_contents(replica: &Replica, node: &str, bridge: &Bridge) -> BridgeContents {
    let mut vifs = BTreeMap::new();
    let mut tunnels = BTreeMap::new();
    let mut errors = BTreeMap::new();
    let mut duplicates = BTreeSet::new();
    for port_uuid in &bridge.ports {
        let port = match vswitch::cached_row::<vswitch::Port>(replica, port_uuid) {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                tracing::debug!(node = %node, error = %e, "unreadable port row");
                continue;
            }
            None => continue,
        };
        let remote = port.external_ids.get(KEY_REMOTE).cloned();
        for iface_uuid in &port.interfaces {
            let iface = match vswitch::cached_row::<Interface>(replica, iface_uuid) {
                Some(Ok(i)) => i,
                Some(Err(e)) => {
                    tracing::debug!(node = %node, error = %e, "unreadable interface row");
                    continue;
                }
                None => continue,
            };
            let ofport = iface
                .ofport
                .filter(|p| *p > 0)
                .and_then(|p| u32::try_from(p).ok());
            if let Some(remote) = &remote {
                let error = iface.error.clone().filter(|e| !e.is_empty());
                match (ofport, error) {
                    (Some(of), None) => {
                        tunnels.insert(remote.clone(), of);
                    }
                    (_, Some(e)) => {
                        errors.insert(port.name.clone(), e);
                    }
                    (None, None) if iface.ofport == Some(-1) => {
                        errors.insert(port.name.clone(), "ofport -1".into());
                    }
                    (None, None) => {}
                }
                continue;
            }
            let (Some(iface_id), Some(ofport)) = (iface.iface_id(), ofport) else {
                continue;
            };
            if vifs.contains_key(iface_id) {
                duplicates.insert(iface_id.to_owned());
                continue;
            }
            vifs.insert(
                iface_id.to_owned(),
                Vif {
                    ofport,
                    interface: iface.uuid,
                    name: iface.name.clone(),
                },
            );
        }
    }
    BridgeContents {
        vifs,
        tunnels,
        tunnel_errors: errors,
        duplicate_iface_ids: duplicates,
    }
}

/// The OVS tunnel ports for `node`'s desired tunnels, in order, without a tunnel to
/// itself; a remote whose port name collides with an earlier one's is left out (logged).
fn ovs_tunnels(node: &str, tunnels: &BTreeSet<TunnelSpec>) -> Vec<vswitch::TunnelSpec> {
    let mut specs: Vec<vswitch::TunnelSpec> = Vec::with_capacity(tunnels.len());
    let mut names: HashMap<String, usize> = HashMap::with_capacity(tunnels.len());
    for t in tunnels {
        if t.remote == node {
            continue;
        }
        let spec = ovs_tunnel(t);
        if let Some(other) = names.get(&spec.name).and_then(|i| specs.get(*i)) {
            tracing::error!(node = %node, port = %spec.name, remote = %t.remote,
                other = ?other.external_ids.get(KEY_REMOTE),
                "tunnel port name collision; skipping this remote");
            continue;
        }
        names.insert(spec.name.clone(), specs.len());
        specs.push(spec);
    }
    specs
}

/// The OVS tunnel port for one desired tunnel.
fn ovs_tunnel(t: &TunnelSpec) -> vswitch::TunnelSpec {
    vswitch::TunnelSpec {
        name: tunnel_port_name(&t.remote),
        kind: encap_name(t.encap).into(),
        remote_ip: t.remote_ip.to_string(),
        local_ip: Some(t.local_ip.to_string()),
        key: "flow".into(),
        external_ids: BTreeMap::from([(KEY_REMOTE.to_owned(), t.remote.clone())]),
    }
}

async fn changed<T>(rx: &mut Option<watch::Receiver<T>>) -> bool {
    match rx {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_names_are_stable_fnv1a() {
        // FNV-1a 32 of "" is the offset basis; of "a" is 0xe40c292c (published vectors).
        assert_eq!(tunnel_port_name(""), "wt-811c9dc5");
        assert_eq!(tunnel_port_name("a"), "wt-e40c292c");
        assert_eq!(tunnel_port_name("hv2"), tunnel_port_name("hv2"));
        assert_ne!(tunnel_port_name("hv2"), tunnel_port_name("hv3"));
        assert!(tunnel_port_name("some-very-long-system-id-0123456789").len() <= 15);
    }

    #[test]
    fn ovs_tunnels_skip_self_and_name_collisions() {
        // Two system-ids whose port names collide (FNV-1a is 32 bits; found by search).
        let (a, b) = ("hv549599", "hv712382");
        assert_eq!(tunnel_port_name(a), tunnel_port_name(b));
        let t = |remote: &str, last: u8| TunnelSpec {
            remote: remote.to_owned(),
            remote_ip: IpAddr::from([192, 0, 2, last]),
            local_ip: IpAddr::from([192, 0, 2, 1]),
            encap: EncapType::Geneve,
        };
        let tunnels = BTreeSet::from([t("self", 1), t(a, 2), t(b, 3), t("zz", 4)]);
        let specs = ovs_tunnels("self", &tunnels);
        let remotes: Vec<_> = specs
            .iter()
            .map(|s| s.external_ids[KEY_REMOTE].as_str())
            .collect();
        // BTreeSet order: the first of the colliding pair (by TunnelSpec order) wins.
        let first = tunnels
            .iter()
            .find(|x| x.remote == a || x.remote == b)
            .unwrap();
        assert_eq!(remotes, vec![first.remote.as_str(), "zz"]);
        assert_eq!(specs[1].name, tunnel_port_name("zz"));
        assert_eq!(specs[1].remote_ip, "192.0.2.4");
        assert_eq!(specs[1].local_ip.as_deref(), Some("192.0.2.1"));
    }

    const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

    /// A replica holding `tables` (update2 `initial` rows), with the real vswitch schema.
    fn replica(tables: serde_json::Value) -> Replica {
        let text = std::fs::read_to_string(SCHEMA)
            .unwrap_or_else(|e| panic!("{SCHEMA}: {e} (install openvswitch-common)"));
        let schema = ovsdb::DatabaseSchema::from_json(&serde_json::from_str(&text).unwrap())
            .expect("vswitch schema");
        let mut r = Replica::new(schema);
        r.set_monitored(&vswitch::monitor_requests());
        r.apply(ovsdb::UpdateFormat::Update2, &tables).unwrap();
        r
    }

    #[test]
    fn bridge_contents_reports_working_vifs_and_tunnels_only() {
        let u = |n: u8| Uuid::from_bytes([n; 16]);
        let uuid = |n: u8| serde_json::json!(["uuid", u(n).to_string()]);
        let ports: Vec<_> = (10..16).map(uuid).collect();
        let port = |i: u8, name: &str, remote: Option<&str>| {
            let ext: Vec<_> = remote.map(|r| vec![KEY_REMOTE, r]).into_iter().collect();
            (
                u(10 + i).to_string(),
                serde_json::json!({"initial": {"name": name, "interfaces": uuid(20 + i),
                    "external_ids": ["map", ext]}}),
            )
        };
        let iface = |i: u8, name: &str, ofport: i64, ext: Vec<[&str; 2]>, error: &str| {
            let error = if error.is_empty() {
                serde_json::json!(["set", []])
            } else {
                serde_json::json!(error)
            };
            (
                u(20 + i).to_string(),
                serde_json::json!({"initial": {"name": name, "ofport": ofport,
                    "external_ids": ["map", ext], "error": error}}),
            )
        };
        let p: serde_json::Map<_, _> = [
            port(0, "vm1", None),
            port(1, "vm2", None),
            port(2, "vm1-again", None),
            port(3, "wt-a", Some("hv2")),
            port(4, "wt-b", Some("hv3")),
            port(5, "plain", None),
        ]
        .into_iter()
        .collect();
        let i: serde_json::Map<_, _> = [
            iface(0, "vm1", 7, vec![[KEY_IFACE_ID, "lp1"]], ""),
            iface(1, "vm2", -1, vec![[KEY_IFACE_ID, "lp2"]], ""),
            iface(2, "vm1-again", 9, vec![[KEY_IFACE_ID, "lp1"]], ""),
            iface(3, "wt-a", 3, vec![], ""),
            iface(4, "wt-b", -1, vec![], "could not add network device wt-b"),
            iface(5, "plain", 4, vec![], ""),
        ]
        .into_iter()
        .collect();
        let r = replica(serde_json::json!({
            "Bridge": {u(1).to_string(): {"initial": {"name": "br-int",
                "ports": ["set", ports]}}},
            "Port": p,
            "Interface": i,
        }));
        let bridge = vswitch::bridge_by_name(&r, "br-int").unwrap().unwrap();
        let c = bridge_contents(&r, "hv1", &bridge);
        assert_eq!(
            c.vifs,
            BTreeMap::from([(
                "lp1".to_owned(),
                Vif {
                    ofport: 7,
                    interface: u(20),
                    name: "vm1".into()
                }
            )])
        );
        assert_eq!(c.tunnels, BTreeMap::from([("hv2".to_owned(), 3)]));
        assert_eq!(
            c.tunnel_errors,
            BTreeMap::from([(
                "wt-b".to_owned(),
                "could not add network device wt-b".to_owned()
            )])
        );
        assert_eq!(c.duplicate_iface_ids, BTreeSet::from(["lp1".to_owned()]));
    }

    #[test]
    fn settings_require_system_id_and_encap_ip() {
        let mut root = OpenVSwitch {
            uuid: Uuid::nil(),
            bridges: vec![],
            manager_options: vec![],
            external_ids: BTreeMap::new(),
            other_config: BTreeMap::new(),
            ovs_version: None,
            datapath_types: vec![],
            iface_types: vec![],
            cur_cfg: None,
            next_cfg: None,
        };
        assert!(node_settings(&root).unwrap_err().contains("system-id"));
        root.external_ids.insert("system-id".into(), "hv1".into());
        assert!(node_settings(&root).unwrap_err().contains(KEY_ENCAP_IP));
        root.external_ids.insert(KEY_ENCAP_IP.into(), "nope".into());
        assert!(node_settings(&root).unwrap_err().contains("not an IP"));
        root.external_ids
            .insert(KEY_ENCAP_IP.into(), "192.0.2.1".into());
        let s = node_settings(&root).unwrap();
        assert_eq!(s.encap_type, EncapType::Geneve);
        assert_eq!(s.bridge, "br-int");
        assert_eq!(s.datapath_type, None);
        root.external_ids
            .insert(KEY_ENCAP_TYPE.into(), "vxlan".into());
        root.external_ids.insert(KEY_BRIDGE.into(), "br-x".into());
        let s = node_settings(&root).unwrap();
        assert_eq!(
            (s.encap_type, s.bridge.as_str()),
            (EncapType::Vxlan, "br-x")
        );
        root.external_ids
            .insert(KEY_ENCAP_TYPE.into(), "gre".into());
        assert!(node_settings(&root).unwrap_err().contains("gre"));
    }
}
