//! `node_owner_changed` events: the task that compares each published cluster view with
//! the previous one and announces every hypervisor whose owner or generation changed.

use std::sync::Arc;

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
        for (node, r) in &now {
            if last.get(node) != Some(r) {
                observed.notify(Event::NodeOwnerChanged {
                    node: node.clone(),
                    owner: Some(r.instance.clone()),
                    generation: Some(r.generation),
                });
            }
        }
        for node in last.keys().filter(|n| !now.contains_key(*n)) {
            observed.notify(Event::NodeOwnerChanged {
                node: node.clone(),
                owner: None,
                generation: None,
            });
        }
        last = now;
    }
}
