//! A private ovsdb-server per test: an [`OvsSandbox`] (own temp dir, database, unix socket,
//! never /var/run/openvswitch) with a TCP listener on 127.0.0.1, stopped by PID when dropped,
//! also when the test panics. Plus the `ovs-vsctl` readers the tests compare against.
#![allow(dead_code)]

use std::path::PathBuf;

use integration::sandbox::{Daemon, OvsSandbox};

pub struct OvsdbServer {
    pub ovs: OvsSandbox,
    /// The port ovsdb-server picked for `ptcp:0` (no race with other tests for a "free"
    /// port); restarts reuse it.
    pub tcp_port: u16,
}

impl OvsdbServer {
    pub fn start() -> OvsdbServer {
        OvsdbServer::start_with(Vec::new())
    }

    /// Creates a fresh vswitch database, starts the server and runs `ovs-vsctl init`.
    /// `extra_remotes`: more `--remote`s, e.g. `tcp:127.0.0.1:PORT` to connect to a listener.
    pub fn start_with(extra_remotes: Vec<String>) -> OvsdbServer {
        let mut builder = OvsSandbox::builder("ovsdb").remote("ptcp:0:127.0.0.1");
        for r in extra_remotes {
            builder = builder.remote(r);
        }
        let ovs = builder.start().unwrap_or_else(|e| panic!("{e}"));
        let tcp_port = ovs
            .tcp_port()
            .unwrap_or_else(|| panic!("no ptcp port in the log:\n{}", ovs.log_tail(30)));
        OvsdbServer { ovs, tcp_port }
    }

    /// The database file, for `ovsdb-tool` while the server is stopped.
    pub fn db(&self) -> PathBuf {
        self.ovs.db_file()
    }

    pub fn unix_target(&self) -> String {
        self.ovs.db_target()
    }

    pub fn tcp_target(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.tcp_port)
    }

    /// Runs `ovs-vsctl --db=unix:SOCK --no-wait ARGS` (no ovs-vswitchd runs, so never wait
    /// for it) and returns stdout.
    pub fn vsctl(&self, args: &[&str]) -> String {
        self.ovs.vsctl(args).unwrap_or_else(|e| panic!("{e}"))
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

    /// Kills the server (SIGKILL, by PID) and waits for it.
    pub fn stop(&mut self) {
        self.ovs.kill(Daemon::OvsdbServer);
    }

    /// Stops and starts the server on the same database, socket and port.
    pub fn restart(&mut self) {
        self.stop();
        self.ovs
            .start_daemon(Daemon::OvsdbServer)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
