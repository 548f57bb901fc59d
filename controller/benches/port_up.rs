//! Port-up latency on real OVS, and flows per hypervisor.
//!
//! A 4-hypervisor Geneve lab managed by a spawned weftd. For each of 20 runs, a VM's
//! port (logical port defined beforehand) is added to hv1's br-int with
//! `ovs-vsctl add-port ... iface-id=X`; we time (0) Weft's own share: from the OVSDB update
//! that carries the iface-id to the one that carries `weft-installed`, both stamped by an
//! independent `ovsdb-client monitor`; (a) from before `ovs-vsctl add-port` until OVSDB shows
//! `external_ids:weft-installed=true` on it, and (b) until the VM's first ping reply from
//! a VM on hv4 (ping every 10 ms started before the add-port; ARP retransmit set to 10 ms
//! so a request sent before the flows exist is retried at the ping's pace).
//! Then the flow count per hypervisor for 4 switches × 1 VM per hypervisor + one ACL set
//! (the OVN comparison point: 611 flows).
//!
//! Run: `cargo bench -p weft-controller --bench port_up` (root, Open vSwitch installed).
//! Prints a table and writes target/port_up.json.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use integration::lab::{Encap, Hypervisor, Lab, VmSpec};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde_json::{Value, json};

const RUNS: usize = 20;

struct Weftd(Child);

