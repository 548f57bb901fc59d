//! Typed rows and transaction helpers for the Open vSwitch tables a controller manages
//! (`Open_vSwitch`, `Bridge`, `Port`, `Interface`, `Controller`; see ovs-vswitchd.conf.db(5)).
//!
//! Rows are read from a [`Replica`] through the generic layer: each typed row takes the
//! columns it knows, treats a column that was not monitored as empty, and reports a column
//! of the wrong type as an error naming the table, row and column. The helpers append
//! operations to a [`Transaction`] so that callers combine them into one atomic `transact`.
//!
//! A controller re-reads the same bridge after every monitor update, and a hypervisor's
//! bridge holds hundreds of ports: [`cached_row`] and [`cached_rows`] borrow a typed row
//! that the replica decoded once for the row's current version, and the planning helpers
//! here read through them. [`monitor_requests`] asks only for the columns the typed rows
//! read, so that neither the wire nor the replica carries statistics and status columns
//! that change often and that nothing here looks at.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::datum::{Atom, Datum, Row};
use crate::monitor::{MonitorRequest, Replica, RowRef};
use crate::ops::{Condition, Mutation, NamedRow, Transaction};
use crate::schema::DatabaseSchema;

pub const DATABASE: &str = "Open_vSwitch";
pub const OPEN_VSWITCH: &str = "Open_vSwitch";
pub const BRIDGE: &str = "Bridge";
pub const PORT: &str = "Port";
pub const INTERFACE: &str = "Interface";
pub const CONTROLLER: &str = "Controller";

/// The columns each typed row reads, by table: exactly what [`monitor_requests`] asks for.
/// A typed row decoded from a replica that monitors only these columns equals one decoded
/// from a replica that monitors every column (a unit test checks this).
pub const MONITORED_COLUMNS: [(&str, &[&str]); 5] = [
    (OPEN_VSWITCH, OpenVSwitch::COLUMNS),
    (BRIDGE, Bridge::COLUMNS),
    (PORT, Port::COLUMNS),
    (INTERFACE, Interface::COLUMNS),
    (CONTROLLER, Controller::COLUMNS),
];

/// Monitor requests for the five tables, only the columns the typed rows read. Columns
/// such as `Interface:statistics` or `status` change every few seconds on a live switch;
/// monitoring them would send every interface again each time for nothing.
pub fn monitor_requests() -> Vec<MonitorRequest> {
    MONITORED_COLUMNS
        .iter()
        .map(|(table, columns)| MonitorRequest::table(table).columns(columns))
        .collect()
}

/// [`monitor_requests`] without the columns `schema` lacks (an older ovsdb-server refuses
/// a monitor that names an unknown column; the typed rows treat such a column as empty).
pub fn monitor_requests_for(schema: &DatabaseSchema) -> Vec<MonitorRequest> {
    let mut requests = monitor_requests();
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

/// A typed row that the replica may keep decoded beside its generic row.
pub trait CachedRow: TypedRow + Clone + Send + Sync + 'static {}
impl<T: TypedRow + Clone + Send + Sync + 'static> CachedRow for T {}

/// `r` as a `T`, decoded at most once per row version (a bad row's error included).
pub fn typed<'a, T: CachedRow>(r: RowRef<'a>) -> Result<Cow<'a, T>, RowError> {
    match r.decoded(|uuid, row| T::from_row(*uuid, row)) {
        Cow::Borrowed(Ok(t)) => Ok(Cow::Borrowed(t)),
        Cow::Borrowed(Err(e)) => Err(e.clone()),
        Cow::Owned(r) => r.map(Cow::Owned),
    }
}

/// [`row`], borrowed from the replica's decoded copy: free after the first read of a row
/// version.
pub fn cached_row<'a, T: CachedRow>(
    replica: &'a Replica,
    uuid: &Uuid,
) -> Option<Result<Cow<'a, T>, RowError>> {
    replica.row_ref(T::TABLE, uuid).map(typed)
}

