//! One connection to one hypervisor's database: its lifetime (setup, the loop that waits
//! for monitor updates, desired tunnels and marks, and its end), which node it serves,
//! and how it sends a transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ovsdb::vswitch::{self};
use ovsdb::{Client, ClientError, Event, Replica, Transaction};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::fence::Fence;
use super::memo::Memo;
use super::settings::{NodeSettings, encap_name};
use super::*;
use crate::cluster::Role;
use crate::desired::{PatchSpec, TunnelSpec};
use crate::southbound::held::draining;
use crate::topology::Arrival;

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
    #[error("refused: the certificate (CN {cn:?}) does not name system-id {system_id:?}")]
    Refused { cn: String, system_id: String },
}

/// What woke a session's loop.
pub(super) enum Wake {
    Event(Option<Event>),
    Tunnels(bool),
    Patches(bool),
    Marks(bool),
    Released,
    Retry,
    /// Time to make a restarted switch dial again ([`super::redial`]).
    Redial,
    /// The node's standing may have changed (its ownership record, live instances).
    Ownership,
}

impl Wake {
    /// For the trace line that counts wake-ups (how many sessions a change reaches).
    fn name(&self) -> &'static str {
        match self {
            Wake::Event(_) => "monitor update",
            Wake::Tunnels(_) => "tunnels",
            Wake::Patches(_) => "patches",
            Wake::Marks(_) => "marks",
            Wake::Released => "node released",
            Wake::Retry => "retry",
            Wake::Redial => "redial",
            Wake::Ownership => "ownership",
        }
    }
}

/// Which rows a session monitors.
///
/// In cluster mode every hypervisor connects to every instance, and only its owner
/// writes to it and publishes what it holds (the node's etcd record). A standby that
/// followed every port and tunnel of every hypervisor would parse every update of the
/// whole fabric, as a single weftd does: the instances would not divide the work. So a
/// standby watches the root row alone (enough to know the node and claim it) and
/// switches to the whole bridge when it becomes the owner; an owner that stands down
/// switches back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    /// The `Open_vSwitch` row only.
    Root,
    /// Every table and column Weft reads.
    Full,
}

/// The kinds of write a session makes, each planned and tracked on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum WriteKind {
    /// The owner's fence on the root row (cluster mode).
    Fence,
    Bridge,
    /// br-int's Controller rows, one instance at a time (cluster mode).
    Controllers,
    /// The Manager row through which the switch reaches us, out of in-band control.
    Manager,
    Tunnels,
    Patches,
    Installed,
    /// br-int's Controller target in its other spelling ([`super::redial`]).
    Redial,
}

/// What a session already logged about its database (each problem is logged once, when
/// it appears or changes).
#[derive(Default)]
pub(super) struct Logged {
    /// Last logged error per tunnel port name (to log each new error once).
    pub(super) tunnel_errors: BTreeMap<String, String>,
    /// Last "waiting because ..." message (logged once per change).
    pub(super) waiting: Option<String>,
    /// iface-ids on several interfaces (logged once each).
    pub(super) duplicates: BTreeSet<String>,
    /// Ignored `weft-bridge-mappings` entries, as last logged.
    pub(super) mapping_errors: Vec<String>,
    /// Why each physnet this node needs is not patched (unmapped, missing bridge), as
    /// last logged.
    pub(super) unpatched: BTreeMap<String, String>,
}

