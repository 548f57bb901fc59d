//! Small models for other modules' unit tests.

use uuid::Uuid;

use super::{LogicalModel, LogicalPort, LogicalSwitch};

/// Switch "blue" (id 0xa, VNI 5001) with ports `(n, name)`: id n, MAC 02:..:0n,
/// IP 10.0.0.n, key and zone n.
pub(crate) fn blue(ports: &[(u128, &str)]) -> LogicalModel {
    let sw = LogicalSwitch {
        id: Uuid::from_u128(0xa),
        name: "blue".into(),
        vni: 5001,
        description: String::new(),
        provider: None,
        flood_vteps: Vec::new(),
    };
    let ports = ports
        .iter()
        .map(|&(n, name)| LogicalPort {
            id: Uuid::from_u128(n),
            name: name.into(),
            switch: sw.id,
            mac: format!("02:00:00:00:00:0{n}").parse().expect("mac"),
            ips: vec![format!("10.0.0.{n}").parse().expect("ip")],
            port_security: true,
            key: n as u16,
            zone: n as u16,
        })
        .collect();
    LogicalModel::from_objects(1, vec![sw], ports, vec![]).expect("model")
}
