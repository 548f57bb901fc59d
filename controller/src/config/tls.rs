//! Which TLS files a configuration needs: the southbound's three (`--private-key`,
//! `--certificate`, `--ca-cert`) as soon as one listener or target is `ssl:`, and the
//! API's pair. The files themselves are read at startup ([`crate::tls`]), where an
//! unreadable one stops weftd with the flag and the path.

use std::path::PathBuf;

use super::{ApiTlsFiles, ConfigError};

/// The southbound's TLS flags as given (flags over file).
pub(super) struct TlsFlagValues {
    pub(super) private_key: Option<PathBuf>,
    pub(super) certificate: Option<PathBuf>,
    pub(super) ca_cert: Option<PathBuf>,
}

/// The TLS files, required by the first `ssl:` endpoint (`(field, is_ssl, as given)`);
/// without one, TLS files given are kept but unused.
pub(super) fn southbound_tls<'a>(
    given: TlsFlagValues,
    endpoints: impl Iterator<Item = (&'static str, bool, &'a str)>,
) -> Result<Option<crate::tls::TlsFiles>, ConfigError> {
    let first_ssl = endpoints.into_iter().find(|(_, ssl, _)| *ssl);
    match (given.private_key, given.certificate, given.ca_cert) {
        (Some(private_key), Some(certificate), Some(ca_cert)) => Ok(Some(crate::tls::TlsFiles {
            private_key,
            certificate,
            ca_cert,
        })),
        (k, c, a) => match first_ssl {
            None => Ok(None),
            Some((field, _, value)) => {
                let missing: Vec<&str> = [
                    (k.is_none(), "--private-key"),
                    (c.is_none(), "--certificate"),
                    (a.is_none(), "--ca-cert"),
                ]
                .into_iter()
                .filter_map(|(m, flag)| m.then_some(flag))
                .collect();
                Err(ConfigError::TlsFlags {
                    field,
                    value: value.to_string(),
                    missing: missing.join(", "),
                })
            }
        },
    }
}

/// The API's certificate and key: both or neither.
pub(super) fn api_tls(
    certificate: Option<PathBuf>,
    private_key: Option<PathBuf>,
) -> Result<Option<ApiTlsFiles>, ConfigError> {
    match (certificate, private_key) {
        (None, None) => Ok(None),
        (Some(certificate), Some(private_key)) => Ok(Some(ApiTlsFiles {
            certificate,
            private_key,
        })),
        (Some(_), None) => Err(ConfigError::ApiTls {
            given: "--api-certificate",
        }),
        (None, Some(_)) => Err(ConfigError::ApiTls {
            given: "--api-private-key",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Endpoint, Flags};
    use super::*;

    fn flags(listen: &str) -> Flags {
        Flags {
            openflow_listen: Some(listen.into()),
            ..Default::default()
        }
    }

    #[test]
    fn ssl_listener_needs_all_three_files() {
        let err = Config::from_flags(Flags {
            certificate: Some("c.pem".into()),
            ..flags("ssl:0.0.0.0:6653")
        })
        .unwrap_err();
        assert!(matches!(
            &err,
            ConfigError::TlsFlags {
                field: "openflow_listen",
                ..
            }
        ));
        let text = err.to_string();
        assert!(text.contains("--private-key, --ca-cert"), "{text}");
        assert!(!text.contains("--certificate,"), "{text}");
        let err = Config::from_flags(Flags {
            ovsdb: vec!["tcp:10.0.0.1:6640".into(), "ssl:10.0.0.2:6640".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::TlsFlags { field: "ovsdb", value, .. } if value == "ssl:10.0.0.2:6640"),
            "{err}"
        );
    }

    #[test]
    fn ssl_listeners_and_targets_with_files() {
        let cfg = Config::from_flags(Flags {
            ovsdb_listen: Some("ssl:0.0.0.0:6640".into()),
            ovsdb: vec!["ssl:10.0.0.2:6640".into()],
            openflow_advertise: Some("ssl:10.0.0.9:6653".into()),
            private_key: Some("k.pem".into()),
            certificate: Some("c.pem".into()),
            ca_cert: Some("ca.pem".into()),
            ..flags("ssl:0.0.0.0:6653")
        })
        .unwrap();
        assert!(cfg.openflow_ssl && cfg.ovsdb_ssl);
        assert_eq!(
            cfg.ovsdb,
            vec![Endpoint::Ssl("10.0.0.2:6640".parse().unwrap())]
        );
        assert_eq!(
            cfg.openflow_advertise,
            Some("10.0.0.9:6653".parse().unwrap())
        );
        let tls = cfg.tls.expect("tls files");
        assert_eq!(tls.ca_cert, PathBuf::from("ca.pem"));
        // tcp: everywhere: no TLS needed, and none configured.
        let cfg = Config::from_flags(flags("tcp:0.0.0.0:6653")).unwrap();
        assert!(!cfg.openflow_ssl && !cfg.ovsdb_ssl && cfg.tls.is_none());
    }

    #[test]
    fn advertise_follows_the_listener() {
        let files = Flags {
            private_key: Some("k.pem".into()),
            certificate: Some("c.pem".into()),
            ca_cert: Some("ca.pem".into()),
            ..Default::default()
        };
        let err = Config::from_flags(Flags {
            openflow_advertise: Some("ssl:10.0.0.9:6653".into()),
            ..flags("tcp:0.0.0.0:6653")
        })
        .unwrap_err();
        assert!(matches!(err, ConfigError::AdvertiseSsl { .. }), "{err}");
        // A tcp: advertise with an ssl: listener names the address; it is written ssl:.
        let cfg = Config::from_flags(Flags {
            openflow_advertise: Some("tcp:10.0.0.9:6653".into()),
            openflow_listen: Some("ssl:0.0.0.0:6653".into()),
            ..files
        })
        .unwrap();
        assert!(cfg.openflow_ssl);
    }

    #[test]
    fn api_certificate_and_key_go_together() {
        let err = Config::from_flags(Flags {
            api_certificate: Some("api.pem".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("--api-private-key"), "{err}");
        let cfg = Config::from_flags(Flags {
            api_certificate: Some("api.pem".into()),
            api_private_key: Some("api-key.pem".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.api_tls.unwrap().certificate, PathBuf::from("api.pem"));
    }
}
