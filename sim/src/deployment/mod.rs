//! A simulated deployment in cluster mode (DESIGN.md §7): a private 3-member etcd cluster
//! on loopback holding the scenario's logical model, K weftd instances started with
//! `--etcd` and distinct `--instance` names and ports, and every simulated node naming
//! every instance as its manager (as `ovs-vsctl set-manager tcp:C1 tcp:C2 …` would) and
//! connecting OpenFlow to every Controller target weftd writes, roles arbitrated as OVS
//! does. [`measure`] runs the multi-instance bench on it: cold start, per-instance CPU
//! and memory, and the takeover after one instance is SIGKILLed.

pub mod measure;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use weft::model::LogicalModel;

use crate::etcd::EtcdCluster;
use crate::node::{Node, NodeControl, SimSettings};
use crate::scenario::Scenario;
use crate::weftd::Weftd;

/// Where the deployment keeps its model in etcd.
const ETCD_PREFIX: &str = "/weft-sim";
/// Members of the etcd cluster.
const ETCD_MEMBERS: usize = 3;

/// Options for [`Deployment::prepare`].
#[derive(Debug, Clone)]
pub struct DeploymentOptions {
    pub nodes: usize,
    pub instances: usize,
    /// weftd's log filter.
    pub log: String,
    /// Where to keep the run directory (etcd data, one directory per instance).
    pub base_dir: Option<std::path::PathBuf>,
    pub keep: bool,
    pub router_every: usize,
    /// `--owner-lease` seconds.
    pub owner_lease: u64,
    /// Further weftd arguments.
    pub weftd_args: Vec<String>,
}

/// One weftd instance; `weftd` is `None` once it was killed.
pub struct Instance {
    pub name: String,
    pub weftd: Option<Weftd>,
    /// Its JSON API (and `/metrics`).
    pub api: SocketAddr,
    /// Its advertised OpenFlow target (how a node's connection names it).
    pub openflow: SocketAddr,
    pub ovsdb: SocketAddr,
}

/// A running multi-instance deployment.
pub struct Deployment {
    pub scenario: Scenario,
    pub model: LogicalModel,
    pub instances: Vec<Instance>,
    pub nodes: Vec<Node>,
    pub controls: Vec<NodeControl>,
    /// Seconds spent writing the model into etcd, and the etcd transactions it took.
    pub model_write_secs: f64,
    pub model_write_txns: u64,
    pub shutdown: CancellationToken,
    // Dropped after the instances (fields drop in order): etcd outlives weftd.
    pub etcd: EtcdCluster,
    _dir: tempfile::TempDir,
}

impl Deployment {
    /// Starts etcd, writes the model, starts the instances and builds the nodes (not yet
    /// connected: call [`Deployment::connect_all`]).
    pub async fn prepare(
        opts: &DeploymentOptions,
    ) -> anyhow::Result<(Deployment, Arc<Value>, Arc<SimSettings>)> {
        anyhow::ensure!(opts.instances >= 1, "at least one instance");
        let (schema_json, schema) = crate::load_schema_json()?;
        let mut dir = match &opts.base_dir {
            Some(b) => tempfile::Builder::new()
                .prefix("weft-sim-cluster-")
                .tempdir_in(b)?,
            None => tempfile::Builder::new()
                .prefix("weft-sim-cluster-")
                .tempdir()?,
        };
        dir.disable_cleanup(opts.keep);
        let scenario = Scenario::generate(opts.nodes).with_routers(opts.router_every);
        let model = scenario
            .model()
            .context("generated model is inconsistent")?;
        let mut etcd = EtcdCluster::start(ETCD_MEMBERS, dir.path()).await?;
        let t = Instant::now();
        let model_write_txns = etcd
            .write_model(ETCD_PREFIX, &model, &scenario.changes())
            .await?;
        let model_write_secs = t.elapsed().as_secs_f64();
        let bin = crate::weftd::find_weftd()?;
        let endpoints = etcd.endpoints().join(",");
        let mut instances = Vec::new();
        for i in 1..=opts.instances {
            let name = format!("c{i}");
            let data = dir.path().join(&name).join("data");
            std::fs::create_dir_all(&data)
                .with_context(|| format!("creating {}", data.display()))?;
            let mut args = vec![
                "--etcd".to_string(),
                endpoints.clone(),
                "--etcd-prefix".into(),
                ETCD_PREFIX.into(),
                "--instance".into(),
                name.clone(),
                "--owner-lease".into(),
                opts.owner_lease.to_string(),
            ];
            args.extend(opts.weftd_args.iter().cloned());
            let w = tokio::task::block_in_place(|| Weftd::start(&bin, &data, &opts.log, &args))
                .with_context(|| format!("starting instance {name}"))?;
            instances.push(Instance {
                name,
                api: w.api,
                openflow: w.openflow,
                ovsdb: w.ovsdb,
                weftd: Some(w),
            });
        }
        let nodes: Vec<Node> = scenario
            .nodes
            .iter()
            .map(|s| Node::new(s.clone(), schema.clone()))
            .collect();
        let settings = Arc::new(SimSettings::with_managers(
            instances.iter().map(|i| i.ovsdb).collect(),
        ));
        Ok((
            Deployment {
                scenario,
                model,
                instances,
                nodes,
                controls: Vec::new(),
                model_write_secs,
                model_write_txns,
                shutdown: CancellationToken::new(),
                etcd,
                _dir: dir,
            },
            schema_json,
            settings,
        ))
    }

