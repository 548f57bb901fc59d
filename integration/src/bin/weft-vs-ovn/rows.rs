//! The measurements, run the same way against either plane on its own lab: the lab's
//! logical layout (4 switches, one VM per hypervisor on each, the ACL set on the fourth)
//! and each row of the table.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use integration::lab::{Hypervisor, Lab, VmSpec};

use crate::coverage::{self, Coverage};
use crate::plane::{
    CpuMeter, Plane, PortDef, Vif, first_reply_unix, hypervisor_pids, is_installed, rss_kib,
    unix_now, wait_installed,
};
use crate::stats::Samples;
use crate::watch::Watch;

/// Row ids, in table order, with their labels.
pub const ROWS: &[(&str, &str, bool)] = &[
    (
        "plug",
        "plug (`add-port` with iface-id) → installed key in OVSDB, ms",
        true,
    ),
    ("ping", "plug → first ping reply, ms", true),
    (
        "api",
        "API add of one port (VIF already plugged) → installed, ms",
        true,
    ),
    (
        "batch",
        "100 ports in one request → all installed, ms",
        false,
    ),
    (
        "delete",
        "100 ports deleted in one request → their MACs gone from every hypervisor's flows, ms",
        false,
    ),
    (
        "kill",
        "controller SIGKILLed and restarted: pings lost (10 ms ping)",
        false,
    ),
    (
        "restart_pkg",
        "`ovs-vswitchd` restarted, packaged procedure: forwarding gap, ms",
        false,
    ),
    (
        "restart_plain",
        "`ovs-vswitchd` restarted, plain SIGTERM + start: forwarding gap, ms",
        false,
    ),
    (
        "ctl_cpu",
        "controller CPU over the 100-port batch, ms",
        false,
    ),
    ("ctl_rss", "controller RSS at idle, MiB", false),
    (
        "hv_idle",
        "hypervisors' ovsdb-server + ovs-vswitchd CPU over 20 s idle, ms (all hypervisors)",
        false,
    ),
    ("hv_batch", "the same, over the 100-port batch, ms", false),
    (
        "flows",
        "flows per hypervisor (br-int, median over hypervisors)",
        false,
    ),
];

pub type Results = BTreeMap<&'static str, Samples>;

const SWITCHES: usize = 4;
const BATCH: usize = 100;
const INSTALL_TIMEOUT: Duration = Duration::from_secs(60);

fn base_port(s: usize, h: usize) -> PortDef {
    PortDef {
        switch: format!("s{s}"),
        name: format!("s{s}h{h}"),
        mac: format!("02:00:00:{s:02x}:{h:02x}:01"),
        ip: Ipv4Addr::new(172, 16 + s as u8, 0, h as u8 + 1),
    }
}

/// Run settings.
pub struct Reps {
    /// Single-port rows.
    pub single: usize,
    /// Batch and restart rows.
    pub heavy: usize,
    /// Idle window for the hypervisors' CPU.
    pub idle: Duration,
    /// Print the hypervisors' coverage counters over the idle window and each batch.
    pub coverage: bool,
}

