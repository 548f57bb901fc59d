//! weftctl: a thin command-line client of the weftd JSON-RPC API, one subcommand per
//! method. Human-readable tables by default, `--json` for scripts.
//!
//! Exit status: 0 on success, 1 when the API returned an error (its message is printed),
//! 2 on usage errors, 3 when weftd cannot be reached.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use jsonrpsee::core::client::{ClientT, Error as ClientError, SubscriptionClientT};
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::WsClientBuilder;
use serde_json::{Value, json};

#[derive(Parser, Debug)]
#[command(
    name = "weftctl",
    version,
    about = "Command-line client for the Weft controller"
)]
struct Cli {
    /// weftd API URL.
    #[arg(
        long,
        global = true,
        env = "WEFT_SERVER",
        default_value = "http://127.0.0.1:6690"
    )]
    server: String,
    /// File holding the API bearer token.
    #[arg(long, global = true, env = "WEFT_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Print the raw JSON result instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Logical switches.
    #[command(subcommand)]
    Switch(SwitchCmd),
    /// Logical ports.
    #[command(subcommand)]
    Port(PortCmd),
    /// Port ACLs.
    #[command(subcommand)]
    Acl(AclCmd),
    /// Transport nodes (hypervisors).
    #[command(subcommand)]
    Node(NodeCmd),
    /// Trace a packet through the logical pipeline.
    Trace(TraceArgs),
    /// Controller status.
    Status,
    /// Follow the event stream (WebSocket) until interrupted.
    Events,
    /// Print the OpenRPC description of the API.
    Discover,
    /// Decode OpenFlow messages given as hex, like `ovs-ofctl ofp-print` (no weftd
    /// needed). Reads standard input when no hex is given.
    OfpPrint {
        /// Hex bytes (spaces, colons and a 0x prefix are ignored).
        hex: Option<String>,
        /// Re-encode and report byte-exact or the first differing offset.
        #[arg(long)]
        roundtrip: bool,
    },
}

#[derive(Subcommand, Debug)]
enum SwitchCmd {
    Create {
        name: String,
        #[arg(long)]
        vni: Option<u32>,
        #[arg(long)]
        description: Option<String>,
        /// Bridge the switch onto this physical network (a provider network) instead of
        /// tunnelling it.
        #[arg(long)]
        physnet: Option<String>,
        /// The 802.1Q VLAN of the provider network (needs --physnet); untagged without.
        #[arg(long, requires = "physnet")]
        vlan: Option<u16>,
    },
    List,
    Get {
        switch: String,
    },
    Delete {
        switch: String,
        /// Also delete the switch's ports and their ACLs.
        #[arg(long)]
        cascade: bool,
    },
}

#[derive(Subcommand, Debug)]
enum PortCmd {
    Create {
        switch: String,
        name: String,
        #[arg(long)]
        mac: String,
        /// An address of the port; repeatable.
        #[arg(long = "ip")]
        ips: Vec<String>,
        /// Disable port security (source MAC/IP checks).
        #[arg(long)]
        no_port_security: bool,
    },
    List {
        #[arg(long)]
        switch: Option<String>,
    },
    Get {
        port: String,
    },
    Update {
        port: String,
        #[arg(long)]
        mac: Option<String>,
        /// Replaces the address list; repeatable.
        #[arg(long = "ip")]
        ips: Vec<String>,
        /// Remove all addresses.
        #[arg(long, conflicts_with = "ips")]
        clear_ips: bool,
        #[arg(long)]
        port_security: Option<bool>,
    },
    Delete {
        port: String,
    },
}

#[derive(Subcommand, Debug)]
enum AclCmd {
    Create {
        port: String,
        #[arg(long)]
        direction: String,
        #[arg(long)]
        priority: u32,
        #[arg(long)]
        action: String,
        #[arg(long)]
        protocol: Option<String>,
        #[arg(long)]
        ethertype: Option<String>,
        #[arg(long)]
        remote_cidr: Option<String>,
        #[arg(long)]
        port_min: Option<u32>,
        #[arg(long)]
        port_max: Option<u32>,
    },
    List {
        #[arg(long)]
        port: Option<String>,
    },
    Delete {
        acl: String,
    },
}

#[derive(Subcommand, Debug)]
enum NodeCmd {
    List,
    Get { node: String },
    Flows { node: String },
}

