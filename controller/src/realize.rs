//! Realization: the one task that turns the logical model and the observed topology into
//! each transport node's desired state.
//!
//! It wakes when either input changes, recompiles only the nodes whose inputs changed
//! ([`IncrementalCompiler`]) and publishes the results on the per-node watch channels
//! ([`Channels`]), with the bindings it decided. Sessions pick up only the newest value, so a burst of API writes or OVSDB
//! updates costs at most one compile per node, not one per event.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::compiler::IncrementalCompiler;

use crate::channels::Channels;
use crate::cluster::Ownership;
use crate::desired::DesiredNode;
use crate::hardware_vtep::{VtepMap, endpoints};
use crate::metrics::Metrics;
use crate::model::LogicalModel;
use crate::topology::{Topology, TransportNodes};

/// Runs until `shutdown` is cancelled or the model's sender is gone, with the default
/// startup hold ([`STARTUP_HOLD_MAX`]).
pub async fn run(
    model: watch::Receiver<Arc<LogicalModel>>,
    nodes: Arc<TransportNodes>,
    channels: Arc<Channels>,
    shutdown: CancellationToken,
) {
    run_with_hold(
        model,
        nodes,
        channels,
        shutdown,
        STARTUP_HOLD_MAX,
        Arc::default(),
    )
    .await
}

/// [`run`] with a startup hold of `startup_hold` (weftd: `--startup-hold`; zero = none),
/// recording each round's compile time and recompiled nodes into `metrics`.
pub async fn run_with_hold(
    model: watch::Receiver<Arc<LogicalModel>>,
    nodes: Arc<TransportNodes>,
    channels: Arc<Channels>,
    shutdown: CancellationToken,
    startup_hold: std::time::Duration,
    metrics: Arc<Metrics>,
) {
    let single = Ownership::single("weftd");
    // No hardware VTEPs: a registry nobody reports to.
    let (_no_vteps, vteps) = watch::channel(Arc::new(VtepMap::new()));
    let inputs = Inputs {
        model,
        sessions: nodes.clone(),
        nodes,
        vteps,
    };
    run_owned(inputs, channels, shutdown, startup_hold, metrics, single).await
}

/// What the realize task compiles from, each through its owner: the logical model, the
/// hypervisors ([`TransportNodes`]) and the hardware VTEPs (the registry's watch,
/// [`crate::hardware_vtep::HardwareVteps::watch`]).
pub struct Inputs {
    pub model: watch::Receiver<Arc<LogicalModel>>,
    pub nodes: Arc<TransportNodes>,
    /// The registry this instance's OVSDB sessions report to: `nodes` itself, except in
    /// cluster mode, where `nodes` is merged from it and the etcd records. Read only to
    /// tell which hypervisors are still joining ([`TransportNodes::arriving`], and the
    /// nodes it has that `nodes` does not show yet).
    pub sessions: Arc<TransportNodes>,
    pub vteps: watch::Receiver<Arc<VtepMap>>,
}

