//! The JSON-RPC API end to end against an in-process weftd, over HTTP and WebSocket.

mod common;

use std::time::Duration;

use common::{
    InProcess, assert_each_fails_naming_its_field, call, everything, http_client, next_events,
    subscribe_events, ws_client,
};
use jsonrpsee::core::client::{ClientT, SubscriptionClientT};
use jsonrpsee::core::params::ObjectParams;
use serde_json::{Value, json};
use weft::binding::PortBinding;
use weft::observed::TransportNode;

async fn revision<C: ClientT>(c: &C) -> u64 {
    call(c, "system_status", json!({})).await.unwrap()["revision"]
        .as_u64()
        .unwrap()
}

async fn seed<C: ClientT>(c: &C) {
    call(c, "switch_create", json!({"name": "web", "vni": 5001}))
        .await
        .unwrap();
    call(c, "switch_create", json!({"name": "db"}))
        .await
        .unwrap();
    call(
        c,
        "port_create",
        json!({"switch": "web", "name": "vm1", "mac": "02:00:00:00:00:01", "ips": ["10.0.0.1"]}),
    )
    .await
    .unwrap();
    call(
        c,
        "acl_create",
        json!({"port": "vm1", "direction": "egress", "priority": 100, "action": "allow-related",
               "protocol": "tcp", "remote_cidr": "10.0.0.0/24", "port_min": 80, "port_max": 80}),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn every_method_happy_path_over_http() {
    let srv = InProcess::start().await;
    let c = srv.http();
    assert_eq!(revision(&c).await, 0);

    let web = call(
        &c,
        "switch_create",
        json!({"name": "web", "vni": 5001, "description": "front"}),
    )
    .await
    .unwrap();
    assert_eq!(web["vni"], 5001);
    assert_eq!(web["description"], "front");
    let db = call(&c, "switch_create", json!({"name": "db"}))
        .await
        .unwrap();
    assert_eq!(db["vni"], 1, "lowest free VNI is allocated");
    let id = web["id"].as_str().unwrap();
    assert_eq!(
        call(&c, "switch_get", json!({"switch": id})).await.unwrap()["name"],
        "web"
    );
    assert_eq!(
        call(&c, "switch_get", json!({"switch": "web"}))
            .await
            .unwrap()["id"],
        id
    );
    let list = call(&c, "switch_list", json!({})).await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["name"], "db");

    let p1 = call(
        &c,
        "port_create",
        json!({"switch": "web", "name": "vm1", "mac": "02:00:00:00:00:01", "ips": ["10.0.0.1", "fd00::1"]}),
    )
    .await
    .unwrap();
    assert_eq!(p1["port_security"], true);
    assert_eq!(p1["key"], 1);
    assert_eq!(p1["binding"], Value::Null);
    assert_eq!(p1["up"], false);
    assert_eq!(p1["switch_name"], "web");
    let p2 = call(
        &c,
        "port_create",
        json!({"switch": id, "name": "vm2", "mac": "02:00:00:00:00:02", "port_security": false}),
    )
    .await
    .unwrap();
    assert_eq!(p2["key"], 2);
    assert_ne!(p1["zone"], p2["zone"]);
    // Same MAC on another switch is allowed.
    call(
        &c,
        "port_create",
        json!({"switch": "db", "name": "vm3", "mac": "02:00:00:00:00:01"}),
    )
    .await
    .unwrap();
    let pid = p1["id"].as_str().unwrap();
    assert_eq!(
        call(&c, "port_get", json!({"port": pid})).await.unwrap()["name"],
        "vm1"
    );
    assert_eq!(
        call(&c, "port_get", json!({"port": "vm1"})).await.unwrap()["id"],
        pid
    );
    assert_eq!(
        call(&c, "port_list", json!({}))
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        call(&c, "port_list", json!({"switch": "web"}))
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let upd = call(
        &c,
        "port_update",
        json!({"port": "vm1", "mac": "02:00:00:00:00:11", "ips": ["10.0.0.9"], "port_security": false}),
    )
    .await
    .unwrap();
    assert_eq!(upd["mac"], "02:00:00:00:00:11");
    assert_eq!(upd["ips"], json!(["10.0.0.9"]));
    assert_eq!(upd["port_security"], false);
    assert_eq!(upd["key"], p1["key"], "update keeps the allocated key");
    assert_eq!(upd["zone"], p1["zone"], "update keeps the allocated zone");

    let acl = call(
        &c,
        "acl_create",
        json!({"port": "vm1", "direction": "egress", "priority": 100, "action": "allow-related",
               "protocol": "tcp", "remote_cidr": "10.0.0.0/24", "port_min": 80, "port_max": 80}),
    )
    .await
    .unwrap();
    assert_eq!(acl["ethertype"], "ipv4");
    assert_eq!(acl["port_name"], "vm1");
    let acl6 = call(
        &c,
        "acl_create",
        json!({"port": pid, "direction": "ingress", "priority": 5, "action": "allow",
               "protocol": 58, "ethertype": "ipv6", "remote_cidr": "fd00::/64"}),
    )
    .await
    .unwrap();
    assert_eq!(
        acl6["protocol"], "icmp6",
        "protocol numbers are normalised to names"
    );
    call(&c, "acl_create", json!({"port": "vm2", "direction": "ingress", "priority": 1, "action": "drop", "protocol": 47}))
        .await
        .unwrap();
    assert_eq!(
        call(&c, "acl_list", json!({}))
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        call(&c, "acl_list", json!({"port": "vm1"}))
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let del = call(&c, "acl_delete", json!({"acl": acl6["id"]}))
        .await
        .unwrap();
    assert_eq!(del["acls"], json!([acl6["id"]]));

    // Deleting a port deletes its ACLs.
    let del = call(&c, "port_delete", json!({"port": "vm1"}))
        .await
        .unwrap();
    assert_eq!(del["ports"], json!([pid]));
    assert_eq!(del["acls"], json!([acl["id"]]));
    assert_eq!(
        call(&c, "acl_list", json!({}))
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Cascade deletes ports and their ACLs.
    let del = call(
        &c,
        "switch_delete",
        json!({"switch": "web", "cascade": true}),
    )
    .await
    .unwrap();
    assert_eq!(del["ports"].as_array().unwrap().len(), 1);
    assert_eq!(del["acls"].as_array().unwrap().len(), 1);
    call(&c, "port_delete", json!({"port": "vm3"}))
        .await
        .unwrap();
    let del = call(&c, "switch_delete", json!({"switch": "db"}))
        .await
        .unwrap();
    assert_eq!(del["switches"], json!([db["id"]]));

    assert_eq!(call(&c, "node_list", json!({})).await.unwrap(), json!([]));
    assert_eq!(
        call(&c, "node_get", json!({"node": "hv1"}))
            .await
            .unwrap_err()
            .0,
        -32004
    );
    assert_eq!(
        call(&c, "node_flows", json!({"node": "hv1"}))
            .await
            .unwrap_err()
            .0,
        -32004
    );

    let status = call(&c, "system_status", json!({})).await.unwrap();
    assert_eq!(status["switches"], 0);
    assert_eq!(status["ports"], 0);
    assert_eq!(status["acls"], 0);
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert!(status["store"].as_str().unwrap().ends_with("weft.redb"));
    assert!(status["uptime_seconds"].is_u64());
    // Every successful write bumped the revision by one: 2 switches, 3 ports, 1 update,
    // 3 acls, 1 acl delete, 1 port delete, 1 cascade delete, 1 port delete, 1 switch delete.
    assert_eq!(status["revision"], 14);

    // Without --etcd: this instance alone, owning every node, and no etcd.
    let cluster = call(&c, "cluster_status", json!({})).await.unwrap();
    assert_eq!(cluster["etcd"], Value::Null);
    let instances = cluster["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 1, "{cluster}");
    assert_eq!(instances[0]["id"], cluster["instance"]);
    assert_eq!(instances[0]["alive"], true);
    assert_eq!(instances[0]["api"], srv.addr.to_string());
}

#[tokio::test]
async fn trace_validates_then_reports_unbound_port_unavailable() {
    let srv = InProcess::start().await;
    let c = srv.http();
    seed(&c).await;
    let err = call(
        &c,
        "trace",
        json!({"port": "vm1", "packet": {"eth_dst": "02:00:00:00:00:02", "ip_src": "10.0.0.1",
               "ip_dst": "10.0.0.2", "ip_proto": 6, "tp_dst": 80}}),
    )
    .await
    .unwrap_err();
    // No hypervisor here: vm1 is not plugged anywhere, so there is no pipeline to walk.
    assert_eq!(err.0, -32011, "{err:?}");
    assert!(err.1.contains("not bound"), "{err:?}");
    let err = call(
        &c,
        "trace",
        json!({"port": "nope", "packet": {"eth_dst": "02:00:00:00:00:02"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.0, -32004);
    for (packet, field) in [
        (json!({}), "packet.eth_dst"),
        (json!({"eth_dst": "zz"}), "packet.eth_dst"),
        (
            json!({"eth_dst": "02:00:00:00:00:02", "ip_src": "1.2.3"}),
            "packet.ip_src",
        ),
        (
            json!({"eth_dst": "02:00:00:00:00:02", "tp_dst": 70000}),
            "packet.tp_dst",
        ),
        (
            json!({"eth_dst": "02:00:00:00:00:02", "colour": 1}),
            "packet.colour",
        ),
        (json!("x"), "packet"),
    ] {
        let err = call(&c, "trace", json!({"port": "vm1", "packet": packet}))
            .await
            .unwrap_err();
        assert_eq!(err.0, -32602, "{packet}: {err:?}");
        assert_eq!(err.2.unwrap()["field"], field);
    }
}

/// Every parameter of every write (and of the reads that take any) with bad input: the
/// right code, the field named in message and data, and nothing changed.
#[tokio::test]
async fn bad_input_for_every_parameter() {
    let srv = InProcess::start().await;
    let c = srv.http();
    seed(&c).await;
    let long = "a".repeat(65);
    let acl = |extra: Value| {
        let mut base =
            json!({"port": "vm1", "direction": "ingress", "priority": 7, "action": "allow"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        base
    };
    let cases: Vec<(&str, Value, i32, &str)> = vec![
        // switch_create
        ("switch_create", json!({}), -32602, "name"),
        ("switch_create", json!({"name": 5}), -32602, "name"),
        ("switch_create", json!({"name": ""}), -32602, "name"),
        ("switch_create", json!({"name": long}), -32602, "name"),
        ("switch_create", json!({"name": "a b"}), -32602, "name"),
        (
            "switch_create",
            json!({"name": "67e55044-10b1-426f-9247-bb680e5fe0c8"}),
            -32602,
            "name",
        ),
        ("switch_create", json!({"name": "web"}), -32009, "name"),
        (
            "switch_create",
            json!({"name": "x", "vni": 0}),
            -32602,
            "vni",
        ),
        (
            "switch_create",
            json!({"name": "x", "vni": 16_777_216}),
            -32602,
            "vni",
        ),
        (
            "switch_create",
            json!({"name": "x", "vni": -1}),
            -32602,
            "vni",
        ),
        (
            "switch_create",
            json!({"name": "x", "vni": "5"}),
            -32602,
            "vni",
        ),
        (
            "switch_create",
            json!({"name": "x", "vni": 5001}),
            -32009,
            "vni",
        ),
        (
            "switch_create",
            json!({"name": "x", "description": 1}),
            -32602,
            "description",
        ),
        (
            "switch_create",
            json!({"name": "x", "description": "d".repeat(1025)}),
            -32602,
            "description",
        ),
        (
            "switch_create",
            json!({"name": "x", "vin": 3}),
            -32602,
            "vin",
        ),
        (
            "switch_create",
            json!({"name": "x", "provider": "physnet1"}),
            -32602,
            "provider",
        ),
        (
            "switch_create",
            json!({"name": "x", "provider": {}}),
            -32602,
            "provider.physnet",
        ),
        (
            "switch_create",
            json!({"name": "x", "provider": {"physnet": 1}}),
            -32602,
            "provider.physnet",
        ),
        (
            "switch_create",
            json!({"name": "x", "provider": {"physnet": "a b"}}),
            -32602,
            "provider.physnet",
        ),
        (
            "switch_create",
            json!({"name": "x", "provider": {"physnet": "a:b"}}),
            -32602,
            "provider.physnet",
        ),
        (
            "switch_create",
            json!({"name": "x", "provider": {"physnet": "p", "vlan": 0}}),
            -32602,
            "provider.vlan",
        ),
        (
            "switch_create",
            json!({"name": "x", "provider": {"physnet": "p", "vlan": 4095}}),
            -32602,
            "provider.vlan",
        ),
        (
            "switch_create",
            json!({"name": "x", "provider": {"physnet": "p", "vlan": "7"}}),
            -32602,
            "provider.vlan",
        ),
        (
            "switch_create",
            json!({"name": "x", "provider": {"physnet": "p", "mtu": 1500}}),
            -32602,
            "provider.mtu",
        ),
        // switch_get / switch_delete / switch_list
        ("switch_get", json!({}), -32602, "switch"),
        ("switch_get", json!({"switch": 1}), -32602, "switch"),
        ("switch_get", json!({"switch": "nope"}), -32004, "switch"),
        (
            "switch_get",
            json!({"switch": "67e55044-10b1-426f-9247-bb680e5fe0c8"}),
            -32004,
            "switch",
        ),
        ("switch_list", json!({"x": 1}), -32602, "x"),
        ("switch_delete", json!({}), -32602, "switch"),
        ("switch_delete", json!({"switch": "nope"}), -32004, "switch"),
        ("switch_delete", json!({"switch": "web"}), -32009, "switch"),
        (
            "switch_delete",
            json!({"switch": "web", "cascade": "yes"}),
            -32602,
            "cascade",
        ),
        // port_create
        (
            "port_create",
            json!({"name": "p", "mac": "02:00:00:00:00:09"}),
            -32602,
            "switch",
        ),
        (
            "port_create",
            json!({"switch": "nope", "name": "p", "mac": "02:00:00:00:00:09"}),
            -32004,
            "switch",
        ),
        (
            "port_create",
            json!({"switch": "web", "mac": "02:00:00:00:00:09"}),
            -32602,
            "name",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "bad name", "mac": "02:00:00:00:00:09"}),
            -32602,
            "name",
        ),
        (
            "port_create",
            json!({"switch": "db", "name": "vm1", "mac": "02:00:00:00:00:09"}),
            -32009,
            "name",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "p"}),
            -32602,
            "mac",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "p", "mac": "02:00:00:00:00"}),
            -32602,
            "mac",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "p", "mac": "02:00:00:00:00:0g"}),
            -32602,
            "mac",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "p", "mac": "02:00:00:00:00:01:02"}),
            -32602,
            "mac",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "p", "mac": "01:00:5e:00:00:01"}),
            -32602,
            "mac",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "p", "mac": "ff:ff:ff:ff:ff:ff"}),
            -32602,
            "mac",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "p", "mac": "00:00:00:00:00:00"}),
            -32602,
            "mac",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "p", "mac": "02:00:00:00:00:01"}),
            -32009,
            "mac",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "p", "mac": "02:00:00:00:00:09", "ips": "10.0.0.5"}),
            -32602,
            "ips",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "p", "mac": "02:00:00:00:00:09", "ips": ["10.0.0.300"]}),
            -32602,
            "ips",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "p", "mac": "02:00:00:00:00:09", "ips": ["224.0.0.1"]}),
            -32602,
            "ips",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "p", "mac": "02:00:00:00:00:09", "ips": ["10.0.0.5", "10.0.0.5"]}),
            -32602,
            "ips",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "p", "mac": "02:00:00:00:00:09", "ips": [5]}),
            -32602,
            "ips",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "p", "mac": "02:00:00:00:00:09", "port_security": 1}),
            -32602,
            "port_security",
        ),
        // port_get / port_list / port_update / port_delete
        ("port_get", json!({}), -32602, "port"),
        ("port_get", json!({"port": "nope"}), -32004, "port"),
        ("port_list", json!({"switch": "nope"}), -32004, "switch"),
        ("port_list", json!({"switch": []}), -32602, "switch"),
        (
            "port_update",
            json!({"mac": "02:00:00:00:00:09"}),
            -32602,
            "port",
        ),
        (
            "port_update",
            json!({"port": "nope", "mac": "02:00:00:00:00:09"}),
            -32004,
            "port",
        ),
        ("port_update", json!({"port": "vm1"}), -32602, "mac"),
        (
            "port_update",
            json!({"port": "vm1", "mac": "xx"}),
            -32602,
            "mac",
        ),
        (
            "port_update",
            json!({"port": "vm1", "mac": "03:00:00:00:00:01"}),
            -32602,
            "mac",
        ),
        (
            "port_update",
            json!({"port": "vm1", "ips": ["::"]}),
            -32602,
            "ips",
        ),
        (
            "port_update",
            json!({"port": "vm1", "port_security": "no"}),
            -32602,
            "port_security",
        ),
        (
            "port_update",
            json!({"port": "vm1", "switch": "db"}),
            -32602,
            "switch",
        ),
        ("port_delete", json!({}), -32602, "port"),
        ("port_delete", json!({"port": "nope"}), -32004, "port"),
        // acl_create
        ("acl_create", acl(json!({"port": null})), -32602, "port"),
        ("acl_create", acl(json!({"port": "nope"})), -32004, "port"),
        (
            "acl_create",
            acl(json!({"direction": null})),
            -32602,
            "direction",
        ),
        (
            "acl_create",
            acl(json!({"direction": "in"})),
            -32602,
            "direction",
        ),
        (
            "acl_create",
            acl(json!({"priority": null})),
            -32602,
            "priority",
        ),
        (
            "acl_create",
            acl(json!({"priority": 32768})),
            -32602,
            "priority",
        ),
        (
            "acl_create",
            acl(json!({"priority": "1"})),
            -32602,
            "priority",
        ),
        (
            "acl_create",
            acl(json!({"priority": 100, "direction": "egress"})),
            -32009,
            "priority",
        ),
        ("acl_create", acl(json!({"action": null})), -32602, "action"),
        (
            "acl_create",
            acl(json!({"action": "accept"})),
            -32602,
            "action",
        ),
        (
            "acl_create",
            acl(json!({"protocol": "sctp"})),
            -32602,
            "protocol",
        ),
        (
            "acl_create",
            acl(json!({"protocol": 256})),
            -32602,
            "protocol",
        ),
        (
            "acl_create",
            acl(json!({"protocol": "icmp", "ethertype": "ipv6"})),
            -32602,
            "protocol",
        ),
        (
            "acl_create",
            acl(json!({"protocol": "icmp6"})),
            -32602,
            "protocol",
        ),
        (
            "acl_create",
            acl(json!({"ethertype": "arp"})),
            -32602,
            "ethertype",
        ),
        (
            "acl_create",
            acl(json!({"remote_cidr": "10.0.0.0/33"})),
            -32602,
            "remote_cidr",
        ),
        (
            "acl_create",
            acl(json!({"remote_cidr": "fd00::/64"})),
            -32602,
            "remote_cidr",
        ),
        (
            "acl_create",
            acl(json!({"remote_cidr": "10.0.0.0/8", "ethertype": "ipv6"})),
            -32602,
            "remote_cidr",
        ),
        (
            "acl_create",
            acl(json!({"port_min": 80})),
            -32602,
            "port_min",
        ),
        (
            "acl_create",
            acl(json!({"protocol": "icmp", "port_min": 80})),
            -32602,
            "port_min",
        ),
        (
            "acl_create",
            acl(json!({"protocol": "tcp", "port_min": 90, "port_max": 80})),
            -32602,
            "port_min",
        ),
        (
            "acl_create",
            acl(json!({"protocol": "tcp", "port_min": 65536})),
            -32602,
            "port_min",
        ),
        (
            "acl_create",
            acl(json!({"protocol": "tcp", "port_min": 1, "port_max": 65536})),
            -32602,
            "port_max",
        ),
        (
            "acl_create",
            acl(json!({"protocol": "tcp", "port_max": 80})),
            -32602,
            "port_min",
        ),
        // acl_list / acl_delete
        ("acl_list", json!({"port": "nope"}), -32004, "port"),
        ("acl_delete", json!({}), -32602, "acl"),
        ("acl_delete", json!({"acl": "not-a-uuid"}), -32602, "acl"),
        (
            "acl_delete",
            json!({"acl": "67e55044-10b1-426f-9247-bb680e5fe0c8"}),
            -32004,
            "acl",
        ),
        // node_*, trace, status
        ("node_list", json!({"all": true}), -32602, "all"),
        ("node_get", json!({}), -32602, "node"),
        ("node_flows", json!({"node": 3}), -32602, "node"),
        (
            "trace",
            json!({"packet": {"eth_dst": "02:00:00:00:00:02"}}),
            -32602,
            "port",
        ),
        ("trace", json!({"port": "vm1"}), -32602, "packet"),
        ("system_status", json!({"verbose": true}), -32602, "verbose"),
    ];
    assert_each_fails_naming_its_field(&c, &cases).await;

    // Positional parameters are refused with a clear message.
    let err = c
        .request::<Value, _>("switch_create", jsonrpsee::rpc_params!["x"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("by name"), "{err}");
    eprintln!("bad-input cases checked: {}", cases.len());
}

