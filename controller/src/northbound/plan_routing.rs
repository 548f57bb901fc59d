//! The routing half of [`plan`](super::plan()): checks router, router port and route
//! commands against a model and turns them into changes, plus the rules routing adds to
//! switch and port writes (a logical port may not take its router port's MAC or an
//! address; deleting a switch takes its router port, and the routes that needed it, along).
//!
//! The rules keep the routed network unambiguous for the pipeline: a switch has at most
//! one router (so its gateway is one MAC), a router's connected subnets never overlap (so
//! a destination picks one egress port), and every static route's next hop lies in a
//! connected subnet (so the router knows which switch, and which port's MAC, it leaves by).

use std::net::IpAddr;

use ipnet::IpNet;
use uuid::Uuid;

use crate::error::ApiError;
use crate::model::{
    Change, LogicalModel, LogicalRouter, LogicalSwitch, MacAddr, PORT_IPS_MAX, Route, RouterPort,
    check_name,
};

#[cfg(test)]
mod tests;

pub(super) fn router_create(
    model: &LogicalModel,
    name: &str,
    description: &str,
) -> Result<Vec<Change>, ApiError> {
    check_name(name).map_err(|e| ApiError::invalid("name", e))?;
    super::plan::check_description(description)?;
    if model.router_name_taken(name) {
        return Err(ApiError::conflict(
            "name",
            format!("a router named {name:?} already exists"),
        ));
    }
    let key = model
        .free_router_key()
        .ok_or_else(|| ApiError::conflict("name", "every router key is in use"))?;
    Ok(vec![Change::PutRouter(LogicalRouter {
        id: Uuid::new_v4(),
        name: name.to_string(),
        description: description.to_string(),
        key,
    })])
}

pub(super) fn router_delete(
    model: &LogicalModel,
    router: &str,
    cascade: bool,
) -> Result<Vec<Change>, ApiError> {
    let r = find_router(model, router)?;
    let ports: Vec<&RouterPort> = model.ports_of_router(&r.id).collect();
    if !ports.is_empty() && !cascade {
        let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
        return Err(ApiError::conflict(
            "router",
            format!(
                "router {:?} still has {} port(s) ({}); delete them or pass cascade: true",
                r.name,
                ports.len(),
                names.join(", ")
            ),
        ));
    }
    let mut changes: Vec<Change> = model
        .routes_of_router(&r.id)
        .map(|route| Change::DeleteRoute { id: route.id })
        .collect();
    changes.extend(ports.iter().map(|p| Change::DeleteRouterPort { id: p.id }));
    changes.push(Change::DeleteRouter { id: r.id });
    Ok(changes)
}

/// The arguments of `router_port_create`, borrowed from the command.
pub(super) struct RouterPortSpec<'a> {
    pub router: &'a str,
    pub switch: &'a str,
    pub name: &'a str,
    pub mac: MacAddr,
    pub ips: &'a [IpNet],
}

pub(super) fn router_port_create(
    model: &LogicalModel,
    spec: &RouterPortSpec<'_>,
) -> Result<Vec<Change>, ApiError> {
    check_name(spec.name).map_err(|e| ApiError::invalid("name", e))?;
    spec.mac
        .check_port_mac()
        .map_err(|e| ApiError::invalid("mac", e))?;
    check_interface_ips(spec.ips)?;
    let router = find_router(model, spec.router)?;
    let sw = model
        .find_switch(spec.switch)
        .ok_or_else(|| ApiError::not_found("switch", "switch", spec.switch))?;
    if model.router_port_name_taken(spec.name) {
        return Err(ApiError::conflict(
            "name",
            format!("a router port named {:?} already exists", spec.name),
        ));
    }
    if sw.provider.is_some() {
        return Err(ApiError::conflict(
            "switch",
            format!(
                "switch {:?} is a provider switch: router ports on provider switches need a \
                 gateway design that Weft does not have yet",
                sw.name
            ),
        ));
    }
    if let Some(other) = model.router_port_of_switch(&sw.id) {
        let owner = model
            .router(&other.router)
            .map_or_else(|| other.router.to_string(), |r| r.name.clone());
        return Err(ApiError::conflict(
            "switch",
            format!(
                "switch {:?} is already attached to router {owner:?} by router port {:?}; \
                 a switch has at most one router",
                sw.name, other.name
            ),
        ));
    }
    if let Some(p) = model.port_by_mac(sw.id, spec.mac) {
        return Err(ApiError::conflict(
            "mac",
            format!(
                "mac {} is already used by port {:?} on switch {:?}",
                spec.mac, p.name, sw.name
            ),
        ));
    }
    for ip in spec.ips {
        if let Some(p) = model
            .ports_of_switch(&sw.id)
            .find(|p| p.ips.contains(&ip.addr()))
        {
            return Err(ApiError::conflict(
                "ips",
                format!(
                    "ips: {} is already used by port {:?} on switch {:?}",
                    ip.addr(),
                    p.name,
                    sw.name
                ),
            ));
        }
    }
    for other in model.ports_of_router(&router.id) {
        for mine in spec.ips {
            if let Some(theirs) = other.subnets().find(|s| overlaps(&mine.trunc(), s)) {
                return Err(ApiError::conflict(
                    "ips",
                    format!(
                        "ips: subnet {} overlaps {theirs} of router port {:?} of router {:?}: \
                         routing would be ambiguous",
                        mine.trunc(),
                        other.name,
                        router.name
                    ),
                ));
            }
        }
    }
    Ok(vec![Change::PutRouterPort(RouterPort {
        id: Uuid::new_v4(),
        name: spec.name.to_string(),
        router: router.id,
        switch: sw.id,
        mac: spec.mac,
        ips: spec.ips.to_vec(),
    })])
}

