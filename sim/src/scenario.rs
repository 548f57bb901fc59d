//! The logical configuration of a simulated deployment: N hypervisors with 21 VM NICs
//! each, the NICs' logical ports grouped into logical switches of 2 to 64 ports (a mix
//! whose mean is about 9, so 3,000 nodes give about 7,000 switches, NVP's evaluation
//! shape), and one ACL set (SSH allowed in and related traffic back, ICMP allowed) on
//! every 50th port. The ports of one switch sit on distinct, neighbouring hypervisors
//! (tenants are placed near each other), which bounds each node's tunnel mesh.
//! [`Scenario::with_routers`] adds a distributed router to every group of consecutive
//! switches (one router per four switches in the bench's routed runs), each switch
//! attached through a router port at `.254` of its /24.
//!
//! [`Scenario::write_store`] puts the whole configuration into a fresh weftd data
//! directory through the controller's `Store` API in one atomic commit, which is far
//! faster than 70,000 API calls (see the README for the measured numbers).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use uuid::Uuid;
use weft::model::{
    Acl, AclAction, Change, Direction, Ethertype, LogicalModel, LogicalPort, LogicalRouter,
    LogicalSwitch, MacAddr, Protocol, RouterPort,
};
use weft::store::{RedbStore, Store};

use crate::node::NodeSpec;

/// VM NICs per hypervisor (NVP's evaluation: 21).
pub const VIFS_PER_NODE: usize = 21;

/// Switch sizes as (ports, how many in each round of 64 switches): mostly small
/// switches, one of 64 ports; 590 ports per round, a mean of about 9.2.
const MIX: [(usize, usize); 15] = [
    (2, 12),
    (3, 8),
    (4, 8),
    (5, 6),
    (6, 6),
    (8, 6),
    (10, 4),
    (12, 3),
    (16, 3),
    (20, 2),
    (24, 2),
    (32, 1),
    (40, 1),
    (48, 1),
    (64, 1),
];

/// The size of switch number `i`: the round's sizes interleaved (large ones spread out).
fn switch_size(i: usize) -> usize {
    let round: usize = MIX.iter().map(|(_, n)| n).sum();
    let mut sizes: Vec<usize> = MIX
        .iter()
        .flat_map(|(s, n)| std::iter::repeat_n(*s, *n))
        .collect();
    // Interleave small and large: even positions from the front, odd from the back.
    let mut out = Vec::with_capacity(round);
    while !sizes.is_empty() {
        out.push(sizes.remove(0));
        if let Some(l) = sizes.pop() {
            out.push(l);
        }
    }
    out[i % round]
}

/// A generated deployment.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub nodes: Vec<NodeSpec>,
    pub switches: Vec<LogicalSwitch>,
    pub ports: Vec<LogicalPort>,
    pub acls: Vec<Acl>,
    pub routers: Vec<LogicalRouter>,
    pub router_ports: Vec<RouterPort>,
    /// Index in `switches` of a 64-port switch (for the incremental bench).
    pub big_switch: Option<usize>,
}

/// The /24 of switch number `idx` (its ports are `.1` up, its router port `.254`).
fn switch_subnet(idx: usize) -> [u8; 3] {
    [10, (idx >> 8) as u8, (idx & 0xff) as u8]
}

/// The system-id of simulated node `i`.
pub fn system_id(i: usize) -> String {
    format!("sim-{i:05}")
}

/// Node `i`'s tunnel endpoint, from 10.128.0.0/9.
pub fn encap_ip(i: usize) -> Ipv4Addr {
    let n = 0x0a80_0000u32 + 1 + i as u32;
    Ipv4Addr::from(n)
}

pub fn port_mac(global: usize) -> MacAddr {
    let g = global as u32;
    let b = g.to_be_bytes();
    MacAddr([0x02, 0x77, b[0], b[1], b[2], b[3]])
}

