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
    /// With `read_each`: creations the next instance did not return right after the
    /// answer.
    pub stale_reads: Vec<String>,
    /// Store commits (weftd's `weft_store_commit_seconds`) during the phase, over all
    /// instances: how many, and their summed duration.
    pub commits: u64,
    pub commit_seconds: f64,
    /// etcd `Txn` and `Range` calls the members served during the phase (None on redb):
    /// how many round trips to etcd the writes cost, plus the instances' own
    /// background calls (ownership records).
    pub etcd_txns: Option<u64>,
    pub etcd_ranges: Option<u64>,
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
            self.stale_reads
                .iter()
                .map(|m| format!("{}: {m}", self.name)),
        );
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
    /// How to read the created object back by its id (method, parameter).
    get: Option<(&'static str, &'static str)>,
}

/// What each write returned, in order: the acknowledged answer or the error.
struct Timed {
    answers: Vec<Result<(Value, Duration), String>>,
    wall: Duration,
    /// Creations the next instance did not read back right after their answer.
    stale: Vec<String>,
}

/// Where a phase reads its counters: the instances' APIs and the etcd members' client
/// ports (none on redb).
pub struct Counters<'a> {
    pub apis: &'a [SocketAddr],
    pub etcd: &'a [SocketAddr],
}

/// Runs the phases on `clients` (one per instance).
pub async fn run(
    clients: &[HttpClient],
    apis: &Counters<'_>,
    writes: usize,
    concurrent: usize,
    read_each: bool,
) -> anyhow::Result<Vec<Phase>> {
    let k = clients.len().max(1);
    let mut phases = Vec::new();

    let jobs = (0..writes)
        .map(|j| Write {
            instance: j % k,
            method: "switch_create",
            params: json!({ "name": format!("bench-s{j}") }),
            get: Some(("switch_get", "switch")),
        })
        .collect();
    let (mut phase, switches) =
        timed_phase("switch_create", clients, apis, jobs, (1, read_each), "id").await;
    phase.read_back = read_back(clients, "switch_list", json!({}), &switches).await;
    phases.push(phase);

    let jobs = port_creates(writes, k, "bench-s0", 0);
    let (mut phase, ports) =
        timed_phase("port_create", clients, apis, jobs, (1, read_each), "id").await;
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
            get: None,
        })
        .collect();
    let (mut phase, deleted) =
        timed_phase("port_delete", clients, apis, jobs, (1, read_each), "ports").await;
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
        let (mut phase, ports) =
            timed_phase(&name, clients, apis, jobs, (concurrent, read_each), "id").await;
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
                get: Some(("port_get", "port")),
            }
        })
        .collect()
}

/// Runs `jobs` on `lanes` clients at once (reading each creation back at the next
/// instance when `read_each`) and returns the phase (read-back still empty) and the ids
/// the acknowledged answers name under `id_field` (a string, or an array of them for a
/// deletion).
async fn timed_phase(
    name: &str,
    clients: &[HttpClient],
    apis: &Counters<'_>,
    jobs: Vec<Write>,
    (lanes, read_each): (usize, bool),
    id_field: &str,
) -> (Phase, Vec<String>) {
    let sent = jobs.len();
    let before = commits(apis.apis).await;
    let rpcs_before = etcd_rpcs(apis.etcd).await;
    let timed = run_jobs(clients, jobs, lanes, read_each).await;
    let after = commits(apis.apis).await;
    let rpcs_after = etcd_rpcs(apis.etcd).await;
    let rpcs = rpcs_before
        .zip(rpcs_after)
        .map(|((t0, r0), (t1, r1))| (t1.saturating_sub(t0), r1.saturating_sub(r0)));
    let mut ids = Vec::new();
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for (j, answer) in timed.answers.into_iter().enumerate() {
        match answer {
            Ok((v, took)) => {
                let named: Vec<String> = match &v[id_field] {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect(),
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
        stale_reads: timed.stale,
        commits: (after.1 - before.1).max(0.0) as u64,
        commit_seconds: (after.0 - before.0).max(0.0),
        etcd_txns: rpcs.map(|r| r.0),
        etcd_ranges: rpcs.map(|r| r.1),
        read_back: ReadBack::default(),
    };
    (phase, ids)
}

/// Sends job `j` from lane `j mod lanes`, each lane one write at a time; with
/// `read_each`, each creation is read (untimed) at the next instance as soon as it is
/// answered.
async fn run_jobs(
    clients: &[HttpClient],
    jobs: Vec<Write>,
    lanes: usize,
    read_each: bool,
) -> Timed {
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
                let mut stale = Vec::new();
                for (j, w) in lane {
                    let Some(client) = clients.get(w.instance) else {
                        out.push((j, Err(format!("no instance {}", w.instance))));
                        continue;
                    };
                    let t = Instant::now();
                    let answer = call(client, w.method, &w.params).await;
                    let answer = answer.map(|v| (v, t.elapsed()));
                    if let (true, Ok((v, _)), Some(get)) = (read_each, &answer, w.get) {
                        let next = (w.instance + 1) % clients.len();
                        if let Err(e) = read_one(&clients[next], get, &v["id"]).await {
                            stale.push(format!("write {j}, read at instance {next}: {e}"));
                        }
                    }
                    out.push((j, answer));
                }
                (out, stale)
            })
        })
        .collect();
    let mut answers: Vec<Result<(Value, Duration), String>> =
        (0..n).map(|_| Err("not sent".to_string())).collect();
    let mut all_stale = Vec::new();
    for task in tasks {
        match task.await {
            Ok((out, stale)) => {
                for (j, a) in out {
                    answers[j] = a;
                }
                all_stale.extend(stale);
            }
            Err(e) => tracing::warn!(error = %e, "a client task failed"),
        }
    }
    Timed {
        answers,
        wall: started.elapsed(),
        stale: all_stale,
    }
}

/// Reads the object `id` with `get` (method, parameter) and checks the answer names it.
async fn read_one(
    client: &HttpClient,
    (method, param): (&str, &str),
    id: &Value,
) -> Result<(), String> {
    let v = call(client, method, &json!({ param: id })).await?;
    if &v["id"] == id {
        Ok(())
    } else {
        Err(format!("{method} answered {v}"))
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

/// `Txn` and `Range` calls served so far, summed over the etcd members at `members`
/// (their `grpc_server_handled_total`); None without members or when one does not answer.
async fn etcd_rpcs(members: &[SocketAddr]) -> Option<(u64, u64)> {
    if members.is_empty() {
        return None;
    }
    let mut sum = (0, 0);
    for m in members {
        let text = metrics::fetch(*m).await?;
        let (t, r) = grpc_handled(&text);
        sum.0 += t;
        sum.1 += r;
    }
    Some(sum)
}

/// Sums `grpc_server_handled_total` over codes for the `Txn` and `Range` methods.
fn grpc_handled(text: &str) -> (u64, u64) {
    let mut sum = (0, 0);
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("grpc_server_handled_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        if labels.contains("grpc_method=\"Txn\"") {
            sum.0 += v as u64;
        } else if labels.contains("grpc_method=\"Range\"") {
            sum.1 += v as u64;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_txn_and_range_calls_over_codes() {
        let text = "# HELP grpc_server_handled_total x\n\
            grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Txn\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 7\n\
            grpc_server_handled_total{grpc_code=\"Unavailable\",grpc_method=\"Txn\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 1\n\
            grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 3\n\
            grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Put\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 9\n\
            grpc_server_started_total{grpc_method=\"Txn\"} 100\n";
        assert_eq!(super::grpc_handled(text), (8, 3));
    }
}
