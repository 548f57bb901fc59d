//! `trace`: where the logical pipeline sends a packet, step by step. The packet enters at
//! a logical port's VIF; the walk runs [`compile_node`](super::compile_node)'s flows on the
//! software [`FlowTable`], and follows every tunnel output to the remote node, where it
//! enters through that node's tunnel port. The result names each table decision, every
//! logical port the packet reaches and why branches were dropped.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use openflow::Mac;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::table::{FlowTable, Packet, ct_state};
use super::{Bindings, compile_node_with, link_local};
use crate::fabric::Topology;
use crate::model::{LogicalModel, LogicalPort, MacAddr};

/// How many tunnel crossings a trace follows (one is all split horizon allows).
const MAX_HOPS: usize = 4;

/// A packet to trace, with `ovs-ofctl`-like optional fields. Omitted source fields default
/// to the port's own (`eth_src`, `ip_src`, `arp_sha`, `arp_spa`), `eth_dst` to broadcast.
/// `protocol` is one of `arp`, `ip`, `ipv6`, `tcp`, `udp`, `icmp`, `tcp6`, `udp6`, `icmp6`
/// (`tcp`/`udp` use IPv6 when `ip_dst` is IPv6); without it the fields given decide.
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
    /// IP protocol number when `protocol` does not name it.
    pub nw_proto: Option<u8>,
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
            Some("ip" | "ipv4") => (0x0800, self.nw_proto),
            Some("ipv6") => (0x86dd, self.nw_proto),
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
                    (if ip.is_ipv6() { 0x86dd } else { 0x0800 }, self.nw_proto)
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
    first.in_port = b.ofport;
    Ok(walk(model, topology, &bindings, &b.node, first))
}

/// Sends `packet` (with `in_port` set) into `node`'s bridge and follows it across tunnels.
pub fn walk(
    model: &LogicalModel,
    topology: &Topology,
    bindings: &Bindings,
    node: &str,
    packet: Packet,
) -> Trace {
    let mut out = Trace::default();
    let mut tables: BTreeMap<String, FlowTable> = BTreeMap::new();
    let mut queue: VecDeque<(String, Packet, usize)> = VecDeque::new();
    queue.push_back((node.to_string(), packet, 0));
    while let Some((n, pkt, hops)) = queue.pop_front() {
        let table = tables.entry(n.clone()).or_insert_with(|| {
            FlowTable::from_desired(&compile_node_with(model, topology, bindings, &n))
        });
        let outcome = table.process(&pkt, ct_state::TRK | ct_state::NEW);
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

/// The API's `trace`, answered from the live topology: the same compiler output the
/// switches get, walked on the software table (no switch involved).
#[derive(Debug)]
pub struct LiveTracer {
    fabric: std::sync::Arc<crate::fabric::Fabric>,
}

impl LiveTracer {
    pub fn new(fabric: std::sync::Arc<crate::fabric::Fabric>) -> Self {
        LiveTracer { fabric }
    }
}

impl crate::api::Tracer for LiveTracer {
    fn trace(
        &self,
        model: &LogicalModel,
        _observed: &crate::observed::ObservedState,
        port: &LogicalPort,
        packet: &crate::api::TracePacket,
    ) -> Result<serde_json::Value, crate::error::ApiError> {
        use crate::error::ApiError;
        let p = TracePacket {
            eth_src: packet.eth_src,
            eth_dst: Some(packet.eth_dst),
            ip_src: packet.ip_src,
            ip_dst: packet.ip_dst,
            nw_proto: packet.ip_proto,
            tp_src: packet.tp_src,
            tp_dst: packet.tp_dst,
            arp_op: packet.arp_op,
            ..TracePacket::default()
        };
        let topology = self.fabric.topology();
        let t = trace(model, &topology, None, &port.id.to_string(), &p).map_err(|e| match e {
            TraceError::PortNotFound(_) => ApiError::not_found("port", "port", &port.name),
            TraceError::BadPacket { field, reason } => {
                ApiError::invalid(format!("packet.{field}"), reason)
            }
            // Not an error in the request: the answer depends on where the port is
            // plugged, which is not known yet.
            e @ TraceError::PortNotBound(_) => ApiError::Unavailable(e.to_string()),
            other => ApiError::conflict("port", other),
        })?;
        serde_json::to_value(t).map_err(|e| ApiError::invalid("packet", e))
    }
}
