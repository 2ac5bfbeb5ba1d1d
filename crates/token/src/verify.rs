use std::fmt;

use base64::Engine as _;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::TokenError;

/// Signature algorithms accepted from peers. Never `none` and never HS*:
/// a symmetric algorithm would let anyone holding the (public) verification
/// key forge tokens.
pub const ALLOWED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::PS256,
];

/// Smallest RSA modulus accepted from a peer (NIST SP 800-57: 1024-bit keys are
/// breakable by well-funded attackers and disallowed for signatures since 2013).
pub const MIN_RSA_BITS: usize = 2048;

/// Largest RSA modulus accepted: the most `ring` verifies, and a bound on the
/// work a peer's key can make each verification cost.
pub const MAX_RSA_BITS: usize = 8192;

/// Upper bound applied to [`Expect::leeway_secs`]: a larger clock skew
/// allowance would make `exp` meaningless.
const MAX_LEEWAY_SECS: u64 = 24 * 60 * 60;

/// What a verified token must say about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// Required `iss`; `None` skips the check (only when the caller checks it itself).
    pub issuer: Option<String>,
    /// Acceptable audiences: `aud` must contain at least one. Empty skips the check.
    pub audience: Vec<String>,
    /// Allowed clock skew for `exp`/`nbf`, in seconds (capped at one day).
    pub leeway_secs: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    P256,
    P384,
    Rsa,
}

#[derive(Clone)]
struct PeerKey {
    kid: Option<String>,
    kind: KeyKind,
    /// `alg` stated in the JWK, if any.
    alg: Option<KeyAlgorithm>,
    decoding: DecodingKey,
}

impl PeerKey {
    /// Whether this key may verify a token with header `alg`.
    fn fits(&self, alg: Algorithm) -> bool {
        let kind_ok = match alg {
            Algorithm::ES256 => self.kind == KeyKind::P256,
            Algorithm::ES384 => self.kind == KeyKind::P384,
            Algorithm::RS256 | Algorithm::PS256 => self.kind == KeyKind::Rsa,
            _ => false,
        };
        kind_ok && self.alg.is_none_or(|k| alg_name_of_key(k) == alg_name(alg))
    }
}

/// Public keys of a peer (from its JWKS document) plus verification with an
/// algorithm allow-list, key-type checks and claim validation, so callers
/// cannot forget any of them.
#[derive(Clone)]
pub struct VerificationKeys {
    keys: Vec<PeerKey>,
}

