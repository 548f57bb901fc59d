//! The pure half of a write: [`plan`] checks a [`Command`] against a model snapshot and
//! turns it into the [`Change`]s that carry it out, allocating VNIs, port keys, conntrack
//! zones and router keys on the way. Routing commands are checked in
//! [`plan_routing`](super::plan_routing). No I/O and no shared state, so the writer can run it on a
//! private copy and the tests can run it on a bare [`LogicalModel`].

use std::net::IpAddr;

use ipnet::IpNet;
use uuid::Uuid;

use super::command::{AclSpec, Command};
use super::plan_routing::{self as routing, RouterPortSpec};
use crate::error::ApiError;
use crate::model::{
    ACL_PRIORITY_MAX, Acl, Change, DESCRIPTION_MAX_LEN, Direction, Ethertype, FLOOD_VTEPS_MAX,
    LogicalModel, LogicalPort, LogicalSwitch, PORT_IPS_MAX, Protocol, ProviderNet, VLAN_MAX,
    VLAN_MIN, VNI_MAX, check_name,
};

/// A switch's or router's description fits the limit.
pub(super) fn check_description(description: &str) -> Result<(), ApiError> {
    if description.len() > DESCRIPTION_MAX_LEN {
        return Err(ApiError::invalid(
            "description",
            format!(
                "description is {} bytes, at most {DESCRIPTION_MAX_LEN} allowed",
                description.len()
            ),
        ));
    }
    Ok(())
}

