//! [`Endpoints`]: one etcd client per member, and which one to use now.
//!
//! The client crate's own balancing over several endpoints kept sending requests to a
//! killed member until they timed out, so each member gets its own client and a failed
//! call moves every later call on to the next member. Requests that never reached a
//! member (connection refused) are retried on the next one at once; a request whose
//! fate is unknown is reported, and the writer's compare-and-set makes any retry safe.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use super::EtcdSettings;

#[derive(Clone)]
pub struct Endpoints {
    clients: Arc<Vec<Client>>,
    preferred: Arc<AtomicUsize>,
}

impl Endpoints {
    /// Builds one client per endpoint; the channels connect lazily.
    pub async fn new(settings: &EtcdSettings) -> Result<Self, etcd_client::Error> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_millis(1000).min(settings.timeout))
            .with_timeout(settings.timeout)
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_keep_alive_while_idle(true)
            .with_require_leader(true);
        let mut clients = Vec::with_capacity(settings.endpoints.len());
        for e in &settings.endpoints {
            clients.push(Client::connect([e], Some(options.clone())).await?);
        }
        Ok(Endpoints {
            clients: Arc::new(clients),
            preferred: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// How many members there are (never zero: settings without endpoints are refused).
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The client to use now, and its index (to pass to [`Endpoints::failed`]).
    pub fn current(&self) -> (usize, Client) {
        let i = self.preferred.load(Ordering::Relaxed) % self.clients.len().max(1);
        (i, self.clients[i].clone())
    }

    /// Moves on from member `i` after a call through it failed.
    pub fn failed(&self, i: usize) {
        let next = (i + 1) % self.clients.len().max(1);
        let _ = self
            .preferred
            .compare_exchange(i, next, Ordering::Relaxed, Ordering::Relaxed);
    }
}
