//! The hub as an OIDC relying party of each identity provider (the `openidconnect` crate).
//!
//! The request sent to an IdP carries only the hub's own client id, redirect URI, state,
//! nonce, PKCE challenge and the level wanted: never anything naming the relying party.

pub(crate) mod breaker;
pub(crate) mod client;
pub(crate) mod http;
pub(crate) mod lifecycle;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AccessToken, AdditionalClaims, AdditionalProviderMetadata, AuthenticationContextClass,
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, DiscoveryError, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl,
    RequestTokenError, Scope, StandardClaims, TokenResponse, UserInfoClaims,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{CircuitBreakerSettings, IdentityProviderSettings, IdpAuthMethod};
use crate::identity_provider::breaker::{CircuitOpen, IdpBreaker};
use crate::identity_provider::http::{bounded, IdpHttpError, MAX_IDP_RESPONSE_BYTES};
use crate::journey::UpstreamRequest;
use remote_keys::{JwksTiming, JwtError, KeysError, RemoteJwks};

/// Algorithms accepted on IdP ID tokens: never `none`, never HMAC.
const ID_TOKEN_ALGORITHMS: [CoreJwsSigningAlgorithm; 4] = [
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
];

/// An IdP's ID token may be at most this old when the hub redeems the code that came
/// with it (the code itself lives about a minute), and at most [`CLOCK_SKEW_SECS`] ahead.
const ID_TOKEN_MAX_AGE_SECS: i64 = 600;
/// Clock skew tolerated between the hub and an IdP.
const CLOCK_SKEW_SECS: i64 = 60;

/// How long discovered metadata is used before it is fetched again.
const METADATA_MAX_AGE: Duration = Duration::from_secs(3600);
/// After a failed refresh the last good metadata is kept, and fetching it again is tried
/// no more often than this.
const METADATA_RETRY: Duration = Duration::from_secs(30);

/// The one discovery field beyond OIDC Discovery that the hub acts on: RFC 9207's
/// promise that every authorization response carries `iss` (the mix-up defence).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct MixUpDefence {
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

impl AdditionalProviderMetadata for MixUpDefence {}

/// OIDC discovery metadata with the RFC 9207 field.
type IdpMetadata = ProviderMetadata<
    MixUpDefence,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Failures talking to an identity provider.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// Unreachable, timed out or answering 5xx: the journey can be retried later.
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
    /// It answered, but with something the hub must not trust.
    #[error("invalid identity provider response: {0}")]
    Invalid(String),
    #[error("signing the client assertion failed: {0}")]
    Signing(#[from] token::TokenError),
}

impl UpstreamError {
    /// A short label for metrics.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Invalid(_) => "invalid",
            Self::Signing(_) => "signing",
        }
    }
}

/// A configured identity provider and its discovered metadata (fetched lazily, so an IdP
/// that is down at start-up does not stop the hub, and again after [`METADATA_MAX_AGE`]).
#[derive(Debug)]
pub(crate) struct IdentityProvider {
    pub settings: IdentityProviderSettings,
    /// The last good discovery, and when to fetch it again.
    discovered: std::sync::Mutex<Option<(Arc<Discovered>, Instant)>>,
    /// Held by the one caller that discovers: the others wait for the first discovery,
    /// and go on with the metadata held during a refresh.
    discovering: tokio::sync::Mutex<()>,
    /// Shared with the entry that succeeds this one when an operator changes its settings.
    breaker: Arc<IdpBreaker>,
}

/// An IdP's discovered metadata and its ID-token keys.
#[derive(Debug)]
struct Discovered {
    metadata: IdpMetadata,
    /// The keys at the metadata's `jwks_uri`, in the `token` crate's form: ID-token
    /// signatures are checked with ring there (about four times faster than
    /// `openidconnect`'s `p256`), with the same algorithm allow-list as every other JWT
    /// the hub accepts. Cached as every `jwks_uri` is (`remote_keys`): a token signed with
    /// a key not seen yet (the IdP rotated) makes one rate-limited refetch.
    keys: Arc<RemoteJwks>,
}

