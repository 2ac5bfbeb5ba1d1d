use std::path::PathBuf;

/// Everything that can go wrong in this crate.
///
/// Verification failures get distinct variants so callers can log *why* a
/// token was rejected (and tests can assert it), while still treating every
/// variant of [`TokenError::is_verification_failure`] as "untrusted input".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The OS random number generator or key generation failed.
    #[error("key generation failed")]
    KeyGeneration,
    /// Key bytes (PKCS#8 DER, JWK parameters) are not a usable key.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A persisted key or secret file exists but its content is unusable. It is
    /// never overwritten automatically: replacing it would silently change
    /// every signature or pairwise id.
    #[error("bad key file {path}: {reason}")]
    BadKeyFile {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing a key or secret file failed.
    #[error("key file i/o error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A key rotation would promote a next key written less than the required
    /// time ago, which relying parties may not have fetched yet.
    #[error(
        "next key {path} was written {age_secs} s ago; it must have been published for \
         {required_secs} s before it may sign"
    )]
    NextKeyTooNew {
        /// The next key's file.
        path: PathBuf,
        /// Seconds since it was written.
        age_secs: u64,
        /// Seconds required.
        required_secs: u64,
    },
    /// Producing a signed token failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// A JWKS document could not be used.
    #[error("invalid JWKS: {0}")]
    InvalidJwks(String),
    /// The token is not a well-formed compact JWS.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header `alg` is not in [`crate::ALLOWED_ALGORITHMS`] (e.g. `none`, `HS256`).
    #[error("algorithm not allowed: {0}")]
    DisallowedAlgorithm(String),
    /// No key in the JWKS has the token's `kid` (or, without a `kid`, no key
    /// fits the algorithm).
    #[error("unknown key id: {}", .0.as_deref().unwrap_or("<none>"))]
    UnknownKeyId(Option<String>),
    /// The token has no `kid` and several keys could verify it.
    #[error("token has no kid and several keys match its algorithm")]
    AmbiguousKey,
    /// The selected key cannot be used with the header `alg` (wrong key type
    /// or curve, a different `alg` stated in the JWK, or not a signing key).
    #[error("key {kid:?} cannot be used with algorithm {alg}")]
    KeyAlgorithmMismatch {
        /// The key id from the token header.
        kid: Option<String>,
        /// The header algorithm.
        alg: String,
    },
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not the expected issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain any expected audience.
    #[error("wrong audience")]
    WrongAudience,
    /// A claim required for validation (`exp`, `iss`, `aud`) is absent.
    #[error("missing required claim: {0}")]
    MissingClaim(String),
    /// The payload does not deserialize into the requested claims type.
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
}

impl TokenError {
    /// True for errors caused by the token presented (as opposed to local
    /// configuration or I/O), so callers can answer "invalid token" rather
    /// than "server error".
    pub fn is_verification_failure(&self) -> bool {
        matches!(
            self,
            Self::Malformed(_)
                | Self::DisallowedAlgorithm(_)
                | Self::UnknownKeyId(_)
                | Self::AmbiguousKey
                | Self::KeyAlgorithmMismatch { .. }
                | Self::BadSignature
                | Self::Expired
                | Self::NotYetValid
                | Self::WrongIssuer
                | Self::WrongAudience
                | Self::MissingClaim(_)
                | Self::InvalidClaims(_)
        )
    }

    /// Maps a `jsonwebtoken` verification error to our variants.
    pub(crate) fn from_verify(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature | K::Crypto(_) => Self::BadSignature,
            K::ExpiredSignature => Self::Expired,
            K::ImmatureSignature => Self::NotYetValid,
            K::InvalidIssuer => Self::WrongIssuer,
            K::InvalidAudience => Self::WrongAudience,
            K::MissingRequiredClaim(c) => Self::MissingClaim(c.clone()),
            K::InvalidAlgorithm | K::MissingAlgorithm | K::InvalidAlgorithmName => {
                Self::DisallowedAlgorithm(e.to_string())
            }
            K::InvalidEcdsaKey | K::InvalidRsaKey(_) | K::InvalidKeyFormat => {
                Self::InvalidKey(e.to_string())
            }
            K::Json(_) => Self::InvalidClaims(e.to_string()),
            _ => Self::Malformed(e.to_string()),
        }
    }
}
