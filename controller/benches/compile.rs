//! Compiler and realization cost at NVP scale, in process (no switch, no sockets).
//!
//! A synthetic fabric: N hypervisors × 21 bound VM ports, logical switches of 2–64 ports
//! whose ports sit on distinct hypervisors (2 % of switches have 64 ports, 2 % 32, the rest
//! 2–12: ~8.6 ports per switch on average, so ~7,300 switches at 3,000 nodes), every node
//! with a tunnel port to every node it shares a switch with, and one port in ten with a
//! four-rule ACL set. For each N the bench measures:
//! - `cold`: the first `IncrementalCompiler::update` (every node), flows and groups per node;
//! - `unchanged`: an update with the same model and topology;
//! - `port_add_64`: a new logical port on a 64-port switch, bound on a node that was not in
//!   that switch (one model and one topology change, one update);
//! - `vif_plug`: a VIF plugged for a predeclared port of a small switch (topology only);
//! - `storm`: a fresh `Fabric` with the real realize task (`weft::realize::run`) on a
//!   2-thread runtime while N `upsert_node` calls arrive in a row (a weftd restart: every
//!   hypervisor reconnects), until every node's published desired state has its full flow
//!   count; counts the realize rounds it took (the task's "compiled" log events);
//! - `peak_rss`: VmHWM of the process (each N runs in its own child process).
//!
//! Run: `cargo bench -p weft-controller --bench compile` (release). `WEFT_BENCH_NODES=100,1000`
//! picks the sizes (default 100,1000,3000). Prints a table, writes target/compile_bench.json.
//!
//! Baseline: main at 8452255 (a fingerprint of every node on every update, bindings
//! recomputed over all ports, `Topology` a `BTreeMap` of `NodeView`s cloned on every
//! upsert), this bench on the shared, loaded 2-core machine (times in ms, "a/b" = ms/nodes
//! recompiled, storm = ms until all published / realize rounds):
//! ```text
//!  nodes   sw  ports   flows fl/nd  cold ms unchanged  port64 ms/nds  vif ms/nds  storm ms/rounds  RSS MiB
//!    100  254   2101  125882  1259    199.1     19.25      95.5/65      42.7/11        293/3          210
//!   1000 2487  21001 1331804  1332   3073.8    510.13     496.2/65     432.6/12       4298/7         2133
//!   3000 7259  63001 4357224  1452  13390.7   4041.58    3858.9/65    4562.5/12      23035/6         7066
//! ```
//!
//! After (this branch, same bench, `cargo bench -p weft-controller --bench compile`,
//! load average 6-10 on the 2 cores during the run, so wall times are mostly waiting for
//! a core; "cpu" = process CPU time, both compile threads):
//! ```text
//!  nodes  cold ms (cpu)  unchanged  port64 ms/nds  vif ms/nds  burst ms/rounds  paced ms/rounds/compiles  RSS MiB
//!    100     503 (190)       0.12      165/65        35/11          513/1          519/6/115              191
//!   1000    8001 (2390)      0.11      730/65        53/12         8726/5         9930/6/1979            2085
//!   3000   22566 (8710)     13.70     3487/65       233/12        40875/4        20741/17/5437           7157
//! ```
//! The same binary at load ~3.6 (`WEFT_BENCH_NODES=1000,3000`, 05:19 UTC):
//! ```text
//!   1000    3613 (2280)      0.10      312/65        47/12         3026/10        4484/12/2202           1215
//!   3000   10621 (7850)      0.11      719/65        22/12        13477/3        11579/9/6352            6581
//! ```
//! `unchanged` is 0.11 ms when the thread is not preempted. The 64-port case costs ~11 ms
//! of CPU per recompiled node against ~2.6 ms per node in the cold update; not explained
//! yet (suspect: glibc malloc reusing the 4M chunks the dropped cold result freed).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;
use weft::channels::Channels;
use weft::compiler::IncrementalCompiler;
use weft::model::{
    Acl, AclAction, Direction, Ethertype, LogicalModel, LogicalPort, LogicalSwitch, Protocol,
};
use weft::topology::EncapType;
use weft::topology::TransportNodes;
use weft::topology::{NodeView, Topology, Vif};

/// Figures of the code on main before this work (8452255), same bench, same machine.
const BASELINE: &str = "main at 8452255, 3000 nodes: cold 13391 ms, unchanged 4042 ms, port on \
    a 64-port switch 3859 ms (65 nodes), vif plug 4563 ms (12 nodes), burst of 3000 upserts \
    to all published 23035 ms (6 rounds), peak RSS 7066 MiB";

