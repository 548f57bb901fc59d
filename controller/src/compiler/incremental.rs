//! The compiler task's memory between snapshots: which nodes a change concerns, and
//! their recompilation (on all cores but one).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use uuid::Uuid;

use super::parts::{KeptParts, NodeParts, compile_node_parts};
use super::routing::{reach, routers_of_switch, switches_of_router};
use super::switches_of_node;
use super::tunnels_first::tunnels_ahead;
use crate::binding::{Bindings, PortBinding};
use crate::desired::{DesiredNode, TunnelSpec};
use crate::hardware_vtep::{HardwareVtepEndpoint, VtepEndpoints};
use crate::model::{
    Acl, LogicalModel, LogicalPort, LogicalRouter, LogicalSwitch, Route, RouterPort,
};
use crate::topology::{EncapType, NodeChange, NodeView, Topology};

/// Everything [`compile_node`] reads for one node, in a comparable form: the node's own
/// endpoint and tunnel ofports, for every switch it participates in or reaches through a
/// router the switch and all of its bound ports with where they are bound and their
/// endpoint, and those routers with their ports and routes. Two equal fingerprints
/// compile to the same [`DesiredNode`]. (Deep and per node: the compiler task tracks
/// changes per object instead, see [`IncrementalCompiler`].)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeFingerprint {
    pub endpoint: Option<(IpAddr, EncapType)>,
    pub tunnels: BTreeMap<String, u32>,
    /// The node's physical networks: bridge mappings and patch ofports.
    pub physnets: (BTreeMap<String, String>, BTreeMap<String, u32>),
    pub switches: BTreeMap<Uuid, SwitchInputs>,
    pub routers: BTreeMap<Uuid, (LogicalRouter, Vec<RouterPort>, Vec<Route>)>,
}

/// One switch's inputs to a node's compilation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwitchInputs {
    pub switch: Option<LogicalSwitch>,
    /// Bound ports: the port, its node, its ofport and that node's encap IP.
    pub ports: Vec<(LogicalPort, String, u32, Option<IpAddr>)>,
    /// ACLs of the ports bound on this node.
    pub acls: Vec<Acl>,
    /// The hardware VTEPs the switch's hypervisors reach ([`Topology::hardware_vteps`]).
    pub hardware_vteps: Vec<HardwareVtepEndpoint>,
}

/// The fingerprint of `node`'s compilation inputs (see [`NodeFingerprint`]).
pub fn node_fingerprint(
    model: &LogicalModel,
    topology: &Topology,
    bindings: &Bindings,
    node: &str,
) -> NodeFingerprint {
    let Some(view) = topology.nodes.get(node) else {
        return NodeFingerprint::default();
    };
    let mut fp = NodeFingerprint {
        endpoint: Some((view.encap_ip, view.encap_type)),
        tunnels: view.tunnels.clone(),
        physnets: (view.bridge_mappings.clone(), view.patches.clone()),
        switches: BTreeMap::new(),
        routers: BTreeMap::new(),
    };
    for sw in reach(model, &switches_of_node(model, bindings, node)) {
        if let Some(rp) = model.router_port_of_switch(&sw)
            && let Some(r) = model.router(&rp.router)
        {
            fp.routers.entry(r.id).or_insert_with(|| {
                (
                    r.clone(),
                    model.ports_of_router(&r.id).cloned().collect(),
                    model.routes_of_router(&r.id).cloned().collect(),
                )
            });
        }
        let mut inputs = SwitchInputs {
            switch: model.switch(&sw).cloned(),
            ports: Vec::new(),
            acls: Vec::new(),
            hardware_vteps: topology
                .hardware_vteps
                .get(&sw)
                .cloned()
                .unwrap_or_default(),
        };
        for p in model.ports_of_switch(&sw) {
            if let Some(b) = bindings.ports.get(&p.id) {
                let ip = topology.nodes.get(&b.node).map(|n| n.encap_ip);
                inputs.ports.push((p.clone(), b.node.clone(), b.ofport, ip));
                if b.node == node {
                    inputs.acls.extend(model.acls_of_port(&p.id).cloned());
                }
            }
        }
        fp.switches.insert(sw, inputs);
    }
    fp
}

