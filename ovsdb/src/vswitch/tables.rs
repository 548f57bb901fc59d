//! The typed rows of the tables a controller manages (`Open_vSwitch`, `Bridge`, `Port`,
//! `Interface`, `Controller`, `Manager`; see ovs-vswitchd.conf.db(5)), each with the
//! columns it reads.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::datum::Row;

use super::typed::{Reader, RowError, TypedRow};
use super::{BRIDGE, CONTROLLER, INTERFACE, MANAGER, OPEN_VSWITCH, PORT};

/// The root row: one per database.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenVSwitch {
    pub uuid: Uuid,
    pub bridges: Vec<Uuid>,
    pub manager_options: Vec<Uuid>,
    /// Holds `system-id` and the keys a controller reads its hypervisor's settings from.
    pub external_ids: BTreeMap<String, String>,
    pub other_config: BTreeMap<String, String>,
    pub ovs_version: Option<String>,
    pub datapath_types: Vec<String>,
    pub iface_types: Vec<String>,
    pub cur_cfg: Option<i64>,
    pub next_cfg: Option<i64>,
}

impl OpenVSwitch {
    pub fn external_id(&self, key: &str) -> Option<&str> {
        self.external_ids.get(key).map(String::as_str)
    }
}

impl OpenVSwitch {
    pub const COLUMNS: &[&str] = &[
        "bridges",
        "manager_options",
        "external_ids",
        "other_config",
        "ovs_version",
        "datapath_types",
        "iface_types",
        "cur_cfg",
        "next_cfg",
    ];
}

