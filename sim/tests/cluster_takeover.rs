//! Issue 19, cluster mode in the simulator: two weftd instances on a private etcd cluster
//! share the simulated hypervisors (each node names both as managers and connects
//! OpenFlow to both, roles as OVS arbitrates them); every table equals the compiler's;
//! only a node's owner monitors its whole bridge (the other its root row); when one
//! instance is SIGKILLed the other owns and resyncs its nodes within the lease plus a few
//! seconds, sending no flow or group mod (nothing changed).
//!
//! Needs the `etcd` binary (Debian `etcd-server`) and weftd (built next to this test
//! binary by `cargo test --workspace`; otherwise `cargo build -p weft-controller --bin
//! weftd` or set `WEFTD`).

use std::time::Duration;

use weft_sim::deployment::{DeploymentOptions, measure};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_instance_nodes_are_taken_over_without_a_flow_mod() {
    let opts = DeploymentOptions {
        nodes: 12,
        instances: 2,
        log: "info".into(),
        base_dir: None,
        keep: false,
        router_every: 0,
        owner_lease: 2,
        weftd_args: Vec::new(),
    };
    let r = measure::run(&opts, 12, Duration::from_secs(120), 0)
        .await
        .expect("cluster bench (needs etcd-server, weftd and the vswitch schema)");
    let per = r["cold_start"]["per_instance"]
        .as_array()
        .expect("per instance");
    let owned: Vec<u64> = per
        .iter()
        .map(|p| p["nodes_owned"].as_u64().unwrap())
        .collect();
    assert_eq!(
        owned.iter().sum::<u64>(),
        12,
        "every node has one master: {owned:?}"
    );
    // Only the owner follows a node's whole bridge; the other instance watches its root
    // row alone (both are connected to every node).
    let whole: Vec<u64> = per
        .iter()
        .map(|p| p["nodes_monitored_whole"].as_u64().unwrap())
        .collect();
    assert_eq!(whole, owned, "nodes monitored whole per instance");
    let t = &r["takeover"];
    let moved = t["nodes"].as_u64().unwrap();
    assert_eq!(moved, owned[0], "the killed instance's nodes: {t}");
    assert!(
        moved > 0 && owned[1] > 0,
        "both instances own nodes: {owned:?}"
    );
    assert_eq!(
        t["owned_after"][1].as_u64(),
        Some(12),
        "the survivor owns all: {t}"
    );
    assert_eq!(
        t["mods_sent"].as_u64(),
        Some(0),
        "no flow mod on takeover: {t}"
    );
    assert_eq!(t["tables_changed"].as_u64(), Some(0), "{t}");
    let all = t["all_s"].as_f64().unwrap();
    assert!(all < 2.0 + 8.0, "takeover took {all} s with a 2 s lease");
}