const PORTS_PER_NODE: usize = 21;

/// Deterministic xorshift, so every run builds the same fabric.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn node_name(n: usize) -> String {
    format!("hv{n:05}")
}

fn encap_ip(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        200 + (n >> 16) as u8,
        (n >> 8) as u8,
        n as u8,
    ))
}

struct Fabric0 {
    model: LogicalModel,
    topology: Topology,
    /// Inputs of `model`, to derive changed models.
    switches: Vec<LogicalSwitch>,
    ports: Vec<LogicalPort>,
    acls: Vec<Acl>,
    /// A 64-port switch and a node not in it.
    big_switch: usize,
    outsider: usize,
    /// A predeclared, unbound port of a small switch, and a node not in that switch.
    spare_port: LogicalPort,
    spare_node: usize,
    spare_switch: usize,
    /// The nodes each switch has ports on.
    members: Vec<Vec<usize>>,
}

/// Tunnels between `node` and each of `others`, both ways, as the OVSDB sessions report
/// them once a node joins a switch: the compiler puts off a node whose tunnels have no
/// ofport yet, so a bench that leaves them out measures a node that is not compiled.
fn link(t: &mut Topology, node: usize, others: &[usize]) {
    for &o in others.iter().filter(|&&o| o != node) {
        if let Some(v) = t.nodes.get_mut(&node_name(node)) {
            v.tunnels.insert(node_name(o), 10_000 + o as u32);
        }
        if let Some(v) = t.nodes.get_mut(&node_name(o)) {
            v.tunnels.insert(node_name(node), 10_000 + node as u32);
        }
    }
}

fn port_of(idx: usize, switch: &LogicalSwitch, key: u16) -> LogicalPort {
    let mac = format!(
        "02:00:{:02x}:{:02x}:{:02x}:{:02x}",
        (idx >> 24) & 0xff,
        (idx >> 16) & 0xff,
        (idx >> 8) & 0xff,
        idx & 0xff
    );
    let ip = IpAddr::V4(Ipv4Addr::new(
        10,
        (idx >> 16) as u8,
        (idx >> 8) as u8,
        idx as u8,
    ));
    LogicalPort {
        id: Uuid::from_u128(0x1000_0000 + idx as u128),
        name: format!("p{idx}"),
        switch: switch.id,
        mac: mac.parse().expect("mac"),
        ips: vec![ip],
        port_security: true,
        key,
        zone: (idx + 1) as u16,
    }
}

fn acl_set(port: &LogicalPort, idx: usize) -> Vec<Acl> {
    let base = 0x2000_0000u128 + (idx as u128) * 4;
    let acl = |n: u128, direction, priority, protocol, lo, hi, action| Acl {
        id: Uuid::from_u128(base + n),
        port: port.id,
        direction,
        priority,
        protocol,
        ethertype: Ethertype::Ipv4,
        remote_cidr: None,
        port_min: lo,
        port_max: hi,
        action,
    };
    vec![
        acl(
            0,
            Direction::Ingress,
            10,
            Some(Protocol::Tcp),
            Some(22),
            Some(22),
            AclAction::AllowRelated,
        ),
        acl(
            1,
            Direction::Ingress,
            20,
            Some(Protocol::Tcp),
            Some(8000),
            Some(8099),
            AclAction::Allow,
        ),
        acl(
            2,
            Direction::Ingress,
            5,
            Some(Protocol::Icmp),
            None,
            None,
            AclAction::Allow,
        ),
        acl(
            3,
            Direction::Egress,
            10,
            None,
            None,
            None,
            AclAction::AllowRelated,
        ),
    ]
}

fn vif(iface: &str, ofport: u32) -> (String, Vif) {
    (
        iface.to_owned(),
        Vif {
            ofport,
            interface: Uuid::from_u128(0xf000_0000 + u128::from(ofport)),
            name: format!("tap-{iface}"),
        },
    )
}

