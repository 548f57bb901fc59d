//! The single writer: one thread owns the store, takes queued [`Command`]s in batches,
//! plans each against a private copy of the model, commits the batch in one durable
//! transaction, publishes the new snapshot and the events, and only then answers.
//! [`ModelWriter`] is the cheap handle everyone else holds; [`WriterHandle`] owns the thread.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::command::{Applied, Command};
use super::plan::plan;
use crate::error::ApiError;
use crate::events::{ChangeOp, EVENT_BUFFER, Event};
use crate::model::{Change, LogicalModel};
use crate::observed::ObservedState;
use crate::store::{Store, StoreError};

/// Most commands committed in one store transaction.
const MAX_BATCH: usize = 256;
/// Most writes waiting for the writer before callers are pushed back.
const QUEUE_DEPTH: usize = 4096;

struct WriteRequest {
    cmd: Command,
    reply: oneshot::Sender<Result<Applied, ApiError>>,
}

enum WriterMsg {
    Write(WriteRequest),
    Shutdown,
}

/// The handle the API and, later, the southbound use. Cheap to clone.
#[derive(Clone)]
pub struct ModelWriter {
    model: watch::Receiver<Arc<LogicalModel>>,
    writer: mpsc::Sender<WriterMsg>,
    events: broadcast::Sender<Event>,
    observed: Arc<ObservedState>,
    started: Instant,
    store_location: Arc<str>,
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
                .map_err(|e| StoreError::Inconsistent {
                    path: location.clone().into(),
                    message: e.to_string(),
                })?;
        let (model_tx, model_rx) = watch::channel(Arc::new(model));
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let writer_events = events.clone();
        let thread = std::thread::Builder::new()
            .name("weft-writer".into())
            .spawn(move || writer_loop(store, rx, model_tx, writer_events))
            .map_err(|e| StoreError::Io {
                path: location.clone().into(),
                source: redb::Error::Io(e),
            })?;
        let model_writer = ModelWriter {
            model: model_rx,
            writer: tx.clone(),
            observed: Arc::new(ObservedState::new(events.clone())),
            events,
            started: Instant::now(),
            store_location: location.into(),
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

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    pub fn store_location(&self) -> &str {
        &self.store_location
    }

    /// Validates, durably commits and publishes one write. Returns once the change is on
    /// disk and visible in [`ModelWriter::snapshot`].
    pub async fn submit(&self, cmd: Command) -> Result<Applied, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(WriterMsg::Write(WriteRequest { cmd, reply }))
            .await
            .map_err(|_| ApiError::StoreUnavailable("the store is shut down".into()))?;
        rx.await
            .map_err(|_| ApiError::StoreUnavailable("the writer stopped before answering".into()))?
    }
}

fn writer_loop(
    mut store: Box<dyn Store>,
    mut rx: mpsc::Receiver<WriterMsg>,
    model_tx: watch::Sender<Arc<LogicalModel>>,
    events: broadcast::Sender<Event>,
) {
    let mut failed: Option<String> = None;
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Vec::new();
        let mut shutdown = false;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                WriterMsg::Write(req) => batch.push(req),
                WriterMsg::Shutdown => {
                    shutdown = true;
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if let Some(reason) = &failed {
            for req in batch {
                let _ = req
                    .reply
                    .send(Err(ApiError::StoreUnavailable(reason.clone())));
            }
        } else {
            process_batch(&mut *store, batch, &model_tx, &events, &mut failed);
        }
        if shutdown {
            break;
        }
    }
    drop(store);
    tracing::info!("store closed");
}

fn process_batch(
    store: &mut dyn Store,
    batch: Vec<WriteRequest>,
    model_tx: &watch::Sender<Arc<LogicalModel>>,
    events: &broadcast::Sender<Event>,
    failed: &mut Option<String>,
) {
    let current = model_tx.borrow().clone();
    let mut working: LogicalModel = (*current).clone();
    let mut replies = Vec::with_capacity(batch.len());
    let mut all_changes = Vec::new();
    let mut pending_events = Vec::new();
    for req in batch {
        match plan(&working, &req.cmd) {
            Ok(changes) => {
                let revision = working.revision() + 1;
                for change in &changes {
                    let op = if change.is_delete() {
                        ChangeOp::Deleted
                    } else if exists(&working, change) {
                        ChangeOp::Updated
                    } else {
                        ChangeOp::Created
                    };
                    pending_events.push(Event::ConfigChanged {
                        kind: change.kind(),
                        id: change.id(),
                        op,
                        revision,
                    });
                    working.apply(change);
                }
                working.set_revision(revision);
                all_changes.extend(changes.iter().cloned());
                replies.push((req.reply, Ok(Applied { revision, changes })));
            }
            Err(e) => replies.push((req.reply, Err(e))),
        }
    }
    if !all_changes.is_empty() {
        match store.commit(working.revision(), &all_changes) {
            Ok(()) => {
                tracing::debug!(
                    revision = working.revision(),
                    changes = all_changes.len(),
                    writes = replies.iter().filter(|(_, r)| r.is_ok()).count(),
                    "committed"
                );
                model_tx.send_replace(Arc::new(working));
                for ev in pending_events {
                    let _ = events.send(ev);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "store commit failed; refusing further writes");
                let reason = format!("commit failed, writes disabled until restart: {e}");
                for (_, result) in replies.iter_mut() {
                    if result.is_ok() {
                        *result = Err(ApiError::StoreUnavailable(reason.clone()));
                    }
                }
                *failed = Some(reason);
            }
        }
    }
    for (reply, result) in replies {
        let _ = reply.send(result);
    }
}

fn exists(model: &LogicalModel, change: &Change) -> bool {
    let id = change.id();
    match change {
        Change::PutSwitch(_) => model.switch(&id).is_some(),
        Change::PutPort(_) => model.port(&id).is_some(),
        Change::PutAcl(_) => model.acl(&id).is_some(),
        Change::PutRouter(_) => model.router(&id).is_some(),
        Change::PutRouterPort(_) => model.router_port(&id).is_some(),
        Change::PutRoute(_) => model.route(&id).is_some(),
        Change::DeleteSwitch { .. }
        | Change::DeletePort { .. }
        | Change::DeleteAcl { .. }
        | Change::DeleteRouter { .. }
        | Change::DeleteRouterPort { .. }
        | Change::DeleteRoute { .. } => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LogicalPort, MacAddr};
    use uuid::Uuid;

    fn mac(last: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, last])
    }

    fn switch(name: &str, vni: Option<u32>) -> Command {
        Command::SwitchCreate {
            name: name.into(),
            vni,
            description: String::new(),
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
