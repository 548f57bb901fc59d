//! The JSON-RPC session state machine, without I/O or clocks of its own.
//!
//! It owns request-id allocation, the keepalive (probe an idle peer with `echo`, declare it
//! dead when the probe goes unanswered), answers to the server's `echo`, and the decoding of
//! notifications into [`Event`]s. The caller feeds it received messages and the current
//! time, sends what [`Session::poll_transmit`] returns, and sleeps until
//! [`Session::poll_timeout`]. The tokio actor in [`crate::client`] is a thin loop around it;
//! tests drive it on virtual time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::monitor::{TableUpdates, UpdateFormat};
use crate::rpc::{Message, RpcError};

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The peer closed the stream.
    PeerClosed,
    /// Nothing received for two probe intervals, despite our `echo`.
    KeepaliveTimeout,
    /// Every client handle was dropped or the client was closed.
    Closed,
    /// Framing or I/O error, as text.
    Error(String),
}

/// Something the server said without being asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `update` or `update2` for the monitor `monitor_id`; apply with
    /// [`crate::Replica::apply`]`(format, &updates)`.
    Update {
        monitor_id: Value,
        format: UpdateFormat,
        updates: TableUpdates,
    },
    /// The lock was granted after a `lock` request had to wait.
    Locked { lock: String },
    /// Another client stole the lock.
    Stolen { lock: String },
    /// Any other notification.
    Notification { method: String, params: Value },
    /// The connection is gone; no more events follow.
    Disconnected(DisconnectReason),
}

/// What a received message means to the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// The reply to the caller's request `id`.
    Reply {
        id: u64,
        result: Result<Value, RpcError>,
    },
    /// A notification for the event channel.
    Event(Event),
}

/// Protocol state of one connection.
#[derive(Debug)]
pub struct Session {
    probe_interval: Option<Duration>,
    last_rx: Instant,
    probe_sent: Option<Instant>,
    /// Ids of our keepalive echoes; their replies are consumed here.
    probes: Vec<u64>,
    next_id: u64,
    outbox: VecDeque<Message>,
    /// Counters: server echoes answered, probes sent.
    pub echo_requests_answered: u64,
    pub echo_probes_sent: u64,
}

impl Session {
    /// `probe_interval: None` disables our own probes (server echoes are still answered).
    pub fn new(probe_interval: Option<Duration>, now: Instant) -> Session {
        Session {
            probe_interval,
            last_rx: now,
            probe_sent: None,
            probes: Vec::new(),
            next_id: 0,
            outbox: VecDeque::new(),
            echo_requests_answered: 0,
            echo_probes_sent: 0,
        }
    }

    fn alloc_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Queues a request and returns the id its reply will carry.
    pub fn send_request(&mut self, method: String, params: Value) -> u64 {
        let id = self.alloc_id();
        self.outbox.push_back(Message::Request {
            id: json!(id),
            method,
            params,
        });
        id
    }

    /// The next message to write to the peer.
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.outbox.pop_front()
    }

    /// When [`Session::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let interval = self.probe_interval?;
        Some(match self.probe_sent {
            None => self.last_rx + interval,
            Some(at) => at + interval,
        })
    }

    /// Sends a probe when the peer has been idle for the interval; reports it dead when the
    /// probe itself has gone unanswered for another interval.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), DisconnectReason> {
        let Some(deadline) = self.poll_timeout() else {
            return Ok(());
        };
        if now < deadline {
            return Ok(());
        }
        if self.probe_sent.is_some() {
            return Err(DisconnectReason::KeepaliveTimeout);
        }
        let id = self.send_request("echo".into(), json!([]));
        self.probes.push(id);
        self.echo_probes_sent += 1;
        self.probe_sent = Some(now);
        Ok(())
    }

    /// Handles one received message. Any traffic proves the peer alive.
    pub fn handle_message(&mut self, msg: Message, now: Instant) -> Option<Delivery> {
        self.last_rx = now;
        self.probe_sent = None;
        match msg {
            Message::Request { id, method, params } => {
                let result = if method == "echo" {
                    self.echo_requests_answered += 1;
                    Ok(params)
                } else {
                    Err(RpcError::from_json(&json!("unknown method")))
                };
                self.outbox.push_back(Message::Response { id, result });
                None
            }
            Message::Response { id, result } => {
                let Some(n) = id.as_u64() else {
                    tracing::warn!(%id, "reply with an id we never sent");
                    return None;
                };
                if let Some(pos) = self.probes.iter().position(|p| *p == n) {
                    self.probes.swap_remove(pos);
                    return None;
                }
                Some(Delivery::Reply { id: n, result })
            }
            Message::Notification { method, params } => {
                Some(Delivery::Event(notification_event(method, params)))
            }
        }
    }
}

