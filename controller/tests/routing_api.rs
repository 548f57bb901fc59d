//! The routing methods of the JSON-RPC API (`router_*`, `router_port_*`, `route_*`) end to
//! end against an in-process weftd: results, errors naming their field, events, what
//! routing adds to switch and port calls, and durability across a restart.

mod common;

use common::{
    InProcess, assert_each_fails_naming_its_field, call, everything, next_events, subscribe_events,
    ws_client,
};
use jsonrpsee::core::client::ClientT;
use serde_json::{Value, json};

/// Switches web (with vm1 10.0.1.10) and db, router r1 attached to both, a route via web.
async fn seed<C: ClientT>(c: &C) {
    for name in ["web", "db", "spare"] {
        call(c, "switch_create", json!({"name": name}))
            .await
            .unwrap();
    }
    call(
        c,
        "port_create",
        json!({"switch": "web", "name": "vm1", "mac": "02:00:00:00:00:01", "ips": ["10.0.1.10"]}),
    )
    .await
    .unwrap();
    call(c, "router_create", json!({"name": "r1"}))
        .await
        .unwrap();
    call(
        c,
        "router_port_create",
        json!({"router": "r1", "switch": "web", "name": "r1-web", "mac": "02:00:00:00:01:01",
               "ips": ["10.0.1.1/24", "fd00:1::1/64"]}),
    )
    .await
    .unwrap();
    call(
        c,
        "router_port_create",
        json!({"router": "r1", "switch": "db", "name": "r1-db", "mac": "02:00:00:00:01:02",
               "ips": ["10.0.2.1/24"]}),
    )
    .await
    .unwrap();
    call(
        c,
        "route_create",
        json!({"router": "r1", "prefix": "10.9.0.0/16", "nexthop": "10.0.1.254"}),
    )
    .await
    .unwrap();
}

