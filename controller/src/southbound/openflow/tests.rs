//! The listener, association and installer driven end to end against scripted switches
//! on loopback.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use openflow::codec::OfpCodec;
use openflow::{
    ErrorKind, ErrorMsg, ErrorType, Field, FlowMod, Instruction, Match, Message, MultipartReply,
    MultipartReplyBody, OfpMessage,
};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{OpenFlowSettings, OpenFlowStats, serve, serve_with};
use crate::channels::Channels;
use crate::desired::DesiredNode;
use crate::observed::ObservedState;
use crate::topology::{NodeView, TransportNodes};

/// A switch that speaks just enough OpenFlow for an install: handshake, empty dumps,
/// barriers and echoes; bundles refused, so flows arrive as plain flow mods.
async fn minimal_switch(addr: SocketAddr, dpid: u64) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut sw = Framed::new(stream, OfpCodec::default());
    sw.send(OfpMessage::hello(1)).await.unwrap();
    while let Some(Ok(m)) = sw.next().await {
        let body = match &m.body {
            Message::FeaturesRequest => Message::FeaturesReply(openflow::SwitchFeatures {
                datapath_id: dpid,
                n_tables: 254,
                ..Default::default()
            }),
            Message::MultipartRequest(r) => {
                let body = match r.body {
                    openflow::MultipartRequestBody::Flow(_) => MultipartReplyBody::Flow(vec![]),
                    openflow::MultipartRequestBody::GroupDesc => {
                        MultipartReplyBody::GroupDesc(vec![])
                    }
                    _ => MultipartReplyBody::PortDesc(vec![]),
                };
                Message::MultipartReply(MultipartReply { flags: 0, body })
            }
            Message::BundleControl(_) | Message::BundleAdd(_) => Message::Error(ErrorMsg {
                kind: ErrorKind::Standard {
                    err_type: ErrorType::BadRequest,
                    code: 1,
                },
                data: m.to_bytes().unwrap(),
            }),
            Message::BarrierRequest => Message::BarrierReply,
            Message::EchoRequest(d) => Message::EchoReply(d.clone()),
            _ => continue,
        };
        if sw.send(OfpMessage::new(m.xid, body)).await.is_err() {
            return;
        }
    }
}

/// With room for one resync at a time, every switch still gets its turn: a turn is
/// given back once its install is done, not held while the switch idles.
#[tokio::test]
async fn resync_turns_are_given_back() {
    let topology = TransportNodes::new();
    let channels = Channels::new();
    let (events, _) = tokio::sync::broadcast::channel(16);
    let observed = Arc::new(ObservedState::new(events));
    let shutdown = CancellationToken::new();
    let settings = OpenFlowSettings {
        max_concurrent_resyncs: 1,
        ..Default::default()
    };
    let server = serve_with(
        "127.0.0.1:0".parse().unwrap(),
        crate::southbound::openflow::OpenFlowContext {
            topology: topology.clone(),
            channels: channels.clone(),
            observed: observed.clone(),
            ownership: crate::cluster::Ownership::single("test"),
        },
        shutdown.clone(),
        settings,
    )
    .await
    .unwrap();
    let mut waits = Vec::new();
    for n in 1..=3u64 {
        let id = format!("hv{n}");
        topology.report(NodeView {
            id: id.clone(),
            encap_ip: format!("192.0.2.{n}").parse().unwrap(),
            encap_type: Default::default(),
            bridge: "br-int".into(),
            datapath_id: Some(n),
            vifs: BTreeMap::new(),
            tunnels: BTreeMap::new(),
            bridge_mappings: Default::default(),
            patches: Default::default(),
        });
        let port = Uuid::new_v4();
        let fm = FlowMod::add(
            0,
            100,
            Match::new(vec![Field::InPort(n as u32, None)]),
            vec![Instruction::GotoTable(10)],
        )
        .with_cookie(crate::compiler::COOKIE_WEFT | n);
        let mut d = DesiredNode {
            bound_ports: BTreeSet::from([port]),
            ..Default::default()
        };
        Arc::make_mut(&mut d.flows).insert(Arc::new(fm.key()), Arc::new(fm.content()));
        channels.publish_desired(&id, Arc::new(d));
        let mut installed = channels.watch_installed();
        waits.push(async move {
            while !installed
                .borrow_and_update()
                .get(&id)
                .is_some_and(|p| p.contains(&port))
            {
                installed.changed().await.unwrap();
            }
        });
        tokio::spawn(minimal_switch(server.local_addr, n));
    }
    tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(waits))
        .await
        .expect("a switch never got its turn to be installed");
    assert_eq!(OpenFlowStats::get(&server.stats.installs), 3);
    shutdown.cancel();
    server.join().await;
}

