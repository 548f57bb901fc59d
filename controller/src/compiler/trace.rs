//! `trace`: where the logical pipeline sends a packet, step by step. The packet enters at
//! a logical port's VIF; the walk runs [`compile_node`](super::compile_node)'s flows on the
//! software [`FlowTable`], and follows every tunnel output to the remote node, where it
//! enters through that node's tunnel port. The result names each table decision, every
//! logical port the packet reaches and why branches were dropped, and every ACL decision
//! ([`AclDecision`]): which rule (id, priority, action) admitted or dropped the packet in
//! which port's direction, or that conntrack state (invalid, a revoked or blocked
//! connection) or the default deny decided it, and every routing decision
//! ([`RouteDecision`]: router, route, next hop, TTL).
//!
//! [`TracePacket`] is the one description of a packet to trace: the API's `trace` takes
//! it as its `packet` parameter and weftctl builds it.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use openflow::Mac;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use super::route_trace::RouteDecision;
use super::route_trace::route_decision;
use super::table::{FlowTable, FromDesired, Packet, Step, ct_state};
use super::{
    Bindings, COOKIE_PIPELINE, OPEN_DIRECTION_PRIORITY, acl_mark, compile_node_with, cookie_for,
    link_local, tables,
};
use crate::model::{AclAction, Direction, LogicalModel, LogicalPort, MacAddr};
use crate::topology::Topology;

/// How many tunnel crossings a trace follows (one is all split horizon allows).
const MAX_HOPS: usize = 4;

/// A packet to trace, with `ovs-ofctl`-like optional fields. Omitted source fields default
/// to the port's own (`eth_src`, `ip_src`, `arp_sha`, `arp_spa`), `eth_dst` to broadcast.
/// `protocol` is one of `arp`, `ip`, `ipv6`, `tcp`, `udp`, `icmp`, `tcp6`, `udp6`, `icmp6`
/// (`tcp`/`udp` use IPv6 when `ip_dst` is IPv6); without it the fields given decide.
///
/// Conntrack: the packet meets every `ct` as `ct_state` says (default `new`; `est`,
/// `rel`, `inv`, optionally with `rpl` for the reply direction, e.g. `est+rpl`). Each port
/// with ACLs tracks the connection in its own zone, with the mark of the rule that
/// admitted it there: `ct_acl` lists those `allow-related` ACLs (each sets the mark in its
/// port's zone); `ct_mark` is the raw mark of every other zone (default 0, unmarked, which
/// no rule passes; `1` is a port's open direction).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracePacket {
    pub eth_src: Option<MacAddr>,
    pub eth_dst: Option<MacAddr>,
    pub protocol: Option<String>,
    /// Ethertype for a non-IP frame.
    pub dl_type: Option<u16>,
    pub ip_src: Option<IpAddr>,
    pub ip_dst: Option<IpAddr>,
    /// IP protocol number when `protocol` does not name it (`nw_proto` in ovs-ofctl).
    #[serde(alias = "nw_proto")]
    pub ip_proto: Option<u8>,
    pub tp_src: Option<u16>,
    pub tp_dst: Option<u16>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub arp_op: Option<u16>,
    pub arp_spa: Option<Ipv4Addr>,
    pub arp_tpa: Option<Ipv4Addr>,
    pub arp_sha: Option<MacAddr>,
    pub arp_tha: Option<MacAddr>,
    pub nd_target: Option<Ipv6Addr>,
    pub nd_sll: Option<MacAddr>,
    pub nd_tll: Option<MacAddr>,
    /// IPv4 TTL or IPv6 hop limit (default 64).
    #[serde(alias = "nw_ttl")]
    pub ttl: Option<u8>,
    pub ct_state: Option<String>,
    pub ct_mark: Option<u32>,
    pub ct_acl: Vec<Uuid>,
}

