//! The one error type of the lab harness. Every variant names the thing that failed (the
//! command line, the path, the interface) so a failing end-to-end test explains itself.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while building, driving or tearing down a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Namespaces, veths and OVS daemons need root. Tests must fail (not skip) here.
    #[error(
        "the OVS lab needs root (effective uid is {euid}); run the tests as root, as scripts/test.sh does in CI"
    )]
    NotRoot {
        /// The effective uid we found.
        euid: u32,
    },
    /// A program the lab drives is not installed.
    #[error(
        "required program `{program}` is not in PATH; install it with: apt-get install {package}"
    )]
    MissingProgram {
        /// Program name looked up in `PATH`.
        program: &'static str,
        /// Debian package that provides it.
        package: &'static str,
    },
    /// The OVSDB schema file is missing (openvswitch-common not installed?).
    #[error("OVS schema {path} is missing; install it with: apt-get install openvswitch-common")]
    MissingSchema {
        /// Where we looked.
        path: PathBuf,
    },
    /// A command could not be started at all.
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The full command line.
        command: String,
        /// Why `exec` failed.
        source: std::io::Error,
    },
    /// A command ran and exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The full command line.
        command: String,
        /// Exit status as printed by std.
        status: String,
        /// Its standard error (trimmed, bounded).
        stderr: String,
    },
    /// A file system operation on the lab's own files failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What we were doing (`create`, `read`, ...).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An argument given to the harness is unusable.
    #[error("invalid {what} `{value}`: {reason}")]
    Invalid {
        /// Which argument.
        what: &'static str,
        /// The offending value.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The named VM does not exist in this lab.
    #[error("no VM named `{0}` in this lab")]
    UnknownVm(String),
    /// A VM with that name already exists in this lab.
    #[error("a VM named `{0}` already exists in this lab")]
    DuplicateVm(String),
    /// The hypervisor does not belong to the lab the VM lives in.
    #[error("hypervisor `{hypervisor}` belongs to lab {hv_lab}, not to lab {vm_lab}")]
    ForeignHypervisor {
        /// Name of the hypervisor.
        hypervisor: String,
        /// Lab id of the hypervisor.
        hv_lab: String,
        /// Lab id of the VM.
        vm_lab: String,
    },
    /// A polled condition did not become true in time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// What we waited for.
        what: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// Every candidate underlay subnet is taken by a live lab or by the host.
    #[error("no free underlay subnet 10.K.0.0/24 for K in {first}..={last}")]
    NoFreeSubnet {
        /// First K tried.
        first: u8,
        /// Last K tried.
        last: u8,
    },
    /// A tool printed something the harness could not understand.
    #[error("could not parse the output of `{command}`: {reason}: {output}")]
    Parse {
        /// The command whose output this was.
        command: String,
        /// What was wrong.
        reason: String,
        /// The output (bounded).
        output: String,
    },
    /// OVS accepted a port but could not open it (`ovs-vsctl` exits 0 in that case).
    #[error(
        "interface `{interface}` on {hypervisor} did not come up: ofport {ofport:?}, error {error:?}"
    )]
    InterfaceFailed {
        /// Hypervisor name.
        hypervisor: String,
        /// Interface name.
        interface: String,
        /// `Interface.ofport` as read back.
        ofport: Option<i64>,
        /// `Interface.error` as read back.
        error: Option<String>,
    },
    /// A daemon that should be running is not.
    #[error("{daemon} of {hypervisor} is not running")]
    DaemonDown {
        /// Hypervisor name.
        hypervisor: String,
        /// `ovsdb-server` or `ovs-vswitchd`.
        daemon: &'static str,
    },
    /// A helper thread panicked (a bug in the harness or in a test closure).
    #[error("helper thread for {what} panicked")]
    ThreadPanicked {
        /// What the thread was doing.
        what: String,
    },
}

/// Shorthand used throughout the harness.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

/// Bounds text we put into errors so a runaway tool cannot make messages huge.
pub(crate) fn bounded(text: &str) -> String {
    const LIMIT: usize = 4000;
    let text = text.trim();
    if text.len() <= LIMIT {
        return text.to_owned();
    }
    let mut cut = LIMIT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... ({} bytes total)", &text[..cut], text.len())
}
