//! The difference between a VTEP database ([`VtepDb`]) and what it should hold
//! ([`DesiredVtep`]), as one transaction ([`plan`]). Rows that are right are left alone;
//! a moved VM is an update of its `Ucast_Macs_Remote.locator`, a new flood set a new
//! `Physical_Locator_Set` (sets are immutable), and locators are reused when a row with
//! the same encapsulation and IP exists (the schema makes them unique and immutable).
//!
//! Ownership: a `Logical_Switch` is Weft's when its `other_config:weft-switch` names a
//! Weft switch (or, once, when its name is a bound switch's name: it is adopted and
//! marked). Weft is the VTEP's controller, so every `Ucast_Macs_Remote` and
//! `Mcast_Macs_Remote` row of its logical switches is its own to correct. Removing a
//! logical switch takes every MAC row referring to it along (the VTEP's local ones
//! included: they refer to it and would keep it alive), and its VLAN bindings.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ovsdb::{Atom, Condition, Datum, Row, Transaction, Uuid};

use super::desired::{DesiredSwitch, DesiredVtep};
use super::rows::*;

/// A row reference in a transaction: an existing row or one inserted earlier in it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum RowId {
    Existing(Uuid),
    New(String),
}

impl RowId {
    fn atom(&self) -> Atom {
        match self {
            RowId::Existing(u) => Atom::Uuid(*u),
            RowId::New(n) => Atom::NamedUuid(n.clone()),
        }
    }
}

/// What [`plan`] decided.
#[derive(Debug, Default)]
pub struct Plan {
    /// None when the database is already right.
    pub txn: Option<Transaction>,
    /// One line per change, for the log.
    pub summary: Vec<String>,
    /// Bindings whose VTEP or port the database does not show (yet).
    pub pending: Vec<String>,
}

struct Builder<'a> {
    db: &'a VtepDb,
    txn: Transaction,
    summary: Vec<String>,
    locators: BTreeMap<IpAddr, RowId>,
}

impl Builder<'_> {
    fn delete(&mut self, table: &str, uuid: Uuid, why: String) {
        self.txn.delete(table, vec![Condition::uuid(uuid)]);
        self.summary.push(why);
    }

    fn update(&mut self, table: &str, uuid: Uuid, row: Row, why: String) {
        self.txn.update(table, vec![Condition::uuid(uuid)], row);
        self.summary.push(why);
    }

    fn locator(&mut self, ip: IpAddr) -> RowId {
        if let Some(id) = self.locators.get(&ip) {
            return id.clone();
        }
        let id = match self.db.locator_to(&ip) {
            Some(l) => RowId::Existing(l.uuid),
            None => {
                let row = Row::from([
                    ("encapsulation_type".into(), Datum::scalar(VXLAN_OVER_IPV4)),
                    ("dst_ip".into(), Datum::scalar(ip.to_string())),
                ]);
                self.summary.push(format!("add locator {ip}"));
                RowId::New(self.txn.insert(PHYSICAL_LOCATOR, row).0)
            }
        };
        self.locators.insert(ip, id.clone());
        id
    }

    /// The dst_ip of a locator row Weft could have written (vxlan, no tunnel key).
    fn locator_ip(&self, uuid: &Uuid) -> Option<IpAddr> {
        let l = self.db.locators.get(uuid)?;
        if l.encapsulation != VXLAN_OVER_IPV4 || l.tunnel_key.is_some() {
            return None;
        }
        l.dst_ip.parse().ok()
    }
}

