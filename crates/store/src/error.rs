//! The crate's single error type.

/// Why a storage operation failed.
///
/// The split that matters to callers is [`StoreError::is_unavailable`]: a
/// backend that cannot be reached right now (the web layer answers 503 and the
/// user may retry) versus everything else (a bug, bad input or corrupt data).
/// Messages never contain stored values, so they are safe to log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot serve requests right now: no pooled connection within
    /// the timeout, the connection failed, or the database stayed locked past
    /// the busy timeout. Transient; answer 503.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The database URL is not one this build can open.
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    /// Applying the embedded schema migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A query failed for a reason other than availability (constraint
    /// violation, missing table because migrations were not run, ...).
    #[error("database error: {0}")]
    Database(#[source] diesel::result::Error),
    /// A stored value could not be decoded (e.g. a record's dataset JSON).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The caller passed something the store refuses to save (e.g. an empty id).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A filesystem operation around the database failed (creating its directory).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The database schema is not the one this build expects (not migrated
    /// yet, or migrated by a newer hub); the message says what to do.
    #[error("{0}")]
    Schema(String),
    /// The verification log's signed head could not be made, or the head an
    /// append would extend is not the one last sealed (rows changed outside
    /// the hub): nothing is appended on top of it.
    #[error("verification log seal: {0}")]
    Seal(String),

    /// A write that expected the stored data as it was when read found it changed by
    /// someone else: read again and retry, or report the conflict.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl StoreError {
    /// True when the failure is transient unavailability of the backend, so the
    /// caller should answer 503 (Service Unavailable) rather than 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<diesel::result::Error> for StoreError {
    /// Classifies diesel errors: lost connections, failed background tasks and
    /// SQLite lock timeouts and PostgreSQL refusing or dropping sessions
    /// (shutdown, restart, too many clients) are unavailability; everything
    /// else is a database error.
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match &e {
            Error::DatabaseError(
                DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
                info,
            ) => StoreError::Unavailable(info.message().to_owned()),
            Error::DatabaseError(_, info)
                if is_lock_timeout(info.message()) || is_postgres_unavailable(info.message()) =>
            {
                StoreError::Unavailable(info.message().to_owned())
            }
            Error::BrokenTransactionManager => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Database(e),
        }
    }
}

/// SQLite reports SQLITE_BUSY / SQLITE_LOCKED (after `busy_timeout` expired) only
/// through its message; diesel maps both to `DatabaseErrorKind::Unknown`.
pub(crate) fn is_lock_timeout(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("database is locked")
        || m.contains("database table is locked")
        || m.contains("database is busy")
}

/// PostgreSQL's messages for SQLSTATE 57P01-57P03 (shutdown, crash recovery,
/// start-up) and 53300 (too many connections). diesel-async exposes the
/// server's message but not its SQLSTATE, and these are stable English texts
/// (with the default `lc_messages`).
fn is_postgres_unavailable(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("terminating connection due to administrator command")
        || m.contains("the database system is shutting down")
        || m.contains("the database system is starting up")
        || m.contains("the database system is in recovery mode")
        || m.contains("sorry, too many clients already")
        || m.contains("remaining connection slots are reserved")
}

/// `url` for messages and `Debug`: any password replaced by `***`, so that
/// logging an error or a handle never leaks a credential.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
                return "<url hidden>".to_owned();
            }
            parsed.to_string()
        }
        Err(_) => "<unparseable url>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://hub:s3cret@db:5432/hub?sslmode=disable"),
            "postgres://hub:***@db:5432/hub?sslmode=disable"
        );
        assert_eq!(redact_url("redis://:pw@r:6379/0"), "redis://:***@r:6379/0");
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("not a url"), "<unparseable url>");
    }
}
