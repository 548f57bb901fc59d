//! The hardware VTEP methods (`vtep_list`, `vtep_get`, `vtep_bind`, `vtep_unbind`) and
//! how a VTEP is shown: what its session observes (connected, tunnel IPs, ports with the
//! VLAN bindings the VTEP holds, MACs learned per switch) joined with the bindings the
//! model holds for it. A VTEP appears as soon as it connects or is named by a binding.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::params::Args;
use crate::error::ApiError;
use crate::hardware_vtep::ObservedVtep;
use crate::model::{LogicalModel, VTEP_VLAN_MAX, VtepBinding};
use crate::northbound::{Command, ModelWriter};

pub(super) fn handles(name: &str) -> bool {
    name.starts_with("vtep_")
}

pub(super) async fn call(c: &ModelWriter, name: &str, a: &mut Args) -> Result<Value, ApiError> {
    let vlan = |a: &mut Args| -> Result<u16, ApiError> {
        let v = a.uint("vlan", 0, u64::from(VTEP_VLAN_MAX))?;
        u16::try_from(v).map_err(|_| ApiError::invalid("vlan", "out of range"))
    };
    match name {
        "vtep_list" => {
            let m = c.read_snapshot().await?;
            let observed = c.observed().vteps().list();
            let mut names: BTreeSet<String> = observed.keys().cloned().collect();
            names.extend(m.vtep_bindings().map(|b| b.vtep.clone()));
            Ok(Value::Array(
                names
                    .iter()
                    .map(|n| vtep_view(&m, n, observed.get(n).map(|v| &**v)))
                    .collect(),
            ))
        }
        "vtep_get" => {
            let name = a.str("vtep")?;
            let m = c.read_snapshot().await?;
            let observed = c.observed().vteps().get(&name);
            if observed.is_none() && !m.vtep_bindings().any(|b| b.vtep == name) {
                return Err(ApiError::not_found("vtep", "vtep", &name));
            }
            Ok(vtep_view(&m, &name, observed.as_deref()))
        }
        "vtep_bind" => {
            let vtep = a.str("vtep")?;
            let port = a.str("port")?;
            let vlan = vlan(a)?;
            let switch = a.str("switch")?;
            let applied = c
                .submit(Command::VtepBind {
                    vtep: vtep.clone(),
                    port: port.clone(),
                    vlan,
                    switch,
                })
                .await?;
            let m = c.read_snapshot().await?;
            let b = m
                .vtep_binding_at(&vtep, &port, vlan)
                .ok_or_else(|| ApiError::Internal("binding vanished after its write".into()))?;
            let mut v = binding_view(&m, b, c.observed().vteps().get(&vtep).as_deref());
            v["revision"] = json!(applied.revision);
            Ok(v)
        }
        "vtep_unbind" => {
            let vtep = a.str("vtep")?;
            let port = a.str("port")?;
            let vlan = vlan(a)?;
            let applied = c.submit(Command::VtepUnbind { vtep, port, vlan }).await?;
            Ok(super::deleted_view(&applied))
        }
        _ => Err(ApiError::Internal(format!("no handler for {name}"))),
    }
}

/// One binding, with whether the VTEP shows it (`applied`) or not yet (`pending`: the
/// VTEP is not connected, has no such port, or has not taken the write yet).
fn binding_view(m: &LogicalModel, b: &VtepBinding, obs: Option<&ObservedVtep>) -> Value {
    let sw = m.switch(&b.switch);
    let applied = obs.is_some_and(|o| {
        o.connected
            && sw.is_some_and(|s| {
                o.ports
                    .get(&b.port)
                    .and_then(|vlans| vlans.get(&b.vlan))
                    .is_some_and(|ls| *ls == s.name)
            })
    });
    json!({
        "id": b.id,
        "vtep": b.vtep,
        "port": b.port,
        "vlan": b.vlan,
        "switch": b.switch,
        "switch_name": sw.map(|s| s.name.as_str()),
        "status": if applied { "applied" } else { "pending" },
    })
}

fn vtep_view(m: &LogicalModel, name: &str, obs: Option<&ObservedVtep>) -> Value {
    let bindings: Vec<&VtepBinding> = m.vtep_bindings().filter(|b| b.vtep == name).collect();
    let mut port_names: BTreeSet<&str> = bindings.iter().map(|b| b.port.as_str()).collect();
    if let Some(o) = obs {
        port_names.extend(o.ports.keys().map(String::as_str));
    }
    let ports: Vec<Value> = port_names
        .into_iter()
        .map(|p| {
            let on_vtep = obs.and_then(|o| o.ports.get(p));
            let mine: Vec<Value> = bindings
                .iter()
                .filter(|b| b.port == p)
                .map(|b| binding_view(m, b, obs))
                .collect();
            json!({
                "name": p,
                "present": on_vtep.is_some(),
                "bindings": mine,
                // What the VTEP itself holds: VLAN -> Logical_Switch name.
                "vlan_bindings": on_vtep.map(|v| v.iter().map(|(vlan, ls)| json!({"vlan": vlan, "logical_switch": ls})).collect::<Vec<_>>()).unwrap_or_default(),
            })
        })
        .collect();
    let local_macs: Vec<Value> = obs
        .map(|o| {
            o.local_macs
                .iter()
                .map(|(sw, macs)| {
                    json!({
                        "switch": sw,
                        "switch_name": m.switch(sw).map(|s| s.name.as_str()),
                        "macs": macs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "name": name,
        "connected": obs.is_some_and(|o| o.connected),
        "tunnel_ips": obs.map(|o| o.tunnel_ips.iter().map(ToString::to_string).collect::<Vec<_>>()).unwrap_or_default(),
        "ports": ports,
        "local_macs": local_macs,
    })
}
