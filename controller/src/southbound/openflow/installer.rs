//! The per-connection installer: keeps a switch's flows and groups equal to its node's
//! desired state. A dump on (re)connect (one resync turn at a time, bounded by
//! [`super::OpenFlowSettings::max_concurrent_resyncs`]), then only the difference from
//! [`crate::reconcile::diff`], in one atomic ordered bundle followed by a barrier (plain
//! flow mods for switches without bundles), retried with backoff when refused.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openflow::session::{SessionEvent, describe_error};
use openflow::{
    BundleCtrlType, ControllerRole, ErrorKind, ErrorMsg, ErrorType, Message, MultipartReplyBody,
    OfpMessage, bundle_flags,
};

use crate::cluster::Role;
use crate::cluster::bells::NodeWatch;
use crate::desired::{DesiredNode, GroupSpec};
use crate::observed::InstalledFlows;
use crate::reconcile::{self, InstalledTables};

use super::conn::{Conn, ConnError, pump_for, sleep_until_opt};
use super::refusals::{Refusal, Withheld, change_text, log_rejection};
use super::role;
use super::{Ctx, OpenFlowStats};

/// Outcome of one install attempt.
enum Install {
    /// `repaired`: the switch's dumped tables differed from the desired state.
    Done { repaired: bool },
    /// The switch refused the install (nothing of it took effect: bundles are atomic);
    /// what it named, if anything.
    Rejected(Vec<Refusal>),
}

/// The per-connection reconciliation loop.
pub(super) struct Installer<'a> {
    pub(super) node: &'a str,
    pub(super) ctx: &'a Ctx,
    /// What we believe the switch holds (its flows and groups); `None` = unknown, dump
    /// first. After a successful install this is the very state that was installed,
    /// shared with the node's desired state and the observed state, not a copy.
    installed: Option<InstalledTables>,
    use_bundles: bool,
    next_bundle: u32,
    /// ACLs (by cookie) whose flows are left out of what is installed, fail closed.
    pub(super) withheld: BTreeMap<u64, Withheld>,
    /// Withheld ACLs being tried again in the current install.
    pub(super) retrying: BTreeMap<u64, Withheld>,
    /// The ownership generation this connection serves as owner with.
    generation: Option<u64>,
    /// When to dump and compare again, and how many more times after that: set when a
    /// switch that had been installed before came back with tables that needed repair.
    recheck: Option<(tokio::time::Instant, u8)>,
    /// What this connection has announced to external VXLAN endpoints, by port.
    announced: BTreeMap<uuid::Uuid, crate::desired::Announcement>,
}

/// How many times in a row a returning switch is re-checked while each check still
/// finds something to repair (someone else keeps writing): bounded, then left to the
/// next reconnect.
const RECHECKS: u8 = 3;

impl<'a> Installer<'a> {
    pub(super) fn new(node: &'a str, ctx: &'a Ctx) -> Self {
        Installer {
            node,
            ctx,
            installed: None,
            use_bundles: true,
            next_bundle: 1,
            withheld: BTreeMap::new(),
            retrying: BTreeMap::new(),
            generation: None,
            recheck: None,
            announced: BTreeMap::new(),
        }
    }

