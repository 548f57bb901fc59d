//! Observed hardware VTEPs: what each VTEP's `hardware_vtep` session reports (connected or
//! not, its tunnel IPs, its physical ports and their VLAN bindings, and the MACs it learned
//! locally per logical switch), the one owner of those facts, as
//! [`TransportNodes`](crate::topology::TransportNodes) is for hypervisors.
//!
//! The session (`southbound::vtep`) writes it with [`HardwareVteps::report`] and
//! [`HardwareVteps::disconnected`], which emit `vtep_connected`, `vtep_disconnected`,
//! `vtep_mac_learned` and `vtep_mac_aged`. The API reads [`HardwareVteps::get`] and
//! [`HardwareVteps::list`]; the pipeline compiler reads [`HardwareVteps::endpoints`] (or
//! watches [`HardwareVteps::watch`]) to reach the MACs behind each VTEP.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::events::Event;
use crate::model::MacAddr;

/// One VTEP as its session last saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ObservedVtep {
    /// `Physical_Switch.name`.
    pub name: String,
    pub connected: bool,
    /// `Physical_Switch.tunnel_ips` that parse as IP addresses, in order.
    pub tunnel_ips: Vec<IpAddr>,
    /// `Physical_Port.name` -> its `vlan_bindings` (VLAN -> `Logical_Switch.name`).
    pub ports: BTreeMap<String, BTreeMap<u16, String>>,
    /// Weft switch bound on one of the VTEP's ports -> the MACs the VTEP learned behind
    /// its ports (`Ucast_Macs_Local`) in that switch's `Logical_Switch` (empty until it
    /// learns one). Logical switches Weft does not know, and switches no longer bound
    /// (their MACs may linger until they age), are left out.
    pub local_macs: BTreeMap<Uuid, BTreeSet<MacAddr>>,
}

impl ObservedVtep {
    /// Where hypervisors send this VTEP's traffic: its first tunnel IP.
    pub fn tunnel_ip(&self) -> Option<IpAddr> {
        self.tunnel_ips.first().copied()
    }
}

/// A hardware VTEP as one logical switch's hypervisors must reach it.
///
/// The pipeline consumes this (the hypervisor side of hardware VTEPs): every hypervisor
/// with a port on the switch needs a VXLAN tunnel to `tunnel_ip` (VXLAN whatever the
/// hypervisors' own encapsulation, since a VTEP speaks only `vxlan_over_ipv4`), unicast to
/// each of `macs` sent there with `tun_id` = the switch's VNI, and a flood bucket towards
/// it (the VTEP's `Logical_Switch` is written with `replication_mode=source_node`, so
/// what it floods reaches every hypervisor itself and needs no re-flooding).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HardwareVtepEndpoint {
    /// The VTEP's name (`Physical_Switch.name`).
    pub vtep: String,
    pub tunnel_ip: IpAddr,
    /// MACs learned behind the VTEP in this switch, sorted.
    pub macs: Vec<MacAddr>,
}

/// Per Weft switch, the hardware VTEPs its hypervisors reach (see [`endpoints`]).
pub type VtepEndpoints = BTreeMap<Uuid, Vec<HardwareVtepEndpoint>>;

/// Every VTEP's view, by name.
pub type VtepMap = BTreeMap<String, Arc<ObservedVtep>>;

/// The registry of observed VTEPs; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct HardwareVteps {
    view: watch::Sender<Arc<VtepMap>>,
    events: broadcast::Sender<Event>,
    /// VTEP name -> the session that speaks for it. The first session to see a VTEP keeps
    /// it while it lives; another one for the same name (a VTEP that reconnected before
    /// its old connection was found dead, or one reachable two ways) neither publishes
    /// nor writes until the first ends, so the two never fight over the database and the
    /// old one's end does not mark the live VTEP disconnected.
    owners: Mutex<HashMap<String, u64>>,
}

impl HardwareVteps {
    pub fn new(events: broadcast::Sender<Event>) -> Self {
        HardwareVteps {
            view: watch::channel(Arc::new(VtepMap::new())).0,
            events,
            owners: Mutex::new(HashMap::new()),
        }
    }

    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `session` speaks for VTEP `name` (claiming it when nobody does).
    pub fn claim(&self, name: &str, session: u64) -> bool {
        *self.owners().entry(name.to_string()).or_insert(session) == session
    }

    /// `session` ends or no longer sees `name`: the VTEP is shown disconnected, unless
    /// another session speaks for it.
    pub fn release(&self, name: &str, session: u64) {
        let mine = {
            let mut owners = self.owners();
            let mine = owners.get(name) == Some(&session);
            if mine {
                owners.remove(name);
            }
            mine
        };
        if mine {
            self.disconnected(name);
        }
    }

    /// Records what a session sees now and emits the events for what changed since.
    pub fn report(&self, vtep: ObservedVtep) {
        let mut events = Vec::new();
        self.view.send_if_modified(|map| {
            let old = map.get(&vtep.name).cloned();
            if old.as_deref() == Some(&vtep) {
                return false;
            }
            events = diff_events(old.as_deref(), &vtep);
            let mut next = (**map).clone();
            next.insert(vtep.name.clone(), Arc::new(vtep));
            *map = Arc::new(next);
            true
        });
        for e in events {
            let _ = self.events.send(e);
        }
    }

