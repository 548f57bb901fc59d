//! Active connection targets (`tcp:IP[:PORT]`, `ssl:IP[:PORT]`), read as ovs-vswitchd and
//! ovsdb-server read them (`inet_parse_active` in OVS's lib/socket-util.c): a host in
//! brackets or not, a decimal port with or without leading zeros, a default port when
//! none is written.
//!
//! So several strings dial one endpoint. A manager that compares endpoints must treat
//! them as one, but ovs-vswitchd keys a bridge's controllers by the string: a Controller
//! row whose target is rewritten in another spelling is, to vswitchd, a controller
//! removed and a new one added, which it dials at once with a fresh backoff. [`respell`]
//! gives that other spelling, for a controller that wants a switch to dial it again now.

use std::net::{IpAddr, SocketAddr};

/// The port vswitchd dials when a controller target names none (OFP_PORT).
pub const DEFAULT_CONTROLLER_PORT: u16 = 6653;

/// The port ovsdb-server dials when a manager target names none.
pub const DEFAULT_MANAGER_PORT: u16 = 6640;

/// What an active target dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// `ssl:` rather than `tcp:`.
    pub tls: bool,
    pub addr: SocketAddr,
}

/// The endpoint an active target dials; `None` for passive (`ptcp:`, `punix:`) and unix
/// targets, host names, and anything vswitchd would refuse.
pub fn endpoint(target: &str, default_port: u16) -> Option<Endpoint> {
    let (tls, rest) = if let Some(r) = target.strip_prefix("tcp:") {
        (false, r)
    } else {
        (true, target.strip_prefix("ssl:")?)
    };
    // As OVS splits it: more than one colon outside brackets is a bare IPv6 address with
    // no port; otherwise the last such colon separates the port.
    let (mut depth, mut colons, mut last) = (0i32, 0, 0);
    for (i, c) in rest.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => (colons, last) = (colons + 1, i),
            _ => {}
        }
    }
    let (host, port) = match colons {
        1 => (&rest[..last], Some(&rest[last + 1..])),
        _ => (rest, None),
    };
    let host = unbracket(host);
    let port = match port.map(unbracket) {
        None | Some("") => default_port,
        Some(p) => decimal_port(p)?,
    };
    let ip: IpAddr = host.parse().ok()?;
    Some(Endpoint {
        tls,
        addr: SocketAddr::new(ip, port),
    })
}

