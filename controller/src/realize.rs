//! Realization: the one task that turns the logical model and the observed topology into
//! each transport node's desired state.
//!
//! It wakes when either input changes, recompiles only the nodes whose inputs changed
//! ([`IncrementalCompiler`]) and publishes the results on the fabric's per-node watch
//! channels. Sessions pick up only the newest value, so a burst of API writes or OVSDB
//! updates costs at most one compile per node, not one per event.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::compiler::IncrementalCompiler;
use crate::fabric::{Fabric, Topology};
use crate::model::LogicalModel;

/// Runs until `shutdown` is cancelled or the model's sender is gone.
pub async fn run(
    mut model: watch::Receiver<Arc<LogicalModel>>,
    fabric: Arc<Fabric>,
    shutdown: CancellationToken,
) {
    let mut topology = fabric.watch_topology();
    let mut compiler = IncrementalCompiler::new();
    loop {
        let m = model.borrow_and_update().clone();
        let t = topology.borrow_and_update().clone();
        // Compiling thousands of nodes is CPU work: keep it off the I/O threads.
        let (c, published) = match tokio::task::spawn_blocking({
            let fabric = fabric.clone();
            move || {
                let n = realize(&mut compiler, &m, &t, &fabric);
                (compiler, n)
            }
        })
        .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "compiler task failed; realization stopped");
                return;
            }
        };
        compiler = c;
        tracing::debug!(published, "realized");
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = model.changed() => if r.is_err() { return },
            r = topology.changed() => if r.is_err() { return },
        }
    }
}

/// One round: compiles what changed and publishes it; returns how many nodes got a new
/// desired state.
pub fn realize(
    compiler: &mut IncrementalCompiler,
    model: &LogicalModel,
    topology: &Topology,
    fabric: &Fabric,
) -> usize {
    let started = std::time::Instant::now();
    let mut changed = 0;
    let updates = compiler.update(model, topology);
    let compiled = updates.len();
    for (node, desired) in updates {
        if fabric.publish_desired(&node, Arc::new(desired)) {
            changed += 1;
        }
    }
    tracing::debug!(
        revision = model.revision(),
        nodes = topology.nodes.len(),
        compiled,
        changed,
        elapsed_us = started.elapsed().as_micros() as u64,
        "compiled"
    );
    changed
}
