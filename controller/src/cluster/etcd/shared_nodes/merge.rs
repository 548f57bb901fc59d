//! The topology an instance compiles from, in cluster mode: for each hypervisor, the
//! view of this instance's own OVSDB session if it owns the node, else the node's etcd
//! record, else (no record yet) its own session's view if that session sees the whole
//! bridge. A standby session sees only the node's root row ([`Topology::partial`]): such
//! a node is left out until its owner's record shows it.
//!
//! A node seen through its record alone is [`Topology::partial`] here too: records carry
//! no tunnel ports, and the compiler must not compile a node it owns from such a view
//! (it waits for its session to see the whole bridge, see `crate::realize`).
//!
//! Every switch of source replaces a node's view, never removes it: an instance taking a
//! node over goes from the record (written by the previous owner) to its own session's
//! view of the same database, one giving a node up goes the other way, and the other
//! hypervisors never lose their flows towards it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::record::NodeRecord;
use crate::cluster::Ownership;
use crate::cluster::etcd::mirror::Mirror;
use crate::topology::{NodeView, Topology, TransportNodes, mark};

/// A node's view as merged, whether it is held (only a view from this instance's own
/// sessions can be: a record stands until its owner deletes it) and whether it lacks
/// the node's tunnel ports (a record's, without a session that sees them).
type Source = (Arc<NodeView>, bool, bool);

/// What the merge last looked at, and the records it decoded.
#[derive(Default)]
pub struct Merge {
    local: Arc<Topology>,
    records: Arc<Mirror>,
    owned: Arc<BTreeSet<String>>,
    /// Node -> (the record's mod revision, its view; None if unreadable).
    decoded: BTreeMap<String, (i64, Option<Arc<NodeView>>)>,
}

impl Merge {
    /// Brings `out` up to date with new inputs, touching only the nodes whose inputs
    /// changed (a reconnect storm reports thousands of nodes one at a time).
    pub fn apply(
        &mut self,
        local: Arc<Topology>,
        records: Arc<Mirror>,
        owned: Arc<BTreeSet<String>>,
        out: &TransportNodes,
    ) {
        let mut ids = super::changed_nodes(&self.local, &local);
        let changed_records = super::changed_records(&self.records, &records);
        for id in &changed_records {
            match records.entries.get(id) {
                None => {
                    self.decoded.remove(id);
                }
                Some(e) => {
                    let view = match NodeRecord::decode(id, &e.value) {
                        Ok(r) => Some(Arc::new(r.into_view(id))),
                        Err(error) => {
                            tracing::warn!(%error, "ignoring an observed node record");
                            None
                        }
                    };
                    self.decoded.insert(id.clone(), (e.mod_revision, view));
                }
            }
        }
        ids.extend(changed_records);
        if !Arc::ptr_eq(&owned, &self.owned) {
            ids.extend(owned.symmetric_difference(&self.owned).cloned());
        }
        self.local = local;
        self.records = records;
        self.owned = owned;
        if ids.is_empty() {
            return;
        }
        let picks: Vec<(String, Option<Source>)> = ids
            .into_iter()
            .map(|id| {
                let pick = self.pick(&id);
                (id, pick)
            })
            .collect();
        out.edit(|t| {
            let mut changed = false;
            for (id, pick) in picks {
                match pick {
                    Some((view, held, partial)) => {
                        let same = t
                            .nodes
                            .get_shared(&id)
                            .is_some_and(|cur| Arc::ptr_eq(cur, &view) || **cur == *view);
                        if !same {
                            t.nodes.insert(id.clone(), view);
                            changed = true;
                        }
                        changed |= mark(&mut t.held, &id, held);
                        changed |= mark(&mut t.partial, &id, partial);
                    }
                    None => {
                        changed |= t.nodes.remove(&id).is_some();
                        changed |= t.held.remove(&id).is_some();
                        changed |= t.partial.remove(&id).is_some();
                    }
                }
            }
            changed
        });
    }

    /// Where node `id`'s view comes from now, and whether it is held.
    fn pick(&self, id: &str) -> Option<Source> {
        // This instance's own session's view, if that session sees the whole bridge (not
        // a standby's root row alone).
        let mine = self
            .local
            .nodes
            .get_shared(id)
            .filter(|_| !self.local.partial.contains(id));
        let own = || mine.map(|v| (v.clone(), self.local.held.contains(id), false));
        if self.owned.contains(id) && mine.is_some() {
            return own();
        }
        match self.decoded.get(id) {
            Some((_, Some(view))) => Some((with_own_tunnels(view, mine), false, mine.is_none())),
            _ => own(),
        }
    }
}

