//! The [`Replica`]: an in-memory copy of the monitored tables that applies `update` and
//! `update2` notifications whole or not at all, reports what changed, and keeps one decoded
//! view per row version ([`RowRef::decoded`]).

use std::any::Any;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use uuid::Uuid;

use crate::datum::{Datum, DatumError, Row};
use crate::schema::{DatabaseSchema, TableSchema};

use super::change::{ChangeSet, RowChange};
use super::decode::decode;
use super::parse::{RowOp, parse};
use super::request::{MonitorRequest, UpdateFormat};
use super::updates::UpdatesRef;

/// Why an update could not be applied; the replica is unchanged when this is returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplicaError {
    #[error("table-updates is not an object: {0}")]
    NotAnObject(String),
    #[error("table {0:?} is not in the schema")]
    UnknownTable(String),
    #[error("row key {0:?} is not a uuid")]
    BadUuid(String),
    #[error("row update for {table} {uuid} is malformed: {update}")]
    BadRowUpdate {
        table: String,
        uuid: Uuid,
        update: String,
    },
    #[error("{op} of {table} {uuid}, which the replica does not have")]
    MissingRow {
        op: &'static str,
        table: String,
        uuid: Uuid,
    },
    #[error("table-updates is not valid JSON of the expected shape: {0}")]
    BadJson(String),
    #[error("bad value in {table} {uuid}: {source}")]
    Datum {
        table: String,
        uuid: Uuid,
        #[source]
        source: DatumError,
    },
}

/// An in-memory copy of the monitored tables.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Shared, not owned: thousands of connections to hypervisors of one version hold the
    /// same schema (see [`crate::schema::SharedSchemas`]).
    schema: Arc<DatabaseSchema>,
    tables: BTreeMap<String, BTreeMap<Uuid, Entry>>,
    /// Per table, the monitored columns when a monitor asked for a subset.
    columns: BTreeMap<String, Vec<String>>,
}

/// One row version as the replica holds it.
///
/// `decoded` belongs to exactly this version: every update that touches the row (insert,
/// modify, delete, reset) replaces or removes the whole entry, so a decoded view can never
/// outlive the row it was made from and needs no invalidation of its own.
#[derive(Debug, Clone)]
struct Entry {
    row: Arc<Row>,
    decoded: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl Entry {
    fn new(row: Arc<Row>) -> Entry {
        Entry {
            row,
            decoded: OnceLock::new(),
        }
    }
}

/// One row of the replica, borrowed: its uuid, its columns and its decoded view.
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    uuid: &'a Uuid,
    entry: &'a Entry,
}

impl<'a> RowRef<'a> {
    pub fn uuid(&self) -> &'a Uuid {
        self.uuid
    }

    pub fn row(&self) -> &'a Row {
        &self.entry.row
    }

    /// `decode(uuid, row)`, computed at most once per row version and then borrowed from
    /// the replica until an update changes or removes the row. `decode` must depend on
    /// nothing but its arguments. A row holds one decoded view: asking for a second type
    /// of view of the same row decodes it every time (owned), which is correct, only slow.
    pub fn decoded<V>(&self, decode: impl FnOnce(&Uuid, &Row) -> V) -> Cow<'a, V>
    where
        V: Any + Send + Sync + Clone,
    {
        let slot = &self.entry.decoded;
        if let Some(cached) = slot.get() {
            return match cached.downcast_ref::<V>() {
                Some(v) => Cow::Borrowed(v),
                None => Cow::Owned(decode(self.uuid, &self.entry.row)),
            };
        }
        let fresh = Arc::new(decode(self.uuid, &self.entry.row));
        // Another reader may have filled the slot meanwhile (the replica is shared
        // read-only); then whichever value won is as good as ours if it has our type.
        let _ = slot.set(fresh.clone());
        match slot.get().and_then(|c| c.downcast_ref::<V>()) {
            Some(v) => Cow::Borrowed(v),
            None => Cow::Owned(Arc::unwrap_or_clone(fresh)),
        }
    }
}

impl Replica {
    pub fn new(schema: impl Into<Arc<DatabaseSchema>>) -> Replica {
        Replica {
            schema: schema.into(),
            tables: BTreeMap::new(),
            columns: BTreeMap::new(),
        }
    }

