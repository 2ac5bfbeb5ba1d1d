//! The hub's signing keys across rotations (RFC 7517 key sets).
//!
//! A key must be published before it signs anything, and stay published while
//! tokens it signed may still be checked: relying parties cache the JWKS, so a
//! key that appears in it at the moment it starts signing would be unknown to
//! them until their cache expires. Hence three roles, one file each under the
//! keys directory (PKCS#8 DER, mode 0600):
//!
//! | file | role | in the JWKS | signs |
//! |---|---|---|---|
//! | `signing-key.p8` | current | yes | yes |
//! | `signing-key.next.p8` | next: published ahead of use | yes | no |
//! | `signing-key.previous.p8` | previous: kept so earlier tokens verify | yes | no |
//!
//! `signing-key.p8` is the file name the hub has always used, so a deployment
//! made before rotation existed loads unchanged (with no next key until
//! `init` or a first [`SigningKeys::rotate`] stages one).
//!
//! Each key the hub creates is also recorded with its creation time
//! ([`crate::CREATED_FILE`]), so that operators can be told when the current key is
//! due for rotation.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::{key_created, keyfile, SigningKey, TokenError};

/// The current key: the only one that signs.
pub const CURRENT_KEY_FILE: &str = "signing-key.p8";
/// The next key: published now, promoted to current by the next rotation.
pub const NEXT_KEY_FILE: &str = "signing-key.next.p8";
/// The key current before the last rotation: published, never used to sign.
pub const PREVIOUS_KEY_FILE: &str = "signing-key.previous.p8";

/// The hub's signing keys: the current one (which signs), the next one and the
/// previous one (published in the JWKS only). `Debug` prints kids only.
pub struct SigningKeys {
    current: SigningKey,
    /// When the current key was created, if known.
    current_created: Option<SystemTime>,
    next: Option<SigningKey>,
    previous: Option<SigningKey>,
}

/// What [`SigningKeys::rotate`] did, by kid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// There was no next key, so none could be promoted: one was created.
    /// Nothing signs differently yet; once every instance publishes it and
    /// relying parties' JWKS caches have expired, rotate again.
    NextStaged {
        /// The new next key.
        next: String,
    },
    /// previous := current, current := next, next := a fresh key.
    Rotated {
        /// The former previous key, no longer published.
        retired: Option<String>,
        /// The former current key, still published.
        previous: String,
        /// The former next key, signing from now on.
        current: String,
        /// The fresh next key.
        next: String,
    },
}

impl SigningKeys {
    /// A key set that lives only in memory, with a next key (tests, demos).
    pub fn generate() -> Result<Self, TokenError> {
        Ok(Self {
            current: SigningKey::generate()?,
            current_created: Some(SystemTime::now()),
            next: Some(SigningKey::generate()?),
            previous: None,
        })
    }

    /// Loads the keys under `dir` as a starting hub does. A missing current key
    /// is generated, and then a next key with it (a new deployment publishes its
    /// next key from the start). When the current key already exists, a missing
    /// next key is left missing: the directory may be a read-only mount of keys
    /// provisioned before rotation existed. Any existing file that is unusable
    /// is an error ([`TokenError::BadKeyFile`]), never overwritten.
    pub fn load_or_generate(dir: &Path) -> Result<Self, TokenError> {
        let fresh = !exists(&dir.join(CURRENT_KEY_FILE))?;
        let current = load_or_create(dir, CURRENT_KEY_FILE)?;
        let next = if fresh {
            Some(load_or_create(dir, NEXT_KEY_FILE)?)
        } else {
            load_existing(&dir.join(NEXT_KEY_FILE))?
        };
        Ok(Self {
            current_created: created_at(dir, &current),
            current,
            next,
            previous: load_existing(&dir.join(PREVIOUS_KEY_FILE))?,
        })
    }