/// Nodes whose compiled state may differ between two snapshots: every node present in
/// either topology whose [`NodeFingerprint`] changed.
pub fn nodes_affected(
    model_before: &LogicalModel,
    model_after: &LogicalModel,
    topo_before: &Topology,
    topo_after: &Topology,
) -> BTreeSet<String> {
    let bb = Bindings::compute(model_before, topo_before);
    let ba = Bindings::compute(model_after, topo_after);
    topo_before
        .nodes
        .keys()
        .chain(topo_after.nodes.keys())
        .filter(|n| {
            node_fingerprint(model_before, topo_before, &bb, n)
                != node_fingerprint(model_after, topo_after, &ba, n)
        })
        .cloned()
        .collect()
}

/// The compiler task's memory between snapshots, so that each new (model, topology) pair
/// recompiles only the nodes whose inputs changed, finding them in time proportional to
/// what changed rather than to the size of the fabric.
///
/// It keeps the previous model and topology (both O(1) to clone: persistent maps) and
/// diffs them against the new ones, which skips everything the two share. From the
/// changed objects it updates, incrementally, the [`Bindings`] (through an index of which
/// VIFs claim each `iface-id`) and an index of which nodes each logical switch has bound
/// ports on; the nodes to recompile are then
/// - every node participating in a switch that changed, had a port added, changed, bound,
///   moved or unbound, or has a member node whose tunnel endpoint changed or that joined
///   or left (their remote-MAC flows, flood groups and tunnels name it);
/// - every node participating in a switch whose hardware VTEP endpoints changed (a VTEP
///   connected, left, learned or aged a MAC, was bound or unbound);
/// - a node whose own endpoint or tunnel ports changed;
/// - the node a changed ACL's port is bound on;
/// - through routers, every switch attached to a router that changed, whose ports or
///   routes changed, or one of whose switches is in the list above (a node routes with
///   the ports of all the router's switches).
///
/// Exactly the inputs [`compile_node_with`] reads (the same ones [`node_fingerprint`]
/// summarises), so the result equals a from-scratch compile (tested on randomised change
/// sequences). Many nodes are compiled on all cores but one.
#[derive(Debug, Default)]
pub struct IncrementalCompiler {
    model: LogicalModel,
    topology: Topology,
    bindings: Bindings,
    /// `iface-id` ([`claim_key`]) -> the VIFs that carry it, as (node, ofport).
    claims: HashMap<String, BTreeSet<(String, u32)>>,
    /// Logical switch -> node -> how many of the switch's ports are bound there.
    members: HashMap<Uuid, BTreeMap<String, usize>>,
    /// Bound port -> the switch it counted in, in `members`.
    bound_switch: HashMap<Uuid, Uuid>,
    /// Some binding changed since bindings were last handed out
    /// ([`IncrementalCompiler::update_scoped`]'s `on_bindings`).
    bindings_changed: bool,
    /// Nodes whose last compile is current: compiled, in the topology and in scope every
    /// round since (see [`IncrementalCompiler::update_scoped`]).
    current: BTreeSet<String>,
    /// Nodes whose compile was put off ([`IncrementalCompiler::update_tunnels_first`]),
    /// with how many rounds in a row: (during a burst, waiting for tunnel ports).
    deferred: HashMap<String, (u32, u32)>,
    /// The switch pieces of each current node's last compile ([`super::parts`]).
    parts: KeptParts,
}

/// How many rounds in a row a node's compile may wait for its tunnel ports. Normally the
/// ofports are reported before the next round; this bounds the wait for a tunnel OVS
/// never accepts (the node is then compiled without it, as it would have been at once).
const MAX_DEFERRALS: u32 = 2;

/// How many rounds in a row a node's compile may wait for a burst of joins to end: a
/// fabric where hypervisors never stop joining (one flapping) must not starve it. Rounds
/// during a burst are at least 100 ms apart and grow to 2 s ([`crate::realize`]).
const MAX_BURST_DEFERRALS: u32 = 30;

