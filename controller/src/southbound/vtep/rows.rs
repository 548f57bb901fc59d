//! The rows of a VTEP's `hardware_vtep` database that Weft reads, decoded from the
//! monitor [`Replica`] into plain types ([`VtepDb`]). A row the VTEP sends in a shape the
//! schema does not allow (a missing column, a wrong type, a MAC that is not one) is left
//! out with a [`RowError`] naming it: nothing a VTEP sends can stop the session.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ovsdb::{Atom, Datum, MonitorRequest, Replica, Row, Uuid};

use crate::model::MacAddr;

pub const DATABASE: &str = "hardware_vtep";
pub const PHYSICAL_SWITCH: &str = "Physical_Switch";
pub const PHYSICAL_PORT: &str = "Physical_Port";
pub const LOGICAL_SWITCH: &str = "Logical_Switch";
pub const UCAST_MACS_LOCAL: &str = "Ucast_Macs_Local";
pub const UCAST_MACS_REMOTE: &str = "Ucast_Macs_Remote";
pub const MCAST_MACS_REMOTE: &str = "Mcast_Macs_Remote";
pub const MCAST_MACS_LOCAL: &str = "Mcast_Macs_Local";
pub const PHYSICAL_LOCATOR: &str = "Physical_Locator";
pub const PHYSICAL_LOCATOR_SET: &str = "Physical_Locator_Set";
/// The only encapsulation the schema knows.
pub const VXLAN_OVER_IPV4: &str = "vxlan_over_ipv4";
/// `Mcast_Macs_Remote.MAC` for broadcast and unknown unicast.
pub const UNKNOWN_DST: &str = "unknown-dst";
/// `Logical_Switch.other_config` key marking the rows Weft owns: the Weft switch id.
pub const KEY_WEFT_SWITCH: &str = "weft-switch";

/// What a VTEP sent that Weft cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table} row {row}: column {column}: {problem}")]
pub struct RowError {
    pub table: &'static str,
    pub row: Uuid,
    pub column: &'static str,
    pub problem: String,
}

