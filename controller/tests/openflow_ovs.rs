//! The OpenFlow southbound against a real Open vSwitch: a private ovsdb-server and
//! `ovs-vswitchd --enable-dummy --disable-system`, br-int on the dummy datapath, weftd's
//! OpenFlow listener as its controller.
//!
//! The desired state is written by hand in `ovs-ofctl` syntax and turned into messages by
//! `ovs-ofctl` itself (captured on a fake switch), so what the test asks for is OVS's own
//! encoding of it; what the switch holds is checked with `ovs-ofctl diff-flows` and
//! `dump-groups`, independent of Weft's code. Needs Open vSwitch (Debian:
//! openvswitch-switch); fails with a clear message when it is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration::sandbox::{Datapath, OvsSandbox};
use openflow::{BundleControl, BundleCtrlType, Message, OfpMessage, SwitchFeatures};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use weft::channels::Channels;
use weft::desired::{DesiredNode, GroupSpec};
use weft::observed::ObservedState;
use weft::southbound::openflow::{OpenFlowServer, OpenFlowStats, serve};
use weft::topology::EncapType;
use weft::topology::NodeView;
use weft::topology::TransportNodes;

/// A private OVS: ovsdb-server and ovs-vswitchd (dummy datapath), stopped by PID on drop
/// (also when the test panics).
struct Ovs(OvsSandbox);

impl Ovs {
    fn start() -> Ovs {
        let ovs = OvsSandbox::builder("of")
            .vswitchd(Datapath::Dummy)
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        Ovs(ovs)
    }

    /// The sandbox's directory (for scratch files).
    fn path(&self) -> &Path {
        self.0.dir()
    }

    /// A tool with the environment that points it at this OVS.
    fn cmd(&self, prog: &str) -> Command {
        self.0.tool(prog).command()
    }

