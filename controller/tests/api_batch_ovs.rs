//! JSON-RPC batches on real Open vSwitch: 24 ports created in one request are installed on
//! their hypervisors, and deleted in one request leave no flow behind, each request one
//! store commit.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::obj;
use common::overlay::{INSTALL_TIMEOUT, Overlay};
use integration::lab::Encap;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::BatchRequestBuilder;
use serde_json::{Value, json};

const N: usize = 24;

/// One JSON-RPC batch; every call must succeed. Returns the results in order.
fn batch(ov: &Overlay, method: &str, params: impl Fn(usize) -> Value) -> Vec<Value> {
    let mut b = BatchRequestBuilder::new();
    for i in 0..N {
        b.insert(method, obj(params(i))).unwrap();
    }
    let answers = ov
        .rt
        .block_on(ov.api.batch_request::<Value>(b))
        .expect("batch transport");
    answers
        .into_iter()
        .enumerate()
        .map(|(i, a)| a.unwrap_or_else(|e| panic!("{method} {}: {e}", params(i))))
        .collect()
}

/// Store commits weftd made so far, from `GET /metrics`.
fn commits(ov: &Overlay) -> u64 {
    let mut s = TcpStream::connect(ov.weftd.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: weftd\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("weft_store_commit_seconds_count "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no commit count in:\n{text}"))
}

fn name(i: usize) -> String {
    format!("bp{i}")
}

fn mac(i: usize) -> String {
    format!("02:00:00:00:5b:{i:02x}")
}

/// Hypervisor (1-based) that hosts port `i`.
fn hv_of(i: usize) -> usize {
    1 + i % 2
}

#[test]
fn ports_created_and_deleted_in_one_request_reach_every_hypervisor() {
    let ov = Overlay::start(2, Encap::Geneve);
    ov.call("switch_create", json!({"name": "s1"}));
    for i in 0..N {
        let n = name(i);
        ov.hv(hv_of(i))
            .vsctl([
                "add-port",
                "br-int",
                &n,
                "--",
                "set",
                "Interface",
                &n,
                "type=internal",
                &format!("external_ids:iface-id={n}"),
            ])
            .unwrap();
    }

    let before = commits(&ov);
    let created = batch(
        &ov,
        "port_create",
        |i| json!({"switch": "s1", "name": name(i), "mac": mac(i), "ips": [format!("10.9.0.{}", i + 1)]}),
    );
    assert_eq!(commits(&ov) - before, 1, "one commit for the batch");
    for (i, port) in created.iter().enumerate() {
        assert_eq!(port["name"], name(i));
    }
    for i in 0..N {
        ov.wait_installed(hv_of(i), &name(i));
    }
    // Both hypervisors have ports on s1: each knows every MAC (local or through a tunnel).
    for hv in 1..=2 {
        let flows = ov.hv(hv).dump_flows("br-int").unwrap().join("\n");
        for i in 0..N {
            assert!(flows.contains(&mac(i)), "hv{hv} has no flow for {}", mac(i));
        }
    }

    let before = commits(&ov);
    let deleted = batch(&ov, "port_delete", |i| json!({"port": name(i)}));
    assert_eq!(commits(&ov) - before, 1, "one commit for the batch");
    for (port, gone) in created.iter().zip(&deleted) {
        assert_eq!(gone["ports"], json!([port["id"]]));
    }
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    for hv in 1..=2 {
        loop {
            let flows = ov.hv(hv).dump_flows("br-int").unwrap().join("\n");
            let left: Vec<String> = (0..N).map(mac).filter(|m| flows.contains(m)).collect();
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "hv{hv} still has flows for {left:?}\nweftd log:\n{}",
                ov.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    for i in 0..N {
        let r = ov
            .hv(hv_of(i))
            .wait_for_interface(&name(i), INSTALL_TIMEOUT, |iface| {
                !iface.external_ids.contains_key("weft-installed")
            });
        if let Err(e) = r {
            panic!("{e}\nweftd log:\n{}", ov.log());
        }
    }
}
