//! Following the model in etcd: [`Follower`] watches `<prefix>/model/` from the revision
//! this instance loaded and publishes one snapshot, with its config events, per model
//! revision any instance commits; [`EtcdFreshness`] is the read barrier.
//!
//! Nothing is ever silently missed: a broken stream resumes from the next etcd revision
//! not yet seen; a compacted history, a gap in the model revisions or a record that does
//! not decode makes the follower reload the whole model and publish the difference.

use std::time::Duration;

use etcd_client::{EventType, WatchOptions};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::endpoints::Endpoints;
use super::keys::{KeyLayout, KeyName, apply_order};
use super::load::{parse_revision, read_model};
use super::{EtcdSettings, bounded};
use crate::events::{ChangeOp, Event};
use crate::model::{LogicalModel, ObjectKind};
use crate::publish::{Publisher, change_event};
use crate::store::{Freshness, StoreError};

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Why following stopped and what to do next.
enum Interrupted {
    /// The stream ended or failed: watch again from this etcd revision.
    Resume(i64),
    /// History is gone or the model cannot be followed step by step: reload.
    Reload(String),
}

pub struct Follower {
    settings: EtcdSettings,
    layout: KeyLayout,
    endpoints: Endpoints,
    publisher: Publisher,
    stop: CancellationToken,
}

impl Follower {
    pub fn new(
        settings: EtcdSettings,
        layout: KeyLayout,
        endpoints: Endpoints,
        publisher: Publisher,
        stop: CancellationToken,
    ) -> Self {
        Follower {
            settings,
            layout,
            endpoints,
            publisher,
            stop,
        }
    }

