//! One connection to one VTEP's `hardware_vtep` database: setup (schema, monitor), the
//! loop that publishes what the VTEP shows and writes what it should hold, and its end
//! (its physical switches shown disconnected).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ovsdb::{Client, ClientError, Event, Replica};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::converge;
use super::desired::desired;
use super::rows::{self, VtepDb};
use crate::binding::Bindings;
use crate::hardware_vtep::ObservedVtep;
use crate::model::LogicalModel;
use crate::observed::ObservedState;
use crate::southbound::held::draining;
use crate::topology::Topology;

/// What a VTEP session reads.
#[derive(Clone, Debug)]
pub struct VtepContext {
    pub observed: Arc<ObservedState>,
    /// The logical model; None: the session only observes (writes nothing).
    pub model: Option<watch::Receiver<Arc<LogicalModel>>>,
    pub bindings: watch::Receiver<Arc<Bindings>>,
    pub topology: watch::Receiver<Arc<Topology>>,
}

/// Why a VTEP session ended.
#[derive(Debug, thiserror::Error)]
pub enum VtepSessionEnd {
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

/// Numbers sessions, for [`HardwareVteps::claim`](crate::hardware_vtep::HardwareVteps::claim).
static NEXT_SESSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

struct State {
    id: u64,
    peer: String,
    ctx: VtepContext,
    /// Physical switches published, to mark disconnected at the end.
    published: BTreeSet<String>,
    /// Physical switches another session serves (logged once).
    waiting: BTreeSet<String>,
    /// Row errors last logged (each logged once).
    row_errors: BTreeSet<String>,
    pending: Vec<String>,
    generation: u64,
    /// The replica generation at which the last write was sent: not re-planned until the
    /// replica shows something newer (the write's own update) or the retry timer fires.
    written_at: Option<u64>,
    retry_at: Option<Instant>,
    held: Vec<Event>,
}

/// Runs one VTEP session to its end and closes the connection.
pub async fn run(
    client: Client,
    mut events: mpsc::Receiver<Event>,
    ctx: VtepContext,
    peer: String,
    shutdown: CancellationToken,
) -> VtepSessionEnd {
    let mut st = State {
        id: NEXT_SESSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        peer,
        ctx,
        published: BTreeSet::new(),
        waiting: BTreeSet::new(),
        row_errors: BTreeSet::new(),
        pending: Vec::new(),
        generation: 0,
        written_at: None,
        retry_at: None,
        held: Vec::new(),
    };
    let end = tokio::select! {
        biased;
        _ = shutdown.cancelled() => VtepSessionEnd::Shutdown,
        end = st.serve(&client, &mut events) => end,
    };
    tracing::info!(peer = %st.peer, vteps = ?st.published, reason = %end, "VTEP session ended");
    for name in &st.published {
        st.ctx.observed.vteps().release(name, st.id);
    }
    client.close().await;
    end
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

impl State {
    async fn serve(
        &mut self,
        client: &Client,
        events: &mut mpsc::Receiver<Event>,
    ) -> VtepSessionEnd {
        let step = |step| move |error| VtepSessionEnd::Client { step, error };
        let schema = match client.get_schema(rows::DATABASE).await {
            Ok(s) => s,
            Err(e) => return step("get_schema")(e),
        };
        let requests = rows::monitor_requests();
        let mut replica = Replica::new(schema);
        replica.set_monitored(&requests);
        let start = match client
            .monitor_auto(rows::DATABASE, serde_json::json!(["weft-vtep"]), &requests)
            .await
        {
            Ok(s) => s,
            Err(e) => return step("monitor")(e),
        };
        if let Err(e) = replica.apply(start.format, &start.initial) {
            return e.into();
        }
        let mut model = self.ctx.model.clone();
        let mut bindings = Some(self.ctx.bindings.clone());
        let mut topology = Some(self.ctx.topology.clone());
        loop {
            if let Err(end) = self.pass(client, &replica, events).await {
                return end;
            }
            if !self.held.is_empty() {
                for ev in std::mem::take(&mut self.held) {
                    if let Err(end) = self.handle(Some(ev), &mut replica) {
                        return end;
                    }
                }
                continue;
            }
            let retry_at = self.retry_at;
            tokio::select! {
                ev = events.recv() => {
                    if let Err(end) = self.handle(ev, &mut replica) {
                        return end;
                    }
                    while let Ok(ev) = events.try_recv() {
                        if let Err(end) = self.handle(Some(ev), &mut replica) {
                            return end;
                        }
                    }
                }
                ok = changed(&mut model) => if !ok { model = None },
                ok = changed(&mut bindings) => if !ok { bindings = None },
                ok = changed(&mut topology) => if !ok { topology = None },
                _ = sleep_until_opt(retry_at) => {
                    self.retry_at = None;
                    self.written_at = None;
                }
            }
        }
    }

    fn handle(&mut self, ev: Option<Event>, replica: &mut Replica) -> Result<(), VtepSessionEnd> {
        match ev {
            Some(Event::Update {
                format, updates, ..
            }) => {
                replica.apply(format, &updates)?;
                self.generation += 1;
                Ok(())
            }
            Some(Event::Disconnected(reason)) => Err(VtepSessionEnd::Disconnected(reason)),
            None => Err(VtepSessionEnd::Disconnected(
                ovsdb::DisconnectReason::Closed,
            )),
            Some(_) => Ok(()),
        }
    }

    /// Publishes what the database shows, then writes what it lacks.
    async fn pass(
        &mut self,
        client: &Client,
        replica: &Replica,
        events: &mut mpsc::Receiver<Event>,
    ) -> Result<(), VtepSessionEnd> {
        let (db, errors) = VtepDb::read(replica);
        let now: BTreeSet<String> = errors.iter().map(ToString::to_string).collect();
        for e in now.difference(&self.row_errors) {
            tracing::warn!(peer = %self.peer, error = %e, "VTEP row ignored");
        }
        self.row_errors = now;
        let model = self.ctx.model.as_ref().map(|m| m.borrow().clone());
        self.publish(&db, model.as_deref());
        if !self.waiting.is_empty() {
            // Look again soon: the session serving those may end.
            self.retry_at
                .get_or_insert(Instant::now() + Duration::from_secs(2));
        }
        if self.published.is_empty() {
            // No physical switch yet, or every one is served by another session.
            return Ok(());
        }
        let Some(model) = model else {
            return Ok(());
        };
        if self.written_at == Some(self.generation) {
            return Ok(());
        }
        let names = self.published.clone();
        let want = {
            let bindings = self.ctx.bindings.borrow().clone();
            let topology = self.ctx.topology.borrow().clone();
            desired(&model, &bindings, &topology, &names)
        };
        let plan = converge::plan(&db, &want);
        if plan.pending != self.pending {
            for p in plan.pending.iter().filter(|p| !self.pending.contains(p)) {
                tracing::warn!(peer = %self.peer, "VTEP binding pending: {p}");
            }
            self.pending = plan.pending.clone();
        }
        let Some(txn) = plan.txn else {
            return Ok(());
        };
        tracing::info!(peer = %self.peer, vteps = ?names, changes = ?plan.summary, "writing VTEP");
        let sent_at = self.generation;
        let reply = draining(&mut self.held, events, client.transact(&txn)).await;
        match reply {
            Ok(_) => {
                self.written_at = Some(sent_at);
                self.retry_at
                    .get_or_insert(Instant::now() + Duration::from_secs(5));
                Ok(())
            }
            Err(e @ (ClientError::Transaction(_) | ClientError::Rpc { .. })) => {
                tracing::warn!(peer = %self.peer, error = %e, "VTEP transaction refused; will retry");
                self.written_at = Some(sent_at);
                self.retry_at = Some(Instant::now() + Duration::from_secs(2));
                Ok(())
            }
            Err(error) => Err(VtepSessionEnd::Client {
                step: "transact",
                error,
            }),
        }
    }

    fn publish(&mut self, db: &VtepDb, model: Option<&LogicalModel>) {
        let reg = self.ctx.observed.vteps();
        let mut seen = BTreeSet::new();
        for ps in &db.switches {
            if seen.contains(&ps.name) {
                continue;
            }
            if !reg.claim(&ps.name, self.id) {
                if !self.waiting.contains(&ps.name) {
                    tracing::warn!(peer = %self.peer, vtep = %ps.name,
                        "VTEP already served by another session; this one takes over when that one ends");
                    self.waiting.insert(ps.name.clone());
                }
                continue;
            }
            self.waiting.remove(&ps.name);
            seen.insert(ps.name.clone());
            let ls_name = |u: &Uuid| db.logical_switches.get(u).map(|l| l.name.clone());
            let ports = ps
                .ports
                .iter()
                .filter_map(|u| db.ports.get(u))
                .map(|p| {
                    let vlans = p
                        .vlan_bindings
                        .iter()
                        .map(|(v, ls)| (*v, ls_name(ls).unwrap_or_else(|| ls.to_string())))
                        .collect();
                    (p.name.clone(), vlans)
                })
                .collect();
            let mut v = ObservedVtep {
                name: ps.name.clone(),
                connected: true,
                tunnel_ips: ps.tunnel_ips.clone(),
                ports,
                local_macs: Default::default(),
            };
            let weft_switch = |ls: &Uuid| {
                let ls = db.logical_switches.get(ls)?;
                ls.weft_switch
                    .as_deref()
                    .and_then(|s| s.parse::<Uuid>().ok())
                    .or_else(|| model.and_then(|m| m.find_switch(&ls.name)).map(|s| s.id))
            };
            // A switch bound on one of this VTEP's ports is in `local_macs` even before a
            // MAC is learned there (hypervisors flood to the VTEP from the start), and a
            // switch no longer bound is left out whatever MACs linger: unbinding stops
            // the hypervisors' traffic to the VTEP at once.
            let bound: BTreeSet<Uuid> = ps
                .ports
                .iter()
                .filter_map(|u| db.ports.get(u))
                .flat_map(|p| p.vlan_bindings.values())
                .filter_map(weft_switch)
                .collect();
            for sw in &bound {
                v.local_macs.entry(*sw).or_default();
            }
            for m in &db.ucast_local {
                // With several physical switches in one database, a MAC belongs to the
                // one whose tunnel IP its locator names.
                if db.switches.len() > 1 {
                    let dst = db.locators.get(&m.locator).map(|l| l.dst_ip.as_str());
                    if !ps
                        .tunnel_ips
                        .iter()
                        .any(|ip| Some(ip.to_string().as_str()) == dst)
                    {
                        continue;
                    }
                }
                if let Some(sw) = weft_switch(&m.logical_switch).filter(|s| bound.contains(s)) {
                    v.local_macs.entry(sw).or_default().insert(m.mac);
                }
            }
            if !self.published.contains(&ps.name) {
                tracing::info!(peer = %self.peer, vtep = %ps.name, tunnel_ips = ?ps.tunnel_ips,
                    "hardware VTEP identified");
            }
            reg.report(v);
        }
        for gone in self.published.difference(&seen) {
            reg.release(gone, self.id);
        }
        self.published = seen;
    }
}
