//! The Weft side: a spawned weftd (the binary in `$WEFTD`, a release build) listening on
//! the lab's controller address, driven over its JSON-RPC API with one HTTP POST per
//! request (a JSON-RPC batch when the row is "in one request").

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use integration::lab::{Hypervisor, Lab};
use serde_json::{Value, json};

use crate::plane::{Plane, PlugHops, PortDef};

/// A running weftd; SIGKILLed and reaped on drop.
struct Weftd(Child);

impl Drop for Weftd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Weft {
    bin: PathBuf,
    data: PathBuf,
    ctl: Ipv4Addr,
    daemon: Option<Weftd>,
    api: SocketAddr,
}

impl Weft {
    /// Starts weftd for `lab` (state in the lab's directory) and points every
    /// hypervisor's manager at it.
    pub fn start(bin: &Path, lab: &Lab) -> Result<Self> {
        let data = lab.dir().join("weftd-data");
        let mut w = Weft {
            bin: bin.to_path_buf(),
            data,
            ctl: lab.controller_ip(),
            daemon: None,
            api: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        w.spawn()?;
        for hv in lab.hypervisors() {
            hv.set_manager(&format!("tcp:{}:6640", w.ctl))?;
        }
        Ok(w)
    }

    fn spawn(&mut self) -> Result<()> {
        let ip = self.ctl;
        let mut child = Command::new(&self.bin)
            .args(["--api-listen", "127.0.0.1:0", "--data-dir"])
            .arg(&self.data)
            .args(["--ovsdb-listen", &format!("tcp:{ip}:6640")])
            .args(["--openflow-listen", &format!("tcp:{ip}:6653")])
            .args(["--openflow-advertise", &format!("tcp:{ip}:6653")])
            .env(
                "RUST_LOG",
                std::env::var("WEFTD_RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(weftd_log()?)
            .spawn()
            .with_context(|| format!("spawn {}", self.bin.display()))?;
        let out = child.stdout.take().context("weftd stdout")?;
        let daemon = Weftd(child);
        let mut lines = BufReader::new(out).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("weftd: api listening on ") {
                        break a.trim().parse::<SocketAddr>()?;
                    }
                }
                _ => bail!("weftd exited before it was ready"),
            }
        };
        // Keep draining stdout so weftd never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        self.api = addr;
        self.daemon = Some(daemon);
        Ok(())
    }

    /// One HTTP POST carrying `calls` as a JSON-RPC batch; fails on any error reply.
    fn batch(&self, calls: &[(&str, Value)]) -> Result<()> {
        let body: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (m, p))| json!({"jsonrpc": "2.0", "id": i, "method": m, "params": p}))
            .collect();
        let reply = post(self.api, &Value::Array(body).to_string())?;
        let v: Value = serde_json::from_str(&reply).context("JSON-RPC reply")?;
        let replies = match v {
            Value::Array(a) => a,
            other => vec![other],
        };
        if let Some(e) = replies.iter().find_map(|r| r.get("error")) {
            bail!("weftd refused a call: {e}");
        }
        if replies.len() != calls.len() {
            bail!("{} replies to {} calls", replies.len(), calls.len());
        }
        Ok(())
    }
}

/// HTTP/1.0 POST (no chunked replies to decode), body of a 200 reply.
fn post(addr: SocketAddr, body: &str) -> Result<String> {
    request(
        addr,
        &format!(
            "POST / HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// HTTP/1.0 GET of `path`, body of a 200 reply.
fn get(addr: SocketAddr, path: &str) -> Result<String> {
    request(
        addr,
        &format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n"),
    )
}

fn request(addr: SocketAddr, text: &str) -> Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    s.write_all(text.as_bytes())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, payload) = raw
        .split_once("\r\n\r\n")
        .context("HTTP reply without body")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        bail!("weftd API: {}", head.lines().next().unwrap_or(""));
    }
    Ok(payload.to_string())
}