/// One connection to one hypervisor's database.
pub(super) struct Session {
    pub(super) shared: Arc<Shared>,
    pub(super) id: u64,
    pub(super) peer: String,
    /// The peer's certificate over TLS: it must name the node's system-id.
    pub(super) identity: Option<PeerIdentity>,
    /// The address the peer dialled, when it connected to us: its Manager row names it.
    pub(super) reached_at: Option<std::net::SocketAddr>,
    pub(super) node: Option<NodeSettings>,
    /// The tunnel ports this node needs (the compiler task's answer).
    pub(super) tunnels: Option<watch::Receiver<Arc<BTreeSet<TunnelSpec>>>>,
    /// The physical networks this node must be patched to (the compiler task's answer).
    pub(super) patches: Option<watch::Receiver<Arc<BTreeSet<PatchSpec>>>>,
    /// The ofports of this node's VIFs to mark `weft-installed` ([`crate::port_status`]).
    pub(super) marks: Option<watch::Receiver<Arc<BTreeSet<u32>>>>,
    pub(super) released: watch::Receiver<u64>,
    /// Another session serves this system-id; wake when some session releases a node.
    pub(super) waiting_for_owner: bool,
    /// From accept until this session has reported its node (or found it will not): it
    /// may be a held node coming back, perhaps queued behind thousands of others, and
    /// that node's grace must not run out meanwhile (see `TransportNodes::session_ended`).
    pub(super) arrival: Option<Arrival>,
    /// Notifications received while a transaction was in flight, applied after it.
    pub(super) held: Vec<Event>,
    /// Bumped on every applied monitor update.
    pub(super) generation: u64,
    /// Bumped on every applied monitor update that changed a row of a table other than
    /// `Controller` and `Manager`: what the bridge holds (publishing, tunnels,
    /// weft-installed) is read from those tables only. A live switch updates its
    /// Controller rows' status on its own (connection state, role), and Weft's own
    /// Manager settings come back as an update once per node; neither must make the
    /// session re-read the whole bridge (a thousand tunnels' rows at a thousand nodes).
    pub(super) contents_generation: u64,
    /// For each write kind, the generation at which the last successful write was sent.
    pub(super) written_at: HashMap<WriteKind, u64>,
    pub(super) retry_at: Option<Instant>,
    pub(super) seen: Logged,
    pub(super) memo: Memo,
    /// Rings when the node's standing may have changed (whether this instance owns it,
    /// the live instances); the standing itself is read from the view.
    pub(super) ownership: crate::cluster::bells::NodeWatch,
    /// What the last pass saw of it: this instance's role and the wanted controllers.
    pub(super) standing: Option<Standing>,
    /// Set while this instance owns the node in cluster mode: every write but the fence
    /// itself is guarded by it.
    pub(super) fence: Option<Fence>,
    /// What the current monitor covers.
    pub(super) scope: Scope,
    /// The current monitor's id: updates of a monitor since replaced are dropped.
    pub(super) monitor_id: serde_json::Value,
    /// Monitors started so far (each gets its own id).
    monitors: u64,
    /// Set by a pass that found the monitor's scope wrong for the node's standing: the
    /// loop switches monitors before the next pass.
    pub(super) rescope: Option<Scope>,
    /// Whether the switch lost us in a restart and should dial again now.
    pub(super) redial: super::redial::Redial,
}

impl Session {
    /// `arrival` counts the connection as arriving from the moment it was accepted
    /// ([`crate::topology::TransportNodes::arrival`]).
    pub(super) fn new(shared: Arc<Shared>, peer: String, arrival: Arrival) -> Session {
        let id = shared.next_session.fetch_add(1, Ordering::Relaxed);
        let released = shared.released.subscribe();
        let ownership = shared.ctx.ownership.watch_node(None);
        let arrival = Some(arrival);
        Session {
            ownership,
            standing: None,
            fence: None,
            scope: Scope::Full,
            monitor_id: serde_json::Value::Null,
            monitors: 0,
            rescope: None,
            redial: Default::default(),
            released,
            waiting_for_owner: false,
            arrival,
            held: Vec::new(),
            shared,
            id,
            peer,
            identity: None,
            reached_at: None,
            node: None,
            tunnels: None,
            patches: None,
            marks: None,
            generation: 0,
            contents_generation: 0,
            written_at: HashMap::new(),
            retry_at: None,
            seen: Logged::default(),
            memo: Memo::default(),
        }
    }

    /// A session with a switch that connected to us at `local`.
    pub(super) fn reached_at(mut self, local: std::net::SocketAddr) -> Session {
        self.reached_at = Some(local);
        self
    }

    /// A session over TLS with a peer that presented this certificate.
    pub(super) fn with_identity(mut self, identity: PeerIdentity) -> Session {
        self.identity = Some(identity);
        self
    }

    /// Over TLS: whether the certificate names this system-id. A session refused here
    /// has written nothing (it has only read the schema and the monitor).
    pub(super) fn check_identity(&self, system_id: &str) -> Result<(), SessionEnd> {
        match &self.identity {
            Some(id) if !id.names(system_id) => {
                tracing::warn!(peer = %self.peer, cn = %id.common_name, claimed_system_id = %system_id,
                    "OVSDB peer refused: its certificate does not name the system-id it claims");
                Err(SessionEnd::Refused {
                    cn: id.common_name.clone(),
                    system_id: system_id.to_string(),
                })
            }
            _ => Ok(()),
        }
    }