/// What the IdP asserted, validated.
#[derive(Clone)]
pub(crate) struct IdpAssertion {
    pub subject: String,
    pub acr: Option<String>,
    pub auth_time: Option<i64>,
    pub dataset: matching::MatchingDataset,
}

impl std::fmt::Debug for IdpAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpAssertion")
            .field("acr", &self.acr)
            .finish_non_exhaustive()
    }
}

/// Claims beyond OIDC's standard ones that carry the matching dataset's history.
#[derive(Clone, Default, Serialize, Deserialize)]
struct HistoryClaims {
    #[serde(default)]
    previous_family_names: Vec<String>,
    #[serde(default)]
    previous_addresses: Vec<PostalAddressClaim>,
}

impl std::fmt::Debug for HistoryClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HistoryClaims { .. }")
    }
}

impl AdditionalClaims for HistoryClaims {}

#[derive(Clone, Default, Serialize, Deserialize)]
struct PostalAddressClaim {
    #[serde(default)]
    street_address: Option<String>,
    #[serde(default)]
    locality: Option<String>,
    #[serde(default)]
    postal_code: Option<String>,
}

fn circuit_open(e: CircuitOpen) -> UpstreamError {
    UpstreamError::Unavailable(e.to_string())
}

/// An HTTP failure: unreachable is `Unavailable`, an over-long answer is `Invalid`.
fn http_error(what: &str, e: &IdpHttpError) -> UpstreamError {
    if e.is_transport() {
        UpstreamError::Unavailable(format!("{what}: {e}"))
    } else {
        UpstreamError::Invalid(format!("{what}: {e}"))
    }
}

fn request_error<T: openidconnect::ErrorResponse + 'static>(
    e: RequestTokenError<IdpHttpError, T>,
) -> UpstreamError {
    match e {
        RequestTokenError::Request(e) => http_error("token", &e),
        RequestTokenError::ServerResponse(r) => UpstreamError::Invalid(format!("token error: {r}")),
        RequestTokenError::Parse(e, _) => UpstreamError::Invalid(format!("token response: {e}")),
        RequestTokenError::Other(m) => UpstreamError::Invalid(m),
    }
}

impl IdentityProvider {
    pub(crate) fn new(settings: IdentityProviderSettings) -> Self {
        Self {
            settings,
            discovered: std::sync::Mutex::new(None),
            discovering: tokio::sync::Mutex::new(()),
            breaker: Arc::new(IdpBreaker::new(CircuitBreakerSettings::default(), None)),
        }
    }

    /// Replaces the default circuit breaker (the deployment's settings, with metrics).
    pub(crate) fn with_breaker(mut self, breaker: IdpBreaker) -> Self {
        self.breaker = Arc::new(breaker);
        self
    }

    /// This IdP with changed `settings` (an operator's update): the circuit breaker's
    /// state carries over, and so does the discovered metadata while the issuer and
    /// client are the same.
    pub(crate) fn succeeded_by(&self, settings: IdentityProviderSettings) -> Self {
        let same_client = settings.issuer == self.settings.issuer
            && settings.client_id == self.settings.client_id;
        let discovered = if same_client {
            self.discovered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        } else {
            None
        };
        Self {
            settings,
            discovered: std::sync::Mutex::new(discovered),
            discovering: tokio::sync::Mutex::new(()),
            breaker: self.breaker.clone(),
        }
    }

    /// Whether its circuit breaker refuses calls now (the picker shows it unavailable).
    pub(crate) fn is_circuit_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// The metadata for a new journey, through the circuit breaker: refused while it is
    /// open, and a first discovery call counts towards it. (A refresh does not: when it
    /// fails the last good metadata is used.)
    async fn discovered(&self, http: &reqwest::Client) -> Result<Arc<Discovered>, UpstreamError> {
        if self.held().is_some() {
            self.breaker.check().map_err(circuit_open)?;
            return self.metadata(http).await;
        }
        let permit = self.breaker.admit().map_err(circuit_open)?;
        let result = self.metadata(http).await;
        permit.finish(matches!(result, Err(UpstreamError::Unavailable(_))));
        result
    }

