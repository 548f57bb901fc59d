//! Waiting on one request of an OVSDB connection (a transaction, a monitor) while its
//! notifications keep coming: both the hypervisor sessions and the hardware VTEP
//! sessions hold them aside and apply them after the reply.

use ovsdb::Event;
use tokio::sync::mpsc;

/// Most notifications a session holds while one request is in flight; past it, the
/// client's own backpressure applies.
pub const HOLD_MAX: usize = 4096;

/// Awaits `call`, moving the notifications that arrive meanwhile into `held` (up to
/// [`HOLD_MAX`]) rather than leaving them in the client's channel: a full channel stops
/// the client reading the socket, and so reading the reply `call` waits for.
pub async fn draining<T>(
    held: &mut Vec<Event>,
    events: &mut mpsc::Receiver<Event>,
    call: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(call);
    loop {
        tokio::select! {
            biased;
            r = &mut call => return r,
            ev = events.recv(), if held.len() < HOLD_MAX => match ev {
                Some(ev) => held.push(ev),
                None => return call.await,
            },
        }
    }
}
