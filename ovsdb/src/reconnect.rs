//! A reconnecting session for a target the client dials itself (e.g. `tcp:IP:PORT`).
//!
//! One task connects with exponential backoff and jitter, fetches the schema, starts the
//! monitor (`monitor_cond`, falling back to `monitor`), and keeps a [`Replica`] current.
//! After a reconnect the replica is reset from the fresh monitor reply and the difference
//! is reported, so consumers see rows that changed or vanished while the link was down.
//! Connections that the server opens to us (`set-manager`) are not reconnected by us: the
//! server redials, and each accepted connection is a new [`Client`].

use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::client::{Client, ClientConfig, ClientError, DisconnectReason, Event, connect};
use crate::monitor::{ChangeSet, MonitorRequest, Replica, ReplicaError};

/// Tunables of the reconnect loop.
#[derive(Debug, Clone)]
pub struct ReconnectConfig {
    pub client: ClientConfig,
    /// First retry delay; doubles after each failure up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Capacity of the session event channel.
    pub event_capacity: usize,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            client: ClientConfig::default(),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            event_capacity: 1024,
        }
    }
}

/// What the session reports, in order.
#[derive(Debug)]
pub enum SessionEvent {
    /// Connected and monitoring; `changes` is the difference between the replica before
    /// (empty on the first connection) and the server's current state.
    Connected { changes: ChangeSet },
    /// An update was applied to the replica.
    Changes(ChangeSet),
    /// A lock or other notification from the server.
    Notification(Event),
    /// The connection failed or ended; the next attempt follows after `retry_in`.
    Disconnected { error: String, retry_in: Duration },
    /// An update could not be applied: the replica may be stale, so the session drops the
    /// connection and resynchronises on the next one.
    ReplicaError(ReplicaError),
}

/// Handle to a reconnecting session. Dropping it stops the session.
#[derive(Debug)]
pub struct ReconnectingClient {
    current: watch::Receiver<Option<Client>>,
    replica: Arc<RwLock<Option<Replica>>>,
    task: JoinHandle<()>,
}

impl Drop for ReconnectingClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ReconnectingClient {
    /// Starts the session for `target` (`tcp:` or `unix:`), monitoring `requests` in
    /// `database`.
    pub fn spawn(
        target: &str,
        database: &str,
        requests: Vec<MonitorRequest>,
        config: ReconnectConfig,
    ) -> Result<(ReconnectingClient, mpsc::Receiver<SessionEvent>), ClientError> {
        crate::client::Target::parse(target)?;
        let (cur_tx, cur_rx) = watch::channel(None);
        let (ev_tx, ev_rx) = mpsc::channel(config.event_capacity.max(1));
        let replica = Arc::new(RwLock::new(None));
        let session = Session {
            target: target.to_owned(),
            database: database.to_owned(),
            requests,
            config,
            current: cur_tx,
            events: ev_tx,
            replica: replica.clone(),
        };
        let task = tokio::spawn(session.run());
        Ok((
            ReconnectingClient {
                current: cur_rx,
                replica,
                task,
            },
            ev_rx,
        ))
    }

    /// The live connection, if any (for transactions).
    pub fn client(&self) -> Option<Client> {
        self.current.borrow().clone()
    }

    /// Waits until a connection is up and monitoring.
    pub async fn connected(&self) -> Result<Client, ClientError> {
        let mut rx = self.current.clone();
        let c = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| ClientError::Disconnected)?;
        c.clone().ok_or(ClientError::Disconnected)
    }

    /// Reads the replica (a consistent snapshot: updates are applied under the lock).
    /// `None` before the first successful connection.
    pub fn with_replica<R>(&self, f: impl FnOnce(&Replica) -> R) -> Option<R> {
        let guard = self.replica.read().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(f)
    }
}

struct Session {
    target: String,
    database: String,
    requests: Vec<MonitorRequest>,
    config: ReconnectConfig,
    current: watch::Sender<Option<Client>>,
    events: mpsc::Sender<SessionEvent>,
    replica: Arc<RwLock<Option<Replica>>>,
}

/// Why one connection ended.
enum End {
    /// `was_up`: the connection got as far as monitoring, which resets the backoff.
    Failed { error: String, was_up: bool },
    /// The consumer dropped the event receiver: stop for good.
    Stop,
}