    /// The metadata held, and whether it is due to be fetched again.
    fn held(&self) -> Option<(Arc<Discovered>, bool)> {
        let held = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
        held.as_ref()
            .map(|(discovered, due)| (discovered.clone(), Instant::now() >= *due))
    }

    fn hold(&self, discovered: Arc<Discovered>, for_: Duration) {
        *self.discovered.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((discovered, Instant::now() + for_));
    }

    /// The discovered metadata: fetched when there is none yet (concurrent callers wait
    /// for one discovery) and refreshed after [`METADATA_MAX_AGE`] by one caller while the
    /// others use what is held. A failed refresh keeps the last good metadata.
    async fn metadata(&self, http: &reqwest::Client) -> Result<Arc<Discovered>, UpstreamError> {
        match self.held() {
            Some((held, false)) => Ok(held),
            Some((held, true)) => {
                let Ok(_discovering) = self.discovering.try_lock() else {
                    return Ok(held);
                };
                match self.held() {
                    Some((held, true)) => match self.discover(http, Some(&held)).await {
                        Ok(fresh) => {
                            self.hold(fresh.clone(), METADATA_MAX_AGE);
                            Ok(fresh)
                        }
                        Err(e) => {
                            tracing::warn!(idp = %self.settings.id, error = %e, "discovery refresh failed; keeping the last good metadata");
                            self.hold(held.clone(), METADATA_RETRY);
                            Ok(held)
                        }
                    },
                    Some((held, false)) => Ok(held),
                    None => self.discover_first(http).await,
                }
            }
            None => {
                let _discovering = self.discovering.lock().await;
                match self.held() {
                    Some((held, _)) => Ok(held),
                    None => self.discover_first(http).await,
                }
            }
        }
    }

    async fn discover_first(
        &self,
        http: &reqwest::Client,
    ) -> Result<Arc<Discovered>, UpstreamError> {
        let discovered = self.discover(http, None).await?;
        self.hold(discovered.clone(), METADATA_MAX_AGE);
        Ok(discovered)
    }