impl Scenario {
    /// Its size in one line, as the benches print it.
    pub fn shape(&self) -> String {
        format!(
            "{} switches, {} ports, {} ACLs, {} routers",
            self.switches.len(),
            self.ports.len(),
            self.acls.len(),
            self.routers.len()
        )
    }

    /// `n` nodes × [`VIFS_PER_NODE`] ports.
    pub fn generate(n: usize) -> Scenario {
        let total = n * VIFS_PER_NODE;
        // Slots in slot-major order: consecutive slots are on consecutive, distinct nodes.
        let slot_node = |k: usize| k % n.max(1);
        let mut switches = Vec::new();
        let mut ports = Vec::new();
        let mut acls = Vec::new();
        let mut owner: Vec<(usize, String)> = Vec::with_capacity(total); // (node, port name)
        let mut k = 0usize;
        let mut zone: u16 = 0;
        let mut big_switch = None;
        while k < total {
            let want = switch_size(switches.len()).min(n.max(2));
            let size = want.min(total - k);
            let idx = switches.len();
            let sw = LogicalSwitch {
                id: Uuid::new_v4(),
                name: format!("ls{idx:05}"),
                vni: idx as u32 + 1,
                description: String::new(),
                provider: None,
                flood_vteps: Vec::new(),
            };
            if size == 64 && big_switch.is_none() {
                big_switch = Some(idx);
            }
            for j in 0..size {
                let global = k + j;
                zone += 1;
                let name = format!("p{global:06}");
                let [a, b, c] = switch_subnet(idx);
                let ip = Ipv4Addr::new(a, b, c, j as u8 + 1);
                let p = LogicalPort {
                    id: Uuid::new_v4(),
                    name: name.clone(),
                    switch: sw.id,
                    mac: port_mac(global),
                    ips: vec![IpAddr::V4(ip)],
                    port_security: true,
                    key: j as u16 + 1,
                    zone,
                };
                if global.is_multiple_of(50) {
                    acls.push(Acl {
                        id: Uuid::new_v4(),
                        port: p.id,
                        direction: Direction::Ingress,
                        priority: 100,
                        protocol: Some(Protocol::Tcp),
                        ethertype: Ethertype::Ipv4,
                        remote_cidr: "10.0.0.0/8".parse().ok(),
                        port_min: Some(22),
                        port_max: Some(22),
                        action: AclAction::AllowRelated,
                    });
                    acls.push(Acl {
                        id: Uuid::new_v4(),
                        port: p.id,
                        direction: Direction::Ingress,
                        priority: 90,
                        protocol: Some(Protocol::Icmp),
                        ethertype: Ethertype::Ipv4,
                        remote_cidr: None,
                        port_min: None,
                        port_max: None,
                        action: AclAction::Allow,
                    });
                }
                owner.push((slot_node(global), name));
                ports.push(p);
            }
            switches.push(sw);
            k += size;
        }
        let mut nodes: Vec<NodeSpec> = (0..n)
            .map(|i| NodeSpec {
                system_id: system_id(i),
                encap_ip: encap_ip(i),
                datapath_id: 0x5eed_0000_0000 + i as u64 + 1,
                vifs: Vec::new(),
            })
            .collect();
        for (p, (node, name)) in ports.iter().zip(owner) {
            let spec = &mut nodes[node];
            let vm = format!("vm{}", spec.vifs.len() + 1);
            spec.vifs.push((vm, name, p.mac.to_string()));
        }
        Scenario {
            nodes,
            switches,
            ports,
            acls,
            routers: Vec::new(),
            router_ports: Vec::new(),
            big_switch,
        }
    }

