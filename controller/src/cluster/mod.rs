//! Which instance owns which hypervisor, and so which instance may write to it.
//!
//! [`Ownership`] is the one answer every southbound session and the API read. Without
//! `--etcd` this instance owns every hypervisor, with no generation (OpenFlow sessions
//! send no role request, as before cluster mode). In cluster mode (`--etcd`, module
//! `etcd`) the answer comes from the etcd records `<prefix>/owners/<system-id>`, each
//! written under its owner's lease, and from this instance's own lease: an instance
//! whose lease it could not renew in time stops owning anything at once, before etcd can
//! let the lease expire and hand its hypervisors to another instance
//! ([`LeaseClock`] is read at every use, not only when a task wakes).

pub mod bells;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod events;
pub mod rendezvous;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::watch;

/// What an instance announces about itself (`<prefix>/instances/<name>`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct InstanceInfo {
    /// Its JSON API address.
    pub api: String,
    /// The OpenFlow target it asks hypervisors to connect to (`tcp:IP:PORT`), if any.
    pub openflow_advertise: Option<String>,
    /// The address hypervisors dial to reach its OVSDB manager listener (`IP:PORT`), when
    /// it can tell: each hypervisor's owner takes the Manager rows that dial any live
    /// instance out of in-band control, not only its own. Absent in records of older
    /// instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ovsdb_manager: Option<std::net::SocketAddr>,
}

/// Who owns one hypervisor, as its ownership record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerRecord {
    pub instance: String,
    /// The etcd revision at which the record was written: it only grows, across owners,
    /// and is the OpenFlow `generation_id` of the owner's ROLE_REQUEST master.
    pub generation: u64,
    /// The etcd lease the record lives under (its owner's).
    pub lease: i64,
}

/// One consistent picture of the cluster as this instance sees it.
#[derive(Clone, Debug, Default)]
pub struct ClusterView {
    /// False without `--etcd`: this instance alone, owning everything.
    pub clustered: bool,
    /// Live instances (their records exist, so their leases do).
    pub instances: BTreeMap<String, InstanceInfo>,
    /// Ownership records by system-id: a persistent map, so that a new view shares what
    /// did not change with the last one and [`bells::ViewSender`] finds what did without
    /// comparing every record.
    pub owners: imbl::OrdMap<String, OwnerRecord>,
    /// This instance's lease, when it has one.
    pub lease: Option<i64>,
    /// Until when this instance may act as an owner (renewed without republishing the
    /// view; read at every use).
    pub clock: Arc<LeaseClock>,
    /// Whether the lease was valid when this view was published: a view is published
    /// when it lapses, so that sessions waiting on the view wake and step down.
    pub leased: bool,
    /// etcd's revision as of the last change this instance saw.
    pub revision: i64,
    /// The etcd client URLs (for `cluster_status`).
    pub endpoints: Vec<String>,
}

impl PartialEq for ClusterView {
    /// Everything but the clock (shared, always the same one per instance).
    fn eq(&self, other: &Self) -> bool {
        self.clustered == other.clustered
            && self.instances == other.instances
            && self.owners == other.owners
            && self.lease == other.lease
            && self.leased == other.leased
            && self.revision == other.revision
            && self.endpoints == other.endpoints
    }
}

/// Until when this instance may act as an owner: a local deadline shorter than the
/// lease's time to live, counted from when the last renewal that etcd acknowledged was
/// sent, so it always passes before etcd can expire the lease.
#[derive(Debug, Default)]
pub struct LeaseClock {
    until: std::sync::Mutex<Option<Instant>>,
}

impl LeaseClock {
    pub fn until(&self) -> Option<Instant> {
        *self.until.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set(&self, until: Option<Instant>) {
        *self.until.lock().unwrap_or_else(|e| e.into_inner()) = until;
    }

    pub fn valid_at(&self, now: Instant) -> bool {
        self.until().is_some_and(|t| now < t)
    }
}

/// This instance's standing towards one hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Writes to it. `generation`: the OpenFlow generation_id to claim master with
    /// (`None` without `--etcd`: no role request at all).
    Owner { generation: Option<u64> },
    /// Watches it, writes nothing. `generation`: the owner's, for a ROLE_REQUEST slave
    /// that OVS does not refuse as stale (none while the hypervisor has no owner).
    Standby { generation: Option<u64> },
}

impl Role {
    pub fn is_owner(&self) -> bool {
        matches!(self, Role::Owner { .. })
    }
}

/// The handle every task holds: this instance's name and the latest [`ClusterView`].
#[derive(Clone, Debug)]
pub struct Ownership {
    instance: String,
    view: watch::Receiver<Arc<ClusterView>>,
    /// Keeps the channel open in single-instance mode (nothing else sends).
    _single: Option<Arc<watch::Sender<Arc<ClusterView>>>>,
    /// What this instance announces (its API address is known once the API is bound).
    info: Arc<std::sync::OnceLock<InstanceInfo>>,
    /// Per-hypervisor wake-ups (cluster mode only: nothing changes otherwise).
    bells: Option<Arc<bells::Bells>>,
}

