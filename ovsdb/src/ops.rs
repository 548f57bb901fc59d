//! Database operations (RFC 7047 §5.2), conditions, mutations, a transaction builder that
//! produces the `transact` parameters, and the parser for its per-operation results.
//!
//! OVSDB transactions are all-or-nothing: if any operation fails, the server rolls back
//! everything and the result array holds an error at that operation's index (or one extra
//! element when a constraint fails at commit). [`Transaction::parse_reply`] turns that into
//! a [`TransactionError`] that names the index, the operation and the server's error.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::datum::{Datum, DatumError, Row, row_from_json, row_to_json};

/// Comparison functions of a condition (RFC 7047 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Includes,
    Excludes,
}

impl Function {
    pub fn as_str(self) -> &'static str {
        match self {
            Function::Eq => "==",
            Function::Ne => "!=",
            Function::Lt => "<",
            Function::Le => "<=",
            Function::Gt => ">",
            Function::Ge => ">=",
            Function::Includes => "includes",
            Function::Excludes => "excludes",
        }
    }
}

/// `[column, function, value]`: rows match when all conditions hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub column: String,
    pub function: Function,
    pub value: Datum,
}

impl Condition {
    pub fn new(column: &str, function: Function, value: Datum) -> Condition {
        Condition {
            column: column.to_owned(),
            function,
            value,
        }
    }
    /// `column == value`.
    pub fn eq(column: &str, value: Datum) -> Condition {
        Condition::new(column, Function::Eq, value)
    }
    /// `_uuid == uuid`: the usual way to address one row.
    pub fn uuid(uuid: Uuid) -> Condition {
        Condition::eq("_uuid", Datum::uuid(uuid))
    }
    pub fn to_json(&self) -> Value {
        json!([self.column, self.function.as_str(), self.value.to_json()])
    }
}

/// Mutators (RFC 7047 §5.1): arithmetic on integer/real columns, insert/delete on sets and
/// maps. Deleting from a map takes either a map (key and value must match) or a set of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutator {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Insert,
    Delete,
}

impl Mutator {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutator::Add => "+=",
            Mutator::Sub => "-=",
            Mutator::Mul => "*=",
            Mutator::Div => "/=",
            Mutator::Mod => "%=",
            Mutator::Insert => "insert",
            Mutator::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub column: String,
    pub mutator: Mutator,
    pub value: Datum,
}

impl Mutation {
    pub fn new(column: &str, mutator: Mutator, value: Datum) -> Mutation {
        Mutation {
            column: column.to_owned(),
            mutator,
            value,
        }
    }
    pub fn insert(column: &str, value: Datum) -> Mutation {
        Mutation::new(column, Mutator::Insert, value)
    }
    pub fn delete(column: &str, value: Datum) -> Mutation {
        Mutation::new(column, Mutator::Delete, value)
    }
    pub fn to_json(&self) -> Value {
        json!([self.column, self.mutator.as_str(), self.value.to_json()])
    }
}

/// `wait`'s `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitUntil {
    Eq,
    Ne,
}

/// One database operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Insert {
        table: String,
        row: Row,
        uuid_name: Option<String>,
    },
    Select {
        table: String,
        conditions: Vec<Condition>,
        columns: Option<Vec<String>>,
    },
    Update {
        table: String,
        conditions: Vec<Condition>,
        row: Row,
    },
    Mutate {
        table: String,
        conditions: Vec<Condition>,
        mutations: Vec<Mutation>,
    },
    Delete {
        table: String,
        conditions: Vec<Condition>,
    },
    /// Optimistic concurrency: fails the transaction unless the selected rows' `columns`
    /// equal (`until == Eq`) `rows`, waiting up to `timeout_ms` (0: check once).
    Wait {
        table: String,
        conditions: Vec<Condition>,
        columns: Vec<String>,
        until: WaitUntil,
        rows: Vec<Row>,
        timeout_ms: Option<u64>,
    },
    Commit {
        durable: bool,
    },
    Abort,
    Comment {
        comment: String,
    },
    Assert {
        lock: String,
    },
}

fn conditions_json(c: &[Condition]) -> Value {
    Value::Array(c.iter().map(Condition::to_json).collect())
}

