//! The multi-instance bench (`weft-bench --instances K`): cold start of K instances on
//! one etcd cluster, each instance's CPU seconds, peak RSS and owned nodes; then one
//! instance SIGKILLed and the time until the survivors own and have resynced its nodes,
//! with the flow mods that took (none are needed: nothing changed); and the cold start
//! projected for one instance per machine.
//!
//! The projection: on this machine the K instances and the simulator share the cores,
//! so the measured wall time is not what K machines would see. Each instance's work
//! (its CPU seconds over the cold start) is what it would spend on a machine of its own;
//! the slowest instance bounds the cluster's cold start from below, and, if an
//! instance's work were serial on one core, equals it. So the projection is the largest
//! per-instance CPU time, next to the measured wall time, and next to the single
//! instance's CPU time (run `--instances 1` at the same `--nodes`) it shows how the work
//! divides N ways.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use openflow::table::Group;
use serde_json::{Value, json};

use super::{Deployment, DeploymentOptions};
use crate::check::{NodeCheck, sample, wait_checked};

/// Runs the bench at `opts.nodes`; `kill` is the index of the instance to SIGKILL.
pub async fn run(
    opts: &DeploymentOptions,
    check: usize,
    timeout: Duration,
    kill: usize,
) -> anyhow::Result<Value> {
    eprintln!("== {} nodes, {} instances", opts.nodes, opts.instances);
    let t = Instant::now();
    let (mut d, schema, settings) = Deployment::prepare(opts).await?;
    eprintln!(
        "  config: {}; model written to etcd in {:.2} s ({} transactions); instances up after {:.2} s",
        d.scenario.shape(),
        d.model_write_secs,
        d.model_write_txns,
        t.elapsed().as_secs_f64()
    );
    let cpu0 = d.cpu_seconds();
    let t0 = Instant::now();
    d.connect_all(schema, settings);
    let cold = d.wait_installed(timeout).await.map_err(|missing| {
        anyhow::anyhow!(
            "{missing} nodes never converged with {} instances",
            opts.instances
        )
    })?;
    let checked = sample(d.nodes.len(), check, &[]);
    let (settle, checks) =
        wait_checked(&d.model, &d.nodes, &checked, Duration::from_secs(300)).await;
    ensure_equal(&checks, "cold start")?;
    let flows_at = t0.elapsed();
    let cold_cpu = minus(&d.cpu_seconds(), &cpu0);
    let owned = d.owned_counts();
    let whole = d.whole_monitors();
    let dumps = d.flow_dumps();
    let handovers = d.masters_granted().saturating_sub(d.nodes.len() as u64);
    let rss = d.peak_rss_mib();
    let mut counters = Vec::new();
    for inst in &d.instances {
        counters.push(super::metrics::read(inst.api).await);
    }
    let (sim_hwm, _) = crate::cluster::self_memory_mib().unwrap_or_default();
    let per_instance: Vec<Value> = d
        .instances
        .iter()
        .enumerate()
        .map(|(i, inst)| {
            json!({
                "instance": inst.name,
                "cpu_s": cold_cpu[i],
                "peak_rss_mib": rss[i],
                "nodes_owned": owned[i],
                "nodes_monitored_whole": whole[i],
                "flow_dumps": dumps[i],
                "nodes_recompiled": counters[i].get("weft_nodes_recompiled_total"),
                "compile_s": counters[i].get("weft_compile_seconds_sum"),
            })
        })
        .collect();
    let max_cpu = cold_cpu.iter().flatten().copied().fold(0.0, f64::max);
    let total_cpu: f64 = cold_cpu.iter().flatten().sum();
    eprintln!(
        "  cold start: all installed after {:.2} s, sampled tables equal the compiler's {:.2} s later ({}/{} match)",
        cold.as_secs_f64(),
        settle.as_secs_f64(),
        checks.len(),
        checks.len()
    );
    for v in &per_instance {
        eprintln!(
            "    {}: {:.1} CPU s, peak RSS {:.0} MiB, owns {} nodes (monitors {} whole), dumped flows {} times, recompiled nodes {} times in {:.2} s",
            v["instance"].as_str().unwrap_or("?"),
            v["cpu_s"].as_f64().unwrap_or(f64::NAN),
            v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
            v["nodes_owned"],
            v["nodes_monitored_whole"],
            v["flow_dumps"],
            v["nodes_recompiled"],
            v["compile_s"].as_f64().unwrap_or(f64::NAN)
        );
    }
    eprintln!(
        "  ownership handovers during the cold start (masters granted beyond one per node): {handovers}"
    );
    eprintln!(
        "  projected cold start with one instance per machine: {max_cpu:.1} s (largest per-instance CPU time; all instances together {total_cpu:.1} CPU s)"
    );
    let mut out = json!({
        "nodes": opts.nodes,
        "instances": opts.instances,
        "switches": d.scenario.switches.len(),
        "ports": d.scenario.ports.len(),
        "acls": d.scenario.acls.len(),
        "model_write_s": d.model_write_secs,
        "model_write_txns": d.model_write_txns,
        "owner_lease_s": opts.owner_lease,
        "cold_start": {
            "installed_s": cold.as_secs_f64(),
            "flows_match_s": flows_at.as_secs_f64(),
            "per_instance": per_instance,
            "ownership_handovers": handovers,
            "cpu_s_max": max_cpu,
            "cpu_s_total": total_cpu,
            "projected_one_machine_each_s": max_cpu,
            "sim_peak_rss_mib": sim_hwm,
            "checked_nodes": checks.len(),
        },
    });
    if opts.instances > 1 {
        out["takeover"] = takeover(&mut d, kill.min(opts.instances - 1), check, timeout).await?;
    }
    tokio::task::block_in_place(|| d.stop());
    Ok(out)
}

