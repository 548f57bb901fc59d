//! Cluster mode's failover end to end (DESIGN.md §7): three weftd instances on a real
//! 3-member etcd, two hypervisors of real Open vSwitch in namespaces naming all three as
//! managers, VMs pinging each other every 10 ms while instances are killed, stopped and
//! restarted. Every assertion is about what OVS holds (ownership fence, Controller rows,
//! flows) or what packets did.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::cluster::{ClusterLab, MarkWatch};
use integration::lab::VmSpec;
use serde_json::json;

const PING: Duration = Duration::from_millis(10);
/// `--owner-lease` default.
const LEASE: Duration = Duration::from_secs(3);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A cluster of 3 instances, 2 hypervisors, one switch with vm1 on hv1 and vm2 on hv2.
fn setup() -> (ClusterLab, integration::lab::Vm, integration::lab::Vm) {
    setup_on(ClusterLab::start(2, 3))
}

/// [`setup`] on a given cluster of 3 instances and 2 hypervisors.
fn setup_on(cl: ClusterLab) -> (ClusterLab, integration::lab::Vm, integration::lab::Vm) {
    cl.wait_settled(Duration::from_secs(60));
    cl.call(0, "switch_create", json!({"name": "blue", "vni": 5001}));
    for (i, name) in [(1, "vm1"), (2, "vm2"), (3, "vm3")] {
        cl.call(
            i % 3,
            "port_create",
            json!({"switch": "blue", "name": name, "mac": format!("02:00:00:00:00:0{i}"),
                   "ips": [format!("10.0.0.{i}")]}),
        );
    }
    let vm1 = cl.plug(0, "vm1", "02:00:00:00:00:01", "10.0.0.1/24");
    let vm2 = cl.plug(1, "vm2", "02:00:00:00:00:02", "10.0.0.2/24");
    check_status(&cl);
    check_managers(&cl);
    vm1.ping_until_reachable(ip("10.0.0.2"), Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("vm1 -> vm2: {e}\n{}", cl.logs()));
    (cl, vm1, vm2)
}

