//! The southbound: sessions with hypervisors' Open vSwitch and with hardware VTEPs. OVSDB
//! configures br-int and the tunnel mesh and reports where VMs are plugged; OpenFlow installs
//! the pipeline; a VTEP's `hardware_vtep` database is written by [`vtep`].

pub mod openflow;
pub mod ovsdb;
pub mod vtep;
