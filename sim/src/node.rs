//! One simulated hypervisor: its vswitch database ([`Database`]) served over an OVSDB
//! connection that it dials to weftd's manager port (as `ovs-vsctl set-manager` makes
//! ovsdb-server do), the ovs-vswitchd behaviour weftd relies on (datapath_id on bridges,
//! ofports on new interfaces, connecting br-int to its Controller target), and the
//! bridge's OpenFlow switch ([`Switch`]) that dials weftd's OpenFlow port.
//!
//! Two tokio tasks per node, sharing [`NodeState`] behind a mutex: the OVSDB task and
//! the OpenFlow task. The database and the flow tables outlive connections, as they do on
//! a real hypervisor; reconnects re-monitor and re-handshake.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use futures::{SinkExt, StreamExt};
use openflow::OfpMessage;
use ovsdb::{Atom, DatabaseSchema, Datum, JsonCodec, Message, Row, Uuid};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use crate::db::{Database, RowChange};
use crate::switch::{Switch, Tables};

/// OpenFlow port number of a bridge's internal interface.
const OFPP_LOCAL: i64 = 65534;
/// Largest JSON-RPC message accepted from weftd.
const MAX_OVSDB_FRAME: usize = 64 << 20;

/// What a simulated hypervisor is.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub system_id: String,
    pub encap_ip: Ipv4Addr,
    pub datapath_id: u64,
    /// VM interfaces: (interface name, iface-id, attached-mac), ofports 1, 2, ...
    pub vifs: Vec<(String, String, String)>,
}

/// How simulated nodes reach weftd and behave.
#[derive(Debug, Clone)]
pub struct SimSettings {
    /// weftd's OVSDB manager listener.
    pub ovsdb: SocketAddr,
    /// Where to connect OpenFlow; `None` follows br-int's Controller target.
    pub openflow: Option<SocketAddr>,
    pub echo_interval: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

impl SimSettings {
    pub fn new(ovsdb: SocketAddr) -> Self {
        SimSettings {
            ovsdb,
            openflow: None,
            echo_interval: Duration::from_secs(10),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(8),
        }
    }
}

/// Counters per node.
#[derive(Debug, Default, Clone, Copy)]
pub struct NodeCounters {
    pub ovsdb_connects: u64,
    pub openflow_connects: u64,
    pub transactions: u64,
    pub failed_transactions: u64,
}

/// Everything a node holds; lock it briefly.
#[derive(Debug)]
pub struct NodeState {
    pub spec: NodeSpec,
    pub db: Database,
    pub tables: Tables,
    pub counters: NodeCounters,
    pub switch_stats: crate::switch::SwitchStats,
    /// True while the OpenFlow handshake is done and the connection is up.
    pub openflow_up: bool,
    pub ovsdb_up: bool,
    /// ofport → interface name on br-int, for PORT_DESC.
    pub port_names: BTreeMap<u32, String>,
}

impl NodeState {
    /// VM interfaces (iface-id → whether `weft-installed=true`).
    pub fn installed(&self) -> BTreeMap<String, bool> {
        let mut out = BTreeMap::new();
        for (_, row) in self.db.table("Interface") {
            // Rows are sparse: no stored external_ids means an empty map.
            let Some(m) = row.get("external_ids").and_then(Datum::as_map) else {
                continue;
            };
            let get = |k: &str| m.get(&Atom::String(k.into())).and_then(Atom::as_str);
            if let Some(id) = get("iface-id") {
                out.insert(id.to_owned(), get("weft-installed") == Some("true"));
            }
        }
        out
    }

    /// Whether every VM interface carries `weft-installed=true`.
    pub fn all_installed(&self) -> bool {
        let m = self.installed();
        !m.is_empty() && m.values().all(|v| *v)
    }

