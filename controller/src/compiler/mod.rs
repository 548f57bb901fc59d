//! The pipeline compiler: a pure function from the logical model and the observed
//! topology to what one hypervisor's integration bridge should hold (docs/pipeline.md).
//!
//! No I/O and no clocks: the same inputs always give the same [`DesiredNode`], which is
//! what lets the reconciler diff it against a switch's flow dump and lets tests check it
//! against a software flow table ([`table::FlowTable`]) without any switch.
//!
//! Flows are emitted in the form Open vSwitch reports them back in a flow-stats reply
//! (apply-actions `set_field` for metadata and registers, NXM headers in `move`, masks
//! only where partial), so a diff of a fresh dump against [`DesiredNode::flows`] is empty;
//! the OVS-backed test in `ovs_tests.rs` proves it against a real `ovs-vswitchd`.
//!
//! Which logical port each VIF is comes from [`crate::binding`]; the flows of each
//! pipeline stage come from its own module under [`stage`]; the numbers they share
//! (tables, cookies, groups) from [`ids`].
//!
//! ## Incremental compilation
//! [`compile_node`] reads only the switches the node participates in. The compiler task's
//! [`IncrementalCompiler`] diffs each new model and topology against the previous ones,
//! keeps the bindings and a switch -> member nodes index up to date from that diff, and
//! recompiles only the members of what changed. [`node_fingerprint`] summarises the same
//! inputs for one node ([`nodes_affected`] compares two snapshots with it).
//!
//! ## Wiring (compiler task, reconciler, API)
//! - Compiler task: keep one [`IncrementalCompiler`]; on every new model snapshot or
//!   topology (`Fabric::watch_topology`), `for (node, d) in ic.update(&model, &topo)`
//!   `{ channels.publish_desired(&node, Arc::new(d)) }`.
//! - Reconciler: `DesiredNode::flows` is keyed like `FlowStats::key()`/`content()`, so a
//!   dump requested with `flow_stats_request(xid, COOKIE_WEFT, COOKIE_MASK)` diffs
//!   directly; [`DesiredNode::flow_mods`]/[`DesiredNode::group_mods`] give the adds.
//! - API `trace {port, packet}`: [`trace::trace`]`(&model, &topology, None, port, &packet)`
//!   with `packet: trace::TracePacket` (serde); the [`trace::Trace`] serialises as the

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use uuid::Uuid;

use crate::binding::Bindings;
use crate::desired::{Announcement, DesiredNode, TunnelSpec, vtep_remote};
use crate::hardware_vtep::HardwareVtepEndpoint;
use crate::model::{LogicalModel, LogicalPort, LogicalSwitch};
use crate::topology::{NodeView, Topology};

pub mod ids;
mod incremental;
pub(crate) mod intern;
mod route_trace;
mod routing;
pub mod stage;
pub mod table;
pub mod trace;
pub(crate) mod tunnels_first;

#[cfg(test)]
mod flood_vtep_tests;
#[cfg(test)]
mod hardware_vtep_tests;
#[cfg(test)]
mod ovs_tests;
#[cfg(test)]
mod provider_ovs_tests;
#[cfg(test)]
mod provider_tests;
#[cfg(test)]
mod routing_tests;
#[cfg(test)]
mod tests;

pub use ids::*;
pub use incremental::{
    IncrementalCompiler, NodeFingerprint, SwitchInputs, node_fingerprint, nodes_affected,
};
pub use stage::{
    BLOCKED_MARK, OPEN_DIRECTION_MARK, OPEN_DIRECTION_PRIORITY, acl_flow_priority, acl_mark,
    link_local, port_masks,
};
use stage::{ExternalVtep, FlowBuilder, HardwareVtep};

/// Compiles the desired state of node `node` (a system-id in `topology`).
pub fn compile_node(model: &LogicalModel, topology: &Topology, node: &str) -> DesiredNode {
    compile_node_with(model, topology, &Bindings::compute(model, topology), node)
}

/// The switches `node` participates in (has a bound port of), by id.
pub fn switches_of_node(model: &LogicalModel, bindings: &Bindings, node: &str) -> BTreeSet<Uuid> {
    bindings
        .on_node(node)
        .filter_map(|(id, _)| model.port(&id).map(|p| p.switch))
        .collect()
}

