//! The pipeline compiler: a pure function from the logical model and the observed
//! topology to what one hypervisor's integration bridge should hold (docs/pipeline.md).
//!
//! No I/O and no clocks: the same inputs always give the same [`DesiredNode`], which is
//! what lets the reconciler diff it against a switch's flow dump and lets tests check it
//! against a software flow table without any switch.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use openflow::{Bucket, FlowContent, FlowKey, GroupType};
use uuid::Uuid;

use crate::fabric::Topology;
use crate::model::LogicalModel;
use crate::observed::EncapType;

/// A tunnel port a node needs: one per remote node that shares a logical switch with it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TunnelSpec {
    /// The remote node's system-id (`external_ids:weft-remote`).
    pub remote: String,
    pub remote_ip: IpAddr,
    pub local_ip: IpAddr,
    pub encap: EncapType,
}

/// An OpenFlow group as Weft wants it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupSpec {
    pub group_type: GroupType,
    pub buckets: Vec<Bucket>,
}

/// Everything Weft wants on one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredNode {
    pub flows: BTreeMap<FlowKey, FlowContent>,
    pub groups: BTreeMap<u32, GroupSpec>,
    pub tunnels: BTreeSet<TunnelSpec>,
    /// Logical ports bound on this node whose flows are all in `flows`: once a switch
    /// acknowledges this state, these are `weft-installed`.
    pub bound_ports: BTreeSet<Uuid>,
}

/// Compiles the desired state of node `node` (a system-id in `topology`).
pub fn compile_node(model: &LogicalModel, topology: &Topology, node: &str) -> DesiredNode {
    let _ = (model, topology, node);
    DesiredNode::default()
}
