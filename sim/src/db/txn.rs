//! `transact` on the simulated database: each operation (insert with uuid-name, select,
//! update, mutate, delete, wait, comment, commit, abort, assert) applied in place with its
//! `where` conditions and named-uuid references, then referential integrity and garbage
//! collection of unreferenced non-root rows, all undone if any step fails.

use std::collections::{BTreeSet, HashMap};

use ovsdb::datum::row_from_json;
use ovsdb::schema::{ColumnType, RefType};
use ovsdb::{Atom, Datum, Row, Uuid};
use serde_json::{Map, Value, json};

use super::datum_ops::{excludes, includes, mutate};
use super::{Database, OpError, RowChange, is_root, store_column};

impl Database {
    /// Executes a `transact` request's params (`[db, op, op, ...]`). Returns the reply
    /// (`result` array) and, when it committed, the row changes.
    pub fn transact(&mut self, params: &Value) -> (Value, Vec<RowChange>) {
        self.writes = super::next_stamp();
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
                            store_column(&schema, &table, r, col.as_str().into(), new);
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
                                r.get(c.as_str()).cloned().unwrap_or_else(|| {
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
                let Some(cs) = ts.columns.get(&**col) else {
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
                        let Some(cs) = ts.columns.get(&**col) else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::vswitch_schema as schema;

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
