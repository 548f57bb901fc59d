//! The northbound JSON-RPC 2.0 API (DESIGN.md §5) on jsonrpsee: HTTP POST and WebSocket
//! on one port, which also answers `GET /metrics` ([`crate::metrics`]) and serves the web
//! view under `/ui/` ([`crate::ui`]).
//!
//! Reads are answered from the current immutable snapshot plus observed state (with a
//! shared store, a snapshot first brought up to every acknowledged write); writes are
//! turned into [`Command`]s and return only after the writer made them durable. Methods
//! take named parameters only; see [`spec::METHODS`] and API.md.

pub mod auth;
mod batch;
mod cluster;
mod https;
pub mod params;
mod routing;
pub mod scrape;
pub mod spec;
mod vtep;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use jsonrpsee::server::middleware::rpc::RpcServiceBuilder;
use jsonrpsee::server::{PendingSubscriptionSink, RpcModule, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::cluster::Ownership;
use crate::error::ApiError;
use crate::metrics::http::MetricsLayer;
use crate::model::{
    Acl, AclAction, Change, Direction, Ethertype, LogicalModel, LogicalPort, LogicalSwitch,
    Protocol,
};
use crate::northbound::{AclSpec, Applied, Command, ModelWriter};
use crate::observed::{ObservedState, TransportNode};
use crate::southbound::openflow::OpenFlowStats;
use crate::topology::{Topology, TransportNodes};
use params::Args;
use scrape::Scrape;

/// The packet `trace` follows: one type with the compiler's trace (its fields are the
/// `packet` parameter); the API requires `eth_dst`.
pub use crate::compiler::trace::TracePacket;

/// Shared state of every API method.
#[derive(Clone)]
pub struct ApiContext {
    pub controller: ModelWriter,
    /// What hypervisors report: `trace` walks the pipeline compiled from it.
    pub topology: Arc<TransportNodes>,
    /// Who owns each hypervisor (`owner` in node views, `cluster_status`).
    pub ownership: Ownership,
    /// The OpenFlow listener's counters, shown by `GET /metrics` when set.
    pub openflow_stats: Option<Arc<OpenFlowStats>>,
}

impl ApiContext {
    /// A context for this instance alone (it owns every hypervisor).
    pub fn new(controller: ModelWriter, topology: Arc<TransportNodes>) -> Self {
        ApiContext {
            controller,
            topology,
            ownership: Ownership::single("weftd"),
            openflow_stats: None,
        }
    }

    /// Shows the OpenFlow installer's counters in `GET /metrics`.
    pub fn with_openflow_stats(mut self, stats: Arc<OpenFlowStats>) -> Self {
        self.openflow_stats = Some(stats);
        self
    }

    /// What a `GET /metrics` scrape reads.
    pub fn scrape(&self) -> Scrape {
        Scrape {
            metrics: self.controller.metrics().clone(),
            observed: self.controller.observed().clone(),
            openflow: self.openflow_stats.clone(),
        }
    }

    /// The same, with the daemon's [`Ownership`] (cluster mode, or its instance name).
    pub fn with_ownership(mut self, ownership: Ownership) -> Self {
        self.ownership = ownership;
        self
    }
}

/// `trace`: the same compiler output the switches get, for the live topology, walked on
/// the software flow table (no switch involved).
fn trace_port(
    model: &LogicalModel,
    topology: &Topology,
    port: &LogicalPort,
    packet: &TracePacket,
) -> Result<Value, ApiError> {
    use crate::compiler::trace::{TraceError, trace};
    let t = trace(model, topology, None, &port.id.to_string(), packet).map_err(|e| match e {
        TraceError::PortNotFound(_) => ApiError::not_found("port", "port", &port.name),
        TraceError::BadPacket { field, reason } => {
            ApiError::invalid(format!("packet.{field}"), reason)
        }
        // Not an error in the request: the answer depends on where the port is plugged,
        // which is not known yet.
        e @ TraceError::PortNotBound(_) => ApiError::Unavailable(e.to_string()),
        other => ApiError::conflict("port", other),
    })?;
    serde_json::to_value(t).map_err(|e| ApiError::invalid("packet", e))
}

fn switch_view(m: &LogicalModel, s: &LogicalSwitch) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "vni": s.vni,
        "description": s.description,
        "ports": m.port_count_of_switch(&s.id),
        "provider": s.provider,
        "flood_vteps": s.flood_vteps,
    })
}

