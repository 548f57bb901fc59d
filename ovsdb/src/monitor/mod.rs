//! Monitors and the replica they feed, without I/O.
//!
//! `monitor_cond` (RFC 7047bis, ovsdb-server(7)) sends `update2` notifications whose
//! `modify` carries only a diff of the changed columns; plain `monitor` (RFC 7047 §4.1.5)
//! sends `update` notifications with `old` and `new`. [`Replica`] applies either form to an
//! in-memory copy (table → uuid → row) and reports what changed with the full old and new
//! rows. Every update is validated and computed against the current state before anything
//! is written, so the replica is always a consistent snapshot: an update either applies
//! whole or not at all.
//!
//! Each row version can also carry one decoded view of itself ([`RowRef::decoded`]), so
//! that a consumer that re-reads the same rows after every update (typed rows, see
//! [`crate::vswitch`]) decodes a row once per version rather than once per read.
//!
//! Files: `request` (what to monitor and the request params), `change` (what an update
//! changed), `updates` (table-updates kept as JSON text), `parse` and `decode` (table-updates
//! from a `Value` or straight from text into row operations), `replica` (the copy the updates are applied to); all re-exported here.

mod change;
mod decode;
mod parse;
mod replica;
mod request;
mod updates;

pub use change::{ChangeKind, ChangeSet, RowChange};
pub use replica::{Replica, ReplicaError, RowRef};
pub use request::{MonitorRequest, MonitorSelect, UpdateFormat, monitor_params};
pub use updates::{TableUpdates, UpdatesRef};
