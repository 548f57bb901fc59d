//! One private Open vSwitch: a fresh database made with `ovsdb-tool`, its own `ovsdb-server`
//! and, if asked, its own `ovs-vswitchd`, all files in one directory (`run/`, `db/`, `log/`,
//! `etc/`), never `/var/run/openvswitch`. Every test, benchmark and lab hypervisor that needs
//! real OVS starts it here, so the daemon command lines, the environment that points the
//! `ovs-*` tools at them and the teardown exist once.
//!
//! The daemons are started with `--detach`, which returns only once they serve, and with
//! `OVS_RUNDIR=<run dir>` in their environment: that is how [`OvsSandbox`] proves a PID is
//! still its own before signalling it (see `lab::process`). `Drop` stops exactly the PIDs it
//! started, also when a test panics, and removes the directory if the sandbox made it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::lab::cmd::{Cmd, in_path};
use crate::lab::process::{kill_all, owned_by, read_pidfile, terminate_all};
use crate::lab::{LabError, OVS_SCHEMA, Result, wait_for};

/// The two OVS daemons a sandbox runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    /// `ovsdb-server` (the configuration database).
    OvsdbServer,
    /// `ovs-vswitchd` (the switch).
    Vswitchd,
}

impl Daemon {
    /// Program name, also the pidfile and log file stem.
    pub fn program(self) -> &'static str {
        match self {
            Daemon::OvsdbServer => "ovsdb-server",
            Daemon::Vswitchd => "ovs-vswitchd",
        }
    }
}

/// Which `ovs-vswitchd` a sandbox runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datapath {
    /// `--enable-dummy --disable-system --disable-system-route`: no kernel datapath and no
    /// host routes, as OVS's own test suite runs; bridges use `datapath_type=dummy`.
    Dummy,
    /// A plain `ovs-vswitchd`; bridges use `datapath_type=netdev` (the userspace datapath,
    /// which needs real or veth ports, e.g. inside a network namespace).
    Netdev,
}

/// Configures an [`OvsSandbox`]; see [`OvsSandbox::builder`].
#[derive(Debug, Clone)]
pub struct OvsSandboxBuilder {
    name: String,
    dir: Option<PathBuf>,
    netns: Option<String>,
    remotes: Vec<String>,
    vswitchd: Option<Datapath>,
    open_vswitch: Vec<String>,
}

impl OvsSandboxBuilder {
    /// Use `dir` (created if missing, left in place on drop: its owner removes it) instead
    /// of a fresh unique directory under the temp dir.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Run the daemons inside network namespace `netns` (which must exist). The tools need
    /// no namespace: they reach the daemons over unix sockets in the run dir.
    pub fn netns(mut self, netns: impl Into<String>) -> Self {
        self.netns = Some(netns.into());
        self
    }

    /// One more `--remote` for ovsdb-server besides its unix socket: `ptcp:0:127.0.0.1`
    /// (see [`OvsSandbox::tcp_port`]), `tcp:HOST:PORT` to dial a listener, `punix:PATH`, or
    /// `db:Open_vSwitch,Open_vSwitch,manager_options` to honour `ovs-vsctl set-manager`.
    pub fn remote(mut self, remote: impl Into<String>) -> Self {
        self.remotes.push(remote.into());
        self
    }

    /// Also run `ovs-vswitchd` of this kind (default: ovsdb-server only).
    pub fn vswitchd(mut self, datapath: Datapath) -> Self {
        self.vswitchd = Some(datapath);
        self
    }

    /// `column:key=value` settings of the `Open_vSwitch` row, written with `init`, i.e.
    /// before ovs-vswitchd starts (e.g. `external_ids:system-id=hv1`).
    pub fn open_vswitch<I, S>(mut self, settings: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.open_vswitch
            .extend(settings.into_iter().map(Into::into));
        self
    }

