//! What one VTEP database should hold ([`DesiredVtep`]), computed from the model (which
//! `(vtep, port, vlan)` carries which switch), the bindings (where each logical port is
//! plugged) and the topology (each hypervisor's encap IP). Pure, so it is tested without
//! a VTEP.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use uuid::Uuid;

use crate::binding::Bindings;
use crate::model::{LogicalModel, MacAddr};
use crate::topology::Topology;

/// A logical port of a bound switch, as the VTEP must reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteMac {
    /// The port's first IPv4 address ("" when it has none): the schema holds one.
    pub ipaddr: String,
    /// The encap IP of the hypervisor the port is bound on.
    pub locator: IpAddr,
}

/// One bound switch, as its `Logical_Switch` and MAC tables should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredSwitch {
    pub switch: Uuid,
    /// `Logical_Switch.name`: the Weft switch's name (unique, and never renamed).
    pub name: String,
    pub vni: u32,
    pub remote: BTreeMap<MacAddr, RemoteMac>,
    /// `unknown-dst` locators: the hypervisors with ports on the switch.
    pub flood: BTreeSet<IpAddr>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredVtep {
    /// The physical switches this applies to: only their ports' bindings are touched.
    pub vteps: BTreeSet<String>,
    pub switches: BTreeMap<Uuid, DesiredSwitch>,
    /// Physical switch name -> port name -> VLAN -> Weft switch.
    pub bindings: BTreeMap<String, BTreeMap<String, BTreeMap<u16, Uuid>>>,
}

/// The desired contents of a database that serves the physical switches `vteps`.
///
/// Hypervisors with an IPv6 encap IP are left out: the schema's only encapsulation is
/// `vxlan_over_ipv4`.
pub fn desired(
    model: &LogicalModel,
    bindings: &Bindings,
    topology: &Topology,
    vteps: &BTreeSet<String>,
) -> DesiredVtep {
    let mut out = DesiredVtep {
        vteps: vteps.clone(),
        ..Default::default()
    };
    for b in model.vtep_bindings().filter(|b| vteps.contains(&b.vtep)) {
        let Some(sw) = model.switch(&b.switch) else {
            continue;
        };
        out.bindings
            .entry(b.vtep.clone())
            .or_default()
            .entry(b.port.clone())
            .or_default()
            .insert(b.vlan, sw.id);
        if out.switches.contains_key(&sw.id) {
            continue;
        }
        let mut ds = DesiredSwitch {
            switch: sw.id,
            name: sw.name.clone(),
            vni: sw.vni,
            remote: BTreeMap::new(),
            flood: BTreeSet::new(),
        };
        for port in model.ports_of_switch(&sw.id) {
            let Some(pb) = bindings.ports.get(&port.id) else {
                continue;
            };
            let Some(node) = topology.nodes.get(pb.node.as_str()) else {
                continue;
            };
            if !node.encap_ip.is_ipv4() {
                continue;
            }
            let ipaddr = port
                .ips
                .iter()
                .find(|ip| ip.is_ipv4())
                .map(ToString::to_string)
                .unwrap_or_default();
            ds.flood.insert(node.encap_ip);
            ds.remote.insert(
                port.mac,
                RemoteMac {
                    ipaddr,
                    locator: node.encap_ip,
                },
            );
        }
        out.switches.insert(sw.id, ds);
    }
    out
}
