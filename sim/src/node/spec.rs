//! What a simulated hypervisor is ([`NodeSpec`]) and how it reaches weftd ([`SimSettings`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// What a simulated hypervisor is.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub system_id: String,
    pub encap_ip: Ipv4Addr,
    pub datapath_id: u64,
    /// VM interfaces: (interface name, iface-id, attached-mac), ofports 1, 2, ...
    pub vifs: Vec<(String, String, String)>,
}

/// How simulated nodes reach weftd and behave.
#[derive(Debug, Clone)]
pub struct SimSettings {
    /// The OVSDB managers the node's ovsdb-server dials, one connection each (as
    /// `ovs-vsctl set-manager tcp:C1 tcp:C2 …` makes it do).
    pub managers: Vec<SocketAddr>,
    /// Where to connect OpenFlow; `None` follows br-int's Controller targets (one
    /// connection per target).
    pub openflow: Option<SocketAddr>,
    pub echo_interval: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

impl SimSettings {
    /// One weftd's manager listener.
    pub fn new(ovsdb: SocketAddr) -> Self {
        Self::with_managers(vec![ovsdb])
    }

    /// Several instances' manager listeners.
    pub fn with_managers(managers: Vec<SocketAddr>) -> Self {
        SimSettings {
            managers,
            openflow: None,
            echo_interval: Duration::from_secs(10),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(8),
        }
    }
}
