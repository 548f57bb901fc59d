//! weftctl: a thin command-line client of the weftd JSON-RPC API, one subcommand per
//! method. Human-readable tables by default, `--json` for scripts.
//!
//! Exit status: 0 on success, 1 when the API returned an error (its message is printed),
//! 2 on usage errors, 3 when weftd cannot be reached.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use jsonrpsee::core::client::{ClientT, Error as ClientError, SubscriptionClientT};
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::WsClientBuilder;
use serde_json::{Value, json};

#[path = "weftctl/render.rs"]
mod render;

use render::{View, cell, render};

#[path = "weftctl/cli.rs"]
mod cli;

use cli::{
    AclCmd, Cli, ClusterCmd, Cmd, NodeCmd, PortCmd, RouteCmd, RouterCmd, RouterPortCmd, SwitchCmd,
    VtepCmd,
};

/// Builds named params, skipping `None`s.
struct P(ObjectParams);

impl P {
    fn new() -> Self {
        P(ObjectParams::new())
    }
    fn set(mut self, k: &str, v: impl serde::Serialize) -> Result<Self, Failure> {
        self.0
            .insert(k, v)
            .map_err(|e| Failure::Usage(e.to_string()))?;
        Ok(self)
    }
    fn opt(self, k: &str, v: Option<impl serde::Serialize>) -> Result<Self, Failure> {
        match v {
            Some(v) => self.set(k, v),
            None => Ok(self),
        }
    }
}

enum Failure {
    Api(String),
    Unreachable(String),
    Usage(String),
}

fn headers(token_file: &Option<PathBuf>) -> Result<HeaderMap, Failure> {
    let mut h = HeaderMap::new();
    if let Some(path) = token_file {
        let token = std::fs::read_to_string(path)
            .map_err(|e| Failure::Usage(format!("token file {}: {e}", path.display())))?;
        let value = HeaderValue::from_str(&format!("Bearer {}", token.trim())).map_err(|_| {
            Failure::Usage(format!("token file {}: not a valid token", path.display()))
        })?;
        h.insert("authorization", value);
    }
    Ok(h)
}

/// The API's URLs: `(HTTP, WebSocket)`, from any of the four schemes.
fn urls(server: &str) -> Result<(String, String), Failure> {
    let (secure, rest) = match server.split_once("://") {
        Some(("http" | "ws", rest)) => (false, rest),
        Some(("https" | "wss", rest)) => (true, rest),
        _ => {
            return Err(Failure::Usage(format!(
                "bad --server {server:?}: expected http://, https://, ws:// or wss://"
            )));
        }
    };
    Ok(if secure {
        (format!("https://{rest}"), format!("wss://{rest}"))
    } else {
        (format!("http://{rest}"), format!("ws://{rest}"))
    })
}

/// The TLS client config for `--ca-cert` (an https:// server only).
fn tls_config(
    ca_cert: &Option<PathBuf>,
    http_url: &str,
) -> Result<Option<rustls::ClientConfig>, Failure> {
    let Some(path) = ca_cert else {
        return Ok(None);
    };
    if !http_url.starts_with("https://") {
        return Err(Failure::Usage(
            "--ca-cert needs an https:// (or wss://) --server".into(),
        ));
    }
    weft::tls::api_client_config(path)
        .map(Some)
        .map_err(|e| Failure::Usage(e.to_string()))
}

fn classify(server: &str, e: ClientError) -> Failure {
    match e {
        ClientError::Call(obj) => Failure::Api(format!("{} (code {})", obj.message(), obj.code())),
        ClientError::Transport(t) => {
            // hyper's own message ("client error (Connect)") hides the cause (a refused
            // connection, an untrusted certificate): say the whole chain.
            let mut msg = t.to_string();
            let mut source = t.source();
            while let Some(e) = source {
                let next = e.to_string();
                if !msg.contains(&next) {
                    msg = format!("{msg}: {next}");
                }
                source = e.source();
            }
            if msg.contains("401") {
                Failure::Api("unauthorized: missing or wrong token (--token-file)".into())
            } else if msg.contains("certificate") {
                Failure::Unreachable(format!(
                    "cannot reach weftd at {server}: its TLS certificate was not accepted ({msg}); \
                     pass the CA that signed it with --ca-cert FILE"
                ))
            } else {
                Failure::Unreachable(format!("cannot reach weftd at {server}: {msg}"))
            }
        }
        ClientError::RequestTimeout => {
            Failure::Unreachable(format!("weftd at {server} did not answer in time"))
        }
        other => Failure::Unreachable(format!("weftd at {server}: {other}")),
    }
}

