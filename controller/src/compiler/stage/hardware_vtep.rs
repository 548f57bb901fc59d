//! Hardware VTEPs on a hypervisor (docs/pipeline.md, "Hardware VTEPs"): the flows that
//! reach the MACs behind a VTEP Weft drives through its `hardware_vtep` database (see
//! [`crate::hardware_vtep`]). Owns their classification (table 0), the static flows to
//! each MAC the VTEP reported (table 30) and their buckets in the switch's flood group.
//!
//! Unlike a flood-and-learn VTEP nothing is learned: the VTEP reports its MACs, so each
//! gets a static flow at the priority of remote Weft MACs (90). A VTEP's tunnel port is
//! the same `wv-` port a flood VTEP at that address would have; when one address is both,
//! the flood stage's classify flow (with its learn action) and bucket serve both, and the
//! learned flows it adds in table 33 are never consulted for the VTEP's MACs, whose static
//! flows in table 30 match first. Split horizon is the flood stage's: what comes from a
//! VTEP has `reg6=0`, so it reaches local ports only (the VTEP is in `source_node` mode and
//! replicates to every hypervisor itself).

use std::collections::BTreeSet;
use std::net::IpAddr;

use openflow::{Action, Bucket, Field};

use super::{FlowBuilder, apply, mac, set};
use crate::compiler::ids::{flood_group, tables};
use crate::model::MacAddr;

use super::ExternalVtep;

/// Priority of the flow to a MAC behind a hardware VTEP: that of remote Weft MACs.
const VTEP_MAC_PRIORITY: u16 = 90;

/// One hardware VTEP of a switch as a node reaches it, with the MACs behind it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HardwareVtep<'a> {
    pub(crate) vtep: ExternalVtep,
    pub(crate) macs: &'a [MacAddr],
}

impl FlowBuilder<'_> {
    /// One switch's hardware VTEPs on this node. `flood` are the addresses the flood
    /// stage already classifies and floods to (call after it, and after
    /// [`FlowBuilder::switch`]: it extends the flood group); `weft_macs` are the MACs of
    /// the switch's own ports, which a VTEP never takes over: Weft owns them, so a VTEP
    /// that reports one (a misconfigured host, a spoof) gets no flow for it and Weft's
    /// own flow (local at 100, remote at 90) stays the only one.
    pub(crate) fn hardware_vteps(
        &mut self,
        vni: u32,
        switch_cookie: u64,
        vteps: &[HardwareVtep<'_>],
        flood: &BTreeSet<IpAddr>,
        weft_macs: &BTreeSet<MacAddr>,
    ) {
        let tun_id = || set(Field::TunnelId(u64::from(vni), None));
        let mut ports = BTreeSet::new();
        let mut macs = BTreeSet::new();
        for hv in vteps {
            let v = hv.vtep;
            if !flood.contains(&v.ip) && ports.insert(v.ofport) {
                self.classify_vtep(v.ofport, vni, None, switch_cookie);
                if let Some(group) = self.out.groups.get_mut(&flood_group(vni)) {
                    std::sync::Arc::make_mut(group)
                        .buckets
                        .push(Bucket::new(vec![tun_id(), Action::output(v.ofport)]));
                }
            }
            // The first VTEP (by name) to report a MAC gets it.
            for m in hv.macs {
                if m.0[0] & 1 != 0 || weft_macs.contains(m) || !macs.insert(*m) {
                    continue;
                }
                self.add(
                    tables::L2_LOOKUP,
                    VTEP_MAC_PRIORITY,
                    vec![
                        Field::Metadata(u64::from(vni), None),
                        Field::EthDst(mac(*m), None),
                    ],
                    vec![apply(vec![tun_id(), Action::output(v.ofport)])],
                    switch_cookie,
                );
            }
        }
    }
}
