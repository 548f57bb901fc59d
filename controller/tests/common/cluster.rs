//! Cluster mode end to end: a real-OVS namespace lab, a private 3-member etcd cluster
//! and several spawned weftd instances sharing it (`--etcd`), every hypervisor naming
//! every instance as its OVSDB manager. Instances can be SIGKILLed, SIGSTOPped and
//! restarted on the same name and ports.

use std::time::{Duration, Instant};

use integration::lab::{Encap, Hypervisor, Lab, Vm, VmSpec};
use jsonrpsee::http_client::HttpClient;
use serde_json::Value;

use weft::cluster::rendezvous;

use super::etcd::EtcdCluster;
use super::overlay::{INSTALL_TIMEOUT, free_port};
use super::partition::Partition;
use super::{CallResult, Spawned, call, http_client};

/// One weftd instance of the cluster; `weftd` is `None` while it is down.
pub struct Instance {
    pub name: String,
    /// OVSDB manager and OpenFlow ports, kept across restarts.
    pub ports: (u16, u16),
    pub data: tempfile::TempDir,
    pub weftd: Option<Spawned>,
}

pub struct ClusterLab {
    pub lab: Lab,
    pub etcd: EtcdCluster,
    pub prefix: String,
    pub instances: Vec<Instance>,
    pub rt: tokio::runtime::Runtime,
    /// Per instance, one [`Partition`] per etcd member that instance talks through (empty
    /// unless started with [`ClusterLab::start_partitionable`]).
    pub partitions: Vec<Vec<Partition>>,
}

impl ClusterLab {
    pub fn start(hypervisors: usize, instances: usize) -> ClusterLab {
        Self::start_with(hypervisors, instances, false)
    }

    /// [`ClusterLab::start`] with each instance reaching etcd through partitions of its
    /// own, so that one instance can be cut off from etcd alone ([`ClusterLab::cut`]).
    pub fn start_partitionable(hypervisors: usize, instances: usize) -> ClusterLab {
        Self::start_with(hypervisors, instances, true)
    }

    /// [`ClusterLab::start`] with instances of the given names (rendezvous hashing, and so
    /// which instance owns which hypervisor, follows the names).
    pub fn start_named(hypervisors: usize, names: &[&str]) -> ClusterLab {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        Self::start_names(hypervisors, names, false)
    }

    fn start_with(hypervisors: usize, instances: usize, partitionable: bool) -> ClusterLab {
        let names = (1..=instances).map(|i| format!("c{i}")).collect();
        Self::start_names(hypervisors, names, partitionable)
    }

