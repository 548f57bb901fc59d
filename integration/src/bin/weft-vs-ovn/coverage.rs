//! `--coverage`: what a control plane makes the hypervisors' OVS do over a window, as the
//! difference of `ovs-appctl coverage/show` totals (vswitchd's and ovsdb-server's,
//! summed over the hypervisors). Unlike CPU time these counts do not depend on how
//! loaded the machine is (bridge reconfigurations, flow_mods, monitor updates sent,
//! poll-loop wake-ups), so they say why one plane costs the hypervisors more.

use std::collections::BTreeMap;

use integration::lab::Hypervisor;

/// Counter totals summed over hypervisors, keyed `vswitchd:NAME` / `ovsdb-server:NAME`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coverage(BTreeMap<String, u64>);

impl Coverage {
    /// Reads every hypervisor's two daemons; a daemon that does not answer adds nothing.
    pub fn read(hvs: &[Hypervisor]) -> Self {
        let mut totals = BTreeMap::new();
        for hv in hvs {
            let daemons = [
                ("vswitchd", hv.appctl(["coverage/show"])),
                ("ovsdb-server", hv.appctl_ovsdb(["coverage/show"])),
            ];
            for (daemon, out) in daemons {
                for (name, n) in parse(&out.unwrap_or_default()) {
                    *totals.entry(format!("{daemon}:{name}")).or_insert(0) += n;
                }
            }
        }
        Coverage(totals)
    }

    /// The counters that grew from `before` to `self`, largest first.
    pub fn since(&self, before: &Coverage) -> Vec<(String, u64)> {
        let mut d: Vec<(String, u64)> = self
            .0
            .iter()
            .filter_map(|(k, v)| {
                let grown = v.saturating_sub(before.0.get(k).copied().unwrap_or(0));
                (grown > 0).then(|| (k.clone(), grown))
            })
            .collect();
        d.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        d
    }
}

/// `NAME  1.0/sec  0.5/sec  0.1/sec   total: 42` lines of `coverage/show`.
fn parse(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let (head, total) = l.split_once("total:")?;
            let name = head.split_whitespace().next()?;
            Some((name.to_owned(), total.trim().parse().ok()?))
        })
        .collect()
}

/// Prints the counters that grew over a window, one line each.
pub fn report(plane: &str, window: &str, grown: &[(String, u64)]) {
    eprintln!("[{plane}] coverage over {window} (summed over hypervisors):");
    for (name, n) in grown {
        eprintln!("[{plane}]   {name:<48} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_totals_and_diffs() {
        let text = "Event coverage, avg rate over last: 5 seconds, last minute, last hour,  hash=1c4b8d29:\n\
bridge_reconfigure         0.0/sec     0.017/sec        0.0003/sec   total: 3\n\
ofproto_flush              0.0/sec     0.000/sec        0.0000/sec   total: 1\n\
123 events never hit\n";
        assert_eq!(
            parse(text),
            vec![
                ("bridge_reconfigure".to_owned(), 3),
                ("ofproto_flush".to_owned(), 1)
            ]
        );
        let a = Coverage(BTreeMap::from([("x".into(), 1), ("y".into(), 5)]));
        let b = Coverage(BTreeMap::from([
            ("x".into(), 4),
            ("y".into(), 5),
            ("z".into(), 9),
        ]));
        assert_eq!(b.since(&a), vec![("z".into(), 9), ("x".into(), 3)]);
    }
}
