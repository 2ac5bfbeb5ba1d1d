//! A round-robin TCP balancer for the three-instance benchmark scenario
//! (`journey-balance`, scripts/bench-journeys.sh): each accepted connection goes to the
//! next backend in turn (the next one after that if connecting fails), and bytes are
//! copied both ways until either side closes. Layer 4 only, like a cloud load balancer in
//! TCP mode: keep-alive connections stay on the instance they were given, so requests are
//! spread per connection, not per request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// Connecting to one backend gets at most this long before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Backends and how many connections each was given.
#[derive(Debug)]
pub struct Balancer {
    backends: Vec<SocketAddr>,
    next: AtomicUsize,
    connections: Vec<AtomicU64>,
    failed: AtomicU64,
}

impl Balancer {
    /// `None` without backends.
    pub fn new(backends: Vec<SocketAddr>) -> Option<Arc<Self>> {
        if backends.is_empty() {
            return None;
        }
        let connections = backends.iter().map(|_| AtomicU64::new(0)).collect();
        Some(Arc::new(Self {
            backends,
            next: AtomicUsize::new(0),
            connections,
            failed: AtomicU64::new(0),
        }))
    }

    /// Accepts connections on `listener` for ever (run it in a task, or select it against
    /// a shutdown signal).
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        loop {
            let (client, _) = listener.accept().await?;
            let balancer = Arc::clone(&self);
            tokio::spawn(async move { balancer.relay(client).await });
        }
    }

    async fn relay(&self, mut client: TcpStream) {
        let _ = client.set_nodelay(true);
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        for attempt in 0..self.backends.len() {
            let index = (first + attempt) % self.backends.len();
            let connect = TcpStream::connect(self.backends[index]);
            let Ok(Ok(mut backend)) = tokio::time::timeout(CONNECT_TIMEOUT, connect).await else {
                continue;
            };
            let _ = backend.set_nodelay(true);
            self.connections[index].fetch_add(1, Ordering::Relaxed);
            // Either side closing (or resetting) ends the relay; nothing to report.
            let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
            return;
        }
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// `(backend, connections given to it)`, in the order of the backends.
    pub fn connections(&self) -> Vec<(SocketAddr, u64)> {
        self.backends
            .iter()
            .zip(&self.connections)
            .map(|(addr, n)| (*addr, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// Connections no backend accepted (closed at once).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A backend that answers every connection with its own name and closes.
    async fn named_backend(name: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = s.write_all(name).await;
            }
        });
        addr
    }

    async fn ask(addr: SocketAddr) -> Vec<u8> {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn connections_go_round_robin_and_skip_a_dead_backend() {
        let a = named_backend(b"a").await;
        let b = named_backend(b"b").await;
        // A port nobody listens on any more.
        let dead = {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            l.local_addr().expect("addr")
        };
        let balancer = Balancer::new(vec![a, dead, b]).expect("backends");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let front = listener.local_addr().expect("addr");
        tokio::spawn(Arc::clone(&balancer).serve(listener));
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(ask(front).await);
        }
        // a, (dead -> b), b, a, (dead -> b), b
        let expected: Vec<Vec<u8>> = ["a", "b", "b", "a", "b", "b"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        assert_eq!(seen, expected);
        let counts: Vec<u64> = balancer.connections().iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, vec![2, 0, 4]);
        assert_eq!(balancer.failed(), 0);
    }

    #[test]
    fn no_backends_is_refused() {
        assert!(Balancer::new(Vec::new()).is_none());
    }
}
