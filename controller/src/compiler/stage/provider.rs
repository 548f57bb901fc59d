//! Provider networks (docs/pipeline.md, "Provider networks"): a switch bridged onto a
//! physical network through br-int's patch port to the bridge the node maps its physnet
//! to, instead of tunnelled. Owns the patch classification (table 0, with the VLAN popped),
//! the L2 lookup's way out to the physical network (table 30, with the VLAN pushed), the
//! physical network's bucket in the switch's flood group, and which patch ports a node needs.
//!
//! Everything else is the ordinary pipeline for the switch's local ports, compiled as for a
//! switch with no remote nodes: the patch port plays the tunnels' part (`reg6=0`, split
//! horizon), and the switch's ports on other hypervisors are reached across the physical
//! network like any physical host, so they need no flows of their own here.

use openflow::{Action, Bucket, Field};

use super::{FlowBuilder, apply, goto, set};
use crate::compiler::ids::{cookie_for, flood_group, tables};
use crate::desired::PatchSpec;
use crate::model::{LogicalModel, LogicalPort, LogicalSwitch, ProviderNet};
use crate::topology::NodeView;

/// OFPVID_PRESENT: set in a `vlan_vid` match or set-field when the frame has a tag.
const VID_PRESENT: u16 = 0x1000;
/// The 802.1Q TPID pushed for a provider VLAN.
const ETH_VLAN: u16 = 0x8100;

/// Priority of the L2 lookup's flow to the physical network: below the local MACs (100),
/// the split-horizon drop for what came from outside (95) and the flood (80).
const TO_PHYSICAL_PRIORITY: u16 = 70;

impl FlowBuilder<'_> {
    /// One provider switch on this node: its local ports' ordinary flows, and, when the
    /// node has a patch port to `pn.physnet`, the way to and from the physical network.
    /// Records the patch pair the node needs. Returns whether its local ports are
    /// complete, i.e. the patch port has an ofport.
    pub(crate) fn provider_switch(
        &mut self,
        model: &LogicalModel,
        sw: &LogicalSwitch,
        pn: &ProviderNet,
        view: &NodeView,
        locals: &[(&LogicalPort, u32)],
        remote_ports: &[&LogicalPort],
    ) -> bool {
        self.switch(model, sw, locals, &[]);
        self.out.patches.insert(PatchSpec {
            physnet: pn.physnet.clone(),
            bridge: view.bridge_mappings.get(&pn.physnet).cloned(),
        });
        let Some(&patch) = view.patches.get(&pn.physnet) else {
            tracing::debug!(
                node = self.node, switch = %sw.name, physnet = %pn.physnet,
                mapped = view.bridge_mappings.contains_key(&pn.physnet),
                "no patch port to the physical network; local ports get local flows only"
            );
            return false;
        };
        let vni = sw.vni;
        let sc = cookie_for(&sw.id);
        self.classify_patch(vni, sc, pn.vlan, patch);
        // Weft knows the MACs and IPs of the switch's ports bound elsewhere: answer ARP
        // for them here, as for a tunnelled switch's remote ports.
        for p in remote_ports {
            self.arp_remote(vni, p);
        }
        let md = Field::Metadata(u64::from(vni), None);
        self.add(
            tables::L2_LOOKUP,
            TO_PHYSICAL_PRIORITY,
            vec![md],
            vec![apply(to_physical(pn.vlan, patch))],
            sc,
        );
        if let Some(group) = self.out.groups.get_mut(&flood_group(vni)) {
            std::sync::Arc::make_mut(group)
                .buckets
                .push(Bucket::new(to_physical(pn.vlan, patch)));
        }
        true
    }

    /// Frames of this switch's segment from the patch port: untagged ones for an
    /// untagged switch, those of its VLAN (tag popped) for a tagged one; reg6 = 0, straight
    /// to the L2 lookup.
    fn classify_patch(&mut self, vni: u32, switch_cookie: u64, vlan: Option<u16>, patch: u32) {
        let mut actions = Vec::new();
        let vid = match vlan {
            Some(v) => {
                actions.push(Action::PopVlan);
                VID_PRESENT | v
            }
            None => 0,
        };
        actions.push(set(Field::Metadata(u64::from(vni), None)));
        actions.push(set(Field::Reg(6, 0, None)));
        self.add(
            tables::CLASSIFY,
            100,
            vec![Field::InPort(patch, None), Field::VlanVid(vid, None)],
            vec![apply(actions), goto(tables::L2_LOOKUP)],
            switch_cookie,
        );
    }
}

/// Out of the patch port, tagged with the switch's VLAN if it has one.
fn to_physical(vlan: Option<u16>, patch: u32) -> Vec<Action> {
    let mut actions = Vec::new();
    if let Some(v) = vlan {
        actions.push(Action::PushVlan(ETH_VLAN));
        actions.push(set(Field::VlanVid(VID_PRESENT | v, None)));
    }
    actions.push(Action::output(patch));
    actions
}