/// The tables and columns the session monitors.
pub fn monitor_requests() -> Vec<MonitorRequest> {
    vec![
        MonitorRequest::table(PHYSICAL_SWITCH).columns(&["name", "ports", "tunnel_ips"]),
        MonitorRequest::table(PHYSICAL_PORT).columns(&["name", "vlan_bindings"]),
        MonitorRequest::table(LOGICAL_SWITCH).columns(&["name", "tunnel_key", "other_config"]),
        MonitorRequest::table(UCAST_MACS_LOCAL).columns(&["MAC", "logical_switch", "locator"]),
        MonitorRequest::table(UCAST_MACS_REMOTE).columns(&[
            "MAC",
            "logical_switch",
            "locator",
            "ipaddr",
        ]),
        MonitorRequest::table(MCAST_MACS_REMOTE).columns(&["MAC", "logical_switch", "locator_set"]),
        MonitorRequest::table(MCAST_MACS_LOCAL).columns(&["logical_switch"]),
        MonitorRequest::table(PHYSICAL_LOCATOR).columns(&[
            "encapsulation_type",
            "dst_ip",
            "tunnel_key",
        ]),
        MonitorRequest::table(PHYSICAL_LOCATOR_SET).columns(&["locators"]),
    ]
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysicalSwitch {
    pub uuid: Uuid,
    pub name: String,
    pub ports: BTreeSet<Uuid>,
    /// As written; the ones that parse as IPs in [`Self::tunnel_ips`].
    pub tunnel_ips: Vec<IpAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysicalPort {
    pub uuid: Uuid,
    pub name: String,
    pub vlan_bindings: BTreeMap<u16, Uuid>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogicalSwitchRow {
    pub uuid: Uuid,
    pub name: String,
    pub tunnel_key: Option<i64>,
    /// `other_config:weft-switch`, when Weft wrote this row.
    pub weft_switch: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UcastMac {
    pub uuid: Uuid,
    pub mac: MacAddr,
    pub logical_switch: Uuid,
    pub locator: Uuid,
    pub ipaddr: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McastMac {
    pub uuid: Uuid,
    /// `unknown-dst` or a MAC, as written.
    pub mac: String,
    pub logical_switch: Uuid,
    pub locator_set: Uuid,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Locator {
    pub uuid: Uuid,
    pub encapsulation: String,
    pub dst_ip: String,
    pub tunnel_key: Option<i64>,
}

/// The decoded database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VtepDb {
    pub switches: Vec<PhysicalSwitch>,
    pub ports: BTreeMap<Uuid, PhysicalPort>,
    pub logical_switches: BTreeMap<Uuid, LogicalSwitchRow>,
    pub ucast_local: Vec<UcastMac>,
    pub ucast_remote: Vec<UcastMac>,
    pub mcast_remote: Vec<McastMac>,
    /// Rows of `Mcast_Macs_Local` by the logical switch they reference (they must go
    /// with a logical switch Weft deletes).
    pub mcast_local: Vec<(Uuid, Uuid)>,
    pub locators: BTreeMap<Uuid, Locator>,
    pub locator_sets: BTreeMap<Uuid, BTreeSet<Uuid>>,
}

impl VtepDb {
    /// Decodes the replica; rows that do not decode are left out and returned as errors.
    pub fn read(replica: &Replica) -> (VtepDb, Vec<RowError>) {
        let mut db = VtepDb::default();
        let mut errors = Vec::new();
        let mut each =
            |table: &'static str, f: &mut dyn FnMut(&Uuid, &Row) -> Result<(), RowError>| {
                for (uuid, row) in replica.table(table) {
                    if let Err(e) = f(uuid, row) {
                        errors.push(e);
                    }
                }
            };
        each(PHYSICAL_SWITCH, &mut |u, r| {
            let c = Cols::new(PHYSICAL_SWITCH, *u, r);
            let tunnel_ips = c
                .strings("tunnel_ips")?
                .into_iter()
                .filter_map(|s| s.parse().ok())
                .collect();
            db.switches.push(PhysicalSwitch {
                uuid: *u,
                name: c.string("name")?,
                ports: c.uuids("ports")?,
                tunnel_ips,
            });
            Ok(())
        });
        db.switches.sort_by(|a, b| a.name.cmp(&b.name));
        each(PHYSICAL_PORT, &mut |u, r| {
            let c = Cols::new(PHYSICAL_PORT, *u, r);
            let port = PhysicalPort {
                uuid: *u,
                name: c.string("name")?,
                vlan_bindings: c.vlan_map("vlan_bindings")?,
            };
            db.ports.insert(*u, port);
            Ok(())
        });
        each(LOGICAL_SWITCH, &mut |u, r| {
            let c = Cols::new(LOGICAL_SWITCH, *u, r);
            let ls = LogicalSwitchRow {
                uuid: *u,
                name: c.string("name")?,
                tunnel_key: c.opt_int("tunnel_key")?,
                weft_switch: c.map_value("other_config", KEY_WEFT_SWITCH)?,
            };
            db.logical_switches.insert(*u, ls);
            Ok(())
        });
        each(UCAST_MACS_LOCAL, &mut |u, r| {
            db.ucast_local.push(ucast(UCAST_MACS_LOCAL, *u, r)?);
            Ok(())
        });
        each(UCAST_MACS_REMOTE, &mut |u, r| {
            db.ucast_remote.push(ucast(UCAST_MACS_REMOTE, *u, r)?);
            Ok(())
        });
        each(MCAST_MACS_REMOTE, &mut |u, r| {
            let c = Cols::new(MCAST_MACS_REMOTE, *u, r);
            db.mcast_remote.push(McastMac {
                uuid: *u,
                mac: c.string("MAC")?,
                logical_switch: c.uuid("logical_switch")?,
                locator_set: c.uuid("locator_set")?,
            });
            Ok(())
        });
        each(MCAST_MACS_LOCAL, &mut |u, r| {
            let c = Cols::new(MCAST_MACS_LOCAL, *u, r);
            db.mcast_local.push((*u, c.uuid("logical_switch")?));
            Ok(())
        });
        each(PHYSICAL_LOCATOR, &mut |u, r| {
            let c = Cols::new(PHYSICAL_LOCATOR, *u, r);
            let loc = Locator {
                uuid: *u,
                encapsulation: c.string("encapsulation_type")?,
                dst_ip: c.string("dst_ip")?,
                tunnel_key: c.opt_int("tunnel_key")?,
            };
            db.locators.insert(*u, loc);
            Ok(())
        });
        each(PHYSICAL_LOCATOR_SET, &mut |u, r| {
            let c = Cols::new(PHYSICAL_LOCATOR_SET, *u, r);
            db.locator_sets.insert(*u, c.uuids("locators")?);
            Ok(())
        });
        (db, errors)
    }

    pub fn switch_named(&self, name: &str) -> Option<&PhysicalSwitch> {
        self.switches.iter().find(|s| s.name == name)
    }

    /// The port named `name` of physical switch `ps`.
    pub fn port_of(&self, ps: &PhysicalSwitch, name: &str) -> Option<&PhysicalPort> {
        ps.ports
            .iter()
            .filter_map(|u| self.ports.get(u))
            .find(|p| p.name == name)
    }

    /// The VXLAN locator towards `ip` with no per-locator tunnel key (the rows Weft
    /// writes and reuses: the schema makes them unique and immutable).
    pub fn locator_to(&self, ip: &IpAddr) -> Option<&Locator> {
        let ip = ip.to_string();
        self.locators.values().find(|l| {
            l.encapsulation == VXLAN_OVER_IPV4 && l.dst_ip == ip && l.tunnel_key.is_none()
        })
    }
}

fn ucast(table: &'static str, u: Uuid, r: &Row) -> Result<UcastMac, RowError> {
    let c = Cols::new(table, u, r);
    let raw = c.string("MAC")?;
    let mac = raw
        .parse()
        .map_err(|_| c.err("MAC", format!("{raw:?} is not a MAC")))?;
    Ok(UcastMac {
        uuid: u,
        mac,
        logical_switch: c.uuid("logical_switch")?,
        locator: c.uuid("locator")?,
        ipaddr: c.opt_string("ipaddr")?.unwrap_or_default(),
    })
}

/// Typed access to one row's columns, each failure naming the row and column.
struct Cols<'a> {
    table: &'static str,
    uuid: Uuid,
    row: &'a Row,
}

impl<'a> Cols<'a> {
    fn new(table: &'static str, uuid: Uuid, row: &'a Row) -> Self {
        Cols { table, uuid, row }
    }

    fn err(&self, column: &'static str, problem: impl Into<String>) -> RowError {
        RowError {
            table: self.table,
            row: self.uuid,
            column,
            problem: problem.into(),
        }
    }

    /// A column that may be absent (a peer that leaves out empty columns): empty.
    fn get_or_empty(&self, column: &'static str) -> &'a Datum {
        static EMPTY: std::sync::OnceLock<Datum> = std::sync::OnceLock::new();
        self.row
            .get(column)
            .unwrap_or_else(|| EMPTY.get_or_init(Datum::empty))
    }

    fn scalar(&self, column: &'static str) -> Result<Option<&'a Atom>, RowError> {
        let d = self.get_or_empty(column);
        match d.as_set() {
            Some(set) if set.len() > 1 => Err(self.err(column, "several values for one")),
            Some(set) => Ok(set.iter().next()),
            None => Err(self.err(column, "a map where a value was expected")),
        }
    }

    fn opt_string(&self, column: &'static str) -> Result<Option<String>, RowError> {
        match self.scalar(column)? {
            None => Ok(None),
            Some(a) => a
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| self.err(column, "not a string")),
        }
    }

    fn string(&self, column: &'static str) -> Result<String, RowError> {
        self.opt_string(column)?
            .ok_or_else(|| self.err(column, "empty"))
    }

    fn opt_int(&self, column: &'static str) -> Result<Option<i64>, RowError> {
        match self.scalar(column)? {
            None => Ok(None),
            Some(a) => a
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.err(column, "not an integer")),
        }
    }

    fn uuid(&self, column: &'static str) -> Result<Uuid, RowError> {
        self.scalar(column)?
            .and_then(Atom::as_uuid)
            .ok_or_else(|| self.err(column, "not a uuid"))
    }

    fn uuids(&self, column: &'static str) -> Result<BTreeSet<Uuid>, RowError> {
        let set = self
            .get_or_empty(column)
            .as_set()
            .ok_or_else(|| self.err(column, "not a set"))?;
        set.iter()
            .map(|a| a.as_uuid().ok_or_else(|| self.err(column, "not a uuid")))
            .collect()
    }

    fn strings(&self, column: &'static str) -> Result<Vec<String>, RowError> {
        let set = self
            .get_or_empty(column)
            .as_set()
            .ok_or_else(|| self.err(column, "not a set"))?;
        set.iter()
            .map(|a| {
                a.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| self.err(column, "not a string"))
            })
            .collect()
    }

    fn vlan_map(&self, column: &'static str) -> Result<BTreeMap<u16, Uuid>, RowError> {
        let d = self.get_or_empty(column);
        if d.is_empty() {
            return Ok(BTreeMap::new());
        }
        let map = d.as_map().ok_or_else(|| self.err(column, "not a map"))?;
        map.iter()
            .map(|(k, v)| {
                let vlan = k
                    .as_i64()
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| *n <= crate::model::VTEP_VLAN_MAX)
                    .ok_or_else(|| self.err(column, format!("bad VLAN {k:?}")))?;
                let ls = v.as_uuid().ok_or_else(|| self.err(column, "not a uuid"))?;
                Ok((vlan, ls))
            })
            .collect()
    }

    fn map_value(&self, column: &'static str, key: &str) -> Result<Option<String>, RowError> {
        let d = self.get_or_empty(column);
        if d.is_empty() {
            return Ok(None);
        }
        let map = d.as_map().ok_or_else(|| self.err(column, "not a map"))?;
        Ok(map
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .and_then(|(_, v)| v.as_str().map(str::to_string)))
    }
}
