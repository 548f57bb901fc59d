//! The pipeline compiler: a pure function from the logical model and the observed
//! topology to what one hypervisor's integration bridge should hold (docs/pipeline.md).
//!
//! No I/O and no clocks: the same inputs always give the same [`DesiredNode`], which is
//! what lets the reconciler diff it against a switch's flow dump and lets tests check it
//! against a software flow table ([`table::FlowTable`]) without any switch.
//!
//! Flows are emitted in the form Open vSwitch reports them back in a flow-stats reply
//! (apply-actions `set_field` for metadata and registers, NXM headers in `move`, masks
//! only where partial), so a diff of a fresh dump against [`DesiredNode::flows`] is empty;
//! the OVS-backed test in `ovs_tests.rs` proves it against a real `ovs-vswitchd`.
//!
//! ## Bindings
//! A VIF binds to a logical port when its `iface-id` is the port's name or id. If one port
//! is claimed by several VIFs (a VM moving between hypervisors, or a stale interface), the
//! claim from the node whose system-id sorts first wins, and within a node the lowest
//! ofport: exactly one node ever programs a port. See [`Bindings::compute`].
//!
//! ## Incremental compilation
//! [`compile_node`] reads only the switches the node participates in. The compiler task's
//! [`IncrementalCompiler`] diffs each new model and topology against the previous ones,
//! keeps the bindings and a switch -> member nodes index up to date from that diff, and
//! recompiles only the members of what changed. [`node_fingerprint`] summarises the same
//! inputs for one node ([`nodes_affected`] compares two snapshots with it).
//!
//! ## Wiring (compiler task, reconciler, API)
//! - Compiler task: keep one [`IncrementalCompiler`]; on every new model snapshot or
//!   topology (`Fabric::watch_topology`), `for (node, d) in ic.update(&model, &topo)`
//!   `{ fabric.publish_desired(&node, Arc::new(d)) }`.
//! - Reconciler: `DesiredNode::flows` is keyed like `FlowStats::key()`/`content()`, so a
//!   dump requested with `flow_stats_request(xid, COOKIE_WEFT, COOKIE_MASK)` diffs
//!   directly; [`DesiredNode::flow_mods`]/[`DesiredNode::group_mods`] give the adds.
//! - API `trace {port, packet}`: [`trace::trace`]`(&model, &topology, None, port, &packet)`
//!   with `packet: trace::TracePacket` (serde); the [`trace::Trace`] serialises as the
//!   answer. `node_flows` can print [`DesiredNode::flows_text`] for comparison.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use openflow::{
    Action, Bucket, Ct, CtZone, Field, FieldHeader, FlowContent, FlowKey, FlowMod, GroupMod,
    GroupType, Instruction, Mac, Match, Nicira, Subfield, oxm,
};
use uuid::Uuid;

use crate::fabric::{NodeChange, NodeView, Topology};
use crate::model::{
    Acl, AclAction, Direction, Ethertype, LogicalModel, LogicalPort, LogicalSwitch, MacAddr,
};
use crate::observed::{EncapType, PortBinding};

pub mod table;
pub mod trace;

#[cfg(test)]
mod ovs_tests;
#[cfg(test)]
mod tests;

/// Top 16 bits of every Weft cookie (`"WE"`).
pub const COOKIE_WEFT: u64 = 0x5745_0000_0000_0000;
/// Mask selecting [`COOKIE_WEFT`] in a cookie (flow-stats filter, delete-by-cookie).
pub const COOKIE_MASK: u64 = 0xffff_0000_0000_0000;
/// Cookie of the pipeline's own flows (table-miss defaults) that serve no logical object.
pub const COOKIE_PIPELINE: u64 = COOKIE_WEFT;

/// The cookie of flows that serve logical object `id` (a switch or port): Weft's tag plus
/// the low 48 bits of the object's uuid.
pub fn cookie_for(id: &Uuid) -> u64 {
    COOKIE_WEFT | (id.as_u128() as u64 & !COOKIE_MASK)
}

/// Table numbers of the pipeline (docs/pipeline.md).
pub mod tables {
    pub const CLASSIFY: u8 = 0;
    pub const PORT_SECURITY: u8 = 10;
    pub const EGRESS_ACL: u8 = 20;
    pub const EGRESS_ACL_CT: u8 = 21;
    pub const ARP_RESPONDER: u8 = 25;
    pub const L2_LOOKUP: u8 = 30;
    pub const INGRESS_ACL: u8 = 40;
    pub const INGRESS_ACL_CT: u8 = 41;
    pub const OUTPUT: u8 = 50;
}

/// The flood group of a switch (local ports + one bucket per remote node).
pub fn flood_group(vni: u32) -> u32 {
    vni << 1
}

/// The local-only group of a switch (used for traffic that came from a tunnel).
pub fn local_group(vni: u32) -> u32 {
    (vni << 1) | 1
}

const ETH_IP: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;
const ETH_IPV6: u16 = 0x86dd;
const PROTO_ICMPV6: u8 = 58;
const ND_NEIGHBOR_ADVERT: u8 = 136;

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
    /// The ACLs whose flows are in `flows`, by cookie: what the installer needs to name
    /// the ACL behind a flow the switch rejects and to fail closed without it.
    pub acls: BTreeMap<u64, AclFlows>,
}

/// One ACL's place in a node's flows (see [`DesiredNode::acls`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFlows {
    pub acl: Uuid,
    pub port: Uuid,
    pub direction: Direction,
    /// Cookies of every flow to withhold, with this ACL's own, when the switch refuses
    /// them, so that what remains is never more permissive than the rules: for `allow`
    /// and `allow-related` only its own (its traffic falls to the direction's default
    /// deny); for a `drop` also every allow rule of the same port and direction below it
    /// (withholding the drop alone would admit what it blocks).
    pub withhold: BTreeSet<u64>,
}

impl DesiredNode {
    /// This state without the flows of the ACLs named by `cookies` (and the flows
    /// [`AclFlows::withhold`] says go with them): the fail-closed fallback when a switch
    /// refuses an ACL's flows. Other cookies pass through untouched.
    pub fn without_acls(&self, cookies: &BTreeSet<u64>) -> DesiredNode {
        let mut gone: BTreeSet<u64> = BTreeSet::new();
        for c in cookies {
            if let Some(a) = self.acls.get(c) {
                gone.insert(*c);
                gone.extend(a.withhold.iter().copied());
            }
        }
        let mut out = self.clone();
        out.flows.retain(|_, c| !gone.contains(&c.cookie));
        out.acls.retain(|c, _| !gone.contains(c));
        out
    }
}

/// The OFPFC_ADD that installs one flow of a desired or installed flow table.
pub fn flow_add(key: &FlowKey, content: &FlowContent) -> FlowMod {
    FlowMod::add(
        key.table_id,
        key.priority,
        key.r#match.clone(),
        content.instructions.clone(),
    )
    .with_cookie(content.cookie)
}

