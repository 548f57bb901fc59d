//! weft-bench: Weft's scale benchmarks on simulated hypervisors (see sim/README.md).
//!
//! For each node count: write the configuration into a fresh store, start the real
//! weftd, connect every simulated node at once and time until every VM interface is
//! `weft-installed`; check a sample of nodes' flow tables against the compiler. At the
//! last node count, optionally: a reconnect storm (all nodes drop both connections at
//! once) and incremental port creation (one port at a time on a 64-node switch, then 100
//! at once). Prints a table and writes JSON.
//!
//! With `--instances K` (K > 1), cluster mode instead (`weft_sim::deployment`): a private
//! etcd cluster, K weftd instances sharing it, every node naming them all; cold start,
//! per-instance CPU, memory and owned nodes, then one instance SIGKILLed and the takeover.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde_json::{Value, json};
use weft_sim::cluster::{Cluster, ClusterOptions, self_memory_mib};
use weft_sim::deployment::{DeploymentOptions, measure};

/// The simulated hypervisors share the machine with the weftd they measure, so their
/// cost is part of every figure. With glibc's allocator about a quarter of the
/// simulator's CPU in a reconnect storm was malloc and free (flow dumps, monitor
/// updates); weftd itself runs on mimalloc, and like weftd the simulator turns
/// transparent huge pages off ([`weft::memory::no_transparent_huge_pages`]).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "weft-bench",
    about = "Weft scale benchmarks on simulated hypervisors"
)]
struct Cli {
    /// Node counts to run, comma-separated.
    #[arg(long, default_value = "100,1000,3000", value_delimiter = ',')]
    nodes: Vec<usize>,
    /// Incremental port creations (one at a time) at the last node count; 0 skips.
    #[arg(long, default_value_t = 100)]
    incremental: usize,
    /// Ports created at once after the one-at-a-time runs; 0 skips.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Run the reconnect storm at the last node count.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    storm: bool,
    /// Nodes whose flow tables are checked against the compiler (all when larger).
    #[arg(long, default_value_t = 10)]
    check: usize,
    /// Give up waiting for convergence after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    /// weftd's log filter (its log is kept in the run directory).
    #[arg(long, default_value = "info")]
    log: String,
    /// Where to put run directories (store, weftd.log); kept with --keep.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Keep each run directory (store, weftd.log) after the run.
    #[arg(long)]
    keep: bool,
    /// Abort a run when weftd's RSS passes this many MiB (protects a shared machine).
    #[arg(long, default_value_t = 14_000.0)]
    max_weftd_rss_mib: f64,
    /// One distributed router per this many consecutive switches (0: no routers).
    #[arg(long, default_value_t = 0)]
    router_every: usize,
    /// Busy-looping processes run beside weftd for the whole bench (0: none): a loaded
    /// machine, as on a shared CI runner.
    #[arg(long, default_value_t = 0)]
    hog: usize,
    /// A further weftd argument (repeat for several), e.g. `--weftd-arg=--node-grace=5`.
    #[arg(long = "weftd-arg", allow_hyphen_values = true)]
    weftd_args: Vec<String>,
    /// weftd instances sharing a private 3-member etcd cluster (cluster mode); 1 runs one
    /// weftd on its embedded store, as before.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Cluster mode: each instance's `--owner-lease` seconds.
    #[arg(long, default_value_t = 3)]
    owner_lease: u64,
    /// Cluster mode: which instance (0-based) to SIGKILL after the cold start; default
    /// the last one.
    #[arg(long)]
    kill_instance: Option<usize>,
    /// JSON output file.
    #[arg(long, default_value = "weft-bench.json")]
    out: std::path::PathBuf,
}

