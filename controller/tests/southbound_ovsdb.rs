//! The OVSDB southbound against real Open vSwitch: a private ovsdb-server (and, where the
//! test needs ofports, ovs-vswitchd `--enable-dummy --disable-system`) per hypervisor, in
//! a temp dir, killed by PID on drop. Every assertion reads the database with `ovs-vsctl`,
//! independently of the code under test.
//!
//! Run: `cargo test -p weft-controller --test southbound_ovsdb`.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use integration::sandbox::{Daemon, Datapath, OvsSandbox};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use weft::binding::PortBinding;
use weft::channels::Channels;
use weft::config::Endpoint;
use weft::desired::{DesiredNode, TunnelSpec};
use weft::model::{LogicalModel, LogicalPort, LogicalSwitch, MacAddr};
use weft::observed::ObservedState;
use weft::southbound::HYPERVISOR_INACTIVITY_PROBE_MS;
use weft::southbound::ovsdb::{OvsdbContext, OvsdbSouthbound, serve, tunnel_port_name};
use weft::topology::EncapType;
use weft::topology::TransportNodes;

/// Nothing listens there; vswitchd just keeps trying.
const ADVERTISE: &str = "127.0.0.1:9";

/// One hypervisor's OVS: ovsdb-server (honouring `set-manager`), optionally ovs-vswitchd
/// on the dummy datapath, in a temp dir, stopped by PID on drop.
struct Ovs(OvsSandbox);

impl Ovs {
    fn start(with_vswitchd: bool) -> Ovs {
        let mut builder =
            OvsSandbox::builder("sbovsdb").remote("db:Open_vSwitch,Open_vSwitch,manager_options");
        if with_vswitchd {
            builder = builder.vswitchd(Datapath::Dummy);
        }
        Ovs(builder.start().unwrap_or_else(|e| panic!("{e}")))
    }

    fn sock(&self) -> PathBuf {
        self.0.db_socket()
    }

    /// ovsdb-server's PID, for signals.
    fn db_pid(&self) -> String {
        let pid = self.0.pid(Daemon::OvsdbServer);
        pid.expect("ovsdb-server runs").to_string()
    }

    /// Stops ovsdb-server (our connection drops) and starts it again on the same files.
    fn restart_db(&mut self) {
        self.stop_db();
        let started = self.0.start_daemon(Daemon::OvsdbServer);
        started.unwrap_or_else(|e| panic!("{e}"));
    }

    fn stop_db(&mut self) {
        self.0.kill(Daemon::OvsdbServer);
    }