fn build(nodes: usize) -> Fabric0 {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Every node offers 21 slots; switches take slots from distinct nodes.
    let mut slots: Vec<usize> = (0..nodes)
        .flat_map(|n| std::iter::repeat_n(n, PORTS_PER_NODE))
        .collect();
    for i in (1..slots.len()).rev() {
        let j = rng.below(i + 1);
        slots.swap(i, j);
    }
    let mut switches = Vec::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut at = 0;
    while at < slots.len() {
        let r = rng.below(100);
        let want = match r {
            0..=1 => 64,
            2..=3 => 32,
            _ => 2 + rng.below(11),
        };
        let size = want.min(slots.len() - at).min(nodes);
        let mut mine: Vec<usize> = Vec::with_capacity(size);
        let mut k = at;
        while mine.len() < size && k < slots.len() {
            // Find a slot whose node is not in this switch yet.
            let mut j = k;
            while j < slots.len() && mine.contains(&slots[j]) {
                j += 1;
            }
            if j == slots.len() {
                break;
            }
            slots.swap(k, j);
            mine.push(slots[k]);
            k += 1;
        }
        at = k;
        if mine.len() < 2 && at >= slots.len() && !mine.is_empty() {
            // A lone leftover port still makes a (1-port) switch: it is bound somewhere.
        }
        if mine.is_empty() {
            break;
        }
        let s = switches.len();
        switches.push(LogicalSwitch {
            id: Uuid::from_u128(0x100_0000 + s as u128),
            name: format!("ls{s}"),
            vni: 1000 + s as u32,
            description: String::new(),
            provider: None,
            flood_vteps: Vec::new(),
        });
        members.push(mine);
    }
    let mut ports = Vec::new();
    let mut acls = Vec::new();
    let mut vifs: Vec<BTreeMap<String, Vif>> = vec![BTreeMap::new(); nodes];
    let mut peers: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); nodes];
    for (s, mine) in members.iter().enumerate() {
        for (i, &n) in mine.iter().enumerate() {
            let idx = ports.len();
            let p = port_of(idx, &switches[s], (i + 1) as u16);
            if idx % 10 == 0 {
                acls.extend(acl_set(&p, idx));
            }
            let ofport = vifs[n].len() as u32 + 1;
            vifs[n].extend([vif(&p.name, ofport)]);
            ports.push(p);
            for &o in mine {
                if o != n {
                    peers[n].insert(o);
                }
            }
        }
    }
    let big_switch = members
        .iter()
        .position(|m| m.len() == 64.min(nodes))
        .expect("a 64-port switch");
    let outsider = (0..nodes)
        .find(|n| !members[big_switch].contains(n))
        .unwrap_or(0);
    let small = members
        .iter()
        .position(|m| m.len() <= 12)
        .expect("a small switch");
    let spare_node = (0..nodes)
        .rev()
        .find(|n| !members[small].contains(n))
        .unwrap_or(0);
    let spare_port = port_of(
        ports.len(),
        &switches[small],
        (members[small].len() + 1) as u16,
    );
    let mut all_ports = ports.clone();
    all_ports.push(spare_port.clone());
    let mut topology = Topology::default();
    for n in 0..nodes {
        let tunnels = peers[n]
            .iter()
            .map(|&o| (node_name(o), 10_000 + o as u32))
            .collect();
        let v = NodeView {
            id: node_name(n),
            encap_ip: encap_ip(n),
            encap_type: EncapType::Geneve,
            bridge: "br-int".into(),
            datapath_id: Some(n as u64 + 1),
            vifs: std::mem::take(&mut vifs[n]),
            tunnels,
            bridge_mappings: Default::default(),
            patches: Default::default(),
        };
        topology.nodes.insert(v.id.clone(), v);
    }
    let model = LogicalModel::from_objects(1, switches.clone(), all_ports.clone(), acls.clone())
        .expect("synthetic model is valid");
    Fabric0 {
        model,
        topology,
        switches,
        ports: all_ports,
        acls,
        big_switch,
        outsider,
        spare_port,
        spare_node,
        spare_switch: small,
        members,
    }
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time of the whole process so far (user + system, all threads), from
/// /proc/self/stat in clock ticks (100 Hz on Linux): separates Weft's work from waiting
/// for a core on a loaded machine.
fn cpu_ms() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are 14 and 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) * 10.0)
        })
        .unwrap_or(0.0)
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Counts the realize task's "compiled" events (one per round) and the nodes they compiled.
#[derive(Default)]
struct RoundCounter {
    rounds: AtomicU64,
    compiled: AtomicU64,
}

