//! The Weft controller: logical model, durable store, JSON-RPC API, the southbound
//! sessions (OVSDB and OpenFlow), the pipeline compiler and the installer.
//!
//! Data flows one way. Northbound: API writes become [`northbound::Command`]s; the single
//! [`northbound::ModelWriter`] validates them against the [`model::LogicalModel`], commits
//! them to the [`store::Store`] and publishes a new immutable snapshot plus
//! [`events::Event`]s. Southbound: OVSDB sessions report what each hypervisor is to
//! [`topology::TransportNodes`]; the compiler task ([`realize`]) turns model and
//! topology into per-node [`desired::DesiredNode`]s and the [`binding::Bindings`], handed
//! out through [`channels::Channels`]; OpenFlow sessions install them and report back;
//! [`port_status`] joins bindings and installs into what the API shows
//! ([`observed::ObservedState`]) and the `weft-installed` marks. docs/architecture.md
//! draws it.

pub mod api;
pub mod binding;
pub mod channels;
pub mod cluster;
pub mod compiler;
pub mod config;
pub mod daemon;
pub mod desired;
pub mod error;
pub mod events;
pub mod hardware_vtep;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod northbound;
pub mod observed;
pub mod plug_trace;
pub mod port_status;
pub mod publish;
pub mod realize;
pub mod reconcile;
pub mod service;
pub mod southbound;
pub mod store;
pub mod tls;
pub mod topology;
pub mod ui;
