//! A node's compiled state in pieces: one per logical switch the node has ports on, the
//! pipeline's defaults, and its routers. The incremental compiler keeps each node's switch
//! pieces between rounds ([`NodeParts`]) and rebuilds only those of the switches that
//! changed: a port added to a 64-node switch recompiles that switch's piece on each of
//! the 64 nodes, not their twenty other switches. Measured with the compile bench at 1,000
//! nodes, the whole-node recompile of those 65 nodes was most of the round.
//!
//! Assembling the pieces gives exactly what one pass over the node would: the pieces are
//! merged in the order the single pass adds their flows (defaults, then each switch in id
//! order, then routers), so of two flows with the same key the same one is kept, and a
//! port's completeness is judged at the same point.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use openflow::{FlowContent, FlowKey};
use uuid::Uuid;

use super::ids::{cookie_for, tables};
use super::intern::Interner;
use super::routing::RouterScope;
use super::stage::{self, ExternalVtep, FlowBuilder, HardwareVtep};
use crate::binding::Bindings;
use crate::desired::{
    AclFlows, Announcement, DesiredNode, Flows, GroupSpec, PatchSpec, TunnelSpec,
    VTEP_REMOTE_PREFIX, vtep_remote,
};
use crate::hardware_vtep::HardwareVtepEndpoint;
use crate::model::{LogicalModel, LogicalPort, LogicalSwitch};
use crate::topology::{NodeView, Topology};

/// What one piece of a node's compilation adds: its flows, already shared through the
/// interner and sorted, and the rest of the node's state it contributes.
#[derive(Debug, Default)]
struct Part {
    /// Sorted by key; flows with equal keys stay in the order added. Nothing is dropped
    /// here: which of two equal keys wins depends on the other pieces too.
    flows: Vec<(Arc<FlowKey>, Arc<FlowContent>)>,
    /// Tunnels, groups, patches, ACLs and announcements.
    rest: Rest,
    /// Local ports whose tunnels and flows are all in this piece (complete unless one of
    /// their flows loses a collision to an earlier piece's).
    bound: Vec<(Uuid, String)>,
}

impl Part {
    /// Runs `add` on a fresh builder and keeps what it added.
    fn build(
        node: &str,
        add: impl FnOnce(&mut FlowBuilder<'_>) -> bool,
        ports: &[(&LogicalPort, u32)],
    ) -> Part {
        let mut rest = DesiredNode::default();
        let mut b = FlowBuilder {
            node,
            out: &mut rest,
            flows: Vec::new(),
        };
        let complete = add(&mut b);
        let mut flows = b.flows;
        // Stable: equal keys stay in the order added.
        flows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut shared = Interner::lock();
        // Into a vector of its own size: collecting in place would keep the buffer of
        // the unshared flows, several times larger, for as long as the piece is kept.
        let mut kept = Vec::with_capacity(flows.len());
        for (k, c) in flows {
            kept.push(shared.flow(k, c));
        }
        Part {
            flows: kept,
            rest: Rest::from(rest),
            bound: if complete {
                ports.iter().map(|(p, _)| (p.id, p.name.clone())).collect()
            } else {
                Vec::new()
            },
        }
    }
}

/// What a piece adds to a node besides flows, in vectors of their exact size: a map's
/// node is allocated for eleven entries, and most pieces have one or two of each (a
/// node's pieces are kept for as long as it is current, thousands of them).
#[derive(Debug, Default)]
struct Rest {
    groups: Vec<(u32, Arc<GroupSpec>)>,
    tunnels: Vec<TunnelSpec>,
    patches: Vec<PatchSpec>,
    acls: Vec<(u64, AclFlows)>,
    announce: Vec<(Uuid, Announcement)>,
}

impl From<DesiredNode> for Rest {
    fn from(d: DesiredNode) -> Rest {
        Rest {
            groups: d.groups.into_iter().collect(),
            tunnels: d.tunnels.into_iter().collect(),
            patches: d.patches.into_iter().collect(),
            acls: d.acls.into_iter().collect(),
            announce: d.announce.into_iter().collect(),
        }
    }
}

impl Rest {
    /// Adds this piece's share to `out`; of two pieces' entries under one key the later
    /// one stays, as when one pass inserts both.
    fn add_to(&self, out: &mut DesiredNode) {
        out.groups.extend(self.groups.iter().cloned());
        out.tunnels.extend(self.tunnels.iter().cloned());
        out.patches.extend(self.patches.iter().cloned());
        out.acls.extend(self.acls.iter().cloned());
        out.announce.extend(self.announce.iter().cloned());
    }
}

/// The pipeline's defaults: the same on every node, built once.
static DEFAULTS: LazyLock<Part> = LazyLock::new(|| {
    Part::build(
        "",
        |b| {
            b.defaults();
            true
        },
        &[],
    )
});

/// The switch pieces of one node's last compilation.
#[derive(Debug, Default)]
pub(crate) struct NodeParts {
    switches: HashMap<Uuid, Part>,
    /// Pieces of the last assembly dropped since (an input of theirs changed): the next
    /// compile takes their flows out of `last`'s table. Kept only while there is a `last`.
    stale: Vec<(Uuid, Part)>,
    /// The last assembly, if no two of its pieces' flows had the same key.
    last: Option<Last>,
}

/// A node's last assembly, from which the next one is patched ([`patch`]): a copy of its
/// table with the changed pieces' differences costs a few map operations per changed flow,
/// where merging every piece again compares all of the node's ~1,700 flows several times.
#[derive(Debug)]
struct Last {
    /// Shared with the published [`DesiredNode`].
    flows: Arc<Flows>,
    /// The routers' piece it was assembled with.
    routed: Part,
}

impl NodeParts {
    /// Drops the piece of `sw`, keeping it as stale while the last assembly may be patched.
    fn retire(&mut self, sw: &Uuid) {
        if let Some(part) = self.switches.remove(sw)
            && self.last.is_some()
        {
            self.stale.push((*sw, part));
        }
    }
}

/// The incremental compiler's switch pieces of every current node. A piece is removed in
/// the round an input of it may change, whether or not its node is compiled in that
/// round; a piece still here is what compiling that switch again would give.
#[derive(Debug, Default)]
pub(crate) struct KeptParts {
    nodes: HashMap<String, NodeParts>,
}

impl KeptParts {
    /// The pieces of `node`, to compile it with ([`compile_node_parts`]).
    pub(crate) fn take(&mut self, node: &str) -> NodeParts {
        self.nodes.remove(node).unwrap_or_default()
    }

