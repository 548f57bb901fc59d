//! A bundle's commit, all or none: [`FlowTable::apply_all`] applies the messages in
//! place and, on the first refusal, puts back what the earlier ones changed. Applying them
//! to a copy of the table instead costs a deep copy of every flow per commit, which is
//! most of the work when a bundle changes one flow of thousands (the simulator's switches
//! commit one such bundle per port on each of a switch's members).

use super::{FlowEntry, FlowTable, Group, TableError};
use crate::flow::FlowKey;
use crate::message::Message;

/// What each change of a transaction replaced, in order: `None` where nothing was.
#[derive(Debug, Default)]
pub(super) struct Journal(Vec<Undo>);

#[derive(Debug)]
enum Undo {
    Flow(FlowKey, Option<FlowEntry>),
    Group(u32, Option<Group>),
}

/// Notes that the flow at `key` was `old` before a change, if a journal is kept.
pub(super) fn note_flow(journal: &mut Option<&mut Journal>, key: FlowKey, old: Option<FlowEntry>) {
    if let Some(j) = journal {
        j.0.push(Undo::Flow(key, old));
    }
}

/// Notes that group `id` was `old` before a change, if a journal is kept.
pub(super) fn note_group(journal: &mut Option<&mut Journal>, id: u32, old: Option<Group>) {
    if let Some(j) = journal {
        j.0.push(Undo::Group(id, old));
    }
}

impl FlowTable {
    /// Applies `msgs` in order, all or none, as a switch commits an ONF bundle: on the
    /// first refusal the table is put back as it was and the refusal comes back with the
    /// index of the message refused.
    pub fn apply_all<'a>(
        &mut self,
        msgs: impl IntoIterator<Item = &'a Message>,
    ) -> Result<(), (usize, TableError)> {
        let mut journal = Journal::default();
        for (at, m) in msgs.into_iter().enumerate() {
            if let Err(e) = self.apply_journaled(m, Some(&mut journal)) {
                self.undo(journal);
                return Err((at, e));
            }
        }
        Ok(())
    }

    /// Puts back, newest first, what the journal's changes replaced.
    fn undo(&mut self, journal: Journal) {
        for u in journal.0.into_iter().rev() {
            match u {
                Undo::Flow(key, Some(old)) => {
                    self.flows.insert(key, old);
                }
                Undo::Flow(key, None) => {
                    self.flows.remove(&key);
                }
                Undo::Group(id, Some(old)) => {
                    self.groups.insert(id, old);
                }
                Undo::Group(id, None) => {
                    self.groups.remove(&id);
                }
            }
        }
    }
}
