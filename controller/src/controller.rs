//! The controller core: validated writes, the single writer, snapshots and events.
//!
//! Writes are [`Command`]s. A dedicated writer thread owns the [`Store`]; it takes a batch
//! of queued commands, validates each against a private copy of the current model
//! ([`plan`], which also allocates VNIs, port keys and conntrack zones), commits the
//! resulting [`Change`]s in one durable transaction, then publishes the new snapshot and
//! the events, and only then answers the callers. Batching ("group commit") lets 16
//! concurrent clients share one fsync instead of queueing for 16.
//!
//! After a failed commit the writer refuses further writes (`-32010`) until restart: the
//! disk's state is then unknown, and serving a model that may differ from it is worse than
//! being read-only.
//!
//! Seams for the southbound: [`Controller::snapshot`] (an immutable `Arc<LogicalModel>`),
//! [`Controller::watch_model`] (a `watch` that changes on every write),
//! [`Controller::subscribe_events`] and [`Controller::observed`].

use std::net::IpAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use ipnet::IpNet;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use uuid::Uuid;

use crate::error::ApiError;
use crate::events::{ChangeOp, EVENT_BUFFER, Event};
use crate::model::{
    ACL_PRIORITY_MAX, Acl, AclAction, Change, DESCRIPTION_MAX_LEN, Direction, Ethertype,
    LogicalModel, LogicalPort, LogicalSwitch, MacAddr, PORT_IPS_MAX, Protocol, VNI_MAX, check_name,
};
use crate::observed::ObservedState;
use crate::store::{Store, StoreError};

/// Most commands committed in one store transaction.
const MAX_BATCH: usize = 256;
/// Most writes waiting for the writer before callers are pushed back.
const QUEUE_DEPTH: usize = 4096;

/// A requested change to the logical model. References (`switch`, `port`) are names or ids
/// and are resolved by the writer, against the model the write is applied to.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    SwitchCreate {
        name: String,
        vni: Option<u32>,
        description: String,
    },
    SwitchDelete {
        switch: String,
        cascade: bool,
    },
    PortCreate {
        switch: String,
        name: String,
        mac: MacAddr,
        ips: Vec<IpAddr>,
        port_security: bool,
    },
    PortUpdate {
        port: String,
        mac: Option<MacAddr>,
        ips: Option<Vec<IpAddr>>,
        port_security: Option<bool>,
    },
    PortDelete {
        port: String,
    },
    AclCreate(AclSpec),
    AclDelete {
        acl: Uuid,
    },
}

/// The caller's description of a new ACL, before it is checked and given an id.
#[derive(Clone, Debug, PartialEq)]
pub struct AclSpec {
    pub port: String,
    pub direction: Direction,
    pub priority: u32,
    pub action: AclAction,
    pub protocol: Option<Protocol>,
    pub ethertype: Ethertype,
    pub remote_cidr: Option<IpNet>,
    pub port_min: Option<u32>,
    pub port_max: Option<u32>,
}

/// A write that is durable and visible: its revision and exactly what it changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub revision: u64,
    pub changes: Vec<Change>,
}

/// Validates `cmd` against `model` and turns it into the changes that carry it out.
/// Pure: the same model and command always give the same answer (ids aside).
pub fn plan(model: &LogicalModel, cmd: &Command) -> Result<Vec<Change>, ApiError> {
    match cmd {
        Command::SwitchCreate {
            name,
            vni,
            description,
        } => {
            check_name(name).map_err(|e| ApiError::invalid("name", e))?;
            if description.len() > DESCRIPTION_MAX_LEN {
                return Err(ApiError::invalid(
                    "description",
                    format!(
                        "description is {} bytes, at most {DESCRIPTION_MAX_LEN} allowed",
                        description.len()
                    ),
                ));
            }
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
            })])
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
            let mut changes = Vec::new();
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

struct WriteRequest {
    cmd: Command,
    reply: oneshot::Sender<Result<Applied, ApiError>>,
}

enum WriterMsg {
    Write(WriteRequest),
    Shutdown,
}