impl TracePacket {
    /// Every field name (for callers that validate a packet field by field).
    pub const FIELDS: &'static [&'static str] = &[
        "eth_src",
        "eth_dst",
        "protocol",
        "dl_type",
        "ip_src",
        "ip_dst",
        "ip_proto",
        "nw_proto",
        "tp_src",
        "tp_dst",
        "icmp_type",
        "icmp_code",
        "arp_op",
        "arp_spa",
        "arp_tpa",
        "arp_sha",
        "arp_tha",
        "nd_target",
        "nd_sll",
        "nd_tll",
        "ttl",
        "nw_ttl",
        "ct_state",
        "ct_mark",
        "ct_acl",
    ];

    /// The conntrack state every `ct` reports for this packet, and the mark of zones
    /// `ct_acl` does not name.
    pub fn conntrack(&self) -> Result<(u32, u32), TraceError> {
        let bad = |reason: String| TraceError::BadPacket {
            field: "ct_state",
            reason,
        };
        let mut state = ct_state::TRK;
        let text = self.ct_state.as_deref().unwrap_or("new");
        for flag in text
            .split(['+', ',', ' '])
            .filter(|f| !f.is_empty() && *f != "trk")
        {
            state |= match flag {
                "new" => ct_state::NEW,
                "est" => ct_state::EST,
                "rel" => ct_state::REL,
                "rpl" => ct_state::RPL,
                "inv" => ct_state::INV,
                other => {
                    return Err(bad(format!(
                        "unknown conntrack flag {other:?} (new, est, rel, rpl, inv)"
                    )));
                }
            };
        }
        if state & (ct_state::NEW | ct_state::EST | ct_state::REL | ct_state::INV) == 0 {
            return Err(bad(format!(
                "{text:?} names no state (new, est, rel or inv)"
            )));
        }
        if state & ct_state::NEW != 0 && state & (ct_state::EST | ct_state::RPL) != 0 {
            return Err(bad(
                "a new connection is neither established nor a reply".into()
            ));
        }
        Ok((state, self.ct_mark.unwrap_or(0)))
    }

    /// Conntrack zone -> mark for the `ct_acl` rules.
    pub fn zone_marks(&self, model: &LogicalModel) -> Result<BTreeMap<u16, u32>, TraceError> {
        let mut out = BTreeMap::new();
        for id in &self.ct_acl {
            let bad = |reason: String| TraceError::BadPacket {
                field: "ct_acl",
                reason,
            };
            let acl = model.acl(id).ok_or_else(|| bad(format!("no ACL {id}")))?;
            if acl.action != AclAction::AllowRelated {
                return Err(bad(format!(
                    "ACL {id} is not allow-related: it admits no connection"
                )));
            }
            let port = model
                .port(&acl.port)
                .ok_or_else(|| bad(format!("ACL {id}'s port is gone")))?;
            if out.insert(port.zone, acl_mark(id)).is_some() {
                return Err(bad(format!(
                    "two ACLs of port {} name the one mark of its zone",
                    port.name
                )));
            }
        }
        Ok(out)
    }
}

/// Why a trace could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    #[error("port {0:?} not found")]
    PortNotFound(String),
    #[error("port {0:?} is not bound to any node")]
    PortNotBound(String),
    #[error("port {port:?} is bound to node {bound:?}, not {asked:?}")]
    PortNotOnNode {
        port: String,
        bound: String,
        asked: String,
    },
    #[error("packet field {field}: {reason}")]
    BadPacket { field: &'static str, reason: String },
}

/// The whole walk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Trace {
    /// One entry per bridge the packet went through, first the sender's.
    pub hops: Vec<Hop>,
    /// Logical ports the packet (or a copy) reached.
    pub delivered: Vec<Delivery>,
    /// Why branches ended without reaching a port (table miss, explicit drop, no tunnel).
    pub dropped: Vec<String>,
    /// Every ACL decision on the way, in order (ports with ACLs only).
    pub acl: Vec<AclDecision>,
    /// Every routing decision on the way, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routing: Vec<RouteDecision>,
}

/// What a port's ACLs did with the packet in one direction (tables 21 and 41).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AclDecision {
    pub node: String,
    pub port: String,
    pub port_id: Uuid,
    pub direction: Direction,
    /// The conntrack state the decision saw, e.g. `new`, `est`, `est+rpl`, `inv`.
    pub conntrack: String,
    /// `allow` or `drop`.
    pub verdict: &'static str,
    /// What decided: `acl` (the rule in `rule`), `open_direction` (the direction has no
    /// ACL), `default_deny` (no rule admits a new connection), `invalid` (conntrack says
    /// invalid), `no_live_rule` (established, but its `ct_mark` names no rule that still
    /// exists: revoked, blocked or unmarked).
    pub by: &'static str,
    /// The rule, when `by` is `acl`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<AclRule>,
    /// The decision in words.
    pub reason: String,
}

