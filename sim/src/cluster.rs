//! A whole simulated deployment: the scenario written into a fresh store, weftd running
//! on it, and every simulated node started. Used by the `weft-bench` binary and the
//! storm test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use weft::model::LogicalModel;

use crate::check::NodeCheck;
use crate::node::{Node, NodeControl, SimSettings};
use crate::scenario::Scenario;
use crate::weftd::Weftd;

/// A running deployment.
pub struct Cluster {
    pub scenario: Scenario,
    pub model: LogicalModel,
    pub weftd: Weftd,
    pub nodes: Vec<Node>,
    pub controls: Vec<NodeControl>,
    pub api: HttpClient,
    /// Seconds spent writing the store before weftd started.
    pub store_write_secs: f64,
    pub shutdown: CancellationToken,
    /// Give up (kill weftd) when its resident memory passes this, in MiB, rather than let
    /// the kernel's OOM killer pick a victim on a shared machine.
    pub max_weftd_rss_mib: f64,
    _dir: tempfile::TempDir,
}

/// Options for [`Cluster::start`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub nodes: usize,
    /// weftd's log filter.
    pub log: String,
    /// Indexes of nodes whose switch stops reading after the first flow dump.
    pub stalled: Vec<usize>,
    /// Where to keep the run directory (store, weftd.log); a temp dir under it.
    pub base_dir: Option<std::path::PathBuf>,
    /// Keep the run directory afterwards (to read weftd.log).
    pub keep: bool,
    /// One router per this many consecutive switches (0: no routers).
    pub router_every: usize,
    /// Further weftd arguments (e.g. `--node-grace 5`).
    pub weftd_args: Vec<String>,
}

impl ClusterOptions {
    pub fn new(nodes: usize) -> Self {
        ClusterOptions {
            nodes,
            log: "warn".into(),
            stalled: Vec::new(),
            base_dir: None,
            keep: false,
            router_every: 0,
            weftd_args: Vec::new(),
        }
    }
}