/// The handle the API and, later, the southbound use. Cheap to clone.
#[derive(Clone)]
pub struct Controller {
    model: watch::Receiver<Arc<LogicalModel>>,
    writer: mpsc::Sender<WriterMsg>,
    events: broadcast::Sender<Event>,
    observed: Arc<ObservedState>,
    started: Instant,
    store_location: Arc<str>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("store", &self.store_location)
            .finish_non_exhaustive()
    }
}

/// Owns the writer thread; [`WriterHandle::shutdown`] finishes queued writes and closes
/// the store.
pub struct WriterHandle {
    tx: mpsc::Sender<WriterMsg>,
    thread: Option<JoinHandle<()>>,
}

impl WriterHandle {
    /// Lets every write queued so far finish, then stops the writer and closes the store.
    pub async fn shutdown(mut self) {
        let _ = self.tx.send(WriterMsg::Shutdown).await;
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Controller {
    /// Loads the store into memory and starts the writer. Fails, and never starts empty,
    /// if the store cannot be read or its contents are inconsistent.
    pub fn start(mut store: Box<dyn Store>) -> Result<(Controller, WriterHandle), StoreError> {
        let stored = store.load()?;
        let location = store.location();
        let model =
            LogicalModel::from_objects(stored.revision, stored.switches, stored.ports, stored.acls)
                .map_err(|e| StoreError::Inconsistent {
                    path: location.clone().into(),
                    message: e.to_string(),
                })?;
        let (model_tx, model_rx) = watch::channel(Arc::new(model));
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let writer_events = events.clone();
        let thread = std::thread::Builder::new()
            .name("weft-writer".into())
            .spawn(move || writer_loop(store, rx, model_tx, writer_events))
            .map_err(|e| StoreError::Io {
                path: location.clone().into(),
                source: redb::Error::Io(e),
            })?;
        let controller = Controller {
            model: model_rx,
            writer: tx.clone(),
            observed: Arc::new(ObservedState::new(events.clone())),
            events,
            started: Instant::now(),
            store_location: location.into(),
        };
        Ok((
            controller,
            WriterHandle {
                tx,
                thread: Some(thread),
            },
        ))
    }

    /// The current model. Immutable; hold it as long as needed.
    pub fn snapshot(&self) -> Arc<LogicalModel> {
        self.model.borrow().clone()
    }

    /// A receiver that is notified whenever a write publishes a new snapshot.
    pub fn watch_model(&self) -> watch::Receiver<Arc<LogicalModel>> {
        self.model.clone()
    }

    /// Every event (config, binding, node) from now on.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Observed state, written by the southbound.
    pub fn observed(&self) -> &Arc<ObservedState> {
        &self.observed
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    pub fn store_location(&self) -> &str {
        &self.store_location
    }

    /// Validates, durably commits and publishes one write. Returns once the change is on
    /// disk and visible in [`Controller::snapshot`].
    pub async fn submit(&self, cmd: Command) -> Result<Applied, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(WriterMsg::Write(WriteRequest { cmd, reply }))
            .await
            .map_err(|_| ApiError::StoreUnavailable("the store is shut down".into()))?;
        rx.await
            .map_err(|_| ApiError::StoreUnavailable("the writer stopped before answering".into()))?
    }
}

fn writer_loop(
    mut store: Box<dyn Store>,
    mut rx: mpsc::Receiver<WriterMsg>,
    model_tx: watch::Sender<Arc<LogicalModel>>,
    events: broadcast::Sender<Event>,
) {
    let mut failed: Option<String> = None;
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Vec::new();
        let mut shutdown = false;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                WriterMsg::Write(req) => batch.push(req),
                WriterMsg::Shutdown => {
                    shutdown = true;
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if let Some(reason) = &failed {
            for req in batch {
                let _ = req
                    .reply
                    .send(Err(ApiError::StoreUnavailable(reason.clone())));
            }
        } else {
            process_batch(&mut *store, batch, &model_tx, &events, &mut failed);
        }
        if shutdown {
            break;
        }
    }
    drop(store);
    tracing::info!("store closed");
}

fn process_batch(
    store: &mut dyn Store,
    batch: Vec<WriteRequest>,
    model_tx: &watch::Sender<Arc<LogicalModel>>,
    events: &broadcast::Sender<Event>,
    failed: &mut Option<String>,
) {
    let current = model_tx.borrow().clone();
    let mut working: LogicalModel = (*current).clone();
    let mut replies = Vec::with_capacity(batch.len());
    let mut all_changes = Vec::new();
    let mut pending_events = Vec::new();
    for req in batch {
        match plan(&working, &req.cmd) {
            Ok(changes) => {
                let revision = working.revision() + 1;
                for change in &changes {
                    let op = if change.is_delete() {
                        ChangeOp::Deleted
                    } else if exists(&working, change) {
                        ChangeOp::Updated
                    } else {
                        ChangeOp::Created
                    };
                    pending_events.push(Event::ConfigChanged {
                        kind: change.kind(),
                        id: change.id(),
                        op,
                        revision,
                    });
                    working.apply(change);
                }
                working.set_revision(revision);
                all_changes.extend(changes.iter().cloned());
                replies.push((req.reply, Ok(Applied { revision, changes })));
            }
            Err(e) => replies.push((req.reply, Err(e))),
        }
    }
    if !all_changes.is_empty() {
        match store.commit(working.revision(), &all_changes) {
            Ok(()) => {
                tracing::debug!(
                    revision = working.revision(),
                    changes = all_changes.len(),
                    writes = replies.iter().filter(|(_, r)| r.is_ok()).count(),
                    "committed"
                );
                model_tx.send_replace(Arc::new(working));
                for ev in pending_events {
                    let _ = events.send(ev);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "store commit failed; refusing further writes");
                let reason = format!("commit failed, writes disabled until restart: {e}");
                for (_, result) in replies.iter_mut() {
                    if result.is_ok() {
                        *result = Err(ApiError::StoreUnavailable(reason.clone()));
                    }
                }
                *failed = Some(reason);
            }
        }
    }
    for (reply, result) in replies {
        let _ = reply.send(result);
    }
}

fn exists(model: &LogicalModel, change: &Change) -> bool {
    let id = change.id();
    match change {
        Change::PutSwitch(_) => model.switch(&id).is_some(),
        Change::PutPort(_) => model.port(&id).is_some(),
        Change::PutAcl(_) => model.acl(&id).is_some(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A store whose commits fail, to check that callers get -32010 and nothing changes.
    struct BrokenStore;

    impl Store for BrokenStore {
        fn load(&mut self) -> Result<crate::store::StoredModel, StoreError> {
            Ok(Default::default())
        }
        fn commit(&mut self, _: u64, _: &[Change]) -> Result<(), StoreError> {
            Err(StoreError::Closed)
        }
        fn location(&self) -> String {
            "broken".into()
        }
    }

    #[tokio::test]
    async fn failed_commit_is_store_unavailable_and_changes_nothing() {
        let (c, writer) = Controller::start(Box::new(BrokenStore)).unwrap();
        let err = c.submit(switch("a", None)).await.unwrap_err();
        assert_eq!(err.code(), crate::error::STORE_UNAVAILABLE);
        assert_eq!(c.snapshot().switch_count(), 0);
        assert_eq!(c.snapshot().revision(), 0);
        // Once a commit failed, every later write is refused, even one that would not validate.
        let err = c.submit(switch("a b", None)).await.unwrap_err();
        assert_eq!(err.code(), crate::error::STORE_UNAVAILABLE);
        writer.shutdown().await;
        let err = c.submit(switch("b", None)).await.unwrap_err();
        assert_eq!(err.code(), crate::error::STORE_UNAVAILABLE);
    }

    #[test]
    fn inconsistent_store_is_refused_at_startup() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::store::RedbStore::open(dir.path()).unwrap();
        let orphan = LogicalPort {
            id: Uuid::new_v4(),
            name: "orphan".into(),
            switch: Uuid::new_v4(),
            mac: mac(1),
            ips: vec![],
            port_security: true,
            key: 1,
            zone: 1,
        };
        store.commit(1, &[Change::PutPort(orphan)]).unwrap();
        let err = Controller::start(Box::new(store)).err().unwrap();
        assert!(err.to_string().contains("does not exist"), "{err}");
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
}
