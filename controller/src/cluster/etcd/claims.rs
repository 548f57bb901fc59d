//! The claims task: joins the live instances, the ownership records, this instance's
//! lease and the hypervisors its OVSDB sessions report into the published
//! [`ClusterView`], and makes the records follow rendezvous hashing:
//! - a hypervisor this instance should own, whose record is absent, is claimed with a
//!   transaction that creates the record only if it does not exist, under this
//!   instance's lease (a record left by this instance's earlier lease is taken over only
//!   if unchanged since it was read);
//! - a record this instance holds for a hypervisor that now belongs to another live
//!   instance (one joined) is released: this instance stops acting as its owner first
//!   (the view no longer names it), then deletes the record if unchanged;
//! - a record held by another instance is left alone: it goes when that instance
//!   releases it or when its lease expires (the instance died);
//! - a hypervisor this instance owns and no longer sees at all (its session ended and
//!   the node grace passed) is forgotten: the release also deletes the node's observed
//!   record (`shared_nodes`), in the same transaction, so that every instance stops
//!   compiling towards it. A node merely handed to another instance keeps its record.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ClusterSettings;
use super::mirror::Mirror;
use crate::cluster::{ClusterView, InstanceInfo, LeaseClock, OwnerRecord, rendezvous};
use crate::store::etcd::endpoints::Endpoints;
use crate::topology::TransportNodes;

/// How often the records are checked again without any change (a failed transaction).
const RECHECK: Duration = Duration::from_millis(500);

/// The value of an ownership record.
#[derive(Serialize, Deserialize)]
struct RecordValue {
    instance: String,
}

pub struct Claims {
    pub(super) endpoints: Endpoints,
    pub(super) settings: Arc<ClusterSettings>,
    pub(super) clock: Arc<LeaseClock>,
    pub(super) lease: watch::Receiver<Option<i64>>,
    pub(super) instances: watch::Receiver<Arc<Mirror>>,
    pub(super) owners: watch::Receiver<Arc<Mirror>>,
    pub(super) topology: Arc<TransportNodes>,
    pub(super) view: watch::Sender<Arc<ClusterView>>,
    /// Hypervisors this instance is releasing: no longer its own in the view, though
    /// the record still names it until the delete shows.
    pub(super) releasing: BTreeSet<String>,
}