impl DesiredNode {
    /// One OFPFC_ADD per flow, in table/priority/match order.
    pub fn flow_mods(&self) -> Vec<FlowMod> {
        self.flows.iter().map(|(k, c)| flow_add(k, c)).collect()
    }

    /// One OFPGC_ADD per group.
    pub fn group_mods(&self) -> Vec<GroupMod> {
        self.groups
            .iter()
            .map(|(id, g)| GroupMod::add(*id, g.group_type, g.buckets.clone()))
            .collect()
    }

    /// The flows in `ovs-ofctl add-flows` syntax, one per line (also what
    /// `ovs-ofctl dump-flows --no-stats` prints for them).
    pub fn flows_text(&self) -> Vec<String> {
        self.flow_mods().iter().map(ToString::to_string).collect()
    }

    /// The groups in `ovs-ofctl add-groups` / `dump-groups` syntax, one per line.
    pub fn groups_text(&self) -> Vec<String> {
        self.groups
            .iter()
            .map(|(id, g)| format_group(*id, g))
            .collect()
    }
}

/// `group_id=N,type=all,bucket=actions=...` as `ovs-ofctl dump-groups` prints it.
pub fn format_group(id: u32, g: &GroupSpec) -> String {
    let t = match g.group_type {
        GroupType::All => "all".to_string(),
        GroupType::Select => "select".into(),
        GroupType::Indirect => "indirect".into(),
        GroupType::FastFailover => "ff".into(),
        GroupType::Unknown(n) => format!("type{n}"),
    };
    let mut s = format!("group_id={id},type={t}");
    for b in &g.buckets {
        s.push_str(",bucket=actions=");
        s.push_str(&openflow::print::format_actions(&b.actions));
    }
    s
}

/// Where every logical port is bound, decided once for the whole topology so that all
/// nodes agree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bindings {
    /// Logical port -> where it is bound.
    pub ports: BTreeMap<Uuid, PortBinding>,
    /// The same, indexed by node: system-id -> (port -> ofport).
    pub by_node: BTreeMap<String, BTreeMap<Uuid, u32>>,
}

impl Bindings {
    /// Binds each VIF whose `iface-id` names a logical port (by name or id). When several
    /// VIFs claim one port, the node whose system-id sorts first wins, then the lowest
    /// ofport: deterministic, so two nodes never both program the port.
    pub fn compute(model: &LogicalModel, topology: &Topology) -> Self {
        let mut ports: BTreeMap<Uuid, PortBinding> = BTreeMap::new();
        for (node_id, view) in &topology.nodes {
            for (iface_id, vif) in &view.vifs {
                let Some(port) = model.find_port(iface_id) else {
                    continue;
                };
                let claim = PortBinding {
                    node: node_id.clone(),
                    ofport: vif.ofport,
                };
                match ports.get(&port.id) {
                    Some(cur) if (&cur.node, cur.ofport) <= (&claim.node, claim.ofport) => {
                        if cur.node != claim.node {
                            tracing::debug!(
                                port = %port.name, winner = %cur.node, loser = %claim.node,
                                "port claimed by two nodes; binding it to the first by system-id"
                            );
                        }
                    }
                    _ => {
                        ports.insert(port.id, claim);
                    }
                }
            }
        }
        let mut by_node: BTreeMap<String, BTreeMap<Uuid, u32>> = BTreeMap::new();
        for (id, b) in &ports {
            by_node
                .entry(b.node.clone())
                .or_default()
                .insert(*id, b.ofport);
        }
        Bindings { ports, by_node }
    }

    /// Ports bound on `node`, with their ofport.
    pub fn on_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = (Uuid, u32)> + 'a {
        self.by_node
            .get(node)
            .into_iter()
            .flat_map(|m| m.iter().map(|(id, o)| (*id, *o)))
    }
}

/// Compiles the desired state of node `node` (a system-id in `topology`).
pub fn compile_node(model: &LogicalModel, topology: &Topology, node: &str) -> DesiredNode {
    compile_node_with(model, topology, &Bindings::compute(model, topology), node)
}

/// The switches `node` participates in (has a bound port of), by id.
pub fn switches_of_node(model: &LogicalModel, bindings: &Bindings, node: &str) -> BTreeSet<Uuid> {
    bindings
        .on_node(node)
        .filter_map(|(id, _)| model.port(&id).map(|p| p.switch))
        .collect()
}

/// Like [`compile_node`] with bindings computed once for all nodes (the compiler task
/// compiles many nodes from one snapshot).
pub fn compile_node_with(
    model: &LogicalModel,
    topology: &Topology,
    bindings: &Bindings,
    node: &str,
) -> DesiredNode {
    let mut out = DesiredNode::default();
    let Some(view) = topology.nodes.get(node) else {
        return out;
    };
    let switches = switches_of_node(model, bindings, node);
    if switches.is_empty() {
        return out;
    }
    let mut b = FlowBuilder {
        node,
        out: &mut out,
        flows: Vec::new(),
    };
    b.defaults();
    // Ports bound here, each with how many flows had been added when its switch was
    // done: a port is complete unless one of its own flows lost a collision by then.
    let mut bound: Vec<(&LogicalPort, usize)> = Vec::new();
    for sw_id in &switches {
        let Some(sw) = model.switch(sw_id) else {
            continue;
        };
        let mut locals: Vec<(&LogicalPort, u32)> = Vec::new();
        // remote node -> its ports in this switch
        let mut remotes: BTreeMap<&str, Vec<&LogicalPort>> = BTreeMap::new();
        for p in model.ports_of_switch(sw_id) {
            match bindings.ports.get(&p.id) {
                Some(pb) if pb.node == node => locals.push((p, pb.ofport)),
                Some(pb) => remotes.entry(pb.node.as_str()).or_default().push(p),
                None => {}
            }
        }
        locals.sort_by_key(|(p, _)| p.key);
        let mut remote_tunnels: Vec<(&str, u32, &[&LogicalPort])> = Vec::new();
        for (rnode, rports) in &remotes {
            let Some(rview) = topology.nodes.get(*rnode) else {
                continue;
            };
            b.out.tunnels.insert(TunnelSpec {
                remote: rnode.to_string(),
                remote_ip: rview.encap_ip,
                local_ip: view.encap_ip,
                encap: view.encap_type,
            });
            match view.tunnels.get(*rnode) {
                Some(&ofport) => remote_tunnels.push((rnode, ofport, rports)),
                None => tracing::debug!(
                    node, remote = %rnode, switch = %sw.name,
                    "tunnel port not reported yet; remote ports left out until it is"
                ),
            }
        }
        b.switch(model, sw, &locals, &remote_tunnels);
        let done = b.flows.len();
        bound.extend(locals.iter().map(|(p, _)| (*p, done)));
    }
    let incomplete = b.finish();
    for (p, done) in bound {
        if incomplete
            .get(&cookie_for(&p.id))
            .is_some_and(|first| *first < done)
        {
            tracing::warn!(
                node, port = %p.name,
                "port's flows collide with another object's; not reporting it installed"
            );
        } else {
            out.bound_ports.insert(p.id);
        }
    }
    out
}

