//! weft-api-bench: API write latency with etcd against redb (issue 19; see sim/README.md).
//!
//! Starts, one after the other, weftd on its embedded redb store, weftd on a private
//! 3-member etcd cluster on loopback, and three weftd on that cluster taking the writes
//! in turn; times sequential JSON-RPC writes (and a concurrent variant) on each, checks
//! every instance reads back what was acknowledged, and prints a table. Fails when a
//! write was not acknowledged or not read back.

use anyhow::Context;
use clap::Parser;
use weft_sim::api_latency::{self, Backend, LatencyOptions, report};

#[derive(Parser, Debug)]
#[command(
    name = "weft-api-bench",
    about = "API write latency on each store backend (redb, etcd)"
)]
struct Cli {
    /// Writes per operation (switch_create, port_create, port_delete, concurrent
    /// port_create).
    #[arg(long, default_value_t = 500)]
    writes: usize,
    /// Clients writing at once in the concurrent phase; 0 skips it.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Backends, in order: redb, etcd (one instance), etcdK (K instances, round-robin).
    #[arg(long, default_value = "redb,etcd,etcd3", value_delimiter = ',')]
    backends: Vec<Backend>,
    /// Where to put the run directory (weftd logs, etcd data).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Keep the run directory afterwards.
    #[arg(long)]
    keep: bool,
    /// Read each created switch or port at the next instance as soon as its write is
    /// answered (untimed; a check, it paces the writes).
    #[arg(long)]
    read_each: bool,
    /// JSON output file.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = weft_sim::bench_runtime()?;
    let opts = LatencyOptions {
        writes: cli.writes,
        clients: cli.clients,
        backends: cli.backends,
        base_dir: cli.dir,
        keep: cli.keep,
        read_each: cli.read_each,
    };
    let reports = rt.block_on(api_latency::run(&opts))?;
    println!(
        "API write latency: {} writes per operation, request to acknowledged answer",
        cli.writes
    );
    print!("{}", report::table(&reports));
    if let Some(out) = &cli.out {
        let text = serde_json::to_string_pretty(&report::json(&reports))?;
        std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    }
    let problems: Vec<String> = reports.iter().flat_map(|r| r.problems()).collect();
    if !problems.is_empty() {
        for p in problems.iter().take(20) {
            eprintln!("  {p}");
        }
        anyhow::bail!(
            "{} writes failed or were not read back as acknowledged",
            problems.len()
        );
    }
    Ok(())
}