impl Operation {
    pub fn op_name(&self) -> &'static str {
        match self {
            Operation::Insert { .. } => "insert",
            Operation::Select { .. } => "select",
            Operation::Update { .. } => "update",
            Operation::Mutate { .. } => "mutate",
            Operation::Delete { .. } => "delete",
            Operation::Wait { .. } => "wait",
            Operation::Commit { .. } => "commit",
            Operation::Abort => "abort",
            Operation::Comment { .. } => "comment",
            Operation::Assert { .. } => "assert",
        }
    }

    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("op".into(), json!(self.op_name()));
        match self {
            Operation::Insert {
                table,
                row,
                uuid_name,
            } => {
                o.insert("table".into(), json!(table));
                o.insert("row".into(), row_to_json(row));
                if let Some(n) = uuid_name {
                    o.insert("uuid-name".into(), json!(n));
                }
            }
            Operation::Select {
                table,
                conditions,
                columns,
            } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), conditions_json(conditions));
                if let Some(c) = columns {
                    o.insert("columns".into(), json!(c));
                }
            }
            Operation::Update {
                table,
                conditions,
                row,
            } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), conditions_json(conditions));
                o.insert("row".into(), row_to_json(row));
            }
            Operation::Mutate {
                table,
                conditions,
                mutations,
            } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), conditions_json(conditions));
                o.insert(
                    "mutations".into(),
                    Value::Array(mutations.iter().map(Mutation::to_json).collect()),
                );
            }
            Operation::Delete { table, conditions } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), conditions_json(conditions));
            }
            Operation::Wait {
                table,
                conditions,
                columns,
                until,
                rows,
                timeout_ms,
            } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), conditions_json(conditions));
                o.insert("columns".into(), json!(columns));
                o.insert(
                    "until".into(),
                    json!(match until {
                        WaitUntil::Eq => "==",
                        WaitUntil::Ne => "!=",
                    }),
                );
                o.insert(
                    "rows".into(),
                    Value::Array(rows.iter().map(row_to_json).collect()),
                );
                if let Some(t) = timeout_ms {
                    o.insert("timeout".into(), json!(t));
                }
            }
            Operation::Commit { durable } => {
                o.insert("durable".into(), json!(durable));
            }
            Operation::Abort => {}
            Operation::Comment { comment } => {
                o.insert("comment".into(), json!(comment));
            }
            Operation::Assert { lock } => {
                o.insert("lock".into(), json!(lock));
            }
        }
        Value::Object(o)
    }
}

/// The result of one successful operation.
#[derive(Debug, Clone, PartialEq)]
pub enum OperationResult {
    /// `insert`: the new row's uuid.
    Inserted(Uuid),
    /// `update`, `mutate`, `delete`: how many rows matched.
    Count(u64),
    /// `select`: the rows (columns untyped: the transaction does not know the schema).
    Rows(Vec<Row>),
    /// `wait`, `commit`, `comment`, `assert`, `abort`: an empty object.
    Empty,
}

/// Why a transaction did not commit, or its reply could not be understood.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransactionError {
    /// An operation failed; the whole transaction was rolled back. `index` equals the
    /// number of operations when the failure is a commit-time constraint check.
    #[error("transaction failed at operation {index} ({op}): {error}{}", details.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    OperationFailed {
        index: usize,
        op: &'static str,
        error: String,
        details: Option<String>,
    },
    #[error("malformed transact reply: {0}")]
    MalformedReply(String),
    #[error("malformed row in transact reply: {0}")]
    Datum(#[from] DatumError),
}

/// A successful transaction's results, one per operation, plus the uuids of rows inserted
/// with a `uuid-name`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransactionOutcome {
    pub results: Vec<OperationResult>,
    pub named_uuids: BTreeMap<String, Uuid>,
}

impl TransactionOutcome {
    /// The real uuid of the row inserted as `name`.
    pub fn uuid(&self, name: &str) -> Option<Uuid> {
        self.named_uuids.get(name).copied()
    }
    /// The count reported by the update/mutate/delete at `index`.
    pub fn count(&self, index: usize) -> Option<u64> {
        match self.results.get(index) {
            Some(OperationResult::Count(n)) => Some(*n),
            _ => None,
        }
    }
    /// The rows returned by the select at `index`.
    pub fn rows(&self, index: usize) -> Option<&[Row]> {
        match self.results.get(index) {
            Some(OperationResult::Rows(r)) => Some(r),
            _ => None,
        }
    }
}

/// A named-uuid handle returned by [`Transaction::insert`]: use it as a [`Datum`] to refer
/// to the new row from later operations of the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRow(pub String);

impl NamedRow {
    pub fn datum(&self) -> Datum {
        Datum::named_uuid(&self.0)
    }
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NamedRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds the operations of one `transact` call against one database.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    pub database: String,
    pub operations: Vec<Operation>,
    next_name: u32,
}

