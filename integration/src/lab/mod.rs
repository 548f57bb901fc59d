//! The real-OVS lab: hypervisors as network namespaces with private OVS daemons, an
//! underlay, VMs, and the helpers end-to-end tests need.
//!
//! ```text
//!  root namespace (test process, controller)
//!    wft<id>  10.K.0.254/24  == lab.controller_ip()
//!      │ veth
//!  weftlab-<id>-ul:  Linux bridge `ul` ── ctl, hv1, hv2, ... (veths)
//!                                          │
//!  weftlab-<id>-hvN:  ul0 ── br-phy (netdev, 10.K.0.N/24 on its internal port)
//!                     br-int (netdev, empty) ── <vm> ports ── weftlab-<id>-vm-<vm>: eth0
//!                     ovsdb-server + ovs-vswitchd, files in $TMPDIR/weftlab-<id>/hvN/
//! ```
//!
//! How a controller in the test process reaches the hypervisors: the root namespace has
//! one address on the underlay, [`Lab::controller_ip`] (`10.K.0.254`). Listen there (or on
//! 0.0.0.0) and point hypervisors at it with [`Hypervisor::set_manager`]
//! (`tcp:10.K.0.254:6640`) and, in br-int's Controller row, `tcp:10.K.0.254:6653`. Their
//! connections leave through br-phy, i.e. through ovs-vswitchd. The controller can also
//! dial hypervisors: transport IPs are routed from the root namespace, and each ovsdb-server
//! also listens on [`Hypervisor::db_target`] (a unix socket).
//!
//! `K` is chosen per lab (100..=249, reserved through a file in `$TMPDIR/weftlab-nets/`
//! and skipped if the host already uses `10.K.`) so labs in one `cargo test`, or in
//! several processes, never share a subnet. See [`naming`] for every name a lab uses.

pub(crate) mod cmd;
mod error;
mod hypervisor;
pub mod naming;
mod netsock;
mod ovsjson;
mod ping;
pub(crate) mod process;
mod vm;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use crate::sandbox::Daemon;
pub use error::{LabError, Result};
pub use hypervisor::{DaemonMemory, Hypervisor, InterfaceInfo, PortStats};
pub use naming::LabId;
pub use netsock::{TcpEchoReport, TcpEchoServer};
pub use ping::{ContinuousPing, ContinuousPingReport, PingReport};
pub use vm::{Vm, VmSpec};

use cmd::Cmd;
use process::{owned_by, read_pidfile, terminate_all};

/// The OVSDB schema every hypervisor database is created from.
pub const OVS_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
/// Prefix length of the underlay subnet.
pub const UNDERLAY_PREFIX_LEN: u8 = 24;
const SUBNET_FIRST: u8 = 100;
const SUBNET_LAST: u8 = 249;
/// At most 253 hypervisors: `.1`..=`.253`, `.254` is the controller.
pub const MAX_HYPERVISORS: usize = 253;

/// Tunnel encapsulation a lab's hypervisors advertise (`external_ids:weft-encap-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encap {
    /// Geneve (the default, as in DESIGN.md).
    #[default]
    Geneve,
    /// VXLAN.
    Vxlan,
}

impl Encap {
    /// The OVSDB spelling: `geneve` or `vxlan` (also the Interface `type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Encap::Geneve => "geneve",
            Encap::Vxlan => "vxlan",
        }
    }
}

/// Where a VM is: its spec and the hypervisor number it is plugged into.
#[derive(Debug, Clone)]
pub(crate) struct VmRecord {
    pub(crate) spec: VmSpec,
    pub(crate) hv: usize,
}

/// State shared by a lab, its hypervisors and its VM handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: LabId,
    pub(crate) dir: PathBuf,
    pub(crate) subnet: u8,
    pub(crate) encap: Encap,
    vms: Mutex<BTreeMap<String, VmRecord>>,
}

impl Shared {
    pub(crate) fn vms(&self) -> MutexGuard<'_, BTreeMap<String, VmRecord>> {
        self.vms.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn transport_ip(&self, n: usize) -> Result<Ipv4Addr> {
        let host = u8::try_from(n)
            .ok()
            .filter(|h| (1..=253).contains(h))
            .ok_or_else(|| LabError::Invalid {
                what: "hypervisor number",
                value: n.to_string(),
                reason: "must be in 1..=253",
            })?;
        Ok(Ipv4Addr::new(10, self.subnet, 0, host))
    }
}