/// A flood VTEP is a legacy endpoint, never one of Weft's own hypervisors: refuses an
/// address that a connected hypervisor uses as its tunnel endpoint (the compiler also
/// skips such an address, for a hypervisor that appears later).
fn check_not_hypervisors(ctx: &ApiContext, vteps: &[IpAddr]) -> Result<(), ApiError> {
    let topo = ctx.topology.snapshot();
    for ip in vteps {
        if let Some(n) = topo.nodes.values().find(|n| n.encap_ip == *ip) {
            return Err(ApiError::invalid(
                "flood_vteps",
                format!("{ip} is the tunnel endpoint of hypervisor {:?}", n.id),
            ));
        }
    }
    Ok(())
}

fn port_view(m: &LogicalModel, obs: &ObservedState, p: &LogicalPort) -> Value {
    let status = obs.port_status(&p.id);
    json!({
        "id": p.id,
        "name": p.name,
        "switch": p.switch,
        "switch_name": m.switch(&p.switch).map(|s| s.name.as_str()).unwrap_or(""),
        "mac": p.mac,
        "ips": p.ips,
        "port_security": p.port_security,
        "key": p.key,
        "zone": p.zone,
        "binding": status.binding,
        "up": status.up,
    })
}

/// An ACL as stored, plus `port_name` and `status`: `rejected` lists the nodes whose
/// switch refused its flows (or those of a drop above it) and that run without it, fail
/// closed, until a retry succeeds; empty when it is in force.
fn acl_view(m: &LogicalModel, obs: &ObservedState, a: &Acl) -> Value {
    let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "port_name".into(),
            json!(m.port(&a.port).map(|p| p.name.as_str()).unwrap_or("")),
        );
        obj.insert(
            "status".into(),
            json!({ "rejected": obs.acl_rejections(&a.id) }),
        );
    }
    v
}

/// A node as the API shows it. `tunnels` lists the remote system-ids this node has a
/// working tunnel port to (as its OVSDB session last reported; empty for a node the
/// topology no longer holds).
fn node_view(n: &TransportNode, ownership: &Ownership, topology: &Topology) -> Value {
    let tunnels: Vec<&String> = topology
        .nodes
        .get(n.id.as_str())
        .map(|v| v.tunnels.keys().collect())
        .unwrap_or_default();
    json!({
        "id": n.id,
        "owner": ownership.owner_of(&n.id),
        "encap_ip": n.encap_ip,
        "encap_type": n.encap_type,
        "bridge": n.bridge,
        "ovsdb_connected": n.ovsdb_connected,
        "openflow_connected": n.openflow_connected,
        "datapath_id": n.datapath_id.map(|d| format!("{d:016x}")),
        "ports": n.ports,
        "flow_count": n.flows.len(),
        "tunnels": tunnels,
    })
}

fn deleted_view(applied: &Applied) -> Value {
    let ids = |pred: fn(&Change) -> bool| -> Vec<uuid::Uuid> {
        applied
            .changes
            .iter()
            .filter(|c| pred(c))
            .map(Change::id)
            .collect()
    };
    json!({
        "revision": applied.revision,
        "switches": ids(|c| matches!(c, Change::DeleteSwitch { .. })),
        "ports": ids(|c| matches!(c, Change::DeletePort { .. })),
        "acls": ids(|c| matches!(c, Change::DeleteAcl { .. })),
        "routers": ids(|c| matches!(c, Change::DeleteRouter { .. })),
        "router_ports": ids(|c| matches!(c, Change::DeleteRouterPort { .. })),
        "routes": ids(|c| matches!(c, Change::DeleteRoute { .. })),
        "vtep_bindings": ids(|c| matches!(c, Change::DeleteVtepBinding { .. })),
    })
}

fn spec_of(name: &str) -> Result<&'static spec::MethodSpec, ApiError> {
    spec::method(name).ok_or_else(|| ApiError::Internal(format!("method {name} has no spec")))
}

fn args(name: &str, params: &Params<'_>) -> Result<Args, ApiError> {
    Args::parse(params, spec_of(name)?)
}

fn find_port<'m>(m: &'m LogicalModel, field: &str, r: &str) -> Result<&'m LogicalPort, ApiError> {
    m.find_port(r)
        .ok_or_else(|| ApiError::not_found(field, "port", r))
}

fn find_switch<'m>(
    m: &'m LogicalModel,
    field: &str,
    r: &str,
) -> Result<&'m LogicalSwitch, ApiError> {
    m.find_switch(r)
        .ok_or_else(|| ApiError::not_found(field, "switch", r))
}

