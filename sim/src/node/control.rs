//! The levers on a running node ([`NodeControl`]) and [`spawn`], which starts its OVSDB
//! and OpenFlow tasks; [`backoff_sleep`] is the reconnect delay both tasks share.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::openflow_session::openflow_task;
use super::ovsdb_session::ovsdb_task;
use super::{Node, SimSettings};
use crate::db::RowChange;

/// Levers the bench pulls on a running node.
#[derive(Debug, Clone)]
pub struct NodeControl {
    /// Bumped to make the node drop both connections and reconnect at once.
    pub reconnect: watch::Sender<u64>,
    /// Row changes made outside a transaction (new VIFs) to report to monitors.
    pub(super) pending: Arc<Mutex<Vec<RowChange>>>,
    pub(super) wake: Arc<tokio::sync::Notify>,
}

impl NodeControl {
    pub(super) fn push(&self, changes: Vec<RowChange>) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(changes);
        self.wake.notify_one();
    }

    pub fn reconnect_now(&self) {
        self.reconnect.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Starts the node's OVSDB and OpenFlow tasks. A `stalled` switch completes the OpenFlow
/// handshake and then never reads its socket again (a slow or wedged switch).
pub fn spawn(
    node: &Node,
    settings: Arc<SimSettings>,
    schema_json: Arc<Value>,
    stalled: bool,
    shutdown: CancellationToken,
) -> NodeControl {
    let (reconnect, _) = watch::channel(0u64);
    let ctl = NodeControl {
        reconnect,
        pending: Arc::new(Mutex::new(Vec::new())),
        wake: Arc::new(tokio::sync::Notify::new()),
    };
    let (target_tx, target_rx) = watch::channel(None);
    tokio::spawn(ovsdb_task(
        node.clone(),
        settings.clone(),
        schema_json,
        ctl.clone(),
        target_tx,
        shutdown.clone(),
    ));
    tokio::spawn(openflow_task(
        node.clone(),
        settings,
        ctl.reconnect.subscribe(),
        target_rx,
        stalled,
        shutdown,
    ));
    ctl
}

/// Sleeps `d` (unless shut down first; then false) and doubles it, up to `max`.
pub(super) async fn backoff_sleep(
    d: &mut Duration,
    max: Duration,
    shutdown: &CancellationToken,
) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => return false,
        _ = tokio::time::sleep(*d) => {}
    }
    *d = (*d * 2).min(max);
    true
}
