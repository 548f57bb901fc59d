//! The node's OVSDB tasks, one per manager: each dials its weftd's manager port,
//! reconnects with backoff, and serves each connection as ovsdb-server would (monitors,
//! transactions, echo probes), running the vswitchd pass after every transaction that
//! changed something and reporting the changes to the other connections' monitors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ovsdb::{JsonCodec, Message};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, watch};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::control::{Published, backoff_sleep};
use super::{Node, NodeControl, SimSettings};

/// br-int's Controller targets, shared by the node's OVSDB tasks (any of them may change
/// them) with its OpenFlow task.
type Targets = Arc<watch::Sender<Vec<SocketAddr>>>;

/// Updates the targets from the database; called with the node locked.
fn refresh_targets(st: &super::NodeState, targets: &Targets) {
    targets.send_if_modified(|t| {
        let new = st.controller_targets();
        let changed = *t != new;
        *t = new;
        changed
    });
}

/// Largest JSON-RPC message accepted from weftd.
const MAX_OVSDB_FRAME: usize = 64 << 20;

/// Serves the connections to `manager`; `session` names them in the database's monitors
/// and in [`Published`] changes (distinct per manager, never 0).
// Each argument is one collaborator of the reconnect loop, owned by it.
#[allow(clippy::too_many_arguments)]
pub(super) async fn ovsdb_task(
    node: Node,
    manager: SocketAddr,
    session: u64,
    settings: Arc<SimSettings>,
    schema_json: Arc<Value>,
    ctl: NodeControl,
    target_tx: Targets,
    shutdown: CancellationToken,
) {
    let mut reconnect_rx = ctl.reconnect.subscribe();
    let mut backoff = settings.reconnect_min;
    let id = node.lock().spec.system_id.clone();
    loop {
        tracing::debug!(node = %id, "OVSDB connecting");
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            s = TcpStream::connect(manager) => s,
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(node = %id, error = %e, "OVSDB connect failed");
                if !backoff_sleep(&mut backoff, settings.reconnect_max, &shutdown).await {
                    return;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tracing::debug!(node = %id, local = ?stream.local_addr().ok(), "OVSDB connected");
        backoff = settings.reconnect_min;
        let published = ctl.published.subscribe();
        {
            let mut st = node.lock();
            st.counters.ovsdb_connects += 1;
            st.ovsdb_sessions.insert(session);
            st.ovsdb_up = true;
            st.db.clear_monitors_of(session);
            refresh_targets(&st, &target_tx);
        }
        reconnect_rx.borrow_and_update();
        let conn = Connection {
            node: &node,
            session,
            schema_json: &schema_json,
            ctl: &ctl,
            target_tx: &target_tx,
            probe: settings.echo_interval,
            shutdown: &shutdown,
        };
        let end = conn.serve(stream, &mut reconnect_rx, published).await;
        {
            let mut st = node.lock();
            st.ovsdb_sessions.remove(&session);
            st.ovsdb_up = !st.ovsdb_sessions.is_empty();
            st.db.clear_monitors_of(session);
        }
        tracing::debug!(node = %id, reason = %end, "OVSDB connection ended");
        if shutdown.is_cancelled() {
            return;
        }
        if end != "reconnect requested" {
            tracing::debug!(node = %id, backoff = ?backoff, "OVSDB reconnect after backoff");
        }
        if end != "reconnect requested"
            && !backoff_sleep(&mut backoff, settings.reconnect_max, &shutdown).await
        {
            return;
        }
    }
}

/// One OVSDB connection's collaborators, borrowed from the reconnect loop that outlives it.
struct Connection<'a> {
    node: &'a Node,
    session: u64,
    schema_json: &'a Value,
    ctl: &'a NodeControl,
    target_tx: &'a Targets,
    probe: Duration,
    shutdown: &'a CancellationToken,
}

