//! Hostile and broken peers (issue 8): a real `weftd` manages two real Open vSwitch
//! hypervisors (namespace lab) whose VMs ping each other the whole time, while raw
//! sockets in this process play broken or malicious OpenFlow switches and OVSDB servers.
//!
//! For every scenario: weftd closes the hostile connection and logs a line naming the
//! peer (its address), the healthy hypervisors' OVSDB and OpenFlow sessions are never
//! disconnected (polled through the API the whole time) and their flow tables do not
//! change, the API still answers, weftd's resident memory stays under a stated bound,
//! and weftd is alive at the end with no panic in its log. The pings lose nothing.
//!
//! Times (to disconnect, to send a flood) and memory figures are printed, not asserted.
//! Run with `cargo test -p weft-controller --test hostile -- --nocapture` to see them.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::overlay::Overlay;
use integration::lab::{Encap, Hypervisor, Vm};
use openflow::{Hello, HelloElement, Message, OfpMessage, SwitchFeatures};
use serde_json::{Value, json};

/// weftd's resident memory may grow at most this much over its baseline during the whole
/// test (the 100 MB OVSDB frame is cut at 32 MiB; nothing else buffers much).
const RSS_BOUND_KB: u64 = 200 * 1024;

/// Upper bound for weftd to react to a scenario (the slowest path is a 30 s timeout).
const REACT: Duration = Duration::from_secs(60);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// VmRSS and VmHWM (peak) of a process, in kB.
fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Everything the test needs about the running system.
struct World {
    ov: Overlay,
    vms: Vec<Vm>,
    of_addr: SocketAddr,
    ovsdb_addr: SocketAddr,
    pid: u32,
    baseline_kb: u64,
    /// Healthy flow tables at the start.
    tables: Vec<Vec<String>>,
}

impl World {
    fn log(&self) -> String {
        self.ov.log()
    }