    /// Serves the connection until it ends: as the node's owner, keeps the switch equal
    /// to the desired state; otherwise (cluster mode, another instance owns the node)
    /// stands by as slave until this instance becomes the owner.
    pub(super) async fn run(&mut self, conn: &mut Conn) -> ConnError {
        let mut view = self.ctx.ownership.watch_node(Some(self.node));
        // The generation of the last ROLE_REQUEST slave sent, if any.
        let mut standby_at: Option<Option<u64>> = None;
        let timeout = self.ctx.settings.request_timeout;
        loop {
            match self.ctx.ownership.role(self.node) {
                Role::Owner { generation } => {
                    standby_at = None;
                    if let Some(g) = generation {
                        match role::request(conn, ControllerRole::Master, g, timeout).await {
                            Err(e) => return e,
                            Ok(false) => {
                                // Stale (a newer owner claimed the switch): wait for the
                                // ownership records to catch up.
                                if let Err(e) = idle_until_changed(conn, &mut view, true).await {
                                    return e;
                                }
                                continue;
                            }
                            Ok(true) => {
                                tracing::info!(
                                    node = self.node,
                                    generation = g,
                                    "owner of this hypervisor: master role taken"
                                );
                            }
                        }
                    }
                    // A new owner dumps and diffs: a switch already right gets nothing.
                    self.installed = None;
                    if generation.is_some() {
                        // Its ports count as installed once this owner's install says so
                        // (until then its OVSDB session leaves weft-installed alone).
                        self.ctx.channels.forget_installed(self.node);
                    }
                    self.generation = generation;
                    if let Some(e) = self.serve_owned(conn, &mut view).await {
                        return e;
                    }
                    tracing::info!(
                        node = self.node,
                        "no longer the owner of this hypervisor; standing by"
                    );
                }
                Role::Standby { generation } => {
                    if self.ctx.ownership.view().clustered && standby_at != Some(generation) {
                        let g = generation.unwrap_or(0);
                        match role::request(conn, ControllerRole::Slave, g, timeout).await {
                            Err(e) => return e,
                            Ok(taken) => tracing::debug!(
                                node = self.node,
                                generation = g,
                                taken,
                                "slave role requested"
                            ),
                        }
                        standby_at = Some(generation);
                    }
                    if let Err(e) = idle_until_changed(conn, &mut view, false).await {
                        return e;
                    }
                }
            }
        }
    }

    /// Whether this connection may still write as the owner it became (same generation).
    fn still_owner(&self) -> bool {
        matches!(self.ctx.ownership.role(self.node),
            Role::Owner { generation } if generation == self.generation)
    }

    /// The owner's loop; `None` when ownership is lost (or its generation changed),
    /// `Some` when the connection ends.
    async fn serve_owned(&mut self, conn: &mut Conn, view: &mut NodeWatch) -> Option<ConnError> {
        let mut desired_rx = self.ctx.channels.watch_desired(self.node);
        let mut backoff = self.ctx.settings.retry_min;
        // Nothing is compiled for this node yet (weftd just started): the switch keeps
        // what it has until there is a real desired state to compare it with.
        while !self.ctx.channels.desired_published(self.node) {
            tracing::debug!(
                node = self.node,
                "waiting for the node's first desired state"
            );
            tokio::select! {
                r = desired_rx.changed() => if r.is_err() { return Some(ConnError::Shutdown) },
                r = view.changed() => {
                    if r.is_err() { return Some(ConnError::Shutdown) }
                    if !self.still_owner() { return None }
                }
                ev = conn.next_event() => if let Err(e) = ev { return Some(e) },
            }
        }
        loop {
            // A resync (the switch's tables unknown: dump first) waits for its turn; the
            // desired state is read after the wait, so the newest one is installed.
            let turn = if self.installed.is_none() {
                match self.resync_turn(conn).await {
                    Ok(t) => Some(t),
                    Err(e) => return Some(e),
                }
            } else {
                None
            };
            // Checked at every install, not only when the view changes: a lease that
            // lapsed while this task slept (the process stopped) stops it here.
            if !self.still_owner() {
                return None;
            }
            let desired = desired_rx.borrow_and_update().clone();
            let effective = self.effective(&desired);
            // A switch we had installed before, read afresh: it reconnected or vswitchd
            // restarted (and its saved tables may be being restored right now).
            let returning =
                self.installed.is_none() && self.ctx.channels.installed_reported(self.node);
            let result = self.install(conn, &effective).await;
            drop(turn);
            match result {
                Err(e) => return Some(e),
                Ok(Install::Done { repaired }) => {
                    backoff = self.ctx.settings.retry_min;
                    self.installed_ok(&effective);
                    self.plan_recheck(returning, repaired);
                }
                Ok(Install::Rejected(refusals)) => {
                    // Nothing of the bundle took effect; re-dump before the next try.
                    self.installed = None;
                    if self.refused(&desired, &refusals) {
                        // Fail closed: install the rest at once, without the refused ACL.
                        continue;
                    }
                    // Not an ACL's flow: retry everything after a pause; a new desired
                    // state is picked up by the retry.
                    tracing::info!(
                        node = self.node,
                        ?backoff,
                        "retrying the install after a pause"
                    );
                    if let Err(e) = pump_for(conn, backoff).await {
                        return Some(e);
                    }
                    backoff = (backoff * 2).min(self.ctx.settings.retry_max);
                    continue;
                }
            }
            // Idle until the desired state changes or a withheld ACL is due for another
            // try, keeping the session alive.
            loop {
                tokio::select! {
                    r = desired_rx.changed() => {
                        if r.is_err() { return Some(ConnError::Shutdown) }
                        break;
                    }
                    r = view.changed() => {
                        if r.is_err() { return Some(ConnError::Shutdown) }
                        if !self.still_owner() { return None }
                    }
                    _ = sleep_until_opt(self.next_retry()) => {
                        self.release_due();
                        break;
                    }
                    _ = sleep_until_opt(self.recheck.map(|(at, _)| at)) => {
                        tracing::info!(node = self.node, "re-checking the tables of a returning switch");
                        self.installed = None;
                        break;
                    }
                    ev = conn.next_event() => if let Err(e) = ev { return Some(e) },
                }
            }
        }
    }

