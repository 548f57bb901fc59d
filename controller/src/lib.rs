//! The Weft controller: logical model, durable store, JSON-RPC API and (later) the
//! southbound sessions, pipeline compiler and reconciler.
//!
//! Data flows one way: API writes become [`northbound::Command`]s, the single writer
//! validates them against the [`model::LogicalModel`], commits them to the [`store::Store`],
//! and publishes a new immutable snapshot plus [`events::Event`]s. Observed state from
//! hypervisors lives in [`observed::ObservedState`].
//!
//! Seams for the southbound (OVSDB/OpenFlow sessions, compiler, reconciler):
//! - [`northbound::ModelWriter::snapshot`]: an immutable `Arc<LogicalModel>` at one revision;
//!   [`northbound::ModelWriter::watch_model`] wakes on every write.
//! - [`northbound::ModelWriter::subscribe_events`]: config, binding and node events.
//! - [`northbound::ModelWriter::observed`]: where sessions record transport nodes, port
//!   bindings, `up` and installed flows (read by `node_*` and `port_get`).
//! - [`api::Tracer`], passed to [`daemon::Daemon::start_with`], answers `trace`.
//! - [`daemon::Daemon::start_with`] is where the southbound tasks start (see the comment
//!   there); [`config::Config`] already carries their validated listen/dial targets.

pub mod api;
pub mod binding;
pub mod channels;
pub mod compiler;
pub mod config;
pub mod daemon;
pub mod desired;
pub mod error;
pub mod events;
pub mod model;
pub mod northbound;
pub mod observed;
pub mod port_status;
pub mod realize;
pub mod reconcile;
pub mod southbound;
pub mod store;
pub mod topology;
