//! The API's own description: every method, its parameters and errors.
//!
//! One table serves two purposes: the parameter parser rejects names not listed here
//! (so a typo such as `vin` is an error, not silently ignored), and `rpc.discover` turns
//! it into an OpenRPC document from which clients can generate bindings.

use serde_json::{Value, json};

use crate::error::{CONFLICT, INVALID_PARAMS, NOT_FOUND, STORE_UNAVAILABLE, UNAVAILABLE};

/// The type of one parameter, rendered as JSON Schema.
#[derive(Clone, Copy, Debug)]
pub enum ParamType {
    /// A name or a UUID of an existing object.
    Ref,
    Uuid,
    Name,
    Text,
    Mac,
    IpList,
    /// Interface addresses with their prefix length (`10.0.0.1/24`).
    CidrList,
    Cidr,
    /// One plain IP address.
    Ip,
    Bool,
    Uint {
        min: u64,
        max: u64,
    },
    Enum(&'static [&'static str]),
    Protocol,
    Packet,
    Provider,
}

impl ParamType {
    fn schema(self) -> Value {
        match self {
            ParamType::Ref => json!({"type": "string", "description": "name or id"}),
            ParamType::Uuid => json!({"type": "string", "format": "uuid"}),
            ParamType::Name => json!({
                "type": "string", "minLength": 1, "maxLength": 64,
                "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"
            }),
            ParamType::Text => json!({"type": "string", "maxLength": 1024}),
            ParamType::Mac => json!({
                "type": "string", "pattern": "^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$"
            }),
            ParamType::IpList => json!({
                "type": "array", "maxItems": 64,
                "items": {"type": "string", "description": "IPv4 or IPv6 address"}
            }),
            ParamType::CidrList => json!({
                "type": "array", "minItems": 1, "maxItems": 64,
                "items": {"type": "string", "description": "address/prefix length, e.g. 10.0.0.1/24 or fd00::1/64"}
            }),
            ParamType::Ip => json!({"type": "string", "description": "IPv4 or IPv6 address"}),
            ParamType::Cidr => {
                json!({"type": "string", "description": "IP prefix, e.g. 10.0.0.0/24"})
            }
            ParamType::Bool => json!({"type": "boolean"}),
            ParamType::Uint { min, max } => {
                json!({"type": "integer", "minimum": min, "maximum": max})
            }
            ParamType::Enum(values) => json!({"type": "string", "enum": values}),
            ParamType::Protocol => json!({"oneOf": [
                {"type": "string", "enum": ["tcp", "udp", "icmp", "icmp6"]},
                {"type": "integer", "minimum": 0, "maximum": 255}
            ]}),
            ParamType::Packet => json!({"$ref": "#/components/schemas/Packet"}),
            ParamType::Provider => json!({"$ref": "#/components/schemas/Provider"}),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    pub required: bool,
    pub doc: &'static str,
}

#[derive(Clone, Copy, Debug)]
pub struct MethodSpec {
    pub name: &'static str,
    pub doc: &'static str,
    pub params: &'static [ParamSpec],
    /// JSON Schema of the result.
    pub result: &'static str,
    pub errors: &'static [i32],
    /// A WebSocket subscription rather than a call.
    pub subscription: bool,
}

const fn p(name: &'static str, ty: ParamType, required: bool, doc: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        ty,
        required,
        doc,
    }
}

const R: ParamType = ParamType::Ref;
const VLAN: ParamSpec = p(
    "vlan",
    ParamType::Uint { min: 0, max: 4095 },
    true,
    "802.1Q VLAN id on the port, 0 = untagged",
);
const READ: &[i32] = &[INVALID_PARAMS, NOT_FOUND];
const WRITE: &[i32] = &[INVALID_PARAMS, NOT_FOUND, CONFLICT, STORE_UNAVAILABLE];

/// Every method of the API, in the order API.md documents them.
pub const METHODS: &[MethodSpec] = &[
    MethodSpec {
        name: "switch_create",
        doc: "Create a logical switch; a free VNI is allocated when none is given. With provider, the switch is bridged onto that physical network (VLAN-tagged if vlan is given) on every hypervisor that maps it, instead of tunnelled; one switch per (physnet, vlan).",
        params: &[
            p("name", ParamType::Name, true, "unique switch name"),
            p(
                "vni",
                ParamType::Uint {
                    min: 1,
                    max: 16_777_215,
                },
                false,
                "virtual network id",
            ),
            p("description", ParamType::Text, false, "free text"),
            p(
                "provider",
                ParamType::Provider,
                false,
                "provider network: {physnet, vlan?}",
            ),
            p(
                "flood_vteps",
                ParamType::IpList,
                false,
                "flood-and-learn VXLAN endpoints on this switch's segment",
            ),
        ],
        result: "Switch",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "switch_update",
        doc: "Change a switch's description or its flood-and-learn VXLAN endpoints. Omitted fields are unchanged; flood_vteps replaces the whole list ([] clears it). Refused: a duplicate, a non-unicast address, a connected hypervisor's tunnel endpoint, more than 64, any on a provider switch.",
        params: &[
            p("switch", R, true, "switch name or id"),
            p("description", ParamType::Text, false, "free text"),
            p(
                "flood_vteps",
                ParamType::IpList,
                false,
                "flood-and-learn VXLAN endpoints (replaces the list)",
            ),
        ],
        result: "Switch",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "switch_get",
        doc: "One logical switch by name or id.",
        params: &[p("switch", R, true, "switch name or id")],
        result: "Switch",
        errors: READ,
        subscription: false,
    },
    MethodSpec {
        name: "switch_list",
        doc: "All logical switches, by name.",
        params: &[],
        result: "SwitchList",
        errors: &[INVALID_PARAMS],
        subscription: false,
    },
    MethodSpec {
        name: "switch_delete",
        doc: "Delete a switch. Refused while it has ports unless cascade is true, which also deletes its ports and their ACLs.",
        params: &[
            p("switch", R, true, "switch name or id"),
            p(
                "cascade",
                ParamType::Bool,
                false,
                "also delete its ports (default false)",
            ),
        ],
        result: "Deleted",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "port_create",
        doc: "Create a logical port on a switch. Weft allocates its port key and conntrack zone.",
        params: &[
            p("switch", R, true, "switch name or id"),
            p(
                "name",
                ParamType::Name,
                true,
                "globally unique port name (used as iface-id)",
            ),
            p(
                "mac",
                ParamType::Mac,
                true,
                "unicast MAC, unique within the switch",
            ),
            p(
                "ips",
                ParamType::IpList,
                false,
                "addresses the VM may use (default none)",
            ),
            p(
                "port_security",
                ParamType::Bool,
                false,
                "drop spoofed sources (default true)",
            ),
        ],
        result: "Port",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "port_get",
        doc: "One logical port with its observed binding and up state.",
        params: &[p("port", R, true, "port name or id")],
        result: "Port",
        errors: READ,
        subscription: false,
    },
    MethodSpec {
        name: "port_list",
        doc: "All logical ports, or those of one switch, by name.",
        params: &[p("switch", R, false, "only ports of this switch")],
        result: "PortList",
        errors: READ,
        subscription: false,
    },
    MethodSpec {
        name: "port_update",
        doc: "Change a port's MAC, addresses or port security. Omitted fields are unchanged; ips replaces the whole list.",
        params: &[
            p("port", R, true, "port name or id"),
            p("mac", ParamType::Mac, false, "new MAC"),
            p("ips", ParamType::IpList, false, "new address list"),
            p(
                "port_security",
                ParamType::Bool,
                false,
                "new port security setting",
            ),
        ],
        result: "Port",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "port_delete",
        doc: "Delete a port and its ACLs.",
        params: &[p("port", R, true, "port name or id")],
        result: "Deleted",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "acl_create",
        doc: "Add an ACL rule to a port. Priorities are unique per port and direction.",
        params: &[
            p("port", R, true, "port name or id"),
            p(
                "direction",
                ParamType::Enum(&["ingress", "egress"]),
                true,
                "relative to the VM",
            ),
            p(
                "priority",
                ParamType::Uint {
                    min: 0,
                    max: 32_767,
                },
                true,
                "highest wins",
            ),
            p(
                "action",
                ParamType::Enum(&["allow", "allow-related", "drop"]),
                true,
                "allow-related admits replies",
            ),
            p(
                "protocol",
                ParamType::Protocol,
                false,
                "tcp, udp, icmp, icmp6 or an IP protocol number",
            ),
            p(
                "ethertype",
                ParamType::Enum(&["ipv4", "ipv6"]),
                false,
                "default ipv4",
            ),
            p(
                "remote_cidr",
                ParamType::Cidr,
                false,
                "peer prefix; family must match ethertype",
            ),
            p(
                "port_min",
                ParamType::Uint {
                    min: 0,
                    max: 65_535,
                },
                false,
                "tcp/udp peer-side port range start",
            ),
            p(
                "port_max",
                ParamType::Uint {
                    min: 0,
                    max: 65_535,
                },
                false,
                "range end (default port_min)",
            ),
        ],
        result: "Acl",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "acl_list",
        doc: "All ACLs, or those of one port, by port, direction and descending priority.",
        params: &[p("port", R, false, "only ACLs of this port")],
        result: "AclList",
        errors: READ,
        subscription: false,
    },
    MethodSpec {
        name: "acl_delete",
        doc: "Delete one ACL by id.",
        params: &[p("acl", ParamType::Uuid, true, "ACL id")],
        result: "Deleted",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "router_create",
        doc: "Create a distributed logical router. Weft allocates its key.",
        params: &[
            p("name", ParamType::Name, true, "unique router name"),
            p("description", ParamType::Text, false, "free text"),
        ],
        result: "Router",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "router_get",
        doc: "One router with its ports and static routes.",
        params: &[p("router", R, true, "router name or id")],
        result: "Router",
        errors: READ,
        subscription: false,
    },
    MethodSpec {
        name: "router_list",
        doc: "All routers, by name, each with its ports and static routes.",
        params: &[],
        result: "RouterList",
        errors: &[INVALID_PARAMS],
        subscription: false,
    },
    MethodSpec {
        name: "router_delete",
        doc: "Delete a router. Refused while it has ports unless cascade is true, which also deletes its ports and routes.",
        params: &[
            p("router", R, true, "router name or id"),
            p(
                "cascade",
                ParamType::Bool,
                false,
                "also delete its router ports and routes (default false)",
            ),
        ],
        result: "Deleted",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "router_port_create",
        doc: "Attach a router to a switch: the port is the default gateway of its subnets on that switch. A switch has at most one router; provider switches are refused.",
        params: &[
            p("router", R, true, "router name or id"),
            p("switch", R, true, "switch name or id"),
            p(
                "name",
                ParamType::Name,
                true,
                "name, unique among router ports",
            ),
            p(
                "mac",
                ParamType::Mac,
                true,
                "unicast MAC, not used by a port of the switch",
            ),
            p(
                "ips",
                ParamType::CidrList,
                true,
                "interface addresses in CIDR form; each prefix is a connected subnet",
            ),
        ],
        result: "RouterPort",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "router_port_list",
        doc: "All router ports, or those of one router, by name.",
        params: &[p("router", R, false, "only ports of this router")],
        result: "RouterPortList",
        errors: READ,
        subscription: false,
    },
    MethodSpec {
        name: "router_port_delete",
        doc: "Detach a router from a switch; also deletes the router's routes whose next hop no remaining port reaches.",
        params: &[p("router_port", R, true, "router port name or id")],
        result: "Deleted",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "route_create",
        doc: "Add a static route to a router; the next hop must lie in a subnet of one of its ports.",
        params: &[
            p("router", R, true, "router name or id"),
            p(
                "prefix",
                ParamType::Cidr,
                true,
                "destination prefix in CIDR form; host bits are cleared",
            ),
            p(
                "nexthop",
                ParamType::Ip,
                true,
                "gateway address, same family as prefix",
            ),
        ],
        result: "Route",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "route_list",
        doc: "All static routes, or those of one router, by router name and prefix.",
        params: &[p("router", R, false, "only routes of this router")],
        result: "RouteList",
        errors: READ,
        subscription: false,
    },
    MethodSpec {
        name: "route_delete",
        doc: "Delete one static route by id.",
        params: &[p("route", ParamType::Uuid, true, "route id")],
        result: "Deleted",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "vtep_list",
        doc: "Hardware VTEPs: every VTEP that is connected or named by a binding, with its tunnel IPs, ports, bindings and learned MACs.",
        params: &[],
        result: "VtepList",
        errors: &[INVALID_PARAMS],
        subscription: false,
    },
    MethodSpec {
        name: "vtep_get",
        doc: "One hardware VTEP by its Physical_Switch name.",
        params: &[p(
            "vtep",
            ParamType::Text,
            true,
            "the VTEP's Physical_Switch name",
        )],
        result: "Vtep",
        errors: READ,
        subscription: false,
    },
    MethodSpec {
        name: "vtep_bind",
        doc: "Bind a VTEP's physical port and VLAN to a logical switch. The VTEP and port may be unknown yet (the binding is pending until the VTEP shows them); conflict when that port and VLAN are already bound.",
        params: &[
            p(
                "vtep",
                ParamType::Text,
                true,
                "the VTEP's Physical_Switch name",
            ),
            p("port", ParamType::Text, true, "Physical_Port name"),
            VLAN,
            p("switch", R, true, "switch name or id"),
        ],
        result: "VtepBinding",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "vtep_unbind",
        doc: "Remove a VTEP port/VLAN binding; Weft removes what it wrote for it from the VTEP.",
        params: &[
            p(
                "vtep",
                ParamType::Text,
                true,
                "the VTEP's Physical_Switch name",
            ),
            p("port", ParamType::Text, true, "Physical_Port name"),
            VLAN,
        ],
        result: "Deleted",
        errors: WRITE,
        subscription: false,
    },
    MethodSpec {
        name: "node_list",
        doc: "Transport nodes (hypervisors) known from their OVSDB/OpenFlow sessions.",
        params: &[],
        result: "NodeList",
        errors: &[INVALID_PARAMS],
        subscription: false,
    },
    MethodSpec {
        name: "node_get",
        doc: "One transport node by system-id.",
        params: &[p("node", R, true, "system-id")],
        result: "Node",
        errors: READ,
        subscription: false,
    },
    MethodSpec {
        name: "node_flows",
        doc: "Flows installed on a node's integration bridge, ovs-ofctl style.",
        params: &[p("node", R, true, "system-id")],
        result: "NodeFlows",
        errors: READ,
        subscription: false,
    },
    MethodSpec {
        name: "trace",
        doc: "Where the logical pipeline sends a packet entering from a port, step by step. Needs the pipeline compiler; until it runs, returns -32011 after validating the input.",
        params: &[
            p("port", R, true, "ingress port name or id"),
            p("packet", ParamType::Packet, true, "packet headers"),
        ],
        result: "Trace",
        errors: &[INVALID_PARAMS, NOT_FOUND, UNAVAILABLE],
        subscription: false,
    },
    MethodSpec {
        name: "cluster_status",
        doc: "The weftd instances sharing this deployment (cluster mode, --etcd): each one's API and advertised OpenFlow target, whether it is alive and how many hypervisors it owns, and the etcd endpoints and revision. Without --etcd: this instance alone, owning every hypervisor, and etcd null.",
        params: &[],
        result: "ClusterStatus",
        errors: &[INVALID_PARAMS],
        subscription: false,
    },
    MethodSpec {
        name: "system_status",
        doc: "Version, uptime, store revision and path, object counts.",
        params: &[],
        result: "Status",
        errors: &[INVALID_PARAMS],
        subscription: false,
    },
    MethodSpec {
        name: "events_subscribe",
        doc: "WebSocket subscription: notifications `events` carry Event objects; unsubscribe with events_unsubscribe.",
        params: &[],
        result: "Event",
        errors: &[INVALID_PARAMS],
        subscription: true,
    },
];

pub fn method(name: &str) -> Option<&'static MethodSpec> {
    METHODS.iter().find(|m| m.name == name)
}

