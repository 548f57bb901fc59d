//! Values an operator types: MAC addresses, object names, port addresses and remote
//! prefixes, each with the syntactic check that decides whether Weft accepts it.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::NAME_MAX_LEN;

/// An Ethernet MAC address, written `02:00:00:00:00:01`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

/// Why a string is not a usable value; the caller attaches the parameter name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{0:?} is not a MAC address (expected six hex octets separated by ':')")]
    MacSyntax(String),
    #[error("{0} is a multicast or broadcast MAC address; a port needs a unicast address")]
    MacMulticast(MacAddr),
    #[error("{0} is the all-zero MAC address")]
    MacZero(MacAddr),
    #[error("{0:?} is not an IPv4 or IPv6 address")]
    IpSyntax(String),
    #[error("{0} cannot be a port address (unspecified, multicast or broadcast)")]
    IpNotUnicast(IpAddr),
    #[error("{0:?} is not a CIDR prefix (e.g. 10.0.0.0/24 or 2001:db8::/32)")]
    CidrSyntax(String),
    #[error("name must be 1..={NAME_MAX_LEN} bytes, got {0}")]
    NameLength(usize),
    #[error(
        "name {0:?} may only contain letters, digits, '.', '_' and '-', and must start with a letter or digit"
    )]
    NameCharacters(String),
    #[error("name {0:?} looks like a UUID; names must not, so that references are unambiguous")]
    NameIsUuid(String),
}

impl MacAddr {
    /// True for group addresses (I/G bit set), which includes broadcast.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// A MAC a VM NIC may own: unicast and not all-zero.
    pub fn check_port_mac(self) -> Result<Self, ValueError> {
        if self.is_multicast() {
            Err(ValueError::MacMulticast(self))
        } else if self.0 == [0; 6] {
            Err(ValueError::MacZero(self))
        } else {
            Ok(self)
        }
    }
}

impl FromStr for MacAddr {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ValueError::MacSyntax(s.chars().take(64).collect());
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(err)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Checks an object name: short, printable, and never mistakable for a UUID.
pub fn check_name(name: &str) -> Result<(), ValueError> {
    if name.is_empty() || name.len() > NAME_MAX_LEN {
        return Err(ValueError::NameLength(name.len()));
    }
    let first_ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    let all_ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !first_ok || !all_ok {
        return Err(ValueError::NameCharacters(name.to_string()));
    }
    if Uuid::parse_str(name).is_ok() {
        return Err(ValueError::NameIsUuid(name.to_string()));
    }
    Ok(())
}

/// Parses an address a port may own (unicast, not unspecified).
pub fn parse_port_ip(s: &str) -> Result<IpAddr, ValueError> {
    let ip: IpAddr = s
        .parse()
        .map_err(|_| ValueError::IpSyntax(s.chars().take(64).collect()))?;
    let bad = ip.is_unspecified()
        || ip.is_multicast()
        || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if bad {
        return Err(ValueError::IpNotUnicast(ip));
    }
    Ok(ip)
}

/// Parses a remote prefix; a bare address means a host route, and host bits are cleared
/// (`10.0.0.7/24` is stored as `10.0.0.0/24`) because the flow match ignores them anyway.
pub fn parse_cidr(s: &str) -> Result<IpNet, ValueError> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    Err(ValueError::CidrSyntax(s.chars().take(64).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parsing() {
        let mac: MacAddr = "02:00:00:AB:cd:01".parse().unwrap();
        assert_eq!(mac.to_string(), "02:00:00:ab:cd:01");
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "02-00-00-00-00-01",
            "2:00:00:00:00:01",
            "0g:00:00:00:00:01",
            "02:00:00:00:00:001",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
        assert!(
            "01:00:5e:00:00:01"
                .parse::<MacAddr>()
                .unwrap()
                .check_port_mac()
                .is_err()
        );
        assert!(
            "ff:ff:ff:ff:ff:ff"
                .parse::<MacAddr>()
                .unwrap()
                .check_port_mac()
                .is_err()
        );
        assert!(
            "00:00:00:00:00:00"
                .parse::<MacAddr>()
                .unwrap()
                .check_port_mac()
                .is_err()
        );
    }

    #[test]
    fn names() {
        assert!(check_name("web-1.a_b").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"a".repeat(65)).is_err());
        assert!(check_name("67e55044-10b1-426f-9247-bb680e5fe0c8").is_err());
    }

    #[test]
    fn cidr_and_ip() {
        assert_eq!(
            parse_cidr("10.0.0.7/24").unwrap().to_string(),
            "10.0.0.0/24"
        );
        assert_eq!(parse_cidr("10.0.0.7").unwrap().to_string(), "10.0.0.7/32");
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_port_ip("224.0.0.1").is_err());
        assert!(parse_port_ip("0.0.0.0").is_err());
        assert!(parse_port_ip("fe80::1").is_ok());
    }
}