impl TypedRow for OpenVSwitch {
    const TABLE: &'static str = OPEN_VSWITCH;
    fn from_row(uuid: Uuid, row: &Row) -> Result<Self, RowError> {
        let r = Reader {
            table: Self::TABLE,
            uuid,
            row,
        };
        Ok(OpenVSwitch {
            uuid,
            bridges: r.uuids("bridges")?,
            manager_options: r.uuids("manager_options")?,
            external_ids: r.string_map("external_ids")?,
            other_config: r.string_map("other_config")?,
            ovs_version: r.opt_string("ovs_version")?,
            datapath_types: r.strings("datapath_types")?,
            iface_types: r.strings("iface_types")?,
            cur_cfg: r.opt_int("cur_cfg")?,
            next_cfg: r.opt_int("next_cfg")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bridge {
    pub uuid: Uuid,
    pub name: String,
    pub ports: Vec<Uuid>,
    pub controller: Vec<Uuid>,
    pub fail_mode: Option<String>,
    pub protocols: Vec<String>,
    pub datapath_id: Option<String>,
    pub datapath_type: Option<String>,
    pub external_ids: BTreeMap<String, String>,
    pub other_config: BTreeMap<String, String>,
}

impl Bridge {
    pub const COLUMNS: &[&str] = &[
        "name",
        "ports",
        "controller",
        "fail_mode",
        "protocols",
        "datapath_id",
        "datapath_type",
        "external_ids",
        "other_config",
    ];
}

impl TypedRow for Bridge {
    const TABLE: &'static str = BRIDGE;
    fn from_row(uuid: Uuid, row: &Row) -> Result<Self, RowError> {
        let r = Reader {
            table: Self::TABLE,
            uuid,
            row,
        };
        Ok(Bridge {
            uuid,
            name: r.string("name")?,
            ports: r.uuids("ports")?,
            controller: r.uuids("controller")?,
            fail_mode: r.opt_string("fail_mode")?,
            protocols: r.strings("protocols")?,
            datapath_id: r.opt_string("datapath_id")?,
            datapath_type: r.opt_string("datapath_type")?.filter(|s| !s.is_empty()),
            external_ids: r.string_map("external_ids")?,
            other_config: r.string_map("other_config")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub uuid: Uuid,
    pub name: String,
    pub interfaces: Vec<Uuid>,
    pub tag: Option<i64>,
    pub external_ids: BTreeMap<String, String>,
    pub other_config: BTreeMap<String, String>,
}

impl Port {
    pub const COLUMNS: &[&str] = &["name", "interfaces", "tag", "external_ids", "other_config"];
}

impl TypedRow for Port {
    const TABLE: &'static str = PORT;
    fn from_row(uuid: Uuid, row: &Row) -> Result<Self, RowError> {
        let r = Reader {
            table: Self::TABLE,
            uuid,
            row,
        };
        Ok(Port {
            uuid,
            name: r.string("name")?,
            interfaces: r.uuids("interfaces")?,
            tag: r.opt_int("tag")?,
            external_ids: r.string_map("external_ids")?,
            other_config: r.string_map("other_config")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    pub uuid: Uuid,
    pub name: String,
    /// `""` (system), `internal`, `geneve`, `vxlan`, `stt`, ...
    pub kind: String,
    /// Assigned by ovs-vswitchd; -1 on failure, absent until then.
    pub ofport: Option<i64>,
    pub options: BTreeMap<String, String>,
    /// Holds `iface-id`, `attached-mac`, and any mark a controller sets (see
    /// [`set_interface_external_id`](super::set_interface_external_id)).
    pub external_ids: BTreeMap<String, String>,
    pub other_config: BTreeMap<String, String>,
    pub error: Option<String>,
    pub mac_in_use: Option<String>,
    pub link_state: Option<String>,
    pub admin_state: Option<String>,
}

impl Interface {
    /// The logical port this interface is bound to, if any.
    pub fn iface_id(&self) -> Option<&str> {
        self.external_ids.get("iface-id").map(String::as_str)
    }
}

impl Interface {
    pub const COLUMNS: &[&str] = &[
        "name",
        "type",
        "ofport",
        "options",
        "external_ids",
        "other_config",
        "error",
        "mac_in_use",
        "link_state",
        "admin_state",
    ];
}

impl TypedRow for Interface {
    const TABLE: &'static str = INTERFACE;
    fn from_row(uuid: Uuid, row: &Row) -> Result<Self, RowError> {
        let r = Reader {
            table: Self::TABLE,
            uuid,
            row,
        };
        Ok(Interface {
            uuid,
            name: r.string("name")?,
            kind: r.opt_string("type")?.unwrap_or_default(),
            ofport: r.opt_int("ofport")?,
            options: r.string_map("options")?,
            external_ids: r.string_map("external_ids")?,
            other_config: r.string_map("other_config")?,
            error: r.opt_string("error")?,
            mac_in_use: r.opt_string("mac_in_use")?,
            link_state: r.opt_string("link_state")?,
            admin_state: r.opt_string("admin_state")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    pub uuid: Uuid,
    pub target: String,
    pub is_connected: bool,
    pub role: Option<String>,
    pub inactivity_probe: Option<i64>,
    /// Milliseconds; vswitchd's default (unset) is 8000.
    pub max_backoff: Option<i64>,
    pub external_ids: BTreeMap<String, String>,
    pub other_config: BTreeMap<String, String>,
}

impl Controller {
    pub const COLUMNS: &[&str] = &[
        "target",
        "is_connected",
        "role",
        "inactivity_probe",
        "max_backoff",
        "external_ids",
        "other_config",
    ];
}

impl TypedRow for Controller {
    const TABLE: &'static str = CONTROLLER;
    fn from_row(uuid: Uuid, row: &Row) -> Result<Self, RowError> {
        let r = Reader {
            table: Self::TABLE,
            uuid,
            row,
        };
        Ok(Controller {
            uuid,
            target: r.string("target")?,
            is_connected: r.opt_bool("is_connected")?.unwrap_or(false),
            role: r.opt_string("role")?,
            inactivity_probe: r.opt_int("inactivity_probe")?,
            max_backoff: r.opt_int("max_backoff")?,
            external_ids: r.string_map("external_ids")?,
            other_config: r.string_map("other_config")?,
        })
    }
}

/// An OVSDB manager target of the switch (`ovs-vsctl set-manager`): read so that a
/// manager can find the row through which the switch reaches it.
#[derive(Debug, Clone, PartialEq)]
pub struct Manager {
    pub uuid: Uuid,
    pub target: String,
    /// `in-band` or `out-of-band`; unset means in-band.
    pub connection_mode: Option<String>,
    /// Milliseconds of silence after which ovsdb-server probes the manager; unset means
    /// its default, 5000.
    pub inactivity_probe: Option<i64>,
}

impl Manager {
    pub const COLUMNS: &[&str] = &["target", "connection_mode", "inactivity_probe"];
}

impl TypedRow for Manager {
    const TABLE: &'static str = MANAGER;
    fn from_row(uuid: Uuid, row: &Row) -> Result<Self, RowError> {
        let r = Reader {
            table: Self::TABLE,
            uuid,
            row,
        };
        Ok(Manager {
            uuid,
            target: r.string("target")?,
            connection_mode: r.opt_string("connection_mode")?,
            inactivity_probe: r.opt_int("inactivity_probe")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_rows_from_generic_rows() {
        let u = Uuid::new_v4();
        let p = Uuid::new_v4();
        let row = crate::datum::row_from_json(
            &json!({"name": "br-int", "ports": ["uuid", p.to_string()], "fail_mode": "secure",
                "protocols": ["set", ["OpenFlow13"]], "datapath_type": "", "controller": ["set", []],
                "external_ids": ["map", [["a", "b"]]], "other_config": ["map", []]}),
            |_| None,
        )
        .unwrap();
        let b = Bridge::from_row(u, &row).unwrap();
        assert_eq!(b.name, "br-int");
        assert_eq!(b.ports, vec![p]);
        assert_eq!(b.fail_mode.as_deref(), Some("secure"));
        assert_eq!(b.protocols, vec!["OpenFlow13".to_owned()]);
        assert_eq!(b.datapath_type, None);
        assert_eq!(b.external_ids["a"], "b");

        let bad = crate::datum::row_from_json(&json!({"name": 5}), |_| None).unwrap();
        assert!(matches!(
            Bridge::from_row(u, &bad),
            Err(RowError::WrongType { column: "name", .. })
        ));
        assert!(matches!(
            Port::from_row(u, &Row::new()),
            Err(RowError::Missing { column: "name", .. })
        ));
    }
}
