//! The pipeline's stages (docs/pipeline.md), one module each, all adding to one
//! [`FlowBuilder`]: classify (table 0), port security (10), ACLs (20/21, 40/41), ARP
//! responder (25) and the router's responders beside it, routing (26/27), L2 lookup and
//! flooding (30), output (50); provider networks (the patch port to a physical network,
//! in 0 and 30); flood-and-learn VTEPs (in 0, 30 and the learned-MACs table 33). A
//! feature adds a stage here; it does not grow another's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use openflow::Field;
use openflow::{Action, FieldHeader, FlowContent, FlowKey, Instruction, Mac, Match};

use super::ids::{COOKIE_PIPELINE, cookie_for, tables};
use super::routing::RouterScope;
use crate::binding::Bindings;
use crate::desired::DesiredNode;
use crate::model::{Acl, LogicalModel, LogicalPort, LogicalSwitch, MacAddr};
use crate::topology::NodeView;

mod acl;
mod arp;
mod classify;
mod flood_vtep;
mod hardware_vtep;
mod l2;
mod l3;
mod output;
mod port_security;
mod provider;
mod router;

pub use acl::{
    BLOCKED_MARK, OPEN_DIRECTION_MARK, OPEN_DIRECTION_PRIORITY, acl_flow_priority, acl_mark,
    port_masks,
};
use acl::{CT_INV_TRK, ct_match};
pub(crate) use flood_vtep::ExternalVtep;
pub(crate) use hardware_vtep::HardwareVtep;
pub use port_security::link_local;

pub(crate) const ETH_IP: u16 = 0x0800;
pub(crate) const ETH_ARP: u16 = 0x0806;
pub(crate) const ETH_IPV6: u16 = 0x86dd;
pub(crate) const PROTO_ICMPV6: u8 = 58;
pub(crate) const ND_NEIGHBOR_ADVERT: u8 = 136;

pub(crate) fn mac(m: MacAddr) -> Mac {
    Mac(m.0)
}

pub(crate) fn apply(actions: Vec<Action>) -> Instruction {
    Instruction::ApplyActions(actions)
}

pub(crate) fn goto(t: u8) -> Instruction {
    Instruction::GotoTable(t)
}

pub(crate) fn set(f: Field) -> Action {
    Action::SetField(f)
}

pub(crate) fn nxm(class: u16, field: u8, len: u8) -> FieldHeader {
    FieldHeader {
        class,
        field,
        has_mask: false,
        len,
        experimenter: None,
    }
}

/// `dl_dst=01:00:00:00:00:00/01:00:00:00:00:00`: broadcast and multicast.
pub(crate) fn multicast_dst() -> Field {
    Field::EthDst(Mac::MULTICAST_BIT, Some(Mac::MULTICAST_BIT))
}

pub(crate) fn v4(ip: &IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(*a),
        IpAddr::V6(_) => None,
    }
}

pub(crate) fn v6(ip: &IpAddr) -> Option<Ipv6Addr> {
    match ip {
        IpAddr::V6(a) => Some(*a),
        IpAddr::V4(_) => None,
    }
}

pub(crate) struct FlowBuilder<'a> {
    pub(crate) node: &'a str,
    pub(crate) out: &'a mut DesiredNode,
    /// Every flow added so far, in the order added. Kept in a vector and sorted once
    /// (`compiler::parts`): one sort of ~1,700 flows costs a fraction of the key
    /// comparisons of as many lookups and inserts into the map.
    pub(crate) flows: Vec<(FlowKey, FlowContent)>,
}

