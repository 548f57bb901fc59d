//! OVSDB (RFC 7047) client: JSON-RPC 1.0 framing, schema, datum, operations, monitor
//! replica, a tokio client actor (dialled or accepted connections, with a reconnecting
//! wrapper), and typed rows for the Open vSwitch tables a controller needs.
//!
//! Layers, bottom up. The protocol core does no I/O:
//! - [`codec`]: concatenated-JSON framing (tokio-util codec), linear-time scan, size limit.
//! - [`rpc`]: JSON-RPC 1.0 messages; [`session`]: ids, keepalive and echo as a state machine.
//! - [`schema`], [`datum`]: `get_schema` documents and typed values with their JSON forms.
//! - [`ops`]: operations, conditions, mutations, [`Transaction`] and its result parsing.
//! - [`monitor`]: monitor requests and the [`Replica`] that applies `update`/`update2`.
//! - [`vswitch`]: typed Open_vSwitch/Bridge/Port/Interface/Controller/Manager rows and
//!   helpers.
//!
//! The tokio glue: [`client`] (one actor per connection, [`connect`]), [`listener`]
//! (connections hypervisors dial in: [`Listener`]) and [`reconnect`] (dial with backoff,
//! re-monitor, keep a replica).
//!
//! A hypervisor's ovsdb-server connecting to the controller:
//! ```no_run
//! use ovsdb::{Listener, ClientConfig, Event, Replica, Transaction, vswitch};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = Listener::bind("0.0.0.0:6640", ClientConfig::default()).await?;
//! let ovsdb::Accepted { client, mut events, .. } = listener.accept().await?;
//! let mut replica = Replica::new(client.get_schema(vswitch::DATABASE).await?);
//! let requests = vswitch::monitor_requests();
//! replica.set_monitored(&requests);
//! let start = client
//!     .monitor_auto(vswitch::DATABASE, serde_json::json!("weft"), &requests)
//!     .await?;
//! replica.apply(start.format, &start.initial)?;
//! let root = vswitch::root(&replica).ok_or("no Open_vSwitch row")??;
//! let _system_id = root.external_id("system-id");
//! if vswitch::bridge_by_name(&replica, "br-int").is_none() {
//!     let mut txn = Transaction::new(vswitch::DATABASE);
//!     let spec = vswitch::BridgeSpec { name: "br-int".into(), ..Default::default() };
//!     vswitch::create_bridge(&mut txn, root.uuid, &spec);
//!     client.transact(&txn).await?;
//! }
//! while let Some(event) = events.recv().await {
//!     match event {
//!         Event::Update { format, updates, .. } => {
//!             let changes = replica.apply(format, &updates)?;
//!             for _change in changes.in_table(vswitch::INTERFACE) { /* bindings */ }
//!         }
//!         Event::Disconnected(_) => break,
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod client;
pub mod codec;
pub mod datum;
mod incoming;
pub mod listener;
pub mod monitor;
pub mod ops;
pub mod reconnect;
pub mod rpc;
pub mod schema;
pub mod session;
pub mod vswitch;

pub use client::{
    Client, ClientConfig, ClientError, DisconnectReason, Event, MonitorStart, Target, connect,
};
pub use codec::{CodecError, JsonCodec};
pub use datum::{Atom, Datum, DatumError, Row};
pub use listener::{Accepted, LISTEN_BACKLOG, Listener, listen_tcp};
pub use monitor::{
    ChangeKind, ChangeSet, MonitorRequest, Replica, ReplicaError, RowChange, RowRef, TableUpdates,
    UpdateFormat, UpdatesRef,
};
pub use ops::{
    Condition, Function, Mutation, Mutator, NamedRow, Operation, Transaction, TransactionError,
    TransactionOutcome,
};
pub use reconnect::{ReconnectConfig, ReconnectingClient, SessionEvent};
pub use rpc::{Message, RpcError};
pub use schema::{DatabaseSchema, SharedSchemas};
pub use uuid::Uuid;
