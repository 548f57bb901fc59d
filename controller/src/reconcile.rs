//! The reconciler: a pure function from what a node should hold ([`DesiredNode`]) and what
//! its switch reports it holds (a flow dump and a group dump) to the OpenFlow messages that
//! turn the one into the other, and nothing more.
//!
//! Ownership: Weft's flows are the ones whose cookie carries [`COOKIE_WEFT`] in its top 16
//! bits; flows with any other cookie (an operator's debugging flow, another tool's) are
//! never touched, because the dump the caller feeds in is filtered by
//! [`COOKIE_MASK`] and [`installed_flows`] filters again. Groups have no cookie, so
//! Weft owns *every* group on the integration bridge: Weft owns br-int's pipeline
//! (DESIGN.md §3: `fail_mode=secure`, Weft's controller target), and a group no desired
//! state names is removed.
//!
//! Order (the messages go into one ordered, atomic bundle): group adds and modifies first,
//! so new flows can point at them; then flow adds and modifies; then flow deletes; then
//! group deletes, so no flow is left pointing at a deleted group at any step.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::BytesMut;
use openflow::digest::{self, Digest};
use openflow::{
    FlowContent, FlowKey, FlowMod, FlowStats, GroupDesc, GroupMod, Message, MultipartReplyBody,
    MultipartType,
};

use crate::compiler::{COOKIE_MASK, COOKIE_WEFT};

use crate::desired::{DesiredNode, Flows, GroupSpec};

/// A flow table as decoded from a switch's dump: owned parts, shared with nothing (a
/// dump is read, diffed once and dropped; wrapping each of its flows for sharing would
/// cost two allocations a flow for nothing).
pub type DumpedFlows = BTreeMap<FlowKey, FlowContent>;

/// What a switch holds of Weft's pipeline, as its OpenFlow session knows it: read from a
/// dump, or the very desired state whose install the switch acknowledged (shared, not
/// copied: one table per node in memory). A type of its own, not a [`DesiredNode`], so
/// that what is and what should be are never mistaken for each other; [`diff`] is the
/// only bridge between them.
#[derive(Clone, Debug)]
pub enum InstalledTables {
    Dumped {
        flows: DumpedFlows,
        groups: BTreeMap<u32, Arc<GroupSpec>>,
    },
    Acknowledged(Arc<DesiredNode>),
}

impl InstalledTables {
    /// The messages that turn these tables into `desired` ([`diff`]).
    pub fn diff_to(&self, desired: &DesiredNode) -> Vec<Message> {
        match self {
            InstalledTables::Dumped { flows, groups } => diff(desired, flows, groups),
            InstalledTables::Acknowledged(d) => diff(desired, &d.flows, &d.groups),
        }
    }

    pub fn flow_count(&self) -> usize {
        match self {
            InstalledTables::Dumped { flows, .. } => flows.len(),
            InstalledTables::Acknowledged(d) => d.flows.len(),
        }
    }

    pub fn groups(&self) -> &BTreeMap<u32, Arc<GroupSpec>> {
        match self {
            InstalledTables::Dumped { groups, .. } => groups,
            InstalledTables::Acknowledged(d) => &d.groups,
        }
    }
}

/// Whether a cookie marks a flow as Weft's (the compiler's [`COOKIE_WEFT`] marker).
pub fn is_weft_cookie(cookie: u64) -> bool {
    cookie & COOKIE_MASK == COOKIE_WEFT
}

/// Weft's flows in a flow dump, keyed for diffing.
pub fn installed_flows<'a>(stats: impl IntoIterator<Item = &'a FlowStats>) -> DumpedFlows {
    stats
        .into_iter()
        .filter(|s| is_weft_cookie(s.cookie))
        .map(|s| (s.key(), s.content()))
        .collect()
}

/// [`installed_flows`] of an owned dump: moves each entry's match and instructions into
/// the table instead of copying them.
pub fn installed_flows_owned(stats: impl IntoIterator<Item = FlowStats>) -> DumpedFlows {
    stats
        .into_iter()
        .filter(|s| is_weft_cookie(s.cookie))
        .map(FlowStats::into_key_content)
        .collect()
}