impl Cluster {
    /// Writes the store, starts weftd and builds the nodes (not yet connected: call
    /// [`Cluster::connect_all`]).
    pub fn prepare(
        opts: &ClusterOptions,
    ) -> anyhow::Result<(Cluster, Arc<Value>, Arc<SimSettings>)> {
        let (schema_json, schema) = crate::load_schema_json()?;
        let mut dir = match &opts.base_dir {
            Some(b) => {
                // `--dir` names where runs go, as `--out` names a file: made if missing.
                std::fs::create_dir_all(b)
                    .map_err(|e| anyhow::anyhow!("run directory {}: {e}", b.display()))?;
                tempfile::Builder::new().prefix("weft-sim-").tempdir_in(b)?
            }
            None => tempfile::Builder::new().prefix("weft-sim-").tempdir()?,
        };
        dir.disable_cleanup(opts.keep);
        let data = dir.path().join("data");
        let scenario = Scenario::generate(opts.nodes).with_routers(opts.router_every);
        let model = scenario
            .model()
            .context("generated model is inconsistent")?;
        let t = Instant::now();
        scenario.write_store(&data)?;
        let store_write_secs = t.elapsed().as_secs_f64();
        let bin = crate::weftd::find_weftd()?;
        let weftd = Weftd::start(&bin, &data, &opts.log, &opts.weftd_args)?;
        let api = HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(120))
            .build(weftd.url())?;
        let nodes: Vec<Node> = scenario
            .nodes
            .iter()
            .map(|s| Node::new(s.clone(), schema.clone()))
            .collect();
        let settings = Arc::new(SimSettings::new(weftd.ovsdb));
        Ok((
            Cluster {
                scenario,
                model,
                weftd,
                nodes,
                controls: Vec::new(),
                api,
                store_write_secs,
                shutdown: CancellationToken::new(),
                max_weftd_rss_mib: f64::INFINITY,
                _dir: dir,
            },
            schema_json,
            settings,
        ))
    }

    /// Starts every node's tasks at once (inside a tokio runtime).
    pub fn connect_all(
        &mut self,
        schema_json: Arc<Value>,
        settings: Arc<SimSettings>,
        stalled: &[usize],
    ) {
        self.controls = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                crate::node::spawn(
                    n,
                    settings.clone(),
                    schema_json.clone(),
                    stalled.contains(&i),
                    self.shutdown.clone(),
                )
            })
            .collect();
    }

    /// Nodes (by index, except `skip`) whose VM interfaces are not all `weft-installed`.
    pub fn not_installed(&self, skip: &[usize]) -> Vec<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !skip.contains(i))
            .filter(|(_, n)| !n.lock().all_installed())
            .map(|(i, _)| i)
            .collect()
    }

    /// Waits until every node but `skip` has all VIFs installed; returns the time taken,
    /// or the stragglers after `timeout`.
    pub async fn wait_installed(
        &self,
        skip: &[usize],
        timeout: Duration,
    ) -> Result<Duration, Vec<usize>> {
        let t = Instant::now();
        let mut last_log = Instant::now();
        loop {
            let missing = self.not_installed(skip);
            if missing.is_empty() {
                return Ok(t.elapsed());
            }
            if t.elapsed() > timeout {
                return Err(missing);
            }
            if let Some((_, rss)) = self.weftd.memory_mib()
                && rss > self.max_weftd_rss_mib
            {
                eprintln!(
                    "  weftd's RSS is {rss:.0} MiB, over the {:.0} MiB limit: giving up",
                    self.max_weftd_rss_mib
                );
                return Err(missing);
            }
            if last_log.elapsed() > Duration::from_secs(10) {
                eprintln!(
                    "  [{:>6.1}s] {} of {} nodes not installed yet",
                    t.elapsed().as_secs_f64(),
                    missing.len(),
                    self.nodes.len() - skip.len()
                );
                last_log = Instant::now();
            }
            tokio::time::sleep(crate::wait::node_poll_pause(self.nodes.len())).await;
        }
    }

    /// The honesty check on `sample` (node indexes). CPU-heavy at scale (the compiler
    /// runs here): call it from a blocking thread, as [`Cluster::wait_checked`] does, so
    /// the simulated nodes keep answering keepalives meanwhile.
    pub fn check(&self, sample: &[usize]) -> Vec<NodeCheck> {
        crate::check::check_nodes(&self.model, &self.nodes, sample)
    }

    /// Repeats the check until every sampled node matches or `timeout` passes (weftd may
    /// still be adding remote ports' flows as tunnels come up after `weft-installed`).
    pub async fn wait_checked(
        &self,
        sample: &[usize],
        timeout: Duration,
    ) -> (Duration, Vec<NodeCheck>) {
        crate::check::wait_checked(&self.model, &self.nodes, sample, timeout).await
    }

    /// `count` node indexes spread evenly (all when `count >= nodes`), minus `skip`.
    pub fn sample(&self, count: usize, skip: &[usize]) -> Vec<usize> {
        crate::check::sample(self.nodes.len(), count, skip)
    }

    /// One JSON-RPC call with named params.
    pub async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let mut p = ObjectParams::new();
        if let Value::Object(m) = params {
            for (k, v) in m {
                p.insert(&k, v)?;
            }
        }
        self.api
            .request::<Value, _>(method, p)
            .await
            .with_context(|| format!("{method} failed"))
    }

    /// Flow and group counts over all nodes: (min, mean, max) flows, total flows, total
    /// groups, bytes the flow tables hold.
    pub fn table_stats(&self) -> TableStats {
        let mut s = TableStats {
            min_flows: usize::MAX,
            ..Default::default()
        };
        for n in &self.nodes {
            let st = n.lock();
            let f = st.tables.flow_count();
            s.min_flows = s.min_flows.min(f);
            s.max_flows = s.max_flows.max(f);
            s.total_flows += f;
            s.total_groups += st.tables.group_count();
            s.flow_bytes += st.tables.flow_bytes();
            s.tunnels += st.node_view().tunnels.len();
        }
        if self.nodes.is_empty() {
            s.min_flows = 0;
        }
        s
    }

    pub fn stop(self) {
        self.shutdown.cancel();
        self.weftd.stop();
    }
}

/// Flow table sizes over all nodes.
#[derive(Debug, Clone, Default)]
pub struct TableStats {
    pub min_flows: usize,
    pub max_flows: usize,
    pub total_flows: usize,
    pub total_groups: usize,
    pub flow_bytes: usize,
    pub tunnels: usize,
}

/// This process's peak and current RSS in MiB.
pub fn self_memory_mib() -> Option<(f64, f64)> {
    crate::weftd::proc_memory_mib(std::process::id())
}
