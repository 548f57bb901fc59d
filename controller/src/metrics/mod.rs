//! Operational metrics, served as `GET /metrics` on the API listener in Prometheus text
//! format (DESIGN.md §3).
//!
//! Two kinds of numbers: those recorded as things happen ([`Metrics`]: API requests,
//! compile rounds, store commits, plug-to-installed times, lagged events), one registry
//! per daemon held by the [`ModelWriter`](crate::northbound::ModelWriter); and those read
//! from the state at scrape time ([`Scrape`]: connected hypervisors, flows and groups per
//! node, withheld ACLs, the OpenFlow installer's counters). Labels are bounded: `method`
//! by the API's method table, `node` by the number of hypervisors, `protocol` by two;
//! nothing is labelled per port.

pub mod http;
pub mod instrument;
pub mod text;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use instrument::{API_BUCKETS, Counter, FAST_BUCKETS, Histogram, PLUG_BUCKETS};
use text::{Exposition, Kind};

use crate::observed::ObservedState;
use crate::southbound::openflow::OpenFlowStats;

/// Everything weftd records as it happens.
#[derive(Debug)]
pub struct Metrics {
    pub api: ApiMetrics,
    /// From the moment weftd learns where a port is plugged to the moment its flows (and
    /// tunnels) are acknowledged on that hypervisor: what a VM waits for after boot.
    pub plug_to_installed: Histogram,
    /// One compile round of the realization task.
    pub compile: Histogram,
    /// Node desired states computed (a round recompiles only the nodes whose inputs
    /// changed).
    pub nodes_recompiled: Counter,
    /// One durable commit of a batch of writes (attempts, failed ones included).
    pub store_commit: Histogram,
    /// Events an `events_subscribe` subscriber missed because it read too slowly.
    pub events_lagged: Counter,
    /// Reports of a switch refusing flows (each may withhold ACLs).
    pub flow_rejections: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            api: ApiMetrics::default(),
            plug_to_installed: Histogram::new(PLUG_BUCKETS),
            compile: Histogram::new(FAST_BUCKETS),
            nodes_recompiled: Counter::default(),
            store_commit: Histogram::new(FAST_BUCKETS),
            events_lagged: Counter::default(),
            flow_rejections: Counter::default(),
        }
    }
}

/// Requests, errors and latency per API method. Methods are those of the API's table
/// (plus `rpc.discover`), fixed when weftd starts: a request can never add a label.
#[derive(Debug)]
pub struct ApiMetrics {
    methods: BTreeMap<&'static str, MethodMetrics>,
}

#[derive(Debug)]
struct MethodMetrics {
    requests: Counter,
    errors: Counter,
    latency: Histogram,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        let names = crate::api::spec::METHODS
            .iter()
            .map(|m| m.name)
            .chain(["rpc.discover"]);
        ApiMetrics {
            methods: names
                .map(|n| {
                    (
                        n,
                        MethodMetrics {
                            requests: Counter::default(),
                            errors: Counter::default(),
                            latency: Histogram::new(API_BUCKETS),
                        },
                    )
                })
                .collect(),
        }
    }
}

impl ApiMetrics {
    /// Records one answered request (`ok`: not an error answer). Unknown names are
    /// ignored.
    pub fn observe(&self, method: &str, took: Duration, ok: bool) {
        if let Some(m) = self.methods.get(method) {
            m.requests.inc();
            if !ok {
                m.errors.inc();
            }
            m.latency.observe(took);
        }
    }

    /// Counts a request that has no meaningful duration (a subscription being opened).
    pub fn count(&self, method: &str, ok: bool) {
        if let Some(m) = self.methods.get(method) {
            m.requests.inc();
            if !ok {
                m.errors.inc();
            }
        }
    }

    /// Requests answered so far for `method` (tests).
    pub fn requests(&self, method: &str) -> u64 {
        self.methods.get(method).map_or(0, |m| m.requests.get())
    }
}

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
        self.render_recorded(&mut e);
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

    fn render_recorded(&self, e: &mut Exposition) {
        let m = &self.metrics;
        e.family(
            "weft_port_plug_to_installed_seconds",
            "Time from weftd learning where a port is plugged to its flows and tunnels being acknowledged on that hypervisor.",
            Kind::Histogram,
        );
        e.histogram(
            "weft_port_plug_to_installed_seconds",
            &[],
            &m.plug_to_installed.snapshot(),
        );
        e.family(
            "weft_compile_seconds",
            "Duration of one compile round of the realization task.",
            Kind::Histogram,
        );
        e.histogram("weft_compile_seconds", &[], &m.compile.snapshot());
        let counters = [
            (
                "weft_nodes_recompiled_total",
                "Hypervisor desired states recompiled.",
                &m.nodes_recompiled,
            ),
            (
                "weft_events_lagged_total",
                "Events that events_subscribe subscribers missed by reading too slowly.",
                &m.events_lagged,
            ),
            (
                "weft_flow_rejections_total",
                "Flows a switch refused (each report may withhold ACLs).",
                &m.flow_rejections,
            ),
        ];
        for (name, help, c) in counters {
            e.family(name, help, Kind::Counter);
            e.sample(name, &[], c.get() as f64);
        }
        e.family(
            "weft_store_commit_seconds",
            "Duration of one durable store commit of a batch of writes.",
            Kind::Histogram,
        );
        e.histogram("weft_store_commit_seconds", &[], &m.store_commit.snapshot());
        let api = &m.api.methods;
        e.family(
            "weft_api_requests_total",
            "API requests answered, per method.",
            Kind::Counter,
        );
        for (name, mm) in api {
            e.sample(
                "weft_api_requests_total",
                &[("method", name)],
                mm.requests.get() as f64,
            );
        }
        e.family(
            "weft_api_request_errors_total",
            "API requests answered with an error, per method.",
            Kind::Counter,
        );
        for (name, mm) in api {
            e.sample(
                "weft_api_request_errors_total",
                &[("method", name)],
                mm.errors.get() as f64,
            );
        }
        e.family(
            "weft_api_request_seconds",
            "Time to answer an API request, per method.",
            Kind::Histogram,
        );
        for (name, mm) in api {
            e.histogram(
                "weft_api_request_seconds",
                &[("method", name)],
                &mm.latency.snapshot(),
            );
        }
    }
}
