//! A software OpenFlow 1.3 flow table: apply flow mods and group mods, then ask "where does
//! this packet go?". It models what Weft's pipeline uses, with OVS's semantics: highest
//! priority wins, table-miss drops (the pipeline installs explicit defaults), instructions
//! run apply-actions, write-metadata, then goto-table; actions run in order on the current
//! packet; ALL groups run each bucket on its own copy; `resubmit` searches another table
//! and comes back; `output` to the packet's input port is skipped unless it says
//! `IN_PORT`. `ct` is pass-through: with `table=` the packet continues there with the
//! `ct_state` the caller chose; `ct_clear` resets it.
//!
//! Unit tests check the compiler against this model; the OVS-backed test checks the model
//! against `ofproto/trace` of a real `ovs-vswitchd`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use openflow::{
    Action, Bucket, Field, FieldHeader, FlowMod, FlowModCommand, GroupMod, GroupModCommand,
    Instruction, Mac, Match, Nicira, oxm, port,
};

use crate::desired::{DesiredNode, GroupSpec};

/// `ct_state` bits (ovs-fields(7)).
pub mod ct_state {
    pub const NEW: u32 = 0x01;
    pub const EST: u32 = 0x02;
    pub const REL: u32 = 0x04;
    pub const RPL: u32 = 0x08;
    pub const INV: u32 = 0x10;
    pub const TRK: u32 = 0x20;
}

/// How deep `resubmit`/`ct(table=)`/groups may nest before the walk gives up (a loop).
const MAX_DEPTH: usize = 64;

/// A packet and its pipeline metadata, as the flow table sees it. Fields that do not apply
/// to the packet's protocol stay zero (as in OVS's `struct flow`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub in_port: u32,
    pub metadata: u64,
    pub regs: [u32; 16],
    pub tun_id: u64,
    pub eth_src: Mac,
    pub eth_dst: Mac,
    pub eth_type: u16,
    pub arp_op: u16,
    pub arp_spa: Ipv4Addr,
    pub arp_tpa: Ipv4Addr,
    pub arp_sha: Mac,
    pub arp_tha: Mac,
    pub ip4_src: Ipv4Addr,
    pub ip4_dst: Ipv4Addr,
    pub ip6_src: Ipv6Addr,
    pub ip6_dst: Ipv6Addr,
    pub ip_proto: u8,
    /// TCP/UDP source port, or ICMP type.
    pub tp_src: u16,
    /// TCP/UDP destination port, or ICMP code.
    pub tp_dst: u16,
    pub nd_target: Ipv6Addr,
    pub nd_sll: Mac,
    pub nd_tll: Mac,
    pub ct_state: u32,
    pub ct_zone: u16,
    pub ct_mark: u32,
}

impl Default for Packet {
    fn default() -> Self {
        Packet {
            in_port: 0,
            metadata: 0,
            regs: [0; 16],
            tun_id: 0,
            eth_src: Mac::ZERO,
            eth_dst: Mac::ZERO,
            eth_type: 0,
            arp_op: 0,
            arp_spa: Ipv4Addr::UNSPECIFIED,
            arp_tpa: Ipv4Addr::UNSPECIFIED,
            arp_sha: Mac::ZERO,
            arp_tha: Mac::ZERO,
            ip4_src: Ipv4Addr::UNSPECIFIED,
            ip4_dst: Ipv4Addr::UNSPECIFIED,
            ip6_src: Ipv6Addr::UNSPECIFIED,
            ip6_dst: Ipv6Addr::UNSPECIFIED,
            ip_proto: 0,
            tp_src: 0,
            tp_dst: 0,
            nd_target: Ipv6Addr::UNSPECIFIED,
            nd_sll: Mac::ZERO,
            nd_tll: Mac::ZERO,
            ct_state: 0,
            ct_zone: 0,
            ct_mark: 0,
        }
    }
}

