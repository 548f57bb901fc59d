//! The single writer: one thread owns the store, takes queued [`Command`]s in batches,
//! plans each against a private copy of the model, commits the batch in one durable
//! transaction, publishes the new snapshot and the events, and only then answers.
//! [`ModelWriter`] is the cheap handle everyone else holds; [`WriterHandle`] owns the thread.
//!
//! With a shared store (cluster mode) other instances commit too: a commit planned on a
//! revision that is no longer the store's latest is refused by the store, and the writer
//! waits until the store's follower has brought the snapshot up to date, then plans the
//! same commands again. Reads go through [`ModelWriter::read_snapshot`], which first makes
//! sure the snapshot holds every write acknowledged anywhere.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::command::{Applied, Command};
use super::plan::plan;
use crate::error::ApiError;
use crate::events::{EVENT_BUFFER, Event};
use crate::metrics::Metrics;
use crate::model::LogicalModel;
use crate::observed::ObservedState;
use crate::publish::{Publisher, change_event};
use crate::store::{Freshness, Store, StoreError};

/// Most commands committed in one store transaction.
const MAX_BATCH: usize = 256;
/// Most writes waiting for the writer before callers are pushed back.
const QUEUE_DEPTH: usize = 4096;
/// Longest a write or a read waits for this instance's snapshot to reach a revision another
/// instance committed (the store's follower is reconnecting when it takes longer).
const CATCH_UP: Duration = Duration::from_secs(10);
/// Most times one commit is planned again after losing a race with another instance.
const MAX_REPLANS: usize = 64;

pub(super) struct WriteRequest {
    cmd: Command,
    reply: oneshot::Sender<Result<Applied, ApiError>>,
}

pub(super) enum WriterMsg {
    Write(WriteRequest),
    /// The writes of one request, in order ([`super::group`]): planned and committed
    /// together.
    Group(Vec<WriteRequest>),
    Shutdown,
}

/// The handle the API and, later, the southbound use. Cheap to clone.
#[derive(Clone)]
pub struct ModelWriter {
    model: watch::Receiver<Arc<LogicalModel>>,
    pub(super) writer: mpsc::Sender<WriterMsg>,
    events: broadcast::Sender<Event>,
    observed: Arc<ObservedState>,
    started: Instant,
    store_location: Arc<str>,
    store_status: Arc<serde_json::Value>,
    /// Set for a shared store: how reads make sure they see every acknowledged write.
    freshness: Option<Arc<dyn Freshness>>,
}

impl std::fmt::Debug for ModelWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelWriter")
            .field("store", &self.store_location)
            .finish_non_exhaustive()
    }
}

/// Owns the writer thread; [`WriterHandle::shutdown`] finishes queued writes and closes
/// the store.
pub struct WriterHandle {
    tx: mpsc::Sender<WriterMsg>,
    thread: Option<JoinHandle<()>>,
}

