//! A software OpenFlow 1.3 switch table, the one model of OpenFlow table semantics that
//! Weft's compiler tests, its `trace`, the reconciler's tests and the simulator's switch all
//! use (Faucet's `fakeoftable`): flows keyed by [`FlowKey`] (table, priority, canonical
//! match) holding a [`FlowContent`], and groups by id.
//!
//! [`FlowTable::apply_flow_mod`] follows OpenFlow 1.3: ADD replaces an identical (table,
//! priority, match) entry (with `CHECK_OVERLAP` refusing a same-priority overlap; actions
//! the match does not allow refused as OVS refuses them, e.g. `dec_ttl` without `ip`),
//! MODIFY/DELETE loose and strict with cookie masks, `out_port`/`out_group` filters on
//! delete, and modify replacing the instructions but never the cookie.
//! [`FlowTable::apply_group_mod`] adds, modifies and deletes groups (deleting a group
//! deletes the flows that use it). A refused request is a [`TableError`], which names the
//! OpenFlow error a switch would send ([`TableError::error_kind`]). Stats replies are
//! [`FlowTable::flow_stats`] and [`FlowTable::group_descs`].
//!
//! [`FlowTable::apply_all`] applies a bundle's messages all or none (module `journal`).
//!
//! On top, [`FlowTable::process`] walks a [`Packet`] through the pipeline (module `walk`).

mod journal;
mod loose;
mod packet;
mod walk;

#[cfg(test)]
mod rewrite_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::ops::Bound;

pub use packet::{Packet, VLAN_CFI, ct_state};
pub use walk::{Emitted, Outcome, Step};

use crate::action::Action;
use crate::flow::{FlowContent, FlowKey};
use crate::instruction::Instruction;
use crate::message::{
    Bucket, ErrorKind, ErrorType, FlowMod, FlowModCommand, FlowStats, FlowStatsOf,
    FlowStatsRequest, FlowStatsView, GroupDesc, GroupMod, GroupModCommand, GroupType, Message,
    flow_flags,
};
use crate::oxm::{Field, Match};
use crate::types::{TABLE_ALL, group, port};
use crate::validate::{PrereqError, validate_actions};
use journal::Journal;
use loose::LooseMatch;

/// The highest table id a flow may live in (OVS has 254 tables, 0..=253).
pub const MAX_TABLE: u8 = 253;

/// OpenFlow error codes of the refusals the model makes (OpenFlow 1.3 §A.4.4).
pub mod code {
    pub const FM_BAD_TABLE_ID: u16 = 2; // OFPFMFC_BAD_TABLE_ID
    pub const FM_OVERLAP: u16 = 3; // OFPFMFC_OVERLAP
    pub const FM_BAD_COMMAND: u16 = 6; // OFPFMFC_BAD_COMMAND
    pub const BI_BAD_TABLE_ID: u16 = 2; // OFPBIC_BAD_TABLE_ID
    pub const BA_BAD_TYPE: u16 = 0; // OFPBAC_BAD_TYPE
    pub const BA_BAD_OUT_GROUP: u16 = 9; // OFPBAC_BAD_OUT_GROUP
    pub const BA_MATCH_INCONSISTENT: u16 = 10; // OFPBAC_MATCH_INCONSISTENT
    pub const GM_GROUP_EXISTS: u16 = 0; // OFPGMFC_GROUP_EXISTS
    pub const GM_INVALID_GROUP: u16 = 1; // OFPGMFC_INVALID_GROUP
    pub const GM_UNKNOWN_GROUP: u16 = 8; // OFPGMFC_UNKNOWN_GROUP
    pub const GM_BAD_COMMAND: u16 = 11; // OFPGMFC_BAD_COMMAND
}