    /// `ovs-vsctl --no-wait ARGS`: stdout (trimmed), or stderr on failure.
    fn vsctl_result(&self, args: &[&str]) -> Result<String, String> {
        let args = std::iter::once(&"--no-wait").chain(args);
        match self.0.vsctl(args) {
            Ok(out) => Ok(out.trim().to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn vsctl(&self, args: &[&str]) -> String {
        self.vsctl_result(args)
            .unwrap_or_else(|e| panic!("ovs-vsctl {args:?}: {e}"))
    }

    /// `ovs-vsctl get` of one column (or `column:key`); `None` if the row or key is absent.
    fn get(&self, table: &str, record: &str, column: &str) -> Option<String> {
        self.vsctl_result(&["--if-exists", "get", table, record, column])
            .ok()
            .map(|s| s.trim_matches('"').to_owned())
            .filter(|s| !s.is_empty() && s != "[]")
    }

    fn bridge_ports(&self, bridge: &str) -> BTreeSet<String> {
        self.vsctl_result(&["list-ports", bridge])
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn log(&self) -> String {
        self.0.log_tail(30)
    }
}

/// Polls `check` until it holds. The bound only turns a hang into a failure message; no
/// assertion is about how fast anything happens.
async fn eventually(what: &str, ovs: &[&Ovs], mut check: impl FnMut() -> bool) {
    for _ in 0..1200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs: Vec<String> = ovs.iter().map(|o| o.log()).collect();
    panic!("never happened: {what}\n{}", logs.join("\n"));
}

struct Harness {
    topology: Arc<TransportNodes>,
    channels: Arc<Channels>,
    observed: Arc<ObservedState>,
    port: LogicalPort,
    model: watch::Sender<Arc<LogicalModel>>,
    shutdown: CancellationToken,
    /// The port-status task, stopped after the sessions (as weftd does).
    status_stop: CancellationToken,
    status: tokio::task::JoinHandle<()>,
}

impl Harness {
    /// Stops the sessions, then the port-status task, as weftd's shutdown does.
    async fn stop(&mut self, server: weft::southbound::ovsdb::OvsdbServer) {
        self.shutdown.cancel();
        server.join().await;
        self.status_stop.cancel();
        let _ = (&mut self.status).await;
    }
}

fn logical_port(name: &str, n: u16) -> LogicalPort {
    let [hi, lo] = n.to_be_bytes();
    LogicalPort {
        id: Uuid::new_v4(),
        name: name.into(),
        switch: Uuid::nil(),
        mac: MacAddr([0x02, 0, 0, 0, hi, lo]),
        ips: vec![],
        port_security: true,
        key: n,
        zone: n,
    }
}

/// A model with one switch holding `ports`.
fn model_of(ports: &[LogicalPort]) -> LogicalModel {
    let sw = LogicalSwitch {
        id: Uuid::from_u128(1),
        name: "ls1".into(),
        vni: 100,
        description: String::new(),
        provider: None,
        flood_vteps: Vec::new(),
    };
    let ports = ports
        .iter()
        .map(|p| LogicalPort {
            switch: sw.id,
            ..p.clone()
        })
        .collect();
    LogicalModel::from_objects(1, vec![sw], ports, vec![]).expect("model")
}

fn harness() -> (Harness, OvsdbContext) {
    // Session logs show up with --nocapture (and in a failing test's output).
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::DEBUG)
        .try_init();
    let port = logical_port("vm1-port", 1);
    let (model_tx, model_rx) = watch::channel(Arc::new(model_of(std::slice::from_ref(&port))));
    let (events, _) = broadcast::channel(1024);
    let topology = TransportNodes::new();
    let channels = Channels::new();
    let observed = Arc::new(ObservedState::new(events));
    let shutdown = CancellationToken::new();
    // What the daemon's compiler task does for the sessions: the bindings, from the model
    // and the topology; and the port-status task that turns them into marks.
    tokio::spawn(publish_bindings(
        model_rx,
        topology.clone(),
        channels.clone(),
        shutdown.clone(),
    ));
    let status_stop = CancellationToken::new();
    let status = tokio::spawn(weft::port_status::run(
        topology.clone(),
        channels.clone(),
        observed.clone(),
        status_stop.clone(),
    ));
    let ctx = OvsdbContext {
        topology: topology.clone(),
        channels: channels.clone(),
        observed: observed.clone(),
        ownership: weft::cluster::Ownership::single("test"),
        model: None,
    };
    (
        Harness {
            topology,
            channels,
            observed,
            port,
            model: model_tx,
            shutdown,
            status_stop,
            status,
        },
        ctx,
    )
}

/// Publishes [`Bindings::compute`] of every new model or topology.
async fn publish_bindings(
    mut model: watch::Receiver<Arc<LogicalModel>>,
    nodes: Arc<TransportNodes>,
    channels: Arc<Channels>,
    shutdown: CancellationToken,
) {
    let mut topology = nodes.watch();
    loop {
        let m = model.borrow_and_update().clone();
        let t = topology.borrow_and_update().clone();
        channels.publish_bindings(Arc::new(weft::binding::Bindings::compute(&m, &t)));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = model.changed() => if r.is_err() { return },
            r = topology.changed() => if r.is_err() { return },
        }
    }
}

fn tunnel(remote: &str, remote_ip: &str, local_ip: &str, encap: EncapType) -> TunnelSpec {
    TunnelSpec {
        remote: remote.into(),
        remote_ip: remote_ip.parse::<IpAddr>().expect("ip"),
        local_ip: local_ip.parse::<IpAddr>().expect("ip"),
        encap,
    }
}

/// Sends a signal to one of our own children, by PID.
fn signal(sig: &str, pid: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}").as_str(), pid])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid} failed");
}

