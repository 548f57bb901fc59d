//! The logical model: switches, ports and ACLs as operators declare them (DESIGN.md §4).
//!
//! This module owns the value types, their syntactic validation (names, MACs, IPs, CIDRs)
//! and [`LogicalModel`], an immutable snapshot of every object plus the indexes needed to
//! enforce uniqueness. Snapshots are built from persistent maps, so cloning one is O(1):
//! the writer clones the current snapshot, applies a batch of [`Change`]s to the clone and
//! publishes it as a new `Arc`, and readers (the API, later the pipeline compiler) keep
//! whatever consistent view they took for as long as they like.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use imbl::{HashMap, OrdMap, OrdSet};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Largest VXLAN/Geneve virtual network identifier (24 bits).
pub const VNI_MAX: u32 = 16_777_215;
/// Largest per-switch logical port key; reg6/reg7 value 0 means "from a tunnel".
pub const PORT_KEY_MAX: u16 = 32_767;
/// Largest ACL priority.
pub const ACL_PRIORITY_MAX: u16 = 32_767;
/// Longest object name, in bytes.
pub const NAME_MAX_LEN: usize = 64;
/// Longest switch description, in bytes.
pub const DESCRIPTION_MAX_LEN: usize = 1024;
/// Most IP addresses one logical port may carry.
pub const PORT_IPS_MAX: usize = 64;

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

/// A logical L2 broadcast domain, carried between hypervisors under its VNI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogicalSwitch {
    pub id: Uuid,
    pub name: String,
    pub vni: u32,
    #[serde(default)]
    pub description: String,
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
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Switch => "switch",
            ObjectKind::Port => "port",
            ObjectKind::Acl => "acl",
        })
    }
}

/// One durable edit of the model. A write is a list of these, committed atomically to the
/// store and then applied to the in-memory snapshot; a `Put` replaces any object with the
/// same id. `apply` trusts that the writer validated the list first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    PutSwitch(LogicalSwitch),
    DeleteSwitch { id: Uuid },
    PutPort(LogicalPort),
    DeletePort { id: Uuid },
    PutAcl(Acl),
    DeleteAcl { id: Uuid },
}

impl Change {
    pub fn kind(&self) -> ObjectKind {
        match self {
            Change::PutSwitch(_) | Change::DeleteSwitch { .. } => ObjectKind::Switch,
            Change::PutPort(_) | Change::DeletePort { .. } => ObjectKind::Port,
            Change::PutAcl(_) | Change::DeleteAcl { .. } => ObjectKind::Acl,
        }
    }

    pub fn id(&self) -> Uuid {
        match self {
            Change::PutSwitch(s) => s.id,
            Change::PutPort(p) => p.id,
            Change::PutAcl(a) => a.id,
            Change::DeleteSwitch { id } | Change::DeletePort { id } | Change::DeleteAcl { id } => {
                *id
            }
        }
    }

    pub fn is_delete(&self) -> bool {
        matches!(
            self,
            Change::DeleteSwitch { .. } | Change::DeletePort { .. } | Change::DeleteAcl { .. }
        )
    }
}

/// Which conntrack zones are taken, one bit per zone; 8 KiB, shared between snapshots
/// until a write touches it.
#[derive(Clone)]
struct ZoneBitmap(Arc<[u64; 1024]>);

impl Default for ZoneBitmap {
    fn default() -> Self {
        ZoneBitmap(Arc::new([0; 1024]))
    }
}

impl ZoneBitmap {
    fn set(&mut self, zone: u16, used: bool) {
        let words = Arc::make_mut(&mut self.0);
        let (w, b) = (usize::from(zone / 64), zone % 64);
        if let Some(word) = words.get_mut(w) {
            if used {
                *word |= 1 << b;
            } else {
                *word &= !(1 << b);
            }
        }
    }

    fn is_set(&self, zone: u16) -> bool {
        let (w, b) = (usize::from(zone / 64), zone % 64);
        self.0.get(w).is_some_and(|word| word & (1 << b) != 0)
    }

    /// First free zone at or after `from`, wrapping around; zone 0 is never handed out
    /// (it is the default zone of traffic Weft does not track).
    fn next_free(&self, from: u16) -> Option<u16> {
        let start = from.max(1);
        (start..=u16::MAX)
            .chain(1..start)
            .find(|&z| !self.is_set(z))
    }
}