async fn request(client: &HttpClient, server: &str, method: &str, p: P) -> Result<Value, Failure> {
    client
        .request::<Value, _>(method, p.0)
        .await
        .map_err(|e| classify(server, e))
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let hdrs = headers(&cli.token_file)?;
    let server = cli.server.clone();
    let (http_url, ws_url) = urls(&server)?;
    let tls = tls_config(&cli.ca_cert, &http_url)?;
    if let Cmd::Events = cli.cmd {
        return follow_events(&server, &ws_url, tls, hdrs, cli.json).await;
    }
    if let Cmd::OfpPrint { hex, roundtrip } = &cli.cmd {
        return ofp_print(hex.as_deref(), *roundtrip);
    }
    if let Cmd::Completions { shell } = cli.cmd {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "weftctl",
            &mut std::io::stdout(),
        );
        return Ok(());
    }
    // Listing 100k ports is tens of MiB; the server caps responses at 256 MiB.
    let mut builder = HttpClientBuilder::default()
        .max_response_size(256 * 1024 * 1024)
        .set_headers(hdrs);
    if let Some(tls) = tls {
        builder = builder.with_custom_cert_store(tls);
    }
    let client = builder
        .build(&http_url)
        .map_err(|e| Failure::Usage(format!("bad --server {server:?}: {e}")))?;
    let (method, params, view) = match cli.cmd {
        Cmd::Switch(c) => match c {
            SwitchCmd::Create {
                name,
                vni,
                description,
                physnet,
                vlan,
                flood_vteps,
            } => (
                "switch_create",
                P::new()
                    .set("name", name)?
                    .opt("vni", vni)?
                    .opt("description", description)?
                    .opt(
                        "provider",
                        physnet
                            .map(|physnet| serde_json::json!({"physnet": physnet, "vlan": vlan})),
                    )?
                    .opt(
                        "flood_vteps",
                        (!flood_vteps.is_empty()).then_some(flood_vteps),
                    )?,
                View::Switches,
            ),
            SwitchCmd::Update {
                switch,
                description,
                flood_vteps,
                clear_flood_vteps,
            } => {
                let flood_vteps = if clear_flood_vteps {
                    Some(vec![])
                } else {
                    (!flood_vteps.is_empty()).then_some(flood_vteps)
                };
                (
                    "switch_update",
                    P::new()
                        .set("switch", switch)?
                        .opt("description", description)?
                        .opt("flood_vteps", flood_vteps)?,
                    View::Switches,
                )
            }
            SwitchCmd::List => ("switch_list", P::new(), View::Switches),
            SwitchCmd::Get { switch } => {
                ("switch_get", P::new().set("switch", switch)?, View::Object)
            }
            SwitchCmd::Delete { switch, cascade } => (
                "switch_delete",
                P::new().set("switch", switch)?.set("cascade", cascade)?,
                View::Deleted,
            ),
        },
        Cmd::Port(c) => match c {
            PortCmd::Create {
                switch,
                name,
                mac,
                ips,
                no_port_security,
            } => (
                "port_create",
                P::new()
                    .set("switch", switch)?
                    .set("name", name)?
                    .set("mac", mac)?
                    .set("ips", ips)?
                    .set("port_security", !no_port_security)?,
                View::Ports,
            ),
            PortCmd::List { switch } => ("port_list", P::new().opt("switch", switch)?, View::Ports),
            PortCmd::Get { port } => ("port_get", P::new().set("port", port)?, View::Object),
            PortCmd::Update {
                port,
                mac,
                ips,
                clear_ips,
                port_security,
            } => {
                let ips = if clear_ips {
                    Some(vec![])
                } else if ips.is_empty() {
                    None
                } else {
                    Some(ips)
                };
                (
                    "port_update",
                    P::new()
                        .set("port", port)?
                        .opt("mac", mac)?
                        .opt("ips", ips)?
                        .opt("port_security", port_security)?,
                    View::Ports,
                )
            }
            PortCmd::Delete { port } => ("port_delete", P::new().set("port", port)?, View::Deleted),
        },
        Cmd::Acl(c) => match c {
            AclCmd::Create {
                port,
                direction,
                priority,
                action,
                protocol,
                ethertype,
                remote_cidr,
                port_min,
                port_max,
            } => {
                // A numeric protocol goes over the wire as a number.
                let protocol = protocol.map(|p| match p.parse::<u64>() {
                    Ok(n) => json!(n),
                    Err(_) => json!(p),
                });
                (
                    "acl_create",
                    P::new()
                        .set("port", port)?
                        .set("direction", direction)?
                        .set("priority", priority)?
                        .set("action", action)?
                        .opt("protocol", protocol)?
                        .opt("ethertype", ethertype)?
                        .opt("remote_cidr", remote_cidr)?
                        .opt("port_min", port_min)?
                        .opt("port_max", port_max)?,
                    View::Acls,
                )
            }
            AclCmd::List { port } => ("acl_list", P::new().opt("port", port)?, View::Acls),
            AclCmd::Delete { acl } => ("acl_delete", P::new().set("acl", acl)?, View::Deleted),
        },
        Cmd::Router(c) => match c {
            RouterCmd::Create { name, description } => (
                "router_create",
                P::new()
                    .set("name", name)?
                    .opt("description", description)?,
                View::Routers,
            ),
            RouterCmd::List => ("router_list", P::new(), View::Routers),
            RouterCmd::Get { router } => {
                ("router_get", P::new().set("router", router)?, View::Router)
            }
            RouterCmd::Delete { router, cascade } => (
                "router_delete",
                P::new().set("router", router)?.set("cascade", cascade)?,
                View::Deleted,
            ),
        },
        Cmd::RouterPort(c) => match c {
            RouterPortCmd::Create {
                router,
                name,
                switch,
                mac,
                ips,
            } => (
                "router_port_create",
                P::new()
                    .set("router", router)?
                    .set("switch", switch)?
                    .set("name", name)?
                    .set("mac", mac)?
                    .set("ips", ips)?,
                View::RouterPorts,
            ),
            RouterPortCmd::List { router } => (
                "router_port_list",
                P::new().opt("router", router)?,
                View::RouterPorts,
            ),
            RouterPortCmd::Delete { router_port } => (
                "router_port_delete",
                P::new().set("router_port", router_port)?,
                View::Deleted,
            ),
        },
        Cmd::Route(c) => match c {
            RouteCmd::Create {
                router,
                prefix,
                nexthop,
            } => (
                "route_create",
                P::new()
                    .set("router", router)?
                    .set("prefix", prefix)?
                    .set("nexthop", nexthop)?,
                View::Routes,
            ),
            RouteCmd::List { router } => {
                ("route_list", P::new().opt("router", router)?, View::Routes)
            }
            RouteCmd::Delete { route } => {
                ("route_delete", P::new().set("route", route)?, View::Deleted)
            }
        },
        Cmd::Vtep(c) => match c {
            VtepCmd::List => ("vtep_list", P::new(), View::Vteps),
            VtepCmd::Get { vtep } => ("vtep_get", P::new().set("vtep", vtep)?, View::Object),
            VtepCmd::Bind {
                vtep,
                port,
                vlan,
                switch,
            } => (
                "vtep_bind",
                P::new()
                    .set("vtep", vtep)?
                    .set("port", port)?
                    .set("vlan", vlan)?
                    .set("switch", switch)?,
                View::Object,
            ),
            VtepCmd::Unbind { vtep, port, vlan } => (
                "vtep_unbind",
                P::new()
                    .set("vtep", vtep)?
                    .set("port", port)?
                    .set("vlan", vlan)?,
                View::Deleted,
            ),
        },
        Cmd::Node(c) => match c {
            NodeCmd::List => ("node_list", P::new(), View::Nodes),
            NodeCmd::Get { node } => ("node_get", P::new().set("node", node)?, View::Object),
            NodeCmd::Flows { node } => ("node_flows", P::new().set("node", node)?, View::Flows),
        },
        Cmd::Trace(t) => {
            let mut packet = serde_json::Map::new();
            packet.insert("eth_dst".into(), json!(t.eth_dst));
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    packet.insert(k.into(), v);
                }
            };
            put("eth_src", t.eth_src.map(Value::from));
            put("ip_src", t.ip_src.map(Value::from));
            put("ip_dst", t.ip_dst.map(Value::from));
            put("ip_proto", t.ip_proto.map(Value::from));
            put("tp_src", t.tp_src.map(Value::from));
            put("tp_dst", t.tp_dst.map(Value::from));
            put("protocol", t.protocol.map(Value::from));
            put("ct_state", t.ct_state.map(Value::from));
            put("ct_acl", (!t.ct_acl.is_empty()).then(|| json!(t.ct_acl)));
            (
                "trace",
                P::new()
                    .set("port", t.port)?
                    .set("packet", Value::Object(packet))?,
                View::Trace,
            )
        }
        Cmd::Cluster(ClusterCmd::Status) => ("cluster_status", P::new(), View::Cluster),
        Cmd::Status => ("system_status", P::new(), View::Object),
        Cmd::Discover => ("rpc.discover", P::new(), View::Object),
        Cmd::Events | Cmd::OfpPrint { .. } | Cmd::Completions { .. } => return Ok(()),
    };
    let result = request(&client, &server, method, params).await?;
    if cli.json || method == "rpc.discover" {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).unwrap_or_else(|_| result.to_string())
        );
    } else {
        print!("{}", render(view, &result));
    }
    Ok(())
}

