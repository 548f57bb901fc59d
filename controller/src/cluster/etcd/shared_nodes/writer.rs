//! The owner's side: writes the record of each hypervisor this instance owns when what
//! its session sees of it changes.
//!
//! Changes are coalesced ([`COALESCE`] after the first, then one pass), a node whose
//! record already says the same is not written, and each put is fenced: the transaction
//! applies only while the node's ownership record is still under this instance's lease,
//! so an instance that lost a node (its lease lapsed, or it released it) cannot
//! overwrite what the new owner wrote. Up to [`BATCH`] nodes share one transaction; a
//! batch refused because one of them changed hands is retried node by node.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::record::NodeRecord;
use crate::cluster::Ownership;
use crate::cluster::etcd::ClusterSettings;
use crate::cluster::etcd::mirror::Mirror;
use crate::store::etcd::endpoints::Endpoints;
use crate::topology::{Topology, TransportNodes};

/// How long a burst of changes is collected before one pass writes it.
pub const COALESCE: Duration = Duration::from_millis(100);
/// Nodes per transaction: a compare and a put each, within etcd's 128 operations.
const BATCH: usize = 48;
/// How soon a pass whose writes failed is tried again.
const RETRY: Duration = Duration::from_millis(500);

pub struct Writer {
    pub endpoints: Endpoints,
    pub settings: Arc<ClusterSettings>,
    pub ownership: Ownership,
    pub local: Arc<TransportNodes>,
    pub records: watch::Receiver<Arc<Mirror>>,
}

/// One put to make: the node, its record key and value.
struct Put {
    node: String,
    key: String,
    value: Vec<u8>,
}

impl Writer {
    pub async fn run(mut self, stop: CancellationToken) {
        let mut local_rx = self.local.watch();
        let mut view = self.ownership.watch();
        let mut seen_local: Arc<Topology> = Arc::default();
        let mut seen_records: Arc<Mirror> = Arc::default();
        let mut seen_owned: BTreeSet<String> = BTreeSet::new();
        // Node -> (the value this instance last wrote, the revision it was written at).
        let mut written: HashMap<String, (Vec<u8>, i64)> = HashMap::new();
        let mut retry = false;
        loop {
            if !retry {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    r = local_rx.changed() => if r.is_err() { return },
                    r = self.records.changed() => if r.is_err() { return },
                    r = view.changed() => if r.is_err() { return },
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(if retry { RETRY } else { COALESCE }) => {}
            }
            let topology = local_rx.borrow_and_update().clone();
            let records = self.records.borrow_and_update().clone();
            let current = view.borrow_and_update().clone();
            let owned = super::owned(&self.ownership, &current);
            let mut ids = super::changed_nodes(&seen_local, &topology);
            ids.extend(super::changed_records(&seen_records, &records));
            ids.extend(owned.difference(&seen_owned).cloned());
            if retry {
                ids.extend(owned.iter().cloned());
            }
            let puts: Vec<Put> = ids
                .iter()
                // A view of the root row alone (a session not yet through its switch to
                // the whole bridge) would publish the node without its ports.
                .filter(|id| owned.contains(*id) && !topology.partial.contains(*id))
                .filter_map(|id| {
                    let view = topology.nodes.get(id)?;
                    let value = NodeRecord::from_view(&self.settings.instance, view).encode();
                    let entry = records.entries.get(id);
                    if entry.is_some_and(|e| e.value[..] == value[..]) {
                        return None;
                    }
                    let stale = entry.map_or(0, |e| e.mod_revision);
                    if written
                        .get(id)
                        .is_some_and(|(v, at)| *v == value && stale <= *at)
                    {
                        return None;
                    }
                    Some(Put {
                        node: id.clone(),
                        key: self.settings.observed_node_key(id),
                        value,
                    })
                })
                .collect();
            seen_local = topology;
            seen_records = records;
            seen_owned = owned;
            retry = false;
            let Some(lease) = current.lease else {
                continue;
            };
            for batch in puts.chunks(BATCH) {
                match self.put(batch, lease).await {
                    Some((true, rev)) => remember(&mut written, batch, rev),
                    Some((false, _)) if batch.len() > 1 => {
                        for one in batch {
                            match self.put(std::slice::from_ref(one), lease).await {
                                Some((true, rev)) => {
                                    remember(&mut written, std::slice::from_ref(one), rev);
                                }
                                Some((false, _)) => {
                                    tracing::debug!(node = %one.node,
                                        "not writing its observed record: no longer its owner");
                                }
                                None => retry = true,
                            }
                        }
                    }
                    Some((false, _)) => {
                        tracing::debug!(node = %batch[0].node,
                            "not writing its observed record: no longer its owner");
                    }
                    None => retry = true,
                }
            }
        }
    }

    /// One fenced transaction: (applied, etcd revision), or None if etcd did not answer.
    async fn put(&self, batch: &[Put], lease: i64) -> Option<(bool, i64)> {
        let compares: Vec<Compare> = batch
            .iter()
            .map(|p| Compare::lease(self.settings.owner_key(&p.node), CompareOp::Equal, lease))
            .collect();
        let ops: Vec<TxnOp> = batch
            .iter()
            .map(|p| TxnOp::put(p.key.clone(), p.value.clone(), None))
            .collect();
        let txn = Txn::new().when(compares).and_then(ops);
        let (member, mut client) = self.endpoints.current();
        match tokio::time::timeout(self.settings.etcd.timeout, client.txn(txn)).await {
            Ok(Ok(r)) => {
                let rev = r.header().map_or(0, |h| h.revision());
                if r.succeeded() {
                    tracing::debug!(
                        nodes = batch.len(),
                        revision = rev,
                        "observed nodes written"
                    );
                }
                Some((r.succeeded(), rev))
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot write observed nodes; will retry");
                self.endpoints.failed(member);
                None
            }
            Err(_) => {
                tracing::warn!("writing observed nodes timed out; will retry");
                self.endpoints.failed(member);
                None
            }
        }
    }
}

fn remember(written: &mut HashMap<String, (Vec<u8>, i64)>, batch: &[Put], rev: i64) {
    for p in batch {
        written.insert(p.node.clone(), (p.value.clone(), rev));
    }
}