/// `now - before` per instance (`None` where either is unknown).
fn minus(now: &[Option<f64>], before: &[Option<f64>]) -> Vec<Option<f64>> {
    now.iter()
        .zip(before)
        .map(|(a, b)| Some((*a)? - (*b)?))
        .collect()
}

fn ensure_equal(checks: &[NodeCheck], when: &str) -> anyhow::Result<()> {
    for x in checks.iter().filter(|x| !x.ok()) {
        eprintln!(
            "  MISMATCH {}: {} differences, e.g. {:?}",
            x.node,
            x.differences.len(),
            x.differences.first()
        );
    }
    let bad = checks.iter().filter(|x| !x.ok()).count();
    anyhow::ensure!(
        bad == 0,
        "honesty check failed ({when}): {bad} of {} sampled nodes differ from compile_node",
        checks.len()
    );
    Ok(())
}

/// What a victim node looked like just before the kill.
struct Before {
    node: usize,
    /// Per controller target: (flow + group mods, flow dumps) of its connection so far.
    conns: BTreeMap<SocketAddr, (u64, u64)>,
    flows: usize,
    tables: (
        BTreeMap<openflow::FlowKey, openflow::FlowContent>,
        BTreeMap<u32, Group>,
    ),
}

/// SIGKILLs instance `victim`; times until every node it owned has a surviving master
/// whose connection dumped the flows since the kill, and every VIF is still installed.
async fn takeover(
    d: &mut Deployment,
    victim: usize,
    check: usize,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let owners = d.owners();
    let befores: Vec<Before> = owners
        .iter()
        .enumerate()
        .filter(|(_, o)| **o == Some(victim))
        .map(|(i, _)| {
            let st = d.nodes[i].lock();
            Before {
                node: i,
                conns: st
                    .openflow
                    .iter()
                    .map(|(t, c)| {
                        (
                            *t,
                            (c.stats.flow_mods + c.stats.group_mods, c.stats.flow_dumps),
                        )
                    })
                    .collect(),
                flows: st.tables.flow_count(),
                tables: (st.tables.flows(), st.tables.groups().clone()),
            }
        })
        .collect();
    let victim_target = d.instances[victim].openflow;
    let name = d.instances[victim].name.clone();
    eprintln!(
        "  takeover: SIGKILL {name}, which owns {} nodes",
        befores.len()
    );
    let cpu0 = d.cpu_seconds();
    let t0 = Instant::now();
    d.kill(victim);
    let mut done: Vec<Option<Duration>> = vec![None; befores.len()];
    let taken_over = crate::wait::until_none(
        "nodes not taken over",
        timeout,
        Duration::from_millis(20),
        || {
            for (k, b) in befores.iter().enumerate() {
                if done[k].is_some() {
                    continue;
                }
                let st = d.nodes[b.node].lock();
                let Some((target, conn)) = st.master() else {
                    continue;
                };
                let dumps_before = b.conns.get(&target).map_or(0, |c| c.1);
                if target != victim_target
                    && conn.stats.flow_dumps > dumps_before
                    && st.all_installed()
                {
                    done[k] = Some(t0.elapsed());
                }
            }
            done.iter().filter(|x| x.is_none()).count()
        },
    )
    .await;
    if let Err(pending) = taken_over {
        anyhow::bail!("{pending} of {name}'s nodes were never taken over");
    }
    let mut times: Vec<f64> = done.iter().flatten().map(Duration::as_secs_f64).collect();
    times.sort_by(f64::total_cmp);
    let all = times.last().copied().unwrap_or(0.0);
    let first = times.first().copied().unwrap_or(0.0);
    let victims: Vec<usize> = befores.iter().map(|b| b.node).collect();
    let mut checked = sample(victims.len(), check, &[]);
    checked.iter_mut().for_each(|i| *i = victims[*i]);
    let (settle, checks) =
        wait_checked(&d.model, &d.nodes, &checked, Duration::from_secs(300)).await;
    ensure_equal(&checks, "after the takeover")?;
    let cpu = minus(&d.cpu_seconds(), &cpu0);
    // Flow and group mods the new masters sent, and tables that ended elsewhere.
    let mut mods = 0u64;
    let mut changed = 0usize;
    for b in &befores {
        let st = d.nodes[b.node].lock();
        if let Some((target, conn)) = st.master() {
            let before = b.conns.get(&target).map_or(0, |c| c.0);
            mods += (conn.stats.flow_mods + conn.stats.group_mods).saturating_sub(before);
        }
        if st.tables.flows() != b.tables.0 || *st.tables.groups() != b.tables.1 {
            changed += 1;
        }
    }
    let flows: usize = befores.iter().map(|b| b.flows).sum();
    let owned_after = d.owned_counts();
    eprintln!(
        "  takeover: {} nodes owned and resynced by the survivors {first:.2}..{all:.2} s after the SIGKILL; sampled tables equal +{:.2} s ({}/{}); {mods} flow/group mods sent for their {flows} flows, {changed} tables changed; owned now {:?}",
        befores.len(),
        settle.as_secs_f64(),
        checks.len(),
        checks.len(),
        owned_after,
    );
    Ok(json!({
        "killed": name,
        "nodes": befores.len(),
        "first_s": first,
        "all_s": all,
        "p50_s": times.get(times.len() / 2).copied().unwrap_or(0.0),
        "flows_match_s": all + settle.as_secs_f64(),
        "mods_sent": mods,
        "flows_on_those_nodes": flows,
        "tables_changed": changed,
        "survivor_cpu_s": cpu,
        "owned_after": owned_after,
        "checked_equal": checks.len(),
    }))
}