/// A scripted switch without bundle support: the driver falls back to plain flow mods
/// and still reports the state installed after the barrier, while a silent connection
/// sits in its handshake.
#[tokio::test]
async fn falls_back_to_plain_flow_mods_without_bundles() {
    let topology = TransportNodes::new();
    let channels = Channels::new();
    let (events, _) = tokio::sync::broadcast::channel(16);
    let observed = Arc::new(ObservedState::new(events));
    let shutdown = CancellationToken::new();
    let server = serve(
        "127.0.0.1:0".parse().unwrap(),
        crate::southbound::openflow::OpenFlowContext {
            topology: topology.clone(),
            channels: channels.clone(),
            observed: observed.clone(),
            ownership: crate::cluster::Ownership::single("test"),
        },
        shutdown.clone(),
    )
    .await
    .unwrap();
    topology.report(NodeView {
        id: "hv9".into(),
        encap_ip: "192.0.2.9".parse().unwrap(),
        encap_type: Default::default(),
        bridge: "br-int".into(),
        datapath_id: Some(42),
        vifs: BTreeMap::new(),
        tunnels: BTreeMap::new(),
        bridge_mappings: Default::default(),
        patches: Default::default(),
    });
    let port = Uuid::new_v4();
    let fm = FlowMod::add(
        0,
        100,
        Match::new(vec![Field::InPort(1, None)]),
        vec![Instruction::GotoTable(10)],
    )
    .with_cookie(crate::compiler::COOKIE_WEFT | 1);
    let mut d = DesiredNode {
        bound_ports: BTreeSet::from([port]),
        ..Default::default()
    };
    Arc::make_mut(&mut d.flows).insert(Arc::new(fm.key()), Arc::new(fm.content()));
    channels.publish_desired("hv9", Arc::new(d));
    let mut installed = channels.watch_installed();

    // A broken switch that connects and never speaks must not hold up the good one.
    let _silent = TcpStream::connect(server.local_addr).await.unwrap();
    let stream = TcpStream::connect(server.local_addr).await.unwrap();
    let mut sw = Framed::new(stream, OfpCodec::default());
    sw.send(OfpMessage::hello(1)).await.unwrap();
    let mut flow_mods = Vec::new();
    let refuse = |m: &OfpMessage| {
        OfpMessage::new(
            m.xid,
            Message::Error(ErrorMsg {
                kind: ErrorKind::Standard {
                    err_type: ErrorType::BadRequest,
                    code: 1,
                },
                data: m.to_bytes().unwrap(),
            }),
        )
    };
    // Bounded so a broken driver fails the test instead of hanging it.
    let script = async {
        loop {
            tokio::select! {
                r = installed.changed() => {
                    r.unwrap();
                    if installed.borrow().get("hv9").is_some_and(|p| **p == BTreeSet::from([port])) { break }
                }
                m = sw.next() => {
                    let m = m.expect("weftd closed").unwrap();
                    let reply = match &m.body {
                        Message::Hello(_) => None,
                        Message::FeaturesRequest => Some(OfpMessage::new(m.xid, Message::FeaturesReply(openflow::SwitchFeatures { datapath_id: 42, n_tables: 254, ..Default::default() }))),
                        Message::MultipartRequest(r) => {
                            let body = match r.body {
                                openflow::MultipartRequestBody::Flow(_) => MultipartReplyBody::Flow(vec![]),
                                openflow::MultipartRequestBody::GroupDesc => MultipartReplyBody::GroupDesc(vec![]),
                                _ => MultipartReplyBody::PortDesc(vec![]),
                            };
                            Some(OfpMessage::new(m.xid, Message::MultipartReply(MultipartReply { flags: 0, body })))
                        }
                        Message::BundleControl(_) | Message::BundleAdd(_) => Some(refuse(&m)),
                        Message::BarrierRequest => Some(OfpMessage::new(m.xid, Message::BarrierReply)),
                        Message::FlowMod(f) => { flow_mods.push(f.clone()); None }
                        _ => None,
                    };
                    if let Some(r) = reply { sw.send(r).await.unwrap(); }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), script)
        .await
        .expect("weftd never reported the state installed");
    assert_eq!(flow_mods, vec![fm]);
    assert!(
        observed
            .node("hv9")
            .is_some_and(|n| n.openflow_connected && n.flows.len() == 1)
    );
    assert_eq!(OpenFlowStats::get(&server.stats.installs), 1);
    shutdown.cancel();
    server.join().await;
}
