//! PostgreSQL connections kept on the thread that uses them.
//!
//! A tokio-postgres connection is driven by a task on the runtime that opened it, and the
//! hub runs one single-threaded runtime per worker thread (actix). A connection opened on
//! one thread and handed to a request on another makes every statement wake the opening
//! thread twice: to write the query, and to pass the answer back. So each thread gets a
//! pool of its own, made on its first use, whose connections open on that thread's runtime.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::result::ConnectionError;
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection, RunError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod,
};
use thread_local::ThreadLocal;
use tokio::sync::Notify;

use super::{DatabaseOptions, PgConn, PgUrl};

/// For how long after PostgreSQL refused a new connection a request that needs a new one
/// fails at once, instead of waiting out `acquire_timeout` for a server that is down.
const FAIL_FAST_FOR: Duration = Duration::from_secs(1);

/// One bb8 pool per thread, all to the same PostgreSQL database; cheap to clone (clones
/// share the pools).
#[derive(Clone)]
pub(crate) struct ThreadPools {
    url: PgUrl,
    /// Each thread's pool holds at most this many connections.
    per_thread: u32,
    acquire_timeout: Duration,
    pools: Arc<ThreadLocal<Pool<PgConn>>>,
    refusals: Arc<Refusals>,
}

/// The last connection PostgreSQL refused (every thread's pool reports here), so that
/// the hub knows the server is down at once: bb8 hands connect errors to its error sink
/// and keeps a waiting request waiting until its timeout.
#[derive(Debug, Default)]
struct Refusals {
    last: Mutex<Option<(Instant, String)>>,
    /// Wakes requests waiting for a connection when one is refused.
    refused: Notify,
}

impl Refusals {
    fn record(&self, error: &ConnectionError) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), error.to_string()));
        self.refused.notify_waiters();
    }

    /// A new connection was opened: the server is back.
    fn clear(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The refusal of the last [`FAIL_FAST_FOR`], as the error a request gets.
    fn recent(&self) -> Option<RunError> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let (at, message) = last.as_ref()?;
        (at.elapsed() < FAIL_FAST_FOR).then(|| refused(message.clone()))
    }
}

fn refused_now() -> RunError {
    refused("the database refused a connection".into())
}

fn refused(message: String) -> RunError {
    RunError::User(PoolError::ConnectionError(ConnectionError::BadConnection(
        message,
    )))
}

/// Reports each connection opened, which ends the failing fast at once.
#[derive(Debug)]
struct OpenedReporter(Arc<Refusals>);

impl bb8::CustomizeConnection<PgConn, PoolError> for OpenedReporter {
    fn on_acquire<'a>(
        &'a self,
        _connection: &'a mut PgConn,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), PoolError>> + Send + 'a>>
    {
        self.0.clear();
        Box::pin(async { Ok(()) })
    }
}

/// Logs pool errors, as every pool does, and reports refused connections.
#[derive(Debug, Clone)]
struct RefusalSink(Arc<Refusals>);

impl bb8::ErrorSink<PoolError> for RefusalSink {
    fn sink(&self, error: PoolError) {
        if let PoolError::ConnectionError(e) = &error {
            self.0.record(e);
        }
        tracing::warn!(%error, "database pool error");
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<PoolError>> {
        Box::new(self.clone())
    }
}

impl ThreadPools {
    /// `max_connections` is shared out among `query_threads`, rounded up, at least one
    /// per thread.
    pub(super) fn new(url: PgUrl, options: &DatabaseOptions) -> Self {
        Self {
            url,
            per_thread: options
                .max_connections
                .div_ceil(options.query_threads.max(1))
                .max(1),
            acquire_timeout: options.acquire_timeout,
            pools: Arc::default(),
            refusals: Arc::default(),
        }
    }

    /// The calling thread's pool. Must be called on a tokio runtime, whose tasks will
    /// drive the pool's connections.
    pub(super) fn local(&self) -> &Pool<PgConn> {
        self.pools.get_or(|| self.build())
    }

    /// A connection from the calling thread's pool. Fails at once, rather than after
    /// `acquire_timeout`, when it would need a new connection and PostgreSQL has just
    /// refused one, or refuses one while it waits.
    pub(crate) async fn get(&self) -> Result<PooledConnection<'_, PgConn>, RunError> {
        let pool = self.local();
        if pool.state().idle_connections == 0 {
            if let Some(error) = self.refusals.recent() {
                return Err(error);
            }
        }
        let refused = self.refusals.refused.notified();
        tokio::select! {
            got = pool.get() => got,
            () = refused => Err(self
                .refusals
                .recent()
                .unwrap_or_else(refused_now)),
        }
    }

    /// Every thread's pool (metrics).
    pub(super) fn all(&self) -> impl Iterator<Item = &Pool<PgConn>> {
        self.pools.iter()
    }

    fn build(&self) -> Pool<PgConn> {
        // `Fast` recycling: a checkout only checks that the connection is not closed or
        // broken. tokio-postgres closes a connection as soon as its socket does (a server
        // restart, a terminated backend), so this hands out no dead connection that
        // `Verified` would catch, without the round trip of a trivial query before every
        // use (most of a request's queries). A connection whose runtime has gone (its
        // thread ended and another took its slot) is closed too, and replaced here.
        let mut config = ManagerConfig::<PgConn>::default();
        config.recycling_method = RecyclingMethod::Fast;
        let manager =
            AsyncDieselConnectionManager::<PgConn>::new_with_config(self.url.0.clone(), config);
        Pool::builder()
            .max_size(self.per_thread)
            .connection_timeout(self.acquire_timeout)
            .error_sink(Box::new(RefusalSink(Arc::clone(&self.refusals))))
            .connection_customizer(Box::new(OpenedReporter(Arc::clone(&self.refusals))))
            .build_unchecked(manager)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_thread(max_connections: u32, query_threads: u32) -> u32 {
        let options = DatabaseOptions {
            max_connections,
            query_threads,
            ..DatabaseOptions::default()
        };
        ThreadPools::new(PgUrl("postgres://localhost/test".into()), &options).per_thread
    }

    /// A hub with one worker gets all its connections on that worker; more workers
    /// share them out, each keeping at least one.
    #[test]
    fn connections_are_shared_out_among_the_query_threads() {
        assert_eq!(per_thread(8, 1), 8);
        assert_eq!(per_thread(8, 2), 4);
        assert_eq!(per_thread(8, 3), 3);
        assert_eq!(per_thread(2, 4), 1);
        assert_eq!(per_thread(8, 0), 8);
    }
}
