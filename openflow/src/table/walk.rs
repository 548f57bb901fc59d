//! The packet walker on top of [`FlowTable`]: "where does this packet go?", with OVS's
//! semantics for what Weft's pipeline uses. Highest priority wins (among equal priorities,
//! the flow whose canonical match sorts first), table-miss drops (the pipeline installs
//! explicit defaults), instructions run apply-actions, write-metadata, then goto-table;
//! actions run in order on the current packet; ALL groups run each bucket on its own copy;
//! `resubmit` searches another table and comes back; `output` to the packet's input port
//! is skipped unless it says `IN_PORT`. `ct` is pass-through: with `table=` the packet
//! continues there with the `ct_state` the caller chose; `ct_clear` resets it.
//!
//! Routing's rewrites follow OVS too: `dec_ttl` on an IP packet whose TTL (hop limit) is
//! 0 or 1 ends the current flow's actions and instructions (OVS's "stop processing for
//! current table"; the packet goes to a controller only if one asked for `invalid_ttl`
//! packet-ins), which the model records as a drop; on a non-IP packet it does nothing.
//! One VLAN tag is modelled: `push_vlan` adds vid 0, `pop_vlan` removes it, and
//! `set_field` of `vlan_vid` (with OFPVID_PRESENT) rewrites the id of a tagged packet.
//! Like OVS, `set_field` and `load` skip a packet that lacks the field's header at that
//! point (which is why an ND responder's `nd_sll` write after `icmpv6_type=136` does
//! nothing); `move` is not checked at run time.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::packet::{VLAN_CFI, header_fk};
use super::{FlowEntry, FlowTable, Packet};
use crate::action::{Action, Ct, CtZone, Nicira};
use crate::flow::FlowKey;
use crate::instruction::Instruction;
use crate::message::{Bucket, FlowMod};
use crate::oxm::{Field, Match};
use crate::types::port;

/// How deep `resubmit`/`ct(table=)`/groups may nest before the walk gives up (a loop).
const MAX_DEPTH: usize = 64;

/// Whether the current flow's remaining actions and instructions still run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Continue,
    /// `dec_ttl` hit a TTL of 0 or 1: OVS stops processing for the current table.
    StopTable,
}

/// One decision of a walk through the pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Nesting: 0 for the main pipeline, +1 inside each resubmit, group bucket or ct.
    pub depth: usize,
    pub table: u8,
    /// The matched flow, as `ovs-ofctl dump-flows` prints it; `None` on a table miss.
    pub flow: Option<String>,
    /// The matched flow's cookie and priority (`None` on a table miss).
    pub cookie: Option<u64>,
    pub priority: Option<u16>,
    /// The packet as it met this table (registers, conntrack state and mark).
    pub packet: Packet,
    /// What happened besides the flow's own actions (a skipped output, a group bucket).
    pub notes: Vec<String>,
}

/// A packet leaving the bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emitted {
    /// The OpenFlow port it leaves by (the input port for `output:IN_PORT`).
    pub ofport: u32,
    /// The packet as it leaves (after rewrites).
    pub packet: Packet,
}

/// The result of [`FlowTable::process`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub steps: Vec<Step>,
    pub outputs: Vec<Emitted>,
    /// Why each branch of the walk that emitted nothing ended.
    pub drops: Vec<String>,
}

impl Outcome {
    /// Output ports, sorted.
    pub fn ports(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.outputs.iter().map(|e| e.ofport).collect();
        v.sort_unstable();
        v
    }
}

impl FlowTable {
    /// Sends `packet` (with `in_port` set) through the pipeline from table 0. A `ct`
    /// action with `table=` continues with `ct_state` (e.g. `+trk+new`).
    pub fn process(&self, packet: &Packet, ct_state: u32) -> Outcome {
        self.process_ct(packet, ct_state, 0)
    }

    /// [`FlowTable::process`] where the connection conntrack finds also carries
    /// `ct_mark` (as a connection committed by an `allow-related` ACL does).
    pub fn process_ct(&self, packet: &Packet, ct_state: u32, ct_mark: u32) -> Outcome {
        self.process_zones(packet, ct_state, ct_mark, &BTreeMap::new())
    }

