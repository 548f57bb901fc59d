//! Encode/decode throughput for a realistic FLOW_MOD mix (L2 lookup flows with
//! `set_field:tun_id` + output, ACL flows with conntrack), beside a plain memcpy of the same
//! bytes (the ceiling) and beside os-ken encoding the same messages in the same run.
//!
//! Run: `cargo bench -p openflow --bench flowmod`. os-ken runs through the Python named by
//! `OSKEN_PYTHON` (default `python3`); set it to a venv with `pip install os-ken`, e.g.
//! `python3 -m venv /tmp/oskenv && /tmp/oskenv/bin/pip install os-ken`.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use openflow::action::{Ct, CtZone};
use openflow::*;

const N: usize = 10_000;

/// Half L2 lookup flows, half ACL flows, with distinct values.
fn mix() -> Vec<OfpMessage> {
    let mut out = Vec::with_capacity(N);
    for i in 0..N as u32 {
        let vni = 5000 + u64::from(i % 64);
        let mac = Mac([2, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        let fm = if i % 2 == 0 {
            FlowMod::add(
                30,
                100,
                Match::new(vec![Field::Metadata(vni, None), Field::EthDst(mac, None)]),
                vec![Instruction::ApplyActions(vec![
                    Action::SetField(Field::TunnelId(vni, None)),
                    Action::output(10 + i % 32),
                ])],
            )
        } else {
            FlowMod::add(
                21,
                90,
                Match::new(vec![
                    Field::CtState(0x21, Some(0x21)),
                    Field::EthType(0x0800, None),
                    Field::IpProto(6, None),
                    Field::Reg(6, i % 1000 + 1, None),
                    Field::Ipv4Dst(
                        Ipv4Addr::from(0x0a00_0000 | (i & 0xff00)),
                        Some(Ipv4Addr::new(255, 255, 255, 0)),
                    ),
                    Field::TcpDst((i % 60000) as u16 + 1, None),
                ]),
                vec![
                    Instruction::ApplyActions(vec![Action::Nicira(Nicira::Ct(Box::new(Ct {
                        flags: Ct::COMMIT,
                        zone: CtZone::Field(Subfield::bits(FieldHeader::reg(13), 0, 16)),
                        recirc_table: 255,
                        alg: 0,
                        actions: vec![Action::SetField(Field::CtMark(1, None))],
                    })))]),
                    Instruction::GotoTable(25),
                ],
            )
        };
        out.push(
            fm.with_cookie(0x5746_0000_0000_0000 | u64::from(i))
                .into_message(i),
        );
    }
    out
}

/// Runs `f` repeatedly for about `budget`, returns messages per second.
fn rate(budget: Duration, mut f: impl FnMut() -> usize) -> f64 {
    let _ = f(); // warm up
    let start = Instant::now();
    let mut msgs = 0usize;
    while start.elapsed() < budget {
        msgs += f();
    }
    msgs as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1500),
    );
    let msgs = mix();
    let mut wire = BytesMut::new();
    let mut offsets = Vec::with_capacity(N + 1);
    for m in &msgs {
        offsets.push(wire.len());
        m.encode(&mut wire).unwrap();
    }
    offsets.push(wire.len());
    let total = wire.len();
    println!(
        "FLOW_MOD mix: {N} messages, {total} bytes ({} bytes avg)",
        total / N
    );

    let mut buf = BytesMut::with_capacity(total);
    let encode = rate(budget, || {
        buf.clear();
        for m in &msgs {
            m.encode(&mut buf).unwrap();
        }
        black_box(&buf);
        N
    });
    let decode = rate(budget, || {
        for w in offsets.windows(2) {
            black_box(OfpMessage::decode(&wire[w[0]..w[1]]).unwrap());
        }
        N
    });
    let both = rate(budget, || {
        buf.clear();
        for w in offsets.windows(2) {
            let m = OfpMessage::decode(&wire[w[0]..w[1]]).unwrap();
            m.encode(&mut buf).unwrap();
        }
        black_box(&buf);
        N
    });
    let mut copy = vec![0u8; total];
    let memcpy = rate(budget, || {
        for w in offsets.windows(2) {
            copy[w[0]..w[1]].copy_from_slice(black_box(&wire[w[0]..w[1]]));
        }
        black_box(&copy);
        N
    });

    let python = std::env::var("OSKEN_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/osken_encode.py");
    let osken = match Command::new(&python)
        .arg(script)
        .arg(N.to_string())
        .output()
    {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout).to_string();
            let mut rate = None;
            let mut bytes = None;
            let mut same = Vec::new();
            for l in text.lines() {
                if let Some(v) = l.strip_prefix("msgs_per_sec ") {
                    rate = v.trim().parse::<f64>().ok();
                }
                if let Some(v) = l.strip_prefix("sample_hex ") {
                    // os-ken's encoding of message i decodes (with our codec) to the same flow.
                    let theirs = openflow::parse_hex(v.trim())
                        .ok()
                        .and_then(|b| OfpMessage::decode(&b).ok());
                    let i = same.len();
                    let equal = match (theirs.map(|m| m.body), &msgs[i].body) {
                        (Some(Message::FlowMod(a)), Message::FlowMod(b)) => {
                            a.key() == b.key() && a.content() == b.content()
                        }
                        _ => false,
                    };
                    same.push(equal);
                }
                if let Some(v) = l.strip_prefix("total_bytes ") {
                    bytes = v.trim().parse::<usize>().ok();
                }
            }
            match (rate, bytes) {
                (Some(r), Some(b)) => Ok((r, b, same)),
                _ => Err(format!("unexpected output: {text}")),
            }
        }
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr)
            .lines()
            .last()
            .unwrap_or("failed")
            .to_string()),
        Err(e) => Err(format!("cannot run {python}: {e}")),
    };

    println!();
    println!("{:<34} {:>14} {:>12}", "operation", "msgs/s", "MB/s");
    let row = |name: &str, r: f64| {
        println!(
            "{:<34} {:>14.0} {:>12.1}",
            name,
            r,
            r * (total as f64 / N as f64) / 1e6
        );
    };
    row("memcpy of the same bytes (ceiling)", memcpy);
    row("openflow encode", encode);
    row("openflow decode", decode);
    row("openflow decode+encode", both);
    match osken {
        Ok((r, b, same)) => {
            row("os-ken encode (same messages)", r);
            println!("(os-ken produced {b} bytes for the same {N} messages; ours {total})");
            println!(
                "os-ken's bytes for sample messages decode to the same flows as ours: {same:?}"
            );
        }
        Err(e) => println!("{:<34} {:>14}  ({e})", "os-ken encode", "n/a"),
    }
}
