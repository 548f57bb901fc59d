//! What callers of the writer say and hear back: a [`Command`] (with its [`AclSpec`]) in,
//! an [`Applied`] out. Plain data; checking it is [`plan`](super::plan)'s job.

use std::net::IpAddr;

use ipnet::IpNet;
use uuid::Uuid;

use crate::model::{AclAction, Change, Direction, Ethertype, MacAddr, Protocol, ProviderNet};

/// A requested change to the logical model. References (`switch`, `port`, `router`,
/// `router_port`) are names or ids and are resolved by the writer, against the model the
/// write is applied to.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    SwitchCreate {
        name: String,
        vni: Option<u32>,
        description: String,
        /// Bridged onto this physical network instead of tunnelled (DESIGN.md §4).
        provider: Option<ProviderNet>,
        /// Flood-and-learn VXLAN endpoints on the switch's segment (DESIGN.md §4).
        flood_vteps: Vec<IpAddr>,
    },
    /// Changes what is given; `None` leaves a field as it is (an empty `flood_vteps`
    /// clears the list).
    SwitchUpdate {
        switch: String,
        description: Option<String>,
        flood_vteps: Option<Vec<IpAddr>>,
    },
    SwitchDelete {
        switch: String,
        cascade: bool,
    },
    PortCreate {
        switch: String,
        name: String,
        mac: MacAddr,
        ips: Vec<IpAddr>,
        port_security: bool,
    },
    PortUpdate {
        port: String,
        mac: Option<MacAddr>,
        ips: Option<Vec<IpAddr>>,
        port_security: Option<bool>,
    },
    PortDelete {
        port: String,
    },
    AclCreate(AclSpec),
    AclDelete {
        acl: Uuid,
    },
    RouterCreate {
        name: String,
        description: String,
    },
    RouterDelete {
        router: String,
        cascade: bool,
    },
    RouterPortCreate {
        router: String,
        switch: String,
        name: String,
        mac: MacAddr,
        /// Interface addresses with their prefix length, as given (host bits kept).
        ips: Vec<IpNet>,
    },
    RouterPortDelete {
        router_port: String,
    },
    RouteCreate {
        router: String,
        /// As given; the plan clears its host bits.
        prefix: IpNet,
        nexthop: IpAddr,
    },
    RouteDelete {
        route: Uuid,
    },
    /// Bind a hardware VTEP's port and VLAN (0 = untagged) to a switch.
    VtepBind {
        vtep: String,
        port: String,
        vlan: u16,
        switch: String,
    },
    VtepUnbind {
        vtep: String,
        port: String,
        vlan: u16,
    },
}

/// The caller's description of a new ACL, before it is checked and given an id.
#[derive(Clone, Debug, PartialEq)]
pub struct AclSpec {
    pub port: String,
    pub direction: Direction,
    pub priority: u32,
    pub action: AclAction,
    pub protocol: Option<Protocol>,
    pub ethertype: Ethertype,
    pub remote_cidr: Option<IpNet>,
    pub port_min: Option<u32>,
    pub port_max: Option<u32>,
}

/// A write that is durable and visible: its revision and exactly what it changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub revision: u64,
    pub changes: Vec<Change>,
}