/// [`rows`], borrowed from the replica's decoded copies.
pub fn cached_rows<T: CachedRow>(
    replica: &Replica,
) -> impl Iterator<Item = Result<Cow<'_, T>, RowError>> {
    replica.table_refs(T::TABLE).map(typed)
}

/// Reads columns of one row, naming the row in errors.
struct Reader<'a> {
    table: &'static str,
    uuid: Uuid,
    row: &'a Row,
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

    fn string(&self, column: &'static str) -> Result<String, RowError> {
        match self.opt_string(column)? {
            Some(s) => Ok(s),
            None => Err(RowError::Missing {
                table: self.table,
                uuid: self.uuid,
                column,
            }),
        }
    }

    fn opt_string(&self, column: &'static str) -> Result<Option<String>, RowError> {
        match self.atoms(column)?.as_slice() {
            [] => Ok(None),
            [a] => a
                .as_str()
                .map(|s| Some(s.to_owned()))
                .ok_or_else(|| self.wrong(column)),
            _ => Err(self.wrong(column)),
        }
    }

    fn opt_int(&self, column: &'static str) -> Result<Option<i64>, RowError> {
        match self.atoms(column)?.as_slice() {
            [] => Ok(None),
            [a] => a.as_i64().map(Some).ok_or_else(|| self.wrong(column)),
            _ => Err(self.wrong(column)),
        }
    }

    fn opt_bool(&self, column: &'static str) -> Result<Option<bool>, RowError> {
        match self.atoms(column)?.as_slice() {
            [] => Ok(None),
            [a] => a.as_bool().map(Some).ok_or_else(|| self.wrong(column)),
            _ => Err(self.wrong(column)),
        }
    }

    fn strings(&self, column: &'static str) -> Result<Vec<String>, RowError> {
        self.atoms(column)?
            .into_iter()
            .map(|a| {
                a.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.wrong(column))
            })
            .collect()
    }

    fn uuids(&self, column: &'static str) -> Result<Vec<Uuid>, RowError> {
        self.atoms(column)?
            .into_iter()
            .map(|a| a.as_uuid().ok_or_else(|| self.wrong(column)))
            .collect()
    }

    fn string_map(&self, column: &'static str) -> Result<BTreeMap<String, String>, RowError> {
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

/// The single `Open_vSwitch` row, if the replica has it.
pub fn root(replica: &Replica) -> Option<Result<OpenVSwitch, RowError>> {
    rows::<OpenVSwitch>(replica).next()
}

/// [`root`], borrowed from the replica's decoded copy.
pub fn cached_root(replica: &Replica) -> Option<Result<Cow<'_, OpenVSwitch>, RowError>> {
    cached_rows::<OpenVSwitch>(replica).next()
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
    /// [`set_interface_external_id`]).
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

/// The bridge called `name` (bridge names are unique: the schema indexes them).
pub fn bridge_by_name(replica: &Replica, name: &str) -> Option<Result<Bridge, RowError>> {
    replica
        .find(BRIDGE, "name", &Datum::scalar(name))
        .next()
        .map(|(uuid, row)| Bridge::from_row(*uuid, row))
}

/// [`bridge_by_name`], borrowed from the replica's decoded copy.
pub fn cached_bridge_by_name<'a>(
    replica: &'a Replica,
    name: &str,
) -> Option<Result<Cow<'a, Bridge>, RowError>> {
    let name = Datum::scalar(name);
    replica
        .table_refs(BRIDGE)
        .find(|r| r.row().get("name") == Some(&name))
        .map(typed)
}

/// [`ports_of`], borrowed from the replica's decoded copies.
pub fn cached_ports_of<'a>(
    replica: &'a Replica,
    bridge: &Bridge,
) -> Result<Vec<Cow<'a, Port>>, RowError> {
    bridge
        .ports
        .iter()
        .filter_map(|u| cached_row::<Port>(replica, u))
        .collect()
}

