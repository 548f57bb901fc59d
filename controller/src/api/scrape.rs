//! What a `GET /metrics` scrape reads besides the recorded [`Metrics`]: the live state
//! they sit next to (connected hypervisors, flows and groups per node, withheld ACLs) and
//! the OpenFlow installer's counters, written at scrape time.

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::metrics::text::{Exposition, Kind};
use crate::observed::ObservedState;
use crate::southbound::openflow::OpenFlowStats;

/// What one scrape reads: the recorded metrics and the live state they sit next to.
#[derive(Clone, Debug)]
pub struct Scrape {
    pub metrics: Arc<Metrics>,
    pub observed: Arc<ObservedState>,
    /// The OpenFlow listener's counters (absent when the API runs without a southbound,
    /// as in some tests).
    pub openflow: Option<Arc<OpenFlowStats>>,
}

impl Scrape {
    /// The scrape answer, Prometheus text format.
    pub fn render(&self) -> String {
        let mut e = Exposition::new();
        e.family(
            "weft_build_info",
            "Always 1; the version label is weftd's version.",
            Kind::Gauge,
        );
        e.sample(
            "weft_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        self.render_nodes(&mut e);
        self.render_openflow(&mut e);
        self.metrics.render(&mut e);
        e.finish()
    }

    fn render_nodes(&self, e: &mut Exposition) {
        let nodes = self.observed.node_counts();
        let connected = |f: fn(&crate::observed::NodeCounts) -> bool| {
            nodes.iter().filter(|n| f(n)).count() as f64
        };
        e.family(
            "weft_hypervisors_connected",
            "Hypervisors with a live session, per southbound protocol.",
            Kind::Gauge,
        );
        e.sample(
            "weft_hypervisors_connected",
            &[("protocol", "ovsdb")],
            connected(|n| n.ovsdb_connected),
        );
        e.sample(
            "weft_hypervisors_connected",
            &[("protocol", "openflow")],
            connected(|n| n.openflow_connected),
        );
        e.family(
            "weft_hypervisors_known",
            "Hypervisors weftd knows, connected or not.",
            Kind::Gauge,
        );
        e.sample("weft_hypervisors_known", &[], nodes.len() as f64);
        e.family(
            "weft_node_flows",
            "Weft flows installed on each hypervisor's integration bridge, as last acknowledged.",
            Kind::Gauge,
        );
        for n in &nodes {
            e.sample("weft_node_flows", &[("node", &n.id)], n.flows as f64);
        }
        e.family(
            "weft_node_groups",
            "OpenFlow groups installed on each hypervisor's integration bridge, as last acknowledged.",
            Kind::Gauge,
        );
        for n in &nodes {
            e.sample("weft_node_groups", &[("node", &n.id)], n.groups as f64);
        }
        e.family(
            "weft_acls_withheld",
            "ACL and hypervisor pairs where the switch refused the ACL's flows and the port runs without it (fail closed).",
            Kind::Gauge,
        );
        e.sample(
            "weft_acls_withheld",
            &[],
            self.observed.withheld_acl_count() as f64,
        );
    }

    fn render_openflow(&self, e: &mut Exposition) {
        let Some(s) = &self.openflow else {
            return;
        };
        let counters = [
            (
                "weft_openflow_sessions_total",
                "OpenFlow connections that completed the handshake.",
                &s.sessions,
            ),
            (
                "weft_openflow_installs_total",
                "Installs (one bundle, or plain flow mods where bundles are unsupported) acknowledged by a barrier without error.",
                &s.installs,
            ),
            (
                "weft_openflow_install_failures_total",
                "Installs the switch refused in part (the bundle was rolled back, or plain flow mods were refused).",
                &s.failed_installs,
            ),
            (
                "weft_openflow_empty_diffs_total",
                "Reconciliations that found the switch already in the desired state.",
                &s.empty_diffs,
            ),
            (
                "weft_openflow_flow_dumps_total",
                "Flow and group dumps taken (on association and after a failed install).",
                &s.dumps,
            ),
            (
                "weft_openflow_dumps_matched_by_digest_total",
                "Flow dumps found to hold exactly the desired flows by digest, without decoding them.",
                &s.dumps_matched_by_digest,
            ),
            (
                "weft_openflow_changes_sent_total",
                "Flow and group mods sent.",
                &s.changes_sent,
            ),
        ];
        for (name, help, c) in counters {
            e.family(name, help, Kind::Counter);
            e.sample(name, &[], OpenFlowStats::get(c) as f64);
        }
    }
}
