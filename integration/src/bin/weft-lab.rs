//! `weft-lab`: bring a real-OVS lab up for demos and manual testing, and take it down.
//!
//! ```text
//! weft-lab up --hypervisors 3 --manager tcp:IP:6640 [--encap vxlan] [--vms-per-hv 2]
//! weft-lab list | down [--id ID] | cleanup | bench [--sizes 2,4,8]
//! ```
//! `up` leaves the lab running after it exits (marked as kept, so `cleanup` from test runs
//! spares it); `down` removes kept labs. `bench` measures bring-up/teardown time and the
//! daemons' memory for each size.

use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use integration::lab::{Encap, Lab, LabId, VmSpec};

#[derive(Parser)]
#[command(
    name = "weft-lab",
    about = "Real Open vSwitch lab: hypervisors in network namespaces"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum EncapArg {
    Geneve,
    Vxlan,
}

#[derive(Subcommand)]
enum Command {
    /// Build a lab and leave it running.
    Up {
        /// Number of hypervisors.
        #[arg(long, default_value_t = 2)]
        hypervisors: usize,
        /// Encapsulation the hypervisors advertise.
        #[arg(long, value_enum, default_value_t = EncapArg::Geneve)]
        encap: EncapArg,
        /// OVSDB manager target for every hypervisor, e.g. tcp:10.100.0.254:6640
        /// (the controller address is printed; `CONTROLLER` is replaced by it).
        #[arg(long)]
        manager: Option<String>,
        /// VMs to plug into each hypervisor (named hvN-vmM, IP 192.168.N.M/16).
        #[arg(long, default_value_t = 0)]
        vms_per_hv: usize,
    },
    /// Remove kept labs (all of them, or the one given).
    Down {
        /// Lab id as printed by `up`/`list`.
        #[arg(long)]
        id: Option<String>,
    },
    /// List kept labs.
    List,
    /// Remove leftovers of labs whose creating process died.
    Cleanup,
    /// Measure bring-up and teardown time and per-hypervisor memory.
    Bench {
        /// Comma-separated hypervisor counts.
        #[arg(long, value_delimiter = ',', default_value = "2,4,8")]
        sizes: Vec<usize>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Up {
            hypervisors,
            encap,
            manager,
            vms_per_hv,
        } => up(hypervisors, encap, manager, vms_per_hv),
        Command::Down { id } => {
            let ids = match id {
                Some(text) => {
                    vec![LabId::parse(&text).with_context(|| format!("`{text}` is not a lab id"))?]
                }
                None => Lab::kept_labs(),
            };
            for id in ids {
                Lab::destroy(id);
                println!("removed lab {id}");
            }
            Ok(())
        }
        Command::List => {
            for id in Lab::kept_labs() {
                println!("{id}");
            }
            Ok(())
        }
        Command::Cleanup => {
            for id in Lab::cleanup_stale() {
                println!("removed stale lab {id}");
            }
            Ok(())
        }
        Command::Bench { sizes } => bench(&sizes),
    }
}

fn up(n: usize, encap: EncapArg, manager: Option<String>, vms_per_hv: usize) -> anyhow::Result<()> {
    if vms_per_hv > 250 {
        bail!("--vms-per-hv must be at most 250");
    }
    let encap = match encap {
        EncapArg::Geneve => Encap::Geneve,
        EncapArg::Vxlan => Encap::Vxlan,
    };
    let started = Instant::now();
    let lab = Lab::builder().hypervisors(n).encap(encap).build()?;
    let ctl = lab.controller_ip().to_string();
    for hv in lab.hypervisors() {
        for m in 1..=vms_per_hv {
            let h = hv.number();
            let spec = VmSpec::new(
                &format!("hv{h}-vm{m}"),
                &format!("02:00:00:00:{h:02x}:{m:02x}"),
                &format!("hv{h}-vm{m}"),
            )
            .addr(&format!("192.168.{h}.{m}/16"))?;
            lab.plug_vm(hv, spec)?;
        }
        if let Some(target) = &manager {
            hv.set_manager(&target.replace("CONTROLLER", &ctl))?;
        }
    }
    println!(
        "lab {} up in {:.2} s: {n} hypervisors, encap {}",
        lab.id(),
        started.elapsed().as_secs_f64(),
        encap.as_str()
    );
    println!("controller address (listen/advertise here): {ctl}");
    for hv in lab.hypervisors() {
        let run = hv.dir().join("run");
        println!(
            "  {} netns {} transport {}  ovs: OVS_RUNDIR={} ovs-vsctl --db={} show",
            hv.name(),
            hv.netns(),
            hv.transport_ip(),
            run.display(),
            hv.db_target()
        );
    }
    for vm in lab.vms() {
        println!("  vm {} netns {}", vm.name(), vm.netns());
    }
    let id = lab.keep()?;
    println!("remove with: weft-lab down --id {id}");
    Ok(())
}

fn bench(sizes: &[usize]) -> anyhow::Result<()> {
    println!(
        "{:>4} {:>9} {:>11} {:>14} {:>14}",
        "hvs", "up_s", "teardown_s", "ovsdb_kib/hv", "vswitchd_kib/hv"
    );
    for &n in sizes {
        let t = Instant::now();
        let lab = Lab::builder().hypervisors(n).build()?;
        let up = t.elapsed();
        let mem = lab.memory()?;
        let count = mem.len().max(1) as u64;
        let ovsdb: u64 = mem.iter().map(|m| m.ovsdb_server_kib).sum::<u64>() / count;
        let vswitchd: u64 = mem.iter().map(|m| m.vswitchd_kib).sum::<u64>() / count;
        let t = Instant::now();
        drop(lab);
        let down = t.elapsed();
        println!(
            "{n:>4} {:>9.2} {:>11.2} {ovsdb:>14} {vswitchd:>14}",
            up.as_secs_f64(),
            down.as_secs_f64()
        );
    }
    Ok(())
}
