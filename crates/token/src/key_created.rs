//! When each signing key was created, so that operators can be warned before a key is
//! due for rotation (a key has no expiry of its own, only an age).
//!
//! A PKCS#8 key file records no time, and its modification time is not reliable (copying
//! keys to each instance or mounting them as a secret resets it). So the hub records each
//! key it creates, by kid, in [`CREATED_FILE`] next to the keys: one small JSON object
//! `{"<kid>": <Unix seconds>, ...}`. The record is advisory: it holds no secret, a key
//! without an entry (made before the record existed) falls back to its file's
//! modification time, and an unreadable record is read as empty and rewritten.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{keyfile, TokenError};

/// The record of creation times under the keys directory.
pub const CREATED_FILE: &str = "signing-key.created.json";

/// Kid to Unix seconds.
type Record = BTreeMap<String, u64>;

/// The recorded creation time of the key `kid` under `dir`, if any.
pub(crate) fn recorded(dir: &Path, kid: &str) -> Option<SystemTime> {
    read(dir)
        .get(kid)
        .map(|secs| UNIX_EPOCH + Duration::from_secs(*secs))
}

/// Records that the key `kid` was created at `at` (replacing the file atomically).
pub(crate) fn record(dir: &Path, kid: &str, at: SystemTime) -> Result<(), TokenError> {
    let mut record = read(dir);
    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    record.insert(kid.to_owned(), secs);
    write(dir, &record)
}

/// Drops the entries of keys other than `kids` (after a rotation retired one), so the
/// record does not grow with every rotation. Nothing is written if nothing changes.
pub(crate) fn retain(dir: &Path, kids: &[&str]) -> Result<(), TokenError> {
    let mut record = read(dir);
    let before = record.len();
    record.retain(|kid, _| kids.contains(&kid.as_str()));
    if record.len() == before {
        return Ok(());
    }
    write(dir, &record)
}

/// The record, or an empty one when there is none or it cannot be read.
fn read(dir: &Path) -> Record {
    fs::read(dir.join(CREATED_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn write(dir: &Path, record: &Record) -> Result<(), TokenError> {
    let bytes = serde_json::to_vec_pretty(record).map_err(|e| TokenError::BadKeyFile {
        path: dir.join(CREATED_FILE),
        reason: e.to_string(),
    })?;
    keyfile::replace(&dir.join(CREATED_FILE), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_by_kid_and_retains_only_the_named_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(recorded(dir.path(), "a"), None);
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        record(dir.path(), "a", t).expect("record a");
        record(dir.path(), "b", t + Duration::from_secs(60)).expect("record b");
        assert_eq!(recorded(dir.path(), "a"), Some(t));
        retain(dir.path(), &["b"]).expect("retain");
        assert_eq!(recorded(dir.path(), "a"), None);
        assert_eq!(recorded(dir.path(), "b"), Some(t + Duration::from_secs(60)));
    }

    #[test]
    fn an_unreadable_record_reads_as_empty_and_is_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(CREATED_FILE), b"not json").expect("write");
        assert_eq!(recorded(dir.path(), "a"), None);
        record(dir.path(), "a", UNIX_EPOCH).expect("record");
        assert_eq!(recorded(dir.path(), "a"), Some(UNIX_EPOCH));
    }
}