    /// The node as weftd's fabric would see it, built from this node's own database:
    /// for computing the compiler's expected flows independently of weftd.
    pub fn node_view(&self) -> weft::topology::NodeView {
        let mut vifs = BTreeMap::new();
        let mut tunnels = BTreeMap::new();
        // Interface → weft-remote of the Port holding it.
        let mut remote_of: BTreeMap<Uuid, String> = BTreeMap::new();
        for (_, p) in self.db.table("Port") {
            let remote = p
                .get("external_ids")
                .and_then(Datum::as_map)
                .and_then(|m| m.get(&Atom::String("weft-remote".into())))
                .and_then(Atom::as_str);
            if let (Some(remote), Some(ifaces)) =
                (remote, p.get("interfaces").and_then(Datum::as_set))
            {
                for i in ifaces.iter().filter_map(Atom::as_uuid) {
                    remote_of.insert(i, remote.to_owned());
                }
            }
        }
        for (uuid, row) in self.db.table("Interface") {
            let ofport = self
                .db
                .get("Interface", row, "ofport")
                .as_scalar()
                .and_then(Atom::as_i64)
                .filter(|p| *p > 0 && *p < OFPP_LOCAL)
                .and_then(|p| u32::try_from(p).ok());
            let Some(ofport) = ofport else {
                continue;
            };
            let ids = self.db.get("Interface", row, "external_ids");
            let get = |k: &str| {
                ids.as_map()
                    .and_then(|m| m.get(&Atom::String(k.into())))
                    .and_then(Atom::as_str)
                    .map(str::to_owned)
            };
            let name = self
                .db
                .get("Interface", row, "name")
                .as_scalar()
                .and_then(Atom::as_str)
                .unwrap_or_default()
                .to_owned();
            if let Some(id) = get("iface-id") {
                vifs.insert(
                    id,
                    weft::topology::Vif {
                        ofport,
                        interface: *uuid,
                        name,
                    },
                );
            } else if let Some(remote) = remote_of.get(uuid) {
                tunnels.insert(remote.clone(), ofport);
            }
        }
        weft::topology::NodeView {
            id: self.spec.system_id.clone(),
            encap_ip: self.spec.encap_ip.into(),
            encap_type: weft::topology::EncapType::Geneve,
            bridge: "br-int".into(),
            datapath_id: Some(self.spec.datapath_id),
            vifs,
            tunnels,
        }
    }

    /// The OpenFlow target of br-int's Controller row, if it is a `tcp:IP:PORT`.
    fn controller_target(&self) -> Option<SocketAddr> {
        let (_, br) = self.db.table("Bridge").find(|(_, r)| {
            self.db
                .get("Bridge", r, "name")
                .as_scalar()
                .and_then(Atom::as_str)
                == Some("br-int")
        })?;
        let ctl = self.db.get("Bridge", br, "controller");
        let uuid = ctl.as_set()?.iter().next()?.as_uuid()?;
        let row = self.db.row("Controller", &uuid)?;
        let target = self.db.get("Controller", row, "target");
        target
            .as_scalar()?
            .as_str()?
            .strip_prefix("tcp:")?
            .parse()
            .ok()
    }

    /// What ovs-vswitchd does after a database change: a datapath_id for every bridge,
    /// an ofport for every new interface. Returns the changes it made.
    fn vswitchd_pass(&mut self) -> Vec<RowChange> {
        let mut changes = Vec::new();
        let bridges: Vec<(Uuid, bool)> = self
            .db
            .table("Bridge")
            .map(|(u, r)| (*u, self.db.get("Bridge", r, "datapath_id").is_empty()))
            .collect();
        for (u, missing) in bridges {
            if missing {
                let dpid = format!("{:016x}", self.spec.datapath_id);
                changes.extend(self.db.set_columns(
                    "Bridge",
                    u,
                    Row::from([("datapath_id".into(), Datum::scalar(dpid.as_str()))]),
                ));
            }
        }
        let mut used: BTreeSet<i64> = BTreeSet::new();
        let mut need: Vec<(Uuid, bool)> = Vec::new();
        for (u, r) in self.db.table("Interface") {
            match self
                .db
                .get("Interface", r, "ofport")
                .as_scalar()
                .and_then(Atom::as_i64)
            {
                Some(p) if p > 0 => {
                    used.insert(p);
                }
                _ => {
                    let internal = self
                        .db
                        .get("Interface", r, "type")
                        .as_scalar()
                        .and_then(Atom::as_str)
                        == Some("internal");
                    need.push((*u, internal));
                }
            }
        }
        let mut next = 1;
        for (u, internal) in need {
            let port = if internal {
                OFPP_LOCAL
            } else {
                while used.contains(&next) {
                    next += 1;
                }
                used.insert(next);
                next
            };
            changes.extend(self.db.set_columns(
                "Interface",
                u,
                Row::from([
                    ("ofport".into(), Datum::scalar(port)),
                    ("ofport_request".into(), Datum::empty()),
                ]),
            ));
        }
        changes
    }