    /// Creates the database, starts ovsdb-server, runs `ovs-vsctl init` (with the
    /// [`open_vswitch`](Self::open_vswitch) settings), then starts ovs-vswitchd if asked.
    /// On error whatever was started is stopped again.
    pub fn start(self) -> Result<OvsSandbox> {
        require_ovs(self.vswitchd.is_some())?;
        let (dir, owns_dir) = match self.dir {
            Some(dir) => (dir, false),
            None => (unique_dir(&self.name)?, true),
        };
        // From here on, dropping `sandbox` stops what runs and removes a dir it made.
        let sandbox = OvsSandbox {
            name: self.name,
            dir,
            owns_dir,
            netns: self.netns,
            remotes: Mutex::new(self.remotes),
            vswitchd: self.vswitchd,
            pids: Mutex::default(),
            kept: AtomicBool::new(false),
        };
        for sub in ["run", "db", "log", "etc"] {
            let path = sandbox.dir.join(sub);
            std::fs::create_dir_all(&path).map_err(|source| LabError::Io {
                op: "create",
                path,
                source,
            })?;
        }
        Cmd::new("ovsdb-tool")
            .arg("create")
            .arg(sandbox.db_file())
            .arg(OVS_SCHEMA)
            .run()?;
        sandbox.start_daemon(Daemon::OvsdbServer)?;
        sandbox.pin_ptcp_port();
        // ovs-vswitchd is not running yet: never wait for it here.
        let mut init: Vec<String> = Vec::new();
        if sandbox.vswitchd.is_some() {
            init.push("--no-wait".into());
        }
        init.extend(["--", "init"].map(String::from));
        if !self.open_vswitch.is_empty() {
            init.extend(["--", "set", "Open_vSwitch", "."].map(String::from));
            init.extend(self.open_vswitch);
        }
        sandbox.vsctl(&init)?;
        if sandbox.vswitchd.is_some() {
            sandbox.start_daemon(Daemon::Vswitchd)?;
        }
        Ok(sandbox)
    }
}

/// PIDs of the daemons this sandbox started and that have not been stopped since.
#[derive(Debug, Default)]
struct Pids {
    ovsdb_server: Option<u32>,
    vswitchd: Option<u32>,
}

/// A running private OVS. Dropping it stops the daemons it started (by PID, after checking
/// they are still its own) and removes its directory if it made it.
#[derive(Debug)]
pub struct OvsSandbox {
    name: String,
    dir: PathBuf,
    owns_dir: bool,
    netns: Option<String>,
    remotes: Mutex<Vec<String>>,
    vswitchd: Option<Datapath>,
    pids: Mutex<Pids>,
    kept: AtomicBool,
}

impl OvsSandbox {
    /// Starts configuring a sandbox; `name` appears in its directory name (and in errors).
    pub fn builder(name: impl Into<String>) -> OvsSandboxBuilder {
        OvsSandboxBuilder {
            name: name.into(),
            dir: None,
            netns: None,
            remotes: Vec::new(),
            vswitchd: None,
            open_vswitch: Vec::new(),
        }
    }

    /// The name given to [`OvsSandbox::builder`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory holding `run/`, `db/`, `log/`, `etc/` (also a place for scratch files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `OVS_RUNDIR`: pidfiles, unixctl sockets, bridge `.mgmt` sockets, the db socket.
    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// The database file (`ovsdb-tool` works on it while ovsdb-server is stopped).
    pub fn db_file(&self) -> PathBuf {
        self.dir.join("db").join("conf.db")
    }

    /// ovsdb-server's unix socket.
    pub fn db_socket(&self) -> PathBuf {
        self.run_dir().join("db.sock")
    }

    /// `unix:<db socket>`: an OVSDB target a client can dial.
    pub fn db_target(&self) -> String {
        format!("unix:{}", self.db_socket().display())
    }

    /// The unix socket of a bridge's OpenFlow management listener (`<bridge>.mgmt`).
    pub fn mgmt_socket(&self, bridge: &str) -> PathBuf {
        self.run_dir().join(format!("{bridge}.mgmt"))
    }

    /// A daemon's log file.
    pub fn log_file(&self, daemon: Daemon) -> PathBuf {
        self.dir
            .join("log")
            .join(format!("{}.log", daemon.program()))
    }

    /// The last `lines` lines of every daemon log, headed by file name: for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for daemon in [Daemon::OvsdbServer, Daemon::Vswitchd] {
            let Ok(text) = std::fs::read_to_string(self.log_file(daemon)) else {
                continue;
            };
            out.push_str(&format!("--- {}.log (tail)\n", daemon.program()));
            let all: Vec<&str> = text.lines().collect();
            for l in &all[all.len().saturating_sub(lines)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// The network namespace the daemons run in, if any.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// The port ovsdb-server bound for a `ptcp:0` remote ("listening on port N" in its log).
    /// Restarts keep that port.
    pub fn tcp_port(&self) -> Option<u16> {
        std::fs::read_to_string(self.log_file(Daemon::OvsdbServer))
            .ok()?
            .lines()
            .filter_map(|l| l.split("listening on port ").nth(1))
            .find_map(|p| p.trim().parse().ok())
    }

    /// The environment that points every OVS tool at this sandbox's daemons.
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        let d = |s: &str| self.dir.join(s).into_os_string();
        vec![
            ("OVS_RUNDIR".into(), d("run")),
            ("OVS_DBDIR".into(), d("db")),
            ("OVS_LOGDIR".into(), d("log")),
            ("OVS_SYSCONFDIR".into(), d("etc")),
        ]
    }

