//! The tokio client: one actor task per connection owns the framed stream, matches replies
//! to requests by id, answers the server's `echo` itself, probes an idle peer with its own
//! `echo` and declares it dead when nothing comes back, and delivers notifications in
//! order on a bounded channel. [`Client`] is a cheap, clonable handle to that task.
//!
//! The same client serves a connection it dialled (`connect("tcp:IP:PORT")`) and one it
//! accepted from a hypervisor's ovsdb-server ([`crate::listener::Listener::accept`]): in
//! both cases the peer is the database server.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::codec::Framed;

use crate::codec::{DEFAULT_MAX_FRAME, JsonCodec};
use crate::incoming::{FrameCodec, Pending, parse_frame};
use crate::monitor::TableUpdates;
use crate::monitor::{MonitorRequest, UpdateFormat, monitor_params};
use crate::ops::{Transaction, TransactionError, TransactionOutcome};
use crate::rpc::{Message, RpcError};
use crate::schema::{DatabaseSchema, SchemaError, SharedSchemas};
use crate::session::{Delivery, Session};
pub use crate::session::{DisconnectReason, Event};

/// Tunables of one connection.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// How long a request may wait for its reply.
    pub request_timeout: Duration,
    /// After this long without receiving anything, send an `echo`; if nothing arrives for
    /// as long again, the peer is declared dead. `None` disables our own probes (the
    /// server's echoes are still answered).
    pub inactivity_probe: Option<Duration>,
    /// Maximum size of one received JSON-RPC message.
    pub max_frame: usize,
    /// How long writing what is queued may take. A peer that stops reading (its socket
    /// buffer and ours are full) is disconnected after this instead of blocking the
    /// connection's task, its probes and timeouts forever.
    pub write_timeout: Duration,
    /// Capacity of the notification channel. When it is full the actor stops reading the
    /// socket until the consumer catches up (backpressure, never drops or reorders).
    pub event_capacity: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            request_timeout: Duration::from_secs(60),
            inactivity_probe: Some(Duration::from_secs(5)),
            max_frame: DEFAULT_MAX_FRAME,
            write_timeout: Duration::from_secs(30),
            event_capacity: 1024,
        }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{method}: server returned error: {error}")]
    Rpc { method: String, error: RpcError },
    #[error("{method}: no reply within {after:?}")]
    Timeout { method: String, after: Duration },
    #[error("connection closed")]
    Disconnected,
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("{method}: unexpected reply {reply}")]
    UnexpectedReply { method: String, reply: String },
    #[error("connecting to {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("invalid target {0:?}: expected tcp:IP:PORT or unix:PATH")]
    InvalidTarget(String),
}

/// Counters for tests and diagnostics.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// `echo` requests from the server that we answered.
    pub echo_requests_answered: AtomicU64,
    /// `echo` probes we sent because the peer was idle.
    pub echo_probes_sent: AtomicU64,
    pub messages_received: AtomicU64,
}

enum Command {
    Request {
        method: String,
        params: Value,
        reply: Pending,
    },
    Close,
}

/// A handle to one connection's actor. Clone freely; the connection closes when the last
/// handle is dropped.
#[derive(Clone, Debug)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    config: Arc<ClientConfig>,
    stats: Arc<ClientStats>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Request { method, .. } => write!(f, "Request({method})"),
            Command::Close => write!(f, "Close"),
        }
    }
}

/// The reply to a monitor request, with the format its notifications will use.
#[derive(Debug, Clone)]
pub struct MonitorStart {
    pub monitor_id: Value,
    pub format: UpdateFormat,
    /// The initial table-updates (rows as `initial`, or `new` for plain `monitor`), as
    /// the JSON text received: [`crate::Replica::apply`] decodes it straight into rows.
    pub initial: TableUpdates,
}

