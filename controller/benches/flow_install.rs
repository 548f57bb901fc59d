//! Scenario 3 of issue 9: installing a 100,000-flow desired state into one real
//! ovs-vswitchd, through Weft's OpenFlow southbound versus `ovs-ofctl --bundle add-flows`.
//!
//! One private ovsdb-server + `ovs-vswitchd --enable-dummy --disable-system` (in a temp
//! dir, stopped by PID when the bench ends or panics) with two fresh dummy-datapath
//! bridges. The desired state is what the compiler makes for hypervisor hv0 with one port
//! in each of 500 logical switches of 64 ports (the 63 others on 63 remote hypervisors):
//! classification, port security, ARP responder, L2 lookup (local and remote MACs),
//! output, flood groups; the first 100,000 flows of it, plus its groups.
//! - Weft: `br-weft` connects to Weft's real southbound listener (`southbound::openflow::
//!   serve`): handshake, association by datapath id, dump, an empty first state; then the
//!   100k state is published and timed until the switch acknowledged it (the reconcile
//!   diff, one atomic bundle of group and flow mods, commit, barrier, `report_installed`).
//! - ovs-ofctl: the same groups (`add-groups`, timed apart) and flows
//!   (`DesiredNode::flows_text`, `--bundle -O OpenFlow13 add-flows`) into `br-ofctl`.
//!
//! - raw replay: the bytes of the same bundle (open, adds, commit, barrier), encoded
//!   beforehand and written to `br-raw`'s management socket as fast as it takes them,
//!   timed until the barrier reply: what vswitchd itself needs for these flows.
//!
//! The bridges are then checked to hold exactly 100,000 flows (`dump-aggregate`). Weft's
//! own CPU share is measured in-process too: the diff and the encoding of the bundle.
//!
//! Run: `cargo bench -p weft-controller --bench flow_install` (Open vSwitch installed;
//! never touches a system OVS). Prints a table, writes target/flow_install.json.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration::sandbox::{Datapath, OvsSandbox};
use openflow::OfpMessage;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use weft::channels::Channels;
use weft::compiler::compile_node;
use weft::desired::DesiredNode;
use weft::model::{LogicalModel, LogicalPort, LogicalSwitch};
use weft::observed::ObservedState;
use weft::southbound::openflow::{OpenFlowSettings, OpenFlowStats, serve_with};
use weft::topology::EncapType;
use weft::topology::TransportNodes;
use weft::topology::{NodeView, Topology, Vif};

const FLOWS: usize = 100_000;
const SWITCHES: usize = 500;
const PER_SWITCH: usize = 64;
const DPID: u64 = 0xabc;

/// The private ovsdb-server + dummy-datapath ovs-vswitchd (stopped by PID on drop).
struct Ovs(OvsSandbox);

impl Ovs {
    fn start() -> Self {
        let ovs = OvsSandbox::builder("flow-install")
            .vswitchd(Datapath::Dummy)
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        Ovs(ovs)
    }

    /// A scratch file in the sandbox's directory.
    fn path(&self, f: &str) -> PathBuf {
        self.0.dir().join(f)
    }

