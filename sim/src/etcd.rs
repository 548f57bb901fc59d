//! A private etcd cluster on loopback for the multi-instance bench: members on free ports,
//! each in its own directory under the run directory, killed by PID when the handle is
//! dropped (also when the bench fails). The same recipe as the controller's cluster
//! tests (`controller/tests/common/etcd.rs`), without their test-only levers. Needs the
//! `etcd` binary (Debian `etcd-server`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use weft::model::{Change, LogicalModel};
use weft::store::Store;
use weft::store::etcd::{EtcdSettings, EtcdStore};

use crate::weftd::free_port;

/// Changes per etcd transaction when writing a model: each is one put, under etcd's
/// default 128 operations per transaction (with the model revision put).
const CHANGES_PER_TXN: usize = 100;

/// A running etcd cluster.
pub struct EtcdCluster {
    members: Vec<Child>,
    endpoints: Vec<String>,
}

impl EtcdCluster {
    /// Starts `n` members with data under `dir` and waits until the cluster takes a write.
    pub async fn start(n: usize, dir: &Path) -> anyhow::Result<EtcdCluster> {
        let ports: Vec<(u16, u16)> = (0..n)
            .map(|_| Ok((free_port()?.port(), free_port()?.port())))
            .collect::<anyhow::Result<_>>()?;
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect();
        let token = dir
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "weft-sim".into());
        let mut cluster = EtcdCluster {
            members: Vec::new(),
            endpoints: ports
                .iter()
                .map(|(c, _)| format!("http://127.0.0.1:{c}"))
                .collect(),
        };
        for (i, (client, peer)) in ports.iter().enumerate() {
            let client = format!("http://127.0.0.1:{client}");
            let peer = format!("http://127.0.0.1:{peer}");
            let data: PathBuf = dir.join(format!("etcd-m{i}"));
            let child = Command::new("etcd")
                .args(["--name", &format!("m{i}")])
                .arg("--data-dir")
                .arg(&data)
                .args(["--listen-client-urls", &client])
                .args(["--advertise-client-urls", &client])
                .args(["--listen-peer-urls", &peer])
                .args(["--initial-advertise-peer-urls", &peer])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", &token])
                .args(["--logger", "zap", "--log-level", "error"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting etcd (is etcd-server installed?)")?;
            cluster.members.push(child);
        }
        Ok(cluster)
    }

    /// Client URLs, as `--etcd` takes them (comma-joined).
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Each member's client address (where it also serves `GET /metrics`).
    pub fn client_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.endpoints
            .iter()
            .filter_map(|e| e.strip_prefix("http://")?.parse().ok())
            .collect()
    }

    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().map(Child::id).collect()
    }

    /// Waits until the cluster has a leader and takes a write (60 s), by connecting a
    /// store under `prefix` (which creates that prefix's revision keys).
    pub async fn wait_ready(&mut self, prefix: &str) -> anyhow::Result<()> {
        self.connect(prefix).await.map(drop)
    }

    /// Connects a store under `prefix`, retrying until the cluster has a leader (60 s).
    async fn connect(&mut self, prefix: &str) -> anyhow::Result<EtcdStore> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut settings = EtcdSettings::new(self.endpoints.clone(), prefix, "weft-sim");
            settings.timeout = Duration::from_secs(3);
            match EtcdStore::connect(settings).await {
                Ok(s) => return Ok(s),
                Err(e) => {
                    for m in &mut self.members {
                        if let Some(status) = m.try_wait()? {
                            bail!("an etcd member exited at start ({status})");
                        }
                    }
                    if Instant::now() > deadline {
                        bail!("etcd not ready after 60 s: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Writes `changes` (puts only, owners before what they own) under `prefix`, in
    /// transactions of [`CHANGES_PER_TXN`], as weftd's own etcd store writes them; the
    /// model revision ends at the number of transactions. `model` is the whole model, for
    /// the lookups an ACL's key needs (its port's switch).
    pub async fn write_model(
        &mut self,
        prefix: &str,
        model: &LogicalModel,
        changes: &[Change],
    ) -> anyhow::Result<u64> {
        let mut store = self.connect(prefix).await?;
        let loaded = store.load()?;
        anyhow::ensure!(
            loaded.revision == 0 && loaded.switches.is_empty(),
            "etcd prefix {prefix} already holds a model"
        );
        let mut revision = 0u64;
        for chunk in changes.chunks(CHANGES_PER_TXN) {
            let base = base_for(model, chunk, revision)?;
            store
                .commit_on(&base, revision + 1, chunk)
                .with_context(|| format!("writing model revision {}", revision + 1))?;
            revision += 1;
        }
        Ok(revision)
    }
}

/// The smallest model at `revision` holding what the keys of `chunk` are looked up in:
/// the ports (and their switches) of its ACLs.
fn base_for(model: &LogicalModel, chunk: &[Change], revision: u64) -> anyhow::Result<LogicalModel> {
    let mut ports = std::collections::BTreeMap::new();
    for c in chunk {
        if let Change::PutAcl(a) = c
            && let Some(p) = model.port(&a.port)
        {
            ports.insert(p.id, p.clone());
        }
    }
    let mut switches = std::collections::BTreeMap::new();
    for p in ports.values() {
        if let Some(s) = model.switch(&p.switch) {
            switches.insert(s.id, s.clone());
        }
    }
    LogicalModel::from_objects(
        revision,
        switches.into_values().collect(),
        ports.into_values().collect(),
        Vec::new(),
    )
    .map_err(|e| anyhow::anyhow!("base model for an etcd write: {e}"))
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            let _ = m.kill();
            let _ = m.wait();
        }
    }
}
