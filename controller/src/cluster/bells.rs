//! How a new [`ClusterView`] reaches the tasks that serve one hypervisor each.
//!
//! Every instance runs an OVSDB session and an OpenFlow installer per hypervisor, and
//! each of them only cares whether its own node's ownership record changed, or what all
//! of them read (the live instances, this instance's lease). Waking all of them on every
//! new view made a cold start quadratic: 3,000 hypervisors claimed one by one woke
//! 6,000 tasks 3,000 times over in each instance. So the view goes out on one channel,
//! as before, and the publisher then rings a bell per hypervisor whose record changed,
//! or the one bell every reader hears when a shared part changed
//! ([`ViewSender::publish`]). Readers wait on [`NodeWatch`] and read the view itself
//! from the channel: a bell is rung only after the view it announces is sent, so a
//! reader that subscribed before reading never misses a change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::ClusterView;

/// A bell per hypervisor that has a listener, and one for all.
#[derive(Debug)]
pub struct Bells {
    nodes: Mutex<HashMap<String, watch::Sender<u64>>>,
    all: watch::Sender<u64>,
    /// The publisher is gone (the cluster tasks ended): no view will come again.
    closed: AtomicBool,
}

impl Default for Bells {
    fn default() -> Self {
        Bells {
            nodes: Mutex::default(),
            all: watch::Sender::new(0),
            closed: AtomicBool::new(false),
        }
    }
}