/// Reads the peer until it closes the connection.
async fn read_until_closed(s: &mut tokio::net::TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn southbound_ovsdb_passive_two_hypervisors() {
    let (mut h, ctx) = harness();
    let cfg = OvsdbSouthbound {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        openflow_advertise: Some(ADVERTISE.parse().expect("addr")),
        // Short, so that the silent peer below is found dead quickly.
        inactivity_probe: Duration::from_millis(300),
        // Short, so that hv2 below leaves the topology soon after its session ends.
        node_hold: Duration::from_millis(300),
        ..Default::default()
    };
    let server = serve(cfg, ctx, h.shutdown.clone()).await.expect("serve");
    let addr = server.local_addr().expect("listener address");
    let manager = format!("tcp:{addr}");
    let controller_target = format!("\"tcp:{ADVERTISE}\"");

    // hv1: br-int does not exist; Weft creates it with the datapath type it is told.
    let hv1 = Ovs::start(true);
    hv1.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "external_ids:system-id=hv1",
        "external_ids:weft-encap-ip=192.0.2.1",
        "external_ids:weft-datapath-type=dummy",
    ]);
    // hv2: br-int pre-exists (datapath_type must survive), VXLAN.
    let hv2 = Ovs::start(true);
    hv2.vsctl(&[
        "add-br",
        "br-int",
        "--",
        "set",
        "bridge",
        "br-int",
        "datapath_type=dummy",
        "fail_mode=standalone",
    ]);
    hv2.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "external_ids:system-id=hv2",
        "external_ids:weft-encap-ip=192.0.2.2",
        "external_ids:weft-encap-type=vxlan",
    ]);
    // hv1 has a second manager, which is not Weft's: its row stays as it is.
    hv1.vsctl(&["set-manager", &manager, "tcp:127.0.0.1:9"]);
    hv2.vsctl(&["set-manager", &manager]);

    for hv in [&hv1, &hv2] {
        eventually("br-int configured as DESIGN.md §3 says", &[hv], || {
            hv.get("bridge", "br-int", "fail_mode").as_deref() == Some("secure")
                && hv.get("bridge", "br-int", "protocols").as_deref() == Some("[OpenFlow13]")
                && hv
                    .get("bridge", "br-int", "other_config:disable-in-band")
                    .as_deref()
                    == Some("true")
                && hv
                    .vsctl_result(&["get-controller", "br-int"])
                    .ok()
                    .as_deref()
                    == Some(controller_target.trim_matches('"'))
        })
        .await;
        assert_eq!(
            hv.get("bridge", "br-int", "datapath_type").as_deref(),
            Some("dummy")
        );
        // Out of in-band control, and probed by weftd alone: the switch's own probes
        // wait three of weftd's probe periods, so they never fire while weftd lives.
        let probe = HYPERVISOR_INACTIVITY_PROBE_MS.to_string();
        eventually("the manager row out of in-band control", &[hv], || {
            hv.get("manager", &manager, "connection_mode").as_deref() == Some("out-of-band")
                && hv.get("manager", &manager, "inactivity_probe") == Some(probe.clone())
        })
        .await;
        assert_eq!(
            hv.get("controller", "br-int", "inactivity_probe"),
            Some(probe)
        );
    }
    for column in ["connection_mode", "inactivity_probe"] {
        assert_eq!(hv1.get("manager", "tcp:127.0.0.1:9", column), None);
    }
    eventually(
        "both nodes in the topology with their datapath ids",
        &[&hv1, &hv2],
        || {
            let t = h.topology.snapshot();
            ["hv1", "hv2"]
                .iter()
                .all(|n| t.nodes.get(*n).is_some_and(|v| v.datapath_id.is_some()))
        },
    )
    .await;
    let t = h.topology.snapshot();
    let v2 = &t.nodes["hv2"];
    assert_eq!(v2.encap_type, EncapType::Vxlan);
    assert_eq!(v2.encap_ip.to_string(), "192.0.2.2");
    assert_eq!(v2.bridge, "br-int");
    let dpid = hv2
        .get("bridge", "br-int", "datapath_id")
        .expect("datapath_id");
    assert_eq!(v2.datapath_id, u64::from_str_radix(&dpid, 16).ok());
    assert!(h.observed.node("hv1").is_some_and(|n| n.ovsdb_connected));

    // Someone changes a setting: Weft repairs it.
    hv1.vsctl(&["set", "bridge", "br-int", "fail_mode=standalone"]);
    eventually("fail_mode repaired", &[&hv1], || {
        hv1.get("bridge", "br-int", "fail_mode").as_deref() == Some("secure")
    })
    .await;

    // A VIF and a port Weft does not own.
    hv1.vsctl(&[
        "add-port",
        "br-int",
        "vm1",
        "--",
        "set",
        "interface",
        "vm1",
        "type=dummy",
        "external_ids:iface-id=vm1-port",
    ]);
    hv1.vsctl(&[
        "add-port",
        "br-int",
        "keep0",
        "--",
        "set",
        "interface",
        "keep0",
        "type=dummy",
    ]);
    eventually("vm1 in the topology with its ofport", &[&hv1], || {
        h.topology.snapshot().nodes["hv1"]
            .vifs
            .get("vm1-port")
            .is_some_and(|v| v.ofport > 0)
    })
    .await;
    let ofport: u32 = hv1
        .get("interface", "vm1", "ofport")
        .and_then(|s| s.parse().ok())
        .expect("vm1 ofport");
    assert_eq!(
        h.topology.snapshot().nodes["hv1"].vifs["vm1-port"].ofport,
        ofport
    );
    eventually("vm1-port bound in the observed state", &[&hv1], || {
        h.observed.port_status(&h.port.id).binding
            == Some(PortBinding {
                node: "hv1".into(),
                ofport,
            })
    })
    .await;

    // Two tunnels, Geneve and VXLAN.
    let (to_hv2, to_hv3) = (tunnel_port_name("hv2"), tunnel_port_name("hv3"));
    let desired = |tunnels: Vec<TunnelSpec>| {
        Arc::new(DesiredNode {
            tunnels: tunnels.into_iter().collect(),
            ..Default::default()
        })
    };
    h.channels.publish_desired(
        "hv1",
        desired(vec![
            tunnel("hv2", "192.0.2.2", "192.0.2.1", EncapType::Geneve),
            tunnel("hv3", "192.0.2.3", "192.0.2.1", EncapType::Vxlan),
        ]),
    );
    eventually("two tunnel ports created", &[&hv1], || {
        let ports = hv1.bridge_ports("br-int");
        ports.contains(&to_hv2) && ports.contains(&to_hv3)
    })
    .await;
    let owned: Vec<String> = hv1
        .vsctl(&[
            "--bare",
            "--columns=name",
            "find",
            "port",
            "external_ids:weft-remote!=\"\"",
        ])
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(owned.len(), 2, "Weft-owned ports: {owned:?}");
    for (name, remote, kind, ip) in [
        (&to_hv2, "hv2", "geneve", "192.0.2.2"),
        (&to_hv3, "hv3", "vxlan", "192.0.2.3"),
    ] {
        assert_eq!(hv1.get("interface", name, "type").as_deref(), Some(kind));
        assert_eq!(
            hv1.get("interface", name, "options:remote_ip").as_deref(),
            Some(ip)
        );
        assert_eq!(
            hv1.get("interface", name, "options:local_ip").as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(
            hv1.get("interface", name, "options:key").as_deref(),
            Some("flow")
        );
        assert_eq!(
            hv1.get("port", name, "external_ids:weft-remote").as_deref(),
            Some(remote)
        );
    }
    eventually("tunnels reported with their ofports", &[&hv1], || {
        let t = h.topology.snapshot();
        let tun = &t.nodes["hv1"].tunnels;
        tun.get("hv2").is_some_and(|p| *p > 0) && tun.get("hv3").is_some_and(|p| *p > 0)
    })
    .await;

    // Drop one: exactly that one goes; vm1 and keep0 stay.
    h.channels.publish_desired(
        "hv1",
        desired(vec![tunnel(
            "hv2",
            "192.0.2.2",
            "192.0.2.1",
            EncapType::Geneve,
        )]),
    );
    eventually("hv3's tunnel removed", &[&hv1], || {
        !hv1.bridge_ports("br-int").contains(&to_hv3)
    })
    .await;
    let ports = hv1.bridge_ports("br-int");
    let want: BTreeSet<String> = [to_hv2.clone(), "vm1".into(), "keep0".into()]
        .into_iter()
        .collect();
    assert_eq!(ports, want);

    // STT (accepted by the dummy datapath here), and a tunnel someone edited: Weft
    // puts its options back.
    let to_hv4 = tunnel_port_name("hv4");
    h.channels.publish_desired(
        "hv1",
        desired(vec![
            tunnel("hv2", "192.0.2.2", "192.0.2.1", EncapType::Geneve),
            tunnel("hv4", "192.0.2.4", "192.0.2.1", EncapType::Stt),
        ]),
    );
    eventually("the STT tunnel reported with its ofport", &[&hv1], || {
        hv1.get("interface", &to_hv4, "type").as_deref() == Some("stt")
            && h.topology.snapshot().nodes["hv1"]
                .tunnels
                .get("hv4")
                .is_some_and(|p| *p > 0)
    })
    .await;
    hv1.vsctl(&[
        "set",
        "interface",
        &to_hv2,
        "options:remote_ip=198.51.100.7",
    ]);
    eventually("the edited tunnel repaired", &[&hv1], || {
        hv1.get("interface", &to_hv2, "options:remote_ip")
            .as_deref()
            == Some("192.0.2.2")
    })
    .await;
    h.channels.publish_desired(
        "hv1",
        desired(vec![tunnel(
            "hv2",
            "192.0.2.2",
            "192.0.2.1",
            EncapType::Geneve,
        )]),
    );
    eventually("hv4's tunnel removed", &[&hv1], || {
        !hv1.bridge_ports("br-int").contains(&to_hv4)
    })
    .await;

    // weft-installed follows the OpenFlow side's report.
    h.channels
        .report_installed("hv1", BTreeSet::from([h.port.id]));
    eventually("weft-installed=true on vm1", &[&hv1], || {
        hv1.get("interface", "vm1", "external_ids:weft-installed")
            .as_deref()
            == Some("true")
    })
    .await;
    assert!(h.observed.port_status(&h.port.id).up);
    h.channels.report_installed("hv1", BTreeSet::new());
    eventually("weft-installed cleared on vm1", &[&hv1], || {
        hv1.get("interface", "vm1", "external_ids:weft-installed")
            .is_none()
    })
    .await;

    // A peer sending garbage, and one that says nothing at all: both are disconnected,
    // neither disturbs hv1.
    let mut garbage = tokio::net::TcpStream::connect(addr).await.expect("connect");
    garbage
        .write_all(b"}}]]not json at all\x00\xff")
        .await
        .expect("write");
    read_until_closed(&mut garbage).await;
    let mut silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
    read_until_closed(&mut silent).await;
    hv1.vsctl(&[
        "add-port",
        "br-int",
        "vm2",
        "--",
        "set",
        "interface",
        "vm2",
        "type=dummy",
        "external_ids:iface-id=not-in-model",
    ]);
    eventually("hv1 still served after the bad peers", &[&hv1], || {
        h.topology.snapshot().nodes["hv1"]
            .vifs
            .contains_key("not-in-model")
    })
    .await;

    // The logical port for vm2 is created later: the binding follows the model.
    let late = logical_port("not-in-model", 2);
    let m = model_of(&[h.port.clone(), late.clone()]);
    h.model.send_replace(Arc::new(m));
    eventually("vm2 bound once its logical port exists", &[&hv1], || {
        h.observed
            .port_status(&late.id)
            .binding
            .is_some_and(|b| b.node == "hv1")
    })
    .await;
    assert!(h.observed.port_status(&h.port.id).binding.is_some());

    // hv2's session ends: marked disconnected, not forgotten; hv1 unaffected.
    hv2.vsctl(&["del-manager"]);
    eventually("hv2 marked disconnected", &[&hv2], || {
        h.observed.node("hv2").is_some_and(|n| !n.ovsdb_connected)
            && !h.topology.snapshot().nodes.contains_key("hv2")
    })
    .await;
    assert!(h.observed.node("hv1").is_some_and(|n| n.ovsdb_connected));
    assert!(h.topology.snapshot().nodes.contains_key("hv1"));

    h.stop(server).await;
    assert!(h.observed.node("hv1").is_some_and(|n| !n.ovsdb_connected));
    assert_eq!(h.observed.port_status(&h.port.id).binding, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn southbound_ovsdb_active_unix_reconnects() {
    let (mut h, ctx) = harness();
    let mut hv = Ovs::start(false);
    // weft-encap-ip is missing at first: the session logs that and waits.
    hv.vsctl(&["set", "Open_vSwitch", ".", "external_ids:system-id=hv9"]);
    let cfg = OvsdbSouthbound {
        listen: None,
        // Twice: two sessions for one system-id; one serves, the other waits for it.
        active: vec![Endpoint::Unix(hv.sock()), Endpoint::Unix(hv.sock())],
        openflow_advertise: Some(ADVERTISE.parse().expect("addr")),
        inactivity_probe: Duration::from_millis(300),
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        ..Default::default()
    };
    let server = serve(cfg, ctx, h.shutdown.clone()).await.expect("serve");
    assert_eq!(server.local_addr(), None);
    hv.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "external_ids:weft-encap-ip=192.0.2.9",
    ]);
    eventually("br-int created over the unix target", &[&hv], || {
        hv.get("bridge", "br-int", "fail_mode").as_deref() == Some("secure")
            && hv
                .get("bridge", "br-int", "other_config:disable-in-band")
                .as_deref()
                == Some("true")
    })
    .await;
    // No datapath type was asked for: OVS's default stays.
    assert_eq!(hv.get("bridge", "br-int", "datapath_type"), None);
    eventually("hv9 connected", &[&hv], || {
        h.observed.node("hv9").is_some_and(|n| n.ovsdb_connected)
    })
    .await;

    // The database hangs (SIGSTOP): our echo goes unanswered and the session ends.
    let pid = hv.db_pid();
    signal("STOP", &pid);
    eventually("hung hv9 found dead by keepalive", &[&hv], || {
        h.observed.node("hv9").is_some_and(|n| !n.ovsdb_connected)
    })
    .await;
    signal("CONT", &pid);
    eventually("hv9 redialled after it woke up", &[&hv], || {
        h.observed.node("hv9").is_some_and(|n| n.ovsdb_connected)
    })
    .await;

    // The database goes away: the node is disconnected; it comes back: redialled.
    hv.stop_db();
    eventually("hv9 disconnected", &[&hv], || {
        h.observed.node("hv9").is_some_and(|n| !n.ovsdb_connected)
    })
    .await;
    hv.restart_db();
    hv.vsctl(&["set", "bridge", "br-int", "fail_mode=standalone"]);
    eventually("hv9 reconnected and br-int repaired", &[&hv], || {
        h.observed.node("hv9").is_some_and(|n| n.ovsdb_connected)
            && hv.get("bridge", "br-int", "fail_mode").as_deref() == Some("secure")
    })
    .await;

    h.stop(server).await;
    assert!(h.observed.node("hv9").is_some_and(|n| !n.ovsdb_connected));
}

