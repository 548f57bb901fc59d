//! A local copy of every key under one etcd prefix, kept current by a watch: the live
//! instances (`<prefix>/instances/`) and the ownership records (`<prefix>/owners/`).
//! A broken watch is given up and the prefix listed again (on the next member), so a
//! deletion missed while the stream was down still shows.
//!
//! The copy is a persistent map of shared values: publishing it after each watch
//! response costs the keys that changed, not a copy and a comparison of the whole
//! prefix (thousands of observed-node records, each written several times during a cold
//! start), and readers find what changed with [`imbl::OrdMap::diff`].

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType, GetOptions, WatchOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::etcd::endpoints::Endpoints;

/// One key's value as last seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub value: Arc<[u8]>,
    pub mod_revision: i64,
    pub lease: i64,
}

/// Every key under the prefix (the part after it) and etcd's revision as of the copy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirror {
    pub entries: imbl::OrdMap<String, Entry>,
    pub revision: i64,
}

/// Keeps `tx` equal to what etcd holds under `prefix` until `stop`.
pub async fn run(
    endpoints: Endpoints,
    prefix: String,
    timeout: Duration,
    tx: watch::Sender<Arc<Mirror>>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            () = follow_once(&endpoints, &prefix, timeout, &tx) => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// Lists the prefix, then applies its watch until the stream breaks.
async fn follow_once(
    endpoints: &Endpoints,
    prefix: &str,
    timeout: Duration,
    tx: &watch::Sender<Arc<Mirror>>,
) {
    let (member, mut client) = endpoints.current();
    let listed = tokio::time::timeout(
        timeout,
        client.get(prefix, Some(GetOptions::new().with_prefix())),
    )
    .await;
    let resp = match listed {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::debug!(%prefix, error = %e, "cannot list; trying the next etcd member");
            endpoints.failed(member);
            return;
        }
        Err(_) => {
            tracing::debug!(%prefix, "listing timed out; trying the next etcd member");
            endpoints.failed(member);
            return;
        }
    };
    let mut mirror = Mirror {
        entries: imbl::OrdMap::new(),
        revision: resp.header().map_or(0, |h| h.revision()),
    };
    for kv in resp.kvs() {
        if let Some(name) = kv.key().strip_prefix(prefix.as_bytes()) {
            mirror.entries.insert(
                String::from_utf8_lossy(name).into_owned(),
                Entry {
                    value: kv.value().into(),
                    mod_revision: kv.mod_revision(),
                    lease: kv.lease(),
                },
            );
        }
    }
    // A fresh listing: compared once with what readers have (unchanged after a
    // reconnect, usually).
    tx.send_if_modified(|cur| {
        if **cur == mirror {
            return false;
        }
        *cur = Arc::new(mirror.clone());
        true
    });
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(mirror.revision + 1)
        .with_progress_notify();
    let mut watch_client = client.watch_client();
    let mut stream =
        match tokio::time::timeout(timeout, watch_client.watch(prefix, Some(options))).await {
            Ok(Ok(s)) => s,
            _ => {
                endpoints.failed(member);
                return;
            }
        };
    loop {
        let resp = match stream.message().await {
            Ok(Some(r)) => r,
            Ok(None) | Err(_) => {
                tracing::debug!(%prefix, "watch ended; listing again");
                endpoints.failed(member);
                return;
            }
        };
        if resp.canceled() || resp.compact_revision() > 0 {
            return;
        }
        let before = mirror.revision;
        let mut changed = false;
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let Some(name) = kv.key().strip_prefix(prefix.as_bytes()) else {
                continue;
            };
            let name = String::from_utf8_lossy(name).into_owned();
            match event.event_type() {
                EventType::Put => {
                    mirror.entries.insert(
                        name,
                        Entry {
                            value: kv.value().into(),
                            mod_revision: kv.mod_revision(),
                            lease: kv.lease(),
                        },
                    );
                }
                EventType::Delete => {
                    mirror.entries.remove(&name);
                }
            }
            changed = true;
            mirror.revision = mirror.revision.max(kv.mod_revision());
        }
        if let Some(h) = resp.header() {
            mirror.revision = mirror.revision.max(h.revision());
        }
        if changed || mirror.revision != before {
            tx.send_replace(Arc::new(mirror.clone()));
        }
    }
}