    /// Starts every node's tasks at once (inside a tokio runtime).
    pub fn connect_all(&mut self, schema_json: Arc<Value>, settings: Arc<SimSettings>) {
        self.controls = self
            .nodes
            .iter()
            .map(|n| {
                crate::node::spawn(
                    n,
                    settings.clone(),
                    schema_json.clone(),
                    false,
                    self.shutdown.clone(),
                )
            })
            .collect();
    }

    /// Which instance (index) each node's master connection goes to, if any.
    pub fn owners(&self) -> Vec<Option<usize>> {
        self.nodes
            .iter()
            .map(|n| {
                let (target, _) = n.lock().master()?;
                self.instances.iter().position(|i| i.openflow == target)
            })
            .collect()
    }

    /// Nodes owned (OpenFlow master) per instance.
    pub fn owned_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.instances.len()];
        for i in self.owners().into_iter().flatten() {
            counts[i] += 1;
        }
        counts
    }

    /// Per instance, the nodes whose database it monitors beyond the root row (the
    /// `Bridge` table): in cluster mode only an owner follows the whole bridge, a
    /// standby watches the root row alone. Instance `i` is the node's manager `i`, its
    /// OVSDB connection number `i + 1`.
    pub fn whole_monitors(&self) -> Vec<usize> {
        let mut counts = vec![0; self.instances.len()];
        for n in &self.nodes {
            let st = n.lock();
            for (i, c) in counts.iter_mut().enumerate() {
                if st.db.monitors_table(i as u64 + 1, "Bridge") {
                    *c += 1;
                }
            }
        }
        counts
    }

    /// Master requests granted over all nodes (each node's first master and every
    /// handover after it).
    pub fn masters_granted(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| {
                let roles = n.lock().roles.clone();
                let r = roles.lock().unwrap_or_else(|e| e.into_inner());
                r.masters_granted
            })
            .sum()
    }

    /// Flow dumps each instance made over its connections to all nodes (current
    /// connections: a reconnect starts counting again).
    pub fn flow_dumps(&self) -> Vec<u64> {
        let mut out = vec![0; self.instances.len()];
        for n in &self.nodes {
            let st = n.lock();
            for (i, inst) in self.instances.iter().enumerate() {
                out[i] += st
                    .openflow
                    .get(&inst.openflow)
                    .map_or(0, |c| c.stats.flow_dumps);
            }
        }
        out
    }

    /// Waits until every node has all VIFs `weft-installed` and a master; the time taken,
    /// or how many nodes were missing after `timeout`.
    pub async fn wait_installed(&self, timeout: Duration) -> Result<Duration, usize> {
        let what = format!(
            "of {} nodes not installed (or without a master)",
            self.nodes.len()
        );
        let pause = crate::wait::node_poll_pause(self.nodes.len());
        crate::wait::until_none(&what, timeout, pause, || {
            self.nodes
                .iter()
                .filter(|n| {
                    let st = n.lock();
                    !st.all_installed() || st.master().is_none()
                })
                .count()
        })
        .await
    }

    /// CPU seconds of each live instance (`None` for a killed one).
    pub fn cpu_seconds(&self) -> Vec<Option<f64>> {
        self.instances
            .iter()
            .map(|i| i.weftd.as_ref().and_then(Weftd::cpu_seconds))
            .collect()
    }

    /// Peak RSS (VmHWM, MiB) of each live instance.
    pub fn peak_rss_mib(&self) -> Vec<Option<f64>> {
        self.instances
            .iter()
            .map(|i| i.weftd.as_ref().and_then(Weftd::memory_mib).map(|m| m.0))
            .collect()
    }

    /// SIGKILLs instance `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(w) = self.instances.get_mut(i).and_then(|x| x.weftd.take()) {
            w.kill();
        }
    }

    /// Stops the nodes and the instances (SIGTERM); etcd stops when dropped.
    pub fn stop(mut self) {
        self.shutdown.cancel();
        for i in &mut self.instances {
            if let Some(w) = i.weftd.take() {
                w.stop();
            }
        }
    }
}

impl Drop for Deployment {
    /// Also on failure: the nodes' tasks end with the deployment (weftd and etcd are
    /// killed by their own handles).
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
