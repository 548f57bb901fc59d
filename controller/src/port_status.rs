//! The one place that joins where each logical port is bound (the compiler task's
//! [`Bindings`], see [`crate::binding`]) with whether its flows are in place on that
//! hypervisor (the OpenFlow sessions' acknowledged installs), as OVN's `if-status` does.
//! It alone writes the API's port bindings and `up`, and hands each OVSDB session the VIFs
//! to mark `external_ids:weft-installed=true`.
//!
//! A port is up, and its VIF marked, when it is bound on a live node (one an OVSDB session
//! serves, not one held for the node grace) and that node's switch acknowledged a desired
//! state in which the port is complete: all its flows, and a tunnel port with an ofport
//! towards every node its switch spans (`compiler::compile_node_with`). So once the mark
//! is seen, the port's first packet to any port of its switch is delivered.
//!
//! OVSDB sessions never read the logical model: an API write wakes only the sessions of
//! the nodes whose marks it changes.

use std::collections::BTreeSet;
use std::sync::Arc;

use imbl::ordmap::DiffItem;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::binding::{Bindings, PortBinding};
use crate::channels::{Channels, InstalledPorts};
use crate::observed::ObservedState;
use crate::topology::{Topology, TransportNodes};

/// Runs until `shutdown` is cancelled (then shows the inputs of that moment once more:
/// cancel it after the southbound sessions ended, so the nodes they leave held show
/// down) or the senders are gone.
pub async fn run(
    nodes: Arc<TransportNodes>,
    channels: Arc<Channels>,
    observed: Arc<ObservedState>,
    shutdown: CancellationToken,
) {
    let mut bindings = channels.watch_bindings();
    let mut topology = nodes.watch();
    let mut installed = channels.watch_installed();
    let mut joined = PortStatus::default();
    loop {
        let inputs = Inputs {
            bindings: bindings.borrow_and_update().clone(),
            topology: topology.borrow_and_update().clone(),
            installed: installed.borrow_and_update().clone(),
        };
        joined.update(inputs, &channels, &observed);
        tokio::select! {
            _ = shutdown.cancelled() => {
                let inputs = Inputs {
                    bindings: bindings.borrow().clone(),
                    topology: topology.borrow().clone(),
                    installed: installed.borrow().clone(),
                };
                joined.update(inputs, &channels, &observed);
                return;
            }
            r = bindings.changed() => if r.is_err() { return },
            r = topology.changed() => if r.is_err() { return },
            r = installed.changed() => if r.is_err() { return },
        }
    }
}

/// One snapshot of everything a port's status depends on.
#[derive(Clone, Default)]
pub struct Inputs {
    pub bindings: Arc<Bindings>,
    pub topology: Arc<Topology>,
    pub installed: Arc<InstalledPorts>,
}

/// The inputs of the last update: the next one recomputes only the nodes and ports
/// whose inputs differ (persistent maps diff in time proportional to the change).
#[derive(Default)]
pub struct PortStatus {
    last: Inputs,
}

