//! The hardware VTEP half of [`plan`](super::plan()): `vtep_bind` and `vtep_unbind`, and
//! what a switch deletion does to the bindings that carry it.
//!
//! A binding may name a VTEP or a port the controller has not seen yet (a gateway is
//! often configured before it is cabled or pointed at Weft); only the switch must exist.
//! Names are checked for shape only, as the VTEP reports them; a `(vtep, port, vlan)` is
//! bound at most once (-32009 otherwise).

use uuid::Uuid;

use crate::error::ApiError;
use crate::model::{Change, LogicalModel, LogicalSwitch, VTEP_VLAN_MAX, VtepBinding};

/// Longest VTEP or physical port name accepted (the schema has no limit; this keeps one
/// binding's record small).
pub const VTEP_NAME_MAX: usize = 255;

fn check_vtep_name(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > VTEP_NAME_MAX {
        return Err(ApiError::invalid(
            field,
            format!("must be 1..={VTEP_NAME_MAX} bytes, got {}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn check_vlan(vlan: u16) -> Result<(), ApiError> {
    if vlan > VTEP_VLAN_MAX {
        return Err(ApiError::invalid(
            "vlan",
            format!("vlan {vlan} is out of range 0..={VTEP_VLAN_MAX} (0 = untagged)"),
        ));
    }
    Ok(())
}

pub(super) fn vtep_bind(
    model: &LogicalModel,
    vtep: &str,
    port: &str,
    vlan: u16,
    switch: &str,
) -> Result<Vec<Change>, ApiError> {
    check_vtep_name("vtep", vtep)?;
    check_vtep_name("port", port)?;
    check_vlan(vlan)?;
    let sw = model
        .find_switch(switch)
        .ok_or_else(|| ApiError::not_found("switch", "switch", switch))?;
    if sw.provider.is_some() {
        return Err(ApiError::invalid(
            "switch",
            format!(
                "switch {:?} is a provider network (bridged, not tunnelled): a VTEP cannot carry it",
                sw.name
            ),
        ));
    }
    if let Some(b) = model.vtep_binding_at(vtep, port, vlan) {
        let other = model.switch(&b.switch).map_or("?", |s| s.name.as_str());
        return Err(ApiError::conflict(
            "vlan",
            format!("{vtep} port {port} vlan {vlan} is already bound to switch {other:?}"),
        ));
    }
    Ok(vec![Change::PutVtepBinding(VtepBinding {
        id: Uuid::new_v4(),
        vtep: vtep.to_string(),
        port: port.to_string(),
        vlan,
        switch: sw.id,
    })])
}

pub(super) fn vtep_unbind(
    model: &LogicalModel,
    vtep: &str,
    port: &str,
    vlan: u16,
) -> Result<Vec<Change>, ApiError> {
    check_vlan(vlan)?;
    let b = model.vtep_binding_at(vtep, port, vlan).ok_or_else(|| {
        ApiError::not_found("vlan", "vtep binding", &format!("{vtep} {port} {vlan}"))
    })?;
    Ok(vec![Change::DeleteVtepBinding { id: b.id }])
}

/// Deleting a switch: refused while VTEP bindings carry it, unless `cascade`, which
/// removes them with it.
pub(super) fn switch_delete(
    model: &LogicalModel,
    sw: &LogicalSwitch,
    cascade: bool,
) -> Result<Vec<Change>, ApiError> {
    let bindings: Vec<&VtepBinding> = model.vtep_bindings_of_switch(&sw.id).collect();
    if !bindings.is_empty() && !cascade {
        return Err(ApiError::conflict(
            "switch",
            format!(
                "switch {:?} is bound on {} VTEP port(s); unbind them or pass cascade: true",
                sw.name,
                bindings.len()
            ),
        ));
    }
    Ok(bindings
        .into_iter()
        .map(|b| Change::DeleteVtepBinding { id: b.id })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LogicalSwitch;

    fn model_with(name: &str) -> (LogicalModel, Uuid) {
        let mut m = LogicalModel::default();
        let id = Uuid::new_v4();
        m.apply(&Change::PutSwitch(LogicalSwitch {
            id,
            name: name.into(),
            vni: 5001,
            description: String::new(),
            provider: None,
            flood_vteps: Vec::new(),
        }));
        (m, id)
    }

    fn apply(m: &mut LogicalModel, changes: &[Change]) {
        for c in changes {
            m.apply(c);
        }
    }

    #[test]
    fn bind_conflict_unbind_and_switch_delete() {
        let (mut m, sw) = model_with("ls1");
        let c = vtep_bind(&m, "br0", "p0", 0, "ls1").unwrap();
        apply(&mut m, &c);
        assert_eq!(m.vtep_bindings_of_switch(&sw).count(), 1);
        // Same port and VLAN again: conflict, even towards the same switch.
        let e = vtep_bind(&m, "br0", "p0", 0, "ls1").unwrap_err();
        assert!(matches!(e, ApiError::Conflict { .. }), "{e:?}");
        // Another VLAN on the same port is fine; an unknown VTEP too (not connected yet).
        let c = vtep_bind(&m, "br0", "p0", 100, "ls1").unwrap();
        apply(&mut m, &c);
        let c = vtep_bind(&m, "later", "eth9", 7, "ls1").unwrap();
        apply(&mut m, &c);
        assert!(matches!(
            vtep_bind(&m, "br0", "p0", 4096, "ls1").unwrap_err(),
            ApiError::InvalidParams { .. }
        ));
        assert!(matches!(
            vtep_bind(&m, "br0", "p1", 0, "nope").unwrap_err(),
            ApiError::NotFound { .. }
        ));
        let s = m.switch(&sw).unwrap().clone();
        assert!(matches!(
            switch_delete(&m, &s, false).unwrap_err(),
            ApiError::Conflict { .. }
        ));
        assert_eq!(switch_delete(&m, &s, true).unwrap().len(), 3);
        let c = vtep_unbind(&m, "br0", "p0", 0).unwrap();
        apply(&mut m, &c);
        assert!(m.vtep_binding_at("br0", "p0", 0).is_none());
        assert!(matches!(
            vtep_unbind(&m, "br0", "p0", 0).unwrap_err(),
            ApiError::NotFound { .. }
        ));
    }
}
