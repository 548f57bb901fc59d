//! VMs: a network namespace with one NIC (`eth0`) whose veth peer is a port on a
//! hypervisor's `br-int`, tagged the way a hypervisor's VIF plugging tags it
//! (`external_ids:iface-id` = logical port, `attached-mac`). A VM can be unplugged, or
//! moved to another hypervisor keeping its namespace, addresses and iface-id: the
//! controller must notice the new binding and reprogram both hypervisors.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::cmd::Cmd;
use super::error::{LabError, Result};
use super::hypervisor::{Hypervisor, InterfaceInfo};
use super::netsock::{TcpEchoReport, TcpEchoServer, in_netns, tcp_echo};
use super::ping::{ContinuousPing, PingReport};
use super::{Shared, VmRecord};

/// Port names OVS or the lab already use inside a hypervisor namespace.
const RESERVED_PORTS: &[&str] = &["lo", "ul0", "br-int", "br-phy", "ovs-netdev", "ovs-system"];

/// What to plug: name (also the br-int port name), MAC, addresses and logical port id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    pub(crate) name: String,
    pub(crate) mac: String,
    pub(crate) addrs: Vec<(IpAddr, u8)>,
    pub(crate) iface_id: String,
    pub(crate) mtu: u32,
}

impl VmSpec {
    /// A VM named `name` (1..=15 chars of `[a-z0-9_.-]`, it becomes the br-int port name)
    /// with MAC `mac` and logical port id `iface_id`. Add addresses with
    /// [`VmSpec::addr`]. MTU defaults to 1400, leaving room for Geneve/VXLAN headers on the
    /// 1500-byte underlay.
    pub fn new(name: &str, mac: &str, iface_id: &str) -> Self {
        VmSpec {
            name: name.to_owned(),
            mac: mac.to_owned(),
            addrs: Vec::new(),
            iface_id: iface_id.to_owned(),
            mtu: 1400,
        }
    }

    /// Adds an IPv4 or IPv6 address in CIDR form, e.g. `10.0.0.1/24` or `fd00::1/64`.
    pub fn addr(mut self, cidr: &str) -> Result<Self> {
        let bad = |reason| LabError::Invalid {
            what: "address",
            value: cidr.to_owned(),
            reason,
        };
        let (ip, len) = cidr
            .split_once('/')
            .ok_or_else(|| bad("expected ADDRESS/PREFIX"))?;
        let ip: IpAddr = ip.parse().map_err(|_| bad("not an IP address"))?;
        let len: u8 = len
            .parse()
            .map_err(|_| bad("prefix length is not a number"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(bad("prefix length too long"));
        }
        self.addrs.push((ip, len));
        Ok(self)
    }

    /// Overrides the NIC MTU.
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = mtu;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |what, value: &str, reason| LabError::Invalid {
            what,
            value: value.to_owned(),
            reason,
        };
        let n = &self.name;
        if n.is_empty() || n.len() > 15 {
            return Err(bad(
                "VM name",
                n,
                "must be 1..=15 characters (it is a Linux interface name)",
            ));
        }
        if !n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
        {
            return Err(bad(
                "VM name",
                n,
                "only a-z, 0-9, '_', '.', '-' are allowed",
            ));
        }
        if RESERVED_PORTS.contains(&n.as_str()) || n.starts_with("wt-") {
            return Err(bad(
                "VM name",
                n,
                "collides with a port the lab or the controller owns",
            ));
        }
        let octets: Vec<&str> = self.mac.split(':').collect();
        if octets.len() != 6
            || !octets
                .iter()
                .all(|o| o.len() == 2 && u8::from_str_radix(o, 16).is_ok())
        {
            return Err(bad(
                "MAC",
                &self.mac,
                "expected six hex octets like 02:00:00:00:00:01",
            ));
        }
        if self.iface_id.is_empty() || self.iface_id.contains(['"', '\n']) {
            return Err(bad(
                "iface-id",
                &self.iface_id,
                "must be non-empty, without quotes or newlines",
            ));
        }
        if !(68..=9000).contains(&self.mtu) {
            return Err(bad("MTU", &self.mtu.to_string(), "must be in 68..=9000"));
        }
        Ok(())
    }

