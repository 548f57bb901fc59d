//! Packets as a receiver saw them: tcpdump inside a VM's namespace while something
//! happens, so tests assert on what arrived, not on what weftd intended.

use std::process::{Command, Stdio};
use std::time::Duration;

use integration::lab::Vm;

/// Runs `during` while tcpdump listens on each VM's eth0 (inbound only) with `filter`;
/// returns what each VM saw, one line per packet, with `-e` link-level headers when
/// `link` is set.
pub fn capture_inbound_each(
    vms: &[&Vm],
    filter: &str,
    link: bool,
    during: impl FnOnce(),
) -> Vec<(String, String)> {
    let dumps: Vec<_> = vms
        .iter()
        .map(|vm| {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &vm.netns(), "timeout", "10"])
                .args(["tcpdump", "-n", "-l", "-Q", "in", "-i", "eth0"]);
            if link {
                cmd.arg("-e");
            }
            let child = cmd
                .arg(filter)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("tcpdump");
            (vm.name().to_string(), child)
        })
        .collect();
    // tcpdump says "listening on eth0" once its filter is attached; give all of them time.
    std::thread::sleep(Duration::from_millis(1500));
    during();
    std::thread::sleep(Duration::from_millis(500));
    dumps
        .into_iter()
        .map(|(name, child)| {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let out = child.wait_with_output().expect("tcpdump output");
            (name, String::from_utf8_lossy(&out.stdout).into_owned())
        })
        .collect()
}

/// [`capture_inbound_each`] for one VM.
pub fn capture_inbound(vm: &Vm, filter: &str, during: impl FnOnce()) -> String {
    capture_inbound_each(&[vm], filter, false, during)
        .pop()
        .map(|(_, s)| s)
        .unwrap_or_default()
}
