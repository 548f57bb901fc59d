//! [`RoutingTables`]: the routers, router ports and routes of one model snapshot, with the
//! indexes that enforce their uniqueness rules (router names and keys, router port names,
//! one router per switch) and answer the compiler's questions (which router a switch is
//! attached to, a router's ports and routes). Persistent maps, like the rest of the
//! snapshot, so cloning is O(1).

use imbl::{HashMap, OrdMap, OrdSet};
use uuid::Uuid;

use super::{LogicalRouter, ROUTER_KEY_MAX, Route, RouterPort};

#[derive(Clone, Default)]
pub(super) struct RoutingTables {
    pub(super) routers: OrdMap<Uuid, LogicalRouter>,
    pub(super) router_ports: OrdMap<Uuid, RouterPort>,
    pub(super) routes: OrdMap<Uuid, Route>,
    router_by_name: HashMap<String, Uuid>,
    router_by_key: OrdMap<u32, Uuid>,
    router_port_by_name: HashMap<String, Uuid>,
    /// switch -> the router port attaching it (a switch attaches to at most one router).
    router_port_of_switch: OrdMap<Uuid, Uuid>,
    ports_of_router: OrdMap<Uuid, OrdSet<Uuid>>,
    routes_of_router: OrdMap<Uuid, OrdSet<Uuid>>,
}

impl RoutingTables {
    pub(super) fn router_named(&self, name: &str) -> Option<&LogicalRouter> {
        self.router_by_name
            .get(name)
            .and_then(|id| self.routers.get(id))
    }

    pub(super) fn router_port_named(&self, name: &str) -> Option<&RouterPort> {
        self.router_port_by_name
            .get(name)
            .and_then(|id| self.router_ports.get(id))
    }

    pub(super) fn router_key_taken(&self, key: u32) -> bool {
        self.router_by_key.contains_key(&key)
    }

    pub(super) fn router_port_of_switch(&self, switch: &Uuid) -> Option<&RouterPort> {
        self.router_port_of_switch
            .get(switch)
            .and_then(|id| self.router_ports.get(id))
    }

    pub(super) fn ports_of_router(&self, router: &Uuid) -> impl Iterator<Item = &RouterPort> {
        self.ports_of_router
            .get(router)
            .into_iter()
            .flat_map(|set| set.iter())
            .filter_map(|id| self.router_ports.get(id))
    }

    pub(super) fn routes_of_router(&self, router: &Uuid) -> impl Iterator<Item = &Route> {
        self.routes_of_router
            .get(router)
            .into_iter()
            .flat_map(|set| set.iter())
            .filter_map(|id| self.routes.get(id))
    }

    /// Lowest router key not in use.
    pub(super) fn free_router_key(&self) -> Option<u32> {
        let mut expected = 1u32;
        for &key in self.router_by_key.keys() {
            if key != expected {
                break;
            }
            expected += 1;
        }
        (expected <= ROUTER_KEY_MAX).then_some(expected)
    }

    pub(super) fn put_router(&mut self, r: &LogicalRouter) {
        if let Some(old) = self.routers.get(&r.id).cloned() {
            self.router_by_name.remove(&old.name);
            self.router_by_key.remove(&old.key);
        }
        self.router_by_name.insert(r.name.clone(), r.id);
        self.router_by_key.insert(r.key, r.id);
        self.routers.insert(r.id, r.clone());
    }

    pub(super) fn delete_router(&mut self, id: &Uuid) {
        if let Some(old) = self.routers.remove(id) {
            self.router_by_name.remove(&old.name);
            self.router_by_key.remove(&old.key);
        }
        self.ports_of_router.remove(id);
        self.routes_of_router.remove(id);
    }

    pub(super) fn put_router_port(&mut self, rp: &RouterPort) {
        self.unindex_router_port(&rp.id);
        self.router_port_by_name.insert(rp.name.clone(), rp.id);
        self.router_port_of_switch.insert(rp.switch, rp.id);
        self.ports_of_router
            .entry(rp.router)
            .or_default()
            .insert(rp.id);
        self.router_ports.insert(rp.id, rp.clone());
    }

    pub(super) fn delete_router_port(&mut self, id: &Uuid) {
        self.unindex_router_port(id);
        self.router_ports.remove(id);
    }

    fn unindex_router_port(&mut self, id: &Uuid) {
        let Some(old) = self.router_ports.get(id).cloned() else {
            return;
        };
        self.router_port_by_name.remove(&old.name);
        if self.router_port_of_switch.get(&old.switch) == Some(id) {
            self.router_port_of_switch.remove(&old.switch);
        }
        if let Some(set) = self.ports_of_router.get_mut(&old.router) {
            set.remove(id);
        }
    }

    pub(super) fn put_route(&mut self, r: &Route) {
        if let Some(old) = self.routes.get(&r.id).cloned()
            && let Some(set) = self.routes_of_router.get_mut(&old.router)
        {
            set.remove(&r.id);
        }
        self.routes_of_router
            .entry(r.router)
            .or_default()
            .insert(r.id);
        self.routes.insert(r.id, r.clone());
    }

    pub(super) fn delete_route(&mut self, id: &Uuid) {
        if let Some(old) = self.routes.remove(id)
            && let Some(set) = self.routes_of_router.get_mut(&old.router)
        {
            set.remove(id);
        }
    }
}
