//! Tables 26 and 27, distributed routing (docs/pipeline.md, "Routing"): the sending
//! hypervisor routes. Table 26 is the router's longest-prefix match: packets whose TTL
//! would reach 0 are dropped, the others get `dec_ttl`, the egress router port's MAC as
//! source and the egress switch's VNI as `metadata`. A connected subnet then goes to
//! table 27, which knows every port address of the router's switches from the model and
//! sets the destination MAC (no ARP crosses the overlay); a static route sets its next
//! hop's MAC itself. Either way the packet re-enters the L2 lookup (30) on the egress
//! switch: local delivery through the receiver's ingress ACL, or one tunnel hop with the
//! egress switch's VNI.
//!
//! Longest prefix wins through priorities: `100 + 2 × prefix length`, plus one for a
//! connected subnet so that it beats a static route for the same prefix.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use openflow::{Action, Field};

use super::{ETH_IP, ETH_IPV6, FlowBuilder, apply, goto, mac, set};
use crate::binding::Bindings;
use crate::compiler::ids::{cookie_for, router_metadata, tables};
use crate::model::{LogicalModel, LogicalPort, LogicalRouter, MacAddr, Route, RouterPort};

/// Above every route: TTL checks.
const TTL_PRIORITY: u16 = 1000;
const ROUTE_PRIORITY_BASE: u16 = 100;

/// Where a route sends packets out of the router.
struct Egress {
    vni: u32,
    mac: MacAddr,
}

impl FlowBuilder<'_> {
    /// The router's own flows: TTL checks, one flow per connected subnet and per static
    /// route. `ports` are the router's ports with their switch's VNI.
    pub(crate) fn router_lookup(
        &mut self,
        model: &LogicalModel,
        bindings: &Bindings,
        router: &LogicalRouter,
        ports: &[(&RouterPort, u32)],
    ) {
        let md = || Field::Metadata(router_metadata(router.key), None);
        let rc = cookie_for(&router.id);
        for eth in [ETH_IP, ETH_IPV6] {
            for ttl in [0u8, 1] {
                self.add(
                    tables::L3_LOOKUP,
                    TTL_PRIORITY,
                    vec![md(), Field::EthType(eth, None), Field::IpTtl(ttl, None)],
                    vec![],
                    rc,
                );
            }
        }
        for &(rp, vni) in ports {
            let egress = Egress { vni, mac: rp.mac };
            for subnet in rp.subnets() {
                self.route_flow(
                    router,
                    subnet,
                    true,
                    Some((&egress, None)),
                    cookie_for(&rp.id),
                );
            }
        }
        for route in model.routes_of_router(&router.id) {
            let resolved = resolve_nexthop(model, bindings, ports, route);
            if resolved.is_none() {
                tracing::debug!(
                    node = self.node, router = %router.name, prefix = %route.prefix,
                    nexthop = %route.nexthop,
                    "no bound port of the router's switches has the next hop's address; \
                     the route drops its traffic until one does"
                );
            }
            let hop = resolved.as_ref().map(|(e, m)| (e, Some(*m)));
            self.route_flow(router, route.prefix, false, hop, cookie_for(&route.id));
        }
    }

    /// One prefix of the router's table. `hop` is the egress and, for a static route, the
    /// next hop's MAC; `None` drops (a route whose next hop is no known port).
    fn route_flow(
        &mut self,
        router: &LogicalRouter,
        prefix: IpNet,
        connected: bool,
        hop: Option<(&Egress, Option<MacAddr>)>,
        cookie: u64,
    ) {
        // A default route matches any destination: OVS reports a zero mask as no field.
        let any = prefix.prefix_len() == 0;
        let (eth, dst) = match prefix {
            IpNet::V4(n) => (
                ETH_IP,
                (!any).then(|| Field::Ipv4Dst(n.network(), mask4(n.prefix_len()))),
            ),
            IpNet::V6(n) => (
                ETH_IPV6,
                (!any).then(|| Field::Ipv6Dst(n.network(), mask6(n.prefix_len()))),
            ),
        };
        let priority =
            ROUTE_PRIORITY_BASE + 2 * u16::from(prefix.prefix_len()) + u16::from(connected);
        let instructions = match hop {
            None => vec![],
            Some((egress, nexthop_mac)) => {
                let mut actions = vec![Action::DecNwTtl, set(Field::EthSrc(mac(egress.mac), None))];
                if let Some(m) = nexthop_mac {
                    actions.push(set(Field::EthDst(mac(m), None)));
                }
                actions.push(set(Field::Metadata(u64::from(egress.vni), None)));
                let next = if nexthop_mac.is_some() {
                    tables::L2_LOOKUP
                } else {
                    tables::NEIGHBOR
                };
                vec![apply(actions), goto(next)]
            }
        };
        let mut fields = vec![
            Field::Metadata(router_metadata(router.key), None),
            Field::EthType(eth, None),
        ];
        fields.extend(dst);
        self.add(tables::L3_LOOKUP, priority, fields, instructions, cookie);
    }

    /// Table 27 for one bound port of a routed switch: each of its addresses -> its MAC.
    pub(crate) fn neighbor(&mut self, vni: u32, p: &LogicalPort) {
        for ip in &p.ips {
            let (eth, dst) = match ip {
                IpAddr::V4(a) => (ETH_IP, Field::Ipv4Dst(*a, None)),
                IpAddr::V6(a) => (ETH_IPV6, Field::Ipv6Dst(*a, None)),
            };
            self.add(
                tables::NEIGHBOR,
                100,
                vec![
                    Field::Metadata(u64::from(vni), None),
                    Field::EthType(eth, None),
                    dst,
                ],
                vec![
                    apply(vec![set(Field::EthDst(mac(p.mac), None))]),
                    goto(tables::L2_LOOKUP),
                ],
                cookie_for(&p.id),
            );
        }
    }
}

/// The egress (the router port whose subnet holds the next hop) and the next hop's MAC
/// (the bound logical port on that switch with the next hop's address: an unbound port
/// could not receive, and only bound ports' changes reach the compiler's dirty set).
fn resolve_nexthop(
    model: &LogicalModel,
    bindings: &Bindings,
    ports: &[(&RouterPort, u32)],
    route: &Route,
) -> Option<(Egress, MacAddr)> {
    let &(rp, vni) = ports
        .iter()
        .find(|(rp, _)| rp.subnets().any(|s| s.contains(&route.nexthop)))?;
    let port = model
        .ports_of_switch(&rp.switch)
        .filter(|p| bindings.ports.contains_key(&p.id))
        .find(|p| p.ips.contains(&route.nexthop))?;
    Some((Egress { vni, mac: rp.mac }, port.mac))
}

/// The mask of a prefix, or none for a host route (OVS reports an exact match unmasked).
fn mask4(len: u8) -> Option<Ipv4Addr> {
    (len < 32).then(|| Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)))
}

fn mask6(len: u8) -> Option<Ipv6Addr> {
    (len < 128).then(|| Ipv6Addr::from(u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)))
}
