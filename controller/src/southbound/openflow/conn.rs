//! The driver of one switch connection: [`Conn`] owns the socket, its framing and the
//! sans-IO [`Session`], sends what the session queued ([`Conn::flush`], bounded by the
//! write-stall timeout) and pumps the socket and the clock into session events
//! ([`Conn::next_event`]: echoes, keepalive, probes); [`ConnError`] says why a connection
//! ended.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::{Sink, SinkExt, StreamExt};
use openflow::codec::CodecError;
use openflow::session::{CloseReason, Session, SessionEvent};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::codec::{Frame, LenientCodec, Noise};
use crate::tls::Transport;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConnError {
    #[error("{0}")]
    Closed(CloseReason),
    #[error("connection closed by the switch")]
    Eof,
    #[error("{0}")]
    Codec(#[from] CodecError),
    #[error("timed out waiting for the switch ({0})")]
    Timeout(&'static str),
    #[error("write to the switch made no progress for {0:?}: it is not reading")]
    WriteStalled(Duration),
    #[error(
        "undecodable message (type {msg_type}, xid {xid:#x}) before the handshake finished: {error}"
    )]
    Undecodable {
        msg_type: u8,
        xid: u32,
        error: openflow::Error,
    },
    #[error("the switch's flow dump does not decode: {0}")]
    BadDump(openflow::Error),
    #[error("shutting down")]
    Shutdown,
}

/// A connection's read or write buffer larger than this is freed once empty.
const SHRINK_BUFFER_ABOVE: usize = 64 * 1024;

/// A socket plus its session.
pub(super) struct Conn {
    pub(super) framed: Framed<Box<dyn Transport>, LenientCodec>,
    pub(super) session: Session,
    pub(super) label: String,
    pub(super) shutdown: CancellationToken,
    pub(super) write_stall_timeout: Duration,
    /// Since when the current flush has made no progress. Kept here, not in the flush
    /// future, so a select that drops a pending flush (a log tick, a topology change)
    /// does not restart the stall check of a switch that never reads.
    pub(super) stalled_since: Option<tokio::time::Instant>,
    /// Another connection claimed this one's datapath: prove the switch is alive.
    pub(super) probe: Arc<tokio::sync::Notify>,
    pub(super) noise: Noise,
    pub(super) noise_log_interval: Duration,
}

impl Conn {
    /// Sends everything the session queued. Cancel-safe: a message leaves the session
    /// only once the codec has room for it, so a flush cut short by a select loses
    /// nothing and the next one resumes.
    async fn flush(&mut self) -> Result<(), ConnError> {
        // Also when only the codec's buffer holds bytes (a flush cut short by a select).
        if !self.session.has_output() && self.framed.write_buffer().is_empty() {
            return Ok(());
        }
        // A switch that stops reading must not hold this task (or its memory) forever:
        // each step (room in the codec's buffer, the final flush) must progress in time.
        let stall = self.write_stall_timeout;
        while self.session.has_output() {
            let deadline = *self
                .stalled_since
                .get_or_insert_with(tokio::time::Instant::now)
                + stall;
            let framed = &mut self.framed;
            tokio::time::timeout_at(
                deadline,
                std::future::poll_fn(|cx| std::pin::Pin::new(&mut *framed).poll_ready(cx)),
            )
            .await
            .map_err(|_| ConnError::WriteStalled(stall))??;
            if let Some(m) = self.session.poll_output() {
                std::pin::Pin::new(&mut self.framed).start_send(m)?;
                self.stalled_since = Some(tokio::time::Instant::now());
            }
        }
        let deadline = *self
            .stalled_since
            .get_or_insert_with(tokio::time::Instant::now)
            + stall;
        tokio::time::timeout_at(deadline, self.framed.flush())
            .await
            .map_err(|_| ConnError::WriteStalled(stall))??;
        self.stalled_since = None;
        // An install of thousands of flow mods grows the codec's buffer to the size of
        // the whole bundle, and a BytesMut keeps its capacity: at thousands of switches
        // that is gigabytes held between installs. Give it back once sent.
        if self.framed.write_buffer().is_empty()
            && self.framed.write_buffer().capacity() > SHRINK_BUFFER_ABOVE
        {
            *self.framed.write_buffer_mut() = BytesMut::new();
        }
        Ok(())
    }

    /// The next session event, pumping the socket and the clock. Cancel-safe between
    /// events: a message read is always handed to the session first.
    pub(super) async fn next_event(&mut self) -> Result<SessionEvent, ConnError> {
        loop {
            if let Some(ev) = self.session.poll_event() {
                if let SessionEvent::Closed(reason) = ev {
                    // Best effort: the HELLO_FAILED error and the like.
                    let _ = self.flush().await;
                    return Err(ConnError::Closed(reason));
                }
                return Ok(ev);
            }
            self.flush().await?;
            let deadline = self
                .session
                .next_timeout()
                .map(tokio::time::Instant::from_std);
            // Likewise for a flow dump's multipart replies, once all of it was decoded.
            if self.framed.read_buffer().is_empty()
                && self.framed.read_buffer().capacity() > SHRINK_BUFFER_ABOVE
            {
                *self.framed.read_buffer_mut() = BytesMut::new();
            }
            // Biased, the socket before the clock: after this task waited for a busy
            // runtime, the switch's echo replies are in the socket while the echo
            // deadline has passed too; an unbiased select picks the timer half the time
            // and counts replies that did arrive as missed. The clock is still advanced
            // after every frame, so a switch that keeps sending cannot hold it off.
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Err(ConnError::Shutdown),
                frame = self.framed.next() => match frame {
                    Some(Ok(Frame::Message(m))) => self.session.handle_input(m),
                    Some(Ok(Frame::PacketIn)) => {
                        self.noise.packet_ins += 1;
                        self.noise.report(&self.label, self.noise_log_interval, false);
                    }
                    Some(Ok(Frame::Undecodable { msg_type, xid, error })) => {
                        // Before the handshake a peer that sends what we cannot read is
                        // not an OpenFlow 1.3 switch; after it, skip (OVS may send
                        // extensions we do not model) but count.
                        if !self.session.is_ready() {
                            return Err(ConnError::Undecodable { msg_type, xid, error });
                        }
                        tracing::debug!(switch = %self.label, msg_type, xid, %error, "undecodable message from switch; skipped");
                        self.noise.undecodable += 1;
                        self.noise.report(&self.label, self.noise_log_interval, false);
                    }
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err(ConnError::Eof),
                },
                _ = self.probe.notified() => {
                    tracing::info!(switch = %self.label, "another connection claims this datapath id; probing this one");
                    self.session.probe(std::time::Instant::now(), super::association::CLAIM_PROBE);
                }
                _ = sleep_until_opt(deadline) => {}
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                self.session.handle_timeout(std::time::Instant::now());
            }
        }
    }
}

pub(super) async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

pub(super) async fn handshake(conn: &mut Conn) -> Result<u64, ConnError> {
    loop {
        if let SessionEvent::Ready(f) = conn.next_event().await? {
            return Ok(f.datapath_id);
        }
    }
}

/// Keeps the session alive for `d`.
pub(super) async fn pump_for(conn: &mut Conn, d: Duration) -> Result<(), ConnError> {
    let until = tokio::time::Instant::now() + d;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return Ok(()),
            ev = conn.next_event() => { ev?; }
        }
    }
}