impl WriterHandle {
    /// Lets every write queued so far finish, then stops the writer and closes the store.
    pub async fn shutdown(mut self) {
        let _ = self.tx.send(WriterMsg::Shutdown).await;
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl ModelWriter {
    /// Loads the store into memory and starts the writer. Fails, and never starts empty,
    /// if the store cannot be read or its contents are inconsistent.
    pub fn start(mut store: Box<dyn Store>) -> Result<(ModelWriter, WriterHandle), StoreError> {
        let stored = store.load()?;
        let location = store.location();
        let model =
            LogicalModel::from_objects(stored.revision, stored.switches, stored.ports, stored.acls)
                .and_then(|m| m.with_routing(stored.routers, stored.router_ports, stored.routes))
                .and_then(|m| m.with_vtep_bindings(stored.vtep_bindings))
                .map_err(|e| StoreError::Inconsistent {
                    path: location.clone().into(),
                    message: e.to_string(),
                })?;
        let (model_tx, model_rx) = watch::channel(Arc::new(model));
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let publisher = Publisher::new(model_tx, events.clone());
        let freshness = store.follow(publisher.clone())?;
        let store_status = store.status();
        let metrics = Arc::new(Metrics::default());
        let thread = std::thread::Builder::new()
            .name("weft-writer".into())
            .spawn({
                let metrics = metrics.clone();
                move || writer_loop(store, rx, publisher, &metrics)
            })
            .map_err(|e| StoreError::Io {
                path: location.clone().into(),
                source: ::redb::Error::Io(e),
            })?;
        let model_writer = ModelWriter {
            model: model_rx,
            writer: tx.clone(),
            observed: Arc::new(ObservedState::with_metrics(events.clone(), metrics)),
            events,
            started: Instant::now(),
            store_location: location.into(),
            store_status: Arc::new(store_status),
            freshness,
        };
        Ok((
            model_writer,
            WriterHandle {
                tx,
                thread: Some(thread),
            },
        ))
    }

    /// The current model. Immutable; hold it as long as needed.
    pub fn snapshot(&self) -> Arc<LogicalModel> {
        self.model.borrow().clone()
    }

    /// The current model for an API read: with a shared store, first waits until it holds
    /// every write acknowledged at any instance (one linearizable read of the store's
    /// revision; no wait when nothing changed since). Fails with -32010 when the store
    /// cannot be asked or this instance cannot catch up in time.
    pub async fn read_snapshot(&self) -> Result<Arc<LogicalModel>, ApiError> {
        let Some(freshness) = &self.freshness else {
            return Ok(self.snapshot());
        };
        let revision = freshness
            .committed_revision()
            .await
            .map_err(|e| ApiError::StoreUnavailable(e.to_string()))?;
        let mut rx = self.model.clone();
        match tokio::time::timeout(CATCH_UP, rx.wait_for(|m| m.revision() >= revision)).await {
            Ok(Ok(m)) => Ok(m.clone()),
            _ => Err(ApiError::StoreUnavailable(format!(
                "this instance has not caught up with store revision {revision} within {}s",
                CATCH_UP.as_secs()
            ))),
        }
    }

    /// What `system_status` reports about the store.
    pub fn store_status(&self) -> &serde_json::Value {
        &self.store_status
    }

    /// A receiver that is notified whenever a write publishes a new snapshot.
    pub fn watch_model(&self) -> watch::Receiver<Arc<LogicalModel>> {
        self.model.clone()
    }

    /// Every event (config, binding, node) from now on.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Observed state, written by the southbound.
    pub fn observed(&self) -> &Arc<ObservedState> {
        &self.observed
    }

    /// This daemon's metrics registry (`GET /metrics`).
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.observed.metrics()
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    pub fn store_location(&self) -> &str {
        &self.store_location
    }

    /// Validates, durably commits and publishes one write. Returns once the change is on
    /// disk and visible in [`ModelWriter::snapshot`]. Called by a call of a
    /// [`ModelWriter::submit_together`] group, the write goes to the writer with the
    /// group's.
    pub async fn submit(&self, cmd: Command) -> Result<Applied, ApiError> {
        let (reply, rx) = oneshot::channel();
        if !self.enqueue(WriteRequest { cmd, reply }).await {
            return Err(ApiError::StoreUnavailable("the store is shut down".into()));
        }
        rx.await
            .map_err(|_| ApiError::StoreUnavailable("the writer stopped before answering".into()))?
    }
}

fn writer_loop(
    mut store: Box<dyn Store>,
    mut rx: mpsc::Receiver<WriterMsg>,
    publisher: Publisher,
    metrics: &Metrics,
) {
    let mut failed: Option<String> = None;
    let per_commit = store.max_writes_per_commit().clamp(1, MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Vec::new();
        let mut shutdown = false;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                WriterMsg::Write(req) => batch.push(req),
                WriterMsg::Group(reqs) => batch.extend(reqs),
                WriterMsg::Shutdown => {
                    shutdown = true;
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let mut batch = batch.into_iter().peekable();
        while batch.peek().is_some() {
            let chunk: Vec<WriteRequest> = batch.by_ref().take(per_commit).collect();
            if let Some(reason) = &failed {
                for req in chunk {
                    let _ = req
                        .reply
                        .send(Err(ApiError::StoreUnavailable(reason.clone())));
                }
            } else {
                process_batch(&mut *store, chunk, &publisher, &mut failed, metrics);
            }
        }
        if shutdown {
            break;
        }
    }
    drop(store);
    tracing::info!("store closed");
}

/// One planned commit: the model after it, its changes, its events and each caller's answer.
struct Planned {
    base: Arc<LogicalModel>,
    working: LogicalModel,
    changes: Vec<crate::model::Change>,
    events: Vec<Event>,
    results: Vec<Result<Applied, ApiError>>,
}

fn plan_batch(base: Arc<LogicalModel>, batch: &[WriteRequest]) -> Planned {
    let mut working: LogicalModel = (*base).clone();
    let mut results = Vec::with_capacity(batch.len());
    let mut all_changes = Vec::new();
    let mut events = Vec::new();
    for req in batch {
        match plan(&working, &req.cmd) {
            Ok(changes) => {
                let revision = working.revision() + 1;
                for change in &changes {
                    events.push(change_event(&working, change, revision));
                    working.apply(change);
                }
                working.set_revision(revision);
                all_changes.extend(changes.iter().cloned());
                results.push(Ok(Applied { revision, changes }));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    Planned {
        base,
        working,
        changes: all_changes,
        events,
        results,
    }
}

fn process_batch(
    store: &mut dyn Store,
    batch: Vec<WriteRequest>,
    publisher: &Publisher,
    failed: &mut Option<String>,
    metrics: &Metrics,
) {
    let mut replans = 0;
    let mut planned = plan_batch(publisher.current(), &batch);
    while !planned.changes.is_empty() {
        let revision = planned.working.revision();
        let started = Instant::now();
        let committed = store.commit_on(&planned.base, revision, &planned.changes);
        metrics.store_commit.observe(started.elapsed());
        match committed {
            Ok(()) => {
                tracing::debug!(
                    revision,
                    changes = planned.changes.len(),
                    writes = planned.results.iter().filter(|r| r.is_ok()).count(),
                    "committed"
                );
                publisher.publish(planned.working, std::mem::take(&mut planned.events));
                break;
            }
            Err(StoreError::Conflict { found, .. }) if replans < MAX_REPLANS => {
                replans += 1;
                tracing::debug!(
                    planned_on = planned.base.revision(),
                    found,
                    "lost a race; planning again"
                );
                match catch_up(publisher, found) {
                    Some(base) => planned = plan_batch(base, &batch),
                    None => {
                        fail_all(
                            &mut planned.results,
                            "this instance did not catch up with the store in time",
                        );
                        break;
                    }
                }
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "store commit failed");
                fail_all(&mut planned.results, &e.to_string());
                break;
            }
            Err(e) => {
                tracing::error!(error = %e, "store commit failed; refusing further writes");
                let reason = format!("commit failed, writes disabled until restart: {e}");
                fail_all(&mut planned.results, &reason);
                *failed = Some(reason);
                break;
            }
        }
    }
    for (req, result) in batch.into_iter().zip(planned.results) {
        let _ = req.reply.send(result);
    }
}

/// Turns every success in `results` into -32010 with `reason`.
fn fail_all(results: &mut [Result<Applied, ApiError>], reason: &str) {
    for result in results.iter_mut() {
        if result.is_ok() {
            *result = Err(ApiError::StoreUnavailable(reason.to_string()));
        }
    }
}

/// Waits (on the writer thread, which has no runtime) until the published snapshot reached
/// `revision`; None after [`CATCH_UP`].
fn catch_up(publisher: &Publisher, revision: u64) -> Option<Arc<LogicalModel>> {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let current = publisher.current();
        if current.revision() >= revision {
            return Some(current);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Change, LogicalPort, MacAddr};
    use uuid::Uuid;

    fn mac(last: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, last])
    }

    fn switch(name: &str, vni: Option<u32>) -> Command {
        Command::SwitchCreate {
            name: name.into(),
            vni,
            description: String::new(),
            flood_vteps: Vec::new(),
            provider: None,
        }
    }

    /// A store whose commits fail, to check that callers get -32010 and nothing changes.
    struct BrokenStore;

    impl Store for BrokenStore {
        fn load(&mut self) -> Result<crate::store::StoredModel, StoreError> {
            Ok(Default::default())
        }
        fn commit(&mut self, _: u64, _: &[Change]) -> Result<(), StoreError> {
            Err(StoreError::Closed)
        }
        fn location(&self) -> String {
            "broken".into()
        }
    }

    #[tokio::test]
    async fn failed_commit_is_store_unavailable_and_changes_nothing() {
        let (c, writer) = ModelWriter::start(Box::new(BrokenStore)).unwrap();
        let err = c.submit(switch("a", None)).await.unwrap_err();
        assert_eq!(err.code(), crate::error::STORE_UNAVAILABLE);
        assert_eq!(c.snapshot().switch_count(), 0);
        assert_eq!(c.snapshot().revision(), 0);
        // Once a commit failed, every later write is refused, even one that would not validate.
        let err = c.submit(switch("a b", None)).await.unwrap_err();
        assert_eq!(err.code(), crate::error::STORE_UNAVAILABLE);
        writer.shutdown().await;
        let err = c.submit(switch("b", None)).await.unwrap_err();
        assert_eq!(err.code(), crate::error::STORE_UNAVAILABLE);
    }

    #[test]
    fn inconsistent_store_is_refused_at_startup() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::store::RedbStore::open(dir.path()).unwrap();
        let orphan = LogicalPort {
            id: Uuid::new_v4(),
            name: "orphan".into(),
            switch: Uuid::new_v4(),
            mac: mac(1),
            ips: vec![],
            port_security: true,
            key: 1,
            zone: 1,
        };
        store.commit(1, &[Change::PutPort(orphan)]).unwrap();
        let err = ModelWriter::start(Box::new(store)).err().unwrap();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