    /// [`FlowTable::process_ct`] where the connection's mark differs per conntrack zone
    /// (`zone_marks`; other zones report `ct_mark`), as it does for a connection that two
    /// ports' rules admitted, each in its own zone.
    pub fn process_zones(
        &self,
        packet: &Packet,
        ct_state: u32,
        ct_mark: u32,
        zone_marks: &BTreeMap<u16, u32>,
    ) -> Outcome {
        let mut w = Walk {
            table: self,
            ct_state,
            ct_mark,
            zone_marks,
            out: Outcome::default(),
        };
        let mut p = packet.clone();
        w.run(0, &mut p, 0);
        w.out
    }

    /// The flow `p` hits in `table`: the highest priority whose match it satisfies; among
    /// equal priorities the one whose canonical match sorts first (deterministic, where a
    /// switch leaves overlapping equal-priority flows undefined).
    fn lookup(&self, table: u8, p: &Packet) -> Option<(&FlowKey, &FlowEntry)> {
        let key = |table_id| FlowKey {
            table_id,
            priority: 0,
            r#match: Match::default(),
        };
        let upper = match table.checked_add(1) {
            Some(next) => Bound::Excluded(key(next)),
            None => Bound::Unbounded,
        };
        let mut best: Option<(&FlowKey, &FlowEntry)> = None;
        // Keys ascend by (priority, match): scan down, and within the highest priority
        // that has a hit keep going to its smallest match.
        for (k, e) in self.flows.range((Bound::Included(key(table)), upper)).rev() {
            if best.is_some_and(|(b, _)| k.priority < b.priority) {
                break;
            }
            if p.matches(&k.r#match) {
                best = Some((k, e));
            }
        }
        best
    }
}

struct Walk<'a> {
    table: &'a FlowTable,
    ct_state: u32,
    ct_mark: u32,
    zone_marks: &'a BTreeMap<u16, u32>,
    out: Outcome,
}

