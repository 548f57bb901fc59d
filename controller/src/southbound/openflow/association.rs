//! Which node a switch serves: [`associate`] waits until an OVSDB session reports the
//! bridge with the switch's datapath id, and [`claim`] makes the connection the one
//! [`Holder`] of that node, never taking it from a live connection (a duplicate or
//! impersonating switch waits, probing the holder). [`set_connected`] reports the switch's
//! OpenFlow connection in the observed state.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::observed::{ObservedState, TransportNode};

use super::Ctx;
use super::conn::{Conn, ConnError};

/// How long a connection whose datapath id another connection claims has to answer an
/// echo. A live vswitchd answers in milliseconds, a busy one within a second or two; one
/// that restarted left its old connection half-open (its FIN could not cross the
/// userspace bridge that carried it), and the new one waits this long to take over. It
/// is shorter than the idle echo interval, which sets only how soon an idle switch that
/// died silently is noticed.
pub(super) const CLAIM_PROBE: Duration = Duration::from_secs(5);

/// The connection that serves a node.
#[derive(Debug, Clone)]
pub(super) struct Holder {
    pub(super) id: u64,
    pub(super) peer: SocketAddr,
    /// Asks that connection to prove it is alive ([`Session::probe`](openflow::session::Session::probe)).
    pub(super) probe: Arc<tokio::sync::Notify>,
}

impl Ctx {
    pub(super) fn current_conns(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Holder>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Makes this connection the one serving `node`. While another connection serves it,
/// that one is asked to prove it is alive ([`Session::probe`](openflow::session::Session::probe)) and this one waits,
/// keeping its own session alive: a switch presenting a datapath id that a live
/// connection already holds (an impersonator, a duplicate, or the real switch whose old
/// connection is not yet known dead) never takes the node's flows away from it. If the
/// holder fails the probe or ends, the waiter takes over within a probe interval.
pub(super) async fn claim(
    conn: &mut Conn,
    ctx: &Ctx,
    node: &str,
    id: u64,
    peer: SocketAddr,
) -> Result<(), ConnError> {
    let recheck = CLAIM_PROBE;
    let mut warned = false;
    loop {
        let released = ctx.released.notified();
        let holder = {
            let mut cur = ctx.current_conns();
            match cur.get(node) {
                Some(h) => h.clone(),
                None => {
                    cur.insert(
                        node.to_string(),
                        Holder {
                            id,
                            peer,
                            probe: conn.probe.clone(),
                        },
                    );
                    return Ok(());
                }
            }
        };
        if !warned {
            tracing::warn!(%peer, %node, holder = %holder.peer, holder_conn = holder.id,
                "this switch presents the datapath id of a node that a live connection already serves; \
                 probing that connection, this one waits and takes over only if it ends (duplicate or impersonating switch?)");
            warned = true;
        }
        holder.probe.notify_one();
        tokio::select! {
            _ = released => {}
            _ = tokio::time::sleep(recheck) => {}
            ev = conn.next_event() => { ev?; }
        }
    }
}

/// Waits until an OVSDB session reports the bridge with this datapath id.
pub(super) async fn associate(conn: &mut Conn, dpid: u64, ctx: &Ctx) -> Result<String, ConnError> {
    let mut topo = ctx.topology.watch();
    let mut waited = Duration::ZERO;
    loop {
        if let Some(node) = ctx.topology.node_by_datapath(dpid) {
            return Ok(node);
        }
        let step = ctx.settings.association_log_interval;
        tokio::select! {
            r = topo.changed() => if r.is_err() { return Err(ConnError::Shutdown) },
            ev = conn.next_event() => { ev?; }
            _ = tokio::time::sleep(step) => {
                waited += step;
                tracing::warn!(switch = %conn.label, dpid = %format_args!("{dpid:016x}"), ?waited,
                    "no OVSDB session has reported a bridge with this datapath id yet; still waiting");
            }
        }
    }
}

pub(super) fn set_connected(observed: &ObservedState, node: &str, dpid: u64, up: bool) {
    let mut n = observed.node(node).unwrap_or_else(|| TransportNode {
        id: node.to_string(),
        ..Default::default()
    });
    n.openflow_connected = up;
    if up {
        n.datapath_id = Some(dpid);
    }
    observed.upsert_node(n);
}
