//! The flow and group tables a simulated switch keeps across connections: the shared
//! OpenFlow 1.3 model ([`FlowTable`]) behind the calls the switch and the simulator make,
//! with the model's refusals turned into the OpenFlow errors OVS would send.

use std::collections::{BTreeMap, HashSet};

use openflow::table::{FlowEntry, FlowTable, Group, TableError};
use openflow::{
    Action, Field, FlowContent, FlowKey, FlowMod, FlowStatsRequest, FlowStatsView, GroupDesc,
    GroupMod, Instruction, Mac, Message,
};

use super::{Refusal, code, onf_err};

/// The flow and group tables of one switch: the shared OpenFlow 1.3 model
/// ([`FlowTable`]), whose refusals become the OpenFlow errors OVS would send.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    table: FlowTable,
}

/// The ERROR for a request the table refused.
fn refusal(e: TableError) -> Refusal {
    match e.error_kind() {
        Some(kind) => Refusal(kind),
        None => onf_err(code::BF_MSG_UNSUP),
    }
}

impl Tables {
    pub fn flow_count(&self) -> usize {
        self.table.flow_count()
    }

    pub fn group_count(&self) -> usize {
        self.table.group_count()
    }

    /// Bytes held by flow entries (entries, match fields, instructions and actions; not
    /// the map's own nodes), for memory reports.
    pub fn flow_bytes(&self) -> usize {
        use std::mem::size_of;
        self.table
            .flows()
            .iter()
            .map(|(k, e)| {
                let insts = &e.content.instructions;
                size_of::<(FlowKey, FlowEntry)>()
                    + k.r#match.fields.len() * size_of::<openflow::Field>()
                    + insts.len() * size_of::<Instruction>()
                    + actions_of(insts).count() * size_of::<Action>()
            })
            .sum()
    }

    /// The destination MACs some flow matches on: a probe for "has the L2 lookup for this
    /// port arrived" without comparing whole tables. It reads the match fields as they are
    /// (encoding each flow to search its bytes cost the benchmark more than weftd's work),
    /// and one pass answers for every port a caller waits for: a 100-port batch on a
    /// 64-node switch scanned each table once per port and host on every poll, holding
    /// the node's lock that the simulated switch needs to apply the bundles.
    pub fn eth_dsts(&self) -> HashSet<Mac> {
        self.table
            .flows()
            .keys()
            .flat_map(|k| k.r#match.fields.iter())
            .filter_map(|f| match f {
                Field::EthDst(m, _) => Some(*m),
                _ => None,
            })
            .collect()
    }

    /// Every flow as (identity, content), for comparing with the compiler's output.
    pub fn flows(&self) -> BTreeMap<FlowKey, FlowContent> {
        self.table.flow_contents()
    }

    pub fn groups(&self) -> &BTreeMap<u32, Group> {
        self.table.groups()
    }

    /// The model itself (e.g. to walk a packet through what the switch holds).
    pub fn model(&self) -> &FlowTable {
        &self.table
    }

    /// Applies one flow mod with OpenFlow 1.3 semantics.
    pub fn flow_mod(&mut self, fm: &FlowMod) -> Result<(), Refusal> {
        self.table.apply_flow_mod(fm).map_err(refusal)
    }

    /// Applies one group mod.
    pub fn group_mod(&mut self, gm: &GroupMod) -> Result<(), Refusal> {
        self.table.apply_group_mod(gm).map_err(refusal)
    }

    /// Applies a bundle's messages all or none; a refusal names the message's index.
    pub(super) fn apply_all<'a>(
        &mut self,
        msgs: impl IntoIterator<Item = &'a Message>,
    ) -> Result<(), (usize, Refusal)> {
        self.table
            .apply_all(msgs)
            .map_err(|(at, e)| (at, refusal(e)))
    }

    pub(super) fn flow_stats(&self, req: &FlowStatsRequest) -> Vec<FlowStatsView<'_>> {
        self.table.flow_stats_views(req)
    }

    pub(super) fn group_descs(&self) -> Vec<GroupDesc> {
        self.table.group_descs()
    }
}

/// The actions of apply-actions and write-actions instructions.
fn actions_of(insts: &[Instruction]) -> impl Iterator<Item = &Action> {
    insts.iter().flat_map(|i| match i {
        Instruction::ApplyActions(a) | Instruction::WriteActions(a) => a.as_slice(),
        _ => &[],
    })
}
