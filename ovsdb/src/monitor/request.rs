//! What a client asks a server to monitor: per-table [`MonitorRequest`]s, the
//! [`UpdateFormat`] the server answers in, and the params of the `monitor` or
//! `monitor_cond` request built from them.

use serde_json::{Map, Value, json};

use crate::ops::Condition;

/// Which notification format a monitor produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateFormat {
    /// `monitor`: `update` notifications, rows as `{"old": .., "new": ..}`.
    Update,
    /// `monitor_cond`: `update2` notifications, rows as `{"initial"|"insert"|"modify"|"delete": ..}`.
    Update2,
}

impl UpdateFormat {
    pub fn method(self) -> &'static str {
        match self {
            UpdateFormat::Update => "monitor",
            UpdateFormat::Update2 => "monitor_cond",
        }
    }
    pub fn notification(self) -> &'static str {
        match self {
            UpdateFormat::Update => "update",
            UpdateFormat::Update2 => "update2",
        }
    }
}

/// Which kinds of change a monitor reports (all by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorSelect {
    pub initial: bool,
    pub insert: bool,
    pub delete: bool,
    pub modify: bool,
}

impl Default for MonitorSelect {
    fn default() -> Self {
        MonitorSelect {
            initial: true,
            insert: true,
            delete: true,
            modify: true,
        }
    }
}

/// What to monitor in one table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MonitorRequest {
    pub table: String,
    /// `None`: every column.
    pub columns: Option<Vec<String>>,
    /// Only for `monitor_cond`; plain `monitor` always sends every row.
    pub conditions: Option<Vec<Condition>>,
    pub select: MonitorSelect,
}

impl MonitorRequest {
    /// All rows and columns of `table`.
    pub fn table(table: &str) -> MonitorRequest {
        MonitorRequest {
            table: table.to_owned(),
            ..MonitorRequest::default()
        }
    }
    pub fn columns(mut self, columns: &[&str]) -> MonitorRequest {
        self.columns = Some(columns.iter().map(|c| (*c).to_owned()).collect());
        self
    }
}

/// The params of a `monitor` or `monitor_cond` request.
pub fn monitor_params(
    database: &str,
    monitor_id: &Value,
    requests: &[MonitorRequest],
    format: UpdateFormat,
) -> Value {
    let mut tables = Map::new();
    for r in requests {
        let mut o = Map::new();
        if let Some(c) = &r.columns {
            o.insert("columns".into(), json!(c));
        }
        if format == UpdateFormat::Update2
            && let Some(cond) = &r.conditions
        {
            o.insert(
                "where".into(),
                Value::Array(cond.iter().map(Condition::to_json).collect()),
            );
        }
        let s = r.select;
        o.insert(
            "select".into(),
            json!({"initial": s.initial, "insert": s.insert, "delete": s.delete, "modify": s.modify}),
        );
        tables.insert(r.table.clone(), Value::Array(vec![Value::Object(o)]));
    }
    json!([database, monitor_id, tables])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_shape() {
        let p = monitor_params(
            "db",
            &json!("m1"),
            &[MonitorRequest::table("T").columns(&["name"])],
            UpdateFormat::Update2,
        );
        assert_eq!(
            p,
            json!(["db", "m1", {"T": [{"columns": ["name"], "select": {"initial": true, "insert": true, "delete": true, "modify": true}}]}])
        );
    }
}