#[tokio::test]
async fn websocket_calls_and_events() {
    let srv = InProcess::start().await;
    let ws = ws_client(srv.addr, None).await.unwrap();
    let mut sub = subscribe_events(&ws).await;
    let sw = call(&ws, "switch_create", json!({"name": "web"}))
        .await
        .unwrap();
    let port = call(
        &ws,
        "port_create",
        json!({"switch": "web", "name": "vm1", "mac": "02:00:00:00:00:01"}),
    )
    .await
    .unwrap();
    call(
        &ws,
        "port_update",
        json!({"port": "vm1", "ips": ["10.0.0.1"]}),
    )
    .await
    .unwrap();
    call(&ws, "port_delete", json!({"port": "vm1"}))
        .await
        .unwrap();
    let got = next_events(&mut sub, 4).await;
    assert_eq!(
        got,
        vec![
            json!({"type": "config_changed", "kind": "switch", "id": sw["id"], "op": "created", "revision": 1}),
            json!({"type": "config_changed", "kind": "port", "id": port["id"], "op": "created", "revision": 2}),
            json!({"type": "config_changed", "kind": "port", "id": port["id"], "op": "updated", "revision": 3}),
            json!({"type": "config_changed", "kind": "port", "id": port["id"], "op": "deleted", "revision": 4}),
        ]
    );
    // A subscription with unknown parameters is refused like any call.
    let err = ws
        .subscribe::<Value, _>(
            "events_subscribe",
            common::obj(json!({"kind": "port"})),
            "events_unsubscribe",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("kind"), "{err}");
    // Errors over WebSocket look the same as over HTTP.
    let err = call(&ws, "switch_create", json!({"name": "web"}))
        .await
        .unwrap_err();
    assert_eq!(err.0, -32009);

    // Observed state fed by the (future) southbound shows up in the API and the stream.
    let obs = srv.daemon().controller.observed().clone();
    let p = call(
        &ws,
        "port_create",
        json!({"switch": "web", "name": "vm2", "mac": "02:00:00:00:00:02"}),
    )
    .await
    .unwrap();
    let pid: uuid::Uuid = p["id"].as_str().unwrap().parse().unwrap();
    obs.upsert_node(TransportNode {
        id: "hv1".into(),
        encap_ip: Some("192.0.2.1".parse().unwrap()),
        bridge: "br-int".into(),
        ovsdb_connected: true,
        ..Default::default()
    });
    obs.bind_port(
        pid,
        PortBinding {
            node: "hv1".into(),
            ofport: 7,
        },
    );
    obs.set_port_up(pid, true);
    obs.set_node_flows("hv1", vec!["table=0, priority=0 actions=drop".into()]);
    let mut types = Vec::new();
    while types.len() < 4 {
        let ev = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        types.push(ev["type"].as_str().unwrap().to_string());
    }
    assert_eq!(
        types,
        ["config_changed", "node_connected", "port_bound", "port_up"]
    );
    let nodes = call(&ws, "node_list", json!({})).await.unwrap();
    assert_eq!(nodes[0]["id"], "hv1");
    assert_eq!(nodes[0]["ports"], json!([pid]));
    assert_eq!(
        call(&ws, "node_get", json!({"node": "hv1"})).await.unwrap()["encap_ip"],
        "192.0.2.1"
    );
    assert_eq!(
        call(&ws, "node_flows", json!({"node": "hv1"}))
            .await
            .unwrap()["flows"],
        json!(["table=0, priority=0 actions=drop"])
    );
    let port = call(&ws, "port_get", json!({"port": "vm2"})).await.unwrap();
    assert_eq!(port["binding"], json!({"node": "hv1", "ofport": 7}));
    assert_eq!(port["up"], true);
}

