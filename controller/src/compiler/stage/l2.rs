//! Table 30, the L2 lookup: a known local MAC to the ingress ACL with reg7 set, a known
//! remote MAC straight into its node's tunnel, broadcast and multicast to the switch's
//! flood group (head-end replication; from a tunnel, local ports only). Unknown unicast
//! is dropped: Weft knows every MAC, nothing is learned.

use std::sync::Arc;

use openflow::{Action, Bucket, Field, GroupType};

use super::{FlowBuilder, apply, goto, mac, multicast_dst, set};
use crate::compiler::ids::{cookie_for, flood_group, local_group, tables};
use crate::desired::GroupSpec;
use crate::model::LogicalPort;

impl FlowBuilder<'_> {
    pub(super) fn l2_local(&mut self, vni: u32, p: &LogicalPort) {
        self.add(
            tables::L2_LOOKUP,
            100,
            vec![
                Field::Metadata(u64::from(vni), None),
                Field::EthDst(mac(p.mac), None),
            ],
            vec![
                apply(vec![set(Field::Reg(7, u32::from(p.key), None))]),
                goto(tables::INGRESS_ACL),
            ],
            cookie_for(&p.id),
        );
    }

    pub(super) fn l2_remote(&mut self, vni: u32, p: &LogicalPort, tun_ofport: u32) {
        self.add(
            tables::L2_LOOKUP,
            90,
            vec![
                Field::Metadata(u64::from(vni), None),
                Field::EthDst(mac(p.mac), None),
            ],
            vec![apply(vec![
                set(Field::TunnelId(u64::from(vni), None)),
                Action::output(tun_ofport),
            ])],
            cookie_for(&p.id),
        );
    }

    /// Broadcast and multicast, and the two groups they use: the flood group (local
    /// ports and one bucket per remote node) and the local group (what came from a
    /// tunnel goes to local ports only: split horizon).
    pub(super) fn flood(
        &mut self,
        vni: u32,
        switch_cookie: u64,
        locals: &[(&LogicalPort, u32)],
        remotes: &[(&str, u32, &[&LogicalPort])],
    ) {
        let md = || Field::Metadata(u64::from(vni), None);
        self.add(
            tables::L2_LOOKUP,
            96,
            vec![md(), Field::Reg(6, 0, None), multicast_dst()],
            vec![apply(vec![Action::Group(local_group(vni))])],
            switch_cookie,
        );
        self.add(
            tables::L2_LOOKUP,
            80,
            vec![md(), multicast_dst()],
            vec![apply(vec![Action::Group(flood_group(vni))])],
            switch_cookie,
        );
        let local_buckets: Vec<Bucket> = locals
            .iter()
            .map(|(p, _)| {
                Bucket::new(vec![
                    set(Field::Reg(7, u32::from(p.key), None)),
                    Action::resubmit(tables::INGRESS_ACL),
                ])
            })
            .collect();
        let mut flood = local_buckets.clone();
        for &(_, tun_ofport, _) in remotes {
            flood.push(Bucket::new(vec![
                set(Field::TunnelId(u64::from(vni), None)),
                Action::output(tun_ofport),
            ]));
        }
        self.out.groups.insert(
            flood_group(vni),
            Arc::new(GroupSpec {
                group_type: GroupType::All,
                buckets: flood,
            }),
        );
        self.out.groups.insert(
            local_group(vni),
            Arc::new(GroupSpec {
                group_type: GroupType::All,
                buckets: local_buckets,
            }),
        );
    }
}