/// Runs every row for `plane` on `lab`, which has nothing configured yet.
pub fn run(plane: &mut dyn Plane, lab: &Lab, reps: &Reps) -> Result<Results> {
    let mut r = Results::new();
    let name = plane.label();
    let hvs = lab.hypervisors();
    let n = hvs.len();
    let t = Instant::now();
    setup(plane, lab)?;
    eprintln!("[{name} N={n}] layout installed in {:?}", t.elapsed());
    std::thread::sleep(Duration::from_secs(2));

    let flows: Vec<f64> = hvs
        .iter()
        .map(|hv| hv.dump_flows("br-int").map(|f| f.len() as f64))
        .collect::<std::result::Result<_, _>>()?;
    eprintln!("[{name} N={n}] flows per hypervisor: {flows:?}");
    let med = Samples(flows).median().unwrap_or(0.0);
    r.entry("flows").or_default().push(med);
    // Installed keys are observed from here on by one monitor connection per hypervisor.
    let watches: Vec<Watch> = hvs
        .iter()
        .map(|hv| Watch::start(hv, plane.installed_key()))
        .collect::<Result<_>>()?;
    let rss: u64 = plane
        .controller_pids()
        .iter()
        .filter_map(|p| rss_kib(*p))
        .sum();
    r.entry("ctl_rss").or_default().push(rss as f64 / 1024.0);
    let hv_cpu = CpuMeter::new("hv-idle", hypervisor_pids(hvs));
    let cov0 = reps.coverage.then(|| Coverage::read(hvs));
    let c0 = hv_cpu.ms();
    std::thread::sleep(reps.idle);
    r.entry("hv_idle").or_default().push(hv_cpu.ms() - c0);
    drop(hv_cpu);
    if let Some(cov0) = cov0 {
        coverage::report(name, "the idle window", &Coverage::read(hvs).since(&cov0));
    }

    let peer = base_port(0, n - 1).ip;
    // The plane's own trace of the plug rows only: in the API rows the VIF was seen
    // long before its port existed, which is no hop of the plane's.
    let mut hops = (crate::plane::PlugHops::new(), crate::plane::PlugHops::new());
    for rep in 0..reps.single {
        let h0 = plane.plug_hops();
        let (plug, ping) = plug_row(plane, &hvs[0], &watches[0], rep, peer)?;
        if let (Some(h0), Some(h1)) = (h0, plane.plug_hops()) {
            crate::plane::add_hops(&mut hops, &h0, &h1);
        }
        let api = api_row(plane, &hvs[0], &watches[0], rep)?;
        eprintln!(
            "[{name} N={n}] rep {rep}: plug→installed {plug:.1} ms, plug→ping {ping:.1} ms, API add→installed {api:.1} ms"
        );
        r.entry("plug").or_default().push(plug);
        r.entry("ping").or_default().push(ping);
        r.entry("api").or_default().push(api);
    }
    if !hops.1.is_empty() {
        let parts: Vec<String> = crate::plane::hop_means(&hops.0, &hops.1)
            .iter()
            .map(|(hop, ms, n)| format!("{hop} {ms:.2} ms (n={n})"))
            .collect();
        eprintln!(
            "[{name} N={n}] plug hops, the plane's own trace (means over the plug rows; Weft: update seen → compiled → barrier → weft-installed sent → acknowledged): {}",
            parts.join(", ")
        );
    }
    for rep in 0..reps.heavy {
        batch_rows(plane, lab, &watches, rep, reps.coverage, &mut r)?;
    }
    let src = lab.vm(&base_port(0, 0).name)?;
    for rep in 0..reps.heavy {
        let cp = src.ping_continuous(peer.into(), Duration::from_millis(10))?;
        std::thread::sleep(Duration::from_secs(1));
        plane.kill_and_restart()?;
        std::thread::sleep(Duration::from_secs(6));
        let rep_ = cp.stop()?;
        eprintln!("[{name} N={n}] kill {rep}: {} lost", rep_.lost());
        r.entry("kill").or_default().push(f64::from(rep_.lost()));
    }
    for (row, packaged) in [("restart_pkg", true), ("restart_plain", false)] {
        for rep in 0..reps.heavy {
            let gap = restart_gap(plane, lab, packaged)?;
            eprintln!("[{name} N={n}] {row} {rep}: gap {gap:.0} ms");
            r.entry(row).or_default().push(gap);
        }
    }
    Ok(r)
}