async fn follow_events(
    server: &str,
    ws_url: &str,
    tls: Option<rustls::ClientConfig>,
    hdrs: HeaderMap,
    json_out: bool,
) -> Result<(), Failure> {
    let mut builder = WsClientBuilder::default().set_headers(hdrs);
    if let Some(tls) = tls {
        builder = builder.with_custom_cert_store(tls);
    }
    let client = builder
        .build(ws_url)
        .await
        .map_err(|e| classify(server, e))?;
    let mut sub = client
        .subscribe::<Value, _>(
            "events_subscribe",
            ObjectParams::new(),
            "events_unsubscribe",
        )
        .await
        .map_err(|e| classify(server, e))?;
    eprintln!("following events from {ws_url} (Ctrl-C to stop)");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            ev = sub.next() => match ev {
                Some(Ok(ev)) => {
                    if json_out {
                        println!("{ev}");
                    } else {
                        let kind = ev.get("type").map(cell).unwrap_or_default();
                        let rest: Vec<String> = ev
                            .as_object()
                            .map(|o| o.iter().filter(|(k, _)| *k != "type").map(|(k, v)| format!("{k}={}", cell(v))).collect())
                            .unwrap_or_default();
                        println!("{kind} {}", rest.join(" "));
                    }
                }
                Some(Err(e)) => return Err(Failure::Api(format!("bad event: {e}"))),
                None => return Err(Failure::Unreachable(format!("weftd at {server} closed the event stream"))),
            }
        }
    }
}

