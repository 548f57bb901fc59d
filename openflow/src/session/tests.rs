//! Tests of the session: two ends driven against each other (or a scripted switch) on
//! virtual time.

use super::*;
use crate::{HelloElement, MULTIPART_MORE, MultipartReply, MultipartReplyBody};

fn drain(s: &mut Session) -> Vec<OfpMessage> {
    std::iter::from_fn(|| s.poll_output()).collect()
}
fn events(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn features(dpid: u64) -> SwitchFeatures {
    SwitchFeatures {
        datapath_id: dpid,
        n_tables: 254,
        ..Default::default()
    }
}

/// A session past HELLO and FEATURES, outputs drained.
fn ready(t0: Instant) -> Session {
    let mut s = Session::new(SessionConfig::default(), t0, "test");
    let out = drain(&mut s);
    assert!(matches!(
        out[..],
        [OfpMessage {
            body: Message::Hello(_),
            ..
        }]
    ));
    s.handle_input(OfpMessage::new(1, Message::Hello(Hello::of13())));
    let out = drain(&mut s);
    let [
        OfpMessage {
            xid,
            body: Message::FeaturesRequest,
            ..
        },
    ] = out[..]
    else {
        panic!("{out:?}")
    };
    s.handle_input(OfpMessage::new(
        xid,
        Message::FeaturesReply(features(0xabc)),
    ));
    assert_eq!(events(&mut s), vec![SessionEvent::Ready(features(0xabc))]);
    drain(&mut s);
    s
}

#[test]
fn negotiates_of13_and_learns_the_datapath() {
    let t0 = Instant::now();
    let s = ready(t0);
    assert!(s.is_ready());
    assert_eq!(s.features().map(|f| f.datapath_id), Some(0xabc));
}

#[test]
fn hello_with_a_bitmap_including_1_3_is_accepted_whatever_the_header() {
    let mut s = Session::new(SessionConfig::default(), Instant::now(), "t");
    drain(&mut s);
    let mut h = OfpMessage::new(
        9,
        Message::Hello(Hello {
            elements: vec![HelloElement::VersionBitmap(vec![(1 << 4) | (1 << 6)])],
        }),
    );
    h.version = 6;
    s.handle_input(h);
    assert!(matches!(
        drain(&mut s)[..],
        [OfpMessage {
            body: Message::FeaturesRequest,
            ..
        }]
    ));
}

#[test]
fn of10_only_hello_gets_hello_failed_and_close() {
    let mut s = Session::new(SessionConfig::default(), Instant::now(), "t");
    drain(&mut s);
    let mut h = OfpMessage::new(3, Message::Hello(Hello::default()));
    h.version = 1;
    s.handle_input(h);
    let out = drain(&mut s);
    let [
        OfpMessage {
            version: 1,
            body: Message::Error(ref e),
            ..
        },
    ] = out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        e.kind,
        ErrorKind::Standard {
            err_type: ErrorType::HelloFailed,
            code: 0
        }
    );
    assert!(String::from_utf8_lossy(&e.data).contains("only OpenFlow 1.3"));
    // The error must encode (version 1 header) for the driver to send it.
    assert!(out[0].to_bytes().is_ok());
    assert!(matches!(
        events(&mut s)[..],
        [SessionEvent::Closed(CloseReason::IncompatibleVersion {
            version: 1,
            ..
        })]
    ));
    assert!(s.is_closed());
    // A closed session ignores everything.
    s.handle_input(OfpMessage::new(4, Message::EchoRequest(vec![])));
    assert!(drain(&mut s).is_empty());
}

/// The echo request the session sends at `at`'s tick, or a panic naming what it sent.
fn echo_at(s: &mut Session, at: Instant) -> u32 {
    s.handle_timeout(at);
    sent_echo(s)
}

/// The xid of the one echo request the session has queued, or a panic naming what it
/// queued instead.
fn sent_echo(s: &mut Session) -> u32 {
    let out = drain(s);
    let [
        OfpMessage {
            xid,
            body: Message::EchoRequest(_),
            ..
        },
    ] = out[..]
    else {
        panic!("expected one echo request, got {out:?}")
    };
    xid
}

#[test]
fn answers_echo_and_keeps_its_own_alive() {
    let t0 = Instant::now();
    let mut s = ready(t0);
    s.handle_input(OfpMessage::new(77, Message::EchoRequest(vec![1, 2])));
    assert_eq!(
        drain(&mut s),
        vec![OfpMessage::new(77, Message::EchoReply(vec![1, 2]))]
    );
    let iv = SessionConfig::default().echo_interval;
    assert_eq!(s.next_timeout(), Some(t0 + iv));
    // The switch spoke in the first interval (handshake, its echo): no probe is due.
    s.handle_timeout(t0 + iv);
    assert!(drain(&mut s).is_empty());
    // From then on the connection is idle: one echo per interval, and answered echoes
    // keep the session alive indefinitely.
    for i in 2..=11u32 {
        assert_eq!(s.next_timeout(), Some(t0 + iv * (i - 1) + iv));
        let xid = echo_at(&mut s, t0 + iv * i);
        s.handle_input(OfpMessage::new(xid, Message::EchoReply(vec![])));
    }
    assert!(!s.is_closed());
}

