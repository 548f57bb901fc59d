//! `ping` from inside a VM, with its output turned into numbers: a bounded ping
//! ([`PingReport`]) and a continuous 10 ms ping that counts lost replies while a test
//! disturbs the network ([`ContinuousPing`]), e.g. to prove a controller restart never
//! stops forwarding.

use std::io::Read;
use std::net::IpAddr;
use std::process::Child;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::cmd::Cmd;
use super::error::{LabError, Result, bounded};

/// What one `ping` run reported.
#[derive(Debug, Clone, PartialEq)]
pub struct PingReport {
    /// Echo requests sent.
    pub transmitted: u32,
    /// Echo replies received.
    pub received: u32,
    /// Average round-trip time, when at least one reply came back.
    pub rtt_avg: Option<Duration>,
}

impl PingReport {
    /// Requests that got no reply.
    pub fn lost(&self) -> u32 {
        self.transmitted.saturating_sub(self.received)
    }

    /// True when every request was answered (and at least one was sent).
    pub fn all_received(&self) -> bool {
        self.transmitted > 0 && self.received == self.transmitted
    }

    /// Parses iputils `ping` output (the summary lines).
    pub(crate) fn parse(command: &str, output: &str) -> Result<Self> {
        let err = |reason: &str| LabError::Parse {
            command: command.to_owned(),
            reason: reason.to_owned(),
            output: bounded(output),
        };
        // "3 packets transmitted, 2 received, +1 errors, 33.3333% packet loss, time 2003ms"
        let line = output
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .ok_or_else(|| err("no `packets transmitted` summary"))?;
        let mut transmitted = None;
        let mut received = None;
        for part in line.split(',') {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            match what {
                "packets" => transmitted = n.parse().ok(),
                "received" => received = n.parse().ok(),
                _ => {}
            }
        }
        let rtt_avg = output
            .lines()
            .find_map(|l| l.strip_prefix("rtt min/avg/max/mdev = "))
            .and_then(|v| v.split('/').nth(1))
            .and_then(|avg| avg.parse::<f64>().ok())
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .map(|ms| Duration::from_secs_f64(ms / 1000.0));
        Ok(PingReport {
            transmitted: transmitted.ok_or_else(|| err("no transmitted count"))?,
            received: received.ok_or_else(|| err("no received count"))?,
            rtt_avg,
        })
    }
}

/// What a [`ContinuousPing`] saw between start and stop.
#[derive(Debug, Clone, PartialEq)]
pub struct ContinuousPingReport {
    /// The summary `ping` printed when interrupted.
    pub summary: PingReport,
    /// Longest run of consecutive unanswered sequence numbers between the first and the
    /// last answered one: multiplied by the interval, an estimate of the longest outage.
    pub longest_gap: u32,
    /// The interval the ping ran at.
    pub interval: Duration,
    /// Each run of unanswered requests between answered ones: (first `icmp_seq`, how
    /// many, the Unix time of the last reply before it). With the time, a lost packet can
    /// be matched with what the control plane logged then.
    pub holes: Vec<(u32, u32, Option<f64>)>,
    /// Requests after the last answered one that were sent less than [`REPLY_WAIT`]
    /// before the stop: their replies could still have come (on a loaded machine a reply
    /// can take longer than the interval, so more than one may be outstanding). `ping`
    /// counts them as transmitted and unanswered all the same.
    pub in_flight: u32,
    /// The first and last `icmp_seq` answered (for failure messages: requests before the
    /// first one are lost, not in flight).
    pub answered_range: Option<(u32, u32)>,
}

/// How long `ping` waits for a reply (`-W 1`): a request sent less than this before the
/// stop was not given its chance.
pub const REPLY_WAIT: Duration = Duration::from_secs(1);

