//! Cluster mode's observed topology shared through etcd (DESIGN.md §7), with in-process
//! instances (the cluster tasks alone, each fed its own sessions' topology) on a real
//! 3-member etcd: each hypervisor's owner writes `<prefix>/observed/nodes/<id>`, every
//! other instance compiles from that record, a crashed owner's records stay and no
//! instance's topology ever loses a node through the failover, the new owner rewrites
//! them, and a hypervisor its owner forgets leaves every topology.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::etcd::EtcdCluster;
use serde_json::Value;
use uuid::Uuid;
use weft::cluster::etcd::{Cluster, ClusterSettings};
use weft::cluster::{InstanceInfo, rendezvous};
use weft::store::EtcdSettings;
use weft::topology::{EncapType, NodeView, TransportNodes, Vif};

const LEASE: Duration = Duration::from_secs(2);
const N: usize = 6;

fn node(i: usize, vifs: &[(&str, u32)]) -> NodeView {
    NodeView {
        id: format!("hv{i}"),
        encap_ip: format!("10.0.0.{}", i + 1).parse().unwrap(),
        encap_type: EncapType::Geneve,
        bridge: "br-int".into(),
        datapath_id: Some(i as u64 + 1),
        vifs: vifs
            .iter()
            .map(|(k, ofport)| {
                (
                    k.to_string(),
                    Vif {
                        ofport: *ofport,
                        interface: Uuid::from_u128(*ofport as u128),
                        name: format!("tap{ofport}"),
                    },
                )
            })
            .collect(),
        // This instance's own tunnel port towards hv0: never shared.
        tunnels: BTreeMap::from([("hv0".to_string(), 100 + i as u32)]),
        bridge_mappings: BTreeMap::new(),
        patches: BTreeMap::new(),
    }
}

/// One instance: its sessions' topology (`local`) and the one it compiles from.
struct Instance {
    name: String,
    cluster: Cluster,
    local: Arc<TransportNodes>,
    shared: Arc<TransportNodes>,
}

async fn start(etcd: &EtcdCluster, prefix: &str, name: &str) -> Instance {
    let settings = ClusterSettings {
        etcd: EtcdSettings::new(etcd.endpoint_list(), prefix, name),
        instance: name.into(),
        info: InstanceInfo {
            api: format!("127.0.0.1:{}", 7000 + name.len()),
            openflow_advertise: None,
            ovsdb_manager: None,
        },
        owner_lease: LEASE,
    };
    let local = TransportNodes::new();
    for i in 0..N {
        local.report(node(i, &[(&format!("vm{i}"), 1)]));
    }
    let shared = TransportNodes::new();
    let (tx, _) = weft::cluster::etcd::channel(name);
    let cluster = Cluster::start(settings, local.clone(), shared.clone(), tx)
        .await
        .unwrap();
    Instance {
        name: name.into(),
        cluster,
        local,
        shared,
    }
}

/// `<prefix>/observed/nodes/<node>` as JSON, if present.
async fn record(etcd: &EtcdCluster, prefix: &str, node: &str) -> Option<Value> {
    let mut c = etcd_client::Client::connect(etcd.endpoint_list(), None)
        .await
        .unwrap();
    let key = format!("{prefix}/observed/nodes/{node}");
    let r = tokio::time::timeout(Duration::from_secs(2), c.get(key, None))
        .await
        .ok()?
        .ok()?;
    let kv = r.kvs().first()?;
    assert_eq!(kv.lease(), 0, "observed records live under no lease");
    serde_json::from_slice(kv.value()).ok()
}