async fn call(ctx: &ApiContext, name: &str, params: Params<'static>) -> Result<Value, ApiError> {
    let mut a = args(name, &params)?;
    let c = &ctx.controller;
    match name {
        name if routing::handles(name) => routing::call(c, name, &mut a).await,
        name if vtep::handles(name) => vtep::call(c, name, &mut a).await,
        "switch_create" => {
            let name = a.str("name")?;
            let vni = a.opt_uint("vni", 1, u64::from(crate::model::VNI_MAX))?;
            let description = a.opt_str("description")?.unwrap_or_default();
            let provider = a.opt_provider("provider")?;
            let flood_vteps = a.opt_vteps("flood_vteps")?.unwrap_or_default();
            check_not_hypervisors(ctx, &flood_vteps)?;
            let applied = c
                .submit(Command::SwitchCreate {
                    name,
                    vni: vni.and_then(|v| u32::try_from(v).ok()),
                    description,
                    flood_vteps,
                    provider,
                })
                .await?;
            created(c, &applied)
        }
        "switch_update" => {
            let switch = a.str("switch")?;
            let description = a.opt_str("description")?;
            let flood_vteps = a.opt_vteps("flood_vteps")?;
            if let Some(v) = &flood_vteps {
                check_not_hypervisors(ctx, v)?;
            }
            let applied = c
                .submit(Command::SwitchUpdate {
                    switch,
                    description,
                    flood_vteps,
                })
                .await?;
            created(c, &applied)
        }
        "switch_get" => {
            let r = a.str("switch")?;
            let m = c.read_snapshot().await?;
            Ok(switch_view(&m, find_switch(&m, "switch", &r)?))
        }
        "switch_list" => {
            let m = c.read_snapshot().await?;
            let mut list: Vec<&LogicalSwitch> = m.switches().collect();
            list.sort_by(|x, y| x.name.cmp(&y.name));
            Ok(Value::Array(
                list.into_iter().map(|s| switch_view(&m, s)).collect(),
            ))
        }
        "switch_delete" => {
            let switch = a.str("switch")?;
            let cascade = a.opt_bool("cascade")?.unwrap_or(false);
            let applied = c.submit(Command::SwitchDelete { switch, cascade }).await?;
            Ok(deleted_view(&applied))
        }
        "port_create" => {
            let switch = a.str("switch")?;
            let name = a.str("name")?;
            let mac = a.mac("mac")?;
            let ips = a.opt_ips("ips")?.unwrap_or_default();
            let port_security = a.opt_bool("port_security")?.unwrap_or(true);
            let applied = c
                .submit(Command::PortCreate {
                    switch,
                    name,
                    mac,
                    ips,
                    port_security,
                })
                .await?;
            created(c, &applied)
        }
        "port_get" => {
            let r = a.str("port")?;
            let m = c.read_snapshot().await?;
            Ok(port_view(&m, c.observed(), find_port(&m, "port", &r)?))
        }
        "port_list" => {
            let filter = a.opt_str("switch")?;
            let m = c.read_snapshot().await?;
            let mut list: Vec<&LogicalPort> = match &filter {
                Some(r) => m
                    .ports_of_switch(&find_switch(&m, "switch", r)?.id)
                    .collect(),
                None => m.ports().collect(),
            };
            list.sort_by(|x, y| x.name.cmp(&y.name));
            let obs = c.observed();
            Ok(Value::Array(
                list.into_iter().map(|p| port_view(&m, obs, p)).collect(),
            ))
        }
        "port_update" => {
            let port = a.str("port")?;
            let mac = a.opt_mac("mac")?;
            let ips = a.opt_ips("ips")?;
            let port_security = a.opt_bool("port_security")?;
            let applied = c
                .submit(Command::PortUpdate {
                    port,
                    mac,
                    ips,
                    port_security,
                })
                .await?;
            created(c, &applied)
        }
        "port_delete" => {
            let port = a.str("port")?;
            let applied = c.submit(Command::PortDelete { port }).await?;
            Ok(deleted_view(&applied))
        }
        "acl_create" => {
            let port = a.str("port")?;
            let direction: Direction = a.enumerated("direction", &["ingress", "egress"])?;
            let priority = a.uint("priority", 0, u64::from(crate::model::ACL_PRIORITY_MAX))?;
            let action: AclAction = a.enumerated("action", &["allow", "allow-related", "drop"])?;
            let protocol = match a.opt_value("protocol") {
                None => None,
                Some(Value::String(s)) => Some(s.parse::<Protocol>().map_err(|_| {
                    ApiError::invalid(
                        "protocol",
                        format!("{s:?} is not tcp, udp, icmp, icmp6 or a number 0..=255"),
                    )
                })?),
                Some(Value::Number(n)) => Some(
                    n.as_u64()
                        .and_then(|n| u8::try_from(n).ok())
                        .map(Protocol::from_number)
                        .ok_or_else(|| {
                            ApiError::invalid(
                                "protocol",
                                format!("protocol number {n} is out of range 0..=255"),
                            )
                        })?,
                ),
                Some(v) => {
                    return Err(ApiError::invalid(
                        "protocol",
                        format!("expected a protocol name or number, got {v}"),
                    ));
                }
            };
            let ethertype: Ethertype = a
                .opt_enum("ethertype", &["ipv4", "ipv6"])?
                .unwrap_or_default();
            let remote_cidr = a.opt_cidr("remote_cidr")?;
            let port_min = a.opt_uint("port_min", 0, 65_535)?;
            let port_max = a.opt_uint("port_max", 0, 65_535)?;
            let to_u32 = |v: Option<u64>| v.and_then(|v| u32::try_from(v).ok());
            let applied = c
                .submit(Command::AclCreate(AclSpec {
                    port,
                    direction,
                    priority: to_u32(Some(priority)).unwrap_or(u32::MAX),
                    action,
                    protocol,
                    ethertype,
                    remote_cidr,
                    port_min: to_u32(port_min),
                    port_max: to_u32(port_max),
                }))
                .await?;
            created(c, &applied)
        }
        "acl_list" => {
            let filter = a.opt_str("port")?;
            let m = c.read_snapshot().await?;
            let mut list: Vec<&Acl> = match &filter {
                Some(r) => m.acls_of_port(&find_port(&m, "port", r)?.id).collect(),
                None => m.acls().collect(),
            };
            list.sort_by(|x, y| {
                let pn = |a: &Acl| m.port(&a.port).map(|p| p.name.clone()).unwrap_or_default();
                pn(x)
                    .cmp(&pn(y))
                    .then(x.direction.cmp(&y.direction))
                    .then(y.priority.cmp(&x.priority))
            });
            Ok(Value::Array(
                list.into_iter()
                    .map(|x| acl_view(&m, c.observed(), x))
                    .collect(),
            ))
        }
        "acl_delete" => {
            let acl = a.opt_uuid("acl")?;
            let acl =
                acl.ok_or_else(|| ApiError::invalid("acl", "required parameter is missing"))?;
            let applied = c.submit(Command::AclDelete { acl }).await?;
            Ok(deleted_view(&applied))
        }
        "node_list" => {
            let topology = ctx.topology.snapshot();
            Ok(Value::Array(
                c.observed()
                    .nodes()
                    .iter()
                    .map(|n| node_view(n, &ctx.ownership, &topology))
                    .collect(),
            ))
        }
        "node_get" => {
            let r = a.str("node")?;
            let node = c
                .observed()
                .node(&r)
                .ok_or_else(|| ApiError::not_found("node", "node", &r))?;
            Ok(node_view(&node, &ctx.ownership, &ctx.topology.snapshot()))
        }
        "node_flows" => {
            let r = a.str("node")?;
            let node = c
                .observed()
                .node(&r)
                .ok_or_else(|| ApiError::not_found("node", "node", &r))?;
            Ok(json!({"node": node.id, "flows": node.flows.text()}))
        }
        "trace" => {
            let r = a.str("port")?;
            let packet = parse_packet(a.value("packet")?)?;
            let m = c.read_snapshot().await?;
            let port = find_port(&m, "port", &r)?;
            // The same inputs the realize task compiles from: hypervisors and hardware
            // VTEPs.
            let mut t = (*ctx.topology.snapshot()).clone();
            t.hardware_vteps = Arc::new(c.observed().vteps().endpoints());
            trace_port(&m, &t, port, &packet)
        }
        "cluster_status" => Ok(cluster::status(&ctx.ownership, &c.observed().nodes())),
        "system_status" => {
            let m = c.read_snapshot().await?;
            Ok(json!({
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_seconds": c.uptime().as_secs(),
                "revision": m.revision(),
                "switches": m.switch_count(),
                "ports": m.port_count(),
                "acls": m.acl_count(),
                "routers": m.routers().count(),
                "router_ports": m.router_ports().count(),
                "routes": m.routes().count(),
                "nodes": c.observed().nodes().len(),
                "store": c.store_location(),
                "store_backend": c.store_status(),
            }))
        }
        other => Err(ApiError::Internal(format!("no handler for {other}"))),
    }
}

