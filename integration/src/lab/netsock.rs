//! Sockets that live inside a VM's network namespace, opened from the test process itself:
//! a short-lived thread enters the namespace with `setns(2)` (which moves only that
//! thread), creates the socket and exits; the socket keeps its namespace for life and can
//! be used from any thread. This gives tests ordinary `std::net` sockets "in the VM", with
//! no `nc` to parse and exact byte accounting (which is how the TX-checksum-offload
//! pitfall, "ping works but TCP does not", is caught).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};

use super::error::{LabError, Result};

/// Runs `f` on a fresh thread that has entered network namespace `netns`.
pub(crate) fn in_netns<T, F>(netns: &str, what: &str, f: F) -> Result<T>
where
    T: Send,
    F: FnOnce() -> std::io::Result<T> + Send,
{
    let path = PathBuf::from("/run/netns").join(netns);
    let io_err = |source| LabError::Io {
        op: "enter netns",
        path: path.clone(),
        source,
    };
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            let file = File::open(&path)?;
            setns(&file, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            f()
        })
        .join()
    });
    match outcome {
        Ok(result) => result.map_err(io_err),
        Err(_) => Err(LabError::ThreadPanicked {
            what: what.to_owned(),
        }),
    }
}

/// A TCP server inside a VM that echoes every byte back, one thread per connection.
/// Stops (and joins its threads) on drop.
#[derive(Debug)]
pub struct TcpEchoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    echoed: Arc<AtomicU64>,
    acceptor: Option<JoinHandle<()>>,
}

impl TcpEchoServer {
    pub(crate) fn start(netns: &str, addr: SocketAddr) -> Result<Self> {
        let listener = in_netns(netns, "tcp echo listener", || {
            let l = TcpListener::bind(addr)?;
            l.set_nonblocking(true)?;
            Ok(l)
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let echoed = Arc::new(AtomicU64::new(0));
        let acceptor = {
            let (stop, echoed) = (stop.clone(), echoed.clone());
            std::thread::spawn(move || accept_loop(&listener, &stop, &echoed))
        };
        Ok(TcpEchoServer {
            addr,
            stop,
            echoed,
            acceptor: Some(acceptor),
        })
    }

    /// The address it listens on (inside the VM).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bytes echoed so far, over all connections.
    pub fn echoed_bytes(&self) -> u64 {
        self.echoed.load(Ordering::Relaxed)
    }
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, echoed: &Arc<AtomicU64>) {
    let mut workers = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) => {
                let echoed = echoed.clone();
                workers.push(std::thread::spawn(move || echo(conn, &echoed)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    for w in workers {
        let _ = w.join();
    }
}

fn echo(mut conn: TcpStream, echoed: &AtomicU64) {
    // Bounded by the read timeout: a stuck peer cannot keep the worker forever.
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = [0u8; 16 * 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    break;
                }
                echoed.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
    let _ = conn.shutdown(Shutdown::Both);
}

impl Drop for TcpEchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// Result of [`crate::Vm::tcp_echo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpEchoReport {
    /// Bytes sent and received back intact.
    pub bytes: usize,
    /// Time from connect to the last echoed byte.
    pub elapsed: Duration,
}

/// Connects from inside `netns` to `dst`, streams `len` bytes of a known pattern through an
/// echo server and checks every byte that comes back.
pub(crate) fn tcp_echo(
    netns: &str,
    dst: SocketAddr,
    len: usize,
    timeout: Duration,
) -> Result<TcpEchoReport> {
    let what = format!("TCP echo to {dst} from {netns}");
    let started = Instant::now();
    let stream = in_netns(netns, &what, || TcpStream::connect_timeout(&dst, timeout))
        .map_err(|e| annotate(e, &what))?;
    let io = |source: std::io::Error| LabError::Io {
        op: "tcp echo",
        path: PathBuf::from(dst.to_string()),
        source,
    };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let pattern = |i: usize| (i % 251) as u8;
    let mut writer = stream.try_clone().map_err(io)?;
    // Write on one thread and read on this one, so neither side's buffers fill up.
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let mut sent = 0;
        while sent < len {
            let n = (len - sent).min(8192);
            let data: Vec<u8> = (sent..sent + n).map(pattern).collect();
            writer.write_all(&data)?;
            sent += n;
        }
        writer.shutdown(Shutdown::Write)
    });
    let mut reader = stream;
    let mut got = 0usize;
    let mut buf = [0u8; 16 * 1024];
    let mut mismatch = None;
    while got < len {
        let n = reader.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        for (k, b) in buf[..n].iter().enumerate() {
            if mismatch.is_none() && *b != pattern(got + k) {
                mismatch = Some(got + k);
            }
        }
        got += n;
    }
    let sent = sender
        .join()
        .map_err(|_| LabError::ThreadPanicked { what: what.clone() })?;
    sent.map_err(io)?;
    if got != len || mismatch.is_some() {
        return Err(LabError::Parse {
            command: what,
            reason: format!("echoed {got} of {len} bytes, first corrupt byte at {mismatch:?}"),
            output: String::new(),
        });
    }
    Ok(TcpEchoReport {
        bytes: len,
        elapsed: started.elapsed(),
    })
}

fn annotate(e: LabError, what: &str) -> LabError {
    match e {
        LabError::Io {
            op,
            path: _,
            source,
        } => LabError::Io {
            op,
            path: PathBuf::from(what),
            source,
        },
        other => other,
    }
}