impl Session {
    async fn run(self) {
        let mut backoff = self.config.min_backoff;
        loop {
            let (error, was_up) = match self.once().await {
                End::Stop => return,
                End::Failed { error, was_up } => (error, was_up),
            };
            self.current.send_replace(None);
            if was_up {
                backoff = self.config.min_backoff;
            }
            // Full jitter in [backoff/2, backoff) so that many nodes do not retry in step.
            let retry_in = backoff.mul_f64(rand::random_range(0.5..1.0));
            if self
                .events
                .send(SessionEvent::Disconnected { error, retry_in })
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(retry_in).await;
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
    }

    /// One connection's lifetime.
    async fn once(&self) -> End {
        let fail = |e: &dyn std::fmt::Display, was_up: bool| End::Failed {
            error: e.to_string(),
            was_up,
        };
        let (client, mut events) = match connect(&self.target, self.config.client.clone()).await {
            Ok(c) => c,
            Err(e) => return fail(&e, false),
        };
        let schema = match client.get_schema(&self.database).await {
            Ok(s) => s,
            Err(e) => return fail(&e, false),
        };
        let start = match client
            .monitor_auto(&self.database, json!("weft-replica"), &self.requests)
            .await
        {
            Ok(s) => s,
            Err(e) => return fail(&e, false),
        };
        let tables: Vec<String> = self.requests.iter().map(|r| r.table.clone()).collect();
        let changes = {
            let mut guard = self.replica.write().unwrap_or_else(|p| p.into_inner());
            let replica = guard.get_or_insert_with(|| Replica::new(schema.clone()));
            if replica.schema() != &schema {
                // The database was upgraded: start over with the new schema.
                *replica = Replica::new(schema);
            }
            replica.set_monitored(&self.requests);
            replica.reset(&tables, start.format, &start.initial)
        };
        let changes = match changes {
            Ok(c) => c,
            Err(e) => return fail(&e, false),
        };
        self.current.send_replace(Some(client.clone()));
        if self
            .events
            .send(SessionEvent::Connected { changes })
            .await
            .is_err()
        {
            return End::Stop;
        }
        while let Some(ev) = events.recv().await {
            let out = match ev {
                Event::Update {
                    monitor_id,
                    format,
                    updates,
                } if monitor_id == start.monitor_id => {
                    let applied = {
                        let mut guard = self.replica.write().unwrap_or_else(|p| p.into_inner());
                        match guard.as_mut() {
                            Some(r) => r.apply(format, &updates),
                            None => Ok(ChangeSet::default()),
                        }
                    };
                    match applied {
                        Ok(c) => SessionEvent::Changes(c),
                        Err(e) => {
                            let _ = self
                                .events
                                .send(SessionEvent::ReplicaError(e.clone()))
                                .await;
                            client.close().await;
                            return fail(&e, true);
                        }
                    }
                }
                Event::Disconnected(reason) => {
                    let text = match reason {
                        DisconnectReason::PeerClosed => "peer closed the connection".to_owned(),
                        DisconnectReason::KeepaliveTimeout => "keepalive timeout".to_owned(),
                        DisconnectReason::Closed => "closed".to_owned(),
                        DisconnectReason::Error(e) => e,
                    };
                    return fail(&text, true);
                }
                other => SessionEvent::Notification(other),
            };
            if self.events.send(out).await.is_err() {
                return End::Stop;
            }
        }
        fail(&"event channel closed", true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nobody listens: every attempt fails at once, and the advertised delays grow
    /// exponentially (with jitter in [d/2, d)) up to the maximum.
    #[tokio::test]
    async fn backoff_grows_to_the_maximum() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = ReconnectConfig {
            min_backoff: Duration::from_millis(4),
            max_backoff: Duration::from_millis(32),
            ..ReconnectConfig::default()
        };
        let (session, mut events) = ReconnectingClient::spawn(
            &format!("tcp:127.0.0.1:{port}"),
            "Open_vSwitch",
            vec![MonitorRequest::table("Bridge")],
            config,
        )
        .unwrap();
        let mut delays = Vec::new();
        while delays.len() < 7 {
            match events.recv().await.unwrap() {
                SessionEvent::Disconnected { retry_in, error } => {
                    assert!(error.contains("onnect"), "{error}");
                    delays.push(retry_in);
                }
                other => panic!("{other:?}"),
            }
        }
        let ms = |d: &Duration| d.as_secs_f64() * 1e3;
        for (i, d) in delays.iter().enumerate() {
            let cap = (4u64 << i).min(32) as f64;
            assert!(
                ms(d) >= cap / 2.0 - 0.01 && ms(d) < cap,
                "attempt {i}: {d:?}"
            );
        }
        assert!(session.client().is_none());
        assert!(session.with_replica(|_| ()).is_none());
        assert!(
            ReconnectingClient::spawn("ssl:x", "db", vec![], ReconnectConfig::default()).is_err()
        );
    }
}