/// Result of a create or update: the object as `*_get` would return it.
fn created(c: &ModelWriter, applied: &Applied) -> Result<Value, ApiError> {
    let m = c.snapshot();
    match applied.changes.last() {
        Some(Change::PutSwitch(s)) => Ok(switch_view(&m, s)),
        Some(Change::PutPort(p)) => Ok(port_view(&m, c.observed(), p)),
        Some(Change::PutAcl(a)) => Ok(acl_view(&m, c.observed(), a)),
        Some(Change::PutRouter(r)) => Ok(routing::router_view(&m, r)),
        Some(Change::PutRouterPort(p)) => Ok(routing::router_port_view(&m, p)),
        Some(Change::PutRoute(r)) => Ok(routing::route_view(&m, r)),
        _ => Err(ApiError::Internal("write produced no object".into())),
    }
}

/// Reads `trace`'s `packet`, field by field so that an error names the field
/// (`packet.tp_dst`).
fn parse_packet(v: Value) -> Result<TracePacket, ApiError> {
    let Value::Object(map) = v else {
        return Err(ApiError::invalid(
            "packet",
            "expected an object of header fields",
        ));
    };
    if let Some(k) = map
        .keys()
        .find(|k| !TracePacket::FIELDS.contains(&k.as_str()))
    {
        return Err(ApiError::invalid(
            format!("packet.{}", k.chars().take(32).collect::<String>()),
            format!(
                "unknown header field; known: {}",
                TracePacket::FIELDS.join(", ")
            ),
        ));
    }
    for (k, v) in &map {
        let one = Value::Object([(k.clone(), v.clone())].into_iter().collect());
        if let Err(e) = serde_json::from_value::<TracePacket>(one) {
            return Err(ApiError::invalid(format!("packet.{k}"), e));
        }
    }
    let p: TracePacket =
        serde_json::from_value(Value::Object(map)).map_err(|e| ApiError::invalid("packet", e))?;
    if p.eth_dst.is_none() {
        return Err(ApiError::invalid(
            "packet.eth_dst",
            "required header is missing",
        ));
    }
    if let Some(op) = p.arp_op
        && !(1..=2).contains(&op)
    {
        return Err(ApiError::invalid(
            "packet.arp_op",
            format!("expected 1 (request) or 2 (reply), got {op}"),
        ));
    }
    if let (Some(s), Some(d)) = (p.ip_src, p.ip_dst)
        && s.is_ipv4() != d.is_ipv4()
    {
        return Err(ApiError::invalid(
            "packet.ip_dst",
            "ip_src and ip_dst families differ",
        ));
    }
    if let Err(crate::compiler::trace::TraceError::BadPacket { field, reason }) = p.conntrack() {
        return Err(ApiError::invalid(format!("packet.{field}"), reason));
    }
    if p.ct_acl.len() > 64 {
        return Err(ApiError::invalid("packet.ct_acl", "at most 64 ACLs"));
    }
    Ok(p)
}