    /// The VTEP's session ended: shown disconnected, its learned MACs dropped (nothing
    /// vouches for them any more), its ports as last seen.
    pub fn disconnected(&self, name: &str) {
        let Some(old) = self.get(name) else {
            return;
        };
        self.report(ObservedVtep {
            connected: false,
            local_macs: BTreeMap::new(),
            ..(*old).clone()
        });
    }

    pub fn get(&self, name: &str) -> Option<Arc<ObservedVtep>> {
        self.view.borrow().get(name).cloned()
    }

    pub fn list(&self) -> Arc<VtepMap> {
        self.view.borrow().clone()
    }

    /// Changes whenever any VTEP's view does.
    pub fn watch(&self) -> watch::Receiver<Arc<VtepMap>> {
        self.view.subscribe()
    }

    /// Per Weft switch, the connected VTEPs that have it bound (see
    /// [`HardwareVtepEndpoint`]).
    pub fn endpoints(&self) -> BTreeMap<Uuid, Vec<HardwareVtepEndpoint>> {
        endpoints(&self.view.borrow())
    }
}

/// Per Weft switch, the connected VTEPs with a tunnel IP that have it bound (with the MACs
/// they learned in it, possibly none).
pub fn endpoints(map: &VtepMap) -> BTreeMap<Uuid, Vec<HardwareVtepEndpoint>> {
    let mut out: BTreeMap<Uuid, Vec<HardwareVtepEndpoint>> = BTreeMap::new();
    for v in map.values().filter(|v| v.connected) {
        let Some(tunnel_ip) = v.tunnel_ip() else {
            continue;
        };
        for (switch, macs) in &v.local_macs {
            out.entry(*switch).or_default().push(HardwareVtepEndpoint {
                vtep: v.name.clone(),
                tunnel_ip,
                macs: macs.iter().copied().collect(),
            });
        }
    }
    out
}

fn diff_events(old: Option<&ObservedVtep>, new: &ObservedVtep) -> Vec<Event> {
    let mut events = Vec::new();
    let was_connected = old.is_some_and(|o| o.connected);
    if new.connected && !was_connected {
        events.push(Event::VtepConnected {
            vtep: new.name.clone(),
        });
    }
    let empty = BTreeMap::new();
    let old_macs = old.map_or(&empty, |o| &o.local_macs);
    let none = BTreeSet::new();
    for (switch, macs) in &new.local_macs {
        let before = old_macs.get(switch).unwrap_or(&none);
        for mac in macs.difference(before) {
            events.push(Event::VtepMacLearned {
                vtep: new.name.clone(),
                switch: *switch,
                mac: *mac,
            });
        }
    }
    for (switch, macs) in old_macs {
        let after = new.local_macs.get(switch).unwrap_or(&none);
        for mac in macs.difference(after) {
            events.push(Event::VtepMacAged {
                vtep: new.name.clone(),
                switch: *switch,
                mac: *mac,
            });
        }
    }
    if was_connected && !new.connected {
        events.push(Event::VtepDisconnected {
            vtep: new.name.clone(),
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(last: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0xbb, last])
    }

    #[test]
    fn events_and_endpoints_follow_reports() {
        let (tx, mut rx) = broadcast::channel(16);
        let reg = HardwareVteps::new(tx);
        let sw = Uuid::new_v4();
        let mut v = ObservedVtep {
            name: "br0".into(),
            connected: true,
            tunnel_ips: vec!["10.99.1.100".parse().unwrap()],
            ..Default::default()
        };
        v.local_macs.insert(sw, [mac(1)].into());
        reg.report(v.clone());
        assert_eq!(
            rx.try_recv().unwrap(),
            Event::VtepConnected { vtep: "br0".into() }
        );
        assert_eq!(
            rx.try_recv().unwrap(),
            Event::VtepMacLearned {
                vtep: "br0".into(),
                switch: sw,
                mac: mac(1)
            }
        );
        let eps = reg.endpoints();
        assert_eq!(eps[&sw][0].macs, vec![mac(1)]);
        assert_eq!(eps[&sw][0].tunnel_ip.to_string(), "10.99.1.100");
        // The same report again says nothing.
        reg.report(v.clone());
        assert!(rx.try_recv().is_err());
        v.local_macs.insert(sw, [mac(2)].into());
        reg.report(v);
        let got: Vec<Event> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(
            got,
            vec![
                Event::VtepMacLearned {
                    vtep: "br0".into(),
                    switch: sw,
                    mac: mac(2)
                },
                Event::VtepMacAged {
                    vtep: "br0".into(),
                    switch: sw,
                    mac: mac(1)
                },
            ]
        );
        assert!(reg.claim("br0", 1));
        assert!(!reg.claim("br0", 2), "one session per VTEP");
        reg.release("br0", 2);
        assert!(
            reg.get("br0").unwrap().connected,
            "a non-owner's end changes nothing"
        );
        reg.release("br0", 1);
        let got: Vec<Event> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(
            got.last(),
            Some(&Event::VtepDisconnected { vtep: "br0".into() })
        );
        assert!(reg.endpoints().is_empty());
        assert!(!reg.get("br0").unwrap().connected);
    }
}
