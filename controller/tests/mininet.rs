//! The overlay in Mininet: a spawned `weftd`, two logical switches created through the API,
//! and `integration/mininet/weft-mininet` building three hypervisors (Mininet hosts, each
//! running its own Open vSwitch) with two VMs each, pointed at weftd with `set-manager`.
//! The script runs the pings from the Mininet hosts and writes JSON; this test asserts on it.
//!
//! blue (5001): vm1_1 10.0.0.1, vm2_1 10.0.0.2, vm3_1 10.0.0.3
//! red  (5002): vm1_2 10.0.0.1, vm2_2 10.0.0.2, vm3_2 10.0.0.4 (overlapping addresses;
//!              .3 only in blue, .4 only in red)
//!
//! Needs root, Open vSwitch and Debian's Mininet (`/usr/bin/python3` with the `mininet`
//! module); `scripts/test.sh` installs both.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Spawned, call, http_client};
use serde_json::{Value, json};

const PYTHON: &str = "/usr/bin/python3";

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../integration/mininet/weft-mininet")
}

/// The script, stopped with SIGTERM (it tears its Mininet down) if the test panics first.
struct Script(Child);

impl Drop for Script {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn require_mininet() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import mininet.net"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{PYTHON} cannot import mininet: install Debian's `mininet` package (scripts/test.sh does)"
    );
    let ovs = Command::new("ovs-vswitchd").arg("--version").output();
    assert!(
        ovs.is_ok(),
        "ovs-vswitchd not found: install openvswitch-switch (scripts/test.sh does)"
    );
}

/// A 10.K.0.254 whose /24 nothing on this host uses (the script refuses a used one).
fn free_controller_ip() -> String {
    let out = Command::new("sh")
        .args(["-c", "ip -4 -o addr show; ip -4 route show table all"])
        .output()
        .expect("run ip");
    let text = String::from_utf8_lossy(&out.stdout).replace('/', " ");
    (90..99)
        .map(|k| format!("10.{k}."))
        .find(|p| !text.split_whitespace().any(|w| w.starts_with(p)))
        .map(|p| format!("{p}0.254"))
        .expect("no free 10.K.0.0/24 for K in 90..=98")
}