/// The ACL behind a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AclRule {
    pub id: Uuid,
    pub priority: u16,
    pub action: AclAction,
}

fn ct_text(state: u32) -> String {
    let mut v: Vec<&str> = Vec::new();
    for (bit, name) in [
        (ct_state::NEW, "new"),
        (ct_state::EST, "est"),
        (ct_state::REL, "rel"),
        (ct_state::INV, "inv"),
        (ct_state::RPL, "rpl"),
    ] {
        if state & bit != 0 {
            v.push(name);
        }
    }
    if v.is_empty() {
        "untracked".into()
    } else {
        v.join("+")
    }
}

/// The ACL decision a step in table 21 or 41 stands for; `None` for any other step.
fn acl_decision(model: &LogicalModel, node: &str, step: &Step) -> Option<AclDecision> {
    let (direction, key) = match step.table {
        tables::EGRESS_ACL_CT => (Direction::Egress, step.packet.regs[6]),
        tables::INGRESS_ACL_CT => (Direction::Ingress, step.packet.regs[7]),
        _ => return None,
    };
    let p = &step.packet;
    let port = model
        .switches()
        .find(|s| u64::from(s.vni) == p.metadata)
        .and_then(|s| {
            model
                .ports_of_switch(&s.id)
                .find(|lp| u32::from(lp.key) == key)
        });
    let (port_name, port_id) = port.map(|lp| (lp.name.clone(), lp.id)).unwrap_or_default();
    let conntrack = ct_text(p.ct_state);
    let new = p.ct_state & ct_state::NEW != 0;
    let cookie = step.cookie.unwrap_or(COOKIE_PIPELINE);
    let rule = model
        .acls()
        .find(|a| a.port == port_id && cookie_for(&a.id) == cookie);
    let (verdict, by, reason) = if p.ct_state & ct_state::INV != 0 {
        (
            "drop",
            "invalid",
            "conntrack says the packet is invalid".to_string(),
        )
    } else if let Some(a) = rule {
        match (a.action, new) {
            (AclAction::Drop, true) => (
                "drop",
                "acl",
                "the highest-priority rule matching this new connection drops it".into(),
            ),
            (AclAction::Drop, false) => (
                "drop",
                "acl",
                "a drop rule above the rule that admitted this connection matches it: the \
                 connection is re-committed as blocked, both directions stop"
                    .into(),
            ),
            (AclAction::Allow, _) => (
                "allow",
                "acl",
                "a stateless allow rule matches (nothing is committed; replies need their own rule)"
                    .into(),
            ),
            (AclAction::AllowRelated, true) => (
                "allow",
                "acl",
                "an allow-related rule admits this new connection and commits it with its mark"
                    .into(),
            ),
            (AclAction::AllowRelated, false) => (
                "allow",
                "acl",
                format!(
                    "conntrack: {conntrack} in a connection this allow-related rule admitted \
                     (ct_mark {:#x})",
                    p.ct_mark
                ),
            ),
        }
    } else if port.is_some_and(|lp| cookie == cookie_for(&lp.id))
        && step.priority == Some(OPEN_DIRECTION_PRIORITY)
    {
        let what = if new {
            "the direction has no ACL: the new connection passes and is committed"
        } else {
            "conntrack: part of a connection the port opened through its open direction"
        };
        ("allow", "open_direction", what.to_string())
    } else if new {
        (
            "drop",
            "default_deny",
            "no rule admits this new connection: the direction's default deny".to_string(),
        )
    } else {
        (
            "drop",
            "no_live_rule",
            format!(
                "conntrack: {conntrack}, but the connection's ct_mark {:#x} names no rule of \
                 this port that still exists (revoked, blocked or unmarked)",
                p.ct_mark
            ),
        )
    };
    Some(AclDecision {
        node: node.to_string(),
        port: port_name,
        port_id,
        direction,
        conntrack,
        verdict,
        by,
        rule: rule.map(|a| AclRule {
            id: a.id,
            priority: a.priority,
            action: a.action,
        }),
        reason,
    })
}