impl Connection<'_> {
    /// Serves one OVSDB connection until it ends; returns why.
    async fn serve(
        &self,
        stream: TcpStream,
        reconnect_rx: &mut watch::Receiver<u64>,
        mut published: broadcast::Receiver<Published>,
    ) -> String {
        let Connection {
            node,
            session,
            schema_json,
            ctl,
            target_tx,
            probe,
            shutdown,
        } = *self;
        let mut framed = Framed::new(stream, JsonCodec::new(MAX_OVSDB_FRAME));
        // ovsdb-server probes an idle manager connection (inactivity_probe) and drops it when
        // the probe goes unanswered. Without this, a connection the controller never
        // accepted (its listen backlog overflowed, so only the client side is established)
        // would wait for requests forever.
        let mut last_rx = tokio::time::Instant::now();
        let mut probed = false;
        loop {
            let deadline = last_rx + probe * if probed { 2 } else { 1 };
            // Biased, weftd's messages before the probe timer, as ovsdb-server's poll loop
            // reads its input before it runs its timers: after this task was not polled for
            // a while (a loaded machine), both are ready, and an unbiased select would
            // often drop a controller whose answer is already waiting in the socket. At
            // 3,000 hypervisors on three instances that reset hundreds of live connections
            // at once and the reconnects fed on themselves.
            let msg = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return "shutdown".into(),
                _ = reconnect_rx.changed() => return "reconnect requested".into(),
                m = framed.next() => m,
                _ = tokio::time::sleep_until(deadline) => {
                    if probed {
                        return "controller did not answer an echo request".into();
                    }
                    probed = true;
                    let echo = Message::Request { id: json!("echo"), method: "echo".into(), params: json!([]) };
                    if framed.send(echo).await.is_err() {
                        return "write failed".into();
                    }
                    continue;
                }
                p = published.recv() => {
                    let p = match p {
                        Ok(p) => p,
                        // Behind by more than the backlog: start over with fresh monitors.
                        Err(broadcast::error::RecvError::Lagged(_)) => return "fell behind the database's changes".into(),
                        Err(broadcast::error::RecvError::Closed) => return "shutdown".into(),
                    };
                    if p.origin == session {
                        continue;
                    }
                    let notes = node.lock().db.notifications_for(session, p.seq, &p.changes);
                    for (method, params) in notes {
                        if framed.feed(Message::Notification { method: method.into(), params }).await.is_err() {
                            return "write failed".into();
                        }
                    }
                    if SinkExt::<Message>::flush(&mut framed).await.is_err() {
                        return "write failed".into();
                    }
                    continue;
                }
            };
            let msg = match msg {
                None => return "closed by weftd".into(),
                Some(Err(e)) => return format!("read error: {e}"),
                Some(Ok(m)) => m,
            };
            last_rx = tokio::time::Instant::now();
            probed = false;
            let Message::Request { id, method, params } = msg else {
                // Responses to nothing we asked, notifications: ignore.
                continue;
            };
            // Real ovsdb-server (checked with 3.1) sends a transaction's update notification
            // before the transact reply; ovs-vswitchd's follow-up changes come after it.
            let mut before: Vec<Message> = Vec::new();
            let mut out: Vec<Message> = Vec::new();
            let result: Result<Value, Value> = match method.as_str() {
                "echo" => Ok(params),
                "list_dbs" => Ok(json!(["Open_vSwitch"])),
                "get_schema" => Ok(schema_json.clone()),
                "set_db_change_aware" => Ok(json!({})),
                "lock" | "steal" => Ok(json!({"locked": true})),
                "unlock" => Ok(json!({})),
                "monitor" | "monitor_cond" => {
                    let mut st = node.lock();
                    let seq = st.change_seq;
                    st.db
                        .monitor_in(session, seq, &params, method == "monitor_cond")
                        .map_err(|e| e.to_json())
                }
                "monitor_cancel" => {
                    let mut st = node.lock();
                    let mid = params.get(0).cloned().unwrap_or(Value::Null);
                    if st.db.monitor_cancel_in(session, &mid) {
                        Ok(json!({}))
                    } else {
                        Err(json!({"error": "unknown monitor"}))
                    }
                }
                "transact" => {
                    let mut st = node.lock();
                    let (reply, changes) = st.db.transact(&params);
                    st.counters.transactions += 1;
                    if changes.is_empty()
                        && reply
                            .as_array()
                            .is_some_and(|r| r.iter().any(|v| v.get("error").is_some()))
                    {
                        st.counters.failed_transactions += 1;
                    }
                    let seq = st.change_seq + 1;
                    for (m, p) in st.db.notifications_for(session, seq, &changes) {
                        before.push(Message::Notification {
                            method: m.into(),
                            params: p,
                        });
                    }
                    let mut notes = Vec::new();
                    if !changes.is_empty() {
                        let more = st.vswitchd_pass();
                        notes.extend(st.db.notifications_for(session, seq, &more));
                        st.port_names = st.ports();
                        refresh_targets(&st, target_tx);
                        let mut all = changes;
                        all.extend(more);
                        ctl.publish(&mut st, session, all);
                    }
                    for (m, p) in notes {
                        out.push(Message::Notification {
                            method: m.into(),
                            params: p,
                        });
                    }
                    Ok(reply)
                }
                other => Err(json!({"error": "unknown method", "details": other})),
            };
            for m in before {
                if framed.feed(m).await.is_err() {
                    return "write failed".into();
                }
            }
            let response = Message::Response {
                id,
                result: result.map_err(|raw| ovsdb::RpcError::from_json(&raw)),
            };
            if framed.feed(response).await.is_err() {
                return "write failed".into();
            }
            for m in out {
                if framed.feed(m).await.is_err() {
                    return "write failed".into();
                }
            }
            if SinkExt::<Message>::flush(&mut framed).await.is_err() {
                return "write failed".into();
            }
        }
    }
}