/// Why the table refused a flow mod or group mod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("match field {0} is not understood")]
    BadMatch(String),
    #[error("table {0} does not exist")]
    BadTableId(u8),
    #[error("goto_table:{to} from table {from} does not go forward to a table that exists")]
    BadGoto { from: u8, to: u8 },
    #[error("instruction not understood")]
    BadInstruction,
    #[error("action not understood")]
    BadAction,
    #[error("action names group {0}, which does not exist")]
    BadOutGroup(u32),
    /// An action the match does not allow ([`crate::validate::validate_actions`]).
    #[error("{0}")]
    MatchInconsistent(PrereqError),
    #[error("flow overlaps another of priority {0} in table {1}")]
    Overlap(u16, u8),
    #[error("flow mod command {0:?} is not understood")]
    BadCommand(FlowModCommand),
    #[error("group id {0} is reserved")]
    InvalidGroup(u32),
    #[error("group {0} already exists")]
    GroupExists(u32),
    #[error("group {0} does not exist")]
    UnknownGroup(u32),
    #[error("group mod command {0:?} is not understood")]
    BadGroupCommand(GroupModCommand),
    #[error("only flow mods and group mods change a table")]
    NotATableMod,
}

impl TableError {
    /// The OpenFlow error a switch sends for this refusal (`None` for
    /// [`TableError::NotATableMod`], whose error depends on the context: in a bundle it is
    /// the ONF `BF_MSG_UNSUP`).
    pub fn error_kind(&self) -> Option<ErrorKind> {
        use TableError::*;
        let (err_type, code) = match self {
            BadMatch(_) => (ErrorType::BadMatch, 0),
            BadTableId(_) => (ErrorType::FlowModFailed, code::FM_BAD_TABLE_ID),
            BadGoto { .. } => (ErrorType::BadInstruction, code::BI_BAD_TABLE_ID),
            BadInstruction => (ErrorType::BadInstruction, 0),
            BadAction => (ErrorType::BadAction, code::BA_BAD_TYPE),
            BadOutGroup(_) => (ErrorType::BadAction, code::BA_BAD_OUT_GROUP),
            MatchInconsistent(_) => (ErrorType::BadAction, code::BA_MATCH_INCONSISTENT),
            Overlap(..) => (ErrorType::FlowModFailed, code::FM_OVERLAP),
            BadCommand(_) => (ErrorType::FlowModFailed, code::FM_BAD_COMMAND),
            InvalidGroup(_) => (ErrorType::GroupModFailed, code::GM_INVALID_GROUP),
            GroupExists(_) => (ErrorType::GroupModFailed, code::GM_GROUP_EXISTS),
            UnknownGroup(_) => (ErrorType::GroupModFailed, code::GM_UNKNOWN_GROUP),
            BadGroupCommand(_) => (ErrorType::GroupModFailed, code::GM_BAD_COMMAND),
            NotATableMod => return None,
        };
        Some(ErrorKind::Standard { err_type, code })
    }
}

/// One installed flow besides its identity: what it does, and the flow-mod fields a
/// flow-stats reply reports back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowEntry {
    pub content: FlowContent,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: u16,
}

impl From<FlowContent> for FlowEntry {
    fn from(content: FlowContent) -> Self {
        FlowEntry {
            content,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
        }
    }
}

/// One installed group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Group {
    pub group_type: GroupType,
    pub buckets: Vec<Bucket>,
}

/// A switch's flow tables and group table.
#[derive(Clone, Debug, Default)]
pub struct FlowTable {
    /// Every flow of every table, in (table, priority, match) order.
    flows: BTreeMap<FlowKey, FlowEntry>,
    groups: BTreeMap<u32, Group>,
}

/// The actions of apply-actions and write-actions instructions.
fn actions_of(insts: &[Instruction]) -> impl Iterator<Item = &Action> {
    insts.iter().flat_map(|i| match i {
        Instruction::ApplyActions(a) | Instruction::WriteActions(a) => a.as_slice(),
        _ => &[],
    })
}

/// A dump's entry for flow `k`: counters and durations zero, its match and
/// instructions as given (owned or borrowed).
fn stats_of<M, I>(k: &FlowKey, e: &FlowEntry, r#match: M, instructions: I) -> FlowStatsOf<M, I> {
    FlowStatsOf {
        table_id: k.table_id,
        duration_sec: 0,
        duration_nsec: 0,
        priority: k.priority,
        idle_timeout: e.idle_timeout,
        hard_timeout: e.hard_timeout,
        flags: e.flags,
        cookie: e.content.cookie,
        packet_count: 0,
        byte_count: 0,
        r#match,
        instructions,
    }
}

