//! [`EtcdStore`]: cluster mode's store. The logical model lives in an etcd cluster under
//! `<prefix>/model/` ([`keys`] gives the layout), shared by every weftd instance started
//! with the same `--etcd` and `--etcd-prefix`.
//!
//! - A commit is one etcd transaction ([`ops`] builds it), acknowledged only once etcd
//!   committed it, and conditional on `<prefix>/model/revision` still holding the revision
//!   the write was planned on; it also sets that key to the new revision. Two instances
//!   that planned on the same snapshot cannot both commit: the loser gets
//!   [`StoreError::Conflict`] and the writer plans again on the newer model. So the model
//!   revision (`system_status.revision`) is one sequence for the whole cluster.
//! - Each instance follows a watch of the prefix from the revision it loaded
//!   ([`follow`]) and publishes a snapshot and events for every revision any instance
//!   commits; on compaction or a broken stream it resumes, or reloads and resyncs.
//! - A read first asks etcd (linearizably) for the model revision and waits until the
//!   local snapshot has it ([`follow::EtcdFreshness`]).
//! - Every etcd call is bounded by [`EtcdSettings::timeout`]; past it a write fails with
//!   [`StoreError::Unavailable`] (-32010) and the next one tries again.

pub mod endpoints;
pub mod follow;
pub mod keys;
pub mod load;
pub mod ops;

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, KvClient, Txn, TxnOp, TxnOpResponse};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::{Freshness, Store, StoreError, StoredModel};
use crate::model::{Change, LogicalModel};
use crate::publish::Publisher;
use endpoints::Endpoints;
use keys::KeyLayout;

/// Default `--etcd-prefix`.
pub const DEFAULT_PREFIX: &str = "/weft";
/// Default bound of one etcd call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach the cluster and where the model lives in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSettings {
    /// Client URLs (`http://IP:PORT`).
    pub endpoints: Vec<String>,
    pub prefix: String,
    /// This weftd's name in the cluster (`--instance`).
    pub instance: String,
    /// Longest one etcd call may take before it counts as failed.
    pub timeout: Duration,
}