    fn start_names(hypervisors: usize, names: Vec<String>, partitionable: bool) -> ClusterLab {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let etcd = rt.block_on(EtcdCluster::start(3));
        let lab = Lab::builder()
            .hypervisors(hypervisors)
            .encap(Encap::Geneve)
            .build()
            .expect("lab");
        let prefix = format!("/t{}", uuid::Uuid::new_v4().simple());
        let instances: Vec<Instance> = names
            .into_iter()
            .map(|name| Instance {
                name,
                ports: (free_port(&lab), free_port(&lab)),
                data: tempfile::tempdir().unwrap(),
                weftd: None,
            })
            .collect();
        let partitions = if partitionable {
            (0..instances.len())
                .map(|_| {
                    etcd.members
                        .iter()
                        .map(|m| Partition::start(([127, 0, 0, 1], m.client_port).into()))
                        .collect()
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut cl = ClusterLab {
            lab,
            etcd,
            prefix,
            instances,
            rt,
            partitions,
        };
        for i in 0..cl.instances.len() {
            cl.spawn(i);
        }
        let ip = cl.lab.controller_ip();
        let managers: Vec<String> = cl
            .instances
            .iter()
            .map(|i| format!("tcp:{ip}:{}", i.ports.0))
            .collect();
        for hv in cl.lab.hypervisors() {
            let mut args = vec!["set-manager".to_string()];
            args.extend(managers.iter().cloned());
            hv.vsctl(&args).unwrap();
        }
        cl
    }

    /// Starts instance `i` (index) on its name, data directory and ports.
    pub fn spawn(&mut self, i: usize) {
        let ip = self.lab.controller_ip();
        let endpoints = match self.partitions.get(i) {
            Some(parts) => parts
                .iter()
                .map(|p| format!("http://{}", p.addr))
                .collect::<Vec<_>>()
                .join(","),
            None => self.etcd.endpoints(),
        };
        let inst = &mut self.instances[i];
        let args = [
            "--ovsdb-listen".to_string(),
            format!("tcp:{ip}:{}", inst.ports.0),
            "--openflow-listen".to_string(),
            format!("tcp:{ip}:{}", inst.ports.1),
            "--openflow-advertise".to_string(),
            format!("tcp:{ip}:{}", inst.ports.1),
            "--etcd".to_string(),
            endpoints,
            "--etcd-prefix".to_string(),
            self.prefix.clone(),
            "--instance".to_string(),
            inst.name.clone(),
            "--log".to_string(),
            std::env::var("WEFT_TEST_LOG").unwrap_or_else(|_| "info".into()),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        inst.weftd = Some(Spawned::start(inst.data.path(), &args));
    }

    /// Cuts instance `i` off from every etcd member (it still reaches and is reached by
    /// everything else).
    pub fn cut(&self, i: usize) {
        self.partitions[i].iter().for_each(Partition::cut);
    }

    pub fn heal(&self, i: usize) {
        self.partitions[i].iter().for_each(Partition::heal);
    }

    pub fn index(&self, name: &str) -> usize {
        self.instances
            .iter()
            .position(|i| i.name == name)
            .unwrap_or_else(|| panic!("no instance {name}"))
    }

    pub fn api(&self, i: usize) -> HttpClient {
        let w = self.instances[i].weftd.as_ref().expect("instance is down");
        http_client(&w.url(), None)
    }

    pub fn try_call(&self, i: usize, method: &str, params: Value) -> CallResult {
        self.rt.block_on(call(&self.api(i), method, params))
    }

    pub fn call(&self, i: usize, method: &str, params: Value) -> Value {
        self.try_call(i, method, params.clone())
            .unwrap_or_else(|e| panic!("{method} {params} at instance {i}: {e:?}\n{}", self.logs()))
    }

    pub fn pid(&self, i: usize) -> u32 {
        self.instances[i].weftd.as_ref().expect("down").child.id()
    }

    pub fn kill9(&mut self, i: usize) {
        if let Some(mut w) = self.instances[i].weftd.take() {
            w.kill9();
            self.keep_log(i, &w);
        }
    }

    pub fn terminate(&mut self, i: usize) {
        if let Some(mut w) = self.instances[i].weftd.take() {
            w.terminate();
            self.keep_log(i, &w);
        }
    }

    /// `kill -STOP` / `kill -CONT` (unsafe libc is forbidden in this crate).
    pub fn signal(&self, i: usize, sig: &str) {
        let pid = self.pid(i).to_string();
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    fn keep_log(&self, i: usize, w: &Spawned) {
        if let Some(dir) = std::env::var_os("WEFT_TEST_LOG_DIR") {
            let path = std::path::Path::new(&dir).join(format!(
                "weftd-{}-{}.log",
                self.instances[i].name,
                w.child.id()
            ));
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(path, w.stderr.lock().unwrap().as_str());
        }
    }

    pub fn log(&self, i: usize) -> String {
        self.instances[i]
            .weftd
            .as_ref()
            .map(|w| w.stderr.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// The tail of every running instance's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (i, inst) in self.instances.iter().enumerate() {
            let log = self.log(i);
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            out.push_str(&format!("==== {} ====\n", inst.name));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// The ownership record of `hv`: (instance, generation), read from etcd.
    pub fn owner(&self, hv: &Hypervisor) -> Option<(String, i64)> {
        let key = format!("{}/owners/{}", self.prefix, hv.system_id());
        let endpoints = self.etcd.endpoint_list();
        self.rt.block_on(async move {
            for e in endpoints {
                let Ok(mut c) = etcd_client::Client::connect([&e], None).await else {
                    continue;
                };
                let Ok(Ok(r)) =
                    tokio::time::timeout(Duration::from_secs(2), c.get(key.clone(), None)).await
                else {
                    continue;
                };
                return r.kvs().first().and_then(|kv| {
                    let v: Value = serde_json::from_slice(kv.value()).ok()?;
                    Some((v["instance"].as_str()?.to_string(), kv.mod_revision()))
                });
            }
            None
        })
    }

    /// The fence on `hv`'s root row (`weft-owner`).
    pub fn fence(&self, hv: &Hypervisor) -> Option<String> {
        hv.open_vswitch_external_ids()
            .ok()?
            .get("weft-owner")
            .cloned()
    }

    /// br-int's Controller targets, sorted.
    pub fn controllers(&self, hv: &Hypervisor) -> Vec<String> {
        let out = hv.vsctl(["get-controller", "br-int"]).unwrap_or_default();
        let mut v: Vec<String> = out.split_whitespace().map(str::to_string).collect();
        v.sort();
        v
    }

    /// Every running instance's advertised OpenFlow target, sorted.
    pub fn live_targets(&self) -> Vec<String> {
        let ip = self.lab.controller_ip();
        let mut v: Vec<String> = self
            .instances
            .iter()
            .filter(|i| i.weftd.is_some())
            .map(|i| format!("tcp:{ip}:{}", i.ports.1))
            .collect();
        v.sort();
        v
    }

    /// Waits until every hypervisor is owned by the live instance rendezvous hashing
    /// names, its fence is on its root row and br-int lists every live instance; returns each hypervisor's (owner, generation).
    pub fn wait_settled(&self, within: Duration) -> Vec<(String, i64)> {
        let deadline = Instant::now() + within;
        let live: Vec<&str> = self
            .instances
            .iter()
            .filter(|i| i.weftd.is_some())
            .map(|i| i.name.as_str())
            .collect();
        loop {
            let owners: Vec<Option<(String, i64)>> = self
                .lab
                .hypervisors()
                .iter()
                .map(|hv| self.owner(hv))
                .collect();
            let settled = self.lab.hypervisors().iter().zip(&owners).all(|(hv, o)| {
                o.as_ref().is_some_and(|(inst, generation)| {
                    rendezvous::owner(hv.system_id(), live.iter().copied()) == Some(inst.as_str())
                        && self.fence(hv) == Some(format!("{inst}:{generation}"))
                        && self.controllers(hv) == self.live_targets()
                })
            });
            if settled {
                return owners.into_iter().flatten().collect();
            }
            assert!(
                Instant::now() < deadline,
                "the cluster never settled: owners {owners:?}, fences {:?}, controllers {:?}\n{}",
                self.lab
                    .hypervisors()
                    .iter()
                    .map(|hv| self.fence(hv))
                    .collect::<Vec<_>>(),
                self.lab
                    .hypervisors()
                    .iter()
                    .map(|hv| self.controllers(hv))
                    .collect::<Vec<_>>(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Plugs a VM on hypervisor index `hv` and waits until it is marked weft-installed.
    pub fn plug(&self, hv: usize, name: &str, mac: &str, cidr: &str) -> Vm {
        let h = self.lab.hv(hv);
        let vm = h
            .plug_vm(VmSpec::new(name, mac, name).addr(cidr).unwrap())
            .unwrap();
        vm.exec("sysctl", &["-qw", "net.ipv6.conf.eth0.disable_ipv6=1"])
            .unwrap();
        self.wait_installed(hv, name);
        vm
    }

    pub fn wait_installed(&self, hv: usize, name: &str) {
        let r = self
            .lab
            .hv(hv)
            .wait_for_interface(name, INSTALL_TIMEOUT, |i| {
                i.external_ids.get("weft-installed").map(String::as_str) == Some("true")
            });
        if let Err(e) = r {
            panic!("{e}\n{}", self.logs());
        }
    }
}

/// `WEFT_TEST_LOG_DIR=DIR` keeps every instance's log, as `DIR/weftd-<name>-<pid>.log`.
impl Drop for ClusterLab {
    fn drop(&mut self) {
        for i in 0..self.instances.len() {
            if let Some(w) = self.instances[i].weftd.take() {
                self.keep_log(i, &w);
            }
        }
    }
}

/// Watches one interface's `weft-installed` mark in the background (every 50 ms) and
/// counts the samples where it was not `true`: a takeover must not clear the marks of
/// ports whose flows never stopped being installed.
pub struct MarkWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<(u32, u32)>>,
}

impl MarkWatch {
    pub fn start(hv: &Hypervisor, iface: &str) -> MarkWatch {
        let db = format!("--db={}", hv.db_target());
        let iface = iface.to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut samples, mut unmarked) = (0, 0);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let out = std::process::Command::new("ovs-vsctl")
                    .args([db.as_str(), "--no-wait", "get", "Interface", &iface])
                    .arg("external_ids:weft-installed")
                    .output();
                if let Ok(out) = out {
                    samples += 1;
                    if String::from_utf8_lossy(&out.stdout).trim() != "\"true\"" {
                        unmarked += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (samples, unmarked)
        });
        MarkWatch {
            stop,
            thread: Some(thread),
        }
    }

    /// (samples taken, samples where the mark was not `true`).
    pub fn stop(mut self) -> (u32, u32) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or((0, 0))
    }
}

impl Drop for MarkWatch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
