//! PostgreSQL connections kept on the thread that uses them.
//!
//! A tokio-postgres connection is driven by a task on the runtime that opened it, and the
//! hub runs one single-threaded runtime per worker thread (actix). A connection opened on
//! one thread and handed to a request on another makes every statement wake the opening
//! thread twice: to write the query, and to pass the answer back. So each thread gets a
//! pool of its own, made on its first use, whose connections open on that thread's runtime.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::pooled_connection::bb8::{Pool, PooledConnection, RunError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use thread_local::ThreadLocal;

use super::{DatabaseOptions, PgConn, PgUrl, TracingErrorSink};

/// One bb8 pool per thread, all to the same PostgreSQL database; cheap to clone (clones
/// share the pools).
#[derive(Clone)]
pub(super) struct ThreadPools {
    url: PgUrl,
    /// Each thread's pool holds at most this many connections.
    per_thread: u32,
    acquire_timeout: Duration,
    pools: Arc<ThreadLocal<Pool<PgConn>>>,
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
        }
    }

    /// The calling thread's pool. Must be called on a tokio runtime, whose tasks will
    /// drive the pool's connections.
    pub(super) fn local(&self) -> &Pool<PgConn> {
        self.pools.get_or(|| self.build())
    }

    /// A connection from the calling thread's pool.
    pub(super) async fn get(&self) -> Result<PooledConnection<'_, PgConn>, RunError> {
        self.local().get().await
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
            .error_sink(Box::new(TracingErrorSink))
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
