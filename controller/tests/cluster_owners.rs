//! Hypervisor ownership in cluster mode on a real 3-member etcd cluster, with in-process
//! instances (the ownership tasks alone, fed a topology): every hypervisor has exactly
//! one owner, spread by rendezvous hashing; a crashed instance's hypervisors move when
//! its lease expires; a leaving one hands over at once; an instance that loses etcd
//! steps down before its lease can expire.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::etcd::EtcdCluster;
use weft::cluster::etcd::{Cluster, ClusterSettings};
use weft::cluster::{InstanceInfo, Ownership, Role, rendezvous};
use weft::store::EtcdSettings;
use weft::topology::{EncapType, NodeView, TransportNodes};

const LEASE: Duration = Duration::from_secs(2);

fn topology(n: usize) -> Arc<TransportNodes> {
    let t = TransportNodes::new();
    for i in 0..n {
        t.report(NodeView {
            id: format!("hv{i}"),
            encap_ip: format!("10.0.0.{}", i + 1).parse().unwrap(),
            encap_type: EncapType::Geneve,
            bridge: "br-int".into(),
            datapath_id: Some(i as u64 + 1),
            vifs: BTreeMap::new(),
            tunnels: BTreeMap::new(),
            bridge_mappings: BTreeMap::new(),
            patches: BTreeMap::new(),
        });
    }
    t
}

async fn start(etcd: &EtcdCluster, prefix: &str, name: &str, nodes: usize) -> Cluster {
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
    let (tx, _) = weft::cluster::etcd::channel(name);
    Cluster::start(settings, topology(nodes), TransportNodes::new(), tx)
        .await
        .unwrap()
}

/// Which instance owns each node according to `o`'s view, once every node has an owner
/// that is live and holds the record under its current lease.
fn owners(o: &Ownership, nodes: usize) -> Option<BTreeMap<String, String>> {
    let v = o.view();
    let mut out = BTreeMap::new();
    for i in 0..nodes {
        let node = format!("hv{i}");
        let r = v.owners.get(&node)?;
        if !v.instances.contains_key(&r.instance) {
            return None;
        }
        out.insert(node, r.instance.clone());
    }
    Some(out)
}

fn expected(live: &[&str], nodes: usize) -> BTreeMap<String, String> {
    (0..nodes)
        .map(|i| {
            let node = format!("hv{i}");
            let o = rendezvous::owner(&node, live.iter().copied())
                .unwrap()
                .to_string();
            (node, o)
        })
        .collect()
}

