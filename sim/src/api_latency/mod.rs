//! API write latency by store backend (issue 19): the same sequential JSON-RPC writes
//! through weftd's API on its embedded redb store, on a private 3-member etcd cluster
//! with one instance, and with three instances taking the writes in turn; each write
//! timed from request to answer (an answer means committed). No hypervisors: only the
//! write path (API, writer, store) is measured.
//!
//! Every run also checks what it measured: each write must be acknowledged, and right
//! after each phase every instance must read back exactly what was acknowledged (created
//! objects present, deleted ones gone). [`report`] prints the table.

pub mod report;
mod workload;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};

use crate::etcd::EtcdCluster;
use crate::weftd::Weftd;
pub use workload::{Phase, ReadBack};

/// Members of the private etcd cluster.
const ETCD_MEMBERS: usize = 3;
/// weftd's log filter: warnings, plus the writer's "lost a race" lines (counted as
/// replans).
const LOG_FILTER: &str = "warn,weft::northbound::writer=debug";

/// Which store weftd writes through, and how many instances share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One weftd on its default embedded store.
    Redb,
    /// `instances` weftd on one etcd prefix, writes spread round-robin over them.
    Etcd { instances: usize },
}

impl Backend {
    pub fn label(&self) -> String {
        match self {
            Backend::Redb => "redb".into(),
            Backend::Etcd { instances: 1 } => "etcd, 1 instance".into(),
            Backend::Etcd { instances } => format!("etcd, {instances} instances"),
        }
    }

    fn instances(&self) -> usize {
        match self {
            Backend::Redb => 1,
            Backend::Etcd { instances } => (*instances).max(1),
        }
    }
}

/// Why a `--backends` entry was not understood.
#[derive(Debug, thiserror::Error)]
#[error("backend {0:?} is not redb, etcd or etcdK (K instances, e.g. etcd3)")]
pub struct BadBackend(String);

