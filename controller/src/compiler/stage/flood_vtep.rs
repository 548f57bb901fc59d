//! Flood-and-learn VTEPs (docs/pipeline.md, "Flood-and-learn VTEPs"): external VXLAN
//! endpoints with no control plane on a switch's segment. Owns the tunnel ports a node
//! needs towards them, their classification (table 0, where OVS learns the sender's MAC
//! into the learned-MACs table), their buckets in the switch's flood group, and the way
//! unicast that no Weft port owns reaches them (table 30 to the learned table 33: a learned
//! MAC to its VTEP, anything else replicated to every VTEP of the switch).
//!
//! An endpoint is known to the compiler only by its address, independent of the switch's
//! mesh between hypervisors: [`ExternalVtep`] is what any other kind of external VXLAN
//! endpoint (a hardware VTEP) can reuse. What comes in from one has `reg6=0` like any
//! tunnel traffic, so the existing split horizon applies unchanged: it reaches local ports
//! only (the legacy VTEP replicates to every hypervisor itself), and traffic from another
//! hypervisor is never re-flooded to the VTEPs (the sending hypervisor already did).

use std::net::IpAddr;

use openflow::action::Subfield;
use openflow::oxm;
use openflow::{Action, Bucket, Field, FieldHeader, Learn, LearnDst, LearnSpec, LearnSrc, Nicira};

use super::{FlowBuilder, apply, goto, nxm, set};
use crate::compiler::ids::tables;
use crate::compiler::ids::{COOKIE_PIPELINE, flood_group, learn_idle_timeout, learned_cookie};

/// One external VXLAN endpoint as a node reaches it: its address and the node's tunnel
/// port to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExternalVtep {
    pub(crate) ip: IpAddr,
    pub(crate) ofport: u32,
}

/// Priority of the L2 lookup's flow to the learned table: below the local MACs (100), the
/// split-horizon drop for what came from a tunnel (95), remote MACs (90) and the flood (80),
/// so a Weft port's MAC always wins over a learned one.
const TO_LEARNED_PRIORITY: u16 = 70;
/// Priority of learned flows in the learned table, above the unknown-unicast flow.
const LEARNED_PRIORITY: u16 = 100;
/// Priority of the per-switch unknown-unicast flow in the learned table.
const UNKNOWN_PRIORITY: u16 = 1;

impl FlowBuilder<'_> {
    /// Table 0: VXLAN from an external VTEP's port with the switch's VNI enters the
    /// switch as from a tunnel (`reg6=0`: delivered to local ports only), running `then`
    /// first (a flood VTEP's learn; hardware VTEPs report their MACs instead).
    pub(crate) fn classify_vtep(
        &mut self,
        ofport: u32,
        vni: u32,
        then: Option<Action>,
        cookie: u64,
    ) {
        let mut actions = vec![
            set(Field::Metadata(u64::from(vni), None)),
            set(Field::Reg(6, 0, None)),
        ];
        actions.extend(then);
        self.add(
            tables::CLASSIFY,
            100,
            vec![
                Field::InPort(ofport, None),
                Field::TunnelId(u64::from(vni), None),
            ],
            vec![apply(actions), goto(tables::L2_LOOKUP)],
            cookie,
        );
    }

    /// One switch's flood VTEPs on this node (`vteps` non-empty, each with its tunnel
    /// ofport). Call after [`FlowBuilder::switch`]: it extends the flood group.
    pub(crate) fn flood_vteps(&mut self, vni: u32, switch_cookie: u64, vteps: &[ExternalVtep]) {
        let md = || Field::Metadata(u64::from(vni), None);
        for v in vteps {
            let learn = Action::Nicira(Nicira::Learn(Box::new(learn_sender(vni))));
            self.classify_vtep(v.ofport, vni, Some(learn), switch_cookie);
        }
        // Unicast from a local port to a MAC no Weft port has (what came from a tunnel
        // was dropped at 95): the learned table decides.
        self.add(
            tables::L2_LOOKUP,
            TO_LEARNED_PRIORITY,
            vec![md()],
            vec![goto(tables::LEARNED)],
            switch_cookie,
        );
        self.add(tables::LEARNED, 0, vec![], vec![], COOKIE_PIPELINE);
        self.add(
            tables::LEARNED,
            UNKNOWN_PRIORITY,
            vec![md()],
            vec![apply(to_vteps(vni, vteps))],
            switch_cookie,
        );
        if let Some(group) = self.out.groups.get_mut(&flood_group(vni)) {
            let group = std::sync::Arc::make_mut(group);
            for v in vteps {
                group.buckets.push(Bucket::new(vec![
                    set(Field::TunnelId(u64::from(vni), None)),
                    Action::output(v.ofport),
                ]));
            }
        }
    }
}

/// `set_field:VNI->tun_id,output:P1,output:P2,…`: head-end replication to every VTEP.
fn to_vteps(vni: u32, vteps: &[ExternalVtep]) -> Vec<Action> {
    let mut actions = vec![set(Field::TunnelId(u64::from(vni), None))];
    actions.extend(vteps.iter().map(|v| Action::output(v.ofport)));
    actions
}

/// `learn(table=33,idle_timeout=T,priority=100,cookie=LE…VNI,OXM_OF_METADATA[],
/// NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],
/// output:NXM_OF_IN_PORT[])`: frames to the sender's MAC on this switch go back into the
/// tunnel it came from, with its VNI.
///
/// Headers are the ones OVS encodes a learn action with (NXM where one exists), and the
/// trailer is the zero padding it pads the action with, so a dump compares equal.
fn learn_sender(vni: u32) -> Learn {
    let metadata = FieldHeader {
        class: oxm::OFPXMC_OPENFLOW_BASIC,
        field: 2,
        has_mask: false,
        len: 8,
        experimenter: None,
    };
    let eth_src = nxm(oxm::NXM_OF, 2, 6);
    let eth_dst = nxm(oxm::NXM_OF, 1, 6);
    let tun_id = nxm(oxm::NXM_NX, 16, 8);
    let in_port = nxm(oxm::NXM_OF, 0, 2);
    let copy = |src: FieldHeader, dst: LearnDst| LearnSpec {
        n_bits: src.value_bits(),
        src: LearnSrc::Field(Subfield::whole(src)),
        dst,
    };
    let specs = vec![
        copy(metadata, LearnDst::Match(Subfield::whole(metadata))),
        copy(eth_src, LearnDst::Match(Subfield::whole(eth_dst))),
        copy(tun_id, LearnDst::Load(Subfield::whole(tun_id))),
        copy(in_port, LearnDst::Output),
    ];
    // 32 bytes of fixed part (Nicira header included), then the specs, zero-padded to 8.
    let len = 32 + specs.iter().map(spec_len).sum::<usize>();
    Learn {
        idle_timeout: learn_idle_timeout(),
        hard_timeout: 0,
        priority: LEARNED_PRIORITY,
        cookie: learned_cookie(vni),
        flags: 0,
        table_id: tables::LEARNED,
        fin_idle_timeout: 0,
        fin_hard_timeout: 0,
        specs,
        trailer: vec![0; (8 - len % 8) % 8],
    }
}

/// Encoded size of a spec whose source is a field (every spec here).
fn spec_len(s: &LearnSpec) -> usize {
    match s.dst {
        LearnDst::Match(_) | LearnDst::Load(_) => 2 + 6 + 6,
        LearnDst::Output => 2 + 6,
    }
}
