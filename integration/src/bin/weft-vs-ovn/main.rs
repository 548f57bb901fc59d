//! `weft-vs-ovn`: Weft and OVN 23.03 side by side on identical real-OVS namespace labs, in
//! one invocation per set of sizes (the instrument of issues 18 and 21).
//!
//! ```text
//! WEFTD=target/release/weftd weft-vs-ovn --hypervisors 4,16 --reps 10 [--heavy-reps 3]
//! ```
//! For each size: a Weft lab (weftd spawned from `$WEFTD`) is built, measured and torn
//! down, then an OVN lab (Debian's `ovn-central`/`ovn-host` binaries run privately), and a
//! markdown table `row | Weft | OVN | ratio` is printed. Needs root, Open vSwitch and OVN.
//! Not part of any test command: it takes minutes and owns the machine's cores meanwhile.

mod coverage;
mod ovn;
mod plane;
mod rows;
mod stats;
mod watch;
mod weft;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use integration::lab::{Encap, Lab};

use crate::plane::Plane;
use crate::stats::{Row, Summary};

#[derive(Parser)]
#[command(
    name = "weft-vs-ovn",
    about = "Weft vs OVN 23.03 on identical namespace labs (set WEFTD to a weftd binary)"
)]
struct Cli {
    /// Lab sizes (number of hypervisors), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4")]
    hypervisors: Vec<usize>,
    /// Repetitions of the single-port rows (median and p95).
    #[arg(long, default_value_t = 10)]
    reps: usize,
    /// Repetitions of the batch and restart rows (median).
    #[arg(long, default_value_t = 3)]
    heavy_reps: usize,
    /// Which planes to run (for debugging one side; the comparison needs both).
    #[arg(long, value_delimiter = ',', default_value = "weft,ovn")]
    planes: Vec<String>,
    /// Idle window for the hypervisors' CPU row, seconds.
    #[arg(long, default_value_t = 20)]
    idle_secs: u64,
    /// Also print what grew in the hypervisors' `ovs-appctl coverage/show` counters over
    /// the idle window and each batch (load-insensitive: why their CPU differs).
    #[arg(long)]
    coverage: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let weftd = PathBuf::from(
        std::env::var_os("WEFTD").context("set WEFTD to a weftd binary (a release build)")?,
    );
    if !weftd.is_file() {
        bail!("WEFTD={} is not a file", weftd.display());
    }
    for tool in ["ovn-northd", "ovn-controller", "ovn-nbctl", "ovsdb-server"] {
        if !in_path(tool) {
            bail!("{tool} not found: apt-get install -y ovn-central ovn-host");
        }
    }
    if cli.hypervisors.iter().any(|&n| !(2..=200).contains(&n)) {
        bail!("--hypervisors: each size must be 2..=200");
    }
    if !(1..=250).contains(&cli.reps) || !(1..=9).contains(&cli.heavy_reps) {
        bail!("--reps must be 1..=250 and --heavy-reps 1..=9 (they number MACs and IPs)");
    }
    let reps = rows::Reps {
        single: cli.reps,
        heavy: cli.heavy_reps,
        idle: Duration::from_secs(cli.idle_secs),
        coverage: cli.coverage,
    };
    for &n in &cli.hypervisors {
        let run = |p: &str| cli.planes.iter().any(|x| x == p);
        let weft = match run("weft") {
            true => measure(n, &reps, |lab| {
                Ok(Box::new(weft::Weft::start(&weftd, lab)?))
            })?,
            false => rows::Results::new(),
        };
        let ovn = match run("ovn") {
            true => measure(n, &reps, |lab| Ok(Box::new(ovn::Ovn::start(lab)?)))?,
            false => rows::Results::new(),
        };
        let table = table(&weft, &ovn, &reps);
        println!(
            "\n### N={n} hypervisors (Geneve, userspace OVS); single-port rows {} reps (median (p95)), batch and restart rows {} reps (median)\n\n{table}",
            reps.single, reps.heavy
        );
    }
    Ok(())
}

/// Whether `program` is an executable file in `$PATH` or the sbin directories.
fn in_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| d.join(program).is_file())
}

/// Builds a lab of `n` hypervisors, starts a plane on it, runs every row; the plane is
/// dropped (its processes killed) before the lab.
fn measure<F>(n: usize, reps: &rows::Reps, start: F) -> Result<rows::Results>
where
    F: FnOnce(&Lab) -> Result<Box<dyn Plane>>,
{
    let lab = Lab::builder().hypervisors(n).encap(Encap::Geneve).build()?;
    let mut plane = start(&lab)?;
    let res = rows::run(plane.as_mut(), &lab, reps);
    if res.is_err() && plane.label() == "OVN" {
        eprintln!(
            "ovn-controller hv1 log tail:\n{}",
            ovn::log_tail(&lab, "hv1")
        );
    }
    drop(plane);
    drop(lab);
    res.with_context(|| format!("N={n}"))
}

fn table(weft: &rows::Results, ovn: &rows::Results, reps: &rows::Reps) -> String {
    let rows: Vec<Row> = rows::ROWS
        .iter()
        .map(|(id, label, single)| {
            let summary = if *single && reps.single > 1 {
                Summary::MedianP95
            } else {
                Summary::Median
            };
            let label = label.replace("20 s idle", &format!("{} s idle", reps.idle.as_secs()));
            let mut row = Row::new(&label, summary);
            row.weft = weft.get(id).cloned().unwrap_or_default();
            row.ovn = ovn.get(id).cloned().unwrap_or_default();
            row
        })
        .collect();
    stats::markdown(&rows)
}
