//! Provider networks end to end: real `weftd`, two hypervisors with real Open vSwitch in
//! namespaces, and a "physical" network: a separate OVS (its own namespace, `NORMAL`
//! switching) that each hypervisor's `br-ex` is cabled to, with one bare host untagged and
//! one on VLAN 100 (an access port, since this kernel has no 802.1Q devices).
//!
//! ```text
//!   hv1: br-int ─patch─ br-ex ─ex0══p1─┐            ┌─ hf  ══ host "hflat" 10.50.0.100 (untagged, trunks=0)
//!   hv2: br-int ─patch─ br-ex ─ex0══p2─┴─ br-seg ───┴─ h1  ══ host "h100"  10.50.0.200 (tag=100)
//! ```
//!
//! Weft is told nothing but `weft-bridge-mappings=physnet1:br-ex`; it creates the patch
//! ports. Switch `flat` is untagged on physnet1, `v100` on VLAN 100, `overlay` an ordinary
//! tunnelled switch (so that a tunnel exists and can be shown idle). Both provider
//! networks use the same subnet: only the physical segment keeps them apart. Every
//! assertion is about packets (ping replies, tcpdump at the receiver or on the segment,
//! tunnel counters). Everything lives in the lab's namespaces and state directory, so the
//! lab's teardown removes it, also on failure.

mod common;

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use common::capture::{Tap, capture_on};
use common::overlay::{INSTALL_TIMEOUT, Overlay, assert_reaches};
use integration::lab::{Encap, Vm};
use integration::sandbox::{Datapath, OvsSandbox};
use serde_json::json;

const HOST_FLAT: (&str, &str, &str) = ("hflat", "02:00:00:00:99:01", "10.50.0.100");
const HOST_100: (&str, &str, &str) = ("h100", "02:00:00:00:99:02", "10.50.0.200");

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Runs a command, panicking with its stderr when it fails.
fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The physical network: its namespace and OVS, and the two bare hosts' namespaces.
struct Segment {
    ns: String,
    ovs: OvsSandbox,
    host_ns: [String; 2],
}