impl Trace {
    /// Names of the ports reached, sorted (with repeats if a port got several copies).
    pub fn delivered_ports(&self) -> Vec<String> {
        let mut v: Vec<String> = self.delivered.iter().map(|d| d.port.clone()).collect();
        v.sort();
        v
    }
}

/// One bridge's part of the walk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Hop {
    pub node: String,
    pub in_port: u32,
    /// Headers as the packet entered this bridge.
    pub packet: String,
    pub steps: Vec<TraceStep>,
    pub outputs: Vec<TraceOutput>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TraceStep {
    pub depth: usize,
    pub table: u8,
    /// The flow that matched (`None`: no flow matched, the packet is dropped).
    pub flow: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A packet leaving a bridge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceOutput {
    pub ofport: u32,
    pub to: OutputTarget,
    pub packet: String,
}

/// What an output port is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputTarget {
    /// The VIF of a logical port.
    Port { port: String, id: Uuid },
    /// A tunnel to another node.
    Tunnel { node: String },
    /// A tunnel to an external VXLAN endpoint (a flood or hardware VTEP): the trace ends
    /// there, and what the endpoint does with it is not Weft's to know.
    Vtep { ip: IpAddr },
    /// A port Weft does not know.
    Unknown,
}

/// A logical port reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub node: String,
    pub port: String,
    pub port_id: Uuid,
    pub packet: String,
    /// The frame as delivered, for tests and callers that want fields.
    #[serde(skip)]
    pub frame: Packet,
}

fn mac(m: MacAddr) -> Mac {
    Mac(m.0)
}

fn first_v4(p: &LogicalPort) -> Option<Ipv4Addr> {
    p.ips.iter().find_map(|ip| match ip {
        IpAddr::V4(a) => Some(*a),
        IpAddr::V6(_) => None,
    })
}

fn first_v6(p: &LogicalPort) -> Option<Ipv6Addr> {
    p.ips.iter().find_map(|ip| match ip {
        IpAddr::V6(a) => Some(*a),
        IpAddr::V4(_) => None,
    })
}