impl VerificationKeys {
    /// Parses a JWKS document (as fetched from a `jwks_uri`).
    pub fn from_jwks_json(json: &str) -> Result<Self, TokenError> {
        let v: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| TokenError::InvalidJwks(format!("not JSON: {e}")))?;
        Self::from_jwks(&v)
    }

    /// Builds the key set from a parsed JWKS document. Keys that cannot verify
    /// an allowed algorithm (symmetric, Ed25519, P-521, encryption-only, RSA
    /// outside [`MIN_RSA_BITS`]..=[`MAX_RSA_BITS`], unparseable) are skipped so
    /// one exotic or outdated key in a peer's set does not break the others; a
    /// token naming a skipped key's kid is then [`TokenError::UnknownKeyId`].
    /// A set with no usable signing key is an error that says why each key was
    /// skipped.
    pub fn from_jwks(v: &serde_json::Value) -> Result<Self, TokenError> {
        let entries = v
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| TokenError::InvalidJwks("missing \"keys\" array".into()))?;
        let mut keys = Vec::with_capacity(entries.len());
        let mut skipped = Vec::new();
        for entry in entries {
            match peer_key(entry) {
                Ok(key) => keys.push(key),
                Err(why) => skipped.push(why),
            }
        }
        if keys.is_empty() {
            let mut reason = "no usable signing key".to_owned();
            if !skipped.is_empty() {
                reason.push_str(": ");
                reason.push_str(&skipped.join("; "));
            }
            return Err(TokenError::InvalidJwks(reason));
        }
        Ok(Self { keys })
    }

    /// Verifies the signature of a compact JWS and validates its claims
    /// (`exp` required; `nbf` if present; `iss` and `aud` per `expect`), then
    /// deserializes the payload into `C`.
    ///
    /// Keys embedded in the token header (`jwk`, `jku`, `x5u`, `x5c`) are
    /// ignored: only keys from the configured JWKS are trusted.
    pub fn verify<C: serde::de::DeserializeOwned>(
        &self,
        jwt: &str,
        expect: &Expect,
    ) -> Result<C, TokenError> {
        let header = RawHeader::parse(jwt)?;
        let alg = ALLOWED_ALGORITHMS
            .iter()
            .copied()
            .find(|a| alg_name(*a) == header.alg)
            .ok_or_else(|| TokenError::DisallowedAlgorithm(header.alg.clone()))?;
        let key = self.select(header.kid.as_deref(), alg)?;

        let mut validation = Validation::new(alg);
        validation.leeway = expect.leeway_secs.min(MAX_LEEWAY_SECS);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &expect.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        if expect.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&expect.audience);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);

        jsonwebtoken::decode::<C>(jwt, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(TokenError::from_verify)
    }

    /// Picks the key by `kid`; without a `kid`, the single key fitting `alg`.
    fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<&PeerKey, TokenError> {
        let mismatch = || TokenError::KeyAlgorithmMismatch {
            kid: kid.map(str::to_owned),
            alg: alg_name(alg).to_owned(),
        };
        match kid {
            Some(kid) => {
                let mut with_kid = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .peekable();
                if with_kid.peek().is_none() {
                    return Err(TokenError::UnknownKeyId(Some(kid.to_owned())));
                }
                with_kid.find(|k| k.fits(alg)).ok_or_else(mismatch)
            }
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Ok(k),
                    (Some(_), Some(_)) => Err(TokenError::AmbiguousKey),
                    (None, _) => Err(TokenError::UnknownKeyId(None)),
                }
            }
        }
    }
}

impl fmt::Debug for VerificationKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for k in &self.keys {
            list.entry(&(k.kid.as_deref(), k.kind, k.alg));
        }
        list.finish()
    }
}

/// Converts one JWK entry, or says why it cannot verify an allowed algorithm
/// (naming the key by its kid only: the reason ends up in logs).
fn peer_key(v: &serde_json::Value) -> Result<PeerKey, String> {
    let kid = v.get("kid").and_then(serde_json::Value::as_str);
    let name = || match kid {
        Some(kid) => format!("key {kid:?}"),
        None => "key without kid".to_owned(),
    };
    let jwk: Jwk =
        serde_json::from_value(v.clone()).map_err(|e| format!("{}: not a JWK: {e}", name()))?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return Err(format!("{}: not a signing key", name()));
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.contains(&KeyOperations::Verify) {
            return Err(format!("{}: key_ops does not allow verify", name()));
        }
    }
    let kind = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => KeyKind::P256,
            EllipticCurve::P384 => KeyKind::P384,
            _ => return Err(format!("{}: curve not allowed", name())),
        },
        AlgorithmParameters::RSA(p) => {
            let bits = rsa_modulus_bits(&p.n)
                .ok_or_else(|| format!("{}: RSA modulus is not base64url", name()))?;
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(format!(
                    "{}: RSA key of {bits} bits, allowed {MIN_RSA_BITS} to {MAX_RSA_BITS}",
                    name()
                ));
            }
            KeyKind::Rsa
        }
        // Never accept symmetric keys from a peer; EdDSA is not allowed.
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::OctetKeyPair(_) => {
            return Err(format!("{}: key type not allowed", name()));
        }
    };
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| format!("{}: unusable: {e}", name()))?;
    Ok(PeerKey {
        kid: jwk.common.key_id,
        kind,
        alg: jwk.common.key_algorithm,
        decoding,
    })
}