impl MethodSpec {
    /// Whether the method changes the model, through the writer: the methods that can
    /// fail with every write error. The batch middleware groups these ([`super::batch`]).
    pub fn writes(&self) -> bool {
        self.errors == WRITE
    }
}

fn error_object(code: i32) -> Value {
    let message = match code {
        INVALID_PARAMS => "invalid params; message and data.field name the parameter",
        NOT_FOUND => "not found; data.field names the reference",
        CONFLICT => "conflict with existing state; data.field names the parameter",
        STORE_UNAVAILABLE => "store unavailable; nothing was changed",
        UNAVAILABLE => "not available yet (needs the southbound)",
        _ => "error",
    };
    json!({"code": code, "message": message})
}

fn schemas() -> Value {
    let mut all = core_schemas();
    if let (Some(all), Value::Object(vtep)) = (all.as_object_mut(), vtep_schemas()) {
        all.extend(vtep);
    }
    all
}

/// The hardware VTEP objects (their own `json!`: one literal for every schema exceeds the
/// macro's recursion limit).
fn vtep_schemas() -> Value {
    let uuid = json!({"type": "string", "format": "uuid"});
    json!({
        "VtepBinding": {"type": "object", "required": ["id", "vtep", "port", "vlan", "switch", "status"], "properties": {
            "id": uuid, "vtep": {"type": "string"}, "port": {"type": "string"},
            "vlan": {"type": "integer", "minimum": 0, "maximum": 4095, "description": "0 = untagged"},
            "switch": uuid, "switch_name": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": ["applied", "pending"]}}},
        "Vtep": {"type": "object", "required": ["name", "connected", "tunnel_ips", "ports", "local_macs"], "properties": {
            "name": {"type": "string", "description": "Physical_Switch name"}, "connected": {"type": "boolean"},
            "tunnel_ips": {"type": "array", "items": {"type": "string"}},
            "ports": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "present": {"type": "boolean"},
                "bindings": {"type": "array", "items": {"$ref": "#/components/schemas/VtepBinding"}},
                "vlan_bindings": {"type": "array", "items": {"type": "object"}}}}},
            "local_macs": {"type": "array", "items": {"type": "object", "properties": {
                "switch": uuid, "switch_name": {"type": ["string", "null"]},
                "macs": {"type": "array", "items": {"type": "string"}}}}}}},
        "VtepList": {"type": "array", "items": {"$ref": "#/components/schemas/Vtep"}}
    })
}

