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
//! recompiles only the members of what changed, and of each member only the pieces
//! (`parts`: one per switch) whose inputs changed. [`node_fingerprint`] summarises the same
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

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::binding::Bindings;
use crate::desired::DesiredNode;
use crate::model::LogicalModel;
use crate::topology::Topology;

pub mod ids;
mod incremental;
pub(crate) mod intern;
mod parts;
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
use parts::NodeParts;
pub use stage::{
    BLOCKED_MARK, OPEN_DIRECTION_MARK, OPEN_DIRECTION_PRIORITY, acl_flow_priority, acl_mark,
    link_local, port_masks,
};

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

/// Like [`compile_node`] with bindings computed once for all nodes (the compiler task
/// compiles many nodes from one snapshot).
pub fn compile_node_with(
    model: &LogicalModel,
    topology: &Topology,
    bindings: &Bindings,
    node: &str,
) -> DesiredNode {
    parts::compile_node_parts(model, topology, bindings, node, &mut NodeParts::default())
}