/// Builds the RPC module: every method of [`spec::METHODS`], `events_subscribe` and
/// `rpc.discover`.
pub fn rpc_module(ctx: ApiContext) -> Result<RpcModule<ApiContext>, anyhow::Error> {
    ctx.controller
        .metrics()
        .api
        .register(spec::METHODS.iter().map(|m| m.name).chain(["rpc.discover"]));
    let mut module = RpcModule::new(ctx);
    for m in spec::METHODS.iter().filter(|m| !m.subscription) {
        let name = m.name;
        module.register_async_method(name, move |params, ctx, _ext| async move {
            let started = std::time::Instant::now();
            let result = call(&ctx, name, params).await;
            ctx.controller
                .metrics()
                .api
                .observe(name, started.elapsed(), result.is_ok());
            result.map_err(ErrorObjectOwned::from)
        })?;
    }
    module.register_method("rpc.discover", |_params, ctx, _ext| {
        let started = std::time::Instant::now();
        let doc = spec::openrpc_document();
        ctx.controller
            .metrics()
            .api
            .observe("rpc.discover", started.elapsed(), true);
        Ok::<Value, ErrorObjectOwned>(doc)
    })?;
    module.register_subscription(
        "events_subscribe",
        "events",
        "events_unsubscribe",
        |params, pending, ctx, _ext| async move { stream_events(params, pending, ctx).await },
    )?;
    Ok(module)
}

