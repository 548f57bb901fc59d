//! What a switch refused in an install, and what Weft does about it: every refusal is
//! logged and announced naming the ACL or port its flow came from; a refused ACL's flows
//! are withheld (fail closed: the node runs without that ACL, not without its pipeline)
//! and retried with backoff.

use std::sync::Arc;
use std::time::Duration;

use openflow::print::print_message;
use openflow::session::{describe_error, error_name};
use openflow::{ErrorKind, ErrorMsg, ErrorType, Message, OfpMessage};

use crate::compiler::cookie_for;
use crate::desired::DesiredNode;
use crate::observed::FlowRejection;

use super::installer::Installer;

/// One ERROR the switch answered an install with, and the message it refers to (by xid,
/// else decoded from the start of the request the ERROR carries).
pub(super) struct Refusal {
    message: Option<Message>,
    error: ErrorMsg,
}

impl Refusal {
    pub(super) fn new(message: Option<&Message>, error: ErrorMsg) -> Self {
        let message = message.cloned().or_else(|| {
            error.offending().map(|m| match m.body {
                Message::BundleAdd(b) => b.message.body,
                other => other,
            })
        });
        Refusal { message, error }
    }

    /// The cookie of the refused flow mod, if the refusal names one.
    fn cookie(&self) -> Option<u64> {
        match &self.message {
            Some(Message::FlowMod(fm)) => Some(fm.cookie),
            _ => None,
        }
    }

    fn text(&self) -> String {
        match &self.message {
            Some(m) => change_text(m),
            None => "bundle commit".into(),
        }
    }
}

/// An ACL (by cookie) the node runs without because the switch refused its flows.
#[derive(Debug, Clone)]
pub(super) struct Withheld {
    /// Every ACL withheld with it (itself first), for status and events.
    acls: Vec<uuid::Uuid>,
    /// How long to wait before the next attempt, doubled after each refusal.
    backoff: Duration,
    retry_at: tokio::time::Instant,
}

