//! A TCP proxy for fault injection and load balancing in tests.
//!
//! Put a [`Proxy`] between the hub and PostgreSQL, Redis or another hub instance, point the
//! hub at [`Proxy::addr`], and `set_up(false)` simulates an outage (open connections are
//! closed, new ones are accepted and dropped at once) until `set_up(true)`. With several
//! backends it balances connections round-robin, skipping backends that refuse.

#![allow(dead_code)]

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Mutex};
use tokio::task::{JoinHandle, JoinSet};

/// How long a backend may take to accept before it counts as refusing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A TCP proxy on `127.0.0.1`; it stops (closing every connection) when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

struct Shared {
    backends: Vec<SocketAddr>,
    /// Index of the backend the next connection tries first. Held while a connection picks
    /// its backend, so connections are assigned strictly in the order they were accepted.
    next: Mutex<usize>,
    forwarded: Vec<AtomicUsize>,
    up: watch::Sender<bool>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("backends", &self.shared.backends)
            .field("up", &*self.shared.up.borrow())
            .field("forwarded", &self.forwarded())
            .finish()
    }
}

impl Proxy {
    /// Listens on 127.0.0.1:0 and forwards each accepted connection to the next backend in
    /// round-robin order, skipping backends that refuse the connection (a connection that no
    /// backend accepts is closed).
    pub async fn start(backends: Vec<SocketAddr>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("proxy: local address");
        let shared = Arc::new(Shared {
            forwarded: backends.iter().map(|_| AtomicUsize::new(0)).collect(),
            backends,
            next: Mutex::new(0),
            up: watch::Sender::new(true),
        });
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Proxy {
            addr,
            shared,
            accept_task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Down: close every open connection and refuse new ones (accept then drop immediately).
    /// Up: forward again. Simulates a database/cache/instance outage and recovery.
    pub fn set_up(&self, up: bool) {
        self.shared.up.send_replace(up);
    }

    pub fn is_up(&self) -> bool {
        *self.shared.up.borrow()
    }

    /// Number of connections forwarded to each backend so far (in the order of `start`).
    pub fn forwarded(&self) -> Vec<usize> {
        self.shared
            .forwarded
            .iter()
            .map(|n| n.load(Ordering::SeqCst))
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The connection tasks live in a JoinSet owned by the accept task: aborting it drops
        // the listener and aborts them all, which closes their sockets.
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else {
                    // E.g. too many open files: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                // Subscribe before checking, so a `set_up(false)` from now on is seen.
                let down = shared.up.subscribe();
                if !*down.borrow() {
                    drop(client);
                    continue;
                }
                connections.spawn(forward(client, Arc::clone(&shared), down));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn forward(mut client: TcpStream, shared: Arc<Shared>, mut up: watch::Receiver<bool>) {
    let Some(mut server) = connect_next(&shared).await else {
        return; // every backend refused: close the client's connection
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = copy_bidirectional(&mut client, &mut server) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
    // Dropping both streams closes them.
}

/// Connects to the first backend, in round-robin order, that accepts, and counts it.
async fn connect_next(shared: &Shared) -> Option<TcpStream> {
    let n = shared.backends.len();
    let mut next = shared.next.lock().await;
    for i in 0..n {
        let index = (*next + i) % n;
        let attempt =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(shared.backends[index])).await;
        if let Ok(Ok(stream)) = attempt {
            *next = (index + 1) % n;
            shared.forwarded[index].fetch_add(1, Ordering::SeqCst);
            return Some(stream);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const STEP: Duration = Duration::from_secs(5);

    /// An echo server on 127.0.0.1:0; returns its address and how many connections it took.
    async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let (mut reader, mut writer) = stream.split();
                    let _ = tokio::io::copy(&mut reader, &mut writer).await;
                });
            }
        });
        (addr, accepted, task)
    }

    /// An address that refuses connections: a socket bound but never listening. The socket
    /// is returned so the port stays reserved; a freed port could be handed to the proxy's
    /// own listener, which would then forward to itself.
    fn dead_addr() -> (SocketAddr, tokio::net::TcpSocket) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        (socket.local_addr().unwrap(), socket)
    }

    async fn round_trip(stream: &mut TcpStream, message: &[u8]) {
        tokio::time::timeout(STEP, async {
            stream.write_all(message).await.unwrap();
            let mut echoed = vec![0; message.len()];
            stream.read_exact(&mut echoed).await.unwrap();
            assert_eq!(echoed, message);
        })
        .await
        .expect("echo through the proxy timed out");
    }

