//! What a node holds ([`NodeState`]: its database, flow tables, counters and connection
//! flags) and the handle the tasks and the bench share it through ([`Node`]).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use ovsdb::{Atom, DatabaseSchema, Datum, Row, Uuid};

use super::{NodeControl, NodeSpec, OFPP_LOCAL};
use crate::db::Database;
use crate::switch::{ConnId, SharedRoles, SwitchStats, Tables};

/// One OpenFlow connection of the node's bridge, to one controller target.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenFlowConn {
    /// Handshake done and connected.
    pub up: bool,
    /// Its id in the bridge's roles (`NodeState::roles`).
    pub conn: ConnId,
    /// Its counters since it connected.
    pub stats: SwitchStats,
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
    /// The sum of `openflow`'s counters (with one controller: its latest connection's).
    pub switch_stats: SwitchStats,
    /// True while some OpenFlow connection is up, its handshake done.
    pub openflow_up: bool,
    /// True while some OVSDB connection is up.
    pub ovsdb_up: bool,
    /// The OVSDB sessions connected now (see `ovsdb_session`).
    pub ovsdb_sessions: BTreeSet<u64>,
    /// Each controller target's latest OpenFlow connection.
    pub openflow: BTreeMap<SocketAddr, OpenFlowConn>,
    /// The bridge's controller roles, shared by its OpenFlow connections.
    pub roles: SharedRoles,
    /// Numbers the database's committed changes (see `control::Published`).
    pub change_seq: u64,
    /// ofport → interface name on br-int, for PORT_DESC.
    pub port_names: BTreeMap<u32, String>,
    /// [`NodeState::all_installed`] at a stamp of the database's writes. The bench polls
    /// it on every node ten times a second; reading a thousand tunnels' rows each time
    /// took a tenth of the simulator's CPU at a thousand nodes' cold start, on the cores
    /// weftd is measured on.
    all_installed_at: Cell<Option<(u64, bool)>>,
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

    /// Records an OpenFlow connection's state and refreshes the node's totals.
    pub(super) fn record_openflow(&mut self, target: SocketAddr, conn: OpenFlowConn) {
        self.openflow.insert(target, conn);
        self.openflow_up = self.openflow.values().any(|c| c.up);
        let mut sum = SwitchStats::default();
        for c in self.openflow.values() {
            let s = &c.stats;
            sum.flow_mods += s.flow_mods;
            sum.group_mods += s.group_mods;
            sum.bundles_committed += s.bundles_committed;
            sum.bundles_failed += s.bundles_failed;
            sum.barriers += s.barriers;
            sum.errors_sent += s.errors_sent;
            sum.flow_dumps += s.flow_dumps;
            sum.slave_refusals += s.slave_refusals;
        }
        self.switch_stats = sum;
    }

    /// The controller target whose connection is master now, and that connection.
    pub fn master(&self) -> Option<(SocketAddr, OpenFlowConn)> {
        let master = self
            .roles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .master()?;
        self.openflow
            .iter()
            .find(|(_, c)| c.up && c.conn == master)
            .map(|(t, c)| (*t, *c))
    }

    /// Whether every VM interface carries `weft-installed=true`.
    pub fn all_installed(&self) -> bool {
        let writes = self.db.writes();
        if let Some((at, all)) = self.all_installed_at.get()
            && at == writes
        {
            return all;
        }
        let m = self.installed();
        let all = !m.is_empty() && m.values().all(|v| *v);
        self.all_installed_at.set(Some((writes, all)));
        all
    }

    /// Whether the node resynced after a reconnect storm: new OVSDB and OpenFlow sessions
    /// since `connects` (`(ovsdb_connects, openflow_connects)` read before the storm),
    /// both up, its flows dumped, and every VIF marked installed again.
    pub fn resynced_since(&self, connects: (u64, u64)) -> bool {
        self.counters.ovsdb_connects > connects.0
            && self.counters.openflow_connects > connects.1
            && self.ovsdb_up
            && self.openflow_up
            && self.switch_stats.flow_dumps > 0
            && self.all_installed()
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
            bridge_mappings: Default::default(),
            patches: Default::default(),
        }
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
                ovsdb_sessions: BTreeSet::new(),
                openflow: BTreeMap::new(),
                roles: SharedRoles::default(),
                change_seq: 0,
                port_names: BTreeMap::new(),
                all_installed_at: Cell::new(None),
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
        notify.publish(&mut st, 0, changes);
        ofport
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::db::vswitch_schema;

    fn mark(st: &mut NodeState, iface_id: &str, installed: &str) {
        let (reply, changes) = st.db.transact(&json!(["Open_vSwitch",
            {"op": "mutate", "table": "Interface",
             "where": [["external_ids", "includes", ["map", [["iface-id", iface_id]]]]],
             "mutations": [["external_ids", "delete", ["set", ["weft-installed"]]],
                           ["external_ids", "insert", ["map", [["weft-installed", installed]]]]]}]));
        assert_eq!(changes.len(), 1, "{reply}");
    }

    /// The kept answer follows every write, as reading the rows again would.
    #[test]
    fn all_installed_follows_the_database() {
        let spec = NodeSpec {
            system_id: "n".into(),
            encap_ip: "192.0.2.1".parse().unwrap(),
            datapath_id: 1,
            vifs: vec![
                ("vm1".into(), "p1".into(), "02:00:00:00:00:01".into()),
                ("vm2".into(), "p2".into(), "02:00:00:00:00:02".into()),
            ],
        };
        let node = Node::new(spec, vswitch_schema());
        let mut st = node.lock();
        assert!(!st.all_installed());
        mark(&mut st, "p1", "true");
        assert!(!st.all_installed());
        assert!(!st.all_installed(), "asked twice without a write");
        mark(&mut st, "p2", "true");
        assert!(st.all_installed());
        assert!(st.all_installed(), "asked twice without a write");
        mark(&mut st, "p1", "false");
        assert!(!st.all_installed());
        // A database put in its place is read afresh.
        st.db = Database::new(vswitch_schema());
        assert!(!st.all_installed(), "no VIF at all");
    }
}
