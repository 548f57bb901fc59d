//! Resilience of the data plane when the control plane misbehaves (DESIGN.md: the data
//! plane never depends on weftd being up). Real `weftd`, real Open vSwitch per hypervisor
//! in network namespaces, VMs on different hypervisors, and a 10 ms ping (plus where it
//! matters a long-lived TCP stream) running while the control plane is disturbed:
//!
//! 1. weftd SIGKILL / SIGTERM and restart on the same data dir and ports: zero loss, the
//!    TCP stream survives, br-int's flow table is unchanged (same text, no flow re-added),
//!    and a change made through the API afterwards is applied.
//! 2. A hypervisor cut off from weftd while the model changes: after reconnecting the
//!    change is applied and nothing stale remains.
//! 3. ovs-vswitchd restart: flows and tunnels come back; the outage is measured.
//! 4. ovsdb-server restart: weftd reconnects, the data plane does not notice.
//!
//! No timed assertions: loss counts are correctness assertions (zero), times are printed.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::overlay::{INSTALL_TIMEOUT, Overlay};
use integration::lab::{ContinuousPing, Encap, Hypervisor, TcpEchoServer, Vm, VmSpec};
use serde_json::json;

const PING_INTERVAL: Duration = Duration::from_millis(10);

/// These tests count single lost pings while a control-plane component restarts; two of
/// them side by side on a 2-core machine (each with its own lab, weftd and vswitchds)
/// measure CPU starvation as much as Weft. They take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn assert_reaches(from: &Vm, to: &str, ov: &Overlay) {
    if let Err(e) = from.ping_until_reachable(ip(to), Duration::from_secs(15)) {
        panic!("{} -> {to}: {e}\nweftd log:\n{}", from.name(), ov.log());
    }
    let r = from.ping(ip(to), 3, Duration::from_millis(50)).unwrap();
    assert!(r.all_received(), "{} -> {to}: {r:?}", from.name());
}

/// br-int's flows without statistics, sorted: what must not change across a control
/// plane restart.
fn flow_table(hv: &Hypervisor) -> Vec<String> {
    let mut f = hv.dump_flows("br-int").unwrap();
    f.sort();
    f
}

/// Age of each br-int flow (keyed by its text without statistics), from `duration=`:
/// a flow deleted and added again, or replaced by an identical add, starts again at 0.
fn flow_ages(hv: &Hypervisor) -> BTreeMap<String, f64> {
    let out = hv
        .ofctl(["-O", "OpenFlow13", "dump-flows", "br-int"])
        .unwrap();
    out.lines()
        .filter(|l| l.contains("duration="))
        .map(|l| {
            let mut age = 0.0;
            let mut rest = Vec::new();
            for part in l.trim().split(", ") {
                if let Some(v) = part.strip_prefix("duration=") {
                    age = v.trim_end_matches('s').parse().unwrap_or(0.0);
                } else if !["n_packets=", "n_bytes=", "idle_age=", "hard_age="]
                    .iter()
                    .any(|p| part.starts_with(p))
                {
                    rest.push(part);
                }
            }
            (rest.join(", "), age)
        })
        .collect()
}

/// Asserts no flow of `before` was re-added since: each is still there, at least
/// `elapsed` older.
fn assert_not_readded(hv: &Hypervisor, before: &BTreeMap<String, f64>, elapsed: Duration) {
    let after = flow_ages(hv);
    for (flow, age) in before {
        let now = after
            .get(flow)
            .unwrap_or_else(|| panic!("{}: flow gone: {flow}", hv.name()));
        assert!(
            *now >= age + elapsed.as_secs_f64() - 0.01,
            "{}: flow re-added (age {age} s before, {now} s now, {:?} later): {flow}",
            hv.name(),
            elapsed
        );
    }
}

/// A long-lived TCP connection between two VMs carrying a small echoed message every
/// 20 ms; any error, short read or corrupted byte ends it with a reason.
struct TcpStream {
    stop: Arc<AtomicBool>,
    echoed: Arc<AtomicU64>,
    worker: Option<JoinHandle<Result<(), String>>>,
    _server: TcpEchoServer,
}