/// 4 switches, one VM per hypervisor on each, the ACL set on the fourth; waits until
/// every VM is installed and the measured pair answers pings.
fn setup(plane: &mut dyn Plane, lab: &Lab) -> Result<()> {
    let hvs = lab.hypervisors();
    let switches: Vec<(String, u32)> = (0..SWITCHES)
        .map(|s| (format!("s{s}"), 5000 + s as u32))
        .collect();
    plane.create_switches(&switches)?;
    let ports: Vec<PortDef> = (0..SWITCHES)
        .flat_map(|s| (0..hvs.len()).map(move |h| base_port(s, h)))
        .collect();
    plane.create_ports(&ports)?;
    let acl_ports: Vec<String> = (0..hvs.len())
        .map(|h| base_port(SWITCHES - 1, h).name)
        .collect();
    plane.add_acls(&format!("s{}", SWITCHES - 1), &acl_ports)?;
    for p in &ports {
        let h = p.name[p.name.find('h').map_or(0, |i| i + 1)..]
            .parse::<usize>()
            .context("port name")?;
        let spec = VmSpec::new(&p.name, &p.mac, &p.name).addr(&format!("{}/16", p.ip))?;
        lab.plug_vm(&hvs[h], spec)?;
    }
    for p in &ports {
        let h: usize = p.name[p.name.find('h').map_or(0, |i| i + 1)..].parse()?;
        wait_installed(&hvs[h], &p.name, plane.installed_key(), INSTALL_TIMEOUT)?;
    }
    let n = hvs.len();
    for s in 0..SWITCHES {
        let vm = lab.vm(&base_port(s, 0).name)?;
        vm.ping_until_reachable(base_port(s, n - 1).ip.into(), Duration::from_secs(20))
            .with_context(|| format!("s{s}: hv1 VM cannot reach hv{n}'s"))?;
    }
    Ok(())
}

/// Plug → installed and plug → first ping (one plug), ms.
fn plug_row(
    plane: &mut dyn Plane,
    hv: &Hypervisor,
    watch: &Watch,
    rep: usize,
    peer: Ipv4Addr,
) -> Result<(f64, f64)> {
    let p = PortDef {
        switch: "s0".into(),
        name: format!("m{rep}"),
        mac: format!("02:00:00:10:00:{rep:02x}"),
        ip: Ipv4Addr::new(172, 16, 1, rep as u8 + 1),
    };
    plane.create_ports(std::slice::from_ref(&p))?;
    let vif = Vif::prepare(hv, &p.name, &p.mac, &format!("{}/16", p.ip))?;
    let mut ping = vif.start_ping(peer)?;
    // Let the logical port reach the hypervisor and the ping start before the plug.
    std::thread::sleep(Duration::from_millis(300));
    let t0_unix = unix_now();
    let t0 = Instant::now();
    vif.plug()?;
    watch.wait(&p.name, INSTALL_TIMEOUT)?;
    let installed = t0.elapsed().as_secs_f64() * 1e3;
    let first = first_reply_unix(&mut ping);
    let _ = ping.kill();
    let _ = ping.wait();
    let first =
        first.ok_or_else(|| anyhow!("{}: no ping reply from {} in 10 s", plane.label(), p.name))?;
    drop(vif);
    plane.delete_ports(std::slice::from_ref(&p.name))?;
    Ok((installed, (first - t0_unix) * 1e3))
}

/// API add of a port whose VIF is already on br-int → installed, ms.
fn api_row(plane: &mut dyn Plane, hv: &Hypervisor, watch: &Watch, rep: usize) -> Result<f64> {
    let p = PortDef {
        switch: "s0".into(),
        name: format!("a{rep}"),
        mac: format!("02:00:00:11:00:{rep:02x}"),
        ip: Ipv4Addr::new(172, 16, 2, rep as u8 + 1),
    };
    let vif = Vif::prepare(hv, &p.name, &p.mac, &format!("{}/16", p.ip))?;
    vif.plug()?;
    std::thread::sleep(Duration::from_millis(300));
    if is_installed(hv, &p.name, plane.installed_key()) {
        bail!("{} installed before its logical port exists", p.name);
    }
    let t0 = Instant::now();
    plane.create_ports(std::slice::from_ref(&p))?;
    watch.wait(&p.name, INSTALL_TIMEOUT)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    drop(vif);
    plane.delete_ports(std::slice::from_ref(&p.name))?;
    Ok(ms)
}