struct CountLayer(Arc<RoundCounter>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct V {
            msg: bool,
            compiled: u64,
        }
        impl tracing::field::Visit for V {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" && format!("{v:?}") == "compiled" {
                    self.msg = true;
                }
            }
            fn record_u64(&mut self, f: &tracing::field::Field, v: u64) {
                if f.name() == "compiled" {
                    self.compiled = v;
                }
            }
            fn record_i64(&mut self, f: &tracing::field::Field, v: i64) {
                if f.name() == "compiled" {
                    self.compiled = v.max(0) as u64;
                }
            }
        }
        if event.metadata().target() != "weft::realize" {
            return;
        }
        let mut v = V {
            msg: false,
            compiled: 0,
        };
        event.record(&mut v);
        if v.msg {
            self.0.rounds.fetch_add(1, Ordering::Relaxed);
            self.0.compiled.fetch_add(v.compiled, Ordering::Relaxed);
        }
    }
}

/// Interval between hypervisors in the paced storm.
const PACE: Duration = Duration::from_millis(1);

struct Storm {
    upserts_ms: f64,
    all_published_ms: f64,
    complete: bool,
    rounds: u64,
    compiles: u64,
}

/// A fresh fabric and realize task; every node of `f` upserted, `pace` apart; timed until
/// every node's published desired state has its expected flow count.
fn storm(
    f: &Fabric0,
    expected: &BTreeMap<String, usize>,
    counter: &RoundCounter,
    pace: Duration,
) -> Storm {
    let nodes = expected.len();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let topology = TransportNodes::new();
    let channels = Channels::new();
    let (model_tx, model_rx) = tokio::sync::watch::channel(Arc::new(f.model.clone()));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (r0, c0) = (
        counter.rounds.load(Ordering::Relaxed),
        counter.compiled.load(Ordering::Relaxed),
    );
    let task = rt.spawn(weft::realize::run(
        model_rx,
        topology.clone(),
        channels.clone(),
        shutdown.clone(),
    ));
    let views: Vec<NodeView> = f.topology.nodes.values().cloned().collect();
    let t0 = Instant::now();
    for (i, v) in views.into_iter().enumerate() {
        if !pace.is_zero() {
            let at = pace * i as u32;
            if let Some(wait) = at.checked_sub(t0.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        topology.report(v);
    }
    let upserts_time = t0.elapsed();
    let limit = Duration::from_secs(600);
    let mut done = false;
    let watches: Vec<_> = expected
        .keys()
        .map(|n| (n.clone(), channels.watch_desired(n)))
        .collect();
    while t0.elapsed() < limit {
        done = watches.iter().all(|(n, w)| {
            channels.desired_published(n) && Some(&w.borrow().flows.len()) == expected.get(n)
        });
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let storm_time = t0.elapsed();
    let rounds = counter.rounds.load(Ordering::Relaxed) - r0;
    let compiles = counter.compiled.load(Ordering::Relaxed) - c0;
    shutdown.cancel();
    let _ = rt.block_on(task);
    drop(model_tx);
    eprintln!(
        "[{nodes}] storm (pace {pace:?}): upserts {upserts_time:?}, all published {storm_time:?} \
         (done={done}), {rounds} realize rounds, {compiles} node compiles"
    );
    Storm {
        upserts_ms: ms(upserts_time),
        all_published_ms: ms(storm_time),
        complete: done,
        rounds,
        compiles,
    }
}

fn run_one(nodes: usize, counter: Arc<RoundCounter>) -> Value {
    let t0 = Instant::now();
    let f = build(nodes);
    let build_time = t0.elapsed();
    eprintln!(
        "[{nodes}] built {} switches, {} ports, {} acls in {:?}",
        f.switches.len(),
        f.ports.len(),
        f.acls.len(),
        build_time
    );

    // Cold.
    let mut ic = IncrementalCompiler::new();
    let c0 = cpu_ms();
    let t0 = Instant::now();
    let cold = ic.update(&f.model, &f.topology);
    let cold_time = t0.elapsed();
    let cold_cpu = cpu_ms() - c0;
    let flows: Vec<usize> = cold.iter().map(|(_, d)| d.flows.len()).collect();
    let total_flows: usize = flows.iter().sum();
    let groups: usize = cold.iter().map(|(_, d)| d.groups.len()).sum();
    let tunnels: usize = cold.iter().map(|(_, d)| d.tunnels.len()).sum();
    let expected: BTreeMap<String, usize> = cold
        .iter()
        .map(|(n, d)| (n.clone(), d.flows.len()))
        .collect();
    let cold_nodes = cold.len();
    drop(cold);
    eprintln!(
        "[{nodes}] cold {cold_time:?}, {cold_cpu} ms CPU ({cold_nodes} nodes, {total_flows} flows)"
    );

    // Unchanged.
    let t0 = Instant::now();
    let same = ic.update(&f.model, &f.topology).len();
    let unchanged_time = t0.elapsed();
    eprintln!("[{nodes}] unchanged {unchanged_time:?} ({same} nodes)");

    // A port added to a 64-port switch, bound on a node outside it.
    let big = &f.switches[f.big_switch];
    let idx = f.ports.len() + 1;
    let key = f.model.port_count_of_switch(&big.id) as u16 + 1;
    let newp = port_of(idx, big, key);
    let mut ports = f.ports.clone();
    ports.push(newp.clone());
    let m2 = LogicalModel::from_objects(2, f.switches.clone(), ports, f.acls.clone())
        .expect("model with the new port");
    let mut t2 = f.topology.clone();
    let out = node_name(f.outsider);
    if let Some(v) = t2.nodes.get_mut(&out) {
        v.vifs.extend([vif(&newp.name, 500)]);
    }
    link(&mut t2, f.outsider, &f.members[f.big_switch]);
    // m2 is rebuilt from scratch, so unlike the writer's snapshots it shares nothing with
    // the previous model: its diff walks every object. Timed apart.
    let t0 = Instant::now();
    let delta = m2.changed_since(&f.model);
    let unshared_diff = t0.elapsed();
    eprintln!(
        "[{nodes}] diff of two unshared models: {unshared_diff:?} ({} ports changed)",
        delta.ports.len()
    );
    let c0 = cpu_ms();
    let t0 = Instant::now();
    let changed = ic.update(&m2, &t2);
    let add_time = t0.elapsed();
    let add_cpu = cpu_ms() - c0;
    let add_nodes = changed.len();
    let bound = changed
        .iter()
        .any(|(n, d)| *n == out && d.bound_ports.contains(&newp.id));
    assert!(bound, "the new port is not bound on {out}");
    drop(changed);
    eprintln!(
        "[{nodes}] port on a 64-port switch {add_time:?}, {add_cpu} ms CPU ({add_nodes} nodes)"
    );

    // A VIF plugged for the predeclared spare port (topology change only).
    let mut t3 = t2.clone();
    let spare_node = node_name(f.spare_node);
    if let Some(v) = t3.nodes.get_mut(&spare_node) {
        v.vifs.extend([vif(&f.spare_port.name, 501)]);
    }
    link(&mut t3, f.spare_node, &f.members[f.spare_switch]);
    let t0 = Instant::now();
    let changed = ic.update(&m2, &t3);
    let plug_time = t0.elapsed();
    let plug_nodes = changed.len();
    drop(changed);
    drop(ic);
    eprintln!("[{nodes}] vif plugged {plug_time:?} ({plug_nodes} nodes)");

    // Connect storms through the real realize task: a burst (every upsert at once) and
    // hypervisors arriving one per `PACE` (3 s for 3,000).
    let burst = storm(&f, &expected, &counter, Duration::ZERO);
    // VmHWM only grows: the peak of everything up to the burst storm (as the baseline
    // measured it), before the paced storm adds its own garbage.
    let rss_after_burst = vm_hwm_kib() / 1024;
    let paced = storm(&f, &expected, &counter, PACE);

    json!({
        "nodes": nodes,
        "switches": f.switches.len(),
        "ports": f.ports.len(),
        "acls": f.acls.len(),
        "flows_total": total_flows,
        "flows_per_node_mean": total_flows as f64 / nodes as f64,
        "flows_per_node_max": flows.iter().max().copied().unwrap_or(0),
        "groups_total": groups,
        "tunnels_per_node_mean": tunnels as f64 / nodes as f64,
        "cold_ms": ms(cold_time),
        "cold_cpu_ms": cold_cpu,
        "cold_nodes": cold_nodes,
        "unchanged_ms": ms(unchanged_time),
        "unchanged_nodes": same,
        "port_add_64_ms": ms(add_time),
        "port_add_64_cpu_ms": add_cpu,
        "port_add_64_unshared_model_diff_ms": ms(unshared_diff),
        "port_add_64_nodes": add_nodes,
        "vif_plug_ms": ms(plug_time),
        "vif_plug_nodes": plug_nodes,
        "storm_upserts_ms": burst.upserts_ms,
        "storm_all_published_ms": burst.all_published_ms,
        "storm_complete": burst.complete,
        "storm_realize_rounds": burst.rounds,
        "storm_node_compiles": burst.compiles,
        "paced_storm_pace_us": PACE.as_micros() as u64,
        "paced_storm_upserts_ms": paced.upserts_ms,
        "paced_storm_all_published_ms": paced.all_published_ms,
        "paced_storm_after_last_upsert_ms": paced.all_published_ms - paced.upserts_ms,
        "paced_storm_complete": paced.complete,
        "paced_storm_realize_rounds": paced.rounds,
        "paced_storm_node_compiles": paced.compiles,
        "peak_rss_mib": vm_hwm_kib() / 1024,
        "peak_rss_after_burst_mib": rss_after_burst,
    })
}

fn main() {
    // `cargo bench` passes `--bench`; a child run gets the size in the environment.
    if let Ok(n) = std::env::var("WEFT_COMPILE_BENCH_CHILD") {
        let nodes: usize = n.parse().expect("WEFT_COMPILE_BENCH_CHILD is a node count");
        let counter = Arc::new(RoundCounter::default());
        use tracing_subscriber::layer::SubscriberExt;
        let filter = tracing_subscriber::filter::Targets::new()
            .with_target("weft::realize", tracing::Level::DEBUG);
        let subscriber = tracing_subscriber::registry()
            .with(CountLayer(counter.clone()))
            .with(filter);
        tracing::subscriber::set_global_default(subscriber).expect("subscriber");
        let row = run_one(nodes, counter);
        println!("ROW {row}");
        return;
    }
    let sizes: Vec<usize> = std::env::var("WEFT_BENCH_NODES")
        .unwrap_or_else(|_| "100,1000,3000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let exe = std::env::current_exe().expect("own executable");
    let mut rows = Vec::new();
    for n in sizes {
        let out = std::process::Command::new(&exe)
            .env("WEFT_COMPILE_BENCH_CHILD", n.to_string())
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run child");
        let text = String::from_utf8_lossy(&out.stdout);
        match text.lines().find_map(|l| l.strip_prefix("ROW ")) {
            Some(r) => rows.push(serde_json::from_str::<Value>(r).expect("row json")),
            None => eprintln!("[{n}] child failed: {}", out.status),
        }
    }
    println!(
        "\n{:>6} {:>6} {:>7} {:>9} {:>6} {:>16} {:>10} {:>16} {:>10} {:>14} {:>18} {:>16}",
        "nodes",
        "sw",
        "ports",
        "flows",
        "fl/nd",
        "cold ms (cpu)",
        "unchanged",
        "port64 ms/nodes",
        "vif ms/nd",
        "burst ms/rnds",
        "paced ms/rnds/cmp",
        "RSS MiB (burst)"
    );
    for r in &rows {
        let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
        println!(
            "{:>6} {:>6} {:>7} {:>9} {:>6.0} {:>16} {:>10.2} {:>16} {:>10} {:>14} {:>18} {:>16}",
            r["nodes"],
            r["switches"],
            r["ports"],
            r["flows_total"],
            f("flows_per_node_mean"),
            format!("{:.0} ({:.0})", f("cold_ms"), f("cold_cpu_ms")),
            f("unchanged_ms"),
            format!("{:.1}/{}", f("port_add_64_ms"), r["port_add_64_nodes"]),
            format!("{:.1}/{}", f("vif_plug_ms"), r["vif_plug_nodes"]),
            format!(
                "{:.0}/{}",
                f("storm_all_published_ms"),
                r["storm_realize_rounds"]
            ),
            format!(
                "{:.0}/{}/{}",
                f("paced_storm_all_published_ms"),
                r["paced_storm_realize_rounds"],
                r["paced_storm_node_compiles"]
            ),
            format!("{} ({})", r["peak_rss_mib"], r["peak_rss_after_burst_mib"]),
        );
    }
    let doc = json!({ "bench": "compile", "baseline": BASELINE, "rows": rows });
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("compile_bench.json");
    if let Some(dir) = target.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(
        &target,
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    ) {
        Ok(()) => println!("wrote {}", target.display()),
        Err(e) => eprintln!("could not write {}: {e}", target.display()),
    }
}
