//! What one update changed: a [`ChangeSet`] of [`RowChange`]s, each with the full rows
//! before and after, shared with the replica.

use std::collections::BTreeSet;
use std::sync::Arc;

use uuid::Uuid;

use crate::datum::Row;

/// One row's change, with full rows before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    pub table: String,
    pub uuid: Uuid,
    /// `None` for an insert. Rows are shared with the replica, so reporting them is cheap.
    pub old: Option<Arc<Row>>,
    /// `None` for a delete.
    pub new: Option<Arc<Row>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Inserted,
    Modified,
    Deleted,
}

impl RowChange {
    pub fn kind(&self) -> ChangeKind {
        match (&self.old, &self.new) {
            (None, _) => ChangeKind::Inserted,
            (Some(_), None) => ChangeKind::Deleted,
            (Some(_), Some(_)) => ChangeKind::Modified,
        }
    }
    /// Names of columns whose value differs between old and new.
    pub fn changed_columns(&self) -> BTreeSet<&str> {
        let old = self.old.as_deref();
        let new = self.new.as_deref();
        let get = |r: Option<&Row>, k: &str| r.and_then(|r| r.get(k).cloned());
        old.into_iter()
            .flat_map(|r| r.keys())
            .chain(new.into_iter().flat_map(|r| r.keys()))
            .filter(|k| get(old, k) != get(new, k))
            .map(|k| &**k)
            .collect()
    }
}

/// The changes one update made, in table then uuid order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangeSet {
    pub changes: Vec<RowChange>,
}

impl ChangeSet {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
    pub fn len(&self) -> usize {
        self.changes.len()
    }
    pub fn in_table<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a RowChange> + 'a {
        self.changes.iter().filter(move |c| c.table == table)
    }
}
