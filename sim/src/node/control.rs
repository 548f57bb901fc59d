//! The levers on a running node ([`NodeControl`]) and [`spawn`], which starts its OVSDB
//! tasks (one per manager) and OpenFlow task; [`backoff_sleep`] is the reconnect delay
//! they share. Database changes reach every OVSDB connection's monitors through one
//! broadcast ([`Published`]), as ovsdb-server notifies every client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::openflow_session::openflow_task;
use super::ovsdb_session::ovsdb_task;
use super::{Node, NodeState, SimSettings};
use crate::db::RowChange;

/// Committed row changes, for the monitors of every OVSDB connection but `origin`'s (which
/// reported them itself, before its transaction's reply). `seq` orders them against
/// monitor registrations: a monitor registered at or after `seq` already holds them.
#[derive(Debug, Clone)]
pub(super) struct Published {
    pub seq: u64,
    /// The OVSDB session that made them; 0 for the simulator itself (new VIFs).
    pub origin: u64,
    pub changes: Arc<Vec<RowChange>>,
}

/// Changes a slow connection may fall behind by before it is dropped (and re-monitors);
/// the channel allocates this many slots per node up front.
const PUBLISHED_BACKLOG: usize = 256;

/// Levers the bench pulls on a running node.
#[derive(Debug, Clone)]
pub struct NodeControl {
    /// Bumped to make the node drop all its connections and reconnect at once.
    pub reconnect: watch::Sender<u64>,
    pub(super) published: broadcast::Sender<Published>,
}

impl NodeControl {
    /// Reports `changes` to every connection but `origin`'s; called with the node locked,
    /// so that sequence numbers follow the order the database changed in.
    pub(super) fn publish(&self, st: &mut NodeState, origin: u64, changes: Vec<RowChange>) {
        if changes.is_empty() {
            return;
        }
        st.change_seq += 1;
        let _ = self.published.send(Published {
            seq: st.change_seq,
            origin,
            changes: Arc::new(changes),
        });
    }

    pub fn reconnect_now(&self) {
        self.reconnect.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Starts the node's OVSDB tasks (one per manager in `settings`) and its OpenFlow task. A
/// `stalled` switch completes the OpenFlow handshake and then never reads its socket
/// again (a slow or wedged switch).
pub fn spawn(
    node: &Node,
    settings: Arc<SimSettings>,
    schema_json: Arc<Value>,
    stalled: bool,
    shutdown: CancellationToken,
) -> NodeControl {
    let (reconnect, _) = watch::channel(0u64);
    let (published, _) = broadcast::channel(PUBLISHED_BACKLOG);
    let ctl = NodeControl {
        reconnect,
        published,
    };
    let (target_tx, target_rx) = watch::channel(Vec::<SocketAddr>::new());
    let target_tx = Arc::new(target_tx);
    for (i, manager) in settings.managers.iter().enumerate() {
        tokio::spawn(ovsdb_task(
            node.clone(),
            *manager,
            i as u64 + 1,
            settings.clone(),
            schema_json.clone(),
            ctl.clone(),
            target_tx.clone(),
            shutdown.clone(),
        ));
    }
    tokio::spawn(openflow_task(
        node.clone(),
        settings,
        ctl.reconnect.clone(),
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
