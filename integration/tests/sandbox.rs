//! The OVS sandbox on its own: what it starts, that restarts keep its addresses, and that
//! `Drop` stops exactly its daemons and removes its directory. Needs Open vSwitch.

use integration::sandbox::{Daemon, Datapath, OvsSandbox};

/// Whether `pid` runs (a zombie, left for whoever reaps the detached daemons, is gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

#[test]
fn server_only_with_tcp_listener_restarts_on_the_same_port() {
    let ovs = OvsSandbox::builder("sb-test")
        .remote("ptcp:0:127.0.0.1")
        .start()
        .unwrap();
    assert!(ovs.db_socket().exists());
    assert!(ovs.pid(Daemon::Vswitchd).is_none());
    let port = ovs.tcp_port().expect("ptcp:0 port in the log");
    std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // No ovs-vswitchd: vsctl must not wait for it.
    ovs.vsctl(["add-br", "br0"]).unwrap();
    let old = ovs.pid(Daemon::OvsdbServer).unwrap();
    ovs.kill(Daemon::OvsdbServer);
    assert!(!ovs.is_running(Daemon::OvsdbServer));
    ovs.start_daemon(Daemon::OvsdbServer).unwrap();
    assert_ne!(ovs.pid(Daemon::OvsdbServer), Some(old));
    std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(ovs.vsctl(["list-br"]).unwrap().trim(), "br0");
    let (pid, dir) = (ovs.pid(Daemon::OvsdbServer).unwrap(), ovs.dir().to_owned());
    drop(ovs);
    assert!(!alive(pid), "ovsdb-server {pid} survived the drop");
    assert!(!dir.exists(), "{} survived the drop", dir.display());
}

#[test]
fn dummy_vswitchd_runs_bridges_and_dies_with_the_sandbox() {
    let ovs = OvsSandbox::builder("sb-test")
        .vswitchd(Datapath::Dummy)
        .open_vswitch(["external_ids:system-id=sb"])
        .start()
        .unwrap();
    assert_eq!(
        ovs.vsctl(["get", "Open_vSwitch", ".", "external_ids:system-id"])
            .unwrap()
            .trim(),
        "sb"
    );
    ovs.vsctl([
        "add-br",
        "br0",
        "--",
        "set",
        "bridge",
        "br0",
        "datapath_type=dummy",
    ])
    .unwrap();
    ovs.ofctl(["add-flow", "br0", "priority=5,actions=drop"])
        .unwrap();
    assert!(
        ovs.ofctl(["dump-flows", "br0"])
            .unwrap()
            .contains("priority=5")
    );
    assert!(ovs.mgmt_socket("br0").exists());
    assert!(ovs.appctl(["dpif/show"]).unwrap().contains("br0"));
    let pids = ovs.running_pids();
    assert_eq!(pids.len(), 2, "{pids:?}");
    drop(ovs);
    for pid in pids {
        assert!(!alive(pid), "daemon {pid} survived the drop");
    }
}

/// A panicking test still stops its daemons (unwinding runs `Drop`).
#[test]
fn panic_stops_the_daemons() {
    let pids = std::sync::Mutex::new(Vec::new());
    let r = std::panic::catch_unwind(|| {
        let ovs = OvsSandbox::builder("sb-test")
            .vswitchd(Datapath::Dummy)
            .start()
            .unwrap();
        *pids.lock().unwrap() = ovs.running_pids();
        panic!("test failure");
    });
    assert!(r.is_err());
    let pids = pids.into_inner().unwrap();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        assert!(!alive(pid), "daemon {pid} survived the panic");
    }
}
