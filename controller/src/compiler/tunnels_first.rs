//! Tunnels first: a node that would be compiled while tunnel ports it needs do not exist
//! yet is asked for those ports alone, and compiled once OVS has given them ofports.
//!
//! A node's flows towards a remote hypervisor need the tunnel's ofport, and the tunnel
//! port is created (by the node's OVSDB session) only from a compiled desired state. So a
//! node compiled as it joins, or as a neighbour joins, is compiled twice: once to learn
//! which tunnels it needs (its flows left without the remote ports) and once when their
//! ofports are reported. During a cold start that was about three full compiles a node.
//! For the common shape (plain overlay switches: no router, no provider network, no
//! VTEPs) the tunnel set is just the switches' other member nodes, known from the
//! compiler's index without compiling, so the first compile is skipped.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

use crate::binding::Bindings;
use crate::desired::TunnelSpec;
use crate::model::LogicalModel;
use crate::topology::Topology;

/// The tunnel ports `node`'s compile would name, and whether one of them has no ofport
/// yet, when they can be asked for ahead of the compile: every switch `node` has a bound
/// port on is a plain overlay switch (its tunnels are then exactly the switches' other
/// member nodes) and `node` holds no Weft tunnel outside the set (so asking for these
/// ports alone removes none). `None` when the node must be compiled now.
pub(super) fn tunnels_ahead(
    model: &LogicalModel,
    topology: &Topology,
    bindings: &Bindings,
    members: &HashMap<Uuid, BTreeMap<String, usize>>,
    node: &str,
) -> Option<(BTreeSet<TunnelSpec>, bool)> {
    let view = topology.nodes.get(node)?;
    let mut switches = BTreeSet::new();
    for (port, _) in bindings.on_node(node) {
        switches.insert(model.port(&port)?.switch);
    }
    let mut want = BTreeSet::new();
    let mut missing = false;
    for sw in &switches {
        let s = model.switch(sw)?;
        if s.provider.is_some()
            || !s.flood_vteps.is_empty()
            || model.router_port_of_switch(sw).is_some()
            || topology
                .hardware_vteps
                .get(sw)
                .is_some_and(|v| !v.is_empty())
        {
            return None;
        }
        for remote in members.get(sw).into_iter().flat_map(|m| m.keys()) {
            if remote == node {
                continue;
            }
            let Some(rview) = topology.nodes.get(remote) else {
                continue;
            };
            missing |= !view.tunnels.contains_key(remote);
            want.insert(TunnelSpec {
                remote: remote.clone(),
                remote_ip: rview.encap_ip,
                local_ip: view.encap_ip,
                encap: view.encap_type,
            });
        }
    }
    let wanted: BTreeSet<&str> = want.iter().map(|t| t.remote.as_str()).collect();
    let removes = view.tunnels.keys().any(|r| !wanted.contains(r.as_str()));
    (!removes).then_some((want, missing))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;

    use super::*;
    use crate::compiler::{IncrementalCompiler, compile_node};
    use crate::model::fixtures::blue;
    use crate::topology::{EncapType, NodeView, Vif};

    /// A Geneve node at 192.0.2.`n` with one VIF on ofport 1 and the given tunnels.
    pub(crate) fn node(id: &str, n: u8, vif: &str, tunnels: &[(&str, u32)]) -> NodeView {
        NodeView {
            id: id.into(),
            encap_ip: format!("192.0.2.{n}").parse().expect("ip"),
            encap_type: EncapType::Geneve,
            bridge: "br-int".into(),
            datapath_id: None,
            vifs: BTreeMap::from([(
                vif.to_owned(),
                Vif {
                    ofport: 1,
                    interface: Uuid::nil(),
                    name: vif.into(),
                },
            )]),
            tunnels: tunnels.iter().map(|(r, p)| ((*r).to_owned(), *p)).collect(),
            bridge_mappings: Default::default(),
            patches: Default::default(),
        }
    }

    fn three(tunnels: &[(&str, u32)]) -> Topology {
        let mut t = Topology::default();
        t.nodes.insert("hv1".into(), node("hv1", 1, "a1", tunnels));
        t.nodes
            .insert("hv2".into(), node("hv2", 2, "a2", &[("hv1", 7)]));
        t.nodes
            .insert("hv3".into(), node("hv3", 3, "a3", &[("hv1", 7)]));
        t
    }

    /// Records what a round published: tunnels asked for ahead, and compiled nodes.
    #[derive(Default)]
    struct Seen {
        tunnels: BTreeMap<String, BTreeSet<TunnelSpec>>,
        compiled: BTreeMap<String, crate::desired::DesiredNode>,
    }

    fn round(ic: &mut IncrementalCompiler, m: &LogicalModel, t: &Topology) -> Seen {
        round_in(ic, m, t, false)
    }

    fn round_in(ic: &mut IncrementalCompiler, m: &LogicalModel, t: &Topology, burst: bool) -> Seen {
        let mut seen = Seen::default();
        let mut compiled = BTreeMap::new();
        ic.update_tunnels_first(
            (m, t),
            &|_| true,
            burst,
            |_| {},
            |n, tun| {
                seen.tunnels.insert(n, tun);
            },
            |n, d| {
                compiled.insert(n, d);
            },
        );
        seen.compiled = compiled;
        seen
    }

    /// A joining node is asked for exactly the tunnels its compile would name, and
    /// compiled (equal to a from-scratch compile) once OVS reported their ofports.
    #[test]
    fn a_joining_node_gets_its_tunnels_first_and_is_compiled_once_they_exist() {
        let m = blue(&[(1, "a1"), (2, "a2"), (3, "a3")]);
        let mut ic = IncrementalCompiler::new();
        let t = three(&[]);
        let seen = round(&mut ic, &m, &t);
        let full = compile_node(&m, &t, "hv1");
        assert_eq!(seen.tunnels.get("hv1"), Some(&full.tunnels));
        assert_eq!(full.tunnels.len(), 2, "tunnels to hv2 and hv3");
        assert!(
            !seen.compiled.contains_key("hv1"),
            "compiled without its tunnels"
        );
        assert!(ic.deferring());
        // hv2 and hv3 already tunnel to hv1, but not to each other: put off as well.
        assert!(seen.compiled.is_empty());

        let mut t = three(&[("hv2", 10), ("hv3", 11)]);
        t.nodes.insert(
            "hv2".into(),
            node("hv2", 2, "a2", &[("hv1", 7), ("hv3", 8)]),
        );
        t.nodes.insert(
            "hv3".into(),
            node("hv3", 3, "a3", &[("hv1", 7), ("hv2", 8)]),
        );
        let seen = round(&mut ic, &m, &t);
        assert!(seen.tunnels.is_empty());
        for n in ["hv1", "hv2", "hv3"] {
            assert_eq!(seen.compiled.get(n), Some(&compile_node(&m, &t, n)), "{n}");
        }
        assert!(!ic.deferring());
        assert!(
            round(&mut ic, &m, &t).compiled.is_empty(),
            "nothing changed"
        );
    }

    /// A tunnel OVS never accepts holds a node back for a bounded number of rounds; it
    /// is then compiled without it, as it would have been at once.
    #[test]
    fn a_node_waits_for_its_tunnels_a_bounded_number_of_rounds() {
        let m = blue(&[(1, "a1"), (2, "a2")]);
        let mut ic = IncrementalCompiler::new();
        let mut t = Topology::default();
        t.nodes.insert("hv1".into(), node("hv1", 1, "a1", &[]));
        t.nodes
            .insert("hv2".into(), node("hv2", 2, "a2", &[("hv1", 7)]));
        let mut rounds = 0;
        loop {
            let seen = round(&mut ic, &m, &t);
            rounds += 1;
            if let Some(d) = seen.compiled.get("hv1") {
                assert_eq!(d, &compile_node(&m, &t, "hv1"));
                break;
            }
            assert!(ic.deferring());
            assert!(rounds <= 5, "hv1 never compiled");
        }
        assert_eq!(rounds, 3, "put off twice, then compiled");
        assert!(!ic.deferring());
    }

    /// While hypervisors are still joining, a joining node waits even with its tunnels
    /// up (its neighbours are on their way), for as many rounds as the burst lasts, and
    /// is compiled in the first round after it.
    #[test]
    fn joining_nodes_wait_for_the_end_of_a_burst() {
        let m = blue(&[(1, "a1"), (2, "a2")]);
        let mut ic = IncrementalCompiler::new();
        let mut t = Topology::default();
        t.nodes
            .insert("hv1".into(), node("hv1", 1, "a1", &[("hv2", 3)]));
        t.nodes
            .insert("hv2".into(), node("hv2", 2, "a2", &[("hv1", 7)]));
        for _ in 0..5 {
            let seen = round_in(&mut ic, &m, &t, true);
            assert!(seen.compiled.is_empty());
            assert_eq!(seen.tunnels.len(), 2);
        }
        let seen = round_in(&mut ic, &m, &t, false);
        for n in ["hv1", "hv2"] {
            assert_eq!(seen.compiled.get(n), Some(&compile_node(&m, &t, n)), "{n}");
        }
        assert!(!ic.deferring());

        // A burst that never ends does not starve a joining node.
        t.nodes.insert("hv3".into(), node("hv3", 3, "a3", &[]));
        let mut ic = IncrementalCompiler::new();
        let rounds = (1..100)
            .find(|_| round_in(&mut ic, &m, &t, true).compiled.contains_key("hv1"))
            .expect("hv1 compiled during an endless burst");
        assert_eq!(rounds, 31);
    }

    /// A node put off round after round is asked for the same tunnels while nothing it
    /// depends on changes, and for a new neighbour's tunnel as soon as that neighbour
    /// joins its switch.
    #[test]
    fn a_deferred_node_follows_a_neighbour_that_joins() {
        let m = blue(&[(1, "a1"), (2, "a2"), (3, "a3")]);
        let mut ic = IncrementalCompiler::new();
        let mut t = Topology::default();
        t.nodes.insert("hv1".into(), node("hv1", 1, "a1", &[]));
        t.nodes.insert("hv2".into(), node("hv2", 2, "a2", &[]));
        let first = round_in(&mut ic, &m, &t, true);
        let again = round_in(&mut ic, &m, &t, true);
        assert_eq!(first.tunnels, again.tunnels, "nothing changed");
        assert_eq!(again.tunnels["hv1"], compile_node(&m, &t, "hv1").tunnels);
        assert_eq!(again.tunnels["hv1"].len(), 1);
        t.nodes.insert("hv3".into(), node("hv3", 3, "a3", &[]));
        let seen = round_in(&mut ic, &m, &t, true);
        assert!(seen.compiled.is_empty(), "still a burst");
        for n in ["hv1", "hv2", "hv3"] {
            assert_eq!(seen.tunnels[n], compile_node(&m, &t, n).tunnels, "{n}");
            assert_eq!(seen.tunnels[n].len(), 2, "{n}");
        }
    }

    /// A node already compiled is never put off: its flows follow every change at once,
    /// even when a new neighbour's tunnel does not exist yet.
    #[test]
    fn a_compiled_node_is_recompiled_at_once_when_a_neighbour_joins() {
        let m = blue(&[(1, "a1"), (2, "a2"), (3, "a3")]);
        let mut ic = IncrementalCompiler::new();
        let mut t = Topology::default();
        t.nodes.insert("hv1".into(), node("hv1", 1, "a1", &[]));
        assert_eq!(
            round(&mut ic, &m, &t).compiled.len(),
            1,
            "alone: nothing to wait for"
        );
        t.nodes.insert("hv2".into(), node("hv2", 2, "a2", &[]));
        let seen = round(&mut ic, &m, &t);
        assert_eq!(seen.compiled.get("hv1"), Some(&compile_node(&m, &t, "hv1")));
        assert!(seen.tunnels.contains_key("hv2") && !seen.compiled.contains_key("hv2"));
    }

    /// Not for routed or bridged switches, or a node holding a tunnel the set would drop
    /// (after a restart, to a peer not back yet): those are compiled at once.
    #[test]
    fn only_plain_switches_and_no_tunnel_removed() {
        let m = blue(&[(1, "a1"), (2, "a2")]);
        let t2 = |hv1: &[(&str, u32)]| {
            let mut t = Topology::default();
            t.nodes.insert("hv1".into(), node("hv1", 1, "a1", hv1));
            t.nodes.insert("hv2".into(), node("hv2", 2, "a2", &[]));
            t
        };
        let ask = |m: &LogicalModel, t: &Topology| {
            let mut ic = IncrementalCompiler::new();
            round(&mut ic, m, t).tunnels.contains_key("hv1")
        };
        assert!(ask(&m, &t2(&[])));
        assert!(!ask(&m, &t2(&[("hv2", 3)])), "nothing missing");
        assert!(
            !ask(&m, &t2(&[("hv9", 3)])),
            "would remove the tunnel to hv9"
        );

        let routed = super::super::routing_tests::model();
        let t = super::super::routing_tests::topology();
        let mut t_bare = Topology::default();
        for (id, v) in t.nodes.iter() {
            let mut v = v.clone();
            v.tunnels.clear();
            t_bare.nodes.insert(id.clone(), v);
        }
        assert!(
            !ask(&routed, &t_bare),
            "routed switches are compiled at once"
        );

        let mut flood = m.clone();
        let sw = Uuid::from_u128(0xa);
        let mut s = flood.switch(&sw).cloned().expect("blue");
        s.flood_vteps = vec!["192.0.2.200".parse().expect("ip")];
        flood = LogicalModel::from_objects(
            2,
            vec![s],
            flood.ports_of_switch(&sw).cloned().collect(),
            vec![],
        )
        .expect("model");
        assert!(!ask(&flood, &t2(&[])), "flood VTEPs: compiled at once");
    }
}
