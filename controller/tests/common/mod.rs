//! Helpers shared by the API tests: an in-process weftd and a spawned weftd binary.
#![allow(dead_code)]

pub mod capture;
#[cfg(feature = "etcd")]
pub mod cluster;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod overlay;
pub mod partition;
pub mod pki;
pub mod vtep;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsonrpsee::core::client::{ClientT, Error as ClientError};
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use serde_json::Value;
use weft::config::Config;
use weft::daemon::Daemon;

/// Turns a JSON object into named params.
pub fn obj(v: Value) -> ObjectParams {
    let mut p = ObjectParams::new();
    if let Value::Object(map) = v {
        for (k, v) in map {
            p.insert(&k, v).unwrap();
        }
    }
    p
}

/// The outcome of a call: the result, or (code, message, data).
pub type CallResult = Result<Value, (i32, String, Option<Value>)>;

pub async fn call<C: ClientT>(c: &C, method: &str, params: Value) -> CallResult {
    match c.request::<Value, _>(method, obj(params)).await {
        Ok(v) => Ok(v),
        Err(ClientError::Call(e)) => Err((
            e.code(),
            e.message().to_string(),
            e.data().map(|d| serde_json::from_str(d.get()).unwrap()),
        )),
        Err(other) => panic!("{method}: transport error {other}"),
    }
}

pub fn http_client(url: &str, token: Option<&str>) -> HttpClient {
    let mut h = HeaderMap::new();
    if let Some(t) = token {
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
    }
    HttpClientBuilder::default()
        .set_headers(h)
        .request_timeout(Duration::from_secs(30))
        .build(url)
        .unwrap()
}

pub async fn ws_client(addr: SocketAddr, token: Option<&str>) -> Result<WsClient, ClientError> {
    let mut h = HeaderMap::new();
    if let Some(t) = token {
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
    }
    WsClientBuilder::default()
        .set_headers(h)
        .build(format!("ws://{addr}"))
        .await
}

/// weftd running inside the test process.
pub struct InProcess {
    pub daemon: Option<Daemon>,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

impl InProcess {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::new("127.0.0.1:0".parse().unwrap(), dir.path().join("data"));
        tweak(&mut cfg);
        let daemon = Daemon::start(&cfg).await.unwrap();
        let addr = daemon.api_addr;
        InProcess {
            daemon: Some(daemon),
            dir,
            addr,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn http(&self) -> HttpClient {
        http_client(&self.url(), None)
    }

    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().unwrap()
    }

    /// Stops and starts again on the same data directory.
    pub async fn restart(&mut self) {
        self.daemon.take().unwrap().shutdown().await;
        self.restart_stopped().await;
    }

    /// Starts again on the same data directory after the daemon was taken and shut down
    /// (for a test that edits the store in between).
    pub async fn restart_stopped(&mut self) {
        let cfg = Config::new("127.0.0.1:0".parse().unwrap(), self.dir.path().join("data"));
        let daemon = Daemon::start(&cfg).await.unwrap();
        self.addr = daemon.api_addr;
        self.daemon = Some(daemon);
    }
}

/// The weftd under test: `$WEFTD_BIN` if set (a copy taken right after building, when
/// several worktrees share one target dir and may overwrite its `weftd`), else cargo's.
pub fn weftd_bin() -> PathBuf {
    std::env::var_os("WEFTD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_weftd")))
}

pub fn weftctl_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_weftctl"))
}

