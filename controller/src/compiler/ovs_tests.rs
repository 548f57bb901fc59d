//! OVS-backed compiler tests: a private `ovsdb-server` + `ovs-vswitchd --enable-dummy`
//! (dummy datapath, as OVS's own test suite runs), hypervisor hv1 of the unit-test fabric
//! loaded through `ovs-ofctl add-groups/add-flows` from our Display text. Then
//! (a) the switch accepts our encoded flow and group mods and reports back exactly our flows and groups, both as `ovs-ofctl dump-*`
//!     text and as decoded flow-stats / group-desc replies on an OpenFlow 1.3 connection
//!     (so the reconciler's diff of a dump against [`DesiredNode`] is empty), and
//! (b) `ofproto/trace` sends a few packets where the software flow table says.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use integration::sandbox::{Datapath, OvsSandbox};
use openflow::{
    FlowContent, FlowKey, Mac, Message, MultipartReplyBody, OfpMessage, port as ofport,
};

use super::table::{FlowTable, FromDesired, Packet, ct_state};
use super::tests::{model_with_acls as model, topology};
use super::*;
use crate::desired::GroupSpec;

/// Our own ovsdb-server and ovs-vswitchd (dummy datapath), stopped by their PIDs when
/// dropped, even if the test panics. Failures show the daemons' log tails.
pub(super) struct OvsInstance(OvsSandbox);

impl OvsInstance {
    pub(super) fn start() -> Self {
        let ovs = OvsSandbox::builder("compiler-ovs")
            .vswitchd(Datapath::Dummy)
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        OvsInstance(ovs)
    }

    /// A file in the run dir: scratch files and the bridges' `.mgmt` sockets.
    pub(super) fn path(&self, f: &str) -> PathBuf {
        self.0.run_dir().join(f)
    }

    fn check(&self, out: integration::lab::Result<String>) -> String {
        out.unwrap_or_else(|e| panic!("{e}\n{}", self.0.log_tail(20)))
    }

    pub(super) fn run(&self, bin: &str, args: &[&str]) -> String {
        self.check(self.0.tool(bin).args(args).run())
    }

    pub(super) fn vsctl(&self, args: &[&str]) -> String {
        self.check(self.0.vsctl(args))
    }

    pub(super) fn appctl(&self, args: &[&str]) -> String {
        self.check(self.0.appctl(args))
    }
}

/// A line of `dump-flows --no-stats` or our Display, made comparable: OVS leaves out
/// `table=0` and orders some match fields its own way.
pub(super) fn normal_line(l: &str) -> String {
    let l = l.trim().replace(" table=0,", "");
    let (head, actions) = l.split_once(" actions=").unwrap_or((l.as_str(), ""));
    let mut parts: Vec<String> = head
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(masked_port_hex)
        .collect();
    parts.sort_unstable();
    format!("{} actions={actions}", parts.join(","))
}

/// OVS prints a masked transport port as `tp_dst=0x1f40/0xffc0`; the openflow crate's
/// printer (as of this writing) prints the value in decimal (`8000/0xffc0`). Same flow,
/// so compare them in OVS's spelling (reported to the openflow owner).
fn masked_port_hex(tok: &str) -> String {
    if let Some((name, val)) = tok.split_once('=')
        && name.starts_with("tp_")
        && let Some((v, m)) = val.split_once('/')
        && let Ok(n) = v.parse::<u16>()
    {
        return format!("{name}={n:#x}/{m}");
    }
    tok.to_string()
}

/// Reads one OpenFlow message from the stream.
pub(super) fn read_msg(s: &mut UnixStream) -> OfpMessage {
    OfpMessage::decode(&read_frame(s)).expect("decode OpenFlow message from OVS")
}

fn read_frame(s: &mut UnixStream) -> Vec<u8> {
    let mut hdr = [0u8; 8];
    s.read_exact(&mut hdr).expect("read OpenFlow header");
    let len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
    let mut buf = hdr.to_vec();
    buf.resize(len.max(8), 0);
    s.read_exact(&mut buf[8..]).expect("read OpenFlow body");
    buf
}

