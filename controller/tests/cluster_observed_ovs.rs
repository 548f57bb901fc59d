//! Cluster mode's shared observed topology end to end (DESIGN.md §7): three weftd
//! instances on a real 3-member etcd and two hypervisors of real Open vSwitch owned by
//! different instances. Each hypervisor's owner publishes its record; a VM on one
//! reaches a VM on the other through the owners' records; SIGKILLing one owner loses no
//! ping, its record never leaves etcd, and the new owner writes it again.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::cluster::ClusterLab;
use serde_json::{Value, json};

const PING: Duration = Duration::from_millis(10);
/// `--owner-lease` default.
const LEASE: Duration = Duration::from_secs(3);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `<prefix>/observed/nodes/<node>` as JSON, if present (None also if etcd is unreachable).
async fn record(endpoints: Vec<String>, prefix: &str, node: &str) -> Option<Value> {
    let key = format!("{prefix}/observed/nodes/{node}");
    for e in endpoints {
        let Ok(mut c) = etcd_client::Client::connect([&e], None).await else {
            continue;
        };
        let Ok(Ok(r)) =
            tokio::time::timeout(Duration::from_secs(2), c.get(key.clone(), None)).await
        else {
            continue;
        };
        return r
            .kvs()
            .first()
            .and_then(|kv| serde_json::from_slice(kv.value()).ok());
    }
    None
}

/// Waits until `node`'s record is written by `owner` and names `vm` on it.
fn wait_record(cl: &ClusterLab, node: &str, owner: &str, vm: &str, encap: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = cl
            .rt
            .block_on(record(cl.etcd.endpoint_list(), &cl.prefix, node));
        if let Some(r) = &r
            && r["instance"] == owner
            && r["vifs"].get(vm).is_some()
        {
            assert_eq!(r["encap_ip"], encap, "{r}");
            assert_eq!(r["bridge"], "br-int", "{r}");
            assert!(r["datapath_id"].is_u64(), "{r}");
            return r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{node}'s record is {r:?}, not {owner}'s with {vm}\n{}",
            cl.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn owners_publish_their_hypervisors_and_a_crash_keeps_the_record_and_the_pings() {
    // Named so that rendezvous hashing puts hv1 on c5 and hv2 on c2.
    let mut cl = ClusterLab::start_named(2, &["c1", "c2", "c5"]);
    cl.wait_settled(Duration::from_secs(60));
    let (hv1, hv2) = (
        cl.lab.hv(0).system_id().to_string(),
        cl.lab.hv(1).system_id().to_string(),
    );
    let owner1 = cl.owner(cl.lab.hv(0)).expect("hv1 owned").0;
    let owner2 = cl.owner(cl.lab.hv(1)).expect("hv2 owned").0;
    assert_ne!(
        owner1, owner2,
        "the instances' names put the two hypervisors on different owners"
    );
    cl.call(0, "switch_create", json!({"name": "blue", "vni": 5001}));
    for (i, name) in [(1, "vm1"), (2, "vm2")] {
        cl.call(
            i,
            "port_create",
            json!({"switch": "blue", "name": name, "mac": format!("02:00:00:00:00:0{i}"),
                   "ips": [format!("10.0.0.{i}")]}),
        );
    }
    let vm1 = cl.plug(0, "vm1", "02:00:00:00:00:01", "10.0.0.1/24");
    let _vm2 = cl.plug(1, "vm2", "02:00:00:00:00:02", "10.0.0.2/24");
    let encap1 = cl.lab.hv(0).transport_ip().to_string();
    let encap2 = cl.lab.hv(1).transport_ip().to_string();
    let r1 = wait_record(&cl, &hv1, &owner1, "vm1", &encap1);
    wait_record(&cl, &hv2, &owner2, "vm2", &encap2);
    eprintln!("{hv1}'s record: {r1}");
    // hv1's owner compiles hv1 from hv2's record (written by another instance).
    vm1.ping_until_reachable(ip("10.0.0.2"), Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("vm1 -> vm2: {e}\n{}", cl.logs()));

    // SIGKILL hv2's owner while vm1 pings vm2; sample hv2's record meanwhile.
    let ping = vm1.ping_continuous(ip("10.0.0.2"), PING).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let stop = Arc::new(AtomicBool::new(false));
    let absent = Arc::new(AtomicU32::new(0));
    let sampler = {
        let (stop, absent) = (stop.clone(), absent.clone());
        let (endpoints, prefix, node) = (cl.etcd.endpoint_list(), cl.prefix.clone(), hv2.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut samples = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if rt
                    .block_on(record(endpoints.clone(), &prefix, &node))
                    .is_none()
                {
                    absent.fetch_add(1, Ordering::Relaxed);
                }
                samples += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        })
    };
    let killed = Instant::now();
    let victim = cl.index(&owner2);
    cl.kill9(victim);
    let new_owner = loop {
        if let Some((o, _)) = cl.owner(cl.lab.hv(1))
            && o != owner2
        {
            break o;
        }
        assert!(
            killed.elapsed() < LEASE * 4,
            "no new owner of {hv2}\n{}",
            cl.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    wait_record(&cl, &hv2, &new_owner, "vm2", &encap2);
    eprintln!(
        "MEASURED: {hv2}'s record rewritten by {new_owner} {:?} after {owner2} was SIGKILLed",
        killed.elapsed()
    );
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    let report = ping.stop().unwrap();
    eprintln!(
        "MEASURED: vm1 -> vm2 every {PING:?} across the failover: {} sent, {} lost; \
         {hv2}'s record sampled {samples} times",
        report.summary.transmitted,
        report.lost()
    );
    assert!(samples > 20, "record sampled {samples} times");
    assert_eq!(
        absent.load(Ordering::Relaxed),
        0,
        "{hv2}'s record left etcd during the failover"
    );
    assert_eq!(
        report.lost(),
        0,
        "pings lost across the failover: {report:?}\n{}",
        cl.logs()
    );
    // hv1's record was not rewritten by anyone else.
    wait_record(&cl, &hv1, &owner1, "vm1", &encap1);
}
