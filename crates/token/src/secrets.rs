use ring::rand::{SecureRandom as _, SystemRandom};
use subtle::ConstantTimeEq as _;

use crate::b64url;

/// `n` random bytes from the OS CSPRNG, base64url without padding: for
/// authorization codes, session cookies, CSRF tokens, `state` and `nonce`.
///
/// # Panics
/// If the OS random number generator fails: continuing with predictable
/// values would be worse than stopping.
pub fn random_opaque(n: usize) -> String {
    let mut buf = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("OS CSPRNG failed; refusing to issue predictable secrets");
    b64url(&buf)
}

/// base64url(SHA-256(verifier)): the PKCE `S256` code challenge (RFC 7636 §4.2),
/// used both to create challenges towards IdPs and to check those sent by
/// services.
pub fn pkce_s256(verifier: &str) -> String {
    b64url(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

/// Constant-time comparison of secrets (client secrets, PKCE verifiers, CSRF
/// tokens), so response timing does not leak how many leading bytes matched.
/// Only the length is compared in variable time.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_opaque_has_expected_length_and_varies() {
        let a = random_opaque(32);
        let b = random_opaque(32);
        assert_eq!(a.len(), 43); // 32 bytes -> 43 base64url chars, no padding
        assert!(!a.contains('=') && !a.contains('+') && !a.contains('/'));
        assert_ne!(a, b);
        assert_eq!(random_opaque(0), "");
    }

    #[test]
    fn secrets_equal_compares_content_and_length() {
        assert!(secrets_equal(b"abc", b"abc"));
        assert!(secrets_equal(b"", b""));
        assert!(!secrets_equal(b"abc", b"abd"));
        assert!(!secrets_equal(b"abc", b"abcd"));
        assert!(!secrets_equal(b"abc", b""));
    }
}