/// Validates `cmd` against `model` and turns it into the changes that carry it out.
/// Pure: the same model and command always give the same answer (ids aside).
pub fn plan(model: &LogicalModel, cmd: &Command) -> Result<Vec<Change>, ApiError> {
    match cmd {
        Command::SwitchCreate {
            name,
            vni,
            description,
            flood_vteps,
            provider,
        } => {
            check_name(name).map_err(|e| ApiError::invalid("name", e))?;
            if let Some(pn) = provider {
                check_provider(model, pn)?;
            }
            check_flood_vteps(flood_vteps, provider.is_some())?;
            check_description(description)?;
            if model.switch_name_taken(name) {
                return Err(ApiError::conflict(
                    "name",
                    format!("a switch named {name:?} already exists"),
                ));
            }
            let vni = match vni {
                Some(v) if !(1..=VNI_MAX).contains(v) => {
                    return Err(ApiError::invalid(
                        "vni",
                        format!("vni {v} is out of range 1..={VNI_MAX}"),
                    ));
                }
                Some(v) => {
                    if let Some(other) = model.switch_by_vni(*v) {
                        return Err(ApiError::conflict(
                            "vni",
                            format!("vni {v} is already used by switch {:?}", other.name),
                        ));
                    }
                    *v
                }
                None => model
                    .free_vni()
                    .ok_or_else(|| ApiError::conflict("vni", "every VNI is in use"))?,
            };
            Ok(vec![Change::PutSwitch(LogicalSwitch {
                id: Uuid::new_v4(),
                name: name.clone(),
                vni,
                description: description.clone(),
                provider: provider.clone(),
                flood_vteps: flood_vteps.clone(),
            })])
        }
        Command::SwitchUpdate {
            switch,
            description,
            flood_vteps,
        } => {
            if description.is_none() && flood_vteps.is_none() {
                return Err(ApiError::invalid(
                    "description",
                    "nothing to update: give at least one of description, flood_vteps",
                ));
            }
            let old = model
                .find_switch(switch)
                .ok_or_else(|| ApiError::not_found("switch", "switch", switch))?;
            let mut new = old.clone();
            if let Some(d) = description {
                check_description(d)?;
                new.description = d.clone();
            }
            if let Some(v) = flood_vteps {
                check_flood_vteps(v, old.provider.is_some())?;
                new.flood_vteps = v.clone();
            }
            Ok(vec![Change::PutSwitch(new)])
        }
        Command::SwitchDelete { switch, cascade } => {
            let sw = model
                .find_switch(switch)
                .ok_or_else(|| ApiError::not_found("switch", "switch", switch))?;
            let ports: Vec<&LogicalPort> = model.ports_of_switch(&sw.id).collect();
            if !ports.is_empty() && !cascade {
                return Err(ApiError::conflict(
                    "switch",
                    format!(
                        "switch {:?} still has {} port(s); delete them or pass cascade: true",
                        sw.name,
                        ports.len()
                    ),
                ));
            }
            let mut changes = routing::switch_delete(model, sw, *cascade)?;
            changes.extend(super::plan_vtep::switch_delete(model, sw, *cascade)?);
            for p in ports {
                changes.extend(
                    model
                        .acls_of_port(&p.id)
                        .map(|a| Change::DeleteAcl { id: a.id }),
                );
                changes.push(Change::DeletePort { id: p.id });
            }
            changes.push(Change::DeleteSwitch { id: sw.id });
            Ok(changes)
        }
        Command::PortCreate {
            switch,
            name,
            mac,
            ips,
            port_security,
        } => {
            check_name(name).map_err(|e| ApiError::invalid("name", e))?;
            mac.check_port_mac()
                .map_err(|e| ApiError::invalid("mac", e))?;
            check_ips(ips)?;
            let sw = model
                .find_switch(switch)
                .ok_or_else(|| ApiError::not_found("switch", "switch", switch))?;
            if model.port_name_taken(name) {
                return Err(ApiError::conflict(
                    "name",
                    format!("a port named {name:?} already exists"),
                ));
            }
            if let Some(other) = model.port_by_mac(sw.id, *mac) {
                return Err(ApiError::conflict(
                    "mac",
                    format!(
                        "mac {mac} is already used by port {:?} on switch {:?}",
                        other.name, sw.name
                    ),
                ));
            }
            routing::check_logical_port(model, &sw.id, Some(*mac), Some(ips))?;
            let key = model.free_port_key(&sw.id).ok_or_else(|| {
                ApiError::conflict(
                    "switch",
                    format!("switch {:?} has no free port key", sw.name),
                )
            })?;
            let zone = model.free_zone().ok_or_else(|| {
                ApiError::conflict(
                    "name",
                    "all 65535 conntrack zones are in use (one per logical port)",
                )
            })?;
            Ok(vec![Change::PutPort(LogicalPort {
                id: Uuid::new_v4(),
                name: name.clone(),
                switch: sw.id,
                mac: *mac,
                ips: ips.clone(),
                port_security: *port_security,
                key,
                zone,
            })])
        }
        Command::PortUpdate {
            port,
            mac,
            ips,
            port_security,
        } => {
            if mac.is_none() && ips.is_none() && port_security.is_none() {
                return Err(ApiError::invalid(
                    "mac",
                    "nothing to update: give at least one of mac, ips, port_security",
                ));
            }
            if let Some(mac) = mac {
                mac.check_port_mac()
                    .map_err(|e| ApiError::invalid("mac", e))?;
            }
            if let Some(ips) = ips {
                check_ips(ips)?;
            }
            let old = model
                .find_port(port)
                .ok_or_else(|| ApiError::not_found("port", "port", port))?;
            routing::check_logical_port(model, &old.switch, *mac, ips.as_deref())?;
            let mut new = old.clone();
            if let Some(mac) = mac {
                if let Some(other) = model.port_by_mac(old.switch, *mac)
                    && other.id != old.id
                {
                    return Err(ApiError::conflict(
                        "mac",
                        format!("mac {mac} is already used by port {:?}", other.name),
                    ));
                }
                new.mac = *mac;
            }
            if let Some(ips) = ips {
                new.ips = ips.clone();
            }
            if let Some(ps) = port_security {
                new.port_security = *ps;
            }
            Ok(vec![Change::PutPort(new)])
        }
        Command::PortDelete { port } => {
            let p = model
                .find_port(port)
                .ok_or_else(|| ApiError::not_found("port", "port", port))?;
            let mut changes: Vec<Change> = model
                .acls_of_port(&p.id)
                .map(|a| Change::DeleteAcl { id: a.id })
                .collect();
            changes.push(Change::DeletePort { id: p.id });
            Ok(changes)
        }
        Command::AclCreate(spec) => plan_acl(model, spec),
        Command::AclDelete { acl } => {
            if model.acl(acl).is_none() {
                return Err(ApiError::not_found("acl", "acl", &acl.to_string()));
            }
            Ok(vec![Change::DeleteAcl { id: *acl }])
        }
        Command::RouterCreate { name, description } => {
            routing::router_create(model, name, description)
        }
        Command::RouterDelete { router, cascade } => {
            routing::router_delete(model, router, *cascade)
        }
        Command::RouterPortCreate {
            router,
            switch,
            name,
            mac,
            ips,
        } => routing::router_port_create(
            model,
            &RouterPortSpec {
                router,
                switch,
                name,
                mac: *mac,
                ips,
            },
        ),
        Command::RouterPortDelete { router_port } => {
            routing::router_port_delete(model, router_port)
        }
        Command::RouteCreate {
            router,
            prefix,
            nexthop,
        } => routing::route_create(model, router, *prefix, *nexthop),
        Command::RouteDelete { route } => routing::route_delete(model, route),
        Command::VtepBind {
            vtep,
            port,
            vlan,
            switch,
        } => super::plan_vtep::vtep_bind(model, vtep, port, *vlan, switch),
        Command::VtepUnbind { vtep, port, vlan } => {
            super::plan_vtep::vtep_unbind(model, vtep, port, *vlan)
        }
    }
}