/// The fields the model understands, by identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fk {
    InPort,
    Metadata,
    Reg(u8),
    TunId,
    EthSrc,
    EthDst,
    EthType,
    ArpOp,
    ArpSpa,
    ArpTpa,
    ArpSha,
    ArpTha,
    Ip4Src,
    Ip4Dst,
    Ip6Src,
    Ip6Dst,
    IpProto,
    TpSrc,
    TpDst,
    NdTarget,
    NdSll,
    NdTll,
    CtState,
    CtZone,
    CtMark,
}

fn mac_u(m: Mac) -> u128 {
    m.0.iter().fold(0u128, |a, b| (a << 8) | u128::from(*b))
}

fn u_mac(v: u128) -> Mac {
    let b = v.to_be_bytes();
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[10..16]);
    Mac(m)
}

fn ones(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

fn width(k: Fk) -> u32 {
    match k {
        Fk::InPort | Fk::Reg(_) | Fk::CtState | Fk::CtMark => 32,
        Fk::Metadata | Fk::TunId => 64,
        Fk::EthSrc | Fk::EthDst | Fk::ArpSha | Fk::ArpTha | Fk::NdSll | Fk::NdTll => 48,
        Fk::EthType | Fk::ArpOp | Fk::TpSrc | Fk::TpDst | Fk::CtZone => 16,
        Fk::ArpSpa | Fk::ArpTpa | Fk::Ip4Src | Fk::Ip4Dst => 32,
        Fk::Ip6Src | Fk::Ip6Dst | Fk::NdTarget => 128,
        Fk::IpProto => 8,
    }
}

/// A field of a match or set_field: identity, value, mask (all ones = exact). `None` for a
/// field the model does not know, which then never matches.
fn decompose(f: &Field) -> Option<(Fk, u128, Option<u128>)> {
    use Field::*;
    fn m<T: Copy>(v: Option<T>, conv: impl Fn(T) -> u128) -> Option<u128> {
        v.map(conv)
    }
    let u = |v: u64| u128::from(v);
    Some(match f {
        InPort(v, mk) => (Fk::InPort, (*v).into(), m(*mk, u128::from)),
        Metadata(v, mk) => (Fk::Metadata, u(*v), m(*mk, u128::from)),
        Reg(n, v, mk) => (Fk::Reg(*n), (*v).into(), m(*mk, u128::from)),
        TunnelId(v, mk) => (Fk::TunId, u(*v), m(*mk, u128::from)),
        EthSrc(v, mk) => (Fk::EthSrc, mac_u(*v), m(*mk, mac_u)),
        EthDst(v, mk) => (Fk::EthDst, mac_u(*v), m(*mk, mac_u)),
        EthType(v, mk) => (Fk::EthType, (*v).into(), m(*mk, u128::from)),
        ArpOp(v, mk) => (Fk::ArpOp, (*v).into(), m(*mk, u128::from)),
        ArpSpa(v, mk) => (
            Fk::ArpSpa,
            u32::from(*v).into(),
            m(*mk, |x| u32::from(x).into()),
        ),
        ArpTpa(v, mk) => (
            Fk::ArpTpa,
            u32::from(*v).into(),
            m(*mk, |x| u32::from(x).into()),
        ),
        ArpSha(v, mk) => (Fk::ArpSha, mac_u(*v), m(*mk, mac_u)),
        ArpTha(v, mk) => (Fk::ArpTha, mac_u(*v), m(*mk, mac_u)),
        Ipv4Src(v, mk) => (
            Fk::Ip4Src,
            u32::from(*v).into(),
            m(*mk, |x| u32::from(x).into()),
        ),
        Ipv4Dst(v, mk) => (
            Fk::Ip4Dst,
            u32::from(*v).into(),
            m(*mk, |x| u32::from(x).into()),
        ),
        Ipv6Src(v, mk) => (Fk::Ip6Src, u128::from(*v), m(*mk, u128::from)),
        Ipv6Dst(v, mk) => (Fk::Ip6Dst, u128::from(*v), m(*mk, u128::from)),
        IpProto(v, mk) => (Fk::IpProto, (*v).into(), m(*mk, u128::from)),
        TcpSrc(v, mk) | UdpSrc(v, mk) | SctpSrc(v, mk) => {
            (Fk::TpSrc, (*v).into(), m(*mk, u128::from))
        }
        TcpDst(v, mk) | UdpDst(v, mk) | SctpDst(v, mk) => {
            (Fk::TpDst, (*v).into(), m(*mk, u128::from))
        }
        Icmpv4Type(v, mk) | Icmpv6Type(v, mk) => (Fk::TpSrc, (*v).into(), m(*mk, u128::from)),
        Icmpv4Code(v, mk) | Icmpv6Code(v, mk) => (Fk::TpDst, (*v).into(), m(*mk, u128::from)),
        Ipv6NdTarget(v, mk) => (Fk::NdTarget, u128::from(*v), m(*mk, u128::from)),
        Ipv6NdSll(v, mk) => (Fk::NdSll, mac_u(*v), m(*mk, mac_u)),
        Ipv6NdTll(v, mk) => (Fk::NdTll, mac_u(*v), m(*mk, mac_u)),
        CtState(v, mk) => (Fk::CtState, (*v).into(), m(*mk, u128::from)),
        CtZone(v, mk) => (Fk::CtZone, (*v).into(), m(*mk, u128::from)),
        CtMark(v, mk) => (Fk::CtMark, (*v).into(), m(*mk, u128::from)),
        _ => return None,
    })
}

/// The field a Nicira subfield names (NXM or OXM header).
fn header_fk(h: &FieldHeader) -> Option<Fk> {
    let (class, field) = oxm::oxm_twin(h.class, h.field).unwrap_or((h.class, h.field));
    if h.experimenter.is_some() {
        return None;
    }
    Some(match (class, field) {
        (oxm::NXM_NX, n) if n < 16 => Fk::Reg(n),
        (oxm::NXM_OF, 0) | (oxm::OFPXMC_OPENFLOW_BASIC, 0) => Fk::InPort,
        (oxm::OFPXMC_OPENFLOW_BASIC, f) => {
            let probe = match f {
                2 => Field::Metadata(0, None),
                3 => Field::EthDst(Mac::ZERO, None),
                4 => Field::EthSrc(Mac::ZERO, None),
                5 => Field::EthType(0, None),
                10 => Field::IpProto(0, None),
                11 => Field::Ipv4Src(Ipv4Addr::UNSPECIFIED, None),
                12 => Field::Ipv4Dst(Ipv4Addr::UNSPECIFIED, None),
                13 => Field::TcpSrc(0, None),
                14 => Field::TcpDst(0, None),
                15 => Field::UdpSrc(0, None),
                16 => Field::UdpDst(0, None),
                21 => Field::ArpOp(0, None),
                22 => Field::ArpSpa(Ipv4Addr::UNSPECIFIED, None),
                23 => Field::ArpTpa(Ipv4Addr::UNSPECIFIED, None),
                24 => Field::ArpSha(Mac::ZERO, None),
                25 => Field::ArpTha(Mac::ZERO, None),
                26 => Field::Ipv6Src(Ipv6Addr::UNSPECIFIED, None),
                27 => Field::Ipv6Dst(Ipv6Addr::UNSPECIFIED, None),
                38 => Field::TunnelId(0, None),
                _ => return None,
            };
            decompose(&probe)?.0
        }
        _ => return None,
    })
}

impl Packet {
    fn get(&self, k: Fk) -> u128 {
        match k {
            Fk::InPort => self.in_port.into(),
            Fk::Metadata => self.metadata.into(),
            Fk::Reg(n) => self.regs.get(usize::from(n)).copied().unwrap_or(0).into(),
            Fk::TunId => self.tun_id.into(),
            Fk::EthSrc => mac_u(self.eth_src),
            Fk::EthDst => mac_u(self.eth_dst),
            Fk::EthType => self.eth_type.into(),
            Fk::ArpOp => self.arp_op.into(),
            Fk::ArpSpa => u32::from(self.arp_spa).into(),
            Fk::ArpTpa => u32::from(self.arp_tpa).into(),
            Fk::ArpSha => mac_u(self.arp_sha),
            Fk::ArpTha => mac_u(self.arp_tha),
            Fk::Ip4Src => u32::from(self.ip4_src).into(),
            Fk::Ip4Dst => u32::from(self.ip4_dst).into(),
            Fk::Ip6Src => u128::from(self.ip6_src),
            Fk::Ip6Dst => u128::from(self.ip6_dst),
            Fk::IpProto => self.ip_proto.into(),
            Fk::TpSrc => self.tp_src.into(),
            Fk::TpDst => self.tp_dst.into(),
            Fk::NdTarget => u128::from(self.nd_target),
            Fk::NdSll => mac_u(self.nd_sll),
            Fk::NdTll => mac_u(self.nd_tll),
            Fk::CtState => self.ct_state.into(),
            Fk::CtZone => self.ct_zone.into(),
            Fk::CtMark => self.ct_mark.into(),
        }
    }

    fn put(&mut self, k: Fk, v: u128) {
        // Truncation to the field's width is intended: v was masked to it by the caller.
        match k {
            Fk::InPort => self.in_port = v as u32,
            Fk::Metadata => self.metadata = v as u64,
            Fk::Reg(n) => {
                if let Some(r) = self.regs.get_mut(usize::from(n)) {
                    *r = v as u32;
                }
            }
            Fk::TunId => self.tun_id = v as u64,
            Fk::EthSrc => self.eth_src = u_mac(v),
            Fk::EthDst => self.eth_dst = u_mac(v),
            Fk::EthType => self.eth_type = v as u16,
            Fk::ArpOp => self.arp_op = v as u16,
            Fk::ArpSpa => self.arp_spa = Ipv4Addr::from(v as u32),
            Fk::ArpTpa => self.arp_tpa = Ipv4Addr::from(v as u32),
            Fk::ArpSha => self.arp_sha = u_mac(v),
            Fk::ArpTha => self.arp_tha = u_mac(v),
            Fk::Ip4Src => self.ip4_src = Ipv4Addr::from(v as u32),
            Fk::Ip4Dst => self.ip4_dst = Ipv4Addr::from(v as u32),
            Fk::Ip6Src => self.ip6_src = Ipv6Addr::from(v),
            Fk::Ip6Dst => self.ip6_dst = Ipv6Addr::from(v),
            Fk::IpProto => self.ip_proto = v as u8,
            Fk::TpSrc => self.tp_src = v as u16,
            Fk::TpDst => self.tp_dst = v as u16,
            Fk::NdTarget => self.nd_target = Ipv6Addr::from(v),
            Fk::NdSll => self.nd_sll = u_mac(v),
            Fk::NdTll => self.nd_tll = u_mac(v),
            Fk::CtState => self.ct_state = v as u32,
            Fk::CtZone => self.ct_zone = v as u16,
            Fk::CtMark => self.ct_mark = v as u32,
        }
    }

    fn matches(&self, m: &Match) -> bool {
        m.fields.iter().all(|f| match decompose(f) {
            Some((k, v, mask)) => {
                let mask = mask.unwrap_or(ones(width(k)));
                self.get(k) & mask == v & mask
            }
            None => false,
        })
    }

    fn set_field(&mut self, f: &Field) -> bool {
        match decompose(f) {
            Some((k, v, mask)) => {
                let mask = mask.unwrap_or(ones(width(k)));
                let cur = self.get(k);
                self.put(k, (cur & !mask) | (v & mask));
                true
            }
            None => false,
        }
    }

    fn read_bits(&self, k: Fk, ofs: u16, n: u16) -> u128 {
        self.get(k).checked_shr(u32::from(ofs)).unwrap_or(0) & ones(u32::from(n))
    }

    /// Writes `n` bits at `ofs` (bits past the field's width are dropped by `put`).
    fn write_bits(&mut self, k: Fk, ofs: u16, n: u16, v: u128) {
        let mask = ones(u32::from(n)).checked_shl(u32::from(ofs)).unwrap_or(0);
        let v = v.checked_shl(u32::from(ofs)).unwrap_or(0);
        let cur = self.get(k);
        self.put(k, (cur & !mask) | (v & mask));
    }

    /// A short ovs-ofctl-like description of the headers (for traces).
    pub fn headers(&self) -> String {
        let mut s = format!("eth_src={},eth_dst={}", self.eth_src, self.eth_dst);
        if self.tun_id != 0 {
            s = format!("tun_id={:#x},{s}", self.tun_id);
        }
        match self.eth_type {
            0x0806 => {
                s.push_str(&format!(
                    ",arp,arp_op={},arp_spa={},arp_tpa={},arp_sha={},arp_tha={}",
                    self.arp_op, self.arp_spa, self.arp_tpa, self.arp_sha, self.arp_tha
                ));
            }
            0x0800 => s.push_str(&format!(
                ",ip,nw_src={},nw_dst={},nw_proto={}",
                self.ip4_src, self.ip4_dst, self.ip_proto
            )),
            0x86dd => s.push_str(&format!(
                ",ipv6,ipv6_src={},ipv6_dst={},nw_proto={}",
                self.ip6_src, self.ip6_dst, self.ip_proto
            )),
            t => s.push_str(&format!(",dl_type={t:#06x}")),
        }
        if matches!(self.ip_proto, 6 | 17) && self.eth_type != 0x0806 {
            s.push_str(&format!(",tp_src={},tp_dst={}", self.tp_src, self.tp_dst));
        }
        s
    }
}

impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "in_port={},{}", self.in_port, self.headers())
    }
}

