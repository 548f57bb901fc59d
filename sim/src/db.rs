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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ovsdb::datum::row_from_json;
use ovsdb::schema::{ColumnType, RefType};
use ovsdb::{Atom, DatabaseSchema, Datum, Row, Uuid};
use serde_json::{Map, Value, json};

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

/// A monitor registered by `monitor` or `monitor_cond`.
#[derive(Debug, Clone)]
struct Monitor {
    id: Value,
    /// true: `update2` notifications (monitor_cond); false: `update` (monitor).
    update2: bool,
    /// table → monitored columns (`None`: all).
    tables: BTreeMap<String, Option<BTreeSet<String>>>,
}

/// One simulated hypervisor's database.
#[derive(Debug, Clone)]
pub struct Database {
    schema: std::sync::Arc<DatabaseSchema>,
    tables: BTreeMap<String, BTreeMap<Uuid, Row>>,
    monitors: Vec<Monitor>,
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
        }
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

    /// Direct write by the simulated ovs-vswitchd (ofport, datapath_id, ...): sets columns
    /// of an existing row and returns the change for the monitors.
    pub fn set_columns(&mut self, table: &str, uuid: Uuid, cols: Row) -> Option<RowChange> {
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

    /// Executes a `transact` request's params (`[db, op, op, ...]`). Returns the reply
    /// (`result` array) and, when it committed, the row changes.
    pub fn transact(&mut self, params: &Value) -> (Value, Vec<RowChange>) {
        let ops = match params.as_array().map(Vec::as_slice) {
            Some([Value::String(db), ops @ ..]) if *db == self.schema.name => ops,
            _ => {
                let e = OpError::new("unknown database", params.to_string());
                return (json!([e.to_json()]), Vec::new());
            }
        };
        let mut txn = Txn {
            db: self,
            undo: Vec::new(),
            named: HashMap::new(),
        };
        // Named rows may be referred to before their insert: name them all first.
        for op in ops {
            if op.get("op").and_then(Value::as_str) == Some("insert")
                && let Some(name) = op.get("uuid-name").and_then(Value::as_str)
            {
                txn.named.insert(name.to_owned(), Uuid::new_v4());
            }
        }
        let mut results = Vec::with_capacity(ops.len());
        let mut failed = None;
        for op in ops {
            match txn.execute(op) {
                Ok(r) => results.push(r),
                Err(e) => {
                    results.push(e.to_json());
                    failed = Some(e);
                    break;
                }
            }
        }
        if failed.is_none()
            && let Err(e) = txn.finish()
        {
            results.push(e.to_json());
            failed = Some(e);
        }
        if failed.is_some() {
            txn.rollback();
            while results.len() < ops.len() {
                results.push(Value::Null);
            }
            return (Value::Array(results), Vec::new());
        }
        let changes = txn.changes();
        (Value::Array(results), changes)
    }

    /// Registers a monitor (`monitor` when `update2` is false, `monitor_cond` otherwise)
    /// and returns the initial contents in the matching format.
    pub fn monitor(&mut self, params: &Value, update2: bool) -> Result<Value, OpError> {
        let (db, id, reqs) = match params.as_array().map(Vec::as_slice) {
            Some([db, id, reqs, ..]) => (db, id, reqs),
            _ => return Err(OpError::syntax(format!("bad monitor params {params}"))),
        };
        if db.as_str() != Some(self.schema.name.as_str()) {
            return Err(OpError::new("unknown database", db.to_string()));
        }
        if self.monitors.iter().any(|m| m.id == *id) {
            return Err(OpError::new("duplicate monitor ID", id.to_string()));
        }
        let reqs = reqs
            .as_object()
            .ok_or_else(|| OpError::syntax("monitor requests are not an object"))?;
        let mut tables = BTreeMap::new();
        for (table, req) in reqs {
            if self.schema.table(table).is_none() {
                return Err(OpError::new("unknown table", table.clone()));
            }
            // One request object or an array of them; union of their columns.
            let list: Vec<&Value> = match req {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            let mut cols: Option<BTreeSet<String>> = Some(BTreeSet::new());
            for r in list {
                match r.get("columns").and_then(Value::as_array) {
                    None => cols = None,
                    Some(c) => {
                        if let Some(set) = cols.as_mut() {
                            set.extend(c.iter().filter_map(Value::as_str).map(str::to_owned));
                        }
                    }
                }
            }
            tables.insert(table.clone(), cols);
        }
        let monitor = Monitor {
            id: id.clone(),
            update2,
            tables,
        };
        let mut out = Map::new();
        for (table, cols) in &monitor.tables {
            let mut rows = Map::new();
            for (uuid, row) in self.table(table) {
                let r = project(row, cols.as_ref());
                let v = if update2 {
                    json!({"initial": r})
                } else {
                    json!({"new": r})
                };
                rows.insert(uuid.to_string(), v);
            }
            if !rows.is_empty() {
                out.insert(table.clone(), Value::Object(rows));
            }
        }
        self.monitors.push(monitor);
        Ok(Value::Object(out))
    }

    pub fn monitor_cancel(&mut self, id: &Value) -> bool {
        let before = self.monitors.len();
        self.monitors.retain(|m| m.id != *id);
        self.monitors.len() != before
    }

    /// The notifications (`(method, params)`) that report `changes` to the monitors.
    pub fn notifications(&self, changes: &[RowChange]) -> Vec<(&'static str, Value)> {
        let changes = coalesce(changes);
        let mut out = Vec::new();
        for m in &self.monitors {
            let mut tables: Map<String, Value> = Map::new();
            for c in &changes {
                let Some(cols) = m.tables.get(&c.table) else {
                    continue;
                };
                let Some(v) = self.row_update(c, cols.as_ref(), m.update2) else {
                    continue;
                };
                let t = tables
                    .entry(c.table.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(t) = t {
                    t.insert(c.uuid.to_string(), v);
                }
            }
            if !tables.is_empty() {
                let method = if m.update2 { "update2" } else { "update" };
                out.push((method, json!([m.id, tables])));
            }
        }
        out
    }

    fn row_update(
        &self,
        c: &RowChange,
        cols: Option<&BTreeSet<String>>,
        update2: bool,
    ) -> Option<Value> {
        match (&c.old, &c.new) {
            (None, Some(new)) => Some(if update2 {
                json!({"insert": project(new, cols)})
            } else {
                json!({"new": project(new, cols)})
            }),
            (Some(old), None) => Some(if update2 {
                json!({"delete": null})
            } else {
                json!({"old": project(old, cols)})
            }),
            (Some(old), Some(new)) => {
                let changed: Vec<&String> = old
                    .keys()
                    .chain(new.keys())
                    .filter(|k| cols.is_none_or(|c| c.contains(*k)))
                    .filter(|k| old.get(*k) != new.get(*k))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if changed.is_empty() {
                    return None;
                }
                if update2 {
                    let mut diff = Map::new();
                    for k in changed {
                        let o = self.get(&c.table, old, k);
                        let n = self.get(&c.table, new, k);
                        let replaced = self
                            .column_type(&c.table, k)
                            .is_some_and(ColumnType::replaced_in_update2);
                        let d = if replaced { n } else { datum_diff(&o, &n) };
                        diff.insert(k.clone(), d.to_json());
                    }
                    Some(json!({"modify": diff}))
                } else {
                    let mut olds = Map::new();
                    for k in changed {
                        olds.insert(k.clone(), self.get(&c.table, old, k).to_json());
                    }
                    Some(json!({"old": olds, "new": project(new, cols)}))
                }
            }
            (None, None) => None,
        }
    }
}

/// One change per row, from its first old to its last new, as ovsdb-server reports a
/// transaction: a row inserted and then modified (a VIF given its ofport) is one insert,
/// not a modify of a row the monitor never saw.
fn coalesce(changes: &[RowChange]) -> Vec<RowChange> {
    let mut out: Vec<RowChange> = Vec::with_capacity(changes.len());
    let mut at: HashMap<(&str, Uuid), usize> = HashMap::new();
    for c in changes {
        match at.get(&(c.table.as_str(), c.uuid)) {
            Some(&i) => out[i].new = c.new.clone(),
            None => {
                at.insert((c.table.as_str(), c.uuid), out.len());
                out.push(c.clone());
            }
        }
    }
    out
}

/// Stores `d` in `row`, dropping it when it is the column's default (sparse rows).
fn store_column(schema: &DatabaseSchema, table: &str, row: &mut Row, c: String, d: Datum) {
    let default = schema
        .table(table)
        .and_then(|t| t.column_type(&c))
        .map(ColumnType::default_datum);
    let is_default = match &default {
        Some(def) => *def == d || (d.is_empty() && def.is_empty()),
        None => false,
    };
    if is_default {
        row.remove(&c);
    } else {
        row.insert(c, d);
    }
}

/// The `update2` diff from `old` to `new` (see `Datum::apply_diff`).
fn datum_diff(old: &Datum, new: &Datum) -> Datum {
    match (old, new) {
        (Datum::Set(o), Datum::Set(n)) => Datum::Set(o.symmetric_difference(n).cloned().collect()),
        (Datum::Map(o), Datum::Map(n)) => {
            let mut d = BTreeMap::new();
            for (k, v) in o {
                if !n.contains_key(k) {
                    d.insert(k.clone(), v.clone());
                }
            }
            for (k, v) in n {
                if o.get(k) != Some(v) {
                    d.insert(k.clone(), v.clone());
                }
            }
            Datum::Map(d)
        }
        (Datum::Set(o), Datum::Map(_)) if o.is_empty() => datum_diff(&Datum::empty_map(), new),
        (Datum::Map(_), Datum::Set(n)) if n.is_empty() => datum_diff(old, &Datum::empty_map()),
        _ => new.clone(),
    }
}

fn project(row: &Row, cols: Option<&BTreeSet<String>>) -> Value {
    Value::Object(
        row.iter()
            .filter(|(k, _)| cols.is_none_or(|c| c.contains(*k)))
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
    )
}

/// One transaction in progress: changes are applied in place and undone on failure.
struct Txn<'a> {
    db: &'a mut Database,
    /// (table, uuid, row before the first change in this transaction), first touch only.
    undo: Vec<(String, Uuid, Option<Row>)>,
    named: HashMap<String, Uuid>,
}

impl Txn<'_> {
    fn touch(&mut self, table: &str, uuid: Uuid) {
        if self.undo.iter().any(|(t, u, _)| *u == uuid && t == table) {
            return;
        }
        let before = self.db.row(table, &uuid).cloned();
        self.undo.push((table.to_owned(), uuid, before));
    }

    fn rollback(&mut self) {
        for (table, uuid, before) in self.undo.drain(..).rev() {
            let t = self.db.tables.entry(table).or_default();
            match before {
                Some(r) => {
                    t.insert(uuid, r);
                }
                None => {
                    t.remove(&uuid);
                }
            }
        }
    }

    fn changes(&mut self) -> Vec<RowChange> {
        let mut out = Vec::new();
        for (table, uuid, old) in self.undo.drain(..) {
            let new = self.db.row(&table, &uuid).cloned();
            if old != new {
                out.push(RowChange {
                    table,
                    uuid,
                    old,
                    new,
                });
            }
        }
        out
    }

    fn table_name<'v>(&self, op: &'v Value) -> Result<&'v str, OpError> {
        let t = op
            .get("table")
            .and_then(Value::as_str)
            .ok_or_else(|| OpError::syntax(format!("operation without table: {op}")))?;
        if self.db.schema.table(t).is_none() {
            return Err(OpError::new("unknown table", t));
        }
        Ok(t)
    }

    /// Parses a JSON row of `table`, resolving named uuids.
    fn parse_row(&self, table: &str, v: &Value) -> Result<Row, OpError> {
        let schema = self.db.schema.clone();
        let ts = schema
            .table(table)
            .ok_or_else(|| OpError::new("unknown table", table))?;
        if let Some(o) = v.as_object() {
            for c in o.keys() {
                if !ts.columns.contains_key(c) {
                    return Err(OpError::new(
                        "unknown column",
                        format!("{table} has no column {c}"),
                    ));
                }
            }
        }
        let row = row_from_json(v, |c| ts.column_type(c))
            .map_err(|e| OpError::syntax(format!("{table}: {e}")))?;
        row.into_iter()
            .map(|(c, d)| Ok((c, self.resolve(d)?)))
            .collect()
    }

    fn resolve(&self, d: Datum) -> Result<Datum, OpError> {
        let atom = |a: Atom| match a {
            Atom::NamedUuid(n) => self.named.get(&n).map(|u| Atom::Uuid(*u)).ok_or_else(|| {
                OpError::new(
                    "referential integrity violation",
                    format!("unknown named-uuid {n}"),
                )
            }),
            other => Ok(other),
        };
        Ok(match d {
            Datum::Set(s) => Datum::Set(s.into_iter().map(atom).collect::<Result<_, _>>()?),
            Datum::Map(m) => Datum::Map(
                m.into_iter()
                    .map(|(k, v)| Ok((atom(k)?, atom(v)?)))
                    .collect::<Result<_, OpError>>()?,
            ),
        })
    }

    fn parse_datum(&self, table: &str, column: &str, v: &Value) -> Result<Datum, OpError> {
        let ty = self.db.column_type(table, column).ok_or_else(|| {
            OpError::new("unknown column", format!("{table} has no column {column}"))
        })?;
        let d = Datum::from_json_typed(v, ty)
            .map_err(|e| OpError::syntax(format!("{table}.{column}: {e}")))?;
        self.resolve(d)
    }

    /// Rows of `table` matching the `where` of `op`.
    fn select(&self, table: &str, op: &Value) -> Result<Vec<Uuid>, OpError> {
        let conds = op
            .get("where")
            .and_then(Value::as_array)
            .ok_or_else(|| OpError::syntax(format!("operation without where: {op}")))?;
        let mut parsed = Vec::with_capacity(conds.len());
        for c in conds {
            match c.as_array().map(Vec::as_slice) {
                Some([Value::String(col), Value::String(f), v]) => {
                    parsed.push((col.as_str(), f.as_str(), self.parse_datum(table, col, v)?));
                }
                _ => return Err(OpError::syntax(format!("bad condition {c}"))),
            }
        }
        // Fast path: `_uuid == X` first.
        if let Some((_, _, d)) = parsed.iter().find(|(c, f, _)| *c == "_uuid" && *f == "==") {
            let Some(Atom::Uuid(u)) = d.as_scalar() else {
                return Ok(Vec::new());
            };
            let Some(row) = self.db.row(table, u) else {
                return Ok(Vec::new());
            };
            return Ok(if self.matches(table, u, row, &parsed)? {
                vec![*u]
            } else {
                Vec::new()
            });
        }
        let mut out = Vec::new();
        for (u, row) in self.db.table(table) {
            if self.matches(table, u, row, &parsed)? {
                out.push(*u);
            }
        }
        Ok(out)
    }

    fn matches(
        &self,
        table: &str,
        uuid: &Uuid,
        row: &Row,
        conds: &[(&str, &str, Datum)],
    ) -> Result<bool, OpError> {
        for (col, f, want) in conds {
            let have = if *col == "_uuid" {
                Datum::uuid(*uuid)
            } else {
                self.db.get(table, row, col)
            };
            let ok = match *f {
                "==" => have == *want,
                "!=" => have != *want,
                "includes" => includes(&have, want),
                "excludes" => excludes(&have, want),
                "<" | "<=" | ">" | ">=" => {
                    let (Some(a), Some(b)) = (have.as_scalar(), want.as_scalar()) else {
                        return Err(OpError::syntax(format!("{f} on a non-scalar column {col}")));
                    };
                    let ord = match (a, b) {
                        (Atom::Integer(x), Atom::Integer(y)) => x.cmp(y),
                        (Atom::Real(x), Atom::Real(y)) => {
                            x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal)
                        }
                        _ => return Err(OpError::syntax(format!("{f} on column {col}"))),
                    };
                    match *f {
                        "<" => ord.is_lt(),
                        "<=" => ord.is_le(),
                        ">" => ord.is_gt(),
                        _ => ord.is_ge(),
                    }
                }
                other => return Err(OpError::syntax(format!("unknown function {other}"))),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn execute(&mut self, op: &Value) -> Result<Value, OpError> {
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| OpError::syntax(format!("operation without op: {op}")))?;
        match name {
            "insert" => {
                let table = self.table_name(op)?.to_owned();
                let row = self.parse_row(&table, op.get("row").unwrap_or(&json!({})))?;
                let uuid = match op.get("uuid-name").and_then(Value::as_str) {
                    Some(n) => self.named.get(n).copied().unwrap_or_else(Uuid::new_v4),
                    None => Uuid::new_v4(),
                };
                if self.db.row(&table, &uuid).is_some() {
                    return Err(OpError::new("duplicate uuid", uuid.to_string()));
                }
                self.touch(&table, uuid);
                let schema = self.db.schema.clone();
                let mut stored = Row::new();
                for (c, d) in row {
                    store_column(&schema, &table, &mut stored, c, d);
                }
                self.db
                    .tables
                    .entry(table)
                    .or_default()
                    .insert(uuid, stored);
                Ok(json!({"uuid": ["uuid", uuid.to_string()]}))
            }
            "select" => {
                let table = self.table_name(op)?.to_owned();
                let cols: Option<Vec<String>> =
                    op.get("columns").and_then(Value::as_array).map(|c| {
                        c.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    });
                let mut rows = Vec::new();
                for u in self.select(&table, op)? {
                    rows.push(self.full_row(&table, &u, cols.as_deref()));
                }
                Ok(json!({"rows": rows}))
            }
            "update" => {
                let table = self.table_name(op)?.to_owned();
                let row = self.parse_row(&table, op.get("row").unwrap_or(&json!({})))?;
                let uuids = self.select(&table, op)?;
                let schema = self.db.schema.clone();
                for u in &uuids {
                    self.touch(&table, *u);
                    if let Some(r) = self.db.tables.get_mut(&table).and_then(|t| t.get_mut(u)) {
                        for (c, d) in &row {
                            store_column(&schema, &table, r, c.clone(), d.clone());
                        }
                    }
                }
                Ok(json!({"count": uuids.len()}))
            }
            "mutate" => {
                let table = self.table_name(op)?.to_owned();
                let muts = op
                    .get("mutations")
                    .and_then(Value::as_array)
                    .ok_or_else(|| OpError::syntax("mutate without mutations"))?;
                let mut parsed = Vec::new();
                for m in muts {
                    match m.as_array().map(Vec::as_slice) {
                        Some([Value::String(col), Value::String(mutator), v]) => {
                            parsed.push((
                                col.clone(),
                                mutator.clone(),
                                self.mutation_arg(&table, col, mutator, v)?,
                            ));
                        }
                        _ => return Err(OpError::syntax(format!("bad mutation {m}"))),
                    }
                }
                let uuids = self.select(&table, op)?;
                let schema = self.db.schema.clone();
                for u in &uuids {
                    self.touch(&table, *u);
                    for (col, mutator, arg) in &parsed {
                        let cur = match self.db.row(&table, u) {
                            Some(r) => self.db.get(&table, r, col),
                            None => continue,
                        };
                        let new = mutate(&cur, mutator, arg)?;
                        if let Some(r) = self.db.tables.get_mut(&table).and_then(|t| t.get_mut(u)) {
                            store_column(&schema, &table, r, col.clone(), new);
                        }
                    }
                }
                Ok(json!({"count": uuids.len()}))
            }
            "delete" => {
                let table = self.table_name(op)?.to_owned();
                let uuids = self.select(&table, op)?;
                for u in &uuids {
                    self.touch(&table, *u);
                    if let Some(t) = self.db.tables.get_mut(&table) {
                        t.remove(u);
                    }
                }
                Ok(json!({"count": uuids.len()}))
            }
            "wait" => {
                let table = self.table_name(op)?.to_owned();
                let cols: Vec<String> = op
                    .get("columns")
                    .and_then(Value::as_array)
                    .ok_or_else(|| OpError::syntax("wait without columns"))?
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect();
                let until = op.get("until").and_then(Value::as_str).unwrap_or("==");
                let want: Vec<Row> = op
                    .get("rows")
                    .and_then(Value::as_array)
                    .ok_or_else(|| OpError::syntax("wait without rows"))?
                    .iter()
                    .map(|r| self.parse_row(&table, r))
                    .collect::<Result<_, _>>()?;
                let mut have: Vec<Vec<Datum>> = Vec::new();
                for u in self.select(&table, op)? {
                    if let Some(r) = self.db.row(&table, &u) {
                        have.push(cols.iter().map(|c| self.db.get(&table, r, c)).collect());
                    }
                }
                let mut want: Vec<Vec<Datum>> = want
                    .iter()
                    .map(|r| {
                        cols.iter()
                            .map(|c| {
                                r.get(c).cloned().unwrap_or_else(|| {
                                    self.db
                                        .column_type(&table, c)
                                        .map(ColumnType::default_datum)
                                        .unwrap_or_default()
                                })
                            })
                            .collect()
                    })
                    .collect();
                have.sort();
                want.sort();
                let equal = have == want;
                if (until == "==") == equal {
                    Ok(json!({}))
                } else {
                    Err(OpError::new(
                        "timed out",
                        format!("wait {until} on {table} not satisfied"),
                    ))
                }
            }
            "comment" | "commit" | "assert" => Ok(json!({})),
            "abort" => Err(OpError::new("aborted", "aborted by request")),
            other => Err(OpError::syntax(format!("unknown operation {other}"))),
        }
    }

    fn mutation_arg(
        &self,
        table: &str,
        col: &str,
        mutator: &str,
        v: &Value,
    ) -> Result<Datum, OpError> {
        let ty = self
            .db
            .column_type(table, col)
            .ok_or_else(|| OpError::new("unknown column", format!("{table} has no column {col}")))?
            .clone();
        // Map delete takes a set of keys or a map; set ops take a set of elements.
        let arg_ty = match (mutator, &ty.value) {
            ("delete", Some(_))
                if !v
                    .as_array()
                    .is_some_and(|a| a.first() == Some(&json!("map"))) =>
            {
                ColumnType {
                    key: ty.key.clone(),
                    value: None,
                    min: 0,
                    max: None,
                }
            }
            _ => ColumnType {
                min: 0,
                max: None,
                ..ty
            },
        };
        let d = Datum::from_json_typed(v, &arg_ty)
            .map_err(|e| OpError::syntax(format!("{table}.{col} mutation: {e}")))?;
        self.resolve(d)
    }

    fn full_row(&self, table: &str, uuid: &Uuid, cols: Option<&[String]>) -> Value {
        let mut o = Map::new();
        let Some(row) = self.db.row(table, uuid) else {
            return Value::Object(o);
        };
        let all: Vec<String> = match cols {
            Some(c) => c.to_vec(),
            None => {
                let mut v: Vec<String> = self
                    .db
                    .schema
                    .table(table)
                    .map(|t| t.columns.keys().cloned().collect())
                    .unwrap_or_default();
                v.push("_uuid".into());
                v
            }
        };
        for c in all {
            let d = if c == "_uuid" {
                Datum::uuid(*uuid)
            } else {
                self.db.get(table, row, &c)
            };
            o.insert(c, d.to_json());
        }
        Value::Object(o)
    }

    /// Commit-time checks: strong references must point at existing rows; non-root rows
    /// that nothing references any more are garbage-collected; column sizes respected.
    fn finish(&mut self) -> Result<(), OpError> {
        let schema = self.db.schema.clone();
        // Referential integrity for rows touched by this transaction.
        let touched: Vec<(String, Uuid)> =
            self.undo.iter().map(|(t, u, _)| (t.clone(), *u)).collect();
        for (table, uuid) in &touched {
            let Some(row) = self.db.row(table, uuid) else {
                continue;
            };
            let Some(ts) = schema.table(table) else {
                continue;
            };
            for (col, d) in row {
                let Some(cs) = ts.columns.get(col) else {
                    continue;
                };
                let n = d.len() as u64;
                if n < cs.ty.min || cs.ty.max.is_some_and(|m| n > m) {
                    return Err(OpError::new(
                        "constraint violation",
                        format!("{table}.{col} has {n} elements"),
                    ));
                }
                for (base, atoms) in ref_atoms(&cs.ty, d) {
                    if base.1 != RefType::Strong {
                        continue;
                    }
                    for u in atoms {
                        if self.db.row(base.0, &u).is_none() {
                            return Err(OpError::new(
                                "referential integrity violation",
                                format!("{table}.{col} refers to missing {} row {u}", base.0),
                            ));
                        }
                    }
                }
            }
        }
        if touched.is_empty() {
            return Ok(());
        }
        // Garbage collection: everything reachable from root rows stays.
        loop {
            let mut referenced: BTreeSet<(String, Uuid)> = BTreeSet::new();
            for (tname, rows) in &self.db.tables {
                let Some(ts) = schema.table(tname) else {
                    continue;
                };
                for row in rows.values() {
                    for (col, d) in row {
                        let Some(cs) = ts.columns.get(col) else {
                            continue;
                        };
                        for (base, atoms) in ref_atoms(&cs.ty, d) {
                            for u in atoms {
                                referenced.insert((base.0.to_owned(), u));
                            }
                        }
                    }
                }
            }
            let mut garbage = Vec::new();
            for (tname, rows) in &self.db.tables {
                if is_root(&schema, tname) {
                    continue;
                }
                for u in rows.keys() {
                    if !referenced.contains(&(tname.clone(), *u)) {
                        garbage.push((tname.clone(), *u));
                    }
                }
            }
            if garbage.is_empty() {
                return Ok(());
            }
            for (t, u) in garbage {
                self.touch(&t, u);
                if let Some(rows) = self.db.tables.get_mut(&t) {
                    rows.remove(&u);
                }
            }
        }
    }
}

