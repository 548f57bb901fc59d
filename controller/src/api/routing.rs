//! The routing methods (`router_*`, `router_port_*`, `route_*`) and how their objects are
//! shown: each object carries its ids and, next to every reference, the referenced
//! object's name, as ports carry `switch_name`; addresses are written `addr/len`.

use serde_json::{Value, json};

use super::params::Args;
use crate::error::ApiError;
use crate::model::{LogicalModel, LogicalRouter, Route, RouterPort};
use crate::northbound::{Command, ModelWriter};

/// Whether `name` is one of this module's methods.
pub(super) fn handles(name: &str) -> bool {
    name.starts_with("router_") || name.starts_with("route_")
}

pub(super) async fn call(c: &ModelWriter, name: &str, a: &mut Args) -> Result<Value, ApiError> {
    match name {
        "router_create" => {
            let name = a.str("name")?;
            let description = a.opt_str("description")?.unwrap_or_default();
            let applied = c
                .submit(Command::RouterCreate { name, description })
                .await?;
            super::created(c, &applied)
        }
        "router_get" => {
            let r = a.str("router")?;
            let m = c.read_snapshot().await?;
            Ok(router_view(&m, find_router(&m, "router", &r)?))
        }
        "router_list" => {
            let m = c.read_snapshot().await?;
            let mut list: Vec<&LogicalRouter> = m.routers().collect();
            list.sort_by(|x, y| x.name.cmp(&y.name));
            Ok(Value::Array(
                list.into_iter().map(|r| router_view(&m, r)).collect(),
            ))
        }
        "router_delete" => {
            let router = a.str("router")?;
            let cascade = a.opt_bool("cascade")?.unwrap_or(false);
            let applied = c.submit(Command::RouterDelete { router, cascade }).await?;
            Ok(super::deleted_view(&applied))
        }
        "router_port_create" => {
            let router = a.str("router")?;
            let switch = a.str("switch")?;
            let name = a.str("name")?;
            let mac = a.mac("mac")?;
            let ips = a.cidrs("ips")?;
            let applied = c
                .submit(Command::RouterPortCreate {
                    router,
                    switch,
                    name,
                    mac,
                    ips,
                })
                .await?;
            super::created(c, &applied)
        }
        "router_port_list" => {
            let filter = a.opt_str("router")?;
            let m = c.read_snapshot().await?;
            let mut list: Vec<&RouterPort> = match &filter {
                Some(r) => m
                    .ports_of_router(&find_router(&m, "router", r)?.id)
                    .collect(),
                None => m.router_ports().collect(),
            };
            list.sort_by(|x, y| x.name.cmp(&y.name));
            Ok(Value::Array(
                list.into_iter().map(|p| router_port_view(&m, p)).collect(),
            ))
        }
        "router_port_delete" => {
            let router_port = a.str("router_port")?;
            let applied = c.submit(Command::RouterPortDelete { router_port }).await?;
            Ok(super::deleted_view(&applied))
        }
        "route_create" => {
            let router = a.str("router")?;
            let prefix = a.cidr("prefix")?;
            let nexthop = a.ip("nexthop")?;
            let applied = c
                .submit(Command::RouteCreate {
                    router,
                    prefix,
                    nexthop,
                })
                .await?;
            super::created(c, &applied)
        }
        "route_list" => {
            let filter = a.opt_str("router")?;
            let m = c.read_snapshot().await?;
            let mut list: Vec<&Route> = match &filter {
                Some(r) => m
                    .routes_of_router(&find_router(&m, "router", r)?.id)
                    .collect(),
                None => m.routes().collect(),
            };
            let router_name = |r: &Route| m.router(&r.router).map(|x| x.name.clone());
            list.sort_by(|x, y| {
                router_name(x)
                    .cmp(&router_name(y))
                    .then(x.prefix.cmp(&y.prefix))
            });
            Ok(Value::Array(
                list.into_iter().map(|r| route_view(&m, r)).collect(),
            ))
        }
        "route_delete" => {
            let route = a
                .opt_uuid("route")?
                .ok_or_else(|| ApiError::invalid("route", "required parameter is missing"))?;
            let applied = c.submit(Command::RouteDelete { route }).await?;
            Ok(super::deleted_view(&applied))
        }
        other => Err(ApiError::Internal(format!("no handler for {other}"))),
    }
}

fn find_router<'m>(
    m: &'m LogicalModel,
    field: &str,
    r: &str,
) -> Result<&'m LogicalRouter, ApiError> {
    m.find_router(r)
        .ok_or_else(|| ApiError::not_found(field, "router", r))
}

/// A router with its ports and routes (by name and by prefix), so one call shows what it
/// routes.
pub(super) fn router_view(m: &LogicalModel, r: &LogicalRouter) -> Value {
    let mut ports: Vec<&RouterPort> = m.ports_of_router(&r.id).collect();
    ports.sort_by(|x, y| x.name.cmp(&y.name));
    let mut routes: Vec<&Route> = m.routes_of_router(&r.id).collect();
    routes.sort_by_key(|r| r.prefix);
    json!({
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "key": r.key,
        "ports": ports.into_iter().map(|p| router_port_view(m, p)).collect::<Vec<_>>(),
        "routes": routes.into_iter().map(|x| route_view(m, x)).collect::<Vec<_>>(),
    })
}

pub(super) fn router_port_view(m: &LogicalModel, p: &RouterPort) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "router": p.router,
        "router_name": m.router(&p.router).map(|r| r.name.as_str()).unwrap_or(""),
        "switch": p.switch,
        "switch_name": m.switch(&p.switch).map(|s| s.name.as_str()).unwrap_or(""),
        "mac": p.mac,
        "ips": p.ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

pub(super) fn route_view(m: &LogicalModel, r: &Route) -> Value {
    json!({
        "id": r.id,
        "router": r.router,
        "router_name": m.router(&r.router).map(|x| x.name.as_str()).unwrap_or(""),
        "prefix": r.prefix.to_string(),
        "nexthop": r.nexthop,
    })
}
