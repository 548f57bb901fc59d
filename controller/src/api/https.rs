//! The API over HTTPS (`--api-certificate`, `--api-private-key`): the TLS side of the
//! accept loop in [`super::serve`], which runs jsonrpsee's own service (the same
//! methods, token check and `/metrics` as over HTTP) on the connections accepted here.
//! A client whose handshake fails loses its connection only; the accept loop goes on.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::tls::HANDSHAKE_TIMEOUT;

/// The next TCP connection; accept errors (EMFILE...) are logged and waited out.
pub(super) async fn next(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(a) => return a,
            Err(e) => {
                tracing::warn!(error = %e, "API accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The server side of one client's handshake; `None` (logged) when it fails.
pub(super) async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::warn!(%peer, error = %e, "API TLS handshake failed; connection closed");
            None
        }
        Err(_) => {
            tracing::warn!(%peer, "API TLS handshake timed out; connection closed");
            None
        }
    }
}