/// An immutable, internally consistent view of the whole logical model at one revision.
#[derive(Clone, Default)]
pub struct LogicalModel {
    revision: u64,
    switches: OrdMap<Uuid, LogicalSwitch>,
    ports: OrdMap<Uuid, LogicalPort>,
    acls: OrdMap<Uuid, Acl>,
    switch_by_name: HashMap<String, Uuid>,
    switch_by_vni: OrdMap<u32, Uuid>,
    port_by_name: HashMap<String, Uuid>,
    ports_of_switch: OrdMap<Uuid, OrdSet<Uuid>>,
    acls_of_port: OrdMap<Uuid, OrdSet<Uuid>>,
    port_by_mac: HashMap<(Uuid, MacAddr), Uuid>,
    zones: ZoneBitmap,
    zone_cursor: u16,
}

/// What differs between two model snapshots, by object id (see
/// [`LogicalModel::changed_since`]), each list in id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelDelta {
    pub switches: Vec<Uuid>,
    pub ports: Vec<Uuid>,
    pub acls: Vec<Uuid>,
}

/// Why stored objects do not form a valid model (found at startup).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("port {port} refers to switch {switch}, which does not exist")]
    DanglingPort { port: Uuid, switch: Uuid },
    #[error("acl {acl} refers to port {port}, which does not exist")]
    DanglingAcl { acl: Uuid, port: Uuid },
    #[error("{kind} {id}: duplicate {what}")]
    Duplicate {
        kind: ObjectKind,
        id: Uuid,
        what: String,
    },
}

impl fmt::Debug for LogicalModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogicalModel")
            .field("revision", &self.revision)
            .field("switches", &self.switches.len())
            .field("ports", &self.ports.len())
            .field("acls", &self.acls.len())
            .finish()
    }
}

impl LogicalModel {
    /// Builds a model from stored objects, checking every invariant the writer maintains,
    /// so that a store edited or damaged behind Weft's back is refused rather than served.
    pub fn from_objects(
        revision: u64,
        switches: Vec<LogicalSwitch>,
        ports: Vec<LogicalPort>,
        acls: Vec<Acl>,
    ) -> Result<Self, ModelError> {
        let mut m = LogicalModel {
            revision,
            ..Default::default()
        };
        let dup = |kind, id, what: String| ModelError::Duplicate { kind, id, what };
        for s in switches {
            if m.switch_by_name.contains_key(&s.name) {
                return Err(dup(ObjectKind::Switch, s.id, format!("name {:?}", s.name)));
            }
            if m.switch_by_vni.contains_key(&s.vni) {
                return Err(dup(ObjectKind::Switch, s.id, format!("vni {}", s.vni)));
            }
            m.apply(&Change::PutSwitch(s));
        }
        for p in ports {
            if !m.switches.contains_key(&p.switch) {
                return Err(ModelError::DanglingPort {
                    port: p.id,
                    switch: p.switch,
                });
            }
            if m.port_by_name.contains_key(&p.name) {
                return Err(dup(ObjectKind::Port, p.id, format!("name {:?}", p.name)));
            }
            if m.port_by_mac.contains_key(&(p.switch, p.mac)) {
                return Err(dup(ObjectKind::Port, p.id, format!("mac {}", p.mac)));
            }
            if m.zones.is_set(p.zone) {
                return Err(dup(ObjectKind::Port, p.id, format!("zone {}", p.zone)));
            }
            if m.port_key_in_use(p.switch, p.key) {
                return Err(dup(ObjectKind::Port, p.id, format!("key {}", p.key)));
            }
            m.apply(&Change::PutPort(p));
        }
        for a in acls {
            if !m.ports.contains_key(&a.port) {
                return Err(ModelError::DanglingAcl {
                    acl: a.id,
                    port: a.port,
                });
            }
            if m.acl_priority_taken(a.port, a.direction, a.priority, None) {
                return Err(dup(
                    ObjectKind::Acl,
                    a.id,
                    format!("priority {}", a.priority),
                ));
            }
            m.apply(&Change::PutAcl(a));
        }
        Ok(m)
    }

