//! TLS for Weft's connections, with rustls (ring) and OVS's PKI conventions: the key,
//! certificate and CA files `ovs-pki` writes, named by the flags OVS uses
//! (`--private-key`, `--certificate`, `--ca-cert`).
//!
//! - [`SouthboundTls`]: mutual TLS with hypervisors, as server (the `ssl:` OpenFlow and
//!   OVSDB listeners) and as client (active `ssl:` OVSDB targets). Either way the peer
//!   must present a certificate signed by the CA; the session then checks that the
//!   certificate's subject names the hypervisor it claims to be ([`PeerIdentity`]).
//!   Hostnames are not checked, as OVS does not check them: hypervisors are identified by
//!   their certificate's CN and the system-id, not by address.
//! - [`api_server_config`] and [`api_client_config`]: the JSON API over HTTPS, checked
//!   the ordinary way (the client verifies the server's chain and name).
//!
//! TLS is a transport wrapper only: what it hands back is a byte stream
//! ([`Transport`]), and the protocol sessions above stay generic over
//! `AsyncRead + AsyncWrite`.

mod subject;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub use subject::{PeerIdentity, cn_name};

/// A connection's byte stream, plain or TLS: what the sessions run over.
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}

/// Longest a TLS handshake may take before the connection is dropped: a peer that
/// connects and says nothing must not hold a task (it never holds the listener).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The three files of the southbound's TLS (DESIGN.md §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--private-key`: this weftd's private key (PEM).
    pub private_key: PathBuf,
    /// `--certificate`: this weftd's certificate (PEM), possibly followed by its chain.
    pub certificate: PathBuf,
    /// `--ca-cert`: the CA that signs hypervisors' certificates (PEM).
    pub ca_cert: PathBuf,
}

/// Why TLS material could not be loaded, naming the flag and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{flag} {}: {message}", path.display())]
    File {
        flag: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{what}: {error}")]
    Rustls {
        what: &'static str,
        #[source]
        error: rustls::Error,
    },
}

/// Why a TLS handshake with a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("TLS handshake failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS handshake timed out after {0:?}")]
    Timeout(Duration),
    #[error("the peer's certificate has no subject common name")]
    NoCommonName,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |message: String| TlsError::File {
        flag,
        path: path.to_path_buf(),
        message,
    };
    // Read first: a missing or unreadable file says so, not "no certificate".
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

fn read_key(flag: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bad = |message: String| TlsError::File {
        flag,
        path: path.to_path_buf(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| bad(format!("no PEM private key: {e}")))
}

fn read_roots(flag: &'static str, path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(flag, path)? {
        roots.add(cert).map_err(|e| TlsError::File {
            flag,
            path: path.to_path_buf(),
            message: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(Arc::new(roots))
}

fn rustls_err(what: &'static str) -> impl FnOnce(rustls::Error) -> TlsError {
    move |error| TlsError::Rustls { what, error }
}

/// The southbound's TLS: one server config for the `ssl:` listeners and one client
/// config for active `ssl:` targets, both with mutual authentication against the CA.
#[derive(Clone)]
pub struct SouthboundTls {
    acceptor: tokio_rustls::TlsAcceptor,
    connector: tokio_rustls::TlsConnector,
}

impl fmt::Debug for SouthboundTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SouthboundTls")
    }
}

impl SouthboundTls {
    /// Reads the three files; every error names the flag and the file.
    pub fn load(files: &TlsFiles) -> Result<SouthboundTls, TlsError> {
        let key = read_key("--private-key", &files.private_key)?;
        let chain = read_certs("--certificate", &files.certificate)?;
        let roots = read_roots("--ca-cert", &files.ca_cert)?;
        let provider = provider();
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| TlsError::File {
                    flag: "--ca-cert",
                    path: files.ca_cert.clone(),
                    message: e.to_string(),
                })?;
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(rustls_err("TLS versions"))?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| key_mismatch(files, e))?;
        let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| TlsError::File {
                flag: "--ca-cert",
                path: files.ca_cert.clone(),
                message: e.to_string(),
            })?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(rustls_err("TLS versions"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(CaOnly(server_verifier)))
            .with_client_auth_cert(chain, key)
            .map_err(|e| key_mismatch(files, e))?;
        Ok(SouthboundTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
        })
    }

    /// Server side of a handshake on an accepted connection.
    pub async fn accept(
        &self,
        tcp: TcpStream,
    ) -> Result<(Box<dyn Transport>, PeerIdentity), HandshakeError> {
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp))
            .await
            .map_err(|_| HandshakeError::Timeout(HANDSHAKE_TIMEOUT))??;
        let id = peer_identity(tls.get_ref().1.peer_certificates())?;
        Ok((Box::new(tls), id))
    }

    /// Client side of a handshake on a dialled connection.
    pub async fn connect(
        &self,
        tcp: TcpStream,
    ) -> Result<(Box<dyn Transport>, PeerIdentity), HandshakeError> {
        let name = ServerName::IpAddress(tcp.peer_addr()?.ip().into());
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.connector.connect(name, tcp))
            .await
            .map_err(|_| HandshakeError::Timeout(HANDSHAKE_TIMEOUT))??;
        let id = peer_identity(tls.get_ref().1.peer_certificates())?;
        Ok((Box::new(tls), id))
    }
}

fn peer_identity(certs: Option<&[CertificateDer<'_>]>) -> Result<PeerIdentity, HandshakeError> {
    certs
        .and_then(|c| c.first())
        .and_then(|c| PeerIdentity::from_der(c))
        .ok_or(HandshakeError::NoCommonName)
}

fn key_mismatch(files: &TlsFiles, e: rustls::Error) -> TlsError {
    TlsError::File {
        flag: "--private-key",
        path: files.private_key.clone(),
        message: format!(
            "does not go with --certificate {}: {e}",
            files.certificate.display()
        ),
    }
}

/// Verifies a server's chain against the CA but not its name: hypervisors' certificates
/// (ovs-pki's) carry no address, and their identity is checked by CN afterwards.
#[derive(Debug)]
struct CaOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for CaOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the name last, after the chain, validity and revocation: a name
        // error means everything else passed.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The API's HTTPS server config (`--api-certificate`, `--api-private-key`); clients
/// are authenticated by the bearer token, not by certificate.
pub fn api_server_config(
    certificate: &Path,
    private_key: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let key = read_key("--api-private-key", private_key)?;
    let chain = read_certs("--api-certificate", certificate)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_err("TLS versions"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::File {
            flag: "--api-private-key",
            path: private_key.to_path_buf(),
            message: format!(
                "does not go with --api-certificate {}: {e}",
                certificate.display()
            ),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// weftctl's client config for an HTTPS API whose certificate `ca_cert` signed
/// (`--ca-cert`): the ordinary checks, chain and server name.
pub fn api_client_config(ca_cert: &Path) -> Result<rustls::ClientConfig, TlsError> {
    let roots = read_roots("--ca-cert", ca_cert)?;
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_err("TLS versions"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
