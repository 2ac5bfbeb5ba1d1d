//! Throwaway storage for tests and tooling (cargo feature `test-support`).
//!
//! Each test gets its own PostgreSQL database and its own Redis key prefix,
//! so tests run in parallel against one shared server without seeing each
//! other's data. Nothing here is used by the hub itself.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::error::{redact_url, StoreError};
use crate::queries;

/// Prefix of every scratch database name (and the only names
/// [`drop_scratch_postgres_database`] will drop).
const SCRATCH_PREFIX: &str = "hub_test_";

/// The environment variable naming the test run (1 to 20 ASCII letters and digits):
/// when set, scratch databases are named `hub_test_<run>_<random>`, so whoever started
/// the run (`scripts/test.sh`) can drop exactly its own and leave other runs' alone.
pub const RUN_ENV: &str = "HUB_TEST_RUN";

/// The longest run name: PostgreSQL truncates identifiers beyond 63 bytes, and
/// `hub_test_` + run + `_` + 32 hex digits must fit.
const MAX_RUN_LEN: usize = 20;

/// How long to wait for the admin connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates an empty database named `hub_test_<random>` (`hub_test_<run>_<random>` when
/// [`RUN_ENV`] names a run) on the server of
/// `admin_url` (a URL to any database there that a role allowed to
/// `CREATE DATABASE` can connect to, e.g. `postgres://postgres@127.0.0.1/postgres`)
/// and returns the URL of the new database: `admin_url` with its path replaced.
///
/// Not migrated. [`StoreError::Unavailable`] when the server cannot be
/// reached, [`StoreError::InvalidUrl`] for a URL that is not `postgres://`,
/// [`StoreError::InvalidInput`] for a [`RUN_ENV`] that is not a run name.
pub async fn scratch_postgres_database(admin_url: &str) -> Result<String, StoreError> {
    let mut url = postgres_url(admin_url)?;
    let name = scratch_database_name(std::env::var(RUN_ENV).ok().as_deref())?;
    let mut conn = admin_connection(admin_url).await?;
    queries::pg::create_database(&mut conn, &name).await?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Drops a database made by [`scratch_postgres_database`], closing any
/// connection still open to it (`WITH (FORCE)`: PostgreSQL 13 or newer).
/// Refuses a `database_url` whose database is not named `hub_test_…`, so a
/// mix-up cannot drop a real database. Dropping a missing one is not an error.
pub async fn drop_scratch_postgres_database(
    admin_url: &str,
    database_url: &str,
) -> Result<(), StoreError> {
    let url = postgres_url(database_url)?;
    let name = url.path().trim_start_matches('/');
    let generated = name.strip_prefix(SCRATCH_PREFIX).is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    if !generated {
        return Err(StoreError::InvalidInput(format!(
            "refusing to drop {name:?}: not a scratch database ({SCRATCH_PREFIX}…)"
        )));
    }
    let mut conn = admin_connection(admin_url).await?;
    Ok(queries::pg::drop_database(&mut conn, name).await?)
}

/// A fresh scratch database name: `hub_test_<random>`, or `hub_test_<run>_<random>`
/// for a `run` (1 to 20 ASCII letters and digits; anything else is refused rather than
/// ignored, so a run never leaves databases its cleanup would not find).
fn scratch_database_name(run: Option<&str>) -> Result<String, StoreError> {
    let random = uuid::Uuid::new_v4().simple();
    match run {
        None => Ok(format!("{SCRATCH_PREFIX}{random}")),
        Some(run)
            if (1..=MAX_RUN_LEN).contains(&run.len())
                && run.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Ok(format!("{SCRATCH_PREFIX}{run}_{random}"))
        }
        Some(run) => Err(StoreError::InvalidInput(format!(
            "{RUN_ENV}={run:?}: expected 1 to {MAX_RUN_LEN} ASCII letters and digits"
        ))),
    }
}

/// A key prefix no other caller has (`hub_test_<random>`), for a
/// [`crate::RedisSessionStore`] that must not see other tests' keys.
pub fn scratch_redis_prefix() -> String {
    format!("{SCRATCH_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

/// [`crate::SessionStore::take_and_follow`] on Redis as the call `attempt`, so a test
/// can run one call twice, as a retry after a lost reply does, without losing a reply.
pub async fn redis_take_and_follow_as(
    store: &crate::RedisSessionStore,
    (namespace, key, target_namespace): (&str, &str, &str),
    attempt: &str,
) -> Result<Option<(String, Option<String>)>, StoreError> {
    store
        .take_and_follow_as(namespace, key, target_namespace, attempt)
        .await
}

fn postgres_url(raw: &str) -> Result<url::Url, StoreError> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| StoreError::InvalidUrl(format!("not a PostgreSQL url ({e})")))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(StoreError::InvalidUrl(format!(
            "not a PostgreSQL url: scheme {:?}",
            url.scheme()
        )));
    }
    Ok(url)
}

async fn admin_connection(admin_url: &str) -> Result<AsyncPgConnection, StoreError> {
    let shown = redact_url(admin_url);
    match tokio::time::timeout(CONNECT_TIMEOUT, AsyncPgConnection::establish(admin_url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL at {shown}: {e}"
        ))),
        Err(_) => Err(StoreError::Unavailable(format!(
            "timed out connecting to PostgreSQL at {shown}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_databases_carry_the_run_so_its_cleanup_finds_only_them() {
        let name = scratch_database_name(Some("r1a2b3")).unwrap();
        let random = name.strip_prefix("hub_test_r1a2b3_").unwrap();
        assert_eq!(random.len(), 32);
        assert!(random.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(name.len() <= 63);
        let longest = scratch_database_name(Some(&"r".repeat(MAX_RUN_LEN))).unwrap();
        assert!(longest.len() <= 63, "{longest} would be truncated");

        let unnamed = scratch_database_name(None).unwrap();
        assert_eq!(unnamed.len(), SCRATCH_PREFIX.len() + 32);
        assert!(!unnamed[SCRATCH_PREFIX.len()..].contains('_'));

        for bad in ["", "a_b", "a-b", "x';drop", &"r".repeat(MAX_RUN_LEN + 1)] {
            assert!(
                matches!(
                    scratch_database_name(Some(bad)),
                    Err(StoreError::InvalidInput(_))
                ),
                "{bad:?}"
            );
        }
    }
}
