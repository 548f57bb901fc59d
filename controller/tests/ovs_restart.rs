//! Weft's restart procedure for Open vSwitch on a hypervisor (`weft-ovs-restart`, in
//! controller/packaging): br-int's groups and flows are saved, vswitchd restarts, and the
//! saved tables are added back through br-int's management socket at once. Forwarding then
//! does not wait for the controller, which a plain restart must: vswitchd's first
//! connection attempt leaves before the re-created br-phy carries the underlay address,
//! and rconn retries only after a 1 s timeout and a 1 s backoff (the constant 2.0 s of a
//! plain restart, see resilience.rs scenario 3). OVS's own `ovs-ctl restart` cannot do
//! this for a bridge with a Controller row: it restores under `flow-restore-wait`, and
//! clearing that flag configures the controllers, which flushes every flow.
//!
//! Proven with weftd frozen (SIGSTOP) through the whole restart: the ping across the
//! tunnel resumes, br-int holds exactly what weftd had installed, and once weftd runs
//! again it finds the table whole and sends nothing.

mod common;

use std::time::{Duration, Instant};

use common::overlay::{Overlay, assert_reaches};
use integration::lab::{Daemon, Encap, Hypervisor, Vm};
use serde_json::json;

/// Keeps weftd stopped (SIGSTOP) while alive; resumes it when dropped, also when the
/// test fails, so that the overlay's teardown can stop it.
struct Frozen(u32);

impl Frozen {
    fn new(pid: u32) -> Frozen {
        signal("-STOP", pid);
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("-CONT", self.0);
    }
}

/// `kill SIG PID` (unsafe libc is forbidden in this crate).
fn signal(sig: &str, pid: u32) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

fn flow_table(hv: &Hypervisor) -> Vec<String> {
    let mut f = hv.dump_flows("br-int").unwrap();
    f.sort();
    f
}

fn group_table(hv: &Hypervisor) -> Vec<String> {
    let out = hv
        .ofctl(["-O", "OpenFlow13", "dump-groups", "br-int"])
        .unwrap();
    let mut g: Vec<String> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("group_id="))
        .map(str::to_owned)
        .collect();
    g.sort();
    g
}

fn blue(ov: &Overlay) -> Vec<Vm> {
    ov.call("switch_create", json!({"name": "blue", "vni": 5001}));
    (1..=2)
        .map(|i| {
            let (name, mac, addr) = (
                format!("a{i}"),
                format!("02:00:00:00:00:0{i}"),
                format!("10.0.0.{i}"),
            );
            ov.port("blue", &name, &mac, &addr);
            ov.plug(i, &name, &mac, &format!("{addr}/24"))
        })
        .collect()
}

#[test]
fn restart_procedure_forwards_without_the_controller() {
    let ov = Overlay::start_with(2, Encap::Geneve, &["--log", "info"]);
    let vms = blue(&ov);
    assert_reaches(&vms[0], "10.0.0.2", &ov);
    assert_reaches(&vms[1], "10.0.0.1", &ov);
    ov.wait_connected();
    let (flows, groups) = (flow_table(ov.hv(2)), group_table(ov.hv(2)));
    assert!(
        !groups.is_empty(),
        "the flood group is part of what must survive"
    );

    let ping = vms[0]
        .ping_continuous("10.0.0.2".parse().unwrap(), Duration::from_millis(10))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mark = ov.log().len();
    let frozen = Frozen::new(ov.weftd.child.id());
    let t0 = Instant::now();
    ov.hv(2).restart_vswitchd_keeping_flows().unwrap();
    let restarted = t0.elapsed();
    // weftd is stopped: only the restored tables can forward this.
    let r = vms[0].ping_until_reachable("10.0.0.2".parse().unwrap(), Duration::from_secs(15));
    let resumed = t0.elapsed();
    assert!(
        r.is_ok(),
        "forwarding did not resume while weftd was stopped: {r:?}\nvswitchd log:\n{}",
        std::fs::read_to_string(ov.hv(2).log_file(Daemon::Vswitchd)).unwrap_or_default()
    );
    assert_eq!(
        flow_table(ov.hv(2)),
        flows,
        "br-int's flows after the restart"
    );
    assert_eq!(
        group_table(ov.hv(2)),
        groups,
        "br-int's groups after the restart"
    );
    std::thread::sleep(Duration::from_millis(300));
    let report = ping.stop().unwrap();
    drop(frozen);

    // weftd, running again, meets the returning datapath and has nothing to change.
    let reconciled = |log: &str| {
        log.lines()
            .any(|l| l.contains("nothing sent") && l.contains("hv2"))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reconciled(ov.log().get(mark..).unwrap_or("")) {
        assert!(
            Instant::now() < deadline,
            "weftd never reconciled hv2 after the restart\nweftd log since:\n{}",
            ov.log().get(mark..).unwrap_or("")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let sent: Vec<String> = ov
        .log()
        .get(mark..)
        .unwrap_or("")
        .lines()
        .filter(|l| l.contains("hv2") && l.contains("installed the desired state"))
        .map(str::to_owned)
        .collect();
    assert!(sent.is_empty(), "weftd rewrote hv2's tables: {sent:#?}");
    assert_eq!(
        flow_table(ov.hv(2)),
        flows,
        "br-int's flows after weftd resumed"
    );
    assert_reaches(&vms[1], "10.0.0.1", &ov);
    eprintln!(
        "weft-ovs-restart with weftd stopped: save+restart+restore {restarted:?}, \
         reachable {resumed:?} after it began; 10 ms ping: {} lost, longest outage {:?}",
        report.lost(),
        report.longest_outage()
    );
}

/// The other order of the same race: vswitchd restarted plainly and weftd repaired it,
/// then something (a restore that started late) adds back a flow with Weft's cookie that
/// the model does not have. weftd checks a returning switch again after repairing it and
/// removes the flow; without that check it would stay until the next reconnect.
#[test]
fn a_flow_restored_after_the_repair_is_removed() {
    let ov = Overlay::start_with(2, Encap::Geneve, &["--log", "info"]);
    let vms = blue(&ov);
    assert_reaches(&vms[0], "10.0.0.2", &ov);
    ov.wait_connected();
    let flows = flow_table(ov.hv(2));
    ov.hv(2).restart_vswitchd().unwrap();
    ov.hv(2)
        .wait_for("weftd to reinstall hv2", Duration::from_secs(30), |hv| {
            Ok(flow_table(hv) == flows)
        })
        .unwrap();
    let stale = "cookie=0x5745000000000000,table=30,priority=100,metadata=0x1389,\
                 dl_dst=02:00:00:00:00:99 actions=drop";
    ov.hv(2).add_flow("br-int", stale).unwrap();
    assert_ne!(flow_table(ov.hv(2)), flows, "the stale flow was added");
    let r = ov.hv(2).wait_for(
        "weftd to remove the stale flow",
        Duration::from_secs(30),
        |hv| Ok(flow_table(hv) == flows),
    );
    assert!(r.is_ok(), "{r:?}\nweftd log:\n{}", ov.log());
    assert_reaches(&vms[0], "10.0.0.2", &ov);
}
