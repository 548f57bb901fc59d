//! Write groups: the writes of one API request (a JSON-RPC batch) handed to the writer as
//! one unit, so that it plans them in request order and commits them in one durable
//! transaction, compiles once and installs once, instead of once per call.
//!
//! jsonrpsee runs the calls of a batch one after the other, each waiting for its own
//! commit: 100 `port_delete`s were 100 fsyncs and up to 100 compile and install rounds.
//! [`ModelWriter::submit_together`] runs the calls concurrently instead. Each call still
//! takes its own path (parameters, validation, reply), and [`ModelWriter::submit`], when
//! it runs inside a group, leaves its write with the group instead of sending it. Once every
//! call has either left its write or finished without one (refused parameters), the group
//! goes to the writer as one message, in the calls' order. Every call still gets its own
//! answer, and only after the commit that holds its write.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::writer::{ModelWriter, WriteRequest, WriterMsg};

tokio::task_local! {
    /// Set while a call of a group is polled: which group, and which call it is.
    static MEMBER: Member;
}

#[derive(Clone)]
struct Member {
    group: Arc<Group>,
    index: usize,
}

/// The writes of one group, gathered until every call has been heard from.
struct Group {
    writer: mpsc::Sender<WriterMsg>,
    state: Mutex<GroupState>,
}

struct GroupState {
    /// Per call: `None` until it left a write or finished; then whether it left one.
    arrived: Vec<Option<Option<WriteRequest>>>,
    /// Calls not yet heard from.
    waiting: usize,
}

/// What a call's arrival did to its group.
enum Arrival {
    /// Held until the others arrive.
    Held,
    /// This was the last call: every gathered write, in call order.
    Complete(Vec<WriteRequest>),
    /// This call had already arrived: its (second) write goes to the writer on its own.
    Again(Option<WriteRequest>),
}

impl Group {
    /// Records what call `index` brings (`None`: it finished without writing).
    fn arrive(&self, index: usize, write: Option<WriteRequest>) -> Arrival {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.arrived.get_mut(index) {
            Some(slot @ None) => *slot = Some(write),
            _ => return Arrival::Again(write),
        }
        state.waiting -= 1;
        if state.waiting > 0 {
            return Arrival::Held;
        }
        Arrival::Complete(
            state
                .arrived
                .iter_mut()
                // Leaves each slot arrived (`Some(None)`), the write taken.
                .filter_map(|slot| slot.as_mut().and_then(Option::take))
                .collect(),
        )
    }

    async fn send(&self, writes: Vec<WriteRequest>) {
        if writes.is_empty() {
            return;
        }
        // If the writer is gone, the dropped requests answer their callers -32010.
        let _ = self.writer.send(WriterMsg::Group(writes)).await;
    }
}

impl ModelWriter {
    /// Runs `calls` concurrently as one write group (module doc) and returns their
    /// outputs in order. A call must reach [`ModelWriter::submit`] or finish without
    /// waiting for another call of the group: writes are held until every call did one
    /// or the other.
    pub async fn submit_together<F: Future>(&self, calls: Vec<F>) -> Vec<F::Output> {
        let group = Arc::new(Group {
            writer: self.writer.clone(),
            state: Mutex::new(GroupState {
                arrived: (0..calls.len()).map(|_| None).collect(),
                waiting: calls.len(),
            }),
        });
        let members = calls.into_iter().enumerate().map(|(index, call)| {
            let group = group.clone();
            async move {
                let member = Member {
                    group: group.clone(),
                    index,
                };
                let out = MEMBER.scope(member, call).await;
                if let Arrival::Complete(writes) = group.arrive(index, None) {
                    group.send(writes).await;
                }
                out
            }
        });
        futures::future::join_all(members).await
    }

