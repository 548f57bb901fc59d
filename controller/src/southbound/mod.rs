//! The southbound: sessions with hypervisors' Open vSwitch and with hardware VTEPs. OVSDB
//! configures br-int and the tunnel mesh and reports where VMs are plugged; OpenFlow installs
//! the pipeline; a VTEP's `hardware_vtep` database is written by [`vtep`].

mod held;
pub mod openflow;
pub mod ovsdb;
pub mod vtep;

use std::time::Duration;

/// How often weftd probes an idle hypervisor connection, on both protocols (the OVSDB
/// session's `inactivity_probe`, OpenFlow's echo interval). A probe wakes the hypervisor's
/// daemon and, when weftd is reached through a userspace-datapath bridge, its request,
/// reply and acknowledgement each cross that datapath (a 10/s ping through one cost its
/// vswitchd 2.8 ms of CPU a second on a 2-core lab machine). A connection that went
/// silent is dropped 20 to 30 s after the last thing heard on it, and a hypervisor's node
/// stays in the topology for `--node-grace` after that in any case.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// The `inactivity_probe` (ms) Weft writes into the Controller row and into the Manager
/// row that dials it: three of weftd's probe periods, so that while weftd is alive the
/// hypervisor always hears from it first and never probes itself. One side probing
/// halves the idle traffic of every connection; a weftd that died silently is noticed
/// by the hypervisor after about twice this.
pub const HYPERVISOR_INACTIVITY_PROBE_MS: i64 = 30_000;
