//! What the hub hands a relying party: a single-use code, then an ID token (pairwise
//! `sub`, level, match claim) and the userinfo claims the RP is entitled to.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use store::{Exchange, Put, StoreError};
use url::Url;

use super::provider::OpenIdProvider;
use super::{ClientId, RedirectUri, RelyingParty};
use crate::journey::{Journey, MatchClaim, VerifiedIdentity};

const CODES: &str = "code";
const REDEEMED_CODES: &str = "code_redeemed";
const ACCESS_TOKENS: &str = "access_token";

/// The subject (`sub`) a relying party knows the citizen by: derived from the IdP's
/// subject within the RP's sector, so RPs in different sectors cannot link citizens.
/// Made only here, by [`PairwiseId::derive`]; stored codes and tokens hold the same string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct PairwiseId(String);

impl PairwiseId {
    fn derive(
        secret: &token::PairwiseSecret,
        rp: &RelyingParty,
        identity: &VerifiedIdentity,
    ) -> Self {
        Self(secret.pairwise_id(rp.sector(), &identity.idp_id, &identity.idp_subject))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PairwiseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an authorization code stands for. Stored under the code, single use.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct CodeGrant {
    pub client_id: ClientId,
    pub redirect_uri: RedirectUri,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub sub: PairwiseId,
    pub acr: String,
    pub vot: Option<String>,
    pub auth_time: i64,
    #[serde(rename = "match")]
    pub match_claim: MatchClaim,
    pub scope: Vec<String>,
    /// Claims `/userinfo` will release (already filtered for this RP and scope).
    pub userinfo: Map<String, Value>,
    pub journey_id: String,
}

/// What an access token stands for: read from the [`CodeGrant`] the token was
/// exchanged for, which the token's entry holds (the fields `/userinfo` needs).
#[derive(Clone, Deserialize)]
pub(crate) struct AccessGrant {
    pub client_id: ClientId,
    pub sub: PairwiseId,
    pub userinfo: Map<String, Value>,
    #[serde(default)]
    pub journey_id: Option<String>,
}

/// Stores a code for the completed journey, together with the journey in its
/// final state, and returns the RP redirect (RFC 9207 `iss`).
pub(crate) async fn issue_code(
    op: &OpenIdProvider,
    journey: &Journey,
    identity: &VerifiedIdentity,
    outcome: &MatchClaim,
) -> Result<IssuedCode, StoreError> {
    let request = &journey.request;
    let rp = op
        .relying_party(request.client_id.as_str())
        .ok_or_else(|| StoreError::Corrupt("journey names an unknown relying party".into()))?;
    let grant = CodeGrant {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        sub: PairwiseId::derive(&op.pairwise, &rp, identity),
        acr: identity.level.to_string(),
        vot: request
            .vectors
            .as_deref()
            .and_then(|v| op.levels.vector_of_trust(v, &identity.level)),
        auth_time: identity.auth_time,
        match_claim: outcome.clone(),
        scope: request.scope.clone(),
        userinfo: released_claims(
            &identity.dataset,
            &request.scope,
            &rp.settings.userinfo_claims,
        ),
        journey_id: journey.id.to_string(),
    };
    let code = token::random_opaque(32);
    let json = serde_json::to_string(&grant).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let stored_code = Put {
        namespace: CODES,
        key: &code,
        value: json,
        ttl: op.lifetimes.code,
    };
    op.sessions
        .put_all(vec![op.journeys.stored(journey)?, stored_code])
        .await?;
    let mut url = Url::parse(request.redirect_uri.as_str())
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("code", &code);
        if let Some(state) = &request.state {
            q.append_pair("state", state);
        }
        q.append_pair("iss", &op.issuer);
    }
    Ok(IssuedCode {
        url,
        code,
        sub: grant.sub,
    })
}

/// A stored code and where to send the browser with it.
#[derive(Debug)]
pub(crate) struct IssuedCode {
    pub url: Url,
    pub code: String,
    /// The pairwise subject the code's ID token will carry (for the log).
    pub sub: PairwiseId,
}

/// Withdraws a code that was stored but never handed out.
pub(crate) async fn discard_code(op: &OpenIdProvider, code: &str) {
    if let Err(e) = op.sessions.delete(CODES, code).await {
        tracing::warn!(error = %e, "could not discard an unissued code");
    }
}

/// Outcome of presenting a code at `/token`.
pub(crate) enum Redemption {
    /// What the code stood for, and the access token now stored for it: not yet
    /// handed out, so revoked if the request fails from here on.
    Granted {
        grant: Box<CodeGrant>,
        access_token: String,
    },
    /// Unknown, expired, or already used (then the tokens it produced are revoked).
    Invalid,
}

/// Takes the code (atomically, single use) and stores an access token for what it
/// granted, in one round trip to the session store. A second presentation revokes the
/// access token issued for the first (RFC 9700 §4.5).
pub(crate) async fn redeem_code(op: &OpenIdProvider, code: &str) -> Result<Redemption, StoreError> {
    let access_token = token::random_opaque(32);
    let exchange = Exchange {
        to: (ACCESS_TOKENS, &access_token),
        receipt_namespace: REDEEMED_CODES,
        ttl: op.lifetimes.access_token,
    };
    match op.sessions.exchange(CODES, code, exchange).await? {
        Some(json) => match serde_json::from_str(&json) {
            Ok(grant) => Ok(Redemption::Granted {
                grant: Box::new(grant),
                access_token,
            }),
            Err(e) => {
                revoke_access_token(op, &access_token).await;
                Err(StoreError::Corrupt(e.to_string()))
            }
        },
        None => {
            if let Some(access_token) = op.sessions.take(REDEEMED_CODES, code).await? {
                tracing::warn!("authorization code replayed; revoking its access token");
                op.sessions.delete(ACCESS_TOKENS, &access_token).await?;
            }
            Ok(Redemption::Invalid)
        }
    }
}

/// Signs the ID token for a redeemed code.
pub(crate) fn sign_id_token(
    op: &OpenIdProvider,
    grant: &CodeGrant,
    now: i64,
) -> Result<String, token::TokenError> {
    let mut claims = json!({
        "iss": op.issuer,
        "aud": grant.client_id,
        "azp": grant.client_id,
        "sub": grant.sub,
        "iat": now,
        "exp": now + op.lifetimes.id_token.as_secs() as i64,
        "auth_time": grant.auth_time,
        "acr": grant.acr,
        "match": grant.match_claim,
    });
    if let Some(nonce) = &grant.nonce {
        claims["nonce"] = json!(nonce);
    }
    if let Some(vot) = &grant.vot {
        claims["vot"] = json!(vot);
    }
    op.keys.signer().sign(&claims)
}

/// Withdraws an access token that was stored but never handed out.
pub(crate) async fn revoke_access_token(op: &OpenIdProvider, access_token: &str) {
    if let Err(e) = op.sessions.delete(ACCESS_TOKENS, access_token).await {
        tracing::warn!(error = %e, "could not revoke an unissued access token");
    }
}

/// Looks up a bearer access token.
pub(crate) async fn access_grant(
    op: &OpenIdProvider,
    access_token: &str,
) -> Result<Option<AccessGrant>, StoreError> {
    let Some(json) = op.sessions.get(ACCESS_TOKENS, access_token).await? else {
        return Ok(None);
    };
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Verified attributes as OIDC standard claims, limited to what the RP may receive and
/// the scopes it asked for (`profile` for names, birthdate, gender; `address`).
fn released_claims(
    dataset: &matching::MatchingDataset,
    scope: &[String],
    allowed: &[String],
) -> Map<String, Value> {
    let has = |s: &str| scope.iter().any(|x| x == s);
    let mut all = Map::new();
    if has("profile") {
        if let Some(f) = &dataset.first_name {
            all.insert("given_name".into(), json!(f));
        }
        if !dataset.middle_names.is_empty() {
            all.insert("middle_name".into(), json!(dataset.middle_names.join(" ")));
        }
        if let Some(s) = dataset.surnames.first() {
            all.insert("family_name".into(), json!(s));
        }
        if let Some(d) = &dataset.date_of_birth {
            all.insert("birthdate".into(), json!(d));
        }
        if let Some(g) = &dataset.gender {
            all.insert("gender".into(), json!(g));
        }
    }
    if has("address") {
        if let Some(a) = dataset
            .addresses
            .iter()
            .find(|a| a.current)
            .or(dataset.addresses.first())
        {
            let mut address = Map::new();
            address.insert("street_address".into(), json!(a.lines.join("\n")));
            if let Some(p) = &a.postcode {
                address.insert("postal_code".into(), json!(p));
            }
            all.insert("address".into(), Value::Object(address));
        }
    }
    all.into_iter()
        .filter(|(k, _)| allowed.iter().any(|a| a == k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_claims_follow_scope_and_rp_allow_list() {
        let dataset = matching::MatchingDataset {
            first_name: Some("Alice".into()),
            surnames: vec!["Smith".into()],
            date_of_birth: Some("1980-04-10".into()),
            addresses: vec![matching::Address {
                lines: vec!["1 A St".into()],
                postcode: Some("LS1 4AB".into()),
                current: true,
            }],
            ..Default::default()
        };
        let scope = vec!["openid".to_owned(), "profile".to_owned()];
        let allowed = vec!["given_name".to_owned(), "address".to_owned()];
        let c = released_claims(&dataset, &scope, &allowed);
        assert_eq!(c.get("given_name"), Some(&json!("Alice")));
        assert!(c.get("family_name").is_none(), "not allowed for this RP");
        assert!(c.get("address").is_none(), "address scope not requested");
    }
}
