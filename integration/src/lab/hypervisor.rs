//! One simulated hypervisor: a network namespace with its own `ovsdb-server` and
//! `ovs-vswitchd` (an [`OvsSandbox`] with the userspace datapath, private run/db/log dirs),
//! `br-phy` carrying the transport IP and linked to the underlay, and an empty `br-int` for
//! the controller.
//!
//! The OVS tools need no namespace: they talk to the daemons over unix sockets in the
//! hypervisor's run dir, selected by `OVS_RUNDIR` (and `--db=unix:..` for `ovs-vsctl`).
//! Only the daemons and the `ip`/`sysctl`/`ping` commands run inside the namespace.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::cmd::Cmd;
use super::error::{LabError, Result, bounded};
use super::ovsjson::{self, Row};
use super::{Shared, wait_for};
use crate::sandbox::{Daemon, Datapath, OvsSandbox};

/// Weft's hypervisor restart procedure, as the package ships it.
const WEFT_OVS_RESTART: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../controller/packaging/weft-ovs-restart"
);

/// Resident memory of a hypervisor's daemons (from `/proc/<pid>/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DaemonMemory {
    /// `ovsdb-server` VmRSS in KiB.
    pub ovsdb_server_kib: u64,
    /// `ovs-vswitchd` VmRSS in KiB.
    pub vswitchd_kib: u64,
}

impl DaemonMemory {
    /// Both daemons together, in KiB.
    pub fn total_kib(&self) -> u64 {
        self.ovsdb_server_kib + self.vswitchd_kib
    }
}

/// An `Interface` row, the columns tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// `name`.
    pub name: String,
    /// `type` (empty for system/veth ports, `internal`, `geneve`, `vxlan`, ...).
    pub kind: String,
    /// `ofport`: `None` while unassigned; `Some(-1)` when OVS failed to open the port.
    pub ofport: Option<i64>,
    /// `error`: why OVS could not open the port.
    pub error: Option<String>,
    /// `external_ids` (`iface-id`, `attached-mac`, `weft-installed`, ...).
    pub external_ids: BTreeMap<String, String>,
    /// `options` (`remote_ip`, `key`, ... for tunnels).
    pub options: BTreeMap<String, String>,
    /// `statistics` (refreshed by OVS every 5 s; use [`Hypervisor::port_stats`] for live
    /// counters).
    pub statistics: BTreeMap<String, String>,
}

impl InterfaceInfo {
    fn from_row(row: &Row) -> Self {
        InterfaceInfo {
            name: ovsjson::opt_string(row.get("name")).unwrap_or_default(),
            kind: ovsjson::opt_string(row.get("type")).unwrap_or_default(),
            ofport: ovsjson::opt_i64(row.get("ofport")),
            error: ovsjson::opt_string(row.get("error")),
            external_ids: ovsjson::string_map(row.get("external_ids")),
            options: ovsjson::string_map(row.get("options")),
            statistics: ovsjson::string_map(row.get("statistics")),
        }
    }

    /// `external_ids:iface-id`.
    pub fn iface_id(&self) -> Option<&str> {
        self.external_ids.get("iface-id").map(String::as_str)
    }

    /// True once OVS assigned a usable OpenFlow port number.
    pub fn is_up(&self) -> bool {
        self.error.is_none() && self.ofport.is_some_and(|p| p > 0)
    }
}

/// OpenFlow port counters from `ovs-ofctl dump-ports` (live, unlike `Interface.statistics`).
/// Counters OVS reports as `?` (unsupported) read as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Packets received by the switch on this port.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Packets the switch sent out of this port.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets dropped on transmit.
    pub tx_dropped: u64,
}