/// [`interfaces_of`], borrowed from the replica's decoded copies.
pub fn cached_interfaces_of<'a>(
    replica: &'a Replica,
    port: &Port,
) -> Result<Vec<Cow<'a, Interface>>, RowError> {
    port.interfaces
        .iter()
        .filter_map(|u| cached_row::<Interface>(replica, u))
        .collect()
}

/// The bridge's ports that the replica holds, in the bridge's order.
pub fn ports_of(replica: &Replica, bridge: &Bridge) -> Result<Vec<Port>, RowError> {
    bridge
        .ports
        .iter()
        .filter_map(|u| row::<Port>(replica, u))
        .collect()
}

/// The port's interfaces that the replica holds.
pub fn interfaces_of(replica: &Replica, port: &Port) -> Result<Vec<Interface>, RowError> {
    port.interfaces
        .iter()
        .filter_map(|u| row::<Interface>(replica, u))
        .collect()
}

/// Tunnel ports the controller owns on `bridge`: those whose Port carries
/// `external_ids:<owner_key>`, keyed by that key's value (the remote's identity). Ports
/// without the key belong to someone else and are left alone.
pub fn owned_tunnels(
    replica: &Replica,
    bridge: &Bridge,
    owner_key: &str,
) -> Result<BTreeMap<String, Port>, RowError> {
    Ok(ports_of(replica, bridge)?
        .into_iter()
        .filter_map(|p| {
            p.external_ids
                .get(owner_key)
                .cloned()
                .map(|remote| (remote, p))
        })
        .collect())
}

/// Interfaces that carry `external_ids:iface-id` (VM NICs bound to logical ports).
pub fn bound_interfaces(replica: &Replica) -> Result<Vec<Interface>, RowError> {
    rows::<Interface>(replica)
        .filter(|r| r.as_ref().map_or(true, |i| i.iface_id().is_some()))
        .collect()
}

