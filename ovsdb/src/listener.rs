//! The passive side (`ptcp:` in OVS terms): a listener for hypervisors whose ovsdb-server
//! was told `set-manager tcp:CONTROLLER:6640`, each accepted connection run by the same
//! [`Client`] as a dialled one.

use std::io;

use tokio::sync::mpsc;

use crate::client::{Client, ClientConfig, Event};

/// A passive listener (`ptcp:` in OVS terms) for hypervisors whose ovsdb-server was told
/// `set-manager tcp:CONTROLLER:6640`.
#[derive(Debug)]
pub struct Listener {
    inner: tokio::net::TcpListener,
    config: ClientConfig,
}

/// Connections the kernel queues for [`Listener::accept`] (capped by
/// `net.core.somaxconn`). The usual 128 overflows when a thousand hypervisors dial in at
/// once (a controller restart): the rest see their SYNs dropped and retry seconds later.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a TCP listener on `addr` (the first of its addresses that binds) with a
/// [`LISTEN_BACKLOG`]-deep accept queue.
pub async fn listen_tcp(addr: &str, backlog: u32) -> io::Result<tokio::net::TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As std's and tokio's `TcpListener::bind` do: a restarted daemon can rebind at
        // once while old connections sit in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(backlog)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr}: no address to listen on"),
        )
    }))
}

impl Listener {
    pub async fn bind(addr: &str, config: ClientConfig) -> io::Result<Listener> {
        Ok(Listener {
            inner: listen_tcp(addr, LISTEN_BACKLOG).await?,
            config,
        })
    }
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
    /// Waits for the next ovsdb-server to connect and starts a client on it.
    pub async fn accept(&self) -> io::Result<Accepted> {
        let (s, peer) = self.inner.accept().await?;
        s.set_nodelay(true)?;
        let local = s.local_addr()?;
        let (client, events) = Client::from_stream(s, self.config.clone());
        Ok(Accepted {
            client,
            events,
            peer,
            local,
        })
    }
}

/// A connection [`Listener::accept`] took.
pub struct Accepted {
    pub client: Client,
    pub events: mpsc::Receiver<Event>,
    pub peer: std::net::SocketAddr,
    /// The address the peer dialled: the one its own configuration names for us (a
    /// listener on `0.0.0.0` is reached at one of several).
    pub local: std::net::SocketAddr,
}
