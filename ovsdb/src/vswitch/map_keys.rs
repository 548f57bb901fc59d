//! Setting and removing single keys of map columns (`external_ids`, `other_config`)
//! without disturbing the keys others wrote, and the marks a controller puts on an
//! Interface that way.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::datum::Datum;
use crate::ops::{Condition, Mutation, Transaction};

use super::INTERFACE;

pub(super) fn string_map(m: &BTreeMap<String, String>) -> Datum {
    Datum::map(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// Sets `column:key=value` on a map column of one row (delete-then-insert, since `insert`
/// does not overwrite an existing key).
pub fn set_map_key(
    txn: &mut Transaction,
    table: &str,
    uuid: Uuid,
    column: &str,
    key: &str,
    value: &str,
) {
    txn.mutate(
        table,
        vec![Condition::uuid(uuid)],
        vec![
            Mutation::delete(column, Datum::set([key])),
            Mutation::insert(column, Datum::map([(key, value)])),
        ],
    );
}

/// Removes `column:key` from a map column of one row, whatever its value.
pub fn remove_map_key(txn: &mut Transaction, table: &str, uuid: Uuid, column: &str, key: &str) {
    txn.mutate(
        table,
        vec![Condition::uuid(uuid)],
        vec![Mutation::delete(column, Datum::set([key]))],
    );
}

/// Sets `external_ids:<key>=<value>` on an Interface, keeping its other keys: how a
/// controller marks an interface (for example, that its flows are in place).
pub fn set_interface_external_id(txn: &mut Transaction, interface: Uuid, key: &str, value: &str) {
    set_map_key(txn, INTERFACE, interface, "external_ids", key, value);
}

/// Removes `external_ids:<key>` from an Interface, whatever its value.
pub fn remove_interface_external_id(txn: &mut Transaction, interface: Uuid, key: &str) {
    remove_map_key(txn, INTERFACE, interface, "external_ids", key);
}
