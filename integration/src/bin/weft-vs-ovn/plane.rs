//! What the benchmark asks of a control plane (Weft or OVN), and the helpers both sides
//! share: process CPU (a cpuacct cgroup, else `/proc`) and memory, and a VM whose namespace and veth exist
//! before it is plugged (so that "plug" is the `ovs-vsctl add-port` alone).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use integration::Cmd;
use integration::lab::Hypervisor;

/// A logical port as both planes define it: name, MAC, one IPv4 address, port security
/// on (Weft's default; OVN's `lsp-set-port-security` with the same pair).
#[derive(Debug, Clone)]
pub struct PortDef {
    pub switch: String,
    pub name: String,
    pub mac: String,
    pub ip: Ipv4Addr,
}

/// The operations the rows need, each one request of the plane's own northbound interface.
pub trait Plane {
    /// "Weft" or "OVN".
    fn label(&self) -> &'static str;
    /// The `Interface.external_ids` key the plane sets to `true` once a VIF's flows are in.
    fn installed_key(&self) -> &'static str;
    /// Creates the logical switches `(name, vni)`.
    fn create_switches(&mut self, switches: &[(String, u32)]) -> Result<()>;
    /// Creates `ports` in one request.
    fn create_ports(&mut self, ports: &[PortDef]) -> Result<()>;
    /// Deletes the named ports in one request.
    fn delete_ports(&mut self, names: &[String]) -> Result<()>;
    /// Puts the reflexive ACL set on every port of `switch` (`ports`).
    fn add_acls(&mut self, switch: &str, ports: &[String]) -> Result<()>;
    /// The processes counted as "the controller" for CPU and RSS.
    fn controller_pids(&self) -> Vec<u32>;
    /// SIGKILLs the control-plane process(es) serving the hypervisors and starts them
    /// again on the same state.
    fn kill_and_restart(&mut self) -> Result<()>;
    /// Restarts `hv`'s ovs-vswitchd the way the plane's packaging does.
    fn restart_vswitchd_packaged(&self, hv: &Hypervisor) -> Result<()>;
    /// The plane's own account of where plug → installed goes, per hop: cumulative
    /// (sum of seconds, count) by hop name. None when the plane keeps no such account.
    fn plug_hops(&self) -> Option<PlugHops> {
        None
    }
}

/// Per hop: (sum of seconds, number of plugs), cumulative since the plane started.
pub type PlugHops = std::collections::BTreeMap<String, (f64, f64)>;

/// Adds what happened between readings `h0` and `h1` to the running (before, after)
/// totals `acc`, so that several windows read as one.
pub fn add_hops(acc: &mut (PlugHops, PlugHops), h0: &PlugHops, h1: &PlugHops) {
    for (hop, (sum, count)) in h1 {
        let (s0, c0) = h0.get(hop).copied().unwrap_or((0.0, 0.0));
        acc.0.entry(hop.clone()).or_default();
        let e = acc.1.entry(hop.clone()).or_default();
        e.0 += sum - s0;
        e.1 += count - c0;
    }
}

/// The mean of each hop between two readings of [`Plane::plug_hops`], in ms.
pub fn hop_means(before: &PlugHops, after: &PlugHops) -> Vec<(String, f64, f64)> {
    after
        .iter()
        .map(|(hop, (sum, count))| {
            let (s0, c0) = before.get(hop).copied().unwrap_or((0.0, 0.0));
            let n = count - c0;
            let mean = if n > 0.0 {
                (sum - s0) / n * 1000.0
            } else {
                0.0
            };
            (hop.clone(), mean, n)
        })
        .collect()
}

/// utime + stime of a process in ms, from `/proc/PID/stat`: the whole thread group,
/// including threads that have exited (unlike summing the live threads' `schedstat`).
pub fn cpu_ms(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = text.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, utime 14, stime 15.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux ABI this runs on (sysconf(_SC_CLK_TCK)).
    Some(ticks as f64 * 10.0)
}

/// Summed CPU ms of `pids` (a vanished process counts 0).
pub fn cpu_sum(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|p| cpu_ms(*p)).sum()
}

/// The CPU time of a set of processes, read from a cpuacct cgroup made for them when the
/// machine has cgroup v1's cpuacct (nanoseconds, every thread counted, also one that
/// exits within the window), else summed from `/proc/PID/stat` (10 ms ticks, sampled: a
/// batch that costs a hypervisor 40 ms is then a few ticks). The processes go back to
/// their own cgroups when the meter is dropped.
pub struct CpuMeter {
    group: Option<PathBuf>,
    pids: Vec<u32>,
    /// Each process's cpuacct cgroup before it joined ours.
    homes: Vec<(u32, String)>,
}

const CPUACCT: &str = "/sys/fs/cgroup/cpuacct";

impl CpuMeter {
    pub fn new(label: &str, pids: Vec<u32>) -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let mut m = CpuMeter {
            group: None,
            pids,
            homes: Vec::new(),
        };
        let dir = PathBuf::from(CPUACCT).join(format!(
            "weft-vs-ovn.{}.{label}.{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        if std::fs::create_dir(&dir).is_err() {
            return m;
        }
        m.group = Some(dir.clone());
        for &pid in &m.pids {
            let Some(home) = cpuacct_home(pid) else {
                continue;
            };
            if std::fs::write(dir.join("cgroup.procs"), pid.to_string()).is_err() {
                // Some process could not join: fall back to /proc for all of them.
                m.release();
                return m;
            }
            m.homes.push((pid, home));
        }
        m
    }

