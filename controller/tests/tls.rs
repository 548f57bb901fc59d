//! TLS with Open vSwitch's PKI (DESIGN.md §3): certificates from `ovs-pki`, hypervisors
//! configured with `ovs-vsctl set-ssl` and `set-manager ssl:`, weftd listening `ssl:` for
//! both protocols. Real OVS in namespaces; every claim is checked on what OVS holds and
//! does (pings, Controller targets, flow tables), and refusals on weftd's log lines.
//!
//! Also, without a lab: the handshakes themselves (bad, expired and foreign
//! certificates) and weftctl against an HTTPS API.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Spawned;
use common::overlay::{Overlay, assert_reaches, free_port};
use common::pki::{Credential, Pki, api_certificate};
use integration::lab::{Encap, Hypervisor, Lab, Vm};
use serde_json::json;
use weft::tls::{SouthboundTls, TlsFiles};

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// A lab of `n` hypervisors and a weftd whose OpenFlow and OVSDB listeners are `ssl:`,
/// with a controller certificate from `pki`. No hypervisor is pointed at it yet.
fn tls_overlay(n: usize, pki: &Pki) -> Overlay {
    let lab = Lab::builder()
        .hypervisors(n)
        .encap(Encap::Geneve)
        .build()
        .expect("lab");
    let data = tempfile::tempdir().unwrap();
    let ports = (free_port(&lab), free_port(&lab));
    let weftd_cred = pki.sign("weftd", "controller");
    let ip = lab.controller_ip();
    let extra = vec![
        "--ovsdb-listen".to_string(),
        format!("ssl:{ip}:{}", ports.0),
        "--openflow-listen".to_string(),
        format!("ssl:{ip}:{}", ports.1),
        "--openflow-advertise".to_string(),
        format!("ssl:{ip}:{}", ports.1),
        "--private-key".to_string(),
        p(&weftd_cred.key),
        "--certificate".to_string(),
        p(&weftd_cred.cert),
        "--ca-cert".to_string(),
        p(&pki.switch_ca()),
        "--node-grace".to_string(),
        "0".to_string(),
    ];
    let args: Vec<&str> = extra.iter().map(String::as_str).collect();
    let weftd = Spawned::start(data.path(), &args);
    let api = common::http_client(&weftd.url(), None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    Overlay {
        lab,
        weftd,
        api,
        rt,
        data,
        ports,
        weftd_started: Instant::now(),
        extra,
    }
}

/// `ovs-vsctl set-ssl` with this credential (and the CA that signs weftd), then
/// `set-manager ssl:` to weftd.
fn connect_over_ssl(ov: &Overlay, hv: &Hypervisor, cred: &Credential, ca: &Path) {
    hv.vsctl(["set-ssl", &p(&cred.key), &p(&cred.cert), &p(ca)])
        .unwrap();
    let ip = ov.lab.controller_ip();
    hv.set_manager(&format!("ssl:{ip}:{}", ov.ports.0)).unwrap();
}

/// Waits until weftd's log holds a line with every one of `parts`.
fn wait_for_log(ov: &Overlay, parts: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(line) = ov
            .log()
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
        {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {parts:?}\nweftd log:\n{}",
            ov.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until weftd reports the node's OVSDB session up (or down, or the node gone).
fn wait_ovsdb_connected(ov: &Overlay, node: &str, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = ov
            .try_call("node_get", json!({"node": node}))
            .is_ok_and(|n| n["ovsdb_connected"].as_bool() == Some(true));
        if now == up {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{node}: OVSDB never {}\nweftd log:\n{}",
            if up { "connected" } else { "disconnected" },
            ov.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// hv1 and hv2 on TLS for both protocols, with certificates naming their system-ids, and
/// a VM each on switch `blue` (VNI `vni`); returns the VMs once a1 reaches a2.
fn blue_over_tls(ov: &Overlay, pki: &Pki, vni: u32) -> (Vm, Vm) {
    for hv in [ov.hv(1), ov.hv(2)] {
        let cred = pki.sign(hv.system_id(), "switch");
        connect_over_ssl(ov, hv, &cred, &pki.controller_ca());
    }
    ov.call("switch_create", json!({"name": "blue", "vni": vni}));
    ov.port("blue", "a1", "02:00:00:00:00:01", "10.7.0.1");
    ov.port("blue", "a2", "02:00:00:00:00:02", "10.7.0.2");
    let a1 = ov.plug(1, "a1", "02:00:00:00:00:01", "10.7.0.1/24");
    let a2 = ov.plug(2, "a2", "02:00:00:00:00:02", "10.7.0.2/24");
    assert_reaches(&a1, "10.7.0.2", ov);
    (a1, a2)
}

fn sorted_flows(hv: &Hypervisor) -> Vec<String> {
    let mut f = hv.dump_flows("br-int").unwrap();
    f.sort();
    f
}

/// Two hypervisors on TLS for both protocols: the L2 overlay works, and br-int's
/// Controller target is `ssl:`.
#[test]
fn l2_overlay_over_tls_for_both_protocols() {
    let pki = Pki::init();
    let ov = tls_overlay(2, &pki);
    let (_a1, a2) = blue_over_tls(&ov, &pki, 7001);
    assert_reaches(&a2, "10.7.0.1", &ov);
    let ip = ov.lab.controller_ip();
    for hv in ov.lab.hypervisors() {
        let target = hv.vsctl(["get-controller", "br-int"]).unwrap();
        assert_eq!(
            target.trim(),
            format!("ssl:{ip}:{}", ov.ports.1),
            "{}",
            hv.name()
        );
        // Both sessions are up, so each came over TLS with a certificate naming it.
        let n = ov.call("node_get", json!({"node": hv.name()}));
        assert_eq!(n["ovsdb_connected"], true, "{n}");
        assert_eq!(n["openflow_connected"], true, "{n}");
        assert!(n["flow_count"].as_u64().unwrap() > 0, "{n}");
    }
    assert!(!ov.log().contains("refused"), "{}", ov.log());
}

/// An impostor with a valid certificate for another name is refused on both protocols,
/// a peer from another CA is refused at the handshake, and the real node's flows, its
/// sessions and the listeners all carry on.
#[test]
fn impostors_and_foreign_certificates_are_refused() {
    let pki = Pki::init();
    let foreign = Pki::init();
    let ov = tls_overlay(3, &pki);
    let (hv1, hv2, hv3) = (ov.hv(1), ov.hv(2), ov.hv(3));
    let (a1, _a2) = blue_over_tls(&ov, &pki, 7002);
    let hv1_flows = sorted_flows(hv1);
    assert!(!hv1_flows.is_empty());
    let hv3_ip = hv3.transport_ip().to_string();

    // OVSDB: hv3 holds a valid certificate naming hv3 but its database claims hv1.
    hv3.vsctl(["set", "Open_vSwitch", ".", "external_ids:system-id=hv1"])
        .unwrap();
    let hv3_cred = pki.sign("hv3", "switch");
    connect_over_ssl(&ov, hv3, &hv3_cred, &pki.controller_ca());
    let line = wait_for_log(
        &ov,
        &[
            "OVSDB peer refused",
            &hv3_ip,
            "cn=hv3 id:",
            "claimed_system_id=hv1",
        ],
    );
    assert!(line.contains("WARN"), "{line}");

    // OpenFlow: hv3's br-int claims hv1's datapath id, over TLS with hv3's certificate.
    let dpid = hv1
        .vsctl(["get", "bridge", "br-int", "datapath_id"])
        .unwrap();
    let dpid = dpid.trim().trim_matches('"').to_string();
    hv3.vsctl([
        "set",
        "bridge",
        "br-int",
        "protocols=OpenFlow13",
        &format!("other-config:datapath-id={dpid}"),
    ])
    .unwrap();
    let ip = ov.lab.controller_ip();
    hv3.vsctl([
        "set-controller",
        "br-int",
        &format!("ssl:{ip}:{}", ov.ports.1),
    ])
    .unwrap();
    wait_for_log(
        &ov,
        &[
            "OpenFlow switch refused",
            &hv3_ip,
            "cn=hv3 id:",
            "claimed_node=hv1",
        ],
    );

    // Another CA: a certificate that names hv2, signed by a switchca weftd does not trust.
    let foreign_cred = foreign.sign("hv2", "switch");
    hv3.vsctl(["set", "Open_vSwitch", ".", "external_ids:system-id=hv2"])
        .unwrap();
    connect_over_ssl(&ov, hv3, &foreign_cred, &pki.controller_ca());
    wait_for_log(
        &ov,
        &[
            "OVSDB TLS handshake failed",
            &hv3_ip,
            "invalid peer certificate",
        ],
    );
    wait_for_log(
        &ov,
        &[
            "OpenFlow TLS handshake failed",
            &hv3_ip,
            "invalid peer certificate",
        ],
    );

    // Nothing of hv3 was ever written: weftd left its bridge as the lab made it.
    assert_eq!(
        hv3.vsctl(["get", "bridge", "br-int", "fail_mode"])
            .unwrap()
            .trim(),
        "[]"
    );
    // The real nodes: flows untouched, sessions up, listeners serving, traffic flowing.
    assert_eq!(sorted_flows(hv1), hv1_flows);
    for hv in [hv1, hv2] {
        let n = ov.call("node_get", json!({"node": hv.name()}));
        assert_eq!(n["ovsdb_connected"], true, "{n}");
        assert_eq!(n["openflow_connected"], true, "{n}");
    }
    let nodes = ov.call("node_list", json!({}));
    assert_eq!(nodes.as_array().unwrap().len(), 2, "{nodes}");
    assert_reaches(&a1, "10.7.0.2", &ov);
    // hv2 reconnecting after all that proves the listeners survived every refusal.
    hv2.vsctl(["del-manager"]).unwrap();
    wait_ovsdb_connected(&ov, "hv2", false);
    hv2.set_manager(&format!("ssl:{ip}:{}", ov.ports.0))
        .unwrap();
    wait_ovsdb_connected(&ov, "hv2", true);
    assert_reaches(&a1, "10.7.0.2", &ov);
    assert!(!ov.log().contains("panicked"), "{}", ov.log());
}

/// weftd dials the hypervisor (`--ovsdb ssl:IP:PORT`, ovsdb-server listening `pssl:`):
/// weftd is then the TLS client, the hypervisor's certificate is checked against the CA
/// and its CN against the system-id, and the node comes up on both protocols.
#[test]
fn active_ssl_ovsdb_target() {
    let pki = Pki::init();
    let lab = Lab::builder()
        .hypervisors(1)
        .encap(Encap::Geneve)
        .build()
        .expect("lab");
    let hv = lab.hv(0);
    let cred = pki.sign(hv.system_id(), "switch");
    hv.vsctl([
        "set-ssl",
        &p(&cred.key),
        &p(&cred.cert),
        &p(&pki.controller_ca()),
    ])
    .unwrap();
    let hv_ip = hv.transport_ip();
    hv.set_manager(&format!("pssl:16640:{hv_ip}")).unwrap();
    let data = tempfile::tempdir().unwrap();
    let of_port = free_port(&lab);
    let weftd_cred = pki.sign("weftd", "controller");
    let ip = lab.controller_ip();
    let extra = [
        "--ovsdb".to_string(),
        format!("ssl:{hv_ip}:16640"),
        "--openflow-listen".to_string(),
        format!("ssl:{ip}:{of_port}"),
        "--openflow-advertise".to_string(),
        format!("tcp:{ip}:{of_port}"),
        "--private-key".to_string(),
        p(&weftd_cred.key),
        "--certificate".to_string(),
        p(&weftd_cred.cert),
        "--ca-cert".to_string(),
        p(&pki.switch_ca()),
    ];
    let args: Vec<&str> = extra.iter().map(String::as_str).collect();
    let weftd = Spawned::start(data.path(), &args);
    let api = common::http_client(&weftd.url(), None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = rt.block_on(common::call(&api, "node_get", json!({"node": hv.name()})));
        let up = |n: &serde_json::Value, k: &str| n[k].as_bool() == Some(true);
        if n.as_ref()
            .is_ok_and(|n| up(n, "ovsdb_connected") && up(n, "openflow_connected"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n:?}\nweftd log:\n{}",
            weftd.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A tcp: advertise address is written in the listener's scheme.
    let target = hv.vsctl(["get-controller", "br-int"]).unwrap();
    assert_eq!(target.trim(), format!("ssl:{ip}:{of_port}"));
}

/// In-process handshakes against weftd's server side: the right CA passes and yields
/// the CN; another CA, an expired certificate and a missing client certificate are
/// refused with errors that say so; bad files name their flag.
#[tokio::test]
async fn handshakes_refuse_bad_expired_and_foreign_certificates() {
    let pki = Pki::init();
    let foreign = Pki::init();
    let weftd = pki.sign("weftd", "controller");
    let server = SouthboundTls::load(&TlsFiles {
        private_key: weftd.key.clone(),
        certificate: weftd.cert.clone(),
        ca_cert: pki.switch_ca(),
    })
    .unwrap();
    let client = |cred: &Credential| {
        SouthboundTls::load(&TlsFiles {
            private_key: cred.key.clone(),
            certificate: cred.cert.clone(),
            ca_cert: pki.controller_ca(),
        })
        .unwrap()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handshake = |client: SouthboundTls| {
        let server = server.clone();
        let listener = &listener;
        async move {
            let dial = tokio::spawn(async move {
                let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                let r = client.connect(tcp).await;
                // Keep the client end open while the server finishes.
                tokio::time::sleep(Duration::from_millis(200)).await;
                r.map(|(_, id)| id)
            });
            let (tcp, _) = listener.accept().await.unwrap();
            let r = server.accept(tcp).await.map(|(_, id)| id);
            let _ = dial.await;
            r
        }
    };
    let good = handshake(client(&pki.sign("hv1", "switch"))).await.unwrap();
    assert!(good.names("hv1"), "{good:?}");
    assert!(good.common_name.starts_with("hv1 id:"), "{good:?}");

    let err = handshake(client(&foreign.sign("hv1", "switch")))
        .await
        .unwrap_err()
        .to_string();
    // Two ovs-pki CAs made in the same second share a subject name, so the refusal is
    // a bad signature rather than an unknown issuer: either way, not this CA's.
    assert!(err.contains("invalid peer certificate"), "{err}");
    let err = handshake(client(&pki.sign_expired("hv9")))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("expired"), "{err}");

    // weftd as the client of an active ssl: target: the target must be signed by the CA.
    let foreign_server = SouthboundTls::load(&TlsFiles {
        private_key: foreign.sign("hv5", "switch").key,
        certificate: foreign.dir.path().join("hv5-cert.pem"),
        ca_cert: pki.controller_ca(),
    })
    .unwrap();
    let dial = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = foreign_server.accept(tcp).await;
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let err = server
        .connect(tcp)
        .await
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid peer certificate"), "{err}");
    let _ = dial.await;

    // Files: missing and not PEM, each error naming its flag and file.
    let missing = pki.dir.path().join("nope.pem");
    let err = SouthboundTls::load(&TlsFiles {
        private_key: weftd.key.clone(),
        certificate: missing.clone(),
        ca_cert: pki.switch_ca(),
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("--certificate") && err.contains("nope.pem"),
        "{err}"
    );
    let err = SouthboundTls::load(&TlsFiles {
        private_key: pki.switch_ca(),
        certificate: weftd.cert.clone(),
        ca_cert: pki.switch_ca(),
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("--private-key"), "{err}");
}

/// weftd with a missing TLS file does not start, and says which flag and file.
#[test]
fn weftd_refuses_to_start_with_an_unreadable_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::weftd_bin())
        .args(["--api-listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--openflow-listen", "ssl:127.0.0.1:0"])
        .args(["--ovsdb-listen", "tcp:127.0.0.1:0"])
        .args(["--private-key", "/nonexistent/k.pem"])
        .args(["--certificate", "/nonexistent/c.pem"])
        .args(["--ca-cert", "/nonexistent/ca.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--private-key /nonexistent/k.pem"), "{err}");
    let out = Command::new(common::weftd_bin())
        .args(["--api-listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--ovsdb-listen", "ssl:127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--private-key, --certificate, --ca-cert"),
        "{err}"
    );
}

/// The API over HTTPS: weftctl with `--ca-cert` works (HTTP and WebSocket URLs);
/// without the CA it fails with an error that says what to do.
#[test]
fn weftctl_over_https_verifies_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cred) = api_certificate(dir.path());
    let weftd = Spawned::start(
        &dir.path().join("data"),
        &[
            "--api-certificate",
            &p(&cred.cert),
            "--api-private-key",
            &p(&cred.key),
        ],
    );
    let https = format!("https://{}", weftd.addr);
    let weftctl = |args: &[&str]| {
        Command::new(common::weftctl_bin())
            .args(args)
            .env_remove("WEFT_SERVER")
            .env_remove("WEFT_CA_CERT")
            .output()
            .unwrap()
    };
    let ok = weftctl(&[
        "--server",
        &https,
        "--ca-cert",
        &p(&ca),
        "switch",
        "create",
        "tls-sw",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let list = weftctl(&[
        "--server",
        &https,
        "--ca-cert",
        &p(&ca),
        "--json",
        "switch",
        "list",
    ]);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(String::from_utf8_lossy(&list.stdout).contains("tls-sw"));
    let wss = format!("wss://{}", weftd.addr);
    let list = weftctl(&["--server", &wss, "--ca-cert", &p(&ca), "switch", "list"]);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );

    let refused = weftctl(&["--server", &https, "switch", "list"]);
    assert_eq!(refused.status.code(), Some(3));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("--ca-cert") && err.contains("certificate"),
        "{err}"
    );
    // Plain HTTP to the HTTPS port gets no answer either; the listener survives both.
    let plain = weftctl(&["--server", &weftd.url(), "switch", "list"]);
    assert!(!plain.status.success());
    let again = weftctl(&["--server", &https, "--ca-cert", &p(&ca), "switch", "list"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
