//! The model on its own: hostile flows, and the flow-mod semantics the walker relies on.
//! (The simulator's switch tests exercise the same table through OpenFlow messages; the
//! compiler's tests walk packets through compiled pipelines.)

use super::*;
use crate::action::{Nicira, Subfield};
use crate::oxm::FieldHeader;

#[test]
fn flow_table_survives_hostile_flows() {
    let mut t = FlowTable::new();
    // A group that calls itself, and a move with offsets past every field.
    t.apply_group_mod(&GroupMod::add(
        7,
        GroupType::All,
        vec![Bucket::new(vec![Action::Group(7)])],
    ))
    .unwrap();
    assert!(
        t.apply_group_mod(&GroupMod::add(7, GroupType::All, vec![]))
            .is_err()
    );
    let far = Subfield::bits(FieldHeader::reg(1), 1000, 64);
    t.apply_flow_mod(&FlowMod::add(
        0,
        10,
        Match::default(),
        vec![Instruction::ApplyActions(vec![
            Action::Nicira(Nicira::RegMove { src: far, dst: far }),
            Action::reg_load(far, 5),
            Action::Group(7),
            Action::resubmit(0),
        ])],
    ))
    .unwrap();
    let out = t.process(&Packet::default(), 0);
    assert!(out.outputs.is_empty());
    assert!(out.drops.iter().any(|d| d.contains("nesting")));
    // Delete by cookie empties it.
    let mut del = FlowMod::delete_by_cookie(0, 0);
    del.command = FlowModCommand::Delete;
    t.apply_flow_mod(&del).unwrap();
    assert_eq!(t.flow_count(), 0);
}

fn out(table: u8, prio: u16, fields: Vec<Field>, port: u32, cookie: u64) -> FlowMod {
    FlowMod::add(
        table,
        prio,
        Match::new(fields),
        vec![Instruction::ApplyActions(vec![Action::output(port)])],
    )
    .with_cookie(cookie)
}

#[test]
fn highest_priority_wins_then_smallest_match() {
    let mut t = FlowTable::new();
    t.apply_flow_mod(&out(0, 10, vec![], 1, 0)).unwrap();
    t.apply_flow_mod(&out(0, 20, vec![Field::InPort(5, None)], 2, 0))
        .unwrap();
    t.apply_flow_mod(&out(0, 20, vec![Field::Metadata(0, None)], 3, 0))
        .unwrap();
    let p = Packet {
        in_port: 5,
        ..Packet::default()
    };
    // Both priority-20 flows match; in_port sorts before metadata.
    assert_eq!(t.process(&p, 0).ports(), vec![2]);
    let p = Packet {
        in_port: 6,
        ..Packet::default()
    };
    assert_eq!(t.process(&p, 0).ports(), vec![3]);
    // A flow in the next table never answers for this one.
    t.apply_flow_mod(&out(1, 99, vec![], 9, 0)).unwrap();
    assert_eq!(t.process(&p, 0).ports(), vec![3]);
}

#[test]
fn flow_mod_semantics() {
    let mut t = FlowTable::new();
    let m1 = vec![Field::Reg(6, 1, None), Field::Metadata(5, None)];
    t.apply_flow_mod(&out(0, 10, m1.clone(), 1, 0x10)).unwrap();
    // Same key in another field order replaces; modify never changes the cookie.
    let reordered: Vec<Field> = m1.iter().rev().cloned().collect();
    t.apply_flow_mod(&out(0, 10, reordered, 2, 0x11)).unwrap();
    assert_eq!(t.flow_count(), 1);
    let mut m = out(0, 10, m1.clone(), 4, 0x99);
    m.command = FlowModCommand::ModifyStrict;
    t.apply_flow_mod(&m).unwrap();
    let (k, e) = t.flows().iter().next().unwrap();
    assert_eq!((k.priority, e.content.cookie), (10, 0x11));
    assert_eq!(e.content.instructions, m.instructions);
    // A strict modify of a key nobody has adds nothing.
    m.priority = 11;
    t.apply_flow_mod(&m).unwrap();
    assert_eq!(t.flow_count(), 1);
    // Loose delete by a less specific match, filtered by out_port.
    let mut del = FlowMod::delete_by_cookie(0, 0);
    del.r#match = Match::new(vec![Field::Metadata(5, None)]);
    del.out_port = 3;
    t.apply_flow_mod(&del).unwrap();
    assert_eq!(t.flow_count(), 1, "it outputs to 4, not 3");
    del.out_port = 4;
    t.apply_flow_mod(&del).unwrap();
    assert_eq!(t.flow_count(), 0);
    // Refusals name the OpenFlow error.
    let mut back = out(5, 1, vec![], 1, 0);
    back.instructions.push(Instruction::GotoTable(5));
    let e = t.apply_flow_mod(&back).unwrap_err();
    assert_eq!(e, TableError::BadGoto { from: 5, to: 5 });
    assert_eq!(
        e.error_kind(),
        Some(ErrorKind::Standard {
            err_type: ErrorType::BadInstruction,
            code: code::BI_BAD_TABLE_ID
        })
    );
}