    fn vsctl(&self, args: &[&str]) -> String {
        self.0.vsctl(args).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ofctl(&self, args: &[&str]) -> String {
        self.0.ofctl(args).unwrap_or_else(|e| panic!("{e}"))
    }

    fn flow_count(&self, bridge: &str) -> usize {
        let out = self.ofctl(&["-O", "OpenFlow13", "dump-aggregate", bridge]);
        out.split_whitespace()
            .find_map(|w| w.strip_prefix("flow_count="))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no flow_count in {out:?}"))
    }
}

/// hv0's desired state: one port in each of 500 switches of 64 ports, the rest remote.
fn desired() -> DesiredNode {
    let mut switches = Vec::new();
    let mut ports = Vec::new();
    let mut views: BTreeMap<String, NodeView> = BTreeMap::new();
    let name = |n: usize| format!("hv{n:02}");
    for n in 0..PER_SWITCH {
        let tunnels = (0..PER_SWITCH)
            .filter(|o| *o != n)
            .map(|o| (name(o), 1000 + o as u32))
            .collect();
        views.insert(
            name(n),
            NodeView {
                id: name(n),
                encap_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, n as u8 + 1)),
                encap_type: EncapType::Geneve,
                bridge: "br-int".into(),
                datapath_id: Some(n as u64 + 1),
                vifs: BTreeMap::new(),
                tunnels,
                bridge_mappings: Default::default(),
                patches: Default::default(),
            },
        );
    }
    for s in 0..SWITCHES {
        let sw = LogicalSwitch {
            id: Uuid::from_u128(0x10_0000 + s as u128),
            name: format!("ls{s}"),
            vni: 5000 + s as u32,
            description: String::new(),
            provider: None,
            flood_vteps: Vec::new(),
        };
        for i in 0..PER_SWITCH {
            let idx = s * PER_SWITCH + i;
            let p = LogicalPort {
                id: Uuid::from_u128(0x100_0000 + idx as u128),
                name: format!("p{idx}"),
                switch: sw.id,
                mac: format!("02:00:00:{:02x}:{:02x}:{:02x}", s >> 8, s & 0xff, i)
                    .parse()
                    .expect("mac"),
                ips: vec![IpAddr::V4(Ipv4Addr::new(
                    10,
                    (s >> 8) as u8,
                    s as u8,
                    i as u8 + 1,
                ))],
                port_security: true,
                key: i as u16 + 1,
                zone: idx as u16 + 1,
            };
            if let Some(v) = views.get_mut(&name(i)) {
                let ofport = s as u32 + 1;
                v.vifs.insert(
                    p.name.clone(),
                    Vif {
                        ofport,
                        interface: Uuid::nil(),
                        name: format!("tap{idx}"),
                    },
                );
            }
            ports.push(p);
        }
        switches.push(sw);
    }
    let model = LogicalModel::from_objects(1, switches, ports, vec![]).expect("model");
    let mut topology = Topology::default();
    for (k, v) in views {
        topology.nodes.insert(k, v);
    }
    let mut d = compile_node(&model, &topology, &name(0));
    assert!(
        d.flows.len() >= FLOWS,
        "only {} flows compiled",
        d.flows.len()
    );
    let keep: Vec<_> = d.flows.keys().skip(FLOWS).cloned().collect();
    for k in keep {
        Arc::make_mut(&mut d.flows).remove(&k);
    }
    d.tunnels.clear();
    d.bound_ports = BTreeSet::from([Uuid::from_u128(0x100_0000)]);
    d
}