impl Ownership {
    /// Without `--etcd`: this instance owns every hypervisor.
    pub fn single(instance: &str) -> Ownership {
        let (tx, rx) = watch::channel(Arc::new(ClusterView::default()));
        Ownership {
            instance: instance.to_string(),
            view: rx,
            _single: Some(Arc::new(tx)),
            info: Arc::default(),
            bells: None,
        }
    }

    /// Cluster mode: the view comes from `view`, published by the cluster tasks through
    /// a [`bells::ViewSender`] that rings `bells`.
    pub fn clustered(
        instance: &str,
        view: watch::Receiver<Arc<ClusterView>>,
        bells: Arc<bells::Bells>,
    ) -> Ownership {
        Ownership {
            instance: instance.to_string(),
            view,
            _single: None,
            info: Arc::default(),
            bells: Some(bells),
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Records what this instance announces (once, when the API is bound).
    pub fn set_info(&self, info: InstanceInfo) {
        let _ = self.info.set(info);
    }

    /// What this instance announces, once known.
    pub fn info(&self) -> InstanceInfo {
        self.info.get().cloned().unwrap_or_default()
    }

    pub fn view(&self) -> Arc<ClusterView> {
        self.view.borrow().clone()
    }

    /// Woken on every change of the view, for the tasks that serve every hypervisor
    /// (compiler, merge). A lease that runs out is published too, but
    /// [`Ownership::role`] does not wait for that.
    pub fn watch(&self) -> watch::Receiver<Arc<ClusterView>> {
        self.view.clone()
    }

    /// Woken when `node`'s standing may have changed: its own record, or what every
    /// hypervisor's tasks read (see [`bells`]). For the tasks that serve one hypervisor.
    pub fn watch_node(&self, node: Option<&str>) -> bells::NodeWatch {
        match &self.bells {
            Some(b) => bells::NodeWatch::new(b.clone(), node),
            None => bells::NodeWatch::never(),
        }
    }

    /// This instance's role towards `node` now.
    pub fn role(&self, node: &str) -> Role {
        role_in(&self.view.borrow(), &self.instance, node, Instant::now())
    }

    /// Which instance owns `node`: this one without `--etcd`; in cluster mode the
    /// record's holder, if any.
    pub fn owner_of(&self, node: &str) -> Option<String> {
        let view = self.view.borrow();
        if !view.clustered {
            return Some(self.instance.clone());
        }
        view.owners.get(node).map(|r| r.instance.clone())
    }
}

/// [`Ownership::role`] on a given view and time (pure, for tests).
pub fn role_in(view: &ClusterView, me: &str, node: &str, now: Instant) -> Role {
    if !view.clustered {
        return Role::Owner { generation: None };
    }
    let record = view.owners.get(node);
    let generation = record.map(|r| r.generation);
    let leased = view.clock.valid_at(now);
    match record {
        Some(r) if leased && r.instance == me && Some(r.lease) == view.lease => {
            Role::Owner { generation }
        }
        _ => Role::Standby { generation },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn view(lease_until: Instant) -> ClusterView {
        let clock = Arc::new(LeaseClock::default());
        clock.set(Some(lease_until));
        ClusterView {
            clock,
            clustered: true,
            owners: [
                (
                    "hv1".to_string(),
                    OwnerRecord {
                        instance: "c1".into(),
                        generation: 7,
                        lease: 42,
                    },
                ),
                (
                    "hv2".to_string(),
                    OwnerRecord {
                        instance: "c2".into(),
                        generation: 9,
                        lease: 43,
                    },
                ),
            ]
            .into_iter()
            .collect(),
            lease: Some(42),
            ..Default::default()
        }
    }

    #[test]
    fn owner_only_of_its_records_and_only_while_its_lease_holds() {
        let now = Instant::now();
        let v = view(now + Duration::from_secs(1));
        assert_eq!(
            role_in(&v, "c1", "hv1", now),
            Role::Owner {
                generation: Some(7)
            }
        );
        assert_eq!(
            role_in(&v, "c1", "hv2", now),
            Role::Standby {
                generation: Some(9)
            }
        );
        assert_eq!(
            role_in(&v, "c1", "hv3", now),
            Role::Standby { generation: None }
        );
        // Past the local deadline: demoted, though the record still names it.
        assert_eq!(
            role_in(&v, "c1", "hv1", now + Duration::from_secs(2)),
            Role::Standby {
                generation: Some(7)
            }
        );
        // A record left from an earlier lease of the same name is not ownership.
        let mut old = view(now + Duration::from_secs(1));
        old.lease = Some(99);
        assert!(!role_in(&old, "c1", "hv1", now).is_owner());
    }

    #[test]
    fn single_instance_owns_everything_without_generation() {
        let o = Ownership::single("solo");
        assert_eq!(o.role("any"), Role::Owner { generation: None });
        assert_eq!(o.owner_of("any").as_deref(), Some("solo"));
    }
}