impl Transaction {
    pub fn new(database: &str) -> Transaction {
        Transaction {
            database: database.to_owned(),
            operations: Vec::new(),
            next_name: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// Appends any operation; returns its index.
    pub fn push(&mut self, op: Operation) -> usize {
        self.operations.push(op);
        self.operations.len() - 1
    }

    /// Inserts a row under a fresh `uuid-name` and returns the name to reference it.
    pub fn insert(&mut self, table: &str, row: Row) -> NamedRow {
        self.next_name += 1;
        // uuid-names must be identifiers: letters, digits, underscores.
        let name = format!(
            "row{}_{}",
            self.next_name,
            table.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        self.push(Operation::Insert {
            table: table.to_owned(),
            row,
            uuid_name: Some(name.clone()),
        });
        NamedRow(name)
    }

    pub fn select(
        &mut self,
        table: &str,
        conditions: Vec<Condition>,
        columns: Option<&[&str]>,
    ) -> usize {
        self.push(Operation::Select {
            table: table.to_owned(),
            conditions,
            columns: columns.map(|c| c.iter().map(|s| (*s).to_owned()).collect()),
        })
    }

    pub fn update(&mut self, table: &str, conditions: Vec<Condition>, row: Row) -> usize {
        self.push(Operation::Update {
            table: table.to_owned(),
            conditions,
            row,
        })
    }

    pub fn mutate(
        &mut self,
        table: &str,
        conditions: Vec<Condition>,
        mutations: Vec<Mutation>,
    ) -> usize {
        self.push(Operation::Mutate {
            table: table.to_owned(),
            conditions,
            mutations,
        })
    }

    pub fn delete(&mut self, table: &str, conditions: Vec<Condition>) -> usize {
        self.push(Operation::Delete {
            table: table.to_owned(),
            conditions,
        })
    }

    /// Optimistic check, evaluated immediately (`timeout: 0`): the transaction fails with
    /// "timed out" unless the rows matching `conditions`, projected onto `columns`, equal
    /// `rows` (an empty `rows` asserts that nothing matches).
    pub fn wait_eq(
        &mut self,
        table: &str,
        conditions: Vec<Condition>,
        columns: &[&str],
        rows: Vec<Row>,
    ) -> usize {
        self.push(Operation::Wait {
            table: table.to_owned(),
            conditions,
            columns: columns.iter().map(|s| (*s).to_owned()).collect(),
            until: WaitUntil::Eq,
            rows,
            timeout_ms: Some(0),
        })
    }

    /// Optimistic check, evaluated immediately: the transaction fails with "timed out"
    /// unless at least one row matches `conditions` (a `wait` until the matching rows,
    /// projected onto `_uuid`, differ from none).
    pub fn wait_exists(&mut self, table: &str, conditions: Vec<Condition>) -> usize {
        self.push(Operation::Wait {
            table: table.to_owned(),
            conditions,
            columns: vec!["_uuid".to_owned()],
            until: WaitUntil::Ne,
            rows: Vec::new(),
            timeout_ms: Some(0),
        })
    }

    pub fn comment(&mut self, comment: &str) -> usize {
        self.push(Operation::Comment {
            comment: comment.to_owned(),
        })
    }

    pub fn commit(&mut self, durable: bool) -> usize {
        self.push(Operation::Commit { durable })
    }

    pub fn abort(&mut self) -> usize {
        self.push(Operation::Abort)
    }

    pub fn assert_lock(&mut self, lock: &str) -> usize {
        self.push(Operation::Assert {
            lock: lock.to_owned(),
        })
    }

    /// The `transact` params: `[database, op...]`.
    pub fn to_params(&self) -> Value {
        let mut p = Vec::with_capacity(self.operations.len() + 1);
        p.push(json!(self.database));
        p.extend(self.operations.iter().map(Operation::to_json));
        Value::Array(p)
    }

    /// Interprets the `transact` result array against the operations sent.
    pub fn parse_reply(&self, reply: &Value) -> Result<TransactionOutcome, TransactionError> {
        let items = reply
            .as_array()
            .ok_or_else(|| TransactionError::MalformedReply(reply.to_string()))?;
        // Any error (including a trailing commit-time one) fails the whole transaction.
        for (index, item) in items.iter().enumerate() {
            if let Some(err) = item.get("error") {
                let op = self
                    .operations
                    .get(index)
                    .map(Operation::op_name)
                    .unwrap_or("commit");
                return Err(TransactionError::OperationFailed {
                    index,
                    op,
                    error: err
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| err.to_string()),
                    details: item
                        .get("details")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                });
            }
        }
        if items.len() < self.operations.len() {
            return Err(TransactionError::MalformedReply(format!(
                "{} results for {} operations: {reply}",
                items.len(),
                self.operations.len()
            )));
        }
        let mut out = TransactionOutcome::default();
        for (op, item) in self.operations.iter().zip(items) {
            let result = match op {
                Operation::Insert { uuid_name, .. } => {
                    let uuid = item
                        .get("uuid")
                        .and_then(|u| crate::datum::Atom::from_json(u).ok())
                        .and_then(|a| a.as_uuid())
                        .ok_or_else(|| TransactionError::MalformedReply(item.to_string()))?;
                    if let Some(n) = uuid_name {
                        out.named_uuids.insert(n.clone(), uuid);
                    }
                    OperationResult::Inserted(uuid)
                }
                Operation::Update { .. } | Operation::Mutate { .. } | Operation::Delete { .. } => {
                    OperationResult::Count(
                        item.get("count")
                            .and_then(Value::as_u64)
                            .ok_or_else(|| TransactionError::MalformedReply(item.to_string()))?,
                    )
                }
                Operation::Select { .. } => {
                    let rows = item
                        .get("rows")
                        .and_then(Value::as_array)
                        .ok_or_else(|| TransactionError::MalformedReply(item.to_string()))?;
                    OperationResult::Rows(
                        rows.iter()
                            .map(|r| row_from_json(r, |_| None))
                            .collect::<Result<_, _>>()?,
                    )
                }
                _ => OperationResult::Empty,
            };
            out.results.push(result);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_transact_params() {
        let mut t = Transaction::new("Open_vSwitch");
        let iface = t.insert(
            "Interface",
            Row::from([
                ("name".into(), Datum::scalar("wt-1")),
                ("type".into(), Datum::scalar("geneve")),
                (
                    "options".into(),
                    Datum::map([("remote_ip", "10.0.0.2"), ("key", "flow")]),
                ),
            ]),
        );
        let port = t.insert(
            "Port",
            Row::from([
                ("name".into(), Datum::scalar("wt-1")),
                ("interfaces".into(), iface.datum()),
            ]),
        );
        let br = Uuid::nil();
        t.wait_eq(
            "Bridge",
            vec![Condition::uuid(br)],
            &["ports"],
            vec![Row::from([("ports".into(), Datum::empty())])],
        );
        t.mutate(
            "Bridge",
            vec![Condition::uuid(br)],
            vec![Mutation::insert("ports", port.datum())],
        );
        let p = t.to_params();
        assert_eq!(p[0], json!("Open_vSwitch"));
        assert_eq!(p[1]["op"], "insert");
        assert_eq!(
            p[1]["row"]["options"],
            json!(["map", [["key", "flow"], ["remote_ip", "10.0.0.2"]]])
        );
        assert_eq!(
            p[2]["row"]["interfaces"],
            json!(["named-uuid", iface.name()])
        );
        assert_eq!(
            p[3],
            json!({"op": "wait", "table": "Bridge", "where": [["_uuid", "==", ["uuid", br.to_string()]]],
            "columns": ["ports"], "until": "==", "rows": [{"ports": ["set", []]}], "timeout": 0})
        );
        assert_eq!(
            p[4]["mutations"],
            json!([["ports", "insert", ["named-uuid", port.name()]]])
        );
    }

    #[test]
    fn parses_success_and_failure() {
        let mut t = Transaction::new("db");
        let n = t.insert("T", Row::new());
        t.delete("T", vec![]);
        t.select("T", vec![], None);
        let u = Uuid::new_v4();
        let ok =
            json!([{"uuid": ["uuid", u.to_string()]}, {"count": 2}, {"rows": [{"name": "x"}]}]);
        let out = t.parse_reply(&ok).unwrap();
        assert_eq!(out.uuid(n.name()), Some(u));
        assert_eq!(out.count(1), Some(2));
        assert_eq!(out.rows(2).unwrap()[0]["name"], Datum::scalar("x"));

        let failed = json!([{"uuid": ["uuid", u.to_string()]}, {"error": "timed out", "details": "\"wait\" timed out"}, null]);
        match t.parse_reply(&failed) {
            Err(TransactionError::OperationFailed {
                index: 1,
                op: "delete",
                error,
                details,
            }) => {
                assert_eq!(error, "timed out");
                assert!(details.is_some());
            }
            other => panic!("{other:?}"),
        }
        let commit_fail = json!([{"uuid": ["uuid", u.to_string()]}, {"count": 0}, {"rows": []}, {"error": "constraint violation"}]);
        assert!(matches!(
            t.parse_reply(&commit_fail),
            Err(TransactionError::OperationFailed {
                index: 3,
                op: "commit",
                ..
            })
        ));
        assert!(matches!(
            t.parse_reply(&json!({})),
            Err(TransactionError::MalformedReply(_))
        ));
    }
}
