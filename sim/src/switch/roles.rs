//! The controller roles of one bridge across all its OpenFlow connections, as OVS keeps
//! them (OpenFlow 1.3 §6.3.7, OVS `connmgr.c`): a connection starts `equal`; a master or
//! slave request carries a generation_id, and one older than the newest seen is refused
//! as stale (so a controller that lost ownership cannot take the switch back); a new
//! master demotes the previous one to slave; a slave may read but not write.
//!
//! One [`Roles`] is shared by every connection of a node (a [`Switch`](super::Switch)
//! joins it with [`Switch::join_roles`](super::Switch::join_roles)); a switch that never
//! joins one keeps its own, as a bridge with a single controller.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use openflow::{ControllerRole, ErrorType};

use super::{Refusal, std_err};

/// OFPRRFC_STALE: the generation_id is older than one already seen.
const STALE: u16 = 0;
/// OFPBRC_IS_SLAVE: a slave asked to write.
pub(super) const IS_SLAVE: u16 = 10;

/// A connection's handle in [`Roles`].
pub type ConnId = u64;

/// The roles of every connection to one bridge.
#[derive(Debug, Default)]
pub struct Roles {
    /// The newest master/slave generation_id seen (OVS's `master_election_id`).
    election: Option<u64>,
    roles: BTreeMap<ConnId, ControllerRole>,
    next: ConnId,
    /// Master requests granted to a connection that was not master already: the
    /// bridge's first master and every handover after it.
    pub masters_granted: u64,
}

/// [`Roles`] shared by the connections of one node.
pub type SharedRoles = Arc<Mutex<Roles>>;

impl Roles {
    /// A new connection, `equal` until it asks otherwise.
    pub fn connect(&mut self) -> ConnId {
        self.next += 1;
        self.roles.insert(self.next, ControllerRole::Equal);
        self.next
    }

    pub fn disconnect(&mut self, conn: ConnId) {
        self.roles.remove(&conn);
    }

    pub fn role(&self, conn: ConnId) -> ControllerRole {
        self.roles
            .get(&conn)
            .copied()
            .unwrap_or(ControllerRole::Equal)
    }

    /// The connection now master, if any.
    pub fn master(&self) -> Option<ConnId> {
        self.roles
            .iter()
            .find(|(_, r)| **r == ControllerRole::Master)
            .map(|(c, _)| *c)
    }

    /// A ROLE_REQUEST from `conn`: the role it holds afterwards, or the refusal.
    pub fn request(
        &mut self,
        conn: ConnId,
        role: ControllerRole,
        generation_id: u64,
    ) -> Result<ControllerRole, Refusal> {
        match role {
            ControllerRole::Master | ControllerRole::Slave => {
                // Wrapping comparison, as OVS does: stale when behind the newest seen.
                if let Some(e) = self.election
                    && (generation_id.wrapping_sub(e) as i64) < 0
                {
                    return Err(std_err(ErrorType::RoleRequestFailed, STALE));
                }
                self.election = Some(generation_id);
                if role == ControllerRole::Master {
                    if self.role(conn) != ControllerRole::Master {
                        self.masters_granted += 1;
                    }
                    for r in self.roles.values_mut() {
                        if *r == ControllerRole::Master {
                            *r = ControllerRole::Slave;
                        }
                    }
                }
                self.roles.insert(conn, role);
            }
            ControllerRole::Equal => {
                self.roles.insert(conn, role);
            }
            _ => {}
        }
        Ok(self.role(conn))
    }

    /// Whether `conn` may change the tables (master or equal).
    pub fn may_write(&self, conn: ConnId) -> bool {
        self.role(conn) != ControllerRole::Slave
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_master_demotes_old_and_stale_generation_is_refused() {
        let mut r = Roles::default();
        let a = r.connect();
        let b = r.connect();
        assert!(r.may_write(a) && r.may_write(b));
        assert_eq!(
            r.request(a, ControllerRole::Master, 5),
            Ok(ControllerRole::Master)
        );
        assert_eq!(
            r.request(b, ControllerRole::Slave, 5),
            Ok(ControllerRole::Slave)
        );
        assert!(!r.may_write(b));
        // b takes over with a newer generation: a is demoted.
        assert_eq!(
            r.request(b, ControllerRole::Master, 9),
            Ok(ControllerRole::Master)
        );
        assert_eq!(r.role(a), ControllerRole::Slave);
        assert_eq!(r.master(), Some(b));
        assert_eq!(r.masters_granted, 2);
        // a, unaware, asks for master with its old generation: refused, stays slave.
        assert!(r.request(a, ControllerRole::Master, 5).is_err());
        assert_eq!(r.role(a), ControllerRole::Slave);
        assert!(!r.may_write(a));
        r.disconnect(b);
        assert_eq!(r.master(), None);
    }
}