    /// ofport → interface name, for PORT_DESC replies.
    fn ports(&self) -> BTreeMap<u32, String> {
        self.db
            .table("Interface")
            .filter_map(|(_, r)| {
                let p = self
                    .db
                    .get("Interface", r, "ofport")
                    .as_scalar()?
                    .as_i64()?;
                let p = u32::try_from(p)
                    .ok()
                    .filter(|p| *p > 0 && i64::from(*p) < OFPP_LOCAL)?;
                let name = self.db.get("Interface", r, "name");
                Some((p, name.as_scalar()?.as_str()?.to_owned()))
            })
            .collect()
    }
}

/// A simulated hypervisor handle.
#[derive(Debug, Clone)]
pub struct Node {
    pub state: Arc<Mutex<NodeState>>,
}

impl Node {
    /// A hypervisor whose br-int already holds its VMs' interfaces (ofports 1..=n).
    pub fn new(spec: NodeSpec, schema: Arc<DatabaseSchema>) -> Node {
        let mut db = Database::new(schema);
        let mut ports = Vec::new();
        let local_if = Uuid::new_v4();
        db.insert_row(
            "Interface",
            local_if,
            Row::from([
                ("name".into(), Datum::scalar("br-int")),
                ("type".into(), Datum::scalar("internal")),
                ("ofport".into(), Datum::scalar(OFPP_LOCAL)),
            ]),
        );
        let local_port = Uuid::new_v4();
        db.insert_row(
            "Port",
            local_port,
            Row::from([
                ("name".into(), Datum::scalar("br-int")),
                ("interfaces".into(), Datum::uuid(local_if)),
            ]),
        );
        ports.push(local_port);
        for (i, (name, iface_id, mac)) in spec.vifs.iter().enumerate() {
            let iu = Uuid::new_v4();
            db.insert_row(
                "Interface",
                iu,
                Row::from([
                    ("name".into(), Datum::scalar(name.as_str())),
                    ("ofport".into(), Datum::scalar(i as i64 + 1)),
                    (
                        "external_ids".into(),
                        Datum::map([
                            ("iface-id", iface_id.as_str()),
                            ("attached-mac", mac.as_str()),
                        ]),
                    ),
                ]),
            );
            let pu = Uuid::new_v4();
            db.insert_row(
                "Port",
                pu,
                Row::from([
                    ("name".into(), Datum::scalar(name.as_str())),
                    ("interfaces".into(), Datum::uuid(iu)),
                ]),
            );
            ports.push(pu);
        }
        let br = Uuid::new_v4();
        db.insert_row(
            "Bridge",
            br,
            Row::from([
                ("name".into(), Datum::scalar("br-int")),
                ("ports".into(), Datum::set(ports)),
                (
                    "datapath_id".into(),
                    Datum::scalar(format!("{:016x}", spec.datapath_id)),
                ),
            ]),
        );
        db.insert_row(
            "Open_vSwitch",
            Uuid::new_v4(),
            Row::from([
                ("bridges".into(), Datum::uuid(br)),
                ("ovs_version".into(), Datum::scalar("3.1.0-weft-sim")),
                (
                    "external_ids".into(),
                    Datum::map([
                        ("system-id", spec.system_id.clone()),
                        ("weft-encap-ip", spec.encap_ip.to_string()),
                        ("weft-encap-type", "geneve".to_owned()),
                    ]),
                ),
            ]),
        );
        Node {
            state: Arc::new(Mutex::new(NodeState {
                spec,
                db,
                tables: Tables::default(),
                counters: NodeCounters::default(),
                switch_stats: Default::default(),
                openflow_up: false,
                ovsdb_up: false,
                port_names: BTreeMap::new(),
            })),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Plugs a new VM interface into br-int (as `ovs-vsctl add-port` + vswitchd would);
    /// the OVSDB task reports it to weftd. Returns the ofport.
    pub fn add_vif(&self, name: &str, iface_id: &str, mac: &str, notify: &NodeControl) -> i64 {
        let mut st = self.lock();
        let iu = Uuid::new_v4();
        let pu = Uuid::new_v4();
        let mut changes = vec![st.db.insert_row(
            "Interface",
            iu,
            Row::from([
                ("name".into(), Datum::scalar(name)),
                (
                    "external_ids".into(),
                    Datum::map([("iface-id", iface_id), ("attached-mac", mac)]),
                ),
            ]),
        )];
        changes.push(st.db.insert_row(
            "Port",
            pu,
            Row::from([
                ("name".into(), Datum::scalar(name)),
                ("interfaces".into(), Datum::uuid(iu)),
            ]),
        ));
        let br = st.db.table("Bridge").map(|(u, _)| *u).next();
        if let Some(br) = br {
            let row = st.db.row("Bridge", &br).cloned().unwrap_or_default();
            let mut ports = st.db.get("Bridge", &row, "ports");
            if let Datum::Set(s) = &mut ports {
                s.insert(Atom::Uuid(pu));
            }
            changes.extend(
                st.db
                    .set_columns("Bridge", br, Row::from([("ports".into(), ports)])),
            );
        }
        changes.extend(st.vswitchd_pass());
        let ofport = st
            .db
            .row("Interface", &iu)
            .and_then(|r| {
                r.get("ofport")
                    .and_then(Datum::as_scalar)
                    .and_then(Atom::as_i64)
            })
            .unwrap_or(-1);
        drop(st);
        notify.push(changes);
        ofport
    }
}

/// Levers the bench pulls on a running node.
#[derive(Debug, Clone)]
pub struct NodeControl {
    /// Bumped to make the node drop both connections and reconnect at once.
    pub reconnect: watch::Sender<u64>,
    /// Row changes made outside a transaction (new VIFs) to report to monitors.
    pending: Arc<Mutex<Vec<RowChange>>>,
    wake: Arc<tokio::sync::Notify>,
}

impl NodeControl {
    fn push(&self, changes: Vec<RowChange>) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(changes);
        self.wake.notify_one();
    }

    pub fn reconnect_now(&self) {
        self.reconnect.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Starts the node's OVSDB and OpenFlow tasks. A `stalled` switch completes the OpenFlow
/// handshake and then never reads its socket again (a slow or wedged switch).
pub fn spawn(
    node: &Node,
    settings: Arc<SimSettings>,
    schema_json: Arc<Value>,
    stalled: bool,
    shutdown: CancellationToken,
) -> NodeControl {
    let (reconnect, _) = watch::channel(0u64);
    let ctl = NodeControl {
        reconnect,
        pending: Arc::new(Mutex::new(Vec::new())),
        wake: Arc::new(tokio::sync::Notify::new()),
    };
    let (target_tx, target_rx) = watch::channel(None);
    tokio::spawn(ovsdb_task(
        node.clone(),
        settings.clone(),
        schema_json,
        ctl.clone(),
        target_tx,
        shutdown.clone(),
    ));
    tokio::spawn(openflow_task(
        node.clone(),
        settings,
        ctl.reconnect.subscribe(),
        target_rx,
        stalled,
        shutdown,
    ));
    ctl
}

async fn backoff_sleep(d: &mut Duration, max: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => return false,
        _ = tokio::time::sleep(*d) => {}
    }
    *d = (*d * 2).min(max);
    true
}

async fn ovsdb_task(
    node: Node,
    settings: Arc<SimSettings>,
    schema_json: Arc<Value>,
    ctl: NodeControl,
    target_tx: watch::Sender<Option<SocketAddr>>,
    shutdown: CancellationToken,
) {
    let mut reconnect_rx = ctl.reconnect.subscribe();
    let mut backoff = settings.reconnect_min;
    let id = node.lock().spec.system_id.clone();
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            s = TcpStream::connect(settings.ovsdb) => s,
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(node = %id, error = %e, "OVSDB connect failed");
                if !backoff_sleep(&mut backoff, settings.reconnect_max, &shutdown).await {
                    return;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        backoff = settings.reconnect_min;
        {
            let mut st = node.lock();
            st.counters.ovsdb_connects += 1;
            st.ovsdb_up = true;
            st.db.clear_monitors();
            let _ = target_tx.send(st.controller_target());
        }
        reconnect_rx.borrow_and_update();
        let end = serve_ovsdb(
            &node,
            stream,
            &schema_json,
            &ctl,
            &target_tx,
            &mut reconnect_rx,
            settings.echo_interval,
            &shutdown,
        )
        .await;
        {
            let mut st = node.lock();
            st.ovsdb_up = false;
            st.db.clear_monitors();
        }
        tracing::debug!(node = %id, reason = %end, "OVSDB connection ended");
        if shutdown.is_cancelled() {
            return;
        }
        if end != "reconnect requested"
            && !backoff_sleep(&mut backoff, settings.reconnect_max, &shutdown).await
        {
            return;
        }
    }
}

/// Serves one OVSDB connection until it ends; returns why.
// The connection's collaborators are passed separately on purpose: each is borrowed from
// the caller's reconnect loop, which outlives the connection.
#[allow(clippy::too_many_arguments)]
async fn serve_ovsdb(
    node: &Node,
    stream: TcpStream,
    schema_json: &Value,
    ctl: &NodeControl,
    target_tx: &watch::Sender<Option<SocketAddr>>,
    reconnect_rx: &mut watch::Receiver<u64>,
    probe: Duration,
    shutdown: &CancellationToken,
) -> String {
    let mut framed = Framed::new(stream, JsonCodec::new(MAX_OVSDB_FRAME));
    // ovsdb-server probes an idle manager connection (inactivity_probe) and drops it when
    // the probe goes unanswered. Without this, a connection the controller never
    // accepted (its listen backlog overflowed, so only the client side is established)
    // would wait for requests forever.
    let mut last_rx = tokio::time::Instant::now();
    let mut probed = false;
    loop {
        let deadline = last_rx + probe * if probed { 2 } else { 1 };
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return "shutdown".into(),
            _ = reconnect_rx.changed() => return "reconnect requested".into(),
            _ = tokio::time::sleep_until(deadline) => {
                if probed {
                    return "controller did not answer an echo request".into();
                }
                probed = true;
                let echo = Message::Request { id: json!("echo"), method: "echo".into(), params: json!([]) };
                if framed.send(echo).await.is_err() {
                    return "write failed".into();
                }
                continue;
            }
            _ = ctl.wake.notified() => {
                let changes = std::mem::take(&mut *ctl.pending.lock().unwrap_or_else(|e| e.into_inner()));
                let notes = node.lock().db.notifications(&changes);
                for (method, params) in notes {
                    if framed.feed(Message::Notification { method: method.into(), params }).await.is_err() {
                        return "write failed".into();
                    }
                }
                if SinkExt::<Message>::flush(&mut framed).await.is_err() {
                    return "write failed".into();
                }
                continue;
            }
            m = framed.next() => m,
        };
        let msg = match msg {
            None => return "closed by weftd".into(),
            Some(Err(e)) => return format!("read error: {e}"),
            Some(Ok(m)) => m,
        };
        last_rx = tokio::time::Instant::now();
        probed = false;
        let Message::Request { id, method, params } = msg else {
            // Responses to nothing we asked, notifications: ignore.
            continue;
        };
        // Real ovsdb-server (checked with 3.1) sends a transaction's update notification
        // before the transact reply; ovs-vswitchd's follow-up changes come after it.
        let mut before: Vec<Message> = Vec::new();
        let mut out: Vec<Message> = Vec::new();
        let result: Result<Value, Value> = match method.as_str() {
            "echo" => Ok(params),
            "list_dbs" => Ok(json!(["Open_vSwitch"])),
            "get_schema" => Ok(schema_json.clone()),
            "set_db_change_aware" => Ok(json!({})),
            "lock" | "steal" => Ok(json!({"locked": true})),
            "unlock" => Ok(json!({})),
            "monitor" | "monitor_cond" => {
                let mut st = node.lock();
                st.db
                    .monitor(&params, method == "monitor_cond")
                    .map_err(|e| e.to_json())
            }
            "monitor_cancel" => {
                let mut st = node.lock();
                let mid = params.get(0).cloned().unwrap_or(Value::Null);
                if st.db.monitor_cancel(&mid) {
                    Ok(json!({}))
                } else {
                    Err(json!({"error": "unknown monitor"}))
                }
            }
            "transact" => {
                let mut st = node.lock();
                let (reply, changes) = st.db.transact(&params);
                st.counters.transactions += 1;
                if changes.is_empty()
                    && reply
                        .as_array()
                        .is_some_and(|r| r.iter().any(|v| v.get("error").is_some()))
                {
                    st.counters.failed_transactions += 1;
                }
                for (m, p) in st.db.notifications(&changes) {
                    before.push(Message::Notification {
                        method: m.into(),
                        params: p,
                    });
                }
                let mut notes = Vec::new();
                if !changes.is_empty() {
                    let more = st.vswitchd_pass();
                    notes.extend(st.db.notifications(&more));
                    st.port_names = st.ports();
                    target_tx.send_if_modified(|t| {
                        let new = st.controller_target();
                        let changed = *t != new;
                        *t = new;
                        changed
                    });
                }
                for (m, p) in notes {
                    out.push(Message::Notification {
                        method: m.into(),
                        params: p,
                    });
                }
                Ok(reply)
            }
            other => Err(json!({"error": "unknown method", "details": other})),
        };
        for m in before {
            if framed.feed(m).await.is_err() {
                return "write failed".into();
            }
        }
        let response = Message::Response {
            id,
            result: result.map_err(|raw| ovsdb::RpcError::from_json(&raw)),
        };
        if framed.feed(response).await.is_err() {
            return "write failed".into();
        }
        for m in out {
            if framed.feed(m).await.is_err() {
                return "write failed".into();
            }
        }
        if SinkExt::<Message>::flush(&mut framed).await.is_err() {
            return "write failed".into();
        }
    }
}

async fn openflow_task(
    node: Node,
    settings: Arc<SimSettings>,
    mut reconnect_rx: watch::Receiver<u64>,
    mut target_rx: watch::Receiver<Option<SocketAddr>>,
    stalled: bool,
    shutdown: CancellationToken,
) {
    let id = node.lock().spec.system_id.clone();
    let mut backoff = settings.reconnect_min;
    loop {
        // Wait for a controller to connect to.
        let target = loop {
            let t = settings.openflow.or(*target_rx.borrow_and_update());
            if let Some(t) = t {
                break t;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = target_rx.changed() => if r.is_err() { return },
            }
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            s = TcpStream::connect(target) => s,
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(node = %id, %target, error = %e, "OpenFlow connect failed");
                if !backoff_sleep(&mut backoff, settings.reconnect_max, &shutdown).await {
                    return;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        backoff = settings.reconnect_min;
        node.lock().counters.openflow_connects += 1;
        reconnect_rx.borrow_and_update();
        let end = serve_openflow(
            &node,
            stream,
            &settings,
            stalled,
            &mut reconnect_rx,
            &shutdown,
        )
        .await;
        node.lock().openflow_up = false;
        tracing::debug!(node = %id, reason = %end, "OpenFlow connection ended");
        if shutdown.is_cancelled() {
            return;
        }
        if end != "reconnect requested"
            && !backoff_sleep(&mut backoff, settings.reconnect_max, &shutdown).await
        {
            return;
        }
    }
}

async fn serve_openflow(
    node: &Node,
    mut stream: TcpStream,
    settings: &SimSettings,
    stalled: bool,
    reconnect_rx: &mut watch::Receiver<u64>,
    shutdown: &CancellationToken,
) -> String {
    let (dpid, ports) = {
        let st = node.lock();
        (st.spec.datapath_id, st.port_names.clone())
    };
    let mut sw = Switch::new(dpid, Instant::now(), settings.echo_interval);
    sw.ports = ports;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut wbuf = BytesMut::with_capacity(64 * 1024);
    let end = loop {
        // Flush what the switch wants to say.
        while let Some(m) = sw.poll_output() {
            if let Err(e) = m.encode(&mut wbuf) {
                tracing::warn!(error = %e, "cannot encode a reply");
            }
        }
        if !wbuf.is_empty() {
            if let Err(e) = stream.write_all(&wbuf).await {
                break format!("write error: {e}");
            }
            wbuf.clear();
        }
        if let Some(why) = sw.closed() {
            break why.to_owned();
        }
        {
            let mut st = node.lock();
            st.openflow_up = sw.is_ready();
            st.switch_stats = sw.stats;
        }
        if stalled && sw.stats.flow_dumps > 0 {
            // A wedged switch: never read again, keep the socket open.
            tokio::select! {
                _ = shutdown.cancelled() => break "shutdown".into(),
                _ = reconnect_rx.changed() => break "reconnect requested".into(),
            }
        }
        let deadline = tokio::time::Instant::from_std(sw.next_timeout());
        tokio::select! {
            _ = shutdown.cancelled() => break "shutdown".into(),
            _ = reconnect_rx.changed() => break "reconnect requested".into(),
            _ = tokio::time::sleep_until(deadline) => sw.handle_timeout(Instant::now()),
            r = stream.read_buf(&mut buf) => match r {
                Ok(0) => break "closed by weftd".into(),
                Err(e) => break format!("read error: {e}"),
                Ok(_) => {
                    let now = Instant::now();
                    let mut st = node.lock();
                    let st = &mut *st;
                    let mut bad = false;
                    while let Some(len) = OfpMessage::peek_len(&buf) {
                        if len < 8 {
                            bad = true;
                            break;
                        }
                        if buf.len() < len {
                            break;
                        }
                        sw.handle_frame(&buf[..len], now, &mut st.tables);
                        buf.advance(len);
                    }
                    if bad {
                        break "bad OpenFlow frame length".into();
                    }
                }
            },
        }
    };
    let mut st = node.lock();
    st.switch_stats = sw.stats;
    st.openflow_up = false;
    end
}
