//! A CPU hog: busy-looping child processes that compete with weftd and the simulated nodes
//! for the CPU, so that a test or a bench can show what weftd does on a loaded machine
//! (late keepalives, slow resyncs) rather than only on an idle one.
//!
//! Each busy loop is its own process (`sh -c 'while :; do :; done'`), so the scheduler
//! treats it like any other program on the machine; [`CpuHog`] kills each one by its PID
//! when dropped, also when a test panics.

use std::process::{Child, Command, Stdio};

use anyhow::Context;

/// Running busy loops; stopped (by PID) on drop.
#[derive(Debug)]
pub struct CpuHog {
    children: Vec<Child>,
}

impl CpuHog {
    /// Starts `procs` busy loops.
    pub fn start(procs: usize) -> anyhow::Result<CpuHog> {
        let mut hog = CpuHog {
            children: Vec::with_capacity(procs),
        };
        for _ in 0..procs {
            // On an error the ones already started are stopped by `hog`'s drop.
            let child = Command::new("sh")
                .arg("-c")
                .arg("while :; do :; done")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting a busy loop (sh)")?;
            hog.children.push(child);
        }
        Ok(hog)
    }

    /// As many busy loops as the machine has cores.
    pub fn per_core() -> anyhow::Result<CpuHog> {
        Self::start(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// The busy loops' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Stops every busy loop now (as dropping does).
    pub fn stop(mut self) {
        self.kill_all();
    }

    fn kill_all(&mut self) {
        for mut child in self.children.drain(..) {
            // `Child::kill` signals this child's own PID; an already exited one is fine.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        self.kill_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_loops_run_until_stopped() {
        let hog = CpuHog::start(2).expect("sh");
        let pids = hog.pids();
        assert_eq!(pids.len(), 2);
        for pid in &pids {
            assert!(
                std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "busy loop {pid} not running"
            );
        }
        hog.stop();
        for pid in &pids {
            // Reaped: no zombie left behind either.
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "busy loop {pid} still there after stop"
            );
        }
    }
}