    /// Fetches the discovery document and the JWKS it names (`openidconnect` fetches
    /// both); the keys go to the `jwks_uri`'s cache, the one `previous` held if the URI is
    /// unchanged, with the JWKS response's max-age.
    async fn discover(
        &self,
        http: &reqwest::Client,
        previous: Option<&Discovered>,
    ) -> Result<Arc<Discovered>, UpstreamError> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| UpstreamError::Invalid(format!("issuer: {e}")))?;
        let client = bounded(http, MAX_IDP_RESPONSE_BYTES);
        // The JWKS response's headers (its max-age) are read from what was recorded.
        let responses = std::sync::Mutex::new(Vec::new());
        let recording = |request: openidconnect::HttpRequest| {
            let uri = request.uri().to_string();
            let call = client(request);
            let responses = &responses;
            async move {
                let response = call.await?;
                responses
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((uri, response.headers().clone()));
                Ok::<_, IdpHttpError>(response)
            }
        };
        let metadata = IdpMetadata::discover_async(issuer, &recording)
            .await
            .map_err(|e| match e {
                DiscoveryError::Request(e) => http_error("discovery", &e),
                DiscoveryError::Response(status, ..) if !status.is_server_error() => {
                    UpstreamError::Invalid(format!("discovery: {status}"))
                }
                other => UpstreamError::Unavailable(format!("discovery: {other}")),
            })?;
        let jwks_uri = metadata.jwks_uri().url().clone();
        let keys = match previous {
            Some(previous) if previous.keys.uri() == &jwks_uri => previous.keys.clone(),
            _ => Arc::new(
                RemoteJwks::new(jwks_uri.clone(), JwksTiming::default())
                    .with_max_bytes(MAX_IDP_RESPONSE_BYTES),
            ),
        };
        let headers = responses
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .rev()
            .find(|(uri, _)| uri == jwks_uri.as_str())
            .map(|(_, headers)| headers)
            .unwrap_or_default();
        // Unusable keys are not offered: the first ID token then fetches them and fails.
        if let Ok(fetched) = serde_json::to_value(metadata.jwks())
            .map_err(|e| e.to_string())
            .and_then(|jwks| token::VerificationKeys::from_jwks(&jwks).map_err(|e| e.to_string()))
        {
            keys.offer(fetched, &headers).await;
        }
        Ok(Arc::new(Discovered { metadata, keys }))
    }

    /// Verifies the signature, algorithm, `iss`, `aud` and `exp` of an ID token with the
    /// IdP's keys; a key id not seen yet makes one (rate-limited) refetch of its JWKS.
    async fn verify_id_token(
        &self,
        http: &reqwest::Client,
        keys: &RemoteJwks,
        id_token: &str,
        expect: &token::Expect,
    ) -> Result<serde_json::Value, UpstreamError> {
        keys.verify(http, id_token, expect)
            .await
            .map_err(|e| match e {
                JwtError::Keys(e @ (KeysError::Unreachable(_) | KeysError::CoolingDown)) => {
                    UpstreamError::Unavailable(format!("jwks: {e}"))
                }
                JwtError::Keys(e) => UpstreamError::Invalid(format!("jwks: {e}")),
                JwtError::Token(e) => UpstreamError::Invalid(format!("id_token: {e}")),
            })
    }

    /// RFC 9207 mix-up defence on an authorization response: its `iss` must be this
    /// IdP's issuer, and must be present when the IdP's metadata promises it. (The
    /// journey's `state` already names the IdP the citizen was sent to; this catches a
    /// response that another IdP produced.)
    pub(crate) async fn check_response_issuer(
        &self,
        http: &reqwest::Client,
        iss: Option<&str>,
    ) -> Result<(), UpstreamError> {
        match iss {
            Some(iss) if iss == self.settings.issuer => Ok(()),
            Some(_) => Err(UpstreamError::Invalid(
                "authorization response from another issuer (mix-up)".into(),
            )),
            None => {
                let promised = self
                    .metadata(http)
                    .await?
                    .metadata
                    .additional_metadata()
                    .authorization_response_iss_parameter_supported;
                if promised {
                    Err(UpstreamError::Invalid(
                        "authorization response without the promised iss".into(),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    fn client_secret(&self) -> Option<ClientSecret> {
        match self.settings.token_endpoint_auth_method {
            IdpAuthMethod::ClientSecretBasic => self
                .settings
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_owned())),
            IdpAuthMethod::PrivateKeyJwt => None,
        }
    }

    /// Builds the authorization request for a journey needing `level`.
    pub(crate) async fn authorization_url(
        &self,
        http: &reqwest::Client,
        redirect_uri: &Url,
        level: &str,
    ) -> Result<(Url, UpstreamRequest), UpstreamError> {
        let metadata = self.discovered(http).await?.metadata.clone();
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.client_secret(),
        )
        .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()));
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("address".into()))
            .add_auth_context_value(AuthenticationContextClass::new(level.to_owned()))
            .set_pkce_challenge(challenge);
        let (url, state, nonce) = if self.settings.claims_in_id_token {
            request.add_extra_param("claims", DATASET_IN_ID_TOKEN)
        } else {
            request
        }
        .url();
        let upstream = UpstreamRequest {
            idp_id: self.settings.id.clone(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        };
        Ok((url, upstream))
    }

    /// Redeems `code` through the circuit breaker: refused at once while it is open; an
    /// unavailable IdP counts towards opening it.
    pub(crate) async fn redeem(
        &self,
        http: &reqwest::Client,
        redirect_uri: &Url,
        code: &str,
        upstream: &UpstreamRequest,
        signer: &token::SigningKey,
        now: i64,
    ) -> Result<IdpAssertion, UpstreamError> {
        let permit = self.breaker.admit().map_err(circuit_open)?;
        let result = self
            .exchange(http, redirect_uri, code, upstream, signer, now)
            .await;
        permit.finish(matches!(result, Err(UpstreamError::Unavailable(_))));
        result
    }

    /// Redeems `code`, validates the ID token (signature, iss, aud, nonce, expiry,
    /// algorithm) and reads the matching dataset from userinfo.
    async fn exchange(
        &self,
        http: &reqwest::Client,
        redirect_uri: &Url,
        code: &str,
        upstream: &UpstreamRequest,
        signer: &token::SigningKey,
        now: i64,
    ) -> Result<IdpAssertion, UpstreamError> {
        let discovered = self.metadata(http).await?;
        let metadata = discovered.metadata.clone();
        let token_endpoint = metadata
            .token_endpoint()
            .map(|t| t.url().clone())
            .ok_or_else(|| UpstreamError::Invalid("no token endpoint".into()))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.client_secret(),
        )
        .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()));
        let mut request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| UpstreamError::Invalid(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(upstream.pkce_verifier.clone()));
        if self.settings.token_endpoint_auth_method == IdpAuthMethod::PrivateKeyJwt {
            let assertion = self.client_assertion(signer, token_endpoint.as_str(), now)?;
            request = request
                .add_extra_param(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                )
                .add_extra_param("client_assertion", assertion);
        }
        let idp_http = bounded(http, MAX_IDP_RESPONSE_BYTES);
        let response = request
            .request_async(&idp_http)
            .await
            .map_err(request_error)?;
        let id_token = response
            .id_token()
            .ok_or_else(|| UpstreamError::Invalid("no id_token in token response".into()))?;
        // The signature, algorithm, `iss`, `aud` and `exp` first, by the token crate...
        let expect = token::Expect {
            issuer: Some(self.settings.issuer.clone()),
            audience: vec![self.settings.client_id.clone()],
            leeway_secs: CLOCK_SKEW_SECS as u64,
        };
        let payload = self
            .verify_id_token(http, &discovered.keys, &id_token.to_string(), &expect)
            .await?;
        // ...then every claim check by openidconnect (iss, aud and azp again, exp, iat,
        // nonce) on the token whose signature is now known good.
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(ID_TOKEN_ALGORITHMS)
            .set_issue_time_verifier_fn(move |iat| issued_recently(iat, now))
            .set_time_fn(move || chrono::DateTime::from_timestamp(now, 0).unwrap_or_default())
            .insecure_disable_signature_check();
        let claims = id_token
            .claims(&verifier, &Nonce::new(upstream.nonce.clone()))
            .map_err(|e| UpstreamError::Invalid(format!("id_token: {e}")))?;
        let subject = claims.subject().clone();
        let acr = claims.auth_context_ref().map(|a| a.as_str().to_owned());
        let auth_time = claims.auth_time().map(|t| t.timestamp());
        if self.settings.claims_in_id_token {
            if let Some(dataset) = dataset_in_id_token(&payload) {
                return Ok(IdpAssertion {
                    subject: subject.as_str().to_owned(),
                    acr,
                    auth_time,
                    dataset,
                });
            }
            tracing::warn!(idp = %self.settings.id, "the ID token carried no matching dataset; asking userinfo");
        }
        let userinfo: UserInfoClaims<HistoryClaims, CoreGenderClaim> = client
            .user_info(
                AccessToken::new(response.access_token().secret().clone()),
                Some(subject.clone()),
            )
            .map_err(|e| UpstreamError::Invalid(e.to_string()))?
            .request_async(&idp_http)
            .await
            .map_err(|e| match e {
                openidconnect::UserInfoError::Request(e) => http_error("userinfo", &e),
                other => UpstreamError::Invalid(format!("userinfo: {other}")),
            })?;
        Ok(IdpAssertion {
            subject: subject.as_str().to_owned(),
            acr,
            auth_time,
            dataset: dataset_from(userinfo.standard_claims(), userinfo.additional_claims()),
        })
    }

    /// RFC 7523 client assertion for `private_key_jwt`, signed by the hub's key.
    fn client_assertion(
        &self,
        signer: &token::SigningKey,
        audience: &str,
        now: i64,
    ) -> Result<String, UpstreamError> {
        let claims = serde_json::json!({
            "iss": self.settings.client_id,
            "sub": self.settings.client_id,
            "aud": audience,
            "jti": token::random_opaque(16),
            "iat": now,
            "exp": now + 60,
        });
        Ok(signer.sign(&claims)?)
    }
}