impl Segment {
    /// Builds it inside `ov`'s lab (names under the lab's stem, files under its state
    /// dir) and cables every hypervisor's new `br-ex` to it.
    fn build(ov: &Overlay) -> Segment {
        let stem = ov
            .lab
            .underlay_netns()
            .strip_suffix("-ul")
            .expect("lab namespace stem")
            .to_owned();
        // "-vm-" names: the lab's teardown removes them (and what runs in them) first.
        let ns = format!("{stem}-vm-phys");
        let host_ns = [
            format!("{stem}-vm-{}", HOST_FLAT.0),
            format!("{stem}-vm-{}", HOST_100.0),
        ];
        for n in std::iter::once(&ns).chain(&host_ns) {
            run(&["ip", "netns", "add", n]);
            run(&[
                "ip",
                "netns",
                "exec",
                n,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]);
            run(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        let ovs = OvsSandbox::builder("phys")
            .dir(ov.lab.dir().join("phys"))
            .netns(&ns)
            .vswitchd(Datapath::Netdev)
            .start()
            .expect("physical switch OVS");
        ovs.vsctl([
            "add-br",
            "br-seg",
            "--",
            "set",
            "bridge",
            "br-seg",
            "datapath_type=netdev",
        ])
        .unwrap();
        let seg = Segment { ns, ovs, host_ns };
        for n in 1..=2 {
            let hv = ov.hv(n);
            let p = format!("p{n}");
            run(&[
                "ip",
                "-n",
                &seg.ns,
                "link",
                "add",
                &p,
                "type",
                "veth",
                "peer",
                "name",
                "ex0",
                "netns",
                hv.netns(),
            ]);
            run(&["ip", "-n", &seg.ns, "link", "set", &p, "up"]);
            run(&["ip", "-n", hv.netns(), "link", "set", "ex0", "up"]);
            // Trunk: every VLAN, untagged as VLAN 0.
            seg.ovs.vsctl(["add-port", "br-seg", &p]).unwrap();
            hv.vsctl([
                "add-br",
                "br-ex",
                "--",
                "set",
                "bridge",
                "br-ex",
                "datapath_type=netdev",
                "--",
                "add-port",
                "br-ex",
                "ex0",
            ])
            .unwrap();
        }
        for ((name, mac, addr), (port, vlan)) in [HOST_FLAT, HOST_100]
            .into_iter()
            .zip([("hf", "trunks=0"), ("h1", "tag=100")])
        {
            let hns = &seg.host_ns[usize::from(name == HOST_100.0)];
            run(&[
                "ip", "-n", &seg.ns, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                "netns", hns,
            ]);
            run(&["ip", "-n", &seg.ns, "link", "set", port, "up"]);
            run(&["ip", "-n", hns, "link", "set", "eth0", "address", mac]);
            run(&[
                "ip",
                "-n",
                hns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            run(&["ip", "-n", hns, "link", "set", "eth0", "up"]);
            seg.ovs
                .vsctl(["add-port", "br-seg", port, "--", "set", "port", port, vlan])
                .unwrap();
        }
        seg
    }

    fn host_ns(&self, host: &str) -> &str {
        &self.host_ns[usize::from(host == HOST_100.0)]
    }

    /// Pings from a bare host; returns the replies received.
    fn host_ping(&self, host: &str, dst: &str, count: u32) -> u32 {
        let out = Command::new("ip")
            .args(["netns", "exec", self.host_ns(host), "ping", "-n", "-q"])
            .args(["-c", &count.to_string(), "-i", "0.2", "-W", "1", dst])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.split(',')
            .find_map(|p| p.trim().strip_suffix(" received"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// What tcpdump saw on `iface` in namespace `ns` while `during` ran, with link-level
/// headers (802.1Q tags show).
fn capture(
    ns: &str,
    iface: &str,
    inbound_only: bool,
    filter: &str,
    during: impl FnOnce(),
) -> String {
    let tap = Tap {
        netns: ns,
        iface,
        inbound_only,
        link: true,
    };
    capture_on(&[tap], filter, during).pop().unwrap_or_default()
}

/// Packets a tunnel port sent and received, read after the userspace datapath's delayed
/// counter update.
fn tunnel_packets(ov: &Overlay, hv: usize, remote: &str) -> u64 {
    std::thread::sleep(Duration::from_millis(1500));
    let name = weft::southbound::ovsdb::tunnel_port_name(remote);
    let s = ov.hv(hv).port_stats("br-int", &name).unwrap();
    s.tx_packets + s.rx_packets
}

#[test]
fn provider_networks_bridge_vms_onto_the_physical_segment() {
    let ov = Overlay::start(2, Encap::Geneve);
    let seg = Segment::build(&ov);
    for n in 1..=2 {
        ov.hv(n)
            .vsctl([
                "set",
                "Open_vSwitch",
                ".",
                "external_ids:weft-bridge-mappings=physnet1:br-ex",
            ])
            .unwrap();
    }
    ov.call(
        "switch_create",
        json!({"name": "flat", "provider": {"physnet": "physnet1"}}),
    );
    ov.call(
        "switch_create",
        json!({"name": "v100", "provider": {"physnet": "physnet1", "vlan": 100}}),
    );
    ov.call("switch_create", json!({"name": "overlay"}));
    let ports = [
        ("flat", "f1", 1, "02:00:00:00:50:01", "10.50.0.1"),
        ("flat", "f2", 2, "02:00:00:00:50:02", "10.50.0.2"),
        ("v100", "v1", 1, "02:00:00:00:51:01", "10.50.0.11"),
        ("v100", "v2", 2, "02:00:00:00:51:02", "10.50.0.12"),
        ("overlay", "o1", 1, "02:00:00:00:52:01", "10.52.0.1"),
        ("overlay", "o2", 2, "02:00:00:00:52:02", "10.52.0.2"),
    ];
    for (sw, name, _, mac, addr) in ports {
        ov.port(sw, name, mac, addr);
    }
    // plug() waits for weft-installed: for provider ports, that needs the patch port.
    let vms: Vec<Vm> = ports
        .iter()
        .map(|(_, name, hv, mac, addr)| ov.plug(*hv, name, mac, &format!("{addr}/24")))
        .collect();
    let [f1, f2, v1, v2, o1, _o2] = &vms[..] else {
        unreachable!()
    };

    // Weft made one patch pair per hypervisor, tagged, and nothing else on br-ex.
    for n in 1..=2 {
        let hv = ov.hv(n);
        let patches: Vec<_> = hv
            .interfaces()
            .unwrap()
            .into_iter()
            .filter(|i| i.external_ids.get("weft-physnet").map(String::as_str) == Some("physnet1"))
            .collect();
        assert_eq!(patches.len(), 2, "hv{n}: {patches:?}");
        let br_ex = hv.vsctl(["list-ports", "br-ex"]).unwrap();
        let mut br_ex: Vec<&str> = br_ex.lines().collect();
        br_ex.sort_unstable();
        let (_, ext) = weft::southbound::ovsdb::patch_port_names("physnet1");
        assert_eq!(br_ex, ["ex0", ext.as_str()], "hv{n} br-ex");
        // No tunnel for the provider switches: the only tunnel is the overlay's.
        let tunnels: Vec<_> = hv
            .interfaces()
            .unwrap()
            .into_iter()
            .filter(|i| i.external_ids.contains_key("weft-remote"))
            .collect();
        assert_eq!(tunnels.len(), 1, "hv{n}: {tunnels:?}");
    }
    let f1_view = ov.call("port_get", json!({"port": "f1"}));
    assert_eq!(f1_view["up"], true, "{f1_view}");

    // VMs reach the bare host of their own segment, and the host reaches them.
    for (vm, host) in [
        (f1, HOST_FLAT),
        (f2, HOST_FLAT),
        (v1, HOST_100),
        (v2, HOST_100),
    ] {
        assert_reaches(vm, host.2, &ov);
    }
    for (host, vm_ip) in [(HOST_FLAT, "10.50.0.2"), (HOST_100, "10.50.0.11")] {
        assert_eq!(seg.host_ping(host.0, vm_ip, 3), 3, "{} -> {vm_ip}", host.0);
    }

    // VM to VM across hypervisors goes over the physical network, not a tunnel: the
    // overlay tunnel stays idle while the segment carries f1's echo requests to f2.
    assert_reaches(f1, "10.50.0.2", &ov);
    assert_reaches(o1, "10.52.0.2", &ov);
    let before = tunnel_packets(&ov, 1, "hv2");
    let seen = capture(&seg.ns, "p1", true, "icmp", || {
        let r = f1
            .ping(ip("10.50.0.2"), 10, Duration::from_millis(50))
            .unwrap();
        assert!(r.all_received(), "f1 -> f2: {r:?}");
    });
    let after = tunnel_packets(&ov, 1, "hv2");
    assert_eq!(after, before, "the tunnel carried provider traffic");
    let requests = seen
        .lines()
        .filter(|l| {
            l.contains("02:00:00:00:50:01 > 02:00:00:00:50:02")
                && l.contains("10.50.0.1 > 10.50.0.2: ICMP echo request")
        })
        .count();
    assert_eq!(requests, 10, "segment saw:\n{seen}");
    // ... and the overlay still uses its tunnel (so the counter above could move).
    let before = tunnel_packets(&ov, 1, "hv2");
    let r = o1
        .ping(ip("10.52.0.2"), 5, Duration::from_millis(50))
        .unwrap();
    assert!(r.all_received(), "o1 -> o2: {r:?}");
    assert!(tunnel_packets(&ov, 1, "hv2") >= before + 10);

    // The tagged network leaves hypervisors with 802.1Q tag 100, the flat one untagged.
    let seen = capture(&seg.ns, "p2", true, "icmp or (vlan and icmp)", || {
        let r = v2
            .ping(ip(HOST_100.2), 3, Duration::from_millis(50))
            .unwrap();
        assert!(r.all_received(), "v2 -> h100: {r:?}");
        let r = f2
            .ping(ip(HOST_FLAT.2), 3, Duration::from_millis(50))
            .unwrap();
        assert!(r.all_received(), "f2 -> hflat: {r:?}");
    });
    let tagged: Vec<&str> = seen
        .lines()
        .filter(|l| l.contains("10.50.0.12 > 10.50.0.200: ICMP echo request"))
        .collect();
    assert_eq!(tagged.len(), 3, "segment saw:\n{seen}");
    assert!(
        tagged.iter().all(|l| l.contains("vlan 100")),
        "untagged on the segment: {tagged:#?}"
    );
    let untagged: Vec<&str> = seen
        .lines()
        .filter(|l| l.contains("10.50.0.2 > 10.50.0.100: ICMP echo request"))
        .collect();
    assert_eq!(untagged.len(), 3, "segment saw:\n{seen}");
    assert!(
        untagged.iter().all(|l| !l.contains("vlan")),
        "tagged on the segment: {untagged:#?}"
    );

    // The two provider networks stay apart, though they share a subnet: a VM of one
    // never reaches the host of the other; nothing of it arrives there.
    let seen = capture(seg.host_ns(HOST_100.0), "eth0", true, "", || {
        let r = f1
            .ping(ip(HOST_100.2), 3, Duration::from_millis(100))
            .unwrap();
        assert_eq!(r.received, 0, "flat VM reached the VLAN 100 host: {r:?}");
    });
    assert!(
        !seen.contains("02:00:00:00:50:01") && !seen.contains("10.50.0.1 "),
        "f1's frames reached h100:\n{seen}"
    );
    let seen = capture(seg.host_ns(HOST_FLAT.0), "eth0", true, "", || {
        let r = v1
            .ping(ip(HOST_FLAT.2), 3, Duration::from_millis(100))
            .unwrap();
        assert_eq!(r.received, 0, "VLAN 100 VM reached the flat host: {r:?}");
    });
    assert!(
        !seen.contains("02:00:00:00:51:01") && !seen.contains("10.50.0.11 "),
        "v1's frames reached hflat:\n{seen}"
    );
    // ... nor each other's VMs.
    let r = f1
        .ping(ip("10.50.0.12"), 3, Duration::from_millis(100))
        .unwrap();
    assert_eq!(r.received, 0, "flat VM reached a VLAN 100 VM: {r:?}");

    // Deleting the provider switches removes the patch ports (br-ex keeps its uplink).
    ov.call("switch_delete", json!({"switch": "flat", "cascade": true}));
    ov.call("switch_delete", json!({"switch": "v100", "cascade": true}));
    for n in 1..=2 {
        ov.hv(n)
            .wait_for("patch ports removed", INSTALL_TIMEOUT, |hv| {
                Ok(!hv
                    .interfaces()?
                    .iter()
                    .any(|i| i.external_ids.contains_key("weft-physnet")))
            })
            .unwrap();
        let br_ex = ov.hv(n).vsctl(["list-ports", "br-ex"]).unwrap();
        assert_eq!(br_ex.trim(), "ex0", "hv{n} br-ex");
    }
}
