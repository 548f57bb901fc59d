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