/// A spawned weftd binary; killed (SIGKILL) on drop if still running.
pub struct Spawned {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Spawned {
    /// Starts weftd on a free loopback port with `data_dir`, waiting for its ready line.
    /// Southbound listeners default to ephemeral loopback ports (tests run in parallel);
    /// `extra` may set them.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Spawned {
        let mut cmd = Command::new(weftd_bin());
        cmd.arg("--api-listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir);
        for flag in ["--openflow-listen", "--ovsdb-listen"] {
            if !extra.contains(&flag) {
                cmd.args([flag, "tcp:127.0.0.1:0"]);
            }
        }
        let mut child = cmd
            .args(extra)
            .env(
                "RUST_LOG",
                // WEFT_TEST_LOG=info shows weftd's southbound decisions in a failing test.
                std::env::var("WEFT_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let out = child.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("weftd: api listening on ") {
                        break a.trim().parse().unwrap();
                    }
                }
                _ => {
                    let status = child.wait().unwrap();
                    panic!(
                        "weftd exited before ready ({status}): {}",
                        stderr.lock().unwrap()
                    );
                }
            }
            assert!(Instant::now() < deadline, "weftd not ready");
        };
        // Keep draining stdout so weftd never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Spawned {
            child,
            addr,
            stderr,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM via kill(1) (unsafe libc is forbidden in this crate), then wait.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Everything listable (every object kind and the revision), to prove a failed call
/// changed nothing and a restart lost nothing.
pub async fn everything<C: ClientT>(c: &C) -> Value {
    let mut all = serde_json::Map::new();
    let status = call(c, "system_status", serde_json::json!({}))
        .await
        .unwrap();
    all.insert("revision".into(), status["revision"].clone());
    for list in [
        "switch_list",
        "port_list",
        "acl_list",
        "router_list",
        "router_port_list",
        "route_list",
    ] {
        let v = call(c, list, serde_json::json!({})).await.unwrap();
        all.insert(list.into(), v);
    }
    Value::Object(all)
}

/// Each `(method, params, code, field)` must fail with that error code, with a message
/// and a `data.field` naming the offending field, and together they must change nothing.
pub async fn assert_each_fails_naming_its_field<C: ClientT>(
    c: &C,
    cases: &[(&str, Value, i32, &str)],
) {
    let before = everything(c).await;
    for (method, params, code, field) in cases {
        let err = call(c, method, params.clone())
            .await
            .expect_err(&format!("{method} {params} should fail"));
        assert_eq!(err.0, *code, "{method} {params}: {err:?}");
        assert!(
            err.1.contains(field),
            "{method} {params}: message {:?} does not name {field}",
            err.1
        );
        assert_eq!(
            err.2.as_ref().unwrap()["field"],
            *field,
            "{method} {params}: {err:?}"
        );
    }
    assert_eq!(
        everything(c).await,
        before,
        "failed calls must change nothing"
    );
}

/// Percent-encodes everything but RFC 3986's unreserved characters (a query value, a
/// URL fragment).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A port in `range`, free on `ip` now and never handed out before by this process: for
/// a daemon started later (and restarted on the same port). Drawn below the kernel's
/// ephemeral range (32768-60999), where no `bind(0)` can take it meanwhile; remembered,
/// because two tests running side by side could otherwise both find the same port free
/// before either binds it.
pub fn reserve_port(ip: std::net::IpAddr, range: std::ops::Range<u16>) -> u16 {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let span = u128::from(range.end - range.start);
    for _ in 0..10_000 {
        let port = range.start + (uuid::Uuid::new_v4().as_u128() % span) as u16;
        if !handed.contains(&port) && std::net::TcpListener::bind((ip, port)).is_ok() {
            handed.insert(port);
            return port;
        }
    }
    panic!("no free port in {range:?} on {ip}");
}

/// Subscribes `ws` to weftd's events (`events_subscribe`).
pub async fn subscribe_events(ws: &WsClient) -> jsonrpsee::core::client::Subscription<Value> {
    use jsonrpsee::core::client::SubscriptionClientT;
    ws.subscribe::<Value, _>(
        "events_subscribe",
        ObjectParams::new(),
        "events_unsubscribe",
    )
    .await
    .expect("events_subscribe")
}

/// The next `n` events of `sub`, each within 10 s.
pub async fn next_events(
    sub: &mut jsonrpsee::core::client::Subscription<Value>,
    n: usize,
) -> Vec<Value> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next())
            .await
            .expect("an event within 10 s")
            .expect("the subscription is open")
            .expect("a well-formed event");
        got.push(ev);
    }
    got
}
