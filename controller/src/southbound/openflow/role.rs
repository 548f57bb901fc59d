//! This connection's role towards its switch in cluster mode (DESIGN.md §7): the
//! hypervisor's owner asks for **master** with the generation of its ownership record,
//! every other instance for **slave** (and sends no flow mods). OVS itself refuses a
//! master request whose generation is older than one it has seen, so an instance that
//! lost ownership without knowing it cannot take the switch back, and demotes the
//! previous master to slave when a new one claims it. Without `--etcd` no role request
//! is sent (every connection stays `equal`, as before cluster mode).

use std::time::Duration;

use openflow::session::{SessionEvent, describe_error};
use openflow::{ControllerRole, Message, RoleMsg};

use super::conn::{Conn, ConnError};

/// Sends ROLE_REQUEST `role` with `generation`, then a barrier; whether the switch took
/// it (an ERROR to the request before the barrier's reply: it did not, e.g. a stale
/// generation).
pub(super) async fn request(
    conn: &mut Conn,
    role: ControllerRole,
    generation: u64,
    timeout: Duration,
) -> Result<bool, ConnError> {
    let xid = conn.session.send(Message::RoleRequest(RoleMsg {
        role,
        generation_id: generation,
    }));
    let barrier = conn.session.barrier();
    let label = conn.label.clone();
    let wait = async {
        let mut refused = false;
        loop {
            match conn.next_event().await? {
                SessionEvent::Error { xid: x, error } if x == xid => {
                    tracing::warn!(switch = %label, ?role, generation, error = %describe_error(&error),
                        "switch refused the role request");
                    refused = true;
                }
                SessionEvent::Barrier { xid: x } if x == barrier => return Ok(!refused),
                _ => {}
            }
        }
    };
    tokio::time::timeout(timeout, wait)
        .await
        .map_err(|_| ConnError::Timeout("role request and barrier"))?
}