/// Where [`IncrementalCompiler::update_tunnels_first`] asks for a node's tunnel ports.
type TunnelSink<'a> = &'a mut dyn FnMut(String, BTreeSet<TunnelSpec>);

/// What one update has to recompile.
#[derive(Default)]
struct Dirty {
    switches: HashSet<Uuid>,
    nodes: BTreeSet<String>,
    /// Nodes whose own endpoint or physical networks changed: none of their switch
    /// pieces ([`super::parts`]) can be reused.
    whole: Vec<String>,
    /// (node, switch): an ACL of a port bound there changed; that one piece goes.
    pieces: Vec<(String, Uuid)>,
    /// (node, remotes): the node's tunnel ports to those remotes changed.
    tunnels: Vec<(String, Vec<String>)>,
}

/// The remotes whose tunnel ofport differs between two versions of a node's tunnels.
fn changed_remotes<'a>(
    old: &'a BTreeMap<String, u32>,
    new: &'a BTreeMap<String, u32>,
) -> impl Iterator<Item = &'a String> {
    let changed = old.iter().filter(|(r, of)| new.get(*r) != Some(*of));
    let added = new.iter().filter(|(r, _)| !old.contains_key(*r));
    changed.chain(added).map(|(r, _)| r)
}

/// Switches whose hardware VTEP endpoints differ between two snapshots.
fn vtep_changes(before: &VtepEndpoints, after: &VtepEndpoints) -> Vec<Uuid> {
    if std::ptr::eq(before, after) {
        return Vec::new();
    }
    before
        .keys()
        .chain(after.keys())
        .filter(|sw| before.get(sw) != after.get(sw))
        .copied()
        .collect()
}

/// Below this many nodes to compile, one thread does it (spawning costs more).
const PARALLEL_MIN_NODES: usize = 16;

