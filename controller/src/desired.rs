//! What Weft wants one hypervisor's integration bridge to hold: the contract between the
//! pipeline compiler (which produces it) and the southbound sessions (which install it,
//! OpenFlow, and create the tunnel and patch ports it names, OVSDB). Plain data, no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use openflow::{Bucket, FlowContent, FlowKey, FlowMod, GroupMod, GroupType};
use uuid::Uuid;

use crate::model::Direction;
use crate::topology::EncapType;

/// A tunnel port a node needs: one per remote node that shares a logical switch with it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TunnelSpec {
    /// The remote node's system-id (`external_ids:weft-remote`).
    pub remote: String,
    pub remote_ip: IpAddr,
    pub local_ip: IpAddr,
    pub encap: EncapType,
}

/// The `remote` of a flood VTEP's [`TunnelSpec`]: `vtep:` + its address. Hypervisor
/// system-ids are names, so this prefix keeps the two kinds of remote apart in
/// `NodeView::tunnels` and `external_ids:weft-remote`.
pub const VTEP_REMOTE_PREFIX: &str = "vtep:";

/// The tunnel remote that stands for the external VXLAN endpoint at `ip`.
pub fn vtep_remote(ip: IpAddr) -> String {
    format!("{VTEP_REMOTE_PREFIX}{ip}")
}

impl TunnelSpec {
    /// The tunnel to an external VXLAN endpoint (a flood-and-learn VTEP): always VXLAN,
    /// whatever the node's own encapsulation, since that is all such an endpoint speaks.
    pub fn external_vtep(remote_ip: IpAddr, local_ip: IpAddr) -> TunnelSpec {
        TunnelSpec {
            remote: vtep_remote(remote_ip),
            remote_ip,
            local_ip,
            encap: EncapType::Vxlan,
        }
    }

    /// The endpoint's address if this is a tunnel to an external VTEP, not a hypervisor.
    pub fn vtep_ip(&self) -> Option<IpAddr> {
        self.remote
            .strip_prefix(VTEP_REMOTE_PREFIX)
            .and_then(|s| s.parse().ok())
    }
}

/// A patch-port pair a node needs between its integration bridge and the bridge of one
/// physical network: one per physnet that a provider switch with a local port uses.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PatchSpec {
    pub physnet: String,
    /// The bridge the node maps `physnet` to; `None` when its `weft-bridge-mappings`
    /// does not name it (the OVSDB session says so in the log; nothing is patched).
    pub bridge: Option<String>,
}

/// An OpenFlow group as Weft wants it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupSpec {
    pub group_type: GroupType,
    pub buckets: Vec<Bucket>,
}

/// A flow table: what a node should hold or what a switch holds, keyed for diffing.
///
/// Keys and contents are reference-counted so that nodes can share them: most of a node's
/// flows are about other nodes' ports (ARP answers, L2 lookups), and the same flow is
/// wanted by every member of a switch. The compiler hands out one copy for all of them
/// ([`crate::compiler::intern`]); at 3,000 hypervisors that is most of weftd's memory.
pub type Flows = BTreeMap<Arc<FlowKey>, Arc<FlowContent>>;

/// `flows` with its parts owned: for comparing with a table that shares nothing (a decoded
/// dump, the OpenFlow model's tables in tests and in the simulator).
pub fn owned_flows(flows: &Flows) -> BTreeMap<FlowKey, FlowContent> {
    flows
        .iter()
        .map(|(k, c)| (FlowKey::clone(k), FlowContent::clone(c)))
        .collect()
}

/// Everything Weft wants on one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredNode {
    /// Shared with the compiler's record of the node's last assembly
    /// (`compiler::parts`): when one switch's piece changes, the next state is a copy of
    /// this table with that piece's differences, not a merge of every piece again.
    pub flows: Arc<Flows>,
    /// Shared with the compiler's pieces of the node (`compiler::parts`): a node is
    /// reassembled from them on every recompile, and a group is often dozens of buckets.
    pub groups: BTreeMap<u32, Arc<GroupSpec>>,
    pub tunnels: BTreeSet<TunnelSpec>,
    /// The physical networks this node must be patched to (provider switches).
    pub patches: BTreeSet<PatchSpec>,
    /// Logical ports bound on this node whose flows are all in `flows`: once a switch
    /// acknowledges this state, these are `weft-installed`.
    pub bound_ports: BTreeSet<Uuid>,
    /// Local ports to announce to external VXLAN endpoints once installed here (their
    /// switch has flood VTEPs): a port that just bound here, e.g. a VM that moved, is
    /// announced with gratuitous ARP so legacy VTEPs and hosts update their caches.
    pub announce: BTreeMap<Uuid, Announcement>,
    /// The ACLs whose flows are in `flows`, by cookie: what the installer needs to name
    /// the ACL behind a flow the switch rejects and to fail closed without it.
    pub acls: BTreeMap<u64, AclFlows>,
}