impl PortStats {
    /// Parses the first port block of `ovs-ofctl dump-ports` output.
    pub(crate) fn parse(command: &str, output: &str) -> Result<Self> {
        let mut stats = PortStats::default();
        let (mut seen_rx, mut seen_tx) = (false, false);
        for line in output.lines() {
            let line = line.trim();
            // "port  1: rx pkts=3, bytes=126, drop=0, errs=0, frame=0, over=0, crc=0"
            let (dir, rest) = if let Some((_, r)) = line.split_once(": rx ") {
                ("rx", r)
            } else if let Some(r) = line.strip_prefix("tx ") {
                ("tx", r)
            } else {
                continue;
            };
            if (dir == "rx" && seen_rx) || (dir == "tx" && seen_tx) {
                break; // next port's block
            }
            let field = |name: &str| {
                rest.split(',')
                    .filter_map(|kv| kv.trim().split_once('='))
                    .find(|(k, _)| *k == name)
                    .and_then(|(_, v)| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if dir == "rx" {
                seen_rx = true;
                (stats.rx_packets, stats.rx_bytes, stats.rx_dropped) =
                    (field("pkts"), field("bytes"), field("drop"));
            } else {
                seen_tx = true;
                (stats.tx_packets, stats.tx_bytes, stats.tx_dropped) =
                    (field("pkts"), field("bytes"), field("drop"));
            }
        }
        if !(seen_rx && seen_tx) {
            return Err(LabError::Parse {
                command: command.to_owned(),
                reason: "no rx/tx counter lines".into(),
                output: bounded(output),
            });
        }
        Ok(stats)
    }
}

/// A simulated hypervisor (transport node). Obtained from [`crate::Lab::hypervisors`].
#[derive(Debug)]
pub struct Hypervisor {
    pub(crate) shared: Arc<Shared>,
    pub(crate) n: usize,
    name: String,
    netns: String,
    transport_ip: Ipv4Addr,
    ovs: OvsSandbox,
}

impl Hypervisor {
    /// Builds hypervisor number `n` (1-based) of the lab: namespace, underlay veth, OVS,
    /// br-phy with the transport IP, empty br-int. Anything half-built is removed by the
    /// lab's teardown, which works from names alone.
    pub(crate) fn create(shared: Arc<Shared>, n: usize) -> Result<Self> {
        let name = format!("hv{n}");
        let netns = shared.id.hv_netns(n);
        let dir = shared.dir.join(&name);
        let transport_ip = shared.transport_ip(n)?;
        create_namespace(&shared, n, &netns)?;
        let ovs = OvsSandbox::builder(&name)
            .dir(dir)
            .netns(&netns)
            // Honour Open_vSwitch.manager_options, i.e. `ovs-vsctl set-manager`.
            .remote("db:Open_vSwitch,Open_vSwitch,manager_options")
            .open_vswitch([
                format!("external_ids:system-id={name}"),
                format!("external_ids:hostname={name}"),
                format!("external_ids:weft-encap-ip={transport_ip}"),
                format!("external_ids:weft-encap-type={}", shared.encap.as_str()),
                // One handler and one revalidator thread: a lab runs many vswitchds on few
                // cores.
                "other_config:n-handler-threads=1".into(),
                "other_config:n-revalidator-threads=1".into(),
            ])
            .vswitchd(Datapath::Netdev)
            .start()?;
        let hv = Hypervisor {
            shared,
            n,
            name,
            netns,
            transport_ip,
            ovs,
        };
        // br-phy: the transport bridge; the userspace tunnel stack needs the transport IP
        // on a netdev bridge's internal port, not on the raw veth (see the recipe).
        // br-int: created empty; the controller sets fail_mode, protocols and controller.
        hv.vsctl([
            "--",
            "add-br",
            "br-phy",
            "--",
            "set",
            "Bridge",
            "br-phy",
            "datapath_type=netdev",
            "--",
            "add-port",
            "br-phy",
            "ul0",
            "--",
            "add-br",
            "br-int",
            "--",
            "set",
            "Bridge",
            "br-int",
            "datapath_type=netdev",
        ])?;
        let ul0 = hv.interface("ul0")?;
        if !ul0.is_up() {
            return Err(LabError::InterfaceFailed {
                hypervisor: hv.name.clone(),
                interface: "ul0".into(),
                ofport: ul0.ofport,
                error: ul0.error,
            });
        }
        hv.restore_transport_ip()?;
        Ok(hv)
    }

    /// (Re)puts the transport IP on br-phy's internal port. Needed after every vswitchd
    /// start: the port is a tap that exists only while vswitchd runs.
    fn restore_transport_ip(&self) -> Result<()> {
        let ns = &self.netns;
        let cidr = format!("{}/{}", self.transport_ip, super::UNDERLAY_PREFIX_LEN);
        wait_for(
            &format!("br-phy tap in {ns}"),
            Duration::from_secs(10),
            || {
                Ok(Cmd::new("ip")
                    .args(["-n", ns, "link", "show", "dev", "br-phy"])
                    .output()?
                    .status
                    .success())
            },
        )?;
        Cmd::new("ip")
            .args(["-n", ns, "addr", "replace", &cidr, "dev", "br-phy"])
            .run()?;
        Cmd::new("ip")
            .args(["-n", ns, "link", "set", "dev", "br-phy", "up"])
            .run()?;
        Ok(())
    }

    /// `hv1`, `hv2`, ...: also its `system-id`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `system-id` in `Open_vSwitch.external_ids` (same as [`Hypervisor::name`]).
    pub fn system_id(&self) -> &str {
        &self.name
    }

    /// 1-based number of the hypervisor in its lab.
    pub fn number(&self) -> usize {
        self.n
    }

    /// Its network namespace (for `ip netns exec`).
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Tunnel endpoint IP (on br-phy), also `external_ids:weft-encap-ip`.
    pub fn transport_ip(&self) -> Ipv4Addr {
        self.transport_ip
    }

    /// Private directory holding `run/`, `db/`, `log/`, `etc/`.
    pub fn dir(&self) -> &Path {
        self.ovs.dir()
    }

    /// The hypervisor's OVS daemons and tools.
    pub fn ovs(&self) -> &OvsSandbox {
        &self.ovs
    }

    /// ovsdb-server's unix socket.
    pub fn db_socket(&self) -> PathBuf {
        self.ovs.db_socket()
    }

    /// `unix:<db socket>`: an OVSDB target a controller can dial directly.
    pub fn db_target(&self) -> String {
        self.ovs.db_target()
    }

    /// Log file of a daemon (handy when a test fails).
    pub fn log_file(&self, daemon: Daemon) -> PathBuf {
        self.ovs.log_file(daemon)
    }

    /// `ovs-vsctl --db=unix:<sock> --timeout=30 ARGS...`; returns stdout. Note that
    /// ovs-vsctl succeeds even when a port fails to open: check [`Hypervisor::interface`].
    pub fn vsctl<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.ovs.vsctl(args)
    }

    /// `ovs-ofctl ARGS...` against this hypervisor's bridges (pass `-O OpenFlow13` yourself
    /// once the controller restricted `protocols`). Returns stdout.
    pub fn ofctl<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.ovs.ofctl(args)
    }