impl IncrementalCompiler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Compiles every node of `topology` whose inputs changed since the previous call
    /// (all of them the first time) and returns them, in system-id order, to publish
    /// ([`crate::fabric::Fabric::publish_desired`]). A node that left the topology is
    /// forgotten, not emptied: its OVSDB session ended but its flows stay on the switch
    /// (DESIGN.md §7), and it is compiled afresh if it comes back.
    pub fn update(
        &mut self,
        model: &LogicalModel,
        topology: &Topology,
    ) -> Vec<(String, DesiredNode)> {
        let mut out = Vec::new();
        self.update_each(model, topology, |n, d| out.push((n, d)));
        out
    }

    /// [`Self::update`], handing each node's new state to `sink` as soon as it is
    /// compiled (in system-id order) instead of collecting them all: the caller can
    /// publish it at once, and the node's previous state is freed then, not after the
    /// whole round, so a round over thousands of nodes never holds two full sets of
    /// flow tables.
    pub fn update_each(
        &mut self,
        model: &LogicalModel,
        topology: &Topology,
        sink: impl FnMut(String, DesiredNode),
    ) {
        self.update_scoped(model, topology, &|_| true, |_| {}, sink);
    }

    /// [`Self::update_each`] for only the nodes `in_scope` (cluster mode: the ones this
    /// instance owns, so N instances share the compiling N ways). A node out of scope is
    /// not compiled; one that enters it is compiled whole, since its inputs may have
    /// changed meanwhile. Returns the nodes that left the scope this round (their
    /// published state is no longer kept current). Bindings are still decided over the
    /// whole topology, and handed to `on_bindings` when they changed, before any node is
    /// compiled: a port whose node is compiled first can be reported up (and its VIF
    /// marked) as soon as that node's switch has its flows, not after the whole round.
    pub fn update_scoped(
        &mut self,
        model: &LogicalModel,
        topology: &Topology,
        in_scope: &dyn Fn(&str) -> bool,
        on_bindings: impl FnOnce(&Bindings),
        sink: impl FnMut(String, DesiredNode),
    ) -> Vec<String> {
        self.update_inner(model, topology, in_scope, on_bindings, (None, false), sink)
    }

    /// [`Self::update_scoped`], except that a node joining (not compiled yet, or not
    /// since it re-entered the topology or the scope) may be put off: `on_tunnels` gets
    /// the tunnels it needs instead ([`super::tunnels_first`]), and the node is compiled
    /// in a later round. It is put off while `burst` (hypervisors are still joining: its
    /// neighbours are on their way, and each would recompile it), and otherwise while a
    /// tunnel it needs has no ofport yet, for at most [`MAX_BURST_DEFERRALS`] and
    /// [`MAX_DEFERRALS`] rounds in a row.
    /// Nodes already compiled are never put off: a change to their flows is never
    /// delayed. [`Self::deferring`] says whether a round is owed to a deferred node.
    pub fn update_tunnels_first(
        &mut self,
        (model, topology): (&LogicalModel, &Topology),
        in_scope: &dyn Fn(&str) -> bool,
        burst: bool,
        on_bindings: impl FnOnce(&Bindings),
        mut on_tunnels: impl FnMut(String, BTreeSet<TunnelSpec>),
        sink: impl FnMut(String, DesiredNode),
    ) -> Vec<String> {
        self.update_inner(
            model,
            topology,
            in_scope,
            on_bindings,
            (Some(&mut on_tunnels), burst),
            sink,
        )
    }

    /// Whether some node's compile is waiting for its tunnel ports: the caller owes it a
    /// round even if nothing else changes (a tunnel OVS never accepts).
    pub fn deferring(&self) -> bool {
        !self.deferred.is_empty()
    }

    fn update_inner(
        &mut self,
        model: &LogicalModel,
        topology: &Topology,
        in_scope: &dyn Fn(&str) -> bool,
        on_bindings: impl FnOnce(&Bindings),
        (mut on_tunnels, burst): (Option<TunnelSink<'_>>, bool),
        mut sink: impl FnMut(String, DesiredNode),
    ) -> Vec<String> {
        let mut dirty = Dirty::default();
        let mut touched_ifaces: BTreeSet<String> = BTreeSet::new();
        let mut endpoint_changed: Vec<String> = Vec::new();
        let previous = std::mem::take(&mut self.topology);
        for ch in topology.nodes.diff(&previous.nodes) {
            self.update_claims(&ch, &mut touched_ifaces);
            let endpoint = |v: Option<&NodeView>| v.map(|v| (v.encap_ip, v.encap_type));
            let id = ch.id.to_owned();
            if endpoint(ch.old) != endpoint(ch.new) {
                endpoint_changed.push(id.clone());
                dirty.whole.push(id.clone());
                dirty.nodes.insert(id);
            } else if let (Some(old), Some(new)) = (ch.old, ch.new) {
                if (&old.bridge_mappings, &old.patches) != (&new.bridge_mappings, &new.patches) {
                    dirty.whole.push(id.clone());
                    dirty.nodes.insert(id.clone());
                }
                if old.tunnels != new.tunnels {
                    let remotes = changed_remotes(&old.tunnels, &new.tunnels).cloned();
                    dirty.tunnels.push((id.clone(), remotes.collect()));
                    dirty.nodes.insert(id);
                }
            }
        }
        let delta = model.changed_since(&self.model);
        dirty.switches.extend(delta.switches.iter().copied());
        let mut rebind: BTreeSet<Uuid> = delta.ports.iter().copied().collect();
        for id in &delta.ports {
            // A bound port that changed changes its switch's flows on every member.
            if let Some(sw) = self.bound_switch.get(id) {
                dirty.switches.insert(*sw);
            }
        }
        for iface in &touched_ifaces {
            match model.find_port(iface) {
                Some(p) => {
                    rebind.insert(p.id);
                }
                None => {
                    if let Some(vifs) = self.claims.get(&claim_key(iface)) {
                        tracing::info!(iface_id = %iface, ?vifs,
                            "interface names no known logical port (yet)");
                    }
                }
            }
        }
        for id in rebind {
            self.rebind(model, id, &mut dirty);
        }
        for id in &delta.acls {
            let ports = [self.model.acl(id), model.acl(id)].map(|a| a.map(|a| a.port));
            for port in ports.into_iter().flatten() {
                if let Some(b) = self.bindings.ports.get(&port) {
                    dirty.nodes.insert(b.node.clone());
                    if let Some(sw) = self.bound_switch.get(&port) {
                        dirty.pieces.push((b.node.clone(), *sw));
                    }
                }
            }
        }
        for node in &endpoint_changed {
            for port in self
                .bindings
                .by_node
                .get(node)
                .into_iter()
                .flat_map(|m| m.keys())
            {
                if let Some(sw) = self.bound_switch.get(port) {
                    dirty.switches.insert(*sw);
                }
            }
        }
        self.spread_through_routers(model, &delta, &mut dirty);
        // After the routers: a switch's hardware VTEPs are read only by the nodes with
        // ports on it, not by those routing to it.
        dirty.switches.extend(vtep_changes(
            &previous.hardware_vteps,
            &topology.hardware_vteps,
        ));
        self.forget_parts(model, &dirty);
        let mut nodes = dirty.nodes;
        for sw in &dirty.switches {
            if let Some(m) = self.members.get(sw) {
                nodes.extend(m.keys().cloned());
            }
        }
        // Nodes in scope that are not current (new in the scope or the topology).
        nodes.extend(
            topology
                .nodes
                .keys()
                .filter(|n| !self.current.contains(*n) && in_scope(n))
                .cloned(),
        );
        let left: Vec<String> = self
            .current
            .iter()
            .filter(|n| !in_scope(n) || !topology.nodes.contains_key(*n))
            .cloned()
            .collect();
        for n in &left {
            self.current.remove(n);
            self.parts.forget_node(n);
        }
        let mut left: Vec<String> = left
            .into_iter()
            .filter(|n| topology.nodes.contains_key(n))
            .collect();
        let nodes: Vec<String> = nodes
            .into_iter()
            .filter(|n| topology.nodes.contains_key(n) && in_scope(n))
            .collect();
        tracing::trace!(
            switches = dirty.switches.len(),
            nodes = nodes.len(),
            "nodes to recompile"
        );
        if std::mem::take(&mut self.bindings_changed) {
            on_bindings(&self.bindings);
        }
        // A deferred node is not current: every round considers it until it is compiled.
        // One that left the scope had its tunnels asked for: withdrawn like a compile.
        self.deferred.retain(|n, _| {
            let keep = topology.nodes.contains_key(n) && in_scope(n);
            if !keep && topology.nodes.contains_key(n) {
                left.push(n.clone());
            }
            keep
        });
        let mut compile = Vec::with_capacity(nodes.len());
        for n in nodes {
            let joining = !self.current.contains(&n);
            let (in_burst, waited) = self.deferred.get(&n).copied().unwrap_or((0, 0));
            let tunnels = match &on_tunnels {
                Some(_) if joining => {
                    tunnels_ahead(model, topology, &self.bindings, &self.members, &n)
                }
                _ => None,
            };
            let defer = match &tunnels {
                Some(_) if burst && in_burst < MAX_BURST_DEFERRALS => Some((in_burst + 1, 0)),
                Some((_, true)) if waited < MAX_DEFERRALS => Some((in_burst, waited + 1)),
                _ => None,
            };
            match (tunnels, defer, on_tunnels.as_mut()) {
                (Some((t, _)), Some(counts), Some(on_tunnels)) => {
                    self.deferred.insert(n.clone(), counts);
                    on_tunnels(n, t);
                }
                _ => {
                    self.deferred.remove(&n);
                    self.current.insert(n.clone());
                    let parts = self.parts.take(&n);
                    compile.push((n, parts));
                }
            }
        }
        let mut kept = Vec::with_capacity(compile.len());
        compile_many(model, topology, &self.bindings, compile, |n, d, parts| {
            kept.push((n.clone(), parts));
            sink(n, d);
        });
        for (n, parts) in kept {
            self.parts.put(n, parts);
        }
        self.model = model.clone();
        self.topology = topology.clone();
        left
    }

    /// Drops the switch pieces whose inputs this update changes (after the bindings and
    /// the switch -> members index are updated).
    fn forget_parts(&mut self, model: &LogicalModel, dirty: &Dirty) {
        for sw in &dirty.switches {
            let members = self.members.get(sw).into_iter().flat_map(|m| m.keys());
            self.parts.forget_switch(sw, members);
        }
        for n in &dirty.whole {
            self.parts.forget_node(n);
        }
        for (n, sw) in &dirty.pieces {
            self.parts.forget(n, sw);
        }
        for (n, remotes) in &dirty.tunnels {
            let ports = remotes
                .iter()
                .filter_map(|r| self.bindings.by_node.get(r))
                .flat_map(|m| m.keys());
            let switches = ports.filter_map(|p| self.bound_switch.get(p));
            self.parts.forget_tunnels(model, n, remotes, switches);
        }
    }

    /// Adds to `dirty.switches` every switch of every router concerned by this update
    /// (in the previous or the new model).
    fn spread_through_routers(
        &self,
        model: &LogicalModel,
        delta: &crate::model::ModelDelta,
        dirty: &mut Dirty,
    ) {
        let old = &self.model;
        let mut routers: BTreeSet<Uuid> = delta.routers.iter().copied().collect();
        for id in &delta.router_ports {
            for rp in [old.router_port(id), model.router_port(id)]
                .into_iter()
                .flatten()
            {
                routers.insert(rp.router);
                dirty.switches.insert(rp.switch);
            }
        }
        for id in &delta.routes {
            routers.extend(
                [old.route(id), model.route(id)]
                    .into_iter()
                    .flatten()
                    .map(|r| r.router),
            );
        }
        for sw in &dirty.switches {
            routers.extend(routers_of_switch(old, model, sw));
        }
        for r in routers {
            dirty.switches.extend(switches_of_router(old, model, &r));
        }
    }

    /// Records the VIFs of one changed node in the claims index; `touched` collects the
    /// `iface-id`s whose claims changed.
    fn update_claims(&mut self, ch: &NodeChange<'_>, touched: &mut BTreeSet<String>) {
        let none = BTreeMap::new();
        let old = ch.old.map_or(&none, |v| &v.vifs);
        let new = ch.new.map_or(&none, |v| &v.vifs);
        if old == new {
            return;
        }
        for (iface, vif) in old {
            if new.get(iface).map(|v| v.ofport) != Some(vif.ofport) {
                let key = claim_key(iface);
                if let Some(set) = self.claims.get_mut(&key) {
                    set.remove(&(ch.id.to_owned(), vif.ofport));
                    if set.is_empty() {
                        self.claims.remove(&key);
                    }
                }
                touched.insert(iface.clone());
            }
        }
        for (iface, vif) in new {
            if old.get(iface).map(|v| v.ofport) != Some(vif.ofport) {
                self.claims
                    .entry(claim_key(iface))
                    .or_default()
                    .insert((ch.id.to_owned(), vif.ofport));
                touched.insert(iface.clone());
            }
        }
    }

    /// Recomputes where port `id` is bound from the claims on its name and id (the rule
    /// of [`Bindings::compute`]: first node by system-id, then lowest ofport) and updates
    /// the indexes, marking what the change touches.
    fn rebind(&mut self, model: &LogicalModel, id: Uuid, dirty: &mut Dirty) {
        let port = model.port(&id);
        let claims: Vec<&(String, u32)> = port
            .into_iter()
            .flat_map(|p| {
                let by_name = self.claims.get(&p.name);
                let by_id = self.claims.get(&p.id.to_string());
                by_name.into_iter().chain(by_id).flat_map(|s| s.iter())
            })
            .collect();
        let winner = claims.iter().min().map(|(node, ofport)| PortBinding {
            node: node.clone(),
            ofport: *ofport,
        });
        if let (Some(p), Some(w)) = (port, &winner)
            && claims.iter().any(|(n, _)| *n != w.node)
        {
            tracing::debug!(
                port = %p.name, winner = %w.node,
                "port claimed by two nodes; binding it to the first by system-id"
            );
        }
        let new_switch = port.map(|p| p.switch);
        if self.bindings.ports.get(&id) == winner.as_ref()
            && (winner.is_none() || self.bound_switch.get(&id) == new_switch.as_ref())
        {
            return;
        }
        self.bindings_changed = true;
        if let Some(old) = self.bindings.ports.remove(&id) {
            if let Some(m) = self.bindings.by_node.get_mut(&old.node) {
                m.remove(&id);
                if m.is_empty() {
                    self.bindings.by_node.remove(&old.node);
                }
            }
            if let Some(sw) = self.bound_switch.remove(&id) {
                if let Some(m) = self.members.get_mut(&sw) {
                    if let Some(c) = m.get_mut(&old.node) {
                        *c = c.saturating_sub(1);
                        if *c == 0 {
                            m.remove(&old.node);
                        }
                    }
                    if m.is_empty() {
                        self.members.remove(&sw);
                    }
                }
                dirty.switches.insert(sw);
            }
            dirty.nodes.insert(old.node);
        }
        if let (Some(b), Some(sw)) = (winner, new_switch) {
            self.bindings
                .by_node
                .entry(b.node.clone())
                .or_default()
                .insert(id, b.ofport);
            *self
                .members
                .entry(sw)
                .or_default()
                .entry(b.node.clone())
                .or_default() += 1;
            self.bound_switch.insert(id, sw);
            dirty.switches.insert(sw);
            dirty.nodes.insert(b.node.clone());
            self.bindings.ports.insert(id, b);
        }
    }

    /// The bindings as of the last update (equal to [`Bindings::compute`] on its inputs).
    pub fn bindings(&self) -> &Bindings {
        &self.bindings
    }
}

