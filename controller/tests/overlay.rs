//! The L2 overlay end to end: real `weftd`, real Open vSwitch per hypervisor in network
//! namespaces (userspace datapath), VMs as namespaces, real packets.
//!
//! Hypervisors are pointed at weftd with `set-manager` and nothing else: weftd configures
//! br-int, creates the tunnel mesh and installs the pipeline. Every assertion is about
//! what packets did (ping replies, interface counters), not about what weftd says.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{CallResult, Spawned, call, http_client};
use integration::lab::{Encap, Hypervisor, Lab, Vm, VmSpec};
use jsonrpsee::http_client::HttpClient;
use serde_json::{Value, json};

const INSTALL_TIMEOUT: Duration = Duration::from_secs(20);

/// A lab plus the weftd that manages it.
struct Overlay {
    lab: Lab,
    weftd: Spawned,
    api: HttpClient,
    rt: tokio::runtime::Runtime,
    _data: tempfile::TempDir,
}

impl Overlay {
    fn start(hypervisors: usize, encap: Encap) -> Overlay {
        let lab = Lab::builder()
            .hypervisors(hypervisors)
            .encap(encap)
            .build()
            .expect("lab");
        let ip = lab.controller_ip();
        let data = tempfile::tempdir().unwrap();
        let weftd = Spawned::start(
            data.path(),
            &[
                "--ovsdb-listen",
                &format!("tcp:{ip}:6640"),
                "--openflow-listen",
                &format!("tcp:{ip}:6653"),
                "--openflow-advertise",
                &format!("tcp:{ip}:6653"),
            ],
        );
        let api = http_client(&weftd.url(), None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for hv in lab.hypervisors() {
            hv.set_manager(&format!("tcp:{ip}:6640")).unwrap();
        }
        Overlay {
            lab,
            weftd,
            api,
            rt,
            _data: data,
        }
    }

    fn try_call(&self, method: &str, params: Value) -> CallResult {
        self.rt.block_on(call(&self.api, method, params))
    }

    fn call(&self, method: &str, params: Value) -> Value {
        self.try_call(method, params.clone())
            .unwrap_or_else(|e| panic!("{method} {params}: {e:?}"))
    }

    fn hv(&self, n: usize) -> &Hypervisor {
        self.lab.hv(n - 1)
    }

    /// Plugs a VM whose logical port already exists and waits until weftd reports its
    /// flows installed (`weft-installed=true`).
    fn plug(&self, hv: usize, name: &str, mac: &str, cidr: &str) -> Vm {
        let vm = self
            .hv(hv)
            .plug_vm(VmSpec::new(name, mac, name).addr(cidr).unwrap())
            .unwrap();
        // No IPv6 chatter (router solicitations, MLD): the counters below must move
        // only for the packets the test sends.
        vm.exec("sysctl", &["-qw", "net.ipv6.conf.eth0.disable_ipv6=1"])
            .unwrap();
        self.wait_installed(hv, name);
        vm
    }

    fn wait_installed(&self, hv: usize, name: &str) {
        let r = self.hv(hv).wait_for_interface(name, INSTALL_TIMEOUT, |i| {
            i.external_ids.get("weft-installed").map(String::as_str) == Some("true")
        });
        if let Err(e) = r {
            panic!("{e}\nweftd log:\n{}", self.weftd.stderr.lock().unwrap());
        }
    }

    fn log(&self) -> String {
        self.weftd.stderr.lock().unwrap().clone()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rx_packets(vm: &Vm) -> u64 {
    vm.exec("cat", &["/sys/class/net/eth0/statistics/rx_packets"])
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Pings until the path is warm (the first packet to a new tunnel peer is dropped while
/// OVS resolves the underlay next hop), then requires every one of 3 pings answered.
fn assert_reaches(from: &Vm, to: &str, ov: &Overlay) {
    if let Err(e) = from.ping_until_reachable(ip(to), Duration::from_secs(10)) {
        panic!("{} -> {to}: {e}\nweftd log:\n{}", from.name(), ov.log());
    }
    let r = from.ping(ip(to), 3, Duration::from_millis(50)).unwrap();
    assert!(r.all_received(), "{} -> {to}: {r:?}", from.name());
}

fn assert_unreachable(from: &Vm, to: &str) {
    let r = from.ping(ip(to), 3, Duration::from_millis(100)).unwrap();
    assert_eq!(r.received, 0, "{} must not reach {to}: {r:?}", from.name());
}

/// Two tenants with overlapping addresses on three hypervisors.
///
/// blue (5001): a1@hv1 .1 :01, a2@hv2 .2 :02, a3@hv3 .3 :03
/// red  (5002): b1@hv1 .1 :01 (same MAC and IP as a1, same hypervisor),
///              b2@hv2 .2 :12 (same IP as a2), b4@hv3 .4 :14 (only in red)
fn two_tenants(encap: Encap) {
    let ov = Overlay::start(3, encap);
    ov.call("switch_create", json!({"name": "blue", "vni": 5001}));
    ov.call("switch_create", json!({"name": "red", "vni": 5002}));
    let ports = [
        ("blue", "a1", 1, "02:00:00:00:00:01", "10.0.0.1"),
        ("blue", "a2", 2, "02:00:00:00:00:02", "10.0.0.2"),
        ("blue", "a3", 3, "02:00:00:00:00:03", "10.0.0.3"),
        ("red", "b1", 1, "02:00:00:00:00:01", "10.0.0.1"),
        ("red", "b2", 2, "02:00:00:00:00:12", "10.0.0.2"),
        ("red", "b4", 3, "02:00:00:00:00:14", "10.0.0.4"),
    ];
    for (sw, name, _, mac, addr) in ports {
        ov.call(
            "port_create",
            json!({"switch": sw, "name": name, "mac": mac, "ips": [addr]}),
        );
    }
    let vms: Vec<Vm> = ports
        .iter()
        .map(|(_, name, hv, mac, addr)| ov.plug(*hv, name, mac, &format!("{addr}/24")))
        .collect();
    let [a1, a2, a3, b1, b2, b4] = &vms[..] else {
        unreachable!()
    };

    // weftd configured br-int as DESIGN.md §3 says.
    for n in 1..=3 {
        let hv = ov.hv(n);
        let get = |col: &str| hv.vsctl(["get", "bridge", "br-int", col]).unwrap();
        assert_eq!(get("fail_mode").trim(), "secure");
        assert!(get("protocols").contains("OpenFlow13"));
        assert!(
            get("other_config").contains("disable-in-band=true"),
            "{}",
            get("other_config")
        );
    }

    // Full matrix inside each tenant, across and within hypervisors.
    for (from, tos) in [
        (a1, ["10.0.0.2", "10.0.0.3"]),
        (a2, ["10.0.0.1", "10.0.0.3"]),
        (a3, ["10.0.0.1", "10.0.0.2"]),
        (b1, ["10.0.0.2", "10.0.0.4"]),
        (b2, ["10.0.0.1", "10.0.0.4"]),
        (b4, ["10.0.0.1", "10.0.0.2"]),
    ] {
        for to in tos {
            assert_reaches(from, to, &ov);
        }
    }
    // Isolation: addresses only the other tenant has are unreachable, and overlapping
    // ones resolve to the caller's own tenant.
    assert_unreachable(a1, "10.0.0.4");
    assert_unreachable(b1, "10.0.0.3");
    let neigh = a1.exec("ip", &["neigh", "show", "10.0.0.2"]).unwrap();
    assert!(neigh.contains("02:00:00:00:00:02"), "a1 sees {neigh}");
    let neigh = b1.exec("ip", &["neigh", "show", "10.0.0.2"]).unwrap();
    assert!(neigh.contains("02:00:00:00:00:12"), "b1 sees {neigh}");

    // The ARP responder answers on the local hypervisor: a1 resolving a3 reaches no
    // other VM (a flooded request would reach a2 and a3).
    a1.exec("ip", &["neigh", "flush", "dev", "eth0"]).unwrap();
    let before: Vec<u64> = [a2, a3, b1, b2, b4].iter().map(|v| rx_packets(v)).collect();
    let out = a1
        .exec_output("arping", &["-c", "3", "-w", "3", "-I", "eth0", "10.0.0.3"])
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("02:00:00:00:00:03"),
        "ARP for 10.0.0.3 unanswered: {text}"
    );
    let after: Vec<u64> = [a2, a3, b1, b2, b4].iter().map(|v| rx_packets(v)).collect();
    assert_eq!(before, after, "ARP requests must not leave hv1");

    // Broadcast reaches exactly blue's members.
    let before: Vec<u64> = [a2, a3, b1, b2, b4].iter().map(|v| rx_packets(v)).collect();
    let _ = a1.exec_output("ping", &["-b", "-c", "3", "-i", "0.2", "-W", "1", "10.0.0.255"]);
    let after: Vec<u64> = [a2, a3, b1, b2, b4].iter().map(|v| rx_packets(v)).collect();
    assert!(after[0] >= before[0] + 3, "a2 got the broadcast");
    assert!(after[1] >= before[1] + 3, "a3 got the broadcast");
    assert_eq!(&after[2..], &before[2..], "red saw blue's broadcast");

    // Port security: a spoofed source address is dropped, the real one passes.
    a1.exec("ip", &["addr", "add", "10.0.0.9/24", "dev", "eth0"])
        .unwrap();
    let r = a1
        .exec_output("ping", &["-c", "3", "-W", "1", "-I", "10.0.0.9", "10.0.0.2"])
        .unwrap();
    assert!(
        String::from_utf8_lossy(&r.stdout).contains(" 0 received"),
        "spoofed IP passed"
    );
    a1.exec("ip", &["addr", "del", "10.0.0.9/24", "dev", "eth0"])
        .unwrap();
    a1.exec("ip", &["link", "set", "eth0", "address", "02:00:00:00:00:99"])
        .unwrap();
    assert_unreachable(a1, "10.0.0.2");
    a1.exec("ip", &["link", "set", "eth0", "address", "02:00:00:00:00:01"])
        .unwrap();
    assert_reaches(a1, "10.0.0.2", &ov);

    // A VM moved to another hypervisor is reachable again.
    a3.move_to(ov.hv(3), ov.hv(2)).unwrap();
    ov.wait_installed(2, "a3");
    assert_reaches(a1, "10.0.0.3", &ov);
    assert_reaches(a3, "10.0.0.2", &ov);

    // Deleting the red switch removes its flows everywhere, and hv3 (now hosting only
    // b4's stale interface) keeps no tunnels.
    ov.call("switch_delete", json!({"switch": "red", "cascade": true}));
    for n in 1..=3 {
        let hv = ov.hv(n);
        hv.wait_for("red flows removed", INSTALL_TIMEOUT, |hv| {
            Ok(!hv
                .dump_flows("br-int")?
                .iter()
                .any(|f| f.contains("metadata=0x138a")))
        })
        .unwrap();
    }
    ov.hv(3)
        .wait_for("tunnels removed", INSTALL_TIMEOUT, |hv| {
            Ok(!hv
                .interfaces()?
                .iter()
                .any(|i| i.external_ids.contains_key("weft-remote")))
        })
        .unwrap();
    assert_unreachable(a1, "10.0.0.4");
    assert_reaches(a1, "10.0.0.2", &ov);
}

#[test]
fn two_tenants_over_geneve() {
    two_tenants(Encap::Geneve);
}

#[test]
fn two_tenants_over_vxlan() {
    two_tenants(Encap::Vxlan);
}