fn check_ips(ips: &[IpAddr]) -> Result<(), ApiError> {
    if ips.len() > PORT_IPS_MAX {
        return Err(ApiError::invalid(
            "ips",
            format!(
                "{} addresses given, at most {PORT_IPS_MAX} allowed",
                ips.len()
            ),
        ));
    }
    for (i, ip) in ips.iter().enumerate() {
        if ips.iter().skip(i + 1).any(|other| other == ip) {
            return Err(ApiError::invalid("ips", format!("{ip} is listed twice")));
        }
        crate::model::parse_port_ip(&ip.to_string()).map_err(|e| ApiError::invalid("ips", e))?;
    }
    Ok(())
}

fn plan_acl(model: &LogicalModel, spec: &AclSpec) -> Result<Vec<Change>, ApiError> {
    let priority = u16::try_from(spec.priority)
        .ok()
        .filter(|p| *p <= ACL_PRIORITY_MAX)
        .ok_or_else(|| {
            ApiError::invalid(
                "priority",
                format!(
                    "priority {} is out of range 0..={ACL_PRIORITY_MAX}",
                    spec.priority
                ),
            )
        })?;
    match (spec.protocol, spec.ethertype) {
        (Some(Protocol::Icmp), Ethertype::Ipv6) => {
            return Err(ApiError::invalid(
                "protocol",
                "icmp matches IPv4 only; use icmp6 with ethertype ipv6",
            ));
        }
        (Some(Protocol::Icmp6), Ethertype::Ipv4) => {
            return Err(ApiError::invalid(
                "protocol",
                "icmp6 matches IPv6 only; set ethertype to ipv6",
            ));
        }
        _ => {}
    }
    if let Some(cidr) = spec.remote_cidr {
        let family_ok = matches!(
            (cidr, spec.ethertype),
            (IpNet::V4(_), Ethertype::Ipv4) | (IpNet::V6(_), Ethertype::Ipv6)
        );
        if !family_ok {
            return Err(ApiError::invalid(
                "remote_cidr",
                format!(
                    "remote_cidr {cidr} does not match ethertype {}",
                    match spec.ethertype {
                        Ethertype::Ipv4 => "ipv4",
                        Ethertype::Ipv6 => "ipv6",
                    }
                ),
            ));
        }
    }
    let check_port = |field: &str, v: Option<u32>| -> Result<Option<u16>, ApiError> {
        v.map(|v| {
            u16::try_from(v).map_err(|_| {
                ApiError::invalid(field, format!("{field} {v} is out of range 0..=65535"))
            })
        })
        .transpose()
    };
    let port_min = check_port("port_min", spec.port_min)?;
    let port_max = check_port("port_max", spec.port_max)?;
    let (port_min, port_max) = match (port_min, port_max) {
        (None, None) => (None, None),
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "port_min",
                "port_max needs port_min (for a single port give port_min only)",
            ));
        }
        (Some(min), max) => {
            let max = max.unwrap_or(min);
            if min > max {
                return Err(ApiError::invalid(
                    "port_min",
                    format!("port_min {min} is greater than port_max {max}"),
                ));
            }
            (Some(min), Some(max))
        }
    };
    if port_min.is_some() && !spec.protocol.is_some_and(Protocol::has_ports) {
        return Err(ApiError::invalid(
            "port_min",
            "port ranges need protocol tcp or udp",
        ));
    }
    let port = model
        .find_port(&spec.port)
        .ok_or_else(|| ApiError::not_found("port", "port", &spec.port))?;
    if model.acl_priority_taken(port.id, spec.direction, priority, None) {
        return Err(ApiError::conflict(
            "priority",
            format!(
                "port {:?} already has a {} ACL with priority {priority}",
                port.name,
                match spec.direction {
                    Direction::Ingress => "ingress",
                    Direction::Egress => "egress",
                }
            ),
        ));
    }
    Ok(vec![Change::PutAcl(Acl {
        id: Uuid::new_v4(),
        port: port.id,
        direction: spec.direction,
        priority,
        protocol: spec.protocol,
        ethertype: spec.ethertype,
        remote_cidr: spec.remote_cidr,
        port_min,
        port_max,
        action: spec.action,
    })])
}