/// What announces one local port to a switch's external VXLAN endpoints: a gratuitous
/// ARP per IPv4 address, sent straight into each endpoint's tunnel with the VNI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub vni: u32,
    pub mac: crate::model::MacAddr,
    pub ipv4: Vec<std::net::Ipv4Addr>,
    /// The node's tunnel ports to the endpoints.
    pub tunnel_ofports: Vec<u32>,
}

/// One ACL's place in a node's flows (see [`DesiredNode::acls`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFlows {
    pub acl: Uuid,
    pub port: Uuid,
    pub direction: Direction,
    /// Cookies of every flow to withhold, with this ACL's own, when the switch refuses
    /// them, so that what remains is never more permissive than the rules: for `allow`
    /// and `allow-related` only its own (its traffic falls to the direction's default
    /// deny); for a `drop` also every allow rule of the same port and direction below it
    /// (withholding the drop alone would admit what it blocks).
    pub withhold: BTreeSet<u64>,
}

impl DesiredNode {
    /// This state without the flows of the ACLs named by `cookies` (and the flows
    /// [`AclFlows::withhold`] says go with them): the fail-closed fallback when a switch
    /// refuses an ACL's flows. Other cookies pass through untouched.
    pub fn without_acls(&self, cookies: &BTreeSet<u64>) -> DesiredNode {
        let mut gone: BTreeSet<u64> = BTreeSet::new();
        for c in cookies {
            if let Some(a) = self.acls.get(c) {
                gone.insert(*c);
                gone.extend(a.withhold.iter().copied());
            }
        }
        let mut out = self.clone();
        Arc::make_mut(&mut out.flows).retain(|_, c| !gone.contains(&c.cookie));
        out.acls.retain(|c, _| !gone.contains(c));
        out
    }
}

/// The OFPFC_ADD that installs one flow of a desired or installed flow table.
pub fn flow_add(key: &FlowKey, content: &FlowContent) -> FlowMod {
    FlowMod::add(
        key.table_id,
        key.priority,
        key.r#match.clone(),
        content.instructions.clone(),
    )
    .with_cookie(content.cookie)
}

impl DesiredNode {
    /// One OFPFC_ADD per flow, in table/priority/match order.
    pub fn flow_mods(&self) -> Vec<FlowMod> {
        self.flows.iter().map(|(k, c)| flow_add(k, c)).collect()
    }

    /// One OFPGC_ADD per group.
    pub fn group_mods(&self) -> Vec<GroupMod> {
        self.groups
            .iter()
            .map(|(id, g)| GroupMod::add(*id, g.group_type, g.buckets.clone()))
            .collect()
    }

    /// The flows in `ovs-ofctl add-flows` syntax, one per line (also what
    /// `ovs-ofctl dump-flows --no-stats` prints for them).
    pub fn flows_text(&self) -> Vec<String> {
        self.flow_mods().iter().map(ToString::to_string).collect()
    }

    /// The groups in `ovs-ofctl add-groups` / `dump-groups` syntax, one per line.
    pub fn groups_text(&self) -> Vec<String> {
        self.groups
            .iter()
            .map(|(id, g)| format_group(*id, g))
            .collect()
    }
}

/// `group_id=N,type=all,bucket=actions=...` as `ovs-ofctl dump-groups` prints it.
pub fn format_group(id: u32, g: &GroupSpec) -> String {
    let t = match g.group_type {
        GroupType::All => "all".to_string(),
        GroupType::Select => "select".into(),
        GroupType::Indirect => "indirect".into(),
        GroupType::FastFailover => "ff".into(),
        GroupType::Unknown(n) => format!("type{n}"),
    };
    let mut s = format!("group_id={id},type={t}");
    for b in &g.buckets {
        s.push_str(",bucket=actions=");
        s.push_str(&openflow::print::format_actions(&b.actions));
    }
    s
}
