//! Events streamed to `events_subscribe` clients and to in-process listeners.
//!
//! Config events come from the writer after a change is durable; binding and node events
//! come from [`crate::observed::ObservedState`], fed by the southbound.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{MacAddr, ObjectKind};

/// How many events a slow subscriber may fall behind before it is told it lagged.
pub const EVENT_BUFFER: usize = 4096;

/// What happened to a model object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Created,
    Updated,
    Deleted,
}

/// One event. Serialised with a `type` tag, e.g.
/// `{"type":"config_changed","kind":"port","id":"…","op":"created","revision":7}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A logical object (`kind`: switch, port, acl, router, router_port or route) was
    /// created, updated or deleted; `revision` is the store revision of the write that did
    /// it. A write that deletes several objects (a cascade, or a router port taking the
    /// routes it carried) sends one event per object, all with its revision.
    ConfigChanged {
        kind: ObjectKind,
        id: Uuid,
        op: ChangeOp,
        revision: u64,
    },
    /// A logical port was found plugged into `node` at OpenFlow port `ofport`.
    PortBound {
        port: Uuid,
        node: String,
        ofport: u32,
    },
    /// A logical port's binding went away.
    PortUnbound {
        port: Uuid,
        node: String,
    },
    /// A port's flows are installed (`up: true`) or no longer are.
    PortUp {
        port: Uuid,
        up: bool,
    },
    /// A transport node's OVSDB or OpenFlow session came up.
    NodeConnected {
        node: String,
    },
    NodeDisconnected {
        node: String,
    },
    /// A switch refused flows Weft sent it (the ERROR reply to a bundle). The bundle is
    /// atomic, so nothing of that install took effect. `acl` (and its `port`) names the
    /// ACL whose flow was refused when it was one; then `withheld` lists the ACLs whose
    /// flows the node now runs without (fail closed: their traffic meets the direction's
    /// default deny) while the rest of the desired state is installed; they are retried
    /// with backoff. Otherwise `port` names the logical port the refused flow serves, if
    /// any, and the whole install is retried with backoff.
    FlowsRejected {
        node: String,
        acl: Option<Uuid>,
        port: Option<Uuid>,
        /// The refused message, `ovs-ofctl` style.
        flow: String,
        /// OpenFlow's name for the error (e.g. `OFPFMFC_TABLE_FULL`).
        error: String,
        withheld: Vec<Uuid>,
    },
    /// A withheld ACL's flows were accepted on a retry: it is in force on `node` again.
    AclRestored {
        node: String,
        acl: Uuid,
    },
    /// Cluster mode: the instance that owns `node` (writes its OVSDB, holds the OpenFlow
    /// master role with `generation`) changed; `owner: null` while it has none (its owner
    /// left or died and no other instance has taken it over yet).
    NodeOwnerChanged {
        node: String,
        owner: Option<String>,
        generation: Option<u64>,
    },
    /// A hardware VTEP's OVSDB session identified it (by its `Physical_Switch` name).
    VtepConnected {
        vtep: String,
    },
    VtepDisconnected {
        vtep: String,
    },
    /// The VTEP learned `mac` behind one of its ports in `switch` (`Ucast_Macs_Local`).
    VtepMacLearned {
        vtep: String,
        switch: Uuid,
        mac: MacAddr,
    },
    /// The VTEP no longer has `mac` in `switch` (aged out or moved away).
    VtepMacAged {
        vtep: String,
        switch: Uuid,
        mac: MacAddr,
    },
    /// The subscriber fell behind and `missed` events were dropped; resynchronise with
    /// the list methods.
    Lagged {
        missed: u64,
    },
}