pub(super) fn router_port_delete(
    model: &LogicalModel,
    router_port: &str,
) -> Result<Vec<Change>, ApiError> {
    let rp = model
        .find_router_port(router_port)
        .ok_or_else(|| ApiError::not_found("router_port", "router_port", router_port))?;
    let mut changes = orphaned_routes(model, rp);
    changes.push(Change::DeleteRouterPort { id: rp.id });
    Ok(changes)
}

pub(super) fn route_create(
    model: &LogicalModel,
    router: &str,
    prefix: IpNet,
    nexthop: IpAddr,
) -> Result<Vec<Change>, ApiError> {
    let prefix = prefix.trunc();
    if prefix.addr().is_ipv4() != nexthop.is_ipv4() {
        return Err(ApiError::invalid(
            "nexthop",
            format!("next hop {nexthop} is not of the same IP family as prefix {prefix}"),
        ));
    }
    crate::model::parse_port_ip(&nexthop.to_string())
        .map_err(|e| ApiError::invalid("nexthop", e))?;
    let r = find_router(model, router)?;
    if let Some(own) = model
        .ports_of_router(&r.id)
        .find(|p| p.addrs().any(|a| a == nexthop))
    {
        return Err(ApiError::invalid(
            "nexthop",
            format!(
                "next hop {nexthop} is the router's own address (router port {:?})",
                own.name
            ),
        ));
    }
    if !model
        .ports_of_router(&r.id)
        .any(|p| p.subnets().any(|s| s.contains(&nexthop)))
    {
        let subnets: Vec<String> = model
            .ports_of_router(&r.id)
            .flat_map(|p| p.subnets().map(|s| s.to_string()).collect::<Vec<_>>())
            .collect();
        return Err(ApiError::invalid(
            "nexthop",
            format!(
                "next hop {nexthop} is in no subnet of router {:?} ({})",
                r.name,
                if subnets.is_empty() {
                    "it has no ports".to_string()
                } else {
                    subnets.join(", ")
                }
            ),
        ));
    }
    if let Some(dup) = model.routes_of_router(&r.id).find(|x| x.prefix == prefix) {
        return Err(ApiError::conflict(
            "prefix",
            format!(
                "router {:?} already has a route for prefix {prefix} (via {}, id {})",
                r.name, dup.nexthop, dup.id
            ),
        ));
    }
    Ok(vec![Change::PutRoute(Route {
        id: Uuid::new_v4(),
        router: r.id,
        prefix,
        nexthop,
    })])
}

pub(super) fn route_delete(model: &LogicalModel, route: &Uuid) -> Result<Vec<Change>, ApiError> {
    if model.route(route).is_none() {
        return Err(ApiError::not_found("route", "route", &route.to_string()));
    }
    Ok(vec![Change::DeleteRoute { id: *route }])
}

