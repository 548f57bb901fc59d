//! One test per routing rule of the plan: each case is built so that the rule under test is
//! the only one the command breaks, so removing the rule makes the case pass and the test
//! fail.

use std::net::IpAddr;

use ipnet::IpNet;
use uuid::Uuid;

use crate::error::{ApiError, CONFLICT, INVALID_PARAMS, NOT_FOUND};
use crate::model::{Change, LogicalModel, LogicalSwitch, MacAddr, ProviderNet};
use crate::northbound::{Command, plan};

fn apply(m: &mut LogicalModel, cmd: Command) -> Result<Vec<Change>, ApiError> {
    let changes = plan(m, &cmd)?;
    for c in &changes {
        m.apply(c);
    }
    m.set_revision(m.revision() + 1);
    Ok(changes)
}

/// Checks that `cmd` is refused with `code` naming `field`, changing nothing; returns the
/// message.
#[track_caller]
fn refused(m: &mut LogicalModel, cmd: Command, code: i32, field: &str) -> String {
    let before = m.revision();
    let err = match apply(m, cmd.clone()) {
        Ok(changes) => panic!("{cmd:?} was accepted: {changes:?}"),
        Err(e) => e,
    };
    let got = match &err {
        ApiError::InvalidParams { field, .. }
        | ApiError::Conflict { field, .. }
        | ApiError::NotFound { field, .. } => field.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!((err.code(), got.as_str()), (code, field), "{cmd:?}: {err}");
    assert_eq!(m.revision(), before);
    err.to_string()
}

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn router(name: &str) -> Command {
    Command::RouterCreate {
        name: name.into(),
        description: String::new(),
    }
}

fn rport(router: &str, switch: &str, name: &str, m: &str, ips: &[&str]) -> Command {
    Command::RouterPortCreate {
        router: router.into(),
        switch: switch.into(),
        name: name.into(),
        mac: mac(m),
        ips: nets(ips),
    }
}

fn route(router: &str, prefix: &str, nexthop: &str) -> Command {
    Command::RouteCreate {
        router: router.into(),
        prefix: prefix.parse().unwrap(),
        nexthop: ip(nexthop),
    }
}

/// Switches a, b (logical port pb 02:..:0b / 10.0.2.5) and d, provider switch c, and
/// router r1 with port r1-a on a (02:00:00:00:01:01, 10.0.1.1/24 and fd00:1::1/64);
/// logical port pa (02:..:0a / 10.0.1.5) on a.
fn fixture() -> LogicalModel {
    let mut m = LogicalModel::default();
    for name in ["a", "b", "d"] {
        apply(
            &mut m,
            Command::SwitchCreate {
                name: name.into(),
                vni: None,
                description: String::new(),
                flood_vteps: Vec::new(),
                provider: None,
            },
        )
        .unwrap();
    }
    m.apply(&Change::PutSwitch(LogicalSwitch {
        id: Uuid::new_v4(),
        name: "c".into(),
        vni: 900,
        description: String::new(),
        flood_vteps: Vec::new(),
        provider: Some(ProviderNet {
            physnet: "physnet1".into(),
            vlan: None,
        }),
    }));
    for (sw, name, m_, addr) in [
        ("a", "pa", "02:00:00:00:00:0a", "10.0.1.5"),
        ("b", "pb", "02:00:00:00:00:0b", "10.0.2.5"),
    ] {
        apply(
            &mut m,
            Command::PortCreate {
                switch: sw.into(),
                name: name.into(),
                mac: mac(m_),
                ips: vec![ip(addr)],
                port_security: true,
            },
        )
        .unwrap();
    }
    apply(&mut m, router("r1")).unwrap();
    apply(
        &mut m,
        rport(
            "r1",
            "a",
            "r1-a",
            "02:00:00:00:01:01",
            &["10.0.1.1/24", "fd00:1::1/64"],
        ),
    )
    .unwrap();
    m
}

#[test]
fn router_create_rules_and_keys() {
    let mut m = LogicalModel::default();
    let first = apply(&mut m, router("r1")).unwrap();
    let Change::PutRouter(r1) = &first[0] else {
        panic!("{first:?}")
    };
    assert_eq!(r1.key, 1);
    apply(&mut m, router("r2")).unwrap();
    assert_eq!(m.find_router("r2").unwrap().key, 2);
    refused(&mut m, router("r1"), CONFLICT, "name");
    refused(&mut m, router("a b"), INVALID_PARAMS, "name");
    let long = Command::RouterCreate {
        name: "r3".into(),
        description: "d".repeat(1025),
    };
    refused(&mut m, long, INVALID_PARAMS, "description");
    // A deleted router's key is reused, lowest first.
    apply(
        &mut m,
        Command::RouterDelete {
            router: "r1".into(),
            cascade: false,
        },
    )
    .unwrap();
    apply(&mut m, router("r3")).unwrap();
    assert_eq!(m.find_router("r3").unwrap().key, 1);
}

#[test]
fn router_port_syntax_rules() {
    let mut m = fixture();
    let ok = |ips: &[&str]| rport("r1", "b", "r1-b", "02:00:00:00:01:02", ips);
    refused(
        &mut m,
        rport("r1", "b", "bad name", "02:00:00:00:01:02", &["10.0.9.1/24"]),
        INVALID_PARAMS,
        "name",
    );
    refused(
        &mut m,
        rport("r1", "b", "r1-b", "03:00:00:00:01:02", &["10.0.9.1/24"]),
        INVALID_PARAMS,
        "mac",
    );
    refused(&mut m, ok(&[]), INVALID_PARAMS, "ips");
    let msg = refused(&mut m, ok(&["10.0.9.0/24"]), INVALID_PARAMS, "ips");
    assert!(msg.contains("network address"), "{msg}");
    let msg = refused(&mut m, ok(&["10.0.9.255/24"]), INVALID_PARAMS, "ips");
    assert!(msg.contains("broadcast address"), "{msg}");
    refused(&mut m, ok(&["10.0.9.3/30"]), INVALID_PARAMS, "ips");
    refused(&mut m, ok(&["224.0.0.1/24"]), INVALID_PARAMS, "ips");
    refused(&mut m, ok(&["::/64"]), INVALID_PARAMS, "ips");
    refused(&mut m, ok(&["ff02::1/64"]), INVALID_PARAMS, "ips");
    let msg = refused(
        &mut m,
        ok(&["10.0.9.1/24", "10.0.9.129/25"]),
        INVALID_PARAMS,
        "ips",
    );
    assert!(msg.contains("overlap"), "{msg}");
    // /31 and /32 have no network or broadcast address: every address is a host.
    apply(&mut m, ok(&["10.0.9.0/31", "10.0.8.7/32", "fd00:9::/64"])).unwrap();
}

#[test]
fn router_port_model_rules() {
    let mut m = fixture();
    let b = |name: &str, mac: &str, ips: &[&str]| rport("r1", "b", name, mac, ips);
    refused(
        &mut m,
        rport("nope", "b", "x", "02:00:00:00:01:02", &["10.0.9.1/24"]),
        NOT_FOUND,
        "router",
    );
    refused(
        &mut m,
        rport("r1", "nope", "x", "02:00:00:00:01:02", &["10.0.9.1/24"]),
        NOT_FOUND,
        "switch",
    );
    refused(
        &mut m,
        b("r1-a", "02:00:00:00:01:02", &["10.0.9.1/24"]),
        CONFLICT,
        "name",
    );
    let msg = refused(
        &mut m,
        rport("r1", "c", "r1-c", "02:00:00:00:01:02", &["10.0.9.1/24"]),
        CONFLICT,
        "switch",
    );
    assert!(msg.contains("gateway design"), "{msg}");
    // A router has one port per switch, and a switch one router.
    let msg = refused(
        &mut m,
        rport("r1", "a", "r1-a2", "02:00:00:00:01:02", &["10.0.9.1/24"]),
        CONFLICT,
        "switch",
    );
    assert!(msg.contains("r1-a"), "{msg}");
    apply(&mut m, router("r2")).unwrap();
    let msg = refused(
        &mut m,
        rport("r2", "a", "r2-a", "02:00:00:00:02:01", &["10.0.9.1/24"]),
        CONFLICT,
        "switch",
    );
    assert!(msg.contains("\"r1\"") && msg.contains("r1-a"), "{msg}");
    // pb owns 02:..:0b and 10.0.2.5 on switch b.
    refused(
        &mut m,
        b("r1-b", "02:00:00:00:00:0b", &["10.0.2.1/24"]),
        CONFLICT,
        "mac",
    );
    refused(
        &mut m,
        b("r1-b", "02:00:00:00:01:02", &["10.0.2.5/24"]),
        CONFLICT,
        "ips",
    );
    // r1-a has 10.0.1.0/24 and fd00:1::/64.
    let msg = refused(
        &mut m,
        b("r1-b", "02:00:00:00:01:02", &["10.0.2.1/16"]),
        CONFLICT,
        "ips",
    );
    assert!(msg.contains("r1-a") && msg.contains("ambiguous"), "{msg}");
    refused(
        &mut m,
        b(
            "r1-b",
            "02:00:00:00:01:02",
            &["10.0.2.1/24", "fd00:1:0:0:8000::1/65"],
        ),
        CONFLICT,
        "ips",
    );
    // The same MAC as another router's port is fine on another switch, and another
    // router may reuse r1's subnets: routers are isolated from each other.
    apply(
        &mut m,
        rport("r2", "d", "r2-d", "02:00:00:00:01:01", &["10.0.1.1/24"]),
    )
    .unwrap();
    let changes = apply(
        &mut m,
        b(
            "r1-b",
            "02:00:00:00:01:02",
            &["10.0.2.1/24", "fd00:2::1/64"],
        ),
    )
    .unwrap();
    let Change::PutRouterPort(rp) = &changes[0] else {
        panic!("{changes:?}")
    };
    assert_eq!(
        rp.ips,
        nets(&["10.0.2.1/24", "fd00:2::1/64"]),
        "kept as given"
    );
    assert_eq!(m.ports_of_router(&rp.router).count(), 2);
    assert_eq!(m.router_port_of_switch(&rp.switch).unwrap().name, "r1-b");
}

#[test]
fn logical_ports_keep_off_the_router_port() {
    let mut m = fixture();
    let create = |name: &str, mac_: &str, ips: &[&str]| Command::PortCreate {
        switch: "a".into(),
        name: name.into(),
        mac: mac(mac_),
        ips: ips.iter().map(|s| ip(s)).collect(),
        port_security: true,
    };
    refused(
        &mut m,
        create("p1", "02:00:00:00:01:01", &["10.0.1.9"]),
        CONFLICT,
        "mac",
    );
    refused(
        &mut m,
        create("p1", "02:00:00:00:00:09", &["10.0.1.9", "10.0.1.1"]),
        CONFLICT,
        "ips",
    );
    refused(
        &mut m,
        create("p1", "02:00:00:00:00:09", &["fd00:1::1"]),
        CONFLICT,
        "ips",
    );
    let update = |mac_: Option<&str>, ips: Option<&[&str]>| Command::PortUpdate {
        port: "pa".into(),
        mac: mac_.map(mac),
        ips: ips.map(|l| l.iter().map(|s| ip(s)).collect()),
        port_security: None,
    };
    refused(
        &mut m,
        update(Some("02:00:00:00:01:01"), None),
        CONFLICT,
        "mac",
    );
    refused(&mut m, update(None, Some(&["10.0.1.1"])), CONFLICT, "ips");
    // Elsewhere in the subnet, and on a switch without a router, all is fine.
    apply(&mut m, create("p1", "02:00:00:00:00:09", &["10.0.1.9"])).unwrap();
    apply(&mut m, update(None, Some(&["10.0.1.6"]))).unwrap();
    apply(
        &mut m,
        Command::PortCreate {
            switch: "b".into(),
            name: "p2".into(),
            mac: mac("02:00:00:00:01:01"),
            ips: vec![ip("10.0.1.1")],
            port_security: true,
        },
    )
    .unwrap();
}

#[test]
fn route_rules() {
    let mut m = fixture();
    let changes = apply(&mut m, route("r1", "10.9.0.7/16", "10.0.1.254")).unwrap();
    let Change::PutRoute(r) = &changes[0] else {
        panic!("{changes:?}")
    };
    assert_eq!(r.prefix.to_string(), "10.9.0.0/16", "host bits cleared");
    assert_eq!(m.route(&r.id).unwrap().prefix.to_string(), "10.9.0.0/16");
    apply(&mut m, route("r1", "fd00:9::/48", "fd00:1::fe")).unwrap();
    apply(&mut m, route("r1", "0.0.0.0/0", "10.0.1.254")).unwrap();
    refused(
        &mut m,
        route("nope", "10.8.0.0/16", "10.0.1.254"),
        NOT_FOUND,
        "router",
    );
    let msg = refused(
        &mut m,
        route("r1", "10.8.0.0/16", "fd00:1::fe"),
        INVALID_PARAMS,
        "nexthop",
    );
    assert!(msg.contains("family"), "{msg}");
    let msg = refused(
        &mut m,
        route("r1", "10.8.0.0/16", "10.0.2.254"),
        INVALID_PARAMS,
        "nexthop",
    );
    assert!(
        msg.contains("no subnet") && msg.contains("10.0.1.0/24"),
        "{msg}"
    );
    let msg = refused(
        &mut m,
        route("r1", "10.8.0.0/16", "10.0.1.1"),
        INVALID_PARAMS,
        "nexthop",
    );
    assert!(msg.contains("own address"), "{msg}");
    refused(
        &mut m,
        route("r1", "fd00:8::/48", "fd00:1::1"),
        INVALID_PARAMS,
        "nexthop",
    );
    // Same prefix after normalisation, whatever the next hop.
    refused(
        &mut m,
        route("r1", "10.9.200.1/16", "10.0.1.253"),
        CONFLICT,
        "prefix",
    );
    // Another router may route the same prefix.
    apply(&mut m, router("r2")).unwrap();
    apply(
        &mut m,
        rport("r2", "d", "r2-d", "02:00:00:00:02:01", &["10.0.1.1/24"]),
    )
    .unwrap();
    apply(&mut m, route("r2", "10.9.0.0/16", "10.0.1.254")).unwrap();
    // A router without ports has no next hop at all.
    apply(&mut m, router("r3")).unwrap();
    let msg = refused(
        &mut m,
        route("r3", "10.9.0.0/16", "10.0.1.254"),
        INVALID_PARAMS,
        "nexthop",
    );
    assert!(msg.contains("no ports"), "{msg}");
    // A next hop must be a unicast address even where a (huge) subnet covers it.
    apply(
        &mut m,
        rport("r3", "b", "r3-b", "02:00:00:00:03:01", &["128.0.0.1/1"]),
    )
    .unwrap();
    refused(
        &mut m,
        route("r3", "10.9.0.0/16", "224.0.0.1"),
        INVALID_PARAMS,
        "nexthop",
    );
    apply(&mut m, route("r3", "10.9.0.0/16", "192.0.2.1")).unwrap();
    // route_delete
    let id = r.id;
    refused(
        &mut m,
        Command::RouteDelete {
            route: Uuid::new_v4(),
        },
        NOT_FOUND,
        "route",
    );
    let changes = apply(&mut m, Command::RouteDelete { route: id }).unwrap();
    assert_eq!(changes, vec![Change::DeleteRoute { id }]);
    assert!(m.route(&id).is_none());
}

/// r1 with r1-a (10.0.1.0/24, fd00:1::/64) and r1-b (10.0.2.0/24), a route through each
/// and one IPv6 route through r1-a; returns the ids of (via a, via b, via a v6).
fn two_legged(m: &mut LogicalModel) -> (Uuid, Uuid, Uuid) {
    apply(
        m,
        rport("r1", "b", "r1-b", "02:00:00:00:01:02", &["10.0.2.1/24"]),
    )
    .unwrap();
    let id = |changes: Vec<Change>| changes[0].id();
    let via_a = id(apply(m, route("r1", "10.8.0.0/16", "10.0.1.254")).unwrap());
    let via_b = id(apply(m, route("r1", "10.9.0.0/16", "10.0.2.254")).unwrap());
    let via_a6 = id(apply(m, route("r1", "fd00:8::/48", "fd00:1::fe")).unwrap());
    (via_a, via_b, via_a6)
}

#[test]
fn router_port_delete_takes_the_routes_it_carried() {
    let mut m = fixture();
    let (via_a, via_b, via_a6) = two_legged(&mut m);
    refused(
        &mut m,
        Command::RouterPortDelete {
            router_port: "nope".into(),
        },
        NOT_FOUND,
        "router_port",
    );
    let rp = m.find_router_port("r1-a").unwrap().id;
    let changes = apply(
        &mut m,
        Command::RouterPortDelete {
            router_port: rp.to_string(),
        },
    )
    .unwrap();
    let mut deleted_routes: Vec<Uuid> = changes
        .iter()
        .filter(|c| matches!(c, Change::DeleteRoute { .. }))
        .map(Change::id)
        .collect();
    deleted_routes.sort();
    let mut expected = vec![via_a, via_a6];
    expected.sort();
    assert_eq!(deleted_routes, expected);
    assert_eq!(changes.last(), Some(&Change::DeleteRouterPort { id: rp }));
    assert!(m.route(&via_b).is_some());
    assert!(m.find_router_port("r1-a").is_none());
    // The switch is free for another router now.
    apply(&mut m, router("r2")).unwrap();
    apply(
        &mut m,
        rport("r2", "a", "r2-a", "02:00:00:00:02:01", &["10.0.1.1/24"]),
    )
    .unwrap();
}

#[test]
fn switch_delete_with_a_router_port() {
    let mut m = fixture();
    let (via_a, via_b, via_a6) = two_legged(&mut m);
    apply(&mut m, Command::PortDelete { port: "pa".into() }).unwrap();
    let del = |cascade| Command::SwitchDelete {
        switch: "a".into(),
        cascade,
    };
    // No logical port left, but the router port still holds the switch.
    let msg = refused(&mut m, del(false), CONFLICT, "switch");
    assert!(msg.contains("r1-a"), "{msg}");
    let changes = apply(&mut m, del(true)).unwrap();
    for gone in [via_a, via_a6] {
        assert!(changes.contains(&Change::DeleteRoute { id: gone }));
        assert!(m.route(&gone).is_none());
    }
    assert!(m.route(&via_b).is_some());
    assert!(m.find_router_port("r1-a").is_none());
    assert!(m.find_switch("a").is_none());
    assert_eq!(
        changes.last().map(Change::kind),
        Some(crate::model::ObjectKind::Switch)
    );
}

#[test]
fn router_delete_needs_cascade_while_it_has_ports() {
    let mut m = fixture();
    let (via_a, via_b, via_a6) = two_legged(&mut m);
    refused(
        &mut m,
        Command::RouterDelete {
            router: "nope".into(),
            cascade: true,
        },
        NOT_FOUND,
        "router",
    );
    let msg = refused(
        &mut m,
        Command::RouterDelete {
            router: "r1".into(),
            cascade: false,
        },
        CONFLICT,
        "router",
    );
    assert!(msg.contains("2 port(s)"), "{msg}");
    let r1 = m.find_router("r1").unwrap().id;
    let changes = apply(
        &mut m,
        Command::RouterDelete {
            router: r1.to_string(),
            cascade: true,
        },
    )
    .unwrap();
    assert_eq!(changes.len(), 6, "3 routes, 2 router ports, the router");
    for id in [via_a, via_b, via_a6] {
        assert!(m.route(&id).is_none());
    }
    assert_eq!(m.router_ports().count(), 0);
    assert!(m.find_router("r1").is_none());
    assert_eq!(changes.last(), Some(&Change::DeleteRouter { id: r1 }));
    // The switches are still there, free of any router.
    let a = m.find_switch("a").unwrap().id;
    assert!(m.router_port_of_switch(&a).is_none());
}