/// Configures a [`Lab`]; see [`Lab::builder`].
#[derive(Debug, Clone)]
pub struct LabBuilder {
    hypervisors: usize,
    encap: Encap,
}

impl LabBuilder {
    /// Number of hypervisors (1..=253, default 2).
    pub fn hypervisors(mut self, n: usize) -> Self {
        self.hypervisors = n;
        self
    }

    /// Encapsulation the hypervisors advertise (default Geneve).
    pub fn encap(mut self, encap: Encap) -> Self {
        self.encap = encap;
        self
    }

    /// Checks prerequisites, then builds the underlay and the hypervisors (in parallel).
    /// On any error everything built so far is torn down.
    pub fn build(self) -> Result<Lab> {
        if self.hypervisors == 0 || self.hypervisors > MAX_HYPERVISORS {
            return Err(LabError::Invalid {
                what: "hypervisor count",
                value: self.hypervisors.to_string(),
                reason: "must be in 1..=253",
            });
        }
        preflight()?;
        // Once per process: remove leftovers of crashed runs (dead creator, not kept), so
        // they never pile up. Set WEFT_LAB_NO_AUTO_CLEANUP=1 to keep them for inspection.
        static AUTO_CLEANUP: std::sync::Once = std::sync::Once::new();
        if std::env::var_os("WEFT_LAB_NO_AUTO_CLEANUP").is_none() {
            AUTO_CLEANUP.call_once(|| {
                let removed = Lab::cleanup_stale();
                if !removed.is_empty() {
                    eprintln!(
                        "weft lab: removed {} stale lab(s) of dead processes: {removed:?}",
                        removed.len()
                    );
                }
            });
        }
        let id = LabId::next();
        let dir = id.state_dir();
        if dir.exists() {
            // Same pid and seq as a dead process's lab: a leftover, never a live lab.
            teardown(id);
        }
        std::fs::create_dir_all(&dir).map_err(|source| LabError::Io {
            op: "create",
            path: dir.clone(),
            source,
        })?;
        let subnet = match reserve_subnet(id) {
            Ok(k) => k,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let shared = Arc::new(Shared {
            id,
            dir,
            subnet,
            encap: self.encap,
            vms: Mutex::default(),
        });
        // From here on, dropping `lab` tears down whatever exists.
        let mut lab = Lab {
            shared,
            hypervisors: Vec::new(),
            kept: false,
        };
        lab.create_underlay()?;
        let shared = &lab.shared;
        let built: Vec<Result<Hypervisor>> = std::thread::scope(|s| {
            let handles: Vec<_> = (1..=self.hypervisors)
                .map(|n| s.spawn(move || Hypervisor::create(shared.clone(), n)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(LabError::ThreadPanicked {
                            what: "hypervisor bring-up".into(),
                        })
                    })
                })
                .collect()
        });
        for hv in built {
            lab.hypervisors.push(hv?);
        }
        Ok(lab)
    }
}

/// A running lab. Dropping it stops every daemon it started (by PID) and deletes its
/// namespaces, veths and files, also when the test panicked.
#[derive(Debug)]
pub struct Lab {
    shared: Arc<Shared>,
    hypervisors: Vec<Hypervisor>,
    kept: bool,
}

impl Lab {
    /// Starts configuring a lab: `Lab::builder().hypervisors(3).encap(Encap::Vxlan).build()`.
    pub fn builder() -> LabBuilder {
        LabBuilder {
            hypervisors: 2,
            encap: Encap::Geneve,
        }
    }

    /// This lab's id (embedded in all its names).
    pub fn id(&self) -> LabId {
        self.shared.id
    }

    /// The encapsulation its hypervisors advertise.
    pub fn encap(&self) -> Encap {
        self.shared.encap
    }

    /// All hypervisors, `hv1` first.
    pub fn hypervisors(&self) -> &[Hypervisor] {
        &self.hypervisors
    }

    /// Hypervisor by 0-based index.
    ///
    /// # Panics
    /// When `index` is out of range (a bug in the test, like slice indexing).
    #[track_caller]
    pub fn hv(&self, index: usize) -> &Hypervisor {
        match self.hypervisors.get(index) {
            Some(hv) => hv,
            None => panic!(
                "lab has {} hypervisors, no index {index}",
                self.hypervisors.len()
            ),
        }
    }

