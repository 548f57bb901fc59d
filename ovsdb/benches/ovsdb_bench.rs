//! Benchmark against a private ovsdb-server, side by side with the tools OVS ships:
//! - time to receive and apply the initial monitor reply of a database with N (default
//!   10,000) Interface rows, and the client's own CPU for it (the wall time includes
//!   ovsdb-server building its reply, which both clients wait for alike);
//! - single-row update transactions per second.
//!
//! Compared with `ovs-vsctl` (one process per command, as scripts use it) and, when a
//! Python with the `ovs` library from PyPI is available, its IDL (set `WEFT_OVS_PYTHON` to
//! a venv's python; default `python3`). Run: `cargo bench -p ovsdb --bench ovsdb_bench`.
//! `WEFT_BENCH_ROWS` changes N. Prints a table.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::OvsdbServer;
use ovsdb::client::{ClientConfig, connect};
use ovsdb::monitor::{MonitorRequest, Replica};
use ovsdb::{Condition, Datum, Row, Transaction, vswitch};
use serde_json::json;

const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Creates bridge br0 with `n` ports of one Interface each, in chunks of 2,000 ports.
async fn populate(server: &OvsdbServer, n: usize) {
    let (client, _ev) = connect(&server.unix_target(), ClientConfig::default())
        .await
        .unwrap();
    server.vsctl(&["add-br", "br0"]);
    let br: ovsdb::Uuid = server
        .vsctl(&["get", "Bridge", "br0", "_uuid"])
        .trim()
        .parse()
        .unwrap();
    let mut i = 0;
    while i < n {
        let mut txn = Transaction::new(vswitch::DATABASE);
        let mut ports = Vec::new();
        for _ in 0..2000.min(n - i) {
            let name = format!("if{i}");
            let iface = txn.insert(
                "Interface",
                Row::from([
                    ("name".into(), Datum::scalar(name.as_str())),
                    ("type".into(), Datum::scalar("internal")),
                    (
                        "external_ids".into(),
                        Datum::map([
                            ("iface-id", format!("lp{i}").as_str()),
                            ("attached-mac", "00:00:00:00:00:01"),
                        ]),
                    ),
                ]),
            );
            let port = txn.insert(
                "Port",
                Row::from([
                    ("name".into(), Datum::scalar(name.as_str())),
                    ("interfaces".into(), iface.datum()),
                ]),
            );
            ports.push(port);
            i += 1;
        }
        let set = Datum::Set(
            ports
                .iter()
                .map(|p| ovsdb::Atom::NamedUuid(p.name().to_owned()))
                .collect(),
        );
        txn.mutate(
            "Bridge",
            vec![Condition::uuid(br)],
            vec![ovsdb::Mutation::insert("ports", set)],
        );
        client.transact(&txn).await.unwrap();
    }
}

/// Connect, fetch the schema, monitor_cond the Interface table and apply the reply.
async fn rust_initial(server: &OvsdbServer) -> (Duration, Duration, Duration, usize) {
    let cpu0 = process_cpu();
    let t0 = Instant::now();
    let (client, _ev) = connect(&server.unix_target(), ClientConfig::default())
        .await
        .unwrap();
    let schema = client.get_schema(vswitch::DATABASE).await.unwrap();
    let reqs = [MonitorRequest::table("Interface")];
    let start = client
        .monitor_auto(vswitch::DATABASE, json!("bench"), &reqs)
        .await
        .unwrap();
    let t_apply = Instant::now();
    let mut replica = Replica::new(schema);
    replica.apply(start.format, &start.initial).unwrap();
    let apply = t_apply.elapsed();
    let total = t0.elapsed();
    (total, apply, process_cpu() - cpu0, replica.len("Interface"))
}

/// CPU of this process's threads, in nanoseconds from each thread's schedstat (not
/// tick-sampled). The runtime's threads live through the whole bench, and nothing else
/// runs in it while this is read.
fn process_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let ns: u64 = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