/// Every probe costs the switch a wake-up (and, over a userspace-datapath underlay, two
/// trips through its datapath): a switch that keeps talking is never probed.
#[test]
fn a_switch_that_talks_is_never_probed() {
    let t0 = Instant::now();
    let mut s = ready(t0);
    let iv = SessionConfig::default().echo_interval;
    for i in 1..=20u32 {
        let now = t0 + iv * i - Duration::from_millis(1);
        s.handle_input(OfpMessage::new(1000 + i, Message::EchoRequest(vec![])));
        drain(&mut s);
        s.handle_timeout(now + Duration::from_millis(1));
        assert!(drain(&mut s).is_empty(), "probed at tick {i}");
    }
    assert!(!s.is_closed());
}

#[test]
fn unanswered_echoes_declare_the_switch_dead() {
    let t0 = Instant::now();
    let mut s = ready(t0);
    let cfg = SessionConfig::default();
    // The handshake counts as the switch speaking: the first tick sends nothing.
    s.handle_timeout(t0 + cfg.echo_interval);
    assert!(drain(&mut s).is_empty());
    for i in 1..=cfg.echo_max_missed {
        echo_at(&mut s, t0 + cfg.echo_interval * (i + 1));
        assert!(!s.is_closed());
    }
    s.handle_timeout(t0 + cfg.echo_interval * (cfg.echo_max_missed + 2));
    assert!(s.is_closed());
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Closed(CloseReason::EchoTimeout(
            cfg.echo_max_missed
        ))]
    );
}

#[test]
fn handshake_has_a_deadline() {
    let t0 = Instant::now();
    let cfg = SessionConfig::default();
    let mut s = Session::new(cfg, t0, "t");
    s.handle_timeout(t0 + cfg.handshake_timeout);
    assert!(s.is_closed());
}

#[test]
fn multipart_parts_are_reassembled_until_more_is_clear() {
    let t0 = Instant::now();
    let mut s = ready(t0);
    let xid = s.send(OfpMessage::group_desc_request(0).body);
    drain(&mut s);
    let part = |flags, id| {
        Message::MultipartReply(MultipartReply {
            flags,
            body: MultipartReplyBody::GroupDesc(vec![crate::GroupDesc {
                group_type: crate::GroupType::All,
                group_id: id,
                buckets: vec![],
            }]),
        })
    };
    s.handle_input(OfpMessage::new(xid, part(MULTIPART_MORE, 1)));
    s.handle_input(OfpMessage::new(xid, part(MULTIPART_MORE, 2)));
    // A reply to someone else's request does not disturb ours.
    s.handle_input(OfpMessage::new(xid + 100, part(0, 9)));
    assert!(events(&mut s).is_empty());
    s.handle_input(OfpMessage::new(xid, part(0, 3)));
    let ev = events(&mut s);
    let [
        SessionEvent::Multipart {
            xid: got,
            ref parts,
        },
    ] = ev[..]
    else {
        panic!("{ev:?}")
    };
    assert_eq!(got, xid);
    let ids: Vec<u32> = parts
        .iter()
        .flat_map(|p| match p {
            MultipartReplyBody::GroupDesc(v) => v.iter().map(|g| g.group_id).collect(),
            _ => vec![],
        })
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
}

#[test]
fn barriers_are_tracked_and_errors_reported_with_their_xid() {
    let t0 = Instant::now();
    let mut s = ready(t0);
    let fm = crate::FlowMod::add(0, 1, crate::Match::default(), vec![]);
    let fm_xid = s.send(Message::FlowMod(fm.clone()));
    let b1 = s.barrier();
    let b2 = s.barrier();
    assert_eq!(s.pending_barriers(), 2);
    let out = drain(&mut s);
    assert_eq!(out.len(), 3);
    let offending = out[0].to_bytes().unwrap();
    let err = ErrorMsg {
        kind: ErrorKind::Standard {
            err_type: ErrorType::BadInstruction,
            code: 2,
        },
        data: offending,
    };
    s.handle_input(OfpMessage::new(fm_xid, Message::Error(err.clone())));
    s.handle_input(OfpMessage::new(b2, Message::BarrierReply));
    s.handle_input(OfpMessage::new(b1, Message::BarrierReply));
    s.handle_input(OfpMessage::new(b1, Message::BarrierReply)); // duplicate: ignored
    assert_eq!(
        events(&mut s),
        vec![
            SessionEvent::Error {
                xid: fm_xid,
                error: err.clone()
            },
            SessionEvent::Barrier { xid: b2 },
            SessionEvent::Barrier { xid: b1 },
        ]
    );
    assert_eq!(s.pending_barriers(), 0);
    let text = describe_error(&err);
    assert!(
        text.starts_with("OFPBIC_BAD_TABLE_ID: OFPT_FLOW_MOD"),
        "{text}"
    );
}

