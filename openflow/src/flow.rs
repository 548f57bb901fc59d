//! Constructors the controller uses (flow mods, group mods, bundles, barrier, flow-stats
//! requests) and a comparable, hashable identity for flows, so desired and installed flow
//! sets can be diffed: [`FlowKey`] (table, priority, canonical match) says *which* flow,
//! [`FlowContent`] (cookie, instructions) says *what it does*. They are also the identity
//! and content of a flow in the software table ([`crate::table::FlowTable`]).

use crate::action::Action;
use crate::instruction::Instruction;
use crate::message::*;
use crate::oxm::Match;
use crate::types::{NO_BUFFER, TABLE_ALL, group, port};

/// Which flow: OpenFlow's identity of a flow entry. The match is in canonical (sorted)
/// form, so it compares equal whatever order the switch reports fields in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub table_id: u8,
    pub priority: u16,
    pub r#match: Match,
}

/// What a flow does, for deciding whether an installed flow needs modifying.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowContent {
    pub cookie: u64,
    pub instructions: Vec<Instruction>,
}

impl FlowMod {
    fn base(
        command: FlowModCommand,
        table_id: u8,
        priority: u16,
        m: Match,
        instructions: Vec<Instruction>,
    ) -> Self {
        FlowMod {
            cookie: 0,
            cookie_mask: 0,
            table_id,
            command,
            idle_timeout: 0,
            hard_timeout: 0,
            priority,
            buffer_id: NO_BUFFER,
            out_port: port::ANY,
            out_group: group::ANY,
            flags: 0,
            r#match: m,
            instructions,
        }
    }

    /// OFPFC_ADD.
    pub fn add(table_id: u8, priority: u16, m: Match, instructions: Vec<Instruction>) -> Self {
        Self::base(FlowModCommand::Add, table_id, priority, m, instructions)
    }

    /// OFPFC_MODIFY_STRICT: replace the instructions of exactly this (table, priority, match).
    pub fn modify_strict(
        table_id: u8,
        priority: u16,
        m: Match,
        instructions: Vec<Instruction>,
    ) -> Self {
        Self::base(
            FlowModCommand::ModifyStrict,
            table_id,
            priority,
            m,
            instructions,
        )
    }

    /// OFPFC_DELETE_STRICT: delete exactly this (table, priority, match).
    pub fn delete_strict(table_id: u8, priority: u16, m: Match) -> Self {
        Self::base(
            FlowModCommand::DeleteStrict,
            table_id,
            priority,
            m,
            Vec::new(),
        )
    }

    /// OFPFC_DELETE of every flow in every table whose cookie matches `cookie/mask`.
    pub fn delete_by_cookie(cookie: u64, cookie_mask: u64) -> Self {
        let mut f = Self::base(
            FlowModCommand::Delete,
            TABLE_ALL,
            0,
            Match::default(),
            Vec::new(),
        );
        f.cookie = cookie;
        f.cookie_mask = cookie_mask;
        f
    }

    /// Sets the cookie (builder style).
    pub fn with_cookie(mut self, cookie: u64) -> Self {
        self.cookie = cookie;
        self
    }

    pub fn key(&self) -> FlowKey {
        FlowKey {
            table_id: self.table_id,
            priority: self.priority,
            r#match: self.r#match.canonical(),
        }
    }

    pub fn content(&self) -> FlowContent {
        FlowContent {
            cookie: self.cookie,
            instructions: self.instructions.clone(),
        }
    }

    /// Wraps in a message.
    pub fn into_message(self, xid: u32) -> OfpMessage {
        OfpMessage::new(xid, Message::FlowMod(self))
    }
}

impl FlowStats {
    /// [`FlowStats::key`] and [`FlowStats::content`] of an owned entry, moving its match
    /// and instructions instead of copying them (keying a whole flow dump).
    pub fn into_key_content(self) -> (FlowKey, FlowContent) {
        (
            FlowKey {
                table_id: self.table_id,
                priority: self.priority,
                r#match: self.r#match.into_canonical(),
            },
            FlowContent {
                cookie: self.cookie,
                instructions: self.instructions,
            },
        )
    }

    pub fn key(&self) -> FlowKey {
        FlowKey {
            table_id: self.table_id,
            priority: self.priority,
            r#match: self.r#match.canonical(),
        }
    }

    pub fn content(&self) -> FlowContent {
        FlowContent {
            cookie: self.cookie,
            instructions: self.instructions.clone(),
        }
    }
}

impl Instruction {
    /// `apply_actions(actions)`.
    pub fn apply(actions: Vec<Action>) -> Self {
        Instruction::ApplyActions(actions)
    }
}