/// The transaction that makes `db` hold `want`.
pub fn plan(db: &VtepDb, want: &DesiredVtep) -> Plan {
    let mut b = Builder {
        db,
        txn: Transaction::new(DATABASE),
        summary: Vec::new(),
        locators: BTreeMap::new(),
    };
    // Which existing Logical_Switch row serves each wanted switch.
    let mut chosen: BTreeMap<Uuid, RowId> = BTreeMap::new();
    let mut taken: BTreeSet<Uuid> = BTreeSet::new();
    for ds in want.switches.values() {
        let marker = ds.switch.to_string();
        let row = db
            .logical_switches
            .values()
            .find(|ls| ls.weft_switch.as_deref() == Some(marker.as_str()))
            .or_else(|| db.logical_switches.values().find(|ls| ls.name == ds.name));
        let id = match row {
            Some(ls) => {
                taken.insert(ls.uuid);
                if ls.name != ds.name
                    || ls.tunnel_key != Some(i64::from(ds.vni))
                    || ls.weft_switch.as_deref() != Some(marker.as_str())
                {
                    b.update(
                        LOGICAL_SWITCH,
                        ls.uuid,
                        logical_switch_row(ds),
                        format!("update logical switch {}", ds.name),
                    );
                }
                RowId::Existing(ls.uuid)
            }
            None => {
                b.summary
                    .push(format!("add logical switch {} (vni {})", ds.name, ds.vni));
                RowId::New(b.txn.insert(LOGICAL_SWITCH, logical_switch_row(ds)).0)
            }
        };
        chosen.insert(ds.switch, id);
    }
    // Weft's logical switches no longer bound anywhere: gone, with what refers to them.
    let unwanted: BTreeSet<Uuid> = db
        .logical_switches
        .values()
        .filter(|ls| ls.weft_switch.is_some() && !taken.contains(&ls.uuid))
        .map(|ls| ls.uuid)
        .collect();
    for ls in &unwanted {
        for m in db.ucast_remote.iter().filter(|m| m.logical_switch == *ls) {
            b.delete(
                UCAST_MACS_REMOTE,
                m.uuid,
                format!("remove remote {}", m.mac),
            );
        }
        for m in db.ucast_local.iter().filter(|m| m.logical_switch == *ls) {
            b.delete(UCAST_MACS_LOCAL, m.uuid, format!("remove local {}", m.mac));
        }
        for m in db.mcast_remote.iter().filter(|m| m.logical_switch == *ls) {
            b.delete(
                MCAST_MACS_REMOTE,
                m.uuid,
                format!("remove remote {}", m.mac),
            );
        }
        for (row, _) in db.mcast_local.iter().filter(|(_, l)| l == ls) {
            b.delete(MCAST_MACS_LOCAL, *row, "remove local mcast".into());
        }
        let name = db.logical_switches.get(ls).map_or("?", |l| l.name.as_str());
        b.delete(LOGICAL_SWITCH, *ls, format!("remove logical switch {name}"));
    }
    for ds in want.switches.values() {
        let Some(ls) = chosen.get(&ds.switch).cloned() else {
            continue;
        };
        ucast_remote(&mut b, ds, &ls);
        mcast_remote(&mut b, ds, &ls);
    }
    let pending = vlan_bindings(&mut b, want, &chosen, &taken, &unwanted);
    let Builder { txn, summary, .. } = b;
    Plan {
        txn: (!txn.is_empty()).then_some(txn),
        summary,
        pending,
    }
}

fn logical_switch_row(ds: &DesiredSwitch) -> Row {
    Row::from([
        ("name".into(), Datum::scalar(ds.name.as_str())),
        ("tunnel_key".into(), Datum::scalar(i64::from(ds.vni))),
        // The VTEP replicates what it floods to every hypervisor itself.
        ("replication_mode".into(), Datum::scalar("source_node")),
        (
            "other_config".into(),
            Datum::map([(KEY_WEFT_SWITCH, ds.switch.to_string())]),
        ),
    ])
}

fn ucast_remote(b: &mut Builder<'_>, ds: &DesiredSwitch, ls: &RowId) {
    let mut have: BTreeMap<_, Vec<&UcastMac>> = BTreeMap::new();
    if let RowId::Existing(u) = ls {
        for m in b.db.ucast_remote.iter().filter(|m| m.logical_switch == *u) {
            have.entry(m.mac).or_default().push(m);
        }
    }
    for (mac, rows) in &have {
        if !ds.remote.contains_key(mac) {
            for r in rows {
                b.delete(
                    UCAST_MACS_REMOTE,
                    r.uuid,
                    format!("remove remote {mac} from {}", ds.name),
                );
            }
        }
    }
    for (mac, rm) in &ds.remote {
        let rows = have.get(mac).map(Vec::as_slice).unwrap_or_default();
        let right = rows
            .iter()
            .position(|r| b.locator_ip(&r.locator) == Some(rm.locator) && r.ipaddr == rm.ipaddr);
        let keep = right.or(if rows.is_empty() { None } else { Some(0) });
        for (i, r) in rows.iter().enumerate() {
            if Some(i) != keep {
                b.delete(
                    UCAST_MACS_REMOTE,
                    r.uuid,
                    format!("remove duplicate remote {mac}"),
                );
            }
        }
        if right.is_some() {
            continue;
        }
        let loc = b.locator(rm.locator).atom();
        match keep.and_then(|i| rows.get(i)) {
            Some(r) => {
                let row = Row::from([
                    ("locator".into(), Datum::scalar(loc)),
                    ("ipaddr".into(), Datum::scalar(rm.ipaddr.as_str())),
                ]);
                b.update(
                    UCAST_MACS_REMOTE,
                    r.uuid,
                    row,
                    format!("move remote {mac} in {} to {}", ds.name, rm.locator),
                );
            }
            None => {
                let row = Row::from([
                    ("MAC".into(), Datum::scalar(mac.to_string())),
                    ("logical_switch".into(), Datum::scalar(ls.atom())),
                    ("locator".into(), Datum::scalar(loc)),
                    ("ipaddr".into(), Datum::scalar(rm.ipaddr.as_str())),
                ]);
                b.txn.insert(UCAST_MACS_REMOTE, row);
                b.summary
                    .push(format!("add remote {mac} in {} at {}", ds.name, rm.locator));
            }
        }
    }
}