/// Every instance's Manager row on every hypervisor is out of in-band control and left
/// for weftd to probe: each hypervisor's owner writes them all, from the addresses the
/// other instances announce.
fn check_managers(cl: &ClusterLab) {
    let want = format!(
        ",out-of-band,{}",
        weft::southbound::HYPERVISOR_INACTIVITY_PROBE_MS
    );
    for hv in cl.lab.hypervisors() {
        let rows = || {
            hv.vsctl([
                "--format=csv",
                "--data=bare",
                "--no-headings",
                "--columns=target,connection_mode,inactivity_probe",
                "list",
                "Manager",
            ])
            .unwrap_or_default()
        };
        let done = |text: &str| {
            text.lines().count() == cl.instances.len() && text.lines().all(|l| l.ends_with(&want))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !done(&rows()) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        let text = rows();
        assert!(
            done(&text),
            "{}'s Manager rows:\n{text}\n{}",
            hv.name(),
            cl.logs()
        );
    }
}

/// Every instance reports the same cluster: 3 instances alive, the 2 hypervisors owned
/// as etcd says, `owner` in the node views; `weftctl cluster status` prints it.
fn check_status(cl: &ClusterLab) {
    let owners: Vec<String> = cl
        .lab
        .hypervisors()
        .iter()
        .map(|hv| cl.owner(hv).expect("owned").0)
        .collect();
    for i in 0..cl.instances.len() {
        let s = cl.call(i, "cluster_status", json!({}));
        assert_eq!(s["instance"], cl.instances[i].name);
        let list = s["instances"].as_array().unwrap();
        assert_eq!(list.len(), 3, "{s}");
        let mut total = 0;
        for inst in list {
            assert_eq!(inst["alive"], true, "{s}");
            let id = inst["id"].as_str().unwrap();
            let n = inst["nodes"].as_u64().unwrap() as usize;
            assert_eq!(n, owners.iter().filter(|o| *o == id).count(), "{s}");
            total += n;
        }
        assert_eq!(total, 2);
        assert_eq!(s["etcd"]["endpoints"].as_array().unwrap().len(), 3);
        for (hv, owner) in cl.lab.hypervisors().iter().zip(&owners) {
            let n = cl.call(i, "node_get", json!({"node": hv.system_id()}));
            assert_eq!(n["owner"], owner.as_str(), "{n}");
        }
    }
    let out = std::process::Command::new(common::weftctl_bin())
        .arg("--server")
        .arg(cl.instances[0].weftd.as_ref().unwrap().url())
        .args(["cluster", "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    eprintln!("weftctl cluster status:\n{text}");
    for inst in &cl.instances {
        assert!(text.contains(&inst.name), "{text}");
    }
}

/// Flows on br-int without counters, sorted: what a stale owner must not change.
fn flows(cl: &ClusterLab, hv: usize) -> Vec<String> {
    let out = cl
        .lab
        .hv(hv)
        .ofctl(["-O", "OpenFlow13", "--no-stats", "dump-flows", "br-int"])
        .unwrap();
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| l.contains("cookie="))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn killing_an_owner_loses_no_ping_and_another_takes_over_within_the_lease() {
    let (mut cl, vm1, _vm2) = setup();
    let hv1 = cl.lab.hv(0).system_id().to_string();
    let (owner, generation) = cl.owner(cl.lab.hv(0)).expect("hv1 has an owner");
    let victim = cl.index(&owner);
    let ping = vm1.ping_continuous(ip("10.0.0.2"), PING).unwrap();
    let marks = MarkWatch::start(cl.lab.hv(0), "vm1");
    std::thread::sleep(Duration::from_secs(1));

    let killed = Instant::now();
    cl.kill9(victim);
    // Meanwhile, through another instance: a new port (its VM plugs after the takeover).
    let other = (0..3).find(|i| *i != victim).unwrap();
    cl.call(
        other,
        "port_create",
        json!({"switch": "blue", "name": "vm4", "mac": "02:00:00:00:00:04", "ips": ["10.0.0.4"]}),
    );
    let (new_owner, new_generation) = loop {
        if let Some((o, g)) = cl.owner(cl.lab.hv(0))
            && o != owner
        {
            break (o, g);
        }
        assert!(
            killed.elapsed() < LEASE * 4,
            "no new owner of {hv1} {:?} after the kill\n{}",
            killed.elapsed(),
            cl.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let takeover = killed.elapsed();
    eprintln!(
        "MEASURED: {hv1} owned by {new_owner} {takeover:?} after {owner} was SIGKILLed (lease {LEASE:?})"
    );
    assert!(new_generation > generation, "generation must grow");
    let settled = cl.wait_settled(Duration::from_secs(30));
    eprintln!(
        "MEASURED: fence and Controller rows settled {:?} after the kill: {settled:?}",
        killed.elapsed()
    );
    // The new owner found hv1's flows already right: its reconcile on taking the master
    // role sent nothing (vm4's flows came after, as a change).
    let new = cl.index(&new_owner);
    let log = cl.log(new);
    let about_hv1 =
        |l: &&str| l.contains(&format!("node={hv1} ")) || l.contains(&format!("node=\"{hv1}\""));
    let takeover_lines: Vec<&str> = log
        .lines()
        .filter(about_hv1)
        .skip_while(|l| {
            !l.contains(&format!(
                "master role taken node=\"{hv1}\" generation={new_generation}"
            ))
        })
        .filter(|l| {
            l.contains("switch already holds the desired state")
                || l.contains("installed the desired state")
        })
        .collect();
    eprintln!("new owner's reconciles of {hv1} since the takeover: {takeover_lines:#?}");
    assert!(
        takeover_lines
            .first()
            .is_some_and(|l| l.contains("switch already holds the desired state")),
        "the new owner changed {hv1}'s flows on taking over\n{log}"
    );

    std::thread::sleep(Duration::from_secs(1));
    let report = ping.stop().unwrap();
    eprintln!(
        "MEASURED: vm1 -> vm2 every {PING:?} across the failover: {} sent, {} lost",
        report.summary.transmitted,
        report.lost()
    );
    assert_eq!(
        report.lost(),
        0,
        "pings lost across the failover: {report:?}"
    );
    let (samples, unmarked) = marks.stop();
    assert!(samples > 10, "mark sampled {samples} times");
    assert_eq!(unmarked, 0, "vm1 lost weft-installed during the takeover");

    // The port created meanwhile is installed on hv1 by its new owner once its VM plugs.
    // Plugged after the measured window: Open vSwitch's userspace datapath now and then
    // drops a packet in flight while a port is added, with no controller involved
    // (reproduced with shared/lab/ovs-lab.sh), which is not what this test measures.
    let vm4 = cl
        .lab
        .hv(0)
        .plug_vm(
            VmSpec::new("vm4", "02:00:00:00:00:04", "vm4")
                .addr("10.0.0.4/24")
                .unwrap(),
        )
        .unwrap();
    cl.wait_installed(0, "vm4");
    vm4.exec("sysctl", &["-qw", "net.ipv6.conf.eth0.disable_ipv6=1"])
        .unwrap();
    vm4.ping_until_reachable(ip("10.0.0.2"), Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("vm4 -> vm2: {e}\n{}", cl.logs()));
    assert!(
        takeover < LEASE + Duration::from_secs(1) + Duration::from_secs(2),
        "takeover took {takeover:?}, far past the lease"
    );
}

#[test]
fn a_stopped_owner_writes_nothing_stale_after_it_resumes() {
    let (cl, vm1, _vm2) = setup();
    let hv1 = cl.lab.hv(0).system_id().to_string();
    let (owner, generation) = cl.owner(cl.lab.hv(0)).expect("hv1 has an owner");
    let stale_fence = format!("{owner}:{generation}");
    let victim = cl.index(&owner);
    let ping = vm1.ping_continuous(ip("10.0.0.2"), PING).unwrap();
    std::thread::sleep(Duration::from_secs(1));

    cl.signal(victim, "-STOP");
    let stopped = Instant::now();
    let (new_owner, new_generation) = loop {
        if let Some((o, g)) = cl.owner(cl.lab.hv(0))
            && o != owner
        {
            break (o, g);
        }
        assert!(
            stopped.elapsed() < LEASE * 4,
            "no new owner of {hv1} while {owner} is stopped\n{}",
            cl.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!(
        "MEASURED: {hv1} owned by {new_owner} {:?} after {owner} was SIGSTOPped (lease {LEASE:?})",
        stopped.elapsed()
    );
    assert!(new_generation > generation);
    // The takeover's window ends here; the port plugged next is outside any measured
    // window (the userspace datapath can drop a packet in flight while a port is added,
    // with no controller involved), and a second window covers the resume.
    let report = ping.stop().unwrap();
    eprintln!(
        "MEASURED: vm1 -> vm2 every {PING:?} across the stop and takeover: {} sent, {} lost",
        report.summary.transmitted,
        report.lost()
    );
    assert_eq!(
        report.lost(),
        0,
        "pings lost across the takeover: {report:?}"
    );
    // While it is stopped, a change: a new port on hv1, installed by the new owner.
    let new = cl.index(&new_owner);
    cl.call(
        new,
        "port_create",
        json!({"switch": "blue", "name": "vm5", "mac": "02:00:00:00:00:05", "ips": ["10.0.0.5"]}),
    );
    let vm5 = cl.plug(0, "vm5", "02:00:00:00:00:05", "10.0.0.5/24");
    vm5.ping_until_reachable(ip("10.0.0.2"), Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("vm5 -> vm2: {e}\n{}", cl.logs()));
    let fence = cl.fence(cl.lab.hv(0));
    assert_eq!(fence, Some(format!("{new_owner}:{new_generation}")));
    let before = flows(&cl, 0);
    let ping = vm1.ping_continuous(ip("10.0.0.2"), PING).unwrap();
    // Keep it stopped well past its lease.
    std::thread::sleep((LEASE * 2).saturating_sub(stopped.elapsed()));

    // Resume it: whatever it had queued, OVS must never see its stale generation again.
    cl.signal(victim, "-CONT");
    let resumed = Instant::now();
    let mut seen = Vec::new();
    while resumed.elapsed() < LEASE * 3 {
        let f = cl.fence(cl.lab.hv(0));
        assert_ne!(
            f.as_deref(),
            Some(stale_fence.as_str()),
            "the stale owner wrote its fence back\n{}",
            cl.logs()
        );
        // Any fence names the newest ownership record.
        if let Some(f) = &f
            && seen.last() != Some(f)
        {
            seen.push(f.clone());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let settled = cl.wait_settled(Duration::from_secs(30));
    eprintln!("fences on {hv1} after the resume: {seen:?}; owners now {settled:?}");
    for f in &seen {
        let g: i64 = f.rsplit(':').next().unwrap().parse().unwrap();
        assert!(
            g >= new_generation,
            "fence {f} is older than {new_generation}"
        );
    }
    // The flows are what they were: the resumed instance changed nothing (if it became
    // the owner again, its dump and diff found them right).
    assert_eq!(
        flows(&cl, 0),
        before,
        "hv1's flows changed after the resume"
    );
    let log = cl.log(victim);
    let refused = log
        .lines()
        .filter(|l| {
            l.contains("OVSDB transaction not applied") || l.contains("refused the role request")
        })
        .count();
    eprintln!("MEASURED: the resumed instance saw {refused} of its writes refused");
    for l in log.lines().filter(|l| {
        [
            "not applied",
            "refused the role",
            "cannot renew",
            "expired in etcd",
            "no longer the owner",
            "took ownership",
            "master role",
            "fencing",
        ]
        .iter()
        .any(|k| l.contains(k))
    }) {
        eprintln!("  {owner}: {l}");
    }

    std::thread::sleep(Duration::from_secs(1));
    let report = ping.stop().unwrap();
    eprintln!(
        "MEASURED: vm1 -> vm2 every {PING:?} across the resume: {} sent, {} lost",
        report.summary.transmitted,
        report.lost()
    );
    assert_eq!(report.lost(), 0, "pings lost: {report:?}");
}

#[test]
fn a_rolling_restart_of_every_instance_loses_no_ping() {
    let (mut cl, vm1, _vm2) = setup();
    let ping = vm1.ping_continuous(ip("10.0.0.2"), PING).unwrap();
    let marks = [
        MarkWatch::start(cl.lab.hv(0), "vm1"),
        MarkWatch::start(cl.lab.hv(1), "vm2"),
    ];
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    for i in 0..cl.instances.len() {
        cl.terminate(i);
        let owners = cl.wait_settled(Duration::from_secs(30));
        eprintln!("{} stopped: owners {owners:?}", cl.instances[i].name);
        cl.spawn(i);
        let owners = cl.wait_settled(Duration::from_secs(60));
        eprintln!("{} back: owners {owners:?}", cl.instances[i].name);
    }
    eprintln!(
        "MEASURED: rolling restart of 3 instances took {:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_secs(1));
    let report = ping.stop().unwrap();
    eprintln!(
        "MEASURED: vm1 -> vm2 every {PING:?} across the rolling restart: {} sent, {} lost",
        report.summary.transmitted,
        report.lost()
    );
    assert_eq!(report.lost(), 0, "pings lost: {report:?}");
    // Still under control: a port created now is installed and reachable (plugged after
    // the measured window, as in the other tests).
    cl.call(
        1,
        "port_create",
        json!({"switch": "blue", "name": "vm6", "mac": "02:00:00:00:00:06", "ips": ["10.0.0.6"]}),
    );
    let vm6 = cl.plug(0, "vm6", "02:00:00:00:00:06", "10.0.0.6/24");
    vm6.ping_until_reachable(ip("10.0.0.2"), Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("vm6 -> vm2: {e}\n{}", cl.logs()));
    for m in marks {
        let (samples, unmarked) = m.stop();
        assert!(
            samples > 10 && unmarked == 0,
            "weft-installed cleared in {unmarked} of {samples} samples"
        );
    }
}

/// An owner cut off from etcd, and only from etcd (the hypervisors and the other
/// instances still reach it): it cannot renew its lease, so it stops acting as owner
/// before the lease runs out, and another instance takes its hypervisor over. No ping is
/// lost, weft-installed never drops, and a write through the cut instance is refused
/// with -32010 (store unavailable) rather than hanging. Healed, it registers again and
/// ownership spreads as rendezvous hashing says, still without loss.
#[test]
fn an_owner_cut_off_from_etcd_steps_down_and_rejoins() {
    let (cl, vm1, _vm2) = setup_on(ClusterLab::start_partitionable(2, 3));
    let hv1 = cl.lab.hv(0).system_id().to_string();
    let (owner, generation) = cl.owner(cl.lab.hv(0)).expect("hv1 has an owner");
    let victim = cl.index(&owner);
    let other = (0..3).find(|i| *i != victim).unwrap();
    let ping = vm1.ping_continuous(ip("10.0.0.2"), PING).unwrap();
    let marks = MarkWatch::start(cl.lab.hv(0), "vm1");
    std::thread::sleep(Duration::from_secs(1));

    let cut = Instant::now();
    cl.cut(victim);
    let (new_owner, new_generation) = loop {
        if let Some((o, g)) = cl.owner(cl.lab.hv(0))
            && o != owner
        {
            break (o, g);
        }
        assert!(
            cut.elapsed() < LEASE * 4,
            "no new owner of {hv1} {:?} after {owner} was cut off\n{}",
            cut.elapsed(),
            cl.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let takeover = cut.elapsed();
    eprintln!(
        "MEASURED: {hv1} owned by {new_owner} {takeover:?} after {owner} was cut off from etcd \
         (lease {LEASE:?})"
    );
    assert!(new_generation > generation, "generation must grow");
    // The new owner's fence is on hv1 (the cut instance's transactions would fail on it).
    let want_fence = format!("{new_owner}:{new_generation}");
    let fenced = Instant::now();
    while cl.fence(cl.lab.hv(0)).as_deref() != Some(want_fence.as_str()) {
        assert!(
            fenced.elapsed() < Duration::from_secs(20),
            "hv1's fence is {:?}, not {want_fence}\n{}",
            cl.fence(cl.lab.hv(0)),
            cl.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The cut instance knows it: it says it cannot renew, and refuses writes.
    assert!(
        cl.log(victim).contains("cannot renew the cluster lease"),
        "{}",
        cl.log(victim)
    );
    let asked = Instant::now();
    let refused = cl.try_call(
        victim,
        "switch_create",
        json!({"name": "while-cut", "vni": 5099}),
    );
    eprintln!(
        "MEASURED: a write through the cut instance answered in {:?}: {refused:?}",
        asked.elapsed()
    );
    let code = match &refused {
        Err((code, _, _)) => *code,
        Ok(v) => panic!("a write through the cut instance was not refused: {v}"),
    };
    assert_eq!(code, -32010, "{refused:?}");

    std::thread::sleep(Duration::from_secs(1));
    let report = ping.stop().unwrap();
    eprintln!(
        "MEASURED: vm1 -> vm2 every {PING:?} across the cut: {} sent, {} lost",
        report.summary.transmitted,
        report.lost()
    );
    assert_eq!(report.lost(), 0, "pings lost across the cut: {report:?}");
    let (samples, unmarked) = marks.stop();
    assert!(samples > 10, "mark sampled {samples} times");
    assert_eq!(unmarked, 0, "vm1 lost weft-installed during the cut");

    // Healed: the instance registers again and ownership settles as rendezvous says.
    let ping = vm1.ping_continuous(ip("10.0.0.2"), PING).unwrap();
    let healed = Instant::now();
    cl.heal(victim);
    let settled = cl.wait_settled(Duration::from_secs(60));
    eprintln!(
        "MEASURED: settled {:?} after the heal: {settled:?}",
        healed.elapsed()
    );
    let s = cl.call(other, "cluster_status", json!({}));
    assert_eq!(s["instances"].as_array().map(Vec::len), Some(3), "{s}");
    cl.call(
        victim,
        "switch_create",
        json!({"name": "after-heal", "vni": 5098}),
    );
    std::thread::sleep(Duration::from_secs(1));
    let report = ping.stop().unwrap();
    eprintln!(
        "MEASURED: vm1 -> vm2 across the heal: {} sent, {} lost",
        report.summary.transmitted,
        report.lost()
    );
    assert_eq!(report.lost(), 0, "pings lost across the heal: {report:?}");
}