/// The flood VTEPs of `sw` a node can tunnel to: not the tunnel endpoint of a hypervisor
/// in `peers` (the node itself and the switch's other nodes: their addresses are what the
/// node's compilation reads, so the incremental compiler sees any change to them) and of
/// the node's address family.
fn usable_vteps<'a>(
    peers: &'a BTreeSet<IpAddr>,
    view: &'a NodeView,
    sw: &'a LogicalSwitch,
) -> impl Iterator<Item = IpAddr> + 'a {
    sw.flood_vteps
        .iter()
        .copied()
        .filter(move |ip| ip.is_ipv4() == view.encap_ip.is_ipv4() && !peers.contains(ip))
}

/// Records the tunnel ports `sw`'s flood VTEPs need on this node and returns those OVS
/// has already given an ofport.
fn external_vteps(
    out: &mut DesiredNode,
    peers: &BTreeSet<IpAddr>,
    view: &NodeView,
    sw: &LogicalSwitch,
) -> Vec<ExternalVtep> {
    let mut found = Vec::new();
    for ip in usable_vteps(peers, view, sw) {
        out.tunnels
            .insert(TunnelSpec::external_vtep(ip, view.encap_ip));
        match view.tunnels.get(&vtep_remote(ip)) {
            Some(&ofport) => found.push(ExternalVtep { ip, ofport }),
            None => tracing::debug!(
                node = %view.id, switch = %sw.name, vtep = %ip,
                "flood VTEP tunnel port not reported yet"
            ),
        }
    }
    found
}

/// Records the tunnel ports `sw`'s hardware VTEPs (`endpoints`) need on this node and
/// returns those OVS has already given an ofport, and whether that is all of them. A VTEP
/// at the address of a hypervisor of the switch or of the other address family is left
/// out, like a flood VTEP.
fn hardware_vteps<'a>(
    out: &mut DesiredNode,
    peers: &BTreeSet<IpAddr>,
    view: &NodeView,
    sw: &LogicalSwitch,
    endpoints: &'a [HardwareVtepEndpoint],
) -> (Vec<HardwareVtep<'a>>, bool) {
    let mut found = Vec::new();
    let mut ready = true;
    for ep in endpoints {
        let ip = ep.tunnel_ip;
        if ip.is_ipv4() != view.encap_ip.is_ipv4() || peers.contains(&ip) {
            tracing::debug!(node = %view.id, switch = %sw.name, vtep = %ep.vtep, %ip,
                "hardware VTEP unusable from this node (address family or a hypervisor's)");
            continue;
        }
        out.tunnels
            .insert(TunnelSpec::external_vtep(ip, view.encap_ip));
        match view.tunnels.get(&vtep_remote(ip)) {
            Some(&ofport) => found.push(HardwareVtep {
                vtep: ExternalVtep { ip, ofport },
                macs: &ep.macs,
            }),
            None => {
                ready = false;
                tracing::debug!(
                    node = %view.id, switch = %sw.name, vtep = %ep.vtep, %ip,
                    "hardware VTEP tunnel port not reported yet"
                );
            }
        }
    }
    (found, ready)
}