impl ContinuousPingReport {
    /// The report of a run whose summary and reply lines are in `output`, interrupted at
    /// `stopped_at` (Unix seconds).
    fn new(summary: PingReport, output: &str, interval: Duration, stopped_at: f64) -> Self {
        let answered = answered_seqs(output);
        let times = reply_times(output);
        let holes = answered
            .windows(2)
            .filter(|w| w[1] > w[0] + 1)
            .map(|w| (w[0] + 1, w[1] - w[0] - 1, times.get(&w[0]).copied()))
            .collect();
        // ping numbers its requests 1, 2, ...: the last one sent is `transmitted`. Each
        // request after the last answered one was sent about an interval after the one
        // before it (estimated from that reply's arrival, which only makes the estimate
        // later, so more generous to the request).
        let last = answered.last().copied();
        let in_flight = match last.and_then(|l| Some((l, *times.get(&l)?))) {
            Some((l, t)) => (l.saturating_add(1)..=summary.transmitted)
                .filter(|k| {
                    let sent = t + f64::from(k - l) * interval.as_secs_f64();
                    stopped_at - sent < REPLY_WAIT.as_secs_f64()
                })
                .count() as u32,
            None => u32::from(summary.transmitted > 0 && last != Some(summary.transmitted)),
        };
        ContinuousPingReport {
            summary,
            longest_gap: longest_gap(&answered),
            holes,
            interval,
            in_flight,
            answered_range: answered.first().copied().zip(last),
        }
    }

    /// Requests that got no reply, not counting the one still in flight at the stop.
    pub fn lost(&self) -> u32 {
        self.summary.lost().saturating_sub(self.in_flight)
    }

    /// Estimated longest forwarding outage (`longest_gap` × interval).
    pub fn longest_outage(&self) -> Duration {
        self.interval * self.longest_gap
    }
}

/// A `ping` running in the background inside a VM. Stop it with [`ContinuousPing::stop`];
/// dropping it kills the process.
#[derive(Debug)]
pub struct ContinuousPing {
    child: Option<Child>,
    reader: Option<JoinHandle<String>>,
    command: String,
    interval: Duration,
}

impl ContinuousPing {
    pub(crate) fn start(netns: &str, dst: IpAddr, interval: Duration) -> Result<Self> {
        let secs = format!("{:.3}", interval.as_secs_f64().max(0.002));
        let cmd = Cmd::new("ping")
            .args(["-n", "-D", "-i", &secs, "-W", "1"])
            .arg(dst.to_string())
            .netns(netns);
        let mut child = cmd.spawn_piped()?;
        let stdout = child.stdout.take();
        // Drain stdout as it comes so a long run never blocks on a full pipe. Reply lines
        // are ~60 bytes: at 10 ms that is ~6 KiB/s, bounded by how long the test runs.
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut out) = stdout {
                // 64 MiB is days of 10 ms replies; past that, keep draining without
                // storing (so ping never blocks on a full pipe); the summary is then lost,
                // which `stop` reports as a parse error.
                let _ = (&mut out).take(64 << 20).read_to_string(&mut text);
                let _ = std::io::copy(&mut out, &mut std::io::sink());
            }
            text
        });
        Ok(ContinuousPing {
            child: Some(child),
            reader: Some(reader),
            command: cmd.display(),
            interval,
        })
    }

    /// Interrupts `ping` (SIGINT, so it prints its summary) and returns the counts.
    pub fn stop(mut self) -> Result<ContinuousPingReport> {
        let Some(mut child) = self.child.take() else {
            return Err(LabError::Parse {
                command: self.command.clone(),
                reason: "already stopped".into(),
                output: String::new(),
            });
        };
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        let stopped_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let _ = kill(pid, Signal::SIGINT);
        let status = child.wait().map_err(|source| LabError::Spawn {
            command: self.command.clone(),
            source,
        })?;
        let text = match self.reader.take().map(JoinHandle::join) {
            Some(Ok(text)) => text,
            _ => {
                return Err(LabError::ThreadPanicked {
                    what: self.command.clone(),
                });
            }
        };
        let summary = PingReport::parse(&self.command, &text).map_err(|e| match e {
            LabError::Parse {
                command,
                reason,
                output,
            } => LabError::Parse {
                command,
                reason: format!("{reason} (ping exited {status})"),
                output,
            },
            other => other,
        })?;
        Ok(ContinuousPingReport::new(
            summary,
            &text,
            self.interval,
            stopped_at,
        ))
    }
}

impl Drop for ContinuousPing {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `icmp_seq` values that were answered, sorted, without duplicates.
fn answered_seqs(output: &str) -> Vec<u32> {
    let mut seqs: Vec<u32> = output
        .lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("icmp_seq="))
        })
        .filter_map(|s| s.parse().ok())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    seqs
}

