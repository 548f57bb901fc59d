//! What each instance says about its own work: a few counters read from its `GET
//! /metrics` (Prometheus text), to tell compiling for owned hypervisors apart from the
//! work every instance does for all of them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Counters read, summed over their labels.
pub const READ: &[&str] = &[
    "weft_nodes_recompiled_total",
    "weft_compile_seconds_sum",
    "weft_compile_seconds_count",
];

/// The [`READ`] counters of the instance whose API is at `api`; empty when it does not
/// answer within 10 s.
pub async fn read(api: SocketAddr) -> BTreeMap<String, f64> {
    read_names(api, READ).await
}

/// The samples named in `names` (each summed over its labels) of the instance whose API
/// is at `api`; empty when it does not answer within 10 s.
pub async fn read_names(api: SocketAddr, names: &[&str]) -> BTreeMap<String, f64> {
    match fetch(api).await {
        Some(text) => parse(&text, names),
        None => BTreeMap::new(),
    }
}

/// The Prometheus text a server (weftd's API, or an etcd member's client port) serves
/// at `GET /metrics`; None when it does not answer within 10 s.
pub async fn fetch(addr: SocketAddr) -> Option<String> {
    let get = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await
            .ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).await.ok()?;
        Some(body)
    };
    tokio::time::timeout(Duration::from_secs(10), get)
        .await
        .ok()
        .flatten()
}

fn parse(text: &str, names: &[&str]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = name.split('{').next().unwrap_or(name).trim();
        if let (true, Ok(v)) = (names.contains(&name), value.trim().parse::<f64>()) {
            *out.entry(name.to_owned()).or_insert(0.0) += v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_a_counter_over_labels_and_skips_others() {
        let m = super::parse(
            "# TYPE x counter\nweft_nodes_recompiled_total{reason=\"a\"} 3\n\
             weft_nodes_recompiled_total{reason=\"b\"} 4\nweft_other 9\nweft_compile_seconds_sum 1.5\n",
            super::READ,
        );
        assert_eq!(m.get("weft_nodes_recompiled_total"), Some(&7.0));
        assert_eq!(m.get("weft_compile_seconds_sum"), Some(&1.5));
        assert_eq!(m.get("weft_other"), None);
    }
}