/// Size in bits of a base64url (big-endian) RSA modulus, leading zeros ignored.
fn rsa_modulus_bits(n: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(n)
        .ok()?;
    let Some(first) = bytes.iter().position(|b| *b != 0) else {
        return Some(0);
    };
    let top = bytes[first];
    Some((bytes.len() - first - 1) * 8 + (8 - top.leading_zeros() as usize))
}

fn alg_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
    }
}

fn alg_name_of_key(k: KeyAlgorithm) -> &'static str {
    match k {
        KeyAlgorithm::ES256 => "ES256",
        KeyAlgorithm::ES384 => "ES384",
        KeyAlgorithm::RS256 => "RS256",
        KeyAlgorithm::PS256 => "PS256",
        // Anything else can never equal an allowed header alg.
        _ => "",
    }
}

/// The header members we decide on before handing the token to `jsonwebtoken`,
/// parsed by hand so that `alg: none` and unknown algorithms get a precise error.
struct RawHeader {
    alg: String,
    kid: Option<String>,
}

impl RawHeader {
    fn parse(jwt: &str) -> Result<Self, TokenError> {
        let mut parts = jwt.split('.');
        let (Some(h), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed(
                "expected three dot-separated parts".into(),
            ));
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .map_err(|e| TokenError::Malformed(format!("header is not base64url: {e}")))?;
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| TokenError::Malformed(format!("header is not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| TokenError::Malformed("header is not an object".into()))?;
        if obj.contains_key("crit") {
            // RFC 7515 §4.1.11: we understand no extensions, so must reject.
            return Err(TokenError::Malformed(
                "unsupported critical header parameters".into(),
            ));
        }
        let alg = obj
            .get("alg")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| TokenError::Malformed("header has no alg".into()))?
            .to_owned();
        let kid = match obj.get("kid") {
            None => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(TokenError::Malformed("kid is not a string".into())),
        };
        Ok(Self { alg, kid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{b64url, SigningKey};
    use jsonwebtoken::{EncodingKey, Header};
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Claims {
        iss: String,
        aud: String,
        sub: String,
        exp: u64,
        nonce: String,
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    }

    fn claims() -> Claims {
        Claims {
            iss: "https://idp.example".into(),
            aud: "hub".into(),
            sub: "user-1".into(),
            exp: now() + 300,
            nonce: "n-0S6_WzA2Mj".into(),
        }
    }

    fn expect() -> Expect {
        Expect {
            issuer: Some("https://idp.example".into()),
            audience: vec!["hub".into()],
            leeway_secs: 0,
        }
    }

    fn setup() -> (SigningKey, VerificationKeys) {
        let key = SigningKey::generate().expect("generate");
        let keys = VerificationKeys::from_jwks_json(&key.jwks().to_string()).expect("jwks");
        (key, keys)
    }

    /// Builds a token from raw parts with an arbitrary header (for attacks).
    fn raw_token(header: &serde_json::Value, payload: &serde_json::Value, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(payload.to_string().as_bytes()),
            b64url(sig)
        )
    }

    fn verify_value(
        keys: &VerificationKeys,
        jwt: &str,
        e: &Expect,
    ) -> Result<serde_json::Value, TokenError> {
        keys.verify(jwt, e)
    }

    #[test]
    fn round_trip_through_jwks() {
        let (key, keys) = setup();
        let c = claims();
        let jwt = key.sign(&c).expect("sign");
        let got: Claims = keys.verify(&jwt, &expect()).expect("verify");
        assert_eq!(got, c);
    }

    #[test]
    fn audience_may_be_an_array_and_any_expected_matches() {
        let (key, keys) = setup();
        let jwt = key
            .sign(
                &json!({"iss": "https://idp.example", "aud": ["other", "hub"], "exp": now() + 60}),
            )
            .expect("sign");
        let e = Expect {
            audience: vec!["nope".into(), "hub".into()],
            ..expect()
        };
        verify_value(&keys, &jwt, &e).expect("verify");
    }

    #[test]
    fn wrong_issuer_rejected() {
        let (key, keys) = setup();
        let jwt = key
            .sign(&Claims {
                iss: "https://evil.example".into(),
                ..claims()
            })
            .expect("sign");
        assert!(matches!(
            verify_value(&keys, &jwt, &expect()),
            Err(TokenError::WrongIssuer)
        ));
    }

    #[test]
    fn missing_issuer_rejected_when_expected() {
        let (key, keys) = setup();
        let jwt = key
            .sign(&json!({"aud": "hub", "exp": now() + 60}))
            .expect("sign");
        let err = verify_value(&keys, &jwt, &expect()).expect_err("must fail");
        assert!(
            matches!(err, TokenError::MissingClaim(ref c) if c == "iss"),
            "{err:?}"
        );
    }

    #[test]
    fn wrong_audience_rejected() {
        let (key, keys) = setup();
        let jwt = key
            .sign(&Claims {
                aud: "someone-else".into(),
                ..claims()
            })
            .expect("sign");
        assert!(matches!(
            verify_value(&keys, &jwt, &expect()),
            Err(TokenError::WrongAudience)
        ));
        let jwt = key
            .sign(&json!({"iss": "https://idp.example", "exp": now() + 60}))
            .expect("sign");
        let err = verify_value(&keys, &jwt, &expect()).expect_err("must fail");
        assert!(
            matches!(err, TokenError::MissingClaim(ref c) if c == "aud"),
            "{err:?}"
        );
    }

    #[test]
    fn expired_rejected_and_leeway_applies() {
        let (key, keys) = setup();
        let jwt = key
            .sign(&Claims {
                exp: now() - 120,
                ..claims()
            })
            .expect("sign");
        assert!(matches!(
            verify_value(&keys, &jwt, &expect()),
            Err(TokenError::Expired)
        ));
        let lenient = Expect {
            leeway_secs: 600,
            ..expect()
        };
        verify_value(&keys, &jwt, &lenient).expect("within leeway");
    }

    #[test]
    fn exp_is_required() {
        let (key, keys) = setup();
        let jwt = key
            .sign(&json!({"iss": "https://idp.example", "aud": "hub"}))
            .expect("sign");
        let err = verify_value(&keys, &jwt, &expect()).expect_err("must fail");
        assert!(
            matches!(err, TokenError::MissingClaim(ref c) if c == "exp"),
            "{err:?}"
        );
    }

    #[test]
    fn not_yet_valid_rejected() {
        let (key, keys) = setup();
        let jwt = key
            .sign(&json!({"iss": "https://idp.example", "aud": "hub", "exp": now() + 9000, "nbf": now() + 3600}))
            .expect("sign");
        assert!(matches!(
            verify_value(&keys, &jwt, &expect()),
            Err(TokenError::NotYetValid)
        ));
    }

    #[test]
    fn tampered_payload_rejected() {
        let (key, keys) = setup();
        let jwt = key.sign(&claims()).expect("sign");
        let parts: Vec<&str> = jwt.split('.').collect();
        let forged = Claims {
            sub: "admin".into(),
            ..claims()
        };
        let forged_payload = b64url(serde_json::to_string(&forged).expect("json").as_bytes());
        let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert!(matches!(
            verify_value(&keys, &tampered, &expect()),
            Err(TokenError::BadSignature)
        ));
        // Flipping a signature character also fails.
        let mut sig = parts[2].to_owned();
        let last = if sig.ends_with('A') { "B" } else { "A" };
        sig.replace_range(sig.len() - 1.., last);
        let bad_sig = format!("{}.{}.{}", parts[0], parts[1], sig);
        assert!(verify_value(&keys, &bad_sig, &expect()).is_err());
    }

    #[test]
    fn alg_none_rejected() {
        let (key, keys) = setup();
        let payload = serde_json::to_value(claims()).expect("json");
        for alg in ["none", "None", "NONE"] {
            let jwt = raw_token(&json!({"alg": alg, "kid": key.kid()}), &payload, b"");
            let err = verify_value(&keys, &jwt, &expect()).expect_err("must fail");
            assert!(matches!(err, TokenError::DisallowedAlgorithm(_)), "{err:?}");
            // Also with a trailing-dot-free form.
            let stripped = jwt.trim_end_matches('.').to_owned();
            assert!(verify_value(&keys, &stripped, &expect()).is_err());
        }
    }

    #[test]
    fn hs256_signed_with_public_key_rejected() {
        let (key, keys) = setup();
        let jwk = key.public_jwk();
        let mut point = vec![0x04];
        for m in ["x", "y"] {
            let s = jwk[m].as_str().expect("coordinate");
            point.extend(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(s)
                    .expect("b64"),
            );
        }
        let secrets: Vec<Vec<u8>> = vec![
            point,
            jwk.to_string().into_bytes(),
            key.jwks().to_string().into_bytes(),
        ];
        for secret in secrets {
            for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                let mut header = Header::new(alg);
                header.kid = Some(key.kid().to_owned());
                let jwt =
                    jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&secret))
                        .expect("hs");
                let err = verify_value(&keys, &jwt, &expect()).expect_err("must fail");
                assert!(matches!(err, TokenError::DisallowedAlgorithm(_)), "{err:?}");
            }
        }
    }