    /// `ovs-ofctl -O OpenFlow13 dump-flows BRIDGE`, one flow per line (header dropped).
    pub fn dump_flows(&self, bridge: &str) -> Result<Vec<String>> {
        let out = self.ofctl(["-O", "OpenFlow13", "--no-stats", "dump-flows", bridge])?;
        Ok(out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("OFPST_FLOW"))
            .map(str::to_owned)
            .collect())
    }

    /// `ovs-ofctl -O OpenFlow13 add-flow BRIDGE FLOW`.
    pub fn add_flow(&self, bridge: &str, flow: &str) -> Result<()> {
        self.ofctl(["-O", "OpenFlow13", "add-flow", bridge, flow])
            .map(drop)
    }

    /// `ovs-appctl ARGS...` to ovs-vswitchd (e.g. `ofproto/trace`, `tnl/arp/show`).
    pub fn appctl<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.ovs.appctl(args)
    }

    /// `ovs-appctl ofproto/trace BRIDGE FLOW`: where the installed pipeline sends a
    /// packet, table by table (e.g. `in_port=a,dl_src=..,dl_dst=ff:ff:ff:ff:ff:ff,arp`).
    pub fn trace(&self, bridge: &str, flow: &str) -> Result<String> {
        self.appctl(["ofproto/trace", bridge, flow])
    }

    /// `ovs-vsctl set-controller BRIDGE TARGET` (normally the controller's job; for tests
    /// that play controller by hand).
    pub fn set_controller(&self, bridge: &str, target: &str) -> Result<()> {
        self.vsctl(["set-controller", bridge, target]).map(drop)
    }

    /// `ovs-appctl -t ovsdb-server ARGS...`.
    pub fn appctl_ovsdb<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.ovs.appctl_ovsdb(args)
    }

    /// Runs a command inside the hypervisor's namespace; returns stdout.
    pub fn exec<I, S>(&self, program: &str, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Cmd::new(program)
            .args(args)
            .envs(&self.ovs.env())
            .netns(&self.netns)
            .run()
    }

    /// `ovs-vsctl set-manager TARGET`: ovsdb-server connects out to a manager
    /// (`tcp:<lab.controller_ip()>:6640`) or listens (`ptcp:6640:<transport ip>`).
    /// The connection leaves through br-phy, so it needs ovs-vswitchd running.
    pub fn set_manager(&self, target: &str) -> Result<()> {
        self.vsctl(["set-manager", target]).map(drop)
    }

    /// `ovs-vsctl del-manager`.
    pub fn del_manager(&self) -> Result<()> {
        self.vsctl(["del-manager"]).map(drop)
    }

    /// Plugs a VM into this hypervisor's br-int (same as [`crate::Lab::plug_vm`]).
    pub fn plug_vm(&self, spec: super::VmSpec) -> Result<super::Vm> {
        super::vm::plug(self, spec)
    }

    /// `Open_vSwitch.external_ids` (`system-id`, `weft-encap-ip`, `weft-encap-type`, ...).
    pub fn open_vswitch_external_ids(&self) -> Result<BTreeMap<String, String>> {
        let rows = self.list("Open_vSwitch", None, &["external_ids"])?;
        Ok(rows
            .first()
            .map(|r| ovsjson::string_map(r.get("external_ids")))
            .unwrap_or_default())
    }

    /// One `Interface` row by name.
    pub fn interface(&self, name: &str) -> Result<InterfaceInfo> {
        let rows = self.list("Interface", Some(name), INTERFACE_COLUMNS)?;
        rows.first()
            .map(InterfaceInfo::from_row)
            .ok_or_else(|| LabError::Parse {
                command: format!("ovs-vsctl list Interface {name}"),
                reason: "no such row".into(),
                output: String::new(),
            })
    }

    /// Every `Interface` row.
    pub fn interfaces(&self) -> Result<Vec<InterfaceInfo>> {
        Ok(self
            .list("Interface", None, INTERFACE_COLUMNS)?
            .iter()
            .map(InterfaceInfo::from_row)
            .collect())
    }

    /// The Interface whose `external_ids:iface-id` is `iface_id`, if any.
    pub fn interface_by_iface_id(&self, iface_id: &str) -> Result<Option<InterfaceInfo>> {
        Ok(self
            .interfaces()?
            .into_iter()
            .find(|i| i.iface_id() == Some(iface_id)))
    }

    fn list(&self, table: &str, record: Option<&str>, columns: &[&str]) -> Result<Vec<Row>> {
        let mut args = vec![
            "--format=json".to_owned(),
            format!("--columns={}", columns.join(",")),
            "list".into(),
            table.into(),
        ];
        args.extend(record.map(str::to_owned));
        let out = self.vsctl(&args)?;
        ovsjson::parse_rows(&format!("ovs-vsctl list {table}"), &out)
    }

    /// OpenFlow counters of `port` (name or number) on `bridge`, from
    /// `ovs-ofctl dump-ports`. Live for VM (veth) ports and `ul0`; for tunnel ports the
    /// userspace datapath updates them only when it pulls datapath flow statistics
    /// (measured: 0.1-0.5 s after a single ping), so poll with [`Hypervisor::wait_for`],
    /// wait a second before concluding that nothing was sent, or use
    /// [`Hypervisor::underlay_stats`] for "did anything leave this hypervisor".
    pub fn port_stats(&self, bridge: &str, port: &str) -> Result<PortStats> {
        let out = self.ofctl(["-O", "OpenFlow13", "dump-ports", bridge, port])?;
        PortStats::parse(&format!("ovs-ofctl dump-ports {bridge} {port}"), &out)
    }

    /// Live counters of `ul0`, the hypervisor's only link to the underlay (on br-phy):
    /// every encapsulated packet, ARP for tunnel next hops and manager/controller traffic
    /// leaves through it. Unlike tunnel ports, whose counters the userspace datapath
    /// updates with a delay, these are exact at once.
    pub fn underlay_stats(&self) -> Result<PortStats> {
        self.port_stats("br-phy", "ul0")
    }

    /// Polls `condition` (every 50 ms) until it returns true or `timeout` passes.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut(&Hypervisor) -> Result<bool>,
    ) -> Result<()> {
        wait_for(&format!("{what} on {}", self.name), timeout, || {
            condition(self)
        })
    }

    /// Polls until interface `name` exists and `pred` holds for it; returns the row.
    /// E.g. wait for `external_ids:weft-installed=true`.
    pub fn wait_for_interface(
        &self,
        name: &str,
        timeout: Duration,
        mut pred: impl FnMut(&InterfaceInfo) -> bool,
    ) -> Result<InterfaceInfo> {
        let mut last = None;
        let what = format!(
            "interface {name} on {} to reach the expected state",
            self.name
        );
        wait_for(&what, timeout, || {
            // A missing row is "not yet", not an error.
            let Ok(info) = self.interface(name) else {
                return Ok(false);
            };
            let ok = pred(&info);
            last = Some(info);
            Ok(ok)
        })?;
        last.ok_or(LabError::Timeout { what, timeout })
    }

    /// PIDs of the running daemons (`None` when stopped or killed).
    pub fn pid(&self, daemon: Daemon) -> Option<u32> {
        self.ovs.pid(daemon)
    }

    /// Whether the daemon we started is still alive.
    pub fn is_running(&self, daemon: Daemon) -> bool {
        self.ovs.is_running(daemon)
    }

    /// Stops ovs-vswitchd (SIGTERM) and starts it again with the same database: flows are
    /// lost, as on a real restart, and the controller must reinstall them.
    pub fn restart_vswitchd(&self) -> Result<()> {
        self.ovs.restart(Daemon::Vswitchd)?;
        self.restore_transport_ip()
    }

    /// Restarts ovs-vswitchd with Weft's restart procedure (`weft-ovs-restart`, shipped
    /// in controller/packaging): br-int's groups and flows are saved, vswitchd restarts,
    /// and the saved tables are added back through br-int's management socket at once,
    /// so that forwarding does not wait for vswitchd's connection to the controller.
    pub fn restart_vswitchd_keeping_flows(&self) -> Result<()> {
        let saved = self.ovs.dir().join("saved-tables");
        self.ovs
            .tool("sh")
            .arg(WEFT_OVS_RESTART)
            .arg("save")
            .arg(&saved)
            .run()?;
        self.ovs.restart(Daemon::Vswitchd)?;
        // The tunnels' underlay route lives on br-phy, which the restart re-created.
        self.restore_transport_ip()?;
        self.ovs
            .tool("sh")
            .arg(WEFT_OVS_RESTART)
            .arg("restore")
            .arg(&saved)
            .run()?;
        Ok(())
    }

    /// Stops ovsdb-server (SIGTERM) and starts it again on the same database file;
    /// ovs-vswitchd reconnects to it by itself, manager connections are re-established.
    pub fn restart_ovsdb(&self) -> Result<()> {
        self.ovs.restart(Daemon::OvsdbServer).map(drop)
    }

    /// Kills both daemons with SIGKILL (a hypervisor crash / power loss): no goodbye on
    /// any connection. The namespace, ports and database file stay; [`Hypervisor::start`]
    /// brings the hypervisor back.
    pub fn kill(&self) {
        self.ovs.kill(Daemon::Vswitchd);
        self.ovs.kill(Daemon::OvsdbServer);
    }

    /// Starts whichever daemon is not running (after [`Hypervisor::kill`]).
    pub fn start(&self) -> Result<()> {
        if !self.is_running(Daemon::OvsdbServer) {
            self.ovs.start_daemon(Daemon::OvsdbServer)?;
        }
        if !self.is_running(Daemon::Vswitchd) {
            self.ovs.start_daemon(Daemon::Vswitchd)?;
            self.restore_transport_ip()?;
        }
        Ok(())
    }

    /// Takes the hypervisor's underlay link down or up (a cable pull, daemons untouched).
    pub fn set_underlay_link(&self, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        let link = format!("hv{}", self.n);
        Cmd::new("ip")
            .args([
                "-n",
                &self.shared.id.underlay_netns(),
                "link",
                "set",
                "dev",
                &link,
                state,
            ])
            .run()
            .map(drop)
    }

    /// Resident memory of both daemons.
    pub fn memory(&self) -> Result<DaemonMemory> {
        let rss = |daemon: Daemon| -> Result<u64> {
            let pid = self.pid(daemon).ok_or(LabError::DaemonDown {
                hypervisor: self.name.clone(),
                daemon: daemon.program(),
            })?;
            let path = PathBuf::from(format!("/proc/{pid}/status"));
            let text = std::fs::read_to_string(&path).map_err(|source| LabError::Io {
                op: "read",
                path: path.clone(),
                source,
            })?;
            text.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| LabError::Parse {
                    command: path.display().to_string(),
                    reason: "no VmRSS".into(),
                    output: bounded(&text),
                })
        };
        Ok(DaemonMemory {
            ovsdb_server_kib: rss(Daemon::OvsdbServer)?,
            vswitchd_kib: rss(Daemon::Vswitchd)?,
        })
    }

    /// PIDs of this hypervisor's running daemons, for teardown.
    pub(crate) fn running_pids(&self) -> Vec<u32> {
        self.ovs.running_pids()
    }

    /// Leaves the daemons running when this handle is dropped (see [`crate::Lab::keep`]).
    pub(crate) fn keep(&self) {
        self.ovs.keep();
    }
}