impl TcpStream {
    fn start(client: &Vm, server: &Vm, server_ip: &str, port: u16) -> TcpStream {
        let srv = server
            .tcp_echo_server(SocketAddr::new(ip("0.0.0.0"), port))
            .unwrap();
        let mut conn = client
            .tcp_connect(SocketAddr::new(ip(server_ip), port), Duration::from_secs(5))
            .unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let echoed = Arc::new(AtomicU64::new(0));
        let (s, e) = (stop.clone(), echoed.clone());
        let worker = std::thread::spawn(move || {
            let mut seq: u64 = 0;
            while !s.load(Ordering::Relaxed) {
                let msg: Vec<u8> = (0..64u8).map(|i| i.wrapping_add(seq as u8)).collect();
                conn.write_all(&msg)
                    .map_err(|err| format!("write #{seq}: {err}"))?;
                let mut back = [0u8; 64];
                conn.read_exact(&mut back)
                    .map_err(|err| format!("read #{seq}: {err}"))?;
                if back[..] != msg[..] {
                    return Err(format!("message #{seq} corrupted"));
                }
                e.fetch_add(64, Ordering::Relaxed);
                seq += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        });
        TcpStream {
            stop,
            echoed,
            worker: Some(worker),
            _server: srv,
        }
    }

    /// Stops the stream; returns the bytes echoed, or why it broke.
    fn stop(mut self) -> Result<u64, String> {
        self.stop.store(true, Ordering::Relaxed);
        let r = self
            .worker
            .take()
            .map(|w| w.join().unwrap_or_else(|_| Err("panicked".into())))
            .unwrap_or(Ok(()));
        r.map(|()| self.echoed.load(Ordering::Relaxed))
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Pings `to` from `from` every 10 ms while `disturb` runs; returns (lost, longest outage).
fn lossless_during(from: &Vm, to: &str, disturb: impl FnOnce()) -> (u32, Duration, u32) {
    let cp: ContinuousPing = from.ping_continuous(ip(to), PING_INTERVAL).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    disturb();
    std::thread::sleep(Duration::from_millis(500));
    let r = cp.stop().unwrap();
    (r.summary.lost(), r.longest_outage(), r.summary.transmitted)
}

/// blue: a1@hv1 .1, a2@hv2 .2 (3 hypervisors when `n` = 3: a3@hv3 .3).
fn blue(ov: &Overlay, n: usize) -> Vec<Vm> {
    ov.call("switch_create", json!({"name": "blue", "vni": 5001}));
    (1..=n)
        .map(|i| {
            let name = format!("a{i}");
            let mac = format!("02:00:00:00:00:0{i}");
            let addr = format!("10.0.0.{i}");
            ov.port("blue", &name, &mac, &addr);
            ov.plug(i, &name, &mac, &format!("{addr}/24"))
        })
        .collect()
}

/// Kills weftd with `signal`, waits 2 s, restarts it: nothing on the data plane notices.
fn weftd_restart(ov: &mut Overlay, vms: &[Vm], signal: &str, next_port: usize) {
    let (a1, a2) = (&vms[0], &vms[1]);
    let tables: Vec<_> = (1..=2).map(|n| flow_table(ov.hv(n))).collect();
    let ages: Vec<_> = (1..=2).map(|n| flow_ages(ov.hv(n))).collect();
    let t_before = Instant::now();
    let tcp = TcpStream::start(a1, a2, "10.0.0.2", 7000 + next_port as u16);
    let mut reconnect = Duration::ZERO;
    let (lost, outage, sent) = lossless_during(a1, "10.0.0.2", || {
        match signal {
            "KILL" => ov.weftd.kill9(),
            _ => {
                let status = ov.weftd.terminate();
                eprintln!("weftd SIGTERM exit status: {status}");
            }
        }
        std::thread::sleep(Duration::from_secs(2));
        let t = Instant::now();
        ov.restart_weftd();
        ov.wait_connected();
        reconnect = t.elapsed();
        // Let the reconcilers finish whatever they would do after their dump.
        std::thread::sleep(Duration::from_secs(2));
    });
    let echoed = tcp.stop();
    eprintln!(
        "SIG{signal} weftd: {sent} pings, {lost} lost, longest outage {outage:?}; \
         restart to both hypervisors reconnected {reconnect:?}; tcp {echoed:?}"
    );
    if lost > 0 {
        for n in 1..=2 {
            let log =
                std::fs::read_to_string(ov.hv(n).log_file(integration::lab::Daemon::Vswitchd))
                    .unwrap_or_default();
            let tail: Vec<_> = log.lines().rev().take(25).collect();
            eprintln!("hv{n} vswitchd log (newest first):\n{}", tail.join("\n"));
        }
        eprintln!("weftd log:\n{}", ov.log());
    }
    assert_eq!(lost, 0, "pings lost across weftd SIG{signal}");
    let bytes = echoed.unwrap_or_else(|e| panic!("TCP stream broke across SIG{signal}: {e}"));
    assert!(bytes > 0);
    for n in 1..=2 {
        assert_eq!(
            flow_table(ov.hv(n)),
            tables[n - 1],
            "hv{n} flow table changed across weftd SIG{signal}"
        );
        assert_not_readded(
            ov.hv(n),
            &ages[n - 1],
            t_before.elapsed() - Duration::from_secs(1),
        );
        assert!(
            ov.hv(n)
                .vsctl(["get", "bridge", "br-int", "controller"])
                .unwrap()
                .trim()
                != "[]"
        );
    }
    // The restarted weftd applies a change: a new port on hv2, reachable from hv1.
    let name = format!("c{next_port}");
    let mac = format!("02:00:00:00:01:0{next_port}");
    let addr = format!("10.0.0.{}", 10 + next_port);
    ov.port("blue", &name, &mac, &addr);
    let c = ov.plug(2, &name, &mac, &format!("{addr}/24"));
    assert_reaches(a1, &addr, ov);
    assert_reaches(&c, "10.0.0.1", ov);
}

/// Scenario 1: weftd SIGKILL, then SIGTERM, each followed by a restart 2 s later.
#[test]
fn weftd_restart_is_invisible_to_the_data_plane() {
    let _turn = take_turn();
    let mut ov = Overlay::start(2, Encap::Geneve);
    let vms = blue(&ov, 2);
    assert_reaches(&vms[0], "10.0.0.2", &ov);
    assert_reaches(&vms[1], "10.0.0.1", &ov);
    ov.wait_connected();
    weftd_restart(&mut ov, &vms, "KILL", 1);
    weftd_restart(&mut ov, &vms, "TERM", 2);
}

/// A 10 ms ping whose replies carry wall-clock timestamps (`ping -D`), to measure when
/// forwarding resumed after an event.
struct TimedPing {
    child: std::process::Child,
    reader: Option<JoinHandle<Vec<(f64, u32)>>>,
}

impl TimedPing {
    fn start(from: &Vm, to: &str) -> TimedPing {
        let mut child = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &from.netns(),
                "ping",
                "-D",
                "-n",
                "-i",
                "0.01",
            ])
            .arg(to)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ping -D");
        let out = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            // "[1700000000.123456] 64 bytes from 10.0.0.2: icmp_seq=5 ttl=64 time=0.5 ms"
            std::io::BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    let ts = l.strip_prefix('[')?.split(']').next()?.parse().ok()?;
                    let seq = l
                        .split("icmp_seq=")
                        .nth(1)?
                        .split(' ')
                        .next()?
                        .parse()
                        .ok()?;
                    Some((ts, seq))
                })
                .collect()
        });
        TimedPing {
            child,
            reader: Some(reader),
        }
    }

    /// Stops; returns (replies, first reply at or after `since` as a delay from it,
    /// longest gap between consecutive replies).
    fn stop(mut self, since: std::time::SystemTime) -> (usize, Option<Duration>, Duration) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status();
        let _ = self.child.wait();
        let replies = self
            .reader
            .take()
            .and_then(|r| r.join().ok())
            .unwrap_or_default();
        let since = since
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let first = replies
            .iter()
            .map(|(ts, _)| *ts)
            .find(|ts| *ts >= since)
            .map(|ts| Duration::from_secs_f64(ts - since));
        let gap = replies
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .fold(0.0, f64::max);
        (replies.len(), first, Duration::from_secs_f64(gap))
    }
}

