//! Running the external tools the lab drives (`ip`, `ovs-*`, `ethtool`, `sysctl`, `ping`).
//! One place turns a non-zero exit into a [`LabError::Command`] that carries the full
//! command line and stderr, so every failure in a test log says exactly what was run.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use super::error::{LabError, Result, bounded};

/// A command line to run, optionally inside a network namespace and with extra environment;
/// failures carry the full command line and stderr.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    netns: Option<String>,
    env: Vec<(OsString, OsString)>,
}

impl Cmd {
    /// `program`, looked up in the `PATH` of [`sbin_path`].
    pub fn new(program: impl Into<OsString>) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            netns: None,
            env: Vec::new(),
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Run inside `netns` (through `ip netns exec`, which `exec`s the program, so the PID
    /// of the spawned child is the program's own PID).
    pub fn netns(mut self, netns: &str) -> Self {
        self.netns = Some(netns.to_owned());
        self
    }

    /// Adds environment variables (on top of the inherited ones).
    pub fn envs(mut self, env: &[(OsString, OsString)]) -> Self {
        self.env.extend(env.iter().cloned());
        self
    }

    /// The command line as a human reads it, for error messages.
    pub fn display(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(ns) = &self.netns {
            parts.push(format!("ip netns exec {ns}"));
        }
        parts.push(self.program.to_string_lossy().into_owned());
        parts.extend(self.args.iter().map(|a| a.to_string_lossy().into_owned()));
        parts.join(" ")
    }

    /// The `std::process::Command` this runs (for callers that spawn, pipe or time it).
    pub fn command(&self) -> Command {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        cmd.args(&self.args);
        cmd.env("PATH", sbin_path());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs to completion and returns the raw output whatever the exit status.
    pub fn output(&self) -> Result<Output> {
        self.command()
            .stdin(Stdio::null())
            .output()
            .map_err(|source| LabError::Spawn {
                command: self.display(),
                source,
            })
    }

    /// Runs to completion; a non-zero exit is an error. Returns stdout.
    pub fn run(&self) -> Result<String> {
        let out = self.output()?;
        if !out.status.success() {
            return Err(self.failed(&out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Builds the error for an unsuccessful `out`.
    pub fn failed(&self, out: &Output) -> LabError {
        let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if stderr.trim().is_empty() {
            stderr = String::from_utf8_lossy(&out.stdout).into_owned();
        }
        LabError::Command {
            command: self.display(),
            status: out.status.to_string(),
            stderr: bounded(&stderr),
        }
    }

    /// Starts in the background with stdout/stderr piped.
    pub fn spawn_piped(&self) -> Result<Child> {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| LabError::Spawn {
                command: self.display(),
                source,
            })
    }
}

/// Whether `program` resolves through the `PATH` the lab's children get (see
/// [`sbin_path`]), or is an existing absolute path.
pub fn in_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::split_paths(&sbin_path()).any(|dir| dir.join(program).is_file())
}

/// Makes sure `/usr/sbin` and `/sbin` are searched when we spawn tools: cargo test run
/// through `sudo` or a minimal CI shell often has a PATH without them.
pub fn sbin_path() -> OsString {
    let current = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<std::path::PathBuf> = std::env::split_paths(&current).collect();
    for extra in ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        if !dirs.iter().any(|d| d == Path::new(extra)) {
            dirs.push(extra.into());
        }
    }
    std::env::join_paths(dirs).unwrap_or(current)
}