async fn until<F: FnMut() -> bool>(what: &str, within: Duration, mut f: F) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Counts, in the background, the moments where `shared` lacked one of the `N` nodes.
fn watch_gaps(shared: &TransportNodes) -> (Arc<AtomicBool>, Arc<AtomicU32>) {
    let stop = Arc::new(AtomicBool::new(false));
    let gaps = Arc::new(AtomicU32::new(0));
    let mut rx = shared.watch();
    let (s, g) = (stop.clone(), gaps.clone());
    tokio::spawn(async move {
        while !s.load(Ordering::Relaxed) {
            if rx.borrow_and_update().nodes.len() != N {
                g.fetch_add(1, Ordering::Relaxed);
            }
            let _ = tokio::time::timeout(Duration::from_millis(10), rx.changed()).await;
        }
    });
    (stop, gaps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_publish_others_compile_from_the_records_through_a_crash() {
    let etcd = EtcdCluster::start(3).await;
    let prefix = format!("/t{}", Uuid::new_v4().simple());
    let mut all = vec![
        start(&etcd, &prefix, "c1").await,
        start(&etcd, &prefix, "c2").await,
        start(&etcd, &prefix, "c3").await,
    ];
    let names = ["c1", "c2", "c3"];
    let owner_of = |live: &[&str], n: &str| {
        rendezvous::owner(n, live.iter().copied())
            .unwrap()
            .to_string()
    };

    // Every node's record, written by its owner, under no lease; no tunnels in it.
    for i in 0..N {
        let id = format!("hv{i}");
        let owner = owner_of(&names, &id);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = record(&etcd, &prefix, &id).await;
            if let Some(r) = &r
                && r["instance"] == owner.as_str()
            {
                assert_eq!(r["encap_ip"], format!("10.0.0.{}", i + 1));
                assert_eq!(r["encap_type"], "geneve");
                assert_eq!(r["datapath_id"], i as u64 + 1);
                assert_eq!(r["vifs"][format!("vm{i}")]["ofport"], 1);
                assert!(r.get("tunnels").is_none(), "{r}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id}: record {r:?}, owner {owner}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // A VM plugged on hv0, seen (here) only by its owner's session: every other instance
    // compiles from the owner's record, not from what its own session says.
    let owner0 = owner_of(&names, "hv0");
    let o = all.iter().position(|i| i.name == owner0).unwrap();
    all[o].local.report(node(0, &[("vm0", 1), ("late", 2)]));
    for inst in &all {
        until(
            &format!("{} compiles with hv0's late VM", inst.name),
            Duration::from_secs(5),
            || {
                inst.shared
                    .snapshot()
                    .nodes
                    .get("hv0")
                    .is_some_and(|v| v.vifs.contains_key("late"))
            },
        )
        .await;
        let t = inst.shared.snapshot();
        assert_eq!(t.nodes.len(), N);
        // Records carry no tunnels: every view has the tunnels this instance's own
        // session sees on that node, so a takeover compiles the node with them at once.
        let local = inst.local.snapshot();
        for (id, v) in t.nodes.iter() {
            let mine = local.nodes.get(id).map(|m| m.tunnels.clone());
            assert_eq!(
                Some(&v.tunnels),
                mine.as_ref(),
                "{}: {id}'s tunnels must be what this instance's session sees",
                inst.name
            );
        }
    }
    assert!(
        !all[(o + 1) % 3].local.snapshot().nodes["hv0"]
            .vifs
            .contains_key("late")
    );

    // The owner of hv0 crashes: its records stay, no survivor's topology ever lacks a
    // node, and hv0's new owner writes it again from its own session.
    let victim = all.remove(o);
    let gaps: Vec<_> = all.iter().map(|i| watch_gaps(&i.shared)).collect();
    let crashed = Instant::now();
    victim.cluster.abort();
    let live: Vec<&str> = names.iter().copied().filter(|n| *n != owner0).collect();
    let new_owner = owner_of(&live, "hv0");
    loop {
        let r = record(&etcd, &prefix, "hv0").await;
        let r = r.unwrap_or_else(|| {
            panic!(
                "hv0's record vanished {:?} after the crash",
                crashed.elapsed()
            )
        });
        if r["instance"] == new_owner.as_str() {
            // The new owner's session never saw the late VM.
            assert!(r["vifs"].get("late").is_none(), "{r}");
            break;
        }
        assert!(
            crashed.elapsed() < LEASE * 3 + Duration::from_secs(5),
            "hv0 never rewritten: {r}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "MEASURED: hv0's record rewritten by {new_owner} {:?} after {owner0} crashed",
        crashed.elapsed()
    );
    for inst in &all {
        until(
            &format!("{} follows the new record", inst.name),
            Duration::from_secs(5),
            || {
                inst.shared
                    .snapshot()
                    .nodes
                    .get("hv0")
                    .is_some_and(|v| !v.vifs.contains_key("late"))
            },
        )
        .await;
    }
    // Every node the crashed instance owned is written again by a survivor.
    for i in 0..N {
        let id = format!("hv{i}");
        let want = owner_of(&live, &id);
        let deadline = Instant::now() + Duration::from_secs(10);
        while record(&etcd, &prefix, &id)
            .await
            .map(|r| r["instance"].clone())
            != Some(Value::from(want.as_str()))
        {
            assert!(Instant::now() < deadline, "{id} never rewritten by {want}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for ((stop, gaps), inst) in gaps.iter().zip(&all) {
        stop.store(true, Ordering::Relaxed);
        assert_eq!(
            gaps.load(Ordering::Relaxed),
            0,
            "{} lost a node during the failover",
            inst.name
        );
    }

    // hv0 is gone for good (every session forgot it): its owner deletes the record,
    // and it leaves every topology.
    for inst in &all {
        inst.local.forget("hv0");
    }
    for inst in &all {
        until(
            &format!("{} forgets hv0", inst.name),
            Duration::from_secs(5),
            || !inst.shared.snapshot().nodes.contains_key("hv0"),
        )
        .await;
    }
    assert!(record(&etcd, &prefix, "hv0").await.is_none());
    assert_eq!(all[0].shared.snapshot().nodes.len(), N - 1);
    for inst in all {
        inst.cluster.shutdown().await;
    }
}
