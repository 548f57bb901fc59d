//! Hardware VTEPs end to end: a real `ovs-vtep` (Debian's openvswitch-vtep, the
//! `hardware_vtep` emulator) with its own ovsdb-server and OVS in a namespace on the lab's
//! underlay, pointed at weftd's manager port with `vtep-ctl set-manager`, next to two
//! real-OVS hypervisors.
//!
//! Evidence is what the VTEP's own database holds, read with `vtep-ctl` (logical
//! switches, bindings, remote MACs with their locators), and what weftd reports of what
//! the VTEP learned from real frames (a bare-metal namespace behind its port). Pings
//! between bare metal and VMs (the hypervisor half) are tests/hardware_vtep_dataplane.rs.

mod common;

use std::process::Command;

use common::overlay::Overlay;
use common::vtep::{Vtep, flood_locators, remote_macs, wait};
use integration::lab::{Encap, VmSpec};
use serde_json::{Value, json};

#[test]
fn ovs_vtep_is_recognised_bound_and_kept_in_step() {
    let ov = Overlay::start(2, Encap::Vxlan);
    let hv_ip = |n: usize| ov.hv(n).transport_ip().to_string();
    ov.call("switch_create", json!({"name": "ls1", "vni": 5001}));
    ov.port("ls1", "vm1", "02:00:00:00:01:01", "10.0.0.1");
    ov.port("ls1", "vm2", "02:00:00:00:01:02", "10.0.0.2");
    let _vm1 = ov.plug(1, "vm1", "02:00:00:00:01:01", "10.0.0.1/24");
    let vm2 = ov.plug(2, "vm2", "02:00:00:00:01:02", "10.0.0.2/24");

    let manager = format!("tcp:{}:{}", ov.lab.controller_ip(), ov.ports.0);
    let vtep = Vtep::start(&ov.lab, &manager);

    // Recognised by its schema, named by its Physical_Switch, not taken for a hypervisor.
    let listed = wait(&ov, "vtep_list shows br0 connected", || {
        let l = ov.call("vtep_list", json!({}));
        let br0 = l.as_array()?.iter().find(|v| v["name"] == "br0")?.clone();
        (br0["connected"] == true).then_some(br0)
    });
    assert_eq!(listed["tunnel_ips"], json!([vtep.tunnel_ip]));
    assert!(
        listed["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "p0"),
        "{listed}"
    );
    let nodes = ov.call("node_list", json!({}));
    assert_eq!(
        nodes.as_array().unwrap().len(),
        2,
        "the VTEP is no transport node: {nodes}"
    );

    // Bind p0 untagged to ls1: the VTEP gets the logical switch, the binding, every port's
    // MAC at its hypervisor's locator, and the flood locators.
    let b = ov.call(
        "vtep_bind",
        json!({"vtep": "br0", "port": "p0", "vlan": 0, "switch": "ls1"}),
    );
    assert_eq!(b["switch_name"], "ls1");
    let again = ov.try_call(
        "vtep_bind",
        json!({"vtep": "br0", "port": "p0", "vlan": 0, "switch": "ls1"}),
    );
    assert!(format!("{again:?}").contains("-32009"), "{again:?}");
    wait(&ov, "vtep-ctl list-ls shows ls1", || {
        vtep.vtep_ctl(&["list-ls"])
            .lines()
            .any(|l| l.trim() == "ls1")
            .then_some(())
    });
    assert_eq!(
        vtep.vtep_ctl(&["get", "Logical_Switch", "ls1", "tunnel_key"])
            .trim(),
        "5001"
    );
    wait(&ov, "list-bindings br0 p0", || {
        let out = vtep.vtep_ctl(&["list-bindings", "br0", "p0"]);
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["0000", "ls1"])
            .then_some(())
    });
    let want = |m2_at: &str| {
        let mut w = vec![
            format!("02:00:00:00:01:01 -> vxlan_over_ipv4/{}", hv_ip(1)),
            format!("02:00:00:00:01:02 -> vxlan_over_ipv4/{m2_at}"),
        ];
        w.sort();
        w
    };
    wait(&ov, "remote MACs at their hypervisors", || {
        let mut got = remote_macs(&vtep, "ls1");
        got.sort();
        (got == want(&hv_ip(2))).then_some(())
    });
    assert_eq!(flood_locators(&vtep, "ls1"), vec![hv_ip(1), hv_ip(2)]);
    // One locator per hypervisor, shared by the unicast and flood rows.
    let locators = vtep.vtep_ctl(&["--columns=dst_ip", "list", "Physical_Locator"]);
    for n in [1, 2] {
        let count = locators.matches(&format!("\"{}\"", hv_ip(n))).count();
        assert_eq!(count, 1, "{locators}");
    }

    // A frame from the bare-metal host: the VTEP learns its MAC, weftd reports it.
    let _ = Command::new("ip")
        .args([
            "netns", "exec", &vtep.bm, "ping", "-c", "2", "-W", "1", "10.0.0.1",
        ])
        .output();
    let got = wait(&ov, "vtep_get shows the learned MAC", || {
        let g = ov.call("vtep_get", json!({"vtep": "br0"}));
        let macs = g["local_macs"]
            .as_array()?
            .iter()
            .find(|s| s["switch_name"] == "ls1")?;
        macs["macs"]
            .as_array()?
            .iter()
            .any(|m| m == "02:00:00:00:bb:01")
            .then_some(g)
    });
    let p0 = got["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "p0")
        .unwrap()
        .clone();
    assert_eq!(p0["bindings"][0]["status"], "applied", "{p0}");

    // vm2 moves to hv1: its remote MAC follows, in place.
    vm2.unplug(ov.hv(2)).unwrap();
    ov.hv(1)
        .plug_vm(
            VmSpec::new("vm2b", "02:00:00:00:01:02", "vm2")
                .addr("10.0.0.2/24")
                .unwrap(),
        )
        .unwrap();
    wait(&ov, "vm2's remote MAC at hv1", || {
        let mut got = remote_macs(&vtep, "ls1");
        got.sort();
        (got == want(&hv_ip(1))).then_some(())
    });
    wait(&ov, "flood to hv1 only", || {
        (flood_locators(&vtep, "ls1") == vec![hv_ip(1)]).then_some(())
    });

    // Deleting a port removes its remote MAC.
    ov.call("port_delete", json!({"port": "vm1"}));
    wait(&ov, "vm1's remote MAC gone", || {
        let got = remote_macs(&vtep, "ls1");
        (got.len() == 1 && got[0].starts_with("02:00:00:00:01:02")).then_some(())
    });

    // A second switch on VLAN 100 of the same port: its own logical switch, tunnel key
    // and remote MACs; the untagged binding is untouched.
    ov.call("switch_create", json!({"name": "ls2", "vni": 5002}));
    ov.port("ls2", "vm3", "02:00:00:00:02:03", "10.0.0.3");
    let _vm3 = ov.plug(2, "vm3", "02:00:00:00:02:03", "10.0.0.3/24");
    ov.call(
        "vtep_bind",
        json!({"vtep": "br0", "port": "p0", "vlan": 100, "switch": "ls2"}),
    );
    wait(&ov, "both bindings on p0", || {
        let out = vtep.vtep_ctl(&["list-bindings", "br0", "p0"]);
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        (lines == vec![vec!["0000", "ls1"], vec!["0100", "ls2"]]).then_some(())
    });
    wait(&ov, "ls2's remote MAC", || {
        (remote_macs(&vtep, "ls2")
            == vec![format!("02:00:00:00:02:03 -> vxlan_over_ipv4/{}", hv_ip(2))])
        .then_some(())
    });
    assert_eq!(
        vtep.vtep_ctl(&["get", "Logical_Switch", "ls2", "tunnel_key"])
            .trim(),
        "5002"
    );
    assert_eq!(flood_locators(&vtep, "ls2"), vec![hv_ip(2)]);
    assert_eq!(remote_macs(&vtep, "ls1").len(), 1, "ls1 keeps only vm2");
    ov.call(
        "vtep_unbind",
        json!({"vtep": "br0", "port": "p0", "vlan": 100}),
    );

    // Unbinding removes the logical switch and the binding.
    let d = ov.call(
        "vtep_unbind",
        json!({"vtep": "br0", "port": "p0", "vlan": 0}),
    );
    assert_eq!(d["vtep_bindings"].as_array().map(Vec::len), Some(1), "{d}");
    wait(&ov, "ls1 removed from the VTEP", || {
        let ls = vtep.vtep_ctl(&["list-ls"]);
        let bindings = vtep.vtep_ctl(&["list-bindings", "br0", "p0"]);
        (ls.trim().is_empty() && bindings.trim().is_empty()).then_some(())
    });
    let after: Value = ov.call("vtep_get", json!({"vtep": "br0"}));
    assert_eq!(after["connected"], true);

    // The VTEP drops its manager: weftd shows it disconnected (and forgets its MACs).
    vtep.vtep_ctl(&["del-manager"]);
    wait(&ov, "vtep_get shows br0 disconnected", || {
        let g = ov.call("vtep_get", json!({"vtep": "br0"}));
        (g["connected"] == false && g["local_macs"] == json!([])).then_some(())
    });
}
