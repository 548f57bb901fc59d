//! JSON-RPC batches against an in-process weftd: the writes of a batch share one commit,
//! yet every call gets its own answer and its own events, in order, and a read in a batch
//! sees the writes before it.

mod common;

use common::{InProcess, call, next_events, obj, subscribe_events, ws_client};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::BatchRequestBuilder;
use serde_json::{Value, json};

/// Each call's answer, in order: its result or its error code.
type Answer = Result<Value, i32>;

async fn batch<C: ClientT>(c: &C, calls: &[(&str, Value)]) -> Vec<Answer> {
    let mut b = BatchRequestBuilder::new();
    for (method, params) in calls {
        b.insert(method, obj(params.clone())).unwrap();
    }
    let answers = c.batch_request::<Value>(b).await.expect("batch transport");
    answers
        .into_iter()
        .map(|a| a.map_err(|e| e.code()))
        .collect()
}

/// Durable commits so far.
fn commits(srv: &InProcess) -> u64 {
    srv.daemon()
        .controller
        .metrics()
        .store_commit
        .snapshot()
        .count
}

fn mac(i: usize) -> String {
    format!("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256)
}

#[tokio::test]
async fn a_batch_of_writes_is_one_commit_and_answers_each_call() {
    const N: usize = 100;
    let srv = InProcess::start().await;
    let c = srv.http();
    call(&c, "switch_create", json!({"name": "web"}))
        .await
        .unwrap();
    let ws = ws_client(srv.addr, None).await.unwrap();
    let mut events = subscribe_events(&ws).await;

    // 100 creates, with a duplicate name (at 30) and a bad MAC (at 60) among them.
    let mut calls: Vec<(&str, Value)> = (0..N)
        .map(|i| {
            let params = json!({"switch": "web", "name": format!("p{i}"), "mac": mac(i)});
            ("port_create", params)
        })
        .collect();
    let dup = json!({"switch": "web", "name": "p3", "mac": mac(999)});
    calls.insert(30, ("port_create", dup));
    let bad = json!({"switch": "web", "name": "bad", "mac": "02:00"});
    calls.insert(60, ("port_create", bad));
    let before = commits(&srv);
    let answers = batch(&c, &calls).await;
    assert_eq!(
        commits(&srv) - before,
        1,
        "the batch's writes share one commit"
    );
    assert_eq!(answers.len(), N + 2);
    assert_eq!(answers[30], Err(-32009), "duplicate name");
    assert_eq!(answers[60], Err(-32602), "bad MAC");
    let mut created = Vec::new();
    for (i, (answer, (_, params))) in answers.iter().zip(&calls).enumerate() {
        if i == 30 || i == 60 {
            continue;
        }
        let port = answer.as_ref().unwrap_or_else(|e| panic!("{params}: {e}"));
        assert_eq!(port["name"], params["name"]);
        assert_eq!(port["mac"], params["mac"]);
        assert_eq!(port["switch_name"], "web");
        created.push(port["id"].clone());
    }
    let list = call(&c, "port_list", json!({})).await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), N);
    // One event per port, in the calls' order, each with its own revision.
    let evs = next_events(&mut events, N).await;
    let ids: Vec<&Value> = evs.iter().map(|ev| &ev["id"]).collect();
    assert_eq!(ids, created.iter().collect::<Vec<_>>());
    assert!(
        evs.iter()
            .all(|ev| ev["kind"] == "port" && ev["op"] == "created")
    );
    let revisions: Vec<u64> = evs
        .iter()
        .map(|ev| ev["revision"].as_u64().unwrap())
        .collect();
    assert!(
        revisions.windows(2).all(|w| w[1] == w[0] + 1),
        "{revisions:?}"
    );

    // 100 deletes, with an unknown port (at 50) among them.
    let mut calls: Vec<(&str, Value)> = (0..N)
        .map(|i| ("port_delete", json!({"port": format!("p{i}")})))
        .collect();
    calls.insert(50, ("port_delete", json!({"port": "nope"})));
    let before = commits(&srv);
    let answers = batch(&c, &calls).await;
    assert_eq!(
        commits(&srv) - before,
        1,
        "the batch's writes share one commit"
    );
    assert_eq!(answers[50], Err(-32004), "unknown port");
    let deleted: Vec<Value> = answers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 50)
        .map(|(_, a)| {
            let a = a.as_ref().unwrap();
            assert_eq!(a["ports"].as_array().map(Vec::len), Some(1), "{a}");
            a["ports"][0].clone()
        })
        .collect();
    assert_eq!(deleted, created, "each call deleted its own port");
    assert_eq!(call(&c, "port_list", json!({})).await.unwrap(), json!([]));
    let evs = next_events(&mut events, N).await;
    let ids: Vec<&Value> = evs.iter().map(|ev| &ev["id"]).collect();
    assert_eq!(ids, created.iter().collect::<Vec<_>>());
    assert!(evs.iter().all(|ev| ev["op"] == "deleted"));
}

#[tokio::test]
async fn a_batch_keeps_its_order_for_writes_and_reads() {
    let srv = InProcess::start().await;
    let c = srv.http();
    let port = json!({"switch": "app", "name": "vm", "mac": mac(1)});
    let before = commits(&srv);
    let answers = batch(
        &c,
        &[
            // A switch and a port on it: one run, planned in order.
            ("switch_create", json!({"name": "app"})),
            ("port_create", port.clone()),
            // A read waits for the run before it.
            ("port_get", json!({"port": "vm"})),
            ("port_delete", json!({"port": "vm"})),
            ("port_get", json!({"port": "vm"})),
            ("port_create", port.clone()),
            ("port_update", json!({"port": "vm", "ips": ["10.0.0.9"]})),
            ("switch_delete", json!({"switch": "app"})),
        ],
    )
    .await;
    // Three runs of writes: [create, create], [delete], [create, update, delete].
    assert_eq!(commits(&srv) - before, 3);
    let ok = |i: usize| {
        answers[i]
            .as_ref()
            .unwrap_or_else(|e| panic!("call {i}: {e}"))
    };
    assert_eq!(ok(0)["name"], "app");
    assert_eq!(ok(1)["switch"], ok(0)["id"]);
    assert_eq!(
        ok(2)["id"],
        ok(1)["id"],
        "the read sees the port created before it"
    );
    assert_eq!(ok(3)["ports"], json!([ok(1)["id"]]));
    assert_eq!(
        answers[4],
        Err(-32004),
        "the read sees the delete before it"
    );
    assert_eq!(ok(6)["ips"], json!(["10.0.0.9"]));
    assert_eq!(answers[7], Err(-32009), "the switch still has its port");
    let list = call(&c, "port_list", json!({})).await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["ips"], json!(["10.0.0.9"]));
}