/// `weftctl ofp-print`: decoding happens locally, so a packet capture or a log line can be
/// read without a running weftd.
fn ofp_print(hex: Option<&str>, roundtrip: bool) -> Result<(), Failure> {
    let text = match hex {
        Some(h) => h.to_string(),
        None => std::io::read_to_string(std::io::stdin())
            .map_err(|e| Failure::Usage(format!("reading standard input: {e}")))?,
    };
    let bytes = openflow::parse_hex(&text).map_err(|e| Failure::Usage(format!("bad hex: {e}")))?;
    if bytes.is_empty() {
        return Err(Failure::Usage("no bytes to decode".into()));
    }
    println!("{}", openflow::ofp_print(&bytes));
    let rt = openflow::roundtrip(&bytes);
    if roundtrip {
        println!("{rt}");
    }
    match rt {
        openflow::RoundTrip::Exact { .. } => Ok(()),
        openflow::RoundTrip::DecodeError(e) => Err(Failure::Api(format!("cannot decode: {e}"))),
        _ if roundtrip => Err(Failure::Api("re-encoding is not byte-exact".into())),
        _ => Ok(()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("weftctl: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Api(m)) => {
            eprintln!("weftctl: error: {m}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(m)) => {
            eprintln!("weftctl: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Unreachable(m)) => {
            eprintln!("weftctl: {m}");
            ExitCode::from(3)
        }
    }
}