    /// Records which columns the monitor requests cover, so that default values are only
    /// filled in for monitored columns (see [`Replica::apply`]).
    pub fn set_monitored(&mut self, requests: &[MonitorRequest]) {
        for r in requests {
            match &r.columns {
                Some(c) => self.columns.insert(r.table.clone(), c.clone()),
                None => self.columns.remove(&r.table),
            };
        }
    }

    pub fn schema(&self) -> &DatabaseSchema {
        &self.schema
    }

    /// The rows of `table` (empty if not monitored or empty).
    pub fn table(&self, table: &str) -> impl Iterator<Item = (&Uuid, &Row)> {
        self.table_refs(table).map(|r| (r.uuid(), r.row()))
    }

    pub fn row(&self, table: &str, uuid: &Uuid) -> Option<&Row> {
        self.row_ref(table, uuid).map(|r| r.row())
    }

    /// The rows of `table` with their decoded views, in uuid order.
    pub fn table_refs<'a>(&'a self, table: &str) -> impl Iterator<Item = RowRef<'a>> + use<'a> {
        self.tables
            .get(table)
            .into_iter()
            .flat_map(|t| t.iter().map(|(uuid, entry)| RowRef { uuid, entry }))
    }

    /// One row with its decoded view.
    pub fn row_ref(&self, table: &str, uuid: &Uuid) -> Option<RowRef<'_>> {
        let (uuid, entry) = self.tables.get(table)?.get_key_value(uuid)?;
        Some(RowRef { uuid, entry })
    }

    pub fn len(&self, table: &str) -> usize {
        self.tables.get(table).map_or(0, BTreeMap::len)
    }

    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    fn table_schema(&self, table: &str) -> Result<&TableSchema, ReplicaError> {
        self.schema
            .table(table)
            .ok_or_else(|| ReplicaError::UnknownTable(table.to_owned()))
    }

    /// Applies an `update`/`update2` table-updates object (or a monitor reply, which has
    /// the same shape). Nothing changes if an error is returned.
    pub fn apply<'u>(
        &mut self,
        format: UpdateFormat,
        updates: impl Into<UpdatesRef<'u>>,
    ) -> Result<ChangeSet, ReplicaError> {
        let ops = match updates.into() {
            UpdatesRef::Value(v) => parse(&self.schema, &self.columns, format, v)?,
            UpdatesRef::Text(t) => decode(&self.schema, &self.columns, format, t.as_str())?,
        };
        let mut changes = Vec::with_capacity(ops.len());
        for (table, uuid, op) in ops {
            let old = self
                .tables
                .get(&table)
                .and_then(|t| t.get(&uuid))
                .map(|e| e.row.clone());
            let new = match op {
                RowOp::Put(row) => Some(Arc::new(row)),
                RowOp::Delete => {
                    if old.is_none() {
                        return Err(ReplicaError::MissingRow {
                            op: "delete",
                            table,
                            uuid,
                        });
                    }
                    None
                }
                RowOp::Merge(cols) => {
                    let Some(mut row) = old.as_deref().cloned() else {
                        return Err(ReplicaError::MissingRow {
                            op: "modify",
                            table,
                            uuid,
                        });
                    };
                    row.extend(cols);
                    Some(Arc::new(row))
                }
                RowOp::Diff(diffs) => {
                    let Some(mut row) = old.as_deref().cloned() else {
                        return Err(ReplicaError::MissingRow {
                            op: "modify",
                            table,
                            uuid,
                        });
                    };
                    let ts = self.table_schema(&table)?;
                    for (col, diff) in diffs {
                        let scalar = ts.column_type(&col).is_none_or(|t| t.replaced_in_update2());
                        let value = match row.get(&col) {
                            Some(cur) if !scalar => {
                                cur.apply_diff(&diff)
                                    .map_err(|source| ReplicaError::Datum {
                                        table: table.clone(),
                                        uuid,
                                        source,
                                    })?
                            }
                            _ => diff,
                        };
                        row.insert(col, value);
                    }
                    Some(Arc::new(row))
                }
            };
            changes.push(RowChange {
                table,
                uuid,
                old,
                new,
            });
        }
        for c in &changes {
            let t = match self.tables.get_mut(&c.table) {
                Some(t) => t,
                None => self.tables.entry(c.table.clone()).or_default(),
            };
            match &c.new {
                Some(row) => {
                    t.insert(c.uuid, Entry::new(row.clone()));
                }
                None => {
                    t.remove(&c.uuid);
                }
            }
        }
        Ok(ChangeSet { changes })
    }

    /// Replaces the contents of `tables` with a fresh monitor reply (after a reconnect) and
    /// reports the difference from what the replica held, so consumers see deletes of rows
    /// that vanished while disconnected. Nothing changes if an error is returned.
    pub fn reset<'u>(
        &mut self,
        tables: &[String],
        format: UpdateFormat,
        reply: impl Into<UpdatesRef<'u>>,
    ) -> Result<ChangeSet, ReplicaError> {
        let mut fresh = Replica::new(self.schema.clone());
        fresh.columns = self.columns.clone();
        fresh.apply(format, reply)?;
        let mut changes = Vec::new();
        for table in tables {
            let old = self.tables.remove(table).unwrap_or_default();
            let Some(mut new) = fresh.tables.remove(table) else {
                changes.extend(old.into_iter().map(|(uuid, entry)| RowChange {
                    table: table.clone(),
                    uuid,
                    old: Some(entry.row),
                    new: None,
                }));
                continue;
            };
            for (uuid, entry) in &old {
                let now = new.get(uuid).map(|n| &n.row);
                if now != Some(&entry.row) {
                    changes.push(RowChange {
                        table: table.clone(),
                        uuid: *uuid,
                        old: Some(entry.row.clone()),
                        new: now.cloned(),
                    });
                }
            }
            changes.extend(new.iter().filter(|(uuid, _)| !old.contains_key(uuid)).map(
                |(uuid, entry)| RowChange {
                    table: table.clone(),
                    uuid: *uuid,
                    old: None,
                    new: Some(entry.row.clone()),
                },
            ));
            adopt_entries(&mut new, old);
            self.tables.insert(table.clone(), new);
        }
        Ok(ChangeSet { changes })
    }

    /// Takes from `earlier`, a replica of the same database that an earlier connection
    /// held, every row this one holds unchanged, with its decoded view; returns how many.
    /// Nothing this replica reports changes (its rows stay equal): what it saves is
    /// decoding every row's view again, and freeing the earlier replica's views. A client
    /// whose peer reconnects with nothing changed would otherwise pay both for every row.
    pub fn adopt_unchanged(&mut self, mut earlier: Replica) -> usize {
        let mut adopted = 0;
        for (table, rows) in &mut self.tables {
            if let Some(old) = earlier.tables.remove(table) {
                adopted += adopt_entries(rows, old);
            }
        }
        adopted
    }

    /// Finds rows of `table` whose `column` equals `value` (a linear scan).
    pub fn find<'a>(
        &'a self,
        table: &str,
        column: &'a str,
        value: &'a Datum,
    ) -> impl Iterator<Item = (&'a Uuid, &'a Row)> + 'a {
        self.find_refs(table, column, value)
            .map(|r| (r.uuid(), r.row()))
    }

    /// [`Replica::find`], with the rows' decoded views.
    pub fn find_refs<'a>(
        &'a self,
        table: &str,
        column: &'a str,
        value: &'a Datum,
    ) -> impl Iterator<Item = RowRef<'a>> + 'a {
        self.table_refs(table)
            .filter(move |r| r.row().get(column) == Some(value))
    }
}

