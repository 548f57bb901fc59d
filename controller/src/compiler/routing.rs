//! Which routers a node routes for, and what that pulls into its compilation.
//!
//! Routing is distributed: a node routes for every router attached to a switch it has a
//! port on. It then needs the router's whole reach: every port of every switch the router
//! is attached to (as neighbour and L2 entries), and a tunnel to every node with a port on
//! one of those switches, in both directions, because a routed packet crosses its one
//! tunnel hop with the *destination* switch's VNI. A router's switches and their nodes
//! thus behave, for tunnels, like one switch.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::binding::Bindings;
use crate::model::{LogicalModel, LogicalRouter, RouterPort};

/// One router as seen from one node.
pub(crate) struct RouterScope<'m> {
    pub(crate) router: &'m LogicalRouter,
    /// The router's ports, each with its switch's VNI.
    pub(crate) ports: Vec<(&'m RouterPort, u32)>,
    /// Every node with a bound port on one of the router's switches.
    pub(crate) nodes: BTreeSet<&'m str>,
}

/// The routers attached to `switches` (a node's switches), by router id.
pub(crate) fn router_scopes<'m>(
    model: &'m LogicalModel,
    bindings: &'m Bindings,
    switches: &BTreeSet<Uuid>,
) -> BTreeMap<Uuid, RouterScope<'m>> {
    let mut scopes = BTreeMap::new();
    for sw in switches {
        let Some(rp) = model.router_port_of_switch(sw) else {
            continue;
        };
        if scopes.contains_key(&rp.router) {
            continue;
        }
        let Some(router) = model.router(&rp.router) else {
            continue;
        };
        let mut scope = RouterScope {
            router,
            ports: Vec::new(),
            nodes: BTreeSet::new(),
        };
        for rp in model.ports_of_router(&router.id) {
            let Some(s) = model.switch(&rp.switch) else {
                continue;
            };
            scope.ports.push((rp, s.vni));
            for p in model.ports_of_switch(&s.id) {
                if let Some(b) = bindings.ports.get(&p.id) {
                    scope.nodes.insert(b.node.as_str());
                }
            }
        }
        scopes.insert(router.id, scope);
    }
    scopes
}

/// `switches` plus every switch attached to a router of one of them: what a node with
/// ports on `switches` compiles from.
pub(crate) fn reach(model: &LogicalModel, switches: &BTreeSet<Uuid>) -> BTreeSet<Uuid> {
    let mut out = switches.clone();
    for sw in switches {
        if let Some(rp) = model.router_port_of_switch(sw) {
            out.extend(model.ports_of_router(&rp.router).map(|rp| rp.switch));
        }
    }
    out
}

/// The routers whose flows change when switch `sw` changes, in either snapshot.
pub(crate) fn routers_of_switch(
    before: &LogicalModel,
    after: &LogicalModel,
    sw: &Uuid,
) -> impl Iterator<Item = Uuid> {
    [before, after]
        .into_iter()
        .filter_map(|m| m.router_port_of_switch(sw).map(|rp| rp.router))
        .collect::<Vec<_>>()
        .into_iter()
}

/// Every switch attached to `router` in either snapshot.
pub(crate) fn switches_of_router(
    before: &LogicalModel,
    after: &LogicalModel,
    router: &Uuid,
) -> BTreeSet<Uuid> {
    [before, after]
        .into_iter()
        .flat_map(|m| m.ports_of_router(router).map(|rp| rp.switch))
        .collect()
}
