//! `node_owner_changed` events: the task that compares each published cluster view with
//! the previous one and announces every hypervisor whose owner or generation changed.

use std::sync::Arc;

use imbl::ordmap::DiffItem;

use tokio_util::sync::CancellationToken;

use super::Ownership;
use crate::events::Event;
use crate::observed::ObservedState;

/// Runs until `stop`; in single-instance mode the view never changes and nothing is sent.
pub async fn announce(ownership: Ownership, observed: Arc<ObservedState>, stop: CancellationToken) {
    let mut rx = ownership.watch();
    let mut last = rx.borrow_and_update().owners.clone();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = rx.changed() => if r.is_err() { return },
        }
        let now = rx.borrow_and_update().owners.clone();
        // Consecutive views share the records that did not change: the diff skips them.
        for change in last.diff(&now) {
            let (node, record) = match change {
                DiffItem::Add(node, r) => (node, Some(r)),
                DiffItem::Update { old, new } if old.1 != new.1 => (new.0, Some(new.1)),
                DiffItem::Update { .. } => continue,
                DiffItem::Remove(node, _) => (node, None),
            };
            observed.notify(Event::NodeOwnerChanged {
                node: node.clone(),
                owner: record.map(|r| r.instance.clone()),
                generation: record.map(|r| r.generation),
            });
        }
        last = now;
    }
}