/// [`run_with_hold`] compiling only the nodes this instance owns (cluster mode; without
/// `--etcd` it owns them all). A node this instance stops owning has its desired state
/// withdrawn ([`Channels::retract_desired`]), so that if it owns the node again its
/// sessions wait for a fresh compile instead of acting on a stale one.
///
/// Each round compiles from the topology with a snapshot of the hardware VTEPs' endpoints
/// ([`Topology::hardware_vteps`]); a change of any input wakes the task.
pub async fn run_owned(
    inputs: Inputs,
    channels: Arc<Channels>,
    shutdown: CancellationToken,
    startup_hold: std::time::Duration,
    metrics: Arc<Metrics>,
    ownership: Ownership,
) {
    let Inputs {
        mut model,
        nodes,
        sessions,
        mut vteps,
    } = inputs;
    let mut view = ownership.watch();
    let mut topology = nodes.watch();
    let mut compiler = IncrementalCompiler::new();
    let mut startup = StartupHold::new(tokio::time::Instant::now().into_std() + startup_hold);
    let mut rests = Rests::default();
    // Nodes in the previous round's topology: a round in which nodes joined is part of
    // a cold start, one that only compiled a change (an API write, a plug) is not.
    let mut last_nodes = 0usize;
    let mut last_join: Option<std::time::Instant> = None;
    loop {
        let round_started = std::time::Instant::now();
        let m = model.borrow_and_update().clone();
        let t = with_vteps(&topology.borrow_and_update(), &vteps.borrow_and_update());
        let clustered = view.borrow_and_update().clustered;
        // Which nodes to compile, decided once per round: those this instance owns and
        // sees whole. A node it has just taken over is seen through the last owner's
        // record until its own session has switched to the whole bridge, and that
        // record lacks the tunnel ports its flows need (the switch keeps its flows
        // meanwhile).
        let owned: Option<std::collections::BTreeSet<String>> = clustered.then(|| {
            t.nodes
                .keys()
                .filter(|n| !t.partial.contains(*n) && ownership.role(n).is_owner())
                .cloned()
                .collect()
        });
        // Only rounds in which hypervisors joined rest for those still arriving: a
        // connection that lingers in its setup (a silent peer, until its request
        // timeout) must not slow down the API's writes.
        let joined = t.nodes.len() > last_nodes;
        last_nodes = t.nodes.len();
        if joined {
            last_join = Some(round_started);
        }
        // A burst: hypervisors joined lately and more are connecting.
        let burst = arriving(&sessions, &nodes, &t) > 0
            && last_join.is_some_and(|j| j.elapsed() < BURST_QUIET);
        // Compiling thousands of nodes is CPU work: keep it off the I/O threads.
        let (c, h, round) = match tokio::task::spawn_blocking({
            let channels = channels.clone();
            let metrics = metrics.clone();
            move || {
                let in_scope = |n: &str| owned.as_ref().is_none_or(|o| o.contains(n));
                let started = std::time::Instant::now();
                let round = realize_round(
                    &mut compiler,
                    &mut startup,
                    (&m, &t),
                    &channels,
                    &in_scope,
                    Some(burst),
                );
                metrics.compile.observe(started.elapsed());
                metrics.nodes_recompiled.add(round.compiled as u64);
                (compiler, startup, round)
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
        let arriving = arriving(&sessions, &nodes, &nodes.snapshot());
        tracing::debug!(published = round.published, arriving, joined, "realized");
        // A node put off for its tunnels is part of the burst like one compiled.
        let compiled = if joined {
            round.compiled + round.deferred
        } else {
            0
        };
        if let Some(rest) = rests.after(round_started.elapsed(), compiled, arriving) {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(rest) => {}
            }
        }
        let hold_ends = startup.pending().then_some(startup.until);
        // A node put off for its tunnel ports is normally compiled when their ofports
        // wake this task; this round comes anyway if they never do.
        let deferred_due = compiler
            .deferring()
            .then(|| std::time::Instant::now() + DEFERRED_WAIT);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = model.changed() => if r.is_err() { return },
            r = topology.changed() => if r.is_err() { return },
            r = vteps.changed() => if r.is_err() { return },
            r = view.changed() => if r.is_err() { return },
            _ = sleep_until_opt(hold_ends) => {}
            _ = sleep_until_opt(deferred_due) => {}
        }
    }
}

/// Hypervisors still joining: connections not yet through their first pass and, in
/// cluster mode, nodes this instance's sessions see that the compiled topology does not
/// show yet. A standby's session sees only a node's root row, so the node joins the
/// compiled topology when its owner's record arrives, behind the connections; counting
/// only the connections, the last few thousand nodes of a cold start joined after the
/// burst had ended, each recompiling its neighbours again.
fn arriving(sessions: &TransportNodes, nodes: &TransportNodes, compiled: &Topology) -> usize {
    let connecting = sessions.arriving();
    if std::ptr::eq(sessions, nodes) {
        // One instance: the sessions' registry is the compiled one.
        return connecting;
    }
    // Counted, not compared by size: the compiled topology also holds nodes seen only
    // through their records (no session here), so equal sizes do not mean none is
    // missing.
    connecting
        + sessions
            .snapshot()
            .nodes
            .keys()
            .filter(|id| !compiled.nodes.contains_key(id.as_str()))
            .count()
}

/// The topology the compiler reads: the hypervisors' snapshot with the hardware VTEPs'
/// endpoints (the two registries stay the owners of their facts).
fn with_vteps(topology: &Arc<Topology>, vteps: &VtepMap) -> Arc<Topology> {
    let endpoints = endpoints(vteps);
    if endpoints.is_empty() && topology.hardware_vteps.is_empty() {
        return topology.clone();
    }
    let mut t = (**topology).clone();
    t.hardware_vteps = Arc::new(endpoints);
    Arc::new(t)
}

/// When the compiler rests between rounds, so that the changes arriving meanwhile are
/// compiled together. Otherwise every arrival recompiles its neighbours again, one round
/// each, and the compiler takes the CPU the sessions need to bring those nodes in.
///
/// - A long round means a burst (thousands of hypervisors joining): rest as long as it
///   took (bounded by [`MAX_REST`]).
/// - A round that compiled nodes while hypervisors are still arriving (connections
///   accepted, not yet through their first pass) is part of a burst too, however short:
///   more neighbours are on their way. Rest, twice as long as the previous such rest
///   (from [`BURST_ROUND`] up to [`MAX_ARRIVING_REST`]) until nobody is arriving, so
///   that the rounds of a cold start grow with the fabric, as the long rounds of a
///   single instance do. The round's length alone does not tell: in cluster mode each
///   instance compiles only the nodes it owns, so its rounds are a K-th of a single
///   instance's while the arrivals (every instance has a session to every hypervisor)
///   take as long; with rests as short the same arrivals cost many more rounds, each
///   recompiling most owned nodes (a node shares switches with many others),
///   and the work did not divide K ways.
///
/// Only rounds in which nodes joined count as compiling here (the caller passes 0 for
/// the others), so a connection that lingers in its setup does not slow the API down.
///
/// Neither applies to an API write on a settled fabric: a single port on a switch that
/// spans 64 hypervisors compiles in well under [`BURST_ROUND`], with nobody arriving.
#[derive(Debug, Default)]
struct Rests {
    /// The last rest taken because hypervisors were arriving, while they still are.
    arriving: Option<std::time::Duration>,
}

impl Rests {
    /// The rest after a round that took `took` and compiled `compiled` nodes, with
    /// `arriving` hypervisor connections not yet through their first pass.
    fn after(
        &mut self,
        took: std::time::Duration,
        compiled: usize,
        arriving: usize,
    ) -> Option<std::time::Duration> {
        let burst = (took >= BURST_ROUND).then(|| took.min(MAX_REST));
        if arriving == 0 {
            self.arriving = None;
            return burst;
        }
        if compiled == 0 {
            return burst;
        }
        let rest = self
            .arriving
            .map_or(BURST_ROUND, |r| (r * 2).min(MAX_ARRIVING_REST));
        self.arriving = Some(rest);
        burst.max(Some(rest))
    }
}

/// How long after the last hypervisor joined (with more still connecting) joining nodes
/// are put off as part of a burst ([`realize_round`]). A lone hypervisor joining a
/// settled fabric while another connection lingers in its setup waits at most this.
const BURST_QUIET: std::time::Duration = std::time::Duration::from_secs(2);
/// Longest wait, when nothing else changes, for the round that compiles a node put off
/// until its tunnel ports exist ([`IncrementalCompiler::update_tunnels_first`]).
const DEFERRED_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// A compile round at least this long is part of a burst (see [`Rests`]).
const BURST_ROUND: std::time::Duration = std::time::Duration::from_millis(100);
/// Longest rest after a burst round.
const MAX_REST: std::time::Duration = std::time::Duration::from_millis(500);
/// Longest rest after a round while hypervisors are still arriving: the longest a node
/// that joined waits for its first compile during a cold start.
const MAX_ARRIVING_REST: std::time::Duration = std::time::Duration::from_secs(2);

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
/// This is the default; weftd's `--startup-hold` / `startup_hold_secs` sets another.
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
                    .filter(|r| {
                        !r.starts_with(crate::desired::VTEP_REMOTE_PREFIX)
                            && !topology.nodes.contains_key(*r)
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What one compile round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Nodes whose desired state was computed again.
    pub compiled: usize,
    /// Nodes that got a new desired state.
    pub published: usize,
    /// Joining nodes whose tunnel ports were published ahead of their compile.
    pub deferred: usize,
}

/// [`realize`] with the startup hold: a compiled node whose tunnel peers have not
/// reconnected yet is kept aside, and published (in its newest version) once they have or
/// the hold expired.
pub fn realize_held(
    compiler: &mut IncrementalCompiler,
    hold: &mut StartupHold,
    model: &LogicalModel,
    topology: &Topology,
    channels: &Channels,
) -> Round {
    realize_scoped(compiler, hold, model, topology, channels, &|_| true)
}

/// [`realize_held`] for the nodes `in_scope` only; the desired states of nodes that left
/// the scope are withdrawn.
pub fn realize_scoped(
    compiler: &mut IncrementalCompiler,
    hold: &mut StartupHold,
    model: &LogicalModel,
    topology: &Topology,
    channels: &Channels,
    in_scope: &dyn Fn(&str) -> bool,
) -> Round {
    realize_round(compiler, hold, (model, topology), channels, in_scope, None)
}

/// [`realize_scoped`]; with `tunnels_first` (the compiler task: `Some(burst)`), a
/// joining node can get its tunnel ports published alone and be compiled later, while
/// hypervisors are still joining (`burst`) or its tunnels do not exist yet
/// ([`IncrementalCompiler::update_tunnels_first`]): during a cold start each node is
/// then compiled about once, with its neighbours there and its tunnels up, instead of
/// once as it joins and again for each wave of neighbours and of their tunnels.
fn realize_round(
    compiler: &mut IncrementalCompiler,
    hold: &mut StartupHold,
    (model, topology): (&LogicalModel, &Topology),
    channels: &Channels,
    in_scope: &dyn Fn(&str) -> bool,
    tunnels_first: Option<bool>,
) -> Round {
    let started = std::time::Instant::now();
    let mut changed = 0;
    let mut compiled = 0;
    // Each node is published (or held) as soon as it is compiled, so its previous state
    // can go at once (see `IncrementalCompiler::update_each`).
    let mut held = std::mem::take(&mut hold.held);
    let mut consider = |hold: &mut StartupHold, node: String, desired: DesiredNode| {
        let missing = hold.missing_peers(topology, &node);
        if !missing.is_empty() {
            tracing::info!(node = %node, ?missing, "holding the node's new desired state until \
                the hypervisors it tunnels to reconnect (weftd just started)");
            hold.held.insert(node, desired);
        } else if channels.publish_desired(&node, Arc::new(desired)) {
            changed += 1;
        }
    };
    let publish_bindings = |b: &crate::binding::Bindings| {
        channels.publish_bindings(Arc::new(b.clone()));
    };
    let mut deferred = 0;
    let sink = |node: String, desired| {
        compiled += 1;
        held.remove(&node);
        consider(hold, node, desired);
    };
    let left = if let Some(burst) = tunnels_first {
        let on_tunnels = |node: String, tunnels| {
            deferred += 1;
            channels.publish_tunnels(&node, tunnels);
        };
        let inputs = (model, topology);
        compiler.update_tunnels_first(inputs, in_scope, burst, publish_bindings, on_tunnels, sink)
    } else {
        compiler.update_scoped(model, topology, in_scope, publish_bindings, sink)
    };
    for node in &left {
        held.remove(node);
        channels.retract_desired(node);
    }
    for (node, desired) in held {
        consider(hold, node, desired);
    }
    tracing::debug!(
        revision = model.revision(),
        nodes = topology.nodes.len(),
        compiled,
        deferred,
        changed,
        held = hold.held.len(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "compiled"
    );
    Round {
        compiled,
        published: changed,
        deferred,
    }
}

/// One round: compiles what changed and publishes it; returns how many nodes got a new
/// desired state.
pub fn realize(
    compiler: &mut IncrementalCompiler,
    model: &LogicalModel,
    topology: &Topology,
    channels: &Channels,
) -> usize {
    realize_held(compiler, &mut StartupHold::off(), model, topology, channels).published
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::topology::NodeView;

    fn model() -> LogicalModel {
        crate::model::fixtures::blue(&[(1, "a1"), (2, "a2"), (3, "a3")])
    }

    fn node(id: &str, n: u8, vif: &str, tunnels: &[&str]) -> NodeView {
        let tunnels: Vec<(&str, u32)> = tunnels.iter().map(|t| (*t, 10)).collect();
        crate::compiler::tunnels_first::tests::node(id, n, vif, &tunnels)
    }

    fn remotes(f: &Channels, node: &str) -> Vec<String> {
        f.watch_desired(node)
            .borrow()
            .tunnels
            .iter()
            .map(|t| t.remote.clone())
            .collect()
    }

    /// After a restart hv1 reconnects first, still holding its tunnel to hv2: its desired
    /// state (which would have no tunnel to hv2) waits until hv2 is back.
    #[test]
    fn startup_hold_waits_for_the_peers_a_node_still_tunnels_to() {
        let f = Channels::new();
        let m = model();
        let mut c = IncrementalCompiler::new();
        let mut hold = StartupHold::new(std::time::Instant::now() + STARTUP_HOLD_MAX);
        let mut t = Topology::default();
        t.nodes.insert("hv1".into(), node("hv1", 1, "a1", &["hv2"]));
        let round = realize_held(&mut c, &mut hold, &m, &t, &f);
        assert_eq!(round.published, 0);
        assert_eq!(round.compiled, 1);
        assert!(!f.desired_published("hv1"), "published without its peer");
        assert!(hold.pending());

        t.nodes.insert("hv2".into(), node("hv2", 2, "a2", &["hv1"]));
        realize_held(&mut c, &mut hold, &m, &t, &f);
        assert!(!hold.pending());
        assert_eq!(remotes(&f, "hv1"), ["hv2"]);
        assert_eq!(remotes(&f, "hv2"), ["hv1"]);
    }

    /// A tunnel port to a VTEP (`vtep:` remote) is no hypervisor to wait for.
    #[test]
    fn startup_hold_does_not_wait_for_vteps() {
        let f = Channels::new();
        let m = model();
        let mut c = IncrementalCompiler::new();
        let mut hold = StartupHold::new(std::time::Instant::now() + STARTUP_HOLD_MAX);
        let mut t = Topology::default();
        t.nodes
            .insert("hv1".into(), node("hv1", 1, "a1", &["vtep:192.0.2.100"]));
        realize_held(&mut c, &mut hold, &m, &t, &f);
        assert!(!hold.pending());
        assert!(f.desired_published("hv1"));
    }

    /// Once the hold expired (or with none), a peer that never came back does not block.
    #[test]
    fn expired_hold_publishes_without_missing_peers() {
        let f = Channels::new();
        let m = model();
        let mut c = IncrementalCompiler::new();
        let mut hold = StartupHold::off();
        let mut t = Topology::default();
        t.nodes.insert("hv1".into(), node("hv1", 1, "a1", &["hv3"]));
        t.nodes.insert("hv2".into(), node("hv2", 2, "a2", &["hv1"]));
        realize_held(&mut c, &mut hold, &m, &t, &f);
        assert!(!hold.pending());
        assert!(f.desired_published("hv1"));
        assert_eq!(remotes(&f, "hv1"), ["hv2"]);
    }

    /// Cluster mode: only owned nodes are compiled; a node that becomes owned is compiled
    /// whole at once; one that stops being owned has its desired state withdrawn.
    #[test]
    fn only_nodes_in_scope_are_compiled_and_one_leaving_it_is_withdrawn() {
        let f = Channels::new();
        let m = model();
        let mut c = IncrementalCompiler::new();
        let mut hold = StartupHold::off();
        let mut t = Topology::default();
        t.nodes.insert("hv1".into(), node("hv1", 1, "a1", &[]));
        t.nodes.insert("hv2".into(), node("hv2", 2, "a2", &[]));
        let hv1 = |n: &str| n == "hv1";
        let hv2 = |n: &str| n == "hv2";
        realize_scoped(&mut c, &mut hold, &m, &t, &f, &hv1);
        assert!(f.desired_published("hv1"));
        assert!(!f.desired_published("hv2"), "hv2 is not this instance's");
        assert_eq!(remotes(&f, "hv1"), ["hv2"]);
        // hv2 becomes ours with nothing else changed: compiled whole.
        realize_scoped(&mut c, &mut hold, &m, &t, &f, &|_| true);
        assert!(f.desired_published("hv2"));
        assert_eq!(remotes(&f, "hv2"), ["hv1"]);
        // hv1 is no longer ours: withdrawn, and compiled afresh when it is again.
        realize_scoped(&mut c, &mut hold, &m, &t, &f, &hv2);
        assert!(!f.desired_published("hv1"));
        assert!(f.desired_published("hv2"));
        realize_scoped(&mut c, &mut hold, &m, &t, &f, &|_| true);
        assert!(f.desired_published("hv1"));
        assert_eq!(remotes(&f, "hv1"), ["hv2"]);
    }

    /// A settled fabric never waits; a long round rests as long as it took (bounded); while
    /// hypervisors arrive, each compiling round rests twice as long as the one before,
    /// up to the bound, and from the start again once nobody is arriving.
    #[test]
    fn rests_grow_while_hypervisors_arrive() {
        let ms = std::time::Duration::from_millis;
        let mut r = Rests::default();
        assert_eq!(
            r.after(ms(5), 3, 0),
            None,
            "an API write on a settled fabric"
        );
        assert_eq!(r.after(ms(300), 3, 0), Some(ms(300)));
        assert_eq!(r.after(ms(900), 3, 0), Some(MAX_REST));
        assert_eq!(r.after(ms(5), 0, 7), None, "nothing compiled");
        let rests: Vec<_> = (0..6).map(|_| r.after(ms(5), 3, 7)).collect();
        let want = [100, 200, 400, 800, 1600, 2000].map(|m| Some(ms(m)));
        assert_eq!(rests, want);
        assert_eq!(r.after(ms(5), 3, 0), None, "arrivals over");
        assert_eq!(
            r.after(ms(300), 3, 2),
            Some(ms(300)),
            "a long round rests longer"
        );
        assert_eq!(r.after(ms(5), 3, 2), Some(ms(200)));
    }

    /// Bindings are handed out before the first node is compiled, so that a port's mark
    /// waits for its own node's install only, not for the whole round.
    #[test]
    fn bindings_come_before_any_node_of_the_round() {
        let m = model();
        let mut c = IncrementalCompiler::new();
        let mut t = Topology::default();
        t.nodes.insert("hv1".into(), node("hv1", 1, "a1", &[]));
        t.nodes.insert("hv2".into(), node("hv2", 2, "a2", &[]));
        let seen = std::cell::RefCell::new(Vec::new());
        c.update_scoped(
            &m,
            &t,
            &|_| true,
            |b| {
                seen.borrow_mut()
                    .push(format!("bindings:{}", b.ports.len()))
            },
            |n, _| seen.borrow_mut().push(n),
        );
        assert_eq!(seen.into_inner(), ["bindings:2", "hv1", "hv2"]);
        // Nothing changed: no bindings, no node.
        let seen = std::cell::RefCell::new(Vec::new());
        c.update_scoped(
            &m,
            &t,
            &|_| true,
            |_| seen.borrow_mut().push("bindings".to_owned()),
            |n, _| seen.borrow_mut().push(n),
        );
        assert!(seen.into_inner().is_empty());
    }
}