    /// `program` (any `ovs-*` or `ovsdb-*` tool) with this sandbox's environment and a
    /// `PATH` that includes the sbin dirs; runs outside the namespace.
    pub fn tool(&self, program: &str) -> Cmd {
        Cmd::new(program).envs(&self.env())
    }

    /// `ovs-vsctl --db=unix:<sock> --timeout=30 ARGS...` (plus `--no-wait` when the sandbox
    /// runs no ovs-vswitchd, which would never answer the wait); returns stdout. ovs-vsctl
    /// succeeds even when a port fails to open: read `Interface.ofport`/`error` back.
    pub fn vsctl<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut cmd = self
            .tool("ovs-vsctl")
            .arg(format!("--db={}", self.db_target()))
            .arg("--timeout=30");
        if self.vswitchd.is_none() {
            cmd = cmd.arg("--no-wait");
        }
        cmd.args(args).run()
    }

    /// `ovs-ofctl ARGS...` against this sandbox's bridges; returns stdout.
    pub fn ofctl<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.tool("ovs-ofctl").args(args).run()
    }

    /// `ovs-appctl ARGS...` to ovs-vswitchd (e.g. `ofproto/trace`, `dpif/show`).
    pub fn appctl<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.tool("ovs-appctl").args(args).run()
    }

    /// `ovs-appctl -t ovsdb-server ARGS...`.
    pub fn appctl_ovsdb<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.tool("ovs-appctl")
            .args(["-t", "ovsdb-server"])
            .args(args)
            .run()
    }

    /// PID of a daemon this sandbox started (`None` when not started, stopped or killed).
    pub fn pid(&self, daemon: Daemon) -> Option<u32> {
        let p = self.pids();
        match daemon {
            Daemon::OvsdbServer => p.ovsdb_server,
            Daemon::Vswitchd => p.vswitchd,
        }
    }

    /// Whether the daemon we started is still alive.
    pub fn is_running(&self, daemon: Daemon) -> bool {
        self.pid(daemon)
            .is_some_and(|pid| owned_by(pid, &self.run_dir()))
    }

    /// PIDs of the daemons that still run, ovs-vswitchd first (the order to stop them in).
    pub fn running_pids(&self) -> Vec<u32> {
        let run = self.run_dir();
        [Daemon::Vswitchd, Daemon::OvsdbServer]
            .into_iter()
            .filter_map(|d| self.pid(d))
            .filter(|&p| owned_by(p, &run))
            .collect()
    }

    /// Starts `daemon` (again) on the same files, sockets and `ptcp` port. `--detach` returns
    /// once the daemon serves; the db socket is checked too, so callers can connect at once.
    pub fn start_daemon(&self, daemon: Daemon) -> Result<u32> {
        let pidfile = self.run_dir().join(format!("{}.pid", daemon.program()));
        let mut cmd = Cmd::new(daemon.program());
        match daemon {
            Daemon::OvsdbServer => {
                // A socket left by a killed server would make the readiness check lie.
                let _ = std::fs::remove_file(self.db_socket());
                cmd = cmd
                    .arg(self.db_file())
                    .arg(format!("--remote=punix:{}", self.db_socket().display()));
                for r in self.remotes().iter() {
                    cmd = cmd.arg(format!("--remote={r}"));
                }
                // As ovs-ctl starts it: `ovs-vsctl set-ssl` takes effect for ssl: managers
                // (harmless while the SSL table is empty).
                cmd = cmd.args([
                    "--private-key=db:Open_vSwitch,SSL,private_key",
                    "--certificate=db:Open_vSwitch,SSL,certificate",
                    "--ca-cert=db:Open_vSwitch,SSL,ca_cert",
                ]);
            }
            Daemon::Vswitchd => {
                cmd = cmd.arg(self.db_target());
                if self.vswitchd == Some(Datapath::Dummy) {
                    cmd = cmd.args([
                        "--enable-dummy",
                        "--disable-system",
                        "--disable-system-route",
                    ]);
                }
            }
        }
        cmd = cmd
            .arg(format!("--pidfile={}", pidfile.display()))
            .arg(format!("--log-file={}", self.log_file(daemon).display()))
            .args(["--detach", "--no-chdir", "-vconsole:off", "-vfile:info"])
            .envs(&self.env());
        if let Some(ns) = &self.netns {
            cmd = cmd.netns(ns);
        }
        cmd.run()?;
        let pid = read_pidfile(&pidfile).ok_or_else(|| self.down(daemon))?;
        self.set_pid(daemon, Some(pid));
        if daemon == Daemon::OvsdbServer {
            let sock = self.db_socket();
            wait_for(
                &format!("{} of {} to accept", sock.display(), self.name),
                Duration::from_secs(20),
                || Ok(std::os::unix::net::UnixStream::connect(&sock).is_ok()),
            )?;
        }
        Ok(pid)
    }

    /// Stops `daemon` with SIGTERM (SIGKILL after 5 s), waiting until it is gone.
    pub fn stop(&self, daemon: Daemon) {
        self.stop_daemon(daemon, false);
    }

    /// Kills `daemon` with SIGKILL (a crash: no goodbye on any connection) and waits.
    pub fn kill(&self, daemon: Daemon) {
        self.stop_daemon(daemon, true);
    }

    /// Stops `daemon` (SIGTERM) and starts it again on the same files.
    pub fn restart(&self, daemon: Daemon) -> Result<u32> {
        self.stop(daemon);
        self.start_daemon(daemon)
    }

    /// Leaves the daemons (and the directory) in place when this sandbox is dropped: for a
    /// lab kept running after its process exits.
    pub fn keep(&self) {
        self.kept.store(true, Ordering::Relaxed);
    }

    fn stop_daemon(&self, daemon: Daemon, crash: bool) {
        let Some(pid) = self.pid(daemon) else { return };
        let run = self.run_dir();
        if owned_by(pid, &run) {
            if crash {
                kill_all(&[pid]);
            } else {
                terminate_all(&[pid], Duration::from_secs(5), |p| owned_by(p, &run));
            }
        }
        self.set_pid(daemon, None);
    }

    /// After the first start, a `ptcp:0` remote becomes `ptcp:<bound port>` so restarts
    /// listen on the same port. Only an unambiguous (single) `ptcp:0` remote is pinned.
    fn pin_ptcp_port(&self) {
        let Some(port) = self.tcp_port() else { return };
        let mut remotes = self.remotes();
        let zero: Vec<usize> = (0..remotes.len())
            .filter(|&i| remotes[i] == "ptcp:0" || remotes[i].starts_with("ptcp:0:"))
            .collect();
        if let [i] = zero[..] {
            remotes[i] = remotes[i].replacen("ptcp:0", &format!("ptcp:{port}"), 1);
        }
    }

    fn down(&self, daemon: Daemon) -> LabError {
        LabError::DaemonDown {
            hypervisor: self.name.clone(),
            daemon: daemon.program(),
        }
    }

    // Poisoned locks only mean another test thread panicked mid-update; the data in them
    // is still the best information we have.
    fn pids(&self) -> MutexGuard<'_, Pids> {
        self.pids.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remotes(&self) -> MutexGuard<'_, Vec<String>> {
        self.remotes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_pid(&self, daemon: Daemon, pid: Option<u32>) {
        let mut p = self.pids();
        match daemon {
            Daemon::OvsdbServer => p.ovsdb_server = pid,
            Daemon::Vswitchd => p.vswitchd = pid,
        }
    }
}