impl Installer<'_> {
    /// What to install: the desired state without the withheld ACLs' flows. Withheld
    /// ACLs the desired state no longer has (deleted, port moved away) are forgotten.
    pub(super) fn effective(&mut self, desired: &Arc<DesiredNode>) -> Arc<DesiredNode> {
        let gone: Vec<u64> = self
            .withheld
            .keys()
            .chain(self.retrying.keys())
            .filter(|c| !desired.acls.contains_key(c))
            .copied()
            .collect();
        for c in gone {
            let w = self
                .withheld
                .remove(&c)
                .or_else(|| self.retrying.remove(&c));
            for acl in w.map(|w| w.acls).unwrap_or_default() {
                self.ctx.observed.acl_restored(self.node, acl);
            }
        }
        if self.withheld.is_empty() {
            return desired.clone();
        }
        Arc::new(desired.without_acls(&self.withheld.keys().copied().collect()))
    }

    /// `installed` went through: its ACLs are in force on this node. Clears their
    /// rejections, those of retried ACLs and any a previous connection to this switch left.
    pub(super) fn installed_ok(&mut self, installed: &DesiredNode) {
        for (_, w) in std::mem::take(&mut self.retrying) {
            tracing::info!(node = self.node, acls = ?w.acls, "refused ACL flows accepted on retry; in force again");
        }
        for a in installed.acls.values() {
            self.ctx.observed.acl_restored(self.node, a.acl);
        }
    }

    /// Moves withheld ACLs whose retry is due into the next install.
    pub(super) fn release_due(&mut self) {
        let now = tokio::time::Instant::now();
        let due: Vec<u64> = self
            .withheld
            .iter()
            .filter(|(_, w)| w.retry_at <= now)
            .map(|(c, _)| *c)
            .collect();
        for c in due {
            if let Some(w) = self.withheld.remove(&c) {
                tracing::info!(node = self.node, acls = ?w.acls, "retrying refused ACL flows");
                self.retrying.insert(c, w);
            }
        }
    }

    pub(super) fn next_retry(&self) -> Option<tokio::time::Instant> {
        self.withheld.values().map(|w| w.retry_at).min()
    }

    /// Handles a refused install: every refusal is logged and announced, naming the ACL
    /// or port its flow came from. A refused ACL is withheld (with what
    /// [`crate::desired::AclFlows::withhold`] says goes with it) and retried with
    /// backoff; returns whether any was, i.e. whether installing the rest right away can
    /// succeed.
    pub(super) fn refused(&mut self, desired: &DesiredNode, refusals: &[Refusal]) -> bool {
        let mut withheld_any = false;
        // A failed retry puts its ACLs back, with a longer wait.
        let mut retried = std::mem::take(&mut self.retrying);
        let empty = [Refusal {
            message: None,
            error: ErrorMsg {
                kind: ErrorKind::Standard {
                    err_type: ErrorType::BadRequest,
                    code: 0,
                },
                data: Vec::new(),
            },
        }];
        let refusals = if refusals.is_empty() {
            &empty[..]
        } else {
            refusals
        };
        for r in refusals {
            let flow = r.text();
            let error = error_name(&r.error);
            let cookie = r.cookie();
            let owner = cookie.and_then(|c| desired.acls.get(&c).map(|a| (c, a)));
            if let Some((c, _)) = owner
                && self.withheld.contains_key(&c)
            {
                continue; // another refusal of the same ACL in this install
            }
            if let Some((c, a)) = owner {
                let backoff = retried
                    .remove(&c)
                    .map(|w| (w.backoff * 2).min(self.ctx.settings.retry_max))
                    .unwrap_or(self.ctx.settings.retry_min);
                let mut acls = vec![a.acl];
                acls.extend(
                    a.withhold
                        .iter()
                        .filter(|w| **w != c)
                        .filter_map(|w| desired.acls.get(w).map(|x| x.acl)),
                );
                tracing::error!(
                    node = self.node, acl = %a.acl, port = %a.port, direction = ?a.direction,
                    %flow, %error, withheld = ?acls, retry_in = ?backoff,
                    "switch refused an ACL's flows; installing the rest without them (fail closed)"
                );
                self.ctx.observed.flows_rejected(FlowRejection {
                    node: self.node.to_string(),
                    acl: Some(a.acl),
                    port: Some(a.port),
                    flow,
                    error,
                    withheld: acls.clone(),
                });
                self.withheld.insert(
                    c,
                    Withheld {
                        acls,
                        backoff,
                        retry_at: tokio::time::Instant::now() + backoff,
                    },
                );
                withheld_any = true;
            } else {
                let port = cookie.and_then(|c| {
                    desired
                        .bound_ports
                        .iter()
                        .find(|p| cookie_for(p) == c)
                        .copied()
                });
                tracing::error!(
                    node = self.node, port = ?port, cookie = ?cookie.map(|c| format!("{c:#x}")),
                    %flow, %error,
                    "switch refused part of the desired state; not reported installed, will re-dump and retry"
                );
                self.ctx.observed.flows_rejected(FlowRejection {
                    node: self.node.to_string(),
                    acl: None,
                    port,
                    flow,
                    error,
                    withheld: Vec::new(),
                });
            }
        }
        // Retried ACLs the refusal did not name stay withheld, with a longer wait: the
        // install failed, so they were not accepted either.
        for (c, mut w) in retried {
            w.backoff = (w.backoff * 2).min(self.ctx.settings.retry_max);
            w.retry_at = tokio::time::Instant::now() + w.backoff;
            self.withheld.insert(c, w);
            withheld_any = true;
        }
        withheld_any
    }
}

pub(super) fn change_text(m: &Message) -> String {
    print_message(&OfpMessage::new(0, m.clone()))
}

/// Logs one ERROR answering an install; [`Installer::refused`] then says what Weft does
/// about it, naming the ACL or port.
pub(super) fn log_rejection(node: &str, what: &str, error: &ErrorMsg) {
    tracing::warn!(%node, flow = %what, error = %describe_error(error),
        "switch refused a message of the install");
}
