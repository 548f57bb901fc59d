//! Readiness for a service manager: systemd's `sd_notify` protocol, written directly (one
//! datagram to the socket named by `$NOTIFY_SOCKET`), so that weftd's unit can be
//! `Type=notify` and units ordered after it start only once weftd listens.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

/// The variable systemd sets for a `Type=notify` service.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Tells the service manager, if any, that weftd is ready (its API and southbound
/// listeners are bound). Without `$NOTIFY_SOCKET` (not started by systemd) it does
/// nothing and returns `Ok(false)`.
pub fn notify_ready() -> io::Result<bool> {
    match std::env::var_os(NOTIFY_SOCKET) {
        Some(socket) => notify(&socket.to_string_lossy(), "READY=1\n").map(|()| true),
        None => Ok(false),
    }
}

/// Sends `state` (newline-separated `KEY=VALUE` assignments) to the socket `socket`: a
/// path, or an abstract name written `@name`.
pub fn notify(socket: &str, state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = socket.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else if socket.starts_with('/') {
        sock.send_to(state.as_bytes(), Path::new(socket))?;
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{NOTIFY_SOCKET}={socket:?} is neither an absolute path nor @abstract"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_the_state_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        notify(path.to_str().unwrap(), "READY=1\n").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
    }

    #[test]
    fn sends_the_state_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("weft-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        notify(&format!("@{name}"), "READY=1\n").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
    }

    #[test]
    fn refuses_a_relative_socket() {
        assert!(notify("relative.sock", "READY=1\n").is_err());
    }
}