impl Bells {
    fn nodes(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn subscribe(&self, node: &str) -> watch::Receiver<u64> {
        self.nodes()
            .entry(node.to_owned())
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe()
    }

    fn ring<'a>(&self, nodes: impl Iterator<Item = &'a str>) {
        let mut map = self.nodes();
        for node in nodes {
            let Some(bell) = map.get(node) else { continue };
            if bell.receiver_count() == 0 {
                // Its session ended: nobody will listen to this bell again.
                map.remove(node);
            } else {
                bell.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    fn ring_all(&self) {
        self.all.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The publishing side of the view (the claims task holds it).
#[derive(Debug)]
pub struct ViewSender {
    tx: watch::Sender<Arc<ClusterView>>,
    bells: Arc<Bells>,
}

impl ViewSender {
    pub fn new(tx: watch::Sender<Arc<ClusterView>>, bells: Arc<Bells>) -> Self {
        ViewSender { tx, bells }
    }

    pub fn current(&self) -> Arc<ClusterView> {
        self.tx.borrow().clone()
    }

    /// A reader of this view, with its bells.
    pub fn ownership(&self, instance: &str) -> super::Ownership {
        super::Ownership::clustered(instance, self.tx.subscribe(), self.bells.clone())
    }

    /// Sends `view` if it differs from the current one, then rings the bells of the
    /// hypervisors whose record changed, or every bell if a shared part did. Comparing
    /// the records costs nothing for the subtrees the two views share.
    pub fn publish(&self, view: ClusterView) -> bool {
        let old = self.current();
        let shared_changed = old.clustered != view.clustered
            || old.instances != view.instances
            || old.lease != view.lease
            || old.leased != view.leased;
        let changed: Vec<String> = view
            .owners
            .diff(&old.owners)
            .filter_map(|d| {
                use imbl::ordmap::DiffItem;
                match d {
                    DiffItem::Add(k, _) | DiffItem::Remove(k, _) => Some(k.clone()),
                    DiffItem::Update { old, new } => (old.1 != new.1).then(|| new.0.clone()),
                }
            })
            .collect();
        let other_changed = old.revision != view.revision || old.endpoints != view.endpoints;
        if !shared_changed && changed.is_empty() && !other_changed {
            return false;
        }
        self.tx.send_replace(Arc::new(view));
        if shared_changed {
            self.bells.ring_all();
        }
        self.bells.ring(changed.iter().map(String::as_str));
        true
    }
}

impl Drop for ViewSender {
    /// Every reader hears that the view is final, as a closed channel would tell them.
    fn drop(&mut self) {
        self.bells.closed.store(true, Ordering::SeqCst);
        self.bells.ring_all();
    }
}

/// The view's publisher is gone: the cluster tasks ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cluster view is no longer published")]
pub struct Closed;

/// What one hypervisor's task waits on: its own bell and the one for all. Without a
/// node yet (an OVSDB session before it knows its system-id) only the latter.
#[derive(Debug)]
pub struct NodeWatch {
    bells: Option<Arc<Bells>>,
    node: Option<watch::Receiver<u64>>,
    all: Option<watch::Receiver<u64>>,
}

impl NodeWatch {
    /// Never fires: one instance on its own owns everything, always.
    pub fn never() -> Self {
        NodeWatch {
            bells: None,
            node: None,
            all: None,
        }
    }

    pub(super) fn new(bells: Arc<Bells>, node: Option<&str>) -> Self {
        let all = Some(bells.all.subscribe());
        let node = node.map(|n| bells.subscribe(n));
        NodeWatch {
            bells: Some(bells),
            node,
            all,
        }
    }

    /// From now on listens for `node`'s record (the session learnt its system-id).
    pub fn set_node(&mut self, node: &str) {
        if let Some(bells) = &self.bells {
            self.node = Some(bells.subscribe(node));
        }
    }

    /// Returns when the view may have changed for this hypervisor, or that it never
    /// will again. Pending forever in single-instance mode (nothing changes there).
    pub async fn changed(&mut self) -> Result<(), Closed> {
        async fn rung(rx: &mut Option<watch::Receiver<u64>>) {
            // The senders live as long as the bells, which this watch holds.
            let Some(rx) = rx else {
                return std::future::pending().await;
            };
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        if self.closed() {
            return Err(Closed);
        }
        tokio::select! {
            () = rung(&mut self.node) => {}
            () = rung(&mut self.all) => {}
        }
        if self.closed() { Err(Closed) } else { Ok(()) }
    }

    fn closed(&self) -> bool {
        self.bells
            .as_ref()
            .is_some_and(|b| b.closed.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::OwnerRecord;
    use std::time::Duration;

    fn record(instance: &str, generation: u64) -> OwnerRecord {
        OwnerRecord {
            instance: instance.into(),
            generation,
            lease: 1,
        }
    }

    async fn fired(w: &mut NodeWatch) -> bool {
        tokio::time::timeout(Duration::from_millis(50), w.changed())
            .await
            .is_ok()
    }

    /// A publisher and its bells, as `etcd::channel` makes them.
    fn publisher() -> (ViewSender, Arc<Bells>) {
        let bells = Arc::new(Bells::default());
        let (tx, _) = watch::channel(Arc::new(ClusterView::default()));
        (ViewSender::new(tx, bells.clone()), bells)
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_hears_its_own_record_and_shared_changes_only() {
        let (sender, bells) = publisher();
        let mut hv1 = NodeWatch::new(bells.clone(), Some("hv1"));
        let mut hv2 = NodeWatch::new(bells.clone(), Some("hv2"));
        let mut unknown = NodeWatch::new(bells.clone(), None);

        let mut v = (*sender.current()).clone();
        v.owners.insert("hv1".into(), record("c1", 5));
        assert!(sender.publish(v.clone()));
        assert!(fired(&mut hv1).await, "its own record changed");
        assert!(!fired(&mut hv2).await, "another node's record changed");
        assert!(!fired(&mut unknown).await);

        assert!(!sender.publish(v.clone()), "nothing changed");
        assert!(!fired(&mut hv1).await);

        v.owners.insert("hv1".into(), record("c2", 9));
        v.owners.insert("hv2".into(), record("c2", 9));
        sender.publish(v.clone());
        assert!(fired(&mut hv1).await && fired(&mut hv2).await);

        v.leased = true;
        sender.publish(v.clone());
        assert!(fired(&mut hv1).await && fired(&mut hv2).await && fired(&mut unknown).await);

        unknown.set_node("hv3");
        v.owners.remove("hv2");
        v.owners.insert("hv3".into(), record("c1", 11));
        sender.publish(v);
        assert!(fired(&mut unknown).await, "listens to its node once named");
        assert!(fired(&mut hv2).await, "a removed record rings too");
        assert!(!fired(&mut hv1).await);
    }

    #[tokio::test(start_paused = true)]
    async fn readers_hear_that_the_publisher_is_gone() {
        let (sender, bells) = publisher();
        let mut hv1 = NodeWatch::new(bells.clone(), Some("hv1"));
        drop(sender);
        let r = tokio::time::timeout(Duration::from_millis(50), hv1.changed()).await;
        assert_eq!(r, Ok(Err(Closed)));
        assert_eq!(hv1.changed().await, Err(Closed), "and again, at once");
    }

    #[tokio::test(start_paused = true)]
    async fn never_never_fires() {
        assert!(!fired(&mut NodeWatch::never()).await);
    }
}
