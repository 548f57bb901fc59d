//! The objects operators declare: [`LogicalSwitch`] (with its [`ProviderNet`]),
//! [`LogicalPort`] and [`Acl`] (with the [`Direction`], [`AclAction`], [`Ethertype`] and
//! [`Protocol`] an ACL is made of), and [`ObjectKind`], how events and errors name them.
//! Routers, their ports and routes are in [`super::routing`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::MacAddr;

/// A logical L2 broadcast domain, carried between hypervisors under its VNI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogicalSwitch {
    pub id: Uuid,
    pub name: String,
    pub vni: u32,
    #[serde(default)]
    pub description: String,
    /// Set for a provider switch: bridged onto a physical segment instead of tunnelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderNet>,
    /// Flood-and-learn VXLAN endpoints on this switch's segment (DESIGN.md §4): legacy
    /// VTEPs with no control plane that get the switch's broadcast and unknown unicast and
    /// whose MACs hypervisors learn from the traffic they send. Empty for most switches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flood_vteps: Vec<IpAddr>,
}

/// Where a provider switch meets the physical network: the physical network name that
/// hypervisors map to a bridge in `weft-bridge-mappings`, and the 802.1Q VLAN on it
/// (untagged when absent).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProviderNet {
    pub physnet: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
}

/// A VM NIC attached to a logical switch.
///
/// `key` (per switch, 1..=32767) and `zone` (conntrack zone, 1..=65535, unique in this
/// controller) are allocated by Weft and never change for the life of the port: the
/// pipeline puts them in reg6/reg7 and reg13.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogicalPort {
    pub id: Uuid,
    pub name: String,
    pub switch: Uuid,
    pub mac: MacAddr,
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    pub port_security: bool,
    pub key: u16,
    pub zone: u16,
}

/// Direction of an ACL, relative to the VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Traffic towards the VM.
    Ingress,
    /// Traffic sent by the VM.
    Egress,
}

impl FromStr for Direction {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "ingress" => Ok(Direction::Ingress),
            "egress" => Ok(Direction::Egress),
            _ => Err(()),
        }
    }
}

/// What an ACL does with traffic it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AclAction {
    /// Stateless allow.
    Allow,
    /// Allow and commit to conntrack, so replies in the other direction pass.
    AllowRelated,
    Drop,
}

impl FromStr for AclAction {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "allow" => Ok(AclAction::Allow),
            "allow-related" => Ok(AclAction::AllowRelated),
            "drop" => Ok(AclAction::Drop),
            _ => Err(()),
        }
    }
}

/// L3 family an ACL applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ethertype {
    #[default]
    Ipv4,
    Ipv6,
}

impl FromStr for Ethertype {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "ipv4" => Ok(Ethertype::Ipv4),
            "ipv6" => Ok(Ethertype::Ipv6),
            _ => Err(()),
        }
    }
}

/// IP protocol an ACL matches. Numbers with a name are normalised to the name, so
/// `6` and `"tcp"` are the same rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Icmp6,
    Number(u8),
}

impl Protocol {
    pub fn from_number(n: u8) -> Self {
        match n {
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            1 => Protocol::Icmp,
            58 => Protocol::Icmp6,
            n => Protocol::Number(n),
        }
    }

    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Icmp => 1,
            Protocol::Icmp6 => 58,
            Protocol::Number(n) => n,
        }
    }

    /// Whether `port_min`/`port_max` make sense for this protocol.
    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp)
    }
}

impl FromStr for Protocol {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "icmp" => Ok(Protocol::Icmp),
            "icmp6" => Ok(Protocol::Icmp6),
            _ => s.parse::<u8>().map(Protocol::from_number).map_err(|_| ()),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Tcp => f.write_str("tcp"),
            Protocol::Udp => f.write_str("udp"),
            Protocol::Icmp => f.write_str("icmp"),
            Protocol::Icmp6 => f.write_str("icmp6"),
            Protocol::Number(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Protocol::Number(n) => s.serialize_u8(*n),
            named => s.collect_str(named),
        }
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u8),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(Protocol::from_number(n)),
            Raw::Name(s) => s
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("unknown protocol {s:?}"))),
        }
    }
}

/// One ACL rule on a port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    pub id: Uuid,
    pub port: Uuid,
    pub direction: Direction,
    pub priority: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    pub ethertype: Ethertype,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_cidr: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_min: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_max: Option<u16>,
    pub action: AclAction,
}

/// Kinds of object in the model, as named in events and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Switch,
    Port,
    Acl,
    Router,
    RouterPort,
    Route,
    VtepBinding,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Switch => "switch",
            ObjectKind::Port => "port",
            ObjectKind::Acl => "acl",
            ObjectKind::Router => "router",
            ObjectKind::RouterPort => "router_port",
            ObjectKind::Route => "route",
            ObjectKind::VtepBinding => "vtep_binding",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_normalises_numbers() {
        assert_eq!("6".parse::<Protocol>(), Ok(Protocol::Tcp));
        assert_eq!("47".parse::<Protocol>(), Ok(Protocol::Number(47)));
        assert!("256".parse::<Protocol>().is_err());
        let json = serde_json::to_string(&Protocol::Number(47)).unwrap();
        assert_eq!(json, "47");
    }
}