/// The parts of OVS's reply to a flow-stats request, each body exactly as OVS encoded it.
fn raw_flow_dump(s: &mut UnixStream, xid: u32) -> Vec<MultipartReplyBody> {
    let req = OfpMessage::flow_stats_request(xid, COOKIE_WEFT, COOKIE_MASK);
    s.write_all(&req.to_bytes().expect("encode")).expect("send");
    let mut out = Vec::new();
    loop {
        let f = read_frame(s);
        if f.len() < 16 || u32::from_be_bytes([f[4], f[5], f[6], f[7]]) != xid {
            continue;
        }
        assert_eq!(f[1], openflow::message::ofpt::MULTIPART_REPLY, "{f:x?}");
        out.push(MultipartReplyBody::Raw {
            mp_type: openflow::MultipartType::Flow,
            body: f[16..].to_vec(),
        });
        if u16::from_be_bytes([f[10], f[11]]) & openflow::MULTIPART_MORE == 0 {
            return out;
        }
    }
}

/// Collects a multipart reply to `req`.
pub(super) fn multipart(s: &mut UnixStream, req: OfpMessage) -> Vec<MultipartReplyBody> {
    let xid = req.xid;
    s.write_all(&req.to_bytes().expect("encode")).expect("send");
    let mut out = Vec::new();
    loop {
        let m = read_msg(s);
        if m.xid != xid {
            continue;
        }
        match m.body {
            Message::MultipartReply(r) => {
                let more = r.flags & openflow::MULTIPART_MORE != 0;
                out.push(r.body);
                if !more {
                    return out;
                }
            }
            Message::Error(e) => panic!("OVS answered with an error: {e:?}"),
            _ => {}
        }
    }
}

/// An ofproto/trace flow string for a packet.
fn trace_flow(p: &Packet) -> String {
    let mut s = format!(
        "in_port={},dl_src={},dl_dst={}",
        p.in_port, p.eth_src, p.eth_dst
    );
    if p.tun_id != 0 {
        s.push_str(&format!(",tun_id={:#x}", p.tun_id));
    }
    match p.eth_type {
        0x0806 => s.push_str(&format!(
            ",arp,arp_op={},arp_spa={},arp_tpa={},arp_sha={},arp_tha={}",
            p.arp_op, p.arp_spa, p.arp_tpa, p.arp_sha, p.arp_tha
        )),
        0x0800 => {
            let proto = match p.ip_proto {
                1 => "icmp",
                6 => "tcp",
                17 => "udp",
                _ => "ip",
            };
            s.push_str(&format!(
                ",{proto},nw_src={},nw_dst={}",
                p.ip4_src, p.ip4_dst
            ));
            match p.ip_proto {
                1 => s.push_str(&format!(",icmp_type={},icmp_code={}", p.tp_src, p.tp_dst)),
                6 | 17 => s.push_str(&format!(",tp_src={},tp_dst={}", p.tp_src, p.tp_dst)),
                _ => {}
            }
        }
        0x86dd => {
            let proto = if p.ip_proto == 58 { "icmp6" } else { "ipv6" };
            s.push_str(&format!(
                ",{proto},ipv6_src={},ipv6_dst={}",
                p.ip6_src, p.ip6_dst
            ));
            if p.ip_proto == 58 {
                s.push_str(&format!(
                    ",icmpv6_type={},icmpv6_code={}",
                    p.tp_src, p.tp_dst
                ));
                match p.tp_src {
                    135 => s.push_str(&format!(",nd_target={},nd_sll={}", p.nd_target, p.nd_sll)),
                    136 => s.push_str(&format!(",nd_target={},nd_tll={}", p.nd_target, p.nd_tll)),
                    _ => {}
                }
            }
        }
        t => s.push_str(&format!(",dl_type={t:#06x}")),
    }
    if matches!(p.eth_type, 0x0800 | 0x86dd) {
        s.push_str(&format!(",nw_ttl={}", p.ip_ttl));
    }
    s
}

/// Output ofports from `ofproto/trace`'s "Datapath actions:" line (datapath port numbers
/// mapped back to OpenFlow ports with `dpif/show`).
fn ovs_outputs(ovs: &OvsInstance, flow: &str, odp_to_of: &BTreeMap<u32, u32>) -> Vec<u32> {
    let out = ovs.appctl(&["ofproto/trace", "br-int", flow]);
    // With conntrack the trace resumes after each recirculation and prints one
    // "Datapath actions:" line per pass.
    let lines: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Datapath actions: "))
        .collect();
    assert!(
        !lines.is_empty(),
        "no datapath actions in trace of {flow}:\n{out}"
    );
    let mut ports: Vec<u32> = Vec::new();
    for line in lines {
        odp_outputs(line, odp_to_of, &mut ports);
    }
    ports.sort_unstable();
    ports
}