/// One round of the batch rows: 100 VIFs (internal ports, round-robin over the
/// hypervisors) plugged first; their ports created in one request (→ all installed,
/// controller and hypervisor CPU over that window), then deleted in one request (→ no
/// flow on any hypervisor mentions their MACs any more).
fn batch_rows(
    plane: &mut dyn Plane,
    lab: &Lab,
    watches: &[Watch],
    rep: usize,
    with_coverage: bool,
    r: &mut Results,
) -> Result<()> {
    let hvs = lab.hypervisors();
    let n = hvs.len();
    let name = plane.label();
    let ports: Vec<PortDef> = (0..BATCH)
        .map(|i| PortDef {
            switch: "s1".into(),
            name: format!("b{rep}x{i}"),
            mac: format!("02:00:00:2{rep:x}:00:{i:02x}"),
            ip: Ipv4Addr::new(172, 17, 10 + rep as u8, i as u8 + 1),
        })
        .collect();
    let mut by_hv: Vec<Vec<String>> = vec![Vec::new(); n];
    for (i, p) in ports.iter().enumerate() {
        by_hv[i % n].push(p.name.clone());
    }
    let _plugged = Plugged::new(hvs, &by_hv)?;
    std::thread::sleep(Duration::from_secs(1));

    let ctl = CpuMeter::new("ctl-batch", plane.controller_pids());
    let hvp = CpuMeter::new("hv-batch", hypervisor_pids(hvs));
    let cov0 = with_coverage.then(|| Coverage::read(hvs));
    let (c0, h0) = (ctl.ms(), hvp.ms());
    let t0 = Instant::now();
    plane.create_ports(&ports)?;
    let created = wait_all(hvs, t0, |_, i| Ok(watches[i].all_installed(&by_hv[i])))?;
    let (c1, h1) = (ctl.ms(), hvp.ms());
    std::thread::sleep(Duration::from_secs(1));
    if let Some(cov0) = cov0 {
        // Coverage totals lag up to a second (vswitchd folds them in once a second).
        let window = format!("batch {rep} (until all installed, + 1 s)");
        coverage::report(name, &window, &Coverage::read(hvs).since(&cov0));
    }

    let macs: Vec<String> = ports.iter().map(|p| p.mac.clone()).collect();
    let present: Vec<usize> = hvs
        .iter()
        .map(|hv| {
            let flows = hv.dump_flows("br-int").unwrap_or_default();
            macs.iter()
                .filter(|m| flows.iter().any(|f| f.contains(m.as_str())))
                .count()
        })
        .collect();
    eprintln!(
        "[{name} N={n}] batch {rep}: MACs present in flows before the delete, per hypervisor: {present:?}"
    );
    let names: Vec<String> = ports.iter().map(|p| p.name.clone()).collect();
    let t1 = Instant::now();
    plane.delete_ports(&names)?;
    let deleted = wait_all(hvs, t1, |hv, _| {
        let flows = hv.dump_flows("br-int")?;
        Ok(!flows
            .iter()
            .any(|f| macs.iter().any(|m| f.contains(m.as_str()))))
    })?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    eprintln!(
        "[{name} N={n}] batch {rep}: created {:.0} ms, deleted {:.0} ms, controller CPU {:.0} ms, hypervisors' CPU {:.0} ms",
        ms(created),
        ms(deleted),
        c1 - c0,
        h1 - h0
    );
    r.entry("batch").or_default().push(ms(created));
    r.entry("delete").or_default().push(ms(deleted));
    r.entry("ctl_cpu").or_default().push(c1 - c0);
    r.entry("hv_batch").or_default().push(h1 - h0);
    Ok(())
}