fn string_map(m: &BTreeMap<String, String>) -> Datum {
    Datum::map(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// What to create for an integration bridge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BridgeSpec {
    pub name: String,
    /// `secure` for a controller-owned bridge.
    pub fail_mode: Option<String>,
    /// e.g. `["OpenFlow13"]`.
    pub protocols: Vec<String>,
    /// `netdev` for the userspace datapath.
    pub datapath_type: Option<String>,
    /// OpenFlow controller target, e.g. `tcp:10.0.0.1:6653`.
    pub controller: Option<String>,
    /// The Controller row's `max_backoff` in milliseconds (at least 1000): the longest
    /// vswitchd waits between attempts to reach a lost controller (its connect timeout
    /// grows with it). `None` leaves vswitchd's default, 8000.
    pub controller_max_backoff: Option<i64>,
    pub other_config: BTreeMap<String, String>,
    pub external_ids: BTreeMap<String, String>,
}

impl BridgeSpec {
    fn row(&self) -> Row {
        let mut row = Row::new();
        if let Some(f) = &self.fail_mode {
            row.insert("fail_mode".into(), Datum::scalar(f.as_str()));
        }
        row.insert(
            "protocols".into(),
            Datum::set(self.protocols.iter().map(String::as_str)),
        );
        if let Some(d) = &self.datapath_type {
            row.insert("datapath_type".into(), Datum::scalar(d.as_str()));
        }
        row.insert("other_config".into(), string_map(&self.other_config));
        row.insert("external_ids".into(), string_map(&self.external_ids));
        row
    }

    /// The Controller row for `target`.
    fn controller_row(&self, target: &str) -> Row {
        let mut row = Row::from([("target".into(), Datum::scalar(target))]);
        if let Some(ms) = self.controller_max_backoff {
            row.insert("max_backoff".into(), Datum::scalar(ms));
        }
        row
    }
}

/// Creates a bridge with its internal port and (optionally) its Controller row, and links
/// it from the root row. A `wait` makes the transaction fail if a bridge of that name
/// appeared meanwhile, instead of creating a duplicate.
pub fn create_bridge(txn: &mut Transaction, root: Uuid, spec: &BridgeSpec) -> NamedRow {
    txn.wait_eq(
        BRIDGE,
        vec![Condition::eq("name", Datum::scalar(spec.name.as_str()))],
        &["name"],
        vec![],
    );
    let iface = txn.insert(
        INTERFACE,
        Row::from([
            ("name".into(), Datum::scalar(spec.name.as_str())),
            ("type".into(), Datum::scalar("internal")),
        ]),
    );
    let port = txn.insert(
        PORT,
        Row::from([
            ("name".into(), Datum::scalar(spec.name.as_str())),
            ("interfaces".into(), iface.datum()),
        ]),
    );
    let mut row = spec.row();
    row.insert("name".into(), Datum::scalar(spec.name.as_str()));
    row.insert("ports".into(), port.datum());
    if let Some(target) = &spec.controller {
        let c = txn.insert(CONTROLLER, spec.controller_row(target));
        row.insert("controller".into(), c.datum());
    }
    let bridge = txn.insert(BRIDGE, row);
    txn.mutate(
        OPEN_VSWITCH,
        vec![Condition::uuid(root)],
        vec![Mutation::insert("bridges", bridge.datum())],
    );
    bridge
}

/// Brings an existing bridge's settings to `spec`: fail_mode, protocols and datapath_type
/// are set, the spec's `other_config` and `external_ids` keys are set one by one (keys
/// others wrote are kept), and, when the spec names a controller, the bridge's Controller
/// rows are replaced by one for that target (old rows are garbage-collected: Controller
/// is not a root table). Name and ports are untouched.
pub fn update_bridge(txn: &mut Transaction, bridge: Uuid, spec: &BridgeSpec) {
    let mut row = spec.row();
    row.remove("other_config");
    row.remove("external_ids");
    if let Some(target) = &spec.controller {
        let c = txn.insert(CONTROLLER, spec.controller_row(target));
        row.insert("controller".into(), c.datum());
    }
    txn.update(BRIDGE, vec![Condition::uuid(bridge)], row);
    for (column, map) in [
        ("other_config", &spec.other_config),
        ("external_ids", &spec.external_ids),
    ] {
        for (k, v) in map {
            set_map_key(txn, BRIDGE, bridge, column, k, v);
        }
    }
}

/// Plans the transaction that makes bridge `spec.name` exist with `spec`'s settings:
/// created (with its Controller row) if missing, updated if any setting differs, `None`
/// when it already matches.
pub fn ensure_bridge(
    replica: &Replica,
    root: Uuid,
    spec: &BridgeSpec,
) -> Result<Option<Transaction>, RowError> {
    let mut txn = Transaction::new(DATABASE);
    let Some(bridge) = cached_bridge_by_name(replica, &spec.name).transpose()? else {
        create_bridge(&mut txn, root, spec);
        return Ok(Some(txn));
    };
    let mut protocols = spec.protocols.clone();
    protocols.sort();
    let mut have_protocols = bridge.protocols.clone();
    have_protocols.sort();
    let controllers: Vec<Cow<'_, Controller>> = bridge
        .controller
        .iter()
        .filter_map(|u| cached_row::<Controller>(replica, u))
        .collect::<Result<_, _>>()?;
    let controller_ok = |t: &String| match controllers.as_slice() {
        [c] => {
            c.target == *t
                && (spec.controller_max_backoff.is_none()
                    || c.max_backoff == spec.controller_max_backoff)
        }
        _ => false,
    };
    let maps_ok = |want: &BTreeMap<String, String>, have: &BTreeMap<String, String>| {
        want.iter().all(|(k, v)| have.get(k) == Some(v))
    };
    let in_sync = (spec.fail_mode.is_none() || bridge.fail_mode == spec.fail_mode)
        && protocols == have_protocols
        && (spec.datapath_type.is_none() || bridge.datapath_type == spec.datapath_type)
        && spec.controller.as_ref().is_none_or(controller_ok)
        && maps_ok(&spec.other_config, &bridge.other_config)
        && maps_ok(&spec.external_ids, &bridge.external_ids);
    if in_sync {
        return Ok(None);
    }
    update_bridge(&mut txn, bridge.uuid, spec);
    Ok(Some(txn))
}

/// A tunnel port to one remote transport node.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelSpec {
    pub name: String,
    /// `geneve`, `vxlan` or `stt`.
    pub kind: String,
    pub remote_ip: String,
    pub local_ip: Option<String>,
    /// `flow`: the VNI is set per packet by the pipeline.
    pub key: String,
    pub external_ids: BTreeMap<String, String>,
}

