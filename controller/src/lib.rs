//! The Weft controller: logical model, durable store, JSON-RPC API and (later) the
//! southbound sessions, pipeline compiler and reconciler.
//!
//! Data flows one way: API writes become [`controller::Command`]s, the single writer
//! validates them against the [`model::LogicalModel`], commits them to the [`store::Store`],
//! and publishes a new immutable snapshot plus [`events::Event`]s. Observed state from
//! hypervisors lives in [`observed::ObservedState`].

pub mod api;
pub mod compiler;
pub mod config;
pub mod controller;
pub mod daemon;
pub mod error;
pub mod events;
pub mod fabric;
pub mod model;
pub mod observed;
pub mod reconcile;
pub mod southbound;
pub mod store;
