//! Tests that run the real `weftd` and `weftctl` binaries: startup and shutdown, the
//! README walkthrough, crash safety under SIGKILL, and refusal of a corrupt store.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Spawned, call, http_client, weftctl_bin, weftd_bin};
use jsonrpsee::core::client::ClientT;
use rand::Rng;
use serde_json::{Value, json};

#[tokio::test]
async fn spawned_weftd_serves_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Spawned::start(dir.path(), &[]);
    let c = http_client(&d.url(), None);
    call(&c, "switch_create", json!({"name": "web", "vni": 5001}))
        .await
        .unwrap();
    call(
        &c,
        "port_create",
        json!({"switch": "web", "name": "vm1", "mac": "02:00:00:00:00:01"}),
    )
    .await
    .unwrap();
    let status = d.terminate();
    assert!(
        status.success(),
        "weftd exit {status}: {}",
        d.stderr.lock().unwrap()
    );
    // The store was closed cleanly and everything is still there.
    let d = Spawned::start(dir.path(), &[]);
    let c = http_client(&d.url(), None);
    let s = call(&c, "system_status", json!({})).await.unwrap();
    assert_eq!(
        (
            s["switches"].as_u64(),
            s["ports"].as_u64(),
            s["revision"].as_u64()
        ),
        (Some(1), Some(1), Some(2))
    );
}