impl TracePacket {
    /// The frame this description means when sent by `port`.
    pub fn build(&self, port: &LogicalPort) -> Result<Packet, TraceError> {
        let bad = |field, reason: &str| TraceError::BadPacket {
            field,
            reason: reason.to_string(),
        };
        let v6_dst = matches!(self.ip_dst, Some(IpAddr::V6(_)));
        let (eth_type, proto): (u16, Option<u8>) = match self.protocol.as_deref() {
            Some("arp") => (0x0806, None),
            Some("ip" | "ipv4") => (0x0800, self.ip_proto),
            Some("ipv6") => (0x86dd, self.ip_proto),
            Some("tcp") => (if v6_dst { 0x86dd } else { 0x0800 }, Some(6)),
            Some("udp") => (if v6_dst { 0x86dd } else { 0x0800 }, Some(17)),
            Some("icmp") => (0x0800, Some(1)),
            Some("tcp6") => (0x86dd, Some(6)),
            Some("udp6") => (0x86dd, Some(17)),
            Some("icmp6") => (0x86dd, Some(58)),
            Some(other) => {
                return Err(bad(
                    "protocol",
                    &format!(
                        "unknown protocol {other:?} (arp, ip, ipv6, tcp, udp, icmp, tcp6, udp6, icmp6)"
                    ),
                ));
            }
            None => {
                if self.arp_op.is_some() || self.arp_tpa.is_some() {
                    (0x0806, None)
                } else if let Some(ip) = self.ip_dst {
                    (if ip.is_ipv6() { 0x86dd } else { 0x0800 }, self.ip_proto)
                } else {
                    (self.dl_type.unwrap_or(0x88b5), None)
                }
            }
        };
        let mut p = Packet {
            eth_src: mac(self.eth_src.unwrap_or(port.mac)),
            eth_dst: self.eth_dst.map(mac).unwrap_or(Mac::BROADCAST),
            eth_type,
            ..Packet::default()
        };
        match eth_type {
            0x0806 => {
                p.arp_op = self.arp_op.unwrap_or(1);
                p.arp_sha = self.arp_sha.map(mac).unwrap_or(p.eth_src);
                p.arp_spa = self
                    .arp_spa
                    .or_else(|| first_v4(port))
                    .unwrap_or(Ipv4Addr::UNSPECIFIED);
                p.arp_tpa = self
                    .arp_tpa
                    .or(match self.ip_dst {
                        Some(IpAddr::V4(a)) => Some(a),
                        _ => None,
                    })
                    .ok_or_else(|| bad("arp_tpa", "an ARP packet needs arp_tpa"))?;
                p.arp_tha = self.arp_tha.map(mac).unwrap_or(Mac::ZERO);
            }
            0x0800 => {
                let Some(IpAddr::V4(dst)) = self.ip_dst else {
                    return Err(bad("ip_dst", "an IPv4 packet needs an IPv4 ip_dst"));
                };
                p.ip4_dst = dst;
                p.ip4_src = match self.ip_src {
                    Some(IpAddr::V4(a)) => a,
                    Some(IpAddr::V6(_)) => {
                        return Err(bad("ip_src", "IPv6 source on an IPv4 packet"));
                    }
                    None => first_v4(port).unwrap_or(Ipv4Addr::UNSPECIFIED),
                };
                p.ip_proto = proto.unwrap_or(0);
            }
            0x86dd => {
                let Some(IpAddr::V6(dst)) = self.ip_dst else {
                    return Err(bad("ip_dst", "an IPv6 packet needs an IPv6 ip_dst"));
                };
                p.ip6_dst = dst;
                p.ip6_src = match self.ip_src {
                    Some(IpAddr::V6(a)) => a,
                    Some(IpAddr::V4(_)) => {
                        return Err(bad("ip_src", "IPv4 source on an IPv6 packet"));
                    }
                    None => first_v6(port).unwrap_or_else(|| link_local(port.mac)),
                };
                p.ip_proto = proto.unwrap_or(0);
            }
            _ => {}
        }
        if matches!(eth_type, 0x0800 | 0x86dd) {
            p.ip_ttl = self.ttl.unwrap_or(64);
        }
        match p.ip_proto {
            6 | 17 => {
                p.tp_src = self.tp_src.unwrap_or(40000);
                p.tp_dst = self.tp_dst.unwrap_or(0);
            }
            1 | 58 => {
                p.tp_src =
                    u16::from(
                        self.icmp_type
                            .unwrap_or(if p.ip_proto == 1 { 8 } else { 128 }),
                    );
                p.tp_dst = u16::from(self.icmp_code.unwrap_or(0));
                if p.ip_proto == 58 {
                    p.nd_target = self.nd_target.unwrap_or(Ipv6Addr::UNSPECIFIED);
                    p.nd_sll = self.nd_sll.map(mac).unwrap_or(Mac::ZERO);
                    p.nd_tll = self.nd_tll.map(mac).unwrap_or(Mac::ZERO);
                }
            }
            _ => {}
        }
        Ok(p)
    }
}

/// Traces `packet` sent by logical port `port` (name or id). `node`, when given, must be
/// where the port is bound (the API passes `None`: the port's own node).
pub fn trace(
    model: &LogicalModel,
    topology: &Topology,
    node: Option<&str>,
    port: &str,
    packet: &TracePacket,
) -> Result<Trace, TraceError> {
    let bindings = Bindings::compute(model, topology);
    let lp = model
        .find_port(port)
        .ok_or_else(|| TraceError::PortNotFound(port.to_string()))?;
    let b = bindings
        .ports
        .get(&lp.id)
        .ok_or_else(|| TraceError::PortNotBound(lp.name.clone()))?;
    if let Some(asked) = node
        && asked != b.node
    {
        return Err(TraceError::PortNotOnNode {
            port: lp.name.clone(),
            bound: b.node.clone(),
            asked: asked.to_string(),
        });
    }
    let mut first = packet.build(lp)?;
    let (state, mark) = packet.conntrack()?;
    let zones = packet.zone_marks(model)?;
    first.in_port = b.ofport;
    Ok(walk_ct(
        model, topology, &bindings, &b.node, first, state, mark, &zones,
    ))
}

/// Sends `packet` (with `in_port` set) into `node`'s bridge and follows it across tunnels;
/// every `ct` says `+trk+new`.
pub fn walk(
    model: &LogicalModel,
    topology: &Topology,
    bindings: &Bindings,
    node: &str,
    packet: Packet,
) -> Trace {
    let new = ct_state::TRK | ct_state::NEW;
    walk_ct(
        model,
        topology,
        bindings,
        node,
        packet,
        new,
        0,
        &BTreeMap::new(),
    )
}