    /// Hands `req` to the writer: alone, or with its group when the caller is a call of a
    /// [`ModelWriter::submit_together`] group of this writer. False when the writer is
    /// gone (the request, dropped, then answers its caller -32010).
    pub(super) async fn enqueue(&self, req: WriteRequest) -> bool {
        let member = MEMBER
            .try_with(Member::clone)
            .ok()
            .filter(|m| m.group.writer.same_channel(&self.writer));
        let alone = match member {
            None => Some(req),
            Some(m) => match m.group.arrive(m.index, Some(req)) {
                Arrival::Held => None,
                Arrival::Complete(writes) => {
                    m.group.send(writes).await;
                    None
                }
                Arrival::Again(req) => req,
            },
        };
        match alone {
            Some(req) => self.writer.send(WriterMsg::Write(req)).await.is_ok(),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::error::{ApiError, CONFLICT, INVALID_PARAMS};
    use crate::model::{Change, MacAddr};
    use crate::northbound::Command;
    use crate::store::{Store, StoreError, StoredModel};

    /// A store that keeps nothing and counts its commits.
    struct CountingStore(Arc<AtomicUsize>);

    impl Store for CountingStore {
        fn load(&mut self) -> Result<StoredModel, StoreError> {
            Ok(StoredModel::default())
        }
        fn commit(&mut self, _: u64, _: &[Change]) -> Result<(), StoreError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn location(&self) -> String {
            "counting".into()
        }
    }

    fn port(name: &str, last: u8) -> Command {
        Command::PortCreate {
            switch: "web".into(),
            name: name.into(),
            mac: MacAddr([2, 0, 0, 0, 0, last]),
            ips: Vec::new(),
            port_security: true,
        }
    }

    async fn writer_with_switch() -> (ModelWriter, super::super::WriterHandle, Arc<AtomicUsize>) {
        let commits = Arc::new(AtomicUsize::new(0));
        let (c, handle) = ModelWriter::start(Box::new(CountingStore(commits.clone()))).unwrap();
        c.submit(Command::SwitchCreate {
            name: "web".into(),
            vni: None,
            description: String::new(),
            flood_vteps: Vec::new(),
            provider: None,
        })
        .await
        .unwrap();
        assert_eq!(commits.load(Ordering::SeqCst), 1);
        (c, handle, commits)
    }

    #[tokio::test]
    async fn a_group_is_planned_in_order_and_committed_once() {
        let (c, handle, commits) = writer_with_switch().await;
        let calls: Vec<_> = (0..100u8)
            .map(|i| {
                let c = c.clone();
                // Call 7 takes the name of call 3: refused, alone.
                let name = if i == 7 {
                    "p3".to_string()
                } else {
                    format!("p{i}")
                };
                async move { c.submit(port(&name, i)).await }
            })
            .collect();
        let results = c.submit_together(calls).await;
        assert_eq!(
            commits.load(Ordering::SeqCst),
            2,
            "one commit for the group"
        );
        let mut revisions = Vec::new();
        for (i, r) in results.iter().enumerate() {
            match r {
                Err(e) if i == 7 => assert_eq!(e.code(), CONFLICT, "{e}"),
                Ok(applied) => revisions.push(applied.revision),
                Err(e) => panic!("call {i}: {e}"),
            }
        }
        // Planned in call order: each success one revision after the one before.
        assert_eq!(revisions, (2..=100).collect::<Vec<u64>>());
        assert_eq!(c.snapshot().revision(), 100);
        assert!(c.snapshot().find_port("p99").is_some());
        handle.shutdown().await;
    }

    #[tokio::test]
    async fn a_call_that_writes_nothing_does_not_hold_its_group() {
        let (c, handle, commits) = writer_with_switch().await;
        let write = |name: &'static str, last: u8| {
            let c = c.clone();
            async move { c.submit(port(name, last)).await.map(|a| a.revision) }
        };
        let refuse = || async { Err::<u64, _>(ApiError::invalid("mac", "not a MAC")) };
        let calls: Vec<futures::future::BoxFuture<'_, Result<u64, ApiError>>> = vec![
            Box::pin(write("a", 1)),
            Box::pin(refuse()),
            Box::pin(write("b", 2)),
            Box::pin(refuse()),
        ];
        let results = c.submit_together(calls).await;
        assert_eq!(results[0].as_ref().ok(), Some(&2));
        assert_eq!(results[1].as_ref().unwrap_err().code(), INVALID_PARAMS);
        assert_eq!(results[2].as_ref().ok(), Some(&3));
        assert_eq!(commits.load(Ordering::SeqCst), 2);
        // A call that writes twice: its second write goes alone, after the group's.
        let twice = {
            let c = c.clone();
            async move {
                c.submit(port("c", 3)).await?;
                c.submit(port("d", 4)).await.map(|a| a.revision)
            }
        };
        let results = c.submit_together(vec![twice]).await;
        assert_eq!(results[0].as_ref().ok(), Some(&5));
        assert_eq!(commits.load(Ordering::SeqCst), 4);
        handle.shutdown().await;
    }
}
