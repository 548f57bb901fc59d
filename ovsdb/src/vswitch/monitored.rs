//! Which columns of the Open vSwitch tables a controller monitors: exactly those the typed
//! rows read, so that neither the wire nor the replica carries statistics and status
//! columns that change often and that nothing here looks at.

use crate::monitor::MonitorRequest;
use crate::schema::DatabaseSchema;

use super::{
    BRIDGE, Bridge, CONTROLLER, Controller, INTERFACE, Interface, MANAGER, Manager, OPEN_VSWITCH,
    OpenVSwitch, PORT, Port,
};

/// The columns each typed row reads, by table: exactly what [`monitor_requests`] asks for.
/// A typed row decoded from a replica that monitors only these columns equals one decoded
/// from a replica that monitors every column (a unit test checks this).
pub const MONITORED_COLUMNS: [(&str, &[&str]); 6] = [
    (OPEN_VSWITCH, OpenVSwitch::COLUMNS),
    (BRIDGE, Bridge::COLUMNS),
    (PORT, Port::COLUMNS),
    (INTERFACE, Interface::COLUMNS),
    (CONTROLLER, Controller::COLUMNS),
    (MANAGER, Manager::COLUMNS),
];

/// Monitor requests for these tables, only the columns the typed rows read. Columns
/// such as `Interface:statistics` or `status` change every few seconds on a live switch;
/// monitoring them would send every interface again each time for nothing.
pub fn monitor_requests() -> Vec<MonitorRequest> {
    MONITORED_COLUMNS
        .iter()
        .map(|(table, columns)| MonitorRequest::table(table).columns(columns))
        .collect()
}

/// [`monitor_requests`] without the tables and columns `schema` lacks (an ovsdb-server
/// refuses a monitor that names an unknown table or column; the typed rows treat such a
/// column as empty, and a missing table has no rows).
pub fn monitor_requests_for(schema: &DatabaseSchema) -> Vec<MonitorRequest> {
    let mut requests = monitor_requests();
    requests.retain(|r| schema.table(&r.table).is_some());
    for r in &mut requests {
        let Some(ts) = schema.table(&r.table) else {
            continue;
        };
        if let Some(columns) = &mut r.columns {
            columns.retain(|c| ts.columns.contains_key(c));
        }
    }
    requests
}

/// [`monitor_requests_for`] of the root table alone: what a client needs to know which
/// switch it is talking to (its `external_ids` and `other_config`), and nothing of its
/// bridges, ports or interfaces. For a client that only stands by, following every port
/// of a busy switch would cost as much as managing it.
pub fn root_requests_for(schema: &DatabaseSchema) -> Vec<MonitorRequest> {
    let mut requests = monitor_requests_for(schema);
    requests.retain(|r| r.table == OPEN_VSWITCH);
    requests
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::{Atom, Datum, Row};
    use crate::vswitch::TypedRow;
    use crate::vswitch::test_schema::vswitch_schema;
    use uuid::Uuid;

    /// A value for every column of `table`, none of them the default, so that a typed
    /// row that reads a column would see it.
    fn full_row(schema: &DatabaseSchema, table: &str) -> Row {
        use crate::schema::AtomicType;
        let atom = |ty: AtomicType, col: &str| match ty {
            AtomicType::Integer => Atom::Integer(7),
            AtomicType::Real => Atom::Real(1.5),
            AtomicType::Boolean => Atom::Boolean(true),
            AtomicType::String => Atom::String(format!("v-{col}").into()),
            AtomicType::Uuid => Atom::Uuid(Uuid::from_u128(7)),
        };
        let ts = schema.table(table).unwrap();
        ts.columns
            .iter()
            .map(|(col, c)| {
                let k = atom(c.ty.key.atomic, col);
                let d = match &c.ty.value {
                    Some(v) => Datum::map([(k, atom(v.atomic, col))]),
                    None => Datum::scalar(k),
                };
                (col.as_str().into(), d)
            })
            .collect()
    }

    #[test]
    fn monitored_columns_are_all_the_typed_rows_read() {
        let schema = vswitch_schema();
        let requests = monitor_requests_for(&schema);
        assert_eq!(
            requests,
            monitor_requests(),
            "every column exists in the schema"
        );
        let u = Uuid::from_u128(1);
        for (table, columns) in MONITORED_COLUMNS {
            let full = full_row(&schema, table);
            let projected: Row = full
                .iter()
                .filter(|(c, _)| columns.contains(&&***c))
                .map(|(c, d)| (c.clone(), d.clone()))
                .collect();
            assert_eq!(projected.len(), columns.len(), "{table}: {columns:?}");
            let same = match table {
                OPEN_VSWITCH => {
                    OpenVSwitch::from_row(u, &full) == OpenVSwitch::from_row(u, &projected)
                }
                BRIDGE => Bridge::from_row(u, &full) == Bridge::from_row(u, &projected),
                PORT => Port::from_row(u, &full) == Port::from_row(u, &projected),
                INTERFACE => Interface::from_row(u, &full) == Interface::from_row(u, &projected),
                CONTROLLER => Controller::from_row(u, &full) == Controller::from_row(u, &projected),
                MANAGER => Manager::from_row(u, &full) == Manager::from_row(u, &projected),
                other => panic!("{other} has no typed row"),
            };
            assert!(same, "{table} reads a column it does not monitor");
        }
        // A schema without a column: the request leaves it out.
        let mut old = schema.clone();
        if let Some(t) = old.tables.get_mut(INTERFACE) {
            t.columns.remove("mac_in_use");
        }
        let r = monitor_requests_for(&old);
        let iface = r.iter().find(|r| r.table == INTERFACE).unwrap();
        assert!(
            !iface
                .columns
                .as_ref()
                .unwrap()
                .iter()
                .any(|c| c == "mac_in_use")
        );
        assert_eq!(
            iface.columns.as_ref().unwrap().len(),
            Interface::COLUMNS.len() - 1
        );
        // A schema without a table: no request for it.
        let mut older = schema.clone();
        older.tables.remove(MANAGER);
        let r = monitor_requests_for(&older);
        assert_eq!(r.len(), MONITORED_COLUMNS.len() - 1);
        assert!(r.iter().all(|r| r.table != MANAGER));
    }

    #[test]
    fn root_requests_name_the_root_table_alone() {
        let schema = vswitch_schema();
        let r = root_requests_for(&schema);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].table, OPEN_VSWITCH);
        assert_eq!(
            r[0].columns.as_deref().map(<[String]>::len),
            Some(OpenVSwitch::COLUMNS.len())
        );
    }
}
