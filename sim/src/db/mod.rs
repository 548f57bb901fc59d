//! A minimal in-memory OVSDB server database (RFC 7047), sans-IO: one [`Database`] per
//! simulated hypervisor, holding the tables of the real `vswitch.ovsschema` and executing
//! `transact` operations (insert with uuid-name, select, update, mutate, delete, wait,
//! comment, commit, abort, assert) atomically, with `where` conditions, named-uuid
//! references, referential integrity and garbage collection of unreferenced non-root rows.
//! Every committed change is turned into `update2` (`monitor_cond`) or `update`
//! (`monitor`) notifications for the monitors that asked for those tables and columns.
//!
//! Rows are stored sparsely: a column at its default value is not stored, which is also
//! what ovsdb-server sends in `update2` inserts. Readers treat a missing column as its
//! type's default.
//!
//! Files: this one holds the [`Database`] and its direct writes; `txn` executes
//! `transact` (operations, conditions, integrity, garbage collection); `datum_ops` is what
//! the condition functions and mutators do to one value; `monitor` registers monitors and
//! turns committed changes into their notifications.

mod datum_ops;
mod monitor;
mod txn;

use std::collections::BTreeMap;
use std::sync::Arc;

use ovsdb::schema::ColumnType;
use ovsdb::{DatabaseSchema, Datum, Row, Uuid};
use serde_json::{Value, json};

use monitor::Monitor;

/// An error in one operation, as ovsdb-server reports it (`{"error": .., "details": ..}`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}: {details}")]
pub struct OpError {
    pub error: &'static str,
    pub details: String,
}

impl OpError {
    fn new(error: &'static str, details: impl Into<String>) -> Self {
        OpError {
            error,
            details: details.into(),
        }
    }
    fn syntax(details: impl Into<String>) -> Self {
        Self::new("syntax error", details)
    }
    pub fn to_json(&self) -> Value {
        json!({"error": self.error, "details": self.details})
    }
}

/// One committed row change: `None` old means inserted, `None` new means deleted.
#[derive(Debug, Clone)]
pub struct RowChange {
    pub table: String,
    pub uuid: Uuid,
    pub old: Option<Row>,
    pub new: Option<Row>,
}

/// One simulated hypervisor's database.
#[derive(Debug, Clone)]
pub struct Database {
    schema: std::sync::Arc<DatabaseSchema>,
    tables: BTreeMap<String, BTreeMap<Uuid, Row>>,
    monitors: Vec<Monitor>,
    /// Stamps the last call that may have changed rows: what was read from the rows at
    /// one stamp is still true at the same stamp (see [`Database::writes`]).
    writes: u64,
}

/// Write stamps, unique across databases: a database that replaces another never shows
/// a stamp read from the one it replaced.
static WRITE_STAMPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn next_stamp() -> u64 {
    WRITE_STAMPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
}

/// Tables whose rows survive without references (`isRoot`).
fn is_root(schema: &DatabaseSchema, table: &str) -> bool {
    schema.table(table).is_some_and(|t| t.is_root)
}

impl Database {
    pub fn new(schema: std::sync::Arc<DatabaseSchema>) -> Database {
        let tables = schema
            .tables
            .keys()
            .map(|t| (t.clone(), BTreeMap::new()))
            .collect();
        Database {
            schema,
            tables,
            monitors: Vec::new(),
            writes: next_stamp(),
        }
    }

    /// The stamp of the last call that may have changed the rows: a reader that derives
    /// something from them (the bench's "all installed?", polled on every node) keeps it
    /// until this moves.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    pub fn schema(&self) -> &DatabaseSchema {
        &self.schema
    }

    pub fn table(&self, table: &str) -> impl Iterator<Item = (&Uuid, &Row)> {
        self.tables.get(table).into_iter().flat_map(|t| t.iter())
    }

    pub fn row(&self, table: &str, uuid: &Uuid) -> Option<&Row> {
        self.tables.get(table).and_then(|t| t.get(uuid))
    }

    /// The value of `column` in `row`, the type's default when not stored.
    pub fn get(&self, table: &str, row: &Row, column: &str) -> Datum {
        if let Some(d) = row.get(column) {
            return d.clone();
        }
        self.column_type(table, column)
            .map(ColumnType::default_datum)
            .unwrap_or_default()
    }

    fn column_type(&self, table: &str, column: &str) -> Option<&ColumnType> {
        self.schema.table(table).and_then(|t| t.column_type(column))
    }

    /// Drops every monitor (the connection they belonged to ended).
    pub fn clear_monitors(&mut self) {
        self.monitors.clear();
    }

    /// Drops the monitors of one connection of several.
    pub fn clear_monitors_of(&mut self, session: u64) {
        self.monitors.retain(|m| m.session != session);
    }

    /// Direct write by the simulated ovs-vswitchd (ofport, datapath_id, ...): sets columns
    /// of an existing row and returns the change for the monitors.
    pub fn set_columns(&mut self, table: &str, uuid: Uuid, cols: Row) -> Option<RowChange> {
        self.writes = next_stamp();
        let schema = self.schema.clone();
        let row = self.tables.get_mut(table)?.get_mut(&uuid)?;
        let old = row.clone();
        for (c, d) in cols {
            store_column(&schema, table, row, c, d);
        }
        (old != *row).then(|| RowChange {
            table: table.to_owned(),
            uuid,
            old: Some(old),
            new: Some(row.clone()),
        })
    }

    /// Direct insert by the simulator (initial state, new VM interfaces).
    pub fn insert_row(&mut self, table: &str, uuid: Uuid, row: Row) -> RowChange {
        self.writes = next_stamp();
        let schema = self.schema.clone();
        let mut stored = Row::new();
        for (c, d) in row {
            store_column(&schema, table, &mut stored, c, d);
        }
        self.tables
            .entry(table.to_owned())
            .or_default()
            .insert(uuid, stored.clone());
        RowChange {
            table: table.to_owned(),
            uuid,
            old: None,
            new: Some(stored),
        }
    }
}

/// Stores `d` in `row`, dropping it when it is the column's default (sparse rows).
fn store_column(schema: &DatabaseSchema, table: &str, row: &mut Row, c: Arc<str>, d: Datum) {
    let default = schema
        .table(table)
        .and_then(|t| t.column_type(&c))
        .map(ColumnType::default_datum);
    let is_default = match &default {
        Some(def) => *def == d || (d.is_empty() && def.is_empty()),
        None => false,
    };
    if is_default {
        row.remove(&*c);
    } else {
        row.insert(c, d);
    }
}

/// The installed vswitch schema, for the unit tests.
#[cfg(test)]
pub(crate) fn vswitch_schema() -> std::sync::Arc<DatabaseSchema> {
    crate::load_schema().expect("vswitch.ovsschema (Open vSwitch must be installed)")
}
