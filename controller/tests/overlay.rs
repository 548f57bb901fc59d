//! The L2 overlay end to end: real `weftd`, real Open vSwitch per hypervisor in network
//! namespaces (userspace datapath), VMs as namespaces, real packets.
//!
//! Hypervisors are pointed at weftd with `set-manager` and nothing else: weftd configures
//! br-int, creates the tunnel mesh and installs the pipeline. Every assertion is about
//! what packets did (ping replies, interface counters), not about what weftd says.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::capture::capture_inbound_each;
use common::overlay::{INSTALL_TIMEOUT, Overlay, assert_reaches};
use integration::lab::{Encap, Vm};
use serde_json::{Value, json};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
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
        assert_eq!(get("other_config:disable-in-band").trim(), "\"true\"");
        assert!(get("controller").trim() != "[]", "no controller on br-int");
        // ... and took its manager connection out of in-band control: no hidden flows
        // for it on br-phy, the bridge that carries it (vswitchd drops them on its next
        // reconfiguration after the write; the bound turns a hang into a message).
        let mode = hv
            .vsctl(["get", "manager", ".", "connection_mode"])
            .unwrap();
        assert_eq!(mode.trim(), "out-of-band");
        // ... and left the probing of both connections to weftd.
        let probe = weft::southbound::HYPERVISOR_INACTIVITY_PROBE_MS.to_string();
        for table in ["manager", "controller"] {
            let record = if table == "manager" { "." } else { "br-int" };
            let got = hv
                .vsctl(["get", table, record, "inactivity_probe"])
                .unwrap();
            assert_eq!(got.trim(), probe, "{table} inactivity_probe");
        }
        let in_band = || -> Vec<String> {
            let flows = hv.appctl(["bridge/dump-flows", "br-phy"]).unwrap();
            flows
                .lines()
                .filter(|l| l.contains("priority=18000"))
                .map(str::to_owned)
                .collect()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !in_band().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(
            in_band(),
            Vec::<String>::new(),
            "in-band flows on hv{n}'s br-phy"
        );
    }

    // What the API reports agrees with what OVS holds.
    let nodes = ov.call("node_list", json!({}));
    let nodes = nodes.as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    for n in nodes {
        assert_eq!(n["ovsdb_connected"], true, "{n}");
        assert_eq!(n["openflow_connected"], true, "{n}");
        assert!(n["flow_count"].as_u64().unwrap() > 0, "{n}");
    }
    let a1_view = ov.call("port_get", json!({"port": "a1"}));
    assert_eq!(a1_view["binding"]["node"], "hv1", "{a1_view}");
    assert_eq!(a1_view["up"], true, "{a1_view}");
    let flows = ov.call("node_flows", json!({"node": "hv1"}));
    let flows: Vec<&str> = flows["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let installed = ov.hv(1).dump_flows("br-int").unwrap();
    assert_eq!(flows.len(), installed.len(), "node_flows vs dump-flows");
    // trace: a1 -> a3's MAC crosses a tunnel to hv3 and is delivered to a3 only.
    let t = ov.call(
        "trace",
        json!({"port": "a1", "packet": {"eth_dst": "02:00:00:00:00:03", "ip_dst": "10.0.0.3",
               "ip_proto": 1}}),
    );
    let delivered: Vec<&Value> = t["delivered"].as_array().unwrap().iter().collect();
    assert_eq!(delivered.len(), 1, "{t}");
    assert_eq!(delivered[0]["port"], "a3", "{t}");
    assert_eq!(delivered[0]["node"], "hv3", "{t}");
    // ... and to b4's MAC (red only) it is dropped on hv1.
    let t = ov.call(
        "trace",
        json!({"port": "a1", "packet": {"eth_dst": "02:00:00:00:00:14"}}),
    );
    assert!(t["delivered"].as_array().unwrap().is_empty(), "{t}");

    // The ARP responder answers on the local hypervisor: a1's request for a3 reaches no
    // other VM (a flooded request would reach a2 and a3). Done before any other traffic,
    // since b1 shares a1's MAC and IP: its own requests would look the same.
    let seen = capture_inbound_each(&[a2, a3, b1, b2, b4], "arp", false, || {
        let out = a1
            .exec_output("arping", &["-c", "3", "-w", "3", "-I", "eth0", "10.0.0.3"])
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.contains("02:00:00:00:00:03"),
            "ARP for 10.0.0.3 unanswered: {text}"
        );
    });
    for (vm, lines) in &seen {
        assert!(
            !lines.contains("tell 10.0.0.1"),
            "a1's ARP request reached {vm}: {lines}"
        );
    }

    // Broadcast reaches exactly blue's members (tunnels warmed first: the first packet
    // to a new tunnel peer is dropped while OVS resolves the underlay next hop).
    assert_reaches(a1, "10.0.0.2", &ov);
    assert_reaches(a1, "10.0.0.3", &ov);
    let seen = capture_inbound_each(
        &[a2, a3, b1, b2, b4],
        "icmp and dst host 10.0.0.255",
        false,
        || {
            let _ = a1.exec_output(
                "ping",
                &["-b", "-c", "3", "-i", "0.2", "-W", "1", "10.0.0.255"],
            );
        },
    );
    for (vm, lines) in &seen {
        let n = lines
            .lines()
            .filter(|l| l.contains("ICMP echo request"))
            .count();
        let member = vm.starts_with('a');
        assert_eq!(n, if member { 3 } else { 0 }, "{vm} saw {lines}");
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

    // Port security: a spoofed source address is dropped, the real one passes.
    a1.exec("ip", &["addr", "add", "10.0.0.9/24", "dev", "eth0"])
        .unwrap();
    let r = a1
        .exec_output(
            "ping",
            &["-c", "3", "-W", "1", "-I", "10.0.0.9", "10.0.0.2"],
        )
        .unwrap();
    assert!(
        String::from_utf8_lossy(&r.stdout).contains(" 0 received"),
        "spoofed IP passed"
    );
    a1.exec("ip", &["addr", "del", "10.0.0.9/24", "dev", "eth0"])
        .unwrap();
    a1.exec(
        "ip",
        &["link", "set", "eth0", "address", "02:00:00:00:00:99"],
    )
    .unwrap();
    assert_unreachable(a1, "10.0.0.2");
    a1.exec(
        "ip",
        &["link", "set", "eth0", "address", "02:00:00:00:00:01"],
    )
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
