//! A passive observer of one hypervisor's `Interface` table: `ovsdb-client monitor` on one
//! long-lived connection, so that waiting for "installed" costs the hypervisor's
//! ovsdb-server one update per change (the same for both planes) instead of a polling
//! `ovs-vsctl` every millisecond, which would be counted in the hypervisors' CPU rows.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use integration::lab::Hypervisor;
use serde_json::Value;

/// Interface name → whether its `external_ids` carry `key=true`, as last reported.
type State = Arc<Mutex<HashMap<String, bool>>>;

pub struct Watch {
    child: Child,
    state: State,
    seen_initial: Arc<Mutex<bool>>,
    hv: String,
}

impl Watch {
    /// Starts monitoring `hv` for `key` and returns once the initial rows are in.
    pub fn start(hv: &Hypervisor, key: &str) -> Result<Self> {
        let mut child = Command::new("ovsdb-client")
            .args(["--format=json", "monitor", &hv.db_target(), "Open_vSwitch"])
            .args(["Interface", "name,external_ids"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn ovsdb-client monitor")?;
        let out = child.stdout.take().context("monitor stdout")?;
        let state = State::default();
        let seen_initial = Arc::new(Mutex::new(false));
        let (st, seen, key) = (state.clone(), seen_initial.clone(), key.to_string());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                apply(&v, &key, &mut st.lock().unwrap_or_else(|e| e.into_inner()));
                *seen.lock().unwrap_or_else(|e| e.into_inner()) = true;
            }
        });
        let w = Watch {
            child,
            state,
            seen_initial,
            hv: hv.name().to_string(),
        };
        let t = Instant::now();
        while !*w.seen_initial.lock().unwrap_or_else(|e| e.into_inner()) {
            if t.elapsed() > Duration::from_secs(10) {
                bail!("ovsdb-client monitor on {} sent nothing", w.hv);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(w)
    }

    /// Whether every one of `names` is installed.
    pub fn all_installed(&self, names: &[String]) -> bool {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        names.iter().all(|n| st.get(n).copied().unwrap_or(false))
    }

    /// Waits (checking every 1 ms) until `name` is installed.
    pub fn wait(&self, name: &str, timeout: Duration) -> Result<()> {
        let names = [name.to_string()];
        let t = Instant::now();
        while !self.all_installed(&names) {
            if t.elapsed() > timeout {
                bail!("{name} on {} not installed within {timeout:?}", self.hv);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Applies one `ovsdb-client --format=json monitor` update: rows
/// `[uuid, action, name, external_ids]`; "initial"/"insert"/"new" carry the whole row.
fn apply(update: &Value, key: &str, st: &mut HashMap<String, bool>) {
    let Some(rows) = update.get("data").and_then(Value::as_array) else {
        return;
    };
    for row in rows {
        let (Some(action), Some(name)) = (
            row.get(1).and_then(Value::as_str),
            row.get(2).and_then(Value::as_str),
        ) else {
            continue;
        };
        match action {
            "initial" | "insert" | "new" => {
                let installed = row
                    .get(3)
                    .and_then(|m| m.get(1))
                    .and_then(Value::as_array)
                    .is_some_and(|pairs| {
                        pairs.iter().any(|p| {
                            p.get(0).and_then(Value::as_str) == Some(key)
                                && p.get(1).and_then(Value::as_str) == Some("true")
                        })
                    });
                st.insert(name.to_string(), installed);
            }
            "delete" => {
                st.remove(name);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_the_key_through_updates() {
        let mut st = HashMap::new();
        let lines = [
            r#"{"data":[["u1","insert","p1",["map",[["iface-id","p1"]]]]],"headings":[]}"#,
            r#"{"data":[["u1","old",null,["map",[]]],["","new","p1",["map",[["iface-id","p1"],["ovn-installed","true"]]]]],"headings":[]}"#,
        ];
        apply(
            &serde_json::from_str(lines[0]).unwrap(),
            "ovn-installed",
            &mut st,
        );
        assert_eq!(st.get("p1"), Some(&false));
        apply(
            &serde_json::from_str(lines[1]).unwrap(),
            "ovn-installed",
            &mut st,
        );
        assert_eq!(st.get("p1"), Some(&true));
        let del = r#"{"data":[["u1","delete","p1",["map",[]]]],"headings":[]}"#;
        apply(
            &serde_json::from_str(del).unwrap(),
            "ovn-installed",
            &mut st,
        );
        assert_eq!(st.get("p1"), None);
    }
}
