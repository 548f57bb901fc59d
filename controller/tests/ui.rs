//! The web view at `/ui/`: served from the binary beside the API and under its token
//! rules, and, in a headless Chromium (Debian's `chromium` and `chromium-driver`, driven
//! over WebDriver) against a live real-OVS lab, a picture of every hypervisor and tunnel
//! that shows a port plugged during the test without a reload. The screenshot is kept as
//! `<target dir>/ui-artifacts/ui.png`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::overlay::{INSTALL_TIMEOUT, Overlay};
use common::{InProcess, http_client, url_encode};
use integration::lab::Encap;
use serde_json::{Value, json};

/// An HTTP answer: status, headers (lowercased names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `head` (request line and headers, without the blank line) and `body` on a fresh
/// connection that the server closes after answering; decodes a chunked answer. For a
/// WebSocket upgrade it returns as soon as the head is read.
fn http(addr: SocketAddr, head: &str, body: &[u8]) -> std::io::Result<Answer> {
    let bad = |what: &str| std::io::Error::other(format!("bad HTTP answer: {what}"));
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let close = if head.to_ascii_lowercase().contains("\r\nconnection:") {
        ""
    } else {
        "Connection: close\r\n"
    };
    write!(
        s,
        "{head}\r\nHost: {addr}\r\n{close}Content-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    let split = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(bad("no head"));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    match (status, length) {
        (101, _) => {}
        // The connection may stay open (an upgrade request asked for no close).
        (_, Some(n)) => {
            while body.len() < n {
                let got = s.read(&mut buf)?;
                if got == 0 {
                    return Err(bad("body cut short"));
                }
                body.extend_from_slice(&buf[..got]);
            }
        }
        (_, None) => {
            s.read_to_end(&mut body)?;
        }
    }
    let mut a = Answer {
        status,
        headers,
        body,
    };
    if a.header("transfer-encoding") == Some("chunked") {
        a.body = dechunk(&a.body).ok_or_else(|| bad("broken chunked body"))?;
    }
    Ok(a)
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    http(addr, &format!("GET {path} HTTP/1.1"), b"").unwrap()
}