    /// The VM's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A handle to a VM of a lab (cheap to clone). The lab owns the VM; the handle stays
/// valid until the VM is unplugged or the lab dropped.
#[derive(Debug, Clone)]
pub struct Vm {
    pub(crate) shared: Arc<Shared>,
    pub(crate) name: String,
}

impl Vm {
    /// The VM's name (and its br-int port name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The VM's network namespace.
    pub fn netns(&self) -> String {
        self.shared.id.vm_netns(&self.name)
    }

    fn record(&self) -> Result<VmRecord> {
        self.shared
            .vms()
            .get(&self.name)
            .cloned()
            .ok_or_else(|| LabError::UnknownVm(self.name.clone()))
    }

    /// The spec it was plugged with.
    pub fn spec(&self) -> Result<VmSpec> {
        Ok(self.record()?.spec)
    }

    /// Number (1-based) of the hypervisor it is plugged into now.
    pub fn hypervisor_number(&self) -> Result<usize> {
        Ok(self.record()?.hv)
    }

    /// Runs a command inside the VM; returns stdout (non-zero exit is an error).
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        Cmd::new(program).args(args).netns(&self.netns()).run()
    }

    /// Runs a command inside the VM and returns its raw output whatever the exit status.
    pub fn exec_output(&self, program: &str, args: &[&str]) -> Result<std::process::Output> {
        Cmd::new(program).args(args).netns(&self.netns()).output()
    }

    /// `ping -c COUNT -i INTERVAL -W 1 DST` from the VM. Lost replies are not an error:
    /// read them from the report.
    pub fn ping(&self, dst: IpAddr, count: u32, interval: Duration) -> Result<PingReport> {
        let secs = format!("{:.3}", interval.as_secs_f64().max(0.002));
        let cmd = Cmd::new("ping")
            .args(["-n", "-c", &count.to_string(), "-i", &secs, "-W", "1"])
            .arg(dst.to_string())
            .netns(&self.netns());
        let out = cmd.output()?;
        // ping exits 1 when replies are missing (a result), 2 on errors (no summary).
        PingReport::parse(&cmd.display(), &String::from_utf8_lossy(&out.stdout))
            .map_err(|_| cmd.failed(&out))
    }

    /// Pings until one reply comes back or `timeout` passes; returns the number of
    /// attempts. The first packet towards a new tunnel peer is dropped while OVS resolves
    /// the next hop, so tests warm a path with this before counting losses.
    pub fn ping_until_reachable(&self, dst: IpAddr, timeout: Duration) -> Result<u32> {
        let mut attempts = 0;
        super::wait_for(
            &format!("{dst} to answer ping from {}", self.name),
            timeout,
            || {
                attempts += 1;
                Ok(self.ping(dst, 1, Duration::from_millis(200))?.received > 0)
            },
        )?;
        Ok(attempts)
    }

    /// Starts a background `ping -i INTERVAL DST` (10 ms is the usual choice);
    /// [`ContinuousPing::stop`] reports how many replies were lost.
    pub fn ping_continuous(&self, dst: IpAddr, interval: Duration) -> Result<ContinuousPing> {
        ContinuousPing::start(&self.netns(), dst, interval)
    }

    /// Starts a TCP echo server inside the VM on `addr` (use `0.0.0.0:PORT` for any).
    pub fn tcp_echo_server(&self, addr: SocketAddr) -> Result<TcpEchoServer> {
        TcpEchoServer::start(&self.netns(), addr)
    }

    /// Connects from the VM to an echo server at `dst`, sends `len` bytes of a pattern,
    /// and checks all of them come back intact.
    pub fn tcp_echo(
        &self,
        dst: SocketAddr,
        len: usize,
        timeout: Duration,
    ) -> Result<TcpEchoReport> {
        tcp_echo(&self.netns(), dst, len, timeout)
    }