    /// CPU ms so far (meaningful as a difference between two readings).
    pub fn ms(&self) -> f64 {
        let read = |dir: &PathBuf| -> Option<f64> {
            let ns: u64 = std::fs::read_to_string(dir.join("cpuacct.usage"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            Some(ns as f64 / 1e6)
        };
        match self.group.as_ref().and_then(read) {
            Some(ms) => ms,
            None => cpu_sum(&self.pids),
        }
    }

    fn release(&mut self) {
        for (pid, home) in self.homes.drain(..) {
            let target = PathBuf::from(CPUACCT).join(home.trim_start_matches('/'));
            let _ = std::fs::write(target.join("cgroup.procs"), pid.to_string());
        }
        if let Some(dir) = self.group.take() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

impl Drop for CpuMeter {
    fn drop(&mut self) {
        self.release();
    }
}

/// The cpuacct cgroup path of `pid` (from `/proc/PID/cgroup`).
fn cpuacct_home(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        controllers
            .split(',')
            .any(|c| c == "cpuacct")
            .then(|| path.to_owned())
    })
}

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The hypervisors' own OVS daemons (ovsdb-server + ovs-vswitchd of every hypervisor).
pub fn hypervisor_pids(hvs: &[Hypervisor]) -> Vec<u32> {
    use integration::lab::Daemon;
    hvs.iter()
        .flat_map(|hv| [hv.pid(Daemon::OvsdbServer), hv.pid(Daemon::Vswitchd)])
        .flatten()
        .collect()
}

/// Whether `hv`'s Interface `name` carries `key=true`.
pub fn is_installed(hv: &Hypervisor, name: &str, key: &str) -> bool {
    hv.interface(name)
        .map(|i| i.external_ids.get(key).map(String::as_str) == Some("true"))
        .unwrap_or(false)
}

/// Polls (every 1 ms, each poll one `ovs-vsctl`) until `name` is installed.
pub fn wait_installed(hv: &Hypervisor, name: &str, key: &str, timeout: Duration) -> Result<()> {
    let t = Instant::now();
    while !is_installed(hv, name, key) {
        if t.elapsed() > timeout {
            bail!("{name} on {} not {key} within {timeout:?}", hv.name());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<()> {
    Cmd::new("ip")
        .args(args)
        .run()
        .map(drop)
        .map_err(Into::into)
}

/// A VM made ready but not plugged: its namespace, and a veth whose hypervisor end
/// (named after the port) is in the hypervisor's namespace, not yet on br-int. Dropping it
/// removes the port from br-int and deletes the namespace (and with it the veth).
pub struct Vif<'a> {
    hv: &'a Hypervisor,
    ns: String,
    pub name: String,
}

impl<'a> Vif<'a> {
    pub fn prepare(hv: &'a Hypervisor, name: &str, mac: &str, cidr: &str) -> Result<Self> {
        let ns = format!("{}-{name}", hv.netns());
        ip(&["netns", "add", &ns])?;
        let vif = Vif {
            hv,
            ns,
            name: name.to_string(),
        };
        let ns = vif.ns.as_str();
        let hvns = hv.netns();
        ip(&[
            "-n", hvns, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ])?;
        ip(&["-n", hvns, "link", "set", name, "mtu", "1400", "up"])?;
        ip(&[
            "-n", ns, "link", "set", "eth0", "address", mac, "mtu", "1400", "up",
        ])?;
        ip(&["-n", ns, "addr", "add", cidr, "dev", "eth0"])?;
        // ARP retried at the ping's pace, so a request sent before the flows exist does
        // not hold the first reply back by a second; checksum offload off as the lab does.
        Cmd::new("sysctl")
            .args([
                "-qw",
                "net.ipv4.neigh.eth0.retrans_time_ms=10",
                "net.ipv4.neigh.eth0.mcast_solicit=200",
            ])
            .netns(ns)
            .run()?;
        Cmd::new("ethtool")
            .args(["-K", "eth0", "tx", "off"])
            .netns(ns)
            .run()?;
        Ok(vif)
    }

    /// `ovs-vsctl add-port br-int NAME -- set Interface NAME external_ids:iface-id=NAME`.
    pub fn plug(&self) -> Result<()> {
        self.hv.vsctl([
            "add-port",
            "br-int",
            &self.name,
            "--",
            "set",
            "Interface",
            &self.name,
            &format!("external_ids:iface-id={}", self.name),
        ])?;
        Ok(())
    }

    /// `ping -D -i 0.01` to `dst` from inside the VM, for at most 10 s.
    pub fn start_ping(&self, dst: Ipv4Addr) -> Result<Child> {
        Cmd::new("ping")
            .args(["-D", "-n", "-i", "0.01", "-w", "10"])
            .arg(dst.to_string())
            .netns(&self.ns)
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn ping")
    }
}

impl Drop for Vif<'_> {
    fn drop(&mut self) {
        let _ = self
            .hv
            .vsctl(["--if-exists", "del-port", "br-int", &self.name]);
        let _ = Cmd::new("ip").args(["netns", "del", &self.ns]).run();
    }
}

/// The Unix time of the first reply line `ping -D` printed (`[1700000000.123456] 64 bytes
/// from ...`), reading until one arrives or the ping ends.
pub fn first_reply_unix(ping: &mut Child) -> Option<f64> {
    use std::io::{BufRead, BufReader};
    let out = ping.stdout.take()?;
    let line = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("bytes from"))?;
    line.trim_start_matches('[').split(']').next()?.parse().ok()
}

pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
