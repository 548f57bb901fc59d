//! The hardware VTEP southbound: one session per VTEP database (`hardware_vtep` schema,
//! DESIGN.md §4 "Hardware VTEP"), served on the same manager listener and active targets
//! as the hypervisors' `Open_vSwitch` databases.
//!
//! Recognition ([`is_vtep`]): a peer whose `list_dbs` shows `hardware_vtep` is a VTEP when
//! it has no `Open_vSwitch` database, or when its `hardware_vtep` database holds a
//! `Physical_Switch` row. The second case is how `ovs-vtep` runs: one ovsdb-server holds
//! both the VTEP's database and its own OVS's, and connects to the managers named in
//! `hardware_vtep`'s `Global` table.
//!
//! A session ([`session::run`]) monitors the tables [`rows::monitor_requests`] names,
//! publishes each `Physical_Switch` as an [`ObservedVtep`](crate::hardware_vtep::ObservedVtep)
//! (named by `Physical_Switch.name`), and, when the southbound has the model, keeps the
//! database equal to [`desired::desired`] by diff ([`converge::plan`]): one transaction per
//! batch of changes, nothing rewritten that is already right.
//!
//! - [`rows`]: the tables read, decoded into plain types (bad rows are typed errors).
//! - [`desired`]: what the database should hold, from the model, bindings and topology.
//! - [`converge`]: the difference as one transaction.
//! - [`session`]: the connection's task.

pub mod converge;
pub mod desired;
pub mod rows;
pub mod session;
#[cfg(test)]
mod tests;

use ovsdb::{Client, Condition, Transaction};

/// Whether the peer behind `client` is a hardware VTEP (see the module comment). A peer
/// that does not answer is treated as a hypervisor: that session will fail the same way
/// and say why.
pub async fn is_vtep(client: &Client) -> bool {
    let dbs = match client.list_dbs().await {
        Ok(dbs) => dbs,
        Err(e) => {
            tracing::debug!(error = %e, "list_dbs failed");
            return false;
        }
    };
    if !dbs.iter().any(|d| d == rows::DATABASE) {
        return false;
    }
    if !dbs.iter().any(|d| d == ovsdb::vswitch::DATABASE) {
        return true;
    }
    let mut txn = Transaction::new(rows::DATABASE);
    let at = txn.select(
        rows::PHYSICAL_SWITCH,
        Vec::<Condition>::new(),
        Some(&["name"]),
    );
    match client.transact(&txn).await {
        Ok(outcome) => outcome.rows(at).is_some_and(|r| !r.is_empty()),
        Err(e) => {
            tracing::debug!(error = %e, "hardware_vtep select failed");
            false
        }
    }
}