    /// Loads the keys under `dir` as they are, creating nothing: what a running
    /// hub reads to follow a rotation made by `hub keys rotate` elsewhere. A
    /// missing current key or an unusable file is an error.
    ///
    /// The files are read in the reverse of the order [`Self::rotate`] writes
    /// them (next, then current, then previous), so a load that overlaps a
    /// rotation sees each file no older than the one read before it: whatever
    /// key it finds current, the key that was current before (or the one
    /// promoted) is in the set too, and no key signs that it does not publish.
    pub fn load(dir: &Path) -> Result<Self, TokenError> {
        let next = load_existing(&dir.join(NEXT_KEY_FILE))?;
        let current_path = dir.join(CURRENT_KEY_FILE);
        let Some(current) = load_existing(&current_path)? else {
            return Err(TokenError::BadKeyFile {
                path: current_path,
                reason: "missing: there is no current signing key".into(),
            });
        };
        Ok(Self {
            current_created: created_at(dir, &current),
            current,
            next,
            previous: load_existing(&dir.join(PREVIOUS_KEY_FILE))?,
        })
    }

    /// Creates whatever of the current and next keys is missing under `dir`
    /// (`hub keys init`), and loads the set.
    pub fn init(dir: &Path) -> Result<Self, TokenError> {
        let current = load_or_create(dir, CURRENT_KEY_FILE)?;
        Ok(Self {
            current_created: created_at(dir, &current),
            current,
            next: Some(load_or_create(dir, NEXT_KEY_FILE)?),
            previous: load_existing(&dir.join(PREVIOUS_KEY_FILE))?,
        })
    }

    /// Rotates the keys under `dir`: previous := current, current := next,
    /// next := a fresh key. Only one previous key is kept, so the one before
    /// is retired (no longer published). Without a next key nothing is
    /// promoted: one is created ([`Rotation::NextStaged`]), because a key that
    /// was never published must not sign.
    ///
    /// `min_next_age` guards against promoting a next key that relying parties
    /// may not have seen yet (rotating twice in a row): the next key file must
    /// be at least that old ([`TokenError::NextKeyTooNew`]). Pass zero to force.
    ///
    /// Every step replaces one file atomically, in an order where a crash at
    /// any point leaves a set that loads and never signs with an unpublished
    /// key. Running instances pick the new set up with [`Self::load`]
    /// (`crate::LiveKeys::reload`).
    pub fn rotate(dir: &Path, min_next_age: Duration) -> Result<Rotation, TokenError> {
        let current_path = dir.join(CURRENT_KEY_FILE);
        let next_path = dir.join(NEXT_KEY_FILE);
        let previous_path = dir.join(PREVIOUS_KEY_FILE);
        if !exists(&current_path)? {
            return Err(TokenError::BadKeyFile {
                path: current_path,
                reason: "missing: there is no current signing key to rotate".into(),
            });
        }
        let current_der = read(&current_path)?;
        let current = parse(&current_path, &current_der)?;
        let Some(next) = load_existing(&next_path)? else {
            let next = load_or_create(dir, NEXT_KEY_FILE)?;
            return Ok(Rotation::NextStaged {
                next: next.kid().to_owned(),
            });
        };
        let age = file_age(&next_path)?;
        if age < min_next_age {
            return Err(TokenError::NextKeyTooNew {
                path: next_path,
                age_secs: age.as_secs(),
                required_secs: min_next_age.as_secs(),
            });
        }
        let retired = load_existing(&previous_path)?
            .map(|k| k.kid().to_owned())
            .filter(|kid| kid != current.kid());

        keyfile::replace(&previous_path, &current_der)?;
        keyfile::rename(&next_path, &current_path)?;
        let fresh = load_or_create(dir, NEXT_KEY_FILE)?;
        // The record is advisory: the rotation stands even if it cannot be tidied.
        let _ = key_created::retain(dir, &[current.kid(), next.kid(), fresh.kid()]);
        Ok(Rotation::Rotated {
            retired,
            previous: current.kid().to_owned(),
            current: next.kid().to_owned(),
            next: fresh.kid().to_owned(),
        })
    }

