//! The client against a real ovsdb-server (Open vSwitch's vswitch schema): over a unix
//! socket, over TCP, and with ovsdb-server connecting to a listener we opened.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::OvsdbServer;
use ovsdb::client::{Client, ClientConfig, ClientError, Event, connect};
use ovsdb::listener::Listener;
use ovsdb::monitor::{ChangeKind, Replica, UpdateFormat};
use ovsdb::reconnect::{ReconnectConfig, ReconnectingClient, SessionEvent};
use ovsdb::vswitch::{self, Bridge, BridgeSpec, Interface, Port, TunnelPort, TypedRow};
use ovsdb::{Condition, Datum, Row, Transaction, TransactionError};
use serde_json::json;
use tokio::sync::mpsc::Receiver;

const WAIT: Duration = Duration::from_secs(20);

/// The Port key by which this test's controller recognises the tunnel ports it owns.
const OWNER_KEY: &str = "ctl-remote";
/// The Interface key this test's controller sets once an interface's flows are in place.
const INSTALLED_KEY: &str = "ctl-installed";

/// Starts the vswitch monitor and returns the replica with its initial contents.
async fn monitored(client: &Client) -> (Replica, UpdateFormat) {
    let schema = client.get_schema(vswitch::DATABASE).await.unwrap();
    let mut replica = Replica::new(schema);
    let start = client
        .monitor_auto(vswitch::DATABASE, json!("m"), &vswitch::monitor_requests())
        .await
        .unwrap();
    replica.apply(start.format, &start.initial).unwrap();
    (replica, start.format)
}

/// Applies updates until `done(replica)` holds.
async fn apply_until(
    replica: &mut Replica,
    events: &mut Receiver<Event>,
    mut done: impl FnMut(&Replica) -> bool,
) -> Vec<ovsdb::RowChange> {
    let mut all = Vec::new();
    tokio::time::timeout(WAIT, async {
        while !done(replica) {
            match events.recv().await.expect("event channel closed") {
                Event::Update {
                    format, updates, ..
                } => all.extend(replica.apply(format, &updates).unwrap().changes),
                Event::Disconnected(r) => panic!("disconnected: {r:?}"),
                _ => {}
            }
        }
    })
    .await
    .expect("replica did not reach the expected state");
    all
}

fn bridge_named(r: &Replica, name: &str) -> Option<Bridge> {
    vswitch::rows::<Bridge>(r)
        .map(Result::unwrap)
        .find(|b| b.name == name)
}

fn iface_named(r: &Replica, name: &str) -> Option<Interface> {
    vswitch::rows::<Interface>(r)
        .map(Result::unwrap)
        .find(|i| i.name == name)
}

/// Every row and listed column of `table` in the replica equals what ovs-vsctl prints.
fn assert_replica_matches_vsctl(server: &OvsdbServer, r: &Replica, table: &str, columns: &[&str]) {
    let vs = server.vsctl_table(table, columns);
    assert_eq!(r.len(table), vs.len(), "row count of {table}");
    for (uuid, cols) in vs {
        let row = r
            .row(table, &uuid.parse().unwrap())
            .unwrap_or_else(|| panic!("{table} {uuid} missing from replica"));
        for (c, v) in cols {
            let expected = Datum::from_json(&v).unwrap();
            let got = row.get(c.as_str()).cloned().unwrap_or_default();
            // ovs-vsctl prints an empty map as ["map",[]]; untyped, so compare sizes then.
            if expected.is_empty() {
                assert!(got.is_empty(), "{table} {uuid} {c}: {got} vs {v}");
            } else {
                assert_eq!(got, expected, "{table} {uuid} {c}");
            }
        }
    }
}

fn tunnel(name: &str, remote: &str, node: &str) -> TunnelPort {
    TunnelPort {
        name: name.into(),
        kind: "geneve".into(),
        remote_ip: remote.into(),
        local_ip: Some("192.0.2.1".into()),
        key: "flow".into(),
        external_ids: BTreeMap::from([(OWNER_KEY.into(), node.into())]),
    }
}