    /// Adds one more hypervisor (the next number) to a running lab, e.g. to test a
    /// transport node joining.
    pub fn add_hypervisor(&mut self) -> Result<&Hypervisor> {
        let n = self.hypervisors.len() + 1;
        let hv = Hypervisor::create(self.shared.clone(), n)?;
        self.hypervisors.push(hv);
        Ok(self.hv(n - 1))
    }

    /// The root namespace's address on the underlay: what a controller in the test process
    /// listens on / advertises (`tcp:<this>:6640`, `tcp:<this>:6653`).
    pub fn controller_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.shared.subnet, 0, 254)
    }

    /// Network address of the underlay (`10.K.0.0`, prefix [`UNDERLAY_PREFIX_LEN`]).
    pub fn underlay_network(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.shared.subnet, 0, 0)
    }

    /// Name of the root-namespace veth into the underlay (`wft<id>`).
    pub fn root_link(&self) -> String {
        self.shared.id.root_link()
    }

    /// Namespace of the underlay bridge.
    pub fn underlay_netns(&self) -> String {
        self.shared.id.underlay_netns()
    }

    /// The lab's state directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Plugs a VM into hypervisor `hv` (see [`VmSpec`]).
    pub fn plug_vm(&self, hv: &Hypervisor, spec: VmSpec) -> Result<Vm> {
        if hv.shared.id != self.shared.id {
            return Err(LabError::ForeignHypervisor {
                hypervisor: hv.name().to_owned(),
                hv_lab: hv.shared.id.to_string(),
                vm_lab: self.shared.id.to_string(),
            });
        }
        vm::plug(hv, spec)
    }

    /// A handle to the VM called `name`.
    pub fn vm(&self, name: &str) -> Result<Vm> {
        if self.shared.vms().contains_key(name) {
            Ok(Vm {
                shared: self.shared.clone(),
                name: name.to_owned(),
            })
        } else {
            Err(LabError::UnknownVm(name.to_owned()))
        }
    }

    /// Handles to every VM, by name.
    pub fn vms(&self) -> Vec<Vm> {
        self.shared
            .vms()
            .keys()
            .map(|name| Vm {
                shared: self.shared.clone(),
                name: name.clone(),
            })
            .collect()
    }

    /// Memory of every hypervisor's daemons, in hypervisor order.
    pub fn memory(&self) -> Result<Vec<DaemonMemory>> {
        self.hypervisors.iter().map(Hypervisor::memory).collect()
    }

    /// Leaves the lab running after this process exits (for `weft-lab up`): marks it as
    /// kept, so [`Lab::cleanup_stale`] spares it, and disarms `Drop`. Remove it later with
    /// [`Lab::destroy`]. Returns its id.
    pub fn keep(mut self) -> Result<LabId> {
        let marker = self.shared.dir.join(naming::KEEP_MARKER);
        std::fs::write(&marker, b"kept by weft-lab up\n").map_err(|source| LabError::Io {
            op: "write",
            path: marker,
            source,
        })?;
        for hv in &self.hypervisors {
            hv.keep();
        }
        self.kept = true;
        Ok(self.shared.id)
    }

    /// Ids of labs deliberately kept running with [`Lab::keep`].
    pub fn kept_labs() -> Vec<LabId> {
        list_lab_ids()
            .into_iter()
            .filter(|id| id.state_dir().join(naming::KEEP_MARKER).exists())
            .collect()
    }

    /// Tears down a lab by id (daemons by PID, namespaces, veth, files), whatever its state.
    pub fn destroy(id: LabId) {
        teardown(id);
    }

    /// Removes leftovers of labs whose creating process no longer exists (and that were
    /// not kept): daemons (by PID, after checking they run from that lab's directory),
    /// processes inside that lab's namespaces, the namespaces, the root veth, the state
    /// directory and the subnet reservation. Touches nothing outside the naming scheme in
    /// [`naming`]. Returns the ids it removed.
    pub fn cleanup_stale() -> Vec<LabId> {
        let stale: Vec<LabId> = list_lab_ids()
            .into_iter()
            .filter(|id| !id.is_live())
            .collect();
        for id in &stale {
            teardown(*id);
        }
        // Reservations can outlive a lab only if teardown was interrupted.
        if let Ok(entries) = std::fs::read_dir(nets_dir()) {
            for e in entries.flatten() {
                let holder = std::fs::read_to_string(e.path())
                    .ok()
                    .and_then(|s| LabId::parse(s.trim()));
                if holder.is_none_or(|id| !id.is_live()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        stale
    }

    fn create_underlay(&self) -> Result<()> {
        let id = self.shared.id;
        let ns = id.underlay_netns();
        let root = id.root_link();
        Cmd::new("ip").args(["netns", "add", &ns]).run()?;
        Cmd::new("sysctl")
            .args([
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ])
            .netns(&ns)
            .run()?;
        Cmd::new("ip")
            .args(["-n", &ns, "link", "add", "name", "ul", "type", "bridge"])
            .run()?;
        Cmd::new("ip")
            .args(["-n", &ns, "link", "set", "dev", "ul", "up"])
            .run()?;
        // The controller veth: created in the root namespace, peer moved into the underlay.
        Cmd::new("ip")
            .args([
                "link", "add", "name", &root, "type", "veth", "peer", "name", "ctl", "netns", &ns,
            ])
            .run()?;
        let v6 = PathBuf::from(format!("/proc/sys/net/ipv6/conf/{root}/disable_ipv6"));
        if v6.exists() {
            std::fs::write(&v6, b"1").map_err(|source| LabError::Io {
                op: "write",
                path: v6,
                source,
            })?;
        }
        let cidr = format!("{}/{UNDERLAY_PREFIX_LEN}", self.controller_ip());
        Cmd::new("ip")
            .args(["addr", "add", &cidr, "dev", &root])
            .run()?;
        // PITFALL: TCP the root namespace sends (the controller's SYN-ACKs, OpenFlow, OVSDB)
        // would leave with a partial checksum that the hypervisor's userspace datapath
        // forwards unchanged to br-phy: connections hang while ping works.
        Cmd::new("ethtool").args(["-K", &root, "tx", "off"]).run()?;
        Cmd::new("ip")
            .args(["link", "set", "dev", &root, "up"])
            .run()?;
        Cmd::new("ip")
            .args(["-n", &ns, "link", "set", "dev", "ctl", "master", "ul", "up"])
            .run()?;
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        // Graceful first (parallel SIGTERM), then the generic name-based teardown.
        let mut pids = Vec::new();
        let mut rundirs = Vec::new();
        for hv in &self.hypervisors {
            pids.extend(hv.running_pids());
            rundirs.push(hv.ovs().run_dir());
        }
        terminate_all(&pids, Duration::from_secs(5), |p| {
            rundirs.iter().any(|r| owned_by(p, r))
        });
        teardown(self.shared.id);
    }
}

/// Polls `condition` every 50 ms until it is true, it fails, or `timeout` passes.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if condition()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(LabError::Timeout {
                what: what.to_owned(),
                timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fails with a clear message when the lab cannot run here: not root, or a tool missing.
pub fn preflight() -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 {
        return Err(LabError::NotRoot { euid });
    }
    const TOOLS: &[(&str, &str)] = &[
        ("ip", "iproute2"),
        ("ethtool", "ethtool"),
        ("ping", "iputils-ping"),
        ("sysctl", "procps"),
    ];
    for &(program, package) in TOOLS {
        if !cmd::in_path(program) {
            return Err(LabError::MissingProgram { program, package });
        }
    }
    crate::sandbox::require_ovs(true)
}

/// Every lab id that has any trace on this machine: namespaces, root links, state dirs.
fn list_lab_ids() -> Vec<LabId> {
    let mut ids = std::collections::BTreeSet::new();
    ids.extend(our_netns().into_iter().map(|(id, _)| id));
    if let Ok(out) = Cmd::new("ip").args(["-o", "link", "show"]).run() {
        for line in out.lines() {
            // "12: wft2lfls-0@if11: <...>"
            if let Some(name) = line
                .split(": ")
                .nth(1)
                .map(|n| n.split('@').next().unwrap_or(n))
            {
                ids.extend(LabId::from_root_link(name));
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for e in entries.flatten() {
            if let Some(name) = e.file_name().to_str() {
                ids.extend(LabId::from_netns(name).filter(|id| id.stem() == name));
            }
        }
    }
    ids.into_iter().collect()
}

/// Our namespaces (by naming scheme), with their lab id.
fn our_netns() -> Vec<(LabId, String)> {
    let Ok(out) = Cmd::new("ip").args(["netns", "list"]).run() else {
        return Vec::new();
    };
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|name| LabId::from_netns(name).map(|id| (id, name.to_owned())))
        .collect()
}

/// Removes everything of lab `id`, working from names and pidfiles only.
fn teardown(id: LabId) {
    let dir = id.state_dir();
    // 1. OVS daemons, from their pidfiles, if they still run from this lab's run dirs.
    let mut pids = Vec::new();
    let mut rundirs = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let run = e.path().join("run");
            for daemon in [Daemon::Vswitchd, Daemon::OvsdbServer] {
                if let Some(pid) = read_pidfile(&run.join(format!("{}.pid", daemon.program())))
                    && owned_by(pid, &run)
                {
                    pids.push(pid);
                }
            }
            rundirs.push(run);
        }
    }
    terminate_all(&pids, Duration::from_secs(5), |p| {
        rundirs.iter().any(|r| owned_by(p, r))
    });
    // 2. Namespaces: anything still running inside is ours (pings, servers); VMs first.
    let mut spaces: Vec<String> = our_netns()
        .into_iter()
        .filter(|(i, _)| *i == id)
        .map(|(_, n)| n)
        .collect();
    spaces.sort_by_key(|n| {
        if n.contains("-vm-") {
            0
        } else if n.ends_with("-ul") {
            2
        } else {
            1
        }
    });
    for ns in &spaces {
        vm::kill_namespace_processes(ns);
        if let Err(e) = Cmd::new("ip").args(["netns", "del", ns]).run() {
            eprintln!("weft lab {id}: {e}");
        }
    }
    // 3. The root veth normally died with the underlay namespace; remove it if not.
    let root = id.root_link();
    if Path::new("/sys/class/net").join(&root).exists() {
        let _ = Cmd::new("ip").args(["link", "del", "dev", &root]).run();
    }
    // 4. Subnet reservation and files.
    if let Ok(entries) = std::fs::read_dir(nets_dir()) {
        for e in entries.flatten() {
            if std::fs::read_to_string(e.path())
                .ok()
                .and_then(|s| LabId::parse(s.trim()))
                == Some(id)
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    if dir.exists()
        && let Err(e) = std::fs::remove_dir_all(&dir)
    {
        eprintln!("weft lab {id}: removing {}: {e}", dir.display());
    }
}

fn nets_dir() -> PathBuf {
    std::env::temp_dir().join("weftlab-nets")
}

/// Picks K for `10.K.0.0/24`: not used by the host, not reserved by a live lab.
/// Reservation is an exclusive file create, so it is atomic across threads and processes.
fn reserve_subnet(id: LabId) -> Result<u8> {
    let dir = nets_dir();
    std::fs::create_dir_all(&dir).map_err(|source| LabError::Io {
        op: "create",
        path: dir.clone(),
        source,
    })?;
    let host = format!(
        "{}\n{}",
        Cmd::new("ip")
            .args(["-4", "-o", "addr", "show"])
            .run()
            .unwrap_or_default(),
        Cmd::new("ip")
            .args(["-4", "route", "show", "table", "all"])
            .run()
            .unwrap_or_default()
    );
    for k in SUBNET_FIRST..=SUBNET_LAST {
        let prefix = format!("10.{k}.");
        if host
            .split(|c: char| c.is_whitespace() || c == '/')
            .any(|w| w.starts_with(&prefix))
        {
            continue;
        }
        let path = dir.join(format!("10.{k}"));
        for _attempt in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(id.to_string().as_bytes())
                        .map_err(|source| LabError::Io {
                            op: "write",
                            path: path.clone(),
                            source,
                        })?;
                    return Ok(k);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| LabId::parse(s.trim()));
                    match holder {
                        Some(h) if h.is_live() => break,
                        // Dead holder, or a file being written right now by a live one:
                        // only reclaim when we can read a dead holder's id.
                        Some(_) => {
                            let _ = std::fs::remove_file(&path);
                        }
                        None => break,
                    }
                }
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
    Err(LabError::NoFreeSubnet {
        first: SUBNET_FIRST,
        last: SUBNET_LAST,
    })
}