fn main() -> anyhow::Result<()> {
    weft::memory::no_transparent_huge_pages("weft-bench");
    let cli = Cli::parse();
    let rt = weft_sim::bench_runtime()?;
    let hog = weft_sim::hog::CpuHog::start(cli.hog)?;
    if cli.hog > 0 {
        eprintln!("CPU hog: {} busy loops, pids {:?}", cli.hog, hog.pids());
    }
    let mut results = Vec::new();
    let last = cli.nodes.last().copied();
    for &n in &cli.nodes {
        let outcome = if cli.instances > 1 {
            rt.block_on(run_cluster(&cli, n))
        } else {
            rt.block_on(run(&cli, n, Some(n) == last))
        };
        match outcome {
            Ok(r) => results.push(r),
            Err(e) => {
                eprintln!("  run at {n} nodes failed: {e:#}");
                results.push(json!({"nodes": n, "error": format!("{e:#}")}));
            }
        }
    }
    hog.stop();
    let doc = json!({"runs": results});
    std::fs::write(&cli.out, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("writing {}", cli.out.display()))?;
    if cli.instances > 1 {
        print_cluster_table(&results);
    } else {
        print_table(&results);
    }
    println!("JSON written to {}", cli.out.display());
    Ok(())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Cluster mode at `n` nodes (see `weft_sim::deployment::measure`).
async fn run_cluster(cli: &Cli, n: usize) -> anyhow::Result<Value> {
    let opts = DeploymentOptions {
        nodes: n,
        instances: cli.instances,
        log: cli.log.clone(),
        base_dir: cli.dir.clone(),
        keep: cli.keep,
        router_every: cli.router_every,
        owner_lease: cli.owner_lease,
        weftd_args: cli.weftd_args.clone(),
    };
    let kill = cli.kill_instance.unwrap_or(cli.instances - 1);
    measure::run(&opts, cli.check, Duration::from_secs(cli.timeout), kill).await
}

async fn run(cli: &Cli, n: usize, last: bool) -> anyhow::Result<Value> {
    eprintln!("== {n} nodes");
    let mut opts = ClusterOptions::new(n);
    opts.log = cli.log.clone();
    opts.base_dir = cli.dir.clone();
    opts.keep = cli.keep;
    opts.router_every = cli.router_every;
    opts.weftd_args = cli.weftd_args.clone();
    let t = Instant::now();
    let (mut c, schema, settings) = tokio::task::block_in_place(|| Cluster::prepare(&opts))?;
    eprintln!(
        "  config: {}; store written in {:.2} s; weftd up after {:.2} s (log {})",
        c.scenario.shape(),
        c.store_write_secs,
        t.elapsed().as_secs_f64(),
        c.weftd.log.display()
    );
    c.max_weftd_rss_mib = cli.max_weftd_rss_mib;
    let cpu0 = c.weftd.cpu_seconds().unwrap_or(0.0);
    let t0 = Instant::now();
    c.connect_all(schema, settings, &[]);
    let cold = c
        .wait_installed(&[], Duration::from_secs(cli.timeout))
        .await
        .map_err(|missing| {
            anyhow::anyhow!(
                "{} nodes never converged (e.g. {:?})",
                missing.len(),
                &missing[..missing.len().min(5)]
            )
        })?;
    let cold_cpu = c.weftd.cpu_seconds().unwrap_or(0.0) - cpu0;
    let sample = c.sample(cli.check, &[]);
    let (settle, checks) = c.wait_checked(&sample, Duration::from_secs(300)).await;
    let matched = checks.iter().filter(|x| x.ok()).count();
    for x in checks.iter().filter(|x| !x.ok()) {
        eprintln!(
            "  MISMATCH {}: {} differences, e.g. {:?}",
            x.node,
            x.differences.len(),
            x.differences.first()
        );
    }
    let flows_at = t0.elapsed();
    let (whwm, wrss) = c.weftd.memory_mib().unwrap_or_default();
    let (shwm, srss) = self_memory_mib().unwrap_or_default();
    let ts = c.table_stats();
    let counters = weft_sim::deployment::metrics::read(c.weftd.api).await;
    eprintln!(
        "  cold start: all installed after {:.2} s, sampled tables equal the compiler's {:.2} s later ({matched}/{} match); weftd {:.1} CPU s, peak RSS {:.0} MiB, recompiled nodes {} times in {:.2} s",
        cold.as_secs_f64(),
        settle.as_secs_f64(),
        checks.len(),
        cold_cpu,
        whwm,
        counters
            .get("weft_nodes_recompiled_total")
            .copied()
            .unwrap_or(f64::NAN),
        counters
            .get("weft_compile_seconds_sum")
            .copied()
            .unwrap_or(f64::NAN)
    );
    anyhow::ensure!(
        matched == checks.len(),
        "honesty check failed: {} of {} sampled nodes differ from compile_node",
        checks.len() - matched,
        checks.len()
    );
    let mut out = json!({
        "nodes": n,
        "switches": c.scenario.switches.len(),
        "ports": c.scenario.ports.len(),
        "acls": c.scenario.acls.len(),
        "routers": c.scenario.routers.len(),
        "store_write_s": c.store_write_secs,
        "cold_start": {
            "installed_s": cold.as_secs_f64(),
            "flows_match_s": flows_at.as_secs_f64(),
            "weftd_cpu_s": cold_cpu,
            "weftd_peak_rss_mib": whwm,
            "weftd_rss_mib": wrss,
            "sim_peak_rss_mib": shwm,
            "sim_rss_mib": srss,
            "sim_rss_per_node_kib": srss * 1024.0 / n as f64,
            "flows_min": ts.min_flows,
            "flows_mean": ts.total_flows as f64 / n as f64,
            "flows_max": ts.max_flows,
            "flows_total": ts.total_flows,
            "groups_total": ts.total_groups,
            "tunnels_mean": ts.tunnels as f64 / n as f64,
            "flow_table_bytes_per_node": ts.flow_bytes as f64 / n as f64,
            "checked_nodes": checks.len(),
            "checked_equal": matched,
            "nodes_recompiled": counters.get("weft_nodes_recompiled_total"),
            "compile_s": counters.get("weft_compile_seconds_sum"),
        },
    });
    if last && cli.storm {
        out["reconnect_storm"] = storm(&c, &sample).await?;
    }
    if last && cli.incremental > 0 {
        out["incremental"] = incremental(&c, cli.incremental, cli.batch).await?;
    }
    let (whwm, _) = c.weftd.memory_mib().unwrap_or_default();
    out["weftd_peak_rss_mib_end"] = json!(whwm);
    tokio::task::block_in_place(|| c.stop());
    Ok(out)
}

/// Every node drops both connections at once and reconnects; time until every node has
/// a fresh OVSDB monitor and a fresh OpenFlow session whose flows weftd has dumped and
/// reconciled, with `weft-installed` still set and the sampled tables equal to desired.
async fn storm(c: &Cluster, sample: &[usize]) -> anyhow::Result<Value> {
    eprintln!(
        "  reconnect storm: {} nodes drop OVSDB and OpenFlow at once",
        c.nodes.len()
    );
    let before: Vec<(u64, u64)> = c
        .nodes
        .iter()
        .map(|n| {
            let st = n.lock();
            (st.counters.ovsdb_connects, st.counters.openflow_connects)
        })
        .collect();
    let tables_before: Vec<_> = c.nodes.iter().map(|n| n.lock().tables.clone()).collect();
    let cpu0 = c.weftd.cpu_seconds().unwrap_or(0.0);
    let t0 = Instant::now();
    for ctl in &c.controls {
        ctl.reconnect_now();
    }
    let resynced = weft_sim::wait::until_none(
        "nodes not resynced",
        Duration::from_secs(1800),
        Duration::from_millis(100),
        || {
            c.nodes
                .iter()
                .zip(&before)
                .filter(|(n, connects)| !n.lock().resynced_since(**connects))
                .count()
        },
    )
    .await;
    if let Err(pending) = resynced {
        anyhow::bail!("{pending} nodes never resynced");
    }
    let resync = t0.elapsed();
    let (settle, checks) = c.wait_checked(sample, Duration::from_secs(300)).await;
    let matched = checks.iter().filter(|x| x.ok()).count();
    let cpu = c.weftd.cpu_seconds().unwrap_or(0.0) - cpu0;
    let (mods, dumps): (u64, u64) = c.nodes.iter().fold((0, 0), |(m, d), n| {
        let st = n.lock();
        (
            m + st.switch_stats.flow_mods + st.switch_stats.group_mods,
            d + st.switch_stats.flow_dumps,
        )
    });
    // Which nodes were sent something, and whether their tables ended where they began
    // (churn: a flow deleted and added back) or elsewhere (a desired state that changed).
    let mut modified: Vec<String> = Vec::new();
    let mut changed = 0usize;
    for (n, before) in c.nodes.iter().zip(&tables_before) {
        let st = n.lock();
        if st.switch_stats.flow_mods + st.switch_stats.group_mods > 0 {
            modified.push(st.spec.system_id.clone());
        }
        if st.tables.flows() != before.flows() || st.tables.groups() != before.groups() {
            changed += 1;
        }
    }
    eprintln!(
        "  reconnect storm: {} nodes were sent flow/group mods (e.g. {:?}); {changed} nodes' tables differ from before the storm",
        modified.len(),
        &modified[..modified.len().min(8)]
    );
    eprintln!(
        "  reconnect storm: resynced in {:.2} s (+{:.2} s until sampled tables equal, {matched}/{}); weftd {:.1} CPU s; {mods} flow/group mods sent after reconnect, {dumps} dumps",
        resync.as_secs_f64(),
        settle.as_secs_f64(),
        checks.len(),
        cpu
    );
    anyhow::ensure!(
        matched == checks.len(),
        "honesty check failed after the storm"
    );
    Ok(json!({
        "resync_s": resync.as_secs_f64(),
        "flows_match_s": (resync + settle).as_secs_f64(),
        "weftd_cpu_s": cpu,
        "mods_after_reconnect": mods,
        "nodes_modified": modified.len(),
        "nodes_tables_changed": changed,
        "dumps": dumps,
        "checked_equal": matched,
    }))
}

/// Port creation on the 64-node switch: `runs` one at a time, then `batch` at once.
async fn incremental(c: &Cluster, runs: usize, batch: usize) -> anyhow::Result<Value> {
    let big = c
        .scenario
        .big_switch
        .context("no 64-port switch in this scenario")?;
    let sw = c.scenario.switches[big].clone();
    // Nodes that host the switch's ports.
    let mut hosts: Vec<usize> = Vec::new();
    for (i, n) in c.scenario.nodes.iter().enumerate() {
        let has = n.vifs.iter().any(|(_, p, _)| {
            c.scenario
                .ports
                .iter()
                .any(|lp| &lp.name == p && lp.switch == sw.id)
        });
        if has {
            hosts.push(i);
        }
    }
    eprintln!(
        "  incremental: switch {} spans {} nodes",
        sw.name,
        hosts.len()
    );
    let mut times = Vec::new();
    let mut api_times = Vec::new();
    let mut serial = 0usize;
    for r in 0..runs {
        let t = Instant::now();
        let host = hosts[r % hosts.len()];
        create_and_bind(c, &sw.name, host, serial).await?;
        api_times.push(t.elapsed().as_secs_f64());
        wait_ports(c, &hosts, &[(host, serial)]).await?;
        times.push(t.elapsed().as_secs_f64());
        serial += 1;
    }
    times.sort_by(f64::total_cmp);
    api_times.sort_by(f64::total_cmp);
    let mut out = json!({
        "switch_nodes": hosts.len(),
        "runs": runs,
        "p50_s": percentile(&times, 0.5),
        "p99_s": percentile(&times, 0.99),
        "max_s": times.last().copied().unwrap_or(f64::NAN),
        "api_p50_s": percentile(&api_times, 0.5),
        "api_p99_s": percentile(&api_times, 0.99),
    });
    eprintln!(
        "  incremental: {runs} single ports: p50 {:.3} s, p99 {:.3} s (API call p50 {:.3} s)",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&api_times, 0.5)
    );
    if batch > 0 {
        let t = Instant::now();
        let mut created = Vec::new();
        let futs: Vec<_> = (0..batch)
            .map(|k| {
                let host = hosts[k % hosts.len()];
                created.push((host, serial + k));
                create_and_bind(c, &sw.name, host, serial + k)
            })
            .collect();
        for r in futures::future::join_all(futs).await {
            r?;
        }
        let api = t.elapsed().as_secs_f64();
        wait_ports(c, &hosts, &created).await?;
        let all = t.elapsed().as_secs_f64();
        eprintln!(
            "  incremental: {batch} ports at once: all installed everywhere in {all:.3} s (API calls done after {api:.3} s)"
        );
        out["batch"] = json!({"ports": batch, "all_installed_s": all, "api_s": api});
    }
    Ok(out)
}

