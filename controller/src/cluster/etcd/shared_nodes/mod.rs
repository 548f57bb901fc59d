//! Cluster mode's observed topology, shared through etcd (DESIGN.md §7): each
//! hypervisor's owner publishes what its OVSDB session sees of it, and every instance
//! compiles from those records for the hypervisors it does not own.
//!
//! ```text
//! <prefix>/observed/nodes/<system-id>   NodeRecord (JSON), no lease; written by the
//!                                       node's owner only (fenced on its ownership
//!                                       record), deleted when the owner forgets the node
//! ```
//!
//! The records live under no lease on purpose: when an owner dies, the other instances
//! keep compiling towards its hypervisors from the last record until the new owner,
//! whose own session sees the same database, writes it again. Nothing ever takes a node
//! out of an instance's topology because its owner changed.
//!
//! - [`writer`]: the owner's side, one put per changed node per burst of changes.
//! - [`merge`]: the topology an instance compiles from: its own session's view for the
//!   nodes it owns, the record for the others (while no record exists yet, its session's
//!   view if that session sees the whole bridge, as before any owner wrote one).
//! - [`record`]: the record's codec.

pub mod merge;
pub mod record;
pub mod writer;

use std::collections::BTreeSet;

use crate::cluster::{ClusterView, Ownership};

/// The nodes this instance owns now, by the records naming it (checked against its
/// lease: a lapsed instance owns nothing).
pub fn owned(ownership: &Ownership, view: &ClusterView) -> BTreeSet<String> {
    view.owners
        .iter()
        .filter(|(_, r)| r.instance == ownership.instance())
        .map(|(n, _)| n)
        .filter(|n| ownership.role(n).is_owner())
        .cloned()
        .collect()
}

/// [`owned`] of the last view seen, computed again only for a new view: the merge and
/// the writer wake for every change of any node's session, thousands of times in a cold
/// start, and the view changes far less often. (A lease that lapses is published as a
/// new view, so nothing is kept past it.)
#[derive(Default)]
pub struct Owned {
    view: Option<std::sync::Arc<ClusterView>>,
    owned: std::sync::Arc<BTreeSet<String>>,
}

impl Owned {
    pub fn of(
        &mut self,
        ownership: &Ownership,
        view: &std::sync::Arc<ClusterView>,
    ) -> std::sync::Arc<BTreeSet<String>> {
        if !self
            .view
            .as_ref()
            .is_some_and(|v| std::sync::Arc::ptr_eq(v, view))
        {
            self.owned = std::sync::Arc::new(owned(ownership, view));
            self.view = Some(view.clone());
        }
        self.owned.clone()
    }
}

/// The node ids whose record differs between two copies of the prefix (in time
/// proportional to what changed: consecutive copies share the rest).
pub fn changed_records(
    old: &super::mirror::Mirror,
    new: &super::mirror::Mirror,
) -> BTreeSet<String> {
    use imbl::ordmap::DiffItem;
    if std::ptr::eq(old, new) {
        return BTreeSet::new();
    }
    old.entries
        .diff(&new.entries)
        .filter_map(|d| match d {
            DiffItem::Add(k, _) | DiffItem::Remove(k, _) => Some(k.clone()),
            DiffItem::Update { old, new } => {
                (old.1.mod_revision != new.1.mod_revision).then(|| new.0.clone())
            }
        })
        .collect()
}

/// The nodes whose own view, held or partial state differ between two local topologies.
pub fn changed_nodes(
    old: &crate::topology::Topology,
    new: &crate::topology::Topology,
) -> BTreeSet<String> {
    let mut ids: BTreeSet<String> = new
        .nodes
        .diff(&old.nodes)
        .map(|c| c.id.to_string())
        .collect();
    if old.held != new.held {
        ids.extend(old.held.clone().symmetric_difference(new.held.clone()));
    }
    if old.partial != new.partial {
        ids.extend(
            old.partial
                .clone()
                .symmetric_difference(new.partial.clone()),
        );
    }
    ids
}
