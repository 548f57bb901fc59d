//! Typed rows and transaction helpers for the Open vSwitch tables a controller manages
//! (`Open_vSwitch`, `Bridge`, `Port`, `Interface`, `Controller`, `Manager`; see
//! ovs-vswitchd.conf.db(5)).
//!
//! Rows are read from a [`Replica`](crate::Replica) through the generic layer: each typed
//! row takes the columns it knows, treats a column that was not monitored as empty, and
//! reports a column of the wrong type as an error naming the table, row and column. The
//! helpers append operations to a [`Transaction`](crate::Transaction) so that callers
//! combine them into one atomic `transact`.
//!
//! A controller re-reads the same bridge after every monitor update, and a hypervisor's
//! bridge holds hundreds of ports: [`cached_row`] and [`cached_rows`] borrow a typed row
//! that the replica decoded once for the row's current version, and the planning helpers
//! here read through them. [`monitor_requests`] asks only for the columns the typed rows
//! read, so that neither the wire nor the replica carries statistics and status columns
//! that change often and that nothing here looks at.
//!
//! The module knows no controller's conventions: which `external_ids` key marks a tunnel
//! or patch port as owned, or an interface as installed, is the caller's to pass.
//!
//! One file per concept, all re-exported here:
//! - `typed`: the [`TypedRow`] trait, [`RowError`], [`rows`] and [`row`];
//! - `tables`: the typed rows ([`OpenVSwitch`], [`Bridge`], [`Port`], [`Interface`],
//!   [`Controller`], [`Manager`]);
//! - `cache`: [`cached_row`] and [`cached_rows`], decoded once per row version;
//! - `monitored`: [`monitor_requests`], only the columns the typed rows read;
//! - `lookup`: the root row, a bridge by name, a bridge's ports, a port's interfaces;
//! - `bridge`: [`BridgeSpec`] and [`ensure_bridge`];
//! - `tunnel`: [`TunnelPort`] and [`sync_tunnels`];
//! - `patch`: [`PatchPort`] and [`sync_patch_ports`] (patch ports between bridges);
//! - `map_keys`: single map-column keys, such as an Interface's marks;
//! - `manager`: [`manager_settings`], the Manager rows that reach one address taken
//!   out of in-band control and given that manager's probe period;
//! - `target`: what an active `tcp:`/`ssl:` target dials, whichever way it is spelled,
//!   and [`respell`], the other spelling that makes vswitchd dial a controller again.

mod bridge;
mod cache;
mod lookup;
mod manager;
mod map_keys;
mod monitored;
mod patch;
mod tables;
mod target;
#[cfg(test)]
mod test_schema;
mod tunnel;
mod typed;

pub use bridge::{
    BridgeSpec, create_bridge, ensure_bridge, remove_port, update_bridge, wait_bridge_ports,
};
pub use cache::{CachedRow, cached_row, cached_rows, typed};
pub use lookup::{
    bound_interfaces, bridge_by_name, cached_bridge_by_name, cached_interfaces_of, cached_ports_of,
    cached_root, interfaces_of, ports_of, root,
};
pub use manager::{manager_settings, target_addr};
pub use map_keys::{
    remove_interface_external_id, remove_map_key, set_interface_external_id, set_map_key,
};
pub use monitored::{MONITORED_COLUMNS, monitor_requests, monitor_requests_for, root_requests_for};
pub use patch::{PatchPort, sync_patch_ports};
pub use tables::{Bridge, Controller, Interface, Manager, OpenVSwitch, Port};
pub use target::{
    DEFAULT_CONTROLLER_PORT, DEFAULT_MANAGER_PORT, Endpoint, endpoint, respell, same_endpoint,
};
pub use tunnel::{TunnelPort, add_tunnel_port, owned_tunnels, sync_tunnels};
pub use typed::{RowError, TypedRow, row, rows};

pub const DATABASE: &str = "Open_vSwitch";
pub const OPEN_VSWITCH: &str = "Open_vSwitch";
pub const BRIDGE: &str = "Bridge";
pub const PORT: &str = "Port";
pub const INTERFACE: &str = "Interface";
pub const CONTROLLER: &str = "Controller";
pub const MANAGER: &str = "Manager";
