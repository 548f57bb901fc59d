//! Runs the real `weftd` binary as a child process on loopback ports, logs to a file, and
//! reads its CPU time and memory from `/proc/<pid>`. The child is killed (by its PID)
//! when the handle is dropped, also when a test panics.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running weftd.
#[derive(Debug)]
pub struct Weftd {
    child: Child,
    pub api: SocketAddr,
    pub ovsdb: SocketAddr,
    pub openflow: SocketAddr,
    pub log: PathBuf,
}

/// A free loopback port (bound and released; fine for a private test machine).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// The weftd binary: `$WEFTD`, or `weftd` next to the running executable (or one
/// directory up, for test binaries in `target/<profile>/deps`).
pub fn find_weftd() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("WEFTD") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(Path::to_path_buf);
    for _ in 0..2 {
        let Some(d) = dir else { break };
        let cand = d.join("weftd");
        if cand.is_file() {
            return Ok(cand);
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    bail!(
        "weftd binary not found next to {} (build it: cargo build -p weft-controller --bin weftd, \
         with the same profile; or set WEFTD=/path/to/weftd)",
        exe.display()
    )
}

impl Weftd {
    /// Starts weftd on `data_dir` with fresh loopback ports, logging (filter `log`) to
    /// `<data_dir>/../weftd.log`, and waits for its readiness line. `extra` are further
    /// command-line arguments (e.g. `--node-grace 5`).
    pub fn start(
        bin: &Path,
        data_dir: &Path,
        log: &str,
        extra: &[String],
    ) -> anyhow::Result<Weftd> {
        let ovsdb = free_port()?;
        let openflow = free_port()?;
        let log_path = data_dir.parent().unwrap_or(data_dir).join("weftd.log");
        let log_file = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut child = Command::new(bin)
            .arg("--api-listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--ovsdb-listen")
            .arg(format!("tcp:{ovsdb}"))
            .arg("--openflow-listen")
            .arg(format!("tcp:{openflow}"))
            .arg("--openflow-advertise")
            .arg(format!("tcp:{openflow}"))
            .arg("--max-connections")
            .arg("1024")
            .arg("--log")
            .arg(log)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let out = child.stdout.take().context("weftd stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("weftd: api listening on ") {
                    let _ = tx.send(a.trim().to_owned());
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let api = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(a) => break a.parse().context("weftd's API address")?,
                Err(_) => {
                    if let Some(status) = child.try_wait()? {
                        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                        let tail: String =
                            log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
                        bail!("weftd exited before it was ready ({status}); log tail:\n{tail}");
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        bail!("weftd not ready after 120 s");
                    }
                }
            }
        };
        Ok(Weftd {
            child,
            api,
            ovsdb,
            openflow,
            log: log_path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// User + system CPU seconds so far (`/proc/<pid>/stat` utime + stime).
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = f.get(11)?.parse().ok()?;
        let stime: f64 = f.get(12)?.parse().ok()?;
        Some((utime + stime) / clock_ticks())
    }

    /// Peak resident set (VmHWM) and current (VmRSS), in MiB.
    pub fn memory_mib(&self) -> Option<(f64, f64)> {
        proc_memory_mib(self.pid())
    }

    /// SIGKILL, as a crash: nothing is released (in cluster mode its etcd lease runs out
    /// on its own, and only then do other instances take its hypervisors over).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait (SIGKILL after 20 s).
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Weftd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Linux's USER_HZ, practically always 100 (`getconf CLK_TCK`).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// VmHWM and VmRSS of a process, in MiB.
pub fn proc_memory_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<f64> {
        status
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((kib("VmHWM:")? / 1024.0, kib("VmRSS:")? / 1024.0))
}
