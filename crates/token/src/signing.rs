use std::fmt;
use std::path::Path;

use jsonwebtoken::{Algorithm, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};

use crate::{b64url, keyfile, TokenError};

/// The hub's ES256 (P-256) signing key, used for ID tokens and request
/// objects. Only the public half ever leaves this type (via the JWKS);
/// `Debug` prints the kid only.
pub struct SigningKey {
    /// Parsed once: `jsonwebtoken` would re-parse the PKCS#8 document and re-derive the
    /// public key on every signature (a third of the cost of an ES256 signature).
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    kid: String,
    x: String,
    y: String,
}

impl SigningKey {
    /// Generates a fresh key from the OS CSPRNG.
    pub fn generate() -> Result<Self, TokenError> {
        let der = generate_pkcs8()?;
        Self::from_pkcs8_der(&der)
    }

    /// Loads a P-256 key from PKCS#8 DER (the format [`Self::load_or_generate`]
    /// persists).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, TokenError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|e| TokenError::InvalidKey(format!("not a P-256 PKCS#8 key: {e}")))?;
        let point = pair.public_key().as_ref();
        // Uncompressed SEC1 point: 0x04 || X (32 bytes) || Y (32 bytes).
        if point.len() != 65 || point[0] != 0x04 {
            return Err(TokenError::InvalidKey(
                "unexpected P-256 public key encoding".into(),
            ));
        }
        let x = b64url(&point[1..33]);
        let y = b64url(&point[33..65]);
        let kid = jwk_thumbprint(&x, &y);
        Ok(Self {
            pair,
            rng,
            kid,
            x,
            y,
        })
    }

    /// Reads the PKCS#8 DER file, or generates one and writes it (mode 0600,
    /// parent dirs created), so the key — and so the kid services have cached
    /// — survives restarts. An unreadable or corrupt file is an error
    /// ([`TokenError::BadKeyFile`]) and is never overwritten.
    pub fn load_or_generate(path: &Path) -> Result<Self, TokenError> {
        let der = keyfile::read_or_create(path, generate_pkcs8)?;
        Self::from_pkcs8_der(&der).map_err(|e| TokenError::BadKeyFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url): a kid derived from the key
    /// itself, so it changes exactly when the key does.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK: `{kty:EC,crv:P-256,x,y,kid,use:sig,alg:ES256}`.
    pub fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": self.x,
            "y": self.y,
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        })
    }

    /// `{"keys":[public_jwk]}`: the document served at the hub's `jwks_uri`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.public_jwk()] })
    }

    /// Signs `claims` as a compact JWS with header `{alg:ES256, kid, typ:JWT}`.
    pub fn sign<C: serde::Serialize>(&self, claims: &C) -> Result<String, TokenError> {
        self.sign_typed(claims, "JWT")
    }

    /// Like [`Self::sign`] with an explicit `typ` header (e.g.
    /// `oauth-authz-req+jwt`, `logout+jwt`), so a token of one kind cannot be
    /// replayed as another.
    pub fn sign_typed<C: serde::Serialize>(
        &self,
        claims: &C,
        typ: &str,
    ) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_owned());
        let encoding = |e: serde_json::Error| TokenError::Signing(e.to_string());
        let header = serde_json::to_vec(&header).map_err(encoding)?;
        let payload = serde_json::to_vec(claims).map_err(encoding)?;
        let mut jws = format!("{}.{}", b64url(&header), b64url(&payload));
        let signature = self
            .pair
            .sign(&self.rng, jws.as_bytes())
            .map_err(|_| TokenError::Signing("ES256 signing failed".into()))?;
        jws.push('.');
        jws.push_str(&b64url(signature.as_ref()));
        Ok(jws)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn generate_pkcs8() -> Result<Vec<u8>, TokenError> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| TokenError::KeyGeneration)
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, no
/// whitespace. x and y are base64url, so they need no JSON escaping.
fn jwk_thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    b64url(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn thumbprint_matches_independent_computation() {
        let key = SigningKey::generate().expect("generate");
        let jwk = key.public_jwk();
        // Recompute from the published JWK via serde_json's sorted map.
        let mut required = serde_json::Map::new();
        for m in ["crv", "kty", "x", "y"] {
            required.insert(m.to_owned(), jwk[m].clone());
        }
        let canonical = serde_json::to_string(&serde_json::Value::Object(required)).expect("json");
        assert!(canonical.starts_with(r#"{"crv":"P-256","kty":"EC","x":"#));
        let expected =
            b64url(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref());
        assert_eq!(key.kid(), expected);
        assert_eq!(jwk["kid"], key.kid());
        assert_eq!(key.kid().len(), 43);
    }

    #[test]
    fn thumbprint_rfc7638_shape() {
        // Fixed input, fixed output (guards against accidental format changes).
        let a = jwk_thumbprint("AAAA", "BBBB");
        let b = b64url(
            ring::digest::digest(
                &ring::digest::SHA256,
                br#"{"crv":"P-256","kty":"EC","x":"AAAA","y":"BBBB"}"#,
            )
            .as_ref(),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn public_jwk_has_expected_members() {
        let key = SigningKey::generate().expect("generate");
        let jwk = key.public_jwk();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["alg"], "ES256");
        assert!(
            jwk.get("d").is_none(),
            "private part must never be published"
        );
        assert_eq!(key.jwks()["keys"][0], jwk);
    }

    #[test]
    fn header_has_alg_kid_typ() {
        let key = SigningKey::generate().expect("generate");
        let jwt = key
            .sign_typed(&serde_json::json!({"exp": 1}), "logout+jwt")
            .expect("sign");
        let h = jsonwebtoken::decode_header(&jwt).expect("header");
        assert_eq!(h.alg, Algorithm::ES256);
        assert_eq!(h.kid.as_deref(), Some(key.kid()));
        assert_eq!(h.typ.as_deref(), Some("logout+jwt"));
        let h = jsonwebtoken::decode_header(&key.sign(&serde_json::json!({})).expect("sign"))
            .expect("header");
        assert_eq!(h.typ.as_deref(), Some("JWT"));
    }

    #[test]
    fn debug_prints_kid_only() {
        let key = SigningKey::generate().expect("generate");
        let d = format!("{key:?}");
        assert!(d.contains(key.kid()));
        assert!(!d.contains("encoding"));
    }

    #[test]
    fn from_pkcs8_der_rejects_garbage() {
        assert!(matches!(
            SigningKey::from_pkcs8_der(b"nope"),
            Err(TokenError::InvalidKey(_))
        ));
    }

    #[test]
    fn load_or_generate_persists_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys/sub/signing.p8");
        let a = SigningKey::load_or_generate(&path).expect("generate");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = SigningKey::load_or_generate(&path).expect("reload");
        assert_eq!(a.kid(), b.kid());
        // Same key material: a token from the reloaded key verifies with the original JWKS.
        let keys = crate::VerificationKeys::from_jwks(&a.jwks()).expect("jwks");
        let jwt = b
            .sign(&serde_json::json!({"exp": u64::MAX / 2}))
            .expect("sign");
        let _: serde_json::Value = keys
            .verify(
                &jwt,
                &crate::Expect {
                    issuer: None,
                    audience: vec![],
                    leeway_secs: 0,
                },
            )
            .expect("verify");
    }

    #[test]
    fn corrupt_key_file_is_an_error_and_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("signing.p8");
        std::fs::write(&path, b"garbage").expect("write");
        let err = SigningKey::load_or_generate(&path).expect_err("must fail");
        assert!(matches!(err, TokenError::BadKeyFile { .. }), "{err:?}");
        assert_eq!(std::fs::read(&path).expect("read"), b"garbage");
    }
}