/// The hypervisor's namespace, linked to the underlay bridge by veth `hv<n>` / `ul0`.
fn create_namespace(shared: &Shared, n: usize, ns: &str) -> Result<()> {
    let ul = shared.id.underlay_netns();
    Cmd::new("ip").args(["netns", "add", ns]).run()?;
    // arp_ignore=1: ul0 has no address, but with the default 0 the kernel answers ARP
    // for the transport IP on ul0 with ul0's MAC; a peer that caches that MAC sends
    // tunnel packets OVS does not terminate. IPv6 off: a quiet underlay.
    Cmd::new("sysctl")
        .args([
            "-qw",
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.default.arp_ignore=1",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ])
        .netns(ns)
        .run()?;
    let link = format!("hv{n}");
    Cmd::new("ip")
        .args([
            "-n", &ul, "link", "add", "name", &link, "type", "veth", "peer", "name", "ul0",
            "netns", ns,
        ])
        .run()?;
    Cmd::new("ip")
        .args(["-n", &ul, "link", "set", "dev", &link, "master", "ul", "up"])
        .run()?;
    Cmd::new("ip")
        .args(["-n", ns, "link", "set", "dev", "lo", "up"])
        .run()?;
    Cmd::new("ip")
        .args(["-n", ns, "link", "set", "dev", "ul0", "up"])
        .run()?;
    Ok(())
}

const INTERFACE_COLUMNS: &[&str] = &[
    "name",
    "type",
    "ofport",
    "error",
    "external_ids",
    "options",
    "statistics",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dump_ports() {
        let out = "OFPST_PORT reply (OF1.3) (xid=0x2): 1 ports\n  port  2: rx pkts=10, bytes=868, drop=0, errs=0, frame=0, over=0, crc=0\n           tx pkts=7, bytes=574, drop=1, errs=0, coll=0\n           duration=12.3s\n";
        let s = PortStats::parse("t", out).unwrap();
        assert_eq!(
            s,
            PortStats {
                rx_packets: 10,
                rx_bytes: 868,
                rx_dropped: 0,
                tx_packets: 7,
                tx_bytes: 574,
                tx_dropped: 1
            }
        );
        let unknown = "  port  1: rx pkts=?, bytes=?, drop=?, errs=?, frame=?, over=?, crc=?\n           tx pkts=3, bytes=?, drop=?, errs=?, coll=?\n";
        assert_eq!(PortStats::parse("t", unknown).unwrap().tx_packets, 3);
        assert!(PortStats::parse("t", "garbage").is_err());
    }
}
