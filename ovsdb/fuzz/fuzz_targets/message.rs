//! Fuzz: everything an OVSDB peer's message reaches after framing. Arbitrary JSON goes
//! through `Message` parsing, the sans-IO session (reply matching, echo), schema parsing
//! (a `get_schema` reply), the vswitch monitor replica in both update formats (a monitor
//! reply or `update`/`update2` notification, also decoded straight from its text as the
//! client hands monitor replies over, compared with the `Value` path) with the typed row
//! views weftd reads, and a `transact` reply: a typed error or a value, never a panic.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ovsdb::vswitch::{self, Bridge, Controller, Interface, Port};
use ovsdb::{
    Condition, DatabaseSchema, Datum, Message, Replica, TableUpdates, Transaction, UpdateFormat,
};
use serde_json::{Value, json};

/// The schema of the database weftd monitors, as installed with Open vSwitch.
const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

fn schema() -> &'static DatabaseSchema {
    static S: OnceLock<DatabaseSchema> = OnceLock::new();
    S.get_or_init(|| {
        let text = std::fs::read_to_string(SCHEMA)
            .unwrap_or_else(|e| panic!("{SCHEMA}: {e} (install openvswitch-common)"));
        let v: Value = serde_json::from_str(&text).expect("schema is JSON");
        DatabaseSchema::from_json(&v).expect("vswitch schema parses")
    })
}

fn replica() -> Replica {
    let mut r = Replica::new(schema().clone());
    r.set_monitored(&vswitch::monitor_requests());
    r
}

fn read_typed(r: &Replica) {
    let _ = vswitch::root(r);
    let _ = vswitch::rows::<Bridge>(r).count();
    let _ = vswitch::rows::<Port>(r).count();
    let _ = vswitch::rows::<Interface>(r).count();
    let _ = vswitch::rows::<Controller>(r).count();
}

fn transaction() -> Transaction {
    let mut t = Transaction::new("Open_vSwitch");
    t.select("Bridge", vec![], Some(&["name"]));
    t.insert("Port", ovsdb::Row::new());
    t.update(
        "Interface",
        vec![Condition::eq("name", Datum::scalar("x"))],
        ovsdb::Row::new(),
    );
    t.delete("Controller", vec![]);
    t
}

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // As a JSON-RPC message, through a session that has requests 1 and 2 outstanding.
    if let Ok(m) = Message::from_json(v.clone()) {
        let _ = Message::from_json(m.to_json());
        let t0 = Instant::now();
        let mut s = ovsdb::session::Session::new(Some(Duration::from_secs(5)), t0);
        s.send_request("get_schema".into(), json!(["Open_vSwitch"]));
        s.send_request("transact".into(), json!(["Open_vSwitch"]));
        while s.poll_transmit().is_some() {}
        let _ = s.handle_message(m, t0);
        while s.poll_transmit().is_some() {}
        let _ = s.handle_timeout(t0 + Duration::from_secs(11));
    }
    // As a get_schema reply.
    let _ = DatabaseSchema::from_json(&v);
    // As a monitor reply or update notification, in both formats, applied twice (the
    // second time most rows exist already), then read through the typed views. Also as
    // the client hands a monitor reply over, JSON text decoded straight into rows: where
    // both paths accept the update, they must agree on the changes and the rows.
    let text = std::str::from_utf8(data)
        .ok()
        .and_then(|t| TableUpdates::from_json_text(t.to_owned()).ok());
    for format in [UpdateFormat::Update, UpdateFormat::Update2] {
        let mut r = replica();
        let mut r_text = replica();
        let a = r.apply(format, &v);
        let _ = r.apply(format, &v);
        if let Some(t) = &text {
            let b = r_text.apply(format, t);
            if let (Ok(a), Ok(b)) = (&a, &b) {
                assert_eq!(a, b, "changes differ between Value and text decoding");
            }
            let _ = r_text.apply(format, t);
            if a.is_ok() && b.is_ok() {
                for table in ["Open_vSwitch", "Bridge", "Port", "Interface", "Controller"] {
                    assert!(
                        r.table(table).eq(r_text.table(table)),
                        "{table} differs between Value and text decoding"
                    );
                }
            }
            read_typed(&r_text);
            let _ = r_text.reset(&["Bridge".to_string()], format, t);
        }
        read_typed(&r);
        let _ = r.reset(&["Bridge".to_string()], format, &v);
    }
    // Inside an update2 notification's params, as the session delivers it.
    if let Some(updates) = v.get(1) {
        let mut r = replica();
        let _ = r.apply(UpdateFormat::Update2, updates);
        read_typed(&r);
    }
    // As a transact reply.
    let _ = transaction().parse_reply(&v);
    // As a datum, untyped and typed as every column of the Interface table.
    let _ = Datum::from_json(&v);
    if let Some(t) = schema().table("Interface") {
        for c in t.columns.values().take(64) {
            let _ = Datum::from_json_typed(&v, &c.ty);
        }
    }
});