    /// After an install that read the switch afresh: a returning switch whose tables
    /// needed repair is checked again a little later (see
    /// [`super::OpenFlowSettings::recheck_after`]), as long as checks keep finding
    /// something, at most [`RECHECKS`] times.
    fn plan_recheck(&mut self, returning: bool, repaired: bool) {
        if !returning {
            // An install on tables we know: a pending re-check stays as it is.
            return;
        }
        let left = match (repaired, self.recheck) {
            (false, _) => None,
            (true, None) => Some(RECHECKS),
            (true, Some((_, left))) => left.checked_sub(1).filter(|l| *l > 0),
        };
        let at = tokio::time::Instant::now() + self.ctx.settings.recheck_after;
        self.recheck = left.map(|l| (at, l));
    }

    /// Waits for a resync turn, keeping the session alive (echoes both ways) meanwhile.
    async fn resync_turn(
        &self,
        conn: &mut Conn,
    ) -> Result<tokio::sync::SemaphorePermit<'a>, ConnError> {
        let resyncs = &self.ctx.resyncs;
        if let Ok(p) = resyncs.try_acquire() {
            return Ok(p);
        }
        OpenFlowStats::bump(&self.ctx.stats.resync_waits, 1);
        let started = tokio::time::Instant::now();
        let acquire = resyncs.acquire();
        tokio::pin!(acquire);
        loop {
            tokio::select! {
                p = &mut acquire => {
                    let waited = started.elapsed();
                    if waited > Duration::from_secs(1) {
                        tracing::info!(node = self.node, ?waited, "resync waited for its turn \
                            (many switches resynchronising at once)");
                    }
                    return p.map_err(|_| ConnError::Shutdown);
                }
                ev = conn.next_event() => { ev?; }
            }
        }
    }

    async fn install(
        &mut self,
        conn: &mut Conn,
        desired: &Arc<DesiredNode>,
    ) -> Result<Install, ConnError> {
        let have = match self.installed.take() {
            Some(h) => h,
            None => {
                let (parts, groups) = self.dump(conn).await?;
                if groups == desired.groups && reconcile::dump_holds_exactly(&parts, &desired.flows)
                {
                    // What the switch holds is what an acknowledged install of `desired`
                    // leaves, and is kept the same way: shared, not decoded.
                    OpenFlowStats::bump(&self.ctx.stats.dumps_matched_by_digest, 1);
                    InstalledTables::Acknowledged(desired.clone())
                } else {
                    let flows = reconcile::flows_from_parts(parts).map_err(ConnError::BadDump)?;
                    InstalledTables::Dumped { flows, groups }
                }
            }
        };
        let changes = have.diff_to(desired);
        let repaired = !changes.is_empty();
        if changes.is_empty() {
            OpenFlowStats::bump(&self.ctx.stats.empty_diffs, 1);
            tracing::info!(
                node = self.node,
                flows = have.flow_count(),
                groups = have.groups().len(),
                "switch already holds the desired state; nothing sent"
            );
        } else {
            OpenFlowStats::bump(&self.ctx.stats.changes_sent, changes.len() as u64);
            let changed = changes.len();
            // The bundle takes the messages themselves; the rare paths that need them
            // again (refusals, no bundle support) recompute the same diff.
            let again = || have.diff_to(desired);
            let result = if self.use_bundles {
                match self.install_bundle(conn, changes, again).await? {
                    Some(r) => r,
                    None => {
                        self.use_bundles = false;
                        self.install_plain(conn, &again()).await?
                    }
                }
            } else {
                self.install_plain(conn, &changes).await?
            };
            if let Err(refusals) = result {
                OpenFlowStats::bump(&self.ctx.stats.failed_installs, 1);
                return Ok(Install::Rejected(refusals));
            }
            OpenFlowStats::bump(&self.ctx.stats.installs, 1);
            tracing::info!(
                node = self.node,
                changes = changed,
                flows = desired.flows.len(),
                groups = desired.groups.len(),
                "installed the desired state"
            );
        }
        drop(have);
        // The diff is empty or was applied whole: the switch's Weft flows and its groups
        // are now exactly `desired`'s (what applying the diff to the dump in
        // `openflow::table` gives). Keeping `desired` itself, not a copy, means one
        // table per node in memory, shared with
        // the node's channel and with `node_flows`, which prints it only when asked.
        self.ctx
            .channels
            .report_installed(self.node, desired.bound_ports.clone());
        let garps = super::announce::announcements(&self.announced, &desired.announce);
        if !garps.is_empty() {
            tracing::info!(
                node = self.node,
                frames = garps.len(),
                "announcing ports to external VXLAN endpoints (gratuitous ARP)"
            );
            for m in garps {
                conn.session.send(m);
            }
        }
        self.announced = desired.announce.clone();
        self.ctx
            .observed
            .set_node_flows(self.node, InstalledFlows::table(desired.clone()));
        self.installed = Some(InstalledTables::Acknowledged(desired.clone()));
        Ok(Install::Done { repaired })
    }

    /// Dumps Weft's flows (by cookie) and all groups.
    async fn dump(
        &mut self,
        conn: &mut Conn,
    ) -> Result<(Vec<MultipartReplyBody>, BTreeMap<u32, Arc<GroupSpec>>), ConnError> {
        OpenFlowStats::bump(&self.ctx.stats.dumps, 1);
        let fx = conn.session.send(
            OfpMessage::flow_stats_request(
                0,
                crate::compiler::COOKIE_WEFT,
                crate::compiler::COOKIE_MASK,
            )
            .body,
        );
        let gx = conn.session.send(OfpMessage::group_desc_request(0).body);
        let (mut flows, mut groups) = (None, None);
        let wait = async {
            while flows.is_none() || groups.is_none() {
                match conn.next_event().await? {
                    SessionEvent::Multipart { xid, parts } if xid == fx => {
                        flows = Some(parts);
                    }
                    SessionEvent::Multipart { xid, parts } if xid == gx => {
                        groups = Some(reconcile::groups_from_parts(&parts));
                    }
                    SessionEvent::Error { xid, error } if xid == gx => {
                        // A switch without group support has no groups.
                        tracing::warn!(node = self.node, error = %describe_error(&error), "group dump failed; assuming no groups");
                        groups = Some(BTreeMap::new());
                    }
                    SessionEvent::Error { xid, error } if xid == fx => {
                        tracing::error!(node = self.node, error = %describe_error(&error), "flow dump failed");
                        return Err(ConnError::Timeout("flow dump refused"));
                    }
                    _ => {}
                }
            }
            Ok(())
        };
        tokio::time::timeout(self.ctx.settings.request_timeout, wait)
            .await
            .map_err(|_| ConnError::Timeout("flow/group dump"))??;
        let (flows, groups) = (flows.unwrap_or_default(), groups.unwrap_or_default());
        tracing::info!(
            node = self.node,
            flow_reply_parts = flows.len(),
            groups = groups.len(),
            "dumped installed flows and groups"
        );
        Ok((flows, groups))
    }

    /// Installs `changes` in one atomic, ordered bundle followed by a barrier. `Ok(None)`:
    /// the switch does not do bundles (fall back); `Ok(Some(r))`: whether it took them,
    /// or what it refused. OVS answers a failed commit with an ERROR for the message that
    /// failed (the inner flow mod, whose xid is its BUNDLE_ADD's) and one for the commit.
    ///
    /// `changes` are moved into the bundle, not copied (a cold start sends ~1,700 flow
    /// mods per node); `again` recomputes them, only to name what the switch refused.
    async fn install_bundle(
        &mut self,
        conn: &mut Conn,
        changes: Vec<Message>,
        again: impl Fn() -> Vec<Message>,
    ) -> Result<Option<Result<(), Vec<Refusal>>>, ConnError> {
        let flags = bundle_flags::ATOMIC | bundle_flags::ORDERED;
        let id = self.next_bundle;
        self.next_bundle = self.next_bundle.wrapping_add(1).max(1);
        let s = &mut conn.session;
        let open = s.alloc_xid();
        s.send_with_xid(open, OfpMessage::bundle_open(open, id, flags).body);
        // xid of each BUNDLE_ADD -> the position of its change in `changes`.
        let mut sent = BTreeMap::new();
        for (i, c) in changes.into_iter().enumerate() {
            let xid = s.alloc_xid();
            s.send_with_xid(xid, OfpMessage::bundle_add(xid, id, flags, c).body);
            sent.insert(xid, i);
        }
        let commit = s.alloc_xid();
        s.send_with_xid(commit, OfpMessage::bundle_commit(commit, id, flags).body);
        let barrier = s.barrier();
        let mut committed = false;
        let mut failed = false;
        // Refused changes, by position, with the switch's error.
        let mut refused: Vec<(usize, ErrorMsg)> = Vec::new();
        let node = self.node;
        let wait = async {
            loop {
                match conn.next_event().await? {
                    SessionEvent::Barrier { xid } if xid == barrier => {
                        return Ok::<_, ConnError>(None);
                    }
                    SessionEvent::BundleReply { xid, ctrl }
                        if xid == commit && ctrl.ctrl_type == BundleCtrlType::CommitReply =>
                    {
                        committed = true;
                    }
                    SessionEvent::Error { xid, error } if xid == open => {
                        if is_unsupported(&error) {
                            tracing::warn!(%node, error = %describe_error(&error),
                                "switch does not support bundles; falling back to plain flow mods");
                            // Wait for the barrier so the rest of the bundle's errors are
                            // drained before the plain install.
                            return Ok(Some(()));
                        }
                        log_rejection(node, "bundle open", &error);
                        failed = true;
                    }
                    SessionEvent::Error { xid, error } => {
                        if let Some(i) = sent.get(&xid) {
                            refused.push((*i, error));
                        } else if xid == commit {
                            log_rejection(node, "bundle commit", &error);
                        } else {
                            tracing::warn!(%node, xid, error = %describe_error(&error), "unrelated switch error during install");
                            continue;
                        }
                        failed = true;
                    }
                    _ => {}
                }
            }
        };
        let unsupported = tokio::time::timeout(self.ctx.settings.request_timeout, wait)
            .await
            .map_err(|_| ConnError::Timeout("bundle commit and barrier"))??;
        if unsupported.is_some() {
            // Drain to our barrier so stray errors do not confuse the plain install.
            let drain = async {
                loop {
                    if let SessionEvent::Barrier { xid } = conn.next_event().await?
                        && xid == barrier
                    {
                        return Ok::<(), ConnError>(());
                    }
                }
            };
            tokio::time::timeout(self.ctx.settings.request_timeout, drain)
                .await
                .map_err(|_| ConnError::Timeout("barrier"))??;
            return Ok(None);
        }
        if committed && !failed {
            return Ok(Some(Ok(())));
        }
        let changes = if refused.is_empty() {
            Vec::new()
        } else {
            again()
        };
        let refusals = refused
            .into_iter()
            .map(|(i, error)| {
                let c = changes.get(i);
                match c {
                    Some(c) => log_rejection(node, &change_text(c), &error),
                    None => log_rejection(node, "bundle message", &error),
                }
                Refusal::new(c, error)
            })
            .collect();
        Ok(Some(Err(refusals)))
    }

    /// Installs `changes` as plain messages followed by a barrier (switches without
    /// bundles; not atomic, but still only the difference).
    async fn install_plain(
        &mut self,
        conn: &mut Conn,
        changes: &[Message],
    ) -> Result<Result<(), Vec<Refusal>>, ConnError> {
        let s = &mut conn.session;
        let mut sent = BTreeMap::new();
        for c in changes {
            let xid = s.send(c.clone());
            sent.insert(xid, c);
        }
        let barrier = s.barrier();
        let node = self.node;
        let mut refusals = Vec::new();
        let wait = async {
            loop {
                match conn.next_event().await? {
                    SessionEvent::Barrier { xid } if xid == barrier => {
                        return Ok::<_, ConnError>(());
                    }
                    SessionEvent::Error { xid, error } => match sent.get(&xid) {
                        Some(c) => {
                            log_rejection(node, &change_text(c), &error);
                            refusals.push(Refusal::new(Some(c), error));
                        }
                        None => {
                            tracing::warn!(%node, xid, error = %describe_error(&error), "unrelated switch error during install")
                        }
                    },
                    _ => {}
                }
            }
        };
        tokio::time::timeout(self.ctx.settings.request_timeout, wait)
            .await
            .map_err(|_| ConnError::Timeout("flow mods and barrier"))??;
        Ok(if refusals.is_empty() {
            Ok(())
        } else {
            Err(refusals)
        })
    }
}

/// Whether an error to BUNDLE_CONTROL open means "no bundle support".
fn is_unsupported(e: &ErrorMsg) -> bool {
    matches!(
        e.kind,
        ErrorKind::Standard {
            err_type: ErrorType::BadRequest,
            code: 1 | 3 | 4 // BAD_TYPE, BAD_EXPERIMENTER, BAD_EXP_TYPE
        }
    )
}

/// Keeps the session alive until the cluster view changes (or, if `retry`, at most a
/// second: a refused master request is tried again).
async fn idle_until_changed(
    conn: &mut Conn,
    view: &mut NodeWatch,
    retry: bool,
) -> Result<(), ConnError> {
    let until = retry.then(|| tokio::time::Instant::now() + Duration::from_secs(1));
    loop {
        tokio::select! {
            r = view.changed() => return r.map_err(|_| ConnError::Shutdown),
            _ = sleep_until_opt(until) => return Ok(()),
            ev = conn.next_event() => { ev?; }
        }
    }
}