fn main() {
    let t0 = Instant::now();
    let d = desired();
    eprintln!(
        "desired state: {} flows, {} groups (built in {:?})",
        d.flows.len(),
        d.groups.len(),
        t0.elapsed()
    );

    // Weft's own CPU work on the path, in isolation.
    let t0 = Instant::now();
    let changes = weft::reconcile::diff(&d, &weft::reconcile::DumpedFlows::new(), &BTreeMap::new());
    let diff_time = t0.elapsed();
    let changed = changes.len();
    let t0 = Instant::now();
    // Kept for the raw replay below.
    let raw = raw_bundle(changes);
    let encode_time = t0.elapsed();
    let bytes = raw.bytes.len();
    eprintln!("diff {diff_time:?} ({changed} changes), encode {encode_time:?} ({bytes} bytes)");
    let t0 = Instant::now();
    let text_lines = weft::reconcile::flows_as_text(&d.flows).len();
    let text_time = t0.elapsed();
    eprintln!("flows_as_text after an install: {text_time:?} ({text_lines} lines)");

    let ovs = Ovs::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let topology = TransportNodes::new();
    let channels = Channels::new();
    let (events, _) = tokio::sync::broadcast::channel(1024);
    let observed = Arc::new(ObservedState::new(events));
    let shutdown = CancellationToken::new();
    let settings = OpenFlowSettings {
        request_timeout: Duration::from_secs(600),
        ..Default::default()
    };
    let server = rt
        .block_on(serve_with(
            "127.0.0.1:0".parse().expect("addr"),
            weft::southbound::openflow::OpenFlowContext {
                topology: topology.clone(),
                channels: channels.clone(),
                observed: observed.clone(),
                ownership: weft::cluster::Ownership::single("test"),
            },
            shutdown.clone(),
            settings,
        ))
        .expect("OpenFlow listener");
    topology.report(NodeView {
        id: "hv0".into(),
        encap_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        encap_type: EncapType::Geneve,
        bridge: "br-weft".into(),
        datapath_id: Some(DPID),
        vifs: BTreeMap::new(),
        tunnels: BTreeMap::new(),
        bridge_mappings: Default::default(),
        patches: Default::default(),
    });
    channels.publish_desired("hv0", Arc::new(DesiredNode::default()));
    let target = format!("tcp:{}", server.local_addr);
    let dpid = format!("other-config:datapath-id={DPID:016x}");
    ovs.vsctl(&[
        "add-br",
        "br-weft",
        "--",
        "set",
        "bridge",
        "br-weft",
        "datapath_type=dummy",
        "fail_mode=secure",
        "protocols=OpenFlow13",
        &dpid,
        "other-config:disable-in-band=true",
        "--",
        "set-controller",
        "br-weft",
        &target,
        "--",
        "add-br",
        "br-ofctl",
        "--",
        "set",
        "bridge",
        "br-ofctl",
        "datapath_type=dummy",
        "fail_mode=secure",
        "protocols=OpenFlow13",
        "other-config:disable-in-band=true",
        "--",
        "add-br",
        "br-raw",
        "--",
        "set",
        "bridge",
        "br-raw",
        "datapath_type=dummy",
        "fail_mode=secure",
        "protocols=OpenFlow13",
        "other-config:disable-in-band=true",
    ]);
    // Associated and reconciled once (empty): the switch is Weft's.
    let deadline = Instant::now() + Duration::from_secs(120);
    while OpenFlowStats::get(&server.stats.empty_diffs) == 0 {
        assert!(
            Instant::now() < deadline,
            "br-weft never connected to Weft's southbound"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Weft: publish and wait for the barrier-acknowledged report.
    let mut installed = channels.watch_installed();
    installed.borrow_and_update();
    let want = d.bound_ports.clone();
    let d = Arc::new(d);
    let t0 = Instant::now();
    channels.publish_desired("hv0", d.clone());
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(900), async {
            loop {
                installed.changed().await.expect("fabric alive");
                if installed
                    .borrow_and_update()
                    .get("hv0")
                    .is_some_and(|p| **p == want)
                {
                    break;
                }
            }
        })
        .await
        .expect("Weft never reported the state installed")
    });
    let weft_time = t0.elapsed();
    assert_eq!(OpenFlowStats::get(&server.stats.failed_installs), 0);
    let weft_flows = ovs.flow_count("br-weft");
    eprintln!("weft: {weft_time:?}, br-weft holds {weft_flows} flows");

    // ovs-ofctl: groups, then the flows in one bundle.
    let groups_file = ovs.path("groups.txt");
    let flows_file = ovs.path("flows.txt");
    std::fs::write(&groups_file, d.groups_text().join("\n") + "\n").expect("write groups");
    std::fs::write(&flows_file, d.flows_text().join("\n") + "\n").expect("write flows");
    let g = groups_file.to_string_lossy().into_owned();
    let f = flows_file.to_string_lossy().into_owned();
    let t0 = Instant::now();
    ovs.ofctl(&["-O", "OpenFlow13", "add-groups", "br-ofctl", &g]);
    let ofctl_groups_time = t0.elapsed();
    let t0 = Instant::now();
    ovs.ofctl(&["--bundle", "-O", "OpenFlow13", "add-flows", "br-ofctl", &f]);
    let ofctl_time = t0.elapsed();
    let ofctl_flows = ovs.flow_count("br-ofctl");
    eprintln!(
        "ovs-ofctl: groups {ofctl_groups_time:?}, flows {ofctl_time:?}, br-ofctl holds {ofctl_flows} flows"
    );

    shutdown.cancel();
    // vswitchd's own limit for this bundle: the same messages Weft sends (open, the
    // group and flow adds, commit, barrier), encoded beforehand and written as fast as
    // its management socket takes them, timed until the barrier reply.
    let raw_time = replay(&ovs.0.mgmt_socket("br-raw"), &raw);
    let raw_flows = ovs.flow_count("br-raw");
    eprintln!("raw replay: {raw_time:?} ({bytes} bytes), br-raw holds {raw_flows} flows");

    rt.block_on(server.join());
    assert_eq!(weft_flows, FLOWS, "br-weft flow count");
    assert_eq!(ofctl_flows, FLOWS, "br-ofctl flow count");
    assert_eq!(raw_flows, FLOWS, "br-raw flow count");

    let rate = |t: Duration| FLOWS as f64 / t.as_secs_f64();
    let ofctl_total = ofctl_time + ofctl_groups_time;
    let ratio = weft_time.as_secs_f64() / ofctl_total.as_secs_f64();
    println!(
        "\n{:<44} {:>10} {:>12}",
        "path (100,000 flows, one bridge)", "seconds", "flows/s"
    );
    println!(
        "{:<44} {:>10.3} {:>12.0}",
        "weft southbound (groups+flows, one bundle)",
        weft_time.as_secs_f64(),
        rate(weft_time)
    );
    println!(
        "{:<44} {:>10.3} {:>12.0}",
        "ovs-ofctl add-groups + --bundle add-flows",
        ofctl_total.as_secs_f64(),
        rate(ofctl_total)
    );
    println!(
        "{:<44} {:>10.3} {:>12.0}",
        "  of which --bundle add-flows",
        ofctl_time.as_secs_f64(),
        rate(ofctl_time)
    );
    println!(
        "{:<44} {:>10.3} {:>12.0}",
        "the same bundle's bytes replayed raw",
        raw_time.as_secs_f64(),
        rate(raw_time)
    );
    println!("weft / ovs-ofctl time ratio: {ratio:.2}");
    println!(
        "weft / raw replay time ratio: {:.2}",
        weft_time.as_secs_f64() / raw_time.as_secs_f64()
    );
    println!(
        "weft CPU in isolation: diff {:.1} ms, encode {:.1} ms ({bytes} bytes); \
         node_flows text after the install {:.1} ms",
        diff_time.as_secs_f64() * 1e3,
        encode_time.as_secs_f64() * 1e3,
        text_time.as_secs_f64() * 1e3
    );
    let doc = json!({
        "bench": "flow_install",
        "flows": FLOWS,
        "groups": d.groups.len(),
        "weft_s": weft_time.as_secs_f64(),
        "weft_flows_per_s": rate(weft_time),
        "ofctl_groups_s": ofctl_groups_time.as_secs_f64(),
        "ofctl_flows_s": ofctl_time.as_secs_f64(),
        "ofctl_total_s": ofctl_total.as_secs_f64(),
        "ofctl_flows_per_s": rate(ofctl_total),
        "ratio_weft_over_ofctl": ratio,
        "raw_replay_s": raw_time.as_secs_f64(),
        "ratio_weft_over_raw": weft_time.as_secs_f64() / raw_time.as_secs_f64(),
        "weft_diff_ms": diff_time.as_secs_f64() * 1e3,
        "weft_encode_ms": encode_time.as_secs_f64() * 1e3,
        "weft_flows_as_text_ms": text_time.as_secs_f64() * 1e3,
        "bundle_bytes": bytes,
        "br_weft_flows": weft_flows,
        "br_ofctl_flows": ofctl_flows,
    });
    let path = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("flow_install.json");
    match std::fs::write(
        &path,
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    ) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}

