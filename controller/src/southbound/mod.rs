//! The southbound: sessions with hypervisors' Open vSwitch. OVSDB configures br-int and
//! the tunnel mesh and reports where VMs are plugged; OpenFlow installs the pipeline.

pub mod openflow;
pub mod ovsdb;
