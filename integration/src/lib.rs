//! End-to-end lab tooling and tests against real Open vSwitch.
//!
//! [`lab`] builds a throw-away "data centre" on one Linux machine: one network namespace per
//! hypervisor, each running its own `ovsdb-server` + `ovs-vswitchd` (userspace datapath), a
//! Linux-bridge underlay in its own namespace, VMs as namespaces plugged into `br-int`, and
//! a veth from the root namespace so a controller running in the test process can be reached
//! by (and reach) every hypervisor. Everything is torn down on `Drop`.
//!
//! [`sandbox`] is one private `ovsdb-server` (+ `ovs-vswitchd`) in a temp dir: what each lab
//! hypervisor runs, and what the OVS-backed tests and benchmarks of the other crates start.

pub mod lab;
pub mod sandbox;

pub use lab::cmd::Cmd;
pub use lab::{Encap, Hypervisor, Lab, LabBuilder, LabError, Vm, VmSpec};
pub use sandbox::{Datapath, OvsSandbox};
