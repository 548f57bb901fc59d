//! Turning measured phases into numbers: percentiles per phase, the table `weft-api-bench`
//! prints (one row per backend and operation, then etcd against redb) and its JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Backend, BackendReport, Phase};

/// Latency percentiles and throughput of one phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Acknowledged writes per second of the phase's wall time.
    pub writes_per_s: f64,
    /// Mean duration of one store commit during the phase, if any was made.
    pub commit_ms: Option<f64>,
}

impl Summary {
    pub fn of(phase: &Phase) -> Summary {
        let mut sorted = phase.latencies.clone();
        sorted.sort();
        let secs = phase.wall.as_secs_f64();
        Summary {
            p50_ms: ms(percentile(&sorted, 0.50)),
            p95_ms: ms(percentile(&sorted, 0.95)),
            p99_ms: ms(percentile(&sorted, 0.99)),
            max_ms: ms(sorted.last().copied().unwrap_or_default()),
            writes_per_s: if secs > 0.0 {
                sorted.len() as f64 / secs
            } else {
                0.0
            },
            commit_ms: (phase.commits > 0)
                .then(|| phase.commit_seconds * 1000.0 / phase.commits as f64),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values (zero when empty).
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The table: one row per backend and phase, then each etcd backend's ratio to redb.
pub fn table(reports: &[BackendReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:<26} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>10} {:>15}",
        "backend",
        "operation",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "writes/s",
        "commits",
        "commit ms",
        "etcd txn/range"
    );
    for r in reports {
        for p in &r.phases {
            let s = Summary::of(p);
            let commit = s
                .commit_ms
                .map(|c| format!("{c:.2}"))
                .unwrap_or_else(|| "-".into());
            let rpcs = match (p.etcd_txns, p.etcd_ranges) {
                (Some(t), Some(r)) => format!("{t}/{r}"),
                _ => "-".into(),
            };
            let _ = writeln!(
                out,
                "{:<22} {:<26} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.0} {:>8} {:>10} {:>15}",
                r.backend.label(),
                p.name,
                s.p50_ms,
                s.p95_ms,
                s.p99_ms,
                s.max_ms,
                s.writes_per_s,
                p.commits,
                commit,
                rpcs
            );
        }
        if r.replans > 0 {
            let _ = writeln!(
                out,
                "{:<22} commits planned again after another instance's: {}",
                r.backend.label(),
                r.replans
            );
        }
    }
    let Some(redb) = reports.iter().find(|r| r.backend == Backend::Redb) else {
        return out;
    };
    let _ = writeln!(out, "\nratio to redb (p50 latency ×, writes/s ×):");
    for r in reports.iter().filter(|r| r.backend != Backend::Redb) {
        for p in &r.phases {
            let Some(base) = redb.phases.iter().find(|b| b.name == p.name) else {
                continue;
            };
            let (s, b) = (Summary::of(p), Summary::of(base));
            let _ = writeln!(
                out,
                "{:<22} {:<26} p50 {:>6.1}×   writes/s {:>5.2}×",
                r.backend.label(),
                p.name,
                ratio(s.p50_ms, b.p50_ms),
                ratio(s.writes_per_s, b.writes_per_s)
            );
        }
    }
    out
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

/// Everything measured, as JSON.
pub fn json(reports: &[BackendReport]) -> Value {
    Value::Array(
        reports
            .iter()
            .map(|r| {
                json!({
                    "backend": r.backend.label(),
                    "replans": r.replans,
                    "problems": r.problems(),
                    "phases": r.phases.iter().map(|p| {
                        let s = Summary::of(p);
                        json!({
                            "operation": p.name,
                            "clients": p.clients,
                            "sent": p.sent,
                            "acknowledged": p.latencies.len(),
                            "p50_ms": s.p50_ms,
                            "p95_ms": s.p95_ms,
                            "p99_ms": s.p99_ms,
                            "max_ms": s.max_ms,
                            "writes_per_s": s.writes_per_s,
                            "wall_s": p.wall.as_secs_f64(),
                            "store_commits": p.commits,
                            "store_commit_mean_ms": s.commit_ms,
                            "etcd_txns": p.etcd_txns,
                            "etcd_ranges": p.etcd_ranges,
                            "read_back_instances": p.read_back.instances,
                            "read_back_expected": p.read_back.expected,
                        })
                    }).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&v, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&v[..1], 0.95), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
