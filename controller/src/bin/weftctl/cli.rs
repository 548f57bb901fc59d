//! weftctl's command line: its flags and subcommands, shared with `weft-docs`, which
//! renders man pages and shell completions from them at package build time.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "weftctl",
    version,
    about = "Command-line client for the Weft controller"
)]
pub struct Cli {
    /// weftd API URL: http://, https:// (weftd run with --api-certificate), or the
    /// ws:// / wss:// form of the same address.
    #[arg(
        long,
        global = true,
        env = "WEFT_SERVER",
        default_value = "http://127.0.0.1:6690"
    )]
    pub server: String,
    /// CA certificate (PEM) that signed weftd's API certificate: an https:// server's
    /// certificate is verified against it (chain and name) instead of the system's CAs.
    #[arg(long, global = true, env = "WEFT_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// File holding the API bearer token.
    #[arg(long, global = true, env = "WEFT_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Print the raw JSON result instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Logical switches.
    #[command(subcommand)]
    Switch(SwitchCmd),
    /// Logical ports.
    #[command(subcommand)]
    Port(PortCmd),
    /// Port ACLs.
    #[command(subcommand)]
    Acl(AclCmd),
    /// Logical routers.
    #[command(subcommand)]
    Router(RouterCmd),
    /// Router ports: a router's attachment to a switch.
    #[command(subcommand)]
    RouterPort(RouterPortCmd),
    /// Static routes of a router.
    #[command(subcommand)]
    Route(RouteCmd),
    /// Transport nodes (hypervisors).
    #[command(subcommand)]
    Node(NodeCmd),
    /// Hardware VTEPs (hardware_vtep OVSDB) and their port/VLAN bindings.
    #[command(subcommand)]
    Vtep(VtepCmd),
    /// The weftd instances of a cluster (--etcd) and which hypervisors each owns.
    #[command(subcommand)]
    Cluster(ClusterCmd),
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
    /// Print weftctl's completion script for a shell (no weftd needed), e.g.
    /// `weftctl completions bash > /etc/bash_completion.d/weftctl`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum SwitchCmd {
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
        /// A flood-and-learn VXLAN endpoint on the switch's segment; repeatable.
        #[arg(long = "flood-vtep")]
        flood_vteps: Vec<String>,
    },
    /// Change a switch's description or flood-and-learn VTEPs.
    Update {
        switch: String,
        #[arg(long)]
        description: Option<String>,
        /// Replaces the flood VTEP list; repeatable.
        #[arg(long = "flood-vtep")]
        flood_vteps: Vec<String>,
        /// Remove all flood VTEPs.
        #[arg(long, conflicts_with = "flood_vteps")]
        clear_flood_vteps: bool,
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
pub enum PortCmd {
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
pub enum AclCmd {
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
pub enum RouterCmd {
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    List,
    Get {
        router: String,
    },
    Delete {
        router: String,
        /// Also delete the router's ports and routes.
        #[arg(long)]
        cascade: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum RouterPortCmd {
    Create {
        router: String,
        name: String,
        /// The switch this port attaches the router to.
        #[arg(long)]
        switch: String,
        #[arg(long)]
        mac: String,
        /// An interface address in CIDR form (10.0.1.1/24); repeatable, at least one.
        #[arg(long = "ip", required = true)]
        ips: Vec<String>,
    },
    List {
        #[arg(long)]
        router: Option<String>,
    },
    Delete {
        router_port: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RouteCmd {
    Create {
        router: String,
        /// Destination prefix in CIDR form.
        #[arg(long)]
        prefix: String,
        /// Gateway address, in a subnet of one of the router's ports.
        #[arg(long)]
        nexthop: String,
    },
    List {
        #[arg(long)]
        router: Option<String>,
    },
    Delete {
        route: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Instances (alive, hypervisors owned, API, OpenFlow target) and etcd.
    Status,
}

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    List,
    Get { node: String },
    Flows { node: String },
}

#[derive(Subcommand, Debug)]
pub enum VtepCmd {
    List,
    Get {
        vtep: String,
    },
    /// Bind a VTEP's physical port and VLAN (0 = untagged) to a logical switch.
    Bind {
        vtep: String,
        port: String,
        vlan: u16,
        switch: String,
    },
    Unbind {
        vtep: String,
        port: String,
        vlan: u16,
    },
}

#[derive(Args, Debug)]
pub struct TraceArgs {
    pub port: String,
    #[arg(long)]
    pub eth_dst: String,
    #[arg(long)]
    pub eth_src: Option<String>,
    #[arg(long)]
    pub ip_src: Option<String>,
    #[arg(long)]
    pub ip_dst: Option<String>,
    #[arg(long)]
    pub ip_proto: Option<u8>,
    #[arg(long)]
    pub tp_src: Option<u16>,
    #[arg(long)]
    pub tp_dst: Option<u16>,
    /// arp, ip, ipv6, tcp, udp, icmp, tcp6, udp6, icmp6.
    #[arg(long)]
    pub protocol: Option<String>,
    /// Conntrack state every `ct` reports: new (default), est, rel, inv, with +rpl.
    #[arg(long)]
    pub ct_state: Option<String>,
    /// An allow-related ACL that admitted the connection in its port's zone (repeatable).
    #[arg(long)]
    pub ct_acl: Vec<String>,
}
