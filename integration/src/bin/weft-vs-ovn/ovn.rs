//! The OVN side: Debian's OVN 23.03 binaries run privately for one lab, never the system
//! services: NB and SB `ovsdb-server`s on files and sockets in the lab's directory (SB also
//! on `tcp:<controller ip>:6642`, reached from the hypervisors over the underlay as weftd
//! is), one `ovn-northd`, and one `ovn-controller` per hypervisor inside its namespace,
//! talking to that hypervisor's private ovsdb-server over `unix:`. Every process is a child
//! of this one, SIGKILLed and reaped on drop.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use integration::lab::{Daemon, Hypervisor, Lab};

use crate::plane::{Plane, PortDef};

const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const SB_SCHEMA: &str = "/usr/share/ovn/ovn-sb.ovsschema";
const OVS_SAVE: &str = "/usr/share/openvswitch/scripts/ovs-save";
/// The port group that carries the ACL set (OVN's idiom for "these ports' ACLs").
const PG: &str = "pg_acl";

/// A child process killed (SIGKILL) and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How to start one ovn-controller again (after a kill).
struct HvSpec {
    netns: String,
    db: String,
    env: Vec<(OsString, OsString)>,
    name: String,
}

pub struct Ovn {
    dir: PathBuf,
    // Drop order: controllers and northd before the databases they talk to.
    controllers: Vec<Option<Proc>>,
    northd: Option<Proc>,
    sb: Proc,
    nb: Proc,
    hvs: Vec<HvSpec>,
}

