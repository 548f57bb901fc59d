//! What a node's OVSDB session leaves for the node's next session: its replica, and the
//! OVS tunnel ports it last planned.
//!
//! When a hypervisor reconnects with nothing changed (a reconnect storm after a network
//! blip, an ovsdb-server restart), the new session's initial rows are the old session's.
//! Decoding every Interface and Port row's typed view again, freeing the old replica's,
//! and rebuilding the tunnel port specs were a quarter of weftd's CPU in a 1,000-node
//! storm (perf, session 18). So an ending session leaves them here, keyed by the uuid of
//! its database's root row, and the next session for that database adopts whatever is
//! unchanged ([`Replica::adopt_unchanged`]): correctness never depends on it, only the
//! work saved does.
//!
//! What is left is handed out for [`KEPT_FOR`] at most, and freed once it is older when
//! another session ends or starts: a node that does not come back soon has other rows
//! when it does, and holding its replica longer would only cost memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ovsdb::{Replica, Uuid, vswitch};

use super::memo::{Memo, Tunnels};

/// How long an ended session's state waits for the node's next session.
pub(super) const KEPT_FOR: Duration = Duration::from_secs(30);

/// The OVS tunnel ports planned for a node's desired tunnels ([`Memo::specs`]).
pub(super) type TunnelPorts = (String, Tunnels, Arc<Vec<vswitch::TunnelPort>>);

/// An ended session's state, for the next session of the same database.
pub(super) struct Left {
    pub(super) replica: Replica,
    pub(super) tunnel_ports: Option<TunnelPorts>,
}

#[derive(Default)]
pub(super) struct CarryOver {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// By the uuid of the database's root (`Open_vSwitch`) row.
    left: HashMap<Uuid, (Instant, Left)>,
    /// When entries older than [`KEPT_FOR`] were last dropped.
    pruned: Option<Instant>,
}

/// The uuid of the database's root row, which names the database across connections.
fn root(replica: &Replica) -> Option<Uuid> {
    replica
        .table(vswitch::OPEN_VSWITCH)
        .next()
        .map(|(uuid, _)| *uuid)
}

impl std::fmt::Debug for CarryOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarryOver")
            .field("left", &self.lock().left.len())
            .finish()
    }
}

impl CarryOver {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Each step under the lock is one map operation: a poisoned lock is consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps an ending session's state for the next session of its database.
    pub(super) fn leave(&self, left: Left, now: Instant) {
        let Some(key) = root(&left.replica) else {
            return;
        };
        let freed = {
            let mut inner = self.lock();
            let replaced = inner.left.insert(key, (now, left));
            let mut freed = inner.prune(now);
            freed.extend(replaced.map(|(_, l)| l));
            freed
        };
        // Freed outside the lock: a replica of a busy switch is thousands of rows.
        drop(freed);
    }

    /// Gives a new session's `replica` the unchanged rows, and its `memo` the tunnel
    /// ports, that the database's last session left; how many rows, if it left any.
    pub(super) fn resume(
        &self,
        replica: &mut Replica,
        memo: &mut Memo,
        now: Instant,
    ) -> Option<usize> {
        let left = self.take(replica, now)?;
        if left.tunnel_ports.is_some() {
            memo.specs = left.tunnel_ports;
        }
        Some(replica.adopt_unchanged(left.replica))
    }

    /// What the last session of the database whose root row `replica` holds left, if
    /// it ended less than [`KEPT_FOR`] ago.
    pub(super) fn take(&self, replica: &Replica, now: Instant) -> Option<Left> {
        let key = root(replica)?;
        let (taken, freed) = {
            let mut inner = self.lock();
            (inner.left.remove(&key), inner.prune(now))
        };
        drop(freed);
        let (at, left) = taken?;
        (now.saturating_duration_since(at) < KEPT_FOR).then_some(left)
    }
}

impl Inner {
    /// Removes what has waited [`KEPT_FOR`], at most once a second (a storm leaves and
    /// takes thousands of replicas at once), for the caller to free.
    fn prune(&mut self, now: Instant) -> Vec<Left> {
        if self
            .pruned
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1))
        {
            return Vec::new();
        }
        self.pruned = Some(now);
        let expired: Vec<Uuid> = self
            .left
            .iter()
            .filter(|(_, (at, _))| now.saturating_duration_since(*at) >= KEPT_FOR)
            .map(|(k, _)| *k)
            .collect();
        expired
            .iter()
            .filter_map(|k| self.left.remove(k).map(|(_, l)| l))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use ovsdb::monitor::UpdateFormat;
    use serde_json::json;

    use super::*;

    fn schema() -> ovsdb::DatabaseSchema {
        ovsdb::DatabaseSchema::from_json(&json!({"name": "Open_vSwitch", "tables": {
            "Open_vSwitch": {"columns": {"ovs_version": {"type": "string"}}}}}))
        .unwrap()
    }

    fn replica(root: &str) -> Replica {
        let mut r = Replica::new(schema());
        r.apply(
            UpdateFormat::Update2,
            &json!({"Open_vSwitch": {root: {"initial": {}}}}),
        )
        .unwrap();
        r
    }

    const A: &str = "11111111-1111-1111-1111-111111111111";
    const B: &str = "22222222-2222-2222-2222-222222222222";

    fn left(root: &str) -> Left {
        Left {
            replica: replica(root),
            tunnel_ports: None,
        }
    }

    #[test]
    fn the_next_session_of_the_same_database_takes_what_the_last_one_left() {
        let carry = CarryOver::default();
        let t0 = Instant::now();
        carry.leave(left(A), t0);
        assert!(carry.take(&replica(B), t0).is_none(), "another database");
        assert!(carry.take(&replica(A), t0).is_some());
        assert!(carry.take(&replica(A), t0).is_none(), "taken once");
        // A replica without a root row names no database: nothing is kept.
        carry.leave(
            Left {
                replica: Replica::new(schema()),
                tunnel_ports: None,
            },
            t0,
        );
        assert_eq!(carry.lock().left.len(), 0);
    }

    #[test]
    fn what_is_left_expires() {
        let carry = CarryOver::default();
        let t0 = Instant::now();
        carry.leave(left(A), t0);
        assert!(carry.take(&replica(A), t0 + KEPT_FOR).is_none());
        // Expired entries are also dropped when something else is left.
        carry.leave(left(A), t0);
        carry.leave(left(B), t0 + KEPT_FOR + Duration::from_secs(1));
        assert_eq!(carry.lock().left.len(), 1);
        assert!(carry.take(&replica(B), t0 + KEPT_FOR).is_some());
    }
}