/// Flood VTEPs must be distinct unicast addresses, at most [`FLOOD_VTEPS_MAX`], on a
/// tunnelled switch (a provider switch's segment is the physical network itself).
fn check_flood_vteps(vteps: &[IpAddr], provider: bool) -> Result<(), ApiError> {
    const F: &str = "flood_vteps";
    if vteps.is_empty() {
        return Ok(());
    }
    if provider {
        return Err(ApiError::invalid(
            F,
            "a provider switch is bridged, not tunnelled: it cannot have flood VTEPs",
        ));
    }
    if vteps.len() > FLOOD_VTEPS_MAX {
        return Err(ApiError::invalid(
            F,
            format!("{} VTEPs given, at most {FLOOD_VTEPS_MAX}", vteps.len()),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for ip in vteps {
        if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() || is_broadcast(ip) {
            return Err(ApiError::invalid(
                F,
                format!("{ip} cannot be a VXLAN endpoint: it is not a unicast address"),
            ));
        }
        if !seen.insert(*ip) {
            return Err(ApiError::invalid(F, format!("{ip} is given twice")));
        }
    }
    Ok(())
}

fn is_broadcast(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V4(a) if a.is_broadcast())
}

/// A provider network must name a valid physical network and VLAN, and no other switch
/// may sit on the same segment: two switches bridged onto one (physnet, VLAN) would see
/// each other's broadcasts and unknown destinations.
fn check_provider(model: &LogicalModel, pn: &ProviderNet) -> Result<(), ApiError> {
    check_name(&pn.physnet).map_err(|e| ApiError::invalid("provider.physnet", e))?;
    if let Some(v) = pn.vlan
        && !(VLAN_MIN..=VLAN_MAX).contains(&v)
    {
        return Err(ApiError::invalid(
            "provider.vlan",
            format!("vlan {v} is out of range {VLAN_MIN}..={VLAN_MAX}"),
        ));
    }
    if let Some(other) = model.switches().find(|s| s.provider.as_ref() == Some(pn)) {
        let segment = match pn.vlan {
            Some(v) => format!("VLAN {v} of physical network {:?}", pn.physnet),
            None => format!("the untagged segment of physical network {:?}", pn.physnet),
        };
        return Err(ApiError::conflict(
            "provider",
            format!("switch {:?} is already bridged onto {segment}", other.name),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AclAction, MacAddr};

    fn mac(last: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, last])
    }

    fn apply(model: &mut LogicalModel, cmd: Command) -> Result<Vec<Change>, ApiError> {
        let changes = plan(model, &cmd)?;
        for c in &changes {
            model.apply(c);
        }
        Ok(changes)
    }

    fn switch(name: &str, vni: Option<u32>) -> Command {
        Command::SwitchCreate {
            name: name.into(),
            vni,
            description: String::new(),
            flood_vteps: Vec::new(),
            provider: None,
        }
    }

    fn provider_switch(name: &str, physnet: &str, vlan: Option<u16>) -> Command {
        Command::SwitchCreate {
            name: name.into(),
            vni: None,
            description: String::new(),
            flood_vteps: Vec::new(),
            provider: Some(ProviderNet {
                physnet: physnet.into(),
                vlan,
            }),
        }
    }

    fn port(sw: &str, name: &str, m: u8) -> Command {
        Command::PortCreate {
            switch: sw.into(),
            name: name.into(),
            mac: mac(m),
            ips: vec![],
            port_security: true,
        }
    }

    #[test]
    fn allocation_and_conflicts() {
        let mut m = LogicalModel::default();
        apply(&mut m, switch("a", None)).unwrap();
        apply(&mut m, switch("b", Some(5))).unwrap();
        assert_eq!(m.find_switch("a").unwrap().vni, 1);
        assert_eq!(
            apply(&mut m, switch("c", Some(5))).unwrap_err().code(),
            crate::error::CONFLICT
        );
        apply(&mut m, port("a", "p1", 1)).unwrap();
        apply(&mut m, port("a", "p2", 2)).unwrap();
        // Same MAC on another switch is fine; same name anywhere is not.
        apply(&mut m, port("b", "p3", 1)).unwrap();
        assert!(apply(&mut m, port("b", "p1", 9)).is_err());
        assert!(apply(&mut m, port("a", "p4", 1)).is_err());
        let keys: Vec<u16> = m
            .ports_of_switch(&m.find_switch("a").unwrap().id)
            .map(|p| p.key)
            .collect();
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&1) && keys.contains(&2));
        let zones: Vec<u16> = m.ports().map(|p| p.zone).collect();
        let mut sorted = zones.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 3);
        // Switch with ports needs cascade.
        assert!(
            apply(
                &mut m,
                Command::SwitchDelete {
                    switch: "a".into(),
                    cascade: false
                }
            )
            .is_err()
        );
        let changes = apply(
            &mut m,
            Command::SwitchDelete {
                switch: "a".into(),
                cascade: true,
            },
        )
        .unwrap();
        assert_eq!(changes.len(), 3);
        assert!(m.find_port("p1").is_none());
    }

    #[test]
    fn acl_rules() {
        let mut m = LogicalModel::default();
        apply(&mut m, switch("a", None)).unwrap();
        apply(&mut m, port("a", "p1", 1)).unwrap();
        let spec = AclSpec {
            port: "p1".into(),
            direction: Direction::Egress,
            priority: 100,
            action: AclAction::AllowRelated,
            protocol: Some(Protocol::Tcp),
            ethertype: Ethertype::Ipv4,
            remote_cidr: Some("10.0.0.0/24".parse().unwrap()),
            port_min: Some(80),
            port_max: Some(80),
        };
        apply(&mut m, Command::AclCreate(spec.clone())).unwrap();
        let field = |r: Result<Vec<Change>, ApiError>| match r.unwrap_err() {
            ApiError::InvalidParams { field, .. } | ApiError::Conflict { field, .. } => field,
            e => panic!("{e:?}"),
        };
        assert_eq!(
            field(apply(&mut m, Command::AclCreate(spec.clone()))),
            "priority"
        );
        let mut s = spec.clone();
        s.priority = 1;
        s.ethertype = Ethertype::Ipv6;
        assert_eq!(
            field(apply(&mut m, Command::AclCreate(s.clone()))),
            "remote_cidr"
        );
        s.remote_cidr = None;
        s.protocol = Some(Protocol::Icmp);
        assert_eq!(
            field(apply(&mut m, Command::AclCreate(s.clone()))),
            "protocol"
        );
        s.protocol = Some(Protocol::Icmp6);
        assert_eq!(
            field(apply(&mut m, Command::AclCreate(s.clone()))),
            "port_min"
        );
        s.protocol = Some(Protocol::Udp);
        s.port_min = Some(90);
        assert_eq!(
            field(apply(&mut m, Command::AclCreate(s.clone()))),
            "port_min"
        );
        s.port_max = Some(70000);
        assert_eq!(
            field(apply(&mut m, Command::AclCreate(s.clone()))),
            "port_max"
        );
        s.port_max = Some(100);
        apply(&mut m, Command::AclCreate(s)).unwrap();
        assert_eq!(m.acl_count(), 2);
        apply(&mut m, Command::PortDelete { port: "p1".into() }).unwrap();
        assert_eq!(m.acl_count(), 0);
    }

    #[test]
    fn provider_networks() {
        let mut m = LogicalModel::default();
        let field = |r: Result<Vec<Change>, ApiError>| match r.unwrap_err() {
            ApiError::InvalidParams { field, .. } => ("invalid", field),
            ApiError::Conflict { field, .. } => ("conflict", field),
            e => panic!("{e:?}"),
        };
        apply(&mut m, provider_switch("flat", "physnet1", None)).unwrap();
        apply(&mut m, provider_switch("v100", "physnet1", Some(100))).unwrap();
        // Same VLAN on another physical network is another segment.
        apply(&mut m, provider_switch("other", "physnet2", Some(100))).unwrap();
        assert_eq!(
            m.find_switch("v100").unwrap().provider,
            Some(ProviderNet {
                physnet: "physnet1".into(),
                vlan: Some(100)
            })
        );
        assert_eq!(
            field(apply(&mut m, provider_switch("dup", "physnet1", Some(100)))),
            ("conflict", "provider".to_string())
        );
        assert_eq!(
            field(apply(&mut m, provider_switch("dup", "physnet1", None))),
            ("conflict", "provider".to_string())
        );
        for bad in [0, 4095, 65535] {
            assert_eq!(
                field(apply(&mut m, provider_switch("bad", "physnet1", Some(bad)))),
                ("invalid", "provider.vlan".to_string())
            );
        }
        for bad in ["", "phys net", "-x"] {
            assert_eq!(
                field(apply(&mut m, provider_switch("bad", bad, Some(7)))),
                ("invalid", "provider.physnet".to_string())
            );
        }
        apply(&mut m, provider_switch("edge", "physnet1", Some(4094))).unwrap();
        apply(&mut m, provider_switch("low", "physnet1", Some(1))).unwrap();
        // Deleting the switch frees its segment.
        apply(
            &mut m,
            Command::SwitchDelete {
                switch: "v100".into(),
                cascade: false,
            },
        )
        .unwrap();
        apply(&mut m, provider_switch("again", "physnet1", Some(100))).unwrap();
    }

    #[test]
    fn flood_vteps_are_checked_and_updated() {
        let mut m = LogicalModel::default();
        let invalid = |r: Result<Vec<Change>, ApiError>| match r.unwrap_err() {
            ApiError::InvalidParams { field, message } => (field, message),
            e => panic!("{e:?}"),
        };
        let ips = |v: &[&str]| -> Vec<IpAddr> { v.iter().map(|s| s.parse().unwrap()).collect() };
        let update =
            |vteps: Option<Vec<IpAddr>>, description: Option<&str>| Command::SwitchUpdate {
                switch: "s".into(),
                description: description.map(String::from),
                flood_vteps: vteps,
            };
        let mut create = switch("s", Some(10));
        if let Command::SwitchCreate { flood_vteps, .. } = &mut create {
            *flood_vteps = ips(&["192.0.2.1"]);
        }
        apply(&mut m, create).unwrap();
        assert_eq!(m.find_switch("s").unwrap().flood_vteps, ips(&["192.0.2.1"]));
        apply(
            &mut m,
            update(Some(ips(&["192.0.2.1", "2001:db8::1"])), None),
        )
        .unwrap();
        assert_eq!(m.find_switch("s").unwrap().flood_vteps.len(), 2);
        for (bad, says) in [
            (ips(&["192.0.2.1", "192.0.2.1"]), "twice"),
            (ips(&["0.0.0.0"]), "not a unicast"),
            (ips(&["239.1.1.1"]), "not a unicast"),
            (ips(&["255.255.255.255"]), "not a unicast"),
        ] {
            let (field, message) = invalid(apply(&mut m, update(Some(bad), None)));
            assert_eq!(field, "flood_vteps");
            assert!(message.contains(says), "{message}");
        }
        let many: Vec<IpAddr> = (0..=FLOOD_VTEPS_MAX as u32)
            .map(|i| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0001 + i)))
            .collect();
        assert_eq!(
            invalid(apply(&mut m, update(Some(many), None))).0,
            "flood_vteps"
        );
        assert_eq!(invalid(apply(&mut m, update(None, None))).0, "description");
        // A refused update changed nothing; a description-only one keeps the VTEPs.
        apply(&mut m, update(None, Some("legacy segment"))).unwrap();
        let s = m.find_switch("s").unwrap();
        assert_eq!(
            (s.flood_vteps.len(), s.description.as_str()),
            (2, "legacy segment")
        );
        apply(&mut m, update(Some(vec![]), None)).unwrap();
        assert!(m.find_switch("s").unwrap().flood_vteps.is_empty());
        apply(&mut m, provider_switch("p", "physnet1", None)).unwrap();
        let mut on_provider = update(Some(ips(&["192.0.2.9"])), None);
        if let Command::SwitchUpdate { switch, .. } = &mut on_provider {
            *switch = "p".into();
        }
        assert_eq!(invalid(apply(&mut m, on_provider)).0, "flood_vteps");
    }
}
