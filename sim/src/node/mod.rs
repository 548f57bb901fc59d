//! One simulated hypervisor: its vswitch database ([`Database`](crate::db::Database)) served over an OVSDB
//! connection that it dials to weftd's manager port (as `ovs-vsctl set-manager` makes
//! ovsdb-server do), the ovs-vswitchd behaviour weftd relies on (datapath_id on bridges,
//! ofports on new interfaces, connecting br-int to its Controller target), and the
//! bridge's OpenFlow switch ([`Switch`](crate::switch::Switch)) that dials weftd's OpenFlow port.
//!
//! Two tokio tasks per node, sharing [`NodeState`] behind a mutex: the OVSDB task and
//! the OpenFlow task. The database and the flow tables outlive connections, as they do on
//! a real hypervisor; reconnects re-monitor and re-handshake.
//!
//! - `spec`: what a node is ([`NodeSpec`]) and how it reaches weftd ([`SimSettings`]).
//! - `state`: [`NodeState`], what a node holds, and [`Node`], the shared handle to it.
//! - `vswitchd`: what ovs-vswitchd would do after a database change.
//! - `control`: [`NodeControl`] and [`spawn`], which starts the two tasks.
//! - `ovsdb_session`, `openflow_session`: the two tasks and the connections they serve.

mod control;
mod openflow_session;
mod ovsdb_session;
mod spec;
mod state;
mod vswitchd;

pub use control::{NodeControl, spawn};
pub use spec::{NodeSpec, SimSettings};
pub use state::{Node, NodeCounters, NodeState};

/// OpenFlow port number of a bridge's internal interface.
const OFPP_LOCAL: i64 = 65534;