fn core_schemas() -> Value {
    let uuid = json!({"type": "string", "format": "uuid"});
    json!({
        "Switch": {"type": "object", "required": ["id", "name", "vni", "description", "ports"], "properties": {
            "id": uuid, "name": {"type": "string"}, "vni": {"type": "integer"},
            "description": {"type": "string"}, "ports": {"type": "integer", "description": "number of ports"},
            "provider": {"oneOf": [{"$ref": "#/components/schemas/Provider"}, {"type": "null"}]},
            "flood_vteps": {"type": "array", "items": {"type": "string"}, "description": "flood-and-learn VXLAN endpoints"}}},
        "Provider": {"type": "object", "required": ["physnet"], "additionalProperties": false, "properties": {
            "physnet": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$",
                        "description": "physical network name, as hypervisors map it in weft-bridge-mappings"},
            "vlan": {"type": "integer", "minimum": 1, "maximum": 4094, "description": "802.1Q VLAN id; untagged when absent"}}},
        "SwitchList": {"type": "array", "items": {"$ref": "#/components/schemas/Switch"}},
        "Binding": {"type": ["object", "null"], "properties": {"node": {"type": "string"}, "ofport": {"type": "integer"}}},
        "Port": {"type": "object", "required": ["id", "name", "switch", "switch_name", "mac", "ips", "port_security", "key", "zone", "binding", "up"], "properties": {
            "id": uuid, "name": {"type": "string"}, "switch": uuid, "switch_name": {"type": "string"},
            "mac": {"type": "string"}, "ips": {"type": "array", "items": {"type": "string"}},
            "port_security": {"type": "boolean"}, "key": {"type": "integer"}, "zone": {"type": "integer"},
            "binding": {"$ref": "#/components/schemas/Binding"}, "up": {"type": "boolean"}}},
        "PortList": {"type": "array", "items": {"$ref": "#/components/schemas/Port"}},
        "Acl": {"type": "object", "required": ["id", "port", "port_name", "direction", "priority", "ethertype", "action"], "properties": {
            "id": uuid, "port": uuid, "port_name": {"type": "string"},
            "direction": {"enum": ["ingress", "egress"]}, "priority": {"type": "integer"},
            "protocol": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "ethertype": {"enum": ["ipv4", "ipv6"]}, "remote_cidr": {"type": "string"},
            "port_min": {"type": "integer"}, "port_max": {"type": "integer"},
            "action": {"enum": ["allow", "allow-related", "drop"]}}},
        "AclList": {"type": "array", "items": {"$ref": "#/components/schemas/Acl"}},
        "RouterPort": {"type": "object", "required": ["id", "name", "router", "router_name", "switch", "switch_name", "mac", "ips"], "properties": {
            "id": uuid, "name": {"type": "string"}, "router": uuid, "router_name": {"type": "string"},
            "switch": uuid, "switch_name": {"type": "string"}, "mac": {"type": "string"},
            "ips": {"type": "array", "items": {"type": "string", "description": "address/prefix length"}}}},
        "RouterPortList": {"type": "array", "items": {"$ref": "#/components/schemas/RouterPort"}},
        "Route": {"type": "object", "required": ["id", "router", "router_name", "prefix", "nexthop"], "properties": {
            "id": uuid, "router": uuid, "router_name": {"type": "string"},
            "prefix": {"type": "string", "description": "normalised CIDR"}, "nexthop": {"type": "string"}}},
        "RouteList": {"type": "array", "items": {"$ref": "#/components/schemas/Route"}},
        "Router": {"type": "object", "required": ["id", "name", "description", "key", "ports", "routes"], "properties": {
            "id": uuid, "name": {"type": "string"}, "description": {"type": "string"},
            "key": {"type": "integer"},
            "ports": {"$ref": "#/components/schemas/RouterPortList"},
            "routes": {"$ref": "#/components/schemas/RouteList"}}},
        "RouterList": {"type": "array", "items": {"$ref": "#/components/schemas/Router"}},
        "Deleted": {"type": "object", "required": ["revision", "switches", "ports", "acls", "routers", "router_ports", "routes"], "properties": {
            "revision": {"type": "integer"},
            "switches": {"type": "array", "items": uuid}, "ports": {"type": "array", "items": uuid},
            "acls": {"type": "array", "items": uuid}, "routers": {"type": "array", "items": uuid},
            "router_ports": {"type": "array", "items": uuid}, "routes": {"type": "array", "items": uuid},
            "vtep_bindings": {"type": "array", "items": uuid}}},
        "Node": {"type": "object", "properties": {
            "id": {"type": "string"}, "encap_ip": {"type": ["string", "null"]},
            "encap_type": {"enum": ["geneve", "vxlan", "stt"]}, "bridge": {"type": "string"},
            "ovsdb_connected": {"type": "boolean"}, "openflow_connected": {"type": "boolean"},
            "datapath_id": {"type": ["string", "null"]}, "ports": {"type": "array", "items": uuid},
            "flow_count": {"type": "integer"},
            "tunnels": {"type": "array", "items": {"type": "string"}, "description": "remote system-ids this node has a working tunnel port to"},
            "owner": {"type": ["string", "null"], "description": "the instance that owns this hypervisor (this one without --etcd); null while none does"}}},
        "NodeList": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
        "NodeFlows": {"type": "object", "properties": {"node": {"type": "string"}, "flows": {"type": "array", "items": {"type": "string"}}}},
        "Packet": {"type": "object", "required": ["eth_dst"], "properties": {
            "eth_src": {"type": "string"}, "eth_dst": {"type": "string"},
            "ip_src": {"type": "string"}, "ip_dst": {"type": "string"},
            "ip_proto": {"type": "integer", "minimum": 0, "maximum": 255},
            "tp_src": {"type": "integer", "minimum": 0, "maximum": 65535},
            "tp_dst": {"type": "integer", "minimum": 0, "maximum": 65535},
            "arp_op": {"type": "integer", "minimum": 1, "maximum": 2}}},
        "Trace": {"type": "object", "properties": {"steps": {"type": "array"}, "outcome": {"type": "string"}}},
        "ClusterStatus": {"type": "object", "required": ["instance", "instances", "etcd"], "properties": {
            "instance": {"type": "string", "description": "the instance that answered"},
            "instances": {"type": "array", "items": {"type": "object",
                "required": ["id", "api", "openflow_advertise", "alive", "nodes"], "properties": {
                "id": {"type": "string"}, "api": {"type": ["string", "null"]},
                "openflow_advertise": {"type": ["string", "null"]}, "alive": {"type": "boolean"},
                "nodes": {"type": "integer", "description": "hypervisors it owns"}}}},
            "etcd": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
                "endpoints": {"type": "array", "items": {"type": "string"}},
                "revision": {"type": "integer"}}}]}}},
        "Status": {"type": "object", "properties": {
            "version": {"type": "string"}, "uptime_seconds": {"type": "integer"},
            "revision": {"type": "integer"}, "switches": {"type": "integer"},
            "ports": {"type": "integer"}, "acls": {"type": "integer"}, "routers": {"type": "integer"},
            "router_ports": {"type": "integer"}, "routes": {"type": "integer"}, "nodes": {"type": "integer"},
            "store": {"type": "string"}}},
        "Event": {"type": "object", "required": ["type"], "properties": {
            "type": {"enum": ["config_changed", "port_bound", "port_unbound", "port_up",
                              "node_connected", "node_disconnected", "node_owner_changed", "lagged"]},
            "owner": {"type": ["string", "null"]}, "generation": {"type": ["integer", "null"]},
            "kind": {"enum": ["switch", "port", "acl", "router", "router_port", "route"]}, "id": uuid,
            "op": {"enum": ["created", "updated", "deleted"]}, "revision": {"type": "integer"},
            "port": uuid, "node": {"type": "string"}, "ofport": {"type": "integer"},
            "up": {"type": "boolean"}, "missed": {"type": "integer"}}}
    })
}

/// The OpenRPC 1.2 document `rpc.discover` returns.
pub fn openrpc_document() -> Value {
    let methods: Vec<Value> = METHODS
        .iter()
        .map(|m| {
            let params: Vec<Value> = m
                .params
                .iter()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "required": p.required,
                        "description": p.doc,
                        "schema": p.ty.schema(),
                    })
                })
                .collect();
            let mut method = json!({
                "name": m.name,
                "description": m.doc,
                "paramStructure": "by-name",
                "params": params,
                "result": {
                    "name": m.result,
                    "schema": {"$ref": format!("#/components/schemas/{}", m.result)},
                },
                "errors": m.errors.iter().map(|c| error_object(*c)).collect::<Vec<_>>(),
            });
            if m.subscription
                && let Some(obj) = method.as_object_mut()
            {
                obj.insert(
                    "x-subscription".into(),
                    json!({"notification": "events", "unsubscribe": "events_unsubscribe"}),
                );
            }
            method
        })
        .collect();
    json!({
        "openrpc": "1.2.6",
        "info": {
            "title": "Weft controller API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "JSON-RPC 2.0 over HTTP POST and WebSocket; named parameters only."
        },
        "methods": methods,
        "components": {"schemas": schemas()},
    })
}