impl Claims {
    pub async fn run(mut self, stop: CancellationToken) {
        let mut topology = self.topology.watch();
        loop {
            let lease = *self.lease.borrow_and_update();
            let instances = self.instances.borrow_and_update().clone();
            let owners = self.owners.borrow_and_update().clone();
            let nodes: BTreeSet<String> =
                topology.borrow_and_update().nodes.keys().cloned().collect();
            let records = parse_records(&owners);
            self.releasing.retain(|n| {
                records
                    .get(n)
                    .is_some_and(|r| r.instance == self.settings.instance)
            });
            self.publish(lease, &instances, &owners, &records);
            let now = Instant::now();
            let mut busy = false;
            if let Some(lease) = lease.filter(|_| self.clock.valid_at(now)) {
                busy = self.converge(lease, &instances, &records, &nodes).await;
            }
            let until = self.clock.until().filter(|t| *t > Instant::now());
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.lease.changed() => {}
                _ = self.instances.changed() => {}
                _ = self.owners.changed() => {}
                _ = topology.changed() => {}
                // The lease lapses: publish, so that sessions step down.
                _ = sleep_until_opt(until) => {}
                _ = tokio::time::sleep(RECHECK), if busy => {}
            }
        }
    }

    fn publish(
        &self,
        lease: Option<i64>,
        instances: &Mirror,
        owners: &Mirror,
        records: &BTreeMap<String, OwnerRecord>,
    ) {
        let me = &self.settings.instance;
        let owners_view = records
            .iter()
            .filter(|(n, r)| !(r.instance == *me && self.releasing.contains(*n)))
            .map(|(n, r)| (n.clone(), r.clone()))
            .collect();
        let view = ClusterView {
            clustered: true,
            instances: instances
                .entries
                .iter()
                .map(|(name, e)| {
                    let info: InstanceInfo = serde_json::from_slice(&e.value).unwrap_or_default();
                    (name.clone(), info)
                })
                .collect(),
            owners: owners_view,
            lease,
            clock: self.clock.clone(),
            leased: self.clock.valid_at(Instant::now()),
            revision: instances.revision.max(owners.revision),
            endpoints: self.settings.etcd.endpoints.clone(),
        };
        self.view.send_if_modified(|cur| {
            if **cur == view {
                return false;
            }
            *cur = Arc::new(view);
            true
        });
    }

    /// One pass over the hypervisors; true if something is still to do (a transaction
    /// failed or is waiting on another's record).
    async fn converge(
        &mut self,
        lease: i64,
        instances: &Mirror,
        records: &BTreeMap<String, OwnerRecord>,
        nodes: &BTreeSet<String>,
    ) -> bool {
        let me = self.settings.instance.clone();
        let live: Vec<&str> = instances.entries.keys().map(String::as_str).collect();
        let mut busy = false;
        let mine = records
            .iter()
            .filter(|(_, r)| r.instance == me)
            .map(|(n, _)| n.clone());
        let all: BTreeSet<String> = nodes.iter().cloned().chain(mine).collect();
        for node in &all {
            let should = nodes.contains(node)
                && rendezvous::owner(node, live.iter().copied()) == Some(me.as_str());
            let record = records.get(node);
            match record {
                None if should => {
                    let cmp = Compare::create_revision(
                        self.settings.owner_key(node),
                        CompareOp::Equal,
                        0,
                    );
                    busy |= !self.claim(node, lease, cmp).await;
                }
                Some(r) if should && r.instance == me && r.lease != lease => {
                    let cmp = Compare::mod_revision(
                        self.settings.owner_key(node),
                        CompareOp::Equal,
                        r.generation as i64,
                    );
                    busy |= !self.claim(node, lease, cmp).await;
                }
                // A release that failed, and the node is ours again after all.
                Some(r)
                    if should
                        && r.instance == me
                        && r.lease == lease
                        && self.releasing.remove(node) =>
                {
                    busy = true;
                }
                Some(r) if !should && r.instance == me && r.lease == lease => {
                    self.releasing.insert(node.clone());
                    self.publish_releasing();
                    let forgotten = !nodes.contains(node);
                    busy |= !self.release(node, r, forgotten).await;
                }
                _ => {}
            }
        }
        busy
    }

    /// Drops the nodes being released from the published view before their records go.
    fn publish_releasing(&self) {
        let me = &self.settings.instance;
        self.view.send_if_modified(|cur| {
            let drop: Vec<String> = cur
                .owners
                .iter()
                .filter(|(n, r)| r.instance == *me && self.releasing.contains(*n))
                .map(|(n, _)| n.clone())
                .collect();
            if drop.is_empty() {
                return false;
            }
            let mut v = (**cur).clone();
            for n in drop {
                v.owners.remove(&n);
            }
            *cur = Arc::new(v);
            true
        });
    }

    /// Writes the record for `node` under `lease` if `cmp` holds; whether it was written.
    async fn claim(&self, node: &str, lease: i64, cmp: Compare) -> bool {
        let key = self.settings.owner_key(node);
        let value = serde_json::to_vec(&RecordValue {
            instance: self.settings.instance.clone(),
        })
        .unwrap_or_default();
        let txn = Txn::new().when([cmp]).and_then([TxnOp::put(
            key,
            value,
            Some(PutOptions::new().with_lease(lease)),
        )]);
        match self.txn(txn).await {
            Some(true) => {
                tracing::info!(node, instance = %self.settings.instance, "took ownership of hypervisor");
                true
            }
            Some(false) => {
                tracing::debug!(node, "ownership record changed meanwhile");
                false
            }
            None => false,
        }
    }

    /// Deletes this instance's ownership record of `node` if unchanged, and with it the
    /// node's observed record if this instance `forgot` the node.
    async fn release(&self, node: &str, r: &OwnerRecord, forgot: bool) -> bool {
        let key = self.settings.owner_key(node);
        let mut ops = vec![TxnOp::delete(key.clone(), None)];
        if forgot {
            ops.push(TxnOp::delete(self.settings.observed_node_key(node), None));
        }
        let txn = Txn::new()
            .when([
                Compare::mod_revision(key.clone(), CompareOp::Equal, r.generation as i64),
                Compare::lease(key, CompareOp::Equal, r.lease),
            ])
            .and_then(ops);
        let done = self.txn(txn).await == Some(true);
        if done && forgot {
            tracing::info!(node, instance = %self.settings.instance,
                "hypervisor gone: released it and deleted its observed record");
        } else if done {
            tracing::info!(node, instance = %self.settings.instance, "released hypervisor to another instance");
        }
        done
    }

    /// One bounded transaction; `None` if etcd did not answer.
    async fn txn(&self, txn: Txn) -> Option<bool> {
        let (member, mut client) = self.endpoints.current();
        match tokio::time::timeout(self.settings.owner_lease / 3, client.txn(txn)).await {
            Ok(Ok(r)) => Some(r.succeeded()),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "ownership transaction failed");
                self.endpoints.failed(member);
                None
            }
            Err(_) => {
                self.endpoints.failed(member);
                None
            }
        }
    }
}

fn parse_records(owners: &Mirror) -> BTreeMap<String, OwnerRecord> {
    owners
        .entries
        .iter()
        .filter_map(|(node, e)| {
            let v: RecordValue = serde_json::from_slice(&e.value).ok()?;
            Some((
                node.clone(),
                OwnerRecord {
                    instance: v.instance,
                    generation: u64::try_from(e.mod_revision).ok()?,
                    lease: e.lease,
                },
            ))
        })
        .collect()
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}
