//! What a session's passes over the database remember: which steps last found nothing
//! to write, and the tunnel ports planned for the node ([`Memo`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::desired::{PatchSpec, TunnelSpec};
use crate::topology::Vif;

/// A node's desired tunnels as the compiler published them.
pub(super) type Tunnels = Arc<BTreeSet<TunnelSpec>>;

/// Steps of a session's pass over the database (`Session::converge`) that found nothing to do, with the inputs they saw.
///
/// A pass runs on every wake (a monitor update, a new desired state, newly installed
/// ports), and each step used to decode every Port and Interface row of the bridge again:
/// at hundreds of tunnels a node, on 2 cores, that was over half of weftd's CPU during a
/// cold start, on the runtime threads that must also read the sockets. A step whose
/// inputs (the replica's generation, or for the bridge's contents its
/// `contents_generation`; the desired tunnels, the marks) are the ones it last ran with, and that then had nothing to write, is skipped:
/// it would find nothing again. Cleared when the node or the write state is reset
/// (identity change, retry timer). (Rows themselves are decoded once per version by the
/// replica, see `vswitch::cached_row`.)
#[derive(Debug, Default)]
pub(super) struct Memo {
    /// The integration bridge needed no change at this replica generation.
    pub(super) bridge_clean: Option<u64>,
    /// What was published at this contents generation.
    pub(super) published: Option<Published>,
    /// The tunnel ports matched these desired tunnels at this contents generation.
    pub(super) tunnels_clean: Option<(u64, Tunnels)>,
    /// The patch ports matched these desired patches at this contents generation.
    pub(super) patches_clean: Option<(u64, Arc<BTreeSet<PatchSpec>>)>,
    /// The weft-installed marks matched these marks at this contents generation.
    pub(super) installed_clean: Option<(u64, Arc<BTreeSet<u32>>)>,
    /// The OVS tunnel ports for these desired tunnels: rebuilt only when the desired
    /// tunnels change, not on every pass that plans them. The sets are the published
    /// ones, shared: copies would hold each node's whole tunnel list twice more, and
    /// `Arc`'s equality recognises an unchanged set by address. With the node they
    /// were planned for: the memo may come from the database's previous session
    /// ([`super::carry`]), which a system-id changed since may have named otherwise.
    pub(super) specs: Option<super::carry::TunnelPorts>,
}

impl Memo {
    /// Forgets every step's "nothing to do", to plan every write again. Keeps the tunnel
    /// port specs: they are keyed by all they depend on (the node and its desired
    /// tunnels), so they stay true across a new role, a retry, a new monitor or the
    /// node's next session, and rebuilding them was 2.5% of weftd's CPU in a storm.
    pub(super) fn forget(&mut self) {
        *self = Memo {
            specs: self.specs.take(),
            ..Memo::default()
        };
    }
}

#[derive(Debug)]
pub(super) struct Published {
    pub(super) generation: u64,
    pub(super) vifs: Arc<BTreeMap<String, Vif>>,
}
