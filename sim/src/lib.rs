//! Weft's hypervisor simulator: thousands of simulated Open vSwitch hypervisors in one
//! process, each with an in-memory vswitch database served over OVSDB ([`db`]) and an
//! OpenFlow 1.3 switch with a real flow table ([`switch`]), driven by small tokio tasks
//! ([`node`]). [`scenario`] builds the logical configuration (switches, ports, ACLs) and
//! writes it straight into a fresh weftd store; [`weftd`] runs the real `weftd` binary
//! and reads its CPU time and peak memory; [`check`] compares each node's flow table
//! with the compiler's expected flows; [`hog`] loads the CPU beside them;
//! [`api_latency`] times API writes on each store backend.

pub mod api_latency;
pub mod check;
pub mod cluster;
pub mod db;
pub mod deployment;
pub mod etcd;
pub mod hog;
pub mod node;
pub mod scenario;
pub mod switch;
pub mod wait;
pub mod weftd;

use std::sync::Arc;

use ovsdb::DatabaseSchema;
use serde_json::Value;

/// Where Open vSwitch installs the vswitch schema; `WEFT_SIM_SCHEMA` overrides it.
pub const SCHEMA_PATH: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// Why the simulator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read the vswitch schema {path} (is Open vSwitch installed?): {source}")]
    SchemaRead {
        path: String,
        source: std::io::Error,
    },
    #[error("the vswitch schema {path} is not valid: {message}")]
    SchemaParse { path: String, message: String },
}

/// The vswitch schema as JSON (what `get_schema` returns) and parsed.
pub fn load_schema_json() -> Result<(Arc<Value>, Arc<DatabaseSchema>), SimError> {
    let path = std::env::var("WEFT_SIM_SCHEMA").unwrap_or_else(|_| SCHEMA_PATH.to_owned());
    let text = std::fs::read_to_string(&path).map_err(|source| SimError::SchemaRead {
        path: path.clone(),
        source,
    })?;
    let json: Value = serde_json::from_str(&text).map_err(|e| SimError::SchemaParse {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let schema = DatabaseSchema::from_json(&json).map_err(|e| SimError::SchemaParse {
        path,
        message: e.to_string(),
    })?;
    Ok((Arc::new(json), Arc::new(schema)))
}

/// The parsed vswitch schema.
pub fn load_schema() -> Result<Arc<DatabaseSchema>, SimError> {
    load_schema_json().map(|(_, s)| s)
}

/// What every bench binary starts with: log lines to stderr (`RUST_LOG`, `warn` when
/// unset, so that tables on stdout stay clean) and a multi-threaded runtime.
pub fn bench_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
