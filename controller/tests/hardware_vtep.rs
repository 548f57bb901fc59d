//! Hardware VTEPs end to end: a real `ovs-vtep` (Debian's openvswitch-vtep, the
//! `hardware_vtep` emulator) with its own ovsdb-server and OVS in a namespace on the lab's
//! underlay, pointed at weftd's manager port with `vtep-ctl set-manager`, next to two
//! real-OVS hypervisors.
//!
//! Evidence is what the VTEP's own database holds, read with `vtep-ctl` (logical
//! switches, bindings, remote MACs with their locators), and what weftd reports of what
//! the VTEP learned from real frames (a bare-metal namespace behind its port). Data-plane
//! pings between bare metal and VMs need the hypervisor half (VXLAN towards the VTEP),
//! which is not part of this test.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::overlay::Overlay;
use integration::lab::{Encap, Lab, VmSpec};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(30);

/// One `ovs-vtep` VTEP: namespace, its ovsdb-server (conf.db + vtep.db), ovs-vswitchd,
/// br-phy on the underlay, physical switch `br0` with port `p0`, and a bare-metal host
/// namespace behind `p0`. Dropping it stops what it started, by PID, and deletes its
/// namespaces, veth and files.
struct Vtep {
    ns: String,
    bm: String,
    /// The underlay-side veth (in the underlay namespace).
    uplink: String,
    underlay_ns: String,
    dir: tempfile::TempDir,
    tunnel_ip: String,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh(args: &[&str]) -> String {
    run(Command::new(args[0]).args(&args[1..]))
}

impl Vtep {
    fn start(lab: &Lab, manager: &str) -> Vtep {
        let tag = format!("wv{}", std::process::id() % 1_000_000);
        let net = lab.underlay_network().octets();
        let tunnel_ip = format!("{}.{}.{}.200", net[0], net[1], net[2]);
        let v = Vtep {
            ns: format!("{tag}-vtep"),
            bm: format!("{tag}-bm1"),
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

    fn ns_run(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).args(args);
        self.env(&mut cmd);
        run(&mut cmd)
    }

    fn vsctl(&self, args: &[&str]) -> String {
        let mut a = vec!["ovs-vsctl", "--timeout=20"];
        a.extend_from_slice(args);
        self.ns_run(&a)
    }

    fn vtep_ctl(&self, args: &[&str]) -> String {
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
        for ns in [&self.bm, &self.ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = Command::new("ip")
            .args(["-n", &self.underlay_ns, "link", "del", &self.uplink])
            .output();
    }
}

/// Polls `f` until it returns Some, or panics with `what` and weftd's log.
fn wait<T>(ov: &Overlay, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
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
fn flood_locators(v: &Vtep, ls: &str) -> Vec<String> {
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
fn remote_macs(v: &Vtep, ls: &str) -> Vec<String> {
    let out = v.vtep_ctl(&["list-remote-macs", ls]);
    out.lines()
        .map(str::trim)
        .filter(|l| l.contains("->") && !l.starts_with("unknown-dst"))
        .map(str::to_string)
        .collect()
}

#[test]
fn ovs_vtep_is_recognised_bound_and_kept_in_step() {
    let ov = Overlay::start(2, Encap::Vxlan);
    let hv_ip = |n: usize| ov.hv(n).transport_ip().to_string();
    ov.call("switch_create", json!({"name": "ls1", "vni": 5001}));
    ov.port("ls1", "vm1", "02:00:00:00:01:01", "10.0.0.1");
    ov.port("ls1", "vm2", "02:00:00:00:01:02", "10.0.0.2");
    let _vm1 = ov.plug(1, "vm1", "02:00:00:00:01:01", "10.0.0.1/24");
    let vm2 = ov.plug(2, "vm2", "02:00:00:00:01:02", "10.0.0.2/24");

    let manager = format!("tcp:{}:{}", ov.lab.controller_ip(), ov.ports.0);
    let vtep = Vtep::start(&ov.lab, &manager);

    // Recognised by its schema, named by its Physical_Switch, not taken for a hypervisor.
    let listed = wait(&ov, "vtep_list shows br0 connected", || {
        let l = ov.call("vtep_list", json!({}));
        let br0 = l.as_array()?.iter().find(|v| v["name"] == "br0")?.clone();
        (br0["connected"] == true).then_some(br0)
    });
    assert_eq!(listed["tunnel_ips"], json!([vtep.tunnel_ip]));
    assert!(
        listed["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "p0"),
        "{listed}"
    );
    let nodes = ov.call("node_list", json!({}));
    assert_eq!(
        nodes.as_array().unwrap().len(),
        2,
        "the VTEP is no transport node: {nodes}"
    );

    // Bind p0 untagged to ls1: the VTEP gets the logical switch, the binding, every port's
    // MAC at its hypervisor's locator, and the flood locators.
    let b = ov.call(
        "vtep_bind",
        json!({"vtep": "br0", "port": "p0", "vlan": 0, "switch": "ls1"}),
    );
    assert_eq!(b["switch_name"], "ls1");
    let again = ov.try_call(
        "vtep_bind",
        json!({"vtep": "br0", "port": "p0", "vlan": 0, "switch": "ls1"}),
    );
    assert!(format!("{again:?}").contains("-32009"), "{again:?}");
    wait(&ov, "vtep-ctl list-ls shows ls1", || {
        vtep.vtep_ctl(&["list-ls"])
            .lines()
            .any(|l| l.trim() == "ls1")
            .then_some(())
    });
    assert_eq!(
        vtep.vtep_ctl(&["get", "Logical_Switch", "ls1", "tunnel_key"])
            .trim(),
        "5001"
    );
    wait(&ov, "list-bindings br0 p0", || {
        let out = vtep.vtep_ctl(&["list-bindings", "br0", "p0"]);
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["0000", "ls1"])
            .then_some(())
    });
    let want = |m2_at: &str| {
        let mut w = vec![
            format!("02:00:00:00:01:01 -> vxlan_over_ipv4/{}", hv_ip(1)),
            format!("02:00:00:00:01:02 -> vxlan_over_ipv4/{m2_at}"),
        ];
        w.sort();
        w
    };
    wait(&ov, "remote MACs at their hypervisors", || {
        let mut got = remote_macs(&vtep, "ls1");
        got.sort();
        (got == want(&hv_ip(2))).then_some(())
    });
    assert_eq!(flood_locators(&vtep, "ls1"), vec![hv_ip(1), hv_ip(2)]);
    // One locator per hypervisor, shared by the unicast and flood rows.
    let locators = vtep.vtep_ctl(&["--columns=dst_ip", "list", "Physical_Locator"]);
    for n in [1, 2] {
        let count = locators.matches(&format!("\"{}\"", hv_ip(n))).count();
        assert_eq!(count, 1, "{locators}");
    }

    // A frame from the bare-metal host: the VTEP learns its MAC, weftd reports it.
    let _ = Command::new("ip")
        .args([
            "netns", "exec", &vtep.bm, "ping", "-c", "2", "-W", "1", "10.0.0.1",
        ])
        .output();
    let got = wait(&ov, "vtep_get shows the learned MAC", || {
        let g = ov.call("vtep_get", json!({"vtep": "br0"}));
        let macs = g["local_macs"]
            .as_array()?
            .iter()
            .find(|s| s["switch_name"] == "ls1")?;
        macs["macs"]
            .as_array()?
            .iter()
            .any(|m| m == "02:00:00:00:bb:01")
            .then_some(g)
    });
    let p0 = got["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "p0")
        .unwrap()
        .clone();
    assert_eq!(p0["bindings"][0]["status"], "applied", "{p0}");

    // vm2 moves to hv1: its remote MAC follows, in place.
    vm2.unplug(ov.hv(2)).unwrap();
    ov.hv(1)
        .plug_vm(
            VmSpec::new("vm2b", "02:00:00:00:01:02", "vm2")
                .addr("10.0.0.2/24")
                .unwrap(),
        )
        .unwrap();
    wait(&ov, "vm2's remote MAC at hv1", || {
        let mut got = remote_macs(&vtep, "ls1");
        got.sort();
        (got == want(&hv_ip(1))).then_some(())
    });
    wait(&ov, "flood to hv1 only", || {
        (flood_locators(&vtep, "ls1") == vec![hv_ip(1)]).then_some(())
    });

    // Deleting a port removes its remote MAC.
    ov.call("port_delete", json!({"port": "vm1"}));
    wait(&ov, "vm1's remote MAC gone", || {
        let got = remote_macs(&vtep, "ls1");
        (got.len() == 1 && got[0].starts_with("02:00:00:00:01:02")).then_some(())
    });

    // A second switch on VLAN 100 of the same port: its own logical switch, tunnel key
    // and remote MACs; the untagged binding is untouched.
    ov.call("switch_create", json!({"name": "ls2", "vni": 5002}));
    ov.port("ls2", "vm3", "02:00:00:00:02:03", "10.0.0.3");
    let _vm3 = ov.plug(2, "vm3", "02:00:00:00:02:03", "10.0.0.3/24");
    ov.call(
        "vtep_bind",
        json!({"vtep": "br0", "port": "p0", "vlan": 100, "switch": "ls2"}),
    );
    wait(&ov, "both bindings on p0", || {
        let out = vtep.vtep_ctl(&["list-bindings", "br0", "p0"]);
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        (lines == vec![vec!["0000", "ls1"], vec!["0100", "ls2"]]).then_some(())
    });
    wait(&ov, "ls2's remote MAC", || {
        (remote_macs(&vtep, "ls2")
            == vec![format!("02:00:00:00:02:03 -> vxlan_over_ipv4/{}", hv_ip(2))])
        .then_some(())
    });
    assert_eq!(
        vtep.vtep_ctl(&["get", "Logical_Switch", "ls2", "tunnel_key"])
            .trim(),
        "5002"
    );
    assert_eq!(flood_locators(&vtep, "ls2"), vec![hv_ip(2)]);
    assert_eq!(remote_macs(&vtep, "ls1").len(), 1, "ls1 keeps only vm2");
    ov.call(
        "vtep_unbind",
        json!({"vtep": "br0", "port": "p0", "vlan": 100}),
    );

    // Unbinding removes the logical switch and the binding.
    let d = ov.call(
        "vtep_unbind",
        json!({"vtep": "br0", "port": "p0", "vlan": 0}),
    );
    assert_eq!(d["vtep_bindings"].as_array().map(Vec::len), Some(1), "{d}");
    wait(&ov, "ls1 removed from the VTEP", || {
        let ls = vtep.vtep_ctl(&["list-ls"]);
        let bindings = vtep.vtep_ctl(&["list-bindings", "br0", "p0"]);
        (ls.trim().is_empty() && bindings.trim().is_empty()).then_some(())
    });
    let after: Value = ov.call("vtep_get", json!({"vtep": "br0"}));
    assert_eq!(after["connected"], true);

    // The VTEP drops its manager: weftd shows it disconnected (and forgets its MACs).
    vtep.vtep_ctl(&["del-manager"]);
    wait(&ov, "vtep_get shows br0 disconnected", || {
        let g = ov.call("vtep_get", json!({"vtep": "br0"}));
        (g["connected"] == false && g["local_macs"] == json!([])).then_some(())
    });
}