    /// Attaches every `every` consecutive switches to one router (none when 0): the
    /// routed shape of the bench. Subnets are disjoint (one /24 per switch), so every
    /// router routes between all of its switches.
    pub fn with_routers(mut self, every: usize) -> Scenario {
        if every == 0 {
            return self;
        }
        for (i, sw) in self.switches.iter().enumerate() {
            if i % every == 0 {
                let k = self.routers.len();
                self.routers.push(LogicalRouter {
                    id: Uuid::new_v4(),
                    name: format!("lr{k:05}"),
                    description: String::new(),
                    key: k as u32 + 1,
                });
            }
            let Some(router) = self.routers.last() else {
                continue;
            };
            let [a, b, c] = switch_subnet(i);
            let n = (i as u32).to_be_bytes();
            self.router_ports.push(RouterPort {
                id: Uuid::new_v4(),
                name: format!("lrp{i:05}"),
                router: router.id,
                switch: sw.id,
                mac: MacAddr([0x02, 0x78, n[0], n[1], n[2], n[3]]),
                ips: vec![
                    format!("{a}.{b}.{c}.254/24")
                        .parse()
                        .expect("router port CIDR"),
                ],
            });
        }
        self
    }

    /// The model weftd will load from the store.
    pub fn model(&self) -> Result<LogicalModel, weft::model::ModelError> {
        LogicalModel::from_objects(
            1,
            self.switches.clone(),
            self.ports.clone(),
            self.acls.clone(),
        )?
        .with_routing(self.routers.clone(), self.router_ports.clone(), Vec::new())
    }

    /// Writes the whole configuration into `<data_dir>/weft.redb` in one commit.
    pub fn write_store(&self, data_dir: &Path) -> anyhow::Result<()> {
        let mut store = RedbStore::open(data_dir)?;
        let loaded = store.load()?;
        anyhow::ensure!(
            loaded.switches.is_empty() && loaded.ports.is_empty(),
            "{} already holds a configuration",
            data_dir.display()
        );
        store.commit(1, &self.changes())?;
        Ok(())
    }

    /// The configuration as store writes, owners before what they own.
    pub fn changes(&self) -> Vec<Change> {
        let mut changes: Vec<Change> = Vec::with_capacity(
            self.switches.len()
                + self.ports.len()
                + self.acls.len()
                + self.routers.len()
                + self.router_ports.len(),
        );
        changes.extend(self.switches.iter().cloned().map(Change::PutSwitch));
        changes.extend(self.ports.iter().cloned().map(Change::PutPort));
        changes.extend(self.acls.iter().cloned().map(Change::PutAcl));
        changes.extend(self.routers.iter().cloned().map(Change::PutRouter));
        changes.extend(self.router_ports.iter().cloned().map(Change::PutRouterPort));
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_at_3000_nodes() {
        let s = Scenario::generate(3000);
        assert_eq!(s.ports.len(), 63_000);
        assert!(
            (6_000..8_000).contains(&s.switches.len()),
            "{}",
            s.switches.len()
        );
        assert!(s.nodes.iter().all(|n| n.vifs.len() == VIFS_PER_NODE));
        assert!(s.big_switch.is_some());
        s.model().expect("a consistent model");
    }

    #[test]
    fn routers_attach_every_fourth_switch_group() {
        let s = Scenario::generate(100).with_routers(4);
        assert_eq!(s.routers.len(), s.switches.len().div_ceil(4));
        assert_eq!(s.router_ports.len(), s.switches.len());
        let m = s.model().expect("a consistent routed model");
        for sw in &s.switches {
            assert!(m.router_port_of_switch(&sw.id).is_some());
        }
    }

    #[test]
    fn ports_of_a_switch_are_on_distinct_nodes() {
        let s = Scenario::generate(100);
        let mut node_of = std::collections::HashMap::new();
        for n in &s.nodes {
            for (_, p, _) in &n.vifs {
                node_of.insert(p.clone(), n.system_id.clone());
            }
        }
        for sw in &s.switches {
            let nodes: std::collections::BTreeSet<_> = s
                .ports
                .iter()
                .filter(|p| p.switch == sw.id)
                .map(|p| node_of[&p.name].clone())
                .collect();
            let n = s.ports.iter().filter(|p| p.switch == sw.id).count();
            assert_eq!(nodes.len(), n, "switch {}", sw.name);
        }
    }
}
