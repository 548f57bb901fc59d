//! The ovs-vswitchd behaviour weftd relies on, read from and written to the node's own
//! database: a datapath_id for every bridge, an ofport for every new interface, the
//! ofport names for PORT_DESC, and br-int's Controller targets to dial.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use ovsdb::{Atom, Datum, Row, Uuid};

use super::{NodeState, OFPP_LOCAL};
use crate::db::RowChange;

impl NodeState {
    /// The OpenFlow targets of br-int's Controller rows that are `tcp:IP:PORT` (in any
    /// spelling vswitchd reads), sorted.
    pub(super) fn controller_targets(&self) -> Vec<SocketAddr> {
        let Some((_, br)) = self.db.table("Bridge").find(|(_, r)| {
            self.db
                .get("Bridge", r, "name")
                .as_scalar()
                .and_then(Atom::as_str)
                == Some("br-int")
        }) else {
            return Vec::new();
        };
        let ctl = self.db.get("Bridge", br, "controller");
        let mut out: Vec<SocketAddr> = ctl
            .as_set()
            .into_iter()
            .flat_map(|s| s.iter())
            .filter_map(Atom::as_uuid)
            .filter_map(|uuid| {
                let row = self.db.row("Controller", &uuid)?;
                let target = self.db.get("Controller", row, "target");
                let target = target.as_scalar()?.as_str()?;
                ovsdb::vswitch::endpoint(target, ovsdb::vswitch::DEFAULT_CONTROLLER_PORT)
                    .filter(|e| !e.tls)
                    .map(|e| e.addr)
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// What ovs-vswitchd does after a database change: a datapath_id for every bridge,
    /// an ofport for every new interface. Returns the changes it made.
    pub(super) fn vswitchd_pass(&mut self) -> Vec<RowChange> {
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
    pub(super) fn ports(&self) -> BTreeMap<u32, String> {
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
