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
    for (k, c) in &want.flows {
        match flows.get(k) {
            None => diffs.push(format!("missing flow {}", weft::desired::flow_add(k, c))),
            Some(h) if h != c => diffs.push(format!(
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