/// Every group in a group-description dump (Weft owns all groups on br-int).
pub fn installed_groups<'a>(
    descs: impl IntoIterator<Item = &'a GroupDesc>,
) -> BTreeMap<u32, Arc<GroupSpec>> {
    descs
        .into_iter()
        .map(|d| {
            (
                d.group_id,
                Arc::new(GroupSpec {
                    group_type: d.group_type,
                    buckets: d.buckets.clone(),
                }),
            )
        })
        .collect()
}

/// Flows from the owned parts of a reassembled flow-stats multipart reply (the session
/// hands the reply over whole). Parts the codec kept in wire form are decoded here.
pub fn flows_from_parts(parts: Vec<MultipartReplyBody>) -> Result<DumpedFlows, openflow::Error> {
    let mut stats = Vec::new();
    for part in parts {
        if let MultipartReplyBody::Flow(v) = part.decoded()? {
            stats.extend(v);
        }
    }
    Ok(installed_flows_owned(stats))
}

/// Whether the parts of a flow dump, in wire form, hold exactly Weft's `desired` flows,
/// by digest ([`openflow::digest`]) and without decoding them: the same flows as
/// [`diff`] would find equal, up to a collision of 128-bit hashes. False when they differ
/// or when a part is typed or does not parse, and also when the switch spells a flow
/// otherwise than Weft encodes it: the caller then decodes the dump and diffs.
pub fn dump_holds_exactly(parts: &[MultipartReplyBody], desired: &Flows) -> bool {
    let mut have: (usize, Digest) = (0, 0);
    for part in parts {
        let MultipartReplyBody::Raw {
            mp_type: MultipartType::Flow,
            body,
        } = part
        else {
            return false;
        };
        for entry in digest::raw_flow_stats(body) {
            let Ok(entry) = entry else {
                return false;
            };
            if !is_weft_cookie(entry.cookie) {
                continue;
            }
            let Ok(d) = entry.digest() else {
                return false;
            };
            have = (have.0 + 1, have.1.wrapping_add(d));
        }
    }
    if have.0 != desired.len() {
        return false;
    }
    let mut scratch = BytesMut::new();
    let mut want: Digest = 0;
    for (key, content) in desired {
        if !is_weft_cookie(content.cookie) {
            return false;
        }
        match digest::flow_digest(key, content, &mut scratch) {
            Ok(d) => want = want.wrapping_add(d),
            Err(_) => return false,
        }
    }
    have.1 == want
}

/// Groups from the parts of a reassembled group-desc multipart reply.
pub fn groups_from_parts(parts: &[MultipartReplyBody]) -> BTreeMap<u32, Arc<GroupSpec>> {
    installed_groups(parts.iter().flat_map(|p| match p {
        MultipartReplyBody::GroupDesc(v) => v.as_slice(),
        _ => &[],
    }))
}

