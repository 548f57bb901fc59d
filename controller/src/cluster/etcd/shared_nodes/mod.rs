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

/// The nodes this instance owns in `view`, by the records naming it (checked against
/// its lease: a lapsed instance owns nothing). The same answer as
/// [`crate::cluster::role_in`] for each node of `view`, without looking each record up
/// again: this runs over every record of the fabric for every new view.
pub fn owned(ownership: &Ownership, view: &ClusterView) -> BTreeSet<String> {
    let me = ownership.instance();
    if !view.clustered || !view.clock.valid_at(std::time::Instant::now()) {
        return BTreeSet::new();
    }
    view.owners
        .iter()
        .filter(|(_, r)| r.instance == me && Some(r.lease) == view.lease)
        .map(|(n, _)| n.clone())
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
    // `diff` skips the subtrees both copies share; a symmetric difference rebuilds a
    // set (thousands of standbys' partial nodes, on every report of one of them).
    for (old, new) in [(&old.held, &new.held), (&old.partial, &new.partial)] {
        ids.extend(old.diff(new).map(|d| match d {
            imbl::ordset::DiffItem::Add(id) | imbl::ordset::DiffItem::Remove(id) => id.clone(),
        }));
    }
    ids
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use tokio::sync::watch;

    use super::*;
    use crate::cluster::bells::{Bells, ViewSender};
    use crate::cluster::{OwnerRecord, role_in};

    #[test]
    fn owned_agrees_with_each_nodes_role() {
        let (tx, _) = watch::channel(Arc::new(ClusterView::default()));
        let sender = ViewSender::new(tx, Arc::new(Bells::default()));
        let ownership = sender.ownership("c1");
        let mut v = (*sender.current()).clone();
        v.clustered = true;
        v.lease = Some(7);
        let record = |instance: &str, lease| OwnerRecord {
            instance: instance.into(),
            generation: 3,
            lease,
        };
        v.owners.insert("mine".into(), record("c1", 7));
        v.owners.insert("theirs".into(), record("c2", 8));
        // Under this instance's earlier lease: not its own any more.
        v.owners.insert("stale".into(), record("c1", 6));
        let now = Instant::now();
        let by_role = |v: &ClusterView| -> BTreeSet<String> {
            v.owners
                .keys()
                .filter(|n| role_in(v, "c1", n, now).is_owner())
                .cloned()
                .collect()
        };
        v.clock.set(Some(now + Duration::from_secs(60)));
        assert_eq!(owned(&ownership, &v), BTreeSet::from(["mine".to_string()]));
        assert_eq!(owned(&ownership, &v), by_role(&v));
        // The lease lapsed: nothing is owned.
        v.clock.set(Some(now - Duration::from_secs(1)));
        assert!(owned(&ownership, &v).is_empty());
        assert_eq!(owned(&ownership, &v), by_role(&v));
    }
}
