//! The routing objects (DESIGN.md §4): [`LogicalRouter`], its [`RouterPort`]s (one per
//! attached switch, the default gateway of that switch's subnets) and its static
//! [`Route`]s. Connected subnets are implicit routes, so a router with ports and no
//! `Route` already routes between its switches.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::MacAddr;

/// A distributed router: it exists on every hypervisor that has a port on one of its
/// switches, and routes there.
///
/// `key` (1..=[`ROUTER_KEY_MAX`](super::ROUTER_KEY_MAX), unique, allocated by Weft and
/// never changed) names the router in the pipeline's `metadata` while a packet is being
/// routed, the way a VNI names a switch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogicalRouter {
    pub id: Uuid,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub key: u32,
}

/// A router's interface on one switch. `ips` are interface addresses with their prefix
/// length (`10.0.1.1/24`): the address answers ARP/ND and ping, the prefix is the
/// connected subnet routed to that switch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterPort {
    pub id: Uuid,
    pub name: String,
    pub router: Uuid,
    pub switch: Uuid,
    pub mac: MacAddr,
    pub ips: Vec<IpNet>,
}

impl RouterPort {
    /// The connected subnets, normalised (host bits cleared).
    pub fn subnets(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.ips.iter().map(IpNet::trunc)
    }

    /// The port's own addresses.
    pub fn addrs(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.ips.iter().map(IpNet::addr)
    }
}

/// A static route: packets for `prefix` (normalised) go to `nexthop`, which lies in a
/// subnet of one of the router's ports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub id: Uuid,
    pub router: Uuid,
    pub prefix: IpNet,
    pub nexthop: IpAddr,
}