fn wait_socket(path: &Path) -> Result<()> {
    let t = Instant::now();
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        if t.elapsed() > Duration::from_secs(10) {
            bail!("{} did not appear", path.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

impl Ovn {
    pub fn start(lab: &Lab) -> Result<Self> {
        let dir = lab.dir().join("ovn");
        std::fs::create_dir_all(&dir)?;
        let ctl = lab.controller_ip();
        let db = |name: &str, schema: &str, remotes: &[String]| -> Result<Proc> {
            let file = dir.join(format!("{name}.db"));
            run(Command::new("ovsdb-tool")
                .arg("create")
                .arg(&file)
                .arg(schema))?;
            let mut cmd = Command::new("ovsdb-server");
            cmd.arg(&file)
                .arg(format!(
                    "--remote=punix:{}",
                    dir.join(format!("{name}.sock")).display()
                ))
                .args(remotes)
                .arg(format!(
                    "--unixctl={}",
                    dir.join(format!("{name}.ctl")).display()
                ))
                .arg(format!(
                    "--log-file={}",
                    dir.join(format!("{name}.log")).display()
                ))
                .arg("--no-chdir");
            let p = spawn(&mut cmd, &dir, name)?;
            wait_socket(&dir.join(format!("{name}.sock")))?;
            Ok(p)
        };
        let nb = db("nb", NB_SCHEMA, &[])?;
        let sb = db("sb", SB_SCHEMA, &[format!("--remote=ptcp:6642:{ctl}")])?;
        let mut ovn = Ovn {
            dir: dir.clone(),
            controllers: Vec::new(),
            northd: None,
            sb,
            nb,
            hvs: Vec::new(),
        };
        ovn.start_northd()?;
        for hv in lab.hypervisors() {
            hv.vsctl([
                "set",
                "Open_vSwitch",
                ".",
                &format!("external_ids:ovn-remote=tcp:{ctl}:6642"),
                "external_ids:ovn-encap-type=geneve",
                &format!("external_ids:ovn-encap-ip={}", hv.transport_ip()),
            ])?;
            let mut env = hv.ovs().env();
            let rundir = dir.join(hv.name());
            std::fs::create_dir_all(&rundir)?;
            env.push(("OVN_RUNDIR".into(), rundir.into_os_string()));
            ovn.hvs.push(HvSpec {
                netns: hv.netns().to_string(),
                db: hv.db_target(),
                env,
                name: hv.name().to_string(),
            });
        }
        for i in 0..ovn.hvs.len() {
            let p = ovn.start_controller(i)?;
            ovn.controllers.push(Some(p));
        }
        ovn.check_alive()?;
        Ok(ovn)
    }

    fn start_northd(&mut self) -> Result<()> {
        let d = &self.dir;
        let mut cmd = Command::new("ovn-northd");
        cmd.arg(format!("--ovnnb-db=unix:{}", d.join("nb.sock").display()))
            .arg(format!("--ovnsb-db=unix:{}", d.join("sb.sock").display()))
            .arg(format!("--unixctl={}", d.join("northd.ctl").display()))
            .arg(format!("--log-file={}", d.join("northd.log").display()))
            .arg("--no-chdir");
        self.northd = Some(spawn(&mut cmd, d, "northd")?);
        Ok(())
    }

    fn start_controller(&self, i: usize) -> Result<Proc> {
        let hv = &self.hvs[i];
        let d = &self.dir;
        // `ip netns exec` execs, so the child's PID is ovn-controller's own.
        let mut cmd = Command::new("ip");
        // Its control socket goes to OVN_RUNDIR (per hypervisor): 23.03 takes no --unixctl.
        cmd.args(["netns", "exec", &hv.netns, "ovn-controller", &hv.db])
            .arg(format!(
                "--log-file={}",
                d.join(format!("{}.log", hv.name)).display()
            ))
            .arg("--no-chdir");
        for (k, v) in &hv.env {
            cmd.env(k, v);
        }
        spawn(&mut cmd, d, &hv.name)
    }

    /// Fails (with the process's stderr) when a daemon exited soon after its start: a
    /// wrong option or path shows at once rather than as a timeout.
    fn check_alive(&mut self) -> Result<()> {
        std::thread::sleep(Duration::from_millis(300));
        let mut procs: Vec<(&str, &mut Proc)> = vec![("nb", &mut self.nb), ("sb", &mut self.sb)];
        if let Some(p) = self.northd.as_mut() {
            procs.push(("northd", p));
        }
        for (hv, p) in self.hvs.iter().zip(self.controllers.iter_mut()) {
            if let Some(p) = p.as_mut() {
                procs.push((&hv.name, p));
            }
        }
        for (name, p) in procs {
            if let Ok(Some(status)) = p.0.try_wait() {
                let err = std::fs::read_to_string(self.dir.join(format!("{name}.stderr")))
                    .unwrap_or_default();
                bail!("OVN's {name} exited ({status}): {err}");
            }
        }
        Ok(())
    }

    fn nbctl<I, S>(&self, args: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new("ovn-nbctl");
        cmd.arg(format!("--db=unix:{}", self.dir.join("nb.sock").display()))
            .args(args);
        run(&mut cmd)
    }
}

/// Spawns with OVS/OVN run, log and db dirs pointed into the lab (a default path never
/// lands in the system's /var/run/openvswitch or /var/run/ovn); stderr to `NAME.stderr`.
fn spawn(cmd: &mut Command, dir: &Path, name: &str) -> Result<Proc> {
    for var in [
        "OVS_RUNDIR",
        "OVS_LOGDIR",
        "OVS_DBDIR",
        "OVN_RUNDIR",
        "OVN_LOGDIR",
        "OVN_DBDIR",
    ] {
        // Per-hypervisor settings already in the command's env win.
        if !cmd.get_envs().any(|(k, _)| k == var) {
            cmd.env(var, dir);
        }
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.stderr")))?)
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    Ok(Proc(child))
}

fn pair(p: &PortDef) -> String {
    format!("{} {}", p.mac, p.ip)
}

impl Plane for Ovn {
    fn label(&self) -> &'static str {
        "OVN"
    }

    fn installed_key(&self) -> &'static str {
        "ovn-installed"
    }

    fn create_switches(&mut self, switches: &[(String, u32)]) -> Result<()> {
        let mut args: Vec<String> = Vec::new();
        for (name, _vni) in switches {
            if !args.is_empty() {
                args.push("--".into());
            }
            args.extend(["ls-add".into(), name.clone()]);
        }
        self.nbctl(args)
    }

    fn create_ports(&mut self, ports: &[PortDef]) -> Result<()> {
        let mut args: Vec<String> = Vec::new();
        for p in ports {
            if !args.is_empty() {
                args.push("--".into());
            }
            args.extend([
                "lsp-add".into(),
                p.switch.clone(),
                p.name.clone(),
                "--".into(),
                "lsp-set-addresses".into(),
                p.name.clone(),
                pair(p),
                "--".into(),
                "lsp-set-port-security".into(),
                p.name.clone(),
                pair(p),
            ]);
        }
        self.nbctl(args)
    }

    fn delete_ports(&mut self, names: &[String]) -> Result<()> {
        let mut args: Vec<String> = Vec::new();
        for n in names {
            if !args.is_empty() {
                args.push("--".into());
            }
            args.extend(["lsp-del".into(), n.clone()]);
        }
        self.nbctl(args)
    }

    fn add_acls(&mut self, _switch: &str, ports: &[String]) -> Result<()> {
        let mut args: Vec<String> = vec!["pg-add".into(), PG.into()];
        args.extend(ports.iter().cloned());
        // Weft's ACLs act on IP traffic (ARP is port security's business); so do these.
        for (dir, prio, m, action) in [
            (
                "to-lport",
                "300",
                format!("outport == @{PG} && tcp && tcp.dst == 22"),
                "allow-related",
            ),
            (
                "to-lport",
                "200",
                format!("outport == @{PG} && icmp4"),
                "allow-related",
            ),
            ("to-lport", "100", format!("outport == @{PG} && ip"), "drop"),
            (
                "from-lport",
                "100",
                format!("inport == @{PG} && ip"),
                "allow-related",
            ),
        ] {
            args.extend([
                "--".into(),
                "acl-add".into(),
                PG.into(),
                dir.into(),
                prio.into(),
                m,
                action.into(),
            ]);
        }
        self.nbctl(args)
    }

    fn controller_pids(&self) -> Vec<u32> {
        let mut pids = vec![self.nb.0.id(), self.sb.0.id()];
        pids.extend(self.northd.iter().map(|p| p.0.id()));
        pids.extend(self.controllers.iter().flatten().map(|p| p.0.id()));
        pids
    }

    fn kill_and_restart(&mut self) -> Result<()> {
        // What computes and installs the hypervisors' flows: northd and every
        // ovn-controller (weftd does both jobs). The NB/SB databases stay up: weftd's
        // store survives its kill on disk, OVN's lives in these servers.
        self.northd = None;
        for c in &mut self.controllers {
            *c = None;
        }
        self.start_northd()?;
        for i in 0..self.hvs.len() {
            self.controllers[i] = Some(self.start_controller(i)?);
        }
        Ok(())
    }

    /// What `ovs-ctl restart` (Debian's packaging) does for br-int: `ovs-save save-flows`,
    /// vswitchd stopped, started again under `other_config:flow-restore-wait=true`, the
    /// saved TLV map, groups and flows restored, the flag removed.
    fn restart_vswitchd_packaged(&self, hv: &Hypervisor) -> Result<()> {
        let work = self.dir.join(format!("save-{}", hv.name()));
        std::fs::create_dir_all(&work)?;
        let script = work.join("restore.sh");
        let tmp = [(OsString::from("TMPDIR"), work.clone().into_os_string())];
        hv.ovs()
            .tool("sh")
            .args([
                "-c",
                &format!("{OVS_SAVE} save-flows br-int > {}", script.display()),
            ])
            .envs(&tmp)
            .run()?;
        hv.ovs().stop(Daemon::Vswitchd);
        hv.vsctl([
            "--no-wait",
            "set",
            "Open_vSwitch",
            ".",
            "other_config:flow-restore-wait=true",
        ])?;
        hv.start()?;
        hv.ovs().tool("sh").arg(&script).envs(&tmp).run()?;
        hv.vsctl([
            "--if-exists",
            "remove",
            "Open_vSwitch",
            ".",
            "other_config",
            "flow-restore-wait",
        ])?;
        let _ = std::fs::remove_dir_all(&work);
        Ok(())
    }
}

/// Reads `ovn-controller`'s log tail of a hypervisor (for a failure message).
pub fn log_tail(lab: &Lab, hv: &str) -> String {
    let dir = lab.dir().join("ovn");
    let read = |f: String| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let text = read(format!("{hv}.stderr")) + &read(format!("{hv}.log"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}
