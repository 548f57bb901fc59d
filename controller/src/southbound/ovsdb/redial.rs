//! Making a restarted switch dial weftd again at once, rather than after rconn's backoff.
//!
//! A restarted ovs-vswitchd dials its controllers as soon as it has configured its
//! bridges, which in userspace deployments is before the underlay address is back: that
//! address lives on `br-phy`, which the restart re-creates, and whoever puts it back
//! (ifupdown, the node's network scripts) can only do so once vswitchd has made the
//! device. The attempt fails, and rconn (OVS's lib/rconn.c) waits at least a second
//! before the next, with its connect timeout on top: with a plain restart, forwarding
//! was back about 1.4 s after the restart, where OVN's local controller needs 0.6 s.
//!
//! The node's OVSDB session lives through such a restart, and the new vswitchd writes
//! `is_connected=false` into the Controller row that its predecessor had set true. If no
//! switch connection for the node arrives soon after, the session writes the same target
//! in its other spelling ([`vswitch::respell`]): vswitchd keys controllers by the target
//! string, so it drops the backing-off connection and dials the "new" controller at
//! once. Both spellings are Weft's controller everywhere that compares them (bridge
//! repair, cluster mode's Controller rows), so the row is never rewritten back.
//!
//! Only a true → false change starts this, only when no switch connection identified
//! itself as the node in the second before it or since, and it gives up after a few
//! tries (vswitchd's own retries, every ≤ 2 s, carry on): a switch that cannot reach
//! weftd for another reason costs it a handful of reconfigurations, once.

use std::time::{Duration, Instant};

use ovsdb::vswitch::{self, Controller};
use ovsdb::{Condition, Datum, Row, Transaction};

/// The waits before each redial, from the moment the switch reported its controller
/// unreachable. The first leaves time for a connection already on its way (a switch that
/// can reach weftd connects within milliseconds of that report); the later ones for an
/// underlay address that takes longer to come back.
const WAITS: [Duration; 4] = [
    Duration::from_millis(20),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
];

/// A switch connection this long before the report counts as the restarted switch's:
/// its status write can reach us after its connection did.
const ARRIVAL_SLACK: Duration = Duration::from_secs(1);

/// One session's watch on its Controller row.
#[derive(Debug, Default)]
pub(super) struct Redial {
    /// The row's `is_connected` as last seen; `None` before the first sight (a session
    /// that starts while the switch is disconnected does not know why, and the switch
    /// retries on its own) and while there is no such row.
    connected: Option<bool>,
    episode: Option<Episode>,
}

#[derive(Debug)]
struct Episode {
    /// When the switch was seen to report the controller unreachable.
    since: Instant,
    /// Redials so far.
    tries: usize,
    next: Instant,
}

impl Redial {
    /// What the row says now; a change from connected to not starts an episode.
    pub(super) fn observe(&mut self, connected: Option<bool>, now: Instant) {
        match (self.connected, connected) {
            (Some(true), Some(false)) => {
                self.episode = Some(Episode {
                    since: now,
                    tries: 0,
                    next: now + WAITS[0],
                });
            }
            (_, Some(true) | None) => self.episode = None,
            _ => {}
        }
        self.connected = connected;
    }

    /// When the session should wake for the next redial.
    pub(super) fn wake_at(&self) -> Option<Instant> {
        self.episode.as_ref().map(|e| e.next)
    }

    /// Whether to redial now. `arrived_since(t)` says whether a switch connection
    /// identified itself as the node at or after `t`; one that did ends the episode.
    pub(super) fn due(
        &mut self,
        now: Instant,
        arrived_since: impl FnOnce(Instant) -> bool,
    ) -> bool {
        let Some(e) = &mut self.episode else {
            return false;
        };
        let from = e.since.checked_sub(ARRIVAL_SLACK).unwrap_or(e.since);
        if arrived_since(from) {
            self.episode = None;
            return false;
        }
        if now < e.next {
            return false;
        }
        e.tries += 1;
        match WAITS.get(e.tries) {
            Some(wait) => e.next = now + *wait,
            None => self.episode = None,
        }
        true
    }
}