impl EtcdSettings {
    pub fn new(endpoints: Vec<String>, prefix: &str, instance: &str) -> Self {
        EtcdSettings {
            endpoints,
            prefix: prefix.to_string(),
            instance: instance.to_string(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    fn location(&self) -> String {
        format!("etcd {} prefix {}", self.endpoints.join(","), self.prefix)
    }
}

/// The etcd-backed store. Open it with [`EtcdStore::connect`] inside a tokio runtime.
pub struct EtcdStore {
    settings: EtcdSettings,
    layout: KeyLayout,
    endpoints: Endpoints,
    runtime: Handle,
    /// The model as read at connect, handed out by the first `load`.
    loaded: Option<StoredModel>,
    /// The etcd revision `loaded` was read at; the follower starts after it.
    loaded_at: i64,
    /// The latest snapshot, for [`Store::commit`] callers that have no base model.
    publisher: Option<Publisher>,
    /// Stops the follower when the store closes.
    stop: CancellationToken,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

pub(crate) fn unavailable(settings: &EtcdSettings, message: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable {
        location: settings.location(),
        message: message.to_string(),
    }
}

/// Runs one etcd call with the settings' time bound.
pub(crate) async fn bounded<T, E: std::fmt::Display>(
    settings: &EtcdSettings,
    what: &str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(settings.timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(unavailable(settings, format!("{what}: {e}"))),
        Err(_) => Err(unavailable(
            settings,
            format!("{what}: no answer within {:?}", settings.timeout),
        )),
    }
}

impl EtcdStore {
    /// Connects, creates the model's revision and format keys if the prefix is new, and
    /// reads the whole model (paged, at one etcd revision). Fails, and never starts empty,
    /// when etcd cannot be reached in time or holds records this weftd cannot read.
    pub async fn connect(settings: EtcdSettings) -> Result<Self, StoreError> {
        if settings.endpoints.is_empty() {
            return Err(unavailable(&settings, "no endpoints given"));
        }
        let endpoints = Endpoints::new(&settings)
            .await
            .map_err(|e| unavailable(&settings, format!("connect: {e}")))?;
        let layout = KeyLayout::new(&settings.prefix);
        let mut last = None;
        let mut loaded = None;
        for _ in 0..endpoints.len() {
            let (i, client) = endpoints.current();
            let mut kv = client.kv_client();
            let attempt = async {
                load::init(&settings, &layout, &mut kv).await?;
                load::read_model(&settings, &layout, &mut kv).await
            };
            match attempt.await {
                Ok(ok) => {
                    loaded = Some(ok);
                    break;
                }
                Err(e @ StoreError::Unavailable { .. }) => {
                    endpoints.failed(i);
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        let Some((loaded, loaded_at)) = loaded else {
            return Err(last.unwrap_or_else(|| unavailable(&settings, "no endpoint answered")));
        };
        Ok(EtcdStore {
            settings,
            layout,
            endpoints,
            runtime: Handle::current(),
            loaded: Some(loaded),
            loaded_at,
            publisher: None,
            stop: CancellationToken::new(),
        })
    }

    pub fn settings(&self) -> &EtcdSettings {
        &self.settings
    }

    /// Runs `f` to completion from the writer thread (or a blocking section).
    fn block_on<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match Handle::try_current() {
            Err(_) => self.runtime.block_on(f),
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.runtime.block_on(f))
            }
            Ok(_) => Err(unavailable(
                &self.settings,
                "a commit must not run on a single-threaded runtime's thread",
            )),
        }
    }

    /// Commits through the current member, moving on to the next one when a call fails.
    /// After a failed attempt, whose fate is unknown, a conflict may be this very write
    /// having landed: then one of its records reads back as written, and it succeeded.
    async fn transact(
        settings: &EtcdSettings,
        layout: &KeyLayout,
        endpoints: &Endpoints,
        base: u64,
        revision: u64,
        ops: ops::TxnOps,
    ) -> Result<(), StoreError> {
        let mut last = None;
        for attempt in 0..endpoints.len() {
            let (i, client) = endpoints.current();
            let mut kv = client.kv_client();
            match Self::transact_once(settings, layout, &mut kv, base, revision, &ops).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict { expected, found }) if attempt > 0 => {
                    return if Self::landed(settings, &mut kv, &ops).await? {
                        Ok(())
                    } else {
                        Err(StoreError::Conflict { expected, found })
                    };
                }
                Err(e @ StoreError::Unavailable { .. }) => {
                    endpoints.failed(i);
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| unavailable(settings, "no endpoint")))
    }

    /// Whether the first record `ops` writes reads back as written (a deletion: absent).
    async fn landed(
        settings: &EtcdSettings,
        kv: &mut KvClient,
        ops: &ops::TxnOps,
    ) -> Result<bool, StoreError> {
        if let Some((key, value)) = ops.puts.first() {
            let resp = bounded(
                settings,
                "check a retried commit",
                kv.get(key.clone(), None),
            )
            .await?;
            return Ok(resp
                .kvs()
                .first()
                .is_some_and(|kv| kv.value() == value.as_slice()));
        }
        if let Some((key, _)) = ops.deletes.first() {
            let resp = bounded(
                settings,
                "check a retried commit",
                kv.get(key.clone(), None),
            )
            .await?;
            return Ok(resp.kvs().is_empty());
        }
        Ok(false)
    }

    async fn transact_once(
        settings: &EtcdSettings,
        layout: &KeyLayout,
        kv: &mut KvClient,
        base: u64,
        revision: u64,
        ops: &ops::TxnOps,
    ) -> Result<(), StoreError> {
        let revision_key = layout.revision_key();
        let mut success: Vec<TxnOp> = Vec::with_capacity(ops.count());
        for (key, end) in &ops.deletes {
            let options = end
                .clone()
                .map(|e| etcd_client::DeleteOptions::new().with_range(e));
            success.push(TxnOp::delete(key.clone(), options));
        }
        for (key, value) in &ops.puts {
            success.push(TxnOp::put(key.clone(), value.clone(), None));
        }
        success.push(TxnOp::put(revision_key.clone(), revision.to_string(), None));
        let txn = Txn::new()
            .when([Compare::value(
                revision_key.clone(),
                CompareOp::Equal,
                base.to_string(),
            )])
            .and_then(success)
            .or_else([TxnOp::get(revision_key, None)]);
        let resp = bounded(settings, "commit", kv.txn(txn)).await?;
        if resp.succeeded() {
            return Ok(());
        }
        let found = resp
            .op_responses()
            .into_iter()
            .find_map(|r| match r {
                TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
                _ => None,
            })
            .and_then(|v| load::parse_revision(&v));
        match found {
            Some(found) => Err(StoreError::Conflict {
                expected: base,
                found,
            }),
            None => Err(StoreError::Inconsistent {
                path: settings.location().into(),
                message: format!("{} is missing or not a number", layout.revision_key()),
            }),
        }
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Store for EtcdStore {
    fn load(&mut self) -> Result<StoredModel, StoreError> {
        self.loaded.take().ok_or(StoreError::Closed)
    }

    /// For tools and tests: commits on the snapshot this store last published (or loaded).
    fn commit(&mut self, revision: u64, changes: &[Change]) -> Result<(), StoreError> {
        let base = match &self.publisher {
            Some(p) => (*p.current()).clone(),
            None => {
                let mut m = LogicalModel::default();
                m.set_revision(revision.saturating_sub(1));
                m
            }
        };
        self.commit_on(&base, revision, changes)
    }

    fn commit_on(
        &mut self,
        base: &LogicalModel,
        revision: u64,
        changes: &[Change],
    ) -> Result<(), StoreError> {
        let ops = ops::plan_ops(&self.layout, base, changes).map_err(|e| StoreError::TooLarge {
            location: self.settings.location(),
            message: e.to_string(),
        })?;
        self.block_on(Self::transact(
            &self.settings,
            &self.layout,
            &self.endpoints,
            base.revision(),
            revision,
            ops,
        ))
    }

    fn location(&self) -> String {
        self.settings.location()
    }

    /// One write per transaction: each write's operations are bounded on their own, and a
    /// lost race re-plans only that write.
    fn max_writes_per_commit(&self) -> usize {
        1
    }

    fn follow(&mut self, publisher: Publisher) -> Result<Option<Arc<dyn Freshness>>, StoreError> {
        self.publisher = Some(publisher.clone());
        let follower = follow::Follower::new(
            self.settings.clone(),
            self.layout.clone(),
            self.endpoints.clone(),
            publisher,
            self.stop.clone(),
        );
        self.runtime.spawn(follower.run(self.loaded_at + 1));
        Ok(Some(Arc::new(follow::EtcdFreshness::new(
            self.settings.clone(),
            self.layout.clone(),
            self.endpoints.clone(),
        ))))
    }

    fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": "etcd",
            "endpoints": self.settings.endpoints,
            "prefix": self.settings.prefix,
            "instance": self.settings.instance,
        })
    }
}
