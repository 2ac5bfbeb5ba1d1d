//! Shared by the store's integration tests: the real services and scratch
//! storage on them. PostgreSQL and Redis must be reachable: a test that needs
//! one fails, naming the URL, rather than passing without it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::fmt;

pub mod session_contract;

use store::test_support::{
    drop_scratch_postgres_database, scratch_postgres_database, scratch_redis_prefix,
};
use store::{Database, RedisSessionStore, SessionStore};

/// PostgreSQL to create scratch databases on (`DATABASE_URL`).
pub fn postgres_admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Redis for session store tests (`REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A fresh, empty database on one backend; [`TestDb::cleanup`] removes it.
pub struct TestDb {
    pub db: Database,
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh SQLite file (in a nested directory the store must create).
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}",
            dir.path().join("nested/dir/hub.db").display()
        );
        let db = Database::open(&url).await.unwrap();
        Self {
            db,
            url,
            backend: Backend::Sqlite,
            _dir: Some(dir),
        }
    }

    /// A fresh scratch database on the PostgreSQL at `DATABASE_URL`.
    pub async fn postgres() -> Self {
        let url = scratch_postgres_url().await;
        let db = Database::open(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open scratch database {url}: {e}"));
        Self {
            db,
            url,
            backend: Backend::Postgres,
            _dir: None,
        }
    }

    pub async fn migrated(self) -> Self {
        self.db
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("{}: migrate: {e}", self.backend));
        self
    }

    /// Another handle on the same database (a second hub instance, or a restart).
    pub async fn reopen(&self) -> Database {
        Database::open(&self.url).await.unwrap()
    }

    /// Runs one statement on a connection of its own, outside the store's API
    /// (tests that tamper with the database behind the hub's back).
    pub async fn execute_raw(&self, statement: &str) {
        use diesel_async::RunQueryDsl;
        match self.backend {
            Backend::Postgres => {
                use diesel_async::{AsyncConnection, AsyncPgConnection};
                let mut conn = AsyncPgConnection::establish(&self.url).await.unwrap();
                diesel::sql_query(statement)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            Backend::Sqlite => {
                use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
                use diesel_async::AsyncConnection;
                let path = self.url.trim_start_matches("sqlite://");
                let mut conn = SyncConnectionWrapper::<diesel::SqliteConnection>::establish(path)
                    .await
                    .unwrap();
                diesel::sql_query(statement)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }

    /// Closes the handle and drops a PostgreSQL scratch database (a SQLite
    /// file goes with its temporary directory).
    pub async fn cleanup(self) {
        let TestDb {
            db, url, backend, ..
        } = self;
        drop(db);
        if backend == Backend::Postgres {
            drop_scratch_postgres_database(&postgres_admin_url(), &url)
                .await
                .unwrap();
        }
    }
}

/// The URL of a new scratch database; panics, naming the server, when
/// PostgreSQL is not reachable.
pub async fn scratch_postgres_url() -> String {
    let admin = postgres_admin_url();
    scratch_postgres_database(&admin).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {admin} is needed for this test and is not usable: {e} \
             (start it, or point DATABASE_URL at one)"
        )
    })
}

/// A fresh empty database on each backend: one test body, both backends.
pub async fn fresh_databases() -> Vec<TestDb> {
    vec![TestDb::sqlite().await, TestDb::postgres().await]
}

/// [`fresh_databases`], migrated.
pub async fn migrated_databases() -> Vec<TestDb> {
    let mut all = Vec::new();
    for t in fresh_databases().await {
        all.push(t.migrated().await);
    }
    all
}

/// A Redis store under `prefix` that has answered PING; panics, naming the
/// server, when Redis is not reachable.
pub async fn redis_store(prefix: &str) -> RedisSessionStore {
    let url = redis_url();
    let store = RedisSessionStore::connect(&url, prefix)
        .await
        .unwrap_or_else(|e| panic!("Redis url {url}: {e}"));
    store.ping().await.unwrap_or_else(|e| {
        panic!(
            "Redis at {url} is needed for this test and is not reachable: {e} \
             (start it, or point REDIS_URL at one)"
        )
    });
    store
}

/// A Redis store with a key prefix of its own.
pub async fn scratch_redis_store() -> RedisSessionStore {
    redis_store(&scratch_redis_prefix()).await
}
