//! weftd configuration: command-line flags over an optional TOML file over defaults
//! (DESIGN.md §3).
//!
//! The southbound settings (`openflow_listen`, `ovsdb_listen`, `ovsdb`,
//! `openflow_advertise`) are parsed and validated now so that a bad deployment fails at
//! startup, even though the sessions that use them come later.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

mod cluster;
mod tls;
use cluster::{default_instance, etcd_endpoint, etcd_prefix, instance_name};
use tls::{TlsFlagValues, southbound_tls};

pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:6690";
pub const DEFAULT_DATA_DIR: &str = "./weft-data";
pub const DEFAULT_OPENFLOW_LISTEN: &str = "tcp:0.0.0.0:6653";
pub const DEFAULT_OVSDB_LISTEN: &str = "tcp:0.0.0.0:6640";
pub const DEFAULT_MAX_CONNECTIONS: u32 = 256;
/// How long a hypervisor whose OVSDB session ended stays in the topology (its tunnels and
/// the flows towards its VMs kept on every other hypervisor) before it is taken out.
pub const DEFAULT_NODE_GRACE: Duration = Duration::from_secs(60);
/// Longest a node's first desired state after weftd starts waits for the hypervisors it
/// still tunnels to (see [`crate::realize::STARTUP_HOLD_MAX`], which it is).
pub const DEFAULT_STARTUP_HOLD: Duration = crate::realize::STARTUP_HOLD_MAX;
/// Upper bound of both holds: a day. Longer is almost certainly a unit mistake.
pub const MAX_HOLD: Duration = Duration::from_secs(86_400);
/// Default `--owner-lease` (DESIGN.md §3): seconds of an instance's etcd lease.
pub const DEFAULT_OWNER_LEASE: Duration = Duration::from_secs(3);
/// Default `--etcd-prefix` (DESIGN.md §7).
pub const DEFAULT_ETCD_PREFIX: &str = "/weft";

/// Cluster mode: the etcd cluster that holds the shared model, and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client URLs, `http://IP:PORT`.
    pub endpoints: Vec<String>,
    /// Key prefix, starting with `/`, without a trailing `/`.
    pub prefix: String,
}

/// A southbound connection target in OVS syntax: `tcp:IP:PORT`, `ssl:IP:PORT` or
/// `unix:PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    /// TLS over TCP with the southbound's certificates ([`TlsFiles`]).
    Ssl(SocketAddr),
    Unix(PathBuf),
}

/// The API's HTTPS certificate and key (`--api-certificate`, `--api-private-key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTlsFiles {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{field}: {value:?} is not a valid target (expected tcp:IP:PORT, ssl:IP:PORT or unix:PATH)"
    )]
    Endpoint { field: &'static str, value: String },
    #[error(
        "{field}: {value:?} is an ssl: target, which needs --private-key, --certificate and --ca-cert (missing: {missing})"
    )]
    TlsFlags {
        field: &'static str,
        value: String,
        missing: String,
    },
    #[error(
        "openflow_advertise: {value:?} is ssl: but the OpenFlow listener is tcp: (switches would fail the handshake)"
    )]
    AdvertiseSsl { value: String },
    #[error("--api-certificate and --api-private-key go together (only {given} given)")]
    ApiTls { given: &'static str },
    #[error("{field}: {value:?} must be a tcp: or ssl: target")]
    NotTcp { field: &'static str, value: String },
    #[error("{field}: {value:?} is not an address (expected IP:PORT)")]
    SocketAddr { field: &'static str, value: String },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("api token file {path}: {message}")]
    Token { path: PathBuf, message: String },
    #[error(
        "the API listens on non-loopback {0}; set --api-token-file so that only holders of the token can change the network"
    )]
    TokenRequired(SocketAddr),
    #[error("max_connections must be at least 1")]
    MaxConnections,
    #[error("{field}: {value} is not a number of seconds between 0 and 86400")]
    Seconds { field: &'static str, value: String },
    #[error(
        "etcd: {value:?} is not an etcd client URL (expected http://HOST:PORT; TLS to etcd is not supported yet)"
    )]
    EtcdEndpoint { value: String },
    #[error("etcd_prefix: {value:?} must start with / and name a key prefix other than /")]
    EtcdPrefix { value: String },
    #[error("owner_lease: {value} is not a whole number of seconds between 1 and 3600")]
    OwnerLease { value: u64 },
    #[error("instance: {value:?} must be 1 to 64 letters, digits, '.', '-' or '_'")]
    Instance { value: String },
}

