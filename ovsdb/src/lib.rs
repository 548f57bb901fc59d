//! OVSDB (RFC 7047) client: JSON-RPC 1.0 framing, schema, datum, operations, monitor
//! replica, a tokio client actor (dialled or accepted connections, with a reconnecting
//! wrapper), and typed rows for the Open vSwitch tables a controller needs.
//!
//! The protocol layers (`codec`, `rpc`, `schema`, `datum`, `ops`, `monitor`) do no I/O;
//! `client` and `reconnect` are the tokio glue.

pub mod client;
pub mod codec;
pub mod datum;
pub mod monitor;
pub mod ops;
pub mod reconnect;
pub mod rpc;
pub mod schema;
pub mod session;
pub mod vswitch;

pub use client::{
    Client, ClientConfig, ClientError, DisconnectReason, Event, Listener, MonitorStart, Target,
    connect,
};
pub use codec::{CodecError, JsonCodec};
pub use datum::{Atom, Datum, DatumError, Row};
pub use monitor::{
    ChangeKind, ChangeSet, MonitorRequest, Replica, ReplicaError, RowChange, UpdateFormat,
};
pub use ops::{
    Condition, Function, Mutation, Mutator, NamedRow, Operation, Transaction, TransactionError,
    TransactionOutcome,
};
pub use reconnect::{ReconnectConfig, ReconnectingClient, SessionEvent};
pub use rpc::{Message, RpcError};
pub use schema::DatabaseSchema;
pub use uuid::Uuid;
