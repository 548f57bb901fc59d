//! End-to-end lab tooling and tests against real Open vSwitch.
//!
//! [`lab`] builds a throw-away "data centre" on one Linux machine: one network namespace per
//! hypervisor, each running its own `ovsdb-server` + `ovs-vswitchd` (userspace datapath), a
//! Linux-bridge underlay in its own namespace, VMs as namespaces plugged into `br-int`, and
//! a veth from the root namespace so a controller running in the test process can be reached
//! by (and reach) every hypervisor. Everything is torn down on `Drop`.

pub mod lab;

pub use lab::{Encap, Hypervisor, Lab, LabBuilder, LabError, Vm, VmSpec};