impl Drop for Weftd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_weftd(lab: &Lab, data: &std::path::Path) -> (Weftd, String) {
    let ip = lab.controller_ip();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weftd"))
        .args(["--api-listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(["--ovsdb-listen", &format!("tcp:{ip}:6640")])
        .args(["--openflow-listen", &format!("tcp:{ip}:6653")])
        .args(["--openflow-advertise", &format!("tcp:{ip}:6653")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn weftd");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let addr = loop {
        let line = lines.next().expect("weftd exited").expect("read");
        if let Some(a) = line.strip_prefix("weftd: api listening on ") {
            break a.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (Weftd(child), format!("http://{addr}"))
}

struct Api {
    rt: tokio::runtime::Runtime,
    client: HttpClient,
}

impl Api {
    fn call(&self, method: &str, params: Value) -> Value {
        let mut p = ObjectParams::new();
        if let Value::Object(m) = params {
            for (k, v) in m {
                p.insert(&k, v).expect("param");
            }
        }
        self.rt
            .block_on(self.client.request::<Value, _>(method, p))
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }
}

fn installed(hv: &Hypervisor, port: &str) -> bool {
    hv.interface(port)
        .map(|i| i.external_ids.get("weft-installed").map(String::as_str) == Some("true"))
        .unwrap_or(false)
}

fn sh(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect(args[0]);
    assert!(st.success(), "{args:?}");
}

/// An independent observer of a hypervisor's OVSDB: `ovsdb-client --timestamp monitor`
/// stamps every update with the time ovsdb-server sent it (ms resolution), so the gap
/// between the update that brings a port's iface-id and the one that brings Weft's
/// `weft-installed` is Weft's own latency, free of ovs-vsctl process start-up and polling.
struct OvsdbWatch {
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl OvsdbWatch {
    fn start(db: &str) -> OvsdbWatch {
        let mut child = Command::new("ovsdb-client")
            .args(["--timestamp", "--format=csv", "monitor", db, "Open_vSwitch"])
            .args(["Interface", "name,external_ids"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ovsdb-client");
        let out = child.stdout.take().expect("stdout");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(l);
            }
        });
        // Wait for the initial dump so no update is missed.
        let t = Instant::now();
        while !lines
            .lock()
            .expect("lines")
            .iter()
            .any(|l| l.contains(",initial,"))
        {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "monitor did not start"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        OvsdbWatch { child, lines }
    }

    /// ms between the update carrying `port`'s iface-id and the one carrying
    /// weft-installed=true.
    fn iface_to_installed_ms(mut self, port: &str) -> f64 {
        std::thread::sleep(Duration::from_millis(50));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let lines = self.lines.lock().expect("lines").clone();
        let mut stamp = None;
        let (mut t_iface, mut t_installed) = (None, None);
        for l in &lines {
            if let Some(ts) = parse_stamp(l) {
                stamp = Some(ts);
            } else if l.contains(&format!(",{port},")) || l.contains(&format!("iface-id={port}")) {
                if t_iface.is_none() && l.contains(&format!("iface-id={port}")) {
                    t_iface = stamp;
                }
                if t_installed.is_none() && l.contains("weft-installed") {
                    t_installed = stamp;
                }
            }
        }
        match (t_iface, t_installed) {
            (Some(a), Some(b)) => (b - a) * 1e3,
            _ => panic!("monitor did not see {port} installed: {lines:?}"),
        }
    }
}

/// `2026-11-24 02:55:34.979` -> seconds of the day.
fn parse_stamp(l: &str) -> Option<f64> {
    let (date, time) = l.trim().split_once(' ')?;
    if date.len() != 10 || !date.starts_with("20") {
        return None;
    }
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let lab = Lab::builder()
        .hypervisors(4)
        .encap(Encap::Geneve)
        .build()
        .expect("lab");
    let data = tempfile::tempdir().expect("tempdir");
    let (_weftd, url) = start_weftd(&lab, data.path());
    let api = Api {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime"),
        client: HttpClientBuilder::default().build(&url).expect("client"),
    };
    for hv in lab.hypervisors() {
        hv.set_manager(&format!("tcp:{}:6640", lab.controller_ip()))
            .expect("set-manager");
    }
    let (hv1, hv4) = (lab.hv(0), lab.hv(3));

    api.call("switch_create", json!({"name": "bench", "vni": 7001}));
    api.call(
        "port_create",
        json!({"switch": "bench", "name": "peer", "mac": "02:00:00:00:10:04", "ips": ["10.1.0.4"]}),
    );
    api.call(
        "port_create",
        json!({"switch": "bench", "name": "resident", "mac": "02:00:00:00:10:01", "ips": ["10.1.0.1"]}),
    );
    let wait = |hv: &Hypervisor, name: &str| {
        hv.wait_for_interface(name, Duration::from_secs(20), |i| {
            i.external_ids.get("weft-installed").map(String::as_str) == Some("true")
        })
        .expect("installed");
    };
    let peer = hv4
        .plug_vm(
            VmSpec::new("peer", "02:00:00:00:10:04", "peer")
                .addr("10.1.0.4/24")
                .unwrap(),
        )
        .expect("peer");
    wait(hv4, "peer");
    // A resident VM keeps hv1 on the switch, so runs measure the steady state (tunnel up).
    let resident = hv1
        .plug_vm(
            VmSpec::new("resident", "02:00:00:00:10:01", "resident")
                .addr("10.1.0.1/24")
                .unwrap(),
        )
        .expect("resident");
    wait(hv1, "resident");
    resident
        .ping_until_reachable("10.1.0.4".parse().unwrap(), Duration::from_secs(10))
        .expect("warm");
    let _ = peer;

    let mut to_installed = Vec::new();
    let mut to_commit = Vec::new();
    let mut to_ping = Vec::new();
    for run in 0..RUNS {
        let name = format!("p{run}");
        let mac = format!("02:00:00:00:11:{run:02x}");
        let addr = format!("10.1.0.{}", 100 + run);
        api.call(
            "port_create",
            json!({"switch": "bench", "name": name, "mac": mac, "ips": [addr]}),
        );
        // The VM: a namespace and a veth whose far end is not yet on br-int.
        let ns = format!("{}-pu{run}", hv1.netns());
        sh(&["ip", "netns", "add", &ns]);
        sh(&[
            "ip",
            "-n",
            hv1.netns(),
            "link",
            "add",
            &name,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ns,
        ]);
        sh(&[
            "ip",
            "-n",
            hv1.netns(),
            "link",
            "set",
            &name,
            "mtu",
            "1400",
            "up",
        ]);
        sh(&[
            "ip", "-n", &ns, "link", "set", "eth0", "address", &mac, "mtu", "1400", "up",
        ]);
        sh(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-qw",
            "net.ipv4.neigh.eth0.retrans_time_ms=10",
            "net.ipv4.neigh.eth0.mcast_solicit=200",
        ]);
        sh(&[
            "ip", "netns", "exec", &ns, "ethtool", "-K", "eth0", "tx", "off",
        ]);
        let mut ping = Command::new("ip")
            .args([
                "netns", "exec", &ns, "ping", "-D", "-n", "-i", "0.01", "-w", "10", "10.1.0.4",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping");
        let monitor = OvsdbWatch::start(&hv1.db_target());
        std::thread::sleep(Duration::from_millis(100));
        let t0_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let t0 = Instant::now();
        hv1.vsctl([
            "add-port",
            "br-int",
            &name,
            "--",
            "set",
            "Interface",
            &name,
            &format!("external_ids:iface-id={name}"),
        ])
        .expect("add-port");
        while !installed(hv1, &name) {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{name} never installed"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let installed_ms = t0.elapsed().as_secs_f64() * 1e3;
        let commit_ms = monitor.iface_to_installed_ms(&name);
        let out = ping.stdout.take().expect("ping out");
        let first = BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("bytes from"))
            .expect("no ping reply in 10 s");
        let _ = ping.kill();
        let _ = ping.wait();
        let ts: f64 = first
            .trim_start_matches('[')
            .split(']')
            .next()
            .and_then(|t| t.parse().ok())
            .expect("ping -D timestamp");
        let ping_ms = (ts - t0_unix) * 1e3;
        to_installed.push(installed_ms);
        to_commit.push(commit_ms);
        to_ping.push(ping_ms);
        eprintln!(
            "run {run:2}: OVSDB commit->installed {commit_ms:5.1} ms, add-port->installed {installed_ms:7.1} ms, first ping {ping_ms:7.1} ms"
        );
        hv1.vsctl(["del-port", "br-int", &name]).expect("del-port");
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    }

    // Flow count: 4 switches, one VM per switch on every hypervisor, one ACL set (the
    // bench switch goes first so that only this scenario is counted).
    api.call("switch_delete", json!({"switch": "bench", "cascade": true}));
    for s in 0..4u32 {
        let sw = format!("t{s}");
        api.call("switch_create", json!({"name": sw, "vni": 8000 + s}));
        for (h, hv) in lab.hypervisors().iter().enumerate() {
            let name = format!("t{s}h{h}");
            let mac = format!("02:00:00:00:2{s}:{h:02x}");
            let addr = format!("10.2.{s}.{}", h + 1);
            api.call(
                "port_create",
                json!({"switch": sw, "name": name, "mac": mac, "ips": [addr]}),
            );
            hv.plug_vm(
                VmSpec::new(&name, &mac, &name)
                    .addr(&format!("{addr}/24"))
                    .unwrap(),
            )
            .expect("plug");
        }
    }
    for (prio, action, proto, port) in [
        (300, "allow-related", Some("tcp"), Some(22)),
        (200, "allow-related", Some("icmp"), None),
        (100, "drop", None, None),
    ] {
        let mut p =
            json!({"port": "t0h0", "direction": "ingress", "priority": prio, "action": action});
        if let Some(proto) = proto {
            p["protocol"] = json!(proto);
        }
        if let Some(port) = port {
            p["port_min"] = json!(port);
            p["port_max"] = json!(port);
        }
        api.call("acl_create", p);
    }
    api.call(
        "acl_create",
        json!({"port": "t0h0", "direction": "egress", "priority": 100, "action": "allow-related"}),
    );
    for (h, hv) in lab.hypervisors().iter().enumerate() {
        for s in 0..4 {
            wait(hv, &format!("t{s}h{h}"));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut flows = Vec::new();
    for hv in lab.hypervisors() {
        flows.push(hv.dump_flows("br-int").expect("dump").len());
    }

    let mut c = to_commit.clone();
    c.sort_by(f64::total_cmp);
    let mut a = to_installed.clone();
    let mut b = to_ping.clone();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    println!(
        "port-up latency, {RUNS} runs, 4 hypervisors (Geneve), weftd debug={}",
        cfg!(debug_assertions)
    );
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>8}",
        "", "min", "median", "p95", "max"
    );
    for (label, v) in [
        ("iface-id commit -> installed", &c),
        ("add-port -> weft-installed", &a),
        ("add-port -> first ping", &b),
    ] {
        println!(
            "{label:<30} {:>6.1}ms {:>6.1}ms {:>6.1}ms {:>6.1}ms",
            v[0],
            percentile(v, 0.5),
            percentile(v, 0.95),
            v[v.len() - 1]
        );
    }
    println!("flows per hypervisor (4 switches x 1 VM per hypervisor + 1 ACL set): {flows:?}");
    let report = json!({
        "runs": RUNS,
        "commit_to_installed_ms": {"min": c[0], "median": percentile(&c, 0.5), "p95": percentile(&c, 0.95), "max": c[c.len()-1], "all": to_commit},
        "installed_ms": {"min": a[0], "median": percentile(&a, 0.5), "p95": percentile(&a, 0.95), "max": a[a.len()-1], "all": to_installed},
        "first_ping_ms": {"min": b[0], "median": percentile(&b, 0.5), "p95": percentile(&b, 0.95), "max": b[b.len()-1], "all": to_ping},
        "flows_per_hypervisor": flows,
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/port_up.json");
    let _ = std::fs::write(
        &path,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    );
    println!("written to {}", path.display());
}
