//! The northbound writer: validated writes, the single writer, snapshots and events.
//!
//! Writes are [`Command`]s. A dedicated writer thread ([`ModelWriter`]) owns the
//! [`Store`](crate::store::Store); it takes a batch of queued commands, validates each
//! against a private copy of the current model ([`plan()`], which also allocates VNIs, port
//! keys, conntrack zones and router keys), commits the resulting
//! [`Change`](crate::model::Change)s in one durable transaction, then publishes the new
//! snapshot and the events, and only then answers the callers. Batching ("group commit")
//! lets 16 concurrent clients share one fsync instead of queueing for 16.
//!
//! After a failed commit the writer refuses further writes (`-32010`) until restart: the
//! disk's state is then unknown, and serving a model that may differ from it is worse than
//! being read-only. A shared store's transient failures (etcd unreachable, a lost race)
//! fail or re-plan only the writes concerned.
//!
//! Seams for the southbound: [`ModelWriter::snapshot`] (an immutable `Arc<LogicalModel>`),
//! [`ModelWriter::watch_model`] (a `watch` that changes on every write),
//! [`ModelWriter::subscribe_events`] and [`ModelWriter::observed`].
//!
//! - [`command`]: what a caller asks for ([`Command`], [`AclSpec`]) and gets ([`Applied`]).
//! - [`plan`](mod@plan): the pure check of a command against a model, turning it into changes.
//! - `plan_routing`: the routing rules of that check (routers, router ports, routes, and
//!   what they add to switch and port writes).
//! - `plan_vtep`: hardware VTEP bindings (`vtep_bind`, `vtep_unbind`).
//! - [`writer`]: the writer thread, its queue, and the [`ModelWriter`] handle readers use.
//! - `group`: the writes of one API request handed to the writer together
//!   ([`ModelWriter::submit_together`]).

pub mod command;
mod group;
pub mod plan;
mod plan_routing;
mod plan_vtep;
pub mod writer;

pub use command::{AclSpec, Applied, Command};
pub use plan::plan;
pub use writer::{ModelWriter, WriterHandle};
