//! `weftctl ofp-print`: the user-facing OpenFlow decoder, run as the real binary.

use std::process::Command;

use openflow::{Action, Field, FlowMod, Instruction, Mac, Match};

fn weftctl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weftctl"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn prints_a_flow_mod_like_ovs_ofctl_and_round_trips() {
    let fm = FlowMod::add(
        30,
        90,
        Match::new(vec![
            Field::Metadata(5001, None),
            Field::EthDst(Mac([2, 0, 0, 0, 0, 3]), None),
        ]),
        vec![Instruction::ApplyActions(vec![
            Action::SetField(Field::TunnelId(5001, None)),
            Action::output(10),
        ])],
    );
    let hex: String = fm
        .into_message(7)
        .to_bytes()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (code, out, err) = weftctl(&["ofp-print", "--roundtrip", &hex]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("OFPT_FLOW_MOD"), "{out}");
    assert!(out.contains("dl_dst=02:00:00:00:00:03"), "{out}");
    assert!(out.contains("set_field:0x1389->tun_id,output:10"), "{out}");
    assert!(out.contains("byte-exact"), "{out}");
}

#[test]
fn truncated_input_is_an_error_not_a_panic() {
    let (code, out, err) = weftctl(&["ofp-print", "04 0e 00"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("cannot decode"), "{err}");
    let (code, _, err) = weftctl(&["ofp-print", "zz"]);
    assert_eq!(code, 2);
    assert!(err.contains("bad hex"), "{err}");
}
