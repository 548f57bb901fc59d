//! Packets as a receiver saw them: tcpdump inside a namespace while something happens, so
//! tests assert on what arrived, not on what weftd intended.

use std::process::{Command, Stdio};
use std::time::Duration;

use integration::lab::Vm;

/// Where to listen: an interface in a namespace.
pub struct Tap<'a> {
    pub netns: &'a str,
    pub iface: &'a str,
    /// Only packets arriving on the interface (`-Q in`).
    pub inbound_only: bool,
    /// Print link-level headers (`-e`: MACs, 802.1Q tags).
    pub link: bool,
}

/// Runs `during` while tcpdump listens on every tap with `filter`; returns what each saw,
/// one line per packet, in the taps' order.
pub fn capture_on(taps: &[Tap<'_>], filter: &str, during: impl FnOnce()) -> Vec<String> {
    let dumps: Vec<_> = taps
        .iter()
        .map(|t| {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", t.netns, "timeout", "20"])
                .args(["tcpdump", "-n", "-l", "-i", t.iface]);
            if t.inbound_only {
                cmd.args(["-Q", "in"]);
            }
            if t.link {
                cmd.arg("-e");
            }
            cmd.arg(filter)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("tcpdump")
        })
        .collect();
    // tcpdump says "listening on ..." once its filter is attached; give all of them time.
    std::thread::sleep(Duration::from_millis(1500));
    during();
    std::thread::sleep(Duration::from_millis(500));
    dumps
        .into_iter()
        .map(|child| {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let out = child.wait_with_output().expect("tcpdump output");
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect()
}

/// [`capture_on`] each VM's eth0, inbound only; returns (VM name, what it saw).
pub fn capture_inbound_each(
    vms: &[&Vm],
    filter: &str,
    link: bool,
    during: impl FnOnce(),
) -> Vec<(String, String)> {
    let netns: Vec<String> = vms.iter().map(|vm| vm.netns()).collect();
    let taps: Vec<Tap<'_>> = netns
        .iter()
        .map(|ns| Tap {
            netns: ns,
            iface: "eth0",
            inbound_only: true,
            link,
        })
        .collect();
    let seen = capture_on(&taps, filter, during);
    vms.iter()
        .map(|vm| vm.name().to_string())
        .zip(seen)
        .collect()
}

/// [`capture_inbound_each`] for one VM, without link-level headers.
pub fn capture_inbound(vm: &Vm, filter: &str, during: impl FnOnce()) -> String {
    capture_inbound_each(&[vm], filter, false, during)
        .pop()
        .map(|(_, s)| s)
        .unwrap_or_default()
}
