//! The signing keys a running hub uses, replaced whole while it runs.
//!
//! `hub keys rotate` rewrites the key files under the keys directory; every
//! instance of a deployment reloads them ([`LiveKeys::reload`], called every
//! few seconds) and swaps the new set in at once. Everything that signs or
//! publishes holds the same [`LiveKeys`] and reads one [`KeySnapshot`] per
//! use, so the key that signs and the keys published beside it always come
//! from the same set.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::{SigningKey, SigningKeys, TokenError, VerificationKeys};

/// One set of the hub's signing keys as loaded: the current key (the only
/// one that signs), the published JWKS (current, next, previous) and the same
/// keys for verifying what the hub itself signed.
pub struct KeySnapshot {
    signer: Arc<SigningKey>,
    jwks: serde_json::Value,
    verification: VerificationKeys,
    published: Vec<String>,
}

impl KeySnapshot {
    fn of(keys: SigningKeys) -> Result<Self, TokenError> {
        let jwks = keys.jwks();
        let verification = VerificationKeys::from_jwks(&jwks)?;
        let published = jwks["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["kid"].as_str().map(str::to_owned))
            .collect();
        Ok(Self {
            signer: Arc::new(keys.into_current()),
            jwks,
            verification,
            published,
        })
    }

    /// The current key: what signs ID tokens, client assertions, matching
    /// requests and the log's seal.
    pub fn signer(&self) -> &Arc<SigningKey> {
        &self.signer
    }

    /// `{"keys":[current, next, previous]}` (public parts): the hub's `/jwks`.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    /// Every published key. What the hub checks its own signatures with: another
    /// instance may already sign with a key this one has only as next, or still
    /// with the one it has as previous.
    pub fn verification_keys(&self) -> &VerificationKeys {
        &self.verification
    }

    /// The kids of [`Self::jwks`], current first.
    pub fn published_kids(&self) -> &[String] {
        &self.published
    }

    /// Same current key and same published keys.
    fn same_keys(&self, other: &Self) -> bool {
        self.signer.kid() == other.signer.kid() && self.published == other.published
    }
}

impl fmt::Debug for KeySnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySnapshot")
            .field("current", &self.signer.kid())
            .field("published", &self.published)
            .finish()
    }
}

/// What a reload changed, by kid (public identifiers, fit for logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    /// The key that signs from now on.
    pub current: String,
    /// The keys published from now on, current first.
    pub published: Vec<String>,
}

/// The shared handle to the hub's live signing keys: cheap to clone, read
/// without locking, replaced atomically by [`Self::reload`].
#[derive(Clone)]
pub struct LiveKeys {
    keys: Arc<ArcSwap<KeySnapshot>>,
}

impl LiveKeys {
    /// Starts from `keys` (as loaded at start-up).
    pub fn new(keys: SigningKeys) -> Result<Self, TokenError> {
        Ok(Self {
            keys: Arc::new(ArcSwap::from_pointee(KeySnapshot::of(keys)?)),
        })
    }

    /// The keys in use now. Take one snapshot per operation, so that what signs
    /// and what is published beside it belong together.
    pub fn snapshot(&self) -> Arc<KeySnapshot> {
        self.keys.load_full()
    }

    /// The current key now.
    pub fn signer(&self) -> Arc<SigningKey> {
        self.keys.load().signer.clone()
    }

    /// Reads the key files under `dir` ([`SigningKeys::load`]) and, if they
    /// differ from the keys in use, swaps them in: `Some` of what changed. On an
    /// error (a missing or unusable file) the keys in use stay as they were.
    pub fn reload(&self, dir: &Path) -> Result<Option<KeyChange>, TokenError> {
        let loaded = KeySnapshot::of(SigningKeys::load(dir)?)?;
        if loaded.same_keys(&self.keys.load()) {
            return Ok(None);
        }
        let change = KeyChange {
            current: loaded.signer.kid().to_owned(),
            published: loaded.published.clone(),
        };
        self.keys.store(Arc::new(loaded));
        Ok(Some(change))
    }
}

impl fmt::Debug for LiveKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LiveKeys").field(&*self.keys.load()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::time::Duration;

    use super::*;
    use crate::{Expect, CURRENT_KEY_FILE, NEXT_KEY_FILE};

    fn any_claims() -> Expect {
        Expect {
            issuer: None,
            audience: vec![],
            leeway_secs: 0,
        }
    }

    fn signed_now(live: &LiveKeys) -> String {
        live.signer()
            .sign(&serde_json::json!({"exp": u64::MAX / 2}))
            .expect("sign")
    }

    #[test]
    fn reload_follows_a_rotation_and_a_retirement() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = LiveKeys::new(SigningKeys::init(dir.path()).expect("init")).expect("live");
        let before = live.snapshot();
        let old_token = signed_now(&live);
        assert_eq!(live.reload(dir.path()).expect("unchanged"), None);

        SigningKeys::rotate(dir.path(), Duration::ZERO).expect("rotate");
        let change = live.reload(dir.path()).expect("reload").expect("changed");
        let after = live.snapshot();
        assert_eq!(change.current, before.published_kids()[1], "next promoted");
        assert_eq!(change.published, after.published_kids());
        assert_eq!(after.signer().kid(), change.current);
        // What the new key signs verifies with the keys published before the rotation,
        // and what the old key signed still verifies with the new set.
        let new_token = signed_now(&live);
        for (keys, jwt) in [(&before, &new_token), (&after, &old_token)] {
            keys.verification_keys()
                .verify::<serde_json::Value>(jwt, &any_claims())
                .expect("verifies");
        }
        // A snapshot taken before the swap stays whole.
        assert_eq!(before.signer().kid(), before.published_kids()[0]);

        SigningKeys::retire_previous(dir.path()).expect("retire");
        let change = live.reload(dir.path()).expect("reload").expect("changed");
        assert_eq!(change.published.len(), 2);
        assert!(live
            .snapshot()
            .verification_keys()
            .verify::<serde_json::Value>(&old_token, &any_claims())
            .is_err());
    }

    #[test]
    fn a_failed_reload_keeps_the_keys_in_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = LiveKeys::new(SigningKeys::init(dir.path()).expect("init")).expect("live");
        let before = live.snapshot();
        fs::write(dir.path().join(NEXT_KEY_FILE), b"half a key").expect("write");
        let err = live.reload(dir.path()).expect_err("corrupt next key");
        assert!(matches!(err, TokenError::BadKeyFile { .. }), "{err:?}");
        fs::remove_file(dir.path().join(CURRENT_KEY_FILE)).expect("remove");
        live.reload(dir.path()).expect_err("no current key");
        let after = live.snapshot();
        assert_eq!(after.published_kids(), before.published_kids());
        assert_eq!(after.signer().kid(), before.signer().kid());
    }

    #[test]
    fn debug_shows_kids_only() {
        let live = LiveKeys::new(SigningKeys::generate().expect("keys")).expect("live");
        let debug = format!("{live:?}");
        assert!(debug.contains(live.signer().kid()), "{debug}");
        assert!(!debug.contains("\"d\""), "{debug}");
    }
}
