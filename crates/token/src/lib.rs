//! Signing keys, JWS signing and verification, JWKS, pairwise subject ids and
//! small secret helpers.
//!
//! This is the only crate of the hub that touches private key material, so
//! that key handling (generation, rotation, persistence with restrictive
//! permissions, algorithm and key-size allow-listing on verification) can be
//! reviewed in one place.

mod ed25519;
mod error;
mod key_created;
mod keyfile;
mod keyset;
mod live;
mod pairwise;
mod secrets;
mod signing;
mod verify;

pub use ed25519::Ed25519Key;
pub use error::TokenError;
pub use key_created::CREATED_FILE;
pub use keyset::{Rotation, SigningKeys, CURRENT_KEY_FILE, NEXT_KEY_FILE, PREVIOUS_KEY_FILE};
pub use live::{KeyChange, KeySnapshot, LiveKeys};
pub use pairwise::PairwiseSecret;
pub use secrets::{pkce_s256, random_opaque, secrets_equal};
pub use signing::SigningKey;
pub use verify::{
    unverified_issuer, unverified_typ, Expect, VerificationKeys, ALLOWED_ALGORITHMS, MAX_RSA_BITS,
    MIN_RSA_BITS,
};

/// Re-exported so callers can name [`ALLOWED_ALGORITHMS`] entries without
/// depending on `jsonwebtoken` themselves.
pub use jsonwebtoken::Algorithm;

/// base64url without padding: the encoding JOSE and OAuth use everywhere.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
