//! The cluster-mode values of the configuration (`--etcd`, `--etcd-prefix`,
//! `--instance`), each checked where it is read so a bad one names itself at startup.

use super::ConfigError;

/// An etcd client URL; a bare `HOST:PORT` means `http://HOST:PORT`.
pub(super) fn etcd_endpoint(value: &str) -> Result<String, ConfigError> {
    let bad = || ConfigError::EtcdEndpoint {
        value: value.to_string(),
    };
    let value = value.trim();
    let rest = match value.split_once("://") {
        Some(("http", rest)) => rest,
        Some(_) => return Err(bad()),
        None => value,
    };
    let (host, port) = rest
        .trim_end_matches('/')
        .rsplit_once(':')
        .ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad());
    }
    Ok(format!("http://{host}:{port}"))
}

pub(super) fn etcd_prefix(value: &str) -> Result<String, ConfigError> {
    let prefix = value.trim_end_matches('/');
    if !value.starts_with('/') || prefix.is_empty() || prefix.len() > 256 {
        return Err(ConfigError::EtcdPrefix {
            value: value.to_string(),
        });
    }
    Ok(prefix.to_string())
}

pub(super) fn instance_name(value: &str) -> Result<String, ConfigError> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !ok {
        return Err(ConfigError::Instance {
            value: value.to_string(),
        });
    }
    Ok(value.to_string())
}

/// The host name (as the kernel has it), the default `--instance`.
pub(super) fn default_instance() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|h| instance_name(h.trim()).ok())
        .unwrap_or_else(|| "weftd".to_string())
}
