//! Issue 8: 100 hypervisors connecting at the same moment do not stall the API, and one
//! switch that stops reading its socket does not keep the other 99 from converging.
//! Issue 18: a reconnect storm (every hypervisor drops OVSDB and OpenFlow at once, nothing
//! changed) sends no flow or group mod, also on a machine whose CPU is taken.
//!
//! Spawns the real weftd (built next to this test binary: `cargo test --workspace` builds
//! it; otherwise `cargo build -p weft-controller --bin weftd` or set `WEFTD`).

use std::time::{Duration, Instant};

use serde_json::json;
use weft_sim::cluster::{Cluster, ClusterOptions};
use weft_sim::hog::CpuHog;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_hypervisors_at_once_do_not_stall_the_api() {
    const NODES: usize = 100;
    let stalled = vec![37usize];
    let opts = ClusterOptions::new(NODES);
    let (mut cluster, schema, settings) = tokio::task::block_in_place(|| Cluster::prepare(&opts))
        .expect("simulated deployment (needs /usr/share/openvswitch/vswitch.ovsschema and weftd)");
    let cluster_ref = &cluster;
    // Baseline: one call before the storm.
    cluster_ref
        .call("switch_list", json!({}))
        .await
        .expect("switch_list");

    let t0 = Instant::now();
    cluster.connect_all(schema, settings, &stalled);
    let cluster = &cluster;

    // Keep the API busy while the nodes connect: lists and creates, each must succeed.
    let stop = tokio_util::sync::CancellationToken::new();
    let load = {
        let stop = stop.clone();
        async move {
            let mut lat: Vec<(String, Duration)> = Vec::new();
            let mut i = 0u32;
            while !stop.is_cancelled() {
                let calls = [
                    ("switch_list", json!({})),
                    ("node_list", json!({})),
                    ("switch_create", json!({"name": format!("storm-{i}")})),
                    (
                        "port_create",
                        json!({"switch": format!("storm-{i}"), "name": format!("storm-p{i}"),
                               "mac": "02:99:00:00:00:01", "ips": ["192.168.0.1"]}),
                    ),
                    ("port_list", json!({"switch": "ls00000"})),
                ];
                for (method, params) in calls {
                    let t = Instant::now();
                    let r = cluster.call(method, params).await;
                    assert!(r.is_ok(), "{method} failed during the storm: {r:?}");
                    lat.push((method.to_owned(), t.elapsed()));
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            lat
        }
    };
    let wait = async {
        let r = cluster
            .wait_installed(&stalled, Duration::from_secs(180))
            .await;
        stop.cancel();
        r
    };
    let (lat, converged) = tokio::join!(load, wait);
    let converged = converged.unwrap_or_else(|missing| {
        panic!(
            "nodes never got weft-installed on every VIF: {missing:?}; weftd log: {}",
            cluster.weftd.log.display()
        )
    });
    eprintln!(
        "storm: {} nodes (1 stalled) converged in {:.2} s (weftd started {:.2} s before)",
        NODES - stalled.len(),
        converged.as_secs_f64(),
        t0.elapsed().as_secs_f64() - converged.as_secs_f64()
    );
    let mut d: Vec<Duration> = lat.iter().map(|(_, d)| *d).collect();
    d.sort();
    let p = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize];
    let worst = lat
        .iter()
        .max_by_key(|(_, d)| *d)
        .map(|(m, _)| m.clone())
        .unwrap_or_default();
    eprintln!(
        "storm: {} API calls during convergence, all succeeded: p50 {:?}, p99 {:?}, max {:?} ({worst})",
        d.len(),
        p(0.5),
        p(0.99),
        d.last().copied().unwrap_or_default()
    );
    assert!(!d.is_empty(), "no API call was made during the storm");

    // Honesty: every converged node's tables equal the compiler's output.
    let sample = cluster.sample(NODES, &stalled);
    // Generous: on a loaded machine weftd may still be reconnecting nodes whose
    // keepalives it missed (see the README).
    let (took, checks) = cluster
        .wait_checked(&sample, Duration::from_secs(180))
        .await;
    let bad: Vec<_> = checks.iter().filter(|c| !c.ok()).collect();
    for c in &bad {
        eprintln!(
            "{}: {} differences, first: {:?}",
            c.node,
            c.differences.len(),
            c.differences.first()
        );
    }
    assert!(
        bad.is_empty(),
        "{} nodes' flow tables differ from the compiler's. If the differences are flow shapes \
         rather than missing remote ports, check that {} was built from this tree (a shared \
         target directory may hold another branch's weftd; set WEFTD)",
        bad.len(),
        weft_sim::weftd::find_weftd()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    let flows: usize = checks.iter().map(|c| c.flows).sum();
    eprintln!(
        "storm: {} nodes checked against compile_node ({:.1} s after convergence), {} flows, {} per node on average",
        checks.len(),
        took.as_secs_f64(),
        flows,
        flows / checks.len().max(1)
    );
}

/// Issue 18: a reconnect storm on a loaded machine. Every node drops both connections at
/// once and comes back with nothing changed, while busy loops (one per core, stopped by
/// PID when the test ends, also on a failure) take the CPU: no switch may be sent a
/// single flow or group mod, and every table must end as it began.
///
/// The node grace is 1.5 s here instead of 60 s: that is what makes 50 nodes in a test
/// show what 3,000 nodes on a loaded machine do with the default (their sessions are set
/// up one batch after another, and the last ones come up long after the grace): a node
/// whose connection is back, but still queued when its grace ends, must not be
/// forgotten, or all its neighbours drop and re-add their tunnels and flows towards it.
/// Here the last nodes are identified 3-6.5 s after their grace began when this test runs
/// alone, and up to 12 s with the 100-node test beside it (as `cargo test` runs them).
///
/// What the grace must exceed: weftd keeps a held node while connections it accepted
/// within the node's grace are being set up (`TransportNodes::session_ended`), so the
/// node's new connection must be accepted within the grace. Each simulated node
/// reconnects at once when the storm drops it (no backoff: `NodeControl::reconnect_now`),
/// and over 16 runs (10 alone, 6 beside the 100-node test, other builds on the machine)
/// weftd accepted every one at most 0.63 s after it began holding the node (0.88 s after
/// the storm); 1.5 s is more than twice that. A real switch waits its reconnect backoff
/// first (vswitchd up to ~2 s with the 1 s `max_backoff` Weft writes into br-int's
/// Controller row; ovsdb-server as its Manager row says), which is why a real grace must
/// be far longer (default 60 s).
///
/// This test once failed 1 run in 6 at a 1 s grace and was moved to 2 s on the guess that
/// the simulator's reconnect backoff outlasted the grace. The logs showed no backoff:
/// sim-00001's connection was accepted 0.1 s after the storm and identified 6.5 s later,
/// behind 49 others, and weftd forgot it at its fifth grace end because it extended a
/// grace at most four times. With that cap this test failed 4 of 6 runs at 1 s beside the
/// 100-node test; at 1.5 s the cap (7.5 s) fails it only when setups take longer, which
/// depends on the machine's load (they took up to 10 s above, but the old weftd passed 4
/// of 4 runs at a quieter moment): the unit tests of `topology` are the deterministic guard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_under_load_sends_no_flow_mod() {
    const NODES: usize = 50;
    let grace = Duration::from_millis(1500);
    let mut opts = ClusterOptions::new(NODES);
    opts.weftd_args = vec!["--node-grace".into(), grace.as_secs_f64().to_string()];
    // Holds and forgets are logged at info; WEFT_SIM_KEEP=1 keeps the log to read, and
    // each node's connects and disconnects in sim.log beside it.
    opts.log = "info".into();
    opts.keep = std::env::var_os("WEFT_SIM_KEEP").is_some();
    let (mut cluster, schema, settings) = tokio::task::block_in_place(|| Cluster::prepare(&opts))
        .expect("simulated deployment (needs /usr/share/openvswitch/vswitch.ovsschema and weftd)");
    // Only when kept, and best run alone: the subscriber is the process's, so the other
    // test's nodes (same names) would log into it too.
    let sim_log = cluster.weftd.log.with_file_name("sim.log");
    if opts.keep
        && let Ok(f) = std::fs::File::create(&sim_log)
    {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("weft_sim=debug,storm=info")
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .try_init();
    }
    cluster.connect_all(schema, settings, &[]);
    let cluster = &cluster;
    cluster
        .wait_installed(&[], Duration::from_secs(120))
        .await
        .unwrap_or_else(|missing| panic!("nodes never installed: {missing:?}"));
    // Every node settled before the storm, so that anything sent after it is the storm's.
    let all = cluster.sample(NODES, &[]);
    let (_, checks) = cluster.wait_checked(&all, Duration::from_secs(120)).await;
    assert!(
        checks.iter().all(|c| c.ok()),
        "tables differ from the compiler's before the storm"
    );

    let hog = CpuHog::per_core().expect("busy loops");
    eprintln!("reconnect storm: CPU hog pids {:?}", hog.pids());
    let before: Vec<_> = cluster
        .nodes
        .iter()
        .map(|n| {
            let st = n.lock();
            (
                st.counters.ovsdb_connects,
                st.counters.openflow_connects,
                st.tables.clone(),
            )
        })
        .collect();
    let t0 = Instant::now();
    tracing::info!("reconnect storm: every node drops both connections now");
    for ctl in &cluster.controls {
        ctl.reconnect_now();
    }
    // Resynced: a new OVSDB and OpenFlow session each, the flows dumped and compared.
    loop {
        let pending = cluster
            .nodes
            .iter()
            .zip(&before)
            .filter(|(n, (o, f, _))| !n.lock().resynced_since((*o, *f)))
            .count();
        if pending == 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{pending} nodes never resynced after the storm; weftd log: {}",
            cluster.weftd.log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resync = t0.elapsed();
    // Long enough for a node forgotten at the end of its grace to show up as flow mods
    // on its neighbours (and to come back).
    tokio::time::sleep(3 * grace).await;
    hog.stop();
    let (_, checks) = cluster.wait_checked(&all, Duration::from_secs(60)).await;
    let mut sent = Vec::new();
    let mut changed = Vec::new();
    for (n, (_, _, tables)) in cluster.nodes.iter().zip(&before) {
        let st = n.lock();
        let mods = st.switch_stats.flow_mods + st.switch_stats.group_mods;
        if mods > 0 {
            sent.push((st.spec.system_id.clone(), mods));
        }
        if st.tables.flows() != tables.flows() || st.tables.groups() != tables.groups() {
            changed.push(st.spec.system_id.clone());
        }
    }
    eprintln!(
        "reconnect storm under load: {NODES} nodes resynced in {:.2} s; {} nodes sent flow/group mods, {} tables changed",
        resync.as_secs_f64(),
        sent.len(),
        changed.len()
    );
    assert!(
        sent.is_empty(),
        "a reconnect with nothing changed sent flow/group mods to {} nodes: {sent:?}; weftd log: {} \
         (nodes' connects with WEFT_SIM_KEEP=1: {})",
        sent.len(),
        cluster.weftd.log.display(),
        sim_log.display()
    );
    assert!(
        changed.is_empty(),
        "tables changed across the storm: {changed:?}"
    );
    assert!(
        checks.iter().all(|c| c.ok()),
        "tables differ from the compiler's after the storm"
    );
    // The reconnects were recognised as such, not merely repaired: switches' dumps by
    // their digest, and OVSDB rows taken over from the nodes' previous sessions. Which
    // of a node's two sessions ends first is up to the scheduler, so some nodes may
    // decode afresh; none doing so would mean the mechanism is gone.
    let kept = [
        "weft_openflow_dumps_matched_by_digest_total",
        "weft_ovsdb_rows_kept_total",
    ];
    let counters = weft_sim::deployment::metrics::read_names(cluster.weftd.api, &kept).await;
    eprintln!("reconnect storm under load: {counters:?}");
    for name in kept {
        assert!(
            counters.get(name).is_some_and(|n| *n > 0.0),
            "{name} is not positive after a reconnect storm: {counters:?}"
        );
    }
}