/// Decodes a notification. An update's table-updates given as a `Value` are written as
/// text, the form the replica decodes; the client's reader never builds that `Value`: it
/// keeps them as the frame's text and passes a `null` here in their place (see
/// `incoming::parse_frame`), which it then swaps for the text.
fn notification_event(method: String, params: Value) -> Event {
    let format = match method.as_str() {
        "update" => Some(UpdateFormat::Update),
        "update2" => Some(UpdateFormat::Update2),
        _ => None,
    };
    match (method.as_str(), params) {
        (_, Value::Array(a)) if format.is_some() && a.len() == 2 => {
            let mut it = a.into_iter();
            match (it.next(), it.next(), format) {
                (Some(monitor_id), Some(updates), Some(format)) => Event::Update {
                    monitor_id,
                    format,
                    updates: TableUpdates::from_value(&updates),
                },
                // Unreachable given the guard; keep the message rather than panic.
                (a, b, _) => Event::Notification {
                    method,
                    params: Value::Array(a.into_iter().chain(b).collect()),
                },
            }
        }
        ("locked" | "stolen", Value::Array(a))
            if a.len() == 1 && a.first().is_some_and(Value::is_string) =>
        {
            let lock = a
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if method == "locked" {
                Event::Locked { lock }
            } else {
                Event::Stolen { lock }
            }
        }
        (_, params) => Event::Notification { method, params },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(v: Value) -> Message {
        Message::from_json(v).unwrap()
    }

    #[test]
    fn keepalive_on_virtual_time() {
        let t0 = Instant::now();
        let s5 = Duration::from_secs(5);
        let mut s = Session::new(Some(s5), t0);
        assert_eq!(s.poll_timeout(), Some(t0 + s5));
        s.handle_timeout(t0 + Duration::from_secs(1)).unwrap();
        assert!(s.poll_transmit().is_none(), "not idle yet");
        // Idle for the interval: a probe goes out.
        s.handle_timeout(t0 + s5).unwrap();
        let Some(Message::Request { id, method, .. }) = s.poll_transmit() else {
            panic!()
        };
        assert_eq!(method, "echo");
        // Its reply is consumed, and resets the timer.
        let t1 = t0 + Duration::from_secs(6);
        assert_eq!(
            s.handle_message(msg(json!({"id": id, "result": [], "error": null})), t1),
            None
        );
        assert_eq!(s.poll_timeout(), Some(t1 + s5));
        // Another probe, never answered: dead one interval later.
        s.handle_timeout(t1 + s5).unwrap();
        assert!(s.poll_transmit().is_some());
        assert_eq!(
            s.handle_timeout(t1 + s5 + s5),
            Err(DisconnectReason::KeepaliveTimeout)
        );
        assert_eq!(s.echo_probes_sent, 2);
    }

    #[test]
    fn probes_off() {
        let mut s = Session::new(None, Instant::now());
        assert_eq!(s.poll_timeout(), None);
        s.handle_timeout(Instant::now() + Duration::from_secs(3600))
            .unwrap();
        assert!(s.poll_transmit().is_none());
    }

    #[test]
    fn answers_echo_and_rejects_other_requests() {
        let now = Instant::now();
        let mut s = Session::new(None, now);
        assert!(
            s.handle_message(
                msg(json!({"id": "e", "method": "echo", "params": [1]})),
                now
            )
            .is_none()
        );
        assert_eq!(
            s.poll_transmit().unwrap().to_json(),
            json!({"id": "e", "result": [1], "error": null})
        );
        s.handle_message(
            msg(json!({"id": 9, "method": "frobnicate", "params": []})),
            now,
        );
        assert_eq!(
            s.poll_transmit().unwrap().to_json(),
            json!({"id": 9, "result": null, "error": "unknown method"})
        );
        assert_eq!(s.echo_requests_answered, 1);
    }

    #[test]
    fn replies_and_notifications() {
        let now = Instant::now();
        let mut s = Session::new(None, now);
        let id = s.send_request("list_dbs".into(), json!([]));
        assert!(matches!(s.poll_transmit(), Some(Message::Request { .. })));
        assert_eq!(
            s.handle_message(msg(json!({"id": id, "result": ["db"], "error": null})), now),
            Some(Delivery::Reply {
                id,
                result: Ok(json!(["db"]))
            })
        );
        let cases = [
            (
                json!({"id": null, "method": "update2", "params": ["m", {"T": {}}]}),
                Event::Update {
                    monitor_id: json!("m"),
                    format: UpdateFormat::Update2,
                    updates: TableUpdates::from_value(&json!({"T": {}})),
                },
            ),
            (
                json!({"id": null, "method": "update", "params": [null, {}]}),
                Event::Update {
                    monitor_id: Value::Null,
                    format: UpdateFormat::Update,
                    updates: TableUpdates::from_value(&json!({})),
                },
            ),
            (
                json!({"id": null, "method": "locked", "params": ["L"]}),
                Event::Locked { lock: "L".into() },
            ),
            (
                json!({"id": null, "method": "stolen", "params": ["L"]}),
                Event::Stolen { lock: "L".into() },
            ),
            (
                json!({"id": null, "method": "update2", "params": ["m"]}),
                Event::Notification {
                    method: "update2".into(),
                    params: json!(["m"]),
                },
            ),
        ];
        for (m, e) in cases {
            assert_eq!(s.handle_message(msg(m), now), Some(Delivery::Event(e)));
        }
    }
}
