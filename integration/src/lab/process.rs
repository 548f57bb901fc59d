//! Stopping processes the lab started, by PID only, and only after checking that the PID
//! still belongs to the lab: every OVS daemon is started with `OVS_RUNDIR=<its private run
//! dir>` in its environment, so `/proc/<pid>/environ` proves ownership even if the daemon
//! died and the PID was reused by someone else.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::naming::pid_alive;

/// Whether `pid` is a live process started with `OVS_RUNDIR=rundir`.
pub(crate) fn owned_by(pid: u32, rundir: &Path) -> bool {
    if !pid_alive(pid) {
        return false;
    }
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let want = format!("OVS_RUNDIR={}", rundir.display());
    environ
        .split(|b| *b == 0)
        .any(|entry| entry == want.as_bytes())
}

pub(crate) fn signal(pid: u32, sig: Signal) {
    if let Ok(raw) = i32::try_from(pid)
        && raw > 0
    {
        let _ = kill(Pid::from_raw(raw), sig);
    }
}

/// SIGTERM every process in `pids`, wait up to `grace` for all of them, then SIGKILL the
/// survivors that `still_ours` confirms, and wait for those too. Parallel on purpose:
/// ovsdb-server can take a couple of seconds to exit, and a lab has many.
pub(crate) fn terminate_all(pids: &[u32], grace: Duration, still_ours: impl Fn(u32) -> bool) {
    for &pid in pids {
        signal(pid, Signal::SIGTERM);
    }
    if wait_gone(pids, grace) {
        return;
    }
    for &pid in pids {
        if still_ours(pid) {
            signal(pid, Signal::SIGKILL);
        }
    }
    wait_gone(pids, Duration::from_secs(5));
}

/// SIGKILL (a crash, not a shutdown) and wait until the processes are gone.
pub(crate) fn kill_all(pids: &[u32]) {
    for &pid in pids {
        signal(pid, Signal::SIGKILL);
    }
    wait_gone(pids, Duration::from_secs(5));
}

/// Polls until none of `pids` is alive; false on timeout.
pub(crate) fn wait_gone(pids: &[u32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pids.iter().all(|&p| !pid_alive(p)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads a pidfile written by an OVS daemon (`--pidfile`).
pub(crate) fn read_pidfile(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