/// Measurement, not a check: how long one hypervisor takes to show N VIFs in the topology
/// and to get `weft-installed` on all of them.
/// `WEFT_SB_VIFS=1000 cargo test -p weft-controller --test southbound_ovsdb -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn southbound_ovsdb_scale_vifs() {
    let n: u16 = std::env::var("WEFT_SB_VIFS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let (mut h, ctx) = harness();
    let ports: Vec<LogicalPort> = (1..=n)
        .map(|i| logical_port(&format!("lp{i}"), i))
        .collect();
    h.model.send_replace(Arc::new(model_of(&ports)));
    let cfg = OvsdbSouthbound {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Default::default()
    };
    let server = serve(cfg, ctx, h.shutdown.clone()).await.expect("serve");
    let hv = Ovs::start(true);
    hv.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "external_ids:system-id=hv1",
        "external_ids:weft-encap-ip=192.0.2.1",
        "external_ids:weft-datapath-type=dummy",
    ]);
    hv.vsctl(&[
        "set-manager",
        &format!("tcp:{}", server.local_addr().expect("addr")),
    ]);
    eventually("br-int", &[&hv], || {
        h.topology
            .snapshot()
            .nodes
            .get("hv1")
            .is_some_and(|v| v.datapath_id.is_some())
    })
    .await;
    let mut args: Vec<String> = Vec::new();
    for i in 1..=n {
        args.extend(
            [
                "--".into(),
                "add-port".into(),
                "br-int".into(),
                format!("vm{i}"),
                "--".into(),
                "set".into(),
                "interface".into(),
                format!("vm{i}"),
                "type=dummy".into(),
                format!("external_ids:iface-id=lp{i}"),
            ]
            .into_iter(),
        );
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let t0 = std::time::Instant::now();
    hv.vsctl(&args);
    eventually("OVS assigned every ofport", &[&hv], || {
        hv.vsctl(&[
            "--bare",
            "--columns=ofport",
            "find",
            "interface",
            "type=dummy",
        ])
        .split_whitespace()
        .filter(|p| p.parse::<i64>().is_ok_and(|p| p > 0))
        .count()
            == usize::from(n)
    })
    .await;
    let t_ovs = t0.elapsed();
    eventually("all VIFs in the topology", &[&hv], || {
        h.topology.snapshot().nodes["hv1"].vifs.len() == usize::from(n)
    })
    .await;
    let t_vifs = t0.elapsed();
    let t1 = std::time::Instant::now();
    h.channels
        .report_installed("hv1", ports.iter().map(|p| p.id).collect());
    eventually("all VIFs weft-installed", &[&hv], || {
        hv.vsctl(&[
            "--bare",
            "--columns=name",
            "find",
            "interface",
            "external_ids:weft-installed=true",
        ])
        .split_whitespace()
        .count()
            == usize::from(n)
    })
    .await;
    let t_installed = t1.elapsed();
    println!(
        "{n} VIFs: OVS assigned ofports after {t_ovs:?}; in topology after {t_vifs:?}; \
         all weft-installed {t_installed:?} after the report"
    );
    h.stop(server).await;
}

