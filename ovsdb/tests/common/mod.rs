//! A private ovsdb-server per test: its own temp dir, database, unix socket, TCP port and
//! unixctl socket, never /var/run/openvswitch. The server is our child process and is
//! killed by PID in `Drop`, so it goes away even when the test panics.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// Fails the test with a clear message when an OVS binary is missing.
pub fn require_binary(name: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(name).is_file();
    assert!(
        found,
        "{name} not found: these tests need Open vSwitch (apt-get install openvswitch-switch; \
         scripts/test.sh installs it)"
    );
}

fn bin(name: &str) -> String {
    for dir in ["/usr/sbin", "/usr/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p.display().to_string();
        }
    }
    name.to_owned()
}

pub struct OvsdbServer {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub sock: PathBuf,
    pub ctl: PathBuf,
    pub tcp_port: u16,
    /// Extra `--remote` arguments, e.g. `tcp:127.0.0.1:PORT` to connect to a listener.
    pub extra_remotes: Vec<String>,
    child: Option<Child>,
}

impl OvsdbServer {
    pub fn start() -> OvsdbServer {
        OvsdbServer::start_with(Vec::new())
    }

    /// Creates a fresh vswitch database, starts the server and runs `ovs-vsctl init`.
    pub fn start_with(extra_remotes: Vec<String>) -> OvsdbServer {
        for b in ["ovsdb-server", "ovsdb-tool", "ovs-vsctl"] {
            require_binary(b);
        }
        assert!(
            Path::new(SCHEMA).is_file(),
            "{SCHEMA} not found: install openvswitch-common"
        );
        let dir = tempfile::Builder::new()
            .prefix("weft-ovsdb-")
            .tempdir()
            .unwrap();
        let db = dir.path().join("conf.db");
        let out = Command::new(bin("ovsdb-tool"))
            .arg("create")
            .arg(&db)
            .arg(SCHEMA)
            .output()
            .unwrap();
        assert!(out.status.success(), "ovsdb-tool create: {out:?}");
        let mut s = OvsdbServer {
            sock: dir.path().join("db.sock"),
            ctl: dir.path().join("ovsdb-server.ctl"),
            db,
            dir,
            // 0: let ovsdb-server pick, then read the port from its log (no race with
            // other tests for a "free" port). Restarts reuse the port it picked.
            tcp_port: 0,
            extra_remotes,
            child: None,
        };
        s.spawn();
        s.vsctl(&["init"]);
        s
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(&self.sock);
        let mut cmd = Command::new(bin("ovsdb-server"));
        cmd.arg(&self.db)
            .arg(format!("--remote=punix:{}", self.sock.display()))
            .arg(format!("--remote=ptcp:{}:127.0.0.1", self.tcp_port))
            .arg(format!("--unixctl={}", self.ctl.display()))
            .arg(format!(
                "--pidfile={}",
                self.dir.path().join("ovsdb-server.pid").display()
            ))
            .arg(format!(
                "--log-file={}",
                self.dir.path().join("ovsdb-server.log").display()
            ))
            .arg("-vconsole:off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for r in &self.extra_remotes {
            cmd.arg(format!("--remote={r}"));
        }
        self.child = Some(cmd.spawn().expect("spawn ovsdb-server"));
        // Ready when both the unix socket and the TCP port accept connections.
        let start = Instant::now();
        loop {
            if self.tcp_port == 0 {
                self.tcp_port = self.logged_port().unwrap_or(0);
            }
            let unix_ok = std::os::unix::net::UnixStream::connect(&self.sock).is_ok();
            let tcp_ok = self.tcp_port != 0
                && std::net::TcpStream::connect(("127.0.0.1", self.tcp_port)).is_ok();
            if unix_ok && tcp_ok {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("ovsdb-server exited early with {status}: {}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "ovsdb-server did not come up: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port ovsdb-server bound for `ptcp:0`, from "listening on port N" in its log.
    fn logged_port(&self) -> Option<u16> {
        self.log()
            .lines()
            .filter_map(|l| l.split("listening on port ").nth(1))
            .find_map(|p| p.trim().parse().ok())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ovsdb-server.log")).unwrap_or_default()
    }

    pub fn unix_target(&self) -> String {
        format!("unix:{}", self.sock.display())
    }

    pub fn tcp_target(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.tcp_port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Runs `ovs-vsctl --db=unix:SOCK --no-wait ARGS` (no ovs-vswitchd runs, so never wait
    /// for it) and returns stdout.
    pub fn vsctl(&self, args: &[&str]) -> String {
        let out = Command::new(bin("ovs-vsctl"))
            .arg(format!("--db=unix:{}", self.sock.display()))
            .arg("--no-wait")
            .arg("--timeout=20")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ovs-vsctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `ovs-vsctl --format=json list TABLE` as (uuid → column → JSON value).
    pub fn vsctl_table(
        &self,
        table: &str,
        columns: &[&str],
    ) -> std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>> {
        let cols = format!("--columns=_uuid,{}", columns.join(","));
        let out = self.vsctl(&["--format=json", &cols, "list", table]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let headings: Vec<String> = v["headings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_owned())
            .collect();
        let mut rows = std::collections::BTreeMap::new();
        for row in v["data"].as_array().unwrap() {
            let cells = row.as_array().unwrap();
            let uuid = cells[0][1].as_str().unwrap().to_owned();
            let mut m = serde_json::Map::new();
            for (h, c) in headings.iter().zip(cells).skip(1) {
                m.insert(h.clone(), c.clone());
            }
            rows.insert(uuid, m);
        }
        rows
    }

    /// Kills the server (by PID) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops and starts the server on the same database, socket and port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for OvsdbServer {
    fn drop(&mut self) {
        self.stop();
    }
}
