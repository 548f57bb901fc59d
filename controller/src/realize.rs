//! Realization: the one task that turns the logical model and the observed topology into
//! each transport node's desired state.
//!
//! It wakes when either input changes, recompiles the nodes and publishes the results on
//! the fabric's per-node watch channels; sessions pick up only the newest value, so a
//! burst of API writes or OVSDB updates costs one compile per node, not one per event.
//! Publishing an unchanged desired state is a no-op ([`Fabric::publish_desired`]
//! compares), so nodes untouched by a change see nothing.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::compiler::compile_node;
use crate::fabric::{Fabric, Topology};
use crate::model::LogicalModel;

/// Runs until `shutdown` is cancelled or both inputs are gone.
pub async fn run(
    mut model: watch::Receiver<Arc<LogicalModel>>,
    fabric: Arc<Fabric>,
    shutdown: CancellationToken,
) {
    let mut topology = fabric.watch_topology();
    loop {
        let m = model.borrow_and_update().clone();
        let t = topology.borrow_and_update().clone();
        realize_all(&m, &t, &fabric);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = model.changed() => if r.is_err() { return },
            r = topology.changed() => if r.is_err() { return },
        }
    }
}

/// Compiles every known node once and publishes what changed; returns how many nodes got
/// a new desired state.
pub fn realize_all(model: &LogicalModel, topology: &Topology, fabric: &Fabric) -> usize {
    let started = std::time::Instant::now();
    let mut changed = 0;
    for node in topology.nodes.keys() {
        let desired = compile_node(model, topology, node);
        if fabric.publish_desired(node, Arc::new(desired)) {
            changed += 1;
        }
    }
    tracing::debug!(
        revision = model.revision(),
        nodes = topology.nodes.len(),
        changed,
        elapsed_us = started.elapsed().as_micros() as u64,
        "realized"
    );
    changed
}
