//! Which hypervisor a database is: its settings from the root row (with its physical
//! networks, `weft-bridge-mappings`), and the names Weft gives the things it creates there.

use std::collections::BTreeMap;

use ovsdb::vswitch::OpenVSwitch;

use super::*;
use crate::topology::EncapType;

/// The 32-bit FNV-1a hash of `s`'s UTF-8 bytes: short, stable port names.
fn fnv1a(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.as_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// `wt-` + 8 hex digits of the 32-bit FNV-1a hash of the remote's system-id.
pub fn tunnel_port_name(remote_system_id: &str) -> String {
    format!("wt-{:08x}", fnv1a(remote_system_id))
}

/// `wv-` + 8 hex digits of the FNV-1a hash of an external VTEP's address.
pub fn vtep_port_name(ip: std::net::IpAddr) -> String {
    format!("wv-{:08x}", fnv1a(&ip.to_string()))
}

/// The two ends of the patch-port pair towards one physical network's bridge:
/// `wpi-` (on the integration bridge) and `wpe-` (on the mapped bridge) + 8 hex digits of
/// the FNV-1a hash of the physnet name (physnet names may be 64 bytes; these fit
/// Linux's 15).
pub fn patch_port_names(physnet: &str) -> (String, String) {
    let h = fnv1a(physnet);
    (format!("wpi-{h:08x}"), format!("wpe-{h:08x}"))
}

pub(super) fn encap_name(e: EncapType) -> &'static str {
    match e {
        EncapType::Geneve => "geneve",
        EncapType::Vxlan => "vxlan",
        EncapType::Stt => "stt",
    }
}

/// The hypervisor's settings from its root row.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct NodeSettings {
    pub(super) id: String,
    pub(super) encap_ip: IpAddr,
    pub(super) encap_type: EncapType,
    pub(super) bridge: String,
    pub(super) datapath_type: Option<String>,
    /// `weft-bridge-mappings`, its well-formed entries: physnet -> bridge.
    pub(super) bridge_mappings: BTreeMap<String, String>,
    /// Why each ignored entry of `weft-bridge-mappings` was ignored (logged by the
    /// session, once per change).
    pub(super) mapping_errors: Vec<String>,
}

impl NodeSettings {
    /// The node as its root row describes it, with none of its ports: what a standby
    /// reports, and what a session that sees the bridge fills in.
    pub(super) fn bare_view(&self) -> crate::topology::NodeView {
        crate::topology::NodeView {
            id: self.id.clone(),
            encap_ip: self.encap_ip,
            encap_type: self.encap_type,
            bridge: self.bridge.clone(),
            datapath_id: None,
            vifs: BTreeMap::new(),
            tunnels: BTreeMap::new(),
            bridge_mappings: self.bridge_mappings.clone(),
            patches: BTreeMap::new(),
        }
    }

    /// What the root row tells the API about a connected node.
    pub(super) fn describe(&self, n: &mut crate::observed::TransportNode) {
        n.encap_ip = Some(self.encap_ip);
        n.encap_type = self.encap_type;
        n.bridge = self.bridge.clone();
        n.ovsdb_connected = true;
    }
}

/// Reads and validates the root row; `Err` explains what the operator must fix.
pub(super) fn node_settings(root: &OpenVSwitch) -> Result<NodeSettings, String> {
    let id = root
        .external_id(KEY_SYSTEM_ID)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("external_ids:{KEY_SYSTEM_ID} is not set"))?;
    let ip = root.external_id(KEY_ENCAP_IP).ok_or_else(|| {
        format!(
            "external_ids:{KEY_ENCAP_IP} is not set (ovs-vsctl set Open_vSwitch . external_ids:{KEY_ENCAP_IP}=IP)"
        )
    })?;
    let encap_ip: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| format!("external_ids:{KEY_ENCAP_IP}={ip:?} is not an IP address"))?;
    let encap_type = match root.external_id(KEY_ENCAP_TYPE).map(str::trim) {
        None | Some("") | Some("geneve") => EncapType::Geneve,
        Some("vxlan") => EncapType::Vxlan,
        Some("stt") => EncapType::Stt,
        Some(other) => {
            return Err(format!(
                "external_ids:{KEY_ENCAP_TYPE}={other:?} is not geneve, vxlan or stt"
            ));
        }
    };
    let bridge = root
        .external_id(KEY_BRIDGE)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_BRIDGE)
        .to_owned();
    let datapath_type = root
        .external_id(KEY_DATAPATH_TYPE)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let (bridge_mappings, mapping_errors) =
        bridge_mappings(root.external_id(KEY_BRIDGE_MAPPINGS).unwrap_or(""), &bridge);
    Ok(NodeSettings {
        id: id.to_owned(),
        encap_ip,
        encap_type,
        bridge,
        datapath_type,
        bridge_mappings,
        mapping_errors,
    })
}

/// Parses `physnet1:br-ex,physnet2:br-vlan` (spaces around items allowed, empty items
/// skipped). An entry that is not `NAME:BRIDGE` with a valid physnet name, names the
/// integration bridge, or repeats a physnet is left out, with the reason: a typo in one
/// mapping must not take the others (or the node) down.
pub(super) fn bridge_mappings(
    raw: &str,
    integration_bridge: &str,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut map = BTreeMap::new();
    let mut errors = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = |why: &str| format!("{KEY_BRIDGE_MAPPINGS} entry {entry:?} ignored: {why}");
        let Some((physnet, bridge)) = entry.split_once(':') else {
            errors.push(bad("expected PHYSNET:BRIDGE"));
            continue;
        };
        let (physnet, bridge) = (physnet.trim(), bridge.trim());
        if let Err(e) = crate::model::check_name(physnet) {
            errors.push(bad(&format!("physnet: {e}")));
        } else if bridge.is_empty() || bridge.contains(':') || bridge.contains(char::is_whitespace)
        {
            errors.push(bad("bridge name is empty or malformed"));
        } else if bridge == integration_bridge {
            errors.push(bad("that is the integration bridge itself"));
        } else if map.contains_key(physnet) {
            errors.push(bad("physnet already mapped by an earlier entry"));
        } else {
            map.insert(physnet.to_owned(), bridge.to_owned());
        }
    }
    (map, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_mappings_keep_good_entries_and_explain_bad_ones() {
        let (map, errors) = bridge_mappings(
            " physnet1:br-ex, physnet2 : br-vlan ,,bad,:br-x,p3:,p4:br-int,physnet1:br-other,a b:br-y",
            "br-int",
        );
        assert_eq!(
            map,
            BTreeMap::from([
                ("physnet1".to_owned(), "br-ex".to_owned()),
                ("physnet2".to_owned(), "br-vlan".to_owned()),
            ])
        );
        assert_eq!(errors.len(), 6, "{errors:#?}");
        for (e, what) in errors.iter().zip([
            "\"bad\"",
            "\":br-x\"",
            "\"p3:\"",
            "integration bridge",
            "already mapped",
            "\"a b:br-y\"",
        ]) {
            assert!(e.contains(what), "{e} should mention {what}");
        }
        assert_eq!(bridge_mappings("", "br-int"), (BTreeMap::new(), vec![]));
    }

    #[test]
    fn patch_port_names_are_short_and_paired() {
        let (i, e) = patch_port_names(&"p".repeat(64));
        assert!(i.starts_with("wpi-") && e.starts_with("wpe-"));
        assert_eq!((i.len(), e.len()), (12, 12));
        assert_eq!(i[4..], e[4..]);
        assert_ne!(
            patch_port_names("physnet1").0,
            patch_port_names("physnet2").0
        );
    }
}