/// The EUI-64 link-local address a NIC derives from its MAC (`fe80::` + modified EUI-64).
pub fn link_local(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 2,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

fn mac(m: MacAddr) -> Mac {
    Mac(m.0)
}

fn apply(actions: Vec<Action>) -> Instruction {
    Instruction::ApplyActions(actions)
}

fn goto(t: u8) -> Instruction {
    Instruction::GotoTable(t)
}

fn set(f: Field) -> Action {
    Action::SetField(f)
}

fn nxm(class: u16, field: u8, len: u8) -> FieldHeader {
    FieldHeader {
        class,
        field,
        has_mask: false,
        len,
        experimenter: None,
    }
}

/// `dl_dst=01:00:00:00:00:00/01:00:00:00:00:00`: broadcast and multicast.
fn multicast_dst() -> Field {
    Field::EthDst(Mac::MULTICAST_BIT, Some(Mac::MULTICAST_BIT))
}

struct FlowBuilder<'a> {
    node: &'a str,
    out: &'a mut DesiredNode,
    /// Every flow added so far, in the order added. Kept in a vector and sorted once by
    /// [`FlowBuilder::finish`]: one sort of ~1,700 flows costs a fraction of the key
    /// comparisons of as many lookups and inserts into the map.
    flows: Vec<(FlowKey, FlowContent)>,
}