impl FromStr for Backend {
    type Err = BadBackend;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "redb" => Ok(Backend::Redb),
            "etcd" => Ok(Backend::Etcd { instances: 1 }),
            _ => s
                .strip_prefix("etcd")
                .and_then(|k| k.parse().ok())
                .filter(|&k: &usize| k >= 1)
                .map(|instances| Backend::Etcd { instances })
                .ok_or_else(|| BadBackend(s.to_string())),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LatencyOptions {
    /// Writes in each sequential phase (and in the concurrent one).
    pub writes: usize,
    /// Clients of the concurrent phase; 0 skips it.
    pub clients: usize,
    pub backends: Vec<Backend>,
    /// Where to put the run directory (a temp dir under it).
    pub base_dir: Option<PathBuf>,
    /// Keep the run directory (weftd logs, etcd data) afterwards.
    pub keep: bool,
    /// Read each created object at the next instance as soon as its write is answered
    /// (untimed, but it paces the writes): "a write at one is read at another at once".
    pub read_each: bool,
}

/// One backend's results.
#[derive(Debug)]
pub struct BackendReport {
    pub backend: Backend,
    pub phases: Vec<Phase>,
    /// "lost a race; planning again" lines in the instances' logs: commits planned on a
    /// snapshot another instance had already moved past.
    pub replans: usize,
}

impl BackendReport {
    /// Every failed write and every read-back mismatch, for asserting on.
    pub fn problems(&self) -> Vec<String> {
        self.phases.iter().flat_map(Phase::problems).collect()
    }
}

/// Runs every backend in turn; each starts on empty state and is stopped before the next.
pub async fn run(opts: &LatencyOptions) -> anyhow::Result<Vec<BackendReport>> {
    anyhow::ensure!(opts.writes >= 1, "at least one write per phase");
    let mut dir = match &opts.base_dir {
        Some(b) => tempfile::Builder::new()
            .prefix("weft-api-bench-")
            .tempdir_in(b)?,
        None => tempfile::Builder::new()
            .prefix("weft-api-bench-")
            .tempdir()?,
    };
    dir.disable_cleanup(opts.keep);
    let bin = crate::weftd::find_weftd()?;
    let mut etcd: Option<EtcdCluster> = None;
    let mut reports = Vec::new();
    for (n, backend) in opts.backends.iter().enumerate() {
        let run_dir = dir.path().join(format!("run{n}"));
        let endpoints = match backend {
            Backend::Redb => None,
            Backend::Etcd { .. } => {
                if etcd.is_none() {
                    let mut cluster = EtcdCluster::start(ETCD_MEMBERS, dir.path()).await?;
                    cluster.wait_ready("/weft-api-bench-ready").await?;
                    etcd = Some(cluster);
                }
                etcd.as_ref().map(|e| e.endpoints().join(","))
            }
        };
        let members: Vec<SocketAddr> = match (backend, &etcd) {
            (Backend::Etcd { .. }, Some(e)) => e.client_addrs(),
            _ => Vec::new(),
        };
        let started = start_instances(&bin, &run_dir, *backend, endpoints.as_deref(), n)?;
        let report = measure(opts, *backend, &started, &members).await;
        let logs: Vec<PathBuf> = started.iter().map(|w| w.log.clone()).collect();
        drop(started);
        let mut report = report?;
        report.replans = count_replans(&logs);
        reports.push(report);
    }
    drop(etcd);
    Ok(reports)
}

/// Starts the backend's instances, each with its own directory (and log) under `dir`.
fn start_instances(
    bin: &Path,
    dir: &Path,
    backend: Backend,
    endpoints: Option<&str>,
    run: usize,
) -> anyhow::Result<Vec<Weftd>> {
    let mut started = Vec::new();
    for i in 1..=backend.instances() {
        let name = format!("c{i}");
        let data = dir.join(&name).join("data");
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let mut args = Vec::new();
        if let Some(endpoints) = endpoints {
            args.extend([
                "--etcd".to_string(),
                endpoints.to_string(),
                "--etcd-prefix".into(),
                format!("/weft-api-bench-{run}"),
                "--instance".into(),
                name.clone(),
            ]);
        }
        let w = tokio::task::block_in_place(|| Weftd::start(bin, &data, LOG_FILTER, &args))
            .with_context(|| format!("starting {} instance {name}", backend.label()))?;
        started.push(w);
    }
    Ok(started)
}

async fn measure(
    opts: &LatencyOptions,
    backend: Backend,
    instances: &[Weftd],
    etcd: &[SocketAddr],
) -> anyhow::Result<BackendReport> {
    let apis: Vec<SocketAddr> = instances.iter().map(|w| w.api).collect();
    let clients: Vec<HttpClient> = instances
        .iter()
        .map(|w| {
            HttpClientBuilder::default()
                .request_timeout(Duration::from_secs(30))
                .build(w.url())
        })
        .collect::<Result<_, _>>()?;
    let counters = workload::Counters { apis: &apis, etcd };
    let phases = workload::run(
        &clients,
        &counters,
        opts.writes,
        opts.clients,
        opts.read_each,
    )
    .await?;
    Ok(BackendReport {
        backend,
        phases,
        replans: 0,
    })
}

fn count_replans(logs: &[PathBuf]) -> usize {
    logs.iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|text| text.matches("lost a race").count())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::Backend;

    #[test]
    fn backends_parse() {
        assert_eq!("redb".parse::<Backend>().unwrap(), Backend::Redb);
        assert_eq!(
            "etcd".parse::<Backend>().unwrap(),
            Backend::Etcd { instances: 1 }
        );
        assert_eq!(
            "etcd3".parse::<Backend>().unwrap(),
            Backend::Etcd { instances: 3 }
        );
        assert!("etcd0".parse::<Backend>().is_err());
        assert!("mysql".parse::<Backend>().is_err());
    }
}
