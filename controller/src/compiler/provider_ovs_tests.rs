//! OVS-backed check of provider networks: hv1 of the provider fabric (provider_tests.rs)
//! loaded into a private `ovs-vswitchd --enable-dummy`, br-int patched to a `br-ex` that
//! does `NORMAL` with one uplink `eth0` (the physical network). The switch reports back
//! exactly the compiled flows and groups (so the reconciler's diff is empty, 802.1Q
//! fields included), and `ofproto/trace` of frames from VMs and from the uplink, tagged
//! and untagged, ends where docs/pipeline.md says.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use openflow::{FlowContent, FlowKey, Message, MultipartReplyBody, OfpMessage};

use super::ovs_tests::{OvsInstance, multipart, normal_line, read_msg};
use super::provider_tests::{PATCH_HV1, mac_of, model, topology};
use super::*;

/// `ofproto/trace` of `flow` on `bridge`: the interface names the datapath actions
/// output to (through the patch, across both bridges), with `push_vlan(vid=N` noted as
/// `vlanN:` before the ports it tags. br-ex's own internal port is left out.
fn trace(ovs: &OvsInstance, bridge: &str, flow: &str, odp_names: &BTreeMap<u32, String>) -> String {
    let out = ovs.appctl(&["ofproto/trace", bridge, flow]);
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Datapath actions: "))
        .unwrap_or_else(|| panic!("no datapath actions for {flow}:\n{out}"));
    let mut parts: Vec<String> = Vec::new();
    for tok in line.split(',') {
        let tok = tok.trim();
        if let Some(v) = tok.strip_prefix("push_vlan(vid=") {
            let vid: String = v.chars().take_while(char::is_ascii_digit).collect();
            parts.push(format!("vlan{vid}:"));
        } else if tok == "pop_vlan" {
            parts.push("pop:".into());
        } else if let Ok(n) = tok.parse::<u32>() {
            let name = odp_names.get(&n).cloned().unwrap_or_else(|| n.to_string());
            if name != "br-ex" {
                parts.push(name);
            }
        }
    }
    parts.join(" ")
}

