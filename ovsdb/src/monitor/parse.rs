//! Turning a table-updates object (`update`, `update2` or a monitor reply) into row
//! operations, checked against the schema, before anything is applied to the replica.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use crate::datum::{Row, row_from_json, row_merge_json};
use crate::schema::{DatabaseSchema, TableSchema};

use super::replica::ReplicaError;
use super::request::UpdateFormat;

/// A parsed row update, before it is applied.
pub(super) enum RowOp {
    /// Full row (initial/insert, or `update`'s `new`).
    Put(Row),
    /// `update2` modify: per-column diffs.
    Diff(Row),
    /// `update` modify: new values of changed columns (merge).
    Merge(Row),
    Delete,
}

/// The default value of every monitored column of a table (`monitored`: the columns a
/// monitor asked for, `None` for all).
///
/// `update2` leaves out columns that hold their default value in `initial` and `insert`;
/// a new row starts as a copy of this and takes the columns that were sent, so that every
/// row has every monitored column. Built once per table per update rather than looked up
/// column by column per row: an initial reply of 10,000 rows of 45 columns, most of them
/// default, spent most of its time filling defaults in one by one.
pub(super) fn default_row(ts: &TableSchema, monitored: Option<&Vec<String>>) -> Row {
    match monitored {
        Some(cols) => cols
            .iter()
            .filter_map(|c| Some((Arc::from(c.as_str()), ts.columns.get(c)?.ty.default_datum())))
            .collect(),
        None => ts
            .columns
            .iter()
            .map(|(c, s)| (Arc::from(c.as_str()), s.ty.default_datum()))
            .collect(),
    }
}

/// Parses every row update of `updates`; the first malformed one fails the whole update.
pub(super) fn parse(
    schema: &DatabaseSchema,
    monitored: &BTreeMap<String, Vec<String>>,
    format: UpdateFormat,
    updates: &Value,
) -> Result<Vec<(String, Uuid, RowOp)>, ReplicaError> {
    let tables = updates
        .as_object()
        .ok_or_else(|| ReplicaError::NotAnObject(updates.to_string()))?;
    let mut out = Vec::new();
    for (tname, rows) in tables {
        let ts = schema
            .table(tname)
            .ok_or_else(|| ReplicaError::UnknownTable(tname.clone()))?;
        let rows = rows
            .as_object()
            .ok_or_else(|| ReplicaError::NotAnObject(rows.to_string()))?;
        let defaults = match format {
            UpdateFormat::Update2 => default_row(ts, monitored.get(tname)),
            UpdateFormat::Update => Row::new(),
        };
        out.reserve(rows.len());
        for (key, update) in rows {
            let uuid = Uuid::parse_str(key).map_err(|_| ReplicaError::BadUuid(key.clone()))?;
            let bad = || ReplicaError::BadRowUpdate {
                table: tname.clone(),
                uuid,
                update: update.to_string(),
            };
            let datum_error = |source| ReplicaError::Datum {
                table: tname.clone(),
                uuid,
                source,
            };
            // Element counts are not checked on parse, so a diff (which may hold more
            // elements than the column allows) parses with the column's own type.
            let parse_row =
                |v: &Value| row_from_json(v, |c| ts.column_type(c)).map_err(datum_error);
            let obj = update.as_object().ok_or_else(bad)?;
            let op = match format {
                UpdateFormat::Update2 => {
                    let (kind, v) = obj.iter().next().ok_or_else(bad)?;
                    match kind.as_str() {
                        "initial" | "insert" => {
                            let mut row = defaults.clone();
                            row_merge_json(&mut row, v, |c| ts.column_type(c))
                                .map_err(datum_error)?;
                            RowOp::Put(row)
                        }
                        "modify" => RowOp::Diff(parse_row(v)?),
                        "delete" => RowOp::Delete,
                        _ => return Err(bad()),
                    }
                }
                UpdateFormat::Update => match (obj.get("old"), obj.get("new")) {
                    (_, Some(new)) if !new.is_null() => {
                        if obj.get("old").is_some_and(|o| !o.is_null()) {
                            RowOp::Merge(parse_row(new)?)
                        } else {
                            RowOp::Put(parse_row(new)?)
                        }
                    }
                    (Some(_), _) => RowOp::Delete,
                    _ => return Err(bad()),
                },
            };
            out.push((tname.clone(), uuid, op));
        }
    }
    Ok(out)
}
