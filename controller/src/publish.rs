//! [`Publisher`]: the one place a new model snapshot and its config events go out, shared
//! by the writer (its own commits) and, in cluster mode, the store's follower (commits of
//! other instances). A snapshot is only ever replaced by a newer revision, so the two can
//! race without the model going back, and each revision's events are sent once, in order.

use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};

use crate::events::{ChangeOp, Event};
use crate::model::{Change, LogicalModel};

/// Cheap to clone; every clone publishes to the same snapshot and event channels.
#[derive(Clone)]
pub struct Publisher {
    model: Arc<watch::Sender<Arc<LogicalModel>>>,
    events: broadcast::Sender<Event>,
    /// Keeps "compare revision, replace snapshot, send its events" one step.
    order: Arc<Mutex<()>>,
}

impl Publisher {
    pub fn new(model: watch::Sender<Arc<LogicalModel>>, events: broadcast::Sender<Event>) -> Self {
        Publisher {
            model: Arc::new(model),
            events,
            order: Arc::new(Mutex::new(())),
        }
    }

    /// The snapshot published last.
    pub fn current(&self) -> Arc<LogicalModel> {
        self.model.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<LogicalModel>> {
        self.model.subscribe()
    }

    /// Publishes `model` and then `events` if `model` is newer than the current snapshot;
    /// returns whether it did (false: that revision, or a later one, is already out).
    pub fn publish(&self, model: LogicalModel, events: Vec<Event>) -> bool {
        let _order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        let newer = model.revision() > self.model.borrow().revision();
        if newer {
            self.model.send_replace(Arc::new(model));
            for ev in events {
                let _ = self.events.send(ev);
            }
        }
        newer
    }
}

/// The config event for `change`, applied on top of `before` at `revision`.
pub fn change_event(before: &LogicalModel, change: &Change, revision: u64) -> Event {
    let op = if change.is_delete() {
        ChangeOp::Deleted
    } else if exists(before, change) {
        ChangeOp::Updated
    } else {
        ChangeOp::Created
    };
    Event::ConfigChanged {
        kind: change.kind(),
        id: change.id(),
        op,
        revision,
    }
}

fn exists(model: &LogicalModel, change: &Change) -> bool {
    let id = change.id();
    match change {
        Change::PutSwitch(_) => model.switch(&id).is_some(),
        Change::PutPort(_) => model.port(&id).is_some(),
        Change::PutAcl(_) => model.acl(&id).is_some(),
        Change::PutRouter(_) => model.router(&id).is_some(),
        Change::PutRouterPort(_) => model.router_port(&id).is_some(),
        Change::PutRoute(_) => model.route(&id).is_some(),
        Change::PutVtepBinding(_) => model.vtep_binding(&id).is_some(),
        Change::DeleteSwitch { .. }
        | Change::DeletePort { .. }
        | Change::DeleteAcl { .. }
        | Change::DeleteRouter { .. }
        | Change::DeleteRouterPort { .. }
        | Change::DeleteRoute { .. }
        | Change::DeleteVtepBinding { .. } => true,
    }
}