#[test]
fn provider_ovs_dump_matches_desired_and_trace_bridges_the_segment() {
    let (m, t) = (model(), topology());
    let desired = compile_node(&m, &t, "hv1");
    let ovs = OvsInstance::start();
    let view = &t.nodes["hv1"];
    let mut cmds: Vec<String> = vec![
        "add-br br-int -- set bridge br-int datapath_type=dummy fail_mode=secure protocols=OpenFlow13".into(),
        "add-br br-ex -- set bridge br-ex datapath_type=dummy".into(),
        "add-port br-ex eth0 -- set interface eth0 type=dummy".into(),
        format!(
            "add-port br-int wpi-x -- set interface wpi-x type=patch options:peer=wpe-x ofport_request={PATCH_HV1} \
             -- add-port br-ex wpe-x -- set interface wpe-x type=patch options:peer=wpi-x"
        ),
    ];
    for (k, v) in &view.vifs {
        cmds.push(format!(
            "add-port br-int vif-{k} -- set interface vif-{k} type=dummy ofport_request={}",
            v.ofport
        ));
    }
    for (r, o) in &view.tunnels {
        cmds.push(format!(
            "add-port br-int tun-{r} -- set interface tun-{r} type=dummy ofport_request={o}"
        ));
    }
    for c in &cmds {
        let argv: Vec<&str> = c.split(' ').collect();
        ovs.vsctl(&argv);
    }
    let of = |args: &[&str]| {
        let mut all = vec!["-O", "OpenFlow13"];
        all.extend_from_slice(args);
        ovs.run("ovs-ofctl", &all)
    };
    let groups = ovs.path("provider-groups.txt");
    std::fs::write(&groups, desired.groups_text().join("\n") + "\n").unwrap();
    let flows = ovs.path("provider-flows.txt");
    std::fs::write(&flows, desired.flows_text().join("\n") + "\n").unwrap();
    of(&["add-groups", "br-int", &groups.to_string_lossy()]);
    of(&["add-flows", "br-int", &flows.to_string_lossy()]);

    // Text: dump-flows gives back our lines, 802.1Q matches and actions included.
    let dumped: BTreeSet<String> = of(&["--no-names", "dump-flows", "--no-stats", "br-int"])
        .lines()
        .filter(|l| l.contains("actions="))
        .map(normal_line)
        .collect();
    let ours: BTreeSet<String> = desired
        .flows_text()
        .iter()
        .map(|l| normal_line(l))
        .collect();
    assert_eq!(
        ours.symmetric_difference(&dumped).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "dump-flows differs from the compiled flows"
    );
    // Structure: the decoded flow-stats and group-desc replies are DesiredNode's.
    let mut s = UnixStream::connect(ovs.path("br-int.mgmt")).expect("connect br-int.mgmt");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&OfpMessage::hello(1).to_bytes().unwrap())
        .unwrap();
    assert!(matches!(read_msg(&mut s).body, Message::Hello(_)));
    let mut installed: BTreeMap<FlowKey, FlowContent> = BTreeMap::new();
    for body in multipart(
        &mut s,
        OfpMessage::flow_stats_request(2, COOKIE_WEFT, COOKIE_MASK),
    ) {
        if let MultipartReplyBody::Flow(stats) = body {
            installed.extend(stats.iter().map(|f| (f.key(), f.content())));
        }
    }
    assert_eq!(
        installed,
        crate::desired::owned_flows(&desired.flows),
        "decoded flow dump differs"
    );
    let mut dumped_groups = BTreeMap::new();
    for body in multipart(&mut s, OfpMessage::group_desc_request(3)) {
        if let MultipartReplyBody::GroupDesc(gs) = body {
            for g in gs {
                dumped_groups.insert(g.group_id, g.buckets);
            }
        }
    }
    let ours: BTreeMap<u32, _> = desired
        .groups
        .iter()
        .map(|(id, g)| (*id, g.buckets.clone()))
        .collect();
    assert_eq!(dumped_groups, ours, "decoded group dump differs");

    // Datapath port numbers -> interface names ("    vif-pf1 1/3: (dummy)").
    let mut odp_names = BTreeMap::new();
    for l in ovs.appctl(&["dpif/show"]).lines() {
        if let Some((name, nums)) = l.trim().split_once(' ')
            && let Some((_, odp)) = nums.split(':').next().and_then(|n| n.split_once('/'))
            && let Ok(odp) = odp.parse::<u32>()
        {
            odp_names.insert(odp, name.to_string());
        }
    }
    let vm = |ofport: u32, src: u128, ip: &str, dst: &str| {
        format!(
            "in_port={ofport},dl_src={},dl_dst={dst},ip,nw_src={ip},nw_dst=10.9.9.9",
            mac_of(src)
        )
    };
    let host = "02:00:00:00:ee:01";
    let uplink = |vlan: Option<u16>, dst: &str| {
        let tag = vlan.map(|v| format!("dl_vlan={v},")).unwrap_or_default();
        format!("in_port=eth0,{tag}dl_src={host},dl_dst={dst},ip,nw_src=10.1.0.99,nw_dst=10.1.0.1")
    };
    let (pf1, pf4, pa1) = (
        mac_of(0xf1).to_string(),
        mac_of(0xf4).to_string(),
        mac_of(0xa1).to_string(),
    );
    let bcast = "ff:ff:ff:ff:ff:ff";
    let cases: Vec<(&str, &str, String, &str)> = vec![
        (
            "VM of F to a physical host: out untagged",
            "br-int",
            vm(1, 0xf1, "10.1.0.1", host),
            "eth0",
        ),
        (
            "VM of F to F's port on hv2: over the physical network",
            "br-int",
            vm(1, 0xf1, "10.1.0.1", &mac_of(0xf2).to_string()),
            "eth0",
        ),
        (
            "VM of F to a local port of F: stays local",
            "br-int",
            vm(1, 0xf1, "10.1.0.1", &pf4),
            "vif-pf4",
        ),
        (
            "VM of F broadcast: other local port and the segment",
            "br-int",
            vm(1, 0xf1, "10.1.0.1", bcast),
            "vif-pf4 eth0",
        ),
        (
            "VM of V to a physical host: tagged 100",
            "br-int",
            vm(2, 0xa1, "10.2.0.1", host),
            "vlan100: eth0",
        ),
        (
            "VM of V broadcast: tagged 100",
            "br-int",
            vm(2, 0xa1, "10.2.0.1", bcast),
            "vlan100: eth0",
        ),
        (
            "untagged from the segment to F's port",
            "br-ex",
            uplink(None, &pf1),
            "vif-pf1",
        ),
        (
            "VLAN 100 from the segment to V's port: popped",
            "br-ex",
            uplink(Some(100), &pa1),
            "pop: vif-pa1",
        ),
        (
            "untagged from the segment to V's MAC: dropped",
            "br-ex",
            uplink(None, &pa1),
            "",
        ),
        (
            "VLAN 100 from the segment to F's MAC: dropped",
            "br-ex",
            uplink(Some(100), &pf1),
            "",
        ),
        (
            "VLAN 200 from the segment: dropped",
            "br-ex",
            uplink(Some(200), bcast),
            "",
        ),
        (
            "untagged broadcast from the segment: F's local ports only",
            "br-ex",
            uplink(None, bcast),
            "vif-pf1 vif-pf4",
        ),
        (
            "unknown unicast from the segment: dropped",
            "br-ex",
            uplink(None, "02:00:00:00:bb:bb"),
            "",
        ),
    ];
    let mut failures = Vec::new();
    for (what, bridge, flow, want) in &cases {
        let got = trace(&ovs, bridge, flow, &odp_names);
        // Order of a flood's outputs is OVS's; compare as sets, keeping the tag marks
        // attached to what follows them.
        let norm = |s: &str| {
            let mut v: Vec<String> = s
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect();
            v.sort_unstable();
            v
        };
        if norm(&got) != norm(want) {
            failures.push(format!("{what}: got {got:?}, want {want:?} ({flow})"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
