//! The logical model: switches, ports and ACLs as operators declare them (DESIGN.md §4).
//!
//! This module owns the value types, their syntactic validation (names, MACs, IPs, CIDRs)
//! and [`LogicalModel`], an immutable snapshot of every object plus the indexes needed to
//! enforce uniqueness. Snapshots are built from persistent maps, so cloning one is O(1):
//! the writer clones the current snapshot, applies a batch of [`Change`]s to the clone and
//! publishes it as a new `Arc`, and readers (the API, later the pipeline compiler) keep
//! whatever consistent view they took for as long as they like.
//!
//! - [`values`]: MACs, names, port IPs and CIDRs, with their syntactic checks.
//! - [`objects`]: switches, ports, ACLs and the enums an ACL is made of.
//! - [`routing`]: routers, router ports and static routes.
//! - [`vtep_binding`]: hardware VTEP port/VLAN bindings to switches.
//! - [`change`]: [`Change`], one durable edit, and [`ModelDelta`], what two snapshots differ in.
//! - [`snapshot`]: [`LogicalModel`] with its indexes, allocators and startup checks.
//! - `zones`: the conntrack-zone bitmap the snapshot allocates from.

pub mod change;
pub mod objects;
pub mod routing;
mod routing_tables;
pub mod snapshot;
pub mod values;
pub mod vtep_binding;
mod zones;

#[cfg(test)]
pub(crate) mod fixtures;

pub use change::{Change, ModelDelta};
pub use objects::{
    Acl, AclAction, Direction, Ethertype, LogicalPort, LogicalSwitch, ObjectKind, Protocol,
    ProviderNet,
};
pub use routing::{LogicalRouter, Route, RouterPort};
pub use snapshot::{LogicalModel, ModelError};
pub use values::{MacAddr, ValueError, check_name, parse_cidr, parse_port_ip};
pub use vtep_binding::{VTEP_VLAN_MAX, VtepBinding};

/// Largest VXLAN/Geneve virtual network identifier (24 bits).
pub const VNI_MAX: u32 = 16_777_215;
/// The 802.1Q VLAN ids a provider network may use (0 is "priority tag only" and 4095 is
/// reserved by the standard).
pub const VLAN_MIN: u16 = 1;
pub const VLAN_MAX: u16 = 4094;
/// Largest router key: routers share the pipeline's `metadata` with switches, above
/// [`ROUTER_METADATA_BASE`], so the two can never collide.
pub const ROUTER_KEY_MAX: u32 = 16_777_215;
/// `metadata` of a packet being routed is this plus its router's key (bit 32 set; VNIs
/// stay below 2^24).
pub const ROUTER_METADATA_BASE: u64 = 1 << 32;
/// Largest per-switch logical port key; reg6/reg7 value 0 means "from a tunnel".
pub const PORT_KEY_MAX: u16 = 32_767;
/// Largest ACL priority.
pub const ACL_PRIORITY_MAX: u16 = 32_767;
/// Longest object name, in bytes.
pub const NAME_MAX_LEN: usize = 64;
/// Longest switch description, in bytes.
pub const DESCRIPTION_MAX_LEN: usize = 1024;
/// Most IP addresses one logical port may carry.
pub const PORT_IPS_MAX: usize = 64;
/// Most flood-and-learn VTEPs one switch may list (each is a tunnel port on every
/// hypervisor of the switch and a bucket in its flood group).
pub const FLOOD_VTEPS_MAX: usize = 64;
