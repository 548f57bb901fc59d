//! The end-to-end harness: a real-OVS namespace lab plus a spawned weftd managing it,
//! with the API at hand. Hypervisors get `set-manager` and nothing else.

use std::time::{Duration, Instant};

use integration::lab::{Encap, Hypervisor, Lab, Vm, VmSpec};
use jsonrpsee::http_client::HttpClient;
use serde_json::{Value, json};

use super::{CallResult, Spawned, call, http_client};

/// How long installing a port's flows may take before a test gives up (a bound, not a
/// timing assertion).
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A lab plus the weftd that manages it; weftd can be stopped and started again on the
/// same data directory and southbound ports.
pub struct Overlay {
    pub lab: Lab,
    pub weftd: Spawned,
    pub api: HttpClient,
    pub rt: tokio::runtime::Runtime,
    pub data: tempfile::TempDir,
    /// Southbound ports (OVSDB, OpenFlow), kept across weftd restarts. Chosen free at
    /// start: another weftd on this machine may hold 6640/6653 on 0.0.0.0.
    pub ports: (u16, u16),
    /// When the current weftd started (its startup hold runs from then).
    pub weftd_started: Instant,
    /// Extra weftd flags, kept across restarts (e.g. `--node-grace 3`).
    pub extra: Vec<String>,
}

/// `WEFT_TEST_LOG_DIR=DIR` keeps every overlay's weftd log (passing tests too) as
/// `DIR/weftd-<pid>.log`: what weftd did around a lost packet is only in that log.
impl Drop for Overlay {
    fn drop(&mut self) {
        if let Some(dir) = std::env::var_os("WEFT_TEST_LOG_DIR") {
            let path =
                std::path::Path::new(&dir).join(format!("weftd-{}.log", self.weftd.child.id()));
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(path, self.log());
        }
    }
}

impl Overlay {
    pub fn start(hypervisors: usize, encap: Encap) -> Overlay {
        Self::start_with(hypervisors, encap, &[])
    }

    /// [`Overlay::start`] with extra weftd flags.
    pub fn start_with(hypervisors: usize, encap: Encap, extra: &[&str]) -> Overlay {
        let lab = Lab::builder()
            .hypervisors(hypervisors)
            .encap(encap)
            .build()
            .expect("lab");
        let data = tempfile::tempdir().unwrap();
        let ports = (free_port(&lab), free_port(&lab));
        let weftd_started = Instant::now();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let weftd = spawn_weftd(&lab, &data, ports, &extra);
        let api = http_client(&weftd.url(), None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let ip = lab.controller_ip();
        for hv in lab.hypervisors() {
            hv.set_manager(&format!("tcp:{ip}:{}", ports.0)).unwrap();
        }
        Overlay {
            lab,
            weftd,
            api,
            rt,
            data,
            ports,
            weftd_started,
            extra,
        }
    }

    /// Starts weftd again on the same data dir and southbound ports (after it died).
    pub fn restart_weftd(&mut self) {
        self.weftd_started = Instant::now();
        self.weftd = spawn_weftd(&self.lab, &self.data, self.ports, &self.extra);
        self.api = http_client(&self.weftd.url(), None);
    }

    pub fn try_call(&self, method: &str, params: Value) -> CallResult {
        self.rt.block_on(call(&self.api, method, params))
    }

    pub fn call(&self, method: &str, params: Value) -> Value {
        self.try_call(method, params.clone())
            .unwrap_or_else(|e| panic!("{method} {params}: {e:?}\nweftd log:\n{}", self.log()))
    }

    pub fn hv(&self, n: usize) -> &Hypervisor {
        self.lab.hv(n - 1)
    }

    pub fn port(&self, switch: &str, name: &str, mac: &str, addr: &str) {
        self.call(
            "port_create",
            json!({"switch": switch, "name": name, "mac": mac, "ips": [addr]}),
        );
    }

    /// Plugs a VM whose logical port already exists and waits until weftd reports its
    /// flows installed.
    pub fn plug(&self, hv: usize, name: &str, mac: &str, cidr: &str) -> Vm {
        let vm = self
            .hv(hv)
            .plug_vm(VmSpec::new(name, mac, name).addr(cidr).unwrap())
            .unwrap();
        vm.exec("sysctl", &["-qw", "net.ipv6.conf.eth0.disable_ipv6=1"])
            .unwrap();
        self.wait_installed(hv, name);
        vm
    }

    pub fn wait_installed(&self, hv: usize, name: &str) {
        let r = self.hv(hv).wait_for_interface(name, INSTALL_TIMEOUT, |i| {
            i.external_ids.get("weft-installed").map(String::as_str) == Some("true")
        });
        if let Err(e) = r {
            panic!("{e}\nweftd log:\n{}", self.log());
        }
    }

    /// Waits until weftd reports both southbound sessions of every hypervisor up and has
    /// dumped each switch's flow table (its observed flows are non-empty).
    pub fn wait_connected(&self) {
        let deadline = Instant::now() + INSTALL_TIMEOUT;
        for hv in self.lab.hypervisors() {
            loop {
                if let Ok(n) = self.try_call("node_get", json!({"node": hv.name()})) {
                    let up = |k: &str| n[k].as_bool() == Some(true);
                    let flows = self
                        .try_call("node_flows", json!({"node": hv.name()}))
                        .ok()
                        .and_then(|f| f["flows"].as_array().map(Vec::len))
                        .unwrap_or(0);
                    if up("ovsdb_connected") && up("openflow_connected") && flows > 0 {
                        break;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "{} never reconnected\nweftd log:\n{}",
                    hv.name(),
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    pub fn log(&self) -> String {
        self.weftd.stderr.lock().unwrap().clone()
    }

    /// Waits until weftd's startup hold ([`weft::realize::STARTUP_HOLD_MAX`]) is over, so
    /// that a test of what happens later is not masked by it.
    pub fn wait_past_startup_hold(&self) {
        let until = self.weftd_started + weft::realize::STARTUP_HOLD_MAX + Duration::from_secs(1);
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    }
}

/// A port free on the lab's controller address for a weftd started later (and restarted
/// on the same port); see [`super::reserve_port`].
pub fn free_port(lab: &Lab) -> u16 {
    super::reserve_port(lab.controller_ip().into(), 20_000..32_000)
}

pub fn spawn_weftd(
    lab: &Lab,
    data: &tempfile::TempDir,
    (ovsdb, of): (u16, u16),
    extra: &[String],
) -> Spawned {
    let ip = lab.controller_ip();
    let mut args = vec![
        "--ovsdb-listen".to_string(),
        format!("tcp:{ip}:{ovsdb}"),
        "--openflow-listen".to_string(),
        format!("tcp:{ip}:{of}"),
        "--openflow-advertise".to_string(),
        format!("tcp:{ip}:{of}"),
    ];
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Spawned::start(data.path(), &args)
}

/// Pings until the path is warm (the first packet to a new tunnel peer is dropped while
/// OVS resolves the underlay next hop), then requires every one of 3 pings answered.
pub fn assert_reaches(from: &Vm, to: &str, ov: &Overlay) {
    let ip: std::net::IpAddr = to.parse().expect("ip");
    if let Err(e) = from.ping_until_reachable(ip, Duration::from_secs(10)) {
        panic!("{} -> {to}: {e}\nweftd log:\n{}", from.name(), ov.log());
    }
    let r = from.ping(ip, 3, Duration::from_millis(50)).unwrap();
    assert!(r.all_received(), "{} -> {to}: {r:?}", from.name());
}
