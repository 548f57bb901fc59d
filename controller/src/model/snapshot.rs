//! [`LogicalModel`]: one immutable, consistent snapshot of every object, the indexes that
//! enforce uniqueness (names, VNIs, MACs per switch, ACL priorities), the allocators for
//! VNIs, port keys and conntrack zones, and the startup check of stored objects. The
//! routing objects' maps and indexes live in [`RoutingTables`](super::routing_tables).

use std::fmt;

use imbl::{HashMap, OrdMap, OrdSet};
use uuid::Uuid;

use super::routing_tables::RoutingTables;
use super::vtep_binding::VtepBindingTables;
use super::zones::ZoneBitmap;
use super::{
    Acl, Change, Direction, LogicalPort, LogicalRouter, LogicalSwitch, MacAddr, ModelDelta,
    ObjectKind, PORT_KEY_MAX, Route, RouterPort, VNI_MAX, VtepBinding,
};

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
    routing: RoutingTables,
    vteps: VtepBindingTables,
}

/// Why stored objects do not form a valid model (found at startup).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("port {port} refers to switch {switch}, which does not exist")]
    DanglingPort { port: Uuid, switch: Uuid },
    #[error("acl {acl} refers to port {port}, which does not exist")]
    DanglingAcl { acl: Uuid, port: Uuid },
    #[error("router port {router_port} refers to {what} {id}, which does not exist")]
    DanglingRouterPort {
        router_port: Uuid,
        what: &'static str,
        id: Uuid,
    },
    #[error("route {route} refers to router {router}, which does not exist")]
    DanglingRoute { route: Uuid, router: Uuid },
    #[error("vtep binding {binding} refers to switch {switch}, which does not exist")]
    DanglingVtepBinding { binding: Uuid, switch: Uuid },
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
            .field("routers", &self.routing.routers.len())
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

    /// Adds stored routers, router ports and routes to a model built by
    /// [`from_objects`](Self::from_objects), with the same checks.
    pub fn with_routing(
        mut self,
        routers: Vec<LogicalRouter>,
        router_ports: Vec<RouterPort>,
        routes: Vec<Route>,
    ) -> Result<Self, ModelError> {
        let dup = |kind, id, what: String| ModelError::Duplicate { kind, id, what };
        for r in routers {
            if self.routing.router_named(&r.name).is_some() {
                return Err(dup(ObjectKind::Router, r.id, format!("name {:?}", r.name)));
            }
            if self.routing.router_key_taken(r.key) {
                return Err(dup(ObjectKind::Router, r.id, format!("key {}", r.key)));
            }
            self.apply(&Change::PutRouter(r));
        }
        for rp in router_ports {
            let dangling = |what, id| ModelError::DanglingRouterPort {
                router_port: rp.id,
                what,
                id,
            };
            if !self.routing.routers.contains_key(&rp.router) {
                return Err(dangling("router", rp.router));
            }
            if !self.switches.contains_key(&rp.switch) {
                return Err(dangling("switch", rp.switch));
            }
            if self.routing.router_port_named(&rp.name).is_some() {
                return Err(dup(
                    ObjectKind::RouterPort,
                    rp.id,
                    format!("name {:?}", rp.name),
                ));
            }
            if self.routing.router_port_of_switch(&rp.switch).is_some() {
                return Err(dup(
                    ObjectKind::RouterPort,
                    rp.id,
                    format!("router on switch {}", rp.switch),
                ));
            }
            self.apply(&Change::PutRouterPort(rp));
        }
        for r in routes {
            if !self.routing.routers.contains_key(&r.router) {
                return Err(ModelError::DanglingRoute {
                    route: r.id,
                    router: r.router,
                });
            }
            self.apply(&Change::PutRoute(r));
        }
        Ok(self)
    }

    /// Adds stored hardware VTEP bindings, with the same checks as the writer's.
    pub fn with_vtep_bindings(mut self, bindings: Vec<VtepBinding>) -> Result<Self, ModelError> {
        for b in bindings {
            if !self.switches.contains_key(&b.switch) {
                return Err(ModelError::DanglingVtepBinding {
                    binding: b.id,
                    switch: b.switch,
                });
            }
            if self.vteps.at(&b.vtep, &b.port, b.vlan).is_some() {
                return Err(ModelError::Duplicate {
                    kind: ObjectKind::VtepBinding,
                    id: b.id,
                    what: format!("{} port {} vlan {}", b.vtep, b.port, b.vlan),
                });
            }
            self.apply(&Change::PutVtepBinding(b));
        }
        Ok(self)
    }

    pub fn vtep_bindings(&self) -> impl Iterator<Item = &VtepBinding> {
        self.vteps.bindings.values()
    }

    pub fn vtep_binding(&self, id: &Uuid) -> Option<&VtepBinding> {
        self.vteps.bindings.get(id)
    }

    /// The binding of `(vtep, port, vlan)`, if there is one.
    pub fn vtep_binding_at(&self, vtep: &str, port: &str, vlan: u16) -> Option<&VtepBinding> {
        self.vteps.at(vtep, port, vlan)
    }

    /// The VTEP bindings attached to `switch`, in id order.
    pub fn vtep_bindings_of_switch(&self, switch: &Uuid) -> impl Iterator<Item = &VtepBinding> {
        self.vteps.of_switch(switch)
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

    pub fn routers(&self) -> impl Iterator<Item = &LogicalRouter> {
        self.routing.routers.values()
    }

    pub fn router_ports(&self) -> impl Iterator<Item = &RouterPort> {
        self.routing.router_ports.values()
    }

    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routing.routes.values()
    }

    pub fn router(&self, id: &Uuid) -> Option<&LogicalRouter> {
        self.routing.routers.get(id)
    }

    pub fn router_port(&self, id: &Uuid) -> Option<&RouterPort> {
        self.routing.router_ports.get(id)
    }

    pub fn route(&self, id: &Uuid) -> Option<&Route> {
        self.routing.routes.get(id)
    }

    /// Resolves a router by name or id.
    pub fn find_router(&self, name_or_id: &str) -> Option<&LogicalRouter> {
        match Uuid::parse_str(name_or_id) {
            Ok(id) => self.routing.routers.get(&id),
            Err(_) => self.routing.router_named(name_or_id),
        }
    }

    /// Resolves a router port by name or id.
    pub fn find_router_port(&self, name_or_id: &str) -> Option<&RouterPort> {
        match Uuid::parse_str(name_or_id) {
            Ok(id) => self.routing.router_ports.get(&id),
            Err(_) => self.routing.router_port_named(name_or_id),
        }
    }

    /// The router port attaching `switch` to its router, if it has one.
    pub fn router_port_of_switch(&self, switch: &Uuid) -> Option<&RouterPort> {
        self.routing.router_port_of_switch(switch)
    }

    /// A router's ports, in id order.
    pub fn ports_of_router(&self, router: &Uuid) -> impl Iterator<Item = &RouterPort> {
        self.routing.ports_of_router(router)
    }

    /// A router's static routes, in id order.
    pub fn routes_of_router(&self, router: &Uuid) -> impl Iterator<Item = &Route> {
        self.routing.routes_of_router(router)
    }

    pub(crate) fn router_name_taken(&self, name: &str) -> bool {
        self.routing.router_named(name).is_some()
    }

    pub(crate) fn router_port_name_taken(&self, name: &str) -> bool {
        self.routing.router_port_named(name).is_some()
    }

    /// Lowest router key not in use, for a new router.
    pub(crate) fn free_router_key(&self) -> Option<u32> {
        self.routing.free_router_key()
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

    /// Resolves a name or an id (names can never parse as UUIDs, see [`check_name`](super::check_name)).
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
            routers: ids(&older.routing.routers, &self.routing.routers),
            router_ports: ids(&older.routing.router_ports, &self.routing.router_ports),
            routes: ids(&older.routing.routes, &self.routing.routes),
            vtep_bindings: ids(&older.vteps.bindings, &self.vteps.bindings),
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
            Change::PutRouter(r) => self.routing.put_router(r),
            Change::DeleteRouter { id } => self.routing.delete_router(id),
            Change::PutRouterPort(rp) => self.routing.put_router_port(rp),
            Change::DeleteRouterPort { id } => self.routing.delete_router_port(id),
            Change::PutRoute(r) => self.routing.put_route(r),
            Change::DeleteRoute { id } => self.routing.delete_route(id),
            Change::PutVtepBinding(b) => self.vteps.put(b),
            Change::DeleteVtepBinding { id } => self.vteps.delete(id),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_vni_fills_gaps() {
        let mut m = LogicalModel::default();
        for vni in [1, 2, 4] {
            m.apply(&Change::PutSwitch(LogicalSwitch {
                id: Uuid::new_v4(),
                name: format!("s{vni}"),
                vni,
                description: String::new(),
                provider: None,
                flood_vteps: Vec::new(),
            }));
        }
        assert_eq!(m.free_vni(), Some(3));
    }
}
