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

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ClusterSettings;
use super::mirror::Mirror;
use crate::cluster::bells::ViewSender;
use crate::cluster::{ClusterView, InstanceInfo, LeaseClock, OwnerRecord, rendezvous};
use crate::store::etcd::endpoints::Endpoints;
use crate::topology::TransportNodes;

/// How often the records are checked again without any change (a failed transaction).
const RECHECK: Duration = Duration::from_millis(500);
/// How long a burst of record and topology changes is collected before one pass: a cold
/// start brings thousands of each, and a pass per change, each publishing a view and
/// visiting every hypervisor, made the cold start quadratic.
const COALESCE: Duration = Duration::from_millis(20);
/// Claims per transaction: a compare and a put each, within etcd's 128 operations.
const CLAIM_BATCH: usize = 48;

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
    pub(super) view: ViewSender,
    /// Hypervisors this instance is releasing: no longer its own in the view, though
    /// the record still names it until the delete shows.
    pub(super) releasing: BTreeSet<String>,
    /// The ownership records as last decoded, and the copy of the prefix they come from
    /// (decoded again only where the copy changed).
    pub(super) records: Records,
}

/// The decoded ownership records, kept up to date from the mirror's changes.
#[derive(Default)]
pub struct Records {
    from: Arc<Mirror>,
    decoded: imbl::OrdMap<String, OwnerRecord>,
}

impl Records {
    /// Brings the decoded records up to `owners`; the nodes whose record changed.
    fn update(&mut self, owners: &Arc<Mirror>) -> Vec<String> {
        use imbl::ordmap::DiffItem;
        if Arc::ptr_eq(&self.from, owners) {
            return Vec::new();
        }
        let changed: Vec<(String, Option<OwnerRecord>)> = self
            .from
            .entries
            .diff(&owners.entries)
            .map(|d| match d {
                DiffItem::Add(k, e) | DiffItem::Update { new: (k, e), .. } => {
                    (k.clone(), parse_record(e))
                }
                DiffItem::Remove(k, _) => (k.clone(), None),
            })
            .collect();
        let mut nodes = Vec::with_capacity(changed.len());
        for (node, record) in changed {
            match record {
                Some(r) => self.decoded.insert(node.clone(), r),
                None => self.decoded.remove(&node),
            };
            nodes.push(node);
        }
        self.from = owners.clone();
        nodes
    }
}

/// The inputs of the last pass (see [`Claims::run`]).
struct Seen {
    lease: Option<i64>,
    leased: bool,
    instances: Arc<Mirror>,
    nodes: Arc<crate::topology::Topology>,
}

/// What woke the claims task.
enum Wake {
    /// Records, instances or hypervisors changed: more may follow at once.
    Burst,
    /// The lease changed or lapsed, or a failed transaction is due again.
    Now,
}

