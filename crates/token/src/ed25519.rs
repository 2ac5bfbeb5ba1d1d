//! The Ed25519 key that signs the verification log's checkpoint notes
//! (C2SP signed-note), which witnesses and their tools verify; JOSE tokens
//! stay ES256 ([`crate::SigningKey`]).

use std::fmt;
use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

use crate::{keyfile, TokenError};

/// An Ed25519 signing key. Only the public half leaves this type; `Debug`
/// prints nothing of the key.
pub struct Ed25519Key {
    pair: Ed25519KeyPair,
}

impl fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Key").finish_non_exhaustive()
    }
}

impl Ed25519Key {
    /// Generates a fresh key from the OS CSPRNG.
    pub fn generate() -> Result<Self, TokenError> {
        Self::from_pkcs8_der(&generate_pkcs8()?)
    }

    /// Loads a PKCS#8 v2 DER document (the format [`Self::load_or_generate`]
    /// persists).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, TokenError> {
        Ed25519KeyPair::from_pkcs8(der)
            .map(|pair| Self { pair })
            .map_err(|e| TokenError::InvalidKey(format!("not an Ed25519 PKCS#8 v2 key: {e}")))
    }

    /// The key of a 32-byte seed (RFC 8032 private key), as test vectors give it.
    pub fn from_seed(seed: &[u8]) -> Result<Self, TokenError> {
        Ed25519KeyPair::from_seed_unchecked(seed)
            .map(|pair| Self { pair })
            .map_err(|e| TokenError::InvalidKey(format!("not an Ed25519 seed: {e}")))
    }

    /// Reads the PKCS#8 file, or generates one and writes it (mode 0600), so
    /// the key witnesses have pinned survives restarts. A corrupt file is an
    /// error ([`TokenError::BadKeyFile`]) and is never overwritten.
    pub fn load_or_generate(path: &Path) -> Result<Self, TokenError> {
        let der = keyfile::read_or_create(path, generate_pkcs8)?;
        Self::from_pkcs8_der(&der).map_err(|e| TokenError::BadKeyFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        key
    }

    /// The 64-byte signature of `message` (deterministic, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

fn generate_pkcs8() -> Result<Vec<u8>, TokenError> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| TokenError::KeyGeneration)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use ring::signature::{UnparsedPublicKey, ED25519};

    use super::*;

    #[test]
    fn persists_with_mode_0600_and_signs_verifiably() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys/log-note.ed25519");
        let a = Ed25519Key::load_or_generate(&path).expect("generate");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = Ed25519Key::load_or_generate(&path).expect("reload");
        assert_eq!(a.public_key(), b.public_key());
        let signature = b.sign(b"checkpoint");
        UnparsedPublicKey::new(&ED25519, a.public_key())
            .verify(b"checkpoint", &signature)
            .expect("verifies");
        assert_eq!(format!("{a:?}"), "Ed25519Key { .. }");
    }

    #[test]
    fn corrupt_file_is_an_error_and_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log-note.ed25519");
        std::fs::write(&path, b"not a key").expect("write");
        let err = Ed25519Key::load_or_generate(&path).expect_err("must fail");
        assert!(matches!(err, TokenError::BadKeyFile { .. }), "{err:?}");
        assert_eq!(std::fs::read(&path).expect("read"), b"not a key");
    }
}
