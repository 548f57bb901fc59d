//! `diff_flows`: the flow mods that turn a switch's flow dump into a desired flow list,
//! for the interop test that reconciles a real Open vSwitch. (Weft's own reconciler is
//! `weft::reconcile::diff`; this is the plain-OpenFlow version the codec tests need.)

use openflow::*;

/// The flow mods that turn `installed` into `desired`, for sending in one bundle:
/// `DELETE_STRICT` for installed flows no longer wanted, `ADD` for missing ones and
/// `MODIFY_STRICT` (with the new cookie) where the instructions or cookie differ. Flows are
/// matched by [`FlowKey`], so field order and mask spelling do not cause churn. Output is
/// deterministic: deletes, then adds and modifies in the order of `desired`.
pub fn diff_flows(desired: &[FlowMod], installed: &[FlowStats]) -> Vec<FlowMod> {
    use std::collections::HashMap;
    let have: HashMap<FlowKey, FlowContent> =
        installed.iter().map(|s| (s.key(), s.content())).collect();
    let want: HashMap<FlowKey, &FlowMod> = desired.iter().map(|f| (f.key(), f)).collect();
    let mut out = Vec::new();
    for s in installed {
        let k = s.key();
        if !want.contains_key(&k) {
            out.push(FlowMod::delete_strict(
                s.table_id,
                s.priority,
                s.r#match.clone(),
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for f in desired {
        let k = f.key();
        if !seen.insert(k.clone()) {
            continue;
        }
        match have.get(&k) {
            None => out.push(FlowMod {
                command: FlowModCommand::Add,
                ..f.clone()
            }),
            Some(c) if *c != f.content() => out.push(FlowMod {
                command: FlowModCommand::ModifyStrict,
                ..f.clone()
            }),
            Some(_) => {}
        }
    }
    out
}

fn stats(f: &FlowMod) -> FlowStats {
    FlowStats {
        table_id: f.table_id,
        duration_sec: 0,
        duration_nsec: 0,
        priority: f.priority,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: 0,
        cookie: f.cookie,
        packet_count: 0,
        byte_count: 0,
        r#match: Match::new(f.r#match.fields.iter().rev().cloned().collect()),
        instructions: f.instructions.clone(),
    }
}

#[test]
fn diff_adds_modifies_and_deletes_only_what_changed() {
    let m = |r| Match::new(vec![Field::Metadata(7, None), Field::Reg(6, r, None)]);
    let same = FlowMod::add(10, 100, m(1), vec![Instruction::GotoTable(20)]).with_cookie(1);
    let changed = FlowMod::add(10, 100, m(2), vec![Instruction::GotoTable(20)]).with_cookie(1);
    let gone = FlowMod::add(10, 100, m(3), vec![Instruction::GotoTable(20)]).with_cookie(1);
    let new = FlowMod::add(10, 100, m(4), vec![Instruction::GotoTable(20)]).with_cookie(1);
    let installed = vec![stats(&same), stats(&changed), stats(&gone)];
    let changed2 = FlowMod {
        instructions: vec![Instruction::GotoTable(25)],
        ..changed.clone()
    };
    let ops = diff_flows(&[same.clone(), changed2.clone(), new.clone()], &installed);
    let cmds: Vec<(FlowModCommand, FlowKey)> = ops.iter().map(|f| (f.command, f.key())).collect();
    assert_eq!(
        cmds,
        vec![
            (FlowModCommand::DeleteStrict, gone.key()),
            (FlowModCommand::ModifyStrict, changed2.key()),
            (FlowModCommand::Add, new.key()),
        ]
    );
    assert!(diff_flows(std::slice::from_ref(&same), &[stats(&same)]).is_empty());
}