    async fn connect(addr: SocketAddr) -> TcpStream {
        tokio::time::timeout(STEP, TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap()
    }

    /// Whether the peer closed the connection (EOF or reset) instead of echoing.
    async fn is_closed(stream: &mut TcpStream) -> bool {
        let _ = stream.write_all(b"anyone there?").await;
        let mut buf = [0u8; 64];
        match tokio::time::timeout(STEP, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) => false,
            Err(_) => panic!("the connection neither echoed nor closed"),
        }
    }

    #[tokio::test]
    async fn proxy_bytes_round_trip_to_an_echo_server() {
        let (echo, accepted, _server) = echo_server().await;
        let proxy = Proxy::start(vec![echo]).await;
        assert_ne!(proxy.addr().port(), 0);

        let mut stream = connect(proxy.addr()).await;
        round_trip(&mut stream, b"hello through the proxy").await;
        // Larger than socket buffers, written while the echo is read back.
        let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        let (mut reader, mut writer) = stream.into_split();
        let expected = big.clone();
        let write = tokio::spawn(async move {
            writer.write_all(&big).await.unwrap();
            writer
        });
        let mut echoed = vec![0; expected.len()];
        tokio::time::timeout(STEP, reader.read_exact(&mut echoed))
            .await
            .unwrap()
            .unwrap();
        assert!(echoed == expected, "the echoed bytes differ");
        let _writer = write.await.unwrap();

        assert_eq!(proxy.forwarded(), vec![1]);
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn proxy_balances_round_robin_across_backends() {
        let (a, accepted_a, _server_a) = echo_server().await;
        let (b, accepted_b, _server_b) = echo_server().await;
        let proxy = Proxy::start(vec![a, b]).await;

        let mut streams = Vec::new();
        for i in 0..6usize {
            let mut stream = connect(proxy.addr()).await;
            round_trip(&mut stream, format!("connection {i}").as_bytes()).await;
            let expected = vec![i / 2 + 1, i.div_ceil(2)];
            assert_eq!(proxy.forwarded(), expected, "after connection {i}");
            streams.push(stream);
        }
        assert_eq!(accepted_a.load(Ordering::SeqCst), 3);
        assert_eq!(accepted_b.load(Ordering::SeqCst), 3);
        // Every connection still works (each is pinned to its backend).
        for stream in &mut streams {
            round_trip(stream, b"again").await;
        }
    }

    #[tokio::test]
    async fn proxy_skips_a_dead_backend() {
        let (dead, _reserved) = dead_addr();
        let (a, _, _server_a) = echo_server().await;
        let (b, _, _server_b) = echo_server().await;
        let proxy = Proxy::start(vec![a, dead, b]).await;

        for i in 0..4 {
            let mut stream = connect(proxy.addr()).await;
            round_trip(&mut stream, format!("connection {i}").as_bytes()).await;
        }
        // a, (dead skipped) b, a, b: balanced over the live backends.
        assert_eq!(proxy.forwarded(), vec![2, 0, 2]);

        // Only dead backends: the client's connection is closed.
        let proxy = Proxy::start(vec![dead]).await;
        let mut stream = connect(proxy.addr()).await;
        assert!(is_closed(&mut stream).await);
        assert_eq!(proxy.forwarded(), vec![0]);
    }

    #[tokio::test]
    async fn proxy_down_breaks_connections_and_up_restores() {
        let (echo, _, _server) = echo_server().await;
        let proxy = Proxy::start(vec![echo]).await;

        let mut open = connect(proxy.addr()).await;
        round_trip(&mut open, b"before the outage").await;

        proxy.set_up(false);
        assert!(!proxy.is_up());
        assert!(
            is_closed(&mut open).await,
            "an open connection survived set_up(false)"
        );
        for _ in 0..3 {
            let mut refused = connect(proxy.addr()).await;
            assert!(
                is_closed(&mut refused).await,
                "a new connection was forwarded while down"
            );
        }
        assert_eq!(proxy.forwarded(), vec![1]);

        proxy.set_up(true);
        let mut restored = connect(proxy.addr()).await;
        round_trip(&mut restored, b"after the outage").await;
        assert_eq!(proxy.forwarded(), vec![2]);
    }

    #[tokio::test]
    async fn proxy_stops_when_dropped() {
        let (echo, _, _server) = echo_server().await;
        let proxy = Proxy::start(vec![echo]).await;
        let addr = proxy.addr();
        let mut open = connect(addr).await;
        round_trip(&mut open, b"hello").await;

        drop(proxy);
        assert!(
            is_closed(&mut open).await,
            "an open connection survived the proxy"
        );
        // The listener is gone (the abort completes asynchronously, so allow it a moment).
        let mut refused = false;
        for _ in 0..100 {
            if TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            refused,
            "the proxy still accepts connections after being dropped"
        );
    }
}