impl FlowBuilder<'_> {
    fn add(
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

    /// Moves the added flows into `out.flows`. Of flows with the same key the first
    /// added is kept (a later identical one is a no-op, a later different one a
    /// collision, logged). Returns, for each cookie that lost one of its own flows
    /// (classify, port security, L2 lookup, output) to another object's identical
    /// match, the position in the order added of the first such flow: a port whose
    /// flow lost is not complete.
    fn finish(&mut self) -> HashMap<u64, usize> {
        use tables::*;
        let mut flows: Vec<(usize, FlowKey, FlowContent)> = std::mem::take(&mut self.flows)
            .into_iter()
            .enumerate()
            .map(|(i, (k, c))| (i, k, c))
            .collect();
        // Stable: flows with equal keys stay in the order they were added.
        flows.sort_by(|a, b| a.1.cmp(&b.1));
        let mut incomplete: HashMap<u64, usize> = HashMap::new();
        let mut kept: Vec<(FlowKey, FlowContent)> = Vec::with_capacity(flows.len());
        for (seq, key, content) in flows {
            if let Some((first_key, first)) = kept.last()
                && *first_key == key
            {
                if *first != content {
                    if matches!(key.table_id, CLASSIFY | PORT_SECURITY | L2_LOOKUP | OUTPUT) {
                        let at = incomplete.entry(content.cookie).or_insert(seq);
                        *at = (*at).min(seq);
                    }
                    tracing::warn!(
                        node = self.node, table = key.table_id, priority = key.priority,
                        r#match = %key.r#match,
                        "two logical objects want the same flow; keeping the first"
                    );
                }
                continue;
            }
            kept.push((key, content));
        }
        // Already sorted and unique: building the map from them is linear.
        self.out.flows = kept.into_iter().collect();
        incomplete
    }

    /// Table-miss behaviour of every table: drop, or fall through where a table only
    /// sometimes applies (ACLs, ARP responder).
    fn defaults(&mut self) {
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

    /// Tables 20/21 (egress, from the VM) and 40/41 (ingress, to the VM) for one port.
    ///
    /// A port without ACLs never meets conntrack. A port with ACLs in at least one
    /// direction sends its IP traffic through conntrack in its zone in *both* directions:
    /// the direction without ACLs is open, and it commits every new connection (a
    /// lowest-priority `ct(commit)` instead of the drop), so that replies to connections
    /// the VM opened through the open direction are `+est` when they meet the restricted
    /// one. Without that commit, a port with only ingress ACLs could open nothing: every
    /// reply would be `+new` on ingress and dropped (OVN commits all traffic of a port
    /// with stateful ACLs for the same reason).
    fn acls(&mut self, vni: u32, p: &LogicalPort, acls: &[&Acl]) {
        use tables::*;
        let pc = cookie_for(&p.id);
        let md = || Field::Metadata(u64::from(vni), None);
        let zone = || CtZone::Field(Subfield::bits(FieldHeader::reg(13), 0, 16));
        if acls.is_empty() {
            return;
        }
        // Replies and related traffic pass, in both directions, only for connections
        // whose mark names a rule of this port that still exists. Each pass flow sits at
        // its admitting rule's priority, so that a higher-priority drop of the same
        // direction (its established-traffic flow below) wins over it.
        let mut marks: Vec<(u32, u16, u64)> = acls
            .iter()
            .filter(|a| a.action == AclAction::AllowRelated)
            .map(|a| (acl_mark(&a.id), acl_flow_priority(a), cookie_for(&a.id)))
            .collect();
        let both = [Direction::Egress, Direction::Ingress];
        if !both.iter().all(|d| acls.iter().any(|a| a.direction == *d)) {
            marks.push((OPEN_DIRECTION_MARK, OPEN_DIRECTION_PRIORITY, pc));
        }
        for (ct_table, next, reg) in [
            (EGRESS_ACL_CT, ARP_RESPONDER, 6),
            (INGRESS_ACL_CT, OUTPUT, 7),
        ] {
            for (mark, priority, cookie) in &marks {
                // Established and related in one flow: tracked, neither new nor invalid
                // is exactly one of the two (and `+inv` is dropped above everything).
                self.add(
                    ct_table,
                    *priority,
                    vec![
                        md(),
                        Field::Reg(reg, u32::from(p.key), None),
                        ct_match(ct_bits::TRK, ct_bits::NEW | ct_bits::INV | ct_bits::TRK),
                        Field::CtMark(*mark, None),
                    ],
                    vec![goto(next)],
                    *cookie,
                );
            }
        }
        for dir in [Direction::Egress, Direction::Ingress] {
            let rules: Vec<&&Acl> = acls.iter().filter(|a| a.direction == dir).collect();
            let (table, ct_table, next, reg) = match dir {
                Direction::Egress => (EGRESS_ACL, EGRESS_ACL_CT, ARP_RESPONDER, 6),
                Direction::Ingress => (INGRESS_ACL, INGRESS_ACL_CT, OUTPUT, 7),
            };
            let key = Field::Reg(reg, u32::from(p.key), None);
            for et in [ETH_IP, ETH_IPV6] {
                let mut actions = Vec::new();
                if dir == Direction::Ingress {
                    // The sender's zone (same node) must not leak into the receiver's.
                    actions.push(Action::Nicira(Nicira::CtClear));
                    actions.push(set(Field::Reg(13, u32::from(p.zone), None)));
                }
                actions.push(Action::Nicira(Nicira::Ct(Ct {
                    flags: 0,
                    zone: zone(),
                    recirc_table: ct_table,
                    alg: 0,
                    actions: vec![],
                })));
                self.add(
                    table,
                    100,
                    vec![md(), key.clone(), Field::EthType(et, None)],
                    vec![apply(actions)],
                    pc,
                );
            }
            if rules.is_empty() {
                // The open direction: every new connection is admitted and committed
                // (`ct` needs an IP ethertype in the match, hence one flow per family).
                for et in [ETH_IP, ETH_IPV6] {
                    self.add(
                        ct_table,
                        OPEN_DIRECTION_PRIORITY,
                        vec![
                            md(),
                            key.clone(),
                            ct_match(ct_bits::NEW | ct_bits::TRK, ct_bits::NEW | ct_bits::TRK),
                            Field::EthType(et, None),
                        ],
                        vec![
                            apply(vec![commit_with_mark(zone(), OPEN_DIRECTION_MARK)]),
                            goto(next),
                        ],
                        pc,
                    );
                }
                continue;
            }
            for acl in &rules {
                let mut withhold = BTreeSet::from([cookie_for(&acl.id)]);
                if acl.action == AclAction::Drop {
                    withhold.extend(
                        rules
                            .iter()
                            .filter(|r| r.action != AclAction::Drop && r.priority < acl.priority)
                            .map(|r| cookie_for(&r.id)),
                    );
                }
                self.out.acls.insert(
                    cookie_for(&acl.id),
                    AclFlows {
                        acl: acl.id,
                        port: p.id,
                        direction: dir,
                        withhold,
                    },
                );
                let et = match acl.ethertype {
                    Ethertype::Ipv4 => ETH_IP,
                    Ethertype::Ipv6 => ETH_IPV6,
                };
                // The rule's own match, without the conntrack state.
                let mut base = vec![md(), key.clone(), Field::EthType(et, None)];
                if let Some(proto) = acl.protocol {
                    base.push(Field::IpProto(proto.number(), None));
                }
                if let Some(net) = acl.remote_cidr
                    && let Some(f) = cidr_field(net, dir)
                {
                    base.push(f);
                }
                let new = ct_match(ct_bits::NEW | ct_bits::TRK, ct_bits::NEW | ct_bits::TRK);
                let insts = match acl.action {
                    AclAction::Drop => vec![],
                    AclAction::Allow => vec![goto(next)],
                    AclAction::AllowRelated => vec![
                        apply(vec![commit_with_mark(zone(), acl_mark(&acl.id))]),
                        goto(next),
                    ],
                };
                // A drop is also evaluated for established traffic in the connection's
                // original direction (`-rpl`: a packet of the side that opened it, in the
                // direction the rule guards). It wins over the pass flow of a
                // lower-priority rule that admitted the connection, and re-commits the
                // connection with [`BLOCKED_MARK`], which no flow passes, so the replies
                // in the other direction stop too. Replies (`+rpl`) are never matched:
                // a drop in one direction does not cut what the port opened in the other
                // (reflexive replies belong to the connection, not to this direction).
                let blocked = (acl.action == AclAction::Drop).then(|| {
                    (
                        ct_match(ct_bits::EST | ct_bits::TRK, CT_NEW_EST_RPL_TRK),
                        vec![apply(vec![commit_with_mark(zone(), BLOCKED_MARK)])],
                    )
                });
                let priority = acl_flow_priority(acl);
                let ranges = match (acl.protocol, acl.port_min, acl.port_max) {
                    (Some(proto), lo, hi)
                        if proto.has_ports() && (lo.is_some() || hi.is_some()) =>
                    {
                        let lo = lo.unwrap_or(0);
                        let hi = hi.unwrap_or(u16::MAX).max(lo);
                        port_masks(lo, hi)
                            .into_iter()
                            .map(|(v, m)| {
                                if m == 0 {
                                    return None; // every port
                                }
                                let m = (m != u16::MAX).then_some(m);
                                Some(if proto.number() == 6 {
                                    Field::TcpDst(v, m)
                                } else {
                                    Field::UdpDst(v, m)
                                })
                            })
                            .collect()
                    }
                    _ => vec![None],
                };
                for r in ranges {
                    let mut fields = base.clone();
                    fields.extend(r);
                    let mut new_fields = fields.clone();
                    new_fields.push(new.clone());
                    self.add(
                        ct_table,
                        priority,
                        new_fields,
                        insts.clone(),
                        cookie_for(&acl.id),
                    );
                    if let Some((est, cut)) = &blocked {
                        fields.push(est.clone());
                        self.add(ct_table, priority, fields, cut.clone(), cookie_for(&acl.id));
                    }
                }
            }
        }
    }

    fn switch(
        &mut self,
        model: &LogicalModel,
        sw: &LogicalSwitch,
        locals: &[(&LogicalPort, u32)],
        remotes: &[(&str, u32, &[&LogicalPort])],
    ) {
        use tables::*;
        let vni = sw.vni;
        let md = || Field::Metadata(u64::from(vni), None);
        let sc = cookie_for(&sw.id);

        for &(p, ofport) in locals {
            let pc = cookie_for(&p.id);
            let key = u32::from(p.key);
            // 0: classify
            self.add(
                CLASSIFY,
                100,
                vec![Field::InPort(ofport, None)],
                vec![
                    apply(vec![
                        set(md()),
                        set(Field::Reg(6, key, None)),
                        set(Field::Reg(13, u32::from(p.zone), None)),
                    ]),
                    goto(PORT_SECURITY),
                ],
                pc,
            );
            // 10: port security
            self.port_security(vni, p);
            // 20/21 and 40/41: the port's ACLs, if any.
            let acls: Vec<&Acl> = model.acls_of_port(&p.id).collect();
            self.acls(vni, p, &acls);
            // 30: L2 lookup of a local destination
            self.add(
                L2_LOOKUP,
                100,
                vec![md(), Field::EthDst(mac(p.mac), None)],
                vec![
                    apply(vec![set(Field::Reg(7, key, None))]),
                    goto(INGRESS_ACL),
                ],
                pc,
            );
            // 50: output
            self.add(
                OUTPUT,
                100,
                vec![md(), Field::Reg(7, key, None)],
                vec![apply(vec![Action::output(ofport)])],
                pc,
            );
        }

        // 0: classify tunnel traffic of this switch, per remote that shares it.
        for &(_, tun_ofport, _) in remotes {
            self.add(
                CLASSIFY,
                100,
                vec![
                    Field::InPort(tun_ofport, None),
                    Field::TunnelId(u64::from(vni), None),
                ],
                vec![
                    apply(vec![set(md()), set(Field::Reg(6, 0, None))]),
                    goto(L2_LOOKUP),
                ],
                sc,
            );
        }

        // 25: ARP responder for every reachable IPv4 address of the switch.
        for &(p, _) in locals {
            for ip in p.ips.iter().filter_map(v4) {
                self.arp_responder(vni, p, ip);
                // A port asking for its own address (probe, gratuitous ARP) is not
                // answered by Weft: it goes on to the L2 lookup like any broadcast.
                self.add(
                    ARP_RESPONDER,
                    110,
                    vec![
                        md(),
                        Field::Reg(6, u32::from(p.key), None),
                        Field::EthType(ETH_ARP, None),
                        Field::ArpOp(1, None),
                        Field::ArpTpa(ip, None),
                    ],
                    vec![goto(L2_LOOKUP)],
                    cookie_for(&p.id),
                );
            }
        }
        for &(_, tun_ofport, rports) in remotes {
            for p in rports {
                for ip in p.ips.iter().filter_map(v4) {
                    self.arp_responder(vni, p, ip);
                }
                // 30: L2 lookup of a remote destination: straight into its node's tunnel.
                self.add(
                    L2_LOOKUP,
                    90,
                    vec![md(), Field::EthDst(mac(p.mac), None)],
                    vec![apply(vec![
                        set(Field::TunnelId(u64::from(vni), None)),
                        Action::output(tun_ofport),
                    ])],
                    cookie_for(&p.id),
                );
            }
        }

        // 30: broadcast and multicast: head-end replication; from a tunnel, local only.
        self.add(
            L2_LOOKUP,
            96,
            vec![md(), Field::Reg(6, 0, None), multicast_dst()],
            vec![apply(vec![Action::Group(local_group(vni))])],
            sc,
        );
        self.add(
            L2_LOOKUP,
            80,
            vec![md(), multicast_dst()],
            vec![apply(vec![Action::Group(flood_group(vni))])],
            sc,
        );
        let local_buckets: Vec<Bucket> = locals
            .iter()
            .map(|(p, _)| {
                Bucket::new(vec![
                    set(Field::Reg(7, u32::from(p.key), None)),
                    Action::resubmit(INGRESS_ACL),
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
            GroupSpec {
                group_type: GroupType::All,
                buckets: flood,
            },
        );
        self.out.groups.insert(
            local_group(vni),
            GroupSpec {
                group_type: GroupType::All,
                buckets: local_buckets,
            },
        );
    }

    fn arp_responder(&mut self, vni: u32, p: &LogicalPort, ip: Ipv4Addr) {
        let eth_src = nxm(oxm::NXM_OF, 2, 6);
        let eth_dst = nxm(oxm::NXM_OF, 1, 6);
        let arp_spa = nxm(oxm::NXM_OF, 16, 4);
        let arp_tpa = nxm(oxm::NXM_OF, 17, 4);
        let arp_sha = nxm(oxm::NXM_NX, 17, 6);
        let arp_tha = nxm(oxm::NXM_NX, 18, 6);
        self.add(
            tables::ARP_RESPONDER,
            100,
            vec![
                Field::Metadata(u64::from(vni), None),
                Field::EthType(ETH_ARP, None),
                Field::ArpOp(1, None),
                Field::ArpTpa(ip, None),
            ],
            vec![apply(vec![
                Action::reg_move(eth_src, eth_dst),
                set(Field::EthSrc(mac(p.mac), None)),
                set(Field::ArpOp(2, None)),
                Action::reg_move(arp_sha, arp_tha),
                set(Field::ArpSha(mac(p.mac), None)),
                Action::reg_move(arp_spa, arp_tpa),
                set(Field::ArpSpa(ip, None)),
                Action::output(openflow::port::IN_PORT),
            ])],
            cookie_for(&p.id),
        );
    }

    fn port_security(&mut self, vni: u32, p: &LogicalPort) {
        use tables::*;
        let pc = cookie_for(&p.id);
        let base = || {
            vec![
                Field::Metadata(u64::from(vni), None),
                Field::Reg(6, u32::from(p.key), None),
            ]
        };
        let with = |extra: Vec<Field>| {
            let mut f = base();
            f.extend(extra);
            f
        };
        let m = mac(p.mac);
        if !p.port_security {
            self.add(PORT_SECURITY, 100, base(), vec![goto(EGRESS_ACL)], pc);
            return;
        }
        if !p.ips.is_empty() {
            for ip in p.ips.iter().filter_map(v4) {
                self.add(
                    PORT_SECURITY,
                    100,
                    with(vec![
                        Field::EthType(ETH_ARP, None),
                        Field::EthSrc(m, None),
                        Field::ArpSha(m, None),
                        Field::ArpSpa(ip, None),
                    ]),
                    vec![goto(EGRESS_ACL)],
                    pc,
                );
                self.add(
                    PORT_SECURITY,
                    100,
                    with(vec![
                        Field::EthType(ETH_IP, None),
                        Field::EthSrc(m, None),
                        Field::Ipv4Src(ip, None),
                    ]),
                    vec![goto(EGRESS_ACL)],
                    pc,
                );
            }
            let own6: Vec<Ipv6Addr> = p.ips.iter().filter_map(v6).collect();
            if !own6.is_empty() {
                let ll = link_local(p.mac);
                let mut sources = own6.clone();
                sources.push(ll);
                sources.push(Ipv6Addr::UNSPECIFIED);
                sources.sort();
                sources.dedup();
                for src in &sources {
                    self.add(
                        PORT_SECURITY,
                        100,
                        with(vec![
                            Field::EthType(ETH_IPV6, None),
                            Field::EthSrc(m, None),
                            Field::Ipv6Src(*src, None),
                        ]),
                        vec![goto(EGRESS_ACL)],
                        pc,
                    );
                }
                // Neighbour advertisements may only announce the port's own addresses,
                // with its own MAC (or without a target link-layer option).
                let mut targets = own6;
                targets.push(ll);
                targets.sort();
                targets.dedup();
                for t in &targets {
                    for tll in [m, Mac::ZERO] {
                        self.add(
                            PORT_SECURITY,
                            110,
                            with(vec![
                                Field::EthType(ETH_IPV6, None),
                                Field::IpProto(PROTO_ICMPV6, None),
                                Field::Icmpv6Type(ND_NEIGHBOR_ADVERT, None),
                                Field::Icmpv6Code(0, None),
                                Field::EthSrc(m, None),
                                Field::Ipv6NdTarget(*t, None),
                                Field::Ipv6NdTll(tll, None),
                            ]),
                            vec![goto(EGRESS_ACL)],
                            pc,
                        );
                    }
                }
                self.add(
                    PORT_SECURITY,
                    105,
                    with(vec![
                        Field::EthType(ETH_IPV6, None),
                        Field::IpProto(PROTO_ICMPV6, None),
                        Field::Icmpv6Type(ND_NEIGHBOR_ADVERT, None),
                        Field::Icmpv6Code(0, None),
                    ]),
                    vec![],
                    pc,
                );
            }
            for et in [ETH_ARP, ETH_IP, ETH_IPV6] {
                self.add(
                    PORT_SECURITY,
                    90,
                    with(vec![Field::EthType(et, None)]),
                    vec![],
                    pc,
                );
            }
        }
        self.add(
            PORT_SECURITY,
            80,
            with(vec![Field::EthSrc(m, None)]),
            vec![goto(EGRESS_ACL)],
            pc,
        );
    }
}

/// `ct_mark` of connections committed by the open direction of a port (see
/// [`OPEN_DIRECTION_PRIORITY`]). ACL marks ([`acl_mark`]) have the top bit set, so never
/// equal it.
pub const OPEN_DIRECTION_MARK: u32 = 1;

/// `ct_mark` of the connections an `allow-related` ACL committed: the low 31 bits of its
/// id with the top bit set (never 0, the mark of an unmarked connection). Replies and
/// related packets pass only while a flow names a live ACL's mark, so deleting the ACL
/// cuts the connections it admitted. Two ACLs of one port sharing 31 random bits would
/// keep each other's connections alive; that is the whole cost of a collision.
pub fn acl_mark(id: &Uuid) -> u32 {
    (id.as_u128() as u32) | 0x8000_0000
}

fn commit_with_mark(zone: CtZone, mark: u32) -> Action {
    Action::Nicira(Nicira::Ct(Ct {
        flags: Ct::COMMIT,
        zone,
        recirc_table: Ct::NO_RECIRC,
        alg: 0,
        actions: vec![Action::SetField(Field::CtMark(mark, None))],
    }))
}

/// `ct_mark` of a connection a drop rule cut (see [`FlowBuilder::acls`]): no flow passes
/// it, in either direction, whatever rules exist later; the endpoints have to open a new
/// connection, which meets the rules as they are then. Distinct from
/// [`OPEN_DIRECTION_MARK`] and from every [`acl_mark`] (top bit clear).
pub const BLOCKED_MARK: u32 = 2;

/// Priority, in tables 21 and 41, of an ACL's flows: its new-connection flows, a drop's
/// established-traffic flows and an `allow-related` rule's pass flows for its mark.
pub fn acl_flow_priority(acl: &Acl) -> u16 {
    1000u16.saturating_add(acl.priority)
}

/// Priority, in tables 21 and 41, of the flow that commits every new connection in the
/// direction of a port that has no ACLs while the other direction has some. Below every
/// ACL (1000 + priority), above the table-miss drop.
pub const OPEN_DIRECTION_PRIORITY: u16 = 1;

/// `ct_state` bits (ovs-fields(7)).
mod ct_bits {
    pub const NEW: u32 = 0x01;
    pub const EST: u32 = 0x02;
    pub const RPL: u32 = 0x08;
    pub const INV: u32 = 0x10;
    pub const TRK: u32 = 0x20;
}
const CT_INV_TRK: u32 = ct_bits::INV | ct_bits::TRK;
const CT_NEW_EST_TRK: u32 = ct_bits::NEW | ct_bits::EST | ct_bits::TRK;
const CT_NEW_EST_RPL_TRK: u32 = CT_NEW_EST_TRK | ct_bits::RPL;

fn ct_match(value: u32, mask: u32) -> Field {
    Field::CtState(value, Some(mask))
}

/// The remote end of an ACL: destination for egress, source for ingress. `None` for
/// `/0`, which matches everything.
fn cidr_field(net: IpNet, dir: Direction) -> Option<Field> {
    if net.prefix_len() == 0 {
        return None;
    }
    let full = net.prefix_len() == net.max_prefix_len();
    Some(match (net, dir) {
        (IpNet::V4(n), Direction::Egress) => {
            Field::Ipv4Dst(n.network(), (!full).then(|| n.netmask()))
        }
        (IpNet::V4(n), Direction::Ingress) => {
            Field::Ipv4Src(n.network(), (!full).then(|| n.netmask()))
        }
        (IpNet::V6(n), Direction::Egress) => {
            Field::Ipv6Dst(n.network(), (!full).then(|| n.netmask()))
        }
        (IpNet::V6(n), Direction::Ingress) => {
            Field::Ipv6Src(n.network(), (!full).then(|| n.netmask()))
        }
    })
}

/// The minimal set of `value/mask` matches covering exactly the ports `lo..=hi`: greedy
/// largest aligned power-of-two blocks. `0..=65535` is one match with mask 0 (the caller
/// keeps it: it still requires the protocol).
pub fn port_masks(lo: u16, hi: u16) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let (mut lo, hi) = (u32::from(lo), u32::from(hi));
    while lo <= hi {
        let mut size: u32 = if lo == 0 {
            1 << 16
        } else {
            lo & lo.wrapping_neg()
        };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        // Both fit in 16 bits: lo <= hi <= 65535 and size <= 65536.
        out.push((lo as u16, (!(size - 1) & 0xffff) as u16));
        lo += size;
    }
    out
}

fn v4(ip: &IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(*a),
        IpAddr::V6(_) => None,
    }
}

fn v6(ip: &IpAddr) -> Option<Ipv6Addr> {
    match ip {
        IpAddr::V6(a) => Some(*a),
        IpAddr::V4(_) => None,
    }
}

/// Everything [`compile_node`] reads for one node, in a comparable form: the node's own
/// endpoint and tunnel ofports, and for every switch it participates in the switch and all
/// of its bound ports with where they are bound and their endpoint. Two equal fingerprints
/// compile to the same [`DesiredNode`]. (Deep and per node: the compiler task tracks
/// changes per object instead, see [`IncrementalCompiler`].)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeFingerprint {
    pub endpoint: Option<(IpAddr, EncapType)>,
    pub tunnels: BTreeMap<String, u32>,
    pub switches: BTreeMap<Uuid, SwitchInputs>,
}

/// One switch's inputs to a node's compilation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwitchInputs {
    pub switch: Option<LogicalSwitch>,
    /// Bound ports: the port, its node, its ofport and that node's encap IP.
    pub ports: Vec<(LogicalPort, String, u32, Option<IpAddr>)>,
    /// ACLs of the ports bound on this node.
    pub acls: Vec<Acl>,
}