#[test]
fn port_status_updates_the_port_table() {
    let t0 = Instant::now();
    let mut s = ready(t0);
    let port = Port {
        port_no: 5,
        ..Default::default()
    };
    s.handle_input(OfpMessage::new(
        0,
        Message::PortStatus(crate::PortStatus {
            reason: PortReason::Add,
            desc: port.clone(),
        }),
    ));
    assert!(s.ports().contains_key(&5));
    s.handle_input(OfpMessage::new(
        0,
        Message::PortStatus(crate::PortStatus {
            reason: PortReason::Delete,
            desc: port,
        }),
    ));
    assert!(!s.ports().contains_key(&5));
    assert_eq!(events(&mut s).len(), 2);
}

#[test]
fn two_sessions_talk_to_each_other() {
    // Our session against a minimal scripted switch, on virtual time.
    let t0 = Instant::now();
    let mut s = Session::new(SessionConfig::default(), t0, "t");
    let mut ready = false;
    for _ in 0..10 {
        while let Some(m) = s.poll_output() {
            let reply = match m.body {
                Message::Hello(_) => Some(OfpMessage::new(m.xid, Message::Hello(Hello::of13()))),
                Message::FeaturesRequest => {
                    Some(OfpMessage::new(m.xid, Message::FeaturesReply(features(7))))
                }
                _ => None,
            };
            if let Some(r) = reply {
                // Round-trip through bytes, as on the wire.
                let b = r.to_bytes().unwrap();
                s.handle_input(OfpMessage::decode(&b).unwrap());
            }
        }
        while let Some(e) = s.poll_event() {
            ready |= matches!(e, SessionEvent::Ready(f) if f.datapath_id == 7);
        }
    }
    assert!(ready);
}

/// Another connection claimed this datapath: a probe demands an echo reply within
/// its deadline. Answered, the session lives on; unanswered, it closes at the
/// deadline, long before the regular echo timeout.
#[test]
fn probe_keeps_a_live_switch_and_closes_a_silent_one() {
    let t0 = Instant::now();
    let within = Duration::from_secs(2);
    let mut s = ready(t0);
    s.probe(t0, within);
    let xid = sent_echo(&mut s);
    assert_eq!(s.next_timeout(), Some(t0 + within));
    s.handle_input(OfpMessage::new(xid, Message::EchoReply(Vec::new())));
    s.handle_timeout(t0 + within);
    assert!(!s.is_closed());

    let t1 = t0 + Duration::from_secs(3);
    s.probe(t1, within);
    drain(&mut s);
    s.handle_timeout(t1 + Duration::from_secs(1));
    assert!(!s.is_closed());
    s.handle_timeout(t1 + within);
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Closed(CloseReason::ProbeTimeout(within))]
    );
}

/// A switch announcing more ports than any real bridge has is disconnected, and the
/// port table it filled is released.
#[test]
fn too_many_ports_close_the_session() {
    let t0 = Instant::now();
    let cfg = SessionConfig {
        max_ports: 3,
        ..SessionConfig::default()
    };
    let mut s = Session::new(cfg, t0, "t");
    drain(&mut s);
    s.handle_input(OfpMessage::new(1, Message::Hello(Hello::of13())));
    let xid = drain(&mut s)[0].xid;
    s.handle_input(OfpMessage::new(xid, Message::FeaturesReply(features(1))));
    events(&mut s);
    for port_no in 1..=4 {
        s.handle_input(OfpMessage::new(
            0,
            Message::PortStatus(crate::PortStatus {
                reason: PortReason::Add,
                desc: Port {
                    port_no,
                    ..Default::default()
                },
            }),
        ));
    }
    let ev = events(&mut s);
    assert!(
        matches!(ev.last(), Some(SessionEvent::Closed(CloseReason::Protocol(m))) if m.contains("4 ports")),
        "{ev:?}"
    );
    assert!(s.is_closed());
    assert!(s.ports().is_empty());
}

#[test]
fn a_drained_send_queue_gives_back_the_room_a_bundle_took() {
    let t0 = Instant::now();
    let mut s = ready(t0);
    for _ in 0..5_000 {
        s.send(Message::BarrierRequest);
    }
    assert!(s.out.capacity() >= 5_000);
    let sent = drain(&mut s);
    assert_eq!(
        sent.len(),
        5_000,
        "every queued message is still sent, in order"
    );
    assert!(sent.windows(2).all(|w| w[0].xid < w[1].xid));
    assert!(
        s.out.capacity() <= KEPT_QUEUE_SLOTS,
        "a drained queue kept {} slots",
        s.out.capacity()
    );
    // A queue that stays small is left alone (no churn on every message).
    s.send(Message::BarrierRequest);
    let kept = s.out.capacity();
    drain(&mut s);
    assert_eq!(s.out.capacity(), kept);
}
