//! Which hypervisor a database is: its settings from the root row, and the names Weft
//! gives the things it creates there.

use ovsdb::vswitch::OpenVSwitch;

use super::*;
use crate::topology::EncapType;

/// `wt-` + 8 hex digits of the 32-bit FNV-1a hash of the remote's system-id.
pub fn tunnel_port_name(remote_system_id: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in remote_system_id.as_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("wt-{h:08x}")
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
    Ok(NodeSettings {
        id: id.to_owned(),
        encap_ip,
        encap_type,
        bridge,
        datapath_type,
    })
}