/// Cluster mode's fence against a real ovsdb-server: a transaction guarded by the fence
/// a stale owner holds is refused whole once a newer owner wrote its own.
#[tokio::test]
async fn the_owner_fence_refuses_a_stale_owners_transaction() {
    use ovsdb::vswitch;
    use weft::southbound::ovsdb::fence::Fence;
    let ovs = Ovs::start(false);
    let (client, _events) = ovsdb::connect(
        &format!("unix:{}", ovs.sock().display()),
        ovsdb::ClientConfig::default(),
    )
    .await
    .unwrap();
    let root: Uuid = ovs
        .vsctl(&["get", "Open_vSwitch", ".", "_uuid"])
        .parse()
        .unwrap();
    let old = Fence::new(root, "c1", 10);
    let new = Fence::new(root, "c2", 11);
    let marked = |fence: &Fence, key: &str| {
        let mut t = ovsdb::Transaction::new(vswitch::DATABASE);
        vswitch::set_map_key(
            &mut t,
            vswitch::OPEN_VSWITCH,
            root,
            "external_ids",
            key,
            "1",
        );
        fence.guard(&mut t);
        t
    };
    client.transact(&old.write()).await.unwrap();
    client.transact(&marked(&old, "by-c1")).await.unwrap();
    // The new owner takes over: the old owner's next write fails and changes nothing.
    client.transact(&new.write()).await.unwrap();
    let refused = client.transact(&marked(&old, "stale-c1")).await;
    assert!(
        matches!(refused, Err(ovsdb::ClientError::Transaction(_))),
        "{refused:?}"
    );
    client.transact(&marked(&new, "by-c2")).await.unwrap();
    let ids = ovs.vsctl(&["get", "Open_vSwitch", ".", "external_ids"]);
    assert!(ids.contains("weft-owner=\"c2:11\""), "{ids}");
    assert!(ids.contains("by-c1") && ids.contains("by-c2"), "{ids}");
    assert!(!ids.contains("stale-c1"), "{ids}");
}
