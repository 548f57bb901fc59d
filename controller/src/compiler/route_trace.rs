//! What `trace` says about routing: for each pass through a router's lookup (table 26),
//! which router, which route (connected subnet or static route), the next hop, the egress
//! router port and the TTL before and after — or why the router dropped the packet (TTL
//! expired, no route, a static route whose next hop is no known port).

use std::net::IpAddr;

use serde::Serialize;
use uuid::Uuid;

use super::table::{Packet, Step};
use super::{COOKIE_PIPELINE, cookie_for, tables};
use crate::model::{LogicalModel, ROUTER_METADATA_BASE, RouterPort};

/// One routing decision on the way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteDecision {
    pub node: String,
    pub router: String,
    pub router_id: Uuid,
    /// `routed`, `ttl_expired`, `no_route` or `nexthop_unknown`.
    pub verdict: &'static str,
    /// The prefix that matched (connected subnet or static route).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `connected` or `static`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nexthop: Option<IpAddr>,
    /// The router port the packet leaves through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress: Option<String>,
    /// TTL / hop limit as the packet reached the router.
    pub ttl: u8,
    /// TTL / hop limit as it leaves (one less when routed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_out: Option<u8>,
    pub reason: String,
}

fn dst_ip(p: &Packet) -> Option<IpAddr> {
    match p.eth_type {
        0x0800 => Some(IpAddr::V4(p.ip4_dst)),
        0x86dd => Some(IpAddr::V6(p.ip6_dst)),
        _ => None,
    }
}

/// The routing decision a step in table 26 stands for; `None` for any other step
/// (including table 26's second half of a neighbour advertisement, which carries a
/// switch's VNI, not a router's).
pub(super) fn route_decision(
    model: &LogicalModel,
    node: &str,
    step: &Step,
) -> Option<RouteDecision> {
    let p = &step.packet;
    if step.table != tables::L3_LOOKUP || p.metadata < ROUTER_METADATA_BASE {
        return None;
    }
    let key = u32::try_from(p.metadata - ROUTER_METADATA_BASE).ok()?;
    let router = model.routers().find(|r| r.key == key)?;
    let cookie = step.cookie.unwrap_or(COOKIE_PIPELINE);
    let dst = dst_ip(p);
    let egress_of = |rp: &RouterPort| Some(rp.name.clone());
    let mut d = RouteDecision {
        node: node.to_string(),
        router: router.name.clone(),
        router_id: router.id,
        verdict: "routed",
        prefix: None,
        kind: None,
        nexthop: None,
        egress: None,
        ttl: p.ip_ttl,
        ttl_out: Some(p.ip_ttl.saturating_sub(1)),
        reason: String::new(),
    };
    if cookie == cookie_for(&router.id) {
        d.verdict = "ttl_expired";
        d.ttl_out = None;
        d.reason = format!("TTL {} would reach 0: dropped", p.ip_ttl);
    } else if let Some(rp) = model
        .ports_of_router(&router.id)
        .find(|rp| cookie_for(&rp.id) == cookie)
    {
        let subnet = dst.and_then(|ip| rp.subnets().find(|s| s.contains(&ip)));
        d.prefix = subnet.map(|s| s.to_string());
        d.kind = Some("connected");
        d.nexthop = dst;
        d.egress = egress_of(rp);
        d.reason = format!(
            "connected subnet of router port {}: straight to the destination's MAC",
            rp.name
        );
    } else if let Some(route) = model
        .routes_of_router(&router.id)
        .find(|r| cookie_for(&r.id) == cookie)
    {
        d.prefix = Some(route.prefix.to_string());
        d.kind = Some("static");
        d.nexthop = Some(route.nexthop);
        let egress = model
            .ports_of_router(&router.id)
            .find(|rp| rp.subnets().any(|s| s.contains(&route.nexthop)));
        d.egress = egress.and_then(egress_of);
        if step
            .flow
            .as_deref()
            .is_some_and(|f| f.ends_with("actions=drop"))
        {
            d.verdict = "nexthop_unknown";
            d.ttl_out = None;
            d.reason = format!(
                "static route {} via {}: no port of the router's switches has the next \
                 hop's address, dropped",
                route.prefix, route.nexthop
            );
        } else {
            d.reason = format!("static route {} via {}", route.prefix, route.nexthop);
        }
    } else {
        d.verdict = "no_route";
        d.ttl_out = None;
        d.reason = match dst {
            Some(ip) => format!("no route to {ip}: dropped"),
            None => "not IP: a router only routes IPv4 and IPv6".into(),
        };
    }
    Some(d)
}
