//! `cluster_status`: the instances of the cluster as this one sees them, how many
//! hypervisors each owns, and where etcd is. Without `--etcd`, this instance alone,
//! owning every hypervisor it knows.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::cluster::Ownership;
use crate::observed::TransportNode;

pub fn status(ownership: &Ownership, nodes: &[TransportNode]) -> Value {
    let me = ownership.instance();
    let view = ownership.view();
    if !view.clustered {
        let info = ownership.info();
        return json!({
            "instance": me,
            "instances": [{
                "id": me,
                "api": info.api,
                "openflow_advertise": info.openflow_advertise,
                "alive": true,
                "nodes": nodes.len(),
            }],
            "etcd": null,
        });
    }
    let mut owned: BTreeMap<&str, usize> = BTreeMap::new();
    for r in view.owners.values() {
        *owned.entry(r.instance.as_str()).or_default() += 1;
    }
    let mut instances: Vec<Value> = view
        .instances
        .iter()
        .map(|(id, info)| {
            json!({
                "id": id,
                "api": info.api,
                "openflow_advertise": info.openflow_advertise,
                "alive": true,
                "nodes": owned.get(id.as_str()).copied().unwrap_or(0),
            })
        })
        .collect();
    // Owners named by records whose instance record is gone (its lease is expiring).
    for (id, n) in owned
        .iter()
        .filter(|(id, _)| !view.instances.contains_key(**id))
    {
        instances.push(json!({
            "id": id, "api": null, "openflow_advertise": null, "alive": false, "nodes": n,
        }));
    }
    json!({
        "instance": me,
        "instances": instances,
        "etcd": {"endpoints": view.endpoints, "revision": view.revision},
    })
}