/// Puts into `new` each entry of `old` whose row `new` holds unchanged, with its decoded
/// view; returns how many. What `reset` keeps of a replica, and `adopt_unchanged` of an
/// earlier one.
fn adopt_entries(new: &mut BTreeMap<Uuid, Entry>, mut old: BTreeMap<Uuid, Entry>) -> usize {
    let mut adopted = 0;
    for (uuid, entry) in new.iter_mut() {
        if let Some(o) = old.remove(uuid)
            && o.row == entry.row
        {
            *entry = o;
            adopted += 1;
        }
    }
    adopted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::Atom;
    use crate::monitor::ChangeKind;
    use serde_json::json;
    use std::collections::BTreeSet;

    fn schema() -> DatabaseSchema {
        DatabaseSchema::from_json(&json!({"name": "db", "tables": {"T": {"columns": {
            "name": {"type": "string"},
            "n": {"type": "integer"},
            "tags": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
            "opt": {"type": {"key": "string", "min": 0, "max": 1}},
            "ids": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}}
        }}}}))
        .unwrap()
    }

    const U1: &str = "11111111-1111-1111-1111-111111111111";
    const U2: &str = "22222222-2222-2222-2222-222222222222";

    #[test]
    fn update2_initial_modify_delete() {
        let mut r = Replica::new(schema());
        let u1 = Uuid::parse_str(U1).unwrap();
        let c = r
            .apply(
                UpdateFormat::Update2,
                &json!({"T": {U1: {"initial": {"name": "a", "n": 1, "tags": ["set", ["x", "y"]], "opt": "o",
                    "ids": ["map", [["k", "v"]]]}}}}),
            )
            .unwrap();
        assert_eq!(c.changes[0].kind(), ChangeKind::Inserted);
        let c = r
            .apply(
                UpdateFormat::Update2,
                &json!({"T": {U1: {"modify": {"n": 2, "tags": ["set", ["y", "z"]], "opt": "p",
                    "ids": ["map", [["k", "v"], ["k2", "v2"]]]}}}}),
            )
            .unwrap();
        let ch = &c.changes[0];
        assert_eq!(ch.kind(), ChangeKind::Modified);
        assert_eq!(
            ch.changed_columns(),
            BTreeSet::from(["ids", "n", "opt", "tags"])
        );
        let row = r.row("T", &u1).unwrap();
        assert_eq!(row["n"], Datum::scalar(2i64));
        assert_eq!(row["tags"], Datum::set(["x", "z"]));
        assert_eq!(row["opt"], Datum::scalar("p"));
        assert_eq!(row["ids"], Datum::map([("k2", "v2")]));
        assert_eq!(ch.old.as_ref().unwrap()["n"], Datum::scalar(1i64));
        let c = r
            .apply(UpdateFormat::Update2, &json!({"T": {U1: {"delete": null}}}))
            .unwrap();
        assert_eq!(c.changes[0].kind(), ChangeKind::Deleted);
        assert_eq!(r.len("T"), 0);
    }

    #[test]
    fn update2_insert_fills_defaults_of_monitored_columns() {
        let mut r = Replica::new(schema());
        r.apply(
            UpdateFormat::Update2,
            &json!({"T": {U1: {"insert": {"name": "a"}}}}),
        )
        .unwrap();
        let row = r.row("T", &Uuid::parse_str(U1).unwrap()).unwrap();
        assert_eq!(row["n"], Datum::scalar(0i64));
        assert_eq!(row["tags"], Datum::empty());
        assert_eq!(row["ids"], Datum::empty_map());
        let mut r = Replica::new(schema());
        r.set_monitored(&[MonitorRequest::table("T").columns(&["name", "n"])]);
        r.apply(
            UpdateFormat::Update2,
            &json!({"T": {U1: {"insert": {"name": "a"}}}}),
        )
        .unwrap();
        let row = r.row("T", &Uuid::parse_str(U1).unwrap()).unwrap();
        assert_eq!(
            row.keys().map(|k| &**k).collect::<Vec<_>>(),
            vec!["n", "name"]
        );
    }

    #[test]
    fn failed_update_leaves_replica_untouched() {
        let mut r = Replica::new(schema());
        r.apply(
            UpdateFormat::Update2,
            &json!({"T": {U1: {"insert": {"name": "a"}}}}),
        )
        .unwrap();
        // The second row's modify refers to an unknown row: nothing must be applied.
        let err = r
            .apply(
                UpdateFormat::Update2,
                &json!({"T": {U1: {"modify": {"name": "b"}}, U2: {"modify": {"name": "c"}}}}),
            )
            .unwrap_err();
        assert!(matches!(err, ReplicaError::MissingRow { .. }));
        assert_eq!(
            r.row("T", &Uuid::parse_str(U1).unwrap()).unwrap()["name"],
            Datum::scalar("a")
        );
        assert!(r.apply(UpdateFormat::Update2, &json!({"X": {}})).is_err());
        assert!(
            r.apply(
                UpdateFormat::Update2,
                &json!({"T": {U1: {"modify": {"n": "x"}}}})
            )
            .is_err()
        );
    }

    #[test]
    fn legacy_update_format_and_reset() {
        let mut r = Replica::new(schema());
        let u1 = Uuid::parse_str(U1).unwrap();
        r.apply(
            UpdateFormat::Update,
            &json!({"T": {U1: {"new": {"name": "a", "n": 1}}, U2: {"new": {"name": "b"}}}}),
        )
        .unwrap();
        let c = r
            .apply(
                UpdateFormat::Update,
                &json!({"T": {U1: {"old": {"n": 1}, "new": {"name": "a", "n": 5}}}}),
            )
            .unwrap();
        assert_eq!(c.changes[0].kind(), ChangeKind::Modified);
        assert_eq!(r.row("T", &u1).unwrap()["n"], Datum::scalar(5i64));
        r.apply(
            UpdateFormat::Update,
            &json!({"T": {U2: {"old": {"name": "b"}}}}),
        )
        .unwrap();
        assert_eq!(r.len("T"), 1);
        // After a reconnect the server has U2 again and U1 changed.
        let c = r
            .reset(
                &["T".to_owned()],
                UpdateFormat::Update2,
                &json!({"T": {U1: {"initial": {"name": "a", "n": 6}}, U2: {"initial": {"name": "b"}}}}),
            )
            .unwrap();
        let kinds: Vec<_> = c.changes.iter().map(RowChange::kind).collect();
        assert_eq!(kinds, vec![ChangeKind::Modified, ChangeKind::Inserted]);
        assert_eq!(r.len("T"), 2);
    }

    /// The decoded view of row U1, counting how often `decode` ran.
    fn decoded_name(r: &Replica, calls: &std::cell::Cell<u32>) -> Option<String> {
        let u1 = Uuid::parse_str(U1).unwrap();
        r.row_ref("T", &u1).map(|rr| {
            rr.decoded(|_, row| {
                calls.set(calls.get() + 1);
                row.get("name")
                    .and_then(Datum::as_scalar)
                    .and_then(Atom::as_str)
                    .map(str::to_owned)
            })
            .into_owned()
            .unwrap_or_default()
        })
    }

    #[test]
    fn decoded_view_follows_every_change_of_its_row() {
        let calls = std::cell::Cell::new(0);
        let mut r = Replica::new(schema());
        r.apply(
            UpdateFormat::Update2,
            &json!({"T": {U1: {"insert": {"name": "a"}}, U2: {"insert": {"name": "b"}}}}),
        )
        .unwrap();
        assert_eq!(decoded_name(&r, &calls).as_deref(), Some("a"));
        assert_eq!(decoded_name(&r, &calls).as_deref(), Some("a"));
        assert_eq!(calls.get(), 1, "decoded once per row version");

        // A change to another row keeps this row's view.
        r.apply(
            UpdateFormat::Update2,
            &json!({"T": {U2: {"modify": {"name": "c"}}}}),
        )
        .unwrap();
        assert_eq!(decoded_name(&r, &calls).as_deref(), Some("a"));
        assert_eq!(calls.get(), 1);

        // update2 modify (diff), update modify (merge), update insert (put): each is a
        // new version, decoded again.
        r.apply(
            UpdateFormat::Update2,
            &json!({"T": {U1: {"modify": {"name": "d"}}}}),
        )
        .unwrap();
        assert_eq!(decoded_name(&r, &calls).as_deref(), Some("d"));
        r.apply(
            UpdateFormat::Update,
            &json!({"T": {U1: {"old": {"name": "d"}, "new": {"name": "e"}}}}),
        )
        .unwrap();
        assert_eq!(decoded_name(&r, &calls).as_deref(), Some("e"));
        assert_eq!(calls.get(), 3);

        // A failed update changes nothing, views included.
        assert!(
            r.apply(
                UpdateFormat::Update2,
                &json!({"T": {U1: {"modify": {"name": "f"}}, "33333333-3333-3333-3333-333333333333": {"delete": null}}}),
            )
            .is_err()
        );
        assert_eq!(decoded_name(&r, &calls).as_deref(), Some("e"));
        assert_eq!(calls.get(), 3);

        // Deleted: no row, no view; inserted again under the same uuid: a fresh view.
        r.apply(UpdateFormat::Update2, &json!({"T": {U1: {"delete": null}}}))
            .unwrap();
        assert_eq!(decoded_name(&r, &calls), None);
        r.apply(
            UpdateFormat::Update2,
            &json!({"T": {U1: {"insert": {"name": "g"}}}}),
        )
        .unwrap();
        assert_eq!(decoded_name(&r, &calls).as_deref(), Some("g"));
        assert_eq!(calls.get(), 4);

        // reset: an unchanged row keeps its view, a changed one gets a new one, a row
        // gone is gone.
        let t = ["T".to_owned()];
        r.reset(
            &t,
            UpdateFormat::Update2,
            &json!({"T": {U1: {"initial": {"name": "g"}}}}),
        )
        .unwrap();
        assert_eq!(decoded_name(&r, &calls).as_deref(), Some("g"));
        assert_eq!(calls.get(), 4);
        r.reset(
            &t,
            UpdateFormat::Update2,
            &json!({"T": {U1: {"initial": {"name": "h"}}}}),
        )
        .unwrap();
        assert_eq!(decoded_name(&r, &calls).as_deref(), Some("h"));
        assert_eq!(calls.get(), 5);
        r.reset(&t, UpdateFormat::Update2, &json!({})).unwrap();
        assert_eq!(decoded_name(&r, &calls), None);
        assert_eq!(r.len("T"), 0);
    }

    #[test]
    fn a_second_kind_of_view_is_decoded_each_time() {
        let mut r = Replica::new(schema());
        r.apply(
            UpdateFormat::Update2,
            &json!({"T": {U1: {"insert": {"name": "a", "n": 7}}}}),
        )
        .unwrap();
        let rr = r.row_ref("T", &Uuid::parse_str(U1).unwrap()).unwrap();
        let n = |_: &Uuid, row: &Row| row["n"].as_scalar().and_then(Atom::as_i64);
        assert!(matches!(rr.decoded(n), Cow::Borrowed(Some(7))));
        let name = |_: &Uuid, row: &Row| row["name"].clone();
        assert!(matches!(rr.decoded(name), Cow::Owned(d) if d == Datum::scalar("a")));
        assert!(matches!(rr.decoded(n), Cow::Borrowed(Some(7))));
    }

    #[test]
    fn reset_reports_changes_in_order() {
        let mut r = Replica::new(schema());
        r.apply(
            UpdateFormat::Update2,
            &json!({"T": {U1: {"insert": {"name": "a"}}, U2: {"insert": {"name": "b"}}}}),
        )
        .unwrap();
        let u3 = "33333333-3333-3333-3333-333333333333";
        let c = r
            .reset(
                &["T".to_owned()],
                UpdateFormat::Update2,
                &json!({"T": {U2: {"initial": {"name": "b2"}}, u3: {"initial": {"name": "c"}}}}),
            )
            .unwrap();
        let got: Vec<_> = c
            .changes
            .iter()
            .map(|c| (c.uuid.to_string(), c.kind()))
            .collect();
        assert_eq!(
            got,
            vec![
                (U1.to_owned(), ChangeKind::Deleted),
                (U2.to_owned(), ChangeKind::Modified),
                (u3.to_owned(), ChangeKind::Inserted),
            ]
        );
        assert_eq!(r.len("T"), 2);
    }

    #[test]
    fn a_new_replica_adopts_the_unchanged_rows_of_an_earlier_one_with_their_views() {
        let u1 = Uuid::parse_str(U1).unwrap();
        let u2 = Uuid::parse_str(U2).unwrap();
        let u3 = "33333333-3333-3333-3333-333333333333";
        let mut earlier = Replica::new(schema());
        earlier
            .apply(
                UpdateFormat::Update2,
                &json!({"T": {U1: {"initial": {"name": "a"}}, U2: {"initial": {"name": "b"}}}}),
            )
            .unwrap();
        let name = |_: &Uuid, row: &Row| row["name"].clone();
        for u in [u1, u2] {
            earlier.row_ref("T", &u).unwrap().decoded(name);
        }
        let mut now = Replica::new(schema());
        now.apply(
            UpdateFormat::Update2,
            &json!({"T": {U1: {"initial": {"name": "a"}}, U2: {"initial": {"name": "b2"}},
                u3: {"initial": {"name": "c"}}}}),
        )
        .unwrap();
        let before: Vec<Row> = now.table("T").map(|(_, r)| r.clone()).collect();
        assert_eq!(now.adopt_unchanged(earlier), 1);
        let after: Vec<Row> = now.table("T").map(|(_, r)| r.clone()).collect();
        assert_eq!(before, after, "adopting changed what the replica holds");
        // The unchanged row's view came along: no decode runs for it.
        let view = now
            .row_ref("T", &u1)
            .unwrap()
            .decoded(|_: &Uuid, _: &Row| -> Datum { panic!("decoded again") });
        assert!(matches!(view, Cow::Borrowed(_)));
        assert_eq!(*view, Datum::scalar("a"));
        // The changed row is the new one, decoded afresh.
        assert_eq!(
            *now.row_ref("T", &u2).unwrap().decoded(name),
            Datum::scalar("b2")
        );
    }
}