impl Bucket {
    /// A bucket for an ALL/INDIRECT group (no weight, no watch).
    pub fn new(actions: Vec<Action>) -> Self {
        Bucket {
            weight: 0,
            watch_port: port::ANY,
            watch_group: group::ANY,
            actions,
        }
    }
}

impl GroupMod {
    pub fn add(group_id: u32, group_type: GroupType, buckets: Vec<Bucket>) -> Self {
        GroupMod {
            command: GroupModCommand::Add,
            group_type,
            group_id,
            buckets,
        }
    }
    pub fn modify(group_id: u32, group_type: GroupType, buckets: Vec<Bucket>) -> Self {
        GroupMod {
            command: GroupModCommand::Modify,
            group_type,
            group_id,
            buckets,
        }
    }
    pub fn delete(group_id: u32) -> Self {
        GroupMod {
            command: GroupModCommand::Delete,
            group_type: GroupType::All,
            group_id,
            buckets: Vec::new(),
        }
    }
    pub fn into_message(self, xid: u32) -> OfpMessage {
        OfpMessage::new(xid, Message::GroupMod(self))
    }
}

impl OfpMessage {
    pub fn hello(xid: u32) -> Self {
        OfpMessage::new(xid, Message::Hello(Hello::of13()))
    }
    pub fn barrier(xid: u32) -> Self {
        OfpMessage::new(xid, Message::BarrierRequest)
    }
    pub fn features_request(xid: u32) -> Self {
        OfpMessage::new(xid, Message::FeaturesRequest)
    }
    pub fn echo_request(xid: u32, data: Vec<u8>) -> Self {
        OfpMessage::new(xid, Message::EchoRequest(data))
    }
    fn bundle_ctrl(xid: u32, bundle_id: u32, ctrl_type: BundleCtrlType, flags: u16) -> Self {
        OfpMessage::new(
            xid,
            Message::BundleControl(BundleControl {
                bundle_id,
                ctrl_type,
                flags,
                properties: Vec::new(),
            }),
        )
    }
    /// Opens bundle `bundle_id` (use [`bundle_flags::ATOMIC`] for all-or-nothing).
    pub fn bundle_open(xid: u32, bundle_id: u32, flags: u16) -> Self {
        Self::bundle_ctrl(xid, bundle_id, BundleCtrlType::OpenRequest, flags)
    }
    /// Adds `message` to bundle `bundle_id`. The inner message's xid is the outer's, as
    /// OVS requires.
    pub fn bundle_add(xid: u32, bundle_id: u32, flags: u16, message: Message) -> Self {
        let inner = OfpMessage::new(xid, message);
        OfpMessage::new(
            xid,
            Message::BundleAdd(BundleAdd {
                bundle_id,
                flags,
                message: Box::new(inner),
                trailer: Vec::new(),
            }),
        )
    }
    pub fn bundle_commit(xid: u32, bundle_id: u32, flags: u16) -> Self {
        Self::bundle_ctrl(xid, bundle_id, BundleCtrlType::CommitRequest, flags)
    }
    pub fn bundle_discard(xid: u32, bundle_id: u32, flags: u16) -> Self {
        Self::bundle_ctrl(xid, bundle_id, BundleCtrlType::DiscardRequest, flags)
    }
    /// Flow-stats request for every flow whose cookie matches `cookie/cookie_mask`.
    pub fn flow_stats_request(xid: u32, cookie: u64, cookie_mask: u64) -> Self {
        OfpMessage::new(
            xid,
            Message::MultipartRequest(MultipartRequest {
                flags: 0,
                body: MultipartRequestBody::Flow(FlowStatsRequest::every_flow(cookie, cookie_mask)),
            }),
        )
    }
    /// Group-description request (all groups).
    pub fn group_desc_request(xid: u32) -> Self {
        OfpMessage::new(
            xid,
            Message::MultipartRequest(MultipartRequest {
                flags: 0,
                body: MultipartRequestBody::GroupDesc,
            }),
        )
    }
    /// Port-description request.
    pub fn port_desc_request(xid: u32) -> Self {
        OfpMessage::new(
            xid,
            Message::MultipartRequest(MultipartRequest {
                flags: 0,
                body: MultipartRequestBody::PortDesc,
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oxm::Field;

    #[test]
    fn key_ignores_field_order_and_content_differs_by_cookie() {
        let m1 = Match::new(vec![Field::Metadata(7, None), Field::Reg(6, 1, None)]);
        let m2 = Match::new(vec![Field::Reg(6, 1, None), Field::Metadata(7, None)]);
        let a = FlowMod::add(10, 100, m1, vec![Instruction::GotoTable(20)]).with_cookie(1);
        let b = FlowMod::add(10, 100, m2, vec![Instruction::GotoTable(20)]).with_cookie(2);
        assert_eq!(a.key(), b.key());
        assert_ne!(a.content(), b.content());
    }
}