/// The uuids a datum refers to, with the referenced table and ref type, for the key and
/// value parts of its column type.
fn ref_atoms<'t>(ty: &'t ColumnType, d: &Datum) -> Vec<((&'t str, RefType), Vec<Uuid>)> {
    let mut out = Vec::new();
    let uuids = |atoms: &mut dyn Iterator<Item = &Atom>| -> Vec<Uuid> {
        atoms.filter_map(Atom::as_uuid).collect()
    };
    if let Some(t) = &ty.key.ref_table {
        let list = match d {
            Datum::Set(s) => uuids(&mut s.iter()),
            Datum::Map(m) => uuids(&mut m.keys()),
        };
        out.push(((t.as_str(), ty.key.ref_type), list));
    }
    if let Some(v) = &ty.value
        && let Some(t) = &v.ref_table
        && let Datum::Map(m) = d
    {
        out.push(((t.as_str(), v.ref_type), uuids(&mut m.values())));
    }
    out
}

fn includes(have: &Datum, want: &Datum) -> bool {
    match (have, want) {
        (Datum::Set(h), Datum::Set(w)) => w.is_subset(h),
        (Datum::Map(h), Datum::Map(w)) => w.iter().all(|(k, v)| h.get(k) == Some(v)),
        (_, w) => w.is_empty(),
    }
}

fn excludes(have: &Datum, want: &Datum) -> bool {
    match (have, want) {
        (Datum::Set(h), Datum::Set(w)) => h.is_disjoint(w),
        (Datum::Map(h), Datum::Map(w)) => w.iter().all(|(k, v)| h.get(k) != Some(v)),
        _ => true,
    }
}

fn mutate(cur: &Datum, mutator: &str, arg: &Datum) -> Result<Datum, OpError> {
    match (mutator, cur, arg) {
        ("insert", Datum::Set(c), Datum::Set(a)) => Ok(Datum::Set(c.union(a).cloned().collect())),
        ("insert", Datum::Map(c), Datum::Map(a)) => {
            let mut m = c.clone();
            for (k, v) in a {
                m.entry(k.clone()).or_insert_with(|| v.clone());
            }
            Ok(Datum::Map(m))
        }
        ("insert", Datum::Set(c), Datum::Map(_)) if c.is_empty() => {
            mutate(&Datum::empty_map(), mutator, arg)
        }
        ("delete", Datum::Set(c), Datum::Set(a)) => {
            Ok(Datum::Set(c.difference(a).cloned().collect()))
        }
        ("delete", Datum::Map(c), Datum::Set(keys)) => {
            let mut m = c.clone();
            for k in keys {
                m.remove(k);
            }
            Ok(Datum::Map(m))
        }
        ("delete", Datum::Map(c), Datum::Map(pairs)) => {
            let mut m = c.clone();
            for (k, v) in pairs {
                if m.get(k) == Some(v) {
                    m.remove(k);
                }
            }
            Ok(Datum::Map(m))
        }
        ("delete", Datum::Set(c), Datum::Map(_)) if c.is_empty() => Ok(cur.clone()),
        ("+=" | "-=" | "*=" | "/=" | "%=", Datum::Set(c), _) => {
            let Some(Atom::Integer(by)) = arg.as_scalar() else {
                return Err(OpError::syntax(format!("{mutator} needs an integer")));
            };
            let mut out = BTreeSet::new();
            for a in c {
                let Atom::Integer(x) = a else {
                    return Err(OpError::syntax(format!(
                        "{mutator} on a non-integer column"
                    )));
                };
                let v = match mutator {
                    "+=" => x.checked_add(*by),
                    "-=" => x.checked_sub(*by),
                    "*=" => x.checked_mul(*by),
                    "/=" => x.checked_div(*by),
                    _ => x.checked_rem(*by),
                };
                let v =
                    v.ok_or_else(|| OpError::new("range error", format!("{x} {mutator} {by}")))?;
                out.insert(Atom::Integer(v));
            }
            Ok(Datum::Set(out))
        }
        _ => Err(OpError::syntax(format!(
            "mutator {mutator} does not apply to {cur}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn schema() -> std::sync::Arc<DatabaseSchema> {
        crate::load_schema().expect("vswitch.ovsschema (Open vSwitch must be installed)")
    }

    /// A row inserted and then changed before the monitor hears of it is one insert with
    /// the final contents (weftd's replica rejects a modify of a row it does not have).
    #[test]
    fn insert_then_modify_is_reported_as_one_insert() {
        let mut db = Database::new(schema());
        db.monitor(
            &json!(["Open_vSwitch", "m", {"Interface": {"columns": ["name", "ofport"]}}]),
            true,
        )
        .unwrap();
        let u = Uuid::new_v4();
        let mut ch = vec![db.insert_row(
            "Interface",
            u,
            Row::from([("name".into(), Datum::scalar("vm1"))]),
        )];
        ch.extend(db.set_columns(
            "Interface",
            u,
            Row::from([("ofport".into(), Datum::scalar(7i64))]),
        ));
        assert_eq!(ch.len(), 2);
        let notes = db.notifications(&ch);
        assert_eq!(
            notes[0].1[1]["Interface"][u.to_string()],
            json!({"insert": {"name": "vm1", "ofport": 7}})
        );
    }

    #[test]
    fn insert_named_mutate_gc_and_update2() {
        let mut db = Database::new(schema());
        let root = Uuid::new_v4();
        db.insert_row("Open_vSwitch", root, Row::new());
        let init = db
            .monitor(&json!(["Open_vSwitch", "m", {"Bridge": {}, "Port": {}, "Interface": {"columns": ["name", "external_ids"]}}]), true)
            .unwrap();
        assert_eq!(init, json!({}));
        let (r, ch) = db.transact(&json!(["Open_vSwitch",
            {"op": "insert", "table": "Interface", "row": {"name": "br-int", "type": "internal"}, "uuid-name": "i"},
            {"op": "insert", "table": "Port", "row": {"name": "br-int", "interfaces": ["named-uuid", "i"]}, "uuid-name": "p"},
            {"op": "insert", "table": "Bridge", "row": {"name": "br-int", "ports": ["named-uuid", "p"]}, "uuid-name": "b"},
            {"op": "mutate", "table": "Open_vSwitch", "where": [["_uuid", "==", ["uuid", root.to_string()]]],
             "mutations": [["bridges", "insert", ["set", [["named-uuid", "b"]]]]]}
        ]));
        assert_eq!(r.as_array().unwrap().len(), 4, "{r}");
        assert!(r[0]["uuid"].is_array(), "{r}");
        assert_eq!(r[3]["count"], 1);
        assert_eq!(ch.len(), 4);
        let notes = db.notifications(&ch);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].0, "update2");
        let iface = r[0]["uuid"][1].as_str().unwrap().to_owned();
        assert_eq!(
            notes[0].1[1]["Interface"][&iface]["insert"],
            json!({"name": "br-int"})
        );

        // A map key set and the monitor sees a diff.
        let (r, ch) = db.transact(&json!(["Open_vSwitch",
            {"op": "mutate", "table": "Interface", "where": [["name", "==", "br-int"]],
             "mutations": [["external_ids", "delete", ["set", ["k"]]], ["external_ids", "insert", ["map", [["k", "v"]]]]]}]));
        assert_eq!(r[0]["count"], 1, "{r}");
        let notes = db.notifications(&ch);
        assert_eq!(
            notes[0].1[1]["Interface"][&iface]["modify"],
            json!({"external_ids": ["map", [["k", "v"]]]})
        );

        // A failed wait rolls everything back.
        let (r, ch) = db.transact(&json!(["Open_vSwitch",
            {"op": "delete", "table": "Interface", "where": []},
            {"op": "wait", "table": "Bridge", "where": [], "columns": ["name"], "until": "==", "rows": [{"name": "other"}], "timeout": 0}]));
        assert!(ch.is_empty());
        assert_eq!(r[1]["error"], "timed out", "{r}");
        assert_eq!(db.table("Interface").count(), 1);

        // Removing the bridge from the root garbage-collects bridge, port and interface.
        let (r, ch) = db.transact(&json!(["Open_vSwitch",
            {"op": "update", "table": "Open_vSwitch", "where": [], "row": {"bridges": ["set", []]}}]));
        assert_eq!(r[0]["count"], 1, "{r}");
        assert_eq!(ch.len(), 4);
        assert_eq!(db.table("Port").count(), 0);
        assert_eq!(db.table("Interface").count(), 0);
    }

    #[test]
    fn referential_integrity() {
        let mut db = Database::new(schema());
        let (r, ch) = db.transact(&json!(["Open_vSwitch",
            {"op": "insert", "table": "Port", "row": {"name": "p", "interfaces": ["uuid", Uuid::new_v4().to_string()]}}]));
        assert!(ch.is_empty());
        let last = r
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|v| !v.is_null())
            .unwrap()
            .clone();
        assert_eq!(last["error"], "referential integrity violation", "{r}");
    }
}
