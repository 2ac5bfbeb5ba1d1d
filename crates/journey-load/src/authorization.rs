//! The RP's side of a code flow: discovery, the authorization request, the redirect it
//! receives.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use url::Url;

use crate::config::LoadConfig;

/// The endpoints of the OP under load, from its discovery document.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Endpoints {
    pub(crate) issuer: String,
    pub(crate) authorization_endpoint: Url,
    pub(crate) token_endpoint: Url,
    pub(crate) userinfo_endpoint: Url,
    pub(crate) jwks_uri: Url,
}

/// One authorization request: its URL and what the RP keeps to finish the flow.
#[derive(Debug)]
pub(crate) struct AuthorizationRequest {
    pub(crate) url: Url,
    pub(crate) state: String,
    pub(crate) nonce: String,
    pub(crate) verifier: String,
}

impl AuthorizationRequest {
    /// A fresh request: PKCE S256, state, nonce, `acr_values`.
    pub(crate) fn new(config: &LoadConfig, endpoints: &Endpoints) -> Self {
        let verifier = random_value::<32>();
        let state = random_value::<16>();
        let nonce = random_value::<16>();
        let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            verifier.as_bytes(),
        ));
        let mut url = endpoints.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &config.client_id)
            .append_pair("redirect_uri", config.redirect_uri.as_str())
            .append_pair("scope", &config.scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("acr_values", &config.acr_values);
        Self {
            url,
            state,
            nonce,
            verifier,
        }
    }
}

fn random_value<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `location` is the RP's redirect URI (same origin and path; the query carries
/// the response).
pub(crate) fn is_redirect_uri(location: &Url, redirect_uri: &Url) -> bool {
    location.scheme() == redirect_uri.scheme()
        && location.host_str() == redirect_uri.host_str()
        && location.port_or_known_default() == redirect_uri.port_or_known_default()
        && location.path() == redirect_uri.path()
}

/// The authorization response's parameters the RP needs.
#[derive(Debug, Default)]
pub(crate) struct AuthorizationResponse {
    pub(crate) code: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) error: Option<String>,
    /// RFC 9207: who sent the response.
    pub(crate) iss: Option<String>,
}

impl AuthorizationResponse {
    pub(crate) fn from_redirect(location: &Url) -> Self {
        let mut response = Self::default();
        for (key, value) in location.query_pairs() {
            match key.as_ref() {
                "code" => response.code = Some(value.into_owned()),
                "state" => response.state = Some(value.into_owned()),
                "error" => response.error = Some(value.into_owned()),
                "iss" => response.iss = Some(value.into_owned()),
                _ => {}
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Flow;

    #[test]
    fn requests_carry_pkce_state_nonce_and_level() {
        let config = LoadConfig::new(
            Flow::Hub,
            Url::parse("http://127.0.0.1:8080").unwrap(),
            Url::parse("http://127.0.0.1:9/callback").unwrap(),
        );
        let endpoints = Endpoints {
            issuer: "http://127.0.0.1:8080".into(),
            authorization_endpoint: Url::parse("http://127.0.0.1:8080/authorize").unwrap(),
            token_endpoint: Url::parse("http://127.0.0.1:8080/token").unwrap(),
            userinfo_endpoint: Url::parse("http://127.0.0.1:8080/userinfo").unwrap(),
            jwks_uri: Url::parse("http://127.0.0.1:8080/jwks").unwrap(),
        };
        let request = AuthorizationRequest::new(&config, &endpoints);
        let params: std::collections::HashMap<_, _> =
            request.url.query_pairs().into_owned().collect();
        assert_eq!(params["code_challenge_method"], "S256");
        assert_eq!(params["code_challenge"].len(), 43);
        assert_eq!(params["state"], request.state);
        assert_eq!(params["nonce"], request.nonce);
        assert_eq!(params["acr_values"], "P2");
        assert_eq!(request.verifier.len(), 43);
        let other = AuthorizationRequest::new(&config, &endpoints);
        assert_ne!(other.state, request.state);
    }

    #[test]
    fn the_redirect_uri_is_recognised_by_origin_and_path() {
        let redirect = Url::parse("http://127.0.0.1:9/callback").unwrap();
        let back = Url::parse("http://127.0.0.1:9/callback?code=c&state=s&iss=x").unwrap();
        assert!(is_redirect_uri(&back, &redirect));
        let response = AuthorizationResponse::from_redirect(&back);
        assert_eq!(response.code.as_deref(), Some("c"));
        assert_eq!(response.state.as_deref(), Some("s"));
        assert!(!is_redirect_uri(
            &Url::parse("http://127.0.0.1:9/other").unwrap(),
            &redirect
        ));
    }
}