#[test]
fn flow_stats_select_like_a_loose_delete() {
    let mut t = FlowTable::new();
    for i in 0..4u32 {
        t.apply_flow_mod(&out(
            i as u8 % 2,
            10 + i as u16,
            vec![Field::Reg(6, i, None)],
            i,
            u64::from(i),
        ))
        .unwrap();
    }
    let req = FlowStatsRequest::every_flow(0, 1);
    let got: Vec<(u8, u16)> = t
        .flow_stats(&req)
        .iter()
        .map(|s| (s.table_id, s.priority))
        .collect();
    assert_eq!(got, vec![(0, 12), (0, 10)]);
}

/// A dump lists flows by table, then priority from the highest, then match, whatever
/// the order they were added in; the borrowed views are the owned entries.
#[test]
fn flow_stats_order_by_table_priority_then_match() {
    let mut t = FlowTable::new();
    // Added in a scrambled order: tables 0..3, priorities 10..13, ten matches each.
    for n in 0..120u32 {
        let k = (n * 37) % 120;
        let (table, prio, reg) = ((k % 3) as u8, 10 + ((k / 3) % 4) as u16, k / 12);
        t.apply_flow_mod(&out(table, prio, vec![Field::Reg(6, reg, None)], 1, 0))
            .unwrap();
    }
    let req = FlowStatsRequest::every_flow(0, 0);
    let stats = t.flow_stats(&req);
    assert_eq!(stats.len(), 120);
    let mut want = stats.clone();
    want.sort_by(|a, b| {
        (a.table_id, std::cmp::Reverse(a.priority), &a.r#match).cmp(&(
            b.table_id,
            std::cmp::Reverse(b.priority),
            &b.r#match,
        ))
    });
    assert_eq!(stats, want);
    assert!(
        stats
            .windows(2)
            .any(|w| w[0].table_id == w[1].table_id && w[0].priority == w[1].priority)
    );
    // The borrowed entries encode as the owned ones.
    let encode = |emit: &dyn Fn(&mut bytes::BytesMut)| {
        let mut b = bytes::BytesMut::new();
        emit(&mut b);
        b
    };
    let views = t.flow_stats_views(&req);
    assert_eq!(
        encode(&|b| views.iter().for_each(|v| v.emit(b))),
        encode(&|b| stats.iter().for_each(|s| s.emit(b))),
    );
}

/// A bundle refused at its last message leaves the table exactly as it was, whatever the
/// earlier messages added, modified or deleted (flows and groups, and the flows a group
/// delete takes with it); one that succeeds equals its messages applied one by one.
#[test]
fn apply_all_is_all_or_none() {
    let to_group = |prio: u16, g: u32| {
        FlowMod::add(
            1,
            prio,
            Match::new(vec![Field::Reg(6, u32::from(prio), None)]),
            vec![Instruction::ApplyActions(vec![Action::Group(g)])],
        )
    };
    let mut t = FlowTable::new();
    t.apply_group_mod(&GroupMod::add(7, GroupType::All, vec![]))
        .unwrap();
    t.apply_group_mod(&GroupMod::add(8, GroupType::All, vec![]))
        .unwrap();
    for fm in [
        out(0, 10, vec![], 1, 1),
        out(0, 20, vec![Field::InPort(3, None)], 2, 2),
        out(0, 30, vec![Field::InPort(4, None)], 3, 3),
        to_group(40, 7),
        to_group(50, 8),
    ] {
        t.apply_flow_mod(&fm).unwrap();
    }
    let before = (t.flows().clone(), t.groups().clone());
    let mut modify = out(0, 20, vec![Field::InPort(3, None)], 9, 2);
    modify.command = FlowModCommand::ModifyStrict;
    let mut delete = out(0, 30, vec![Field::InPort(4, None)], 0, 3);
    delete.command = FlowModCommand::DeleteStrict;
    let good = vec![
        Message::FlowMod(out(0, 10, vec![], 5, 11)),
        Message::FlowMod(out(0, 60, vec![Field::InPort(5, None)], 6, 6)),
        Message::FlowMod(modify),
        Message::FlowMod(delete),
        Message::GroupMod(GroupMod::modify(
            8,
            GroupType::All,
            vec![Bucket::new(vec![])],
        )),
        Message::GroupMod(GroupMod::delete(7)),
        Message::GroupMod(GroupMod::add(9, GroupType::All, vec![])),
    ];
    let mut bad = good.clone();
    bad.push(Message::FlowMod(to_group(70, 99)));
    assert_eq!(
        t.apply_all(&bad),
        Err((good.len(), TableError::BadOutGroup(99)))
    );
    assert_eq!((t.flows().clone(), t.groups().clone()), before);

    let mut one_by_one = t.clone();
    for m in &good {
        one_by_one.apply(m).unwrap();
    }
    t.apply_all(&good).unwrap();
    assert_eq!(t.flows(), one_by_one.flows());
    assert_eq!(t.groups(), one_by_one.groups());
    assert_ne!(t.flows(), &before.0);
}