async fn rust_txns(server: &OvsdbServer, n: usize, in_flight: usize) -> f64 {
    let (client, _ev) = connect(&server.unix_target(), ClientConfig::default())
        .await
        .unwrap();
    let schema = client.get_schema(vswitch::DATABASE).await.unwrap();
    let start = client
        .monitor_auto(
            vswitch::DATABASE,
            json!("t"),
            &[MonitorRequest::table("Interface").columns(&["name"])],
        )
        .await
        .unwrap();
    let mut replica = Replica::new(schema);
    replica.apply(start.format, &start.initial).unwrap();
    let uuids: Vec<ovsdb::Uuid> = replica.table("Interface").map(|(u, _)| *u).collect();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..in_flight {
        let client = client.clone();
        let uuids = uuids.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < n {
                let mut txn = Transaction::new(vswitch::DATABASE);
                txn.update(
                    "Interface",
                    vec![Condition::uuid(uuids[i % uuids.len()])],
                    Row::from([(
                        "external_ids".into(),
                        Datum::map([("bench", i.to_string().as_str())]),
                    )]),
                );
                let out = client.transact(&txn).await.unwrap();
                assert_eq!(out.count(0), Some(1));
                i += in_flight;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

fn vsctl_list(server: &OvsdbServer) -> Duration {
    let t0 = Instant::now();
    let out = Command::new("ovs-vsctl")
        .arg(format!("--db={}", server.unix_target()))
        .args(["--no-wait", "list", "Interface"])
        .output()
        .unwrap();
    assert!(out.status.success());
    t0.elapsed()
}

fn vsctl_txns(server: &OvsdbServer, n: usize) -> f64 {
    let t0 = Instant::now();
    for i in 0..n {
        let out = Command::new("ovs-vsctl")
            .arg(format!("--db={}", server.unix_target()))
            .args([
                "--no-wait",
                "set",
                "Interface",
                &format!("if{i}"),
                &format!("external_ids:bench={i}"),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

const PY: &str = r#"
import sys, time
import ovs.db.idl, ovs.poller
mode, remote, schema, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t0 = time.perf_counter()
c0 = time.process_time()
helper = ovs.db.idl.SchemaHelper(location=schema)
helper.register_table("Interface")
idl = ovs.db.idl.Idl(remote, helper)
seqno = idl.change_seqno
while idl.change_seqno == seqno:
    idl.run()
    if idl.change_seqno != seqno:
        break
    p = ovs.poller.Poller(); idl.wait(p); p.block()
t1 = time.perf_counter()
c1 = time.process_time()
rows = list(idl.tables["Interface"].rows.values())
if mode == "initial":
    print(len(rows), t1 - t0, c1 - c0)
else:
    t0 = time.perf_counter()
    for i in range(n):
        txn = ovs.db.idl.Transaction(idl)
        rows[i % len(rows)].external_ids = {"bench": "py%d" % i}
        st = txn.commit_block()
        assert st == ovs.db.idl.Transaction.SUCCESS, st
    print(n, time.perf_counter() - t0, 0)
"#;

fn python() -> Option<String> {
    let py = std::env::var("WEFT_OVS_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import ovs.db.idl"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then_some(py)
}

fn py_run(
    py: &str,
    script: &std::path::Path,
    mode: &str,
    server: &OvsdbServer,
    n: usize,
) -> (usize, f64, f64) {
    let out = Command::new(py)
        .arg(script)
        .args([
            mode,
            &server.unix_target(),
            integration::lab::OVS_SCHEMA,
            &n.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python ovs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    let mut it = s.split_whitespace();
    (
        it.next().unwrap().parse().unwrap(),
        it.next().unwrap().parse().unwrap(),
        it.next().unwrap().parse().unwrap(),
    )
}

fn main() {
    let rows: usize = std::env::var("WEFT_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = OvsdbServer::start();
    let t = Instant::now();
    rt.block_on(populate(&server, rows));
    eprintln!("populated {rows} Interface rows in {}", ms(t.elapsed()));

    // Initial monitor reply.
    let mut totals = Vec::new();
    let mut applies = Vec::new();
    let mut cpus = Vec::new();
    for _ in 0..RUNS {
        let (total, apply, cpu, n) = rt.block_on(rust_initial(&server));
        assert_eq!(n, rows + 1, "br0's own interface plus the populated ones");
        totals.push(total);
        applies.push(apply);
        cpus.push(cpu);
    }
    let rust_total = median(totals);
    let rust_apply = median(applies);
    let rust_cpu = median(cpus);
    let vs_list = median((0..RUNS).map(|_| vsctl_list(&server)).collect());
    let py = python();
    let script = server.ovs.dir().join("bench_idl.py");
    std::fs::write(&script, PY).unwrap();
    let py_initial = py.as_ref().map(|py| {
        let runs: Vec<(Duration, Duration)> = (0..RUNS)
            .map(|_| {
                let (n, secs, cpu) = py_run(py, &script, "initial", &server, 0);
                assert_eq!(n, rows + 1);
                (Duration::from_secs_f64(secs), Duration::from_secs_f64(cpu))
            })
            .collect();
        (
            median(runs.iter().map(|r| r.0).collect()),
            median(runs.iter().map(|r| r.1).collect()),
        )
    });

    // Single-row update transactions.
    let rust_seq = rt.block_on(rust_txns(&server, 2000, 1));
    let rust_par = rt.block_on(rust_txns(&server, 4000, 32));
    let vs_tps = vsctl_txns(&server, 30);
    let py_tps = py.as_ref().map(|py| {
        let (n, secs, _) = py_run(py, &script, "txn", &server, 300);
        n as f64 / secs
    });

    let na = "n/a (no python ovs lib; set WEFT_OVS_PYTHON)".to_owned();
    println!();
    println!(
        "ovsdb-server {} rows in Interface, unix socket, medians of {RUNS} runs",
        rows + 1
    );
    println!(
        "| {:<58} | {:<30} | {:<26} | {:<30} |",
        "measurement", "weft ovsdb (Rust)", "python ovs IDL (PyPI)", "ovs-vsctl"
    );
    println!(
        "|{}|{}|{}|{}|",
        "-".repeat(60),
        "-".repeat(32),
        "-".repeat(28),
        "-".repeat(32)
    );
    println!(
        "| {:<58} | {:<30} | {:<26} | {:<30} |",
        "initial monitor: connect..replica ready (Interface)",
        format!("{} (apply {})", ms(rust_total), ms(rust_apply)),
        py_initial.map(|p| ms(p.0)).unwrap_or(na.clone()),
        format!("{} (`list Interface`, 1 process)", ms(vs_list)),
    );
    let ratio = |py: Duration, rust: Duration| py.as_secs_f64() / rust.as_secs_f64().max(1e-9);
    println!(
        "| {:<58} | {:<30} | {:<26} | {:<30} |",
        "initial monitor: the client's own CPU (user + system)",
        ms(rust_cpu),
        py_initial
            .map(|p| format!("{} ({:.0}× Rust's)", ms(p.1), ratio(p.1, rust_cpu)))
            .unwrap_or(na.clone()),
        "-",
    );
    println!(
        "| {:<58} | {:<30} | {:<26} | {:<30} |",
        "single-row update txns/s, one at a time",
        format!("{rust_seq:.0}/s (2000 txns)"),
        py_tps.map(|t| format!("{t:.0}/s (300 txns)")).unwrap_or(na),
        format!("{vs_tps:.1}/s (30 `set Interface`)"),
    );
    println!(
        "| {:<58} | {:<30} | {:<26} | {:<30} |",
        "single-row update txns/s, 32 in flight on one connection",
        format!("{rust_par:.0}/s (4000 txns)"),
        "-",
        "-",
    );
}