fn inc_mac(serial: usize) -> String {
    let b = (serial as u32).to_be_bytes();
    format!("02:88:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
}

async fn create_and_bind(
    c: &Cluster,
    switch: &str,
    host: usize,
    serial: usize,
) -> anyhow::Result<()> {
    let name = format!("inc{serial:05}");
    let mac = inc_mac(serial);
    let ip = format!("172.16.{}.{}", serial / 250, serial % 250 + 1);
    c.call(
        "port_create",
        json!({"switch": switch, "name": name, "mac": mac, "ips": [ip]}),
    )
    .await?;
    c.nodes[host].add_vif(&format!("vmi{serial}"), &name, &mac, &c.controls[host]);
    Ok(())
}

/// Waits until each new port is `weft-installed` on its host and every host's table has a
/// flow matching the port's MAC. A (port, host) pair seen done is not looked at again.
async fn wait_ports(c: &Cluster, hosts: &[usize], ports: &[(usize, usize)]) -> anyhow::Result<()> {
    let t = Instant::now();
    let mut done: std::collections::HashSet<(usize, usize)> = Default::default();
    let mut marked: std::collections::HashSet<usize> = Default::default();
    let mut macs = std::collections::HashMap::new();
    for (_, serial) in ports {
        let mac: openflow::Mac = inc_mac(*serial)
            .parse()
            .map_err(|e| anyhow::anyhow!("the benchmark's own MAC: {e}"))?;
        macs.insert(*serial, mac);
    }
    loop {
        let mut all = true;
        // The MACs each host's table looks up, read once per poll and host.
        let mut seen: std::collections::HashMap<usize, std::collections::HashSet<openflow::Mac>> =
            Default::default();
        for (host, serial) in ports {
            if !marked.contains(serial) {
                let name = format!("inc{serial:05}");
                if c.nodes[*host].lock().installed().get(&name) != Some(&true) {
                    all = false;
                    continue;
                }
                marked.insert(*serial);
            }
            let mac = macs[serial];
            for h in hosts {
                if done.contains(&(*serial, *h)) {
                    continue;
                }
                let macs = seen
                    .entry(*h)
                    .or_insert_with(|| c.nodes[*h].lock().tables.eth_dsts());
                if macs.contains(&mac) {
                    done.insert((*serial, *h));
                } else {
                    all = false;
                }
            }
        }
        if all {
            return Ok(());
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(300),
            "new ports never installed everywhere"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn print_table(results: &[Value]) {
    println!();
    println!(
        "{:>6} {:>7} {:>7} {:>11} {:>11} {:>10} {:>12} {:>10} {:>10} {:>12}",
        "nodes",
        "switch",
        "ports",
        "installed_s",
        "flows_eq_s",
        "weftd_cpu",
        "weftd_hwm_MiB",
        "flows/node",
        "sim_MiB",
        "sim_KiB/node"
    );
    for r in results {
        let cs = &r["cold_start"];
        println!(
            "{:>6} {:>7} {:>7} {:>11.2} {:>11.2} {:>10.1} {:>12.0} {:>10.0} {:>10.0} {:>12.0}",
            r["nodes"],
            r["switches"],
            r["ports"],
            cs["installed_s"].as_f64().unwrap_or(f64::NAN),
            cs["flows_match_s"].as_f64().unwrap_or(f64::NAN),
            cs["weftd_cpu_s"].as_f64().unwrap_or(f64::NAN),
            cs["weftd_peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
            cs["flows_mean"].as_f64().unwrap_or(f64::NAN),
            cs["sim_rss_mib"].as_f64().unwrap_or(f64::NAN),
            cs["sim_rss_per_node_kib"].as_f64().unwrap_or(f64::NAN),
        );
    }
    for r in results {
        if let Some(s) = r.get("reconnect_storm") {
            println!(
                "reconnect storm at {} nodes: resync {:.2} s, tables equal at {:.2} s, weftd {:.1} CPU s",
                r["nodes"],
                s["resync_s"].as_f64().unwrap_or(f64::NAN),
                s["flows_match_s"].as_f64().unwrap_or(f64::NAN),
                s["weftd_cpu_s"].as_f64().unwrap_or(f64::NAN)
            );
        }
        if let Some(i) = r.get("incremental") {
            println!(
                "incremental at {} nodes ({}-node switch): {} single ports p50 {:.3} s p99 {:.3} s; batch {}",
                r["nodes"],
                i["switch_nodes"],
                i["runs"],
                i["p50_s"].as_f64().unwrap_or(f64::NAN),
                i["p99_s"].as_f64().unwrap_or(f64::NAN),
                i.get("batch").map(|b| b.to_string()).unwrap_or_default()
            );
        }
    }
}

fn print_cluster_table(results: &[Value]) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    println!();
    println!(
        "{:>6} {:>5} {:>11} {:>11} {:>24} {:>22} {:>18} {:>11} {:>10} {:>8}",
        "nodes",
        "inst",
        "installed_s",
        "flows_eq_s",
        "cpu_s per instance",
        "peak_RSS_MiB per inst",
        "owned per inst",
        "projected_s",
        "takeover_s",
        "mods"
    );
    for r in results {
        let cs = &r["cold_start"];
        let per: &[Value] = cs["per_instance"].as_array().map_or(&[], Vec::as_slice);
        let join = |key: &str, prec: usize| {
            per.iter()
                .map(|p| format!("{:.prec$}", f(&p[key])))
                .collect::<Vec<_>>()
                .join("/")
        };
        let owned = per
            .iter()
            .map(|p| p["nodes_owned"].to_string())
            .collect::<Vec<_>>()
            .join("/");
        let tk = &r["takeover"];
        println!(
            "{:>6} {:>5} {:>11.2} {:>11.2} {:>24} {:>22} {:>18} {:>11.1} {:>10.2} {:>8}",
            r["nodes"].to_string(),
            r["instances"].to_string(),
            f(&cs["installed_s"]),
            f(&cs["flows_match_s"]),
            join("cpu_s", 1),
            join("peak_rss_mib", 0),
            owned,
            f(&cs["projected_one_machine_each_s"]),
            f(&tk["all_s"]),
            tk["mods_sent"].to_string(),
        );
    }
}
