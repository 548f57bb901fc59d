//! Self-tests of the lab harness with real OVS and real packets. They need root and Open
//! vSwitch (scripts/test.sh installs it) and FAIL, with the reason, when either is missing.
//! Every test builds its own lab; they run concurrently without colliding.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use integration::lab::{Daemon, Encap, Hypervisor, Lab, LabId, VmSpec};

const WAIT: Duration = Duration::from_secs(20);

fn lab(n: usize, encap: Encap) -> Lab {
    match Lab::builder().hypervisors(n).encap(encap).build() {
        Ok(lab) => lab,
        Err(e) => panic!("cannot build the OVS lab: {e}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// What a controller would do to br-int, done by hand: secure fail mode, OpenFlow 1.3 only.
fn take_over_br_int(hv: &Hypervisor) {
    hv.vsctl([
        "set",
        "Bridge",
        "br-int",
        "fail_mode=secure",
        "protocols=OpenFlow13",
    ])
    .unwrap();
}

#[test]
fn three_hypervisors_share_an_underlay_and_advertise_their_encap() {
    let lab = lab(3, Encap::Geneve);
    for hv in lab.hypervisors() {
        let ids = hv.open_vswitch_external_ids().unwrap();
        assert_eq!(
            ids.get("system-id").map(String::as_str),
            Some(hv.name()),
            "{ids:?}"
        );
        assert_eq!(
            ids.get("weft-encap-ip"),
            Some(&hv.transport_ip().to_string()),
            "{ids:?}"
        );
        assert_eq!(
            ids.get("weft-encap-type").map(String::as_str),
            Some("geneve"),
            "{ids:?}"
        );
        // br-int exists, netdev, and is left for the controller to configure.
        let dp = hv
            .vsctl(["get", "Bridge", "br-int", "datapath_type"])
            .unwrap();
        assert_eq!(dp.trim(), "netdev");
        assert_eq!(
            hv.vsctl(["get", "Bridge", "br-int", "fail_mode"])
                .unwrap()
                .trim(),
            "[]"
        );
        assert!(hv.interface("ul0").unwrap().is_up());
        for peer in lab.hypervisors() {
            let out = hv
                .exec(
                    "ping",
                    [
                        "-c",
                        "2",
                        "-i",
                        "0.2",
                        "-W",
                        "2",
                        &peer.transport_ip().to_string(),
                    ],
                )
                .unwrap();
            assert!(
                out.contains("2 received"),
                "{} -> {}: {out}",
                hv.name(),
                peer.name()
            );
        }
        let out = hv
            .exec(
                "ping",
                ["-c", "1", "-W", "2", &lab.controller_ip().to_string()],
            )
            .unwrap();
        assert!(
            out.contains("1 received"),
            "{} -> controller: {out}",
            hv.name()
        );
    }
    // The three transport IPs are distinct and on the lab's own underlay.
    let mut ips: Vec<Ipv4Addr> = lab
        .hypervisors()
        .iter()
        .map(Hypervisor::transport_ip)
        .collect();
    ips.dedup();
    assert_eq!(ips.len(), 3);
    assert!(
        ips.iter()
            .all(|i| i.octets()[..3] == lab.underlay_network().octets()[..3])
    );
    // A fourth hypervisor joins the running lab.
    let mut lab = lab;
    lab.add_hypervisor().unwrap();
    let hv4 = lab.hv(3);
    assert_eq!(hv4.name(), "hv4");
    let out = hv4
        .exec(
            "ping",
            ["-c", "1", "-W", "2", &lab.hv(0).transport_ip().to_string()],
        )
        .unwrap();
    assert!(out.contains("1 received"), "{out}");
    let mem = lab.memory().unwrap();
    assert_eq!(mem.len(), 4);
    assert!(
        mem.iter()
            .all(|m| m.ovsdb_server_kib > 0 && m.vswitchd_kib > 0)
    );
}

#[test]
fn vms_on_one_hypervisor_ping_and_stream_tcp_over_v4_and_v6() {
    let lab = lab(1, Encap::Geneve);
    let hv = lab.hv(0);
    let a = lab
        .plug_vm(
            hv,
            VmSpec::new("a", "02:00:00:00:00:0a", "lp-a")
                .addr("10.0.0.1/24")
                .unwrap()
                .addr("fd00::1/64")
                .unwrap(),
        )
        .unwrap();
    let b = lab
        .plug_vm(
            hv,
            VmSpec::new("b", "02:00:00:00:00:0b", "lp-b")
                .addr("10.0.0.2/24")
                .unwrap()
                .addr("fd00::2/64")
                .unwrap(),
        )
        .unwrap();
    for (vm, id, mac) in [
        (&a, "lp-a", "02:00:00:00:00:0a"),
        (&b, "lp-b", "02:00:00:00:00:0b"),
    ] {
        let iface = vm.interface(hv).unwrap();
        assert_eq!(iface.iface_id(), Some(id));
        assert_eq!(
            iface.external_ids.get("attached-mac").map(String::as_str),
            Some(mac)
        );
        assert!(iface.ofport.is_some_and(|p| p > 0), "{iface:?}");
        assert_eq!(
            hv.interface_by_iface_id(id).unwrap().map(|i| i.name),
            Some(vm.name().to_owned())
        );
    }
    take_over_br_int(hv);
    // Secure fail mode and no flows: nothing passes. This proves the test pipeline is
    // what forwards below, not OVS's standalone learning switch.
    assert_eq!(
        a.ping(ip("10.0.0.2"), 2, Duration::from_millis(200))
            .unwrap()
            .received,
        0
    );
    hv.add_flow("br-int", "priority=0,actions=NORMAL").unwrap();
    let trace = hv
        .trace(
            "br-int",
            "in_port=a,dl_src=02:00:00:00:00:0a,dl_dst=02:00:00:00:00:0b",
        )
        .unwrap();
    assert!(trace.contains("NORMAL"), "{trace}");
    assert!(
        hv.dump_flows("br-int")
            .unwrap()
            .iter()
            .any(|f| f.contains("NORMAL"))
    );
    a.ping_until_reachable(ip("10.0.0.2"), WAIT).unwrap();
    let r = a
        .ping(ip("10.0.0.2"), 5, Duration::from_millis(50))
        .unwrap();
    assert!(r.all_received(), "{r:?}");
    let r6 = b.ping(ip("fd00::1"), 3, Duration::from_millis(50)).unwrap();
    assert!(r6.all_received(), "{r6:?}");

    let server = b.tcp_echo_server("0.0.0.0:7000".parse().unwrap()).unwrap();
    let rep = a
        .tcp_echo("10.0.0.2:7000".parse().unwrap(), 1 << 20, WAIT)
        .unwrap();
    assert_eq!(rep.bytes, 1 << 20);
    let server6 = b.tcp_echo_server("[::]:7001".parse().unwrap()).unwrap();
    a.tcp_echo("[fd00::2]:7001".parse().unwrap(), 256 * 1024, WAIT)
        .unwrap();
    assert!(server.echoed_bytes() >= 1 << 20);
    drop((server, server6));

    // Continuous 10 ms ping on a quiet, local path: counts come back and add up.
    let cont = a
        .ping_continuous(ip("10.0.0.2"), Duration::from_millis(10))
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let rep = cont.stop().unwrap();
    assert!(rep.summary.transmitted > 5, "{rep:?}");
    assert!(rep.lost() <= 1, "{rep:?}");
    // A raw command inside a VM.
    assert!(
        a.exec("ip", &["-o", "addr", "show", "dev", "eth0"])
            .unwrap()
            .contains("10.0.0.1/24")
    );
}

/// Two VMs on two hypervisors joined by a tunnel port added by hand and hand-written flows
/// (what the controller will compute): ping, then a 1 MiB TCP echo.
fn cross_hypervisor_tunnel(encap: Encap) {
    let lab = lab(2, encap);
    let (hv1, hv2) = (lab.hv(0), lab.hv(1));
    let a = lab
        .plug_vm(
            hv1,
            VmSpec::new("a", "02:00:00:00:01:01", "lp-a")
                .addr("10.1.0.1/24")
                .unwrap(),
        )
        .unwrap();
    let b = lab
        .plug_vm(
            hv2,
            VmSpec::new("b", "02:00:00:00:01:02", "lp-b")
                .addr("10.1.0.2/24")
                .unwrap(),
        )
        .unwrap();
    for (hv, peer, vm) in [(hv1, hv2, &a), (hv2, hv1, &b)] {
        take_over_br_int(hv);
        hv.vsctl([
            "add-port",
            "br-int",
            "tun",
            "--",
            "set",
            "Interface",
            "tun",
            &format!("type={}", encap.as_str()),
            &format!("options:remote_ip={}", peer.transport_ip()),
            &format!("options:local_ip={}", hv.transport_ip()),
            "options:key=flow",
        ])
        .unwrap();
        let tun = hv.wait_for_interface("tun", WAIT, |i| i.is_up()).unwrap();
        assert_eq!(tun.kind, encap.as_str());
        let tun = tun.ofport.unwrap();
        let port = vm.interface(hv).unwrap().ofport.unwrap();
        hv.add_flow(
            "br-int",
            &format!(
                "table=0,priority=100,in_port={port},actions=set_field:5001->tun_id,output:{tun}"
            ),
        )
        .unwrap();
        hv.add_flow(
            "br-int",
            &format!("table=0,priority=100,in_port={tun},tun_id=5001,actions=output:{port}"),
        )
        .unwrap();
    }
    // The first packet to a new tunnel peer is dropped while OVS resolves its next hop.
    a.ping_until_reachable(ip("10.1.0.2"), WAIT).unwrap();
    let r = a
        .ping(ip("10.1.0.2"), 5, Duration::from_millis(50))
        .unwrap();
    assert!(r.all_received(), "{r:?}");
    let tun_before = hv1.port_stats("br-int", "tun").unwrap();
    let ul_before = hv1.underlay_stats().unwrap();
    // TCP across the tunnel: catches TX checksum offload left on anywhere on the path.
    let _server = b.tcp_echo_server("0.0.0.0:7000".parse().unwrap()).unwrap();
    let rep = a
        .tcp_echo("10.1.0.2:7000".parse().unwrap(), 1 << 20, WAIT)
        .unwrap();
    assert_eq!(rep.bytes, 1 << 20);
    // The underlay port's counters are live: the megabyte left this hypervisor.
    let ul_after = hv1.underlay_stats().unwrap();
    assert!(
        ul_after.tx_bytes > ul_before.tx_bytes + (1 << 20),
        "{ul_before:?} -> {ul_after:?}"
    );
    // Tunnel port counters of the userspace datapath lag (stats pulls): wait for them.
    hv1.wait_for("tunnel tx counter to count the transfer", WAIT, |hv| {
        Ok(hv.port_stats("br-int", "tun")?.tx_bytes > tun_before.tx_bytes + (1 << 20))
    })
    .unwrap();
    // And it really was encapsulated: OVS's tunnel stack knows the peer's br-phy MAC.
    let arp = hv1.appctl(["tnl/arp/show"]).unwrap();
    assert!(arp.contains(&hv2.transport_ip().to_string()), "{arp}");
}

#[test]
fn vms_on_two_hypervisors_talk_across_geneve() {
    cross_hypervisor_tunnel(Encap::Geneve);
}

#[test]
fn vms_on_two_hypervisors_talk_across_vxlan() {
    cross_hypervisor_tunnel(Encap::Vxlan);
}

#[test]
fn moved_vm_keeps_its_iface_id_and_connectivity() {
    let lab = lab(2, Encap::Geneve);
    let (hv1, hv2) = (lab.hv(0), lab.hv(1));
    let a = lab
        .plug_vm(
            hv1,
            VmSpec::new("a", "02:00:00:00:02:01", "lp-a")
                .addr("10.2.0.1/24")
                .unwrap(),
        )
        .unwrap();
    let b = hv2
        .plug_vm(
            VmSpec::new("b", "02:00:00:00:02:02", "lp-b")
                .addr("10.2.0.2/24")
                .unwrap(),
        )
        .unwrap();
    for hv in [hv1, hv2] {
        take_over_br_int(hv);
        hv.add_flow("br-int", "priority=0,actions=NORMAL").unwrap();
    }
    // Different hypervisors, no tunnel: no path.
    assert_eq!(
        a.ping(ip("10.2.0.2"), 1, Duration::from_millis(200))
            .unwrap()
            .received,
        0
    );
    a.move_to(hv1, hv2).unwrap();
    assert_eq!(a.hypervisor_number().unwrap(), 2);
    assert!(hv1.interface_by_iface_id("lp-a").unwrap().is_none());
    let moved = hv2.interface("a").unwrap();
    assert_eq!(moved.iface_id(), Some("lp-a"));
    assert!(moved.is_up(), "{moved:?}");
    a.ping_until_reachable(ip("10.2.0.2"), WAIT).unwrap();
    // Wrong-hypervisor moves are rejected.
    assert!(a.move_to(hv1, hv2).is_err());
    b.unplug(hv2).unwrap();
    assert!(lab.vm("b").is_err());
    assert!(hv2.interface_by_iface_id("lp-b").unwrap().is_none());
}

#[test]
fn manager_connection_reaches_a_controller_in_the_root_namespace() {
    let lab = lab(1, Encap::Vxlan);
    let hv = lab.hv(0);
    let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(lab.controller_ip()), 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    hv.set_manager(&format!("tcp:{}:{port}", lab.controller_ip()))
        .unwrap();
    // Bounded accept: if the handshake never completes, fail instead of hanging.
    listener.set_nonblocking(true).unwrap();
    let mut accepted = None;
    integration::lab::wait_for(
        "ovsdb-server to connect to the manager",
        WAIT,
        || match listener.accept() {
            Ok(c) => {
                accepted = Some(c);
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => panic!("accept: {e}"),
        },
    )
    .unwrap();
    let (mut conn, peer) = accepted.unwrap();
    conn.set_nonblocking(false).unwrap();
    assert_eq!(peer.ip(), IpAddr::V4(hv.transport_ip()));
    // A real OVSDB exchange both ways: root-namespace TCP into the userspace datapath is
    // where the checksum-offload pitfall bites.
    conn.set_read_timeout(Some(WAIT)).unwrap();
    conn.write_all(br#"{"id":1,"method":"list_dbs","params":[]}"#)
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("Open_vSwitch") {
        let n = conn.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    hv.del_manager().unwrap();

    // Passive: ovsdb-server listens on the transport IP, the root namespace dials in
    // (DESIGN's `--ovsdb tcp:IP:PORT` active targets).
    hv.set_manager(&format!("ptcp:16640:{}", hv.transport_ip()))
        .unwrap();
    let target = SocketAddr::new(IpAddr::V4(hv.transport_ip()), 16640);
    let mut dialled = None;
    integration::lab::wait_for("ovsdb-server to listen on ptcp", WAIT, || {
        dialled = std::net::TcpStream::connect_timeout(&target, Duration::from_secs(1)).ok();
        Ok(dialled.is_some())
    })
    .unwrap();
    let mut conn = dialled.unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    conn.write_all(br#"{"id":2,"method":"list_dbs","params":[]}"#)
        .unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("Open_vSwitch") {
        let n = conn.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    hv.del_manager().unwrap();

    // The OpenFlow path the controller will use: br-int dials the controller and says
    // HELLO with version 0x04 once protocols=OpenFlow13.
    let of = TcpListener::bind(SocketAddr::new(IpAddr::V4(lab.controller_ip()), 0)).unwrap();
    let of_port = of.local_addr().unwrap().port();
    of.set_nonblocking(true).unwrap();
    take_over_br_int(hv);
    hv.vsctl([
        "set-controller",
        "br-int",
        &format!("tcp:{}:{of_port}", lab.controller_ip()),
    ])
    .unwrap();
    let mut accepted = None;
    integration::lab::wait_for(
        "br-int to connect to the OpenFlow controller",
        WAIT,
        || match of.accept() {
            Ok(c) => {
                accepted = Some(c);
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => panic!("accept: {e}"),
        },
    )
    .unwrap();
    let (mut conn, _) = accepted.unwrap();
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let mut header = [0u8; 8];
    conn.read_exact(&mut header).unwrap();
    assert_eq!(
        (header[0], header[1]),
        (0x04, 0),
        "OFPT_HELLO v1.3 expected, got {header:?}"
    );
}

#[test]
fn daemons_restart_and_a_killed_hypervisor_comes_back() {
    let lab = lab(2, Encap::Geneve);
    let (hv1, hv2) = (lab.hv(0), lab.hv(1));
    let ping_peer = |hv: &Hypervisor| {
        hv.wait_for("transport ping", WAIT, |hv| {
            let out = hv.exec(
                "ping",
                ["-c", "1", "-W", "1", &hv2.transport_ip().to_string()],
            );
            Ok(out.is_ok_and(|o| o.contains("1 received")))
        })
    };
    ping_peer(hv1).unwrap();
    let old = hv1.pid(Daemon::Vswitchd).unwrap();
    hv1.restart_vswitchd().unwrap();
    assert_ne!(hv1.pid(Daemon::Vswitchd), Some(old));
    ping_peer(hv1).unwrap();
    hv1.restart_ovsdb().unwrap();
    assert!(
        hv1.open_vswitch_external_ids()
            .unwrap()
            .contains_key("weft-encap-ip")
    );
    hv1.kill();
    assert!(!hv1.is_running(Daemon::Vswitchd) && !hv1.is_running(Daemon::OvsdbServer));
    assert!(hv1.vsctl(["show"]).is_err());
    hv1.start().unwrap();
    assert!(hv1.is_running(Daemon::Vswitchd) && hv1.is_running(Daemon::OvsdbServer));
    ping_peer(hv1).unwrap();
    hv1.set_underlay_link(false).unwrap();
    assert!(
        hv1.exec(
            "ping",
            ["-c", "1", "-W", "1", &hv2.transport_ip().to_string()]
        )
        .is_err()
    );
    hv1.set_underlay_link(true).unwrap();
    ping_peer(hv1).unwrap();
}

fn netns_names() -> String {
    std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap()
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"))
}

#[test]
fn drop_leaves_nothing_behind_even_after_a_panic() {
    let mut seen = Vec::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = lab(2, Encap::Geneve);
        let a = lab
            .plug_vm(
                lab.hv(0),
                VmSpec::new("a", "02:00:00:00:03:01", "lp-a")
                    .addr("10.3.0.1/24")
                    .unwrap(),
            )
            .unwrap();
        // A background process inside a VM and a leaked echo server must not survive.
        std::mem::forget(
            a.ping_continuous(ip("10.3.0.9"), Duration::from_millis(10))
                .unwrap(),
        );
        let pids: Vec<u32> = lab
            .hypervisors()
            .iter()
            .flat_map(|h| [h.pid(Daemon::Vswitchd), h.pid(Daemon::OvsdbServer)])
            .flatten()
            .collect();
        assert_eq!(pids.len(), 4);
        assert!(netns_names().contains(&a.netns()));
        seen.push((lab.id(), pids, lab.dir().to_owned(), lab.root_link()));
        panic!("deliberate panic with a live lab");
    }));
    assert!(outcome.is_err());
    let (id, pids, dir, root) = seen.pop().unwrap();
    let stem = format!("weftlab-{id}-");
    assert!(
        !netns_names().contains(&stem),
        "namespaces left: {}",
        netns_names()
    );
    assert!(!link_exists(&root), "root veth {root} left");
    assert!(!dir.exists(), "{} left", dir.display());
    for pid in pids {
        assert!(!pid_alive(pid), "daemon {pid} still running");
    }
}

#[test]
fn cleanup_stale_removes_dead_labs_only() {
    let live = lab(1, Encap::Geneve);
    // Fake leftovers of a crashed run: a PID that cannot exist (above pid_max's limit).
    let dead = LabId::parse("2lflt-0").unwrap(); // 4194305 > 2^22
    assert!(dead.pid > 4_194_304);
    let ns = format!("weftlab-{dead}-hv1");
    let link = format!("wft{dead}");
    let dir = std::env::temp_dir().join(format!("weftlab-{dead}"));
    std::process::Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap();
    let made = std::process::Command::new("ip")
        .args([
            "link", "add", "name", &link, "type", "veth", "peer", "name", "ctl", "netns", &ns,
        ])
        .status()
        .unwrap();
    assert!(made.success() && link_exists(&link));
    std::fs::create_dir_all(dir.join("hv1/run")).unwrap();
    let removed = Lab::cleanup_stale();
    assert!(removed.contains(&dead), "{removed:?}");
    assert!(!removed.contains(&live.id()));
    assert!(!netns_names().contains(&ns));
    assert!(!link_exists(&link));
    assert!(!dir.exists());
    // The live lab is untouched.
    assert!(netns_names().contains(&format!("weftlab-{}-hv1", live.id())));
    assert!(link_exists(&live.root_link()));
    assert!(live.hv(0).vsctl(["show"]).is_ok());
}

#[test]
fn invalid_vm_specs_are_rejected_with_the_value() {
    assert!(
        VmSpec::new("a", "02:00:00:00:00:01", "x")
            .addr("10.0.0.1")
            .is_err()
    );
    assert!(
        VmSpec::new("a", "02:00:00:00:00:01", "x")
            .addr("10.0.0.1/33")
            .is_err()
    );
    let lab = lab(1, Encap::Geneve);
    for spec in [
        VmSpec::new("this-name-is-too-long", "02:00:00:00:00:01", "x"),
        VmSpec::new("br-int", "02:00:00:00:00:01", "x"),
        VmSpec::new("ok", "zz:00:00:00:00:01", "x"),
        VmSpec::new("ok", "02:00:00:00:00:01", ""),
    ] {
        let err = lab
            .plug_vm(lab.hv(0), spec.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid"), "{err}");
    }
    lab.plug_vm(lab.hv(0), VmSpec::new("dup", "02:00:00:00:00:01", "x"))
        .unwrap();
    let err = lab
        .plug_vm(lab.hv(0), VmSpec::new("dup", "02:00:00:00:00:02", "y"))
        .unwrap_err();
    assert!(err.to_string().contains("dup"), "{err}");
}

#[test]
fn labs_built_at_the_same_time_do_not_collide() {
    let labs: Vec<Lab> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(|| lab(2, Encap::Vxlan))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ids: Vec<LabId> = labs.iter().map(Lab::id).collect();
    let mut nets: Vec<Ipv4Addr> = labs.iter().map(Lab::underlay_network).collect();
    ids.sort();
    ids.dedup();
    nets.sort();
    nets.dedup();
    assert_eq!((ids.len(), nets.len()), (3, 3), "{ids:?} {nets:?}");
    for lab in &labs {
        // Each lab's hypervisors reach their own controller address, through their own
        // root veth, and the same VM name is fine in different labs.
        let hv = lab.hv(1);
        let out = hv
            .exec(
                "ping",
                ["-c", "1", "-W", "2", &lab.controller_ip().to_string()],
            )
            .unwrap();
        assert!(out.contains("1 received"), "{out}");
        hv.plug_vm(VmSpec::new("same", "02:00:00:00:04:01", "lp-same"))
            .unwrap();
    }
}

/// Three hypervisors in a full tunnel mesh with hand-written flows shaped like the
/// controller's: known unicast straight to the right tunnel, broadcast replicated head-end
/// to every peer, and nothing from a tunnel ever sent back into one (split horizon).
#[test]
fn three_hypervisor_mesh_with_head_end_replication() {
    let lab = lab(3, Encap::Geneve);
    let mac = |n: usize| format!("02:00:00:00:05:{n:02x}");
    let vip = |n: usize| format!("10.5.0.{n}");
    let vms: Vec<_> = lab
        .hypervisors()
        .iter()
        .map(|hv| {
            let n = hv.number();
            hv.plug_vm(
                VmSpec::new(&format!("vm{n}"), &mac(n), &format!("lp-{n}"))
                    .addr(&format!("{}/24", vip(n)))
                    .unwrap(),
            )
            .unwrap()
        })
        .collect();
    for hv in lab.hypervisors() {
        take_over_br_int(hv);
        let n = hv.number();
        let vm_port = hv.interface(&format!("vm{n}")).unwrap().ofport.unwrap();
        let mut flood = String::from("set_field:100->tun_id");
        for peer in lab.hypervisors().iter().filter(|p| p.number() != n) {
            let p = peer.number();
            let tun = format!("t{p}");
            hv.vsctl([
                "add-port",
                "br-int",
                &tun,
                "--",
                "set",
                "Interface",
                &tun,
                "type=geneve",
                &format!("options:remote_ip={}", peer.transport_ip()),
                &format!("options:local_ip={}", hv.transport_ip()),
                "options:key=flow",
            ])
            .unwrap();
            let tun_port = hv
                .wait_for_interface(&tun, WAIT, |i| i.is_up())
                .unwrap()
                .ofport
                .unwrap();
            hv.add_flow(
                "br-int",
                &format!(
                    "priority=100,in_port={vm_port},dl_dst={},actions=set_field:100->tun_id,output:{tun_port}",
                    mac(p)
                ),
            )
            .unwrap();
            hv.add_flow(
                "br-int",
                &format!("priority=100,in_port={tun_port},tun_id=100,actions=output:{vm_port}"),
            )
            .unwrap();
            flood.push_str(&format!(",output:{tun_port}"));
        }
        hv.add_flow(
            "br-int",
            &format!(
                "priority=90,in_port={vm_port},dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions={flood}"
            ),
        )
        .unwrap();
    }
    for (i, src) in vms.iter().enumerate() {
        for (j, _) in vms.iter().enumerate().filter(|(j, _)| *j != i) {
            src.ping_until_reachable(ip(&vip(j + 1)), WAIT).unwrap();
        }
    }
    // ARP (broadcast) from every VM reached both peers through head-end replication:
    // vm3 resolved vm1's address to vm1's MAC. Packets from a tunnel only go to the local
    // VM by construction; with `actions=NORMAL` instead, this triangle would loop.
    let neigh = vms[2].exec("ip", &["neigh", "show", &vip(1)]).unwrap();
    assert!(neigh.contains(&mac(1)), "{neigh}");
    let r = vms[0]
        .ping(ip(&vip(3)), 5, Duration::from_millis(50))
        .unwrap();
    assert!(r.all_received(), "{r:?}");
}
