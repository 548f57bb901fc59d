//! Cluster mode's store on a real 3-member etcd cluster (the `etcd` binary of Debian's
//! etcd-server): round trip, races between writers, cascades past etcd's 128-operation
//! limit, weftd instances sharing one model, etcd members killed under load.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::etcd::EtcdCluster;
use common::{Spawned, call, http_client};
use rand::Rng;
use serde_json::{Value, json};
use weft::error::{CONFLICT, STORE_UNAVAILABLE};
use weft::model::{Change, LogicalModel, LogicalSwitch};
use weft::northbound::{Command, ModelWriter};
use weft::store::{EtcdSettings, EtcdStore, Store, StoreError};

fn new_prefix() -> String {
    format!("/t{}", uuid::Uuid::new_v4().simple())
}

async fn store(cluster: &EtcdCluster, prefix: &str, instance: &str) -> EtcdStore {
    EtcdStore::connect(EtcdSettings::new(cluster.endpoint_list(), prefix, instance))
        .await
        .unwrap()
}

fn switch(name: &str) -> Command {
    Command::SwitchCreate {
        name: name.into(),
        vni: None,
        description: String::new(),
        flood_vteps: Vec::new(),
        provider: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_and_a_cascade_past_128_operations() {
    let cluster = EtcdCluster::start(3).await;
    let prefix = new_prefix();
    let (w, handle) = ModelWriter::start(Box::new(store(&cluster, &prefix, "a").await)).unwrap();
    w.submit(switch("big")).await.unwrap();
    for i in 0..150u16 {
        w.submit(Command::PortCreate {
            switch: "big".into(),
            name: format!("p{i}"),
            mac: weft::model::MacAddr([2, 0, 0, 0, (i >> 8) as u8, i as u8]),
            ips: vec![format!("10.0.{}.{}", i / 200, i % 200 + 1).parse().unwrap()],
            port_security: true,
        })
        .await
        .unwrap();
        w.submit(Command::AclCreate(weft::northbound::AclSpec {
            port: format!("p{i}"),
            direction: weft::model::Direction::Ingress,
            priority: 100,
            action: weft::model::AclAction::AllowRelated,
            protocol: None,
            ethertype: weft::model::Ethertype::Ipv4,
            remote_cidr: None,
            port_min: None,
            port_max: None,
        }))
        .await
        .unwrap();
    }
    w.submit(switch("small")).await.unwrap();
    // A router whose one port carries 140 routes: deleting the port orphans them all.
    w.submit(Command::RouterCreate {
        name: "r".into(),
        description: String::new(),
    })
    .await
    .unwrap();
    w.submit(Command::RouterPortCreate {
        router: "r".into(),
        switch: "small".into(),
        name: "r-small".into(),
        mac: weft::model::MacAddr([2, 0, 0, 0, 9, 1]),
        ips: vec!["10.9.0.1/16".parse().unwrap()],
    })
    .await
    .unwrap();
    for i in 0..140u32 {
        w.submit(Command::RouteCreate {
            router: "r".into(),
            prefix: format!("172.{}.{}.0/24", 16 + i / 250, i % 250)
                .parse()
                .unwrap(),
            nexthop: "10.9.0.2".parse().unwrap(),
        })
        .await
        .unwrap();
    }
    let before = w.snapshot();
    assert_eq!((before.port_count(), before.acl_count()), (150, 150));
    // Reloaded by a second store: the same model at the same revision.
    let mut other = store(&cluster, &prefix, "b").await;
    let loaded = other.load().unwrap();
    assert_eq!(loaded.revision, before.revision());
    assert_eq!(loaded.ports.len(), 150);
    assert_eq!(loaded.acls.len(), 150);
    assert_eq!(loaded.routes.len(), 140);
    // 301 objects in one write, and 141 in another: each one transaction.
    let applied = w
        .submit(Command::SwitchDelete {
            switch: "big".into(),
            cascade: true,
        })
        .await
        .unwrap();
    assert_eq!(applied.changes.len(), 301);
    let applied = w
        .submit(Command::RouterPortDelete {
            router_port: "r-small".into(),
        })
        .await
        .unwrap();
    assert_eq!(applied.changes.len(), 141);
    let mut third = store(&cluster, &prefix, "c").await;
    let loaded = third.load().unwrap();
    assert_eq!(loaded.revision, before.revision() + 2);
    assert!(loaded.ports.is_empty() && loaded.acls.is_empty() && loaded.routes.is_empty());
    assert_eq!(loaded.switches.len(), 1);
    assert_eq!(loaded.routers.len(), 1);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_never_both_commit_a_plan_on_the_same_revision() {
    let cluster = EtcdCluster::start(3).await;
    let prefix = new_prefix();
    let mut a = store(&cluster, &prefix, "a").await;
    let mut b = store(&cluster, &prefix, "b").await;
    assert_eq!(a.load().unwrap().revision, 0);
    assert_eq!(b.load().unwrap().revision, 0);
    let base = LogicalModel::default();
    let sw = |name: &str| {
        Change::PutSwitch(LogicalSwitch {
            id: uuid::Uuid::new_v4(),
            name: name.into(),
            vni: 7,
            description: String::new(),
            provider: None,
            flood_vteps: Vec::new(),
        })
    };
    let (ca, cb) = (sw("x"), sw("x"));
    let results = tokio::task::spawn_blocking(move || {
        let ra = a.commit_on(&base, 1, &[ca]);
        let rb = b.commit_on(&base, 1, &[cb]);
        (ra, rb)
    })
    .await
    .unwrap();
    assert!(results.0.is_ok(), "{:?}", results.0);
    assert!(
        matches!(
            results.1,
            Err(StoreError::Conflict {
                expected: 0,
                found: 1
            })
        ),
        "{:?}",
        results.1
    );

    // Through two writers at once: every name is created exactly once, the loser of each
    // race gets a proper conflict (-32009), and both instances end with the same model.
    let prefix = new_prefix();
    let (wa, ha) = ModelWriter::start(Box::new(store(&cluster, &prefix, "a").await)).unwrap();
    let (wb, hb) = ModelWriter::start(Box::new(store(&cluster, &prefix, "b").await)).unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        for w in [wa.clone(), wb.clone()] {
            tasks.push(tokio::spawn(async move {
                (
                    i,
                    w.submit(switch(&format!("s{i}")))
                        .await
                        .map_err(|e| e.code()),
                )
            }));
        }
    }
    let mut wins: BTreeMap<i32, usize> = BTreeMap::new();
    for t in tasks {
        let (i, r) = t.await.unwrap();
        match r {
            Ok(_) => *wins.entry(i).or_default() += 1,
            Err(code) => assert_eq!(code, CONFLICT, "s{i}"),
        }
    }
    assert!(
        wins.values().all(|&n| n == 1) && wins.len() == 40,
        "{wins:?}"
    );
    let ra = wa.read_snapshot().await.unwrap();
    let rb = wb.read_snapshot().await.unwrap();
    assert_eq!(ra.revision(), 40);
    assert_eq!(rb.revision(), 40);
    assert_eq!(ra.switch_count(), 40);
    assert_eq!(rb.switch_count(), 40);
    ha.shutdown().await;
    hb.shutdown().await;
}

fn weftd(cluster: &EtcdCluster, prefix: &str, instance: &str) -> Spawned {
    let dir = tempfile::tempdir().unwrap();
    let endpoints = cluster.endpoints();
    Spawned::start(
        dir.path(),
        &[
            "--etcd",
            &endpoints,
            "--etcd-prefix",
            prefix,
            "--instance",
            instance,
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_at_one_instance_is_read_at_another_at_once() {
    let cluster = EtcdCluster::start(3).await;
    let prefix = new_prefix();
    let a = weftd(&cluster, &prefix, "ia");
    let b = weftd(&cluster, &prefix, "ib");
    let (ca, cb) = (http_client(&a.url(), None), http_client(&b.url(), None));
    for i in 0..30 {
        let (w, r) = if i % 2 == 0 { (&ca, &cb) } else { (&cb, &ca) };
        let created = call(w, "switch_create", json!({"name": format!("s{i}")}))
            .await
            .unwrap();
        let read = call(r, "switch_get", json!({"switch": format!("s{i}")}))
            .await
            .unwrap();
        assert_eq!(read["id"], created["id"]);
        let status = call(r, "system_status", json!({})).await.unwrap();
        assert_eq!(status["revision"], json!(i + 1));
    }
    let status = call(&cb, "system_status", json!({})).await.unwrap();
    assert_eq!(status["store_backend"]["kind"], "etcd");
    assert_eq!(status["store_backend"]["prefix"], json!(prefix));
    assert_eq!(status["store_backend"]["instance"], "ib");
    assert_eq!(
        status["store_backend"]["endpoints"],
        json!(cluster.endpoint_list())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_continue_with_a_member_down_and_fail_cleanly_without_quorum() {
    let mut cluster = EtcdCluster::start(3).await;
    let prefix = new_prefix();
    let a = weftd(&cluster, &prefix, "ia");
    let b = weftd(&cluster, &prefix, "ib");
    let (ca, cb) = (http_client(&a.url(), None), http_client(&b.url(), None));
    call(&ca, "switch_create", json!({"name": "before"}))
        .await
        .unwrap();
    cluster.kill_member(0);
    for i in 0..40 {
        let w = if i % 2 == 0 { &ca } else { &cb };
        let r = if i % 2 == 0 { &cb } else { &ca };
        call(w, "switch_create", json!({"name": format!("s{i}")}))
            .await
            .unwrap_or_else(|e| panic!("write {i} with one member down: {e:?}"));
        call(r, "switch_get", json!({"switch": format!("s{i}")}))
            .await
            .unwrap();
    }
    // Without quorum a write fails with -32010 in bounded time, and works again after.
    cluster.kill_member(1);
    let started = Instant::now();
    let err = call(&ca, "switch_create", json!({"name": "no-quorum"}))
        .await
        .unwrap_err();
    assert_eq!(err.0, STORE_UNAVAILABLE, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    cluster.start_member(0);
    cluster.start_member(1);
    cluster.wait_ready().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match call(&cb, "switch_create", json!({"name": "after"})).await {
            Ok(_) => break,
            // The write without quorum may have been committed after all (whole).
            Err((code, _, _)) if code == CONFLICT => break,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no write after quorum came back: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    call(&ca, "switch_get", json!({"switch": "after"}))
        .await
        .unwrap();
}

/// What one acknowledged or failed write was.
enum Write {
    CreateSwitch(String),
    DeletePort(String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_writes_while_a_member_and_an_instance_restart() {
    let mut cluster = EtcdCluster::start(3).await;
    let prefix = new_prefix();
    let mut instances = [
        weftd(&cluster, &prefix, "ia"),
        weftd(&cluster, &prefix, "ib"),
    ];
    let setup = http_client(&instances[0].url(), None);
    // Ports with two ACLs each: deleting one is a multi-object write.
    call(&setup, "switch_create", json!({"name": "base"}))
        .await
        .unwrap();
    const PORTS: usize = 100;
    for i in 0..PORTS {
        call(
            &setup,
            "port_create",
            json!({"switch": "base", "name": format!("p{i}"),
                   "mac": format!("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256)}),
        )
        .await
        .unwrap();
        for (dir, prio) in [("ingress", 10), ("egress", 20)] {
            call(
                &setup,
                "acl_create",
                json!({"port": format!("p{i}"), "direction": dir, "priority": prio,
                       "action": "allow"}),
            )
            .await
            .unwrap();
        }
    }
    let mut acked: Vec<Write> = Vec::new();
    let mut failed: Vec<Write> = Vec::new();
    let mut rng = rand::rng();
    let mut last_revision = 0u64;
    let mut deleted_ports = BTreeSet::new();
    for i in 0..1000usize {
        if i == 200 {
            cluster.kill_member(rng.random_range(0..3));
        }
        if i == 400 {
            for j in 0..3 {
                if !member_running(&cluster, j) {
                    cluster.start_member(j);
                }
            }
        }
        if i == 600 {
            instances[1].kill9();
            instances[1] = weftd(&cluster, &prefix, "ib");
        }
        let k = rng.random_range(0..instances.len());
        let client = http_client(&instances[k].url(), None);
        let write = if i % 5 == 4 && deleted_ports.len() < PORTS {
            let mut p = rng.random_range(0..PORTS);
            while deleted_ports.contains(&p) {
                p = (p + 1) % PORTS;
            }
            deleted_ports.insert(p);
            Write::DeletePort(format!("p{p}"))
        } else {
            Write::CreateSwitch(format!("w{i}"))
        };
        let result = match &write {
            Write::CreateSwitch(name) => {
                call(&client, "switch_create", json!({"name": name})).await
            }
            Write::DeletePort(name) => call(&client, "port_delete", json!({"port": name})).await,
        };
        match result {
            Ok(_) => {
                let rev = call(&client, "system_status", json!({})).await.unwrap()["revision"]
                    .as_u64()
                    .unwrap();
                assert!(
                    rev >= last_revision,
                    "revision went back: {rev} < {last_revision}"
                );
                last_revision = rev;
                acked.push(write);
            }
            Err((code, msg, _)) => {
                assert_eq!(code, STORE_UNAVAILABLE, "write {i}: {msg}");
                failed.push(write);
            }
        }
    }
    assert!(
        acked.len() >= 900,
        "only {} of 1000 writes acknowledged",
        acked.len()
    );
    // A fresh instance loads the model (refusing it if any object dangled) and must hold
    // every acknowledged write; a failed write is whole or absent.
    let fresh = weftd(&cluster, &prefix, "ic");
    let c = http_client(&fresh.url(), None);
    let switches: BTreeSet<String> = call(&c, "switch_list", json!({}))
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    let ports: BTreeMap<String, Value> = call(&c, "port_list", json!({}))
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p.clone()))
        .collect();
    let acls = call(&c, "acl_list", json!({})).await.unwrap();
    let mut acls_of: BTreeMap<String, usize> = BTreeMap::new();
    for a in acls.as_array().unwrap() {
        *acls_of
            .entry(a["port_name"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    for w in &acked {
        match w {
            Write::CreateSwitch(name) => {
                assert!(switches.contains(name), "acknowledged {name} lost")
            }
            Write::DeletePort(name) => {
                assert!(
                    !ports.contains_key(name),
                    "acknowledged delete of {name} lost"
                );
                assert!(!acls_of.contains_key(name), "ACLs of deleted {name} remain");
            }
        }
    }
    for (name, _) in ports {
        assert_eq!(
            acls_of.get(&name),
            Some(&2),
            "port {name} lost part of its ACLs"
        );
    }
    eprintln!(
        "{} acknowledged, {} failed (-32010), final revision {last_revision}",
        acked.len(),
        failed.len()
    );
}

fn member_running(cluster: &EtcdCluster, i: usize) -> bool {
    cluster.members[i].is_running()
}