/// Waits (up to `within`) until `o` sees exactly `want`; returns how long it took.
async fn until_owners(
    o: &Ownership,
    nodes: usize,
    want: &BTreeMap<String, String>,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        if owners(o, nodes).as_ref() == Some(want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "owners never became {want:?}; last view: {:?}",
            o.view()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The nodes `o` acts as owner of, sorted by name.
fn roles(o: &Ownership, nodes: usize) -> Vec<String> {
    let mut r: Vec<String> = (0..nodes)
        .map(|i| format!("hv{i}"))
        .filter(|n| o.role(n).is_owner())
        .collect();
    r.sort();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_owner_per_hypervisor_failover_on_crash_and_handover_on_leave() {
    const N: usize = 30;
    let etcd = EtcdCluster::start(3).await;
    let prefix = format!("/t{}", uuid::Uuid::new_v4().simple());
    let a = start(&etcd, &prefix, "c1", N).await;
    let b = start(&etcd, &prefix, "c2", N).await;
    let c = start(&etcd, &prefix, "c3", N).await;
    let want = expected(&["c1", "c2", "c3"], N);
    for o in [&a.ownership, &b.ownership, &c.ownership] {
        until_owners(o, N, &want, Duration::from_secs(20)).await;
    }
    // Each instance acts as owner of exactly its share, with the record's generation.
    for (o, name) in [
        (&a.ownership, "c1"),
        (&b.ownership, "c2"),
        (&c.ownership, "c3"),
    ] {
        let mine: Vec<String> = want
            .iter()
            .filter(|(_, i)| *i == name)
            .map(|(n, _)| n.clone())
            .collect();
        assert!(!mine.is_empty(), "{name} owns nothing of {N}");
        assert_eq!(roles(o, N), mine, "{name}'s roles");
        let v = o.view();
        for n in &mine {
            assert_eq!(
                o.role(n),
                Role::Owner {
                    generation: Some(v.owners[n].generation)
                }
            );
        }
    }
    let before = a.ownership.view();

    // Crash c2: its nodes move to c1/c3 only once its lease expires, the others stay.
    let crashed = Instant::now();
    b.abort();
    let want2 = expected(&["c1", "c3"], N);
    let took = until_owners(&a.ownership, N, &want2, LEASE * 3 + Duration::from_secs(5)).await;
    eprintln!(
        "failover after a crash: every node owned again {took:?} after the kill (lease {LEASE:?})"
    );
    assert!(crashed.elapsed() < LEASE * 3 + Duration::from_secs(5));
    let after = a.ownership.view();
    for (node, owner) in &want {
        if owner != "c2" {
            assert_eq!(
                after.owners[node].generation, before.owners[node].generation,
                "{node} moved though its owner {owner} stayed"
            );
        } else {
            assert!(
                after.owners[node].generation > before.owners[node].generation,
                "{node}'s new owner must hold a newer generation"
            );
        }
    }
    until_owners(&c.ownership, N, &want2, Duration::from_secs(5)).await;

    // c3 leaves in order: it revokes its lease, c1 owns everything well within a lease.
    let left = Instant::now();
    c.shutdown().await;
    let want3 = expected(&["c1"], N);
    until_owners(&a.ownership, N, &want3, LEASE).await;
    eprintln!("handover on a clean leave: {:?}", left.elapsed());

    // c2 comes back: it gets back exactly its rendezvous share.
    let b2 = start(&etcd, &prefix, "c2", N).await;
    let want4 = expected(&["c1", "c2"], N);
    until_owners(&a.ownership, N, &want4, Duration::from_secs(10)).await;
    until_owners(&b2.ownership, N, &want4, Duration::from_secs(10)).await;
    assert_eq!(
        roles(&b2.ownership, N),
        want4
            .iter()
            .filter(|(_, i)| *i == "c2")
            .map(|(n, _)| n.clone())
            .collect::<Vec<_>>()
    );
    b2.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_loses_etcd_steps_down_before_its_lease_can_expire() {
    const N: usize = 4;
    let mut etcd = EtcdCluster::start(3).await;
    let prefix = format!("/t{}", uuid::Uuid::new_v4().simple());
    let a = start(&etcd, &prefix, "solo", N).await;
    let want = expected(&["solo"], N);
    until_owners(&a.ownership, N, &want, Duration::from_secs(20)).await;
    // Let a renewal or two pass, so the lease is in its steady state.
    tokio::time::sleep(LEASE).await;
    assert_eq!(roles(&a.ownership, N).len(), N);
    // etcd gone: renewals fail from now on. (All members: a leader that lost its quorum
    // still renews leases until its check-quorum steps it down, legitimately, since no
    // lease can expire without a quorum either.)
    for i in 0..3 {
        etcd.kill_member(i);
    }
    let lost = Instant::now();
    let mut view = a.ownership.watch();
    loop {
        if roles(&a.ownership, N).is_empty() {
            break;
        }
        assert!(
            lost.elapsed() < LEASE,
            "still acting as owner {:?} after etcd was lost (lease {LEASE:?})",
            lost.elapsed()
        );
        let _ = tokio::time::timeout(Duration::from_millis(20), view.changed()).await;
    }
    let stepped_down = lost.elapsed();
    eprintln!("stepped down {stepped_down:?} after losing etcd (lease {LEASE:?})");
    // The published view says so too (sessions waiting on it wake).
    let deadline = Instant::now() + Duration::from_secs(2);
    while a.ownership.view().leased {
        assert!(Instant::now() < deadline, "the lapse was never published");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // etcd back: the instance registers again and owns its hypervisors again.
    for i in 0..3 {
        etcd.start_member(i);
    }
    etcd.wait_ready().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while roles(&a.ownership, N).len() != N {
        assert!(
            Instant::now() < deadline,
            "never owned its hypervisors again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.shutdown().await;
}