async fn stream_events(
    params: Params<'static>,
    pending: PendingSubscriptionSink,
    ctx: Arc<ApiContext>,
) -> jsonrpsee::core::SubscriptionResult {
    let metrics = ctx.controller.metrics().clone();
    if let Err(e) = args("events_subscribe", &params) {
        metrics.api.count("events_subscribe", false);
        pending.reject(ErrorObjectOwned::from(e)).await;
        return Ok(());
    }
    metrics.api.count("events_subscribe", true);
    // Subscribe before accepting so no event between the two is lost.
    let mut rx = ctx.controller.subscribe_events();
    let sink = pending.accept().await?;
    loop {
        let event = tokio::select! {
            _ = sink.closed() => break,
            ev = rx.recv() => ev,
        };
        let event = match event {
            Ok(ev) => ev,
            Err(RecvError::Lagged(missed)) => {
                metrics.events_lagged.add(missed);
                crate::events::Event::Lagged { missed }
            }
            Err(RecvError::Closed) => break,
        };
        let raw = serde_json::value::to_raw_value(&event)?;
        if sink.send(raw).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Largest answer the API sends (a batch's answers count together).
const MAX_RESPONSE_BODY: u32 = 256 * 1024 * 1024;

/// API server settings.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    pub listen: SocketAddr,
    pub token: Option<String>,
    pub max_connections: u32,
    /// Serve HTTPS (and WSS) with this config ([`crate::tls::api_server_config`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Binds the API port and starts serving. Returns the bound address (useful with port 0)
/// and the handle that stops the server.
pub async fn serve(
    settings: &ApiSettings,
    ctx: ApiContext,
) -> Result<(SocketAddr, ServerHandle), anyhow::Error> {
    // The web view's static files come first (they need no token: see `crate::ui`), then
    // the token check: `/metrics` follows the API's token rules.
    let middleware = tower::ServiceBuilder::new()
        .layer(crate::ui::UiLayer)
        .layer(auth::BearerAuthLayer::new(settings.token.clone()))
        .layer(MetricsLayer::new({
            let scrape = ctx.scrape();
            Arc::new(move || scrape.render())
        }));
    let config = ServerConfig::builder()
        .max_connections(settings.max_connections)
        .max_request_body_size(1024 * 1024)
        .max_response_body_size(MAX_RESPONSE_BODY)
        .build();
    // Writes of a batch share one commit (see `batch`).
    let rpc_middleware = RpcServiceBuilder::new().layer_fn({
        let writer = ctx.controller.clone();
        move |service| batch::GroupWrites::new(service, writer.clone(), MAX_RESPONSE_BODY as usize)
    });
    if let Some(tls) = &settings.tls {
        let builder = Server::builder()
            .set_config(config)
            .set_http_middleware(middleware)
            .set_rpc_middleware(rpc_middleware)
            .to_service_builder();
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let addr = listener.local_addr()?;
        let methods: jsonrpsee::server::Methods = rpc_module(ctx)?.into();
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
        // `stopped()` on the handle resolves once this loop and every connection (each
        // holding a clone of `stop`) ended.
        let (stop, handle) = jsonrpsee::server::stop_channel();
        // `--max-connections` as the plain server enforces it, counted from the accept.
        let slots = Arc::new(tokio::sync::Semaphore::new(
            settings.max_connections as usize,
        ));
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = tokio::select! {
                    _ = stop.clone().shutdown() => break,
                    a = https::next(&listener) => a,
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "API connection refused: too many connections");
                    continue;
                };
                let service = builder.clone().build(methods.clone(), stop.clone());
                let acceptor = acceptor.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let Some(tls) = https::handshake(&acceptor, tcp, peer).await else {
                        return;
                    };
                    let served = jsonrpsee::server::serve_with_graceful_shutdown(
                        tls,
                        service,
                        stop.shutdown(),
                    );
                    if let Err(e) = served.await {
                        tracing::debug!(%peer, error = %e, "API connection ended");
                    }
                    drop(slot);
                });
            }
        });
        return Ok((addr, handle));
    }
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(middleware)
        .set_rpc_middleware(rpc_middleware)
        .build(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
    let addr = server.local_addr()?;
    let handle = server.start(rpc_module(ctx)?);
    Ok((addr, handle))
}
