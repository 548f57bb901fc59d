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
    /// weftd's OVSDB manager listener.
    pub ovsdb: SocketAddr,
    /// Where to connect OpenFlow; `None` follows br-int's Controller target.
    pub openflow: Option<SocketAddr>,
    pub echo_interval: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

impl SimSettings {
    pub fn new(ovsdb: SocketAddr) -> Self {
        SimSettings {
            ovsdb,
            openflow: None,
            echo_interval: Duration::from_secs(10),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(8),
        }
    }
}