/// [`walk`] with the conntrack state every `ct` reports and the connection's mark per
/// zone (`ct_mark` elsewhere).
#[allow(clippy::too_many_arguments)] // the walk's inputs, each distinct
pub fn walk_ct(
    model: &LogicalModel,
    topology: &Topology,
    bindings: &Bindings,
    node: &str,
    packet: Packet,
    ct_state: u32,
    ct_mark: u32,
    zone_marks: &BTreeMap<u16, u32>,
) -> Trace {
    let mut out = Trace::default();
    let mut tables: BTreeMap<String, FlowTable> = BTreeMap::new();
    let mut queue: VecDeque<(String, Packet, usize)> = VecDeque::new();
    queue.push_back((node.to_string(), packet, 0));
    while let Some((n, pkt, hops)) = queue.pop_front() {
        let table = tables.entry(n.clone()).or_insert_with(|| {
            FlowTable::from_desired(&compile_node_with(model, topology, bindings, &n))
        });
        let outcome = table.process_zones(&pkt, ct_state, ct_mark, zone_marks);
        out.acl.extend(
            outcome
                .steps
                .iter()
                .filter_map(|s| acl_decision(model, &n, s)),
        );
        out.routing.extend(
            outcome
                .steps
                .iter()
                .filter_map(|s| route_decision(model, &n, s)),
        );
        let mut hop = Hop {
            node: n.clone(),
            in_port: pkt.in_port,
            packet: pkt.headers(),
            steps: outcome
                .steps
                .iter()
                .map(|s| TraceStep {
                    depth: s.depth,
                    table: s.table,
                    flow: s.flow.clone(),
                    notes: s.notes.clone(),
                })
                .collect(),
            outputs: Vec::new(),
        };
        for d in &outcome.drops {
            out.dropped.push(format!("{n}: {d}"));
        }
        let view = topology.nodes.get(&n);
        for e in &outcome.outputs {
            let local = bindings
                .on_node(&n)
                .find(|(_, o)| *o == e.ofport)
                .and_then(|(id, _)| model.port(&id));
            let remote = view.and_then(|v| {
                v.tunnels
                    .iter()
                    .find(|(_, o)| **o == e.ofport)
                    .map(|(r, _)| r.clone())
            });
            let to = if let Some(lp) = local {
                out.delivered.push(Delivery {
                    node: n.clone(),
                    port: lp.name.clone(),
                    port_id: lp.id,
                    packet: e.packet.headers(),
                    frame: e.packet.clone(),
                });
                OutputTarget::Port {
                    port: lp.name.clone(),
                    id: lp.id,
                }
            } else if let Some(ip) = remote
                .as_deref()
                .and_then(|r| r.strip_prefix(crate::desired::VTEP_REMOTE_PREFIX))
                .and_then(|ip| ip.parse().ok())
            {
                OutputTarget::Vtep { ip }
            } else if let Some(r) = remote {
                let back = topology.nodes.get(&r).and_then(|rv| rv.tunnels.get(&n));
                match back {
                    Some(&in_port) if hops < MAX_HOPS => {
                        let arriving = Packet {
                            in_port,
                            metadata: 0,
                            regs: [0; 16],
                            ct_state: 0,
                            ct_zone: 0,
                            ct_mark: 0,
                            ..e.packet.clone()
                        };
                        queue.push_back((r.clone(), arriving, hops + 1));
                    }
                    Some(_) => out
                        .dropped
                        .push(format!("{n}: more than {MAX_HOPS} tunnel hops, stopped")),
                    None => out.dropped.push(format!(
                        "{n}: tunnel to {r} leads nowhere: {r} has no tunnel port back to {n} yet"
                    )),
                }
                OutputTarget::Tunnel { node: r }
            } else {
                out.dropped.push(format!(
                    "{n}: output to ofport {} which is neither a bound port nor a tunnel",
                    e.ofport
                ));
                OutputTarget::Unknown
            };
            hop.outputs.push(TraceOutput {
                ofport: e.ofport,
                to,
                packet: e.packet.headers(),
            });
        }
        out.hops.push(hop);
    }
    out
}
