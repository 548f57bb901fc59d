//! ONF bundles (extension 230) on one connection: messages added to an open bundle, then
//! committed all or none through [`super::Tables::apply_all`], or discarded.

use openflow::{BundleAdd, BundleControl, BundleCtrlType, Message, OfpMessage};

use super::{Switch, Tables, code, onf_err};

/// Open bundles per connection, and messages per bundle.
const MAX_BUNDLES: usize = 64;
const MAX_BUNDLE_MSGS: usize = 1_000_000;

/// An ONF bundle being filled.
#[derive(Debug, Default)]
pub(super) struct Bundle {
    closed: bool,
    msgs: Vec<(u32, Message)>,
}

impl Switch {
    /// Adds a flow mod or group mod to a bundle, opening it if needed; refuses what OVS
    /// refuses (another xid than the inner message's, other messages, too many bundles or
    /// messages, a closed bundle).
    pub(super) fn bundle_add(&mut self, xid: u32, a: BundleAdd, frame: &[u8]) {
        let refusal = if a.message.xid != xid {
            Some(onf_err(code::BF_MSG_BAD_XID))
        } else if !matches!(a.message.body, Message::FlowMod(_) | Message::GroupMod(_)) {
            Some(onf_err(code::BF_MSG_UNSUP))
        } else if !self.bundles.contains_key(&a.bundle_id) && self.bundles.len() >= MAX_BUNDLES {
            Some(onf_err(code::BF_OUT_OF_BUNDLES))
        } else {
            // Adding to a bundle that is not open opens it (as OVS does).
            let b = self.bundles.entry(a.bundle_id).or_default();
            if b.closed {
                Some(onf_err(code::BF_BUNDLE_CLOSED))
            } else if b.msgs.len() >= MAX_BUNDLE_MSGS {
                Some(onf_err(code::BF_MSG_TOO_MANY))
            } else {
                b.msgs.push((xid, a.message.body));
                None
            }
        };
        if let Some(r) = refusal {
            self.error(xid, r, frame);
        }
    }

    /// Opens, closes, commits or discards a bundle, with the reply OVS sends.
    pub(super) fn bundle_control(
        &mut self,
        xid: u32,
        c: BundleControl,
        frame: &[u8],
        tables: &mut Tables,
    ) {
        let reply = |t: BundleCtrlType| {
            OfpMessage::new(
                xid,
                Message::BundleControl(BundleControl {
                    bundle_id: c.bundle_id,
                    ctrl_type: t,
                    flags: c.flags,
                    properties: Vec::new(),
                }),
            )
        };
        match c.ctrl_type {
            BundleCtrlType::OpenRequest => {
                if self.bundles.contains_key(&c.bundle_id) {
                    self.error(xid, onf_err(code::BF_BUNDLE_EXIST), frame);
                } else if self.bundles.len() >= MAX_BUNDLES {
                    self.error(xid, onf_err(code::BF_OUT_OF_BUNDLES), frame);
                } else {
                    self.bundles.insert(c.bundle_id, Bundle::default());
                    self.out.push_back(reply(BundleCtrlType::OpenReply));
                }
            }
            BundleCtrlType::CloseRequest => match self.bundles.get_mut(&c.bundle_id) {
                None => self.error(xid, onf_err(code::BF_BAD_ID), frame),
                Some(b) if b.closed => self.error(xid, onf_err(code::BF_BUNDLE_CLOSED), frame),
                Some(b) => {
                    b.closed = true;
                    self.out.push_back(reply(BundleCtrlType::CloseReply));
                }
            },
            BundleCtrlType::CommitRequest => {
                let Some(b) = self.bundles.remove(&c.bundle_id) else {
                    self.error(xid, onf_err(code::BF_BAD_ID), frame);
                    return;
                };
                // Atomic: the table puts back what the earlier messages changed if one is
                // refused (copying the table for each commit cost more than the commit).
                let applied = tables.apply_all(b.msgs.iter().map(|(_, m)| m));
                let tried = match &applied {
                    Ok(()) => b.msgs.len(),
                    Err((at, _)) => at + 1,
                };
                for (_, m) in &b.msgs[..tried] {
                    match m {
                        Message::FlowMod(_) => self.stats.flow_mods += 1,
                        _ => self.stats.group_mods += 1,
                    }
                }
                if let Err((at, r)) = applied {
                    let (mxid, m) = &b.msgs[at];
                    let bytes = OfpMessage::new(*mxid, m.clone())
                        .to_bytes()
                        .unwrap_or_default();
                    self.error(*mxid, r, &bytes);
                    self.error(xid, onf_err(code::BF_MSG_FAILED), frame);
                    self.stats.bundles_failed += 1;
                    return;
                }
                self.stats.bundles_committed += 1;
                self.out.push_back(reply(BundleCtrlType::CommitReply));
            }
            BundleCtrlType::DiscardRequest => {
                if self.bundles.remove(&c.bundle_id).is_some() {
                    self.out.push_back(reply(BundleCtrlType::DiscardReply));
                } else {
                    self.error(xid, onf_err(code::BF_BAD_ID), frame);
                }
            }
            _ => self.error(xid, onf_err(code::BF_BAD_TYPE), frame),
        }
    }
}
