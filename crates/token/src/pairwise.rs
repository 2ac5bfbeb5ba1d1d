use std::fmt;
use std::path::Path;

use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};

use crate::{b64url, keyfile, TokenError};

/// Length of a generated (and persisted) pairwise secret.
const SECRET_LEN: usize = 32;

/// HMAC-SHA256 secret for pairwise subject ids.
///
/// Pairwise ids let each service see a stable identifier for a user that
/// cannot be correlated with the identifiers other services see, without the
/// hub storing a mapping table. Losing or changing the secret changes every
/// id, hence it is persisted and never regenerated over an existing file.
#[derive(Clone)]
pub struct PairwiseSecret {
    key: hmac::Key,
}

impl PairwiseSecret {
    /// Reads the 32-byte secret file, or generates one and writes it (mode
    /// 0600, parent dirs created). A file of any other length is reported as
    /// [`TokenError::BadKeyFile`] and left untouched.
    pub fn load_or_generate(path: &Path) -> Result<Self, TokenError> {
        let bytes = keyfile::read_or_create(path, || {
            let mut b = vec![0u8; SECRET_LEN];
            SystemRandom::new()
                .fill(&mut b)
                .map_err(|_| TokenError::KeyGeneration)?;
            Ok(b)
        })?;
        if bytes.len() != SECRET_LEN {
            return Err(TokenError::BadKeyFile {
                path: path.to_path_buf(),
                reason: format!(
                    "pairwise secret must be exactly {SECRET_LEN} bytes, found {}",
                    bytes.len()
                ),
            });
        }
        Ok(Self::from_bytes(&bytes))
    }

    /// Uses the given bytes as the HMAC key (tests, or secrets provisioned by
    /// other means).
    pub fn from_bytes(b: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, b),
        }
    }

    /// base64url(HMAC(secret, len-prefixed sector || idp || idp_subject)).
    ///
    /// Each part is prefixed with its byte length (u32 big-endian) so that
    /// different splits of the same concatenation (`"ab","c"` vs `"a","bc"`)
    /// cannot produce the same id.
    pub fn pairwise_id(&self, sector: &str, idp: &str, idp_subject: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in [sector, idp, idp_subject] {
            // Parts over 4 GiB cannot arrive over HTTP; saturating keeps this total.
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            ctx.update(&len.to_be_bytes());
            ctx.update(part.as_bytes());
        }
        b64url(ctx.sign().as_ref())
    }
}

impl fmt::Debug for PairwiseSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairwiseSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn pairwise_id_is_stable_and_separates_inputs() {
        let s = PairwiseSecret::from_bytes(&[7u8; 32]);
        let id = s.pairwise_id("https://dept.example", "idp-a", "user-1");
        assert_eq!(id, s.pairwise_id("https://dept.example", "idp-a", "user-1"));
        assert_eq!(id.len(), 43);
        assert_ne!(
            id,
            s.pairwise_id("https://other.example", "idp-a", "user-1")
        );
        assert_ne!(id, s.pairwise_id("https://dept.example", "idp-b", "user-1"));
        assert_ne!(id, s.pairwise_id("https://dept.example", "idp-a", "user-2"));
        // Length prefixes keep different splits apart.
        assert_ne!(s.pairwise_id("ab", "c", "x"), s.pairwise_id("a", "bc", "x"));
        assert_ne!(s.pairwise_id("s", "ab", "c"), s.pairwise_id("s", "a", "bc"));
        // Different secret, different id.
        let other = PairwiseSecret::from_bytes(&[8u8; 32]);
        assert_ne!(
            id,
            other.pairwise_id("https://dept.example", "idp-a", "user-1")
        );
    }

    #[test]
    fn pairwise_id_matches_documented_construction() {
        let secret = [42u8; 32];
        let mut msg = Vec::new();
        for part in ["sector", "idp", "sub"] {
            msg.extend_from_slice(&(part.len() as u32).to_be_bytes());
            msg.extend_from_slice(part.as_bytes());
        }
        let expected =
            b64url(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &secret), &msg).as_ref());
        assert_eq!(
            PairwiseSecret::from_bytes(&secret).pairwise_id("sector", "idp", "sub"),
            expected
        );
    }

    #[test]
    fn debug_does_not_reveal_secret() {
        let s = PairwiseSecret::from_bytes(b"super-secret-value-0123456789abc");
        let d = format!("{s:?}");
        assert!(!d.contains("super-secret"));
        assert!(d.contains("redacted"));
    }

    #[test]
    fn load_or_generate_persists_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/dir/pairwise.secret");
        let a = PairwiseSecret::load_or_generate(&path).expect("generate");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).expect("read").len(), SECRET_LEN);
        let b = PairwiseSecret::load_or_generate(&path).expect("reload");
        assert_eq!(a.pairwise_id("s", "i", "u"), b.pairwise_id("s", "i", "u"));
    }

    #[test]
    fn corrupt_secret_file_is_an_error_and_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pairwise.secret");
        std::fs::write(&path, b"short").expect("write");
        let err = PairwiseSecret::load_or_generate(&path).expect_err("must fail");
        assert!(matches!(err, TokenError::BadKeyFile { .. }), "{err:?}");
        assert_eq!(std::fs::read(&path).expect("read"), b"short");
    }
}