/// The fingerprint of `node`'s compilation inputs (see [`NodeFingerprint`]).
pub fn node_fingerprint(
    model: &LogicalModel,
    topology: &Topology,
    bindings: &Bindings,
    node: &str,
) -> NodeFingerprint {
    let Some(view) = topology.nodes.get(node) else {
        return NodeFingerprint::default();
    };
    let mut fp = NodeFingerprint {
        endpoint: Some((view.encap_ip, view.encap_type)),
        tunnels: view.tunnels.clone(),
        switches: BTreeMap::new(),
    };
    for sw in switches_of_node(model, bindings, node) {
        let mut inputs = SwitchInputs {
            switch: model.switch(&sw).cloned(),
            ports: Vec::new(),
            acls: Vec::new(),
        };
        for p in model.ports_of_switch(&sw) {
            if let Some(b) = bindings.ports.get(&p.id) {
                let ip = topology.nodes.get(&b.node).map(|n| n.encap_ip);
                inputs.ports.push((p.clone(), b.node.clone(), b.ofport, ip));
                if b.node == node {
                    inputs.acls.extend(model.acls_of_port(&p.id).cloned());
                }
            }
        }
        fp.switches.insert(sw, inputs);
    }
    fp
}

/// Nodes whose compiled state may differ between two snapshots: every node present in
/// either topology whose [`NodeFingerprint`] changed.
pub fn nodes_affected(
    model_before: &LogicalModel,
    model_after: &LogicalModel,
    topo_before: &Topology,
    topo_after: &Topology,
) -> BTreeSet<String> {
    let bb = Bindings::compute(model_before, topo_before);
    let ba = Bindings::compute(model_after, topo_after);
    topo_before
        .nodes
        .keys()
        .chain(topo_after.nodes.keys())
        .filter(|n| {
            node_fingerprint(model_before, topo_before, &bb, n)
                != node_fingerprint(model_after, topo_after, &ba, n)
        })
        .cloned()
        .collect()
}