/// Like [`compile_node`] with bindings computed once for all nodes (the compiler task
/// compiles many nodes from one snapshot).
pub fn compile_node_with(
    model: &LogicalModel,
    topology: &Topology,
    bindings: &Bindings,
    node: &str,
) -> DesiredNode {
    let mut out = DesiredNode::default();
    let Some(view) = topology.nodes.get(node) else {
        return out;
    };
    let switches = switches_of_node(model, bindings, node);
    if switches.is_empty() {
        return out;
    }
    let routers = routing::router_scopes(model, bindings, &switches);
    let mut b = FlowBuilder {
        node,
        out: &mut out,
        flows: Vec::new(),
    };
    b.defaults();
    // Ports bound here, each with how many flows had been added when its switch was
    // done: a port is complete unless one of its own flows lost a collision by then.
    let mut bound: Vec<(&LogicalPort, usize)> = Vec::new();
    for sw_id in &switches {
        let Some(sw) = model.switch(sw_id) else {
            continue;
        };
        let mut locals: Vec<(&LogicalPort, u32)> = Vec::new();
        // remote node -> its ports in this switch
        let mut remotes: BTreeMap<&str, Vec<&LogicalPort>> = BTreeMap::new();
        for p in model.ports_of_switch(sw_id) {
            match bindings.ports.get(&p.id) {
                Some(pb) if pb.node == node => locals.push((p, pb.ofport)),
                Some(pb) => remotes.entry(pb.node.as_str()).or_default().push(p),
                None => {}
            }
        }
        locals.sort_by_key(|(p, _)| p.key);
        if let Some(pn) = &sw.provider {
            // Bridged, not tunnelled: no tunnels; see stage::provider.
            let rports: Vec<&LogicalPort> = remotes.values().flatten().copied().collect();
            if b.provider_switch(model, sw, pn, view, &locals, &rports) {
                let done = b.flows.len();
                bound.extend(locals.iter().map(|(p, _)| (*p, done)));
            }
            continue;
        }
        let mut remote_tunnels: Vec<(&str, u32, &[&LogicalPort])> = Vec::new();
        // A local port is complete only with a working tunnel to every node its switch
        // spans: before that, its first packet to a remote port would be dropped.
        let mut tunnels_ready = true;
        let mut tunnel_to = |out: &mut DesiredNode, rnode: &str| {
            let rview = topology.nodes.get(rnode)?;
            out.tunnels.insert(TunnelSpec {
                remote: rnode.to_string(),
                remote_ip: rview.encap_ip,
                local_ip: view.encap_ip,
                encap: view.encap_type,
            });
            let ofport = view.tunnels.get(rnode).copied();
            if ofport.is_none() {
                tunnels_ready = false;
                tracing::debug!(
                    node, remote = %rnode, switch = %sw.name,
                    "tunnel port not reported yet; remote ports left out and local \
                     ports not complete until it is"
                );
            }
            ofport
        };
        for (rnode, rports) in &remotes {
            if let Some(ofport) = tunnel_to(b.out, rnode) {
                remote_tunnels.push((rnode, ofport, rports));
            }
        }
        // Nodes reached only through this switch's router: packets routed to this
        // switch arrive from them with its VNI.
        let router = model
            .router_port_of_switch(sw_id)
            .and_then(|rp| routers.get(&rp.router));
        let routed_peers: Vec<u32> = router
            .into_iter()
            .flat_map(|r| r.nodes.iter())
            .filter(|n| **n != node && !remotes.contains_key(*n))
            .filter_map(|n| tunnel_to(b.out, n))
            .collect();
        b.switch(model, sw, &locals, &remote_tunnels);
        for ofport in routed_peers {
            b.classify_tunnel(sw.vni, cookie_for(&sw.id), ofport);
        }
        let hardware = topology
            .hardware_vteps
            .get(sw_id)
            .map_or(&[][..], Vec::as_slice);
        if !sw.flood_vteps.is_empty() || !hardware.is_empty() {
            // Hypervisors of this switch are never VTEPs (the API refuses their
            // addresses; one may have taken such an address later).
            let peers: BTreeSet<IpAddr> = remotes
                .keys()
                .filter_map(|r| topology.nodes.get(*r).map(|v| v.encap_ip))
                .chain([view.encap_ip])
                .collect();
            let vteps = external_vteps(b.out, &peers, view, sw);
            if vteps.len() < usable_vteps(&peers, view, sw).count() {
                tunnels_ready = false;
            }
            if !vteps.is_empty() {
                b.flood_vteps(sw.vni, cookie_for(&sw.id), &vteps);
                for (p, _) in &locals {
                    b.out.announce.insert(p.id, announcement(sw.vni, p, &vteps));
                }
            }
            let (hw, ready) = hardware_vteps(b.out, &peers, view, sw, hardware);
            tunnels_ready &= ready;
            if !hw.is_empty() {
                let flood: BTreeSet<IpAddr> = vteps.iter().map(|v| v.ip).collect();
                let weft_macs: BTreeSet<_> = model.ports_of_switch(sw_id).map(|p| p.mac).collect();
                b.hardware_vteps(sw.vni, cookie_for(&sw.id), &hw, &flood, &weft_macs);
            }
        }
        let done = b.flows.len();
        if tunnels_ready {
            bound.extend(locals.iter().map(|(p, _)| (*p, done)));
        }
    }
    for scope in routers.values() {
        b.router(model, bindings, view, &switches, scope);
    }
    let incomplete = b.finish();
    for (p, done) in bound {
        if incomplete
            .get(&cookie_for(&p.id))
            .is_some_and(|first| *first < done)
        {
            tracing::warn!(
                node, port = %p.name,
                "port's flows collide with another object's; not reporting it installed"
            );
        } else {
            out.bound_ports.insert(p.id);
        }
    }
    // Only a complete port is announced: before that its traffic may not flow yet.
    let bound_ports = &out.bound_ports;
    out.announce.retain(|id, _| bound_ports.contains(id));
    out
}

fn announcement(vni: u32, p: &LogicalPort, vteps: &[ExternalVtep]) -> Announcement {
    Announcement {
        vni,
        mac: p.mac,
        ipv4: p.ips.iter().filter_map(stage::v4).collect(),
        tunnel_ofports: vteps.iter().map(|v| v.ofport).collect(),
    }
}