/// The ID token's `iat` window: not from the future (beyond clock skew), not stale.
fn issued_recently(iat: chrono::DateTime<chrono::Utc>, now: i64) -> Result<(), String> {
    let age = now - iat.timestamp();
    if age < -CLOCK_SKEW_SECS {
        Err("issued in the future".into())
    } else if age > ID_TOKEN_MAX_AGE_SECS + CLOCK_SKEW_SECS {
        Err("issued too long ago".into())
    } else {
        Ok(())
    }
}

fn address_lines(street: Option<&str>, locality: Option<&str>) -> Vec<String> {
    street
        .into_iter()
        .flat_map(|s| s.lines())
        .chain(locality)
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The `claims` request parameter asking for the matching dataset in the ID token:
/// the standard claims userinfo would carry for the `profile` and `address` scopes that
/// matching uses, and the history extension.
const DATASET_IN_ID_TOKEN: &str = r#"{"id_token":{"given_name":null,"middle_name":null,"family_name":null,"birthdate":null,"gender":null,"address":null,"previous_family_names":null,"previous_addresses":null}}"#;

/// The matching dataset from a verified ID token's claims, if it carries one (a name or
/// a date of birth): as userinfo's, the same claims in the same shapes.
fn dataset_in_id_token(payload: &serde_json::Value) -> Option<matching::MatchingDataset> {
    let std = StandardClaims::<CoreGenderClaim>::deserialize(payload).ok()?;
    let history = HistoryClaims::deserialize(payload).ok()?;
    let carried =
        std.given_name().is_some() || std.family_name().is_some() || std.birthdate().is_some();
    carried.then(|| dataset_from(&std, &history))
}

/// Maps OIDC standard claims (plus the history extension) to the matching dataset.
fn dataset_from(
    std: &StandardClaims<CoreGenderClaim>,
    extra: &HistoryClaims,
) -> matching::MatchingDataset {
    let mut surnames: Vec<String> = std
        .family_name()
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_owned())
        .into_iter()
        .collect();
    surnames.extend(extra.previous_family_names.iter().cloned());
    let mut addresses = Vec::new();
    if let Some(a) = std.address() {
        addresses.push(matching::Address {
            lines: address_lines(
                a.street_address.as_ref().map(|s| s.as_str()),
                a.locality.as_ref().map(|s| s.as_str()),
            ),
            postcode: a.postal_code.as_ref().map(|p| p.as_str().to_owned()),
            current: true,
        });
    }
    for a in &extra.previous_addresses {
        addresses.push(matching::Address {
            lines: address_lines(a.street_address.as_deref(), a.locality.as_deref()),
            postcode: a.postal_code.clone(),
            current: false,
        });
    }
    matching::MatchingDataset {
        id: None,
        first_name: std
            .given_name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned()),
        middle_names: std
            .middle_name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        surnames,
        date_of_birth: std.birthdate().map(|b| b.as_str().to_owned()),
        gender: std.gender().map(|g| g.as_str().to_owned()),
        addresses,
        attributes: Default::default(),
    }
}