impl Walk<'_> {
    /// Runs the pipeline from `table` on `p`, recording steps, outputs and drops.
    fn run(&mut self, mut table: u8, p: &mut Packet, depth: usize) {
        if depth > MAX_DEPTH {
            self.out.drops.push(format!(
                "nesting deeper than {MAX_DEPTH} (a resubmit loop?)"
            ));
            return;
        }
        loop {
            let Some((k, e)) = self.table.lookup(table, p) else {
                self.out.steps.push(Step {
                    depth,
                    table,
                    flow: None,
                    cookie: None,
                    priority: None,
                    packet: p.clone(),
                    notes: vec!["no flow matched: table miss drops".into()],
                });
                self.out
                    .drops
                    .push(format!("table {table}: no flow matched (table miss)"));
                return;
            };
            let c = &e.content;
            let text = FlowMod::add(table, k.priority, k.r#match.clone(), c.instructions.clone())
                .with_cookie(c.cookie)
                .to_string();
            let step = self.out.steps.len();
            self.out.steps.push(Step {
                depth,
                table,
                flow: Some(text),
                cookie: Some(c.cookie),
                priority: Some(k.priority),
                packet: p.clone(),
                notes: Vec::new(),
            });
            let before = self.out.outputs.len();
            let mut next = None;
            let mut action_set: Vec<Action> = Vec::new();
            let insts = &c.instructions;
            for i in insts {
                if let Instruction::ApplyActions(a) = i
                    && self.actions(a, p, depth, step) == Next::StopTable
                {
                    return;
                }
            }
            for i in insts {
                match i {
                    Instruction::ClearActions => action_set.clear(),
                    Instruction::WriteActions(a) => action_set.extend(a.iter().cloned()),
                    Instruction::WriteMetadata { metadata, mask } => {
                        p.metadata = (p.metadata & !mask) | (metadata & mask);
                    }
                    Instruction::GotoTable(t) => next = Some(*t),
                    _ => {}
                }
            }
            match next {
                Some(t) if t > table => table = t,
                Some(t) => {
                    self.note(step, format!("goto_table:{t} does not go forward; ignored"));
                    return;
                }
                None => {
                    if !action_set.is_empty()
                        && self.actions(&action_set, p, depth, step) == Next::StopTable
                    {
                        return;
                    }
                    if self.out.outputs.len() == before && !has_output(insts) {
                        self.out
                            .drops
                            .push(format!("table {table}: flow has no output action (drop)"));
                    }
                    return;
                }
            }
        }
    }

    fn note(&mut self, step: usize, n: String) {
        if let Some(s) = self.out.steps.get_mut(step) {
            s.notes.push(n);
        }
    }

    /// Runs `acts` on `p`; [`Next::StopTable`] when one ended the flow's processing.
    fn actions(&mut self, acts: &[Action], p: &mut Packet, depth: usize, step: usize) -> Next {
        if depth > MAX_DEPTH {
            self.out
                .drops
                .push(format!("nesting deeper than {MAX_DEPTH} (a group loop?)"));
            return Next::Continue;
        }
        for a in acts {
            match a {
                Action::Output { port: o, .. } => {
                    if *o == port::IN_PORT {
                        self.emit(p.in_port, p);
                    } else if *o == p.in_port {
                        self.note(step, format!("output:{o} skipped: it is the input port"));
                        self.out
                            .drops
                            .push(format!("output to input port {o} skipped"));
                    } else {
                        self.emit(*o, p);
                    }
                }
                Action::Group(g) => {
                    let Some(spec) = self.table.groups.get(g) else {
                        self.note(step, format!("group {g} does not exist"));
                        self.out.drops.push(format!("group {g} does not exist"));
                        continue;
                    };
                    let buckets: Vec<Bucket> = spec.buckets.clone();
                    if buckets.is_empty() {
                        self.out.drops.push(format!("group {g} has no buckets"));
                    }
                    for (i, b) in buckets.iter().enumerate() {
                        let mut copy = p.clone();
                        self.note(step, format!("group {g} bucket {i}"));
                        // A bucket's dec_ttl ends that bucket only.
                        self.actions(&b.actions, &mut copy, depth + 1, step);
                    }
                }
                Action::SetField(f) => self.set_field(f, p, step),
                Action::DecNwTtl => {
                    if self.dec_ttl(p, step) == Next::StopTable {
                        return Next::StopTable;
                    }
                }
                Action::SetNwTtl(t) => {
                    if p.is_ip() {
                        self.note(step, format!("mod_nw_ttl: {} -> {t}", p.ip_ttl));
                        p.ip_ttl = *t;
                    }
                }
                Action::PushVlan(tpid) => {
                    if p.is_tagged() {
                        self.note(
                            step,
                            format!(
                                "push_vlan:{tpid:#06x} on a tagged packet: the model keeps one tag, \
                                 the inner one (vid {}) is lost",
                                p.vlan_tci & 0x0fff
                            ),
                        );
                    } else {
                        self.note(step, format!("push_vlan:{tpid:#06x}: tagged, vid 0"));
                    }
                    p.vlan_tci = VLAN_CFI;
                }
                Action::PopVlan => match p.vlan_vid() {
                    Some(vid) => {
                        self.note(step, format!("pop_vlan: tag of vid {vid} removed"));
                        p.vlan_tci = 0;
                    }
                    None => self.note(step, "pop_vlan: packet is untagged; nothing to pop".into()),
                },
                Action::Nicira(Nicira::DecTtl) => {
                    if self.dec_ttl(p, step) == Next::StopTable {
                        return Next::StopTable;
                    }
                }
                Action::Nicira(n) => self.nicira(n, p, depth, step),
                other => self.note(step, format!("action {other} not modelled; ignored")),
            }
        }
        Next::Continue
    }

    /// `dec_ttl` as OVS executes it (module docs).
    fn dec_ttl(&mut self, p: &mut Packet, step: usize) -> Next {
        if !p.is_ip() {
            self.note(step, "dec_ttl: not an IP packet; nothing to do".into());
            return Next::Continue;
        }
        let what = if p.eth_type == 0x0800 {
            "ttl"
        } else {
            "hop limit"
        };
        if p.ip_ttl <= 1 {
            self.note(
                step,
                format!(
                    "dec_ttl: {what} {} would reach 0: invalid_ttl, processing stops (dropped)",
                    p.ip_ttl
                ),
            );
            self.out.drops.push(format!(
                "table {}: dec_ttl of {what} {} (invalid_ttl)",
                self.out.steps.get(step).map_or(0, |s| s.table),
                p.ip_ttl
            ));
            return Next::StopTable;
        }
        self.note(step, format!("dec_ttl: {} -> {}", p.ip_ttl, p.ip_ttl - 1));
        p.ip_ttl -= 1;
        Next::Continue
    }

    /// `set_field` as OVS executes it: skipped when the packet lacks the field's header
    /// (module docs); a `vlan_vid` without OFPVID_PRESENT, which OVS refuses when the flow
    /// is added, is ignored too.
    fn set_field(&mut self, f: &Field, p: &mut Packet, step: usize) {
        match f {
            Field::VlanVid(v, _) if v & VLAN_CFI == 0 => {
                self.note(
                    step,
                    format!(
                        "set_field:{v}->vlan_vid lacks OFPVID_PRESENT (OVS refuses it); ignored"
                    ),
                );
                return;
            }
            _ if !p.has_header_of(f) => {
                self.note(
                    step,
                    format!(
                        "set_field of {}: the packet has no such header; skipped, as OVS does",
                        f.name()
                    ),
                );
                return;
            }
            _ => {}
        }
        if !p.set_field(f) {
            self.note(step, format!("set_field of {} not modelled", f.name()));
        }
    }

    fn nicira(&mut self, n: &Nicira, p: &mut Packet, depth: usize, step: usize) {
        match n {
            Nicira::RegLoad2(f) => self.set_field(f, p, step),
            Nicira::RegLoad { dst, value } => match header_fk(&dst.field) {
                // OVS executes `load` as a masked set_field, prerequisites included.
                Some(_) if Field::probe(&dst.field).is_some_and(|f| !p.has_header_of(&f)) => {
                    self.note(
                        step,
                        format!("load into {dst}: the packet has no such header; skipped"),
                    );
                }
                Some(k) => p.write_bits(k, dst.ofs, dst.n_bits, u128::from(*value)),
                None => self.note(step, format!("load into {dst} not modelled")),
            },
            Nicira::RegMove { src, dst } => match (header_fk(&src.field), header_fk(&dst.field)) {
                (Some(s), Some(d)) => {
                    let v = p.read_bits(s, src.ofs, src.n_bits);
                    p.write_bits(d, dst.ofs, dst.n_bits, v);
                }
                _ => self.note(step, format!("move {src}->{dst} not modelled")),
            },
            Nicira::ResubmitTable { in_port, table, .. } => {
                let saved = p.in_port;
                if *in_port != 0xfff8 {
                    p.in_port = port::from_ofp10(*in_port);
                }
                self.run(*table, p, depth + 1);
                p.in_port = saved;
            }
            Nicira::Ct(ct) => {
                if ct.recirc_table != Ct::NO_RECIRC {
                    let mut copy = p.clone();
                    let zone = match &ct.zone {
                        CtZone::Immediate(z) => *z,
                        CtZone::Field(sf) => match header_fk(&sf.field) {
                            Some(k) => p.read_bits(k, sf.ofs, sf.n_bits) as u16,
                            None => 0,
                        },
                    };
                    copy.ct_state = self.ct_state;
                    copy.ct_zone = zone;
                    copy.ct_mark = self.zone_marks.get(&zone).copied().unwrap_or(self.ct_mark);
                    self.run(ct.recirc_table, &mut copy, depth + 1);
                }
            }
            Nicira::CtClear => {
                p.ct_state = 0;
                p.ct_zone = 0;
                p.ct_mark = 0;
            }
            other => self.note(
                step,
                format!(
                    "action {} not modelled; ignored",
                    Action::Nicira(other.clone())
                ),
            ),
        }
    }

    fn emit(&mut self, ofport: u32, p: &Packet) {
        self.out.outputs.push(Emitted {
            ofport,
            packet: p.clone(),
        });
    }
}

fn has_output(insts: &[Instruction]) -> bool {
    insts.iter().any(|i| match i {
        Instruction::ApplyActions(a) | Instruction::WriteActions(a) => a.iter().any(|a| {
            matches!(
                a,
                Action::Output { .. }
                    | Action::Group(_)
                    | Action::Nicira(Nicira::ResubmitTable { .. })
            ) || matches!(a, Action::Nicira(Nicira::Ct(c)) if c.recirc_table != Ct::NO_RECIRC)
        }),
        _ => false,
    })
}