    /// A `std::net::TcpListener` living in the VM's namespace.
    pub fn tcp_listen(&self, addr: SocketAddr) -> Result<std::net::TcpListener> {
        in_netns(&self.netns(), "tcp listen", || {
            std::net::TcpListener::bind(addr)
        })
    }

    /// A `std::net::TcpStream` connected from the VM's namespace.
    pub fn tcp_connect(&self, dst: SocketAddr, timeout: Duration) -> Result<std::net::TcpStream> {
        in_netns(&self.netns(), "tcp connect", || {
            std::net::TcpStream::connect_timeout(&dst, timeout)
        })
    }

    /// The VM's Interface row on its current hypervisor.
    pub fn interface(&self, hv: &Hypervisor) -> Result<InterfaceInfo> {
        hv.interface(&self.name)
    }

    /// Removes the VM from br-int and deletes its namespace.
    pub fn unplug(self, hv: &Hypervisor) -> Result<()> {
        let rec = self.record()?;
        check_same_lab(&self.shared, hv)?;
        if rec.hv != hv.number() {
            return Err(LabError::Invalid {
                what: "hypervisor",
                value: hv.name().to_owned(),
                reason: "the VM is not plugged into this hypervisor",
            });
        }
        detach(hv, &self.name)?;
        kill_namespace_processes(&self.netns());
        Cmd::new("ip").args(["netns", "del", &self.netns()]).run()?;
        self.shared.vms().remove(&self.name);
        Ok(())
    }

    /// Moves the VM from hypervisor `from` to `to` (live-migration style, minus the
    /// memory): the old port is deleted from `from`'s br-int, a new veth is created from
    /// `to` into the same VM namespace with the same MAC, addresses and iface-id.
    pub fn move_to(&self, from: &Hypervisor, to: &Hypervisor) -> Result<()> {
        check_same_lab(&self.shared, from)?;
        check_same_lab(&self.shared, to)?;
        let rec = self.record()?;
        if rec.hv != from.number() {
            return Err(LabError::Invalid {
                what: "hypervisor",
                value: from.name().to_owned(),
                reason: "the VM is not plugged into this hypervisor",
            });
        }
        detach(from, &self.name)?;
        attach(to, &rec.spec, &self.netns())?;
        if let Some(r) = self.shared.vms().get_mut(&self.name) {
            r.hv = to.number();
        }
        Ok(())
    }
}

fn check_same_lab(shared: &Shared, hv: &Hypervisor) -> Result<()> {
    if hv.shared.id != shared.id {
        return Err(LabError::ForeignHypervisor {
            hypervisor: hv.name().to_owned(),
            hv_lab: hv.shared.id.to_string(),
            vm_lab: shared.id.to_string(),
        });
    }
    Ok(())
}

/// Creates the VM namespace and plugs it into `hv`.
pub(crate) fn plug(hv: &Hypervisor, spec: VmSpec) -> Result<Vm> {
    spec.validate()?;
    let shared = hv.shared.clone();
    {
        let mut vms = shared.vms();
        if vms.contains_key(&spec.name) {
            return Err(LabError::DuplicateVm(spec.name));
        }
        // Reserve the name before the slow part so concurrent plugs cannot collide.
        vms.insert(
            spec.name.clone(),
            VmRecord {
                spec: spec.clone(),
                hv: hv.number(),
            },
        );
    }
    let netns = shared.id.vm_netns(&spec.name);
    let result = (|| {
        Cmd::new("ip").args(["netns", "add", &netns]).run()?;
        let has_v6 = spec.addrs.iter().any(|(ip, _)| ip.is_ipv6());
        // Without IPv6 addresses, IPv6 off: no router solicitations or DAD probes that
        // would show up in "did anything leave the hypervisor" counters.
        let v6 = if has_v6 { "0" } else { "1" };
        Cmd::new("sysctl")
            .args([
                "-qw",
                &format!("net.ipv6.conf.all.disable_ipv6={v6}"),
                &format!("net.ipv6.conf.default.disable_ipv6={v6}"),
            ])
            .netns(&netns)
            .run()?;
        Cmd::new("ip")
            .args(["-n", &netns, "link", "set", "dev", "lo", "up"])
            .run()?;
        attach(hv, &spec, &netns)
    })();
    if let Err(e) = result {
        kill_namespace_processes(&netns);
        let _ = Cmd::new("ip").args(["netns", "del", &netns]).run();
        shared.vms().remove(&spec.name);
        return Err(e);
    }
    Ok(Vm {
        shared,
        name: spec.name,
    })
}