fn port_params(p: &PortDef) -> Value {
    json!({"switch": p.switch, "name": p.name, "mac": p.mac, "ips": [p.ip.to_string()]})
}

impl Plane for Weft {
    fn label(&self) -> &'static str {
        "Weft"
    }

    fn installed_key(&self) -> &'static str {
        "weft-installed"
    }

    fn create_switches(&mut self, switches: &[(String, u32)]) -> Result<()> {
        let calls: Vec<(&str, Value)> = switches
            .iter()
            .map(|(n, vni)| ("switch_create", json!({"name": n, "vni": vni})))
            .collect();
        self.batch(&calls)
    }

    fn create_ports(&mut self, ports: &[PortDef]) -> Result<()> {
        let calls: Vec<(&str, Value)> = ports
            .iter()
            .map(|p| ("port_create", port_params(p)))
            .collect();
        self.batch(&calls)
    }

    fn delete_ports(&mut self, names: &[String]) -> Result<()> {
        let calls: Vec<(&str, Value)> = names
            .iter()
            .map(|n| ("port_delete", json!({"port": n})))
            .collect();
        self.batch(&calls)
    }

    fn add_acls(&mut self, _switch: &str, ports: &[String]) -> Result<()> {
        let mut calls = Vec::new();
        for port in ports {
            calls.push((
                "acl_create",
                json!({"port": port, "direction": "ingress", "priority": 300,
                       "action": "allow-related", "protocol": "tcp", "port_min": 22, "port_max": 22}),
            ));
            calls.push((
                "acl_create",
                json!({"port": port, "direction": "ingress", "priority": 200,
                       "action": "allow-related", "protocol": "icmp"}),
            ));
            calls.push((
                "acl_create",
                json!({"port": port, "direction": "ingress", "priority": 100, "action": "drop"}),
            ));
            calls.push((
                "acl_create",
                json!({"port": port, "direction": "egress", "priority": 100,
                       "action": "allow-related"}),
            ));
        }
        self.batch(&calls)
    }

    fn controller_pids(&self) -> Vec<u32> {
        self.daemon.iter().map(|d| d.0.id()).collect()
    }

    fn kill_and_restart(&mut self) -> Result<()> {
        // Dropping the guard SIGKILLs and reaps weftd.
        self.daemon = None;
        self.spawn()
    }

    /// From weftd's `weft_plug_hop_seconds` histogram (`GET /metrics`).
    fn plug_hops(&self) -> Option<PlugHops> {
        let text = get(self.api, "/metrics").ok()?;
        let mut hops = PlugHops::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("weft_plug_hop_seconds_") else {
                continue;
            };
            let (kind, rest) = match rest.split_once('{') {
                Some(("sum", r)) => (0, r),
                Some(("count", r)) => (1, r),
                _ => continue,
            };
            let Some((labels, value)) = rest.split_once("} ") else {
                continue;
            };
            let Some(hop) = labels
                .strip_prefix("hop=\"")
                .and_then(|h| h.strip_suffix('"'))
            else {
                continue;
            };
            let Ok(v) = value.trim().parse::<f64>() else {
                continue;
            };
            let e = hops.entry(hop.to_string()).or_default();
            if kind == 0 {
                e.0 = v;
            } else {
                e.1 = v;
            }
        }
        Some(hops)
    }

    fn restart_vswitchd_packaged(&self, hv: &Hypervisor) -> Result<()> {
        hv.restart_vswitchd_keeping_flows().map_err(Into::into)
    }
}

/// Where weftd's log goes: `WEFTD_LOG=PATH` appends it there (with `WEFTD_RUST_LOG` as
/// its filter), for looking into a run; by default it is dropped.
fn weftd_log() -> Result<Stdio> {
    match std::env::var_os("WEFTD_LOG") {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("WEFTD_LOG {}", PathBuf::from(&path).display()))?;
            Ok(Stdio::from(file))
        }
        None => Ok(Stdio::null()),
    }
}