    /// The store revision this snapshot reflects; every write increases it.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub(crate) fn set_revision(&mut self, revision: u64) {
        self.revision = revision;
    }

    pub fn switches(&self) -> impl Iterator<Item = &LogicalSwitch> {
        self.switches.values()
    }

    pub fn ports(&self) -> impl Iterator<Item = &LogicalPort> {
        self.ports.values()
    }

    pub fn acls(&self) -> impl Iterator<Item = &Acl> {
        self.acls.values()
    }

    pub fn switch_count(&self) -> usize {
        self.switches.len()
    }

    pub fn port_count(&self) -> usize {
        self.ports.len()
    }

    pub fn acl_count(&self) -> usize {
        self.acls.len()
    }

    pub fn switch(&self, id: &Uuid) -> Option<&LogicalSwitch> {
        self.switches.get(id)
    }

    pub fn port(&self, id: &Uuid) -> Option<&LogicalPort> {
        self.ports.get(id)
    }

    pub fn acl(&self, id: &Uuid) -> Option<&Acl> {
        self.acls.get(id)
    }

    /// Resolves a name or an id (names can never parse as UUIDs, see [`check_name`]).
    pub fn find_switch(&self, name_or_id: &str) -> Option<&LogicalSwitch> {
        match Uuid::parse_str(name_or_id) {
            Ok(id) => self.switches.get(&id),
            Err(_) => self
                .switch_by_name
                .get(name_or_id)
                .and_then(|id| self.switches.get(id)),
        }
    }

    /// Resolves a port by name or id.
    pub fn find_port(&self, name_or_id: &str) -> Option<&LogicalPort> {
        match Uuid::parse_str(name_or_id) {
            Ok(id) => self.ports.get(&id),
            Err(_) => self
                .port_by_name
                .get(name_or_id)
                .and_then(|id| self.ports.get(id)),
        }
    }

    pub fn switch_by_vni(&self, vni: u32) -> Option<&LogicalSwitch> {
        self.switch_by_vni
            .get(&vni)
            .and_then(|id| self.switches.get(id))
    }

    pub fn port_by_mac(&self, switch: Uuid, mac: MacAddr) -> Option<&LogicalPort> {
        self.port_by_mac
            .get(&(switch, mac))
            .and_then(|id| self.ports.get(id))
    }

    /// Ports of one switch, in id order.
    pub fn ports_of_switch(&self, switch: &Uuid) -> impl Iterator<Item = &LogicalPort> {
        self.ports_of_switch
            .get(switch)
            .into_iter()
            .flat_map(|set| set.iter())
            .filter_map(|id| self.ports.get(id))
    }

    pub fn port_count_of_switch(&self, switch: &Uuid) -> usize {
        self.ports_of_switch.get(switch).map_or(0, |s| s.len())
    }

    /// ACLs of one port, in id order.
    pub fn acls_of_port(&self, port: &Uuid) -> impl Iterator<Item = &Acl> {
        self.acls_of_port
            .get(port)
            .into_iter()
            .flat_map(|set| set.iter())
            .filter_map(|id| self.acls.get(id))
    }

    /// Ids of the switches, ports and ACLs that were added, changed or removed from
    /// `older` to `self`. Snapshots derived from one another by writes share every
    /// untouched subtree of their persistent maps and the diff skips those, so the delta
    /// of a write costs time in proportion to what it touched, not to the model's size.
    pub fn changed_since(&self, older: &LogicalModel) -> ModelDelta {
        fn ids<V: PartialEq + Clone>(old: &OrdMap<Uuid, V>, new: &OrdMap<Uuid, V>) -> Vec<Uuid> {
            use imbl::ordmap::DiffItem;
            old.diff(new)
                .map(|d| match d {
                    DiffItem::Add(id, _) | DiffItem::Remove(id, _) => *id,
                    DiffItem::Update { new: (id, _), .. } => *id,
                })
                .collect()
        }
        ModelDelta {
            switches: ids(&older.switches, &self.switches),
            ports: ids(&older.ports, &self.ports),
            acls: ids(&older.acls, &self.acls),
        }
    }

    pub(crate) fn port_key_in_use(&self, switch: Uuid, key: u16) -> bool {
        self.ports_of_switch(&switch).any(|p| p.key == key)
    }

    /// Lowest free port key in a switch, or None when all 32767 are taken.
    pub(crate) fn free_port_key(&self, switch: &Uuid) -> Option<u16> {
        let mut used = vec![false; usize::from(PORT_KEY_MAX) + 1];
        for p in self.ports_of_switch(switch) {
            if let Some(slot) = used.get_mut(usize::from(p.key)) {
                *slot = true;
            }
        }
        (1..=PORT_KEY_MAX).find(|&k| !used.get(usize::from(k)).copied().unwrap_or(true))
    }

    /// Next free conntrack zone. Allocation is next-fit from the last zone handed out, so
    /// a zone freed by a deleted port is reused as late as possible (stale conntrack
    /// entries in it have time to expire).
    pub(crate) fn free_zone(&self) -> Option<u16> {
        self.zones.next_free(self.zone_cursor)
    }

    /// Lowest VNI not in use, for switches created without one.
    pub(crate) fn free_vni(&self) -> Option<u32> {
        let mut expected = 1u32;
        for &vni in self.switch_by_vni.keys() {
            if vni != expected {
                break;
            }
            expected += 1;
        }
        (expected <= VNI_MAX).then_some(expected)
    }

    pub(crate) fn switch_name_taken(&self, name: &str) -> bool {
        self.switch_by_name.contains_key(name)
    }

    pub(crate) fn port_name_taken(&self, name: &str) -> bool {
        self.port_by_name.contains_key(name)
    }

    /// Whether another ACL (not `except`) already has this priority on the port and
    /// direction; ties are refused because "highest priority wins" must be unambiguous.
    pub(crate) fn acl_priority_taken(
        &self,
        port: Uuid,
        direction: Direction,
        priority: u16,
        except: Option<Uuid>,
    ) -> bool {
        self.acls_of_port(&port)
            .any(|a| a.direction == direction && a.priority == priority && Some(a.id) != except)
    }

    /// Applies one validated change to this (private, not yet published) copy.
    pub(crate) fn apply(&mut self, change: &Change) {
        match change {
            Change::PutSwitch(s) => {
                if let Some(old) = self.switches.get(&s.id).cloned() {
                    self.switch_by_name.remove(&old.name);
                    self.switch_by_vni.remove(&old.vni);
                }
                self.switch_by_name.insert(s.name.clone(), s.id);
                self.switch_by_vni.insert(s.vni, s.id);
                self.switches.insert(s.id, s.clone());
            }
            Change::DeleteSwitch { id } => {
                if let Some(old) = self.switches.remove(id) {
                    self.switch_by_name.remove(&old.name);
                    self.switch_by_vni.remove(&old.vni);
                }
                self.ports_of_switch.remove(id);
            }
            Change::PutPort(p) => {
                self.unindex_port(&p.id);
                self.port_by_name.insert(p.name.clone(), p.id);
                self.port_by_mac.insert((p.switch, p.mac), p.id);
                self.ports_of_switch
                    .entry(p.switch)
                    .or_default()
                    .insert(p.id);
                self.zones.set(p.zone, true);
                self.zone_cursor = p.zone.wrapping_add(1);
                self.ports.insert(p.id, p.clone());
            }
            Change::DeletePort { id } => {
                self.unindex_port(id);
                self.ports.remove(id);
                self.acls_of_port.remove(id);
            }
            Change::PutAcl(a) => {
                self.acls_of_port.entry(a.port).or_default().insert(a.id);
                self.acls.insert(a.id, a.clone());
            }
            Change::DeleteAcl { id } => {
                if let Some(old) = self.acls.remove(id)
                    && let Some(set) = self.acls_of_port.get_mut(&old.port)
                {
                    set.remove(id);
                }
            }
        }
    }

    fn unindex_port(&mut self, id: &Uuid) {
        let Some(old) = self.ports.get(id).cloned() else {
            return;
        };
        self.port_by_name.remove(&old.name);
        self.port_by_mac.remove(&(old.switch, old.mac));
        if let Some(set) = self.ports_of_switch.get_mut(&old.switch) {
            set.remove(id);
        }
        self.zones.set(old.zone, false);
    }
}