impl Claims {
    pub async fn run(mut self, stop: CancellationToken) {
        let mut topology = self.topology.watch();
        // What the last pass looked at: a pass after a burst of records or hypervisors
        // visits only those (a cold start brings thousands, one at a time); a change of
        // the lease or of the instances, or a failed transaction, visits every one.
        let mut seen: Option<Seen> = None;
        let mut busy = false;
        loop {
            let lease = *self.lease.borrow_and_update();
            let instances = self.instances.borrow_and_update().clone();
            let owners = self.owners.borrow_and_update().clone();
            let nodes = topology.borrow_and_update().clone();
            let changed_records = self.records.update(&owners);
            let records = self.records.decoded.clone();
            self.releasing.retain(|n| {
                records
                    .get(n)
                    .is_some_and(|r| r.instance == self.settings.instance)
            });
            self.publish(lease, &instances, &owners, &records);
            let leased = self.clock.valid_at(Instant::now());
            let scope = match &seen {
                Some(s)
                    if !busy
                        && s.lease == lease
                        && s.leased == leased
                        && Arc::ptr_eq(&s.instances, &instances) =>
                {
                    let mut ids: BTreeSet<String> = nodes
                        .nodes
                        .diff(&s.nodes.nodes)
                        .filter(|c| c.old.is_none() || c.new.is_none())
                        .map(|c| c.id.to_owned())
                        .collect();
                    ids.extend(changed_records);
                    Some(ids)
                }
                _ => None,
            };
            seen = Some(Seen {
                lease,
                leased,
                instances: instances.clone(),
                nodes: nodes.clone(),
            });
            busy = false;
            if let Some(lease) = lease.filter(|_| leased) {
                busy = self
                    .converge(lease, &instances, &records, &nodes, scope.as_ref())
                    .await;
            }
            let until = self.clock.until().filter(|t| *t > Instant::now());
            let wake = tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.lease.changed() => Wake::Now,
                _ = self.instances.changed() => Wake::Burst,
                _ = self.owners.changed() => Wake::Burst,
                _ = topology.changed() => Wake::Burst,
                // The lease lapses: publish, so that sessions step down.
                _ = sleep_until_opt(until) => Wake::Now,
                _ = tokio::time::sleep(RECHECK), if busy => Wake::Now,
            };
            if let Wake::Burst = wake {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(COALESCE) => {}
                }
            }
        }
    }

    fn publish(
        &self,
        lease: Option<i64>,
        instances: &Mirror,
        owners: &Mirror,
        records: &imbl::OrdMap<String, OwnerRecord>,
    ) {
        let me = &self.settings.instance;
        let mut owners_view = records.clone();
        for n in &self.releasing {
            if owners_view.get(n).is_some_and(|r| r.instance == *me) {
                owners_view.remove(n);
            }
        }
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
        self.view.publish(view);
    }

    /// One pass over the hypervisors in `scope` (all of them, and every record of this
    /// instance's, if `None`); true if something is still to do (a transaction failed or
    /// is waiting on another's record).
    async fn converge(
        &mut self,
        lease: i64,
        instances: &Mirror,
        records: &imbl::OrdMap<String, OwnerRecord>,
        topology: &crate::topology::Topology,
        scope: Option<&BTreeSet<String>>,
    ) -> bool {
        let me = self.settings.instance.clone();
        let live: Vec<&str> = instances.entries.keys().map(String::as_str).collect();
        let mut busy = false;
        let nodes = &topology.nodes;
        let all: BTreeSet<String> = match scope {
            Some(ids) => ids.clone(),
            None => {
                let mine = records
                    .iter()
                    .filter(|(_, r)| r.instance == me)
                    .map(|(n, _)| n.clone());
                nodes.keys().cloned().chain(mine).collect()
            }
        };
        let mut claims: Vec<(String, Compare)> = Vec::new();
        for node in &all {
            let should = nodes.contains_key(node)
                && rendezvous::owner(node, live.iter().copied()) == Some(me.as_str());
            let record = records.get(node);
            match record {
                None if should => {
                    let cmp = Compare::create_revision(
                        self.settings.owner_key(node),
                        CompareOp::Equal,
                        0,
                    );
                    claims.push((node.clone(), cmp));
                }
                Some(r) if should && r.instance == me && r.lease != lease => {
                    let cmp = Compare::mod_revision(
                        self.settings.owner_key(node),
                        CompareOp::Equal,
                        r.generation as i64,
                    );
                    claims.push((node.clone(), cmp));
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
                    let forgotten = !nodes.contains_key(node);
                    busy |= !self.release(node, r, forgotten).await;
                }
                _ => {}
            }
        }
        for batch in claims.chunks(CLAIM_BATCH) {
            busy |= !self.claim_batch(batch, lease).await;
        }
        busy
    }

    /// Drops the nodes being released from the published view before their records go.
    fn publish_releasing(&self) {
        let me = &self.settings.instance;
        let cur = self.view.current();
        let mut v = (*cur).clone();
        for n in &self.releasing {
            if v.owners.get(n).is_some_and(|r| r.instance == *me) {
                v.owners.remove(n);
            }
        }
        self.view.publish(v);
    }

    /// Claims each node of `batch` whose compare holds: all in one transaction, or, if
    /// that is refused because one of them changed meanwhile, one by one. Whether every
    /// node was claimed.
    async fn claim_batch(&self, batch: &[(String, Compare)], lease: i64) -> bool {
        if batch.len() > 1 {
            let (compares, puts): (Vec<Compare>, Vec<TxnOp>) = batch
                .iter()
                .map(|(node, cmp)| (cmp.clone(), self.put_record(node, lease)))
                .unzip();
            if self.txn(Txn::new().when(compares).and_then(puts)).await == Some(true) {
                tracing::info!(nodes = batch.len(), instance = %self.settings.instance,
                    first = %batch[0].0, "took ownership of hypervisors");
                return true;
            }
        }
        let mut all = true;
        for (node, cmp) in batch {
            all &= self.claim(node, lease, cmp.clone()).await;
        }
        all
    }

    fn put_record(&self, node: &str, lease: i64) -> TxnOp {
        let value = serde_json::to_vec(&RecordValue {
            instance: self.settings.instance.clone(),
        })
        .unwrap_or_default();
        TxnOp::put(
            self.settings.owner_key(node),
            value,
            Some(PutOptions::new().with_lease(lease)),
        )
    }

    /// Writes the record for `node` under `lease` if `cmp` holds; whether it was written.
    async fn claim(&self, node: &str, lease: i64, cmp: Compare) -> bool {
        let txn = Txn::new()
            .when([cmp])
            .and_then([self.put_record(node, lease)]);
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

/// One ownership record as stored; `None` if unreadable (it is then no one's).
fn parse_record(e: &super::mirror::Entry) -> Option<OwnerRecord> {
    let v: RecordValue = serde_json::from_slice(&e.value).ok()?;
    Some(OwnerRecord {
        instance: v.instance,
        generation: u64::try_from(e.mod_revision).ok()?,
        lease: e.lease,
    })
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}