/// The key an `iface-id` claims under: a port's name as is, an id in the canonical
/// hyphenated form whatever way it was spelled (`LogicalModel::find_port` accepts every
/// spelling `Uuid::parse_str` does).
fn claim_key(iface: &str) -> String {
    match Uuid::parse_str(iface) {
        Ok(id) => id.to_string(),
        Err(_) => iface.to_owned(),
    }
}

/// Compiles `nodes` (sorted), each reusing and then holding its switch pieces, on all
/// cores but one when there are many.
///
/// One core is always left to the async runtime: the OpenFlow and OVSDB sessions must
/// keep reading their sockets and answering echo requests while thousands of nodes are
/// compiled, or switches and ovsdb-servers drop them as dead (on a 2-core machine a
/// compile on both cores starved the sessions into a reconnect storm). So on 2 cores the
/// compile runs on one thread.
fn compile_many(
    model: &LogicalModel,
    topology: &Topology,
    bindings: &Bindings,
    nodes: Vec<(String, NodeParts)>,
    mut sink: impl FnMut(String, DesiredNode, NodeParts),
) {
    let compile = |n: String, mut parts: NodeParts| {
        let d = compile_node_parts(model, topology, bindings, &n, &mut parts);
        (n, d, parts)
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1);
    if threads < 2 || nodes.len() < PARALLEL_MIN_NODES {
        for (n, parts) in nodes {
            let (n, d, parts) = compile(n, parts);
            sink(n, d, parts);
        }
        return;
    }
    let chunk = nodes.len().div_ceil(threads);
    let mut chunks: Vec<Vec<(String, NodeParts)>> = Vec::new();
    let mut nodes = nodes.into_iter().peekable();
    while nodes.peek().is_some() {
        chunks.push(nodes.by_ref().take(chunk).collect());
    }
    std::thread::scope(|s| {
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|part| {
                let names: Vec<String> = part.iter().map(|(n, _)| n.clone()).collect();
                // Bounded: a worker runs at most a few nodes ahead of the sink.
                let (tx, rx) = std::sync::mpsc::sync_channel(4);
                let worker = s.spawn(move || {
                    for (n, parts) in part {
                        if tx.send(compile(n, parts)).is_err() {
                            return;
                        }
                    }
                });
                (worker, rx, names)
            })
            .collect();
        for (w, rx, names) in workers {
            let mut done = 0;
            for (n, d, parts) in rx.iter() {
                done += 1;
                sink(n, d, parts);
            }
            if w.join().is_err() {
                // A compile that panicked on one thread is redone here, from scratch, so
                // the panic surfaces on the caller's thread with its own message.
                for n in &names[done..] {
                    let (n, d, parts) = compile(n.clone(), NodeParts::default());
                    sink(n, d, parts);
                }
            }
        }
    })
}