impl Drop for TimedPing {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Weft's tunnel ports on a hypervisor: remote system-id -> (port name, ofport).
fn tunnels(hv: &Hypervisor) -> BTreeMap<String, (String, Option<i64>)> {
    hv.interfaces()
        .unwrap()
        .into_iter()
        .filter_map(|i| {
            let remote = i.external_ids.get("weft-remote")?.clone();
            Some((remote, (i.name.clone(), i.ofport)))
        })
        .collect()
}

/// Scenario 2: the model changes while hv3 is cut off from weftd (underlay link down
/// long enough for both sides to declare the sessions dead). After the link is back the
/// change is applied on hv3, nothing of the deleted switch remains anywhere, and traffic
/// between the other hypervisors never noticed.
#[test]
fn model_change_while_a_hypervisor_is_cut_off() {
    let _turn = take_turn();
    // Long enough that weftd (5 s probe + 5 s) and OVS (5 s probes) give the
    // connections up: the reconnect path is what is tested, not TCP retransmission.
    cut_off(Duration::from_secs(14));
}

/// Scenario 2 with a cut shorter than any probe: the sessions survive, what weftd sent
/// meanwhile arrives by TCP retransmission; the result must be the same.
#[test]
fn model_change_during_a_short_cut() {
    let _turn = take_turn();
    cut_off(Duration::from_secs(3));
}

fn cut_off(cut: Duration) {
    let ov = Overlay::start(3, Encap::Geneve);
    let vms = blue(&ov, 3);
    ov.call("switch_create", json!({"name": "red", "vni": 5002}));
    ov.port("red", "b1", "02:00:00:00:00:11", "10.0.1.1");
    ov.port("red", "b3", "02:00:00:00:00:13", "10.0.1.3");
    let b1 = ov.plug(1, "b1", "02:00:00:00:00:11", "10.0.1.1/24");
    let _b3 = ov.plug(3, "b3", "02:00:00:00:00:13", "10.0.1.3/24");
    let (a1, a3) = (&vms[0], &vms[2]);
    for to in ["10.0.0.2", "10.0.0.3"] {
        assert_reaches(a1, to, &ov);
    }
    assert_reaches(&b1, "10.0.1.3", &ov);
    ov.wait_connected();
    let red = |hv: &Hypervisor| -> Vec<String> {
        hv.dump_flows("br-int")
            .unwrap()
            .into_iter()
            .filter(|f| {
                f.contains("0x138a")
                    || f.contains("02:00:00:00:00:11")
                    || f.contains("02:00:00:00:00:13")
            })
            .collect()
    };
    assert!(!red(ov.hv(3)).is_empty(), "red not installed on hv3");
    ov.wait_past_startup_hold();

    let mut a4 = None;
    let t_cut = Instant::now();
    let (lost, outage, sent) = lossless_during(a1, "10.0.0.2", || {
        ov.hv(3).set_underlay_link(false).unwrap();
        std::thread::sleep(Duration::from_secs(1));
        // While hv3 cannot hear weftd: red goes away, a new blue port appears and its VM
        // is plugged on hv3 (hv3's own database is local, so that works).
        ov.call("switch_delete", json!({"switch": "red", "cascade": true}));
        ov.port("blue", "a4", "02:00:00:00:00:04", "10.0.0.4");
        let vm = ov
            .hv(3)
            .plug_vm(
                VmSpec::new("a4", "02:00:00:00:00:04", "a4")
                    .addr("10.0.0.4/24")
                    .unwrap(),
            )
            .unwrap();
        vm.exec("sysctl", &["-qw", "net.ipv6.conf.eth0.disable_ipv6=1"])
            .unwrap();
        a4 = Some(vm);
        std::thread::sleep(cut);
        ov.hv(3).set_underlay_link(true).unwrap();
        let t = Instant::now();
        ov.wait_installed(3, "a4");
        eprintln!(
            "cut-off hv3 ({cut:?}): link up to a4 installed {:?} (cut lasted {:?})",
            t.elapsed(),
            t_cut.elapsed() - t.elapsed()
        );
    });
    eprintln!(
        "cut-off hv3 ({cut:?}): hv1->hv2 {sent} pings, {lost} lost, longest outage {outage:?}"
    );
    assert_eq!(lost, 0, "hv1<->hv2 traffic disturbed by hv3's cut");
    let log = ov.log();
    let a4 = a4.unwrap();
    ov.wait_connected();
    // The change is applied: a4 talks to blue on both other hypervisors.
    assert_reaches(&a4, "10.0.0.1", &ov);
    assert_reaches(&a4, "10.0.0.2", &ov);
    assert_reaches(a3, "10.0.0.1", &ov);
    // Nothing of red remains anywhere; b1 reaches nothing.
    for n in 1..=3 {
        ov.hv(n)
            .wait_for("red flows gone", INSTALL_TIMEOUT, |hv| {
                Ok(red(hv).is_empty())
            })
            .unwrap_or_else(|e| panic!("hv{n}: {e}: {:?}\n{log}", red(ov.hv(n))));
    }
    let r = b1
        .ping(ip("10.0.1.3"), 3, Duration::from_millis(100))
        .unwrap();
    assert_eq!(r.received, 0, "b1 still reaches b3 after red was deleted");
    // Tunnels: a full blue mesh, nothing else.
    for n in 1..=3 {
        let t = tunnels(ov.hv(n));
        let want: Vec<String> = (1..=3)
            .filter(|m| *m != n)
            .map(|m| format!("hv{m}"))
            .collect();
        assert_eq!(t.keys().cloned().collect::<Vec<_>>(), want, "hv{n} tunnels");
    }
}

/// Scenario 3: ovs-vswitchd restarts on hv2 (its flows are gone with it): weftd
/// reinstalls them; the tunnels (OVSDB rows) survive. Prints how long after vswitchd
/// started forwarding resumed.
#[test]
fn vswitchd_restart_is_repaired() {
    let _turn = take_turn();
    let ov = Overlay::start(2, Encap::Geneve);
    let vms = blue(&ov, 2);
    let (a1, a2) = (&vms[0], &vms[1]);
    assert_reaches(a1, "10.0.0.2", &ov);
    ov.wait_connected();
    let table = flow_table(ov.hv(2));
    let tun = tunnels(ov.hv(2));
    assert!(!tun.is_empty());

    let ping = TimedPing::start(a1, "10.0.0.2");
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    ov.hv(2).restart_vswitchd().unwrap();
    // restart_vswitchd returns once vswitchd runs and br-phy has its address again.
    let started = std::time::SystemTime::now();
    let down_for = t0.elapsed();
    let r = ov.hv(2).wait_for("hv2 flows back", INSTALL_TIMEOUT, |hv| {
        Ok(flow_table(hv) == table)
    });
    if let Err(e) = r {
        panic!(
            "{e}\nbefore: {table:#?}\nnow: {:#?}\nweftd log:\n{}",
            flow_table(ov.hv(2)),
            ov.log()
        );
    }
    let flows_back = started.elapsed().unwrap_or_default();
    if let Err(e) = a1.ping_until_reachable(ip("10.0.0.2"), Duration::from_secs(15)) {
        panic!("{e}\nweftd log:\n{}", ov.log());
    }
    std::thread::sleep(Duration::from_millis(500));
    let (replies, first, gap) = ping.stop(started);
    eprintln!(
        "vswitchd restart on hv2: stop+start took {down_for:?}; flows back {flows_back:?} after \
         start; first ping reply {first:?} after start; longest ping gap {gap:?} \
         ({replies} replies)"
    );
    // Why forwarding took that long: vswitchd's own account of its controller connection.
    let log = std::fs::read_to_string(ov.hv(2).log_file(integration::lab::Daemon::Vswitchd))
        .unwrap_or_default();
    let starts = log
        .match_indices("ovs-vswitchd (Open vSwitch)")
        .map(|(i, _)| i);
    let last_start = starts.last().unwrap_or(0);
    for line in log[last_start..].lines().filter(|l| l.contains("rconn")) {
        eprintln!("hv2 vswitchd: {line}");
    }
    assert!(first.is_some(), "forwarding never resumed");
    assert_eq!(tunnels(ov.hv(2)), tun, "hv2 tunnel ports changed");
    assert_reaches(a2, "10.0.0.1", &ov);
}

/// Scenario 4: ovsdb-server restarts on hv2: weftd reconnects, the data plane does not
/// notice (zero loss, flows and tunnels untouched), and weftd still manages hv2.
#[test]
fn ovsdb_restart_is_invisible() {
    let _turn = take_turn();
    let ov = Overlay::start(2, Encap::Geneve);
    let vms = blue(&ov, 2);
    let (a1, a2) = (&vms[0], &vms[1]);
    assert_reaches(a1, "10.0.0.2", &ov);
    ov.wait_connected();
    let tables: Vec<_> = (1..=2).map(|n| flow_table(ov.hv(n))).collect();
    let ages: Vec<_> = (1..=2).map(|n| flow_ages(ov.hv(n))).collect();
    let tuns: Vec<_> = (1..=2).map(|n| tunnels(ov.hv(n))).collect();
    ov.wait_past_startup_hold();
    let t_before = Instant::now();
    let tcp = TcpStream::start(a1, a2, "10.0.0.2", 7100);
    let mut reconnect = Duration::ZERO;
    let (lost, outage, sent) = lossless_during(a1, "10.0.0.2", || {
        let t = Instant::now();
        ov.hv(2).restart_ovsdb().unwrap();
        // weftd sees the session end, then the new one (ovsdb-server dials it again).
        ov.hv(2)
            .wait_for("weftd reconnected", INSTALL_TIMEOUT, |hv| {
                Ok(hv
                    .vsctl(["--columns=is_connected", "list", "manager"])?
                    .contains("true"))
            })
            .unwrap();
        ov.wait_connected();
        reconnect = t.elapsed();
        std::thread::sleep(Duration::from_secs(2));
    });
    let echoed = tcp.stop();
    eprintln!(
        "ovsdb-server restart on hv2: {sent} pings, {lost} lost, longest outage {outage:?}; \
         restart to reconnected {reconnect:?}; tcp {echoed:?}"
    );
    assert_eq!(lost, 0, "pings lost across ovsdb-server restart");
    echoed.unwrap_or_else(|e| panic!("TCP stream broke: {e}"));
    for n in 1..=2 {
        assert_eq!(flow_table(ov.hv(n)), tables[n - 1], "hv{n} flows changed");
        assert_not_readded(
            ov.hv(n),
            &ages[n - 1],
            t_before.elapsed() - Duration::from_secs(1),
        );
        assert_eq!(tunnels(ov.hv(n)), tuns[n - 1], "hv{n} tunnels changed");
    }
    // weftd still manages hv2: a new port there is installed and reachable.
    ov.port("blue", "c1", "02:00:00:00:01:01", "10.0.0.11");
    let c = ov.plug(2, "c1", "02:00:00:00:01:01", "10.0.0.11/24");
    assert_reaches(a1, "10.0.0.11", &ov);
    assert_reaches(&c, "10.0.0.1", &ov);
}