/// Where to dial: `tcp:HOST:PORT` or `unix:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tcp(String),
    Unix(PathBuf),
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, ClientError> {
        if let Some(addr) = s.strip_prefix("tcp:") {
            if addr
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            {
                return Ok(Target::Tcp(addr.to_owned()));
            }
        } else if let Some(path) = s.strip_prefix("unix:")
            && !path.is_empty()
        {
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        Err(ClientError::InvalidTarget(s.to_owned()))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(a) => write!(f, "tcp:{a}"),
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Dials `tcp:HOST:PORT` or `unix:PATH` and starts a client on the connection.
pub async fn connect(
    target: &str,
    config: ClientConfig,
) -> Result<(Client, mpsc::Receiver<Event>), ClientError> {
    let t = Target::parse(target)?;
    let err = |source| ClientError::Connect {
        target: target.to_owned(),
        source,
    };
    match t {
        Target::Tcp(addr) => {
            let s = tokio::net::TcpStream::connect(&addr).await.map_err(err)?;
            // Small requests and echo replies must not wait for Nagle.
            s.set_nodelay(true).map_err(err)?;
            Ok(Client::from_stream(s, config))
        }
        Target::Unix(path) => {
            let s = tokio::net::UnixStream::connect(&path).await.map_err(err)?;
            Ok(Client::from_stream(s, config))
        }
    }
}

impl Client {
    /// Starts the actor on any byte stream (dialled, accepted, or in-memory for tests).
    pub fn from_stream<S>(stream: S, config: ClientConfig) -> (Client, mpsc::Receiver<Event>)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::channel(config.event_capacity.max(1));
        let stats = Arc::new(ClientStats::default());
        let framed = Framed::new(stream, FrameCodec(JsonCodec::new(config.max_frame)));
        let actor = Actor {
            framed,
            commands: cmd_rx,
            events: ev_tx,
            session: Session::new(config.inactivity_probe, Instant::now().into_std()),
            stats: stats.clone(),
            pending: HashMap::new(),
            write_timeout: config.write_timeout,
        };
        tokio::spawn(actor.run());
        (
            Client {
                commands: cmd_tx,
                config: Arc::new(config),
                stats,
            },
            ev_rx,
        )
    }

    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// Closes the connection; pending requests fail with [`ClientError::Disconnected`].
    pub async fn close(&self) {
        let _ = self.commands.send(Command::Close).await;
    }

    /// Sends any request and waits for its result.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.call(method, params, Pending::Value(tx), rx).await
    }

    /// Sends a request and waits for its result in the form `reply` asked for.
    async fn call<T>(
        &self,
        method: &str,
        params: Value,
        reply: Pending,
        rx: oneshot::Receiver<Result<T, RpcError>>,
    ) -> Result<T, ClientError> {
        self.commands
            .send(Command::Request {
                method: method.to_owned(),
                params,
                reply,
            })
            .await
            .map_err(|_| ClientError::Disconnected)?;
        let after = self.config.request_timeout;
        match timeout(after, rx).await {
            Err(_) => Err(ClientError::Timeout {
                method: method.to_owned(),
                after,
            }),
            Ok(Err(_)) => Err(ClientError::Disconnected),
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(error))) => Err(ClientError::Rpc {
                method: method.to_owned(),
                error,
            }),
        }
    }

    pub async fn echo(&self) -> Result<(), ClientError> {
        self.request("echo", json!(["weft"])).await.map(|_| ())
    }

    pub async fn list_dbs(&self) -> Result<Vec<String>, ClientError> {
        let v = self.request("list_dbs", json!([])).await?;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .ok_or_else(|| ClientError::UnexpectedReply {
                method: "list_dbs".into(),
                reply: v.to_string(),
            })
    }

    pub async fn get_schema(&self, database: &str) -> Result<DatabaseSchema, ClientError> {
        let v = self.request("get_schema", json!([database])).await?;
        Ok(DatabaseSchema::from_json(&v)?)
    }

    /// [`Client::get_schema`] through `shared`: the reply is kept as text, and a text
    /// `shared` has seen before is not parsed again ([`SharedSchemas::share_text`]).
    pub async fn get_schema_shared(
        &self,
        database: &str,
        shared: &SharedSchemas,
    ) -> Result<Arc<DatabaseSchema>, ClientError> {
        let (tx, rx) = oneshot::channel();
        let text = self
            .call("get_schema", json!([database]), Pending::Text(tx), rx)
            .await?;
        Ok(shared.share_text(text.as_str())?)
    }

    /// Sends the transaction in one `transact`; any failed operation fails the call with
    /// [`TransactionError::OperationFailed`] naming the operation.
    pub async fn transact(&self, txn: &Transaction) -> Result<TransactionOutcome, ClientError> {
        let v = self.request("transact", txn.to_params()).await?;
        Ok(txn.parse_reply(&v)?)
    }

    /// Starts a monitor in the given format; updates arrive as [`Event::Update`].
    pub async fn monitor(
        &self,
        database: &str,
        monitor_id: Value,
        requests: &[MonitorRequest],
        format: UpdateFormat,
    ) -> Result<MonitorStart, ClientError> {
        let params = monitor_params(database, &monitor_id, requests, format);
        let (tx, rx) = oneshot::channel();
        let initial = self
            .call(format.method(), params, Pending::Text(tx), rx)
            .await?;
        Ok(MonitorStart {
            monitor_id,
            format,
            initial,
        })
    }

    /// `monitor_cond`, falling back to `monitor` when the server does not know it
    /// (ovsdb-server before 2.6).
    pub async fn monitor_auto(
        &self,
        database: &str,
        monitor_id: Value,
        requests: &[MonitorRequest],
    ) -> Result<MonitorStart, ClientError> {
        match self
            .monitor(
                database,
                monitor_id.clone(),
                requests,
                UpdateFormat::Update2,
            )
            .await
        {
            Err(ClientError::Rpc { error, .. }) if error.error.contains("unknown method") => {
                self.monitor(database, monitor_id, requests, UpdateFormat::Update)
                    .await
            }
            other => other,
        }
    }

    pub async fn monitor_cancel(&self, monitor_id: Value) -> Result<(), ClientError> {
        self.request("monitor_cancel", json!([monitor_id]))
            .await
            .map(|_| ())
    }

    /// Requests a lock; `Ok(true)` if granted now, `Ok(false)` if an [`Event::Locked`]
    /// will follow when it is.
    pub async fn lock(&self, lock: &str) -> Result<bool, ClientError> {
        self.lock_call("lock", lock).await
    }

    /// Takes the lock from its holder, who gets `stolen`.
    pub async fn steal(&self, lock: &str) -> Result<bool, ClientError> {
        self.lock_call("steal", lock).await
    }

    pub async fn unlock(&self, lock: &str) -> Result<(), ClientError> {
        self.request("unlock", json!([lock])).await.map(|_| ())
    }

    async fn lock_call(&self, method: &str, lock: &str) -> Result<bool, ClientError> {
        let v = self.request(method, json!([lock])).await?;
        v.get("locked")
            .and_then(Value::as_bool)
            .ok_or_else(|| ClientError::UnexpectedReply {
                method: method.to_owned(),
                reply: v.to_string(),
            })
    }
}

