//! The installed vswitch schema, for the unit tests that need the real tables.

use crate::schema::DatabaseSchema;

const VSWITCH_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

pub(super) fn vswitch_schema() -> DatabaseSchema {
    let text = std::fs::read_to_string(VSWITCH_SCHEMA)
        .unwrap_or_else(|e| panic!("{VSWITCH_SCHEMA}: {e} (install openvswitch-common)"));
    DatabaseSchema::from_json(&serde_json::from_str(&text).unwrap()).unwrap()
}