#[test]
fn mininet_two_tenants_three_hypervisors() {
    require_mininet();
    let ctl = free_controller_ip();
    // weftd listens on the wildcard address: the controller address only exists once the
    // script has built the underlay. Free ports, since other tests run labs at the same time.
    let (ovsdb_port, of_port) = {
        let a = TcpListener::bind("0.0.0.0:0").unwrap();
        let b = TcpListener::bind("0.0.0.0:0").unwrap();
        (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        )
    };
    let data = tempfile::tempdir().unwrap();
    let weftd = Spawned::start(
        data.path(),
        &[
            "--ovsdb-listen",
            &format!("tcp:0.0.0.0:{ovsdb_port}"),
            "--openflow-listen",
            &format!("tcp:0.0.0.0:{of_port}"),
            "--openflow-advertise",
            &format!("tcp:{ctl}:{of_port}"),
        ],
    );
    let api = http_client(&weftd.url(), None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let api_call = |method: &str, params: Value| {
        rt.block_on(call(&api, method, params.clone()))
            .unwrap_or_else(|e| panic!("{method} {params}: {e:?}"))
    };
    api_call("switch_create", json!({"name": "blue", "vni": 5001}));
    api_call("switch_create", json!({"name": "red", "vni": 5002}));
    for (sw, name, mac, ip) in [
        ("blue", "vm1_1", "02:00:00:00:01:01", "10.0.0.1"),
        ("blue", "vm2_1", "02:00:00:00:02:01", "10.0.0.2"),
        ("blue", "vm3_1", "02:00:00:00:03:01", "10.0.0.3"),
        ("red", "vm1_2", "02:00:00:00:01:02", "10.0.0.1"),
        ("red", "vm2_2", "02:00:00:00:02:02", "10.0.0.2"),
        ("red", "vm3_2", "02:00:00:00:03:02", "10.0.0.4"),
    ] {
        api_call(
            "port_create",
            json!({"switch": sw, "name": name, "mac": mac, "ips": [ip]}),
        );
    }

    let pings = [
        // blue, across hypervisors
        ("vm1_1", "10.0.0.2", true),
        ("vm1_1", "10.0.0.3", true),
        ("vm2_1", "10.0.0.1", true),
        ("vm3_1", "10.0.0.2", true),
        // red, across hypervisors, same addresses as blue
        ("vm1_2", "10.0.0.2", true),
        ("vm1_2", "10.0.0.4", true),
        ("vm2_2", "10.0.0.4", true),
        ("vm3_2", "10.0.0.1", true),
        // isolation: what only the other tenant has is unreachable
        ("vm1_1", "10.0.0.4", false),
        ("vm2_1", "10.0.0.4", false),
        ("vm1_2", "10.0.0.3", false),
        ("vm2_2", "10.0.0.3", false),
    ];
    let spec = json!({
        "timeout": 30,
        "pings": pings.iter().map(|(f, t, e)| json!({"from": f, "to": t, "expect": e}))
            .collect::<Vec<_>>(),
    });
    let dir = tempfile::tempdir().unwrap();
    let check = dir.path().join("check.json");
    let result = dir.path().join("result.json");
    let log = dir.path().join("script.log");
    std::fs::write(&check, spec.to_string()).unwrap();
    let started = Instant::now();
    let mut child = Script(
        Command::new(PYTHON)
            .arg(script())
            .args([
                "--hypervisors",
                "3",
                "--vms-per-hv",
                "2",
                "--ip-plan",
                "overlap",
            ])
            .args(["--vm-ip", "vm3_2=10.0.0.4/24", "--controller", &ctl])
            .args(["--ovsdb-port", &ovsdb_port.to_string()])
            .arg("--check")
            .arg(&check)
            .arg("--result")
            .arg(&result)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("script.err")).unwrap())
            .spawn()
            .expect("spawn weft-mininet"),
    );
    let status = child.0.wait().unwrap();
    let script_log = format!(
        "{}{}",
        std::fs::read_to_string(&log).unwrap_or_default(),
        std::fs::read_to_string(dir.path().join("script.err")).unwrap_or_default()
    );
    let weftd_log = weftd.stderr.lock().unwrap().clone();
    println!(
        "weft-mininet finished in {:.1} s ({status}):\n{script_log}",
        started.elapsed().as_secs_f64()
    );
    let Ok(text) = std::fs::read_to_string(&result) else {
        panic!("weft-mininet wrote no result ({status}):\n{script_log}\nweftd log:\n{weftd_log}");
    };
    let r: Value = serde_json::from_str(&text).unwrap();

    for (vm, ok) in r["installed"].as_object().unwrap() {
        assert_eq!(
            ok, true,
            "{vm}: weft-installed never became true\n{script_log}\nweftd log:\n{weftd_log}"
        );
    }
    let got = r["pings"].as_array().unwrap();
    assert_eq!(got.len(), pings.len(), "{r}");
    for p in got {
        assert_eq!(
            p["reachable"], p["expect"],
            "{} -> {}: {p}\n{script_log}\nweftd log:\n{weftd_log}",
            p["from"], p["to"]
        );
    }
    // Overlapping addresses resolve inside the caller's own tenant.
    let mac_of = |from: &str, to: &str| {
        got.iter()
            .find(|p| p["from"] == from && p["to"] == to)
            .map(|p| p["mac"].clone())
            .unwrap()
    };
    assert_eq!(mac_of("vm1_1", "10.0.0.2"), "02:00:00:00:02:01");
    assert_eq!(mac_of("vm1_2", "10.0.0.2"), "02:00:00:00:02:02");
    assert_eq!(mac_of("vm3_2", "10.0.0.1"), "02:00:00:00:01:02");
    assert!(
        status.success(),
        "weft-mininet exited {status}\n{script_log}"
    );
}
