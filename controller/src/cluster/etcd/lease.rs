//! This instance's lease: granted with `--owner-lease` seconds to live, renewed every
//! third of it, and the instance's record `<prefix>/instances/<name>` put under it.
//!
//! The [`LeaseClock`] holds the local deadline until which this instance may act as an
//! owner: three quarters of the time to live after the last acknowledged renewal was
//! *sent*. etcd counts the lease from when it received that renewal (later, and a leader
//! change only extends leases), so the local deadline passes at least a quarter of the
//! time to live before etcd can expire the lease and let another instance take over.
//! One lost renewal is survived; two in a row demote the instance. When the lease is
//! gone (etcd answers TTL 0) a new one is granted and the record put again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::PutOptions;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ClusterSettings;
use crate::cluster::LeaseClock;
use crate::store::etcd::endpoints::Endpoints;

/// What etcd-client says when etcd answers a new keep-alive stream with TTL 0.
const LEASE_GONE: &str = "lease not found";

/// The local deadline after a renewal sent at `sent` for a lease of `ttl`.
pub fn deadline(sent: Instant, ttl: Duration) -> Instant {
    sent + ttl * 3 / 4
}

/// Holds a lease and the instance record until `stop`, then revokes the lease (so the
/// other instances take this one's hypervisors over at once, not after the lease).
pub async fn run(
    endpoints: Endpoints,
    settings: Arc<ClusterSettings>,
    clock: Arc<LeaseClock>,
    lease_tx: watch::Sender<Option<i64>>,
    stop: CancellationToken,
) {
    let ttl_secs = settings.owner_lease.as_secs().max(1) as i64;
    let period = settings.owner_lease / 3;
    let call_timeout = period.max(Duration::from_millis(300));
    loop {
        if stop.is_cancelled() {
            return;
        }
        let Some((id, ttl, sent)) = grant(&endpoints, &settings, ttl_secs, call_timeout).await
        else {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
            }
        };
        tracing::info!(instance = %settings.instance, lease = id, ?ttl, "cluster lease granted; instance registered");
        clock.set(Some(deadline(sent, ttl)));
        lease_tx.send_replace(Some(id));
        let mut keeper = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    clock.set(None);
                    lease_tx.send_replace(None);
                    revoke(&endpoints, id, call_timeout).await;
                    return;
                }
                _ = tokio::time::sleep(period) => {}
            }
            let sent = Instant::now();
            match renew(&endpoints, &mut keeper, id, call_timeout).await {
                Ok(granted) if granted > 0 => {
                    clock.set(Some(deadline(sent, Duration::from_secs(granted as u64))));
                }
                Ok(_) => {
                    tracing::warn!(instance = %settings.instance, lease = id,
                        "cluster lease expired in etcd; stepping down and registering again");
                    clock.set(None);
                    lease_tx.send_replace(None);
                    break;
                }
                Err(e) => {
                    keeper = None;
                    let lapsed = !clock.valid_at(Instant::now());
                    tracing::warn!(instance = %settings.instance, lease = id, error = %e, lapsed,
                        "cannot renew the cluster lease");
                }
            }
        }
    }
}

/// Grants a lease and puts the instance record under it: the lease, its time to live and
/// when the grant was sent (the lease counts from then); `None` if etcd did not answer.
async fn grant(
    endpoints: &Endpoints,
    settings: &ClusterSettings,
    ttl_secs: i64,
    call_timeout: Duration,
) -> Option<(i64, Duration, Instant)> {
    let (member, mut client) = endpoints.current();
    let sent = Instant::now();
    let granted = match tokio::time::timeout(call_timeout, client.lease_grant(ttl_secs, None)).await
    {
        Ok(Ok(g)) if g.ttl() > 0 => g,
        other => {
            tracing::debug!(?other, "lease grant failed");
            endpoints.failed(member);
            return None;
        }
    };
    let ttl = Duration::from_secs(granted.ttl() as u64);
    let record = serde_json::to_vec(&settings.info).unwrap_or_default();
    let put = client.put(
        settings.instance_key(),
        record,
        Some(PutOptions::new().with_lease(granted.id())),
    );
    match tokio::time::timeout(call_timeout, put).await {
        Ok(Ok(_)) => {}
        _ => {
            endpoints.failed(member);
            // The unused lease expires by itself.
            return None;
        }
    }
    Some((granted.id(), ttl, sent))
}

type Keeper = (
    usize,
    etcd_client::LeaseKeeper,
    etcd_client::LeaseKeepAliveStream,
);

/// One renewal; the granted time to live in seconds (0: the lease is gone).
async fn renew(
    endpoints: &Endpoints,
    keeper: &mut Option<Keeper>,
    id: i64,
    call_timeout: Duration,
) -> Result<i64, String> {
    let attempt = async {
        if keeper.is_none() {
            let (member, mut client) = endpoints.current();
            match client.lease_keep_alive(id).await {
                Ok((k, s)) => *keeper = Some((member, k, s)),
                // etcd answered the opening keep-alive with TTL 0: the lease expired (this
                // instance was cut off from etcd for longer than it). etcd-client reports
                // that as this error; it is an answer, not a failure of the member.
                Err(etcd_client::Error::LeaseKeepAliveError(m)) if m == LEASE_GONE => {
                    return Ok(0);
                }
                Err(e) => {
                    endpoints.failed(member);
                    return Err(e.to_string());
                }
            }
        }
        let Some((member, k, s)) = keeper.as_mut() else {
            return Err("no keep-alive stream".into());
        };
        let member = *member;
        if let Err(e) = k.keep_alive().await {
            endpoints.failed(member);
            return Err(e.to_string());
        }
        match s.message().await {
            Ok(Some(r)) => Ok(r.ttl()),
            Ok(None) => {
                endpoints.failed(member);
                Err("keep-alive stream closed".into())
            }
            Err(e) => {
                endpoints.failed(member);
                Err(e.to_string())
            }
        }
    };
    match tokio::time::timeout(call_timeout, attempt).await {
        Ok(r) => r,
        Err(_) => {
            if let Some((member, ..)) = keeper.as_ref() {
                endpoints.failed(*member);
            }
            Err(format!("no answer within {call_timeout:?}"))
        }
    }
}

async fn revoke(endpoints: &Endpoints, id: i64, call_timeout: Duration) {
    let (_, mut client) = endpoints.current();
    match tokio::time::timeout(call_timeout, client.lease_revoke(id)).await {
        Ok(Ok(_)) => tracing::info!(lease = id, "cluster lease revoked"),
        _ => tracing::info!(lease = id, "could not revoke the cluster lease; it expires"),
    }
}
