//! One write's changes as the operations of one etcd transaction, within what a default
//! etcd server takes: at most [`MAX_TXN_OPS`] operations and [`MAX_REQUEST_BYTES`] bytes.
//!
//! A deleted object whose whole stored subtree is deleted too (a cascade) becomes one
//! range delete of that subtree, so `switch_delete` with a thousand ports and their ACLs
//! is one operation, not two thousand. Each key appears once (etcd refuses a transaction
//! that touches a key twice): the last change of a key wins.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Change, LogicalModel};

use super::keys::{KeyLayout, encode, subtree_end};

/// etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;
/// etcd's default `--max-request-bytes` is 1.5 MiB; keep room for the gRPC framing.
pub const MAX_REQUEST_BYTES: usize = 1_500_000;
/// What one operation costs in a request besides its key and value (tags, lengths).
const OP_OVERHEAD: usize = 16;

/// The operations of one commit, besides the revision compare and put.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TxnOps {
    pub puts: Vec<(String, Vec<u8>)>,
    /// `(key, end)`: `end` set for a range delete of `[key, end)`.
    pub deletes: Vec<(String, Option<String>)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpsError {
    #[error("{0} refers to an object this model does not hold")]
    Unresolved(String),
    #[error("{ops} operations, more than the {MAX_TXN_OPS} one etcd transaction takes")]
    TooManyOps { ops: usize },
    #[error("{bytes} bytes, more than the {MAX_REQUEST_BYTES} one etcd request takes")]
    TooManyBytes { bytes: usize },
}

impl TxnOps {
    /// Operations including the revision put.
    pub fn count(&self) -> usize {
        self.puts.len() + self.deletes.len() + 1
    }

    pub fn bytes(&self) -> usize {
        let puts: usize = self
            .puts
            .iter()
            .map(|(k, v)| k.len() + v.len() + OP_OVERHEAD)
            .sum();
        let deletes: usize = self
            .deletes
            .iter()
            .map(|(k, e)| k.len() + e.as_ref().map_or(0, String::len) + OP_OVERHEAD)
            .sum();
        puts + deletes + 256
    }
}

/// Turns `changes`, planned on `base`, into the operations of one transaction.
pub fn plan_ops(
    layout: &KeyLayout,
    base: &LogicalModel,
    changes: &[Change],
) -> Result<TxnOps, OpsError> {
    // Final state of each key touched, and for each deletion what its subtree held.
    let mut last: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    let mut subtrees: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut scratch = base.clone();
    for change in changes {
        let key = layout
            .key_of(&scratch, change)
            .ok_or_else(|| OpsError::Unresolved(format!("{} {}", change.kind(), change.id())))?;
        if change.is_delete() {
            subtrees.insert(key.clone(), layout.descendants(&scratch, change));
            last.insert(key, None);
        } else {
            last.insert(key, encode(change));
        }
        scratch.apply(change);
    }
    let deleted: BTreeSet<&String> = last
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k)
        .collect();
    let mut ops = TxnOps::default();
    let mut ranges: Vec<(String, String)> = Vec::new();
    for (key, value) in &last {
        match value {
            Some(v) => ops.puts.push((key.clone(), v.clone())),
            None => {
                if ranges.iter().any(|(k, e)| key > k && key < e) {
                    continue;
                }
                let end = subtree_end(key);
                let whole_subtree = subtrees
                    .get(key)
                    .is_some_and(|below| below.iter().all(|d| deleted.contains(d)))
                    && !last.iter().any(|(k, v)| v.is_some() && k > key && *k < end);
                if whole_subtree {
                    ranges.push((key.clone(), end.clone()));
                    ops.deletes.push((key.clone(), Some(end)));
                } else {
                    ops.deletes.push((key.clone(), None));
                }
            }
        }
    }
    if ops.count() > MAX_TXN_OPS {
        return Err(OpsError::TooManyOps { ops: ops.count() });
    }
    if ops.bytes() > MAX_REQUEST_BYTES {
        return Err(OpsError::TooManyBytes { bytes: ops.bytes() });
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::northbound::{AclSpec, Command, plan};

    fn apply(m: &mut LogicalModel, cmd: Command) -> Vec<Change> {
        let changes = plan(m, &cmd).unwrap();
        for c in &changes {
            m.apply(c);
        }
        m.set_revision(m.revision() + 1);
        changes
    }

    #[test]
    fn cascade_of_hundreds_of_objects_is_one_range_delete() {
        let layout = KeyLayout::new("/weft");
        let mut m = LogicalModel::default();
        apply(
            &mut m,
            Command::SwitchCreate {
                name: "big".into(),
                vni: None,
                description: String::new(),
                flood_vteps: Vec::new(),
                provider: None,
            },
        );
        for i in 0..150u16 {
            apply(
                &mut m,
                Command::PortCreate {
                    switch: "big".into(),
                    name: format!("p{i}"),
                    mac: crate::model::MacAddr([2, 0, 0, 0, (i >> 8) as u8, i as u8]),
                    ips: vec![],
                    port_security: true,
                },
            );
            apply(
                &mut m,
                Command::AclCreate(AclSpec {
                    port: format!("p{i}"),
                    direction: crate::model::Direction::Ingress,
                    priority: 10,
                    action: crate::model::AclAction::Allow,
                    protocol: None,
                    ethertype: crate::model::Ethertype::Ipv4,
                    remote_cidr: None,
                    port_min: None,
                    port_max: None,
                }),
            );
        }
        let changes = plan(
            &m,
            &Command::SwitchDelete {
                switch: "big".into(),
                cascade: true,
            },
        )
        .unwrap();
        assert_eq!(changes.len(), 301);
        let ops = plan_ops(&layout, &m, &changes).unwrap();
        let sw = m.find_switch("big").unwrap().id;
        assert_eq!(ops.puts, vec![]);
        assert_eq!(
            ops.deletes,
            vec![(layout.switch(sw), Some(subtree_end(&layout.switch(sw))))]
        );
        // A port delete alone takes its ACLs along, and leaves its siblings.
        let p0 = m.find_port("p0").unwrap().clone();
        let changes = plan(&m, &Command::PortDelete { port: "p0".into() }).unwrap();
        let ops = plan_ops(&layout, &m, &changes).unwrap();
        let key = layout.port(sw, p0.id);
        assert_eq!(ops.deletes, vec![(key.clone(), Some(subtree_end(&key)))]);
    }

    #[test]
    fn a_delete_that_leaves_something_below_is_a_single_key_delete() {
        let layout = KeyLayout::new("/weft");
        let mut m = LogicalModel::default();
        apply(
            &mut m,
            Command::SwitchCreate {
                name: "s".into(),
                vni: None,
                description: String::new(),
                flood_vteps: Vec::new(),
                provider: None,
            },
        );
        apply(
            &mut m,
            Command::PortCreate {
                switch: "s".into(),
                name: "p".into(),
                mac: crate::model::MacAddr([2, 0, 0, 0, 0, 1]),
                ips: vec![],
                port_security: true,
            },
        );
        let sw = m.find_switch("s").unwrap().id;
        // Not a plan the writer makes (it cascades), but the store must not widen it.
        let ops = plan_ops(&layout, &m, &[Change::DeleteSwitch { id: sw }]).unwrap();
        assert_eq!(ops.deletes, vec![(layout.switch(sw), None)]);
    }
}
