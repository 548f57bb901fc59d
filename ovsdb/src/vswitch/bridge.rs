//! The controller's bridge: creating it with its Controller row, bringing an existing one
//! to a [`BridgeSpec`], and the port-set operations (remove a port, wait on the set).

use std::borrow::Cow;
use std::collections::BTreeMap;

use uuid::Uuid;

use crate::datum::{Datum, Row};
use crate::monitor::Replica;
use crate::ops::{Condition, Mutation, NamedRow, Transaction};

use super::cache::cached_row;
use super::lookup::cached_bridge_by_name;
use super::map_keys::{set_map_key, string_map};
use super::target::{DEFAULT_CONTROLLER_PORT, same_endpoint};
use super::typed::RowError;
use super::{BRIDGE, Bridge, CONTROLLER, Controller, DATABASE, INTERFACE, OPEN_VSWITCH, PORT};

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
    /// The Controller row's `inactivity_probe` in milliseconds: how long vswitchd lets the
    /// connection idle before it probes the controller. A controller that probes on a
    /// shorter period of its own sets this above it, so that only one side probes. `None`
    /// leaves vswitchd's default, 5000.
    pub controller_inactivity_probe: Option<i64>,
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
        if let Some(ms) = self.controller_inactivity_probe {
            row.insert("inactivity_probe".into(), Datum::scalar(ms));
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
        // Either spelling of the target is this controller ([`respell`](super::respell)).
        [c] => {
            same_endpoint(&c.target, t, DEFAULT_CONTROLLER_PORT)
                && (spec.controller_max_backoff.is_none()
                    || c.max_backoff == spec.controller_max_backoff)
                && (spec.controller_inactivity_probe.is_none()
                    || c.inactivity_probe == spec.controller_inactivity_probe)
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
    // A repair of something else keeps the target as the switch spells it: to vswitchd
    // another string is another controller, and it would drop the live connection.
    let spelled;
    let spec = match (controllers.as_slice(), &spec.controller) {
        ([c], Some(t))
            if c.target != *t && same_endpoint(&c.target, t, DEFAULT_CONTROLLER_PORT) =>
        {
            spelled = BridgeSpec {
                controller: Some(c.target.clone()),
                ..spec.clone()
            };
            &spelled
        }
        _ => spec,
    };
    update_bridge(&mut txn, bridge.uuid, spec);
    Ok(Some(txn))
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
