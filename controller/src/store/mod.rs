//! Durable storage of the logical model: the [`Store`] seam the writer commits through,
//! what a store hands back at startup ([`StoredModel`]) and how it fails ([`StoreError`]).
//!
//! Two backends implement it. [`RedbStore`] (the default) is one embedded file that only
//! this process writes. `EtcdStore` (cluster mode, `--etcd`, cargo feature `etcd`) keeps
//! the model in an etcd cluster that several weftd instances share: its commits are
//! conditional on the revision the writer planned against, and it follows what the other
//! instances commit (see [`Store::follow`]).

#[cfg(feature = "etcd")]
pub mod etcd;
pub mod redb;

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use uuid::Uuid;

use crate::model::{
    Acl, Change, LogicalModel, LogicalPort, LogicalRouter, LogicalSwitch, Route, RouterPort,
    VtepBinding,
};
use crate::publish::Publisher;

#[cfg(feature = "etcd")]
pub use etcd::{EtcdSettings, EtcdStore};
pub use redb::{RedbStore, STORE_FILE};

/// Format version of the stored records; bumped on incompatible layout changes.
pub const FORMAT_VERSION: u64 = 1;

/// Everything a store holds, as loaded at startup.
#[derive(Debug, Default, Clone)]
pub struct StoredModel {
    pub revision: u64,
    pub switches: Vec<LogicalSwitch>,
    pub ports: Vec<LogicalPort>,
    pub acls: Vec<Acl>,
    pub routers: Vec<LogicalRouter>,
    pub router_ports: Vec<RouterPort>,
    pub routes: Vec<Route>,
    pub vtep_bindings: Vec<VtepBinding>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot open store {path}: {source} (the file is corrupt, not a Weft store, or in use by another weftd)"
    )]
    Open {
        path: PathBuf,
        source: ::redb::DatabaseError,
    },
    #[error("store {path} failed its integrity check; refusing to start on damaged data")]
    Corrupt { path: PathBuf },
    #[error("store {path} has format version {found}, this weftd understands {FORMAT_VERSION}")]
    Format { path: PathBuf, found: u64 },
    #[error("store {path}: {kind} record {id} is unreadable: {message}")]
    Record {
        path: PathBuf,
        kind: &'static str,
        id: Uuid,
        message: String,
    },
    #[error("store {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: ::redb::Error,
    },
    #[error("store {path} is inconsistent, refusing to serve it: {message}")]
    Inconsistent { path: PathBuf, message: String },
    #[error("store is closed")]
    Closed,
    /// The store cannot be reached or did not answer in time. Transient: later writes may
    /// succeed. A write that failed this way may or may not have been committed; either
    /// way it is whole or absent.
    #[error("store {location} is unavailable: {message}")]
    Unavailable { location: String, message: String },
    /// Another writer committed after the model this write was planned on: nothing was
    /// written; catch up to `found` and plan again.
    #[error("store revision is {found}, the write was planned on {expected}")]
    Conflict { expected: u64, found: u64 },
    /// One write would exceed what the store takes in one transaction.
    #[error("store {location} cannot take this write in one transaction: {message}")]
    TooLarge { location: String, message: String },
}

impl StoreError {
    /// Whether the store is still usable after this error (so the writer keeps serving).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. }
                | StoreError::Conflict { .. }
                | StoreError::TooLarge { .. }
        )
    }
}

/// How an API read learns that its instance's snapshot is current: the model revision
/// committed in the store now, read linearizably (so it includes every write any
/// instance has acknowledged).
pub trait Freshness: Send + Sync {
    fn committed_revision(&self) -> BoxFuture<'_, Result<u64, StoreError>>;
}

/// A durable home for the logical model. Implementations must make a commit atomic (all
/// changes and the revision, or nothing) and durable before returning `Ok`.
pub trait Store: Send + 'static {
    /// Reads every object and the revision. Called once, before any commit.
    fn load(&mut self) -> Result<StoredModel, StoreError>;
    /// Atomically and durably applies `changes` and records `revision`.
    fn commit(&mut self, revision: u64, changes: &[Change]) -> Result<(), StoreError>;
    /// Where the data lives, for `system_status` and log messages.
    fn location(&self) -> String;
    /// Commits `changes`, planned on `base`: a shared store fails with
    /// [`StoreError::Conflict`] and writes nothing when `base` is no longer its latest
    /// revision. A store only this process writes needs no check.
    fn commit_on(
        &mut self,
        base: &LogicalModel,
        revision: u64,
        changes: &[Change],
    ) -> Result<(), StoreError> {
        let _ = base;
        self.commit(revision, changes)
    }
    /// Most writes one commit may carry.
    fn max_writes_per_commit(&self) -> usize {
        usize::MAX
    }
    /// Starts following what other processes commit, publishing each change through
    /// `publisher`; returns how reads make sure they see every acknowledged write. A store
    /// only this process writes has nothing to follow.
    fn follow(&mut self, publisher: Publisher) -> Result<Option<Arc<dyn Freshness>>, StoreError> {
        let _ = publisher;
        Ok(None)
    }
    /// What `system_status` says about the store (`kind` and where it is).
    fn status(&self) -> serde_json::Value {
        serde_json::json!({ "kind": "redb", "path": self.location() })
    }
}