    pub(super) async fn run(
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
    pub(super) async fn run_ref(
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

    pub(super) fn node_name(&self) -> &str {
        self.node.as_ref().map_or("?", |n| n.id.as_str())
    }

    /// Serves the connection; what it ends with is left for the database's next
    /// session ([`super::carry`]).
    async fn serve(&mut self, client: &Client, events: &mut mpsc::Receiver<Event>) -> SessionEnd {
        let mut kept = None;
        let end = self.serve_with(client, events, &mut kept).await;
        if let Some(replica) = kept {
            let left = super::carry::Left {
                replica,
                tunnel_ports: self.memo.specs.take(),
            };
            self.shared.carry.leave(left, std::time::Instant::now());
        }
        end
    }

    async fn serve_with(
        &mut self,
        client: &Client,
        events: &mut mpsc::Receiver<Event>,
        kept: &mut Option<Replica>,
    ) -> SessionEnd {
        let step = |step| move |error| SessionEnd::Client { step, error };
        let shared = self.shared.clone();
        let setup_turn = match shared.setups.acquire().await {
            Ok(t) => t,
            Err(_) => return SessionEnd::Shutdown,
        };
        let schema = match client
            .get_schema_shared(vswitch::DATABASE, &shared.schemas)
            .await
        {
            Ok(s) => s,
            Err(e) => return step("get_schema")(e),
        };
        // In cluster mode the node's standing is not known before its root row names it:
        // start with that row alone (see `Scope`).
        let scope = if shared.ctx.ownership.view().clustered {
            Scope::Root
        } else {
            Scope::Full
        };
        let replica = match self.monitor(client, events, &schema, scope).await {
            Ok(r) => kept.insert(r),
            Err(end) => return end,
        };
        // Fetched: the next session may fetch. The first reconcile pass is not part of
        // the turn: it waits on the peer's replies, and holding turns across those makes
        // nodes join the topology in waves, each wave recompiling their neighbours again.
        drop(setup_turn);
        loop {
            if let Err(end) = self.converge(client, replica, events).await {
                return end;
            }
            if let Some(scope) = self.rescope.take() {
                match self.monitor(client, events, &schema, scope).await {
                    Ok(r) => *replica = r,
                    Err(end) => return end,
                }
                continue;
            }
            // Reported, or waiting for a reason of its own (not for the node's previous
            // session to end: then it reports as soon as that one has).
            if !self.waiting_for_owner {
                self.arrival = None;
            }
            // Updates that arrived while a transaction was in flight come first.
            if !self.held.is_empty() {
                for ev in std::mem::take(&mut self.held) {
                    if let Err(end) = self.handle_event(Some(ev), replica) {
                        return end;
                    }
                }
                continue;
            }
            let retry_at = self.retry_at;
            let redial_at = self.redial.wake_at().map(Instant::from_std);
            let wake = tokio::select! {
                ev = events.recv() => Wake::Event(ev),
                ok = changed(&mut self.tunnels) => Wake::Tunnels(ok),
                ok = changed(&mut self.patches) => Wake::Patches(ok),
                ok = changed(&mut self.marks) => Wake::Marks(ok),
                // Only a session waiting for a node listens; Shared holds the sender as
                // long as this session lives.
                _ = self.released.changed(), if self.waiting_for_owner => Wake::Released,
                _ = sleep_until_opt(retry_at) => Wake::Retry,
                _ = sleep_until_opt(redial_at) => Wake::Redial,
                r = self.ownership.changed() => {
                    if r.is_err() {
                        // The cluster tasks ended: nothing to listen to any more.
                        self.ownership = crate::cluster::bells::NodeWatch::never();
                    }
                    Wake::Ownership
                }
            };
            tracing::trace!(
                node = self.node_name(),
                wake = wake.name(),
                "OVSDB session woken"
            );
            match wake {
                Wake::Event(ev) => {
                    if let Err(end) = self.handle_event(ev, replica) {
                        return end;
                    }
                    // Apply whatever else is already queued before reconciling once.
                    while let Ok(ev) = events.try_recv() {
                        if let Err(end) = self.handle_event(Some(ev), replica) {
                            return end;
                        }
                    }
                }
                Wake::Tunnels(ok) => {
                    if !ok {
                        self.tunnels = None;
                    }
                }
                Wake::Patches(ok) => {
                    if !ok {
                        self.patches = None;
                    }
                }
                Wake::Marks(ok) => {
                    if !ok {
                        self.marks = None;
                    }
                }
                Wake::Released | Wake::Redial => {}
                Wake::Ownership => {
                    // A new role or another set of instances: plan every write again.
                    if self.standing.as_ref() != Some(&self.standing_now()) {
                        self.written_at.clear();
                        self.memo.forget();
                    }
                }
                Wake::Retry => {
                    self.retry_at = None;
                    self.written_at.clear();
                    self.memo.forget();
                }
            }
        }
    }

    /// Starts a monitor of `scope` (a fresh replica from its initial rows) and cancels
    /// the one it replaces. Every write is planned again from the new replica.
    async fn monitor(
        &mut self,
        client: &Client,
        events: &mut mpsc::Receiver<Event>,
        schema: &Arc<ovsdb::DatabaseSchema>,
        scope: Scope,
    ) -> Result<Replica, SessionEnd> {
        let step = |step| move |error| SessionEnd::Client { step, error };
        let requests = match scope {
            Scope::Root => vswitch::root_requests_for(schema),
            Scope::Full => vswitch::monitor_requests_for(schema),
        };
        self.monitors += 1;
        let id = serde_json::json!(["weft", self.id, self.monitors]);
        let start = draining(
            &mut self.held,
            events,
            client.monitor_auto(vswitch::DATABASE, id.clone(), &requests),
        )
        .await
        .map_err(step("monitor"))?;
        let mut replica = Replica::new(schema.clone());
        replica.set_monitored(&requests);
        replica.apply(start.format, &start.initial)?;
        let old = std::mem::replace(&mut self.monitor_id, id);
        if !old.is_null() {
            match draining(&mut self.held, events, client.monitor_cancel(old)).await {
                Ok(()) => {}
                // It ends anyway; its updates are dropped (their id is not ours).
                Err(ClientError::Rpc { error, .. }) => {
                    tracing::debug!(node = self.node_name(), error = %error.error,
                        "OVSDB monitor_cancel refused");
                }
                Err(e) => return Err(step("monitor_cancel")(e)),
            }
        }
        tracing::debug!(peer = %self.peer, node = self.node_name(), format = ?start.format,
            ?scope, "OVSDB monitor started");
        self.scope = scope;
        self.generation += 1;
        self.contents_generation += 1;
        self.written_at.clear();
        self.memo.forget();
        // The node's previous session, if it ended moments ago, holds most of these rows
        // already decoded (a root-only monitor would adopt one row and waste the rest).
        if scope == Scope::Full {
            let now = std::time::Instant::now();
            if let Some(adopted) = self.shared.carry.resume(&mut replica, &mut self.memo, now) {
                let metrics = self.shared.ctx.observed.metrics();
                metrics.ovsdb_rows_kept.add(adopted as u64);
                tracing::debug!(peer = %self.peer, adopted,
                    "rows unchanged since the last session kept");
            }
        }
        Ok(replica)
    }

    fn handle_event(&mut self, ev: Option<Event>, replica: &mut Replica) -> Result<(), SessionEnd> {
        match ev {
            Some(Event::Update { monitor_id, .. }) if monitor_id != self.monitor_id => {
                tracing::trace!(node = self.node_name(), %monitor_id,
                    "update of a replaced monitor dropped");
                Ok(())
            }
            Some(Event::Update {
                format, updates, ..
            }) => {
                let changes = replica.apply(format, &updates)?;
                self.generation += 1;
                if changes_contents(&changes) {
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
    pub(super) fn wait_for(&mut self, why: String) {
        if self.seen.waiting.as_deref() != Some(why.as_str()) {
            tracing::warn!(peer = %self.peer, node = self.node_name(), "waiting: {why}");
            self.seen.waiting = Some(why);
        }
    }

    /// Takes on the node's identity (or a changed one), claiming it in the registry.
    /// Returns false while another live session serves this system-id.
    pub(super) fn identify(&mut self, settings: NodeSettings) -> bool {
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
                // It may be only this node coming back, not another held one.
                if let Some(arrival) = &self.arrival {
                    arrival.claim(&settings.id);
                }
                self.wait_for(format!(
                    "system-id {} is already served by another OVSDB session; \
                     this one takes over when that one ends",
                    settings.id
                ));
                return false;
            }
            self.ownership.set_node(&settings.id);
            self.tunnels = Some(self.shared.ctx.channels.watch_tunnels(&settings.id));
            self.patches = Some(self.shared.ctx.channels.watch_patches(&settings.id));
            self.marks = Some(self.shared.ctx.channels.watch_marks(&settings.id));
            self.written_at.clear();
            self.memo.forget();
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
    pub(super) fn release(&mut self) {
        let Some(node) = self.node.take() else {
            return;
        };
        self.tunnels = None;
        self.patches = None;
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

    /// This instance's role towards the node, and what the live instances announce.
    pub(super) fn standing_now(&self) -> Standing {
        let ownership = &self.shared.ctx.ownership;
        let role = match &self.node {
            Some(n) => ownership.role(&n.id),
            None => Role::Standby { generation: None },
        };
        let view = ownership.view();
        let instances = view.instances.values();
        Standing {
            role,
            controllers: instances
                .clone()
                .filter_map(|i| i.openflow_advertise.clone())
                .collect(),
            managers: instances.filter_map(|i| i.ovsdb_manager).collect(),
        }
    }

    pub(super) fn may_write(&self, kind: WriteKind) -> bool {
        self.written_at
            .get(&kind)
            .is_none_or(|at| *at != self.generation)
    }

    /// Sends one transaction; `Ok(true)` when the server applied it. Notifications that
    /// arrive meanwhile are held ([`draining`]).
    pub(super) async fn write(
        &mut self,
        client: &Client,
        events: &mut mpsc::Receiver<Event>,
        kind: WriteKind,
        txn: &Transaction,
    ) -> Result<bool, SessionEnd> {
        let sent_at = self.generation;
        let guarded;
        let txn = match &self.fence {
            Some(fence) if kind != WriteKind::Fence => {
                let mut t = txn.clone();
                fence.guard(&mut t);
                guarded = t;
                &guarded
            }
            _ => txn,
        };
        let started = Instant::now();
        let reply = draining(&mut self.held, events, client.transact(txn)).await;
        // Any answer counts (applied or refused); a lost connection or a timeout is no
        // answer and is not a transaction latency.
        if matches!(
            reply,
            Ok(_) | Err(ClientError::Transaction(_) | ClientError::Rpc { .. })
        ) {
            let metrics = self.shared.ctx.observed.metrics();
            metrics.ovsdb_transaction.observe(started.elapsed());
        }
        match reply {
            Ok(_) => {
                self.written_at.insert(kind, sent_at);
                // Normally the monitor update that shows this write re-opens planning;
                // should none come (a write that changed nothing), re-plan anyway.
                self.retry_at
                    .get_or_insert(Instant::now() + Duration::from_secs(5));
                Ok(true)
            }
            Err(ClientError::Transaction(e)) => {
                // Usually a `wait` that saw a concurrent change: re-plan on the next
                // update, or after a short delay if none comes.
                tracing::info!(node = self.node_name(), ?kind, error = %e,
                    "OVSDB transaction not applied; will re-plan");
                self.written_at.remove(&kind);
                self.retry_at = Some(Instant::now() + Duration::from_secs(1));
                Ok(false)
            }
            Err(ClientError::Rpc { method, error }) => {
                tracing::warn!(node = self.node_name(), ?kind, %method, error = %error,
                    "OVSDB server refused the transaction; will retry");
                self.written_at.insert(kind, sent_at);
                self.retry_at = Some(Instant::now() + Duration::from_secs(2));
                Ok(false)
            }
            Err(error) => Err(SessionEnd::Client {
                step: "transact",
                error,
            }),
        }
    }
}

pub(super) async fn changed<T>(rx: &mut Option<watch::Receiver<T>>) -> bool {
    match rx {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

pub(super) async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What a session acts on besides the node's own rows: its role, and the cluster's live
/// instances as they announce themselves. A change of either re-runs the convergence.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Standing {
    pub(super) role: Role,
    /// The OpenFlow targets every live instance asks for (br-int's Controller rows).
    pub(super) controllers: BTreeSet<String>,
    /// The addresses at which hypervisors reach the live instances' OVSDB listeners.
    pub(super) managers: BTreeSet<std::net::SocketAddr>,
}

/// Whether an applied update may change what the bridge holds (see
/// [`Session::contents_generation`]): a row of any table but `Controller` and `Manager`.
pub(super) fn changes_contents(changes: &ovsdb::ChangeSet) -> bool {
    changes
        .changes
        .iter()
        .any(|c| c.table != vswitch::CONTROLLER && c.table != vswitch::MANAGER)
}