    /// The pieces `node` was just compiled with.
    pub(crate) fn put(&mut self, node: String, parts: NodeParts) {
        self.nodes.insert(node, parts);
    }

    /// All of `node`'s pieces: its own endpoint or physical networks changed, or it is
    /// no longer compiled here.
    pub(crate) fn forget_node(&mut self, node: &str) {
        self.nodes.remove(node);
    }

    /// `node`'s piece of switch `sw`.
    pub(crate) fn forget(&mut self, node: &str, sw: &Uuid) {
        if let Some(parts) = self.nodes.get_mut(node) {
            parts.retire(sw);
        }
    }

    /// The piece of switch `sw` on each of its `members`.
    pub(crate) fn forget_switch<'a>(
        &mut self,
        sw: &Uuid,
        members: impl Iterator<Item = &'a String>,
    ) {
        for n in members {
            self.forget(n, sw);
        }
    }

    /// `node`'s tunnel ports to `remotes` changed: the pieces that may name them go,
    /// those of `remote_switches` (the switches the remotes have ports on) and of every
    /// switch with a router (it reaches nodes that are not its members). A flood or
    /// hardware VTEP's tunnel is read by any switch: all pieces go.
    pub(crate) fn forget_tunnels<'a>(
        &mut self,
        model: &LogicalModel,
        node: &str,
        remotes: &[String],
        remote_switches: impl Iterator<Item = &'a Uuid>,
    ) {
        let Some(parts) = self.nodes.get_mut(node) else {
            return;
        };
        let all = remotes.iter().any(|r| r.starts_with(VTEP_REMOTE_PREFIX));
        let gone: Vec<Uuid> = if all {
            parts.switches.keys().copied().collect()
        } else {
            let routed = parts
                .switches
                .keys()
                .filter(|sw| model.router_port_of_switch(sw).is_some())
                .copied();
            remote_switches.copied().chain(routed).collect()
        };
        for sw in &gone {
            parts.retire(sw);
        }
    }
}

