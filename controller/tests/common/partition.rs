//! A TCP forwarder that can be cut like a network partition: while cut, nothing it holds
//! is forwarded in either direction (bytes wait in the sockets, as packets would be lost
//! and retransmitted), new connections are accepted and left silent; healed, everything
//! flows again. Placed between one weftd and the etcd members, it cuts that instance
//! alone off from etcd while everything else (hypervisors, other instances) still
//! reaches it.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Clone, Default)]
struct Flags {
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

pub struct Partition {
    pub addr: SocketAddr,
    flags: Flags,
    accept: Option<JoinHandle<()>>,
}

impl Partition {
    /// Forwards a new loopback port to `upstream`.
    pub fn start(upstream: SocketAddr) -> Partition {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let flags = Flags::default();
        let f = flags.clone();
        let accept = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !f.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        if let Ok(server) = TcpStream::connect(upstream) {
                            pump(client.try_clone().unwrap(), server.try_clone().unwrap(), &f);
                            pump(server, client, &f);
                        } else {
                            held.push(client);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            drop(held);
        });
        Partition {
            addr,
            flags,
            accept: Some(accept),
        }
    }

    /// Stops forwarding, both ways, on every connection.
    pub fn cut(&self) {
        self.flags.cut.store(true, Ordering::Relaxed);
    }

    pub fn heal(&self) {
        self.flags.cut.store(false, Ordering::Relaxed);
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.flags.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Copies `from` → `to` on a thread of its own until either side closes or the
/// partition is dropped; while cut, it reads nothing.
fn pump(mut from: TcpStream, mut to: TcpStream, f: &Flags) {
    let f = f.clone();
    std::thread::spawn(move || {
        let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
        let mut buf = vec![0u8; 64 * 1024];
        while !f.stop.load(Ordering::Relaxed) {
            if f.cut.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