/// Creates the veth from `hv` into the VM namespace, configures the VM side and adds the
/// hypervisor side to br-int; fails if OVS could not open the port.
fn attach(hv: &Hypervisor, spec: &VmSpec, netns: &str) -> Result<()> {
    let hv_ns = hv.netns();
    let port = spec.name.as_str();
    let mtu = spec.mtu.to_string();
    Cmd::new("ip")
        .args([
            "-n", hv_ns, "link", "add", "name", port, "type", "veth", "peer", "name", "eth0",
            "netns", netns,
        ])
        .run()?;
    Cmd::new("ip")
        .args(["-n", hv_ns, "link", "set", "dev", port, "mtu", &mtu, "up"])
        .run()?;
    Cmd::new("ip")
        .args([
            "-n", netns, "link", "set", "dev", "eth0", "address", &spec.mac, "mtu", &mtu, "up",
        ])
        .run()?;
    for (ip, len) in &spec.addrs {
        let cidr = format!("{ip}/{len}");
        let mut cmd = Cmd::new("ip").args(["-n", netns, "addr", "add", &cidr, "dev", "eth0"]);
        if ip.is_ipv6() {
            cmd = cmd.arg("nodad"); // usable at once; DAD would delay tests ~1 s
        }
        cmd.run()?;
    }
    // PITFALL: with TX checksum offload on, TCP leaving the VM carries a partial checksum
    // that the userspace datapath forwards as is: ping works, TCP does not.
    Cmd::new("ethtool")
        .args(["-K", "eth0", "tx", "off"])
        .netns(netns)
        .run()?;
    hv.vsctl([
        "--",
        "add-port",
        "br-int",
        port,
        "--",
        "set",
        "Interface",
        port,
        &format!("external_ids:iface-id=\"{}\"", spec.iface_id),
        &format!("external_ids:attached-mac=\"{}\"", spec.mac),
        "external_ids:iface-status=active",
        &format!("external_ids:vm-id={}", spec.name),
    ])?;
    // ovs-vsctl exits 0 even when the port could not be opened.
    let info = hv.interface(port)?;
    if !info.is_up() {
        return Err(LabError::InterfaceFailed {
            hypervisor: hv.name().to_owned(),
            interface: port.to_owned(),
            ofport: info.ofport,
            error: info.error,
        });
    }
    Ok(())
}

/// Removes the VM's port from `hv`'s br-int and deletes the veth (both ends).
fn detach(hv: &Hypervisor, port: &str) -> Result<()> {
    hv.vsctl(["--if-exists", "del-port", "br-int", port])?;
    Cmd::new("ip")
        .args(["-n", hv.netns(), "link", "del", "dev", port])
        .run()?;
    Ok(())
}

/// SIGKILLs every process inside one of the lab's own namespaces (pings, servers a test
/// started with `exec`); by PID, from `ip netns pids`.
pub(crate) fn kill_namespace_processes(netns: &str) {
    let Ok(out) = Cmd::new("ip").args(["netns", "pids", netns]).run() else {
        return;
    };
    let pids: Vec<u32> = out
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    super::process::kill_all(&pids);
}
