//! A private etcd cluster for tests: members on loopback with free ports, each in its own
//! temporary directory, killed by PID when the cluster is dropped (also when a test fails).
//! Needs the `etcd` binary (Debian `etcd-server`; scripts/test.sh installs it).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct EtcdMember {
    pub name: String,
    pub client_port: u16,
    peer_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl EtcdMember {
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

pub struct EtcdCluster {
    pub members: Vec<EtcdMember>,
    initial_cluster: String,
    token: String,
    _tmp: tempfile::TempDir,
}

/// A free loopback port for a member started later (see [`super::reserve_port`]);
/// 12000-20000, apart from the range weftd's ports come from.
fn free_port() -> u16 {
    super::reserve_port([127, 0, 0, 1].into(), 12_000..20_000)
}

impl EtcdCluster {
    /// Starts `n` members and waits until the cluster answers.
    pub async fn start(n: usize) -> EtcdCluster {
        let tmp = tempfile::Builder::new()
            .prefix("weft-etcd-")
            .tempdir()
            .unwrap();
        let token = tmp
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let members: Vec<EtcdMember> = (0..n)
            .map(|i| EtcdMember {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                dir: tmp.path().join(format!("m{i}")),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            members,
            initial_cluster,
            token,
            _tmp: tmp,
        };
        for i in 0..n {
            cluster.start_member(i);
        }
        cluster.wait_ready().await;
        cluster
    }

    /// Client URLs, comma-separated, as `--etcd` takes them.
    pub fn endpoints(&self) -> String {
        self.endpoint_list().join(",")
    }

    pub fn endpoint_list(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// (Re)starts member `i` on its data directory.
    pub fn start_member(&mut self, i: usize) {
        let m = &mut self.members[i];
        assert!(m.child.is_none(), "member {} is running", m.name);
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let child = Command::new("etcd")
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            .args(["--logger", "zap", "--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd must be installed (apt-get install etcd-server)");
        m.child = Some(child);
    }

    /// SIGKILLs member `i`.
    pub fn kill_member(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until a write through every running member's endpoint succeeds.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            let url = format!("http://127.0.0.1:{}", m.client_port);
            loop {
                let ok = async {
                    let mut c = etcd_client::Client::connect([&url], None).await.ok()?;
                    c.put("/weft-test/ready", "1", None).await.ok()
                };
                if tokio::time::timeout(Duration::from_secs(3), ok)
                    .await
                    .ok()
                    .flatten()
                    .is_some()
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "etcd member {} not ready",
                    m.name
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill_member(i);
        }
    }
}