fn len(v: &Value) -> usize {
    v.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn every_routing_method_happy_path() {
    let srv = InProcess::start().await;
    let c = srv.http();
    for name in ["web", "db"] {
        call(&c, "switch_create", json!({"name": name}))
            .await
            .unwrap();
    }
    let r1 = call(
        &c,
        "router_create",
        json!({"name": "r1", "description": "edge"}),
    )
    .await
    .unwrap();
    assert_eq!(r1["name"], "r1");
    assert_eq!(r1["description"], "edge");
    assert_eq!(r1["key"], 1);
    assert_eq!(
        (r1["ports"].clone(), r1["routes"].clone()),
        (json!([]), json!([]))
    );
    let r1_id = r1["id"].as_str().unwrap();
    let r2 = call(&c, "router_create", json!({"name": "r2"}))
        .await
        .unwrap();
    assert_eq!(r2["key"], 2);
    assert_eq!(r2["description"], "");

    let gw = call(
        &c,
        "router_port_create",
        json!({"router": r1_id, "switch": "web", "name": "r1-web", "mac": "02:00:00:00:01:01",
               "ips": ["10.0.1.1/24", "fd00:1::1/64"]}),
    )
    .await
    .unwrap();
    assert_eq!(gw["router"], r1_id);
    assert_eq!(gw["router_name"], "r1");
    assert_eq!(gw["switch_name"], "web");
    assert_eq!(gw["mac"], "02:00:00:00:01:01");
    assert_eq!(gw["ips"], json!(["10.0.1.1/24", "fd00:1::1/64"]));
    let web_id = call(&c, "switch_get", json!({"switch": "web"}))
        .await
        .unwrap()["id"]
        .clone();
    assert_eq!(gw["switch"], web_id);
    call(
        &c,
        "router_port_create",
        json!({"router": "r1", "switch": "db", "name": "r1-db", "mac": "02:00:00:00:01:02",
               "ips": ["10.0.2.1/24"]}),
    )
    .await
    .unwrap();

    let route = call(
        &c,
        "route_create",
        json!({"router": "r1", "prefix": "10.9.3.7/16", "nexthop": "10.0.1.254"}),
    )
    .await
    .unwrap();
    assert_eq!(route["prefix"], "10.9.0.0/16", "host bits are cleared");
    assert_eq!(route["nexthop"], "10.0.1.254");
    assert_eq!(route["router_name"], "r1");
    let via_db = call(
        &c,
        "route_create",
        json!({"router": "r1", "prefix": "0.0.0.0/0", "nexthop": "10.0.2.254"}),
    )
    .await
    .unwrap();
    let v6 = call(
        &c,
        "route_create",
        json!({"router": "r1", "prefix": "fd00:9::/48", "nexthop": "fd00:1::fe"}),
    )
    .await
    .unwrap();

    let got = call(&c, "router_get", json!({"router": "r1"}))
        .await
        .unwrap();
    assert_eq!(got["id"], r1_id);
    let port_names: Vec<&str> = got["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(port_names, ["r1-db", "r1-web"]);
    assert_eq!(len(&got["routes"]), 3);
    assert_eq!(
        call(&c, "router_get", json!({"router": r1_id}))
            .await
            .unwrap(),
        got
    );
    let list = call(&c, "router_list", json!({})).await.unwrap();
    assert_eq!(list, json!([got, r2]));
    assert_eq!(
        len(&call(&c, "router_port_list", json!({})).await.unwrap()),
        2
    );
    assert_eq!(
        len(&call(&c, "router_port_list", json!({"router": "r2"}))
            .await
            .unwrap()),
        0
    );
    let routes = call(&c, "route_list", json!({"router": "r1"}))
        .await
        .unwrap();
    let prefixes: Vec<&str> = routes
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["prefix"].as_str().unwrap())
        .collect();
    assert_eq!(prefixes, ["0.0.0.0/0", "10.9.0.0/16", "fd00:9::/48"]);
    assert_eq!(len(&call(&c, "route_list", json!({})).await.unwrap()), 3);
    let status = call(&c, "system_status", json!({})).await.unwrap();
    assert_eq!(
        (
            &status["routers"],
            &status["router_ports"],
            &status["routes"]
        ),
        (&json!(2), &json!(2), &json!(3))
    );

    // A router with ports is deleted only with cascade.
    let err = call(&c, "router_delete", json!({"router": "r1"}))
        .await
        .unwrap_err();
    assert_eq!(err.0, -32009, "{err:?}");
    assert!(err.1.contains("2 port(s)"), "{err:?}");
    // Detaching db takes the default route that left through it, nothing else.
    let del = call(&c, "router_port_delete", json!({"router_port": "r1-db"}))
        .await
        .unwrap();
    assert_eq!(del["routes"], json!([via_db["id"]]));
    assert_eq!(len(&del["router_ports"]), 1);
    assert_eq!(del["switches"], json!([]));
    let del = call(&c, "route_delete", json!({"route": v6["id"]}))
        .await
        .unwrap();
    assert_eq!(del["routes"], json!([v6["id"]]));
    let del = call(
        &c,
        "router_delete",
        json!({"router": "r1", "cascade": true}),
    )
    .await
    .unwrap();
    assert_eq!(del["routers"], json!([r1_id]));
    assert_eq!(del["router_ports"], json!([gw["id"]]));
    assert_eq!(del["routes"], json!([route["id"]]));
    let del = call(&c, "router_delete", json!({"router": "r2"}))
        .await
        .unwrap();
    assert_eq!(del["routers"], json!([r2["id"]]));
    assert_eq!(call(&c, "router_list", json!({})).await.unwrap(), json!([]));
    // The switches are still there, and free for another router.
    assert_eq!(len(&call(&c, "switch_list", json!({})).await.unwrap()), 2);
}

/// What routing adds to switch and port calls.
#[tokio::test]
async fn switches_and_ports_respect_the_router_port() {
    let srv = InProcess::start().await;
    let c = srv.http();
    seed(&c).await;
    let before = everything(&c).await;
    for (method, params, field) in [
        (
            "port_create",
            json!({"switch": "web", "name": "vm2", "mac": "02:00:00:00:01:01"}),
            "mac",
        ),
        (
            "port_create",
            json!({"switch": "web", "name": "vm2", "mac": "02:00:00:00:00:02", "ips": ["10.0.1.1"]}),
            "ips",
        ),
        (
            "port_update",
            json!({"port": "vm1", "mac": "02:00:00:00:01:01"}),
            "mac",
        ),
        (
            "port_update",
            json!({"port": "vm1", "ips": ["fd00:1::1"]}),
            "ips",
        ),
        ("switch_delete", json!({"switch": "db"}), "switch"),
    ] {
        let err = call(&c, method, params.clone()).await.unwrap_err();
        assert_eq!(err.0, -32009, "{method} {params}: {err:?}");
        assert_eq!(err.2.unwrap()["field"], field, "{method} {params}");
    }
    assert_eq!(everything(&c).await, before);
    // The same MAC and address on a switch without a router are fine.
    call(
        &c,
        "port_create",
        json!({"switch": "spare", "name": "vm2", "mac": "02:00:00:00:01:01", "ips": ["10.0.1.1"]}),
    )
    .await
    .unwrap();
    // Cascade takes the router port and the routes that left through it.
    call(
        &c,
        "route_create",
        json!({"router": "r1", "prefix": "10.8.0.0/16", "nexthop": "10.0.2.9"}),
    )
    .await
    .unwrap();
    let del = call(
        &c,
        "switch_delete",
        json!({"switch": "db", "cascade": true}),
    )
    .await
    .unwrap();
    assert_eq!(len(&del["router_ports"]), 1);
    assert_eq!(len(&del["routes"]), 1);
    assert_eq!(len(&del["switches"]), 1);
    let left = call(&c, "route_list", json!({})).await.unwrap();
    assert_eq!(left[0]["prefix"], "10.9.0.0/16");
    assert_eq!(len(&left), 1);
}

/// Every parameter of every routing method with bad input: the right code, the field
/// named in message and data, and nothing changed.
#[tokio::test]
async fn bad_routing_input_names_the_field() {
    let srv = InProcess::start().await;
    let c = srv.http();
    seed(&c).await;
    let rp = |extra: Value| {
        let mut base = json!({"router": "r1", "switch": "spare", "name": "r1-spare",
                              "mac": "02:00:00:00:01:03", "ips": ["10.0.3.1/24"]});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        base
    };
    let route =
        |prefix: &str, nexthop: &str| json!({"router": "r1", "prefix": prefix, "nexthop": nexthop});
    let uuid = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    let cases: Vec<(&str, Value, i32, &str)> = vec![
        // router_create
        ("router_create", json!({}), -32602, "name"),
        ("router_create", json!({"name": "a b"}), -32602, "name"),
        ("router_create", json!({"name": uuid}), -32602, "name"),
        ("router_create", json!({"name": "r1"}), -32009, "name"),
        (
            "router_create",
            json!({"name": "x", "description": "d".repeat(1025)}),
            -32602,
            "description",
        ),
        (
            "router_create",
            json!({"name": "x", "key": 5}),
            -32602,
            "key",
        ),
        // router_get / router_list / router_delete
        ("router_get", json!({}), -32602, "router"),
        ("router_get", json!({"router": "nope"}), -32004, "router"),
        ("router_get", json!({"router": uuid}), -32004, "router"),
        ("router_list", json!({"all": true}), -32602, "all"),
        ("router_delete", json!({"router": "nope"}), -32004, "router"),
        ("router_delete", json!({"router": "r1"}), -32009, "router"),
        (
            "router_delete",
            json!({"router": "r1", "cascade": "yes"}),
            -32602,
            "cascade",
        ),
        // router_port_create
        (
            "router_port_create",
            rp(json!({"router": null})),
            -32602,
            "router",
        ),
        (
            "router_port_create",
            rp(json!({"router": "nope"})),
            -32004,
            "router",
        ),
        (
            "router_port_create",
            rp(json!({"switch": null})),
            -32602,
            "switch",
        ),
        (
            "router_port_create",
            rp(json!({"switch": "nope"})),
            -32004,
            "switch",
        ),
        (
            "router_port_create",
            rp(json!({"name": null})),
            -32602,
            "name",
        ),
        (
            "router_port_create",
            rp(json!({"name": "a b"})),
            -32602,
            "name",
        ),
        (
            "router_port_create",
            rp(json!({"name": "r1-web"})),
            -32009,
            "name",
        ),
        (
            "router_port_create",
            rp(json!({"mac": null})),
            -32602,
            "mac",
        ),
        (
            "router_port_create",
            rp(json!({"mac": "zz"})),
            -32602,
            "mac",
        ),
        (
            "router_port_create",
            rp(json!({"mac": "01:00:5e:00:00:01"})),
            -32602,
            "mac",
        ),
        (
            "router_port_create",
            rp(json!({"ips": null})),
            -32602,
            "ips",
        ),
        ("router_port_create", rp(json!({"ips": []})), -32602, "ips"),
        (
            "router_port_create",
            rp(json!({"ips": "10.0.3.1/24"})),
            -32602,
            "ips",
        ),
        ("router_port_create", rp(json!({"ips": [5]})), -32602, "ips"),
        (
            "router_port_create",
            rp(json!({"ips": ["10.0.3.1"]})),
            -32602,
            "ips",
        ),
        (
            "router_port_create",
            rp(json!({"ips": ["10.0.3.0/24"]})),
            -32602,
            "ips",
        ),
        (
            "router_port_create",
            rp(json!({"ips": ["10.0.3.255/24"]})),
            -32602,
            "ips",
        ),
        (
            "router_port_create",
            rp(json!({"ips": ["10.0.3.1/33"]})),
            -32602,
            "ips",
        ),
        (
            "router_port_create",
            rp(json!({"ips": ["10.0.3.1/24", "10.0.3.200/25"]})),
            -32602,
            "ips",
        ),
        // The switch already has a router, or the port's subnet is one r1 has.
        (
            "router_port_create",
            rp(json!({"switch": "web"})),
            -32009,
            "switch",
        ),
        (
            "router_port_create",
            rp(json!({"ips": ["10.0.2.77/16"]})),
            -32009,
            "ips",
        ),
        (
            "router_port_create",
            rp(json!({"colour": "red"})),
            -32602,
            "colour",
        ),
        // router_port_list / router_port_delete
        (
            "router_port_list",
            json!({"router": "nope"}),
            -32004,
            "router",
        ),
        ("router_port_delete", json!({}), -32602, "router_port"),
        (
            "router_port_delete",
            json!({"router_port": "nope"}),
            -32004,
            "router_port",
        ),
        // route_create
        (
            "route_create",
            json!({"prefix": "10.8.0.0/16", "nexthop": "10.0.1.9"}),
            -32602,
            "router",
        ),
        (
            "route_create",
            json!({"router": "nope", "prefix": "10.8.0.0/16", "nexthop": "10.0.1.9"}),
            -32004,
            "router",
        ),
        (
            "route_create",
            json!({"router": "r1", "nexthop": "10.0.1.9"}),
            -32602,
            "prefix",
        ),
        (
            "route_create",
            route("10.8.0.0", "10.0.1.9"),
            -32602,
            "prefix",
        ),
        (
            "route_create",
            route("10.8.0.0/40", "10.0.1.9"),
            -32602,
            "prefix",
        ),
        (
            "route_create",
            json!({"router": "r1", "prefix": "10.8.0.0/16"}),
            -32602,
            "nexthop",
        ),
        (
            "route_create",
            route("10.8.0.0/16", "10.0.1.9/24"),
            -32602,
            "nexthop",
        ),
        (
            "route_create",
            route("10.8.0.0/16", "fd00:1::9"),
            -32602,
            "nexthop",
        ),
        (
            "route_create",
            route("10.8.0.0/16", "10.0.7.9"),
            -32602,
            "nexthop",
        ),
        (
            "route_create",
            route("10.8.0.0/16", "10.0.1.1"),
            -32602,
            "nexthop",
        ),
        (
            "route_create",
            route("10.9.1.0/16", "10.0.2.9"),
            -32009,
            "prefix",
        ),
        // route_list / route_delete
        ("route_list", json!({"router": "nope"}), -32004, "router"),
        ("route_delete", json!({}), -32602, "route"),
        ("route_delete", json!({"route": "r1"}), -32602, "route"),
        ("route_delete", json!({"route": uuid}), -32004, "route"),
    ];
    assert_each_fails_naming_its_field(&c, &cases).await;
    // The two messages an operator most needs to read.
    let err = call(&c, "router_port_create", rp(json!({"ips": ["10.0.3.1"]})))
        .await
        .unwrap_err();
    assert!(err.1.contains("CIDR form is required"), "{err:?}");
    let err = call(&c, "router_port_create", rp(json!({"switch": "web"})))
        .await
        .unwrap_err();
    assert!(err.1.contains("r1-web"), "{err:?}");
}

#[tokio::test]
async fn routing_writes_send_one_event_per_object() {
    let srv = InProcess::start().await;
    let ws = ws_client(srv.addr, None).await.unwrap();
    let mut sub = subscribe_events(&ws).await;
    let sw = call(&ws, "switch_create", json!({"name": "web"}))
        .await
        .unwrap();
    let r = call(&ws, "router_create", json!({"name": "r1"}))
        .await
        .unwrap();
    let rp = call(
        &ws,
        "router_port_create",
        json!({"router": "r1", "switch": "web", "name": "r1-web", "mac": "02:00:00:00:01:01",
               "ips": ["10.0.1.1/24"]}),
    )
    .await
    .unwrap();
    let route = call(
        &ws,
        "route_create",
        json!({"router": "r1", "prefix": "10.9.0.0/16", "nexthop": "10.0.1.254"}),
    )
    .await
    .unwrap();
    call(
        &ws,
        "switch_delete",
        json!({"switch": "web", "cascade": true}),
    )
    .await
    .unwrap();
    call(&ws, "router_delete", json!({"router": "r1"}))
        .await
        .unwrap();
    let got = next_events(&mut sub, 8).await;
    let ev = |kind: &str, id: &Value, op: &str, revision: u64| json!({"type": "config_changed", "kind": kind, "id": id, "op": op, "revision": revision});
    assert_eq!(
        got,
        vec![
            ev("switch", &sw["id"], "created", 1),
            ev("router", &r["id"], "created", 2),
            ev("router_port", &rp["id"], "created", 3),
            ev("route", &route["id"], "created", 4),
            // One write: the route that needed the port, the port, the switch.
            ev("route", &route["id"], "deleted", 5),
            ev("router_port", &rp["id"], "deleted", 5),
            ev("switch", &sw["id"], "deleted", 5),
            ev("router", &r["id"], "deleted", 6),
        ]
    );
}

#[tokio::test]
async fn routers_survive_a_restart() {
    let mut srv = InProcess::start().await;
    seed(&srv.http()).await;
    let before = everything(&srv.http()).await;
    srv.restart().await;
    let c = srv.http();
    assert_eq!(everything(&c).await, before);
    // The indexes came back too: the rules still hold, and keys are not reused.
    let err = call(
        &c,
        "router_port_create",
        json!({"router": "r1", "switch": "web", "name": "again", "mac": "02:00:00:00:01:09",
               "ips": ["10.0.5.1/24"]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.0, -32009);
    let r2 = call(&c, "router_create", json!({"name": "r2"}))
        .await
        .unwrap();
    assert_eq!(r2["key"], 2);
    let err = call(&c, "router_create", json!({"name": "r1"}))
        .await
        .unwrap_err();
    assert_eq!(err.0, -32009);
}

/// A switch with `provider` set cannot get a router port. The API to create one belongs
/// to provider networks; here the switch is written to the store directly.
#[tokio::test]
async fn provider_switches_refuse_router_ports() {
    use weft::model::{Change, LogicalSwitch, ProviderNet};
    use weft::store::{RedbStore, Store};
    let mut srv = InProcess::start().await;
    call(&srv.http(), "router_create", json!({"name": "r1"}))
        .await
        .unwrap();
    srv.daemon.take().unwrap().shutdown().await;
    let data = srv.dir.path().join("data");
    {
        let mut store = RedbStore::open(&data).unwrap();
        store
            .commit(
                2,
                &[Change::PutSwitch(LogicalSwitch {
                    id: uuid::Uuid::new_v4(),
                    name: "ext".into(),
                    vni: 77,
                    description: String::new(),
                    flood_vteps: Vec::new(),
                    provider: Some(ProviderNet {
                        physnet: "physnet1".into(),
                        vlan: Some(100),
                    }),
                })],
            )
            .unwrap();
    }
    srv.restart_stopped().await;
    let err = call(
        &srv.http(),
        "router_port_create",
        json!({"router": "r1", "switch": "ext", "name": "r1-ext", "mac": "02:00:00:00:01:01",
               "ips": ["203.0.113.1/24"]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.0, -32009, "{err:?}");
    assert!(err.1.contains("gateway design"), "{err:?}");
    assert_eq!(err.2.unwrap()["field"], "switch");
}

#[tokio::test]
async fn rpc_discover_describes_the_routing_methods() {
    let srv = InProcess::start().await;
    let doc = call(&srv.http(), "rpc.discover", json!({})).await.unwrap();
    let methods = doc["methods"].as_array().unwrap();
    let params_of = |name: &str| -> Vec<(String, bool)> {
        let m = methods
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from rpc.discover"));
        m["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["required"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let expect = |list: &[(&str, bool)]| -> Vec<(String, bool)> {
        list.iter().map(|(n, r)| (n.to_string(), *r)).collect()
    };
    assert_eq!(
        params_of("router_create"),
        expect(&[("name", true), ("description", false)])
    );
    assert_eq!(params_of("router_get"), expect(&[("router", true)]));
    assert_eq!(params_of("router_list"), expect(&[]));
    assert_eq!(
        params_of("router_delete"),
        expect(&[("router", true), ("cascade", false)])
    );
    assert_eq!(
        params_of("router_port_create"),
        expect(&[
            ("router", true),
            ("switch", true),
            ("name", true),
            ("mac", true),
            ("ips", true)
        ])
    );
    assert_eq!(params_of("router_port_list"), expect(&[("router", false)]));
    assert_eq!(
        params_of("router_port_delete"),
        expect(&[("router_port", true)])
    );
    assert_eq!(
        params_of("route_create"),
        expect(&[("router", true), ("prefix", true), ("nexthop", true)])
    );
    assert_eq!(params_of("route_list"), expect(&[("router", false)]));
    assert_eq!(params_of("route_delete"), expect(&[("route", true)]));
    let schemas = &doc["components"]["schemas"];
    for name in [
        "Router",
        "RouterList",
        "RouterPort",
        "RouterPortList",
        "Route",
        "RouteList",
    ] {
        assert!(schemas.get(name).is_some(), "schema {name} missing");
    }
    let kinds = &schemas["Event"]["properties"]["kind"]["enum"];
    for kind in ["router", "router_port", "route"] {
        assert!(kinds.as_array().unwrap().contains(&json!(kind)), "{kind}");
    }
    // Every $ref resolves.
    let text = doc.to_string();
    for part in text.split("#/components/schemas/").skip(1) {
        let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
        assert!(schemas.get(&name).is_some(), "dangling $ref {name}");
    }
}