/// `switch_delete`'s part: a switch attached to a router is refused unless `cascade`,
/// which deletes its router port and the routes that relied on it.
pub(super) fn switch_delete(
    model: &LogicalModel,
    sw: &LogicalSwitch,
    cascade: bool,
) -> Result<Vec<Change>, ApiError> {
    let Some(rp) = model.router_port_of_switch(&sw.id) else {
        return Ok(Vec::new());
    };
    if !cascade {
        return Err(ApiError::conflict(
            "switch",
            format!(
                "switch {:?} is attached to a router by router port {:?}; delete it or pass \
                 cascade: true",
                sw.name, rp.name
            ),
        ));
    }
    let mut changes = orphaned_routes(model, rp);
    changes.push(Change::DeleteRouterPort { id: rp.id });
    Ok(changes)
}

/// `port_create`/`port_update`'s part: a logical port may not take the MAC or an address
/// of the router port on its switch (the gateway's ARP answer and routed packets' source
/// MAC would then be ambiguous).
pub(super) fn check_logical_port(
    model: &LogicalModel,
    switch: &Uuid,
    mac: Option<MacAddr>,
    ips: Option<&[IpAddr]>,
) -> Result<(), ApiError> {
    let Some(rp) = model.router_port_of_switch(switch) else {
        return Ok(());
    };
    if mac == Some(rp.mac) {
        return Err(ApiError::conflict(
            "mac",
            format!("mac {} is router port {:?}'s", rp.mac, rp.name),
        ));
    }
    for ip in ips.into_iter().flatten() {
        if rp.addrs().any(|a| a == *ip) {
            return Err(ApiError::conflict(
                "ips",
                format!("ips: {ip} is an address of router port {:?}", rp.name),
            ));
        }
    }
    Ok(())
}

fn find_router<'m>(model: &'m LogicalModel, router: &str) -> Result<&'m LogicalRouter, ApiError> {
    model
        .find_router(router)
        .ok_or_else(|| ApiError::not_found("router", "router", router))
}

/// Deletions of the routes of `rp`'s router whose next hop no other port of the router
/// still reaches once `rp` is gone.
fn orphaned_routes(model: &LogicalModel, rp: &RouterPort) -> Vec<Change> {
    let remaining: Vec<IpNet> = model
        .ports_of_router(&rp.router)
        .filter(|p| p.id != rp.id)
        .flat_map(|p| p.subnets().collect::<Vec<_>>())
        .collect();
    model
        .routes_of_router(&rp.router)
        .filter(|r| !remaining.iter().any(|s| s.contains(&r.nexthop)))
        .map(|r| Change::DeleteRoute { id: r.id })
        .collect()
}

/// Two prefixes overlap when one contains the other (prefixes nest or are disjoint).
fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The checks of a router port's `ips` that need no model: at least one, each a usable
/// host address of its own subnet, and no two subnets overlapping.
fn check_interface_ips(ips: &[IpNet]) -> Result<(), ApiError> {
    if ips.is_empty() {
        return Err(ApiError::invalid(
            "ips",
            "a router port needs at least one address in CIDR form (e.g. 10.0.0.1/24)",
        ));
    }
    if ips.len() > PORT_IPS_MAX {
        return Err(ApiError::invalid(
            "ips",
            format!(
                "{} addresses given, at most {PORT_IPS_MAX} allowed",
                ips.len()
            ),
        ));
    }
    for (i, ip) in ips.iter().enumerate() {
        let addr = ip.addr();
        crate::model::parse_port_ip(&addr.to_string())
            .map_err(|e| ApiError::invalid("ips", format!("{ip}: {e}")))?;
        if let IpNet::V4(v4) = ip
            && v4.prefix_len() <= 30
            && (v4.addr() == v4.network() || v4.addr() == v4.broadcast())
        {
            return Err(ApiError::invalid(
                "ips",
                format!(
                    "{ip}: {addr} is the {} address of {}, not a host address",
                    if v4.addr() == v4.network() {
                        "network"
                    } else {
                        "broadcast"
                    },
                    v4.trunc()
                ),
            ));
        }
        if let Some(other) = ips
            .iter()
            .skip(i + 1)
            .find(|o| overlaps(&ip.trunc(), &o.trunc()))
        {
            return Err(ApiError::invalid(
                "ips",
                format!(
                    "{ip} and {other} overlap ({} and {}); a port's subnets must be distinct",
                    ip.trunc(),
                    other.trunc()
                ),
            ));
        }
    }
    Ok(())
}