impl PortStatus {
    /// Brings the API's port statuses and every affected node's marks to what `now` says.
    pub fn update(&mut self, now: Inputs, channels: &Channels, observed: &ObservedState) {
        let mut nodes: BTreeSet<String> = BTreeSet::new();
        // Ports that left a node (unbound, or bound elsewhere now).
        let mut moved: BTreeSet<Uuid> = BTreeSet::new();
        for d in self.last.bindings.ports.diff(&now.bindings.ports) {
            match d {
                DiffItem::Add(_, b) => {
                    nodes.insert(b.node.clone());
                }
                DiffItem::Remove(port, b) => {
                    moved.insert(*port);
                    nodes.insert(b.node.clone());
                }
                DiffItem::Update { old, new } => {
                    if old.1.node != new.1.node {
                        moved.insert(*old.0);
                    }
                    nodes.insert(old.1.node.clone());
                    nodes.insert(new.1.node.clone());
                }
            }
        }
        let (was, is) = (&self.last.topology, &now.topology);
        for ch in is.nodes.diff(&was.nodes) {
            if ch.old.is_none() || ch.new.is_none() {
                nodes.insert(ch.id.to_owned());
            }
        }
        for d in was.held.diff(&is.held) {
            let (imbl::ordset::DiffItem::Add(id) | imbl::ordset::DiffItem::Remove(id)) = d;
            nodes.insert(id.clone());
        }
        for d in self.last.installed.diff(&now.installed) {
            let node = match d {
                DiffItem::Add(n, _) | DiffItem::Remove(n, _) => n,
                DiffItem::Update { new, .. } => new.0,
            };
            nodes.insert(node.clone());
        }
        for port in moved {
            observed.unbind_port(port);
            channels.plugs.unbound(port);
        }
        for node in &nodes {
            if !is.is_live(node) {
                // Held or gone: its ports show unbound and down. Its marks stay as they
                // were: its flows are still in place, and a session that serves it again
                // must not clear them only to set them again a moment later.
                for (port, _) in now.bindings.on_node(node) {
                    observed.unbind_port(port);
                    channels.plugs.unbound(port);
                }
                continue;
            }
            let installed = now.installed.get(node);
            let mut marks = BTreeSet::new();
            for (port, ofport) in now.bindings.on_node(node) {
                let binding = PortBinding {
                    node: node.clone(),
                    ofport,
                };
                if observed.bind_port(port, binding) {
                    // A new binding joins its plug's two halves (once, not every pass).
                    channels.plugs.bound(port, node, ofport);
                }
                let up = installed.is_some_and(|s| s.contains(&port));
                observed.set_port_up(port, up);
                if up {
                    marks.insert(ofport);
                }
            }
            channels.publish_marks(node, marks);
        }
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use tokio::sync::broadcast;

    use super::*;
    use crate::binding::tests::{node, topology};
    use crate::model::fixtures::blue;

    fn status() -> (PortStatus, Arc<Channels>, ObservedState) {
        let (events, _) = broadcast::channel(64);
        (
            PortStatus::default(),
            Channels::new(),
            ObservedState::new(events),
        )
    }

    fn installed(node: &str, ports: &[u128]) -> Arc<InstalledPorts> {
        let set: BTreeSet<Uuid> = ports.iter().map(|n| Uuid::from_u128(*n)).collect();
        Arc::new(InstalledPorts::unit(node.to_owned(), Arc::new(set)))
    }

    /// The API and the marks follow the compiler's binding when two VIFs claim one port:
    /// the loser's interface is never marked, whatever its switch reports.
    #[test]
    fn the_api_and_the_marks_follow_the_one_binding() {
        let (mut s, channels, observed) = status();
        let m = blue(&[(1, "a1")]);
        let t = topology(vec![node("hv2", &[("a1", 7)]), node("hv1", &[("a1", 3)])]);
        let bindings = Arc::new(Bindings::compute(&m, &t));
        let marks1 = channels.watch_marks("hv1");
        let marks2 = channels.watch_marks("hv2");
        let mut all = (*installed("hv1", &[1])).clone();
        all.insert("hv2".into(), Arc::new(BTreeSet::from([Uuid::from_u128(1)])));
        s.update(
            Inputs {
                bindings,
                topology: t.clone(),
                installed: Arc::new(all),
            },
            &channels,
            &observed,
        );
        let st = observed.port_status(&Uuid::from_u128(1));
        assert_eq!(
            st.binding.map(|b| (b.node, b.ofport)),
            Some(("hv1".into(), 3))
        );
        assert!(st.up);
        assert_eq!(**marks1.borrow(), BTreeSet::from([3]));
        assert!(marks2.borrow().is_empty(), "the losing VIF is not marked");
    }

    /// Up needs the port's flows acknowledged on its node; a held node's ports show
    /// unbound and down at once, and come back when its session does.
    #[test]
    fn up_follows_installs_and_a_held_node_shows_down() {
        let (mut s, channels, observed) = status();
        let m = blue(&[(1, "a1")]);
        let t = topology(vec![node("hv1", &[("a1", 3)])]);
        let bindings = Arc::new(Bindings::compute(&m, &t));
        let a1 = Uuid::from_u128(1);
        let marks = channels.watch_marks("hv1");
        let mut inputs = Inputs {
            bindings,
            topology: t.clone(),
            installed: Arc::default(),
        };
        s.update(inputs.clone(), &channels, &observed);
        assert!(observed.port_status(&a1).binding.is_some());
        assert!(!observed.port_status(&a1).up);
        assert!(marks.borrow().is_empty());
        inputs.installed = installed("hv1", &[1]);
        s.update(inputs.clone(), &channels, &observed);
        assert!(observed.port_status(&a1).up);
        assert_eq!(**marks.borrow(), BTreeSet::from([3]));
        let mut held = (*t).clone();
        held.held.insert("hv1".into());
        inputs.topology = Arc::new(held);
        s.update(inputs.clone(), &channels, &observed);
        assert_eq!(observed.port_status(&a1).binding, None);
        assert!(!observed.port_status(&a1).up);
        assert_eq!(
            **marks.borrow(),
            BTreeSet::from([3]),
            "a held node keeps its marks: its flows are still in place"
        );
        inputs.topology = t;
        s.update(inputs, &channels, &observed);
        assert!(observed.port_status(&a1).up);
    }
}
