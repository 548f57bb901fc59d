//! Realization: the one task that turns the logical model and the observed topology into
//! each transport node's desired state.
//!
//! It wakes when either input changes, recompiles only the nodes whose inputs changed
//! ([`IncrementalCompiler`]) and publishes the results on the fabric's per-node watch
//! channels. Sessions pick up only the newest value, so a burst of API writes or OVSDB
//! updates costs at most one compile per node, not one per event.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::compiler::{DesiredNode, IncrementalCompiler};
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
    let mut startup = StartupHold::new(tokio::time::Instant::now().into_std() + STARTUP_HOLD_MAX);
    loop {
        let m = model.borrow_and_update().clone();
        let t = topology.borrow_and_update().clone();
        // Compiling thousands of nodes is CPU work: keep it off the I/O threads.
        let (c, h, published) = match tokio::task::spawn_blocking({
            let fabric = fabric.clone();
            move || {
                let n = realize_held(&mut compiler, &mut startup, &m, &t, &fabric);
                (compiler, startup, n)
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
        startup = h;
        tracing::debug!(published, "realized");
        let hold_ends = startup.pending().then_some(startup.until);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = model.changed() => if r.is_err() { return },
            r = topology.changed() => if r.is_err() { return },
            _ = sleep_until_opt(hold_ends) => {}
        }
    }
}

async fn sleep_until_opt(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Longest time, after weftd starts, that a node's desired state is held back while
/// hypervisors it still has Weft tunnel ports to have not reconnected.
///
/// After a restart the hypervisors reconnect one by one (OVS retries with backoff, up to
/// 8 s apart). A node compiled before its peers are back would get a desired state without
/// its tunnels and remote-MAC flows, and the southbound would remove them: traffic that was
/// flowing stops until the peers return. So until its peers are in the topology (or this
/// passed, for peers that are gone for good) the node keeps what its switch holds.
pub const STARTUP_HOLD_MAX: std::time::Duration = std::time::Duration::from_secs(20);

/// Desired states held back at startup (see [`STARTUP_HOLD_MAX`]).
#[derive(Debug)]
pub struct StartupHold {
    until: std::time::Instant,
    held: BTreeMap<String, DesiredNode>,
}

impl StartupHold {
    pub fn new(until: std::time::Instant) -> Self {
        StartupHold {
            until,
            held: BTreeMap::new(),
        }
    }

    /// Nothing is held back, ever (tests of the compiler task alone).
    pub fn off() -> Self {
        Self::new(std::time::Instant::now())
    }

    fn pending(&self) -> bool {
        !self.held.is_empty()
    }

    /// Remotes `node` has Weft tunnel ports to that are not in the topology (while the
    /// hold lasts; empty afterwards).
    fn missing_peers(&self, topology: &Topology, node: &str) -> Vec<String> {
        if std::time::Instant::now() >= self.until {
            return Vec::new();
        }
        topology
            .nodes
            .get(node)
            .map(|n| {
                n.tunnels
                    .keys()
                    .filter(|r| !topology.nodes.contains_key(*r))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// [`realize`] with the startup hold: a compiled node whose tunnel peers have not
/// reconnected yet is kept aside, and published (in its newest version) once they have or
/// the hold expired.
pub fn realize_held(
    compiler: &mut IncrementalCompiler,
    hold: &mut StartupHold,
    model: &LogicalModel,
    topology: &Topology,
    fabric: &Fabric,
) -> usize {
    let started = std::time::Instant::now();
    let mut changed = 0;
    let updates = compiler.update(model, topology);
    let compiled = updates.len();
    for (node, desired) in updates {
        hold.held.insert(node, desired);
    }
    let held = std::mem::take(&mut hold.held);
    for (node, desired) in held {
        let missing = hold.missing_peers(topology, &node);
        if !missing.is_empty() {
            tracing::info!(node = %node, ?missing, "holding the node's new desired state until \
                the hypervisors it tunnels to reconnect (weftd just started)");
            hold.held.insert(node, desired);
            continue;
        }
        if fabric.publish_desired(&node, Arc::new(desired)) {
            changed += 1;
        }
    }
    tracing::debug!(
        revision = model.revision(),
        nodes = topology.nodes.len(),
        compiled,
        changed,
        held = hold.held.len(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "compiled"
    );
    changed
}

/// One round: compiles what changed and publishes it; returns how many nodes got a new
/// desired state.
pub fn realize(
    compiler: &mut IncrementalCompiler,
    model: &LogicalModel,
    topology: &Topology,
    fabric: &Fabric,
) -> usize {
    realize_held(compiler, &mut StartupHold::off(), model, topology, fabric)
}