impl Endpoint {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::Endpoint {
            field,
            value: value.to_string(),
        };
        let addr = |rest: &str| {
            if let Ok(addr) = SocketAddr::from_str(rest) {
                return Ok(addr);
            }
            // OVS also writes IPv6 without brackets as tcp:[::1]:6640 only; plain
            // "IP:PORT" covers IPv4.
            let (ip, port) = rest.rsplit_once(':').ok_or_else(bad)?;
            let ip: IpAddr = ip.trim_matches(['[', ']']).parse().map_err(|_| bad())?;
            let port: u16 = port.parse().map_err(|_| bad())?;
            Ok(SocketAddr::new(ip, port))
        };
        if let Some(rest) = value.strip_prefix("tcp:") {
            Ok(Endpoint::Tcp(addr(rest)?))
        } else if let Some(rest) = value.strip_prefix("ssl:") {
            Ok(Endpoint::Ssl(addr(rest)?))
        } else if let Some(path) = value.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad());
            }
            Ok(Endpoint::Unix(PathBuf::from(path)))
        } else {
            Err(bad())
        }
    }

    /// A listener or advertised target: its address and whether it is `ssl:`.
    fn parse_inet(field: &'static str, value: &str) -> Result<(SocketAddr, bool), ConfigError> {
        match Endpoint::parse(field, value)? {
            Endpoint::Tcp(a) => Ok((a, false)),
            Endpoint::Ssl(a) => Ok((a, true)),
            Endpoint::Unix(_) => Err(ConfigError::NotTcp {
                field,
                value: value.to_string(),
            }),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "tcp:{a}"),
            Endpoint::Ssl(a) => write!(f, "ssl:{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// The TOML file: every key optional, same names as the flags with `_` for `-`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub api_listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub api_token_file: Option<PathBuf>,
    pub openflow_listen: Option<String>,
    pub ovsdb_listen: Option<String>,
    pub ovsdb: Option<Vec<String>>,
    pub openflow_advertise: Option<String>,
    pub max_connections: Option<u32>,
    pub log: Option<String>,
    /// Seconds (fractions allowed), like `--node-grace`.
    pub node_grace_secs: Option<f64>,
    /// Seconds (fractions allowed), like `--startup-hold`.
    pub startup_hold_secs: Option<f64>,
    /// etcd client URLs: cluster mode, like `--etcd`.
    pub etcd: Option<Vec<String>>,
    pub etcd_prefix: Option<String>,
    pub instance: Option<String>,
    /// Seconds, like `--owner-lease`.
    pub owner_lease_secs: Option<u64>,
    pub private_key: Option<PathBuf>,
    pub certificate: Option<PathBuf>,
    pub ca_cert: Option<PathBuf>,
    pub api_certificate: Option<PathBuf>,
    pub api_private_key: Option<PathBuf>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

/// Raw settings from the command line (all optional so the file can fill gaps).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Flags {
    /// TOML configuration file; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// JSON-RPC API address (HTTP and WebSocket) [default: 127.0.0.1:6690].
    #[arg(long, value_name = "IP:PORT")]
    pub api_listen: Option<String>,
    /// Directory of the embedded store [default: ./weft-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// File holding the API bearer token (required when the API is not on loopback).
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,
    /// OpenFlow listener for br-int connections [default: tcp:0.0.0.0:6653].
    #[arg(long, value_name = "TARGET")]
    pub openflow_listen: Option<String>,
    /// OVSDB manager listener for hypervisors [default: tcp:0.0.0.0:6640].
    #[arg(long, value_name = "TARGET")]
    pub ovsdb_listen: Option<String>,
    /// Active OVSDB target to dial (tcp:IP:PORT or unix:PATH); repeatable.
    #[arg(long, value_name = "TARGET")]
    pub ovsdb: Vec<String>,
    /// OpenFlow target written into each br-int's Controller row (tcp:IP:6653).
    #[arg(long, value_name = "TARGET")]
    pub openflow_advertise: Option<String>,
    /// Most simultaneous API connections [default: 256].
    #[arg(long)]
    pub max_connections: Option<u32>,
    /// Log filter, RUST_LOG syntax (e.g. "info,weft=debug"); RUST_LOG is used if unset.
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// Seconds a hypervisor whose OVSDB session ended stays in the topology before the
    /// other hypervisors drop their tunnels and flows to it (0 = at once) [default: 60].
    #[arg(long, value_name = "SECS")]
    pub node_grace: Option<f64>,
    /// Longest seconds after startup that a hypervisor's new desired state waits for the
    /// hypervisors it still tunnels to to reconnect (0 = no hold) [default: 20].
    #[arg(long, value_name = "SECS")]
    pub startup_hold: Option<f64>,
    /// Seconds a MAC learned behind a flood-and-learn VTEP stays on a hypervisor without
    /// traffic from it (the `idle_timeout` of the learned flow, 1..=65535) [default: 300].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u16).range(1..))]
    pub vtep_learn_idle_timeout: Option<u16>,
    /// Cluster mode: keep the logical model in this etcd cluster (client URLs,
    /// comma-separated or repeated), shared with every weftd given the same cluster and
    /// prefix, instead of the embedded store.
    #[arg(long, value_name = "URL[,URL...]", value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// Key prefix of this Weft deployment in etcd [default: /weft].
    #[arg(long, value_name = "PREFIX")]
    pub etcd_prefix: Option<String>,
    /// This instance's name in the cluster [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// Cluster mode: seconds of this instance's etcd lease. Its hypervisors move to
    /// other instances about this long after it dies; it stops writing to them sooner
    /// when it cannot renew the lease [default: 3].
    #[arg(long, value_name = "SECS")]
    pub owner_lease: Option<u64>,
    /// Private key (PEM) for ssl: listeners and targets (ovs-pki's NAME-privkey.pem).
    #[arg(long, value_name = "FILE")]
    pub private_key: Option<PathBuf>,
    /// Certificate (PEM) for ssl: listeners and targets (ovs-pki's NAME-cert.pem).
    #[arg(long, value_name = "FILE")]
    pub certificate: Option<PathBuf>,
    /// CA certificate (PEM) that signs the hypervisors' certificates (ovs-pki's
    /// switchca/cacert.pem); a peer on an ssl: connection must present one it signed.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Serve the JSON API (and /metrics) over HTTPS with this certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub api_certificate: Option<PathBuf>,
    /// Private key (PEM) of --api-certificate.
    #[arg(long, value_name = "FILE")]
    pub api_private_key: Option<PathBuf>,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub api_listen: SocketAddr,
    pub data_dir: PathBuf,
    pub api_token: Option<String>,
    pub openflow_listen: SocketAddr,
    /// The OpenFlow listener is `ssl:` (and so is the advertised target).
    pub openflow_ssl: bool,
    pub ovsdb_listen: SocketAddr,
    /// The OVSDB manager listener is `ssl:`.
    pub ovsdb_ssl: bool,
    pub ovsdb: Vec<Endpoint>,
    pub openflow_advertise: Option<SocketAddr>,
    /// The southbound's TLS files; set whenever some listener or target is `ssl:`.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Set when the API serves HTTPS.
    pub api_tls: Option<ApiTlsFiles>,
    pub max_connections: u32,
    pub log: Option<String>,
    /// See [`DEFAULT_NODE_GRACE`].
    pub node_grace: Duration,
    /// See [`DEFAULT_STARTUP_HOLD`].
    pub startup_hold: Duration,
    /// Idle timeout of MACs learned behind flood VTEPs, seconds (`--vtep-learn-idle-timeout`).
    pub vtep_learn_idle_timeout: u16,
    /// Set in cluster mode (`--etcd`); the embedded store in `data_dir` otherwise.
    pub etcd: Option<EtcdConfig>,
    /// This instance's name (`--instance`).
    pub instance: String,
    /// Cluster mode's lease (`--owner-lease`, whole seconds, 1 to 3600).
    pub owner_lease: Duration,
}

impl Config {
    /// A configuration for tests and embedding: API on `api_listen`, store in `data_dir`,
    /// southbound listeners on ephemeral loopback ports (so that several embedded daemons
    /// never collide; weftd itself uses the DESIGN.md defaults).
    pub fn new(api_listen: SocketAddr, data_dir: PathBuf) -> Self {
        Config {
            api_listen,
            data_dir,
            api_token: None,
            openflow_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            openflow_ssl: false,
            ovsdb_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ovsdb_ssl: false,
            ovsdb: Vec::new(),
            openflow_advertise: None,
            tls: None,
            api_tls: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            log: None,
            node_grace: DEFAULT_NODE_GRACE,
            startup_hold: DEFAULT_STARTUP_HOLD,
            vtep_learn_idle_timeout: crate::compiler::LEARN_IDLE_TIMEOUT_DEFAULT,
            etcd: None,
            instance: default_instance(),
            owner_lease: DEFAULT_OWNER_LEASE,
        }
    }

    /// Merges flags over the config file over defaults and validates the result.
    pub fn from_flags(flags: Flags) -> Result<Self, ConfigError> {
        let file = match &flags.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let api_listen_s = flags
            .api_listen
            .or(file.api_listen)
            .unwrap_or_else(|| DEFAULT_API_LISTEN.to_string());
        let api_listen =
            SocketAddr::from_str(&api_listen_s).map_err(|_| ConfigError::SocketAddr {
                field: "api_listen",
                value: api_listen_s.clone(),
            })?;
        let data_dir = flags
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let api_token = match flags.api_token_file.or(file.api_token_file) {
            Some(path) => Some(read_token(&path)?),
            None => None,
        };
        if api_token.is_none() && !api_listen.ip().is_loopback() {
            return Err(ConfigError::TokenRequired(api_listen));
        }
        let openflow_listen_s = flags
            .openflow_listen
            .or(file.openflow_listen)
            .unwrap_or_else(|| DEFAULT_OPENFLOW_LISTEN.to_string());
        let (openflow_listen, openflow_ssl) =
            Endpoint::parse_inet("openflow_listen", &openflow_listen_s)?;
        let ovsdb_listen_s = flags
            .ovsdb_listen
            .or(file.ovsdb_listen)
            .unwrap_or_else(|| DEFAULT_OVSDB_LISTEN.to_string());
        let (ovsdb_listen, ovsdb_ssl) = Endpoint::parse_inet("ovsdb_listen", &ovsdb_listen_s)?;
        let ovsdb_raw = if flags.ovsdb.is_empty() {
            file.ovsdb.unwrap_or_default()
        } else {
            flags.ovsdb
        };
        let ovsdb = ovsdb_raw
            .iter()
            .map(|t| Endpoint::parse("ovsdb", t))
            .collect::<Result<Vec<_>, _>>()?;
        let openflow_advertise = match flags.openflow_advertise.or(file.openflow_advertise) {
            None => None,
            Some(t) => match Endpoint::parse_inet("openflow_advertise", &t)? {
                (_, true) if !openflow_ssl => return Err(ConfigError::AdvertiseSsl { value: t }),
                // The switch dials the listener's scheme: `tcp:` here means the address.
                (a, _) => Some(a),
            },
        };
        let tls = southbound_tls(
            TlsFlagValues {
                private_key: flags.private_key.or(file.private_key),
                certificate: flags.certificate.or(file.certificate),
                ca_cert: flags.ca_cert.or(file.ca_cert),
            },
            [
                ("openflow_listen", openflow_ssl, openflow_listen_s.as_str()),
                ("ovsdb_listen", ovsdb_ssl, ovsdb_listen_s.as_str()),
            ]
            .into_iter()
            .chain(
                ovsdb_raw
                    .iter()
                    .zip(&ovsdb)
                    .map(|(raw, e)| ("ovsdb", matches!(e, Endpoint::Ssl(_)), raw.as_str())),
            ),
        )?;
        let api_tls = tls::api_tls(
            flags.api_certificate.or(file.api_certificate),
            flags.api_private_key.or(file.api_private_key),
        )?;
        let max_connections = flags
            .max_connections
            .or(file.max_connections)
            .unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if max_connections == 0 {
            return Err(ConfigError::MaxConnections);
        }
        let node_grace = seconds(
            "node_grace",
            flags.node_grace.or(file.node_grace_secs),
            DEFAULT_NODE_GRACE,
        )?;
        let startup_hold = seconds(
            "startup_hold",
            flags.startup_hold.or(file.startup_hold_secs),
            DEFAULT_STARTUP_HOLD,
        )?;
        let etcd_raw = if flags.etcd.is_empty() {
            file.etcd.unwrap_or_default()
        } else {
            flags.etcd
        };
        let etcd = if etcd_raw.is_empty() {
            None
        } else {
            let endpoints = etcd_raw
                .iter()
                .map(|e| etcd_endpoint(e))
                .collect::<Result<Vec<_>, _>>()?;
            let prefix = etcd_prefix(
                &flags
                    .etcd_prefix
                    .or(file.etcd_prefix)
                    .unwrap_or_else(|| DEFAULT_ETCD_PREFIX.to_string()),
            )?;
            Some(EtcdConfig { endpoints, prefix })
        };
        let instance = match flags.instance.or(file.instance) {
            Some(name) => instance_name(&name)?,
            None => default_instance(),
        };
        let owner_lease = match flags.owner_lease.or(file.owner_lease_secs) {
            None => DEFAULT_OWNER_LEASE,
            Some(s) if (1..=3600).contains(&s) => Duration::from_secs(s),
            Some(s) => {
                return Err(ConfigError::OwnerLease { value: s });
            }
        };
        Ok(Config {
            etcd,
            instance,
            owner_lease,
            api_listen,
            data_dir,
            api_token,
            openflow_listen,
            openflow_ssl,
            ovsdb_listen,
            ovsdb_ssl,
            ovsdb,
            openflow_advertise,
            tls,
            api_tls,
            max_connections,
            log: flags.log.or(file.log),
            node_grace,
            startup_hold,
            vtep_learn_idle_timeout: flags
                .vtep_learn_idle_timeout
                .unwrap_or(crate::compiler::LEARN_IDLE_TIMEOUT_DEFAULT),
        })
    }
}

/// A duration given in (possibly fractional) seconds, `default` when absent.
fn seconds(
    field: &'static str,
    value: Option<f64>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(v) = value else {
        return Ok(default);
    };
    if !(0.0..=MAX_HOLD.as_secs_f64()).contains(&v) {
        // Also NaN: the range check is false for it.
        return Err(ConfigError::Seconds {
            field,
            value: v.to_string(),
        });
    }
    Ok(Duration::from_secs_f64(v))
}

fn read_token(path: &Path) -> Result<String, ConfigError> {
    let err = |message: String| ConfigError::Token {
        path: path.to_path_buf(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > 4096 {
        return Err(err("larger than 4096 bytes".into()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(err("file is empty".into()));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(err("token must be printable ASCII without spaces".into()));
    }
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("x", "tcp:10.0.0.1:6640").unwrap(),
            Endpoint::Tcp("10.0.0.1:6640".parse().unwrap())
        );
        assert_eq!(
            Endpoint::parse("x", "tcp:[::1]:6640").unwrap(),
            Endpoint::Tcp("[::1]:6640".parse().unwrap())
        );
        assert!(matches!(
            Endpoint::parse("x", "unix:/run/ovs.sock").unwrap(),
            Endpoint::Unix(_)
        ));
        assert!(Endpoint::parse("x", "tcp:1.2.3.4").is_err());
        assert!(Endpoint::parse("x", "tcp:host:1").is_err());
        assert_eq!(
            Endpoint::parse("x", "ssl:1.2.3.4:6640").unwrap(),
            Endpoint::Ssl("1.2.3.4:6640".parse().unwrap())
        );
        assert!(Endpoint::parse("x", "ssl:1.2.3.4").is_err());
    }

    #[test]
    fn owner_lease_from_flag_file_or_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("weftd.toml");
        std::fs::write(&file, "owner_lease_secs = 5\n").unwrap();
        let cfg = Config::from_flags(Flags::default()).unwrap();
        assert_eq!(cfg.owner_lease, Duration::from_secs(3));
        let from_file = Flags {
            config: Some(file),
            ..Default::default()
        };
        let cfg = Config::from_flags(from_file.clone()).unwrap();
        assert_eq!(cfg.owner_lease, Duration::from_secs(5));
        let cfg = Config::from_flags(Flags {
            owner_lease: Some(2),
            ..from_file
        })
        .unwrap();
        assert_eq!(cfg.owner_lease, Duration::from_secs(2));
        for bad in [0, 3601] {
            assert_eq!(
                Config::from_flags(Flags {
                    owner_lease: Some(bad),
                    ..Default::default()
                })
                .unwrap_err(),
                ConfigError::OwnerLease { value: bad }
            );
        }
    }

    #[test]
    fn grace_and_startup_hold_from_flags_file_or_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("weftd.toml");
        std::fs::write(&file, "node_grace_secs = 3\nstartup_hold_secs = 0.5\n").unwrap();
        let cfg = Config::from_flags(Flags::default()).unwrap();
        assert_eq!(cfg.node_grace, DEFAULT_NODE_GRACE);
        assert_eq!(cfg.startup_hold, DEFAULT_STARTUP_HOLD);
        let cfg = Config::from_flags(Flags {
            config: Some(file.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.node_grace, Duration::from_secs(3));
        assert_eq!(cfg.startup_hold, Duration::from_millis(500));
        let cfg = Config::from_flags(Flags {
            config: Some(file),
            node_grace: Some(0.0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.node_grace, Duration::ZERO);
        assert_eq!(cfg.startup_hold, Duration::from_millis(500));
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e9] {
            let err = Config::from_flags(Flags {
                startup_hold: Some(bad),
                ..Default::default()
            })
            .unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Seconds {
                        field: "startup_hold",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
    }

    /// The commented configuration the Debian package installs as /etc/weft/weftd.toml is
    /// valid as shipped, and every key it shows commented out is a real key.
    #[test]
    fn packaged_config_file_is_valid_with_every_key() {
        const SHIPPED: &str = include_str!("../packaging/weftd.toml");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("weftd.toml");
        std::fs::write(&file, SHIPPED).unwrap();
        let cfg = Config::from_flags(Flags {
            config: Some(file),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.data_dir, PathBuf::from("/var/lib/weft/data"));
        assert_eq!(cfg.api_listen.to_string(), DEFAULT_API_LISTEN);
        let uncommented: String = SHIPPED
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.contains(" = ") && !rest.starts_with(' ') => rest,
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let all: FileConfig = toml::from_str(&uncommented).unwrap();
        assert!(all.api_token_file.is_some() && all.etcd.is_some() && all.instance.is_some());
        // One line per FileConfig key.
        assert_eq!(uncommented.matches(" = ").count(), 19, "{uncommented}");
    }

    #[test]
    fn flags_override_file_and_token_rules() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("weftd.toml");
        std::fs::write(
            &file,
            "api_listen = \"127.0.0.1:7000\"\novsdb = [\"tcp:10.0.0.1:6640\"]\n",
        )
        .unwrap();
        let cfg = Config::from_flags(Flags {
            config: Some(file.clone()),
            api_listen: Some("127.0.0.1:7001".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.api_listen.port(), 7001);
        assert_eq!(cfg.ovsdb.len(), 1);
        let err = Config::from_flags(Flags {
            api_listen: Some("0.0.0.0:7001".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(err, ConfigError::TokenRequired(_)));
        // Cluster mode from the file; flags win; bad values are refused.
        std::fs::write(
            &file,
            "etcd = [\"127.0.0.1:2379\", \"http://127.0.0.2:2379\"]\ninstance = \"c1\"\n",
        )
        .unwrap();
        let cfg = Config::from_flags(Flags {
            config: Some(file.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            cfg.etcd,
            Some(EtcdConfig {
                endpoints: vec![
                    "http://127.0.0.1:2379".into(),
                    "http://127.0.0.2:2379".into()
                ],
                prefix: DEFAULT_ETCD_PREFIX.into(),
            })
        );
        assert_eq!(cfg.instance, "c1");
        let cfg = Config::from_flags(Flags {
            config: Some(file.clone()),
            etcd: vec!["http://10.0.0.9:2379".into()],
            etcd_prefix: Some("/lab/".into()),
            instance: Some("c2".into()),
            ..Default::default()
        })
        .unwrap();
        let etcd = cfg.etcd.unwrap();
        assert_eq!(etcd.endpoints, vec!["http://10.0.0.9:2379".to_string()]);
        assert_eq!(etcd.prefix, "/lab");
        assert_eq!(cfg.instance, "c2");
        for (etcd, prefix, instance) in [
            ("https://1.2.3.4:2379", "/weft", "a"),
            ("1.2.3.4", "/weft", "a"),
            ("1.2.3.4:2379", "weft", "a"),
            ("1.2.3.4:2379", "/", "a"),
            ("1.2.3.4:2379", "/weft", "a b"),
        ] {
            assert!(
                Config::from_flags(Flags {
                    etcd: vec![etcd.into()],
                    etcd_prefix: Some(prefix.into()),
                    instance: Some(instance.into()),
                    ..Default::default()
                })
                .is_err(),
                "{etcd} {prefix} {instance}"
            );
        }
        assert!(Config::from_flags(Flags::default()).unwrap().etcd.is_none());
        std::fs::write(&file, "bogus = 1\n").unwrap();
        assert!(
            Config::from_flags(Flags {
                config: Some(file),
                ..Default::default()
            })
            .is_err()
        );
    }
}