/// Whether two targets dial the same endpoint (or, when either is not an active target
/// with an address, are the same string).
pub fn same_endpoint(a: &str, b: &str, default_port: u16) -> bool {
    // The common case, on every pass of a session: the row as Weft wrote it.
    if a == b {
        return true;
    }
    match (endpoint(a, default_port), endpoint(b, default_port)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The same endpoint in the other of two spellings: the canonical `scheme:IP:PORT`
/// (`[IPv6]:PORT`) and the same with the port written after a `0`. Every target maps to
/// one of the two and back, so a controller alternating them never drifts. `None` when
/// `target` is not an active target with an address.
pub fn respell(target: &str, default_port: u16) -> Option<String> {
    let e = endpoint(target, default_port)?;
    let scheme = if e.tls { "ssl" } else { "tcp" };
    let canonical = format!("{scheme}:{}", e.addr);
    if target != canonical {
        return Some(canonical);
    }
    let host = match e.addr.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    Some(format!("{scheme}:{host}:0{}", e.addr.port()))
}

fn unbracket(s: &str) -> &str {
    s.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s)
}

/// A port as `strtol(.., 10)` reads it, digits only: leading zeros allowed.
fn decimal_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = s.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    if digits.len() > 5 {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(target: &str) -> Option<SocketAddr> {
        endpoint(target, DEFAULT_MANAGER_PORT).map(|e| e.addr)
    }

    #[test]
    fn targets_name_the_address_they_dial() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(at("tcp:10.0.0.1:6641"), Some(a("10.0.0.1:6641")));
        assert_eq!(at("ssl:10.0.0.1"), Some(a("10.0.0.1:6640")));
        assert_eq!(at("tcp:[10.0.0.1]:6641"), Some(a("10.0.0.1:6641")));
        assert_eq!(at("tcp:10.0.0.1:06641"), Some(a("10.0.0.1:6641")));
        assert_eq!(at("tcp:[fd00::1]:6640"), Some(a("[fd00::1]:6640")));
        assert_eq!(at("tcp:[fd00::1]"), Some(a("[fd00::1]:6640")));
        assert_eq!(at("tcp:fd00::1"), Some(a("[fd00::1]:6640")));
        assert_eq!(at("ptcp:6640"), None);
        assert_eq!(at("punix:/run/db.sock"), None);
        assert_eq!(at("unix:/run/db.sock"), None);
        assert_eq!(at("tcp:controller.example:6640"), None);
        assert_eq!(at("tcp:10.0.0.1:notaport"), None);
        assert_eq!(at("tcp:10.0.0.1:65536"), None);
        assert_eq!(at("tcp:10.0.0.1:+80"), None);
        assert_eq!(
            at("tcp:10.0.0.1:0000000000065535"),
            Some(a("10.0.0.1:65535"))
        );
        assert_eq!(at("tcp:"), None);
        assert_eq!(at("tcp:[10.0.0.1"), None);
        assert_eq!(endpoint("ssl:10.0.0.1", 6653).map(|e| e.tls), Some(true));
    }

    #[test]
    fn respelling_keeps_the_endpoint_and_alternates() {
        for t in [
            "tcp:10.0.0.1:6653",
            "ssl:10.0.0.1:6653",
            "tcp:[fd00::1]:6653",
            "tcp:10.0.0.1",
            "tcp:[10.0.0.1]:06653",
            "ssl:10.0.0.1:0",
        ] {
            let other = respell(t, DEFAULT_CONTROLLER_PORT).unwrap();
            assert_ne!(other, t);
            assert!(
                same_endpoint(&other, t, DEFAULT_CONTROLLER_PORT),
                "{t} -> {other}"
            );
            let back = respell(&other, DEFAULT_CONTROLLER_PORT).unwrap();
            assert_ne!(back, other);
            assert_eq!(respell(&back, DEFAULT_CONTROLLER_PORT).unwrap(), other);
        }
        assert_eq!(
            respell("tcp:10.0.0.1:6653", 6653).as_deref(),
            Some("tcp:10.0.0.1:06653")
        );
        assert_eq!(
            respell("tcp:10.0.0.1:06653", 6653).as_deref(),
            Some("tcp:10.0.0.1:6653")
        );
        assert_eq!(
            respell("tcp:[fd00::1]:6653", 6653).as_deref(),
            Some("tcp:[fd00::1]:06653")
        );
        assert_eq!(respell("punix:/x", 6653), None);
    }

    #[test]
    fn endpoints_compare_across_spellings_and_strings_otherwise() {
        assert!(same_endpoint("tcp:10.0.0.1", "tcp:10.0.0.1:6653", 6653));
        assert!(!same_endpoint("tcp:10.0.0.1", "ssl:10.0.0.1", 6653));
        assert!(!same_endpoint("tcp:10.0.0.1:1", "tcp:10.0.0.2:1", 6653));
        assert!(same_endpoint("punix:/a", "punix:/a", 6653));
        assert!(!same_endpoint("punix:/a", "tcp:10.0.0.1", 6653));
    }

    /// Random strings over the characters targets are made of: no panic, and whatever
    /// parses keeps its endpoint through respelling, which alternates two strings.
    #[test]
    fn random_targets_keep_their_endpoint_through_respelling() {
        use rand::{Rng, SeedableRng};
        const PIECES: &[&str] = &[
            "tcp:", "ssl:", "ptcp:", "[", "]", ":", "0", "1", "6653", "65535", "99999", "10.0.0.1",
            "fd00::1", "::", ".", "a", "%", "\u{e9}", " ",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(6653);
        let mut parsed = 0;
        for _ in 0..20_000 {
            let scheme = ["tcp:", "ssl:", "ptcp:", ""][rng.random_range(0..4)];
            let n = rng.random_range(1..=4);
            let s: String = std::iter::once(scheme)
                .chain((0..n).map(|_| PIECES[rng.random_range(0..PIECES.len())]))
                .collect();
            let Some(e) = endpoint(&s, DEFAULT_CONTROLLER_PORT) else {
                assert_eq!(respell(&s, DEFAULT_CONTROLLER_PORT), None, "{s:?}");
                continue;
            };
            parsed += 1;
            let r1 = respell(&s, DEFAULT_CONTROLLER_PORT).unwrap();
            let r2 = respell(&r1, DEFAULT_CONTROLLER_PORT).unwrap();
            let r3 = respell(&r2, DEFAULT_CONTROLLER_PORT).unwrap();
            assert_ne!(r1, r2, "{s:?}");
            assert_eq!(r3, r1, "{s:?}");
            for r in [&r1, &r2] {
                assert_eq!(
                    endpoint(r, DEFAULT_CONTROLLER_PORT),
                    Some(e),
                    "{s:?} -> {r:?}"
                );
                assert!(same_endpoint(r, &s, DEFAULT_CONTROLLER_PORT));
            }
        }
        assert!(
            parsed > 500,
            "the generator should produce valid targets too: {parsed}"
        );
    }

    #[test]
    fn arbitrary_strings_never_panic() {
        for s in [
            "",
            ":",
            "tcp",
            "tcp::",
            "tcp:[]",
            "tcp:]]:[[",
            "ssl:[::1]:",
            "tcp:1.2.3.4:",
            "tcp:\u{feff}:1",
            "tcp:[::1]:9999999999999999999999",
        ] {
            let _ = endpoint(s, 6653);
            let _ = respell(s, 6653);
        }
    }
}