struct Actor<S> {
    framed: Framed<S, FrameCodec>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    session: Session,
    stats: Arc<ClientStats>,
    pending: HashMap<u64, Pending>,
    write_timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Actor<S> {
    async fn run(mut self) {
        let reason = self.serve().await;
        // Dropping the reply senders makes every waiting caller see Disconnected.
        self.pending.clear();
        tracing::debug!(?reason, "ovsdb connection ended");
        let _ = self.events.send(Event::Disconnected(reason)).await;
    }

    async fn serve(&mut self) -> DisconnectReason {
        loop {
            if let Err(e) = self.flush().await {
                return e;
            }
            // Far future when probing is off.
            let deadline = self
                .session
                .poll_timeout()
                .map(Instant::from_std)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600));
            // Biased, the socket first: after this task was not polled for a while (a
            // loaded runtime, or a consumer slow to take events), the peer's messages
            // are waiting while the keepalive deadline has passed too. Read them first
            // (any message proves the peer alive); an unbiased select would pick the
            // timer half the time and drop a live peer as KeepaliveTimeout. The timer
            // is still checked after each message.
            tokio::select! {
                biased;
                msg = self.framed.next() => match msg {
                    None => return DisconnectReason::PeerClosed,
                    Some(Err(e)) => return DisconnectReason::Error(e.to_string()),
                    Some(Ok(frame)) => {
                        let pending = &self.pending;
                        let wants_text = |id| matches!(pending.get(&id), Some(Pending::Text(_)));
                        let (m, text) = match parse_frame(&frame, wants_text) {
                            Ok(parsed) => parsed,
                            Err(e) => return DisconnectReason::Error(e.to_string()),
                        };
                        self.stats.messages_received.fetch_add(1, Ordering::Relaxed);
                        match self.session.handle_message(m, Instant::now().into_std()) {
                            None => {}
                            Some(Delivery::Reply { id, result }) => {
                                if let Some(tx) = self.pending.remove(&id) {
                                    tx.send(result, text);
                                } else {
                                    tracing::debug!(id, "reply for a request nobody waits for");
                                }
                            }
                            // Awaiting here is the backpressure: we stop reading until the
                            // consumer has room. A dropped receiver just means nobody listens.
                            Some(Delivery::Event(mut e)) => {
                                // The updates' text, kept aside from the frame.
                                if let (Event::Update { updates, .. }, Some(t)) = (&mut e, text) {
                                    *updates = t;
                                }
                                let _ = self.events.send(e).await;
                            }
                        }
                        // A peer that keeps sending never lets the timer branch run.
                        if let Err(e) = self.session.handle_timeout(Instant::now().into_std()) {
                            return e;
                        }
                        self.sync_stats();
                    }
                },
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Close) => return DisconnectReason::Closed,
                    Some(Command::Request { method, params, reply }) => {
                        // Forget requests whose callers gave up (timed out).
                        self.pending.retain(|_, tx| !tx.is_closed());
                        let id = self.session.send_request(method, params);
                        self.pending.insert(id, reply);
                    }
                },
                _ = sleep_until(deadline) => {
                    if let Err(e) = self.session.handle_timeout(Instant::now().into_std()) {
                        return e;
                    }
                    self.sync_stats();
                }
            }
        }
    }

    fn sync_stats(&self) {
        self.stats
            .echo_requests_answered
            .store(self.session.echo_requests_answered, Ordering::Relaxed);
        self.stats
            .echo_probes_sent
            .store(self.session.echo_probes_sent, Ordering::Relaxed);
    }

    /// Writes everything the session queued, then flushes once, within the write timeout.
    async fn flush(&mut self) -> Result<(), DisconnectReason> {
        let after = self.write_timeout;
        timeout(after, self.write_queued()).await.map_err(|_| {
            DisconnectReason::Error(format!(
                "writing to the peer made no progress for {after:?}: it is not reading"
            ))
        })?
    }

    async fn write_queued(&mut self) -> Result<(), DisconnectReason> {
        let mut any = false;
        while let Some(m) = self.session.poll_transmit() {
            self.framed
                .feed(m)
                .await
                .map_err(|e| DisconnectReason::Error(e.to_string()))?;
            any = true;
        }
        if any {
            SinkExt::<Message>::flush(&mut self.framed)
                .await
                .map_err(|e| DisconnectReason::Error(e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio_util::codec::Decoder;

    async fn read_msg(s: &mut DuplexStream, codec: &mut JsonCodec, buf: &mut BytesMut) -> Message {
        loop {
            if let Some(m) = codec.decode(buf).unwrap() {
                return m;
            }
            let n = s.read_buf(buf).await.unwrap();
            assert!(n > 0, "stream closed");
        }
    }

    #[test]
    fn parses_targets() {
        assert_eq!(
            Target::parse("tcp:127.0.0.1:6640").unwrap(),
            Target::Tcp("127.0.0.1:6640".into())
        );
        assert_eq!(
            Target::parse("tcp:[::1]:6640").unwrap(),
            Target::Tcp("[::1]:6640".into())
        );
        assert_eq!(
            Target::parse("unix:/x/db.sock").unwrap(),
            Target::Unix("/x/db.sock".into())
        );
        for bad in [
            "tcp:1.2.3.4",
            "ssl:1.2.3.4:6640",
            "unix:",
            "tcp::6640",
            "tcp:h:99999",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn matches_replies_answers_echo_and_orders_updates() {
        let (a, mut server) = tokio::io::duplex(1 << 16);
        let (client, mut events) = Client::from_stream(a, ClientConfig::default());
        let mut codec = JsonCodec::default();
        let mut buf = BytesMut::new();

        let c2 = client.clone();
        let call = tokio::spawn(async move { c2.list_dbs().await });
        let Message::Request { id, method, .. } = read_msg(&mut server, &mut codec, &mut buf).await
        else {
            panic!()
        };
        assert_eq!(method, "list_dbs");
        // Before answering: a server echo, then two updates, then the reply.
        let mut out = Vec::new();
        for v in [
            json!({"id": "echo", "method": "echo", "params": ["x"]}),
            json!({"id": null, "method": "update2", "params": ["m", {"T": {"1": 1}}]}),
            json!({"id": null, "method": "update2", "params": ["m", {"T": {"2": 2}}]}),
            json!({"id": null, "method": "stolen", "params": ["L"]}),
            json!({"id": id, "result": ["Open_vSwitch"], "error": null}),
        ] {
            out.extend_from_slice(v.to_string().as_bytes());
        }
        server.write_all(&out).await.unwrap();
        let echo_reply = read_msg(&mut server, &mut codec, &mut buf).await;
        assert_eq!(
            echo_reply.to_json(),
            json!({"id": "echo", "result": ["x"], "error": null})
        );
        assert_eq!(
            call.await.unwrap().unwrap(),
            vec!["Open_vSwitch".to_owned()]
        );
        for n in [1, 2] {
            match events.recv().await.unwrap() {
                Event::Update {
                    format: UpdateFormat::Update2,
                    updates,
                    ..
                } => {
                    assert_eq!(updates.to_value().unwrap()["T"][n.to_string()], json!(n))
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            events.recv().await.unwrap(),
            Event::Stolen { lock: "L".into() }
        );
        assert_eq!(
            client
                .stats()
                .echo_requests_answered
                .load(Ordering::Relaxed),
            1
        );

        // An error reply is typed; then the peer goes away.
        let c2 = client.clone();
        let call = tokio::spawn(async move { c2.get_schema("nope").await });
        let Message::Request { id, .. } = read_msg(&mut server, &mut codec, &mut buf).await else {
            panic!()
        };
        let reply = json!({"id": id, "result": null, "error": {"error": "unknown database", "details": "nope"}});
        server
            .write_all(reply.to_string().as_bytes())
            .await
            .unwrap();
        match call.await.unwrap() {
            Err(ClientError::Rpc { error, .. }) => assert_eq!(error.error, "unknown database"),
            other => panic!("{other:?}"),
        }
        drop(server);
        assert_eq!(
            events.recv().await.unwrap(),
            Event::Disconnected(DisconnectReason::PeerClosed)
        );
        assert!(matches!(
            client.echo().await,
            Err(ClientError::Disconnected)
        ));
    }

    /// An old server without `monitor_cond` answers "unknown method"; `monitor_auto`
    /// retries with plain `monitor` and reports the `update` format.
    #[tokio::test]
    async fn monitor_falls_back_for_old_servers() {
        let (a, mut server) = tokio::io::duplex(1 << 16);
        let (client, _events) = Client::from_stream(a, ClientConfig::default());
        let mut codec = JsonCodec::default();
        let mut buf = BytesMut::new();
        let call = tokio::spawn(async move {
            client
                .monitor_auto("db", json!("m"), &[MonitorRequest::table("T")])
                .await
        });
        let Message::Request { id, method, .. } = read_msg(&mut server, &mut codec, &mut buf).await
        else {
            panic!()
        };
        assert_eq!(method, "monitor_cond");
        let reply = json!({"id": id, "result": null, "error": "unknown method"});
        server
            .write_all(reply.to_string().as_bytes())
            .await
            .unwrap();
        let Message::Request { id, method, params } =
            read_msg(&mut server, &mut codec, &mut buf).await
        else {
            panic!()
        };
        assert_eq!(method, "monitor");
        assert_eq!(params[0], "db");
        let reply = json!({"id": id, "result": {"T": {}}, "error": null});
        server
            .write_all(reply.to_string().as_bytes())
            .await
            .unwrap();
        let start = call.await.unwrap().unwrap();
        assert_eq!(start.format, UpdateFormat::Update);
        assert_eq!(start.initial.to_value().unwrap(), json!({"T": {}}));
    }

    #[tokio::test(start_paused = true)]
    async fn silent_peer_is_declared_dead() {
        let (a, mut server) = tokio::io::duplex(1 << 16);
        let config = ClientConfig {
            inactivity_probe: Some(Duration::from_secs(5)),
            ..ClientConfig::default()
        };
        let (client, mut events) = Client::from_stream(a, config);
        // The server reads our probe but never answers.
        let mut codec = JsonCodec::default();
        let mut buf = BytesMut::new();
        let probe = read_msg(&mut server, &mut codec, &mut buf).await;
        assert!(matches!(probe, Message::Request { ref method, .. } if method == "echo"));
        assert_eq!(
            events.recv().await.unwrap(),
            Event::Disconnected(DisconnectReason::KeepaliveTimeout)
        );
        assert_eq!(client.stats().echo_probes_sent.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn request_times_out() {
        let (a, _server) = tokio::io::duplex(1 << 16);
        let config = ClientConfig {
            request_timeout: Duration::from_secs(2),
            inactivity_probe: None,
            ..ClientConfig::default()
        };
        let (client, _events) = Client::from_stream(a, config);
        assert!(matches!(
            client.list_dbs().await,
            Err(ClientError::Timeout { .. })
        ));
    }

    /// A peer that sends requests but never reads the replies: once the pipe is full the
    /// connection is given up after the write timeout instead of blocking forever.
    #[tokio::test(start_paused = true)]
    async fn peer_that_never_reads_is_dropped() {
        let (a, mut server) = tokio::io::duplex(4096);
        let config = ClientConfig {
            write_timeout: Duration::from_secs(3),
            inactivity_probe: None,
            ..ClientConfig::default()
        };
        let (_client, mut events) = Client::from_stream(a, config);
        let big = "x".repeat(1000);
        let flood = async {
            for i in 0..100 {
                let m = json!({"id": i, "method": "echo", "params": [big]});
                if server.write_all(m.to_string().as_bytes()).await.is_err() {
                    break;
                }
            }
            std::future::pending::<()>().await
        };
        let ev = tokio::select! {
            _ = flood => unreachable!(),
            ev = events.recv() => ev,
        };
        match ev {
            Some(Event::Disconnected(DisconnectReason::Error(e))) => {
                assert!(e.contains("not reading"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn garbage_from_peer_disconnects_with_reason() {
        let (a, mut server) = tokio::io::duplex(1 << 16);
        let (_client, mut events) = Client::from_stream(a, ClientConfig::default());
        server.write_all(b"not json").await.unwrap();
        match events.recv().await.unwrap() {
            Event::Disconnected(DisconnectReason::Error(e)) => assert!(e.contains("0x6e"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
