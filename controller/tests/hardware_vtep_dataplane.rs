//! Hardware VTEPs, the hypervisor half, with real packets: a real `ovs-vtep` bound by weftd
//! (common/vtep.rs) and two real-OVS hypervisors on Geneve, whose VMs and the bare-metal
//! hosts behind the VTEP's ports ping each other through VXLAN tunnel ports towards the VTEP
//! (docs/pipeline.md, "Hardware VTEPs").
//!
//! Host bm1 (10.0.0.60) is behind p0 untagged, bound to ls1 (VNI 5001: vm1 on hv1, vm2 on
//! hv2); host bm2 (10.0.0.98) is behind p1 on VLAN 100, bound to ls2 (VNI 5002: vm3 on hv1,
//! vm4 on hv2). The two switches share an address range, so only the VNIs keep them apart.

mod common;

use std::time::{Duration, Instant};

use common::overlay::{Overlay, assert_reaches};
use common::vtep::{Vtep, ns_ping, ns_reaches, wait};
use integration::lab::{Encap, Vm, VmSpec};
use serde_json::json;

const BM1: &str = "10.0.0.60";
const BM1_MAC: &str = "02:00:00:00:bb:01";
const BM2: &str = "10.0.0.98";

/// No ping from `vm` to `to` is answered (after the ARP entries of a working path would
/// have expired from the VM's point of view: a fresh neighbour lookup each time).
fn unreachable(vm: &Vm, to: &str) {
    let _ = vm.exec("ip", &["neigh", "flush", "all"]);
    let r = vm
        .ping(to.parse().unwrap(), 3, Duration::from_millis(200))
        .unwrap();
    assert_eq!(r.received, 0, "{} reached {to}: {r:?}", vm.name());
}

/// Polls until nothing from `ns` to `to` is answered any more.
fn stops(ov: &Overlay, ns: &str, to: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while ns_ping(ns, to, 2) != 0 {
        assert!(
            Instant::now() < deadline,
            "{ns} still reaches {to}\nweftd log:\n{}",
            ov.log()
        );
    }
}

/// The flows of hv `n`'s br-int that send to the MAC `mac`.
fn flows_to(ov: &Overlay, n: usize, mac: &str) -> Vec<String> {
    ov.hv(n)
        .dump_flows("br-int")
        .unwrap()
        .into_iter()
        .filter(|f| f.contains(&format!("dl_dst={mac}")))
        .collect()
}

#[test]
fn bare_metal_hosts_and_vms_reach_each_other_through_the_vtep() {
    let ov = Overlay::start(2, Encap::Geneve);
    for (ls, vni) in [("ls1", 5001), ("ls2", 5002)] {
        ov.call("switch_create", json!({"name": ls, "vni": vni}));
    }
    ov.port("ls1", "vm1", "02:00:00:00:01:01", "10.0.0.1");
    ov.port("ls1", "vm2", "02:00:00:00:01:02", "10.0.0.2");
    ov.port("ls2", "vm3", "02:00:00:00:02:03", "10.0.0.3");
    ov.port("ls2", "vm4", "02:00:00:00:02:04", "10.0.0.4");
    let vm1 = ov.plug(1, "vm1", "02:00:00:00:01:01", "10.0.0.1/24");
    let vm2 = ov.plug(2, "vm2", "02:00:00:00:01:02", "10.0.0.2/24");
    let vm3 = ov.plug(1, "vm3", "02:00:00:00:02:03", "10.0.0.3/24");
    let vm4 = ov.plug(2, "vm4", "02:00:00:00:02:04", "10.0.0.4/24");

    let manager = format!("tcp:{}:{}", ov.lab.controller_ip(), ov.ports.0);
    let vtep = Vtep::start(&ov.lab, &manager);
    wait(&ov, "br0 connected", || {
        let v = ov.try_call("vtep_get", json!({"vtep": "br0"})).ok()?;
        (v["connected"] == true).then_some(())
    });
    ov.call(
        "vtep_bind",
        json!({"vtep": "br0", "port": "p0", "vlan": 0, "switch": "ls1"}),
    );
    ov.call(
        "vtep_bind",
        json!({"vtep": "br0", "port": "p1", "vlan": 100, "switch": "ls2"}),
    );

    // VMs first: their broadcast reaches the VTEP before it learned any host MAC.
    assert_reaches(&vm1, BM1, &ov);
    assert_reaches(&vm2, BM1, &ov);
    assert_reaches(&vm3, BM2, &ov);
    assert_reaches(&vm4, BM2, &ov);
    ns_reaches(&ov, &vtep.bm, "10.0.0.1");
    ns_reaches(&ov, &vtep.bm, "10.0.0.2");
    ns_reaches(&ov, &vtep.bm2, "10.0.0.3");
    ns_reaches(&ov, &vtep.bm2, "10.0.0.4");
    // The host's MAC is a static flow on both hypervisors, into the VTEP's tunnel.
    for n in [1, 2] {
        let f = flows_to(&ov, n, BM1_MAC);
        assert_eq!(f.len(), 1, "hv{n}: {f:?}");
        assert!(f[0].contains("set_field:0x1389->tun_id"), "{f:?}");
    }
    let t = ov.call(
        "trace",
        json!({"port": "vm1", "packet": {"eth_dst": BM1_MAC, "ip_src": "10.0.0.1",
               "ip_dst": BM1}}),
    );
    let to = &t["hops"][0]["outputs"][0]["to"];
    assert_eq!(*to, json!({"kind": "vtep", "ip": vtep.tunnel_ip}), "{t}");

    // The two bindings stay apart: VNI 5001 never reaches the VLAN 100 host and back.
    unreachable(&vm1, BM2);
    unreachable(&vm3, BM1);
    assert_eq!(ns_ping(&vtep.bm, "10.0.0.3", 3), 0, "bm1 reached vm3");
    assert_eq!(ns_ping(&vtep.bm2, "10.0.0.1", 3), 0, "bm2 reached vm1");

    // vm2 moves to hv1: the host reaches it there.
    vm2.unplug(ov.hv(2)).unwrap();
    let vm2b = ov
        .hv(1)
        .plug_vm(
            VmSpec::new("vm2b", "02:00:00:00:01:02", "vm2")
                .addr("10.0.0.2/24")
                .unwrap(),
        )
        .unwrap();
    ov.wait_installed(1, "vm2b");
    ns_reaches(&ov, &vtep.bm, "10.0.0.2");
    assert_reaches(&vm2b, BM1, &ov);

    // Unbinding ls1 stops its traffic both ways, on the hypervisors too; ls2 goes on.
    ov.call(
        "vtep_unbind",
        json!({"vtep": "br0", "port": "p0", "vlan": 0}),
    );
    stops(&ov, &vtep.bm, "10.0.0.1");
    wait(&ov, "the host's flows gone from the hypervisors", || {
        (flows_to(&ov, 1, BM1_MAC).is_empty() && flows_to(&ov, 2, BM1_MAC).is_empty()).then_some(())
    });
    unreachable(&vm1, BM1);
    assert_reaches(&vm4, BM2, &ov);
    drop(vtep);
}
