//! The compiler's software flow table: the one OpenFlow 1.3 model in
//! [`openflow::table`] (flow and group mods, stats, and the packet walker), re-exported
//! here under the path the compiler's tests and `trace` use, plus the one Weft-specific
//! piece: a table holding exactly a compiled [`DesiredNode`] ([`FromDesired`]).
//!
//! Unit tests check the compiler against this model; the OVS-backed test checks the model
//! against `ofproto/trace` of a real `ovs-vswitchd`.

pub use openflow::table::{
    Emitted, FlowEntry, FlowTable, Group, Outcome, Packet, Step, TableError, ct_state,
};

use crate::desired::{DesiredNode, GroupSpec};

/// Building a software table from what the compiler wants on a node.
pub trait FromDesired {
    /// A table holding exactly `d`'s flows and groups, installed as a switch would
    /// report them back (no validation: a flow the compiler got wrong still shows up in
    /// a walk, with the walker's note on what it could not do).
    fn from_desired(d: &DesiredNode) -> Self;
}

impl FromDesired for FlowTable {
    fn from_desired(d: &DesiredNode) -> Self {
        let mut t = FlowTable::new();
        for (id, g) in &d.groups {
            t.insert_group(*id, group(g));
        }
        for (k, c) in d.flows.iter() {
            t.insert_flow(openflow::FlowKey::clone(k), openflow::FlowContent::clone(c));
        }
        t
    }
}

/// The model's form of a compiled group.
fn group(g: &GroupSpec) -> Group {
    Group {
        group_type: g.group_type,
        buckets: g.buckets.clone(),
    }
}