/// Inserts a tunnel Interface and Port and adds the port to `bridge`.
pub fn add_tunnel_port(txn: &mut Transaction, bridge: Uuid, spec: &TunnelSpec) -> NamedRow {
    let port = insert_tunnel_rows(txn, spec);
    txn.mutate(
        BRIDGE,
        vec![Condition::uuid(bridge)],
        vec![Mutation::insert("ports", port.datum())],
    );
    port
}

/// The Interface and Port rows of a tunnel port, not yet attached to a bridge.
fn insert_tunnel_rows(txn: &mut Transaction, spec: &TunnelSpec) -> NamedRow {
    let options = spec.options();
    let iface = txn.insert(
        INTERFACE,
        Row::from([
            ("name".into(), Datum::scalar(spec.name.as_str())),
            ("type".into(), Datum::scalar(spec.kind.as_str())),
            ("options".into(), string_map(&options)),
            ("external_ids".into(), string_map(&spec.external_ids)),
        ]),
    );
    txn.insert(
        PORT,
        Row::from([
            ("name".into(), Datum::scalar(spec.name.as_str())),
            ("interfaces".into(), iface.datum()),
            ("external_ids".into(), string_map(&spec.external_ids)),
        ]),
    )
}

impl TunnelSpec {
    /// Whether an interface's `options` are exactly [`TunnelSpec::options`], without
    /// building that map.
    fn options_match(&self, have: &BTreeMap<String, String>) -> bool {
        have.len() == 2 + usize::from(self.local_ip.is_some())
            && have.get("remote_ip") == Some(&self.remote_ip)
            && have.get("key") == Some(&self.key)
            && self
                .local_ip
                .as_ref()
                .is_none_or(|l| have.get("local_ip") == Some(l))
    }

    fn options(&self) -> BTreeMap<String, String> {
        let mut options = BTreeMap::from([
            ("remote_ip".to_owned(), self.remote_ip.clone()),
            ("key".to_owned(), self.key.clone()),
        ]);
        if let Some(l) = &self.local_ip {
            options.insert("local_ip".into(), l.clone());
        }
        options
    }
}