/// Compiles node `node`, reusing the switch pieces in `kept` and leaving there the pieces
/// of this compilation (see [`super::compile_node_with`] for the inputs).
pub(crate) fn compile_node_parts(
    model: &LogicalModel,
    topology: &Topology,
    bindings: &Bindings,
    node: &str,
    kept: &mut NodeParts,
) -> DesiredNode {
    let mut previous = std::mem::take(&mut kept.switches);
    let stale = std::mem::take(&mut kept.stale);
    let last = kept.last.take();
    let Some(view) = topology.nodes.get(node) else {
        return DesiredNode::default();
    };
    let switches = super::switches_of_node(model, bindings, node);
    if switches.is_empty() {
        return DesiredNode::default();
    }
    let routers = super::routing::router_scopes(model, bindings, &switches);
    let mut rebuilt = Vec::new();
    for sw_id in &switches {
        let part = previous.remove(sw_id).unwrap_or_else(|| {
            rebuilt.push(*sw_id);
            let ctx = SwitchCtx {
                model,
                topology,
                bindings,
                view,
                node,
                routers: &routers,
            };
            switch_part(&ctx, sw_id)
        });
        kept.switches.insert(*sw_id, part);
    }
    let routed = Part::build(
        node,
        |b| {
            for scope in routers.values() {
                b.router(model, bindings, view, &switches, scope);
            }
            true
        },
        &[],
    );
    // Every piece of the last assembly that is not in this one, against what replaces it.
    let patched = last.as_ref().and_then(|last| {
        let mut changes: HashMap<Uuid, (Option<&Part>, Option<&Part>)> = HashMap::new();
        for (sw, old) in stale.iter().map(|(s, p)| (s, p)).chain(&previous) {
            changes.entry(*sw).or_default().0 = Some(old);
        }
        for sw in &rebuilt {
            changes.entry(*sw).or_default().1 = kept.switches.get(sw);
        }
        let pairs = changes
            .into_values()
            .chain([(Some(&last.routed), Some(&routed))]);
        patch(&last.flows, pairs)
    });
    let pieces: Vec<&Part> = std::iter::once(&*DEFAULTS)
        .chain(switches.iter().filter_map(|s| kept.switches.get(s)))
        .chain([&routed])
        .collect();
    let (out, clean) = assemble(node, &pieces, patched);
    drop(pieces);
    if clean {
        kept.last = Some(Last {
            flows: out.flows.clone(),
            routed,
        });
    }
    out
}

/// `base` (a clean assembly: each key one piece's) with each pair's old piece replaced by
/// its new one (`base` itself, shared, if no flow differs), or `None` if the result would
/// not be clean (a key of a new piece is
/// another piece's too, or twice in its own: either way its insertion finds the key
/// taken), which only a full merge decides.
///
/// Pieces are compared flow by flow first: most of a rebuilt piece is the same shared
/// flows as before (the interner's), so only the few that differ touch the map. All
/// removals come before any insertion, so a key that moved between two changed pieces is
/// not taken for a collision.
fn patch<'a>(
    base: &Arc<Flows>,
    pairs: impl Iterator<Item = (Option<&'a Part>, Option<&'a Part>)>,
) -> Option<Arc<Flows>> {
    type Entry = (Arc<FlowKey>, Arc<FlowContent>);
    let mut gone: Vec<&Arc<FlowKey>> = Vec::new();
    let mut set: Vec<(&Entry, bool)> = Vec::new(); // (flow, whether the key was there)
    for (old, new) in pairs {
        let old = old.map_or(&[][..], |p| p.flows.as_slice());
        let new = new.map_or(&[][..], |p| p.flows.as_slice());
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            let order = match (old.get(i), new.get(j)) {
                (Some(o), Some(n)) if Arc::ptr_eq(&o.0, &n.0) => std::cmp::Ordering::Equal,
                (Some(o), Some(n)) => o.0.cmp(&n.0),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, _) => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    gone.push(&old[i].0);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    set.push((&new[j], false));
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    if !Arc::ptr_eq(&old[i].1, &new[j].1) && old[i].1 != new[j].1 {
                        set.push((&new[j], true));
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
    }
    if gone.is_empty() && set.is_empty() {
        return Some(base.clone());
    }
    let mut flows = Flows::clone(base);
    for key in gone {
        flows.remove(key)?;
    }
    for ((key, content), was_there) in set {
        if flows.insert(key.clone(), content.clone()).is_some() != was_there {
            return None;
        }
    }
    Some(Arc::new(flows))
}

/// What one switch's piece reads.
struct SwitchCtx<'a> {
    model: &'a LogicalModel,
    topology: &'a Topology,
    bindings: &'a Bindings,
    view: &'a NodeView,
    node: &'a str,
    routers: &'a BTreeMap<Uuid, RouterScope<'a>>,
}

