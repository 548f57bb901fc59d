//! Flood-and-learn VTEPs end to end: real weftd, real Open vSwitch hypervisors (userspace
//! datapath) in namespaces, and "legacy" VXLAN endpoints that are plain Linux `vxlan`
//! devices in learning mode with static all-zeros fdb entries towards the hypervisors
//! (what a Nexus 1000V or vCNS segment looks like), each bridged to a legacy host.
//!
//! ```text
//!  underlay bridge `ul` ── hv1 (10.K.0.1) ── vm a1 (blue), r1 (red)
//!                       ── hv2 (10.K.0.2) ── vm a2 (blue)
//!                       ── lv1 (10.K.0.201): vx5001 ─ br0 ─ host1 (blue, .100)
//!                       │                    vx5002 ─ br1 ─ host3 (red, .101)
//!                       ── lv2 (10.K.0.202): vx5001 ─ br0 ─ host2 (blue, .102)
//! ```
//! Every assertion is about packets (ping replies, what tcpdump saw at a VTEP) or about
//! the flows OVS holds, not about what weftd says.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::{Duration, Instant};

use common::capture::{Tap, capture_on};
use common::overlay::{Overlay, assert_reaches};
use integration::lab::{Encap, Vm};
use serde_json::json;

const BLUE: u32 = 5001;
const RED: u32 = 5002;
/// `--vtep-learn-idle-timeout` for this test: short enough to watch a MAC age out.
const IDLE: u64 = 4;

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ns_run(ns: &str, args: &[&str]) {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    run(&v);
}

/// One legacy VXLAN endpoint: a namespace on the underlay with a learning-mode `vxlan`
/// device per VNI, each bridged to its own legacy host namespace. Its namespaces carry the
/// lab's name prefix, so the lab's teardown removes them too if this guard does not run.
struct LegacyVtep {
    ns: String,
    ip: Ipv4Addr,
    hosts: Vec<String>,
}