/// Polls `done(hv, index)` on every hypervisor in parallel (one thread each) and returns
/// the time from `t0` at which the last one became true.
fn wait_all<F>(hvs: &[Hypervisor], t0: Instant, done: F) -> Result<Duration>
where
    F: Fn(&Hypervisor, usize) -> integration::lab::Result<bool> + Sync,
{
    let done = &done;
    let results: Vec<Result<Duration>> = std::thread::scope(|s| {
        let handles: Vec<_> = hvs
            .iter()
            .enumerate()
            .map(|(i, hv)| {
                s.spawn(move || {
                    loop {
                        if done(hv, i)? {
                            return Ok(t0.elapsed());
                        }
                        if t0.elapsed() > INSTALL_TIMEOUT {
                            bail!("{} not done within {INSTALL_TIMEOUT:?}", hv.name());
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("poller panicked"))))
            .collect()
    });
    let mut max = Duration::ZERO;
    for r in results {
        max = max.max(r?);
    }
    Ok(max)
}

/// Internal ports standing in for 100 VIFs, removed from br-int on drop.
struct Plugged<'a> {
    hvs: &'a [Hypervisor],
    by_hv: &'a [Vec<String>],
}

impl<'a> Plugged<'a> {
    fn new(hvs: &'a [Hypervisor], by_hv: &'a [Vec<String>]) -> Result<Self> {
        let me = Plugged { hvs, by_hv };
        for (hv, names) in hvs.iter().zip(by_hv) {
            let mut args: Vec<String> = Vec::new();
            for nm in names {
                if !args.is_empty() {
                    args.push("--".into());
                }
                args.extend([
                    "add-port".into(),
                    "br-int".into(),
                    nm.clone(),
                    "--".into(),
                    "set".into(),
                    "Interface".into(),
                    nm.clone(),
                    "type=internal".into(),
                    format!("external_ids:iface-id={nm}"),
                ]);
            }
            if !args.is_empty() {
                hv.vsctl(&args)?;
            }
        }
        Ok(me)
    }
}

impl Drop for Plugged<'_> {
    fn drop(&mut self) {
        for (hv, names) in self.hvs.iter().zip(self.by_hv) {
            let mut args: Vec<String> = Vec::new();
            for nm in names {
                if !args.is_empty() {
                    args.push("--".into());
                }
                args.extend([
                    "--if-exists".into(),
                    "del-port".into(),
                    "br-int".into(),
                    nm.clone(),
                ]);
            }
            if !args.is_empty() {
                let _ = hv.vsctl(&args);
            }
        }
    }
}

/// Restarts hv1's ovs-vswitchd under a 10 ms ping from its s0 VM to hvN's and returns the
/// longest run of lost replies × 10 ms (all of the losses when replies never resumed).
fn restart_gap(plane: &dyn Plane, lab: &Lab, packaged: bool) -> Result<f64> {
    let n = lab.hypervisors().len();
    let src = lab.vm(&base_port(0, 0).name)?;
    let dst = base_port(0, n - 1).ip;
    let cp = src.ping_continuous(dst.into(), Duration::from_millis(10))?;
    std::thread::sleep(Duration::from_secs(1));
    let hv = lab.hv(0);
    if packaged {
        plane.restart_vswitchd_packaged(hv)?;
    } else {
        hv.restart_vswitchd()?;
    }
    std::thread::sleep(Duration::from_secs(7));
    let rep = cp.stop()?;
    let in_holes: u32 = rep.holes.iter().map(|h| h.1).sum();
    let tail = rep.lost().saturating_sub(in_holes);
    if tail > 0 {
        eprintln!(
            "[{}] forwarding did not resume within 7 s of the restart ({tail} trailing losses)",
            plane.label()
        );
        return Ok(f64::from(rep.lost()) * 10.0);
    }
    Ok(rep.longest_outage().as_secs_f64() * 1e3)
}
