//! Fuzz: the JSON API's parameter parsing and the model validation behind it. Each input
//! is a short sequence of calls (method chosen by one byte, then arbitrary parameter
//! text) made through the real RPC module against a fresh controller on an in-memory
//! store, after a fixed setup (a switch and a port) so that port and ACL calls reach
//! validation. Every call must answer a JSON-RPC result or a typed error, never panic; an
//! invalid-params error must name a field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use weft::api::{ApiContext, rpc_module, spec};
use weft::northbound::ModelWriter;
use weft::model::Change;
use weft::store::{Store, StoreError, StoredModel};

/// Keeps nothing: durability is not what is fuzzed.
struct MemStore;

impl Store for MemStore {
    fn load(&mut self) -> Result<StoredModel, StoreError> {
        Ok(StoredModel::default())
    }
    fn commit(&mut self, _revision: u64, _changes: &[Change]) -> Result<(), StoreError> {
        Ok(())
    }
    fn location(&self) -> String {
        "memory".into()
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

const SETUP: &[(&str, &str)] = &[
    ("switch_create", r#"{"name":"s1","vni":5}"#),
    (
        "port_create",
        r#"{"switch":"s1","name":"p1","mac":"02:00:00:00:00:01","ips":["10.0.0.1"]}"#,
    ),
];

fuzz_target!(|data: &[u8]| {
    let methods: Vec<&str> = spec::METHODS
        .iter()
        .filter(|m| !m.subscription)
        .map(|m| m.name)
        .collect();
    runtime().block_on(async {
        let (controller, writer) = ModelWriter::start(Box::new(MemStore)).expect("start");
        let nodes = weft::topology::TransportNodes::new();
        let ctx = ApiContext::new(controller, nodes);
        let module = rpc_module(ctx).expect("module");
        let mut calls: Vec<(String, Vec<u8>)> = SETUP
            .iter()
            .map(|(m, p)| (m.to_string(), p.as_bytes().to_vec()))
            .collect();
        // Calls are separated by 0xff (never valid in UTF-8 JSON); the first byte of each
        // picks the method.
        for chunk in data.split(|b| *b == 0xff).take(8) {
            if let Some((&m, params)) = chunk.split_first() {
                let name = methods[usize::from(m) % methods.len()];
                calls.push((name.to_string(), params.to_vec()));
            }
        }
        for (i, (method, params)) in calls.iter().enumerate() {
            let Ok(params) = std::str::from_utf8(params) else {
                continue;
            };
            // Only well-formed requests reach the method; the JSON-RPC envelope is
            // jsonrpsee's. Params that are not JSON are rejected there, so splice them
            // in only if they parse (any JSON value, not only objects).
            let Ok(p) = serde_json::from_str::<Value>(params) else {
                continue;
            };
            let req = serde_json::json!({"jsonrpc": "2.0", "id": i, "method": method, "params": p});
            let (resp, _rx) = module
                .raw_json_request(&req.to_string(), 1)
                .await
                .expect("a well-formed request is answered");
            let resp: Value = serde_json::from_str(resp.get()).expect("response is JSON");
            if let Some(err) = resp.get("error") {
                let code = err["code"].as_i64().expect("error code");
                if code == -32602 && p.is_object() {
                    assert!(
                        err["data"]["field"].is_string(),
                        "invalid params without a field: {resp}"
                    );
                }
                assert_ne!(code, -32603, "internal error for {method} {params}: {resp}");
            } else {
                assert!(
                    resp.get("result").is_some(),
                    "neither result nor error: {resp}"
                );
            }
        }
        drop(module);
        writer.shutdown().await;
    });
});