#[derive(Args, Debug)]
struct TraceArgs {
    port: String,
    #[arg(long)]
    eth_dst: String,
    #[arg(long)]
    eth_src: Option<String>,
    #[arg(long)]
    ip_src: Option<String>,
    #[arg(long)]
    ip_dst: Option<String>,
    #[arg(long)]
    ip_proto: Option<u8>,
    #[arg(long)]
    tp_src: Option<u16>,
    #[arg(long)]
    tp_dst: Option<u16>,
    /// arp, ip, ipv6, tcp, udp, icmp, tcp6, udp6, icmp6.
    #[arg(long)]
    protocol: Option<String>,
    /// Conntrack state every `ct` reports: new (default), est, rel, inv, with +rpl.
    #[arg(long)]
    ct_state: Option<String>,
    /// An allow-related ACL that admitted the connection in its port's zone (repeatable).
    #[arg(long)]
    ct_acl: Vec<String>,
}

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

/// Which table layout a result gets.
#[derive(Clone, Copy)]
enum View {
    Switches,
    Ports,
    Acls,
    Nodes,
    Object,
    Flows,
    Deleted,
    Trace,
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

fn classify(server: &str, e: ClientError) -> Failure {
    match e {
        ClientError::Call(obj) => Failure::Api(format!("{} (code {})", obj.message(), obj.code())),
        ClientError::Transport(t) => {
            let msg = t.to_string();
            if msg.contains("401") {
                Failure::Api("unauthorized: missing or wrong token (--token-file)".into())
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

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Object(o) if o.contains_key("node") => format!(
            "{}:{}",
            o.get("node").map(cell).unwrap_or_default(),
            o.get("ofport").map(cell).unwrap_or_default()
        ),
        // A provider network: `physnet1` untagged, `physnet1/100` on VLAN 100.
        Value::Object(o) if o.contains_key("physnet") => {
            let physnet = o.get("physnet").map(cell).unwrap_or_default();
            match o.get("vlan").filter(|v| !v.is_null()) {
                Some(v) => format!("{physnet}/{}", cell(v)),
                None => physnet,
            }
        }
        other => other.to_string(),
    }
}

fn table(rows: &[Value], cols: &[(&str, &str)]) -> String {
    let mut grid: Vec<Vec<String>> = vec![cols.iter().map(|(h, _)| h.to_uppercase()).collect()];
    for r in rows {
        grid.push(
            cols.iter()
                .map(|(_, k)| r.get(*k).map(cell).unwrap_or_else(|| "-".into()))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..cols.len())
        .map(|i| {
            grid.iter()
                .map(|row| row.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in grid {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn render(view: View, v: &Value) -> String {
    let list = |v: &Value| v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
    match view {
        View::Switches => table(
            &list(v),
            &[
                ("name", "name"),
                ("vni", "vni"),
                ("ports", "ports"),
                ("provider", "provider"),
                ("id", "id"),
                ("description", "description"),
            ],
        ),
        View::Ports => table(
            &list(v),
            &[
                ("name", "name"),
                ("switch", "switch_name"),
                ("mac", "mac"),
                ("ips", "ips"),
                ("sec", "port_security"),
                ("key", "key"),
                ("zone", "zone"),
                ("binding", "binding"),
                ("up", "up"),
                ("id", "id"),
            ],
        ),
        View::Acls => table(
            &list(v),
            &[
                ("port", "port_name"),
                ("dir", "direction"),
                ("prio", "priority"),
                ("action", "action"),
                ("proto", "protocol"),
                ("ethertype", "ethertype"),
                ("remote", "remote_cidr"),
                ("min", "port_min"),
                ("max", "port_max"),
                ("id", "id"),
            ],
        ),
        View::Nodes => {
            let rows = list(v);
            if rows.is_empty() {
                "no transport nodes connected\n".into()
            } else {
                table(
                    &rows,
                    &[
                        ("node", "id"),
                        ("encap", "encap_type"),
                        ("encap_ip", "encap_ip"),
                        ("ovsdb", "ovsdb_connected"),
                        ("openflow", "openflow_connected"),
                        ("ports", "ports"),
                        ("flows", "flow_count"),
                    ],
                )
            }
        }
        View::Trace => render_trace(v),
        View::Flows => {
            let flows = v
                .get("flows")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            flows.iter().map(|f| format!("{}\n", cell(f))).collect()
        }
        View::Deleted => {
            let n = |k: &str| v.get(k).and_then(Value::as_array).map_or(0, Vec::len);
            format!(
                "deleted {} switch(es), {} port(s), {} acl(s) at revision {}\n",
                n("switches"),
                n("ports"),
                n("acls"),
                v.get("revision").map(cell).unwrap_or_default()
            )
        }
        View::Object => match v.as_object() {
            Some(o) => {
                let w = o.keys().map(String::len).max().unwrap_or(0);
                o.iter()
                    .map(|(k, val)| format!("{k:<w$}  {}\n", cell(val)))
                    .collect()
            }
            None => format!("{v}\n"),
        },
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let hdrs = headers(&cli.token_file)?;
    let server = cli.server.clone();
    if let Cmd::Events = cli.cmd {
        return follow_events(&server, hdrs, cli.json).await;
    }
    if let Cmd::OfpPrint { hex, roundtrip } = &cli.cmd {
        return ofp_print(hex.as_deref(), *roundtrip);
    }
    // Listing 100k ports is tens of MiB; the server caps responses at 256 MiB.
    let client = HttpClientBuilder::default()
        .max_response_size(256 * 1024 * 1024)
        .set_headers(hdrs)
        .build(&server)
        .map_err(|e| Failure::Usage(format!("bad --server {server:?}: {e}")))?;
    let (method, params, view) = match cli.cmd {
        Cmd::Switch(c) => match c {
            SwitchCmd::Create {
                name,
                vni,
                description,
                physnet,
                vlan,
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
                    )?,
                View::Switches,
            ),
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
        Cmd::Status => ("system_status", P::new(), View::Object),
        Cmd::Discover => ("rpc.discover", P::new(), View::Object),
        Cmd::Events | Cmd::OfpPrint { .. } => return Ok(()),
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

async fn follow_events(server: &str, hdrs: HeaderMap, json_out: bool) -> Result<(), Failure> {
    let ws_url = if let Some(rest) = server.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = server.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        server.to_string()
    };
    let client = WsClientBuilder::default()
        .set_headers(hdrs)
        .build(&ws_url)
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

/// A trace as `ofproto/trace` users expect it: per bridge, the tables and flows the packet
/// met, then where copies went and why branches ended.
fn render_trace(v: &Value) -> String {
    let mut out = String::new();
    let s = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    };
    for hop in v["hops"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "node {} in_port {}: {}\n",
            s(&hop["node"]),
            hop["in_port"],
            s(&hop["packet"])
        ));
        for step in hop["steps"].as_array().into_iter().flatten() {
            let indent = "  ".repeat(step["depth"].as_u64().unwrap_or(0) as usize + 1);
            let flow = match &step["flow"] {
                Value::Null => "no match: dropped".to_string(),
                f => s(f),
            };
            out.push_str(&format!("{indent}table {}: {flow}\n", step["table"]));
            for note in step["notes"].as_array().into_iter().flatten() {
                out.push_str(&format!("{indent}  ({})\n", s(note)));
            }
        }
        for o in hop["outputs"].as_array().into_iter().flatten() {
            let to = &o["to"];
            let target = match to["kind"].as_str() {
                Some("port") => format!("port {}", s(&to["port"])),
                Some("tunnel") => format!("tunnel to {}", s(&to["node"])),
                _ => to.to_string(),
            };
            out.push_str(&format!("  -> output:{} ({target})\n", o["ofport"]));
        }
    }
    let delivered: Vec<String> = v["delivered"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| format!("{} on {}", s(&d["port"]), s(&d["node"])))
        .collect();
    out.push_str(&format!(
        "delivered: {}\n",
        if delivered.is_empty() {
            "nowhere".to_string()
        } else {
            delivered.join(", ")
        }
    ));
    for d in v["dropped"].as_array().into_iter().flatten() {
        out.push_str(&format!("dropped: {}\n", s(d)));
    }
    for d in v["acl"].as_array().into_iter().flatten() {
        let rule = match &d["rule"] {
            Value::Null => s(&d["by"]),
            r => format!(
                "acl {} (priority {}, {})",
                s(&r["id"]),
                r["priority"],
                s(&r["action"])
            ),
        };
        out.push_str(&format!(
            "acl: {} {} on {} [ct {}]: {} by {rule}: {}\n",
            s(&d["port"]),
            s(&d["direction"]),
            s(&d["node"]),
            s(&d["conntrack"]),
            s(&d["verdict"]),
            s(&d["reason"])
        ));
    }
    out
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