fn mcast_remote(b: &mut Builder<'_>, ds: &DesiredSwitch, ls: &RowId) {
    let rows: Vec<&McastMac> = match ls {
        RowId::Existing(u) => {
            b.db.mcast_remote
                .iter()
                .filter(|m| m.logical_switch == *u)
                .collect()
        }
        RowId::New(_) => Vec::new(),
    };
    let ips_of = |b: &Builder<'_>, set: &Uuid| -> Option<BTreeSet<IpAddr>> {
        let locs = b.db.locator_sets.get(set)?;
        locs.iter().map(|l| b.locator_ip(l)).collect()
    };
    let mut keep = None;
    for (i, m) in rows.iter().enumerate() {
        if m.mac == UNKNOWN_DST && !ds.flood.is_empty() && keep.is_none() {
            keep = Some(i);
        } else {
            b.delete(
                MCAST_MACS_REMOTE,
                m.uuid,
                format!("remove remote {} from {}", m.mac, ds.name),
            );
        }
    }
    if ds.flood.is_empty() {
        return;
    }
    let current = keep.and_then(|i| rows.get(i));
    if let Some(m) = current
        && ips_of(b, &m.locator_set).as_ref() == Some(&ds.flood)
    {
        return;
    }
    let locs: Vec<Atom> = ds.flood.iter().map(|ip| b.locator(*ip).atom()).collect();
    let set = b.txn.insert(
        PHYSICAL_LOCATOR_SET,
        Row::from([("locators".into(), Datum::set(locs))]),
    );
    let flood: Vec<String> = ds.flood.iter().map(ToString::to_string).collect();
    match current {
        Some(m) => b.update(
            MCAST_MACS_REMOTE,
            m.uuid,
            Row::from([("locator_set".into(), set.datum())]),
            format!("flood {} to {}", ds.name, flood.join(",")),
        ),
        None => {
            let row = Row::from([
                ("MAC".into(), Datum::scalar(UNKNOWN_DST)),
                ("logical_switch".into(), Datum::scalar(ls.atom())),
                ("locator_set".into(), set.datum()),
            ]);
            b.txn.insert(MCAST_MACS_REMOTE, row);
            b.summary
                .push(format!("flood {} to {}", ds.name, flood.join(",")));
        }
    }
}

/// Sets each port's `vlan_bindings`: Weft's bindings in, Weft's stale ones out, others'
/// (towards logical switches Weft does not own, on VLANs Weft does not bind) kept.
fn vlan_bindings(
    b: &mut Builder<'_>,
    want: &DesiredVtep,
    chosen: &BTreeMap<Uuid, RowId>,
    owned: &BTreeSet<Uuid>,
    unwanted: &BTreeSet<Uuid>,
) -> Vec<String> {
    let mut pending = Vec::new();
    for (vtep, ports) in &want.bindings {
        let Some(ps) = b.db.switch_named(vtep) else {
            pending.push(format!("{vtep}: no such physical switch"));
            continue;
        };
        for port in ports.keys() {
            if b.db.port_of(ps, port).is_none() {
                pending.push(format!("{vtep} port {port}: no such port"));
            }
        }
    }
    let db = b.db;
    for ps in db
        .switches
        .iter()
        .filter(|ps| want.vteps.contains(&ps.name))
    {
        let wanted = want.bindings.get(&ps.name);
        for port in ps.ports.iter().filter_map(|u| db.ports.get(u)) {
            let mine = wanted.and_then(|w| w.get(&port.name));
            let mut next: BTreeMap<u16, RowId> = port
                .vlan_bindings
                .iter()
                .filter(|(vlan, ls)| {
                    let weft = owned.contains(ls) || unwanted.contains(ls);
                    !weft && !mine.is_some_and(|m| m.contains_key(vlan))
                })
                .map(|(vlan, ls)| (*vlan, RowId::Existing(*ls)))
                .collect();
            for (vlan, sw) in mine.into_iter().flatten() {
                if let Some(ls) = chosen.get(sw) {
                    next.insert(*vlan, ls.clone());
                }
            }
            let current: BTreeMap<u16, RowId> = port
                .vlan_bindings
                .iter()
                .map(|(v, ls)| (*v, RowId::Existing(*ls)))
                .collect();
            if next == current {
                continue;
            }
            let map = Datum::map(next.iter().map(|(v, ls)| (i64::from(*v), ls.atom())));
            b.update(
                PHYSICAL_PORT,
                port.uuid,
                Row::from([("vlan_bindings".into(), map)]),
                format!(
                    "bind {} port {}: vlans {:?}",
                    ps.name,
                    port.name,
                    next.keys().collect::<Vec<_>>()
                ),
            );
        }
    }
    pending
}