/// Small models for other modules' unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// Switch "blue" (id 0xa, VNI 5001) with ports `(n, name)`: id n, MAC 02:..:0n,
    /// IP 10.0.0.n, key and zone n.
    pub(crate) fn blue(ports: &[(u128, &str)]) -> LogicalModel {
        let sw = LogicalSwitch {
            id: Uuid::from_u128(0xa),
            name: "blue".into(),
            vni: 5001,
            description: String::new(),
        };
        let ports = ports
            .iter()
            .map(|&(n, name)| LogicalPort {
                id: Uuid::from_u128(n),
                name: name.into(),
                switch: sw.id,
                mac: format!("02:00:00:00:00:0{n}").parse().expect("mac"),
                ips: vec![format!("10.0.0.{n}").parse().expect("ip")],
                port_security: true,
                key: n as u16,
                zone: n as u16,
            })
            .collect();
        LogicalModel::from_objects(1, vec![sw], ports, vec![]).expect("model")
    }
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

    #[test]
    fn protocol_normalises_numbers() {
        assert_eq!("6".parse::<Protocol>(), Ok(Protocol::Tcp));
        assert_eq!("47".parse::<Protocol>(), Ok(Protocol::Number(47)));
        assert!("256".parse::<Protocol>().is_err());
        let json = serde_json::to_string(&Protocol::Number(47)).unwrap();
        assert_eq!(json, "47");
    }

    #[test]
    fn zones_next_fit_and_wrap() {
        let mut z = ZoneBitmap::default();
        assert_eq!(z.next_free(0), Some(1));
        z.set(1, true);
        assert_eq!(z.next_free(1), Some(2));
        z.set(u16::MAX, true);
        assert_eq!(z.next_free(u16::MAX), Some(2));
    }

    #[test]
    fn free_vni_fills_gaps() {
        let mut m = LogicalModel::default();
        for vni in [1, 2, 4] {
            m.apply(&Change::PutSwitch(LogicalSwitch {
                id: Uuid::new_v4(),
                name: format!("s{vni}"),
                vni,
                description: String::new(),
            }));
        }
        assert_eq!(m.free_vni(), Some(3));
    }
}
