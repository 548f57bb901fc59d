//! Operational metrics, served as `GET /metrics` on the API listener in Prometheus text
//! format (DESIGN.md §3).
//!
//! This module owns what is recorded as things happen ([`Metrics`]: API requests, compile
//! rounds, store commits, plug-to-installed times, OVSDB transactions, lagged events), one
//! registry per daemon held by the [`ModelWriter`](crate::northbound::ModelWriter), the
//! text format and the HTTP route. It imports nothing else of Weft, so every module can record into it; what
//! is read from the state at scrape time (connected hypervisors, flows and groups per
//! node, withheld ACLs, the OpenFlow installer's counters) is written by the API
//! (`api::scrape`). Labels are bounded: `method` by the API's method table, `node` by the
//! number of hypervisors, `protocol` by two; nothing is labelled per port.

pub mod http;
pub mod instrument;
pub mod text;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use instrument::{API_BUCKETS, Counter, FAST_BUCKETS, Histogram, PLUG_BUCKETS};
use text::{Exposition, Kind};

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
    /// OVSDB rows a session took over, decoded, from the same database's previous
    /// session because they had not changed (`southbound::ovsdb::carry`).
    pub ovsdb_rows_kept: Counter,
    /// From sending an OVSDB `transact` to a hypervisor to reading its reply (applied or
    /// not): how long the southbound waits on ovsdb-server for tunnels, marks and br-int.
    pub ovsdb_transaction: Histogram,
    /// The hops of a plug ([`crate::plug_trace`]): OVSDB update seen → compiled,
    /// compiled → installed (barrier), installed → the mark's transaction sent, sent →
    /// `weft-installed` acknowledged.
    pub plug_hops: PlugHopMetrics,
}

/// [`Metrics::plug_hops`], one histogram a hop.
#[derive(Debug)]
pub struct PlugHopMetrics {
    pub compile: Histogram,
    pub install: Histogram,
    pub queue: Histogram,
    pub write: Histogram,
}

impl PlugHopMetrics {
    /// Records one completed plug.
    pub fn observe(&self, hops: &crate::plug_trace::PlugHops) {
        self.compile.observe(hops.compile);
        self.install.observe(hops.install);
        self.queue.observe(hops.queue);
        self.write.observe(hops.write);
    }
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
            ovsdb_rows_kept: Counter::default(),
            ovsdb_transaction: Histogram::new(FAST_BUCKETS),
            plug_hops: PlugHopMetrics {
                compile: Histogram::new(FAST_BUCKETS),
                install: Histogram::new(FAST_BUCKETS),
                queue: Histogram::new(FAST_BUCKETS),
                write: Histogram::new(FAST_BUCKETS),
            },
        }
    }
}

/// Requests, errors and latency per API method. The methods are registered once, by the
/// API when it starts, from its method table: a request can never add a label.
#[derive(Debug, Default)]
pub struct ApiMetrics {
    methods: OnceLock<BTreeMap<&'static str, MethodMetrics>>,
}

#[derive(Debug)]
struct MethodMetrics {
    requests: Counter,
    errors: Counter,
    latency: Histogram,
}

impl ApiMetrics {
    /// Fixes the method names (the first call wins; later ones change nothing).
    pub fn register(&self, names: impl IntoIterator<Item = &'static str>) {
        let _ = self.methods.set(
            names
                .into_iter()
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
        );
    }

    fn method(&self, name: &str) -> Option<&MethodMetrics> {
        self.methods.get()?.get(name)
    }

    /// Records one answered request (`ok`: not an error answer). Unknown names are
    /// ignored.
    pub fn observe(&self, method: &str, took: Duration, ok: bool) {
        if let Some(m) = self.method(method) {
            m.requests.inc();
            if !ok {
                m.errors.inc();
            }
            m.latency.observe(took);
        }
    }

    /// Counts a request that has no meaningful duration (a subscription being opened).
    pub fn count(&self, method: &str, ok: bool) {
        if let Some(m) = self.method(method) {
            m.requests.inc();
            if !ok {
                m.errors.inc();
            }
        }
    }

    /// Requests answered so far for `method` (tests).
    pub fn requests(&self, method: &str) -> u64 {
        self.method(method).map_or(0, |m| m.requests.get())
    }
}

impl Metrics {
    /// Writes every recorded metric as exposition families.
    pub fn render(&self, e: &mut Exposition) {
        let m = self;
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
            (
                "weft_ovsdb_rows_kept_total",
                "OVSDB rows a hypervisor's new session took over from its previous one, unchanged.",
                &m.ovsdb_rows_kept,
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
        e.family(
            "weft_ovsdb_transaction_seconds",
            "Time from sending an OVSDB transact to a hypervisor to reading its reply.",
            Kind::Histogram,
        );
        e.histogram(
            "weft_ovsdb_transaction_seconds",
            &[],
            &m.ovsdb_transaction.snapshot(),
        );
        e.family(
            "weft_plug_hop_seconds",
            "Each hop of a VIF plugged while weftd runs: compile (OVSDB update seen to desired state published), install (to the switch's barrier), queue (to the weft-installed transaction sent), write (to its reply).",
            Kind::Histogram,
        );
        for (hop, h) in [
            ("compile", &m.plug_hops.compile),
            ("install", &m.plug_hops.install),
            ("queue", &m.plug_hops.queue),
            ("write", &m.plug_hops.write),
        ] {
            e.histogram("weft_plug_hop_seconds", &[("hop", hop)], &h.snapshot());
        }
        let Some(api) = m.api.methods.get() else {
            return;
        };
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