fn odp_outputs(line: &str, odp_to_of: &BTreeMap<u32, u32>, ports: &mut Vec<u32>) {
    // Actions are comma separated, but set(...) nests commas: only bare numbers are outputs.
    let mut depth = 0i32;
    let mut tok = String::new();
    for ch in line.chars().chain(std::iter::once(',')) {
        match ch {
            '(' => {
                depth += 1;
                tok.clear();
            }
            ')' => {
                depth -= 1;
                tok.clear();
            }
            ',' if depth == 0 => {
                if let Ok(n) = tok.trim().parse::<u32>() {
                    ports.push(*odp_to_of.get(&n).unwrap_or(&n));
                }
                tok.clear();
            }
            c => tok.push(c),
        }
    }
}

#[test]
fn compiler_ovs_dump_matches_desired_and_trace_agrees() {
    let m = model();
    let t = topology();
    let desired = compile_node(&m, &t, "hv1");
    let ovs = OvsInstance::start();
    let odp_to_of = load_node(&ovs, &desired, &t.nodes["hv1"]);
    let soft = FlowTable::from_desired(&desired);
    let mac = |s: &str| s.parse::<Mac>().unwrap();
    let a1 = Packet {
        in_port: 1,
        eth_src: mac("02:00:00:00:00:01"),
        eth_type: 0x0800,
        ip4_src: "10.0.0.1".parse().unwrap(),
        ip_proto: 1,
        tp_src: 8,
        ..Packet::default()
    };
    let cases: Vec<(&str, Packet)> = vec![
        (
            "a1 -> a2 (local)",
            Packet {
                eth_dst: mac("02:00:00:00:00:02"),
                ip4_dst: "10.0.0.2".parse().unwrap(),
                ..a1.clone()
            },
        ),
        (
            "a1 -> a3 (tunnel to hv2)",
            Packet {
                eth_dst: mac("02:00:00:00:00:03"),
                ip4_dst: "10.0.0.3".parse().unwrap(),
                ..a1.clone()
            },
        ),
        (
            "a1 broadcast",
            Packet {
                eth_dst: Mac::BROADCAST,
                ip4_dst: "255.255.255.255".parse().unwrap(),
                ..a1.clone()
            },
        ),
        (
            "a1 ARP for a3 (answered to IN_PORT)",
            Packet {
                eth_dst: Mac::BROADCAST,
                eth_type: 0x0806,
                ip_proto: 0,
                tp_src: 0,
                ip4_src: "0.0.0.0".parse().unwrap(),
                arp_op: 1,
                arp_sha: mac("02:00:00:00:00:01"),
                arp_spa: "10.0.0.1".parse().unwrap(),
                arp_tpa: "10.0.0.3".parse().unwrap(),
                ..a1.clone()
            },
        ),
        (
            "a1 spoofed source IP",
            Packet {
                eth_dst: mac("02:00:00:00:00:02"),
                ip4_src: "10.0.0.66".parse().unwrap(),
                ip4_dst: "10.0.0.2".parse().unwrap(),
                ..a1.clone()
            },
        ),
        (
            "a1 unknown unicast",
            Packet {
                eth_dst: mac("02:00:00:00:00:99"),
                ip4_dst: "10.0.0.2".parse().unwrap(),
                ..a1.clone()
            },
        ),
        (
            "b1 -> b3 (tunnel to hv3, same MAC as a1)",
            Packet {
                in_port: 3,
                eth_dst: mac("02:00:00:00:00:13"),
                ip4_dst: "10.0.0.3".parse().unwrap(),
                ..a1.clone()
            },
        ),
        (
            "broadcast from hv2's tunnel (local ports only)",
            Packet {
                in_port: 10,
                tun_id: 5001,
                eth_src: mac("02:00:00:00:00:03"),
                eth_dst: Mac::BROADCAST,
                ip4_src: "10.0.0.3".parse().unwrap(),
                ip4_dst: "255.255.255.255".parse().unwrap(),
                ..a1.clone()
            },
        ),
        (
            "a4 ICMP to a1 (ingress ACL admits, via conntrack)",
            Packet {
                in_port: 4,
                eth_src: mac("02:00:00:00:00:04"),
                eth_dst: mac("02:00:00:00:00:01"),
                ip4_src: "10.0.0.4".parse().unwrap(),
                ip4_dst: "10.0.0.1".parse().unwrap(),
                ..a1.clone()
            },
        ),
        (
            "a2 TCP 8080 to a3 (egress ACL admits)",
            Packet {
                in_port: 2,
                eth_src: mac("02:00:00:00:00:02"),
                eth_dst: mac("02:00:00:00:00:03"),
                ip4_src: "10.0.0.2".parse().unwrap(),
                ip4_dst: "10.0.0.3".parse().unwrap(),
                ip_proto: 6,
                tp_src: 40000,
                tp_dst: 8080,
                ..a1.clone()
            },
        ),
        (
            "a2 TCP 9000 to a3 (egress ACL drops)",
            Packet {
                in_port: 2,
                eth_src: mac("02:00:00:00:00:02"),
                eth_dst: mac("02:00:00:00:00:03"),
                ip4_src: "10.0.0.2".parse().unwrap(),
                ip4_dst: "10.0.0.3".parse().unwrap(),
                ip_proto: 6,
                tp_src: 40000,
                tp_dst: 9000,
                ..a1.clone()
            },
        ),
        (
            "unicast from hv3's tunnel to b1",
            Packet {
                in_port: 11,
                tun_id: 5002,
                eth_src: mac("02:00:00:00:00:13"),
                eth_dst: mac("02:00:00:00:00:01"),
                ip4_src: "10.0.0.3".parse().unwrap(),
                ip4_dst: "10.0.0.1".parse().unwrap(),
                ..a1.clone()
            },
        ),
    ];
    // IPv6 from a1 (fd00::1): ping from the link-local address, neighbour advertisements
    // for its own and for someone else's address.
    let a1v6 = Packet {
        eth_type: 0x86dd,
        eth_dst: mac("02:00:00:00:00:02"),
        ip4_src: "0.0.0.0".parse().unwrap(),
        ip6_src: link_local("02:00:00:00:00:01".parse().unwrap()),
        ip6_dst: "fd00::2".parse().unwrap(),
        ip_proto: 58,
        tp_src: 128,
        ..a1.clone()
    };
    let na = |target: &str| Packet {
        ip6_src: "fd00::1".parse().unwrap(),
        tp_src: 136,
        nd_target: target.parse().unwrap(),
        nd_tll: mac("02:00:00:00:00:01"),
        ..a1v6.clone()
    };
    let v6_cases = [
        ("a1 ping6 from its link-local address", a1v6.clone()),
        ("a1 advertises its own address", na("fd00::1")),
        ("a1 advertises a2's address (spoof)", na("fd00::2")),
    ];
    let v6_want: [&[u32]; 3] = [&[2], &[2], &[]];
    let mut problems = Vec::new();
    for ((what, p), want) in v6_cases.iter().zip(v6_want) {
        let flow = trace_flow(p);
        let soft_ports = soft.process(p, ct_state::TRK | ct_state::NEW).ports();
        let got = ovs_outputs(&ovs, &flow, &odp_to_of);
        if got != soft_ports || soft_ports != want {
            problems.push(format!(
                "{what} ({flow}): OVS {got:?}, software table {soft_ports:?}, expected {want:?}"
            ));
        }
    }
    for (what, p) in &cases {
        let flow = trace_flow(p);
        let want = soft.process(p, ct_state::TRK | ct_state::NEW).ports();
        let want: Vec<u32> = want
            .into_iter()
            .map(|o| if o == ofport::IN_PORT { p.in_port } else { o })
            .collect();
        let got = ovs_outputs(&ovs, &flow, &odp_to_of);
        if got != want {
            problems.push(format!(
                "{what} ({flow}): OVS {got:?}, software table {want:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Sanity: the cases cover local, tunnel, flood, IN_PORT and drop.
    let outs: Vec<Vec<u32>> = cases
        .iter()
        .map(|(_, p)| soft.process(p, ct_state::TRK | ct_state::NEW).ports())
        .collect();
    assert_eq!(outs[0], vec![2]);
    assert_eq!(outs[1], vec![10]);
    assert_eq!(outs[2], vec![2, 4, 10]);
    assert_eq!(outs[3], vec![1]);
    assert!(outs[4].is_empty() && outs[5].is_empty());
    assert_eq!(outs[6], vec![11]);
    // a1's ingress ACL drops ICMP from a3 (10.0.0.3).
    assert_eq!(outs[7], vec![2, 4]);
    assert_eq!(outs[8], vec![1]);
    assert_eq!(outs[9], vec![10]);
    assert!(outs[10].is_empty());
    assert_eq!(outs[11], vec![3]);
}

/// Loads `desired` into a fresh br-int with `view`'s VIFs and tunnel ports (dummy ports
/// with the same ofports) and checks (a): OVS reports back exactly the compiled flows and
/// groups, as `ovs-ofctl` text and decoded over OpenFlow 1.3. Returns the datapath port ->
/// OpenFlow port map for reading `ofproto/trace`.
fn load_node(
    ovs: &OvsInstance,
    desired: &DesiredNode,
    view: &crate::topology::NodeView,
) -> BTreeMap<u32, u32> {
    // br-int with the node's VIFs and its tunnel ports.
    let mut args: Vec<String> = vec![
        "add-br".into(),
        "br-int".into(),
        "--".into(),
        "set".into(),
        "bridge".into(),
        "br-int".into(),
        "datapath_type=dummy".into(),
        "fail_mode=secure".into(),
        "protocols=OpenFlow13".into(),
    ];
    let ports: Vec<(String, u32)> = view
        .vifs
        .iter()
        .map(|(k, v)| (format!("vif-{k}"), v.ofport))
        .chain(view.tunnels.iter().map(|(r, o)| (format!("tun-{r}"), *o)))
        .collect();
    for (name, ofport) in &ports {
        for a in [
            "--",
            "add-port",
            "br-int",
            name,
            "--",
            "set",
            "interface",
            name,
            "type=dummy",
        ] {
            args.push(a.into());
        }
        args.push(format!("ofport_request={ofport}"));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    ovs.vsctl(&argv);

    let of = |args: &[&str]| {
        let mut all = vec!["-O", "OpenFlow13"];
        all.extend_from_slice(args);
        ovs.run("ovs-ofctl", &all)
    };
    // Installed from our own encoding over OpenFlow 1.3, as the installer sends them (OVS
    // checks each OXM field's prerequisites against the fields before it, which text
    // loaded through ovs-ofctl would not exercise).
    let mut s = UnixStream::connect(ovs.path("br-int.mgmt")).expect("connect br-int.mgmt");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&OfpMessage::hello(1).to_bytes().unwrap())
        .unwrap();
    let hello = read_msg(&mut s);
    assert!(matches!(hello.body, Message::Hello(_)), "{hello:?}");
    let mut sent: BTreeMap<u32, String> = BTreeMap::new();
    let mut xid = 100u32;
    let mods = desired
        .group_mods()
        .into_iter()
        .map(|g| (format!("group {}", g.group_id), Message::GroupMod(g)))
        .chain(
            desired
                .flow_mods()
                .into_iter()
                .map(|f| (f.to_string(), Message::FlowMod(f))),
        );
    for (text, body) in mods {
        xid += 1;
        s.write_all(&OfpMessage::new(xid, body).to_bytes().expect("encode"))
            .expect("send");
        sent.insert(xid, text);
    }
    xid += 1;
    s.write_all(
        &OfpMessage::new(xid, Message::BarrierRequest)
            .to_bytes()
            .unwrap(),
    )
    .unwrap();
    let mut refused = Vec::new();
    loop {
        let m = read_msg(&mut s);
        match m.body {
            Message::BarrierReply if m.xid == xid => break,
            Message::Error(e) => refused.push(format!("{e:?}: {:?}", sent.get(&m.xid))),
            _ => {}
        }
    }
    assert!(refused.is_empty(), "OVS refused:\n{}", refused.join("\n"));

    // (a) text: dump-flows gives back exactly our lines.
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
    let missing: Vec<&String> = ours.difference(&dumped).collect();
    let extra: Vec<&String> = dumped.difference(&ours).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "dump-flows differs from the compiled flows\n  only ours: {missing:#?}\n  only in OVS: {extra:#?}"
    );
    let dumped_groups: BTreeSet<String> = of(&["dump-groups", "br-int"])
        .lines()
        .filter(|l| l.trim_start().starts_with("group_id="))
        .map(|l| l.trim().to_string())
        .collect();
    let our_groups: BTreeSet<String> = desired.groups_text().into_iter().collect();
    assert_eq!(dumped_groups, our_groups);

    // (a) structure: flow-stats over OpenFlow 1.3 decode to exactly DesiredNode.flows.
    let mut installed: BTreeMap<FlowKey, FlowContent> = BTreeMap::new();
    for body in multipart(
        &mut s,
        OfpMessage::flow_stats_request(2, COOKIE_WEFT, COOKIE_MASK),
    ) {
        if let MultipartReplyBody::Flow(stats) = body {
            for f in stats {
                installed.insert(f.key(), f.content());
            }
        }
    }
    let only_ours: Vec<String> = desired
        .flows
        .iter()
        .filter(|(k, c)| installed.get(*k) != Some(*c))
        .map(|(k, c)| format!("{k:?} => {c:?}\n  OVS: {:?}", installed.get(k)))
        .collect();
    let only_ovs: Vec<String> = installed
        .keys()
        .filter(|k| !desired.flows.contains_key(*k))
        .map(|k| format!("{k:?}"))
        .collect();
    assert!(
        only_ours.is_empty() && only_ovs.is_empty(),
        "decoded flow dump differs from DesiredNode.flows:\n{}\nonly in OVS:\n{}",
        only_ours.join("\n"),
        only_ovs.join("\n")
    );
    let mut dumped_groups: BTreeMap<u32, Arc<GroupSpec>> = BTreeMap::new();
    for body in multipart(&mut s, OfpMessage::group_desc_request(3)) {
        if let MultipartReplyBody::GroupDesc(gs) = body {
            for g in gs {
                dumped_groups.insert(
                    g.group_id,
                    Arc::new(GroupSpec {
                        group_type: g.group_type,
                        buckets: g.buckets,
                    }),
                );
            }
        }
    }
    assert_eq!(dumped_groups, desired.groups);
    println!(
        "OVS reported back {} flows and {} groups, identical to the compiled ones",
        installed.len(),
        dumped_groups.len()
    );

    // (a) digest: OVS encodes every flow back as Weft encoded it, so a reconnecting
    // switch's dump is recognised without being decoded (reconcile::dump_holds_exactly).
    let raw = raw_flow_dump(&mut s, 4);
    if !crate::reconcile::dump_holds_exactly(&raw, &desired.flows) {
        let mut scratch = bytes::BytesMut::new();
        let ours: BTreeSet<openflow::digest::Digest> = desired
            .flows
            .iter()
            .filter_map(|(k, c)| openflow::digest::flow_digest(k, c, &mut scratch).ok())
            .collect();
        let mut differ = Vec::new();
        for part in &raw {
            let MultipartReplyBody::Raw { body, .. } = part else {
                continue;
            };
            for e in openflow::digest::raw_flow_stats(body) {
                let e = e.expect("OVS's flow-stats entry parses");
                if !ours.contains(&e.digest().expect("digest")) {
                    differ.push(format!("{e:?}"));
                }
            }
        }
        panic!(
            "OVS encodes {} of {} flows otherwise than Weft:\n{}",
            differ.len(),
            installed.len(),
            differ.join("\n")
        );
    }

    let mut odp_to_of = BTreeMap::new();
    for l in ovs.appctl(&["dpif/show"]).lines() {
        // "    vif-a1 1/1: (dummy)"
        if let Some((_, nums)) = l.trim().split_once(' ')
            && let Some((ofp, odp)) = nums.split(':').next().and_then(|n| n.split_once('/'))
            && let (Ok(ofp), Ok(odp)) = (ofp.parse::<u32>(), odp.parse::<u32>())
        {
            odp_to_of.insert(odp, ofp);
        }
    }
    odp_to_of
}

/// The routing fabric's hv1 (routing_tests.rs) on a real ovs-vswitchd: OVS reports back
/// exactly the compiled flows, and `ofproto/trace` sends routed packets, the router's
/// answers and TTL drops where the software table does, rewriting the TTL as routing must.
#[test]
fn compiler_ovs_routing_dump_matches_and_trace_agrees() {
    let m = super::routing_tests::model();
    let t = super::routing_tests::topology();
    let desired = compile_node(&m, &t, "hv1");
    let ovs = OvsInstance::start();
    let odp_to_of = load_node(&ovs, &desired, &t.nodes["hv1"]);
    let soft = FlowTable::from_desired(&desired);
    let mac = |s: &str| s.parse::<Mac>().unwrap();
    let a1 = Packet {
        in_port: 1,
        eth_src: mac("02:00:00:00:01:01"),
        eth_dst: mac("02:00:00:00:aa:01"),
        eth_type: 0x0800,
        ip4_src: "10.0.1.5".parse().unwrap(),
        ip_ttl: 64,
        ip_proto: 1,
        tp_src: 8,
        ..Packet::default()
    };
    let to = |dst: &str| Packet {
        ip4_dst: dst.parse().unwrap(),
        ..a1.clone()
    };
    let a1v6 = |dst: &str| Packet {
        eth_type: 0x86dd,
        ip4_src: "0.0.0.0".parse().unwrap(),
        ip6_src: "fd00:1::5".parse().unwrap(),
        ip6_dst: dst.parse().unwrap(),
        ip_proto: 58,
        tp_src: 128,
        ..a1.clone()
    };
    // (what, packet, expected outputs, whether the packet is routed)
    let cases: Vec<(&str, Packet, Vec<u32>, bool)> = vec![
        ("a1 -> b1, routed on hv1", to("10.0.2.5"), vec![2], true),
        (
            "a1 -> b2, routed into the tunnel to hv2",
            to("10.0.2.6"),
            vec![10],
            true,
        ),
        (
            "a1 -> c1, routed to hv3 (C has no port on hv1)",
            to("10.0.3.5"),
            vec![11],
            true,
        ),
        (
            "a1 -> app by the static route",
            to("192.168.50.7"),
            vec![10],
            true,
        ),
        ("a1 -> nowhere (no route)", to("172.16.0.1"), vec![], false),
        (
            "a1 -> b2 with TTL 1 (dropped, never sent to the controller)",
            Packet {
                ip_ttl: 1,
                ..to("10.0.2.6")
            },
            vec![],
            false,
        ),
        ("a1 pings the gateway", to("10.0.1.1"), vec![1], false),
        ("a1 pings the router on C", to("10.0.3.1"), vec![1], false),
        ("a1 -> b2 over IPv6", a1v6("fd00:2::6"), vec![10], true),
        (
            "a1 pings the IPv6 gateway",
            a1v6("fd00:1::1"),
            vec![1],
            false,
        ),
        (
            "a1 asks for the IPv6 gateway's MAC",
            Packet {
                eth_dst: mac("33:33:ff:00:00:01"),
                tp_src: 135,
                nd_target: "fd00:1::1".parse().unwrap(),
                nd_sll: mac("02:00:00:00:01:01"),
                ip_ttl: 255,
                ..a1v6("ff02::1:ff00:1")
            },
            vec![1],
            false,
        ),
        (
            "a1 ARPs for the gateway",
            Packet {
                eth_dst: Mac::BROADCAST,
                eth_type: 0x0806,
                ip_proto: 0,
                tp_src: 0,
                ip4_src: "0.0.0.0".parse().unwrap(),
                arp_op: 1,
                arp_sha: mac("02:00:00:00:01:01"),
                arp_spa: "10.0.1.5".parse().unwrap(),
                arp_tpa: "10.0.1.1".parse().unwrap(),
                ..a1.clone()
            },
            vec![1],
            false,
        ),
        (
            "d1 (tenant 2, a1's address) -> e1",
            Packet {
                in_port: 3,
                eth_src: mac("02:00:00:00:04:01"),
                ..to("10.0.2.5")
            },
            vec![10],
            true,
        ),
    ];
    let mut problems = Vec::new();
    for (what, p, want, routed) in &cases {
        let flow = trace_flow(p);
        let soft_ports: Vec<u32> = soft
            .process(p, ct_state::TRK | ct_state::NEW)
            .ports()
            .into_iter()
            .map(|o| if o == ofport::IN_PORT { p.in_port } else { o })
            .collect();
        let got = ovs_outputs(&ovs, &flow, &odp_to_of);
        if got != soft_ports || &soft_ports != want {
            problems.push(format!(
                "{what} ({flow}): OVS {got:?}, software table {soft_ports:?}, expected {want:?}"
            ));
        }
        if *routed {
            let trace = ovs.appctl(&["ofproto/trace", "br-int", &flow]);
            if !trace.contains("ttl=63") && !trace.contains("hlimit=63") {
                problems.push(format!("{what}: OVS did not decrement the TTL:\n{trace}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
