//! How weftctl shows results to a person: one table layout per kind of object
//! ([`View`]), plain key/value lines for a single object, and `ofproto/trace`-style text
//! for a trace. `--json` bypasses all of it.

use serde_json::{Value, json};

/// Which table layout a result gets.
#[derive(Clone, Copy)]
pub(crate) enum View {
    Switches,
    Ports,
    Acls,
    Routers,
    Router,
    RouterPorts,
    Routes,
    Nodes,
    Vteps,
    Cluster,
    Object,
    Flows,
    Deleted,
    Trace,
}

pub(crate) fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Object(o) if o.contains_key("node") => format!(
            "{}:{}",
            o.get("node").map(cell).unwrap_or_default(),
            o.get("ofport").map(cell).unwrap_or_default()
        ),
        // A provider network: `physnet1` untagged, `physnet1/100` on VLAN 100.
        Value::Object(o) if o.contains_key("physnet") => {
            let physnet = o.get("physnet").map(cell).unwrap_or_default();
            match o.get("vlan").filter(|v| !v.is_null()) {
                Some(v) => format!("{physnet}/{}", cell(v)),
                None => physnet,
            }
        }
        other => other.to_string(),
    }
}

fn table(rows: &[Value], cols: &[(&str, &str)]) -> String {
    let mut grid: Vec<Vec<String>> = vec![cols.iter().map(|(h, _)| h.to_uppercase()).collect()];
    for r in rows {
        grid.push(
            cols.iter()
                .map(|(_, k)| r.get(*k).map(cell).unwrap_or_else(|| "-".into()))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..cols.len())
        .map(|i| {
            grid.iter()
                .map(|row| row.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in grid {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

pub(crate) fn render(view: View, v: &Value) -> String {
    let list = |v: &Value| v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
    match view {
        View::Switches => table(
            &list(v),
            &[
                ("name", "name"),
                ("vni", "vni"),
                ("ports", "ports"),
                ("provider", "provider"),
                ("flood_vteps", "flood_vteps"),
                ("id", "id"),
                ("description", "description"),
            ],
        ),
        View::Ports => table(
            &list(v),
            &[
                ("name", "name"),
                ("switch", "switch_name"),
                ("mac", "mac"),
                ("ips", "ips"),
                ("sec", "port_security"),
                ("key", "key"),
                ("zone", "zone"),
                ("binding", "binding"),
                ("up", "up"),
                ("id", "id"),
            ],
        ),
        View::Acls => table(
            &list(v),
            &[
                ("port", "port_name"),
                ("dir", "direction"),
                ("prio", "priority"),
                ("action", "action"),
                ("proto", "protocol"),
                ("ethertype", "ethertype"),
                ("remote", "remote_cidr"),
                ("min", "port_min"),
                ("max", "port_max"),
                ("id", "id"),
            ],
        ),
        View::Routers => {
            // One line per router: its ports by name and how many routes it has.
            let rows: Vec<Value> = list(v)
                .iter()
                .map(|r| {
                    let names: Vec<Value> = r["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| p["name"].clone())
                        .collect();
                    let routes = r["routes"].as_array().map_or(0, Vec::len);
                    json!({"name": r["name"], "key": r["key"], "ports": names,
                           "routes": routes, "id": r["id"], "description": r["description"]})
                })
                .collect();
            table(
                &rows,
                &[
                    ("name", "name"),
                    ("key", "key"),
                    ("ports", "ports"),
                    ("routes", "routes"),
                    ("id", "id"),
                    ("description", "description"),
                ],
            )
        }
        View::Router => {
            let mut head = v.clone();
            let mut out = String::new();
            if let Some(o) = head.as_object_mut() {
                o.remove("ports");
                o.remove("routes");
            }
            out.push_str(&render(View::Object, &head));
            out.push_str("\nports:\n");
            out.push_str(&render(View::RouterPorts, &v["ports"]));
            out.push_str("\nroutes:\n");
            out.push_str(&render(View::Routes, &v["routes"]));
            out
        }
        View::RouterPorts => table(
            &list(v),
            &[
                ("name", "name"),
                ("router", "router_name"),
                ("switch", "switch_name"),
                ("mac", "mac"),
                ("ips", "ips"),
                ("id", "id"),
            ],
        ),
        View::Routes => table(
            &list(v),
            &[
                ("router", "router_name"),
                ("prefix", "prefix"),
                ("nexthop", "nexthop"),
                ("id", "id"),
            ],
        ),
        View::Vteps => {
            // One line per VTEP: its ports by name and how many MACs it learned.
            let rows: Vec<Value> = list(v)
                .iter()
                .map(|t| {
                    let ports: Vec<Value> = t["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| p["name"].clone())
                        .collect();
                    let macs: usize = t["local_macs"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|s| s["macs"].as_array().map_or(0, Vec::len))
                        .sum();
                    json!({"name": t["name"], "connected": t["connected"],
                           "tunnel_ips": t["tunnel_ips"], "ports": ports, "macs": macs})
                })
                .collect();
            table(
                &rows,
                &[
                    ("vtep", "name"),
                    ("connected", "connected"),
                    ("tunnel_ips", "tunnel_ips"),
                    ("ports", "ports"),
                    ("learned", "macs"),
                ],
            )
        }
        View::Nodes => {
            let rows = list(v);
            if rows.is_empty() {
                "no transport nodes connected\n".into()
            } else {
                table(
                    &rows,
                    &[
                        ("node", "id"),
                        ("encap", "encap_type"),
                        ("encap_ip", "encap_ip"),
                        ("ovsdb", "ovsdb_connected"),
                        ("openflow", "openflow_connected"),
                        ("ports", "ports"),
                        ("flows", "flow_count"),
                        ("owner", "owner"),
                    ],
                )
            }
        }
        View::Cluster => {
            let etcd = match v.get("etcd").filter(|e| !e.is_null()) {
                Some(e) => format!(
                    "etcd {} (revision {})",
                    e.get("endpoints").map(cell).unwrap_or_default(),
                    e.get("revision").map(cell).unwrap_or_default()
                ),
                None => "no etcd: this instance alone".into(),
            };
            let head = format!(
                "instance {}; {etcd}\n",
                v.get("instance").map(cell).unwrap_or_default()
            );
            let rows = v
                .get("instances")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            head + &table(
                &rows,
                &[
                    ("instance", "id"),
                    ("alive", "alive"),
                    ("nodes", "nodes"),
                    ("api", "api"),
                    ("openflow", "openflow_advertise"),
                ],
            )
        }
        View::Trace => render_trace(v),
        View::Flows => {
            let flows = v
                .get("flows")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            flows.iter().map(|f| format!("{}\n", cell(f))).collect()
        }
        View::Deleted => {
            let n = |k: &str| v.get(k).and_then(Value::as_array).map_or(0, Vec::len);
            // Routing objects are named only when a delete removed some, so a switch or
            // port delete reads as it always did.
            let routing = if n("routers") + n("router_ports") + n("routes") > 0 {
                format!(
                    ", {} router(s), {} router port(s), {} route(s)",
                    n("routers"),
                    n("router_ports"),
                    n("routes")
                )
            } else {
                String::new()
            };
            // Likewise VTEP bindings (vtep unbind, or a switch delete that took some).
            let routing = match n("vtep_bindings") {
                0 => routing,
                b => format!("{routing}, {b} vtep binding(s)"),
            };
            format!(
                "deleted {} switch(es), {} port(s), {} acl(s){routing} at revision {}\n",
                n("switches"),
                n("ports"),
                n("acls"),
                v.get("revision").map(cell).unwrap_or_default()
            )
        }
        View::Object => match v.as_object() {
            Some(o) => {
                let w = o.keys().map(String::len).max().unwrap_or(0);
                o.iter()
                    .map(|(k, val)| format!("{k:<w$}  {}\n", cell(val)))
                    .collect()
            }
            None => format!("{v}\n"),
        },
    }
}

/// A trace as `ofproto/trace` users expect it: per bridge, the tables and flows the packet
/// met, then where copies went and why branches ended.
fn render_trace(v: &Value) -> String {
    let mut out = String::new();
    let s = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    };
    for hop in v["hops"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "node {} in_port {}: {}\n",
            s(&hop["node"]),
            hop["in_port"],
            s(&hop["packet"])
        ));
        for step in hop["steps"].as_array().into_iter().flatten() {
            let indent = "  ".repeat(step["depth"].as_u64().unwrap_or(0) as usize + 1);
            let flow = match &step["flow"] {
                Value::Null => "no match: dropped".to_string(),
                f => s(f),
            };
            out.push_str(&format!("{indent}table {}: {flow}\n", step["table"]));
            for note in step["notes"].as_array().into_iter().flatten() {
                out.push_str(&format!("{indent}  ({})\n", s(note)));
            }
        }
        for o in hop["outputs"].as_array().into_iter().flatten() {
            let to = &o["to"];
            let target = match to["kind"].as_str() {
                Some("port") => format!("port {}", s(&to["port"])),
                Some("tunnel") => format!("tunnel to {}", s(&to["node"])),
                Some("vtep") => format!("flood VTEP {}", s(&to["ip"])),
                _ => to.to_string(),
            };
            out.push_str(&format!("  -> output:{} ({target})\n", o["ofport"]));
        }
    }
    let delivered: Vec<String> = v["delivered"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| format!("{} on {}", s(&d["port"]), s(&d["node"])))
        .collect();
    out.push_str(&format!(
        "delivered: {}\n",
        if delivered.is_empty() {
            "nowhere".to_string()
        } else {
            delivered.join(", ")
        }
    ));
    for d in v["dropped"].as_array().into_iter().flatten() {
        out.push_str(&format!("dropped: {}\n", s(d)));
    }
    for d in v["acl"].as_array().into_iter().flatten() {
        let rule = match &d["rule"] {
            Value::Null => s(&d["by"]),
            r => format!(
                "acl {} (priority {}, {})",
                s(&r["id"]),
                r["priority"],
                s(&r["action"])
            ),
        };
        out.push_str(&format!(
            "acl: {} {} on {} [ct {}]: {} by {rule}: {}\n",
            s(&d["port"]),
            s(&d["direction"]),
            s(&d["node"]),
            s(&d["conntrack"]),
            s(&d["verdict"]),
            s(&d["reason"])
        ));
    }
    for d in v["routing"].as_array().into_iter().flatten() {
        let ttl = match d["ttl_out"].as_u64() {
            Some(out) => format!("ttl {} -> {out}", d["ttl"]),
            None => format!("ttl {}", d["ttl"]),
        };
        out.push_str(&format!(
            "route: router {} on {}: {}, {ttl}: {}\n",
            s(&d["router"]),
            s(&d["node"]),
            s(&d["verdict"]),
            s(&d["reason"])
        ));
    }
    out
}