impl Drop for OvsSandbox {
    fn drop(&mut self) {
        if self.kept.load(Ordering::Relaxed) {
            return;
        }
        let run = self.run_dir();
        terminate_all(&self.running_pids(), Duration::from_secs(5), |p| {
            owned_by(p, &run)
        });
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Fails with a clear message when the OVS programs or the schema are missing.
pub fn require_ovs(vswitchd: bool) -> Result<()> {
    let mut tools = vec![
        ("ovsdb-tool", "openvswitch-common"),
        ("ovsdb-server", "openvswitch-switch"),
        ("ovs-vsctl", "openvswitch-switch"),
    ];
    if vswitchd {
        tools.extend([
            ("ovs-vswitchd", "openvswitch-switch"),
            ("ovs-ofctl", "openvswitch-common"),
            ("ovs-appctl", "openvswitch-common"),
        ]);
    }
    for (program, package) in tools {
        if !in_path(program) {
            return Err(LabError::MissingProgram { program, package });
        }
    }
    if !Path::new(OVS_SCHEMA).is_file() {
        return Err(LabError::MissingSchema {
            path: OVS_SCHEMA.into(),
        });
    }
    Ok(())
}

/// A directory no other sandbox uses, in this process (a counter) or another (the PID);
/// created exclusively, so a leftover of a dead process with the same PID is skipped.
fn unique_dir(name: &str) -> Result<PathBuf> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    loop {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("weft-ovs-{name}-{pid}-{seq}"));
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(LabError::Io {
                    op: "create",
                    path,
                    source,
                });
            }
        }
    }
}