    /// Stops publishing the previous key (deletes its file) and returns its
    /// kid, if there was one. For when tokens it signed must stop verifying
    /// before the next rotation would retire it (e.g. it leaked).
    pub fn retire_previous(dir: &Path) -> Result<Option<String>, TokenError> {
        let path = dir.join(PREVIOUS_KEY_FILE);
        let Some(previous) = load_existing(&path)? else {
            return Ok(None);
        };
        keyfile::remove(&path)?;
        Ok(Some(previous.kid().to_owned()))
    }

    /// The key that signs everything the hub issues.
    pub fn current(&self) -> &SigningKey {
        &self.current
    }

    /// When the current key was created, so that its age can be held against a rotation
    /// policy: as recorded when the hub created it ([`crate::CREATED_FILE`]), else (a key
    /// from before that record existed) when its file was last written, which a rotation
    /// keeps (the next key's file is renamed). `None` if neither is known.
    pub fn current_created_at(&self) -> Option<SystemTime> {
        self.current_created
    }

    /// The current key alone, for a holder that only signs: it cannot sign
    /// with the next or previous key by mistake (publish [`Self::jwks`] first).
    pub fn into_current(self) -> SigningKey {
        self.current
    }

    /// The key the next rotation promotes, if one is staged.
    pub fn next(&self) -> Option<&SigningKey> {
        self.next.as_ref()
    }

    /// The key current before the last rotation, if still kept.
    pub fn previous(&self) -> Option<&SigningKey> {
        self.previous.as_ref()
    }

    /// `{"keys":[current, next, previous]}` (public parts, each kid once): the
    /// document served at the hub's `jwks_uri`.
    pub fn jwks(&self) -> serde_json::Value {
        let mut kids: Vec<&str> = Vec::with_capacity(3);
        let mut keys = Vec::with_capacity(3);
        for key in [
            Some(&self.current),
            self.next.as_ref(),
            self.previous.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if !kids.contains(&key.kid()) {
                kids.push(key.kid());
                keys.push(key.public_jwk());
            }
        }
        serde_json::json!({ "keys": keys })
    }
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("current", &self.current.kid())
            .field("next", &self.next.as_ref().map(SigningKey::kid))
            .field("previous", &self.previous.as_ref().map(SigningKey::kid))
            .finish()
    }
}

