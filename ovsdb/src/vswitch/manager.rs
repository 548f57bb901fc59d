//! The settings of the Manager rows that dial one manager: out of in-band control, and
//! probed only as often as that manager wants.
//!
//! ovs-vswitchd treats every Manager target as in-band unless its row says
//! `connection_mode=out-of-band`: it then keeps hidden flows for the manager's address on
//! every bridge with an IP on the path to it, and re-checks them on every pass of its main
//! loop. On a userspace datapath that is a classifier lookup per hidden flow, many times a
//! second, on a switch that otherwise has nothing to do. A manager whose traffic never
//! crosses a bridge it programs (it reaches the switch through the underlay, not through
//! the integration bridge) can turn that off for the rows that point at it.
//!
//! ovsdb-server also probes an idle manager connection every `inactivity_probe` ms (5 s
//! by default). A manager that probes the switch itself on a longer period sets this
//! above its own, so that only one side probes: each probe wakes the switch's daemons and
//! crosses its underlay bridge.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use uuid::Uuid;

use crate::Replica;
use crate::datum::{Datum, Row};
use crate::ops::{Condition, Transaction};

use super::target::{DEFAULT_MANAGER_PORT, endpoint};
use super::{DATABASE, MANAGER, Manager, OpenVSwitch, cached_row};

/// The address an active (`tcp:`/`ssl:`) manager target dials; `None` for passive
/// (`ptcp:`, `punix:`) and unix targets, which no in-band control concerns.
pub fn target_addr(target: &str) -> Option<SocketAddr> {
    endpoint(target, DEFAULT_MANAGER_PORT).map(|e| e.addr)
}

/// A transaction that sets `connection_mode=out-of-band` and `inactivity_probe` (ms) on
/// each of the root's Manager rows whose target dials one of `managers` and lacks
/// either; `None` when there is nothing to change. Rows that point elsewhere are not
/// touched.
pub fn manager_settings(
    replica: &Replica,
    root: &OpenVSwitch,
    managers: &BTreeSet<SocketAddr>,
    inactivity_probe_ms: i64,
) -> Option<Transaction> {
    let rows: Vec<Uuid> = root
        .manager_options
        .iter()
        .filter_map(|u| cached_row::<Manager>(replica, u)?.ok())
        .filter(|m| target_addr(&m.target).is_some_and(|a| managers.contains(&a)))
        .filter(|m| {
            m.connection_mode.as_deref() != Some("out-of-band")
                || m.inactivity_probe != Some(inactivity_probe_ms)
        })
        .map(|m| m.uuid)
        .collect();
    if rows.is_empty() {
        return None;
    }
    let mut txn = Transaction::new(DATABASE);
    for uuid in rows {
        let row = Row::from([
            ("connection_mode".into(), Datum::scalar("out-of-band")),
            (
                "inactivity_probe".into(),
                Datum::scalar(inactivity_probe_ms),
            ),
        ]);
        txn.update(MANAGER, vec![Condition::uuid(uuid)], row);
    }
    Some(txn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::UpdateFormat;
    use crate::ops::Operation;
    use crate::vswitch::test_schema::vswitch_schema;
    use crate::vswitch::{cached_root, monitor_requests};
    use serde_json::json;

    #[test]
    fn only_the_rows_that_dial_the_address_are_changed() {
        let mut r = Replica::new(vswitch_schema());
        r.set_monitored(&monitor_requests());
        let ids = [1u128, 2, 3, 4].map(|n| Uuid::from_u128(n).to_string());
        r.apply(
            UpdateFormat::Update2,
            &json!({
                "Open_vSwitch": {Uuid::from_u128(9).to_string(): {"initial": {
                    "manager_options": ["set", [["uuid", &ids[0]], ["uuid", &ids[1]],
                        ["uuid", &ids[2]]]]}}},
                // Ours, in-band by default.
                "Manager": {&ids[0]: {"initial": {"target": "tcp:10.0.0.254:6640"}},
                    // Another manager.
                    &ids[1]: {"initial": {"target": "tcp:10.0.0.7:6640"}},
                    // Ours under another spelling, already set.
                    &ids[2]: {"initial": {"target": "tcp:10.0.0.254",
                        "connection_mode": "out-of-band", "inactivity_probe": 30000}},
                    // Ours, but not the root's: not a manager of this switch.
                    &ids[3]: {"initial": {"target": "tcp:10.0.0.254:6640"}}},
            }),
        )
        .unwrap();
        let root = cached_root(&r).unwrap().unwrap().into_owned();
        let reached = BTreeSet::from(["10.0.0.254:6640".parse().unwrap()]);
        let txn = manager_settings(&r, &root, &reached, 30000).expect("one row to change");
        let want = |uuid: u128| Operation::Update {
            table: MANAGER.into(),
            conditions: vec![Condition::uuid(Uuid::from_u128(uuid))],
            row: Row::from([
                ("connection_mode".into(), Datum::scalar("out-of-band")),
                ("inactivity_probe".into(), Datum::scalar(30000)),
            ]),
        };
        assert_eq!(txn.operations, vec![want(1)]);
        // Another probe period wanted: both rows of ours change.
        let txn = manager_settings(&r, &root, &reached, 20000).expect("rows to change");
        assert_eq!(txn.operations.len(), 2);

        // Once it shows both settings, nothing is left to do.
        r.apply(
            UpdateFormat::Update2,
            &json!({"Manager": {&ids[0]: {"modify": {"connection_mode": "out-of-band",
                "inactivity_probe": 30000}}}}),
        )
        .unwrap();
        assert!(manager_settings(&r, &root, &reached, 30000).is_none());
        let elsewhere = BTreeSet::from(["10.0.0.9:6640".parse().unwrap()]);
        assert!(manager_settings(&r, &root, &elsewhere, 30000).is_none());
        // Two managers of ours (cluster mode): the other one's row changes too.
        let both = BTreeSet::from([
            "10.0.0.254:6640".parse().unwrap(),
            "10.0.0.7:6640".parse().unwrap(),
        ]);
        let txn = manager_settings(&r, &root, &both, 30000).expect("the second row");
        assert_eq!(txn.operations, vec![want(2)]);
    }
}
