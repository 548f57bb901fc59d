//! Finding rows by their relations: the root row, a bridge by name, a bridge's ports, a
//! port's interfaces, the interfaces bound to logical ports. Each read has a `cached_`
//! form that borrows the replica's decoded copies.

use std::borrow::Cow;

use crate::datum::Datum;
use crate::monitor::Replica;

use super::cache::{cached_row, cached_rows, typed};
use super::typed::{RowError, TypedRow, row, rows};
use super::{BRIDGE, Bridge, Interface, OpenVSwitch, Port};

/// The single `Open_vSwitch` row, if the replica has it.
pub fn root(replica: &Replica) -> Option<Result<OpenVSwitch, RowError>> {
    rows::<OpenVSwitch>(replica).next()
}

/// [`root`], borrowed from the replica's decoded copy.
pub fn cached_root(replica: &Replica) -> Option<Result<Cow<'_, OpenVSwitch>, RowError>> {
    cached_rows::<OpenVSwitch>(replica).next()
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

/// Interfaces that carry `external_ids:iface-id` (VM NICs bound to logical ports).
pub fn bound_interfaces(replica: &Replica) -> Result<Vec<Interface>, RowError> {
    rows::<Interface>(replica)
        .filter(|r| r.as_ref().map_or(true, |i| i.iface_id().is_some()))
        .collect()
}