/// One installed flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowEntry {
    pub cookie: u64,
    pub priority: u16,
    pub r#match: Match,
    pub instructions: Vec<Instruction>,
}

/// One decision of a walk through the pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Nesting: 0 for the main pipeline, +1 inside each resubmit, group bucket or ct.
    pub depth: usize,
    pub table: u8,
    /// The matched flow, as `ovs-ofctl dump-flows` prints it; `None` on a table miss.
    pub flow: Option<String>,
    /// The matched flow's cookie and priority (`None` on a table miss).
    pub cookie: Option<u64>,
    pub priority: Option<u16>,
    /// The packet as it met this table (registers, conntrack state and mark).
    pub packet: Packet,
    /// What happened besides the flow's own actions (a skipped output, a group bucket).
    pub notes: Vec<String>,
}

/// A packet leaving the bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emitted {
    /// The OpenFlow port it leaves by (the input port for `output:IN_PORT`).
    pub ofport: u32,
    /// The packet as it leaves (after rewrites).
    pub packet: Packet,
}

/// The result of [`FlowTable::process`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub steps: Vec<Step>,
    pub outputs: Vec<Emitted>,
    /// Why each branch of the walk that emitted nothing ended.
    pub drops: Vec<String>,
}

impl Outcome {
    /// Output ports, sorted.
    pub fn ports(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.outputs.iter().map(|e| e.ofport).collect();
        v.sort_unstable();
        v
    }
}