/// The compiler task's memory between snapshots, so that each new (model, topology) pair
/// recompiles only the nodes whose inputs changed, finding them in time proportional to
/// what changed rather than to the size of the fabric.
///
/// It keeps the previous model and topology (both O(1) to clone: persistent maps) and
/// diffs them against the new ones, which skips everything the two share. From the
/// changed objects it updates, incrementally, the [`Bindings`] (through an index of which
/// VIFs claim each `iface-id`) and an index of which nodes each logical switch has bound
/// ports on; the nodes to recompile are then
/// - every node participating in a switch that changed, had a port added, changed, bound,
///   moved or unbound, or has a member node whose tunnel endpoint changed or that joined
///   or left (their remote-MAC flows, flood groups and tunnels name it);
/// - a node whose own endpoint or tunnel ports changed;
/// - the node a changed ACL's port is bound on.
///
/// Exactly the inputs [`compile_node_with`] reads (the same ones [`node_fingerprint`]
/// summarises), so the result equals a from-scratch compile (tested on randomised change
/// sequences). Many nodes are compiled on all cores but one.
#[derive(Debug, Default)]
pub struct IncrementalCompiler {
    model: LogicalModel,
    topology: Topology,
    bindings: Bindings,
    /// `iface-id` ([`claim_key`]) -> the VIFs that carry it, as (node, ofport).
    claims: HashMap<String, BTreeSet<(String, u32)>>,
    /// Logical switch -> node -> how many of the switch's ports are bound there.
    members: HashMap<Uuid, BTreeMap<String, usize>>,
    /// Bound port -> the switch it counted in, in `members`.
    bound_switch: HashMap<Uuid, Uuid>,
}

