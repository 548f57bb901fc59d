//! Cluster mode's hypervisor ownership on etcd (DESIGN.md §7): each instance's lease and
//! record ([`lease`]), local copies of the live instances and of the ownership records
//! ([`mirror`]), and the task that claims and releases hypervisors and publishes the
//! [`ClusterView`] ([`claims`]).
//!
//! ```text
//! <prefix>/instances/<name>        {"api": ..., "openflow_advertise": ...}, under its lease
//! <prefix>/owners/<system-id>      {"instance": ...}, under the owner's lease; its etcd
//!                                  mod revision is the OpenFlow generation_id
//! <prefix>/observed/nodes/<id>    what the owner sees of the hypervisor, no lease
//!                                  ([`shared_nodes`])
//! ```
//!
//! The hypervisors an instance considers for ownership are the ones its own OVSDB
//! sessions report: every hypervisor names every instance as its manager, so each
//! instance sees all of them. What it compiles from is the shared topology: its own
//! sessions' view of the hypervisors it owns, the owners' records of the others.

pub mod claims;
pub mod lease;
pub mod mirror;
pub mod shared_nodes;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::bells::{Bells, ViewSender};
use super::{ClusterView, InstanceInfo, Ownership};
use crate::store::etcd::EtcdSettings;
use crate::store::etcd::endpoints::Endpoints;
use crate::topology::TransportNodes;

/// What the ownership tasks need.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub etcd: EtcdSettings,
    pub instance: String,
    pub info: InstanceInfo,
    /// Lease time to live (`--owner-lease`, whole seconds, at least 1).
    pub owner_lease: Duration,
}

impl ClusterSettings {
    pub fn instances_prefix(&self) -> String {
        format!("{}/instances/", self.etcd.prefix)
    }

    pub fn owners_prefix(&self) -> String {
        format!("{}/owners/", self.etcd.prefix)
    }

    pub fn instance_key(&self) -> String {
        format!("{}{}", self.instances_prefix(), self.instance)
    }

    pub fn owner_key(&self, node: &str) -> String {
        format!("{}{}", self.owners_prefix(), node)
    }

    pub fn observed_nodes_prefix(&self) -> String {
        format!("{}/observed/nodes/", self.etcd.prefix)
    }

    pub fn observed_node_key(&self, node: &str) -> String {
        format!("{}{}", self.observed_nodes_prefix(), node)
    }
}

/// The running ownership tasks of one instance.
pub struct Cluster {
    pub ownership: Ownership,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// The view channel, created before the southbound starts (everything is standby until
/// [`Cluster::start`] claims), and the [`Ownership`] that reads it.
pub fn channel(instance: &str) -> (ViewSender, Ownership) {
    let (tx, rx) = watch::channel(Arc::new(ClusterView {
        clustered: true,
        ..Default::default()
    }));
    let bells = Arc::new(Bells::default());
    (
        ViewSender::new(tx, bells.clone()),
        Ownership::clustered(instance, rx, bells),
    )
}

impl Cluster {
    /// Starts the lease, the mirrors, the claims on `view` (from [`channel`]) and the
    /// shared topology: `local` is what this instance's OVSDB sessions report, `shared`
    /// what it compiles from (see [`shared_nodes`]).
    pub async fn start(
        settings: ClusterSettings,
        local: Arc<TransportNodes>,
        shared: Arc<TransportNodes>,
        view: ViewSender,
    ) -> anyhow::Result<Cluster> {
        let endpoints = Endpoints::new(&settings.etcd).await?;
        let ownership = view.ownership(&settings.instance);
        let settings = Arc::new(settings);
        let stop = CancellationToken::new();
        let clock = view.current().clock.clone();
        let (lease_tx, lease_rx) = watch::channel(None);
        let (inst_tx, inst_rx) = watch::channel(Arc::default());
        let (own_tx, own_rx) = watch::channel(Arc::default());
        let (obs_tx, obs_rx) = watch::channel(Arc::default());
        let timeout = settings.etcd.timeout.min(settings.owner_lease);
        let tasks = vec![
            tokio::spawn(lease::run(
                endpoints.clone(),
                settings.clone(),
                clock.clone(),
                lease_tx,
                stop.clone(),
            )),
            tokio::spawn(mirror::run(
                endpoints.clone(),
                settings.instances_prefix(),
                timeout,
                inst_tx,
                stop.clone(),
            )),
            tokio::spawn(mirror::run(
                endpoints.clone(),
                settings.owners_prefix(),
                timeout,
                own_tx,
                stop.clone(),
            )),
            tokio::spawn(mirror::run(
                endpoints.clone(),
                settings.observed_nodes_prefix(),
                timeout,
                obs_tx,
                stop.clone(),
            )),
            tokio::spawn(shared_nodes::merge::run(
                ownership.clone(),
                local.clone(),
                obs_rx.clone(),
                shared,
                stop.clone(),
            )),
            tokio::spawn(
                shared_nodes::writer::Writer {
                    endpoints: endpoints.clone(),
                    settings: settings.clone(),
                    ownership: ownership.clone(),
                    local: local.clone(),
                    records: obs_rx,
                }
                .run(stop.clone()),
            ),
            tokio::spawn(
                claims::Claims {
                    endpoints,
                    settings,
                    clock,
                    lease: lease_rx,
                    instances: inst_rx,
                    owners: own_rx,
                    topology: local,
                    view,
                    releasing: Default::default(),
                    records: Default::default(),
                }
                .run(stop.clone()),
            ),
        ];
        Ok(Cluster {
            ownership,
            stop,
            tasks,
        })
    }

    /// Ends the tasks at once without revoking the lease, as a crash would: the records
    /// stay until etcd expires the lease (tests of failover).
    pub fn abort(self) {
        for t in self.tasks {
            t.abort();
        }
    }

    /// Stops claiming and revokes the lease: the other instances take over at once.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
