//! The writes one backend is measured with, and the reads that check them: `switch_create`
//! ×N, `port_create` ×N on one switch, `port_delete` of those ports, then optionally
//! `port_create` ×N from several clients at once. Write `j` goes to instance `j mod K`.
//! After each phase every instance must list exactly what was acknowledged.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::HttpClient;
use serde_json::{Value, json};

use crate::deployment::metrics;

/// The store-commit histogram's sum and count, read from each instance's `/metrics`.
const COMMIT_METRICS: &[&str] = &[
    "weft_store_commit_seconds_sum",
    "weft_store_commit_seconds_count",
];
/// Most ids a read-back mismatch names.
const NAMED: usize = 5;

/// One measured phase.
#[derive(Debug)]
pub struct Phase {
    pub name: String,
    /// Clients writing at once (1: sequential).
    pub clients: usize,
    /// Request-to-answer time of each acknowledged write.
    pub latencies: Vec<Duration>,
    /// From the first request to the last answer.
    pub wall: Duration,
    /// Writes sent.
    pub sent: usize,
    /// Failed writes (error or an answer that does not name the object).
    pub errors: Vec<String>,
    /// Store commits (weftd's `weft_store_commit_seconds`) during the phase, over all
    /// instances: how many, and their summed duration.
    pub commits: u64,
    pub commit_seconds: f64,
    pub read_back: ReadBack,
}

/// What every instance listed right after a phase, against what was acknowledged.
#[derive(Debug, Default)]
pub struct ReadBack {
    /// Instances asked.
    pub instances: usize,
    /// Objects each instance was expected to list (created and not deleted).
    pub expected: usize,
    pub mismatches: Vec<String>,
}

impl Phase {
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .errors
            .iter()
            .map(|e| format!("{}: {e}", self.name))
            .collect();
        if self.latencies.len() != self.sent {
            out.push(format!(
                "{}: {} of {} writes acknowledged",
                self.name,
                self.latencies.len(),
                self.sent
            ));
        }
        out.extend(
            self.read_back
                .mismatches
                .iter()
                .map(|m| format!("{}: {m}", self.name)),
        );
        out
    }
}

/// One write: which instance takes it, the method and its named parameters.
struct Write {
    instance: usize,
    method: &'static str,
    params: Value,
}

/// What each write returned, in order: the acknowledged answer or the error.
struct Timed {
    answers: Vec<Result<(Value, Duration), String>>,
    wall: Duration,
}

/// Runs the phases on `clients` (one per instance; `apis` their addresses, for metrics).
pub async fn run(
    clients: &[HttpClient],
    apis: &[SocketAddr],
    writes: usize,
    concurrent: usize,
) -> anyhow::Result<Vec<Phase>> {
    let k = clients.len().max(1);
    let mut phases = Vec::new();

    let jobs = (0..writes)
        .map(|j| Write {
            instance: j % k,
            method: "switch_create",
            params: json!({ "name": format!("bench-s{j}") }),
        })
        .collect();
    let (mut phase, switches) = timed_phase("switch_create", clients, apis, jobs, 1, "id").await;
    phase.read_back = read_back(clients, "switch_list", json!({}), &switches).await;
    phases.push(phase);

    let jobs = port_creates(writes, k, "bench-s0", 0);
    let (mut phase, ports) = timed_phase("port_create", clients, apis, jobs, 1, "id").await;
    let on_s0 = json!({ "switch": "bench-s0" });
    phase.read_back = read_back(clients, "port_list", on_s0.clone(), &ports).await;
    phases.push(phase);

    let jobs = ports
        .iter()
        .enumerate()
        .map(|(j, id)| Write {
            instance: j % k,
            method: "port_delete",
            params: json!({ "port": id }),
        })
        .collect();
    let (mut phase, deleted) = timed_phase("port_delete", clients, apis, jobs, 1, "ports").await;
    let left: Vec<String> = ports
        .iter()
        .filter(|p| !deleted.contains(p))
        .cloned()
        .collect();
    phase.read_back = read_back(clients, "port_list", on_s0, &left).await;
    phases.push(phase);

    if concurrent > 0 {
        let jobs = port_creates(writes, k, "bench-s1", 1);
        let name = format!("port_create, {concurrent} clients");
        let (mut phase, ports) = timed_phase(&name, clients, apis, jobs, concurrent, "id").await;
        let on_s1 = json!({ "switch": "bench-s1" });
        phase.read_back = read_back(clients, "port_list", on_s1, &ports).await;
        phases.push(phase);
    }
    Ok(phases)
}

/// `writes` port creations on `switch`; `set` keeps names and MACs distinct between sets.
fn port_creates(writes: usize, k: usize, switch: &str, set: u8) -> Vec<Write> {
    (0..writes)
        .map(|j| {
            let [_, _, _, _, _, a, b, c] = (j as u64).to_be_bytes();
            Write {
                instance: j % k,
                method: "port_create",
                params: json!({
                    "switch": switch,
                    "name": format!("bench-p{set}-{j}"),
                    "mac": format!("02:00:{set:02x}:{a:02x}:{b:02x}:{c:02x}"),
                }),
            }
        })
        .collect()
}

