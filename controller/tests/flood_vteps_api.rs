//! `flood_vteps` through the API and weftctl: validation naming the field, `switch_update`,
//! the `config_changed` event, persistence across a restart, and the CLI's flags. The data
//! path is in tests/flood_vteps.rs.

mod common;

use std::process::Command;

use common::{InProcess, Spawned, call, next_events, subscribe_events, weftctl_bin, ws_client};
use serde_json::{Value, json};

fn field_of(e: &common::CallResult) -> String {
    format!("{e:?}")
}

#[tokio::test]
async fn flood_vteps_are_validated_updated_stored_and_announced() {
    let mut srv = InProcess::start().await;
    let ws = ws_client(srv.addr, None).await.unwrap();
    let mut sub = subscribe_events(&ws).await;
    let c = srv.http();
    let sw = call(
        &c,
        "switch_create",
        json!({"name": "legacy", "flood_vteps": ["192.0.2.10", "2001:db8::10"]}),
    )
    .await
    .unwrap();
    assert_eq!(sw["flood_vteps"], json!(["192.0.2.10", "2001:db8::10"]));
    let plain = call(&c, "switch_create", json!({"name": "plain"}))
        .await
        .unwrap();
    assert_eq!(plain["flood_vteps"], json!([]));

    for (params, says) in [
        (
            json!({"switch": "legacy", "flood_vteps": ["192.0.2.300"]}),
            "not an IPv4 or IPv6",
        ),
        (
            json!({"switch": "legacy", "flood_vteps": ["192.0.2.1", "192.0.2.1"]}),
            "twice",
        ),
        (
            json!({"switch": "legacy", "flood_vteps": ["224.0.0.1"]}),
            "unicast",
        ),
        (
            json!({"switch": "legacy", "flood_vteps": "192.0.2.1"}),
            "array",
        ),
        (json!({"switch": "legacy"}), "nothing to update"),
    ] {
        let e = call(&c, "switch_update", params.clone()).await;
        let text = field_of(&e);
        assert!(e.is_err(), "{params}: {text}");
        assert!(text.contains(says), "{params}: {text}");
        assert!(
            text.contains("flood_vteps") || text.contains("description"),
            "{params}: the error names no field: {text}"
        );
    }
    let many: Vec<String> = (1..=65).map(|i| format!("10.9.0.{i}")).collect();
    let e = call(
        &c,
        "switch_update",
        json!({"switch": "legacy", "flood_vteps": many}),
    )
    .await;
    assert!(field_of(&e).contains("flood_vteps"), "{e:?}");
    let e = call(
        &c,
        "switch_create",
        json!({"name": "p", "provider": {"physnet": "physnet1"}, "flood_vteps": ["192.0.2.1"]}),
    )
    .await;
    assert!(field_of(&e).contains("flood_vteps"), "{e:?}");

    let up = call(
        &c,
        "switch_update",
        json!({"switch": "legacy", "flood_vteps": ["192.0.2.11"], "description": "N1K segment"}),
    )
    .await
    .unwrap();
    assert_eq!(up["flood_vteps"], json!(["192.0.2.11"]));
    assert_eq!(up["description"], "N1K segment");
    assert_eq!(up["vni"], sw["vni"], "an update keeps the VNI");

    let got = next_events(&mut sub, 3).await;
    assert_eq!(
        got[2],
        json!({"type": "config_changed", "kind": "switch", "id": sw["id"], "op": "updated", "revision": 3})
    );

    srv.restart().await;
    let after = call(&srv.http(), "switch_get", json!({"switch": "legacy"}))
        .await
        .unwrap();
    assert_eq!(after["flood_vteps"], json!(["192.0.2.11"]));
    assert_eq!(after["description"], "N1K segment");
}

fn weftctl(url: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(weftctl_bin())
        .arg("--server")
        .arg(url)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn weftctl_sets_and_clears_flood_vteps() {
    let dir = tempfile::tempdir().unwrap();
    let d = Spawned::start(dir.path(), &[]);
    let url = d.url();
    let (ok, out) = weftctl(
        &url,
        &["switch", "create", "legacy", "--flood-vtep", "192.0.2.10"],
    );
    assert!(ok, "{out}");
    let (ok, out) = weftctl(
        &url,
        &[
            "switch",
            "update",
            "legacy",
            "--flood-vtep",
            "192.0.2.11",
            "--flood-vtep",
            "192.0.2.12",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = weftctl(&url, &["switch", "list"]);
    assert!(ok && out.contains("192.0.2.11,192.0.2.12"), "{out}");
    let (ok, out) = weftctl(&url, &["--json", "switch", "get", "legacy"]);
    assert!(ok, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["flood_vteps"], json!(["192.0.2.11", "192.0.2.12"]));
    let (ok, out) = weftctl(
        &url,
        &[
            "switch",
            "update",
            "legacy",
            "--flood-vtep",
            "192.0.2.11",
            "--flood-vtep",
            "192.0.2.11",
        ],
    );
    assert!(!ok && out.contains("flood_vteps"), "{out}");
    let (ok, out) = weftctl(&url, &["switch", "update", "legacy", "--clear-flood-vteps"]);
    assert!(ok, "{out}");
    let (_, out) = weftctl(&url, &["--json", "switch", "get", "legacy"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["flood_vteps"], json!([]));
}