/// What one update has to recompile.
#[derive(Default)]
struct Dirty {
    switches: HashSet<Uuid>,
    nodes: BTreeSet<String>,
}

/// Below this many nodes to compile, one thread does it (spawning costs more).
const PARALLEL_MIN_NODES: usize = 16;

impl IncrementalCompiler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Compiles every node of `topology` whose inputs changed since the previous call
    /// (all of them the first time) and returns them, in system-id order, to publish
    /// ([`crate::fabric::Fabric::publish_desired`]). A node that left the topology is
    /// forgotten, not emptied: its OVSDB session ended but its flows stay on the switch
    /// (DESIGN.md §7), and it is compiled afresh if it comes back.
    pub fn update(
        &mut self,
        model: &LogicalModel,
        topology: &Topology,
    ) -> Vec<(String, DesiredNode)> {
        let mut out = Vec::new();
        self.update_each(model, topology, |n, d| out.push((n, d)));
        out
    }

    /// [`Self::update`], handing each node's new state to `sink` as soon as it is
    /// compiled (in system-id order) instead of collecting them all: the caller can
    /// publish it at once, and the node's previous state is freed then, not after the
    /// whole round, so a round over thousands of nodes never holds two full sets of
    /// flow tables.
    pub fn update_each(
        &mut self,
        model: &LogicalModel,
        topology: &Topology,
        sink: impl FnMut(String, DesiredNode),
    ) {
        let mut dirty = Dirty::default();
        let mut touched_ifaces: BTreeSet<String> = BTreeSet::new();
        let mut endpoint_changed: Vec<String> = Vec::new();
        let previous = std::mem::take(&mut self.topology);
        for ch in topology.nodes.diff(&previous.nodes) {
            self.update_claims(&ch, &mut touched_ifaces);
            let endpoint = |v: Option<&NodeView>| v.map(|v| (v.encap_ip, v.encap_type));
            if endpoint(ch.old) != endpoint(ch.new) {
                endpoint_changed.push(ch.id.to_owned());
                dirty.nodes.insert(ch.id.to_owned());
            } else if ch.old.map(|v| &v.tunnels) != ch.new.map(|v| &v.tunnels) {
                dirty.nodes.insert(ch.id.to_owned());
            }
        }
        let delta = model.changed_since(&self.model);
        dirty.switches.extend(delta.switches.iter().copied());
        let mut rebind: BTreeSet<Uuid> = delta.ports.iter().copied().collect();
        for id in &delta.ports {
            // A bound port that changed changes its switch's flows on every member.
            if let Some(sw) = self.bound_switch.get(id) {
                dirty.switches.insert(*sw);
            }
        }
        for iface in &touched_ifaces {
            if let Some(p) = model.find_port(iface) {
                rebind.insert(p.id);
            }
        }
        for id in rebind {
            self.rebind(model, id, &mut dirty);
        }
        for id in &delta.acls {
            let ports = [self.model.acl(id), model.acl(id)].map(|a| a.map(|a| a.port));
            for port in ports.into_iter().flatten() {
                if let Some(b) = self.bindings.ports.get(&port) {
                    dirty.nodes.insert(b.node.clone());
                }
            }
        }
        for node in &endpoint_changed {
            for port in self
                .bindings
                .by_node
                .get(node)
                .into_iter()
                .flat_map(|m| m.keys())
            {
                if let Some(sw) = self.bound_switch.get(port) {
                    dirty.switches.insert(*sw);
                }
            }
        }
        let mut nodes = dirty.nodes;
        for sw in &dirty.switches {
            if let Some(m) = self.members.get(sw) {
                nodes.extend(m.keys().cloned());
            }
        }
        let nodes: Vec<String> = nodes
            .into_iter()
            .filter(|n| topology.nodes.contains_key(n))
            .collect();
        tracing::trace!(
            switches = dirty.switches.len(),
            nodes = nodes.len(),
            "nodes to recompile"
        );
        compile_many(model, topology, &self.bindings, nodes, sink);
        self.model = model.clone();
        self.topology = topology.clone();
    }

    /// Records the VIFs of one changed node in the claims index; `touched` collects the
    /// `iface-id`s whose claims changed.
    fn update_claims(&mut self, ch: &NodeChange<'_>, touched: &mut BTreeSet<String>) {
        let none = BTreeMap::new();
        let old = ch.old.map_or(&none, |v| &v.vifs);
        let new = ch.new.map_or(&none, |v| &v.vifs);
        if old == new {
            return;
        }
        for (iface, vif) in old {
            if new.get(iface).map(|v| v.ofport) != Some(vif.ofport) {
                let key = claim_key(iface);
                if let Some(set) = self.claims.get_mut(&key) {
                    set.remove(&(ch.id.to_owned(), vif.ofport));
                    if set.is_empty() {
                        self.claims.remove(&key);
                    }
                }
                touched.insert(iface.clone());
            }
        }
        for (iface, vif) in new {
            if old.get(iface).map(|v| v.ofport) != Some(vif.ofport) {
                self.claims
                    .entry(claim_key(iface))
                    .or_default()
                    .insert((ch.id.to_owned(), vif.ofport));
                touched.insert(iface.clone());
            }
        }
    }

    /// Recomputes where port `id` is bound from the claims on its name and id (the rule
    /// of [`Bindings::compute`]: first node by system-id, then lowest ofport) and updates
    /// the indexes, marking what the change touches.
    fn rebind(&mut self, model: &LogicalModel, id: Uuid, dirty: &mut Dirty) {
        let port = model.port(&id);
        let claims: Vec<&(String, u32)> = port
            .into_iter()
            .flat_map(|p| {
                let by_name = self.claims.get(&p.name);
                let by_id = self.claims.get(&p.id.to_string());
                by_name.into_iter().chain(by_id).flat_map(|s| s.iter())
            })
            .collect();
        let winner = claims.iter().min().map(|(node, ofport)| PortBinding {
            node: node.clone(),
            ofport: *ofport,
        });
        if let (Some(p), Some(w)) = (port, &winner)
            && claims.iter().any(|(n, _)| *n != w.node)
        {
            tracing::debug!(
                port = %p.name, winner = %w.node,
                "port claimed by two nodes; binding it to the first by system-id"
            );
        }
        let new_switch = port.map(|p| p.switch);
        if self.bindings.ports.get(&id) == winner.as_ref()
            && (winner.is_none() || self.bound_switch.get(&id) == new_switch.as_ref())
        {
            return;
        }
        if let Some(old) = self.bindings.ports.remove(&id) {
            if let Some(m) = self.bindings.by_node.get_mut(&old.node) {
                m.remove(&id);
                if m.is_empty() {
                    self.bindings.by_node.remove(&old.node);
                }
            }
            if let Some(sw) = self.bound_switch.remove(&id) {
                if let Some(m) = self.members.get_mut(&sw) {
                    if let Some(c) = m.get_mut(&old.node) {
                        *c = c.saturating_sub(1);
                        if *c == 0 {
                            m.remove(&old.node);
                        }
                    }
                    if m.is_empty() {
                        self.members.remove(&sw);
                    }
                }
                dirty.switches.insert(sw);
            }
            dirty.nodes.insert(old.node);
        }
        if let (Some(b), Some(sw)) = (winner, new_switch) {
            self.bindings
                .by_node
                .entry(b.node.clone())
                .or_default()
                .insert(id, b.ofport);
            *self
                .members
                .entry(sw)
                .or_default()
                .entry(b.node.clone())
                .or_default() += 1;
            self.bound_switch.insert(id, sw);
            dirty.switches.insert(sw);
            dirty.nodes.insert(b.node.clone());
            self.bindings.ports.insert(id, b);
        }
    }

    /// The bindings as of the last update (equal to [`Bindings::compute`] on its inputs).
    pub fn bindings(&self) -> &Bindings {
        &self.bindings
    }
}