    /// Follows from etcd revision `from` until `stop` is cancelled.
    pub async fn run(self, from: i64) {
        let stop = self.stop.clone();
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = self.follow_forever(from) => {}
        }
    }

    async fn follow_forever(&self, mut from: i64) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let outcome = self.watch_from(from).await;
            match outcome {
                Interrupted::Resume(next) => {
                    if next > from {
                        backoff = BACKOFF_MIN;
                    }
                    from = next;
                }
                Interrupted::Reload(reason) => {
                    tracing::warn!(%reason, "reloading the model from etcd");
                    match self.reload().await {
                        Ok(next) => {
                            from = next;
                            backoff = BACKOFF_MIN;
                            continue;
                        }
                        Err(e) => tracing::warn!(error = %e, "reloading the model failed"),
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Watches from `from`; returns when the stream breaks.
    async fn watch_from(&self, from: i64) -> Interrupted {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(from)
            .with_progress_notify();
        let (member, client) = self.endpoints.current();
        let mut watch_client = client.watch_client();
        let stream = bounded(
            &self.settings,
            "watch",
            watch_client.watch(self.layout.model_prefix(), Some(options)),
        )
        .await;
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "cannot watch the model yet");
                self.endpoints.failed(member);
                return Interrupted::Resume(from);
            }
        };
        let mut next = from;
        loop {
            let resp = match stream.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) => {
                    self.endpoints.failed(member);
                    return Interrupted::Resume(next);
                }
                Err(e) => {
                    tracing::info!(error = %e, "model watch broke; resuming");
                    self.endpoints.failed(member);
                    return Interrupted::Resume(next);
                }
            };
            if resp.compact_revision() > 0 {
                return Interrupted::Reload(format!(
                    "etcd compacted its history past revision {next} (to {})",
                    resp.compact_revision()
                ));
            }
            if resp.canceled() {
                tracing::info!(
                    reason = resp.cancel_reason(),
                    "model watch cancelled; resuming"
                );
                return Interrupted::Resume(next);
            }
            // Events of one etcd revision (one commit) are never split across responses.
            let mut group: Vec<&etcd_client::Event> = Vec::new();
            let mut group_rev = 0;
            for event in resp.events() {
                let rev = event.kv().map_or(0, |kv| kv.mod_revision());
                if rev != group_rev && !group.is_empty() {
                    if let Err(reason) = self.apply(&group) {
                        return Interrupted::Reload(reason);
                    }
                    next = group_rev + 1;
                    group.clear();
                }
                group_rev = rev;
                group.push(event);
            }
            if !group.is_empty() {
                if let Err(reason) = self.apply(&group) {
                    return Interrupted::Reload(reason);
                }
                next = group_rev + 1;
            }
            // A progress notification: every event up to the header's revision was sent.
            // (Other responses' headers may run ahead of the events they carry.)
            if resp.events().is_empty()
                && !resp.created()
                && let Some(h) = resp.header()
            {
                next = next.max(h.revision() + 1);
            }
        }
    }

    /// Applies the events of one etcd revision and publishes the new snapshot.
    fn apply(&self, events: &[&etcd_client::Event]) -> Result<(), String> {
        let mut changes = Vec::new();
        let mut revision = None;
        for event in events {
            let Some(kv) = event.kv() else { continue };
            let put = event.event_type() == EventType::Put;
            match self.layout.parse(kv.key()) {
                Some(KeyName::Revision) if put => revision = parse_revision(kv.value()),
                Some(KeyName::Revision) => return Err("the model revision key was deleted".into()),
                Some(KeyName::Format) | None => {}
                Some(KeyName::Object(..)) if put => changes.push(
                    self.layout
                        .decode(kv.key(), kv.value())
                        .map_err(|e| e.to_string())?,
                ),
                Some(KeyName::Object(..)) => changes.extend(self.layout.deletion(kv.key())),
            }
        }
        let Some(revision) = revision else {
            if changes.is_empty() {
                return Ok(());
            }
            return Err("model records changed without a new model revision".into());
        };
        let current = self.publisher.current();
        if revision <= current.revision() {
            // This instance's writer published it already.
            return Ok(());
        }
        if revision != current.revision() + 1 {
            return Err(format!(
                "model revision {revision} follows {}: revisions in between were missed",
                current.revision()
            ));
        }
        changes.sort_by_key(apply_order);
        let mut working = (*current).clone();
        let mut events = Vec::with_capacity(changes.len());
        for change in &changes {
            events.push(change_event(&working, change, revision));
            working.apply(change);
        }
        working.set_revision(revision);
        self.publisher.publish(working, events);
        Ok(())
    }

    /// Reads the whole model, publishes it (with an event per object that differs) and
    /// returns the etcd revision to watch from.
    async fn reload(&self) -> Result<i64, StoreError> {
        let (member, client) = self.endpoints.current();
        let mut kv = client.kv_client();
        let (stored, at) = read_model(&self.settings, &self.layout, &mut kv)
            .await
            .inspect_err(|_| self.endpoints.failed(member))?;
        let model =
            LogicalModel::from_objects(stored.revision, stored.switches, stored.ports, stored.acls)
                .and_then(|m| m.with_routing(stored.routers, stored.router_ports, stored.routes))
                .and_then(|m| m.with_vtep_bindings(stored.vtep_bindings))
                .map_err(|e| StoreError::Inconsistent {
                    path: self.settings.location().into(),
                    message: e.to_string(),
                })?;
        let current = self.publisher.current();
        let events = resync_events(&current, &model);
        self.publisher.publish(model, events);
        Ok(at + 1)
    }
}