/// Plans one transaction that makes the tunnel ports the controller owns on `bridge`
/// (ports with `external_ids:<owner_key>`) exactly `desired`, matched by port name:
/// missing ones are added, unwanted ones removed, and an existing one whose type or
/// options differ is updated in place. Each of `desired` should carry `owner_key` in its
/// `external_ids`, or the port it adds is not recognised as owned on the next sync. The
/// transaction starts with a `wait` on the bridge's port set as this replica saw it, so a
/// concurrent change makes it fail rather than act on stale data; re-read and retry then.
/// Returns `None` when nothing needs to change. Ports without `owner_key` are never
/// touched.
pub fn sync_tunnels(
    replica: &Replica,
    bridge: &Bridge,
    owner_key: &str,
    desired: &[TunnelSpec],
) -> Result<Option<Transaction>, RowError> {
    let mut txn = Transaction::new(DATABASE);
    wait_bridge_ports(&mut txn, bridge);
    let ports = cached_ports_of(replica, bridge)?;
    let owned: BTreeMap<&str, &Port> = ports
        .iter()
        .filter(|p| p.external_ids.contains_key(owner_key))
        .map(|p| (p.name.as_str(), &**p))
        .collect();
    // The bridge's port set changes by one mutate for all tunnels, not one per tunnel:
    // a hypervisor joining a fabric gains a hundred tunnels in one sync.
    let mut added: Vec<Atom> = Vec::new();
    let mut removed: Vec<Atom> = Vec::new();
    for spec in desired {
        match owned.get(spec.name.as_str()) {
            None => {
                added.push(Atom::NamedUuid(
                    insert_tunnel_rows(&mut txn, spec).name().to_owned(),
                ));
            }
            Some(port) => {
                for iface in cached_interfaces_of(replica, port)? {
                    if iface.kind != spec.kind || !spec.options_match(&iface.options) {
                        txn.update(
                            INTERFACE,
                            vec![Condition::uuid(iface.uuid)],
                            Row::from([
                                ("type".into(), Datum::scalar(spec.kind.as_str())),
                                ("options".into(), string_map(&spec.options())),
                            ]),
                        );
                    }
                }
            }
        }
    }
    let wanted: BTreeSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
    for (name, port) in &owned {
        if !wanted.contains(name) {
            removed.push(Atom::Uuid(port.uuid));
        }
    }
    let mut mutations = Vec::new();
    if !added.is_empty() {
        mutations.push(Mutation::insert("ports", Datum::set(added)));
    }
    if !removed.is_empty() {
        mutations.push(Mutation::delete("ports", Datum::set(removed)));
    }
    if !mutations.is_empty() {
        txn.mutate(BRIDGE, vec![Condition::uuid(bridge.uuid)], mutations);
    }
    Ok((txn.operations.len() > 1).then_some(txn))
}

/// Removes a port from a bridge; the Port and its Interfaces are garbage-collected.
pub fn remove_port(txn: &mut Transaction, bridge: Uuid, port: Uuid) {
    txn.mutate(
        BRIDGE,
        vec![Condition::uuid(bridge)],
        vec![Mutation::delete("ports", Datum::uuid(port))],
    );
}