/// The transaction that rewrites `row`'s target in its other spelling, provided the row
/// still has the target we read; `None` when the target has no other spelling (not an
/// active `tcp:`/`ssl:` target with an address).
pub(super) fn plan(row: &Controller) -> Option<(Transaction, String)> {
    let other = vswitch::respell(&row.target, vswitch::DEFAULT_CONTROLLER_PORT)?;
    let mut txn = Transaction::new(vswitch::DATABASE);
    txn.update(
        vswitch::CONTROLLER,
        vec![
            Condition::uuid(row.uuid),
            Condition::eq("target", Datum::scalar(row.target.as_str())),
        ],
        Row::from([("target".into(), Datum::scalar(other.as_str()))]),
    );
    Some((txn, other))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_restart_is_redialled_a_few_times_then_left_to_the_switch() {
        let t0 = Instant::now();
        let mut r = Redial::default();
        r.observe(Some(true), t0);
        assert_eq!(r.wake_at(), None);
        r.observe(Some(false), t0);
        let never = |_| false;
        assert!(!r.due(t0 + 10 * MS, never));
        assert_eq!(r.wake_at(), Some(t0 + 20 * MS));
        let mut at = Vec::new();
        let mut now = t0;
        while let Some(next) = r.wake_at() {
            now = next;
            assert!(r.due(now, never));
            at.push(now - t0);
        }
        assert_eq!(at, [20 * MS, 120 * MS, 320 * MS, 720 * MS]);
        assert!(!r.due(now + 10_000 * MS, never));
        // Still disconnected: no new episode until the switch was seen connected again.
        r.observe(Some(false), now);
        assert_eq!(r.wake_at(), None);
    }

    #[test]
    fn a_switch_that_reached_us_is_left_alone() {
        let t0 = Instant::now() + ARRIVAL_SLACK;
        let mut r = Redial::default();
        r.observe(Some(true), t0);
        r.observe(Some(false), t0);
        // Its connection arrived just before its status write did.
        let mut asked = None;
        assert!(!r.due(t0 + 20 * MS, |since| {
            asked = Some(since);
            true
        }));
        assert_eq!(asked, Some(t0 - ARRIVAL_SLACK));
        assert_eq!(r.wake_at(), None);
    }

    #[test]
    fn only_a_change_from_connected_starts_it() {
        let t0 = Instant::now();
        let mut r = Redial::default();
        // A session that starts while the switch is disconnected.
        r.observe(Some(false), t0);
        assert_eq!(r.wake_at(), None);
        assert!(!r.due(t0 + 1000 * MS, |_| false));
        // The row goes away mid-episode.
        r.observe(Some(true), t0);
        r.observe(Some(false), t0);
        r.observe(None, t0);
        assert_eq!(r.wake_at(), None);
        // Reconnected mid-episode.
        r.observe(Some(true), t0);
        r.observe(Some(false), t0);
        r.observe(Some(true), t0);
        assert_eq!(r.wake_at(), None);
    }

    #[test]
    fn the_plan_alternates_spellings_of_one_endpoint() {
        let row = |target: &str| Controller {
            uuid: uuid::Uuid::nil(),
            target: target.into(),
            is_connected: false,
            role: None,
            inactivity_probe: None,
            max_backoff: None,
            external_ids: Default::default(),
            other_config: Default::default(),
        };
        let (_, other) = plan(&row("tcp:10.0.0.1:6653")).unwrap();
        assert_eq!(other, "tcp:10.0.0.1:06653");
        let (_, back) = plan(&row(&other)).unwrap();
        assert_eq!(back, "tcp:10.0.0.1:6653");
        assert!(plan(&row("unix:/run/weft.sock")).is_none());
    }
}
