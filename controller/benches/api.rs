//! API throughput and weftd memory. Run: `cargo bench -p weft-controller --bench api`.
//!
//! 1. port_create calls/s through the real JSON-RPC API over HTTP (in-process weftd,
//!    durable redb store on disk): one sequential client, then 16 concurrent clients.
//! 2. RSS of the real `weftd` binary after loading a large model. The model is written
//!    through the store directly (one big redb transaction, the same records the API
//!    writes), then weftd starts on it and loads it like any other store.
//!
//! Environment: `WEFT_BENCH_SEQ` (default 2000 calls), `WEFT_BENCH_CONC` (calls per
//! concurrent client, default 250), `WEFT_BENCH_PORTS` (default 65535, the most the
//! one-conntrack-zone-per-port rule allows), `WEFT_BENCH_SWITCHES` (default 5000).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde_json::{Value, json};
use uuid::Uuid;
use weft::config::Config;
use weft::daemon::Daemon;
use weft::model::{Change, LogicalPort, LogicalSwitch, MacAddr};
use weft::store::{RedbStore, Store};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn client(url: &str) -> HttpClient {
    HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(60))
        .max_response_size(512 * 1024 * 1024)
        .build(url)
        .expect("client")
}

fn params(v: Value) -> ObjectParams {
    let mut p = ObjectParams::new();
    if let Value::Object(map) = v {
        for (k, v) in map {
            p.insert(&k, v).expect("param");
        }
    }
    p
}

