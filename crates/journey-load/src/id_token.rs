//! `--verify`: the ID token checks an RP makes (signature against the OP's JWKS, issuer,
//! audience, expiry, nonce). Off by default so the generator's own CPU stays out of the
//! way of the server it measures.

use std::collections::HashMap;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The OP's signing keys by `kid`, fetched once before the run.
pub(crate) struct IdTokenCheck {
    keys: HashMap<String, DecodingKey>,
    /// For a JWKS with one key and tokens without `kid`.
    only_key: Option<DecodingKey>,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for IdTokenCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenCheck")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Asymmetric algorithms only: never `none` or HMAC.
const ALLOWED: [Algorithm; 7] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::EdDSA,
];

#[derive(Deserialize)]
struct Claims {
    nonce: Option<String>,
    sub: String,
}

impl IdTokenCheck {
    /// Keys from `jwks` (those jsonwebtoken cannot use, e.g. encryption keys, are skipped).
    pub(crate) fn new(jwks: &JwkSet, issuer: &str, audience: &str) -> Self {
        let mut keys = HashMap::new();
        let mut usable = Vec::new();
        for jwk in &jwks.keys {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            if let Some(kid) = &jwk.common.key_id {
                keys.insert(kid.clone(), key.clone());
            }
            usable.push(key);
        }
        let only_key = if usable.len() == 1 {
            usable.pop()
        } else {
            None
        };
        Self {
            keys,
            only_key,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// Checks `id_token`; returns its `sub`, or the failure detail.
    pub(crate) fn check(&self, id_token: &str, nonce: &str) -> Result<String, &'static str> {
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| "id_token_malformed")?;
        if !ALLOWED.contains(&header.alg) {
            return Err("id_token_algorithm");
        }
        let key = match &header.kid {
            Some(kid) => self.keys.get(kid),
            None => self.only_key.as_ref(),
        }
        .ok_or("id_token_unknown_key")?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(id_token, key, &validation)
            .map_err(|_| "id_token_invalid")?;
        if data.claims.nonce.as_deref() != Some(nonce) {
            return Err("id_token_nonce");
        }
        Ok(data.claims.sub)
    }
}