/// The controller's whole workflow over one connection, checked against ovs-vsctl.
async fn exercise_vswitch(server: &OvsdbServer, client: &Client, mut events: Receiver<Event>) {
    let dbs = client.list_dbs().await.unwrap();
    assert!(dbs.contains(&"Open_vSwitch".to_owned()), "{dbs:?}");
    let schema = client.get_schema("Open_vSwitch").await.unwrap();
    assert!(
        schema.table("Interface").unwrap().columns["external_ids"]
            .ty
            .is_map()
    );
    // Fetched as text through a shared store: the same schema, parsed once.
    let shared = ovsdb::SharedSchemas::new();
    let first = client
        .get_schema_shared("Open_vSwitch", &shared)
        .await
        .unwrap();
    let again = client
        .get_schema_shared("Open_vSwitch", &shared)
        .await
        .unwrap();
    assert_eq!(*first, schema);
    assert!(std::sync::Arc::ptr_eq(&first, &again));

    // The hypervisor's identity, as an operator would set it.
    server.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "external_ids:system-id=hv1",
        "external_ids:ctl-encap-ip=192.0.2.1",
    ]);
    let (mut replica, format) = monitored(client).await;
    assert_eq!(format, UpdateFormat::Update2, "OVS 3.1 has monitor_cond");
    let root = vswitch::root(&replica).unwrap().unwrap();
    assert_eq!(root.external_id("system-id"), Some("hv1"));
    assert_eq!(root.external_id("ctl-encap-ip"), Some("192.0.2.1"));

    // Create br-int with its Controller row in one transaction.
    let mut txn = Transaction::new(vswitch::DATABASE);
    let spec = BridgeSpec {
        name: "br-int".into(),
        fail_mode: Some("secure".into()),
        protocols: vec!["OpenFlow13".into()],
        datapath_type: Some("netdev".into()),
        controller: Some("tcp:127.0.0.1:6653".into()),
        controller_max_backoff: None,
        controller_inactivity_probe: None,
        other_config: BTreeMap::from([("disable-in-band".into(), "true".into())]),
        external_ids: BTreeMap::new(),
    };
    let br_name = vswitch::create_bridge(&mut txn, root.uuid, &spec);
    let out = client.transact(&txn).await.unwrap();
    let br_uuid = out.uuid(br_name.name()).unwrap();
    apply_until(&mut replica, &mut events, |r| {
        bridge_named(r, "br-int").is_some()
    })
    .await;
    assert_eq!(server.vsctl(&["get-fail-mode", "br-int"]).trim(), "secure");
    assert_eq!(
        server.vsctl(&["get-controller", "br-int"]).trim(),
        "tcp:127.0.0.1:6653"
    );
    assert_eq!(
        server
            .vsctl(&["get", "Bridge", "br-int", "other_config:disable-in-band"])
            .trim(),
        "\"true\""
    );

    // Two tunnel ports in one transaction, guarded by an optimistic wait on the port set.
    let br = bridge_named(&replica, "br-int").unwrap();
    assert_eq!(br.uuid, br_uuid);
    let mut txn = Transaction::new(vswitch::DATABASE);
    vswitch::wait_bridge_ports(&mut txn, &br);
    vswitch::add_tunnel_port(
        &mut txn,
        br.uuid,
        &tunnel("wt-00000002", "192.0.2.2", "hv2"),
    );
    vswitch::add_tunnel_port(
        &mut txn,
        br.uuid,
        &tunnel("wt-00000003", "192.0.2.3", "hv3"),
    );
    client.transact(&txn).await.unwrap();
    apply_until(&mut replica, &mut events, |r| {
        iface_named(r, "wt-00000003").is_some()
            && bridge_named(r, "br-int").unwrap().ports.len() == 3
    })
    .await;
    let ports = server.vsctl(&["list-ports", "br-int"]);
    assert_eq!(
        ports.lines().collect::<Vec<_>>(),
        vec!["wt-00000002", "wt-00000003"]
    );
    assert_eq!(
        server
            .vsctl(&["get", "Interface", "wt-00000002", "type"])
            .trim(),
        "geneve"
    );
    assert_eq!(
        server
            .vsctl(&["get", "Interface", "wt-00000002", "options:remote_ip"])
            .trim(),
        "\"192.0.2.2\""
    );
    let t2 = iface_named(&replica, "wt-00000002").unwrap();
    assert_eq!(t2.options["key"], "flow");
    assert_eq!(t2.options["local_ip"], "192.0.2.1");
    assert_eq!(t2.external_ids[OWNER_KEY], "hv2");

    // The same wait now fails: the port set has changed since `br` was read.
    let mut txn = Transaction::new(vswitch::DATABASE);
    vswitch::wait_bridge_ports(&mut txn, &br);
    vswitch::add_tunnel_port(
        &mut txn,
        br.uuid,
        &tunnel("wt-00000004", "192.0.2.4", "hv4"),
    );
    match client.transact(&txn).await {
        Err(ClientError::Transaction(TransactionError::OperationFailed {
            index: 0,
            op: "wait",
            error,
            ..
        })) => {
            assert_eq!(error, "timed out")
        }
        other => panic!("expected a failed wait, got {other:?}"),
    }
    assert!(
        server
            .vsctl(&["--if-exists", "get", "Interface", "wt-00000004", "name"])
            .trim()
            .is_empty()
    );

    // A VM interface plugged by someone else shows up as an update with its iface-id.
    server.vsctl(&[
        "add-port",
        "br-int",
        "vm1",
        "--",
        "set",
        "Interface",
        "vm1",
        "external_ids:iface-id=lp1",
        "external_ids:attached-mac=00:00:00:00:00:01",
    ]);
    let changes = apply_until(&mut replica, &mut events, |r| {
        iface_named(r, "vm1").is_some()
    })
    .await;
    assert!(
        changes
            .iter()
            .any(|c| c.table == "Interface" && c.kind() == ChangeKind::Inserted)
    );
    let vm1 = iface_named(&replica, "vm1").unwrap();
    assert_eq!(vm1.iface_id(), Some("lp1"));

    // An installed mark, set and cleared by map mutations, next to other keys.
    let mut txn = Transaction::new(vswitch::DATABASE);
    vswitch::set_interface_external_id(&mut txn, vm1.uuid, INSTALLED_KEY, "true");
    client.transact(&txn).await.unwrap();
    let changes = apply_until(&mut replica, &mut events, |r| {
        iface_named(r, "vm1")
            .unwrap()
            .external_ids
            .contains_key(INSTALLED_KEY)
    })
    .await;
    let modified = changes.iter().find(|c| c.uuid == vm1.uuid).unwrap();
    assert_eq!(modified.kind(), ChangeKind::Modified);
    assert!(modified.changed_columns().contains("external_ids"));
    assert_eq!(
        server
            .vsctl(&[
                "get",
                "Interface",
                "vm1",
                &format!("external_ids:{INSTALLED_KEY}"),
            ])
            .trim(),
        "\"true\""
    );
    // Setting it again is idempotent (delete-then-insert).
    let mut txn = Transaction::new(vswitch::DATABASE);
    vswitch::set_interface_external_id(&mut txn, vm1.uuid, INSTALLED_KEY, "true");
    assert_eq!(client.transact(&txn).await.unwrap().count(0), Some(1));
    let mut txn = Transaction::new(vswitch::DATABASE);
    vswitch::remove_interface_external_id(&mut txn, vm1.uuid, INSTALLED_KEY);
    client.transact(&txn).await.unwrap();
    apply_until(&mut replica, &mut events, |r| {
        !iface_named(r, "vm1")
            .unwrap()
            .external_ids
            .contains_key(INSTALLED_KEY)
    })
    .await;
    assert_eq!(
        iface_named(&replica, "vm1").unwrap().iface_id(),
        Some("lp1")
    );

    // Remove one tunnel port: Port and Interface rows are garbage-collected.
    let br = vswitch::bridge_by_name(&replica, "br-int")
        .unwrap()
        .unwrap();
    let tunnels = vswitch::owned_tunnels(&replica, &br, OWNER_KEY).unwrap();
    assert_eq!(tunnels.keys().collect::<Vec<_>>(), vec!["hv2", "hv3"]);
    let bound = vswitch::bound_interfaces(&replica).unwrap();
    assert_eq!(
        bound.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        vec!["vm1"]
    );
    let p3 = tunnels["hv3"].clone();
    let p3_ifaces = vswitch::interfaces_of(&replica, &p3).unwrap();
    assert_eq!(p3_ifaces[0].kind, "geneve");
    assert_eq!(vswitch::ports_of(&replica, &br).unwrap().len(), 4);
    let mut txn = Transaction::new(vswitch::DATABASE);
    vswitch::remove_port(&mut txn, br.uuid, p3.uuid);
    client.transact(&txn).await.unwrap();
    apply_until(&mut replica, &mut events, |r| {
        iface_named(r, "wt-00000003").is_none()
    })
    .await;
    assert!(vswitch::row::<Port>(&replica, &p3.uuid).is_none());

    // The replica equals what ovs-vsctl shows, column for column.
    assert_replica_matches_vsctl(
        server,
        &replica,
        "Open_vSwitch",
        &["bridges", "external_ids"],
    );
    assert_replica_matches_vsctl(
        server,
        &replica,
        "Bridge",
        &[
            "name",
            "ports",
            "controller",
            "fail_mode",
            "protocols",
            "datapath_type",
            "other_config",
        ],
    );
    assert_replica_matches_vsctl(
        server,
        &replica,
        "Port",
        &["name", "interfaces", "external_ids"],
    );
    assert_replica_matches_vsctl(
        server,
        &replica,
        "Interface",
        &["name", "type", "options", "external_ids"],
    );
    assert_replica_matches_vsctl(server, &replica, "Controller", &["target"]);
    for c in vswitch::rows::<ovsdb::vswitch::Controller>(&replica) {
        assert_eq!(c.unwrap().target, "tcp:127.0.0.1:6653");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_full_workflow() {
    let server = OvsdbServer::start();
    let (client, events) = connect(&server.unix_target(), ClientConfig::default())
        .await
        .unwrap();
    exercise_vswitch(&server, &client, events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_full_workflow() {
    let server = OvsdbServer::start();
    let (client, events) = connect(&server.tcp_target(), ClientConfig::default())
        .await
        .unwrap();
    exercise_vswitch(&server, &client, events).await;
}

/// ovsdb-server dials us, as after `ovs-vsctl set-manager tcp:CONTROLLER:6640`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_connects_to_our_listener() {
    let listener = Listener::bind("127.0.0.1:0", ClientConfig::default())
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = OvsdbServer::start_with(vec![format!("tcp:127.0.0.1:{port}")]);
    let ovsdb::Accepted {
        client,
        events,
        peer,
        local,
    } = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("ovsdb-server never connected")
        .unwrap();
    assert_eq!(local.port(), port, "the address ovsdb-server dialled");
    assert!(peer.ip().is_loopback());
    exercise_vswitch(&server, &client, events).await;
}

/// Sits idle for longer than three server probe intervals (ovsdb-server probes every 5 s
/// and drops a client that does not answer within another 5 s), with our own probes off so
/// that only the server's echoes keep the link up; then the connection still works and
/// updates still flow.
async fn idle_survives(server: &OvsdbServer, client: Client, mut events: Receiver<Event>) {
    let (mut replica, _) = monitored(&client).await;
    tokio::time::sleep(Duration::from_secs(16)).await;
    while let Ok(ev) = events.try_recv() {
        assert!(
            !matches!(ev, Event::Disconnected(_)),
            "dropped while idle: {ev:?}"
        );
    }
    let answered = client
        .stats()
        .echo_requests_answered
        .load(Ordering::Relaxed);
    assert!(answered >= 2, "server sent {answered} echoes in 16 s");
    client.echo().await.unwrap();
    server.vsctl(&["add-br", "br-after-idle"]);
    apply_until(&mut replica, &mut events, |r| {
        bridge_named(r, "br-after-idle").is_some()
    })
    .await;
}

fn no_own_probes() -> ClientConfig {
    ClientConfig {
        inactivity_probe: None,
        ..ClientConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_idle_longer_than_15s_is_kept_alive() {
    let server = OvsdbServer::start();
    let (client, events) = connect(&server.tcp_target(), no_own_probes())
        .await
        .unwrap();
    idle_survives(&server, client, events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_connection_idle_longer_than_15s_is_kept_alive() {
    let listener = Listener::bind("127.0.0.1:0", no_own_probes())
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = OvsdbServer::start_with(vec![format!("tcp:127.0.0.1:{port}")]);
    let ovsdb::Accepted { client, events, .. } = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    idle_survives(&server, client, events).await;
}

/// Our own keepalive: on a unix socket ovsdb-server does not probe, so the traffic during
/// this idle period is our echo and its reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_echo_probes_are_answered() {
    let server = OvsdbServer::start();
    let config = ClientConfig {
        inactivity_probe: Some(Duration::from_millis(300)),
        ..ClientConfig::default()
    };
    let (client, mut events) = connect(&server.unix_target(), config).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(client.stats().echo_probes_sent.load(Ordering::Relaxed) >= 2);
    assert!(events.try_recv().is_err(), "no disconnect expected");
    assert_eq!(client.list_dbs().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_transactions_report_the_operation() {
    let server = OvsdbServer::start();
    let (client, _events) = connect(&server.unix_target(), ClientConfig::default())
        .await
        .unwrap();
    server.vsctl(&["add-br", "br0"]);
    let root = server.vsctl(&["get", "Open_vSwitch", ".", "_uuid"]);
    let root: ovsdb::Uuid = root.trim().parse().unwrap();

    // A second bridge named br0 violates the Bridge name index at commit time: the error
    // is the extra element after the last operation.
    let mut txn = Transaction::new(vswitch::DATABASE);
    let br = txn.insert("Bridge", Row::from([("name".into(), Datum::scalar("br0"))]));
    txn.mutate(
        "Open_vSwitch",
        vec![Condition::uuid(root)],
        vec![ovsdb::Mutation::insert("bridges", br.datum())],
    );
    match client.transact(&txn).await {
        Err(ClientError::Transaction(TransactionError::OperationFailed {
            index,
            error,
            details,
            ..
        })) => {
            assert_eq!(index, 2);
            assert_eq!(error, "constraint violation");
            assert!(details.unwrap().contains("br0"));
        }
        other => panic!("expected constraint violation, got {other:?}"),
    }
    assert_eq!(server.vsctl(&["list-br"]).trim(), "br0");

    // An invalid enum value fails at its own operation, and nothing before it commits.
    let mut txn = Transaction::new(vswitch::DATABASE);
    txn.comment("weft test");
    txn.update(
        "Bridge",
        vec![Condition::eq("name", Datum::scalar("br0"))],
        Row::from([("fail_mode".into(), Datum::scalar("bogus"))]),
    );
    match client.transact(&txn).await {
        Err(ClientError::Transaction(TransactionError::OperationFailed {
            index: 1,
            op: "update",
            error,
            ..
        })) => {
            assert_eq!(error, "constraint violation")
        }
        other => panic!("expected constraint violation, got {other:?}"),
    }

    // select returns rows; abort fails the transaction at its index; commit is accepted.
    let mut txn = Transaction::new(vswitch::DATABASE);
    let sel = txn.select(
        "Bridge",
        vec![Condition::eq("name", Datum::scalar("br0"))],
        Some(&["name", "ports"]),
    );
    txn.commit(false);
    let out = client.transact(&txn).await.unwrap();
    let rows = out.rows(sel).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], Datum::scalar("br0"));
    let mut txn = Transaction::new(vswitch::DATABASE);
    txn.delete("Bridge", vec![]);
    txn.abort();
    match client.transact(&txn).await {
        Err(ClientError::Transaction(TransactionError::OperationFailed {
            index: 1,
            op: "abort",
            error,
            ..
        })) => assert_eq!(error, "aborted"),
        other => panic!("expected aborted, got {other:?}"),
    }
    assert_eq!(server.vsctl(&["list-br"]).trim(), "br0");

    // Unknown database: a JSON-RPC level error.
    let txn = Transaction::new("NoSuchDb");
    assert!(client.transact(&txn).await.is_err());
    assert!(matches!(
        client.get_schema("NoSuchDb").await,
        Err(ClientError::Rpc { .. })
    ));
    assert!(matches!(
        client
            .get_schema_shared("NoSuchDb", &ovsdb::SharedSchemas::new())
            .await,
        Err(ClientError::Rpc { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_steal_and_notifications() {
    let server = OvsdbServer::start();
    let (a, mut a_events) = connect(&server.unix_target(), ClientConfig::default())
        .await
        .unwrap();
    let (b, mut b_events) = connect(&server.unix_target(), ClientConfig::default())
        .await
        .unwrap();
    assert!(a.lock("weft").await.unwrap());
    assert!(!b.lock("weft").await.unwrap());
    // Lock asserted in a transaction holds for a.
    let mut txn = Transaction::new(vswitch::DATABASE);
    txn.assert_lock("weft");
    a.transact(&txn).await.unwrap();
    assert!(b.transact(&txn).await.is_err());
    a.unlock("weft").await.unwrap();
    let ev = tokio::time::timeout(WAIT, b_events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ev,
        Event::Locked {
            lock: "weft".into()
        }
    );
    assert!(a.steal("weft").await.unwrap());
    let ev = tokio::time::timeout(WAIT, b_events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ev,
        Event::Stolen {
            lock: "weft".into()
        }
    );
    assert!(a_events.try_recv().is_err());

    // monitor_cancel stops updates for that monitor.
    let (_replica, _) = monitored(&a).await;
    a.monitor_cancel(json!("m")).await.unwrap();
    server.vsctl(&["add-br", "br-quiet"]);
    a.echo().await.unwrap();
    assert!(
        a_events.try_recv().is_err(),
        "no update after monitor_cancel"
    );
    assert!(a.monitor_cancel(json!("m")).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_monitor_format_also_feeds_the_replica() {
    let server = OvsdbServer::start();
    let (client, mut events) = connect(&server.unix_target(), ClientConfig::default())
        .await
        .unwrap();
    let schema = client.get_schema(vswitch::DATABASE).await.unwrap();
    let mut replica = Replica::new(schema);
    let start = client
        .monitor(
            vswitch::DATABASE,
            json!(["legacy", 1]),
            &vswitch::monitor_requests(),
            UpdateFormat::Update,
        )
        .await
        .unwrap();
    replica.apply(start.format, &start.initial).unwrap();
    server.vsctl(&[
        "add-br",
        "br0",
        "--",
        "set",
        "Bridge",
        "br0",
        "external_ids:a=b",
    ]);
    apply_until(&mut replica, &mut events, |r| {
        bridge_named(r, "br0").is_some()
    })
    .await;
    server.vsctl(&[
        "set",
        "Bridge",
        "br0",
        "external_ids:a=c",
        "fail_mode=secure",
    ]);
    apply_until(&mut replica, &mut events, |r| {
        bridge_named(r, "br0").unwrap().external_ids["a"] == "c"
    })
    .await;
    assert_eq!(
        bridge_named(&replica, "br0").unwrap().fail_mode.as_deref(),
        Some("secure")
    );
    server.vsctl(&["del-br", "br0"]);
    apply_until(&mut replica, &mut events, |r| {
        bridge_named(r, "br0").is_none()
    })
    .await;
    assert_replica_matches_vsctl(&server, &replica, "Interface", &["name", "type"]);
    assert_eq!(replica.len("Port"), 0);
}

async fn next_event(events: &mut Receiver<SessionEvent>) -> SessionEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("no session event")
        .expect("session ended")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_server_restart() {
    let mut server = OvsdbServer::start();
    server.vsctl(&["add-br", "br-int"]);
    let config = ReconnectConfig {
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        ..ReconnectConfig::default()
    };
    let (session, mut events) = ReconnectingClient::spawn(
        &server.tcp_target(),
        vswitch::DATABASE,
        vswitch::monitor_requests(),
        config,
    )
    .unwrap();
    match next_event(&mut events).await {
        SessionEvent::Connected { changes } => assert!(
            changes
                .in_table("Bridge")
                .any(|c| c.kind() == ChangeKind::Inserted)
        ),
        other => panic!("{other:?}"),
    }
    assert!(
        session
            .with_replica(|r| bridge_named(r, "br-int").is_some())
            .unwrap()
    );

    // Stop the server, change the database offline, start it again.
    server.stop();
    match next_event(&mut events).await {
        SessionEvent::Disconnected { .. } => {}
        other => panic!("{other:?}"),
    }
    let out = server
        .ovs
        .tool("ovsdb-tool")
        .arg("transact")
        .arg(server.db())
        .arg(
            json!(["Open_vSwitch", {"op": "mutate", "table": "Open_vSwitch", "where": [],
                "mutations": [["external_ids", "insert", ["map", [["offline", "yes"]]]]]}])
            .to_string(),
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    server.restart();
    // Failed attempts while it was down are reported too; wait for the reconnection.
    let changes = loop {
        match next_event(&mut events).await {
            SessionEvent::Connected { changes } => break changes,
            SessionEvent::Disconnected { .. } => continue,
            other => panic!("{other:?}"),
        }
    };
    let root_change: Vec<_> = changes.in_table("Open_vSwitch").collect();
    assert_eq!(root_change.len(), 1, "{changes:?}");
    assert_eq!(root_change[0].kind(), ChangeKind::Modified);
    let root = session
        .with_replica(|r| vswitch::root(r).unwrap().unwrap())
        .unwrap();
    assert_eq!(root.external_id("offline"), Some("yes"));

    // The new connection works for transactions, and its monitor feeds the replica.
    let client = session.connected().await.unwrap();
    let mut txn = Transaction::new(vswitch::DATABASE);
    vswitch::set_map_key(
        &mut txn,
        "Open_vSwitch",
        root.uuid,
        "external_ids",
        "after",
        "restart",
    );
    client.transact(&txn).await.unwrap();
    loop {
        match next_event(&mut events).await {
            SessionEvent::Changes(c) if !c.is_empty() => break,
            _ => continue,
        }
    }
    let root = session
        .with_replica(|r| vswitch::root(r).unwrap().unwrap())
        .unwrap();
    assert_eq!(root.external_id("after"), Some("restart"));
    let _ = Interface::TABLE;
}

/// `update2` diffs for optional, set and map columns, changed by ovs-vsctl step by step:
/// after every step the replica equals what ovs-vsctl shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update2_diffs_track_ovs_vsctl_changes() {
    let server = OvsdbServer::start();
    let (client, mut events) = connect(&server.unix_target(), ClientConfig::default())
        .await
        .unwrap();
    let (mut replica, format) = monitored(&client).await;
    assert_eq!(format, UpdateFormat::Update2);
    let columns = [
        "name",
        "fail_mode",
        "protocols",
        "external_ids",
        "other_config",
        "ports",
        "datapath_type",
    ];
    let steps: [&[&str]; 9] = [
        &["add-br", "br0"],
        &["set-fail-mode", "br0", "secure"],
        &["set-fail-mode", "br0", "standalone"],
        &["del-fail-mode", "br0"],
        &[
            "set",
            "Bridge",
            "br0",
            "protocols=OpenFlow10,OpenFlow13",
            "external_ids:a=1",
            "external_ids:b=2",
        ],
        &[
            "set",
            "Bridge",
            "br0",
            "protocols=OpenFlow13",
            "external_ids:a=9",
        ],
        &[
            "remove",
            "Bridge",
            "br0",
            "external_ids",
            "b",
            "--",
            "add-port",
            "br0",
            "p1",
        ],
        &[
            "set",
            "Bridge",
            "br0",
            "datapath_type=netdev",
            "other_config:x=y",
        ],
        &["del-port", "br0", "p1"],
    ];
    for step in steps {
        let before = client.stats().messages_received.load(Ordering::Relaxed);
        server.vsctl(step);
        // Every step changes the Bridge row: wait for one update, then compare.
        let vs = server.vsctl_table("Bridge", &columns);
        apply_until(&mut replica, &mut events, |r| {
            let b = bridge_named(r, "br0");
            b.is_some_and(|b| {
                let want = &vs[&b.uuid.to_string()];
                columns.iter().all(|c| {
                    let expected = Datum::from_json(&want[*c]).unwrap();
                    let got = r
                        .row("Bridge", &b.uuid)
                        .unwrap()
                        .get(*c)
                        .cloned()
                        .unwrap_or_default();
                    got == expected || (got.is_empty() && expected.is_empty())
                })
            })
        })
        .await;
        assert!(client.stats().messages_received.load(Ordering::Relaxed) > before);
        assert_replica_matches_vsctl(&server, &replica, "Bridge", &columns);
        assert_replica_matches_vsctl(&server, &replica, "Port", &["name", "interfaces"]);
        assert_replica_matches_vsctl(&server, &replica, "Interface", &["name", "type"]);
    }
    let b = bridge_named(&replica, "br0").unwrap();
    assert_eq!(b.fail_mode, None);
    assert_eq!(b.protocols, vec!["OpenFlow13".to_owned()]);
    assert_eq!(b.external_ids, BTreeMap::from([("a".into(), "9".into())]));
    assert_eq!(b.datapath_type.as_deref(), Some("netdev"));
}

/// `monitor_cond` with a `where` clause: only matching rows are sent, and rows that start
/// or stop matching arrive as inserts and deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_cond_where_filters_rows() {
    let server = OvsdbServer::start();
    let (client, mut events) = connect(&server.unix_target(), ClientConfig::default())
        .await
        .unwrap();
    server.vsctl(&["add-br", "br0", "--", "add-port", "br0", "p0"]);
    let schema = client.get_schema(vswitch::DATABASE).await.unwrap();
    let mut replica = Replica::new(schema);
    let mut req = ovsdb::MonitorRequest::table("Interface").columns(&["name", "type", "options"]);
    req.conditions = Some(vec![Condition::eq("type", Datum::scalar("geneve"))]);
    replica.set_monitored(std::slice::from_ref(&req));
    let start = client
        .monitor(
            vswitch::DATABASE,
            json!("tunnels"),
            &[req],
            UpdateFormat::Update2,
        )
        .await
        .unwrap();
    replica.apply(start.format, &start.initial).unwrap();
    assert_eq!(replica.len("Interface"), 0, "br0 and p0 are not geneve");
    server.vsctl(&[
        "add-port",
        "br0",
        "t1",
        "--",
        "set",
        "Interface",
        "t1",
        "type=geneve",
        "options:remote_ip=192.0.2.9",
    ]);
    apply_until(&mut replica, &mut events, |r| r.len("Interface") == 1).await;
    let t1 = iface_named(&replica, "t1").unwrap();
    assert_eq!(t1.options["remote_ip"], "192.0.2.9");
    let row = replica.row("Interface", &t1.uuid).unwrap();
    assert_eq!(
        row.keys().map(|k| &**k).collect::<Vec<_>>(),
        vec!["name", "options", "type"]
    );
    // t1 stops matching: it leaves the replica although the row still exists.
    server.vsctl(&["set", "Interface", "t1", "type=vxlan"]);
    let changes = apply_until(&mut replica, &mut events, |r| r.len("Interface") == 0).await;
    assert_eq!(changes.last().unwrap().kind(), ChangeKind::Deleted);
}

/// The controller's tunnel reconciliation: plan with `sync_tunnels`, send, re-plan until
/// nothing is left to do; ports the controller does not own survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_tunnels_converges() {
    let server = OvsdbServer::start();
    let (client, mut events) = connect(&server.tcp_target(), ClientConfig::default())
        .await
        .unwrap();
    server.vsctl(&["add-br", "br-int", "--", "add-port", "br-int", "vm1"]);
    let (mut replica, _) = monitored(&client).await;
    let rounds: [Vec<TunnelPort>; 3] = [
        vec![
            tunnel("wt-a", "192.0.2.10", "hv-a"),
            tunnel("wt-b", "192.0.2.11", "hv-b"),
        ],
        vec![
            TunnelPort {
                kind: "vxlan".into(),
                ..tunnel("wt-a", "192.0.2.20", "hv-a")
            },
            tunnel("wt-c", "192.0.2.12", "hv-c"),
        ],
        vec![],
    ];
    for desired in rounds {
        let br = vswitch::bridge_by_name(&replica, "br-int")
            .unwrap()
            .unwrap();
        let txn = vswitch::sync_tunnels(&replica, &br, OWNER_KEY, &desired)
            .unwrap()
            .unwrap();
        client.transact(&txn).await.unwrap();
        let names: Vec<String> = desired.iter().map(|d| d.name.clone()).collect();
        apply_until(&mut replica, &mut events, |r| {
            let br = vswitch::bridge_by_name(r, "br-int").unwrap().unwrap();
            let owned = vswitch::owned_tunnels(r, &br, OWNER_KEY).unwrap();
            let mut have: Vec<String> = owned.values().map(|p| p.name.clone()).collect();
            have.sort();
            have == names
                && vswitch::sync_tunnels(r, &br, OWNER_KEY, &desired)
                    .unwrap()
                    .is_none()
        })
        .await;
        let mut ports: Vec<String> = server
            .vsctl(&["list-ports", "br-int"])
            .lines()
            .map(str::to_owned)
            .collect();
        ports.sort();
        let mut expected = names.clone();
        expected.push("vm1".into());
        expected.sort();
        assert_eq!(ports, expected);
    }
}

/// Waits until someone else's change to br-int shows, lets `ensure_bridge` repair it,
/// and waits until the repair shows.
async fn repair(
    client: &Client,
    replica: &mut Replica,
    events: &mut Receiver<Event>,
    root: ovsdb::Uuid,
    spec: &vswitch::BridgeSpec,
) {
    apply_until(replica, events, |r| !in_sync(r, root, spec)).await;
    let txn = vswitch::ensure_bridge(replica, root, spec)
        .unwrap()
        .unwrap();
    client.transact(&txn).await.unwrap();
    apply_until(replica, events, |r| in_sync(r, root, spec)).await;
}

/// br-int as the replica shows it matches `spec`.
fn in_sync(r: &Replica, root: ovsdb::Uuid, spec: &vswitch::BridgeSpec) -> bool {
    vswitch::root(r).is_some_and(|_| vswitch::ensure_bridge(r, root, spec).unwrap().is_none())
}

/// `ensure_bridge` creates br-int, then does nothing while it matches, and repairs the
/// settings someone else changed while keeping keys it does not own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_bridge_creates_then_repairs() {
    let server = OvsdbServer::start();
    let (client, mut events) = connect(&server.unix_target(), ClientConfig::default())
        .await
        .unwrap();
    let (mut replica, _) = monitored(&client).await;
    let root = vswitch::root(&replica).unwrap().unwrap().uuid;
    let spec = BridgeSpec {
        name: "br-int".into(),
        fail_mode: Some("secure".into()),
        protocols: vec!["OpenFlow13".into()],
        datapath_type: None,
        controller: Some("tcp:127.0.0.1:6653".into()),
        controller_max_backoff: Some(1000),
        controller_inactivity_probe: Some(30000),
        other_config: BTreeMap::from([("disable-in-band".into(), "true".into())]),
        external_ids: BTreeMap::new(),
    };
    let txn = vswitch::ensure_bridge(&replica, root, &spec)
        .unwrap()
        .unwrap();
    client.transact(&txn).await.unwrap();
    apply_until(&mut replica, &mut events, |r| in_sync(r, root, &spec)).await;

    server.vsctl(&[
        "set-fail-mode",
        "br-int",
        "standalone",
        "--",
        "set",
        "Bridge",
        "br-int",
        "other_config:keep=me",
        "other_config:disable-in-band=false",
        "--",
        "set-controller",
        "br-int",
        "tcp:127.0.0.1:9999",
    ]);
    repair(&client, &mut replica, &mut events, root, &spec).await;
    assert_eq!(server.vsctl(&["get-fail-mode", "br-int"]).trim(), "secure");
    assert_eq!(
        server.vsctl(&["get-controller", "br-int"]).trim(),
        "tcp:127.0.0.1:6653"
    );
    assert_eq!(
        server
            .vsctl(&["get", "Bridge", "br-int", "other_config:keep"])
            .trim(),
        "me"
    );
    assert_eq!(
        server
            .vsctl(&["list", "Controller"])
            .matches("_uuid")
            .count(),
        1
    );
    assert_eq!(
        server
            .vsctl(&["get", "Controller", "br-int", "max_backoff"])
            .trim(),
        "1000"
    );
    // A Controller row with another max_backoff (e.g. written before Weft set it) is
    // brought back too, and so is one with another inactivity_probe.
    for (column, was) in [("max_backoff", "8000"), ("inactivity_probe", "5000")] {
        server.vsctl(&["set", "Controller", "br-int", &format!("{column}={was}")]);
        repair(&client, &mut replica, &mut events, root, &spec).await;
        for (column, want) in [("max_backoff", "1000"), ("inactivity_probe", "30000")] {
            assert_eq!(
                server
                    .vsctl(&["get", "Controller", "br-int", column])
                    .trim(),
                want,
                "{column}"
            );
        }
    } // The target's other spelling (a controller asking the switch to dial it again) is
    // the same controller: nothing to repair.
    server.vsctl(&[
        "set",
        "Controller",
        "br-int",
        "target=\"tcp:127.0.0.1:06653\"",
    ]);
    apply_until(&mut replica, &mut events, |r| {
        vswitch::cached_bridge_by_name(r, "br-int")
            .and_then(Result::ok)
            .and_then(|b| b.controller.first().copied())
            .and_then(|u| vswitch::cached_row::<vswitch::Controller>(r, &u))
            .and_then(Result::ok)
            .is_some_and(|c| c.target.ends_with(":06653"))
    })
    .await;
    assert!(in_sync(&replica, root, &spec));
    // A repair of something else keeps that spelling (another string would be another
    // controller to vswitchd, which would drop the connection).
    server.vsctl(&["set-fail-mode", "br-int", "standalone"]);
    repair(&client, &mut replica, &mut events, root, &spec).await;
    assert_eq!(
        server.vsctl(&["get-controller", "br-int"]).trim(),
        "tcp:127.0.0.1:06653"
    );
}
