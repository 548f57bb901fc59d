//! One copy of each distinct flow key and flow content, shared by every node that wants it.
//!
//! Most of a node's flows describe other nodes' ports: the ARP answer for a remote
//! address and the L2 lookup of a remote MAC are the same flow on every member of the
//! switch, so a fabric of 3,000 hypervisors holds each of them ten to sixty times. Measured
//! with heaptrack at 500 simulated nodes, compiled flows were about half of weftd's peak
//! heap, the ARP responder's alone a sixth. [`DesiredNode::flows`] is keyed by
//! reference-counted parts, and the compiler passes every flow it emits through here, so
//! the copies become pointers; the reconciler's comparisons of shared parts end at the
//! pointer (`Arc`'s equality checks identity first).
//!
//! The table holds strong references and is pruned when it has doubled since the last
//! prune: entries no node holds any more (their count is one, the table's own) go. Between
//! prunes it holds at most twice what the nodes hold, and the cost of pruning is spread
//! over as many insertions as the table held.
//!
//! [`DesiredNode::flows`]: crate::desired::DesiredNode::flows

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use openflow::{FlowContent, FlowKey};
use rustc_hash::FxHasher;

use super::ids::tables;

/// Below this many entries the table is never pruned: a small fabric's flows stay put.
const PRUNE_FLOOR: usize = 1 << 14;

struct Shelf<T> {
    /// Fx, not SipHash: a flow is hashed field by field, dozens of small writes, and
    /// SipHash's cost per write tripled the compiler's time. The keys are Weft's own
    /// flows, not input an attacker picks to collide.
    set: HashSet<Arc<T>, BuildHasherDefault<FxHasher>>,
    prune_at: usize,
}

impl<T: Hash + Eq> Shelf<T> {
    fn new() -> Self {
        Shelf {
            set: HashSet::default(),
            prune_at: PRUNE_FLOOR,
        }
    }

    fn intern(&mut self, value: T) -> Arc<T> {
        if let Some(shared) = self.set.get(&value) {
            return shared.clone();
        }
        if self.set.len() >= self.prune_at {
            self.set.retain(|a| Arc::strong_count(a) > 1);
            self.prune_at = (2 * self.set.len()).max(PRUNE_FLOOR);
        }
        let shared = Arc::new(value);
        self.set.insert(shared.clone());
        shared
    }
}

struct Tables {
    keys: Shelf<FlowKey>,
    contents: Shelf<FlowContent>,
}

static TABLES: LazyLock<Mutex<Tables>> = LazyLock::new(|| {
    Mutex::new(Tables {
        keys: Shelf::new(),
        contents: Shelf::new(),
    })
});

/// The shared copies of a node's flows, taken under one lock for the whole node.
pub(crate) struct Interner {
    tables: MutexGuard<'static, Tables>,
}

impl Interner {
    pub(crate) fn lock() -> Interner {
        // A panic while holding the lock leaves the sets consistent (each step is one
        // insert or one retain), so a poisoned lock is safe to keep using.
        let tables = TABLES.lock().unwrap_or_else(|p| p.into_inner());
        Interner { tables }
    }

    /// The shared copies of `key` and `content`, except for the parts that are about the
    /// node's own ports and so are wanted by no other node: looking those up would cost a
    /// hash probe and a miss each time (counted at 1,000 simulated nodes: 99% of port
    /// security keys, 95% of output flows and 78% of L2 lookup actions, which name the
    /// node's own tunnel ofports, were unique).
    pub(crate) fn flow(
        &mut self,
        key: FlowKey,
        content: FlowContent,
    ) -> (Arc<FlowKey>, Arc<FlowContent>) {
        let (share_key, share_content) = match key.table_id {
            tables::PORT_SECURITY | tables::OUTPUT => (false, false),
            tables::L2_LOOKUP => (true, false),
            _ => (true, true),
        };
        let key = if share_key {
            self.tables.keys.intern(key)
        } else {
            Arc::new(key)
        };
        let content = if share_content {
            self.tables.contents.intern(content)
        } else {
            Arc::new(content)
        };
        (key, content)
    }
}

#[cfg(test)]
mod tests {
    use openflow::{Field, Instruction, Match};

    use super::*;

    fn flow(vni: u64, table: u8) -> (FlowKey, FlowContent) {
        assert_eq!(
            table,
            tables::ARP_RESPONDER,
            "a table whose flows are shared"
        );
        (
            FlowKey {
                table_id: table,
                priority: 100,
                r#match: Match::new(vec![Field::Metadata(vni, None)]),
            },
            FlowContent {
                cookie: vni,
                instructions: vec![Instruction::GotoTable(table + 1)],
            },
        )
    }

    #[test]
    fn equal_flows_share_one_copy_and_different_ones_do_not() {
        let mut i = Interner::lock();
        let (k1, c1) = flow(0xfeed_0001, tables::ARP_RESPONDER);
        let (a_key, a_content) = i.flow(k1.clone(), c1.clone());
        let (b_key, b_content) = i.flow(k1, c1);
        assert!(Arc::ptr_eq(&a_key, &b_key));
        assert!(Arc::ptr_eq(&a_content, &b_content));
        let (k2, c2) = flow(0xfeed_0002, tables::ARP_RESPONDER);
        let (c_key, c_content) = i.flow(k2, c2);
        assert!(!Arc::ptr_eq(&a_key, &c_key));
        assert!(!Arc::ptr_eq(&a_content, &c_content));
    }

    #[test]
    fn a_prune_keeps_what_is_held_and_drops_what_is_not() {
        let mut shelf: Shelf<u64> = Shelf::new();
        let held: Vec<Arc<u64>> = (0..10).map(|n| shelf.intern(n)).collect();
        for n in 10..PRUNE_FLOOR as u64 {
            drop(shelf.intern(n));
        }
        // The next new value finds the table full and prunes it first.
        let extra = shelf.intern(u64::MAX);
        assert_eq!(shelf.set.len(), held.len() + 1);
        assert_eq!(shelf.prune_at, PRUNE_FLOOR);
        for h in &held {
            assert!(
                Arc::ptr_eq(h, &shelf.intern(**h)),
                "a held value keeps its copy"
            );
        }
        assert!(Arc::ptr_eq(&extra, &shelf.intern(u64::MAX)));
    }
}