    /// Waits until weftd's log has a line containing every one of `needles`; returns it.
    fn wait_log(&self, needles: &[&str], within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self
                .log()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return l.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no weftd log line with {needles:?} within {within:?}\nweftd log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// After each scenario: weftd alive, the API answers, both healthy nodes fully
    /// connected, memory under the bound.
    fn check_healthy(&mut self, scenario: &str) {
        assert!(
            matches!(self.ov.weftd.child.try_wait(), Ok(None)),
            "weftd died during {scenario}\nweftd log:\n{}",
            self.log()
        );
        let status = self.ov.call("system_status", json!({}));
        assert!(status["uptime_seconds"].is_u64(), "{status}");
        for hv in ["hv1", "hv2"] {
            let n = self.ov.call("node_get", json!({"node": hv}));
            assert_eq!(
                (
                    n["ovsdb_connected"].as_bool(),
                    n["openflow_connected"].as_bool()
                ),
                (Some(true), Some(true)),
                "{hv} after {scenario}: {n}\nweftd log:\n{}",
                self.log()
            );
        }
        let (rss, hwm) = rss_kb(self.pid);
        eprintln!(
            "[{scenario}] weftd VmRSS {} MiB, peak VmHWM {} MiB (baseline {} MiB)",
            rss / 1024,
            hwm / 1024,
            self.baseline_kb / 1024
        );
        assert!(
            hwm < self.baseline_kb + RSS_BOUND_KB,
            "[{scenario}] weftd peak RSS {hwm} kB exceeds baseline {} kB + {RSS_BOUND_KB} kB",
            self.baseline_kb
        );
    }
}

fn flow_table(hv: &Hypervisor) -> Vec<String> {
    let mut f: Vec<String> = hv
        .dump_flows("br-int")
        .unwrap()
        .into_iter()
        // Counters and ages change while traffic flows; the rules must not.
        .map(|l| {
            l.split(", ")
                .filter(|kv| {
                    ![
                        "duration=",
                        "n_packets=",
                        "n_bytes=",
                        "idle_age=",
                        "hard_age=",
                    ]
                    .iter()
                    .any(|p| kv.trim_start().starts_with(p))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    f.sort();
    f
}

/// Reads until weftd closes the connection (EOF or reset); returns how long it took and
/// what arrived meanwhile. Panics after `within`.
fn wait_closed(s: &mut TcpStream, within: Duration) -> (Duration, Vec<u8>) {
    let t0 = Instant::now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (t0.elapsed(), got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (t0.elapsed(), got),
        }
        assert!(
            t0.elapsed() < within,
            "weftd did not close within {within:?}"
        );
    }
}

fn connect(addr: SocketAddr) -> (TcpStream, String) {
    let s = TcpStream::connect(addr).unwrap();
    let me = s.local_addr().unwrap().to_string();
    (s, me)
}

/// Deterministic pseudo-random bytes.
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

fn of_bytes(m: &OfpMessage) -> Vec<u8> {
    m.to_bytes().unwrap()
}

/// Reads one OpenFlow frame (header + body) from a blocking socket.
fn read_of(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut h = [0u8; 8];
    s.read_exact(&mut h)?;
    let len = usize::from(u16::from_be_bytes([h[2], h[3]])).max(8);
    let mut body = vec![0u8; len - 8];
    s.read_exact(&mut body)?;
    let mut f = h.to_vec();
    f.extend(body);
    Ok(f)
}

/// A raw switch: HELLO, then answers FEATURES_REQUEST with `dpid`. Returns once weftd
/// has the features (it then asks for the port description).
fn of_handshake(s: &mut TcpStream, dpid: u64) {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(&of_bytes(&OfpMessage::hello(1))).unwrap();
    loop {
        let f = read_of(s).expect("weftd closed during the handshake");
        if f[1] == 5 {
            let xid = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
            let reply = OfpMessage::new(
                xid,
                Message::FeaturesReply(SwitchFeatures {
                    datapath_id: dpid,
                    n_tables: 254,
                    ..Default::default()
                }),
            );
            s.write_all(&of_bytes(&reply)).unwrap();
            return;
        }
    }
}

/// A syntactically plausible PACKET_IN (OF 1.3): 60 bytes of frame, empty OXM match.
fn packet_in(xid: u32) -> Vec<u8> {
    let data = noise(60, xid);
    let len = 8 + 16 + 8 + 2 + data.len();
    let mut m = vec![4, 10];
    m.extend((len as u16).to_be_bytes());
    m.extend(xid.to_be_bytes());
    m.extend(u32::MAX.to_be_bytes()); // buffer_id: none
    m.extend((data.len() as u16).to_be_bytes()); // total_len
    m.extend([0, 0]); // reason no match, table 0
    m.extend(0u64.to_be_bytes()); // cookie
    m.extend([0, 1, 0, 4, 0, 0, 0, 0]); // OXM match, no fields, padded
    m.extend([0, 0]);
    m.extend(data);
    m
}

/// A message of the maximum length (65535) of a type OpenFlow 1.3 does not define.
fn max_len_unknown(xid: u32) -> Vec<u8> {
    let mut m = vec![4, 200, 0xff, 0xff];
    m.extend(xid.to_be_bytes());
    m.extend(noise(65535 - 8, xid));
    m
}

// ---------------------------------------------------------------- OpenFlow scenarios

fn of_garbage(w: &mut World) {
    let (mut s, me) = connect(w.of_addr);
    // 128 KiB: whatever length the first "header" claims, a whole frame arrives.
    let _ = s.write_all(&noise(128 * 1024, 7));
    let (t, _) = wait_closed(&mut s, REACT);
    let line = w.wait_log(&[&me, "connection closed"], REACT);
    eprintln!("[of garbage] closed after {t:?}: {line}");
}

fn of_truncated(w: &mut World) {
    let (mut s, me) = connect(w.of_addr);
    // A HELLO header announcing 1000 bytes, 100 of them sent, then silence.
    let mut m = vec![4, 0, 0x03, 0xe8, 0, 0, 0, 1];
    m.extend(noise(92, 3));
    s.write_all(&m).unwrap();
    let (t, _) = wait_closed(&mut s, REACT);
    // Closed by the handshake deadline or, first, by the echoes it never answers.
    let line = w.wait_log(&[&me, "OpenFlow handshake failed"], REACT);
    eprintln!("[of truncated] closed after {t:?}: {line}");
}

fn of_wrong_version(w: &mut World) {
    // An OpenFlow 1.0 HELLO (version 1, no elements).
    let (mut s, me) = connect(w.of_addr);
    s.write_all(&[1, 0, 0, 8, 0, 0, 0, 1]).unwrap();
    let (t, got) = wait_closed(&mut s, REACT);
    // weftd's HELLO (1.3), then an ERROR HELLO_FAILED in version 1 the peer can read.
    let err = got.windows(2).any(|w| w == [1, 1]);
    assert!(err, "no OF1.0 ERROR before the close: {got:?}");
    let line = w.wait_log(&[&me, "does not speak OpenFlow 1.3"], REACT);
    eprintln!("[of 1.0 hello] closed after {t:?}: {line}");

    // Version 1.3 header, but a bitmap offering only 1.0.
    let (mut s, me) = connect(w.of_addr);
    let mut h = OfpMessage::new(
        1,
        Message::Hello(Hello {
            elements: vec![HelloElement::VersionBitmap(vec![1 << 1])],
        }),
    );
    h.version = 4;
    s.write_all(&of_bytes(&h)).unwrap();
    let (t, _) = wait_closed(&mut s, REACT);
    let line = w.wait_log(&[&me, "does not speak OpenFlow 1.3"], REACT);
    eprintln!("[of bitmap only 1.0] closed after {t:?}: {line}");
}

fn of_max_length_unknown(w: &mut World) {
    let (mut s, me) = connect(w.of_addr);
    s.write_all(&max_len_unknown(9)).unwrap();
    let (t, _) = wait_closed(&mut s, REACT);
    let line = w.wait_log(&[&me, "expected HELLO first", "connection closed"], REACT);
    eprintln!("[of max-length unknown type before hello] closed after {t:?}: {line}");
}

/// After a proper handshake (a datapath no node has), 100k PACKET_INs and 20 max-length
/// messages of an unknown type as fast as the socket takes them; then the peer goes
/// silent and weftd must give up on it by echo timeout.
fn of_packet_in_flood(w: &mut World) {
    let (mut s, me) = connect(w.of_addr);
    of_handshake(&mut s, 0xdead_0001);
    let mut burst = Vec::with_capacity(100_000 * 94);
    for i in 0..100_000u32 {
        burst.extend(packet_in(i));
    }
    // Drain what weftd sends (port description request, echoes) without answering, so
    // the flood is never blocked by our own receive buffer.
    let mut reader = s.try_clone().unwrap();
    let draining = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
    });
    let t0 = Instant::now();
    s.write_all(&burst).unwrap();
    for i in 0..20 {
        s.write_all(&max_len_unknown(i)).unwrap();
    }
    let sent = t0.elapsed();
    let (rss, _) = rss_kb(w.pid);
    let line = w.wait_log(&[&me, "dropped messages", "total_packet_ins="], REACT);
    eprintln!(
        "[of packet_in flood] 100000 PACKET_INs ({} MB) + 20 x 65535 B unknown sent in {sent:?}; weftd VmRSS {} MiB; {line}",
        burst.len() / 1_000_000,
        rss / 1024
    );
    let t1 = Instant::now();
    let end = w.wait_log(&[&me, "echo", "connection closed"], REACT);
    let _ = draining.join();
    eprintln!(
        "[of packet_in flood] silent peer closed {:?} after the flood: {end}",
        t1.elapsed()
    );
    // The totals weftd logged at the end account for every message.
    let summary = w.log();
    let total = summary
        .lines()
        .filter(|l| l.contains(&me) && l.contains("dropped messages"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|kv| kv.strip_prefix("total_packet_ins="))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .max();
    assert_eq!(total, Some(100_000), "weftd's PACKET_IN count: {summary}");
}

/// After a handshake, a peer that sends large echo requests and never reads: weftd's
/// replies fill both socket buffers; weftd must drop it when its writes stall, and not
/// buffer the replies.
fn of_never_reads(w: &mut World) {
    let (mut s, me) = connect(w.of_addr);
    of_handshake(&mut s, 0xdead_0002);
    let mut writer = s.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let t0 = Instant::now();
    let flooding = std::thread::spawn(move || {
        writer
            .set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut sent = 0usize;
        for xid in 0..2000u32 {
            if stop2.load(Ordering::Relaxed) {
                break;
            }
            let m = OfpMessage::new(xid, Message::EchoRequest(noise(60_000, xid)));
            match writer.write_all(&of_bytes(&m)) {
                Ok(()) => sent += 1,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(_) => break,
            }
        }
        sent
    });
    let line = w.wait_log(&[&me, "no progress", "connection closed"], REACT);
    let t = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let sent = flooding.join().unwrap();
    let (rss, _) = rss_kb(w.pid);
    eprintln!(
        "[of never reads] {sent} echo requests of 60 kB sent; weftd closed after {t:?}, VmRSS {} MiB: {line}",
        rss / 1024
    );
    drop(s);
}

/// A switch presenting hv1's datapath id. Decision (see southbound/openflow.rs `claim`):
/// the live connection keeps the node and is probed; the newcomer waits, gets no flows,
/// and takes over only if the holder dies. Here the impostor answers echoes for a while
/// (it is kept, waiting), then goes silent and is dropped.
fn of_impersonation(w: &mut World) {
    let n = w.ov.call("node_get", json!({"node": "hv1"}));
    let dpid = u64::from_str_radix(n["datapath_id"].as_str().unwrap(), 16).unwrap();
    let (mut s, me) = connect(w.of_addr);
    of_handshake(&mut s, dpid);
    let line = w.wait_log(&[&me, "already serves"], REACT);
    eprintln!("[of impersonation] {line}");
    // Answer echoes for 8 s, record every message type weftd sends.
    let mut types = Vec::new();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        match read_of(&mut s) {
            Ok(f) => {
                let subtype = if f.len() >= 10 { f[9] } else { 0 };
                types.push((f[1], subtype));
                if f[1] == 2 {
                    let xid = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
                    let _ = s.write_all(&of_bytes(&OfpMessage::new(
                        xid,
                        Message::EchoReply(f[8..].to_vec()),
                    )));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("impostor dropped while answering echoes: {e}"),
        }
    }
    // Only the handshake's port description request and echoes: no flow or group mod,
    // no dump, no bundle.
    for (t, sub) in &types {
        assert!(
            matches!((t, sub), (2, _) | (18, 13)),
            "weftd sent message type {t} (multipart {sub}) to the impostor: {types:?}"
        );
    }
    let n = w.ov.call("node_get", json!({"node": "hv1"}));
    assert_eq!(n["openflow_connected"], json!(true));
    // Silent now: weftd gives up on it by echo timeout.
    let (t, _) = wait_closed(&mut s, REACT);
    let end = w.wait_log(&[&me, "connection closed"], REACT);
    eprintln!("[of impersonation] silent impostor closed {t:?} after it stopped answering: {end}");
}

// ---------------------------------------------------------------- OVSDB scenarios

/// Answers weftd's first request to a raw OVSDB peer, `list_dbs` (is it a hypervisor or
/// a hardware VTEP?), as a hypervisor would, and returns the request after it
/// (`get_schema`).
fn past_list_dbs(s: &mut TcpStream) -> Value {
    let req = read_json(s);
    assert_eq!(req["method"], json!("list_dbs"), "{req}");
    let reply = json!({"id": req["id"], "result": ["Open_vSwitch"], "error": null});
    s.write_all(reply.to_string().as_bytes()).unwrap();
    let req = read_json(s);
    assert_eq!(req["method"], json!("get_schema"), "{req}");
    req
}

/// Reads one JSON request weftd sent a raw OVSDB peer: JSON until the outer object
/// closes.
fn read_json(s: &mut TcpStream) -> Value {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    loop {
        s.read_exact(&mut b).unwrap();
        buf.push(b[0]);
        if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
            return v;
        }
    }
}

fn ovsdb_malformed(w: &mut World) {
    let (mut s, me) = connect(w.ovsdb_addr);
    let _ = read_json(&mut s);
    s.write_all(br#"{"id":0,"result":[1,2,,]}"#).unwrap();
    let (t, _) = wait_closed(&mut s, REACT);
    let line = w.wait_log(&[&me, "invalid JSON", "connection closed"], REACT);
    eprintln!("[ovsdb malformed json] closed after {t:?}: {line}");
}

fn ovsdb_huge_frame(w: &mut World) {
    let (mut s, me) = connect(w.ovsdb_addr);
    let _ = read_json(&mut s);
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    let t0 = Instant::now();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    let mut ok = s.write_all(br#"{"id":0,"result":""#).is_ok();
    // 100 MB, streamed: never built in memory.
    while ok && sent < 100_000_000 {
        ok = s.write_all(&chunk).is_ok();
        if ok {
            sent += chunk.len();
        }
    }
    if ok {
        let _ = s.write_all(br#""}"#);
    }
    let (t, _) = wait_closed(&mut s, REACT);
    let line = w.wait_log(&[&me, "exceeds maximum", "connection closed"], REACT);
    eprintln!(
        "[ovsdb 100 MB frame] weftd cut it after {} MiB sent, {:?}; closed after {t:?} more: {line}",
        sent / (1 << 20),
        t0.elapsed()
    );
}

fn ovsdb_deep(w: &mut World) {
    let (mut s, me) = connect(w.ovsdb_addr);
    let _ = read_json(&mut s);
    let mut m = br#"{"id":0,"result":"#.to_vec();
    m.extend(std::iter::repeat_n(b'[', 100_000));
    let _ = s.write_all(&m);
    let (t, _) = wait_closed(&mut s, REACT);
    let line = w.wait_log(&[&me, "nesting deeper", "connection closed"], REACT);
    eprintln!("[ovsdb deep nesting] closed after {t:?}: {line}");
}

fn ovsdb_silent(w: &mut World) {
    let (mut s, me) = connect(w.ovsdb_addr);
    let req = read_json(&mut s);
    assert_eq!(req["method"], json!("list_dbs"), "{req}");
    // Never answer anything (not even weftd's echo probe).
    let (t, _) = wait_closed(&mut s, REACT);
    let line = w.wait_log(&[&me, "KeepaliveTimeout", "connection closed"], REACT);
    eprintln!("[ovsdb never answers] closed after {t:?}: {line}");
}

fn ovsdb_wrong_answers(w: &mut World) {
    // A reply of the wrong shape to get_schema.
    let (mut s, me) = connect(w.ovsdb_addr);
    let req = past_list_dbs(&mut s);
    let reply = json!({"id": req["id"], "result": [1, 2, 3], "error": null});
    s.write_all(reply.to_string().as_bytes()).unwrap();
    let (t, _) = wait_closed(&mut s, REACT);
    let line = w.wait_log(&[&me, "get_schema", "connection closed"], REACT);
    eprintln!("[ovsdb wrong shape] closed after {t:?}: {line}");

    // Replies with ids weftd never used, while answering its echo probes properly: the
    // request times out instead.
    let (mut s, me) = connect(w.ovsdb_addr);
    let req = past_list_dbs(&mut s);
    let t0 = Instant::now();
    let wrong = json!({"id": 123_456_789, "result": {}, "error": null});
    s.write_all(wrong.to_string().as_bytes()).unwrap();
    let _ = req;
    let mut closed = false;
    while !closed {
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut buf = Vec::new();
        let mut b = [0u8; 1];
        loop {
            match s.read(&mut b) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(_) => {
                    buf.push(b[0]);
                    if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                        if v["method"] == json!("echo") {
                            let r = json!({"id": v["id"], "result": v["params"], "error": null});
                            let _ = s.write_all(r.to_string().as_bytes());
                        }
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        assert!(
            t0.elapsed() < REACT,
            "weftd kept a peer that never answered"
        );
    }
    let line = w.wait_log(&[&me, "get_schema", "no reply", "connection closed"], REACT);
    eprintln!(
        "[ovsdb wrong ids, echo answered] closed after {:?}: {line}",
        t0.elapsed()
    );
}

// ---------------------------------------------------------------- the test

/// A named step run against the live system.
type Scenario = (&'static str, fn(&mut World));

#[test]
fn hostile_peers_are_dropped_and_the_healthy_hypervisors_never_notice() {
    let ov = Overlay::start(2, Encap::Geneve);
    ov.call("switch_create", json!({"name": "blue", "vni": 5001}));
    let vms: Vec<Vm> = (1..=2)
        .map(|i| {
            let name = format!("a{i}");
            let mac = format!("02:00:00:00:00:0{i}");
            let addr = format!("10.0.0.{i}");
            ov.port("blue", &name, &mac, &addr);
            ov.plug(i, &name, &mac, &format!("{addr}/24"))
        })
        .collect();
    vms[0]
        .ping_until_reachable(ip("10.0.0.2"), Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\nweftd log:\n{}", ov.log()));
    ov.wait_connected();
    let ctl = IpAddr::from(ov.lab.controller_ip());
    let of_addr = SocketAddr::new(ctl, ov.ports.1);
    let ovsdb_addr = SocketAddr::new(ctl, ov.ports.0);
    let pid = ov.weftd.child.id();
    let (baseline_kb, _) = rss_kb(pid);
    let tables = (1..=2).map(|n| flow_table(ov.hv(n))).collect();
    let mut w = World {
        ov,
        vms,
        of_addr,
        ovsdb_addr,
        pid,
        baseline_kb,
        tables,
    };
    eprintln!("weftd baseline VmRSS {} MiB", baseline_kb / 1024);

    // Watch both healthy nodes' sessions through the API the whole time.
    let watching = Arc::new(AtomicBool::new(true));
    let flaps = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let watcher = {
        let (watching, flaps, url) = (watching.clone(), flaps.clone(), w.ov.weftd.url());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let api = common::http_client(&url, None);
            while watching.load(Ordering::Relaxed) {
                for hv in ["hv1", "hv2"] {
                    match rt.block_on(common::call(&api, "node_get", json!({"node": hv}))) {
                        Ok(n)
                            if n["ovsdb_connected"] == json!(true)
                                && n["openflow_connected"] == json!(true) => {}
                        other => flaps.lock().unwrap().push(format!("{hv}: {other:?}")),
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let ping = w.vms[0]
        .ping_continuous(ip("10.0.0.2"), Duration::from_millis(50))
        .unwrap();

    let scenarios: &[Scenario] = &[
        ("of garbage", of_garbage),
        ("of wrong version", of_wrong_version),
        ("of max-length unknown", of_max_length_unknown),
        ("ovsdb malformed json", ovsdb_malformed),
        ("ovsdb deep nesting", ovsdb_deep),
        ("ovsdb 100 MB frame", ovsdb_huge_frame),
        ("of packet_in flood", of_packet_in_flood),
        ("of never reads", of_never_reads),
        ("of impersonation", of_impersonation),
        ("ovsdb never answers", ovsdb_silent),
        ("of truncated", of_truncated),
        ("ovsdb wrong answers", ovsdb_wrong_answers),
    ];
    for (name, run) in scenarios {
        let t = Instant::now();
        run(&mut w);
        w.check_healthy(name);
        eprintln!("[{name}] scenario took {:?}", t.elapsed());
    }

    let report = ping.stop().unwrap();
    watching.store(false, Ordering::Relaxed);
    watcher.join().unwrap();
    eprintln!(
        "ping a1 -> a2 every 50 ms during all scenarios: {} sent, {} lost",
        report.summary.transmitted,
        report.lost()
    );
    let flaps = flaps.lock().unwrap().clone();
    assert!(
        flaps.is_empty(),
        "a healthy node was seen disconnected: {flaps:?}\nweftd log:\n{}",
        w.log()
    );
    for n in 1..=2 {
        assert_eq!(
            flow_table(w.ov.hv(n)),
            w.tables[n - 1],
            "hv{n}'s flow table changed"
        );
    }
    assert_eq!(report.lost(), 0, "{report:?}");
    assert!(
        matches!(w.ov.weftd.child.try_wait(), Ok(None)),
        "weftd died"
    );
    let log = w.log();
    assert!(!log.contains("panicked"), "weftd panicked:\n{log}");
    // Neither healthy node's connections ended (hostile peers connect from the
    // controller's address, hypervisors from their transport addresses).
    let hostile_peer = format!("peer={}:", w.of_addr.ip());
    for l in log.lines().filter(|l| !l.contains(&hostile_peer)) {
        let healthy = l.contains("node=hv1") || l.contains("node=hv2");
        assert!(
            !(healthy && (l.contains("connection ended") || l.contains("session ended"))),
            "a healthy node's connection ended: {l}"
        );
    }
    let (_, hwm) = rss_kb(w.pid);
    eprintln!(
        "weftd peak VmHWM {} MiB over the whole test (baseline {} MiB, bound +{} MiB)",
        hwm / 1024,
        w.baseline_kb / 1024,
        RSS_BOUND_KB / 1024
    );
}