/// The key an `iface-id` claims under: a port's name as is, an id in the canonical
/// hyphenated form whatever way it was spelled (`LogicalModel::find_port` accepts every
/// spelling `Uuid::parse_str` does).
fn claim_key(iface: &str) -> String {
    match Uuid::parse_str(iface) {
        Ok(id) => id.to_string(),
        Err(_) => iface.to_owned(),
    }
}

/// Compiles `nodes` (sorted), on all cores but one when there are many.
///
/// One core is always left to the async runtime: the OpenFlow and OVSDB sessions must
/// keep reading their sockets and answering echo requests while thousands of nodes are
/// compiled, or switches and ovsdb-servers drop them as dead (on a 2-core machine a
/// compile on both cores starved the sessions into a reconnect storm). So on 2 cores the
/// compile runs on one thread.
fn compile_many(
    model: &LogicalModel,
    topology: &Topology,
    bindings: &Bindings,
    nodes: Vec<String>,
    mut sink: impl FnMut(String, DesiredNode),
) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1);
    if threads < 2 || nodes.len() < PARALLEL_MIN_NODES {
        for n in nodes {
            let d = compile_node_with(model, topology, bindings, &n);
            sink(n, d);
        }
        return;
    }
    let chunk = nodes.len().div_ceil(threads);
    std::thread::scope(|s| {
        let workers: Vec<_> = nodes
            .chunks(chunk)
            .map(|part| {
                // Bounded: a worker runs at most a few nodes ahead of the sink.
                let (tx, rx) = std::sync::mpsc::sync_channel(4);
                let worker = s.spawn(move || {
                    for n in part {
                        let d = compile_node_with(model, topology, bindings, n);
                        if tx.send((n.clone(), d)).is_err() {
                            return;
                        }
                    }
                });
                (worker, rx)
            })
            .collect();
        for ((w, rx), part) in workers.into_iter().zip(nodes.chunks(chunk)) {
            let mut done = 0;
            for (n, d) in rx.iter() {
                done += 1;
                sink(n, d);
            }
            if w.join().is_err() {
                // A compile that panicked on one thread is redone here, so the panic
                // surfaces on the caller's thread with its own message.
                for n in &part[done..] {
                    let d = compile_node_with(model, topology, bindings, n);
                    sink(n.clone(), d);
                }
            }
        }
    })
}