/// Weft's install into an empty switch as bytes on the wire: `changes` in one bundle, as
/// the installer sends it, then a barrier, whose xid is kept.
struct RawBundle {
    bytes: Vec<u8>,
    barrier: u32,
}

fn raw_bundle(changes: Vec<openflow::Message>) -> RawBundle {
    let flags = openflow::bundle_flags::ATOMIC | openflow::bundle_flags::ORDERED;
    let mut bytes = Vec::new();
    let mut put = |m: OfpMessage| bytes.extend(m.to_bytes().expect("encodable"));
    put(OfpMessage::bundle_open(1, 1, flags));
    let mut xid = 2;
    for c in changes {
        put(OfpMessage::bundle_add(xid, 1, flags, c));
        xid += 1;
    }
    put(OfpMessage::bundle_commit(xid, 1, flags));
    let barrier = xid + 1;
    put(OfpMessage::barrier(barrier));
    RawBundle { bytes, barrier }
}

/// Writes `raw` to a bridge's management socket after the hello exchange, from a second
/// thread, and reads until the barrier reply (an error reply fails the bench). Returns
/// the time from the first byte written to the barrier reply.
fn replay(socket: &Path, raw: &RawBundle) -> Duration {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let mut s = UnixStream::connect(socket).unwrap_or_else(|e| panic!("{}: {e}", socket.display()));
    let read_msg = |s: &mut UnixStream| -> OfpMessage {
        let mut frame = vec![0u8; 8];
        s.read_exact(&mut frame).expect("a message header");
        let len = usize::from(u16::from_be_bytes([frame[2], frame[3]]));
        frame.resize(len.max(8), 0);
        s.read_exact(&mut frame[8..]).expect("a message body");
        OfpMessage::decode(&frame).expect("a message the codec reads")
    };
    s.write_all(&OfpMessage::hello(0).to_bytes().expect("hello"))
        .expect("hello sent");
    let _ = read_msg(&mut s);
    let mut writer = s.try_clone().expect("a second handle");
    let t0 = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(move || writer.write_all(&raw.bytes).expect("bundle written"));
        loop {
            let m = read_msg(&mut s);
            match m.body {
                openflow::Message::Error(e) => panic!("br-raw refused xid {}: {e:?}", m.xid),
                openflow::Message::BarrierReply if m.xid == raw.barrier => break,
                _ => {}
            }
        }
    });
    t0.elapsed()
}