/// `icmp_seq` -> when its reply arrived, from `ping -D`'s `[UNIX.TIME]` line prefix.
fn reply_times(output: &str) -> std::collections::BTreeMap<u32, f64> {
    output
        .lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(|l| {
            let t = l.strip_prefix('[')?.split(']').next()?.parse().ok()?;
            let seq = l
                .split_whitespace()
                .find_map(|w| w.strip_prefix("icmp_seq="))?
                .parse()
                .ok()?;
            Some((seq, t))
        })
        .collect()
}

/// Longest run of missing `icmp_seq` values between answered ones (`answered` sorted).
fn longest_gap(answered: &[u32]) -> u32 {
    answered
        .windows(2)
        .map(|w| w[1] - w[0] - 1)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_summary() {
        let out = "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n\
64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.101 ms\n\n\
--- 10.0.0.2 ping statistics ---\n\
3 packets transmitted, 2 received, +1 errors, 33.3333% packet loss, time 2003ms\n\
rtt min/avg/max/mdev = 0.047/0.250/0.087/0.016 ms\n";
        let r = PingReport::parse("ping", out).unwrap();
        assert_eq!((r.transmitted, r.received, r.lost()), (3, 2, 1));
        assert_eq!(r.rtt_avg, Some(Duration::from_micros(250)));
        assert!(!r.all_received());
        assert!(PingReport::parse("ping", "ping: connect: Network is unreachable").is_err());
    }

    #[test]
    fn finds_longest_gap() {
        let line = |s: u32| format!("64 bytes from 10.0.0.2: icmp_seq={s} ttl=64 time=0.1 ms\n");
        let out: String = [1, 2, 3, 7, 8, 10].iter().map(|&s| line(s)).collect();
        assert_eq!(longest_gap(&answered_seqs(&out)), 3);
        assert_eq!(longest_gap(&answered_seqs("")), 0);
    }

    #[test]
    fn holes_carry_the_time_of_the_reply_before_them() {
        let line = |s: u32| {
            format!(
                "[{}.5] 64 bytes from 10.0.0.2: icmp_seq={s} ttl=64 time=0.1 ms\n",
                100 + s
            )
        };
        let mut out: String = [1, 2, 5, 6].iter().map(|&s| line(s)).collect();
        out.push_str("6 packets transmitted, 4 received, 33% packet loss, time 50ms\n");
        let summary = PingReport::parse("ping", &out).unwrap();
        let r = ContinuousPingReport::new(summary, &out, Duration::from_millis(10), 106.6);
        assert_eq!(r.holes, vec![(3, 2, Some(102.5))]);
        assert_eq!((r.lost(), r.in_flight, r.longest_gap), (2, 0, 2));
    }

    #[test]
    fn requests_in_flight_at_the_stop_are_not_lost() {
        // Replies to seq s arrive at 100 + s/100 s (10 ms apart); `stop` is how long after
        // the last reply ping was interrupted.
        let report = |seqs: &[u32], transmitted: u32, stop: f64| {
            let mut out: String = seqs
                .iter()
                .map(|s| {
                    format!(
                        "[{:.3}] 64 bytes from 10.0.0.2: icmp_seq={s} ttl=64 time=0.1 ms\n",
                        100.0 + f64::from(*s) / 100.0
                    )
                })
                .collect();
            out.push_str(&format!(
                "{transmitted} packets transmitted, {} received, 0% packet loss, time 50ms\n",
                seqs.len()
            ));
            let summary = PingReport::parse("ping", &out).unwrap();
            let last = 100.0 + f64::from(*seqs.last().unwrap_or(&0)) / 100.0;
            ContinuousPingReport::new(summary, &out, Duration::from_millis(10), last + stop)
        };
        // The 5th request was sent just before SIGINT: in flight, nothing lost.
        assert_eq!(report(&[1, 2, 3, 4], 5, 0.015).lost(), 0);
        // A loaded machine: two requests outstanding at the stop.
        assert_eq!(report(&[1, 2, 3, 4], 6, 0.025).lost(), 0);
        // Unanswered for longer than ping waits for a reply: lost.
        assert_eq!(report(&[1, 2, 3], 5, 2.0).lost(), 2);
        // A hole is lost.
        assert_eq!(report(&[1, 2, 4, 5], 5, 0.005).lost(), 1);
        assert_eq!(report(&[1, 2, 3, 4, 5], 5, 0.005).lost(), 0);
        // Requests before the first reply are lost, whatever the stop.
        let r = report(&[3, 4, 5], 5, 0.005);
        assert_eq!((r.lost(), r.answered_range), (2, Some((3, 5))));
    }
}
