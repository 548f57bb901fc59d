//! Cluster mode's writes to a hypervisor's database (DESIGN.md §7): only the owner
//! writes, and a stale owner's writes fail in ovsdb-server itself.
//!
//! - The fence: the owner sets `external_ids:weft-owner=<instance>:<generation>` on the
//!   `Open_vSwitch` row before anything else, and every other transaction it sends
//!   carries a `wait` (RFC 7047 §5.2.6, timeout 0) that fails unless that row still holds
//!   exactly that value. A new owner (a higher generation) overwrites it first, so a
//!   stale owner's transactions, even ones in flight, are refused whole.
//! - The Controller rows: br-int lists every live instance's advertised OpenFlow target.
//!   Rows are added and removed one per transaction (a new instance's row first, a gone
//!   one's after), and the last row is never removed: OVS flushes a bridge whose
//!   controller list goes from empty to non-empty.

use std::collections::{BTreeMap, BTreeSet};

use ovsdb::datum::Datum;
use ovsdb::vswitch::{self, Bridge, Controller};
use ovsdb::{Condition, Function, Mutation, Replica, Row, Transaction};
use uuid::Uuid;

use super::CONTROLLER_MAX_BACKOFF_MS;
use crate::southbound::HYPERVISOR_INACTIVITY_PROBE_MS;

/// `Open_vSwitch.external_ids` key naming the hypervisor's current owner and generation.
pub const KEY_OWNER: &str = "weft-owner";

/// The owner's fence on one hypervisor's root row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub root: Uuid,
    /// `<instance>:<generation>`.
    pub value: String,
}

impl Fence {
    pub fn new(root: Uuid, instance: &str, generation: u64) -> Fence {
        Fence {
            root,
            value: format!("{instance}:{generation}"),
        }
    }

    /// Whether the root row already carries this fence.
    pub fn is_set(&self, external_ids: &BTreeMap<String, String>) -> bool {
        external_ids.get(KEY_OWNER) == Some(&self.value)
    }

    /// The transaction that sets it (unconditional: the owner of the newest generation
    /// overwrites whatever an earlier owner left).
    pub fn write(&self) -> Transaction {
        let mut txn = Transaction::new(vswitch::DATABASE);
        vswitch::set_map_key(
            &mut txn,
            vswitch::OPEN_VSWITCH,
            self.root,
            "external_ids",
            KEY_OWNER,
            &self.value,
        );
        txn
    }

    /// Adds the condition that makes `txn` fail unless the fence is still this one.
    pub fn guard(&self, txn: &mut Transaction) {
        txn.wait_exists(
            vswitch::OPEN_VSWITCH,
            vec![
                Condition::uuid(self.root),
                Condition::new(
                    "external_ids",
                    Function::Includes,
                    Datum::map([(KEY_OWNER, self.value.as_str())]),
                ),
            ],
        );
    }
}

/// One step towards br-int's Controller rows naming exactly `want`: add one missing
/// target, else remove one that is not wanted (never the last row); `None` when they
/// match or `want` is empty. Guarded by a `wait` on the bridge's controller set.
pub fn plan_controllers(
    replica: &Replica,
    bridge: &Bridge,
    want: &BTreeSet<String>,
) -> Option<(Transaction, String)> {
    if want.is_empty() {
        return None;
    }
    let have: Vec<(Uuid, String)> = bridge
        .controller
        .iter()
        .filter_map(|u| match vswitch::cached_row::<Controller>(replica, u) {
            Some(Ok(c)) => Some((*u, c.target.clone())),
            _ => None,
        })
        .collect();
    // A row in either spelling of a target is that target's ([`vswitch::respell`]).
    let same = |a: &str, b: &str| vswitch::same_endpoint(a, b, vswitch::DEFAULT_CONTROLLER_PORT);
    let mut txn = Transaction::new(vswitch::DATABASE);
    txn.wait_eq(
        vswitch::BRIDGE,
        vec![Condition::uuid(bridge.uuid)],
        &["controller"],
        vec![Row::from([(
            "controller".into(),
            Datum::set(bridge.controller.iter().copied()),
        )])],
    );
    if let Some(add) = want.iter().find(|t| !have.iter().any(|(_, h)| same(h, t))) {
        let row = Row::from([
            ("target".into(), Datum::scalar(add.as_str())),
            (
                "max_backoff".into(),
                Datum::scalar(CONTROLLER_MAX_BACKOFF_MS),
            ),
            (
                "inactivity_probe".into(),
                Datum::scalar(HYPERVISOR_INACTIVITY_PROBE_MS),
            ),
        ]);
        let c = txn.insert(vswitch::CONTROLLER, row);
        txn.mutate(
            vswitch::BRIDGE,
            vec![Condition::uuid(bridge.uuid)],
            vec![Mutation::insert("controller", c.datum())],
        );
        return Some((txn, format!("adding OpenFlow controller {add}")));
    }
    // Every wanted target is there; one row too many (a gone instance, or a duplicate)?
    let mut seen: Vec<&str> = Vec::new();
    let extra = have.iter().find(|(_, t)| {
        let dup = seen.iter().any(|s| same(s, t));
        seen.push(t);
        dup || !want.iter().any(|w| same(w, t))
    })?;
    if have.len() <= 1 {
        return None;
    }
    txn.mutate(
        vswitch::BRIDGE,
        vec![Condition::uuid(bridge.uuid)],
        vec![Mutation::delete("controller", Datum::uuid(extra.0))],
    );
    Some((txn, format!("removing OpenFlow controller {}", extra.1)))
}