/// A record's view with the tunnel ports this instance's own session sees on that node
/// (`mine`). Records carry no tunnels, and the compiler may learn that this instance
/// owns a node before the merge switches the node to its session's view: compiled from
/// a tunnel-less view, the node's first install as new owner would delete its flows
/// towards every other node until the next one restored them (a lost packet on a
/// takeover, seen in `cluster_observed_ovs`).
fn with_own_tunnels(view: &Arc<NodeView>, mine: Option<&Arc<NodeView>>) -> Arc<NodeView> {
    match mine {
        Some(mine) if mine.tunnels != view.tunnels => {
            let mut v = (**view).clone();
            v.tunnels = mine.tunnels.clone();
            Arc::new(v)
        }
        _ => view.clone(),
    }
}

/// Keeps `out` merged from `local`, the records and the ownership view until `stop`.
pub async fn run(
    ownership: Ownership,
    local: Arc<TransportNodes>,
    mut records: watch::Receiver<Arc<Mirror>>,
    out: Arc<TransportNodes>,
    stop: CancellationToken,
) {
    let mut local_rx = local.watch();
    let mut view = ownership.watch();
    let mut merge = Merge::default();
    let mut owned = super::Owned::default();
    loop {
        let topology = local_rx.borrow_and_update().clone();
        let mirror = records.borrow_and_update().clone();
        // Cloned out first: `owned` reads the same channel again, and a second read
        // lock can wait behind a queued writer while the first is held.
        let current = view.borrow_and_update().clone();
        let owned = owned.of(&ownership, &current);
        merge.apply(topology, mirror, owned, &out);
        tokio::select! {
            _ = stop.cancelled() => return,
            r = local_rx.changed() => if r.is_err() { return },
            r = records.changed() => if r.is_err() { return },
            r = view.changed() => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::etcd::mirror::Entry;

    fn node(id: &str, vifs: &[(&str, u32)]) -> NodeView {
        crate::binding::tests::node(id, vifs).1
    }

    fn local(nodes: &[NodeView]) -> Arc<Topology> {
        Arc::new(Topology {
            nodes: nodes.iter().map(|n| (n.id.clone(), n.clone())).collect(),
            ..Default::default()
        })
    }

    fn records(nodes: &[(&NodeView, i64)]) -> Arc<Mirror> {
        Arc::new(Mirror {
            entries: nodes
                .iter()
                .map(|(n, rev)| {
                    let value = NodeRecord::from_view("other", n).encode();
                    (
                        n.id.clone(),
                        Entry {
                            value: value.into(),
                            mod_revision: *rev,
                            lease: 0,
                        },
                    )
                })
                .collect(),
            revision: 100,
        })
    }

    fn owned(ids: &[&str]) -> Arc<BTreeSet<String>> {
        Arc::new(ids.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn owned_nodes_come_from_the_session_others_from_their_record() {
        let out = TransportNodes::new();
        let mut m = Merge::default();
        let mut hv1 = node("hv1", &[("a", 1)]);
        hv1.tunnels.insert("hv2".into(), 9);
        let hv2_seen = node("hv2", &[("b", 1)]);
        let hv2_record = node("hv2", &[("b", 1), ("c", 2)]);
        // Before any record: this instance's own sessions.
        m.apply(
            local(&[hv1.clone(), hv2_seen.clone()]),
            records(&[]),
            owned(&["hv1"]),
            &out,
        );
        assert_eq!(out.snapshot().nodes["hv2"], hv2_seen);
        // hv2's owner wrote its record: it wins over this instance's session.
        m.apply(
            local(&[hv1.clone(), hv2_seen.clone()]),
            records(&[(&hv1, 5), (&hv2_record, 6)]),
            owned(&["hv1"]),
            &out,
        );
        let t = out.snapshot();
        assert_eq!(t.nodes["hv2"], hv2_record);
        assert_eq!(t.nodes["hv1"], hv1, "own session, tunnels and all");
    }

    #[test]
    fn an_ownership_change_never_takes_a_node_out() {
        let out = TransportNodes::new();
        let mut m = Merge::default();
        let hv2 = node("hv2", &[("b", 1)]);
        let mut hv2_mine = hv2.clone();
        hv2_mine.tunnels.insert("hv1".into(), 4);
        let recs = records(&[(&hv2, 6)]);
        m.apply(local(&[hv2_mine.clone()]), recs.clone(), owned(&[]), &out);
        // The record's view, with the tunnels this instance's session sees: compiled
        // as soon as this instance owns hv2, even before the merge catches up.
        let mut hv2_record = hv2.clone();
        hv2_record.tunnels = hv2_mine.tunnels.clone();
        assert_eq!(out.snapshot().nodes["hv2"], hv2_record);
        // Taken over: the session's view replaces the record's.
        m.apply(
            local(&[hv2_mine.clone()]),
            recs.clone(),
            owned(&["hv2"]),
            &out,
        );
        assert_eq!(out.snapshot().nodes["hv2"], hv2_mine);
        // This instance's session to it ends and the node is held: held here too.
        let mut held = (*local(&[hv2_mine.clone()])).clone();
        held.held.insert("hv2".into());
        m.apply(Arc::new(held), recs.clone(), owned(&["hv2"]), &out);
        assert!(out.snapshot().held.contains("hv2"));
        // Given up while this instance no longer sees it at all: the record keeps it.
        m.apply(local(&[]), recs.clone(), owned(&[]), &out);
        let t = out.snapshot();
        assert_eq!(t.nodes["hv2"], hv2);
        assert!(t.is_live("hv2"));
        // Its owner forgot it and deleted the record: gone.
        m.apply(local(&[]), records(&[]), owned(&[]), &out);
        assert!(out.snapshot().nodes.is_empty());
    }

    #[test]
    fn an_unreadable_record_falls_back_to_the_own_session() {
        let out = TransportNodes::new();
        let mut m = Merge::default();
        let hv2 = node("hv2", &[("b", 1)]);
        let mut bad = (*records(&[(&hv2, 3)])).clone();
        if let Some(e) = bad.entries.get_mut("hv2") {
            e.value = b"not json".as_slice().into();
        }
        m.apply(
            local(std::slice::from_ref(&hv2)),
            Arc::new(bad),
            owned(&[]),
            &out,
        );
        assert_eq!(out.snapshot().nodes["hv2"], hv2);
    }

    /// A standby's view: the node's root row alone.
    fn partial(views: &[NodeView], partial: &[&str]) -> Arc<Topology> {
        let mut t = (*local(views)).clone();
        t.partial = partial.iter().map(|s| s.to_string()).collect();
        Arc::new(t)
    }

    #[test]
    fn a_standby_view_is_never_compiled_from() {
        let out = TransportNodes::new();
        let mut m = Merge::default();
        let identity = node("hv2", &[]);
        let hv2 = node("hv2", &[("b", 1)]);
        let mut hv2_whole = hv2.clone();
        hv2_whole.tunnels.insert("hv1".into(), 4);
        let recs = records(&[(&hv2, 6)]);
        // No record yet: a node known by its root row alone is left out (it would show
        // no ports), owned or not.
        m.apply(
            partial(std::slice::from_ref(&identity), &["hv2"]),
            records(&[]),
            owned(&[]),
            &out,
        );
        assert!(out.snapshot().nodes.is_empty());
        m.apply(
            partial(std::slice::from_ref(&identity), &["hv2"]),
            records(&[]),
            owned(&["hv2"]),
            &out,
        );
        assert!(out.snapshot().nodes.is_empty());
        // The owner's record: shown, but partial (no tunnel ports known here) even now
        // that this instance owns it and its session has not switched yet.
        m.apply(
            partial(std::slice::from_ref(&identity), &["hv2"]),
            recs.clone(),
            owned(&["hv2"]),
            &out,
        );
        let t = out.snapshot();
        assert_eq!(t.nodes["hv2"], hv2, "the record's ports, no tunnels");
        assert!(t.partial.contains("hv2"));
        // The session sees the whole bridge: its view, compiled from.
        m.apply(
            local(&[hv2_whole.clone()]),
            recs.clone(),
            owned(&["hv2"]),
            &out,
        );
        let t = out.snapshot();
        assert_eq!(t.nodes["hv2"], hv2_whole);
        assert!(!t.partial.contains("hv2"));
        // Given up, the session back to the root row: the record again, partial.
        m.apply(partial(&[identity], &["hv2"]), recs, owned(&[]), &out);
        let t = out.snapshot();
        assert_eq!(t.nodes["hv2"], hv2);
        assert!(t.partial.contains("hv2"));
    }
}