impl FlowBuilder<'_> {
    pub(crate) fn add(
        &mut self,
        table_id: u8,
        priority: u16,
        fields: Vec<Field>,
        instructions: Vec<Instruction>,
        cookie: u64,
    ) {
        let key = FlowKey {
            table_id,
            priority,
            r#match: Match::new(fields).into_canonical(),
        };
        let content = FlowContent {
            cookie,
            instructions,
        };
        self.flows.push((key, content));
    }

    /// Table-miss behaviour of every table: drop, or fall through where a table only
    /// sometimes applies (ACLs, ARP responder).
    pub(crate) fn defaults(&mut self) {
        use tables::*;
        let c = COOKIE_PIPELINE;
        self.add(CLASSIFY, 0, vec![], vec![], c);
        self.add(PORT_SECURITY, 0, vec![], vec![], c);
        self.add(EGRESS_ACL, 0, vec![], vec![goto(ARP_RESPONDER)], c);
        self.add(ARP_RESPONDER, 0, vec![], vec![goto(L2_LOOKUP)], c);
        // Split horizon: what came from a tunnel and is not for a local port stops here.
        self.add(L2_LOOKUP, 95, vec![Field::Reg(6, 0, None)], vec![], c);
        self.add(L2_LOOKUP, 0, vec![], vec![], c);
        self.add(INGRESS_ACL, 0, vec![], vec![goto(OUTPUT)], c);
        self.add(OUTPUT, 0, vec![], vec![], c);
        // Conntrack tables, shared by every port with ACLs: invalid dropped, new traffic
        // no rule allowed drops, and so does established traffic whose connection's
        // ct_mark names no rule that still exists (the per-port est/rel flows in `acls`).
        for ct_table in [EGRESS_ACL_CT, INGRESS_ACL_CT] {
            self.add(
                ct_table,
                65535,
                vec![ct_match(CT_INV_TRK, CT_INV_TRK)],
                vec![],
                c,
            );
            self.add(ct_table, 0, vec![], vec![], c);
        }
        // Neighbour discovery never goes through conntrack: IPv6 needs it whatever the
        // ACLs say (as ARP, which is not IP, needs nothing).
        for (table, next) in [(EGRESS_ACL, ARP_RESPONDER), (INGRESS_ACL, OUTPUT)] {
            for icmp_type in 133..=136u8 {
                self.add(
                    table,
                    110,
                    vec![
                        Field::EthType(ETH_IPV6, None),
                        Field::IpProto(PROTO_ICMPV6, None),
                        Field::Icmpv6Type(icmp_type, None),
                    ],
                    vec![goto(next)],
                    c,
                );
            }
        }
    }

    /// One logical switch on this node: every stage's flows for its local ports, its
    /// tunnels and its remote ports. The order flows are added in decides which of two
    /// colliding flows is kept (see `compiler::parts`), so it stays the same.
    pub(crate) fn switch(
        &mut self,
        model: &LogicalModel,
        sw: &LogicalSwitch,
        locals: &[(&LogicalPort, u32)],
        remotes: &[(&str, u32, &[&LogicalPort])],
    ) {
        let vni = sw.vni;
        let sc = cookie_for(&sw.id);
        for &(p, ofport) in locals {
            self.classify_port(vni, p, ofport);
            self.port_security(vni, p);
            let acls: Vec<&Acl> = model.acls_of_port(&p.id).collect();
            self.acls(vni, p, &acls);
            self.l2_local(vni, p);
            self.output(vni, p, ofport);
        }
        for &(_, tun_ofport, _) in remotes {
            self.classify_tunnel(vni, sc, tun_ofport);
        }
        for &(p, _) in locals {
            self.arp_local(vni, p);
        }
        for &(_, tun_ofport, rports) in remotes {
            for p in rports {
                self.arp_remote(vni, p);
                self.l2_remote(vni, p, tun_ofport);
            }
        }
        self.flood(vni, sc, locals, remotes);
    }

    /// One router this node routes for (`switches` are the node's own): its responders
    /// on the node's switches, its lookup, the neighbour entries of every port of its
    /// switches, and L2 entries for the ports of its switches that have none here yet
    /// (switches with no local port), each through the tunnel to its node.
    pub(crate) fn router(
        &mut self,
        model: &LogicalModel,
        bindings: &Bindings,
        view: &NodeView,
        switches: &std::collections::BTreeSet<uuid::Uuid>,
        scope: &RouterScope<'_>,
    ) {
        use tables::*;
        let c = COOKIE_PIPELINE;
        self.add(L3_LOOKUP, 0, vec![], vec![], c);
        self.add(NEIGHBOR, 0, vec![], vec![], c);
        self.router_lookup(model, bindings, scope.router, &scope.ports);
        for &(rp, vni) in &scope.ports {
            for ip in rp.addrs() {
                self.router_echo(scope.router, rp, ip);
            }
            let local = switches.contains(&rp.switch);
            if local {
                self.router_port_local(vni, scope.router, rp);
            }
            for p in model.ports_of_switch(&rp.switch) {
                // Unbound ports get nothing, as in a switch: they could not receive.
                let Some(b) = bindings.ports.get(&p.id) else {
                    continue;
                };
                self.neighbor(vni, p);
                if local || b.node == self.node {
                    continue;
                }
                if let Some(&tun) = view.tunnels.get(&b.node) {
                    self.l2_remote(vni, p, tun);
                }
            }
        }
    }
}