    #[test]
    fn symmetric_keys_in_jwks_are_never_used() {
        let k = b64url(b"shared-secret");
        let only_oct = json!({"keys": [{"kty": "oct", "k": k, "kid": "h"}]});
        assert!(matches!(
            VerificationKeys::from_jwks(&only_oct),
            Err(TokenError::InvalidJwks(_))
        ));
        let key = SigningKey::generate().expect("generate");
        let mixed = json!({"keys": [{"kty": "oct", "k": k, "kid": "h"}, key.public_jwk()]});
        let keys = VerificationKeys::from_jwks(&mixed).expect("mixed");
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("h".into());
        let jwt = jsonwebtoken::encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(b"shared-secret"),
        )
        .expect("hs");
        assert!(verify_value(&keys, &jwt, &expect()).is_err());
        // The usable EC key still works.
        verify_value(&keys, &key.sign(&claims()).expect("sign"), &expect()).expect("verify");
    }

    #[test]
    fn token_from_another_key_rejected() {
        let (key, keys) = setup();
        let other = SigningKey::generate().expect("generate");
        // With its own kid: unknown.
        let jwt = other.sign(&claims()).expect("sign");
        assert!(matches!(
            verify_value(&keys, &jwt, &expect()),
            Err(TokenError::UnknownKeyId(Some(_)))
        ));
        // Claiming the trusted kid: bad signature.
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid().to_owned());
        let other_der = EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SystemRandom::new(),
        )
        .expect("gen");
        let jwt = jsonwebtoken::encode(
            &header,
            &claims(),
            &EncodingKey::from_ec_der(other_der.as_ref()),
        )
        .expect("sign");
        assert!(matches!(
            verify_value(&keys, &jwt, &expect()),
            Err(TokenError::BadSignature)
        ));
    }

    #[test]
    fn token_without_kid_uses_the_single_fitting_key() {
        let key_der = EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SystemRandom::new(),
        )
        .expect("gen");
        let key = SigningKey::from_pkcs8_der(key_der.as_ref()).expect("key");
        let no_kid = jsonwebtoken::encode(
            &Header::new(Algorithm::ES256),
            &claims(),
            &EncodingKey::from_ec_der(key_der.as_ref()),
        )
        .expect("sign");
        let single = VerificationKeys::from_jwks(&key.jwks()).expect("jwks");
        verify_value(&single, &no_kid, &expect()).expect("single key");

        let other = SigningKey::generate().expect("generate");
        let two =
            VerificationKeys::from_jwks(&json!({"keys": [key.public_jwk(), other.public_jwk()]}))
                .expect("jwks");
        assert!(matches!(
            verify_value(&two, &no_kid, &expect()),
            Err(TokenError::AmbiguousKey)
        ));
        // With kids, two keys are fine.
        verify_value(&two, &other.sign(&claims()).expect("sign"), &expect()).expect("by kid");
    }

    #[test]
    fn jwk_alg_must_match_header_alg() {
        let key = SigningKey::generate().expect("generate");
        let mut jwk = key.public_jwk();
        jwk["alg"] = json!("ES384");
        let keys = VerificationKeys::from_jwks(&json!({"keys": [jwk]})).expect("jwks");
        let err = verify_value(&keys, &key.sign(&claims()).expect("sign"), &expect())
            .expect_err("must fail");
        assert!(
            matches!(err, TokenError::KeyAlgorithmMismatch { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn key_type_must_match_alg_family() {
        let key = SigningKey::generate().expect("generate");
        // An RSA key published under the same kid cannot verify ES256.
        let rsa = json!({"kty": "RSA", "kid": key.kid(), "n": b64url(&[0xc5; 256]), "e": "AQAB"});
        let keys = VerificationKeys::from_jwks(&json!({"keys": [rsa]})).expect("jwks");
        let err = verify_value(&keys, &key.sign(&claims()).expect("sign"), &expect())
            .expect_err("must fail");
        assert!(
            matches!(err, TokenError::KeyAlgorithmMismatch { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn es384_verifies_and_curve_must_match() {
        let der =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &SystemRandom::new())
                .expect("gen");
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P384_SHA384_FIXED_SIGNING,
            der.as_ref(),
            &SystemRandom::new(),
        )
        .expect("pair");
        use ring::signature::KeyPair as _;
        let point = pair.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-384", "kid": "p384", "x": b64url(&point[1..49]), "y": b64url(&point[49..97])});
        let keys = VerificationKeys::from_jwks(&json!({"keys": [jwk]})).expect("jwks");
        let mut header = Header::new(Algorithm::ES384);
        header.kid = Some("p384".into());
        let enc = EncodingKey::from_ec_der(der.as_ref());
        let jwt = jsonwebtoken::encode(&header, &claims(), &enc).expect("sign");
        let got: Claims = keys.verify(&jwt, &expect()).expect("verify es384");
        assert_eq!(got.sub, "user-1");
        // Header claims ES256 for the P-384 key: rejected before any crypto.
        let forged = raw_token(
            &json!({"alg": "ES256", "kid": "p384"}),
            &serde_json::to_value(claims()).expect("json"),
            &[0u8; 64],
        );
        let err = verify_value(&keys, &forged, &expect()).expect_err("must fail");
        assert!(
            matches!(err, TokenError::KeyAlgorithmMismatch { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn other_disallowed_algorithms_rejected() {
        let (key, keys) = setup();
        let payload = serde_json::to_value(claims()).expect("json");
        for alg in ["RS512", "PS384", "EdDSA", "ES512", "HS256", ""] {
            let jwt = raw_token(&json!({"alg": alg, "kid": key.kid()}), &payload, &[1u8; 64]);
            let err = verify_value(&keys, &jwt, &expect()).expect_err("must fail");
            assert!(
                matches!(err, TokenError::DisallowedAlgorithm(_)),
                "{alg}: {err:?}"
            );
        }
    }

    #[test]
    fn malformed_tokens_rejected() {
        let (key, keys) = setup();
        for bad in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.e30.sig",
            "e30.e30.",
            "W10.e30.AA",
        ] {
            let err = verify_value(&keys, bad, &expect()).expect_err("must fail");
            assert!(matches!(err, TokenError::Malformed(_)), "{bad}: {err:?}");
        }
        // crit header parameters are not understood, hence rejected.
        let jwt = raw_token(
            &json!({"alg": "ES256", "kid": key.kid(), "crit": ["exp"], "exp": 1}),
            &serde_json::to_value(claims()).expect("json"),
            &[0u8; 64],
        );
        assert!(matches!(
            verify_value(&keys, &jwt, &expect()),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn claims_of_wrong_shape_are_reported() {
        let (key, keys) = setup();
        let jwt = key
            .sign(&json!({"iss": "https://idp.example", "aud": "hub", "exp": now() + 60}))
            .expect("sign");
        let err = keys
            .verify::<Claims>(&jwt, &expect())
            .expect_err("must fail");
        assert!(matches!(err, TokenError::InvalidClaims(_)), "{err:?}");
        assert!(err.is_verification_failure());
    }

    #[test]
    fn invalid_jwks_documents_rejected() {
        assert!(matches!(
            VerificationKeys::from_jwks_json("not json"),
            Err(TokenError::InvalidJwks(_))
        ));
        assert!(matches!(
            VerificationKeys::from_jwks_json("{}"),
            Err(TokenError::InvalidJwks(_))
        ));
        assert!(matches!(
            VerificationKeys::from_jwks_json(r#"{"keys":[]}"#),
            Err(TokenError::InvalidJwks(_))
        ));
        // Encryption keys are not signing keys.
        let key = SigningKey::generate().expect("generate");
        let mut jwk = key.public_jwk();
        jwk["use"] = json!("enc");
        assert!(matches!(
            VerificationKeys::from_jwks(&json!({"keys": [jwk]})),
            Err(TokenError::InvalidJwks(_))
        ));
    }

    /// The public modulus of a real 1024-bit RSA key (`openssl genrsa 1024`).
    const RSA_1024_N: &str = "3AJz5E2cUkAph-efzgNRBWrzFYwAHOLzMWtb__In3ydB2WoIoUK3TdMsKv3Ps2-1avj34xDJ3DMlNSOzF9xiJs5-UdOwy7tuOt4BtV_GF97prlEvk0ekQoY5HvQlJwjPNk2lSyEdN2korjd3PXYm6QmxG6hCgnp3m_PWWMo5Rvk";
    /// The public modulus of a real 2048-bit RSA key (`openssl genrsa 2048`).
    const RSA_2048_N: &str = "hKTtrzl0giJ5Wle-uoqAPBMYCUvSlFA0T7gyKmIyMbErk36EsLTOszjHr9G6-RHXQjQjeZMUNPmFGEncTHQ4v-SJF7xDgtIfgf_g4VRi_J0x7nlB_Xk27LfOBftKgzmo5xp6ERXyKbaXSJgpcTW-vFNrUVEDAtTkdMnBTSgfxHjbxV3F63ZfsW4QybrL0hZwO2EqV0GufvFx6YBCI_aBmHFyJTXGe1L-K9AzgSt0YHT2amN8MY4pPEXR0tnU-Yy_e-tMqC5-Iif655RQqm8mwnSkr_oHwAdGRDtl2WbYG8U8zTpMOP6dD4JnyYFDWFitO0xRgVxwdUIN7iHQQcHHJw";

    fn rsa_jwk(kid: &str, n: &str) -> serde_json::Value {
        json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": n, "e": "AQAB"})
    }

    #[test]
    fn rsa_modulus_size_is_measured_in_bits() {
        assert_eq!(rsa_modulus_bits(RSA_1024_N), Some(1024));
        assert_eq!(rsa_modulus_bits(RSA_2048_N), Some(2048));
        // Leading zero octets do not count; a top bit of 0 is one bit less.
        assert_eq!(rsa_modulus_bits(&b64url(&[0, 0, 0x80, 1])), Some(16));
        assert_eq!(rsa_modulus_bits(&b64url(&[0x7f; 256])), Some(2047));
        assert_eq!(rsa_modulus_bits(&b64url(&[0, 0])), Some(0));
        assert_eq!(rsa_modulus_bits(""), Some(0));
        assert_eq!(rsa_modulus_bits("!!"), None);
    }

    #[test]
    fn rsa_keys_below_2048_bits_are_ignored_and_explained() {
        let only_weak = json!({"keys": [rsa_jwk("weak", RSA_1024_N)]});
        let err = VerificationKeys::from_jwks(&only_weak).expect_err("weak key alone");
        let TokenError::InvalidJwks(reason) = &err else {
            panic!("{err:?}");
        };
        assert!(
            reason.contains("\"weak\"") && reason.contains("1024 bits") && reason.contains("2048"),
            "{reason}"
        );

        // Next to a usable key, the weak one is skipped: its kid is unknown.
        let key = SigningKey::generate().expect("generate");
        let mixed = json!({"keys": [rsa_jwk("weak", RSA_1024_N), key.public_jwk()]});
        let keys = VerificationKeys::from_jwks(&mixed).expect("mixed");
        let forged = raw_token(
            &json!({"alg": "RS256", "kid": "weak"}),
            &serde_json::to_value(claims()).expect("json"),
            &[0u8; 128],
        );
        let err = verify_value(&keys, &forged, &expect()).expect_err("weak kid");
        assert!(
            matches!(err, TokenError::UnknownKeyId(Some(ref k)) if k == "weak"),
            "{err:?}"
        );
        verify_value(&keys, &key.sign(&claims()).expect("sign"), &expect()).expect("EC key");
    }

    #[test]
    fn rsa_keys_of_2048_to_8192_bits_are_accepted() {
        let keys = VerificationKeys::from_jwks(&json!({"keys": [rsa_jwk("ok", RSA_2048_N)]}))
            .expect("2048-bit key");
        // Selected for RS256 (the signature is wrong, so crypto rejects it).
        let jwt = raw_token(
            &json!({"alg": "RS256", "kid": "ok"}),
            &serde_json::to_value(claims()).expect("json"),
            &[1u8; 256],
        );
        assert!(matches!(
            verify_value(&keys, &jwt, &expect()),
            Err(TokenError::BadSignature)
        ));
        let mut huge = vec![0xc5; MAX_RSA_BITS / 8];
        VerificationKeys::from_jwks(&json!({"keys": [rsa_jwk("max", &b64url(&huge))]}))
            .expect("8192-bit key");
        huge.push(0x01);
        let err = VerificationKeys::from_jwks(&json!({"keys": [rsa_jwk("big", &b64url(&huge))]}))
            .expect_err("8200-bit key");
        assert!(
            matches!(err, TokenError::InvalidJwks(ref r) if r.contains("8200 bits")),
            "{err:?}"
        );
    }

    #[test]
    fn allow_list_is_exactly_the_documented_one() {
        assert_eq!(
            ALLOWED_ALGORITHMS,
            &[
                Algorithm::ES256,
                Algorithm::ES384,
                Algorithm::RS256,
                Algorithm::PS256
            ]
        );
    }
}

/// The `iss` claim of a JWT *without verifying it*: only to choose whose keys to
/// verify the token with (e.g. a `private_key_jwt` client assertion). Never trust it.
pub fn unverified_issuer(jwt: &str) -> Option<String> {
    unverified_member(jwt, 1, "iss")
}

/// The `typ` of a compact JWS header *without verifying it*: only to refuse the wrong
/// kind of token early, or to read it once the signature has verified.
pub fn unverified_typ(jws: &str) -> Option<String> {
    unverified_member(jws, 0, "typ")
}

/// The string `member` of the JSON object in base64url part `part` of a compact JWS.
fn unverified_member(jws: &str, part: usize, member: &str) -> Option<String> {
    use base64::Engine as _;
    let encoded = jws.split('.').nth(part)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    let object: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    object.get(member)?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod unverified_issuer_tests {
    #[test]
    fn reads_iss_or_nothing() {
        let key = crate::SigningKey::generate().unwrap();
        let jwt = key
            .sign(&serde_json::json!({"iss": "rp-1", "exp": 1}))
            .unwrap();
        assert_eq!(super::unverified_issuer(&jwt).as_deref(), Some("rp-1"));
        assert_eq!(super::unverified_issuer("not.a.jwt"), None);
    }

    #[test]
    fn reads_typ_or_nothing() {
        let key = crate::SigningKey::generate().unwrap();
        let jwt = key.sign(&serde_json::json!({"exp": 1})).unwrap();
        assert_eq!(super::unverified_typ(&jwt).as_deref(), Some("JWT"));
        assert_eq!(super::unverified_typ("garbage"), None);
    }
}