fn weftctl(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(weftctl_bin())
        .arg("--server")
        .arg(url)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The walkthrough from README.md, command for command.
#[test]
fn weftctl_walkthrough() {
    let dir = tempfile::tempdir().unwrap();
    let d = Spawned::start(dir.path(), &[]);
    let url = d.url();
    let ok = |args: &[&str]| {
        let (code, out, err) = weftctl(&url, args);
        assert_eq!(code, 0, "weftctl {args:?}: {err}");
        out
    };
    assert!(ok(&["switch", "create", "web", "--vni", "5001"]).contains("5001"));
    // A provider network: shown as physnet/VLAN; a second switch on that segment is a
    // conflict, and --vlan alone is a usage error.
    let ext = ok(&[
        "switch",
        "create",
        "ext",
        "--physnet",
        "physnet1",
        "--vlan",
        "100",
    ]);
    assert!(ext.contains("physnet1/100"), "{ext}");
    let (code, _, err) = weftctl(
        &url,
        &[
            "switch",
            "create",
            "ext2",
            "--physnet",
            "physnet1",
            "--vlan",
            "100",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("-32009"), "{err}");
    let (code, _, _) = weftctl(&url, &["switch", "create", "ext3", "--vlan", "7"]);
    assert_ne!(code, 0, "--vlan needs --physnet");
    ok(&["switch", "delete", "ext"]);
    ok(&[
        "port",
        "create",
        "web",
        "vm1",
        "--mac",
        "02:00:00:00:00:01",
        "--ip",
        "10.0.0.1",
    ]);
    ok(&[
        "port",
        "create",
        "web",
        "vm2",
        "--mac",
        "02:00:00:00:00:02",
        "--ip",
        "10.0.0.2",
    ]);
    ok(&[
        "acl",
        "create",
        "vm1",
        "--direction",
        "egress",
        "--priority",
        "100",
        "--action",
        "allow-related",
        "--protocol",
        "tcp",
        "--remote-cidr",
        "10.0.0.0/24",
        "--port-min",
        "80",
        "--port-max",
        "80",
    ]);
    let ports = ok(&["port", "list", "--switch", "web"]);
    assert!(
        ports.contains("vm1") && ports.contains("vm2") && ports.contains("10.0.0.1"),
        "{ports}"
    );
    let acls = ok(&["acl", "list"]);
    assert!(acls.contains("allow-related"), "{acls}");
    ok(&["port", "update", "vm2", "--ip", "10.0.0.22"]);
    assert!(ok(&["port", "get", "vm2"]).contains("10.0.0.22"));
    let status = ok(&["status"]);
    assert!(status.contains("revision"), "{status}");
    assert!(ok(&["node", "list"]).contains("no transport nodes"));
    let json_out = ok(&["--json", "switch", "list"]);
    let v: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(v[0]["name"], "web");
    let acl_id = serde_json::from_str::<Value>(&ok(&["--json", "acl", "list"])).unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&["acl", "delete", &acl_id]);
    // Errors carry the API's message and a non-zero status.
    let (code, _, err) = weftctl(&url, &["switch", "delete", "web"]);
    assert_eq!(code, 1);
    assert!(err.contains("still has 2 port(s)"), "{err}");
    let (code, _, err) = weftctl(&url, &["trace", "vm1", "--eth-dst", "02:00:00:00:00:02"]);
    assert_eq!(code, 1);
    assert!(err.contains("-32011"), "{err}");
    assert!(ok(&["switch", "delete", "web", "--cascade"]).contains("2 port(s)"));
    assert!(ok(&["discover"]).contains("openrpc"));
    drop(d);
    // weftd gone: a clear message and exit status 3.
    let (code, _, err) = weftctl(&url, &["status"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("cannot reach weftd"), "{err}");
}

/// The routing example from README.md, command for command, with what each step shows.
#[test]
fn weftctl_routing_walkthrough() {
    let dir = tempfile::tempdir().unwrap();
    let d = Spawned::start(dir.path(), &[]);
    let url = d.url();
    let ok = |args: &[&str]| {
        let (code, out, err) = weftctl(&url, args);
        assert_eq!(code, 0, "weftctl {args:?}: {err}");
        out
    };
    ok(&["switch", "create", "front"]);
    ok(&["switch", "create", "back"]);
    assert!(ok(&["router", "create", "r1"]).contains("r1"));
    let front = ok(&[
        "router-port",
        "create",
        "r1",
        "r1-front",
        "--switch",
        "front",
        "--mac",
        "02:00:00:00:01:01",
        "--ip",
        "10.1.0.1/24",
        "--ip",
        "fd00:1::1/64",
    ]);
    assert!(front.contains("10.1.0.1/24,fd00:1::1/64"), "{front}");
    ok(&[
        "router-port",
        "create",
        "r1",
        "r1-back",
        "--switch",
        "back",
        "--mac",
        "02:00:00:00:01:02",
        "--ip",
        "10.2.0.1/24",
    ]);
    ok(&[
        "port",
        "create",
        "back",
        "gw1",
        "--mac",
        "02:00:00:00:02:01",
        "--ip",
        "10.2.0.10",
    ]);
    let route = ok(&[
        "route",
        "create",
        "r1",
        "--prefix",
        "10.9.0.0/16",
        "--nexthop",
        "10.2.0.10",
    ]);
    assert!(
        route.contains("10.9.0.0/16") && route.contains("10.2.0.10"),
        "{route}"
    );
    let got = ok(&["router", "get", "r1"]);
    assert!(
        got.contains("ports:") && got.contains("r1-front") && got.contains("r1-back"),
        "{got}"
    );
    assert!(
        got.contains("routes:") && got.contains("10.9.0.0/16"),
        "{got}"
    );
    let ports = ok(&["router-port", "list", "--router", "r1"]);
    assert!(
        ports.contains("r1-front") && ports.contains("back"),
        "{ports}"
    );
    assert!(ok(&["route", "list"]).contains("10.2.0.10"));
    // A bare address is refused, naming the field and what is wanted.
    let (code, _, err) = weftctl(
        &url,
        &[
            "router-port",
            "create",
            "r1",
            "r1-x",
            "--switch",
            "front",
            "--mac",
            "02:00:00:00:01:09",
            "--ip",
            "10.5.0.1",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("ips") && err.contains("CIDR"), "{err}");
    let (code, _, err) = weftctl(&url, &["router", "delete", "r1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("still has 2 port(s)") && err.contains("-32009"),
        "{err}"
    );
    let del = ok(&["router-port", "delete", "r1-back"]);
    assert!(del.contains("1 router port(s), 1 route(s)"), "{del}");
    let del = ok(&["router", "delete", "r1", "--cascade"]);
    assert!(del.contains("1 router(s), 1 router port(s)"), "{del}");
    let json_out = ok(&["--json", "router", "list"]);
    assert_eq!(serde_json::from_str::<Value>(&json_out).unwrap(), json!([]));
}

#[test]
fn weftctl_events_follows_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let d = Spawned::start(dir.path(), &[]);
    let mut child = Command::new(weftctl_bin())
        .args(["--server", &d.url(), "--json", "events"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // The subscription may not be in place yet: create switches until one is seen.
    let mut seen = None;
    for i in 0..50 {
        let (code, _, err) = weftctl(&d.url(), &["switch", "create", &format!("s{i}")]);
        assert_eq!(code, 0, "{err}");
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen = Some(line);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = seen.expect("weftctl events printed nothing");
    let ev: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(ev["type"], "config_changed");
    assert_eq!(ev["kind"], "switch");
}

#[test]
fn corrupt_store_stops_weftd_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path()).unwrap();
    let mut garbage = vec![0u8; 64 * 1024];
    rand::rng().fill(&mut garbage[..]);
    std::fs::write(dir.path().join("weft.redb"), &garbage).unwrap();
    let out = Command::new(weftd_bin())
        .args(["--api-listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "weftd started on garbage: {stderr}");
    assert!(stderr.contains("weft.redb"), "{stderr}");
    assert!(stderr.contains("weftd: error"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "weftd must not serve an empty model"
    );
    // The file is left as it was, for the operator to inspect or restore.
    assert_eq!(
        std::fs::read(dir.path().join("weft.redb")).unwrap(),
        garbage
    );
}

#[test]
fn damaged_store_pages_are_detected() {
    use weft::model::{Change, LogicalSwitch};
    use weft::store::{RedbStore, Store};
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = RedbStore::open(dir.path()).unwrap();
        for i in 0..200u32 {
            let sw = LogicalSwitch {
                id: uuid::Uuid::new_v4(),
                name: format!("s{i}"),
                vni: i + 1,
                description: "x".repeat(200),
                provider: None,
                flood_vteps: Vec::new(),
            };
            store
                .commit(u64::from(i) + 1, &[Change::PutSwitch(sw)])
                .unwrap();
        }
    }
    let path = dir.path().join("weft.redb");
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    // Everything after the first eighth: live B-tree pages are certainly hit.
    rand::rng().fill(&mut bytes[len / 8..]);
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new(weftd_bin())
        .args(["--api-listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "weftd started on a damaged store: {stderr}"
    );
    assert!(
        stderr.contains("weft.redb") || stderr.contains("damaged"),
        "{stderr}"
    );
}

#[test]
fn non_loopback_api_requires_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(weftd_bin())
        .args(["--api-listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--api-token-file"), "{stderr}");
    // Bad southbound targets are refused at startup too.
    let out = Command::new(weftd_bin())
        .args([
            "--api-listen",
            "127.0.0.1:0",
            "--ovsdb",
            "tcp:nowhere",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ovsdb"));
}

#[tokio::test]
async fn token_file_protects_a_spawned_weftd() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "tok-123\n").unwrap();
    let d = Spawned::start(
        &dir.path().join("data"),
        &["--api-token-file", token.to_str().unwrap()],
    );
    let (code, _, err) = weftctl(&d.url(), &["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unauthorized"), "{err}");
    let out = Command::new(weftctl_bin())
        .args([
            "--server",
            &d.url(),
            "--token-file",
            token.to_str().unwrap(),
            "status",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Started by a service manager (`$NOTIFY_SOCKET`, as systemd does for `Type=notify`),
/// weftd sends READY=1 only once its API and southbound listeners accept connections.
#[test]
fn weftd_tells_the_service_manager_when_it_listens() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("notify.sock");
    let manager = UnixDatagram::bind(&socket).unwrap();
    manager
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut child = Command::new(weftd_bin())
        .args(["--api-listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--openflow-listen", "tcp:127.0.0.1:0"])
        .args(["--ovsdb-listen", "tcp:127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &socket)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // weftd's log, read as it is written: "told the service manager" comes right after
    // the notification, so weftd is stopped only once that line is in (stopping it as
    // soon as READY=1 arrives could cut the line off).
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let log = log.clone();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        })
    };
    let mut buf = [0u8; 256];
    let got = manager.recv(&mut buf);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !log.lock().unwrap().contains("told the service manager")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    let n = got.expect("no READY=1 from weftd within 60 s");
    assert_eq!(&buf[..n], b"READY=1\n");
    let stderr = log.lock().unwrap().clone();
    // The listeners were bound before the notification was sent.
    let api = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("weftd: api listening on ")
                .map(str::to_owned)
        })
        .expect("weftd printed no API address");
    assert!(api.starts_with("127.0.0.1:"), "{api}");
    let order = |needle: &str| {
        stderr
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not logged:\n{stderr}"))
    };
    assert!(order("southbound listening") < order("told the service manager"));
    assert!(order("API listening") < order("told the service manager"));
}

#[test]
fn weftctl_prints_shell_completions() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef weftctl"),
        ("fish", "complete -c weftctl"),
    ] {
        let out = Command::new(weftctl_bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shell}: {text}");
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(text.contains("router-port"), "{shell}: subcommands missing");
    }
}

/// What the writers know: acknowledged objects, acknowledged deletions, and names whose
/// fate is unknown because the write was in flight when weftd died.
#[derive(Default, Clone)]
struct Ledger {
    ports: HashMap<String, String>,
    /// ACL id -> its port's name.
    acls: HashMap<String, String>,
    switches: HashMap<String, String>,
    deleted_ports: HashSet<String>,
    deleted_switches: HashSet<String>,
    uncertain: HashSet<String>,
    acked_writes: u64,
    failed_writes: u64,
}

async fn verify(url: &str, ledger: &Ledger) {
    let c = http_client(url, None);
    let switches = call(&c, "switch_list", json!({})).await.unwrap();
    let ports = call(&c, "port_list", json!({})).await.unwrap();
    let acls = call(&c, "acl_list", json!({})).await.unwrap();
    let switch_ids: HashSet<&str> = switches
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let port_ids: HashSet<&str> = ports
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    let acl_ids: HashSet<&str> = acls
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    // Nothing half-written: every reference resolves.
    for p in ports.as_array().unwrap() {
        assert!(
            switch_ids.contains(p["switch"].as_str().unwrap()),
            "port without switch: {p}"
        );
    }
    for a in acls.as_array().unwrap() {
        assert!(
            port_ids.contains(a["port"].as_str().unwrap()),
            "acl without port: {a}"
        );
    }
    // Every acknowledged write is there.
    for (name, id) in &ledger.switches {
        if ledger.uncertain.contains(name) || ledger.deleted_switches.contains(name) {
            continue;
        }
        assert!(
            switch_ids.contains(id.as_str()),
            "acknowledged switch {name} lost"
        );
    }
    for (name, id) in &ledger.ports {
        if ledger.uncertain.contains(name) || ledger.deleted_ports.contains(name) {
            continue;
        }
        assert!(
            port_ids.contains(id.as_str()),
            "acknowledged port {name} lost"
        );
    }
    for name in &ledger.deleted_ports {
        if let Some(id) = ledger.ports.get(name) {
            assert!(
                !port_ids.contains(id.as_str()),
                "acknowledged delete of {name} undone"
            );
        }
    }
    for name in &ledger.deleted_switches {
        if let Some(id) = ledger.switches.get(name) {
            assert!(
                !switch_ids.contains(id.as_str()),
                "acknowledged delete of {name} undone"
            );
        }
    }
    for (id, port) in &ledger.acls {
        if ledger.uncertain.contains(port) || ledger.deleted_ports.contains(port) {
            continue;
        }
        assert!(
            acl_ids.contains(id.as_str()),
            "acknowledged acl {id} on {port} lost"
        );
    }
    let rev = call(&c, "system_status", json!({})).await.unwrap()["revision"]
        .as_u64()
        .unwrap();
    assert!(
        rev >= ledger.acked_writes,
        "revision {rev} < {} acknowledged writes",
        ledger.acked_writes
    );
}

async fn writer(url: String, round: u32, worker: u32, ledger: Arc<Mutex<Ledger>>) {
    let c = http_client(&url, None);
    let sw = format!("s{round}");
    for i in 0u32.. {
        let name = format!("p{round}-{worker}-{i}");
        let mac = format!(
            "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            round % 256,
            worker,
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        );
        match c
            .request::<Value, _>(
                "port_create",
                common::obj(json!({"switch": sw, "name": name, "mac": mac})),
            )
            .await
        {
            Ok(p) => {
                let mut l = ledger.lock().unwrap();
                l.acked_writes += 1;
                l.ports
                    .insert(name.clone(), p["id"].as_str().unwrap().to_string());
            }
            Err(_) => {
                let mut l = ledger.lock().unwrap();
                l.failed_writes += 1;
                l.uncertain.insert(name);
                return;
            }
        }
        if i % 2 == 0 {
            match c
                .request::<Value, _>(
                    "acl_create",
                    common::obj(json!({"port": name, "direction": "egress", "priority": 10, "action": "allow-related", "protocol": "tcp"})),
                )
                .await
            {
                Ok(a) => {
                    let mut l = ledger.lock().unwrap();
                    l.acked_writes += 1;
                    l.acls.insert(a["id"].as_str().unwrap().to_string(), name.clone());
                }
                Err(_) => {
                    ledger.lock().unwrap().failed_writes += 1;
                    return;
                }
            }
        }
        if i % 5 == 4 {
            // Delete an earlier port of ours (with its ACL) in one write.
            let victim = format!("p{round}-{worker}-{}", i - 2);
            match c
                .request::<Value, _>("port_delete", common::obj(json!({"port": victim})))
                .await
            {
                Ok(_) => {
                    let mut l = ledger.lock().unwrap();
                    l.acked_writes += 1;
                    l.deleted_ports.insert(victim);
                }
                Err(_) => {
                    let mut l = ledger.lock().unwrap();
                    l.failed_writes += 1;
                    l.uncertain.insert(victim);
                    return;
                }
            }
        }
    }
}

/// Kills weftd with SIGKILL (every fourth round: SIGTERM) at random moments while four
/// clients write; after every restart each acknowledged write must be present and
/// nothing half-written may appear.
/// `WEFT_CRASH_ROUNDS` (default 12) sets the number of rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill() {
    let rounds: u32 = std::env::var("WEFT_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let started = Instant::now();
    let mut kills = 0;
    let mut terms = 0;
    for round in 0..rounds {
        let mut d = Spawned::start(dir.path(), &[]);
        let snapshot = ledger.lock().unwrap().clone();
        verify(&d.url(), &snapshot).await;
        let c = http_client(&d.url(), None);
        let sw = call(&c, "switch_create", json!({"name": format!("s{round}")}))
            .await
            .unwrap();
        {
            let mut l = ledger.lock().unwrap();
            l.acked_writes += 1;
            l.switches
                .insert(format!("s{round}"), sw["id"].as_str().unwrap().to_string());
        }
        // Every third round, cascade-delete an older switch concurrently with the writers.
        let cascade = (round >= 2 && round % 3 == 0).then(|| {
            let url = d.url();
            let ledger = ledger.clone();
            let victim = format!("s{}", round - 2);
            let pause = Duration::from_millis(rand::rng().random_range(0..200));
            tokio::spawn(async move {
                tokio::time::sleep(pause).await;
                let c = http_client(&url, None);
                let res = c
                    .request::<Value, _>(
                        "switch_delete",
                        common::obj(json!({"switch": victim, "cascade": true})),
                    )
                    .await;
                let mut l = ledger.lock().unwrap();
                match res {
                    Ok(_) => {
                        l.acked_writes += 1;
                        let doomed: Vec<String> = l
                            .ports
                            .keys()
                            .filter(|p| p.starts_with(&format!("p{}-", round - 2)))
                            .cloned()
                            .collect();
                        l.deleted_ports.extend(doomed);
                        l.deleted_switches.insert(victim);
                    }
                    Err(_) => {
                        l.failed_writes += 1;
                        let doomed: Vec<String> = l
                            .ports
                            .keys()
                            .filter(|p| p.starts_with(&format!("p{}-", round - 2)))
                            .cloned()
                            .collect();
                        l.uncertain.extend(doomed);
                        l.uncertain.insert(victim);
                    }
                }
            })
        });
        let workers: Vec<_> = (0..4)
            .map(|w| tokio::spawn(writer(d.url(), round, w, ledger.clone())))
            .collect();
        let delay = rand::rng().random_range(100..600);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        if round % 4 == 3 {
            // Graceful stop under load: in-flight writes finish, the store closes cleanly.
            let status = d.terminate();
            assert!(status.success(), "SIGTERM under load: {status}");
            terms += 1;
        } else {
            d.kill9();
            kills += 1;
        }
        for w in workers {
            w.await.unwrap();
        }
        if let Some(t) = cascade {
            t.await.unwrap();
        }
    }
    let d = Spawned::start(dir.path(), &[]);
    let snapshot = ledger.lock().unwrap().clone();
    verify(&d.url(), &snapshot).await;
    let l = ledger.lock().unwrap();
    eprintln!(
        "crash test: {kills} SIGKILLs + {terms} SIGTERMs under load, {} acknowledged writes verified, {} writes cut off, {:.1}s",
        l.acked_writes,
        l.failed_writes,
        started.elapsed().as_secs_f64()
    );
    assert!(
        l.acked_writes > u64::from(rounds) * 4,
        "too few writes to mean anything"
    );
}