/// One config event per object that differs between `old` and `new`.
fn resync_events(old: &LogicalModel, new: &LogicalModel) -> Vec<Event> {
    let delta = new.changed_since(old);
    let revision = new.revision();
    let event = |kind, id, in_old: bool, in_new: bool| Event::ConfigChanged {
        kind,
        id,
        op: match (in_old, in_new) {
            (_, false) => ChangeOp::Deleted,
            (true, true) => ChangeOp::Updated,
            (false, true) => ChangeOp::Created,
        },
        revision,
    };
    let mut events = Vec::new();
    for id in delta.switches {
        events.push(event(
            ObjectKind::Switch,
            id,
            old.switch(&id).is_some(),
            new.switch(&id).is_some(),
        ));
    }
    for id in delta.ports {
        events.push(event(
            ObjectKind::Port,
            id,
            old.port(&id).is_some(),
            new.port(&id).is_some(),
        ));
    }
    for id in delta.acls {
        events.push(event(
            ObjectKind::Acl,
            id,
            old.acl(&id).is_some(),
            new.acl(&id).is_some(),
        ));
    }
    for id in delta.routers {
        events.push(event(
            ObjectKind::Router,
            id,
            old.router(&id).is_some(),
            new.router(&id).is_some(),
        ));
    }
    for id in delta.router_ports {
        events.push(event(
            ObjectKind::RouterPort,
            id,
            old.router_port(&id).is_some(),
            new.router_port(&id).is_some(),
        ));
    }
    for id in delta.routes {
        events.push(event(
            ObjectKind::Route,
            id,
            old.route(&id).is_some(),
            new.route(&id).is_some(),
        ));
    }
    for id in delta.vtep_bindings {
        events.push(event(
            ObjectKind::VtepBinding,
            id,
            old.vtep_binding(&id).is_some(),
            new.vtep_binding(&id).is_some(),
        ));
    }
    events
}

/// The read barrier: the model revision etcd holds now, by a linearizable read of the
/// revision key (etcd answers it only after confirming its leadership, so it includes
/// every commit acknowledged before the read began).
pub struct EtcdFreshness {
    settings: EtcdSettings,
    layout: KeyLayout,
    endpoints: Endpoints,
}

impl EtcdFreshness {
    pub fn new(settings: EtcdSettings, layout: KeyLayout, endpoints: Endpoints) -> Self {
        EtcdFreshness {
            settings,
            layout,
            endpoints,
        }
    }
}

impl Freshness for EtcdFreshness {
    fn committed_revision(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let key = self.layout.revision_key();
            let mut resp = None;
            let mut last = None;
            // A read is safe to repeat: try each member once.
            for _ in 0..self.endpoints.len() {
                let (member, client) = self.endpoints.current();
                let mut kv = client.kv_client();
                let got = kv.get(key.clone(), None);
                match bounded(&self.settings, "read the model revision", got).await {
                    Ok(r) => {
                        resp = Some(r);
                        break;
                    }
                    Err(e) => {
                        self.endpoints.failed(member);
                        last = Some(e);
                    }
                }
            }
            let Some(resp) = resp else {
                return Err(
                    last.unwrap_or_else(|| super::unavailable(&self.settings, "no endpoint"))
                );
            };
            resp.kvs()
                .first()
                .and_then(|kv| parse_revision(kv.value()))
                .ok_or_else(|| StoreError::Inconsistent {
                    path: self.settings.location().into(),
                    message: format!("{} is missing or not a number", self.layout.revision_key()),
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LogicalSwitch;
    use uuid::Uuid;

    #[test]
    fn resync_names_created_updated_and_deleted_objects() {
        let sw = |name: &str, vni| LogicalSwitch {
            id: Uuid::new_v4(),
            name: name.into(),
            vni,
            description: String::new(),
            provider: None,
            flood_vteps: Vec::new(),
        };
        let (a, b) = (sw("a", 1), sw("b", 2));
        let old = LogicalModel::from_objects(1, vec![a.clone()], vec![], vec![]).unwrap();
        let mut a2 = a.clone();
        a2.description = "changed".into();
        let new = LogicalModel::from_objects(3, vec![b.clone()], vec![], vec![]).unwrap();
        let events = resync_events(&old, &new);
        assert_eq!(events.len(), 2);
        assert!(events.iter().any(|e| matches!(e, Event::ConfigChanged { id, op: ChangeOp::Deleted, revision: 3, .. } if *id == a.id)));
        assert!(events.iter().any(
            |e| matches!(e, Event::ConfigChanged { id, op: ChangeOp::Created, .. } if *id == b.id)
        ));
        let newer = LogicalModel::from_objects(4, vec![a2], vec![], vec![]).unwrap();
        let events = resync_events(&old, &newer);
        assert!(matches!(
            events.as_slice(),
            [Event::ConfigChanged {
                op: ChangeOp::Updated,
                ..
            }]
        ));
    }
}