/// One logical switch on the node: every stage's flows for its local ports, its tunnels
/// and remote ports, its flood VTEPs and hardware VTEPs, or its patch to a physical
/// network; and which local ports are complete as far as it goes. A switch missing from
/// the model gives an empty piece.
fn switch_part(ctx: &SwitchCtx<'_>, sw_id: &Uuid) -> Part {
    let SwitchCtx {
        model,
        topology,
        bindings,
        view,
        node,
        routers,
    } = *ctx;
    let Some(sw) = model.switch(sw_id) else {
        return Part::default();
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
        return Part::build(
            node,
            |b| b.provider_switch(model, sw, pn, view, &locals, &rports),
            &locals,
        );
    }
    let add = |b: &mut FlowBuilder<'_>| {
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
        tunnels_ready
    };
    Part::build(node, add, &locals)
}

/// The node's state from its pieces, in order: the flows merged as one pass would have
/// added them (of flows with the same key the first added is kept; a later different one
/// is a collision, logged), the rest of each piece in order, and a piece's local ports
/// complete unless one of their own flows (classify, port security, L2 lookup, output)
/// lost a collision in their piece or an earlier one.
///
/// One pass judges a port at the end of its switch, and adds every flow of a piece before
/// every flow of the next: "lost before the port's switch was done" is "lost in a piece
/// up to the port's".
///
/// `patched` is the flows already known (see [`patch`]), which are then clean; the
/// result says whether they are (no two pieces' flows with the same key).
fn assemble(node: &str, pieces: &[&Part], patched: Option<Arc<Flows>>) -> (DesiredNode, bool) {
    let mut out = DesiredNode::default();
    // Ports with the index of their piece.
    let mut bound: Vec<(&Uuid, &str, usize)> = Vec::new();
    for (at, piece) in pieces.iter().enumerate() {
        bound.extend(piece.bound.iter().map(|(id, name)| (id, name.as_str(), at)));
        piece.rest.add_to(&mut out);
    }
    let (flows, incomplete, clean) = match patched {
        Some(flows) => (flows, HashMap::new(), true),
        None => {
            let (flows, incomplete, clean) = merge(node, pieces);
            (Arc::new(flows), incomplete, clean)
        }
    };
    out.flows = flows;
    for (id, name, at) in bound {
        if incomplete
            .get(&cookie_for(id))
            .is_some_and(|first| *first <= at)
        {
            tracing::warn!(
                node, port = %name,
                "port's flows collide with another object's; not reporting it installed"
            );
        } else {
            out.bound_ports.insert(*id);
        }
    }
    // Only a complete port is announced: before that its traffic may not flow yet.
    let bound_ports = &out.bound_ports;
    out.announce.retain(|id, _| bound_ports.contains(id));
    (out, clean)
}

/// The pieces' flows merged: the table, each cookie with the first piece in which one of
/// its port-completing flows lost a collision, and whether no key was in two flows.
fn merge(node: &str, pieces: &[&Part]) -> (Flows, HashMap<u64, usize>, bool) {
    let total: usize = pieces.iter().map(|p| p.flows.len()).sum();
    let mut all: Vec<(usize, &Arc<FlowKey>, &Arc<FlowContent>)> = Vec::with_capacity(total);
    for (at, piece) in pieces.iter().enumerate() {
        all.extend(piece.flows.iter().map(|(k, c)| (at, k, c)));
    }
    // Stable, and each piece is sorted: a merge of sorted runs, equal keys in the order
    // their pieces come, which is the order they were added.
    all.sort_by(|a, b| a.1.cmp(b.1));
    // Cookie -> the first piece in which one of its flows lost.
    let mut incomplete: HashMap<u64, usize> = HashMap::new();
    let mut kept: Vec<(Arc<FlowKey>, Arc<FlowContent>)> = Vec::with_capacity(all.len());
    let mut clean = true;
    for (at, key, content) in all {
        if let Some((first_key, first)) = kept.last()
            && first_key == key
        {
            clean = false;
            if first != content {
                use tables::*;
                if matches!(key.table_id, CLASSIFY | PORT_SECURITY | L2_LOOKUP | OUTPUT) {
                    let first_at = incomplete.entry(content.cookie).or_insert(at);
                    *first_at = (*first_at).min(at);
                }
                tracing::warn!(
                    node, table = key.table_id, priority = key.priority,
                    r#match = %key.r#match,
                    "two logical objects want the same flow; keeping the first"
                );
            }
            continue;
        }
        kept.push((key.clone(), content.clone()));
    }
    // Already sorted and unique: building the map from them is linear.
    (kept.into_iter().collect(), incomplete, clean)
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

fn announcement(vni: u32, p: &LogicalPort, vteps: &[ExternalVtep]) -> Announcement {
    Announcement {
        vni,
        mac: p.mac,
        ipv4: p.ips.iter().filter_map(stage::v4).collect(),
        tunnel_ofports: vteps.iter().map(|v| v.ofport).collect(),
    }
}