impl LegacyVtep {
    /// `n` picks the address (`10.K.0.(200+n)`); `segments` are (VNI, host name, host MAC,
    /// host address/prefix); `hypervisors` the encap IPs its fdb floods to.
    fn create(
        ov: &Overlay,
        n: u8,
        segments: &[(u32, &str, &str, &str)],
        hypervisors: &[Ipv4Addr],
    ) -> LegacyVtep {
        let ul = ov.lab.underlay_netns();
        let stem = ul.trim_end_matches("-ul").to_string();
        let ns = format!("{stem}-vm-lvtep{n}");
        let [a, b, c, _] = ov.lab.controller_ip().octets();
        let ip = Ipv4Addr::new(a, b, c, 200 + n);
        let mut me = LegacyVtep {
            ns: ns.clone(),
            ip,
            hosts: Vec::new(),
        };
        run(&["ip", "netns", "add", &ns]);
        ns_run(&ns, &["ip", "link", "set", "lo", "up"]);
        let ul_end = format!("lv{n}");
        run(&[
            "ip", "-n", &ns, "link", "add", "u0", "type", "veth", "peer", "name", &ul_end, "netns",
            &ul,
        ]);
        run(&[
            "ip", "-n", &ul, "link", "set", &ul_end, "master", "ul", "up",
        ]);
        ns_run(&ul, &["ethtool", "-K", &ul_end, "tx", "off"]);
        ns_run(&ns, &["ethtool", "-K", "u0", "tx", "off"]);
        run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            "u0",
        ]);
        run(&["ip", "-n", &ns, "link", "set", "u0", "up"]);
        for (i, (vni, host, mac, cidr)) in segments.iter().enumerate() {
            let vx = format!("vx{vni}");
            let br = format!("br{i}");
            let vni_s = vni.to_string();
            let ip_s = ip.to_string();
            // Learning mode (no `nolearning`): MACs are learned from the outer source.
            run(&[
                "ip", "-n", &ns, "link", "add", &vx, "type", "vxlan", "id", &vni_s, "dstport",
                "4789", "local", &ip_s, "dev", "u0",
            ]);
            for hv in hypervisors {
                run(&[
                    "bridge",
                    "-n",
                    &ns,
                    "fdb",
                    "append",
                    "00:00:00:00:00:00",
                    "dev",
                    &vx,
                    "dst",
                    &hv.to_string(),
                ]);
            }
            run(&["ip", "-n", &ns, "link", "add", &br, "type", "bridge"]);
            run(&["ip", "-n", &ns, "link", "set", &vx, "master", &br, "up"]);
            run(&["ip", "-n", &ns, "link", "set", &br, "up"]);
            let hns = format!("{stem}-vm-{host}");
            run(&["ip", "netns", "add", &hns]);
            me.hosts.push(hns.clone());
            ns_run(&hns, &["ip", "link", "set", "lo", "up"]);
            ns_run(&hns, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            let h_end = format!("h{i}");
            run(&[
                "ip", "-n", &ns, "link", "add", &h_end, "type", "veth", "peer", "name", "eth0",
                "netns", &hns,
            ]);
            run(&["ip", "-n", &ns, "link", "set", &h_end, "master", &br, "up"]);
            ns_run(&ns, &["ethtool", "-K", &h_end, "tx", "off"]);
            ns_run(&hns, &["ethtool", "-K", "eth0", "tx", "off"]);
            run(&["ip", "-n", &hns, "link", "set", "eth0", "address", mac]);
            // The vxlan device's MTU is 1450: the host must not send more.
            run(&["ip", "-n", &hns, "link", "set", "eth0", "mtu", "1400", "up"]);
            run(&["ip", "-n", &hns, "addr", "add", cidr, "dev", "eth0"]);
        }
        me
    }

    /// Where this VTEP's `vxlan` device for `vni` sends frames for `mac` (its fdb).
    fn fdb_dst(&self, vni: u32, mac: &str) -> Option<String> {
        let out = Command::new("bridge")
            .args(["-n", &self.ns, "fdb", "show", "dev", &format!("vx{vni}")])
            .output()
            .expect("bridge fdb");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(mac))
            .find_map(|l| {
                let mut words = l.split_whitespace();
                words.find(|w| *w == "dst")?;
                words.next().map(String::from)
            })
    }

    fn host_ping(&self, host: usize, to: &str, count: u32) -> u32 {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.hosts[host], "ping", "-n", "-q"])
            .args(["-c", &count.to_string(), "-i", "0.2", "-W", "1", to])
            .output()
            .expect("ping");
        let text = String::from_utf8_lossy(&out.stdout);
        text.split(',')
            .find_map(|part| part.trim().strip_suffix(" received"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    fn host_ping_until_reachable(&self, host: usize, to: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.host_ping(host, to, 1) == 0 {
            assert!(
                Instant::now() < deadline,
                "{} never reached {to}",
                self.hosts[host]
            );
        }
        assert_eq!(
            self.host_ping(host, to, 3),
            3,
            "{} -> {to}",
            self.hosts[host]
        );
    }
}

impl Drop for LegacyVtep {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain([&self.ns]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn learned_flows(ov: &Overlay, hv: usize) -> Vec<String> {
    ov.hv(hv)
        .dump_flows("br-int")
        .unwrap()
        .into_iter()
        .filter(|f| f.contains("table=33") && f.contains("cookie=0x4c45"))
        .collect()
}

/// Frames tcpdump (`-e`) printed with `mac` as destination.
fn frames_to(dump: &str, mac: &str) -> usize {
    dump.lines()
        .filter(|l| l.contains(&format!("> {mac}")))
        .count()
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn unreachable(vm: &Vm, to: &str) {
    let r = vm.ping(ip(to), 3, Duration::from_millis(100)).unwrap();
    assert_eq!(r.received, 0, "{} must not reach {to}: {r:?}", vm.name());
}

#[test]
fn legacy_vteps_join_a_geneve_fabric() {
    legacy_vteps_join_the_segment(Encap::Geneve);
}

/// The hypervisors' own mesh is VXLAN too: the VTEP ports sit beside the mesh's ports.
#[test]
fn legacy_vteps_join_a_vxlan_fabric() {
    legacy_vteps_join_the_segment(Encap::Vxlan);
}

fn legacy_vteps_join_the_segment(encap: Encap) {
    let mut ov = Overlay::start_with(
        2,
        encap,
        &["--log", "info", "--vtep-learn-idle-timeout", "4"],
    );
    let hv_ips = [ov.hv(1).transport_ip(), ov.hv(2).transport_ip()];
    let host1_mac = "0a:00:00:00:01:00";
    let lv1 = LegacyVtep::create(
        &ov,
        1,
        &[
            (BLUE, "host1", host1_mac, "10.0.0.100/24"),
            (RED, "host3", "0a:00:00:00:03:00", "10.0.0.101/24"),
        ],
        &hv_ips,
    );
    let lv2 = LegacyVtep::create(
        &ov,
        2,
        &[(BLUE, "host2", "0a:00:00:00:02:00", "10.0.0.102/24")],
        &hv_ips,
    );
    let vteps = [lv1.ip.to_string(), lv2.ip.to_string()];

    // A hypervisor's own address is refused, naming the field.
    let err = ov
        .try_call(
            "switch_create",
            json!({"name": "bad", "flood_vteps": [hv_ips[0].to_string()]}),
        )
        .unwrap_err();
    assert!(format!("{err:?}").contains("flood_vteps"), "{err:?}");

    ov.call(
        "switch_create",
        json!({"name": "blue", "vni": BLUE, "flood_vteps": vteps}),
    );
    ov.call("switch_create", json!({"name": "red", "vni": RED}));
    let red = ov.call(
        "switch_update",
        json!({"switch": "red", "flood_vteps": [lv1.ip.to_string()]}),
    );
    assert_eq!(red["flood_vteps"], json!([lv1.ip.to_string()]), "{red}");
    ov.port("blue", "a1", "02:00:00:00:00:01", "10.0.0.1");
    ov.port("blue", "a2", "02:00:00:00:00:02", "10.0.0.2");
    ov.port("red", "r1", "02:00:00:00:00:11", "10.0.0.11");
    let a1 = ov.plug(1, "a1", "02:00:00:00:00:01", "10.0.0.1/24");
    let a2 = ov.plug(2, "a2", "02:00:00:00:00:02", "10.0.0.2/24");
    let r1 = ov.plug(1, "r1", "02:00:00:00:00:11", "10.0.0.11/24");

    // weftd made one VXLAN port per flood VTEP on each hypervisor, whatever its encap.
    for n in 1..=2 {
        let ports = ov.hv(n).vsctl(["list-ports", "br-int"]).unwrap();
        let wv: Vec<&str> = ports.lines().filter(|p| p.starts_with("wv-")).collect();
        assert_eq!(wv.len(), 2, "hv{n}: {ports}");
        for p in wv {
            let t = ov.hv(n).vsctl(["get", "interface", p, "type"]).unwrap();
            assert_eq!(t.trim(), "vxlan", "{p}");
        }
    }

    // ARP and ping both ways, legacy host <-> VMs on both hypervisors.
    lv1.host_ping_until_reachable(0, "10.0.0.1");
    lv1.host_ping_until_reachable(0, "10.0.0.2");
    assert_reaches(&a1, "10.0.0.100", &ov);
    assert_reaches(&a2, "10.0.0.100", &ov);
    assert_reaches(&a1, "10.0.0.102", &ov);
    lv2.host_ping_until_reachable(0, "10.0.0.2");

    // hv1 learned host1's MAC behind lv1's tunnel port.
    let learned = learned_flows(&ov, 1);
    let lv1_port = weft::southbound::ovsdb::vtep_port_name(IpAddr::V4(lv1.ip));
    let lv1_ofport = ov
        .hv(1)
        .vsctl(["get", "interface", &lv1_port, "ofport"])
        .unwrap()
        .trim()
        .to_string();
    assert!(
        learned
            .iter()
            .any(|f| f.contains(host1_mac) && f.contains(&format!("output:{lv1_ofport}"))),
        "no learned flow for {host1_mac} -> ofport {lv1_ofport}: {learned:#?}"
    );

    // Unicast from a VM to host1 goes to lv1 only: lv2 sees none of it.
    let seen = capture_on(
        &[Tap {
            netns: &lv2.ns,
            iface: "vx5001",
            inbound_only: true,
            link: true,
        }],
        &format!("ether dst {host1_mac}"),
        || {
            let r = a1
                .ping(ip("10.0.0.100"), 10, Duration::from_millis(100))
                .unwrap();
            assert!(r.all_received(), "{r:?}");
        },
    );
    assert_eq!(
        frames_to(&seen[0], host1_mac),
        0,
        "lv2 got unicast for host1: {:?}",
        seen[0]
    );

    // weftd's dump and diff leaves learned flows alone: restart it while the flow is kept
    // alive by traffic; it must find nothing to change, and the flow must survive.
    let pinger = a1
        .ping_continuous(ip("10.0.0.100"), Duration::from_millis(200))
        .unwrap();
    ov.weftd.kill9();
    ov.restart_weftd();
    wait_until("weftd's resync of hv1", Duration::from_secs(40), || {
        ov.log()
            .lines()
            .any(|l| l.contains("nothing sent") && l.contains("hv1"))
    });
    assert!(
        !ov.log()
            .lines()
            .any(|l| l.contains("installed the desired state") && l.contains("hv1")),
        "weftd changed hv1's flows after learning:\n{}",
        ov.log()
    );
    assert!(
        learned_flows(&ov, 1).iter().any(|f| f.contains(host1_mac)),
        "learned flow gone after weftd's resync"
    );
    let report = pinger.stop().unwrap();
    assert!(report.summary.received > 0, "{report:?}");

    // Without traffic the learned flow ages out; the next frame to host1 is unknown
    // unicast again and goes to both VTEPs (lv2 sees it), then is learned anew.
    wait_until(
        "host1's learned flow to age out",
        Duration::from_secs(IDLE * 4),
        || !learned_flows(&ov, 1).iter().any(|f| f.contains(host1_mac)),
    );
    let seen = capture_on(
        &[Tap {
            netns: &lv2.ns,
            iface: "vx5001",
            inbound_only: true,
            link: true,
        }],
        &format!("ether dst {host1_mac}"),
        || {
            // a1 still has host1 in its ARP cache: unicast straight away.
            let _ = a1.ping(ip("10.0.0.100"), 1, Duration::from_millis(100));
        },
    );
    assert!(
        frames_to(&seen[0], host1_mac) >= 1,
        "unknown unicast never reached lv2: {seen:?}"
    );

    // Isolation: red (VNI 5002, through lv1 too) and blue stay apart.
    assert_reaches(&r1, "10.0.0.101", &ov);
    unreachable(&r1, "10.0.0.100");
    unreachable(&a1, "10.0.0.101");
    assert_eq!(
        lv1.host_ping(1, "10.0.0.1", 3),
        0,
        "red host reached a blue VM"
    );
    assert_eq!(
        lv1.host_ping(0, "10.0.0.11", 3),
        0,
        "blue host reached a red VM"
    );

    // A VM that moves is announced from its new hypervisor (gratuitous ARP into the VTEP
    // tunnels): lv1 moves a2's MAC to hv1 at once, with no traffic from a2 itself, and
    // host1, which only ever sends to a2, keeps reaching it. Without the announcement lv1
    // would send to hv2 until its fdb entry aged out (300 s).
    let a2_mac = "02:00:00:00:00:02";
    assert!(lv1.fdb_dst(BLUE, a2_mac).as_deref() == Some(&hv_ips[1].to_string()));
    a2.move_to(ov.hv(2), ov.hv(1)).unwrap();
    ov.wait_installed(1, "a2");
    wait_until(
        "lv1 to learn a2 behind hv1",
        Duration::from_secs(10),
        || lv1.fdb_dst(BLUE, a2_mac).as_deref() == Some(&hv_ips[0].to_string()),
    );
    assert_eq!(
        lv1.host_ping(0, "10.0.0.2", 3),
        3,
        "host1 lost a2 after its move"
    );

    // Clearing the list removes the VTEP ports and the segment is Weft's alone again.
    ov.call(
        "switch_update",
        json!({"switch": "blue", "flood_vteps": []}),
    );
    ov.call("switch_update", json!({"switch": "red", "flood_vteps": []}));
    wait_until("VTEP ports removed", Duration::from_secs(20), || {
        let ports = ov.hv(1).vsctl(["list-ports", "br-int"]).unwrap();
        !ports.lines().any(|p| p.starts_with("wv-"))
    });
    unreachable(&a2, "10.0.0.100");
    drop(lv2);
    drop(lv1);
}