/// Whether a flow passes a request's cookie, out_port and out_group filters.
fn passes_filters(
    c: &FlowContent,
    cookie: u64,
    cookie_mask: u64,
    out_port: u32,
    out_group: u32,
) -> bool {
    if c.cookie & cookie_mask != cookie & cookie_mask {
        return false;
    }
    if out_port != port::ANY
        && !actions_of(&c.instructions)
            .any(|a| matches!(a, Action::Output { port, .. } if *port == out_port))
    {
        return false;
    }
    if out_group != group::ANY
        && !actions_of(&c.instructions).any(|a| matches!(a, Action::Group(g) if *g == out_group))
    {
        return false;
    }
    true
}

impl FlowTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of flows in all tables.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Every flow, in (table, priority, match) order.
    pub fn flows(&self) -> &BTreeMap<FlowKey, FlowEntry> {
        &self.flows
    }

    /// Every flow as (identity, content), the form desired and dumped flow tables take.
    pub fn flow_contents(&self) -> BTreeMap<FlowKey, FlowContent> {
        self.flows
            .iter()
            .map(|(k, e)| (k.clone(), e.content.clone()))
            .collect()
    }

    pub fn groups(&self) -> &BTreeMap<u32, Group> {
        &self.groups
    }

    /// Installs a flow as a dump or a compiled table states it, without the checks of
    /// [`FlowTable::apply_flow_mod`] (the key's match must be canonical).
    pub fn insert_flow(&mut self, key: FlowKey, content: FlowContent) {
        self.flows.insert(key, content.into());
    }

    /// Installs a group as a dump or a compiled table states it (replacing one of that id).
    pub fn insert_group(&mut self, id: u32, group: Group) {
        self.groups.insert(id, group);
    }

    /// Applies a flow mod or group mod ([`TableError::NotATableMod`] for other messages).
    pub fn apply(&mut self, m: &Message) -> Result<(), TableError> {
        self.apply_journaled(m, None)
    }

    fn apply_journaled(
        &mut self,
        m: &Message,
        journal: Option<&mut Journal>,
    ) -> Result<(), TableError> {
        match m {
            Message::FlowMod(f) => self.flow_mod(f, journal),
            Message::GroupMod(g) => self.group_mod(g, journal),
            _ => Err(TableError::NotATableMod),
        }
    }

    fn check_instructions(&self, fm: &FlowMod) -> Result<(), TableError> {
        for i in &fm.instructions {
            match i {
                Instruction::GotoTable(t) if *t <= fm.table_id || *t > MAX_TABLE => {
                    return Err(TableError::BadGoto {
                        from: fm.table_id,
                        to: *t,
                    });
                }
                Instruction::Raw { .. } => return Err(TableError::BadInstruction),
                _ => {}
            }
        }
        for a in actions_of(&fm.instructions) {
            match a {
                Action::Group(g) if !self.groups.contains_key(g) => {
                    return Err(TableError::BadOutGroup(*g));
                }
                Action::Raw { .. } => return Err(TableError::BadAction),
                _ => {}
            }
        }
        validate_actions(&fm.r#match, &fm.instructions).map_err(TableError::MatchInconsistent)
    }

    /// Applies one flow mod with OpenFlow 1.3 semantics (module docs).
    pub fn apply_flow_mod(&mut self, fm: &FlowMod) -> Result<(), TableError> {
        self.flow_mod(fm, None)
    }

    /// [`FlowTable::apply_flow_mod`], noting in `journal` what each change replaced.
    fn flow_mod(
        &mut self,
        fm: &FlowMod,
        mut journal: Option<&mut Journal>,
    ) -> Result<(), TableError> {
        if let Some(f) = fm
            .r#match
            .fields
            .iter()
            .find(|f| matches!(f, Field::Raw(_)))
        {
            return Err(TableError::BadMatch(format!("{f:?}")));
        }
        let key = fm.key();
        match fm.command {
            FlowModCommand::Add => {
                if fm.table_id > MAX_TABLE {
                    return Err(TableError::BadTableId(fm.table_id));
                }
                self.check_instructions(fm)?;
                if fm.flags & flow_flags::CHECK_OVERLAP != 0
                    && self.same_priority(&key).any(|(k, _)| {
                        k.r#match != key.r#match && loose::overlap(&k.r#match, &key.r#match)
                    })
                {
                    return Err(TableError::Overlap(key.priority, key.table_id));
                }
                let entry = FlowEntry {
                    content: fm.content(),
                    idle_timeout: fm.idle_timeout,
                    hard_timeout: fm.hard_timeout,
                    flags: fm.flags,
                };
                // The key is copied only for a journal (a bundle's commit).
                let noted = journal.is_some().then(|| key.clone());
                let old = self.flows.insert(key, entry);
                if let Some(key) = noted {
                    journal::note_flow(&mut journal, key, old);
                }
            }
            FlowModCommand::Modify | FlowModCommand::ModifyStrict => {
                if fm.table_id > MAX_TABLE {
                    return Err(TableError::BadTableId(fm.table_id));
                }
                self.check_instructions(fm)?;
                let strict = fm.command == FlowModCommand::ModifyStrict;
                for k in self.select(fm, &key, strict, false) {
                    if let Some(e) = self.flows.get_mut(&k) {
                        let old = journal.is_some().then(|| e.clone());
                        // OpenFlow 1.3 modify replaces the instructions; the cookie stays.
                        e.content.instructions = fm.instructions.clone();
                        journal::note_flow(&mut journal, k, old);
                    }
                }
            }
            FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
                if fm.table_id > MAX_TABLE && fm.table_id != TABLE_ALL {
                    return Err(TableError::BadTableId(fm.table_id));
                }
                let strict = fm.command == FlowModCommand::DeleteStrict;
                for k in self.select(fm, &key, strict, true) {
                    let old = self.flows.remove(&k);
                    journal::note_flow(&mut journal, k, old);
                }
            }
            c @ FlowModCommand::Unknown(_) => return Err(TableError::BadCommand(c)),
        }
        Ok(())
    }

    /// The flows of `key`'s table and priority.
    fn same_priority<'a>(
        &'a self,
        key: &FlowKey,
    ) -> impl Iterator<Item = (&'a FlowKey, &'a FlowEntry)> {
        let from = FlowKey {
            table_id: key.table_id,
            priority: key.priority,
            r#match: Match::default(),
        };
        let (table, priority) = (key.table_id, key.priority);
        self.flows
            .range((Bound::Included(from), Bound::Unbounded))
            .take_while(move |(k, _)| k.table_id == table && k.priority == priority)
    }

    /// Flows a modify/delete request selects (`key` is the request's own key).
    fn select(&self, fm: &FlowMod, key: &FlowKey, strict: bool, delete: bool) -> Vec<FlowKey> {
        let (out_port, out_group) = if delete {
            (fm.out_port, fm.out_group)
        } else {
            (port::ANY, group::ANY)
        };
        if strict {
            return match self.flows.get(key) {
                Some(e)
                    if passes_filters(
                        &e.content,
                        fm.cookie,
                        fm.cookie_mask,
                        out_port,
                        out_group,
                    ) =>
                {
                    vec![key.clone()]
                }
                _ => Vec::new(),
            };
        }
        let all_tables = fm.table_id == TABLE_ALL;
        let req = LooseMatch::new(&key.r#match);
        self.flows
            .iter()
            .filter(|(k, _)| all_tables || k.table_id == fm.table_id)
            .filter(|(k, _)| req.covers(&k.r#match))
            .filter(|(_, e)| {
                passes_filters(&e.content, fm.cookie, fm.cookie_mask, out_port, out_group)
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Applies one group mod.
    pub fn apply_group_mod(&mut self, gm: &GroupMod) -> Result<(), TableError> {
        self.group_mod(gm, None)
    }

    /// [`FlowTable::apply_group_mod`], noting in `journal` what each change replaced.
    fn group_mod(
        &mut self,
        gm: &GroupMod,
        mut journal: Option<&mut Journal>,
    ) -> Result<(), TableError> {
        let spec = || Group {
            group_type: gm.group_type,
            buckets: gm.buckets.clone(),
        };
        match gm.command {
            GroupModCommand::Add => {
                if gm.group_id > group::MAX {
                    return Err(TableError::InvalidGroup(gm.group_id));
                }
                if self.groups.contains_key(&gm.group_id) {
                    return Err(TableError::GroupExists(gm.group_id));
                }
                self.groups.insert(gm.group_id, spec());
                journal::note_group(&mut journal, gm.group_id, None);
            }
            GroupModCommand::Modify => match self.groups.get_mut(&gm.group_id) {
                Some(g) => {
                    let old = std::mem::replace(g, spec());
                    journal::note_group(&mut journal, gm.group_id, Some(old));
                }
                None => return Err(TableError::UnknownGroup(gm.group_id)),
            },
            GroupModCommand::Delete => {
                let gone: Vec<u32> = if gm.group_id == group::ALL {
                    self.groups.keys().copied().collect()
                } else {
                    vec![gm.group_id]
                };
                let mut any = false;
                for g in &gone {
                    let old = self.groups.remove(g);
                    any |= old.is_some();
                    if old.is_some() {
                        journal::note_group(&mut journal, *g, old);
                    }
                }
                if any {
                    // OpenFlow 1.3 §6.5: flows that forward to a deleted group go too.
                    let users: Vec<FlowKey> = self
                        .flows
                        .iter()
                        .filter(|(_, e)| {
                            actions_of(&e.content.instructions)
                                .any(|a| matches!(a, Action::Group(g) if gone.contains(g)))
                        })
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in users {
                        let old = self.flows.remove(&k);
                        journal::note_flow(&mut journal, k, old);
                    }
                }
            }
            c @ GroupModCommand::Unknown(_) => return Err(TableError::BadGroupCommand(c)),
        }
        Ok(())
    }

    /// The flow-stats reply to `req` (before splitting into parts): every flow its table,
    /// match, cookie and out_port/out_group select, by table, then priority (highest
    /// first), then match. Counters and durations are zero.
    pub fn flow_stats(&self, req: &FlowStatsRequest) -> Vec<FlowStats> {
        self.selected(req)
            .into_iter()
            .map(|(k, e)| stats_of(k, e, k.r#match.clone(), e.content.instructions.clone()))
            .collect()
    }

    /// [`FlowTable::flow_stats`] with each flow's match and instructions borrowed from
    /// the table, to encode without copying them.
    pub fn flow_stats_views(&self, req: &FlowStatsRequest) -> Vec<FlowStatsView<'_>> {
        self.selected(req)
            .into_iter()
            .map(|(k, e)| stats_of(k, e, &k.r#match, e.content.instructions.as_slice()))
            .collect()
    }

    /// The flows `req` selects, in a dump's order.
    fn selected(&self, req: &FlowStatsRequest) -> Vec<(&FlowKey, &FlowEntry)> {
        let m = LooseMatch::new(&req.r#match.canonical());
        let mut out: Vec<(&FlowKey, &FlowEntry)> = self
            .flows
            .iter()
            .filter(|(k, _)| req.table_id == TABLE_ALL || k.table_id == req.table_id)
            .filter(|(k, _)| m.covers(&k.r#match))
            .filter(|(_, e)| {
                passes_filters(
                    &e.content,
                    req.cookie,
                    req.cookie_mask,
                    req.out_port,
                    req.out_group,
                )
            })
            .collect();
        // By table, then priority from the highest, then match. The map's order is
        // (table, priority, match), so a stable sort on the first two keeps each
        // priority's flows in match order without comparing matches.
        out.sort_by_key(|(k, _)| (k.table_id, std::cmp::Reverse(k.priority)));
        out
    }

    /// The group-description reply (before splitting into parts), by group id.
    pub fn group_descs(&self) -> Vec<GroupDesc> {
        self.groups
            .iter()
            .map(|(id, g)| GroupDesc {
                group_type: g.group_type,
                group_id: *id,
                buckets: g.buckets.clone(),
            })
            .collect()
    }
}