#[tokio::test]
async fn snapshot_and_watch_seams() {
    let srv = InProcess::start().await;
    let controller = srv.daemon().controller.clone();
    let mut watch = controller.watch_model();
    let before = controller.snapshot();
    let c = srv.http();
    seed(&c).await;
    watch.changed().await.unwrap();
    let after = controller.snapshot();
    // The old snapshot is untouched: readers keep a consistent view.
    assert_eq!(before.revision(), 0);
    assert_eq!(before.port_count(), 0);
    assert_eq!(after.revision(), 4);
    assert_eq!(after.port_count(), 1);
    assert_eq!(
        after.find_port("vm1").unwrap().mac.to_string(),
        "02:00:00:00:00:01"
    );
}

#[tokio::test]
async fn writes_survive_restart() {
    let mut srv = InProcess::start().await;
    seed(&srv.http()).await;
    let before = everything(&srv.http()).await;
    srv.restart().await;
    assert_eq!(everything(&srv.http()).await, before);
    // Allocation continues without reusing the port's key or zone.
    let p = call(
        &srv.http(),
        "port_create",
        json!({"switch": "web", "name": "vm2", "mac": "02:00:00:00:00:02"}),
    )
    .await
    .unwrap();
    assert_eq!(p["key"], 2);
    assert_eq!(revision(&srv.http()).await, 5);
}

