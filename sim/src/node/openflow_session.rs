//! The node's OpenFlow task: follows br-int's Controller targets and keeps one
//! connection per target (as ovs-vswitchd does for a bridge with several controllers),
//! each dialled, reconnected with backoff and served by its own [`Switch`]; the
//! connections share the bridge's tables and its controller roles.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use openflow::OfpMessage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::control::backoff_sleep;
use super::state::OpenFlowConn;
use super::{Node, SimSettings};
use crate::switch::Switch;

/// Starts and stops one connection task per controller target as the targets change.
pub(super) async fn openflow_task(
    node: Node,
    settings: Arc<SimSettings>,
    reconnect: watch::Sender<u64>,
    mut target_rx: watch::Receiver<Vec<SocketAddr>>,
    stalled: bool,
    shutdown: CancellationToken,
) {
    let mut running: BTreeMap<SocketAddr, CancellationToken> = BTreeMap::new();
    loop {
        let targets: Vec<SocketAddr> = match settings.openflow {
            Some(t) => vec![t],
            None => target_rx.borrow_and_update().clone(),
        };
        running.retain(|t, stop| {
            let keep = targets.contains(t);
            if !keep {
                stop.cancel();
            }
            keep
        });
        for t in targets {
            running.entry(t).or_insert_with(|| {
                let stop = shutdown.child_token();
                tokio::spawn(connection_task(
                    node.clone(),
                    settings.clone(),
                    t,
                    reconnect.subscribe(),
                    stalled,
                    stop.clone(),
                ));
                stop
            });
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = target_rx.changed() => if r.is_err() { return },
        }
    }
}

/// Keeps one connection to `target` until `shutdown` (the target went away, or the node).
async fn connection_task(
    node: Node,
    settings: Arc<SimSettings>,
    target: SocketAddr,
    mut reconnect_rx: watch::Receiver<u64>,
    stalled: bool,
    shutdown: CancellationToken,
) {
    let id = node.lock().spec.system_id.clone();
    let mut backoff = settings.reconnect_min;
    loop {
        tracing::debug!(node = %id, %target, "OpenFlow connecting");
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            s = TcpStream::connect(target) => s,
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(node = %id, %target, error = %e, "OpenFlow connect failed");
                if !backoff_sleep(&mut backoff, settings.reconnect_max, &shutdown).await {
                    return;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tracing::debug!(node = %id, local = ?stream.local_addr().ok(), "OpenFlow connected");
        backoff = settings.reconnect_min;
        node.lock().counters.openflow_connects += 1;
        reconnect_rx.borrow_and_update();
        let end = serve_openflow(
            &node,
            stream,
            target,
            &settings,
            stalled,
            &mut reconnect_rx,
            &shutdown,
        )
        .await;
        tracing::debug!(node = %id, %target, reason = %end, "OpenFlow connection ended");
        if shutdown.is_cancelled() {
            return;
        }
        if end != "reconnect requested" {
            tracing::debug!(node = %id, backoff = ?backoff, "OpenFlow reconnect after backoff");
        }
        if end != "reconnect requested"
            && !backoff_sleep(&mut backoff, settings.reconnect_max, &shutdown).await
        {
            return;
        }
    }
}

async fn serve_openflow(
    node: &Node,
    mut stream: TcpStream,
    target: SocketAddr,
    settings: &SimSettings,
    stalled: bool,
    reconnect_rx: &mut watch::Receiver<u64>,
    shutdown: &CancellationToken,
) -> String {
    let (dpid, ports, roles) = {
        let st = node.lock();
        (st.spec.datapath_id, st.port_names.clone(), st.roles.clone())
    };
    let mut sw = Switch::new(dpid, Instant::now(), settings.echo_interval);
    sw.join_roles(roles);
    sw.ports = ports;
    let state = |sw: &Switch, up: bool| OpenFlowConn {
        up,
        conn: sw.conn_id(),
        stats: sw.stats,
    };
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut wbuf = BytesMut::with_capacity(64 * 1024);
    let end = loop {
        // Flush what the switch wants to say.
        while let Some(m) = sw.poll_output() {
            if let Err(e) = m.encode(&mut wbuf) {
                tracing::warn!(error = %e, "cannot encode a reply");
            }
        }
        if !wbuf.is_empty() {
            if let Err(e) = stream.write_all(&wbuf).await {
                break format!("write error: {e}");
            }
            wbuf.clear();
        }
        if let Some(why) = sw.closed() {
            break why.to_owned();
        }
        node.lock()
            .record_openflow(target, state(&sw, sw.is_ready()));
        if stalled && sw.stats.flow_dumps > 0 {
            // A wedged switch: never read again, keep the socket open.
            tokio::select! {
                _ = shutdown.cancelled() => break "shutdown".into(),
                _ = reconnect_rx.changed() => break "reconnect requested".into(),
            }
        }
        let deadline = tokio::time::Instant::from_std(sw.next_timeout());
        // Biased, the socket before the echo timer (as vswitchd reads before it runs its
        // timers): after a stall both are ready, and the timer must not declare silent a
        // controller whose echo reply is already waiting to be read.
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break "shutdown".into(),
            _ = reconnect_rx.changed() => break "reconnect requested".into(),
            r = stream.read_buf(&mut buf) => match r {
                Ok(0) => break "closed by weftd".into(),
                Err(e) => break format!("read error: {e}"),
                Ok(_) => {
                    let now = Instant::now();
                    let mut st = node.lock();
                    let st = &mut *st;
                    let mut bad = false;
                    while let Some(len) = OfpMessage::peek_len(&buf) {
                        if len < 8 {
                            bad = true;
                            break;
                        }
                        if buf.len() < len {
                            break;
                        }
                        sw.handle_frame(&buf[..len], now, &mut st.tables);
                        buf.advance(len);
                    }
                    if bad {
                        break "bad OpenFlow frame length".into();
                    }
                }
            },
            _ = tokio::time::sleep_until(deadline) => sw.handle_timeout(Instant::now()),
        }
    };
    node.lock().record_openflow(target, state(&sw, false));
    end
}
