//! A real `ovs-vtep` hardware VTEP next to an [`Overlay`](super::overlay::Overlay) lab,
//! with bare-metal hosts behind its physical ports: the hardware VTEP tests share it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use integration::lab::Lab;

use super::overlay::Overlay;

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// One `ovs-vtep` VTEP: namespace, its ovsdb-server (conf.db + vtep.db), ovs-vswitchd,
/// br-phy on the underlay, physical switch `br0` with port `p0`, and a bare-metal host
/// namespace behind `p0`. Dropping it stops what it started, by PID, and deletes its
/// namespaces, veth and files.
pub struct Vtep {
    pub ns: String,
    /// The untagged host behind `p0` (10.0.0.60, 02:00:00:00:bb:01).
    pub bm: String,
    /// The host behind `p1` on VLAN 100 (10.0.0.98, 02:00:00:00:bb:02).
    pub bm2: String,
    /// The underlay-side veth (in the underlay namespace).
    uplink: String,
    underlay_ns: String,
    dir: tempfile::TempDir,
    pub tunnel_ip: String,
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sh(args: &[&str]) -> String {
    run(Command::new(args[0]).args(&args[1..]))
}

impl Vtep {
    pub fn start(lab: &Lab, manager: &str) -> Vtep {
        let tag = format!("wv{}", std::process::id() % 1_000_000);
        let net = lab.underlay_network().octets();
        let tunnel_ip = format!("{}.{}.{}.200", net[0], net[1], net[2]);
        let v = Vtep {
            ns: format!("{tag}-vtep"),
            bm: format!("{tag}-bm1"),
            bm2: format!("{tag}-bm2"),
            uplink: format!("{tag}u"),
            underlay_ns: lab.underlay_netns(),
            dir: tempfile::tempdir().unwrap(),
            tunnel_ip,
        };
        let d = v.dir.path();
        for sub in ["run", "db", "log", "etc"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        sh(&["ip", "netns", "add", &v.ns]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &v.ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
        ]);
        sh(&["ip", "-n", &v.ns, "link", "set", "lo", "up"]);
        sh(&[
            "ip",
            "-n",
            &v.underlay_ns,
            "link",
            "add",
            &v.uplink,
            "type",
            "veth",
            "peer",
            "name",
            "ul0",
            "netns",
            &v.ns,
        ]);
        sh(&[
            "ip",
            "-n",
            &v.underlay_ns,
            "link",
            "set",
            &v.uplink,
            "master",
            "ul",
            "up",
        ]);
        sh(&["ip", "-n", &v.ns, "link", "set", "ul0", "up"]);
        let conf = d.join("db/conf.db");
        let vtep_db = d.join("db/vtep.db");
        sh(&[
            "ovsdb-tool",
            "create",
            s(&conf),
            "/usr/share/openvswitch/vswitch.ovsschema",
        ]);
        sh(&[
            "ovsdb-tool",
            "create",
            s(&vtep_db),
            "/usr/share/openvswitch/vtep.ovsschema",
        ]);
        let sock = format!("--remote=punix:{}", d.join("run/db.sock").display());
        v.ns_run(&[
            "ovsdb-server",
            s(&conf),
            s(&vtep_db),
            &sock,
            "--remote=db:hardware_vtep,Global,managers",
            "--pidfile",
            "--detach",
            "--no-chdir",
            "--log-file",
            "-vconsole:off",
        ]);
        v.vsctl(&["--no-wait", "init"]);
        v.ns_run(&[
            "ovs-vswitchd",
            "--pidfile",
            "--detach",
            "--no-chdir",
            "--log-file",
            "-vconsole:off",
        ]);
        v.vsctl(&[
            "add-br",
            "br-phy",
            "--",
            "set",
            "bridge",
            "br-phy",
            "datapath_type=netdev",
            "--",
            "add-port",
            "br-phy",
            "ul0",
        ]);
        sh(&[
            "ip",
            "-n",
            &v.ns,
            "addr",
            "add",
            &format!("{}/24", v.tunnel_ip),
            "dev",
            "br-phy",
        ]);
        sh(&["ip", "-n", &v.ns, "link", "set", "br-phy", "up"]);
        v.vsctl(&[
            "add-br",
            "br0",
            "--",
            "set",
            "bridge",
            "br0",
            "datapath_type=netdev",
        ]);
        // The bare-metal host behind p0, untagged.
        sh(&["ip", "netns", "add", &v.bm]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &v.bm,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
        ]);
        sh(&[
            "ip", "-n", &v.ns, "link", "add", "p0", "type", "veth", "peer", "name", "eth0",
            "netns", &v.bm,
        ]);
        sh(&["ip", "-n", &v.ns, "link", "set", "p0", "mtu", "1400", "up"]);
        sh(&[
            "ip",
            "-n",
            &v.bm,
            "link",
            "set",
            "eth0",
            "address",
            "02:00:00:00:bb:01",
            "mtu",
            "1400",
            "up",
        ]);
        sh(&[
            "ip",
            "-n",
            &v.bm,
            "addr",
            "add",
            "10.0.0.60/24",
            "dev",
            "eth0",
        ]);
        v.vsctl(&["add-port", "br0", "p0"]);
        // The host behind p1 on VLAN 100: this kernel has no 8021q, so an OVS access
        // switch brT tags its frames (access port bm2 tag=100, trunk t1 to p1).
        sh(&["ip", "netns", "add", &v.bm2]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &v.bm2,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
        ]);
        sh(&[
            "ip", "-n", &v.ns, "link", "add", "bm2", "type", "veth", "peer", "name", "eth0",
            "netns", &v.bm2,
        ]);
        sh(&[
            "ip", "-n", &v.ns, "link", "add", "p1", "type", "veth", "peer", "name", "t1",
        ]);
        for l in ["bm2", "p1", "t1"] {
            sh(&["ip", "-n", &v.ns, "link", "set", l, "mtu", "1400", "up"]);
        }
        sh(&[
            "ip",
            "-n",
            &v.bm2,
            "link",
            "set",
            "eth0",
            "address",
            "02:00:00:00:bb:02",
            "mtu",
            "1400",
            "up",
        ]);
        sh(&[
            "ip",
            "-n",
            &v.bm2,
            "addr",
            "add",
            "10.0.0.98/24",
            "dev",
            "eth0",
        ]);
        // Checksums in software: the userspace datapath does not complete offloaded ones.
        for (ns, l) in [
            (&v.ns, "p0"),
            (&v.ns, "bm2"),
            (&v.ns, "p1"),
            (&v.ns, "t1"),
            (&v.bm, "eth0"),
            (&v.bm2, "eth0"),
        ] {
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "ethtool", "-K", l, "tx", "off"])
                .output();
        }
        v.vsctl(&[
            "add-br",
            "brT",
            "--",
            "set",
            "bridge",
            "brT",
            "datapath_type=netdev",
            "--",
            "add-port",
            "brT",
            "t1",
            "trunks=100",
            "--",
            "add-port",
            "brT",
            "bm2",
            "tag=100",
        ]);
        v.vsctl(&["add-port", "br0", "p1"]);
        v.vtep_ctl(&[
            "add-ps",
            "br0",
            "--",
            "set",
            "Physical_Switch",
            "br0",
            &format!("tunnel_ips={}", v.tunnel_ip),
        ]);
        v.vtep_ctl(&["add-port", "br0", "p0"]);
        v.vtep_ctl(&["add-port", "br0", "p1"]);
        let log = format!("--log-file={}", d.join("log/ovs-vtep.log").display());
        let pid = format!("--pidfile={}", d.join("run/ovs-vtep.pid").display());
        v.ns_run(&[
            "/usr/bin/python3",
            "/usr/share/openvswitch/scripts/ovs-vtep",
            &log,
            &pid,
            "--detach",
            "br0",
        ]);
        v.vtep_ctl(&["set-manager", manager]);
        v
    }

    fn env(&self, cmd: &mut Command) {
        let d = self.dir.path();
        cmd.env("OVS_RUNDIR", d.join("run"))
            .env("OVS_DBDIR", d.join("db"))
            .env("OVS_LOGDIR", d.join("log"))
            .env("OVS_SYSCONFDIR", d.join("etc"));
    }

    pub fn ns_run(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).args(args);
        self.env(&mut cmd);
        run(&mut cmd)
    }

    pub fn vsctl(&self, args: &[&str]) -> String {
        let mut a = vec!["ovs-vsctl", "--timeout=20"];
        a.extend_from_slice(args);
        self.ns_run(&a)
    }

    pub fn vtep_ctl(&self, args: &[&str]) -> String {
        let mut a = vec!["vtep-ctl", "--timeout=20"];
        a.extend_from_slice(args);
        self.ns_run(&a)
    }

    fn pids(&self) -> Vec<i32> {
        std::fs::read_dir(self.dir.path().join("run"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

impl Drop for Vtep {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        std::thread::sleep(Duration::from_millis(300));
        for pid in self.pids() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        for ns in [&self.bm, &self.bm2, &self.ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = Command::new("ip")
            .args(["-n", &self.underlay_ns, "link", "del", &self.uplink])
            .output();
    }
}

/// Polls `f` until it returns Some, or panics with `what` and weftd's log.
pub fn wait<T>(ov: &Overlay, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out: {what}\nweftd log:\n{}",
            ov.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `vtep-ctl list-remote-macs LS`'s `unknown-dst` lines, one per flood locator.
pub fn flood_locators(v: &Vtep, ls: &str) -> Vec<String> {
    let out = v.vtep_ctl(&["list-remote-macs", ls]);
    let mut l: Vec<String> = out
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("unknown-dst -> vxlan_over_ipv4/"))
        .map(str::to_string)
        .collect();
    l.sort();
    l
}

/// `vtep-ctl list-remote-macs LS`'s unicast lines: `MAC -> vxlan_over_ipv4/IP`.
pub fn remote_macs(v: &Vtep, ls: &str) -> Vec<String> {
    let out = v.vtep_ctl(&["list-remote-macs", ls]);
    out.lines()
        .map(str::trim)
        .filter(|l| l.contains("->") && !l.starts_with("unknown-dst"))
        .map(str::to_string)
        .collect()
}

/// How many of `count` pings from namespace `ns` to `to` were answered.
pub fn ns_ping(ns: &str, to: &str, count: u32) -> u32 {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-n", "-q"])
        .args(["-c", &count.to_string(), "-i", "0.2", "-W", "1", to])
        .output()
        .expect("ping");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(',')
        .find_map(|part| part.trim().strip_suffix(" received"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Pings from `ns` until `to` answers (the path warms up: ARP, the VTEP learning the
/// host's MAC, weftd programming it), then requires 3 of 3 answered.
pub fn ns_reaches(ov: &Overlay, ns: &str, to: &str) {
    let deadline = Instant::now() + TIMEOUT;
    while ns_ping(ns, to, 1) == 0 {
        assert!(
            Instant::now() < deadline,
            "{ns} never reached {to}\nweftd log:\n{}",
            ov.log()
        );
    }
    assert_eq!(ns_ping(ns, to, 3), 3, "{ns} -> {to}");
}
