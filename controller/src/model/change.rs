//! Edits of the model: [`Change`], one durable edit as the store records it, and
//! [`ModelDelta`], which objects differ between two snapshots.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    Acl, LogicalPort, LogicalRouter, LogicalSwitch, ObjectKind, Route, RouterPort, VtepBinding,
};

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
    PutRouter(LogicalRouter),
    DeleteRouter { id: Uuid },
    PutRouterPort(RouterPort),
    DeleteRouterPort { id: Uuid },
    PutRoute(Route),
    DeleteRoute { id: Uuid },
    PutVtepBinding(VtepBinding),
    DeleteVtepBinding { id: Uuid },
}

impl Change {
    pub fn kind(&self) -> ObjectKind {
        match self {
            Change::PutSwitch(_) | Change::DeleteSwitch { .. } => ObjectKind::Switch,
            Change::PutPort(_) | Change::DeletePort { .. } => ObjectKind::Port,
            Change::PutAcl(_) | Change::DeleteAcl { .. } => ObjectKind::Acl,
            Change::PutRouter(_) | Change::DeleteRouter { .. } => ObjectKind::Router,
            Change::PutRouterPort(_) | Change::DeleteRouterPort { .. } => ObjectKind::RouterPort,
            Change::PutRoute(_) | Change::DeleteRoute { .. } => ObjectKind::Route,
            Change::PutVtepBinding(_) | Change::DeleteVtepBinding { .. } => ObjectKind::VtepBinding,
        }
    }

    pub fn id(&self) -> Uuid {
        match self {
            Change::PutSwitch(s) => s.id,
            Change::PutPort(p) => p.id,
            Change::PutAcl(a) => a.id,
            Change::PutRouter(r) => r.id,
            Change::PutRouterPort(rp) => rp.id,
            Change::PutRoute(r) => r.id,
            Change::PutVtepBinding(b) => b.id,
            Change::DeleteSwitch { id }
            | Change::DeletePort { id }
            | Change::DeleteAcl { id }
            | Change::DeleteRouter { id }
            | Change::DeleteRouterPort { id }
            | Change::DeleteRoute { id }
            | Change::DeleteVtepBinding { id } => *id,
        }
    }

    pub fn is_delete(&self) -> bool {
        matches!(
            self,
            Change::DeleteSwitch { .. }
                | Change::DeletePort { .. }
                | Change::DeleteAcl { .. }
                | Change::DeleteRouter { .. }
                | Change::DeleteRouterPort { .. }
                | Change::DeleteRoute { .. }
                | Change::DeleteVtepBinding { .. }
        )
    }
}

/// What differs between two model snapshots, by object id (see
/// [`LogicalModel::changed_since`](super::LogicalModel::changed_since)), each list in id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelDelta {
    pub switches: Vec<Uuid>,
    pub ports: Vec<Uuid>,
    pub acls: Vec<Uuid>,
    pub routers: Vec<Uuid>,
    pub router_ports: Vec<Uuid>,
    pub routes: Vec<Uuid>,
    pub vtep_bindings: Vec<Uuid>,
}
