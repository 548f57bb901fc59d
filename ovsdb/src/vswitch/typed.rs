//! The typed-row layer: the [`TypedRow`] trait that views one table's generic rows as a
//! Rust type, the [`RowError`] a row that does not fit reports, and the column reader the
//! typed rows share (a column that was not monitored reads as empty).

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::datum::{Atom, Datum, Row};
use crate::monitor::Replica;

/// A typed row does not match the schema it was written for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RowError {
    #[error("{table} {uuid}: missing column {column}")]
    Missing {
        table: &'static str,
        uuid: Uuid,
        column: &'static str,
    },
    #[error("{table} {uuid}: column {column} has unexpected value {value}")]
    WrongType {
        table: &'static str,
        uuid: Uuid,
        column: &'static str,
        value: String,
    },
}

/// A Rust view of one table's rows.
pub trait TypedRow: Sized {
    const TABLE: &'static str;
    fn from_row(uuid: Uuid, row: &Row) -> Result<Self, RowError>;
}

/// All rows of `T`'s table in the replica, typed.
pub fn rows<T: TypedRow>(replica: &Replica) -> impl Iterator<Item = Result<T, RowError>> + '_ {
    replica
        .table(T::TABLE)
        .map(|(uuid, row)| T::from_row(*uuid, row))
}

/// One row of `T`'s table by uuid.
pub fn row<T: TypedRow>(replica: &Replica, uuid: &Uuid) -> Option<Result<T, RowError>> {
    replica
        .row(T::TABLE, uuid)
        .map(|row| T::from_row(*uuid, row))
}

/// Reads columns of one row, naming the row in errors.
pub(super) struct Reader<'a> {
    pub(super) table: &'static str,
    pub(super) uuid: Uuid,
    pub(super) row: &'a Row,
}

impl Reader<'_> {
    fn wrong(&self, column: &'static str) -> RowError {
        RowError::WrongType {
            table: self.table,
            uuid: self.uuid,
            column,
            value: self
                .row
                .get(column)
                .map(|d| d.to_json().to_string())
                .unwrap_or_default(),
        }
    }

    fn atoms(&self, column: &'static str) -> Result<Vec<&Atom>, RowError> {
        match self.row.get(column) {
            None => Ok(Vec::new()),
            Some(Datum::Set(s)) => Ok(s.iter().collect()),
            Some(Datum::Map(m)) if m.is_empty() => Ok(Vec::new()),
            Some(Datum::Map(_)) => Err(self.wrong(column)),
        }
    }

    pub(super) fn string(&self, column: &'static str) -> Result<String, RowError> {
        match self.opt_string(column)? {
            Some(s) => Ok(s),
            None => Err(RowError::Missing {
                table: self.table,
                uuid: self.uuid,
                column,
            }),
        }
    }

    pub(super) fn opt_string(&self, column: &'static str) -> Result<Option<String>, RowError> {
        match self.atoms(column)?.as_slice() {
            [] => Ok(None),
            [a] => a
                .as_str()
                .map(|s| Some(s.to_owned()))
                .ok_or_else(|| self.wrong(column)),
            _ => Err(self.wrong(column)),
        }
    }

    pub(super) fn opt_int(&self, column: &'static str) -> Result<Option<i64>, RowError> {
        match self.atoms(column)?.as_slice() {
            [] => Ok(None),
            [a] => a.as_i64().map(Some).ok_or_else(|| self.wrong(column)),
            _ => Err(self.wrong(column)),
        }
    }

    pub(super) fn opt_bool(&self, column: &'static str) -> Result<Option<bool>, RowError> {
        match self.atoms(column)?.as_slice() {
            [] => Ok(None),
            [a] => a.as_bool().map(Some).ok_or_else(|| self.wrong(column)),
            _ => Err(self.wrong(column)),
        }
    }

    pub(super) fn strings(&self, column: &'static str) -> Result<Vec<String>, RowError> {
        self.atoms(column)?
            .into_iter()
            .map(|a| {
                a.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.wrong(column))
            })
            .collect()
    }

    pub(super) fn uuids(&self, column: &'static str) -> Result<Vec<Uuid>, RowError> {
        self.atoms(column)?
            .into_iter()
            .map(|a| a.as_uuid().ok_or_else(|| self.wrong(column)))
            .collect()
    }

    pub(super) fn string_map(
        &self,
        column: &'static str,
    ) -> Result<BTreeMap<String, String>, RowError> {
        match self.row.get(column) {
            None => Ok(BTreeMap::new()),
            Some(Datum::Set(s)) if s.is_empty() => Ok(BTreeMap::new()),
            Some(Datum::Map(m)) => m
                .iter()
                .map(|(k, v)| match (k.as_str(), v.as_str()) {
                    (Some(k), Some(v)) => Ok((k.to_owned(), v.to_owned())),
                    _ => Err(self.wrong(column)),
                })
                .collect(),
            Some(Datum::Set(_)) => Err(self.wrong(column)),
        }
    }
}