async fn create_ports(c: &HttpClient, client_no: usize, n: usize) {
    for i in 0..n {
        let mac = format!(
            "02:00:{:02x}:{:02x}:{:02x}:{:02x}",
            client_no,
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        );
        let _: Value = c
            .request(
                "port_create",
                params(json!({"switch": "bench", "name": format!("c{client_no}-{i}"), "mac": mac})),
            )
            .await
            .expect("port_create");
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Weftd {
    child: std::process::Child,
    url: String,
    startup: Duration,
}

/// Kills the child even when the benchmark panics half-way.
impl Drop for Weftd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_weftd(dir: &std::path::Path) -> Weftd {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weftd"))
        .args(["--api-listen", "127.0.0.1:0", "--log", "warn", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
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
    Weftd {
        child,
        url: format!("http://{addr}"),
        startup: started.elapsed(),
    }
}

/// Writes `switches` switches and `ports` ports spread evenly over them, in one commit.
fn load_store(dir: &std::path::Path, switches: usize, ports: usize) {
    let mut store = RedbStore::open(dir).expect("store");
    let mut changes = Vec::with_capacity(switches + ports);
    let ids: Vec<Uuid> = (0..switches).map(|_| Uuid::new_v4()).collect();
    for (i, id) in ids.iter().enumerate() {
        changes.push(Change::PutSwitch(LogicalSwitch {
            id: *id,
            name: format!("sw{i}"),
            vni: u32::try_from(i + 1).expect("vni"),
            description: String::new(),
            provider: None,
            flood_vteps: Vec::new(),
        }));
    }
    for p in 0..ports {
        let sw = p % switches;
        let key = u16::try_from(p / switches + 1).expect("key");
        let b = u32::try_from(p).expect("port").to_be_bytes();
        changes.push(Change::PutPort(LogicalPort {
            id: Uuid::new_v4(),
            name: format!("port{p}"),
            switch: ids[sw],
            mac: MacAddr([0x02, 0, b[0], b[1], b[2], b[3]]),
            ips: vec![std::net::IpAddr::from([10, b[1], b[2], b[3]])],
            port_security: true,
            key,
            zone: u16::try_from(p + 1).expect("zone (at most 65535 ports)"),
        }));
    }
    store
        .commit(u64::try_from(changes.len()).expect("rev"), &changes)
        .expect("commit");
}

fn main() {
    let seq_n = env_usize("WEFT_BENCH_SEQ", 2000);
    let conc_n = env_usize("WEFT_BENCH_CONC", 250);
    let ports = env_usize("WEFT_BENCH_PORTS", 65_535);
    let switches = env_usize("WEFT_BENCH_SWITCHES", 5_000);
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut rows: Vec<(String, String)> = Vec::new();

    // 1. Throughput.
    let dir = tempfile::tempdir_in(&base).expect("tempdir");
    let (seq_rate, conc_rate) = rt.block_on(async {
        let cfg = Config::new(
            "127.0.0.1:0".parse().expect("addr"),
            dir.path().join("data"),
        );
        let daemon = Daemon::start(&cfg).await.expect("weftd");
        let url = format!("http://{}", daemon.api_addr);
        let c = client(&url);
        let _: Value = c
            .request("switch_create", params(json!({"name": "bench"})))
            .await
            .expect("switch");
        let t = Instant::now();
        create_ports(&c, 0, seq_n).await;
        let seq_rate = seq_n as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let tasks: Vec<_> = (1..=16)
            .map(|k| {
                let url = url.clone();
                tokio::spawn(async move { create_ports(&client(&url), k, conc_n).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("client task");
        }
        let conc_rate = (16 * conc_n) as f64 / t.elapsed().as_secs_f64();
        daemon.shutdown().await;
        (seq_rate, conc_rate)
    });
    rows.push((
        format!("port_create, 1 sequential client ({seq_n} calls)"),
        format!("{seq_rate:.0} calls/s"),
    ));
    rows.push((
        format!("port_create, 16 concurrent clients ({} calls)", 16 * conc_n),
        format!("{conc_rate:.0} calls/s"),
    ));

    // 2. Memory of the real binary: empty, then with the large model.
    let empty_dir = tempfile::tempdir_in(&base).expect("tempdir");
    let mut w = spawn_weftd(empty_dir.path());
    std::thread::sleep(Duration::from_millis(300));
    let empty_rss = rss_kib(w.child.id());
    let _ = w.child.kill();
    let _ = w.child.wait();
    rows.push((
        "weftd RSS, empty store".into(),
        format!("{:.1} MiB", empty_rss as f64 / 1024.0),
    ));

    let big_dir = tempfile::tempdir_in(&base).expect("tempdir");
    let t = Instant::now();
    load_store(big_dir.path(), switches, ports);
    let load_time = t.elapsed();
    let file_size = std::fs::metadata(big_dir.path().join("weft.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    let mut w = spawn_weftd(big_dir.path());
    std::thread::sleep(Duration::from_millis(300));
    let loaded_rss = rss_kib(w.child.id());
    let listed = rt.block_on(async {
        let c = client(&w.url);
        let t = Instant::now();
        let v: Value = c
            .request("port_list", ObjectParams::new())
            .await
            .expect("port_list");
        (v.as_array().map_or(0, Vec::len), t.elapsed())
    });
    let after_list_rss = rss_kib(w.child.id());
    let _ = w.child.kill();
    let _ = w.child.wait();
    assert_eq!(listed.0, ports, "weftd did not load every port");
    let per_port = (loaded_rss.saturating_sub(empty_rss) * 1024) as f64 / ports as f64;
    rows.push((
        format!("store write, {switches} switches + {ports} ports, one txn"),
        format!(
            "{:.2} s, file {:.1} MiB",
            load_time.as_secs_f64(),
            file_size as f64 / 1048576.0
        ),
    ));
    rows.push((
        "weftd startup (spawn to ready) with that store".into(),
        format!("{:.2} s", w.startup.as_secs_f64()),
    ));
    rows.push((
        format!("weftd RSS, {ports} ports / {switches} switches, idle"),
        format!("{:.1} MiB", loaded_rss as f64 / 1024.0),
    ));
    rows.push((
        "  per port (minus empty weftd)".to_string(),
        format!("{per_port:.0} bytes"),
    ));
    rows.push((
        "  extrapolated to 100,000 ports".into(),
        format!(
            "{:.1} MiB",
            (empty_rss as f64 * 1024.0 + per_port * 100_000.0) / 1048576.0
        ),
    ));
    rows.push((
        format!("port_list of all {ports} ports"),
        format!(
            "{:.2} s, RSS after {:.1} MiB",
            listed.1.as_secs_f64(),
            after_list_rss as f64 / 1024.0
        ),
    ));

    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("\n{:<w0$}  result", "measurement");
    println!("{}  {}", "-".repeat(w0), "-".repeat(30));
    for (k, v) in rows {
        println!("{k:<w0$}  {v}");
    }
}