/// The messages that turn `installed` into `desired`, in a safe order (module docs).
/// Empty when the switch already holds exactly the desired state.
///
/// A flow whose instructions differ is a `modify_strict` (counters and age survive); one
/// whose cookie differs is re-added, because an OpenFlow 1.3 modify never rewrites the
/// cookie. Installed flows without Weft's cookie are ignored.
///
/// `installed_flows` is either a dump ([`DumpedFlows`]) or a desired state the switch
/// acknowledged ([`Flows`]); in the second, a flow the compiler did not change is the
/// very same shared copy, so it is recognised by address before any comparison.
pub fn diff<K, V>(
    desired: &DesiredNode,
    installed_flows: &BTreeMap<K, V>,
    installed_groups: &BTreeMap<u32, Arc<GroupSpec>>,
) -> Vec<Message>
where
    K: Borrow<FlowKey> + Ord,
    V: Borrow<FlowContent>,
{
    let mut out = Vec::new();
    for (id, want) in &desired.groups {
        match installed_groups.get(id) {
            None => out.push(Message::GroupMod(GroupMod::add(
                *id,
                want.group_type,
                want.buckets.clone(),
            ))),
            Some(have) if have != want => out.push(Message::GroupMod(GroupMod::modify(
                *id,
                want.group_type,
                want.buckets.clone(),
            ))),
            Some(_) => {}
        }
    }
    // Both tables are sorted by key: one merge walk pairs each desired flow with the
    // installed flow of the same key, in linear time, instead of a map lookup (a dozen
    // deep key comparisons) per flow in each direction.
    let mut deletes = Vec::new();
    let mut have_iter = installed_flows
        .iter()
        .map(|(k, c)| (k.borrow(), c.borrow()))
        .peekable();
    for (key, want) in desired.flows.iter() {
        let (key, want): (&FlowKey, &FlowContent) = (key, want);
        let mut have = None;
        while let Some(&(hk, hc)) = have_iter.peek() {
            let order = if std::ptr::eq(hk, key) {
                std::cmp::Ordering::Equal
            } else {
                hk.cmp(key)
            };
            match order {
                std::cmp::Ordering::Less => {
                    if is_weft_cookie(hc.cookie) {
                        deletes.push(delete_flow(hk, hc));
                    }
                    have_iter.next();
                }
                std::cmp::Ordering::Equal => {
                    have = Some(hc);
                    have_iter.next();
                    break;
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        let fm = |have: Option<&FlowContent>| {
            let m = key.r#match.clone();
            let insts = want.instructions.clone();
            match have {
                Some(h) if h.cookie == want.cookie => {
                    FlowMod::modify_strict(key.table_id, key.priority, m, insts)
                }
                _ => FlowMod::add(key.table_id, key.priority, m, insts),
            }
            .with_cookie(want.cookie)
        };
        match have {
            Some(have) if !is_weft_cookie(have.cookie) => {
                // Someone else's flow has Weft's exact key; Weft's desired flow wins,
                // as an add that replaces it.
                out.push(Message::FlowMod(fm(None)));
            }
            Some(have) if std::ptr::eq(have, want) || have == want => {}
            have => out.push(Message::FlowMod(fm(have))),
        }
    }
    for (hk, hc) in have_iter {
        if is_weft_cookie(hc.cookie) {
            deletes.push(delete_flow(hk, hc));
        }
    }
    out.append(&mut deletes);
    for id in installed_groups.keys() {
        if !desired.groups.contains_key(id) {
            out.push(Message::GroupMod(GroupMod::delete(*id)));
        }
    }
    out
}

/// The `DELETE_STRICT` of one installed flow.
fn delete_flow(key: &FlowKey, have: &FlowContent) -> Message {
    Message::FlowMod(
        FlowMod::delete_strict(key.table_id, key.priority, key.r#match.clone())
            .with_cookie(have.cookie),
    )
}

/// A flow table in `ovs-ofctl dump-flows` style, one line per flow (for `node_flows`).
pub fn flows_as_text(flows: &Flows) -> Vec<String> {
    flows
        .iter()
        .map(|(k, c)| crate::desired::flow_add(k, c).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use openflow::{
        Action, Bucket, Field, FlowModCommand, GroupModCommand, GroupType, Instruction, Mac, Match,
    };

    fn flow(
        table: u8,
        prio: u16,
        fields: Vec<Field>,
        insts: Vec<Instruction>,
        cookie: u64,
    ) -> (Arc<FlowKey>, Arc<FlowContent>) {
        let fm = FlowMod::add(table, prio, Match::new(fields), insts).with_cookie(cookie);
        (Arc::new(fm.key()), Arc::new(fm.content()))
    }

    fn desired() -> DesiredNode {
        let mut d = DesiredNode::default();
        let c = COOKIE_WEFT | 1;
        for (k, v) in [
            flow(
                0,
                100,
                vec![Field::InPort(1, None)],
                vec![
                    Instruction::apply(vec![
                        Action::SetField(Field::Metadata(5001, None)),
                        Action::SetField(Field::Reg(6, 1, None)),
                    ]),
                    Instruction::GotoTable(10),
                ],
                c,
            ),
            flow(
                30,
                100,
                vec![
                    Field::Metadata(5001, None),
                    Field::EthDst(Mac([2, 0, 0, 0, 0, 1]), None),
                ],
                vec![Instruction::GotoTable(40)],
                c,
            ),
            flow(
                30,
                80,
                vec![Field::Metadata(5001, None)],
                vec![Instruction::apply(vec![Action::Group(7)])],
                c,
            ),
        ] {
            Arc::make_mut(&mut d.flows).insert(k, v);
        }
        d.groups.insert(
            7,
            Arc::new(GroupSpec {
                group_type: GroupType::All,
                buckets: vec![Bucket::new(vec![
                    Action::SetField(Field::Reg(7, 1, None)),
                    Action::resubmit(40),
                ])],
            }),
        );
        d
    }

    /// An empty switch's flows and groups after `changes`, applied by the shared
    /// OpenFlow model (every change must be accepted).
    fn apply(changes: &[Message]) -> (Flows, BTreeMap<u32, Arc<GroupSpec>>) {
        let mut t = openflow::table::FlowTable::new();
        for m in changes {
            t.apply(m).unwrap();
        }
        let groups = t
            .groups()
            .iter()
            .map(|(id, g)| {
                let g = GroupSpec {
                    group_type: g.group_type,
                    buckets: g.buckets.clone(),
                };
                (*id, Arc::new(g))
            })
            .collect();
        let flows = t
            .flow_contents()
            .into_iter()
            .map(|(k, c)| (Arc::new(k), Arc::new(c)))
            .collect();
        (flows, groups)
    }

    fn kinds(msgs: &[Message]) -> Vec<String> {
        msgs.iter()
            .map(|m| match m {
                Message::FlowMod(f) => format!("flow {:?} t{}", f.command, f.table_id),
                Message::GroupMod(g) => format!("group {:?} {}", g.command, g.group_id),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn empty_to_desired_adds_groups_before_flows() {
        let d = desired();
        let msgs = diff(&d, &DumpedFlows::new(), &BTreeMap::new());
        assert_eq!(
            kinds(&msgs),
            vec!["group Add 7", "flow Add t0", "flow Add t30", "flow Add t30"]
        );
        // Applying the changes gives exactly the desired state; diffing again is empty.
        let (f, g) = apply(&msgs);
        assert_eq!(f, *d.flows);
        assert_eq!(g, d.groups);
        assert!(diff(&d, &f, &g).is_empty());
    }

    #[test]
    fn desired_to_itself_is_empty() {
        let d = desired();
        assert!(diff(&d, &d.flows, &d.groups).is_empty());
    }

    #[test]
    fn changed_instructions_are_a_modify_strict_and_changed_cookie_an_add() {
        let d = desired();
        let mut installed = Flows::clone(&d.flows);
        let (k0, c0) = installed.iter_mut().next().unwrap();
        let k0 = k0.clone();
        Arc::make_mut(c0).instructions = vec![Instruction::GotoTable(99)];
        let (k1, c1) = installed.iter_mut().nth(1).unwrap();
        let k1 = k1.clone();
        Arc::make_mut(c1).cookie = COOKIE_WEFT | 99;
        let msgs = diff(&d, &installed, &d.groups);
        assert_eq!(msgs.len(), 2);
        let Message::FlowMod(m0) = &msgs[0] else {
            panic!("{msgs:?}")
        };
        assert_eq!(m0.command, FlowModCommand::ModifyStrict);
        assert_eq!(m0.key(), *k0);
        assert_eq!(m0.content(), *d.flows[&k0]);
        let Message::FlowMod(m1) = &msgs[1] else {
            panic!("{msgs:?}")
        };
        assert_eq!(m1.command, FlowModCommand::Add);
        assert_eq!(m1.key(), *k1);
        assert_eq!(m1.cookie, d.flows[&k1].cookie);
    }

    /// Flows OVS learned from a flood VTEP (`learn` in table 0) are the switch's own: a dump
    /// that holds them, filtered or not, needs no flow mod.
    #[test]
    fn learned_flows_need_nothing() {
        let d = desired();
        let (k, c) = flow(
            crate::compiler::tables::LEARNED,
            100,
            vec![
                Field::Metadata(5001, None),
                Field::EthDst(openflow::Mac([0x0a, 0, 0, 0, 1, 0]), None),
            ],
            vec![Instruction::apply(vec![Action::output(20)])],
            crate::compiler::learned_cookie(5001),
        );
        assert!(!is_weft_cookie(c.cookie));
        let mut installed = Flows::clone(&d.flows);
        installed.insert(k, c);
        assert!(diff(&d, &installed, &d.groups).is_empty());
    }

    #[test]
    fn removals_delete_flows_before_groups_and_leave_foreign_flows() {
        let d = desired();
        let mut installed = Flows::clone(&d.flows);
        let (stale_k, stale_c) = flow(
            50,
            100,
            vec![Field::Reg(7, 9, None)],
            vec![Instruction::apply(vec![Action::output(9)])],
            COOKIE_WEFT | 2,
        );
        installed.insert(stale_k.clone(), stale_c);
        let (foreign_k, foreign_c) = flow(
            0,
            200,
            vec![Field::InPort(3, None)],
            vec![Instruction::apply(vec![])],
            0x1234,
        );
        installed.insert(foreign_k, foreign_c);
        let mut groups = d.groups.clone();
        groups.insert(
            8,
            Arc::new(GroupSpec {
                group_type: GroupType::All,
                buckets: vec![],
            }),
        );
        let msgs = diff(&d, &installed, &groups);
        assert_eq!(
            kinds(&msgs),
            vec!["flow DeleteStrict t50", "group Delete 8"]
        );
        let Message::FlowMod(del) = &msgs[0] else {
            panic!()
        };
        assert_eq!(del.key(), *stale_k);
    }

    #[test]
    fn order_is_group_adds_flow_adds_flow_deletes_group_deletes() {
        // Move the flood flow from group 7 to group 9 and drop a flow in the same change.
        let old = desired();
        let mut new = old.clone();
        let g7 = new.groups.remove(&7).unwrap();
        new.groups.insert(9, g7);
        let (k80, c80) = Arc::make_mut(&mut new.flows)
            .iter_mut()
            .find(|(k, _)| k.priority == 80)
            .unwrap();
        let _ = k80;
        Arc::make_mut(c80).instructions = vec![Instruction::apply(vec![Action::Group(9)])];
        let k0 = new.flows.keys().next().unwrap().clone();
        Arc::make_mut(&mut new.flows).remove(&k0);
        let msgs = diff(&new, &old.flows, &old.groups);
        assert_eq!(
            kinds(&msgs),
            vec![
                "group Add 9",
                "flow ModifyStrict t30",
                "flow DeleteStrict t0",
                "group Delete 7"
            ]
        );
        let modified_group = {
            let mut g = new.clone();
            Arc::make_mut(g.groups.get_mut(&9).unwrap()).buckets.clear();
            g
        };
        let msgs = diff(&modified_group, &new.flows, &new.groups);
        assert!(matches!(
            &msgs[..],
            [Message::GroupMod(GroupMod {
                command: GroupModCommand::Modify,
                group_id: 9,
                ..
            })]
        ));
    }

    #[test]
    fn diff_applied_in_order_by_the_model_reaches_desired() {
        use crate::compiler::table::{FlowTable, FromDesired};
        // Group 7 moves to 9 (flows must stop using 7 before it goes, and 9 must exist
        // before a flow uses it), one flow goes, one changes instructions.
        let old = desired();
        let mut new = old.clone();
        let g7 = new.groups.remove(&7).unwrap();
        new.groups.insert(9, g7);
        for c in Arc::make_mut(&mut new.flows).values_mut() {
            if c.instructions == vec![Instruction::apply(vec![Action::Group(7)])] {
                Arc::make_mut(c).instructions = vec![Instruction::apply(vec![Action::Group(9)])];
            }
        }
        let k0 = new.flows.keys().next().unwrap().clone();
        Arc::make_mut(&mut new.flows).remove(&k0);
        let mut t = FlowTable::from_desired(&old);
        for m in diff(&new, &old.flows, &old.groups) {
            t.apply(&m).unwrap_or_else(|e| panic!("{m:?}: {e}"));
        }
        assert_eq!(t.flow_contents(), crate::desired::owned_flows(&new.flows));
        assert_eq!(
            t.groups().keys().copied().collect::<Vec<_>>(),
            new.groups.keys().copied().collect::<Vec<_>>()
        );
    }

    /// `flows` as a switch might dump them: the last flow first, each match's fields in
    /// reverse order, with counters, in wire form cut into parts of `per_part` entries.
    fn wire_dump(flows: &[(FlowKey, FlowContent)], per_part: usize) -> Vec<MultipartReplyBody> {
        let stats: Vec<FlowStats> = flows
            .iter()
            .rev()
            .map(|(k, c)| FlowStats {
                table_id: k.table_id,
                duration_sec: 3,
                duration_nsec: 4,
                priority: k.priority,
                idle_timeout: 0,
                hard_timeout: 0,
                flags: 0,
                cookie: c.cookie,
                packet_count: 17,
                byte_count: 1700,
                r#match: Match::new(k.r#match.fields.iter().rev().cloned().collect()),
                instructions: c.instructions.clone(),
            })
            .collect();
        stats
            .chunks(per_part.max(1))
            .map(|part| {
                let mut body = BytesMut::new();
                for e in part {
                    e.emit(&mut body);
                }
                MultipartReplyBody::Raw {
                    mp_type: MultipartType::Flow,
                    body: body.to_vec(),
                }
            })
            .collect()
    }

    /// A dump in wire form holding exactly the desired flows is recognised by digest,
    /// whatever order the switch reports entries and match fields in, and whatever other
    /// tools' flows it holds beside them. Every difference the diff would act on is not
    /// recognised, and the decoded dump then diffs as it always did.
    #[test]
    fn a_dump_of_exactly_the_desired_flows_is_recognised_by_digest() {
        let d = desired();
        let owned: Vec<(FlowKey, FlowContent)> =
            crate::desired::owned_flows(&d.flows).into_iter().collect();
        for per_part in [1, 2, 10] {
            let parts = wire_dump(&owned, per_part);
            assert!(dump_holds_exactly(&parts, &d.flows), "{per_part} per part");
            let decoded = flows_from_parts(parts).unwrap();
            assert!(diff(&d, &decoded, &d.groups).is_empty());
        }
        let foreign = (
            owned[0].0.clone(),
            FlowContent {
                cookie: 0x1234,
                instructions: vec![],
            },
        );
        let mut with_foreign = owned.clone();
        with_foreign.push(foreign);
        let mut with_foreign_key = owned.clone();
        with_foreign_key[0].0.priority = 1;
        with_foreign_key[0].1.cookie = 0x1234;

        let mut missing = owned.clone();
        missing.pop();
        let mut extra = owned.clone();
        extra.push((
            FlowKey {
                table_id: 30,
                priority: 1,
                r#match: Match::default(),
            },
            owned[0].1.clone(),
        ));
        let mut other_cookie = owned.clone();
        other_cookie[1].1.cookie = COOKIE_WEFT | 2;
        let mut other_instructions = owned.clone();
        other_instructions[2].1.instructions = vec![Instruction::GotoTable(41)];
        let mut other_match = owned.clone();
        other_match[1].0.r#match.fields.pop();
        let mut other_priority = owned.clone();
        other_priority[2].0.priority = 81;
        for (what, flows, same) in [
            ("another tool's flow beside them", &with_foreign, true),
            (
                "another tool's flow in place of one",
                &with_foreign_key,
                false,
            ),
            ("one missing", &missing, false),
            ("one more", &extra, false),
            ("another cookie", &other_cookie, false),
            ("other instructions", &other_instructions, false),
            ("a field less", &other_match, false),
            ("another priority", &other_priority, false),
        ] {
            let parts = wire_dump(flows, 2);
            assert_eq!(dump_holds_exactly(&parts, &d.flows), same, "{what}");
            let decoded = flows_from_parts(parts).unwrap();
            assert_eq!(diff(&d, &decoded, &d.groups).is_empty(), same, "{what}");
        }
        // Typed parts and parts that do not parse are never taken as a match; the
        // second are an error to decode.
        let typed = vec![MultipartReplyBody::Flow(vec![])];
        assert!(!dump_holds_exactly(&typed, &DesiredNode::default().flows));
        let mut cut = wire_dump(&owned, 10);
        if let MultipartReplyBody::Raw { body, .. } = &mut cut[0] {
            body.truncate(body.len() - 3);
        }
        assert!(!dump_holds_exactly(&cut, &d.flows));
        assert!(flows_from_parts(cut).is_err());
    }

    #[test]
    fn text_is_ovs_ofctl_style() {
        let d = desired();
        let text = flows_as_text(&d.flows);
        assert_eq!(text.len(), 3);
        assert!(
            text[0].starts_with("cookie=0x5745000000000001, table=0, priority=100,in_port=1"),
            "{text:?}"
        );
    }
}