/// Errors applying a flow mod or group mod to the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("flow mod command {0:?} is not modelled")]
    UnsupportedCommand(FlowModCommand),
    #[error("group mod command {0:?} is not modelled")]
    UnsupportedGroupCommand(GroupModCommand),
    #[error("group {0} already exists")]
    GroupExists(u32),
}

/// A software switch: tables of flows, and groups.
#[derive(Clone, Debug, Default)]
pub struct FlowTable {
    /// Per table, flows sorted by priority (highest first), then insertion order.
    tables: BTreeMap<u8, Vec<FlowEntry>>,
    groups: BTreeMap<u32, GroupSpec>,
}

impl FlowTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// A table holding exactly a compiled [`DesiredNode`].
    pub fn from_desired(d: &DesiredNode) -> Self {
        let mut t = FlowTable::new();
        for (id, g) in &d.groups {
            t.groups.insert(*id, g.clone());
        }
        for fm in d.flow_mods() {
            // An add never fails.
            let _ = t.apply_flow_mod(&fm);
        }
        t
    }

    /// Applies a flow mod with OpenFlow 1.3 semantics (add replaces an identical
    /// table/priority/match; modify-strict replaces instructions; delete-strict removes
    /// one flow; delete removes every flow whose cookie matches `cookie/cookie_mask` in the
    /// given table or all tables).
    pub fn apply_flow_mod(&mut self, fm: &FlowMod) -> Result<(), TableError> {
        let canon = fm.r#match.canonical();
        let same = |e: &FlowEntry| e.priority == fm.priority && e.r#match.canonical() == canon;
        match fm.command {
            FlowModCommand::Add => {
                let t = self.tables.entry(fm.table_id).or_default();
                t.retain(|e| !same(e));
                let at = t
                    .iter()
                    .position(|e| e.priority < fm.priority)
                    .unwrap_or(t.len());
                t.insert(
                    at,
                    FlowEntry {
                        cookie: fm.cookie,
                        priority: fm.priority,
                        r#match: fm.r#match.clone(),
                        instructions: fm.instructions.clone(),
                    },
                );
            }
            FlowModCommand::ModifyStrict | FlowModCommand::Modify => {
                let t = self.tables.entry(fm.table_id).or_default();
                let mut found = false;
                for e in t.iter_mut().filter(|e| same(e)) {
                    e.instructions = fm.instructions.clone();
                    e.cookie = fm.cookie;
                    found = true;
                }
                if !found {
                    let mut add = fm.clone();
                    add.command = FlowModCommand::Add;
                    return self.apply_flow_mod(&add);
                }
            }
            FlowModCommand::DeleteStrict => {
                if let Some(t) = self.tables.get_mut(&fm.table_id) {
                    t.retain(|e| !same(e));
                }
            }
            FlowModCommand::Delete => {
                for (id, t) in self.tables.iter_mut() {
                    if fm.table_id == openflow::types::TABLE_ALL || fm.table_id == *id {
                        t.retain(|e| (e.cookie & fm.cookie_mask) != (fm.cookie & fm.cookie_mask));
                    }
                }
            }
            c => return Err(TableError::UnsupportedCommand(c)),
        }
        Ok(())
    }

    /// Applies a group mod (add, modify, delete).
    pub fn apply_group_mod(&mut self, gm: &GroupMod) -> Result<(), TableError> {
        let spec = GroupSpec {
            group_type: gm.group_type,
            buckets: gm.buckets.clone(),
        };
        match gm.command {
            GroupModCommand::Add => {
                if self.groups.contains_key(&gm.group_id) {
                    return Err(TableError::GroupExists(gm.group_id));
                }
                self.groups.insert(gm.group_id, spec);
            }
            GroupModCommand::Modify => {
                self.groups.insert(gm.group_id, spec);
            }
            GroupModCommand::Delete => {
                if gm.group_id == openflow::types::group::ALL {
                    self.groups.clear();
                } else {
                    self.groups.remove(&gm.group_id);
                }
            }
            c => return Err(TableError::UnsupportedGroupCommand(c)),
        }
        Ok(())
    }

    /// Number of flows in all tables.
    pub fn flow_count(&self) -> usize {
        self.tables.values().map(Vec::len).sum()
    }

    /// Sends `packet` (with `in_port` set) through the pipeline from table 0. A `ct`
    /// action with `table=` continues with `ct_state` (e.g. `+trk+new`).
    pub fn process(&self, packet: &Packet, ct_state: u32) -> Outcome {
        self.process_ct(packet, ct_state, 0)
    }

    /// [`FlowTable::process`] where the connection conntrack finds also carries
    /// `ct_mark` (as a connection committed by an `allow-related` ACL does).
    pub fn process_ct(&self, packet: &Packet, ct_state: u32, ct_mark: u32) -> Outcome {
        self.process_zones(packet, ct_state, ct_mark, &BTreeMap::new())
    }

    /// [`FlowTable::process_ct`] where the connection's mark differs per conntrack zone
    /// (`zone_marks`; other zones report `ct_mark`), as it does for a connection that two
    /// ports' rules admitted, each in its own zone.
    pub fn process_zones(
        &self,
        packet: &Packet,
        ct_state: u32,
        ct_mark: u32,
        zone_marks: &BTreeMap<u16, u32>,
    ) -> Outcome {
        let mut w = Walk {
            table: self,
            ct_state,
            ct_mark,
            zone_marks,
            out: Outcome::default(),
        };
        let mut p = packet.clone();
        w.run(0, &mut p, 0);
        w.out
    }

    fn lookup(&self, table: u8, p: &Packet) -> Option<&FlowEntry> {
        self.tables
            .get(&table)
            .and_then(|t| t.iter().find(|e| p.matches(&e.r#match)))
    }
}

struct Walk<'a> {
    table: &'a FlowTable,
    ct_state: u32,
    ct_mark: u32,
    zone_marks: &'a BTreeMap<u16, u32>,
    out: Outcome,
}

impl Walk<'_> {
    /// Runs the pipeline from `table` on `p`, recording steps, outputs and drops.
    fn run(&mut self, mut table: u8, p: &mut Packet, depth: usize) {
        if depth > MAX_DEPTH {
            self.out.drops.push(format!(
                "nesting deeper than {MAX_DEPTH} (a resubmit loop?)"
            ));
            return;
        }
        loop {
            let Some(e) = self.table.lookup(table, p) else {
                self.out.steps.push(Step {
                    depth,
                    table,
                    flow: None,
                    cookie: None,
                    priority: None,
                    packet: p.clone(),
                    notes: vec!["no flow matched: table miss drops".into()],
                });
                self.out
                    .drops
                    .push(format!("table {table}: no flow matched (table miss)"));
                return;
            };
            let text = FlowMod::add(table, e.priority, e.r#match.clone(), e.instructions.clone())
                .with_cookie(e.cookie)
                .to_string();
            let step = self.out.steps.len();
            self.out.steps.push(Step {
                depth,
                table,
                flow: Some(text),
                cookie: Some(e.cookie),
                priority: Some(e.priority),
                packet: p.clone(),
                notes: Vec::new(),
            });
            let before = self.out.outputs.len();
            let mut next = None;
            let mut action_set: Vec<Action> = Vec::new();
            let insts = &e.instructions;
            for i in insts {
                if let Instruction::ApplyActions(a) = i {
                    self.actions(a, p, depth, step);
                }
            }
            for i in insts {
                match i {
                    Instruction::ClearActions => action_set.clear(),
                    Instruction::WriteActions(a) => action_set.extend(a.iter().cloned()),
                    Instruction::WriteMetadata { metadata, mask } => {
                        p.metadata = (p.metadata & !mask) | (metadata & mask);
                    }
                    Instruction::GotoTable(t) => next = Some(*t),
                    _ => {}
                }
            }
            match next {
                Some(t) if t > table => table = t,
                Some(t) => {
                    self.note(step, format!("goto_table:{t} does not go forward; ignored"));
                    return;
                }
                None => {
                    if !action_set.is_empty() {
                        self.actions(&action_set, p, depth, step);
                    }
                    if self.out.outputs.len() == before && !has_output(insts) {
                        self.out
                            .drops
                            .push(format!("table {table}: flow has no output action (drop)"));
                    }
                    return;
                }
            }
        }
    }

    fn note(&mut self, step: usize, n: String) {
        if let Some(s) = self.out.steps.get_mut(step) {
            s.notes.push(n);
        }
    }

    fn actions(&mut self, acts: &[Action], p: &mut Packet, depth: usize, step: usize) {
        if depth > MAX_DEPTH {
            self.out
                .drops
                .push(format!("nesting deeper than {MAX_DEPTH} (a group loop?)"));
            return;
        }
        for a in acts {
            match a {
                Action::Output { port: o, .. } => {
                    if *o == port::IN_PORT {
                        self.emit(p.in_port, p);
                    } else if *o == p.in_port {
                        self.note(step, format!("output:{o} skipped: it is the input port"));
                        self.out
                            .drops
                            .push(format!("output to input port {o} skipped"));
                    } else {
                        self.emit(*o, p);
                    }
                }
                Action::Group(g) => {
                    let Some(spec) = self.table.groups.get(g) else {
                        self.note(step, format!("group {g} does not exist"));
                        self.out.drops.push(format!("group {g} does not exist"));
                        continue;
                    };
                    let buckets: Vec<Bucket> = spec.buckets.clone();
                    if buckets.is_empty() {
                        self.out.drops.push(format!("group {g} has no buckets"));
                    }
                    for (i, b) in buckets.iter().enumerate() {
                        let mut copy = p.clone();
                        self.note(step, format!("group {g} bucket {i}"));
                        self.actions(&b.actions, &mut copy, depth + 1, step);
                    }
                }
                Action::SetField(f) => {
                    if !p.set_field(f) {
                        self.note(step, format!("set_field of {} not modelled", f.name()));
                    }
                }
                Action::Nicira(n) => self.nicira(n, p, depth, step),
                other => self.note(step, format!("action {other} not modelled; ignored")),
            }
        }
    }

    fn nicira(&mut self, n: &Nicira, p: &mut Packet, depth: usize, step: usize) {
        match n {
            Nicira::RegLoad2(f) => {
                if !p.set_field(f) {
                    self.note(step, format!("load of {} not modelled", f.name()));
                }
            }
            Nicira::RegLoad { dst, value } => match header_fk(&dst.field) {
                Some(k) => p.write_bits(k, dst.ofs, dst.n_bits, u128::from(*value)),
                None => self.note(step, format!("load into {dst} not modelled")),
            },
            Nicira::RegMove { src, dst } => match (header_fk(&src.field), header_fk(&dst.field)) {
                (Some(s), Some(d)) => {
                    let v = p.read_bits(s, src.ofs, src.n_bits);
                    p.write_bits(d, dst.ofs, dst.n_bits, v);
                }
                _ => self.note(step, format!("move {src}->{dst} not modelled")),
            },
            Nicira::ResubmitTable { in_port, table, .. } => {
                let saved = p.in_port;
                if *in_port != 0xfff8 {
                    p.in_port = port::from_ofp10(*in_port);
                }
                self.run(*table, p, depth + 1);
                p.in_port = saved;
            }
            Nicira::Ct(ct) => {
                if ct.recirc_table != openflow::Ct::NO_RECIRC {
                    let mut copy = p.clone();
                    let zone = match &ct.zone {
                        openflow::CtZone::Immediate(z) => *z,
                        openflow::CtZone::Field(sf) => match header_fk(&sf.field) {
                            Some(k) => p.read_bits(k, sf.ofs, sf.n_bits) as u16,
                            None => 0,
                        },
                    };
                    copy.ct_state = self.ct_state;
                    copy.ct_zone = zone;
                    copy.ct_mark = self.zone_marks.get(&zone).copied().unwrap_or(self.ct_mark);
                    self.run(ct.recirc_table, &mut copy, depth + 1);
                }
            }
            Nicira::CtClear => {
                p.ct_state = 0;
                p.ct_zone = 0;
                p.ct_mark = 0;
            }
            other => self.note(
                step,
                format!(
                    "action {} not modelled; ignored",
                    Action::Nicira(other.clone())
                ),
            ),
        }
    }

    fn emit(&mut self, ofport: u32, p: &Packet) {
        self.out.outputs.push(Emitted {
            ofport,
            packet: p.clone(),
        });
    }
}

fn has_output(insts: &[Instruction]) -> bool {
    insts.iter().any(|i| match i {
        Instruction::ApplyActions(a) | Instruction::WriteActions(a) => a.iter().any(|a| {
            matches!(
                a,
                Action::Output { .. } | Action::Group(_) | Action::Nicira(Nicira::ResubmitTable { .. })
            ) || matches!(a, Action::Nicira(Nicira::Ct(c)) if c.recirc_table != openflow::Ct::NO_RECIRC)
        }),
        _ => false,
    })
}
