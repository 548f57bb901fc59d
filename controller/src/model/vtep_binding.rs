//! [`VtepBinding`]: a `(hardware VTEP, physical port, VLAN)` attached to a logical switch
//! (DESIGN.md §4, "Hardware VTEP"), and [`VtepBindingTables`], the bindings of one model
//! snapshot with the index that keeps each `(vtep, port, vlan)` bound at most once.
//!
//! A binding names its VTEP and port by the names the VTEP reports (`Physical_Switch.name`,
//! `Physical_Port.name`): it may be made before the VTEP ever connects, so that a gateway
//! that is racked and pointed at Weft later comes up already configured. Until the VTEP
//! shows that port, the binding is shown as pending and nothing is written for it.

use imbl::{HashMap, OrdMap, OrdSet};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Largest VLAN id a `Physical_Port.vlan_bindings` key may hold; 0 means untagged.
pub const VTEP_VLAN_MAX: u16 = 4095;

/// One binding of a VTEP's port and VLAN to a logical switch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VtepBinding {
    pub id: Uuid,
    /// The VTEP's `Physical_Switch.name`.
    pub vtep: String,
    /// The `Physical_Port.name` on that VTEP.
    pub port: String,
    /// 802.1Q VLAN id on that port, 0 for untagged frames.
    pub vlan: u16,
    pub switch: Uuid,
}

/// Where a binding sits: what must be unique.
pub type VtepSlot = (String, String, u16);

#[derive(Clone, Default)]
pub(super) struct VtepBindingTables {
    pub(super) bindings: OrdMap<Uuid, VtepBinding>,
    by_slot: HashMap<VtepSlot, Uuid>,
    of_switch: OrdMap<Uuid, OrdSet<Uuid>>,
}

impl VtepBindingTables {
    pub(super) fn at(&self, vtep: &str, port: &str, vlan: u16) -> Option<&VtepBinding> {
        self.by_slot
            .get(&(vtep.to_string(), port.to_string(), vlan))
            .and_then(|id| self.bindings.get(id))
    }

    pub(super) fn of_switch(&self, switch: &Uuid) -> impl Iterator<Item = &VtepBinding> {
        self.of_switch
            .get(switch)
            .into_iter()
            .flat_map(|set| set.iter())
            .filter_map(|id| self.bindings.get(id))
    }

    pub(super) fn put(&mut self, b: &VtepBinding) {
        self.delete(&b.id);
        self.by_slot
            .insert((b.vtep.clone(), b.port.clone(), b.vlan), b.id);
        self.of_switch.entry(b.switch).or_default().insert(b.id);
        self.bindings.insert(b.id, b.clone());
    }

    pub(super) fn delete(&mut self, id: &Uuid) {
        let Some(old) = self.bindings.remove(id) else {
            return;
        };
        self.by_slot.remove(&(old.vtep, old.port, old.vlan));
        if let Some(set) = self.of_switch.get_mut(&old.switch) {
            set.remove(id);
        }
    }
}
