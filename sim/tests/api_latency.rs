//! Issue 19, `weft-api-bench` at a tiny size: on redb, on etcd with one instance and on
//! etcd with three instances taking the writes in turn, every write is acknowledged and
//! every instance reads back, right after, exactly what was acknowledged (created
//! switches and ports present, deleted ports gone); each created switch and port is
//! read at the next instance as soon as its write is answered. No assertion on timings.
//!
//! Needs the `etcd` binary (Debian `etcd-server`) and weftd (built next to this test
//! binary by `cargo test --workspace`; otherwise `cargo build -p weft-controller --bin
//! weftd` or set `WEFTD`).

use weft_sim::api_latency::{self, Backend, LatencyOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_is_read_back_on_each_backend() {
    let writes = 20;
    let opts = LatencyOptions {
        writes,
        clients: 4,
        backends: vec![
            Backend::Redb,
            Backend::Etcd { instances: 1 },
            Backend::Etcd { instances: 3 },
        ],
        base_dir: None,
        keep: false,
        read_each: true,
    };
    let reports = api_latency::run(&opts)
        .await
        .expect("api bench (needs etcd-server and weftd)");
    assert_eq!(reports.len(), 3);
    for r in &reports {
        let label = r.backend.label();
        let problems = r.problems();
        assert!(problems.is_empty(), "{label}: {problems:#?}");
        let names: Vec<&str> = r.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "switch_create",
                "port_create",
                "port_delete",
                "port_create, 4 clients"
            ],
            "{label}"
        );
        let instances = match r.backend {
            Backend::Redb => 1,
            Backend::Etcd { instances } => instances,
        };
        for p in &r.phases {
            assert_eq!(p.sent, writes, "{label} {}", p.name);
            assert_eq!(
                p.latencies.len(),
                writes,
                "{label} {}: acknowledged",
                p.name
            );
            assert_eq!(p.read_back.instances, instances, "{label} {}", p.name);
            assert!(
                p.commits >= 1,
                "{label} {}: weftd counted no store commit",
                p.name
            );
        }
        // What each instance had to list: all switches, all ports, none after the
        // deletions, all the concurrently created ports.
        let expected: Vec<usize> = r.phases.iter().map(|p| p.read_back.expected).collect();
        assert_eq!(expected, [writes, writes, 0, writes], "{label}");
    }
}