/// A WebSocket upgrade of `/` offering `protocol` (if any).
fn upgrade(addr: SocketAddr, protocol: Option<&str>) -> Answer {
    let offer = protocol
        .map(|p| format!("\r\nSec-WebSocket-Protocol: {p}"))
        .unwrap_or_default();
    let head = format!(
        "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13{offer}"
    );
    http(addr, &head, b"").unwrap()
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_view_is_served_beside_the_api_and_under_its_token_rules() {
    let srv = InProcess::start_with(|cfg| cfg.api_token = Some("s3cret".into())).await;
    let addr = srv.addr;
    tokio::task::spawn_blocking(move || {
        // The static files need no token (they hold no state); the API still does.
        let page = get(addr, "/ui/");
        assert_eq!(page.status, 200, "{}", page.text());
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(page.text().contains(r#"<svg id="mesh""#), "{}", page.text());
        let js = get(addr, "/ui/app.js");
        assert_eq!(js.status, 200);
        assert_eq!(
            js.header("content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert!(js.text().contains("events_subscribe"));
        let css = get(addr, "/ui/style.css");
        assert_eq!(css.status, 200);
        assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
        assert_eq!(get(addr, "/ui/nope.js").status, 404);
        assert_eq!(get(addr, "/ui").status, 308);
        assert_eq!(get(addr, "/metrics").status, 401);
        let rpc = br#"{"jsonrpc":"2.0","id":1,"method":"system_status","params":{}}"#;
        let post = http(
            addr,
            "POST / HTTP/1.1\r\nContent-Type: application/json",
            rpc,
        )
        .unwrap();
        assert_eq!(post.status, 401);

        // The browser's WebSocket carries the token as a subprotocol and must be told
        // which one was accepted.
        let good = format!("weft.bearer.{}", hex("s3cret"));
        let ws = upgrade(addr, Some(&good));
        assert_eq!(ws.status, 101, "{}", ws.text());
        assert_eq!(ws.header("sec-websocket-protocol"), Some(good.as_str()));
        let wrong = upgrade(addr, Some(&format!("weft.bearer.{}", hex("s3crex"))));
        assert_eq!(wrong.status, 401);
        assert_eq!(upgrade(addr, Some("weft.bearer.zz")).status, 401);
        assert_eq!(upgrade(addr, None).status, 401);
    })
    .await
    .unwrap();
    let good = http_client(&srv.url(), Some("s3cret"));
    common::call(&good, "system_status", json!({}))
        .await
        .unwrap();
}

/// Without a token the loopback API is open to programs, but not to other web pages: a
/// browser lets any site open a WebSocket or POST to 127.0.0.1, and says which site in
/// `Origin`.
#[tokio::test(flavor = "multi_thread")]
async fn other_sites_cannot_reach_a_tokenless_api() {
    let srv = InProcess::start_with(|_| {}).await;
    let addr = srv.addr;
    tokio::task::spawn_blocking(move || {
        let ws_from = |origin: &str| {
            let head = format!(
                "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                 Origin: {origin}"
            );
            http(addr, &head, b"").unwrap().status
        };
        assert_eq!(ws_from("https://evil.example"), 403);
        assert_eq!(ws_from("null"), 403);
        assert_eq!(ws_from(&format!("http://{addr}")), 101);
        assert_eq!(upgrade(addr, None).status, 101, "programs send no Origin");
        let rpc = br#"{"jsonrpc":"2.0","id":1,"method":"switch_create","params":{"name":"x"}}"#;
        let post = http(
            addr,
            "POST / HTTP/1.1\r\nContent-Type: application/json\r\nOrigin: https://evil.example",
            rpc,
        )
        .unwrap();
        assert_eq!(post.status, 403, "{}", post.text());
    })
    .await
    .unwrap();
    // Nothing was created by the refused page.
    let api = http_client(&srv.url(), None);
    let list = common::call(&api, "switch_list", json!({})).await.unwrap();
    assert_eq!(list, json!([]));
}

// ---- WebDriver ----------------------------------------------------------------------

/// chromedriver on a free loopback port, in a process group of its own so that it and
/// the Chromium it starts are killed by that group's id on drop.
struct Driver {
    child: Child,
    addr: SocketAddr,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

impl Driver {
    fn start() -> Driver {
        for (bin, pkg) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: install Debian's {pkg} (`apt-get install -y chromium \
                 chromium-driver`; scripts/test.sh does)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver");
        let mut d = Driver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            session: None,
            _profile: tempfile::tempdir().unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http(d.addr, "GET /status HTTP/1.1", b"").is_ok_and(|a| a.status == 200) {
            assert!(Instant::now() < deadline, "chromedriver never became ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1100",
                         format!("--user-data-dir={}", d._profile.path().display())],
            },
        }}});
        let s = d.send("POST", "/session", Some(caps));
        d.session = Some(
            s["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no session: {s}"))
                .to_string(),
        );
        d
    }

    /// One WebDriver command; returns its `value`, panicking on a WebDriver error.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let a = http(
            self.addr,
            &format!("{method} {path} HTTP/1.1\r\nContent-Type: application/json"),
            body.as_bytes(),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&a.body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", a.text()));
        assert_eq!(a.status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn session_path(&self, tail: &str) -> String {
        format!("/session/{}{tail}", self.session.as_deref().unwrap_or(""))
    }

    fn open(&self, url: &str) {
        self.send(
            "POST",
            &self.session_path("/url"),
            Some(json!({"url": url})),
        );
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    fn eval(&self, script: &str) -> Value {
        self.send(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Evaluates `script` until `ok` accepts its value; panics with the last one.
    fn wait_for(&self, what: &str, script: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + INSTALL_TIMEOUT;
        loop {
            let v = self.eval(script);
            if ok(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {what}; last: {v}\npage text:\n{}",
                self.eval("return document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn screenshot(&self, to: &Path) {
        let b64 = self.send("GET", &self.session_path("/screenshot"), None);
        let png = base64_decode(b64.as_str().unwrap()).expect("screenshot is base64");
        assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, png).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.session.is_some() {
            let path = self.session_path("");
            let _ = http(self.addr, &format!("DELETE {path} HTTP/1.1"), b"");
        }
        // The group holds chromedriver and every Chromium process it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Where test artifacts go: `$CARGO_TARGET_DIR`, else the target dir this test binary
/// was built into (`<target>/debug/deps/ui-…`).
fn artifact_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(std::env::temp_dir);
    target.join("ui-artifacts")
}

/// Every tunnel as the API reports it: sorted "a|b" pairs where either end has the port.
fn api_tunnels(nodes: &Value) -> Vec<String> {
    let mut pairs: Vec<String> = nodes
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| {
            let id = n["id"].as_str().unwrap().to_string();
            n["tunnels"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |r| {
                    let mut p = [id.clone(), r.as_str().unwrap().to_string()];
                    p.sort();
                    p.join("|")
                })
                .collect::<Vec<_>>()
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    pairs
}

fn strings(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    s.sort();
    s
}

/// Printable ASCII, with characters that a URL fragment must escape.
const TOKEN: &str = "ui.test/T0ken+&=%";

/// Three real-OVS hypervisors with a VM each on one switch (so a full tunnel mesh), a
/// weftd with an API token, and Chromium on `/ui/#token=…`.
#[test]
fn chromium_shows_the_mesh_and_a_port_plugged_during_the_test() {
    // Before the lab: a missing browser fails here, with the message saying what to install.
    let browser = Driver::start();
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let token_arg = token_file.display().to_string();
    let mut ov = Overlay::start_with(3, Encap::Geneve, &["--api-token-file", &token_arg]);
    ov.api = http_client(&ov.weftd.url(), Some(TOKEN));
    ov.call("switch_create", json!({"name": "blue", "vni": 5001}));
    let mut vms = Vec::new();
    for i in 1..=3 {
        let (name, mac, ip) = (
            format!("a{i}"),
            format!("02:00:00:00:00:0{i}"),
            format!("10.0.0.{i}"),
        );
        ov.port("blue", &name, &mac, &ip);
        vms.push(ov.plug(i, &name, &mac, &format!("{ip}/24")));
    }
    ov.call("router_create", json!({"name": "r1"}));
    ov.call(
        "router_port_create",
        json!({"router": "r1", "switch": "blue", "name": "r1-blue",
               "mac": "02:00:00:00:01:00", "ips": ["10.0.0.254/24"]}),
    );
    ov.call(
        "route_create",
        json!({"router": "r1", "prefix": "192.168.0.0/16", "nexthop": "10.0.0.3"}),
    );
    ov.wait_connected();
    let nodes = ov.call("node_list", json!({}));
    let want_nodes = vec!["hv1", "hv2", "hv3"];
    let want_tunnels = vec!["hv1|hv2", "hv1|hv3", "hv2|hv3"];
    assert_eq!(api_tunnels(&nodes), want_tunnels, "{nodes}");

    let url = format!("{}/ui/#token={}", ov.weftd.url(), url_encode(TOKEN));
    browser.open(&url);
    browser.wait_for(
        "the events WebSocket live",
        "return document.getElementById('status').dataset.live",
        |v| v == "true",
    );
    let shown = browser.wait_for(
        "every hypervisor",
        "return Array.from(document.querySelectorAll('#mesh [data-node]'), e => e.dataset.node)",
        |v| strings(v) == want_nodes,
    );
    assert_eq!(strings(&shown), want_nodes);
    browser.wait_for(
        "every tunnel, from both ends",
        "return Array.from(document.querySelectorAll('#mesh line[data-tunnel]:not(.one-way)'), \
         e => e.dataset.tunnel)",
        |v| strings(v) == want_tunnels,
    );
    let router = browser.wait_for(
        "router r1 with its port on blue",
        "const r = document.querySelector('[data-router=\"r1\"]'); return r ? r.innerText : null",
        |v| v.as_str().is_some_and(|t| t.contains("r1-blue")),
    );
    let router = router.as_str().unwrap_or("");
    assert!(
        router.contains("10.0.0.254/24") && router.contains("192.168.0.0/16 via 10.0.0.3"),
        "{router}"
    );
    // The token left the address bar once read.
    let href = browser.eval("return location.href");
    assert!(!href.as_str().unwrap().contains("token"), "{href}");

    // A port created and plugged now turns up, bound and up, in the same page.
    browser.eval("window.weftTestMark = 'no reload'; return null");
    let events_before = browser.eval("return Number(document.body.dataset.events)");
    ov.port("blue", "late", "02:00:00:00:00:09", "10.0.0.9");
    let _late = ov.plug(2, "late", "02:00:00:00:00:09", "10.0.0.9/24");
    let row = browser.wait_for(
        "port late up on hv2",
        "const r = document.querySelector('tr[data-port=\"late\"]'); \
         return r ? {up: r.dataset.up, bound: r.dataset.bound, text: r.innerText} : null",
        |v| v["up"] == "true" && v["bound"] == "hv2",
    );
    assert!(
        row["text"].as_str().unwrap().contains("02:00:00:00:00:09"),
        "{row}"
    );
    assert_eq!(browser.eval("return window.weftTestMark"), "no reload");
    let events_after = browser.eval("return Number(document.body.dataset.events)");
    assert!(
        events_after.as_u64() > events_before.as_u64(),
        "no event reached the page ({events_before} -> {events_after})"
    );
    // Flow counts per hypervisor are shown, and are the installed ones.
    let flows = browser.eval(
        "return Array.from(document.querySelectorAll('#nodes tr[data-hypervisor] .flow-count'), \
         e => Number(e.textContent))",
    );
    assert!(
        flows
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n.as_u64() > Some(0)),
        "{flows}"
    );
    // And a hypervisor's flows, ovs-ofctl style, on request.
    browser
        .eval("document.querySelector('tr[data-hypervisor=\"hv2\"] button').click(); return null");
    browser.wait_for(
        "hv2's flow table",
        "return document.getElementById('flows').textContent",
        |v| {
            v.as_str()
                .is_some_and(|t| t.starts_with("# hv2:") && t.contains("table=0"))
        },
    );

    let shot = artifact_dir().join("ui.png");
    browser.screenshot(&shot);
    println!("screenshot: {}", shot.display());
    drop(vms);
}