/// Optimistic concurrency: fail the transaction unless the bridge's port set is still
/// what the caller's replica showed.
pub fn wait_bridge_ports(txn: &mut Transaction, bridge: &Bridge) {
    txn.wait_eq(
        BRIDGE,
        vec![Condition::uuid(bridge.uuid)],
        &["ports"],
        vec![Row::from([(
            "ports".into(),
            Datum::set(bridge.ports.iter().copied()),
        )])],
    );
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

    const VSWITCH_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

    fn vswitch_schema() -> DatabaseSchema {
        let text = std::fs::read_to_string(VSWITCH_SCHEMA)
            .unwrap_or_else(|e| panic!("{VSWITCH_SCHEMA}: {e} (install openvswitch-common)"));
        DatabaseSchema::from_json(&serde_json::from_str(&text).unwrap()).unwrap()
    }

    /// A value for every column of `table`, none of them the default, so that a typed
    /// row that reads a column would see it.
    fn full_row(schema: &DatabaseSchema, table: &str) -> Row {
        use crate::schema::AtomicType;
        let atom = |ty: AtomicType, col: &str| match ty {
            AtomicType::Integer => Atom::Integer(7),
            AtomicType::Real => Atom::Real(1.5),
            AtomicType::Boolean => Atom::Boolean(true),
            AtomicType::String => Atom::String(format!("v-{col}")),
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
                (col.clone(), d)
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
                .filter(|(c, _)| columns.contains(&c.as_str()))
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
    }

    #[test]
    fn cached_rows_never_outlive_their_row_version() {
        use crate::monitor::UpdateFormat;
        let mut r = Replica::new(vswitch_schema());
        r.set_monitored(&monitor_requests());
        let (p, i) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let (ps, is) = (p.to_string(), i.to_string());
        r.apply(
            UpdateFormat::Update2,
            &json!({
                "Port": {&ps: {"initial": {"name": "vm1", "interfaces": ["uuid", &is]}}},
                "Interface": {&is: {"initial": {"name": "vm1", "ofport": 3,
                    "external_ids": ["map", [["iface-id", "lp1"]]]}}},
            }),
        )
        .unwrap();
        let iface = |r: &Replica| cached_row::<Interface>(r, &i).map(|x| x.map(Cow::into_owned));
        let first = iface(&r).unwrap().unwrap();
        assert_eq!((first.iface_id(), first.ofport), (Some("lp1"), Some(3)));
        // Read twice: the same decoded copy, borrowed.
        let a = cached_row::<Interface>(&r, &i).unwrap().unwrap();
        let b = cached_row::<Interface>(&r, &i).unwrap().unwrap();
        assert!(matches!((&a, &b), (Cow::Borrowed(x), Cow::Borrowed(y)) if std::ptr::eq(*x, *y)));

        // A map diff and a scalar change: the typed row shows both.
        r.apply(
            UpdateFormat::Update2,
            &json!({"Interface": {&is: {"modify": {"ofport": 4,
                "external_ids": ["map", [["ctl-installed", "true"]]]}}}}),
        )
        .unwrap();
        let second = iface(&r).unwrap().unwrap();
        assert_eq!(second.ofport, Some(4));
        assert_eq!(
            second.external_ids.get("ctl-installed").map(String::as_str),
            Some("true")
        );
        assert_eq!(second.iface_id(), Some("lp1"));
        assert_eq!(rows::<Interface>(&r).next().unwrap().unwrap(), second);
        assert_eq!(cached_rows::<Interface>(&r).count(), 1);

        // A row that does not decode is cached as its error, until it is fixed.
        r.apply(
            UpdateFormat::Update2,
            &json!({"Port": {&ps: {"modify": {"tag": 5}}}}),
        )
        .unwrap();
        assert_eq!(cached_row::<Port>(&r, &p).unwrap().unwrap().tag, Some(5));
        r.apply(
            UpdateFormat::Update,
            &json!({"Port": {&ps: {"old": {"name": "vm1"}, "new": {"name": ["set", ["a", "b"]]}}}}),
        )
        .unwrap();
        assert!(matches!(
            cached_row::<Port>(&r, &p),
            Some(Err(RowError::WrongType { column: "name", .. }))
        ));
        r.apply(
            UpdateFormat::Update2,
            &json!({"Port": {&ps: {"modify": {"name": "vm2"}}}}),
        )
        .unwrap();
        assert_eq!(cached_row::<Port>(&r, &p).unwrap().unwrap().name, "vm2");

        // Deleted rows are gone from the cached reads too.
        r.apply(
            UpdateFormat::Update2,
            &json!({"Interface": {&is: {"delete": null}}, "Port": {&ps: {"delete": null}}}),
        )
        .unwrap();
        assert!(cached_row::<Interface>(&r, &i).is_none());
        assert!(cached_row::<Port>(&r, &p).is_none());
        assert_eq!(cached_rows::<Interface>(&r).count(), 0);
    }

    #[test]
    fn tunnel_port_ops() {
        let mut t = Transaction::new(DATABASE);
        let br = Uuid::new_v4();
        add_tunnel_port(
            &mut t,
            br,
            &TunnelSpec {
                name: "wt-0a0b0c0d".into(),
                kind: "geneve".into(),
                remote_ip: "192.0.2.2".into(),
                local_ip: Some("192.0.2.1".into()),
                key: "flow".into(),
                external_ids: BTreeMap::from([("ctl-remote".into(), "hv2".into())]),
            },
        );
        set_interface_external_id(&mut t, br, "ctl-installed", "true");
        let p = t.to_params();
        assert_eq!(
            p[1]["row"]["options"],
            json!([
                "map",
                [
                    ["key", "flow"],
                    ["local_ip", "192.0.2.1"],
                    ["remote_ip", "192.0.2.2"]
                ]
            ])
        );
        assert_eq!(p[3]["op"], "mutate");
        assert_eq!(
            p[4]["mutations"],
            json!([
                ["external_ids", "delete", "ctl-installed"],
                [
                    "external_ids",
                    "insert",
                    ["map", [["ctl-installed", "true"]]]
                ]
            ])
        );
    }
}