fn io_err(path: &Path, source: std::io::Error) -> TokenError {
    TokenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The key in `dir/file`, created (and its creation recorded) if there is none.
fn load_or_create(dir: &Path, file: &str) -> Result<SigningKey, TokenError> {
    let path = dir.join(file);
    let existed = exists(&path)?;
    let key = SigningKey::load_or_generate(&path)?;
    if !existed {
        key_created::record(dir, key.kid(), SystemTime::now())?;
    }
    Ok(key)
}

/// When `key` (the one in `dir`'s current key file) was created: recorded, or its file's
/// modification time.
fn created_at(dir: &Path, key: &SigningKey) -> Option<SystemTime> {
    key_created::recorded(dir, key.kid()).or_else(|| {
        fs::metadata(dir.join(CURRENT_KEY_FILE))
            .and_then(|m| m.modified())
            .ok()
    })
}

fn exists(path: &Path) -> Result<bool, TokenError> {
    path.try_exists().map_err(|e| io_err(path, e))
}

fn read(path: &Path) -> Result<Vec<u8>, TokenError> {
    fs::read(path).map_err(|e| io_err(path, e))
}

fn parse(path: &Path, der: &[u8]) -> Result<SigningKey, TokenError> {
    SigningKey::from_pkcs8_der(der).map_err(|e| TokenError::BadKeyFile {
        path: PathBuf::from(path),
        reason: e.to_string(),
    })
}

/// The key in `path`, or `None` if there is no such file.
fn load_existing(path: &Path) -> Result<Option<SigningKey>, TokenError> {
    match fs::read(path) {
        Ok(der) => parse(path, &der).map(Some),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

/// Time since `path` was last written; zero if its time is in the future.
fn file_age(path: &Path) -> Result<Duration, TokenError> {
    let written = fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| io_err(path, e))?;
    Ok(SystemTime::now()
        .duration_since(written)
        .unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Expect, VerificationKeys};
    use std::os::unix::fs::PermissionsExt as _;
    use std::time::UNIX_EPOCH;

    fn kids(jwks: &serde_json::Value) -> Vec<String> {
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect()
    }

    fn any_claims() -> Expect {
        Expect {
            issuer: None,
            audience: vec![],
            leeway_secs: 0,
        }
    }

    fn sign(keys: &SigningKeys) -> String {
        keys.current()
            .sign(&serde_json::json!({"exp": u64::MAX / 2}))
            .expect("sign")
    }

    fn verifies(jwks: &serde_json::Value, jwt: &str) -> bool {
        let keys = VerificationKeys::from_jwks(jwks).expect("jwks");
        keys.verify::<serde_json::Value>(jwt, &any_claims()).is_ok()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn first_start_creates_current_and_next_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = SigningKeys::load_or_generate(dir.path()).expect("load");
        let next = keys.next().expect("a new deployment has a next key");
        assert_ne!(next.kid(), keys.current().kid());
        assert!(keys.previous().is_none());
        assert_eq!(kids(&keys.jwks()), [keys.current().kid(), next.kid()]);
        for file in [CURRENT_KEY_FILE, NEXT_KEY_FILE] {
            assert_eq!(mode(&dir.path().join(file)), 0o600, "{file}");
        }
        let again = SigningKeys::load_or_generate(dir.path()).expect("reload");
        assert_eq!(kids(&again.jwks()), kids(&keys.jwks()));
    }

    #[test]
    fn a_deployment_from_before_rotation_loads_without_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = SigningKey::load_or_generate(&dir.path().join(CURRENT_KEY_FILE)).expect("old");
        // The directory may be a read-only mount: loading must not create the next key.
        let keys = SigningKeys::load_or_generate(dir.path()).expect("load");
        assert_eq!(keys.current().kid(), old.kid());
        assert!(keys.next().is_none());
        assert_eq!(kids(&keys.jwks()), [old.kid()]);
        assert!(!dir.path().join(NEXT_KEY_FILE).exists());

        let keys = SigningKeys::init(dir.path()).expect("init");
        assert_eq!(keys.current().kid(), old.kid());
        assert!(keys.next().is_some());
    }

    #[test]
    fn rotate_promotes_the_published_next_key_and_keeps_the_old_one_published() {
        let dir = tempfile::tempdir().expect("tempdir");
        let before = SigningKeys::init(dir.path()).expect("init");
        let old_token = sign(&before);
        let promoted = before.next().expect("next").kid().to_owned();

        let rotation = SigningKeys::rotate(dir.path(), Duration::ZERO).expect("rotate");
        let after = SigningKeys::load_or_generate(dir.path()).expect("load");
        let Rotation::Rotated {
            retired,
            previous,
            current,
            next,
        } = rotation
        else {
            panic!("expected a rotation, got {rotation:?}");
        };
        assert_eq!(retired, None);
        assert_eq!(previous, before.current().kid());
        assert_eq!(current, promoted);
        assert_eq!(after.current().kid(), promoted);
        assert_eq!(after.next().expect("fresh next").kid(), next);
        assert_eq!(after.previous().expect("previous").kid(), previous);
        assert!(!kids(&before.jwks()).contains(&next));
        // The new current key was in the JWKS before it signed anything.
        assert!(verifies(&before.jwks(), &sign(&after)));
        // Tokens from before the rotation still verify.
        assert!(verifies(&after.jwks(), &old_token));
        assert_eq!(kids(&after.jwks()), [current, next, previous]);
        for file in [CURRENT_KEY_FILE, NEXT_KEY_FILE, PREVIOUS_KEY_FILE] {
            assert_eq!(mode(&dir.path().join(file)), 0o600, "{file}");
        }
    }

    #[test]
    fn a_second_rotation_retires_the_oldest_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = SigningKeys::init(dir.path()).expect("init");
        let first_token = sign(&first);
        SigningKeys::rotate(dir.path(), Duration::ZERO).expect("rotate");
        let second = SigningKeys::load_or_generate(dir.path()).expect("load");
        let rotation = SigningKeys::rotate(dir.path(), Duration::ZERO).expect("rotate again");
        assert!(
            matches!(&rotation, Rotation::Rotated { retired: Some(r), .. } if r == first.current().kid()),
            "{rotation:?}"
        );
        let third = SigningKeys::load_or_generate(dir.path()).expect("load");
        assert_eq!(
            third.previous().expect("previous").kid(),
            second.current().kid()
        );
        assert!(!kids(&third.jwks()).contains(&first.current().kid().to_owned()));
        let keys = VerificationKeys::from_jwks(&third.jwks()).expect("jwks");
        let err = keys
            .verify::<serde_json::Value>(&first_token, &any_claims())
            .expect_err("retired key");
        assert!(matches!(err, TokenError::UnknownKeyId(_)), "{err:?}");
    }

    #[test]
    fn rotate_without_a_next_key_only_stages_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = SigningKey::load_or_generate(&dir.path().join(CURRENT_KEY_FILE)).expect("old");
        let rotation = SigningKeys::rotate(dir.path(), Duration::ZERO).expect("rotate");
        let keys = SigningKeys::load_or_generate(dir.path()).expect("load");
        assert_eq!(keys.current().kid(), old.kid(), "nothing unpublished signs");
        assert_eq!(
            rotation,
            Rotation::NextStaged {
                next: keys.next().expect("staged").kid().to_owned()
            }
        );
        assert!(keys.previous().is_none());
    }

    #[test]
    fn rotate_refuses_a_next_key_younger_than_required() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = SigningKeys::init(dir.path()).expect("init");
        let err = SigningKeys::rotate(dir.path(), Duration::from_secs(3600)).expect_err("too new");
        assert!(
            matches!(err, TokenError::NextKeyTooNew { required_secs: 3600, age_secs, .. } if age_secs < 60),
            "{err:?}"
        );
        let unchanged = SigningKeys::load_or_generate(dir.path()).expect("load");
        assert_eq!(kids(&unchanged.jwks()), kids(&keys.jwks()));
        // Rotating twice in a row is exactly what the guard stops.
        SigningKeys::rotate(dir.path(), Duration::ZERO).expect("forced");
        assert!(matches!(
            SigningKeys::rotate(dir.path(), Duration::from_secs(60)),
            Err(TokenError::NextKeyTooNew { .. })
        ));
    }

    #[test]
    fn rotate_needs_a_current_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = SigningKeys::rotate(dir.path(), Duration::ZERO).expect_err("nothing to rotate");
        assert!(matches!(err, TokenError::BadKeyFile { .. }), "{err:?}");
        assert!(!dir.path().join(NEXT_KEY_FILE).exists());
    }

    #[test]
    fn a_corrupt_next_key_stops_rotation_and_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = SigningKeys::init(dir.path()).expect("init");
        fs::write(dir.path().join(NEXT_KEY_FILE), b"garbage").expect("write");
        let err = SigningKeys::rotate(dir.path(), Duration::ZERO).expect_err("corrupt");
        assert!(matches!(err, TokenError::BadKeyFile { .. }), "{err:?}");
        assert_eq!(
            fs::read(dir.path().join(NEXT_KEY_FILE)).expect("read"),
            b"garbage"
        );
        let current =
            SigningKey::load_or_generate(&dir.path().join(CURRENT_KEY_FILE)).expect("current");
        assert_eq!(current.kid(), keys.current().kid());
    }

    #[test]
    fn an_interrupted_rotation_still_loads_safely() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = SigningKeys::init(dir.path()).expect("init");
        let next = keys.next().expect("next").kid().to_owned();
        // Crash after "previous := current": previous and current are the same key.
        fs::copy(
            dir.path().join(CURRENT_KEY_FILE),
            dir.path().join(PREVIOUS_KEY_FILE),
        )
        .expect("copy");
        let loaded = SigningKeys::load_or_generate(dir.path()).expect("load");
        assert_eq!(kids(&loaded.jwks()), [keys.current().kid(), next.as_str()]);
        // Crash after "current := next": no next key; loading does not invent one.
        fs::rename(
            dir.path().join(NEXT_KEY_FILE),
            dir.path().join(CURRENT_KEY_FILE),
        )
        .expect("rename");
        let loaded = SigningKeys::load_or_generate(dir.path()).expect("load");
        assert_eq!(loaded.current().kid(), next);
        assert!(loaded.next().is_none());
        assert_eq!(
            loaded.previous().expect("previous").kid(),
            keys.current().kid()
        );
        // Re-running the rotation completes it without promoting anything unpublished.
        let rotation = SigningKeys::rotate(dir.path(), Duration::ZERO).expect("rotate");
        assert!(
            matches!(rotation, Rotation::NextStaged { .. }),
            "{rotation:?}"
        );
        let done = SigningKeys::load_or_generate(dir.path()).expect("load");
        assert_eq!(done.current().kid(), next);
    }

    #[test]
    fn retire_previous_stops_publishing_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = SigningKeys::init(dir.path()).expect("init");
        assert_eq!(
            SigningKeys::retire_previous(dir.path()).expect("none"),
            None
        );
        SigningKeys::rotate(dir.path(), Duration::ZERO).expect("rotate");
        assert_eq!(
            SigningKeys::retire_previous(dir.path()).expect("retire"),
            Some(first.current().kid().to_owned())
        );
        let keys = SigningKeys::load_or_generate(dir.path()).expect("load");
        assert!(keys.previous().is_none());
        assert!(!kids(&keys.jwks()).contains(&first.current().kid().to_owned()));
    }

    #[test]
    fn the_current_key_keeps_its_creation_time_through_a_rotation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let before = SystemTime::now() - Duration::from_secs(1);
        let keys = SigningKeys::init(dir.path()).expect("init");
        let created = keys.current_created_at().expect("recorded");
        assert!(created >= before && created <= SystemTime::now());
        // Pretend the next key was made long ago: the rotation promotes it with its age.
        let next_kid = keys.next().expect("next").kid().to_owned();
        let long_ago = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        key_created::record(dir.path(), &next_kid, long_ago).expect("record");
        SigningKeys::rotate(dir.path(), Duration::ZERO).expect("rotate");
        let rotated = SigningKeys::load_or_generate(dir.path()).expect("load");
        assert_eq!(rotated.current().kid(), next_kid);
        assert_eq!(rotated.current_created_at(), Some(long_ago));
    }

    #[test]
    fn a_key_from_before_the_record_falls_back_to_its_file_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        SigningKey::load_or_generate(&dir.path().join(CURRENT_KEY_FILE)).expect("old");
        let written = fs::metadata(dir.path().join(CURRENT_KEY_FILE))
            .and_then(|m| m.modified())
            .expect("mtime");
        let keys = SigningKeys::load_or_generate(dir.path()).expect("load");
        assert_eq!(keys.current_created_at(), Some(written));
        assert!(
            !dir.path().join(crate::CREATED_FILE).exists(),
            "nothing written"
        );
    }

    #[test]
    fn jwks_has_public_parts_only_and_debug_kids_only() {
        let keys = SigningKeys::generate().expect("generate");
        let jwks = keys.jwks();
        for jwk in jwks["keys"].as_array().expect("keys") {
            assert!(jwk.get("d").is_none(), "{jwk}");
        }
        let debug = format!("{keys:?}");
        assert!(debug.contains(keys.current().kid()), "{debug}");
        assert!(!debug.contains("encoding"), "{debug}");
    }
}
