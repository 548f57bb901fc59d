//! The honesty check: a node's flow and group tables, as the simulated switch holds them
//! after weftd's flow mods and bundles, against `weft::compiler::compile_node` over the
//! same logical model and the topology the simulated nodes themselves report.

use std::collections::BTreeMap;

use weft::compiler::compile_node_with;

use weft::binding::Bindings;
use weft::model::LogicalModel;
use weft::topology::Topology;

use crate::node::Node;

/// The topology as weftd should see it: every node's own view.
pub fn topology(nodes: &[Node]) -> Topology {
    Topology {
        nodes: nodes
            .iter()
            .map(|n| {
                let v = n.lock().node_view();
                (v.id.clone(), v)
            })
            .collect(),
        ..Topology::default()
    }
}

/// How one node compares with the compiler.
#[derive(Debug, Clone, Default)]
pub struct NodeCheck {
    pub node: String,
    pub flows: usize,
    pub groups: usize,
    pub expected_flows: usize,
    pub expected_groups: usize,
    /// Human-readable differences (first few), empty when equal.
    pub differences: Vec<String>,
}

impl NodeCheck {
    pub fn ok(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Compares `node`'s tables with the compiler's desired state for it.
pub fn check_node(
    model: &LogicalModel,
    topology: &Topology,
    bindings: &Bindings,
    node: &Node,
) -> NodeCheck {
    let (id, flows, groups) = {
        let st = node.lock();
        (
            st.spec.system_id.clone(),
            st.tables.flows(),
            st.tables.groups().clone(),
        )
    };
    let want = compile_node_with(model, topology, bindings, &id);
    let mut diffs = Vec::new();
    for (k, c) in want.flows.iter() {
        match flows.get(k) {
            None => diffs.push(format!("missing flow {}", weft::desired::flow_add(k, c))),
            Some(h) if h != &**c => diffs.push(format!(
                "different flow: have {} want {}",
                weft::desired::flow_add(k, h),
                weft::desired::flow_add(k, c)
            )),
            Some(_) => {}
        }
    }
    for (k, c) in &flows {
        if !want.flows.contains_key(k) {
            diffs.push(format!("unexpected flow {}", weft::desired::flow_add(k, c)));
        }
    }
    let want_groups: BTreeMap<u32, _> = want
        .groups
        .iter()
        .map(|(id, g)| {
            let g = openflow::table::Group {
                group_type: g.group_type,
                buckets: g.buckets.clone(),
            };
            (*id, g)
        })
        .collect();
    if want_groups != groups {
        for (gid, g) in &want_groups {
            if groups.get(gid) != Some(g) {
                diffs.push(format!("group {gid} differs or is missing"));
            }
        }
        for gid in groups.keys() {
            if !want_groups.contains_key(gid) {
                diffs.push(format!("unexpected group {gid}"));
            }
        }
    }
    NodeCheck {
        node: id,
        flows: flows.len(),
        groups: groups.len(),
        expected_flows: want.flows.len(),
        expected_groups: want.groups.len(),
        differences: diffs,
    }
}

/// [`check_node`] on the nodes at `sample` (indexes). CPU-heavy at scale (the compiler
/// runs here): call it from a blocking section.
pub fn check_nodes(model: &LogicalModel, nodes: &[Node], sample: &[usize]) -> Vec<NodeCheck> {
    let topo = topology(nodes);
    let bindings = Bindings::compute(model, &topo);
    sample
        .iter()
        .filter_map(|i| nodes.get(*i))
        .map(|n| check_node(model, &topo, &bindings, n))
        .collect()
}

/// Repeats [`check_nodes`] until every sampled node matches or `timeout` passes (weftd
/// may still be adding remote ports' flows as tunnels come up after `weft-installed`);
/// returns how long that took and the last checks.
pub async fn wait_checked(
    model: &LogicalModel,
    nodes: &[Node],
    sample: &[usize],
    timeout: std::time::Duration,
) -> (std::time::Duration, Vec<NodeCheck>) {
    let t = std::time::Instant::now();
    loop {
        let checks = tokio::task::block_in_place(|| check_nodes(model, nodes, sample));
        if checks.iter().all(NodeCheck::ok) || t.elapsed() > timeout {
            return (t.elapsed(), checks);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// `count` indexes spread evenly over `0..n` (all when `count >= n`), minus `skip`.
pub fn sample(n: usize, count: usize, skip: &[usize]) -> Vec<usize> {
    let mut out: Vec<usize> = if count >= n {
        (0..n).collect()
    } else {
        (0..count).map(|k| k * n / count).collect()
    };
    out.retain(|i| !skip.contains(i));
    out
}
