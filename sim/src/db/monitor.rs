//! Monitors on the simulated database: registering one (`monitor`, `monitor_cond`) with
//! its initial contents, and turning committed row changes into the `update` or `update2`
//! notifications each monitor asked for.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ovsdb::schema::ColumnType;
use ovsdb::{Datum, Row, Uuid};
use serde_json::{Map, Value, json};

use super::{Database, OpError, RowChange};

/// A monitor registered by `monitor` or `monitor_cond`.
#[derive(Debug, Clone)]
pub(super) struct Monitor {
    /// The connection that registered it (ids are per connection, as in ovsdb-server).
    pub(super) session: u64,
    /// The node's change sequence number when it was registered: its initial contents
    /// already hold the changes numbered up to this.
    since: u64,
    id: Value,
    /// true: `update2` notifications (monitor_cond); false: `update` (monitor).
    update2: bool,
    /// table → monitored columns (`None`: all).
    tables: BTreeMap<String, Option<BTreeSet<String>>>,
}

impl Database {
    /// Registers a monitor (`monitor` when `update2` is false, `monitor_cond` otherwise)
    /// and returns the initial contents in the matching format.
    pub fn monitor(&mut self, params: &Value, update2: bool) -> Result<Value, OpError> {
        self.monitor_in(0, 0, params, update2)
    }

    /// [`Database::monitor`] for connection `session` of several, registered when the
    /// node's change sequence number is `since`.
    pub fn monitor_in(
        &mut self,
        session: u64,
        since: u64,
        params: &Value,
        update2: bool,
    ) -> Result<Value, OpError> {
        let (db, id, reqs) = match params.as_array().map(Vec::as_slice) {
            Some([db, id, reqs, ..]) => (db, id, reqs),
            _ => return Err(OpError::syntax(format!("bad monitor params {params}"))),
        };
        if db.as_str() != Some(self.schema.name.as_str()) {
            return Err(OpError::new("unknown database", db.to_string()));
        }
        if self
            .monitors
            .iter()
            .any(|m| m.session == session && m.id == *id)
        {
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
            session,
            since,
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

    /// Whether connection `session` monitors `table` (any of its monitors).
    pub fn monitors_table(&self, session: u64, table: &str) -> bool {
        self.monitors
            .iter()
            .any(|m| m.session == session && m.tables.contains_key(table))
    }

    pub fn monitor_cancel(&mut self, id: &Value) -> bool {
        self.monitor_cancel_in(0, id)
    }

    /// [`Database::monitor_cancel`] for connection `session`.
    pub fn monitor_cancel_in(&mut self, session: u64, id: &Value) -> bool {
        let before = self.monitors.len();
        self.monitors
            .retain(|m| !(m.session == session && m.id == *id));
        self.monitors.len() != before
    }

    /// The notifications (`(method, params)`) that report `changes` to the monitors.
    pub fn notifications(&self, changes: &[RowChange]) -> Vec<(&'static str, Value)> {
        self.notify(None, changes)
    }

    /// The notifications for connection `session`'s monitors only, of changes numbered
    /// `seq`: monitors registered since then already hold them.
    pub fn notifications_for(
        &self,
        session: u64,
        seq: u64,
        changes: &[RowChange],
    ) -> Vec<(&'static str, Value)> {
        self.notify(Some((session, seq)), changes)
    }

    fn notify(
        &self,
        only: Option<(u64, u64)>,
        changes: &[RowChange],
    ) -> Vec<(&'static str, Value)> {
        let changes = coalesce(changes);
        let mut out = Vec::new();
        for m in self
            .monitors
            .iter()
            .filter(|m| only.is_none_or(|(s, seq)| s == m.session && m.since < seq))
        {
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
                let changed: Vec<&str> = old
                    .keys()
                    .chain(new.keys())
                    .map(|k| &**k)
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
                        diff.insert(k.to_owned(), d.to_json());
                    }
                    Some(json!({"modify": diff}))
                } else {
                    let mut olds = Map::new();
                    for k in changed {
                        olds.insert(k.to_owned(), self.get(&c.table, old, k).to_json());
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

/// The `update2` diff from `old` to `new` (see `Datum::apply_diff`).
fn datum_diff(old: &Datum, new: &Datum) -> Datum {
    match (old, new) {
        (Datum::Set(o), Datum::Set(n)) => Datum::Set(
            o.iter()
                .filter(|x| !n.contains(x))
                .chain(n.iter().filter(|x| !o.contains(x)))
                .cloned()
                .collect(),
        ),
        (Datum::Map(o), Datum::Map(n)) => {
            let mut d = ovsdb::datum::AtomMap::new();
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
            .filter(|(k, _)| cols.is_none_or(|c| c.contains(&**k as &str)))
            .map(|(k, v)| (k.to_string(), v.to_json()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::vswitch_schema as schema;

    /// Two connections each with a monitor of the same id: each is told only through its
    /// own session, and a monitor registered after a change was numbered already holds it.
    #[test]
    fn monitors_are_per_session_and_skip_changes_they_started_with() {
        let mut db = Database::new(schema());
        let req = json!(["Open_vSwitch", "m", {"Interface": {"columns": ["name"]}}]);
        db.monitor_in(1, 0, &req, true).unwrap();
        let u = Uuid::new_v4();
        let ch = vec![db.insert_row(
            "Interface",
            u,
            Row::from([("name".into(), Datum::scalar("vm1"))]),
        )];
        // Session 2 registers after change 1: its initial contents hold vm1.
        let initial = db.monitor_in(2, 1, &req, true).unwrap();
        assert!(initial["Interface"].get(u.to_string()).is_some());
        assert_eq!(db.notifications_for(1, 1, &ch).len(), 1);
        assert!(db.notifications_for(2, 1, &ch).is_empty());
        assert!(db.notifications_for(3, 1, &ch).is_empty());
        // A later change reaches both.
        let ch2 = db
            .set_columns(
                "Interface",
                u,
                Row::from([("name".into(), Datum::scalar("vm2"))]),
            )
            .into_iter()
            .collect::<Vec<_>>();
        assert_eq!(db.notifications_for(2, 2, &ch2).len(), 1);
        db.clear_monitors_of(1);
        assert!(db.notifications_for(1, 2, &ch2).is_empty());
        assert_eq!(db.notifications_for(2, 2, &ch2).len(), 1);
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
}