    fn vsctl(&self, args: &[&str]) -> String {
        self.0.vsctl(args).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ofctl(&self, args: &[&str]) -> String {
        let mut a = vec!["-O", "OpenFlow13"];
        a.extend_from_slice(args);
        self.0.ofctl(a).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Polls `cond` (bounded, so a broken build fails instead of hanging).
fn wait_blocking(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The messages `ovs-ofctl -O OpenFlow13 <cmd> TARGET <file>` sends, captured on a fake
/// switch: OVS's own encoding of flow/group text.
fn ofctl_encode(cmd: &str, text: &str) -> Vec<OfpMessage> {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("in.txt");
    std::fs::write(&file, text).expect("write flows file");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = format!("tcp:{}", listener.local_addr().expect("addr"));
    let mut child = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "--no-names", cmd, &target, &s(&file)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ovs-ofctl");
    listener.set_nonblocking(true).expect("nonblocking");
    let mut stream: Option<TcpStream> = None;
    wait_blocking("ovs-ofctl to connect", || {
        stream = listener.accept().ok().map(|(s, _)| s);
        stream.is_some() || matches!(child.try_wait(), Ok(Some(_)))
    });
    let Some(mut stream) = stream else {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        panic!("ovs-ofctl {cmd} did not connect: {err}");
    };
    stream.set_nonblocking(false).expect("blocking");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let send = |st: &mut TcpStream, m: OfpMessage| {
        let _ = st.write_all(&m.to_bytes().expect("encode"));
    };
    send(&mut stream, OfpMessage::hello(1));
    let (mut buf, mut out, mut chunk) = (Vec::new(), Vec::new(), [0u8; 65536]);
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Some(len) = OfpMessage::peek_len(&buf) {
            if buf.len() < len {
                break;
            }
            let frame: Vec<u8> = buf.drain(..len).collect();
            let m = OfpMessage::decode(&frame).expect("decode what ovs-ofctl sent");
            let reply = match &m.body {
                Message::BarrierRequest => Some(Message::BarrierReply),
                Message::EchoRequest(d) => Some(Message::EchoReply(d.clone())),
                Message::FeaturesRequest => Some(Message::FeaturesReply(SwitchFeatures {
                    datapath_id: 1,
                    n_tables: 254,
                    ..Default::default()
                })),
                Message::BundleControl(b) => Some(Message::BundleControl(BundleControl {
                    ctrl_type: BundleCtrlType::from(u16::from(b.ctrl_type) + 1),
                    ..b.clone()
                })),
                Message::Hello(_) => None,
                _ => {
                    out.push(m.clone());
                    None
                }
            };
            if let Some(r) = reply {
                send(&mut stream, OfpMessage::new(m.xid, r));
            }
        }
    }
    if !matches!(child.try_wait(), Ok(Some(_))) {
        // It went quiet without finishing: do not wait forever.
        std::thread::sleep(Duration::from_millis(200));
        let _ = child.kill();
    }
    let status = child.wait().expect("wait ovs-ofctl");
    assert!(status.success(), "ovs-ofctl {cmd} failed on:\n{text}");
    out
}

/// A desired state from flow and group text.
fn desired(flows: &str, groups: &str, bound: &BTreeSet<Uuid>) -> DesiredNode {
    let mut d = DesiredNode {
        bound_ports: bound.clone(),
        ..Default::default()
    };
    for m in ofctl_encode("add-flows", flows) {
        if let Message::FlowMod(fm) = m.body {
            Arc::make_mut(&mut d.flows).insert(Arc::new(fm.key()), Arc::new(fm.content()));
        }
    }
    if !groups.is_empty() {
        for m in ofctl_encode("add-groups", groups) {
            if let Message::GroupMod(g) = m.body {
                d.groups.insert(
                    g.group_id,
                    Arc::new(GroupSpec {
                        group_type: g.group_type,
                        buckets: g.buckets,
                    }),
                );
            }
        }
    }
    d
}

const C: &str = "cookie=0x5745000000000001,";

/// A realistic node: classify, port security, egress ACL with ct, ARP responder, L2 with
/// tunnel and flood group, ingress ACL with ct_clear, output by port and by register.
fn flows_v1() -> String {
    [
        "table=0,priority=100,in_port=1 actions=set_field:0x1389->metadata,set_field:0x1->reg6,set_field:0x1->reg13,goto_table:10",
        "table=0,priority=100,in_port=10,tun_id=0x1389 actions=set_field:0x1389->metadata,set_field:0->reg6,goto_table:30",
        "table=0,priority=0 actions=drop",
        "table=10,priority=100,metadata=0x1389,reg6=0x1,dl_src=02:00:00:00:00:01,arp,arp_sha=02:00:00:00:00:01,arp_spa=10.0.0.1 actions=goto_table:20",
        "table=10,priority=100,metadata=0x1389,reg6=0x1,dl_src=02:00:00:00:00:01,ip,nw_src=10.0.0.1 actions=goto_table:20",
        "table=10,priority=90,metadata=0x1389,reg6=0x1,ip actions=drop",
        "table=20,priority=100,metadata=0x1389,reg6=0x1,ip actions=ct(table=21,zone=NXM_NX_REG13[0..15])",
        "table=20,priority=0 actions=goto_table:25",
        "table=21,priority=65535,ct_state=+inv+trk actions=drop",
        "table=21,priority=65534,ct_state=-new+est+trk actions=goto_table:25",
        "table=21,priority=1100,ct_state=+new+trk,tcp,metadata=0x1389,reg6=0x1,nw_dst=10.0.0.0/24,tp_dst=0x1f90/0xfff0 actions=ct(commit,zone=NXM_NX_REG13[0..15]),goto_table:25",
        "table=21,priority=0 actions=drop",
        "table=25,priority=100,arp,metadata=0x1389,arp_tpa=10.0.0.3,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:00:00:00:03->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:02:00:00:00:00:03->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.0.0.3->arp_spa,IN_PORT",
        "table=25,priority=0 actions=goto_table:30",
        "table=30,priority=100,metadata=0x1389,dl_dst=02:00:00:00:00:01 actions=set_field:0x1->reg7,goto_table:40",
        "table=30,priority=90,metadata=0x1389,dl_dst=02:00:00:00:00:03 actions=set_field:0x1389->tun_id,output:10",
        "table=30,priority=80,metadata=0x1389,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:1",
        "table=30,priority=0 actions=drop",
        "table=40,priority=100,metadata=0x1389,reg7=0x1,ip actions=ct_clear,set_field:0x1->reg13,ct(table=41,zone=NXM_NX_REG13[0..15])",
        "table=40,priority=0 actions=goto_table:50",
        "table=41,priority=65534,ct_state=-new+est+trk actions=goto_table:50",
        "table=41,priority=0 actions=drop",
        "table=50,priority=100,metadata=0x1389,reg7=0x1 actions=output:1",
        "table=50,priority=90,metadata=0x1389,reg7=0x2 actions=output:NXM_NX_REG7[]",
        "table=50,priority=0 actions=drop",
    ]
    .iter()
    .map(|l| format!("{C}{l}\n"))
    .collect()
}

const GROUPS_V1: &str = "group_id=1,type=all,bucket=actions=set_field:0x1->reg7,resubmit(,40),bucket=actions=set_field:0x1389->tun_id,output:10\n";

/// v1 with one flow changed (new tunnel port), one removed, one added.
fn flows_v2() -> String {
    flows_v1()
        .replace(
            "set_field:0x1389->tun_id,output:10\n",
            "set_field:0x1389->tun_id,output:11\n",
        )
        .replace(
            &format!("{C}table=10,priority=90,metadata=0x1389,reg6=0x1,ip actions=drop\n"),
            "",
        )
        + &format!("{C}table=10,priority=90,metadata=0x1389,reg6=0x1,ipv6 actions=drop\n")
}

/// A hand-added flow Weft does not own.
const FOREIGN: &str = "cookie=0x1234,table=60,priority=5,actions=drop";

/// `ovs-ofctl diff-flows` between the switch and `expected`: empty when equal.
fn diff_flows(ovs: &Ovs, expected: &str) -> String {
    let f = ovs.path().join("expected.flows");
    std::fs::write(&f, format!("{expected}{FOREIGN}\n")).expect("write");
    let o = ovs
        .cmd("ovs-ofctl")
        .args(["-O", "OpenFlow13", "diff-flows", "br-int", &s(&f)])
        .output()
        .expect("ovs-ofctl diff-flows");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `duration=` of the one flow whose dump line contains `needle`, in seconds.
fn duration_of(ovs: &Ovs, needle: &str) -> f64 {
    let dump = ovs.ofctl(&["dump-flows", "br-int"]);
    let line = dump
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no flow with {needle} in\n{dump}"));
    let d = line
        .split("duration=")
        .nth(1)
        .and_then(|r| r.split('s').next())
        .and_then(|v| v.parse().ok());
    d.unwrap_or_else(|| panic!("no duration in {line}"))
}

fn stat(
    server: &OpenFlowServer,
    f: impl Fn(&OpenFlowStats) -> &std::sync::atomic::AtomicU64,
) -> u64 {
    OpenFlowStats::get(f(&server.stats))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openflow_installs_only_the_difference_on_real_ovs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("weft=debug")
        .with_test_writer()
        .try_init();
    let ovs = Ovs::start();
    ovs.vsctl(&[
        "add-br",
        "br-int",
        "--",
        "set",
        "bridge",
        "br-int",
        "datapath_type=dummy",
        "fail_mode=secure",
        "protocols=OpenFlow13",
        "other_config:disable-in-band=true",
        "--",
        "add-port",
        "br-int",
        "p1",
        "--",
        "set",
        "interface",
        "p1",
        "type=dummy",
        "ofport_request=1",
        "--",
        "add-port",
        "br-int",
        "p2",
        "--",
        "set",
        "interface",
        "p2",
        "type=dummy",
        "ofport_request=2",
        "--",
        "add-port",
        "br-int",
        "t10",
        "--",
        "set",
        "interface",
        "t10",
        "type=dummy",
        "ofport_request=10",
    ]);
    let dpid_text = ovs.vsctl(&["get", "bridge", "br-int", "datapath_id"]);
    let dpid = u64::from_str_radix(dpid_text.trim().trim_matches('"'), 16)
        .unwrap_or_else(|e| panic!("datapath_id {dpid_text:?}: {e}"));
    // OVS flushes every flow when a bridge goes from no controller to some controller
    // (and back), so point it at a dead controller first, as an earlier weftd would have.
    ovs.vsctl(&["set-controller", "br-int", "tcp:127.0.0.1:1"]);
    // Already on the switch before Weft connects: someone else's flow (kept) and a stale
    // Weft flow from an earlier life (removed by the first reconcile).
    ovs.ofctl(&["add-flow", "br-int", FOREIGN]);
    ovs.ofctl(&[
        "add-flow",
        "br-int",
        "cookie=0x5745000000000099,table=60,priority=7,actions=drop",
    ]);

    let topology = TransportNodes::new();

    let channels = Channels::new();
    let (events, _) = tokio::sync::broadcast::channel(64);
    let observed = Arc::new(ObservedState::new(events));
    let shutdown = CancellationToken::new();
    let server = serve(
        "127.0.0.1:0".parse().expect("addr"),
        weft::southbound::openflow::OpenFlowContext {
            topology: topology.clone(),
            channels: channels.clone(),
            observed: observed.clone(),
            ownership: weft::cluster::Ownership::single("test"),
        },
        shutdown.clone(),
    )
    .await
    .expect("serve");
    topology.report(NodeView {
        id: "hv1".into(),
        encap_ip: "192.0.2.1".parse().expect("ip"),
        encap_type: EncapType::Geneve,
        bridge: "br-int".into(),
        datapath_id: Some(dpid),
        vifs: BTreeMap::new(),
        tunnels: BTreeMap::new(),
        bridge_mappings: Default::default(),
        patches: Default::default(),
    });
    let (p1, p2, p3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let v1 = desired(&flows_v1(), GROUPS_V1, &[p1].into());
    assert_eq!(v1.flows.len(), flows_v1().lines().count());
    channels.publish_desired("hv1", Arc::new(v1.clone()));
    let installed = channels.watch_installed();
    let server_addr = server.local_addr;
    let target = format!("tcp:{server_addr}");
    ovs.vsctl(&["set-controller", "br-int", &target]);

    // 1. First connection: exactly the desired flows and groups, foreign flow untouched.
    wait_for("v1 reported installed", || {
        installed_on_hv1(&installed) == [p1].into()
    })
    .await;
    assert!(
        observed
            .node("hv1")
            .is_some_and(|n| n.openflow_connected && n.datapath_id == Some(dpid))
    );
    assert_eq!(
        diff_flows(&ovs, &flows_v1()),
        "",
        "switch flows differ from v1"
    );
    let groups = ovs.ofctl(&["dump-groups", "br-int"]);
    let group_lines: Vec<&str> = groups.lines().filter(|l| l.contains("group_id=")).collect();
    assert_eq!(group_lines.len(), 1, "{groups}");
    assert!(
        group_lines[0].contains("group_id=1,type=all,bucket=bucket_id:0,actions=set_field:0x1->reg7,resubmit(,40),bucket=bucket_id:1,actions=set_field:0x1389->tun_id,output:10")
            || group_lines[0].contains("group_id=1,type=all,bucket=actions=set_field:0x1->reg7,resubmit(,40),bucket=actions=set_field:0x1389->tun_id,output:10"),
        "{groups}"
    );
    assert_eq!(
        observed.node("hv1").map(|n| n.flows.len()),
        Some(v1.flows.len())
    );
    let sent_v1 = stat(&server, |s| &s.changes_sent);
    // groups + flows + the stale flow's delete
    assert_eq!(sent_v1, (v1.flows.len() + v1.groups.len() + 1) as u64);

    // 2. A changed desired state sends only the difference; unchanged flows keep their age.
    let unchanged = "priority=100,reg7=0x1,metadata=0x1389 actions=output:1";
    let before = duration_of(&ovs, unchanged);
    std::thread::sleep(Duration::from_millis(1100));
    let v2 = desired(&flows_v2(), GROUPS_V1, &[p1, p2].into());
    channels.publish_desired("hv1", Arc::new(v2.clone()));
    wait_for("v2 reported installed", || {
        installed_on_hv1(&installed) == [p1, p2].into()
    })
    .await;
    assert_eq!(
        diff_flows(&ovs, &flows_v2()),
        "",
        "switch flows differ from v2"
    );
    assert_eq!(
        stat(&server, |s| &s.changes_sent) - sent_v1,
        3,
        "modify + add + delete"
    );
    let after = duration_of(&ovs, unchanged);
    assert!(
        after >= before + 1.0,
        "unchanged flow was re-added: {before}s then {after}s"
    );
    assert_eq!(
        stat(&server, |s| &s.dumps),
        1,
        "no re-dump between installs"
    );

    // 3. weftd restarts (a new listener on the same port, same desired state): the switch
    // reconnects, a new dump finds exactly the desired state, nothing is sent (no flush).
    // (Not `del-controller`: OVS itself flushes the flows when the last controller goes.)
    shutdown.cancel();
    server.join().await;
    wait_for("openflow disconnect observed", || {
        observed.node("hv1").is_some_and(|n| !n.openflow_connected)
    })
    .await;
    let shutdown = CancellationToken::new();
    let server = serve(
        server_addr,
        weft::southbound::openflow::OpenFlowContext {
            topology: topology.clone(),
            channels: channels.clone(),
            observed: observed.clone(),
            ownership: weft::cluster::Ownership::single("test"),
        },
        shutdown.clone(),
    )
    .await
    .expect("serve again on the same port");
    wait_for("reconnect reconciled", || {
        stat(&server, |s| &s.empty_diffs) == 1
    })
    .await;
    assert!(observed.node("hv1").is_some_and(|n| n.openflow_connected));
    assert_eq!(
        stat(&server, |s| &s.changes_sent),
        0,
        "reconnect re-sent flows"
    );
    assert_eq!(stat(&server, |s| &s.dumps), 1);
    assert_eq!(
        stat(&server, |s| &s.dumps_matched_by_digest),
        1,
        "OVS's dump after the reconnect was not recognised by its digest"
    );
    assert_eq!(diff_flows(&ovs, &flows_v2()), "");
    let age = duration_of(&ovs, unchanged);
    assert!(
        age >= after,
        "flow re-added on reconnect: {after}s then {age}s"
    );

    // 4. A flow the switch rejects (group that does not exist): logged, the whole bundle
    // rolls back, v3 is not reported installed.
    let bad = format!("{C}table=30,priority=70,metadata=0x1389 actions=group:99\n");
    let v3 = desired(&(flows_v2() + &bad), GROUPS_V1, &[p1, p2, p3].into());
    let failed_before = stat(&server, |s| &s.failed_installs);
    channels.publish_desired("hv1", Arc::new(v3));
    wait_for("rejection", || {
        stat(&server, |s| &s.failed_installs) > failed_before
    })
    .await;
    assert_eq!(installed_on_hv1(&installed), [p1, p2].into());
    assert_eq!(
        diff_flows(&ovs, &flows_v2()),
        "",
        "a rejected bundle must leave no trace"
    );
    // ...and it is retried from a fresh dump (with backoff), never from a guess.
    wait_for("re-dump after the rejection", || {
        stat(&server, |s| &s.dumps) >= 2
    })
    .await;

    shutdown.cancel();
    server.join().await;
}

/// Which encodings OVS 3.1 reports back unchanged in a flow dump. For each flow text,
/// OVS's own encoding (ovs-ofctl's) is installed by hand, then Weft connects with that
/// same encoding as its desired state: a flow OVS normalises would show up as a
/// modify_strict. Measured on OVS 3.1: every form below comes back exactly as sent, because
/// OVS remembers each action's original encoding: `load:` stays NXAST_REG_LOAD,
/// `set_field:` stays OFPAT_SET_FIELD (registers included), `write_metadata` stays an
/// instruction, `set_tunnel`/`mod_dl_src` are sent (by ovs-ofctl) and returned as
/// set_field. So the compiler may use either form, as long as it uses one consistently;
/// match field order does not matter (FlowKey is canonical).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openflow_dump_returns_flows_in_the_form_they_were_sent() {
    let ovs = Ovs::start();
    ovs.vsctl(&[
        "add-br",
        "br-int",
        "--",
        "set",
        "bridge",
        "br-int",
        "datapath_type=dummy",
        "fail_mode=secure",
        "protocols=OpenFlow13",
    ]);
    ovs.vsctl(&["set-controller", "br-int", "tcp:127.0.0.1:1"]);
    let dpid_text = ovs.vsctl(&["get", "bridge", "br-int", "datapath_id"]);
    let dpid = u64::from_str_radix(dpid_text.trim().trim_matches('"'), 16).expect("dpid");
    let forms = [
        "load:0x1->NXM_NX_REG6[]",
        "load:0x1389->OXM_OF_METADATA[]",
        "write_metadata:0x1389",
        "set_field:0x1389->metadata,set_field:0x1->reg6",
        "set_tunnel:0x1389,output:1",
        "set_field:0x1389->tun_id,output:1",
        "mod_dl_src:02:00:00:00:00:03",
        "output:NXM_NX_REG7[0..15]",
        "ip,actions=ct(commit,zone=5)",
        "ip,actions=ct(table=21,zone=NXM_NX_REG13[0..15]),ct_clear",
        "resubmit(,40)",
        "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],IN_PORT",
    ];
    let text: String = forms
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let a = if a.contains("actions=") {
                a.to_string()
            } else {
                format!("actions={a}")
            };
            format!("{C}table=70,priority={},{a}\n", i + 1)
        })
        .collect();
    let f = ovs.path().join("forms.flows");
    std::fs::write(&f, &text).expect("write");
    ovs.ofctl(&["add-flows", "br-int", &s(&f)]);
    let want = desired(&text, "", &BTreeSet::new());
    let topology = TransportNodes::new();
    let channels = Channels::new();
    let (events, _) = tokio::sync::broadcast::channel(64);
    let observed = Arc::new(ObservedState::new(events));
    let shutdown = CancellationToken::new();
    let server = serve(
        "127.0.0.1:0".parse().expect("addr"),
        weft::southbound::openflow::OpenFlowContext {
            topology: topology.clone(),
            channels: channels.clone(),
            observed: observed.clone(),
            ownership: weft::cluster::Ownership::single("test"),
        },
        shutdown.clone(),
    )
    .await
    .expect("serve");
    topology.report(NodeView {
        id: "hv1".into(),
        encap_ip: "192.0.2.1".parse().expect("ip"),
        encap_type: EncapType::Geneve,
        bridge: "br-int".into(),
        datapath_id: Some(dpid),
        vifs: BTreeMap::new(),
        tunnels: BTreeMap::new(),
        bridge_mappings: Default::default(),
        patches: Default::default(),
    });
    channels.publish_desired("hv1", Arc::new(want.clone()));
    ovs.vsctl(&[
        "set-controller",
        "br-int",
        &format!("tcp:{}", server.local_addr),
    ]);
    wait_for("first reconcile", || {
        stat(&server, |s| &s.empty_diffs) + stat(&server, |s| &s.installs) >= 1
    })
    .await;
    let dumped = observed
        .node("hv1")
        .map(|n| n.flows.text())
        .unwrap_or_default();
    let expected = weft::reconcile::flows_as_text(&want.flows);
    let normalised: Vec<String> = expected
        .iter()
        .filter(|l| !dumped.contains(l))
        .cloned()
        .collect();
    assert!(
        normalised.is_empty() && stat(&server, |s| &s.changes_sent) == 0,
        "OVS reported these flows in another form:\n{}\nit reported:\n{}",
        normalised.join("\n"),
        dumped.join("\n")
    );
    // ...byte for byte, up to the order of match fields: the dump's digest is the
    // desired flows', so it was never decoded.
    assert_eq!(stat(&server, |s| &s.dumps_matched_by_digest), 1);
    shutdown.cancel();
    server.join().await;
}

/// The ports hv1's switch acknowledged, as last reported.
fn installed_on_hv1(
    rx: &tokio::sync::watch::Receiver<Arc<weft::channels::InstalledPorts>>,
) -> std::collections::BTreeSet<uuid::Uuid> {
    rx.borrow()
        .get("hv1")
        .map(|p| (**p).clone())
        .unwrap_or_default()
}