#[tokio::test]
async fn concurrent_clients_get_unique_allocations() {
    let srv = InProcess::start().await;
    let c = srv.http();
    call(&c, "switch_create", json!({"name": "web"}))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..16u8 {
        let url = srv.url();
        tasks.push(tokio::spawn(async move {
            let c = http_client(&url, None);
            for i in 0..10u8 {
                call(
                    &c,
                    "port_create",
                    json!({"switch": "web", "name": format!("p{t}-{i}"), "mac": format!("02:00:00:00:{t:02x}:{i:02x}")}),
                )
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ports = call(&c, "port_list", json!({})).await.unwrap();
    let ports = ports.as_array().unwrap();
    assert_eq!(ports.len(), 160);
    let mut keys: Vec<u64> = ports.iter().map(|p| p["key"].as_u64().unwrap()).collect();
    let mut zones: Vec<u64> = ports.iter().map(|p| p["zone"].as_u64().unwrap()).collect();
    keys.sort_unstable();
    keys.dedup();
    zones.sort_unstable();
    zones.dedup();
    assert_eq!((keys.len(), zones.len()), (160, 160));
    assert_eq!(revision(&c).await, 161);
}

#[tokio::test]
async fn bearer_token_is_enforced_when_configured() {
    let srv = InProcess::start_with(|cfg| cfg.api_token = Some("s3cret".into())).await;
    let anon = srv.http();
    let err = anon
        .request::<Value, _>("system_status", ObjectParams::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    let wrong = http_client(&srv.url(), Some("s3crex"));
    assert!(
        wrong
            .request::<Value, _>("system_status", ObjectParams::new())
            .await
            .is_err()
    );
    let good = http_client(&srv.url(), Some("s3cret"));
    call(&good, "system_status", json!({})).await.unwrap();
    assert!(
        ws_client(srv.addr, None).await.is_err(),
        "WS upgrade needs the token too"
    );
    let ws = ws_client(srv.addr, Some("s3cret")).await.unwrap();
    call(&ws, "switch_list", json!({})).await.unwrap();
}

#[tokio::test]
async fn provider_switches_one_per_segment() {
    let srv = InProcess::start().await;
    let c = srv.http();
    let flat = call(
        &c,
        "switch_create",
        json!({"name": "flat", "provider": {"physnet": "physnet1"}}),
    )
    .await
    .unwrap();
    assert_eq!(flat["provider"], json!({"physnet": "physnet1"}));
    let v100 = call(
        &c,
        "switch_create",
        json!({"name": "v100", "provider": {"physnet": "physnet1", "vlan": 100}}),
    )
    .await
    .unwrap();
    assert_eq!(
        v100["provider"],
        json!({"physnet": "physnet1", "vlan": 100})
    );
    let plain = call(&c, "switch_create", json!({"name": "plain"}))
        .await
        .unwrap();
    assert_eq!(plain["provider"], Value::Null);
    for dup in [
        json!({"name": "x", "provider": {"physnet": "physnet1", "vlan": 100}}),
        json!({"name": "x", "provider": {"physnet": "physnet1"}}),
    ] {
        let e = call(&c, "switch_create", dup).await.unwrap_err();
        assert_eq!(e.0, -32009, "{}", e.1);
        assert_eq!(
            e.2.map(|d| d["field"].clone()),
            Some(json!("provider")),
            "{}",
            e.1
        );
    }
    // The same VLAN on another physical network is another segment.
    call(
        &c,
        "switch_create",
        json!({"name": "other", "provider": {"physnet": "physnet2", "vlan": 100}}),
    )
    .await
    .unwrap();
    let got = call(&c, "switch_get", json!({"switch": "v100"}))
        .await
        .unwrap();
    assert_eq!(got["provider"], json!({"physnet": "physnet1", "vlan": 100}));
    let list = call(&c, "switch_list", json!({})).await.unwrap();
    let providers: Vec<(&str, &Value)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), &s["provider"]))
        .collect();
    assert_eq!(
        providers,
        [
            ("flat", &json!({"physnet": "physnet1"})),
            ("other", &json!({"physnet": "physnet2", "vlan": 100})),
            ("plain", &Value::Null),
            ("v100", &json!({"physnet": "physnet1", "vlan": 100})),
        ]
    );
}

#[tokio::test]
async fn rpc_discover_describes_every_method() {
    let srv = InProcess::start().await;
    let doc = call(&srv.http(), "rpc.discover", json!({})).await.unwrap();
    assert_eq!(doc["openrpc"], "1.2.6");
    let methods = doc["methods"].as_array().unwrap();
    let names: Vec<&str> = methods
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for expected in [
        "switch_create",
        "switch_get",
        "switch_list",
        "switch_delete",
        "port_create",
        "port_get",
        "port_list",
        "port_update",
        "port_delete",
        "acl_create",
        "acl_list",
        "acl_delete",
        "node_list",
        "node_get",
        "node_flows",
        "trace",
        "system_status",
        "events_subscribe",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from rpc.discover"
        );
    }
    let pc = methods.iter().find(|m| m["name"] == "port_create").unwrap();
    let mac = pc["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "mac")
        .unwrap();
    assert_eq!(mac["required"], true);
    assert_eq!(mac["schema"]["type"], "string");
    let codes: Vec<i64> = pc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [-32602, -32004, -32009, -32010]);
    let sc = methods
        .iter()
        .find(|m| m["name"] == "switch_create")
        .unwrap();
    let provider = sc["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "provider")
        .expect("switch_create declares provider");
    assert_eq!(provider["required"], false);
    let schema = &doc["components"]["schemas"]["Provider"];
    assert_eq!(schema["properties"]["vlan"]["minimum"], 1);
    assert_eq!(schema["properties"]["vlan"]["maximum"], 4094);
    // Every $ref resolves.
    let text = doc.to_string();
    for part in text.split("#/components/schemas/").skip(1) {
        let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
        assert!(
            doc["components"]["schemas"].get(&name).is_some(),
            "dangling $ref {name}"
        );
    }
}