/// Runs `jobs` on `lanes` clients at once and returns the phase (read-back still empty)
/// and the ids the acknowledged answers name under `id_field` (a string, or an array
/// of them for a deletion).
async fn timed_phase(
    name: &str,
    clients: &[HttpClient],
    apis: &[SocketAddr],
    jobs: Vec<Write>,
    lanes: usize,
    id_field: &str,
) -> (Phase, Vec<String>) {
    let sent = jobs.len();
    let before = commits(apis).await;
    let timed = run_jobs(clients, jobs, lanes).await;
    let after = commits(apis).await;
    let mut ids = Vec::new();
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for (j, answer) in timed.answers.into_iter().enumerate() {
        match answer {
            Ok((v, took)) => {
                let named: Vec<String> = match &v[id_field] {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
                    _ => Vec::new(),
                };
                if named.is_empty() {
                    errors.push(format!("write {j} answered without {id_field}: {v}"));
                } else {
                    ids.extend(named);
                    latencies.push(took);
                }
            }
            Err(e) => errors.push(format!("write {j}: {e}")),
        }
    }
    let phase = Phase {
        name: name.to_string(),
        clients: lanes.max(1),
        latencies,
        wall: timed.wall,
        sent,
        errors,
        commits: (after.1 - before.1).max(0.0) as u64,
        commit_seconds: (after.0 - before.0).max(0.0),
        read_back: ReadBack::default(),
    };
    (phase, ids)
}

/// Sends job `j` from lane `j mod lanes`, each lane one write at a time.
async fn run_jobs(clients: &[HttpClient], jobs: Vec<Write>, lanes: usize) -> Timed {
    let lanes = lanes.max(1);
    let n = jobs.len();
    let mut per_lane: Vec<Vec<(usize, Write)>> = (0..lanes).map(|_| Vec::new()).collect();
    for (j, w) in jobs.into_iter().enumerate() {
        per_lane[j % lanes].push((j, w));
    }
    let started = Instant::now();
    let tasks: Vec<_> = per_lane
        .into_iter()
        .map(|lane| {
            let clients = clients.to_vec();
            tokio::spawn(async move {
                let mut out = Vec::with_capacity(lane.len());
                for (j, w) in lane {
                    let Some(client) = clients.get(w.instance) else {
                        out.push((j, Err(format!("no instance {}", w.instance))));
                        continue;
                    };
                    let t = Instant::now();
                    let answer = call(client, w.method, &w.params).await;
                    out.push((j, answer.map(|v| (v, t.elapsed()))));
                }
                out
            })
        })
        .collect();
    let mut answers: Vec<Result<(Value, Duration), String>> =
        (0..n).map(|_| Err("not sent".to_string())).collect();
    for task in tasks {
        match task.await {
            Ok(out) => {
                for (j, a) in out {
                    answers[j] = a;
                }
            }
            Err(e) => tracing::warn!(error = %e, "a client task failed"),
        }
    }
    Timed {
        answers,
        wall: started.elapsed(),
    }
}

/// One JSON-RPC call with named parameters.
async fn call(client: &HttpClient, method: &str, params: &Value) -> Result<Value, String> {
    let mut p = ObjectParams::new();
    if let Value::Object(m) = params {
        for (k, v) in m {
            p.insert(k, v).map_err(|e| e.to_string())?;
        }
    }
    client
        .request::<Value, _>(method, p)
        .await
        .map_err(|e| format!("{method}: {e}"))
}

/// Asks every instance `method` (a list) and compares the ids listed with `expected`.
async fn read_back(
    clients: &[HttpClient],
    method: &str,
    params: Value,
    expected: &[String],
) -> ReadBack {
    let want: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    let mut mismatches = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let listed = match call(client, method, &params).await {
            Ok(Value::Array(items)) => items,
            Ok(other) => {
                mismatches.push(format!("instance {i}: {method} answered {other}"));
                continue;
            }
            Err(e) => {
                mismatches.push(format!("instance {i}: {e}"));
                continue;
            }
        };
        let got: BTreeSet<&str> = listed.iter().filter_map(|o| o["id"].as_str()).collect();
        let missing: Vec<&&str> = want.difference(&got).collect();
        let extra: Vec<&&str> = got.difference(&want).collect();
        if !missing.is_empty() || !extra.is_empty() {
            mismatches.push(format!(
                "instance {i}: {method} lists {} of {} acknowledged (missing {:?}), and {} more \
                 ({:?})",
                want.len() - missing.len(),
                want.len(),
                missing.iter().take(NAMED).collect::<Vec<_>>(),
                extra.len(),
                extra.iter().take(NAMED).collect::<Vec<_>>(),
            ));
        }
    }
    ReadBack {
        instances: clients.len(),
        expected: want.len(),
        mismatches,
    }
}

/// Summed store-commit seconds and count over `apis`.
async fn commits(apis: &[SocketAddr]) -> (f64, f64) {
    let mut sum = (0.0, 0.0);
    for api in apis {
        let m = metrics::read_names(*api, COMMIT_METRICS).await;
        sum.0 += m.get(COMMIT_METRICS[0]).copied().unwrap_or(0.0);
        sum.1 += m.get(COMMIT_METRICS[1]).copied().unwrap_or(0.0);
    }
    sum
}
