//! Pushed authorization requests (PAR, RFC 9126): `POST /par`.
//!
//! The RP authenticates as at `/token` and sends its authorization request (plain
//! parameters, or a request object) straight to the op. The hub validates it with the
//! checks of `/authorize`, keeps it for [`PUSHED_REQUEST_TTL_SECS`] under a random
//! `request_uri`, and `/authorize?client_id=..&request_uri=..` takes it once. The
//! parameters never travel through the browser, where they could be read or altered.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::authorization_request::{registered_redirect_uri, validate, AuthorizeParams};
use super::request_object;
use super::token_endpoint::{authenticate, ClientCredentials, OAuthError};
use crate::journey::RpRequest;
use crate::reason::Reason;
use crate::relying_party::provider::OpenIdProvider;
use crate::relying_party::ClientId;

/// Every `request_uri` the hub issues starts with this (RFC 9126 §2.2).
pub(crate) const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a pushed request waits for the browser: just long enough for a redirect.
pub(crate) const PUSHED_REQUEST_TTL_SECS: u64 = 60;
/// Session-store namespace of pushed requests, keyed by `request_uri`.
const PUSHED_REQUESTS: &str = "pushed_request";

/// A validated authorization request waiting for the browser to arrive at `/authorize`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PushedRequest {
    /// The client that pushed it: only it may use the `request_uri`.
    pub(crate) client_id: ClientId,
    pub(crate) request: RpRequest,
    pub(crate) idp_hint: Option<String>,
}

/// The body of `POST /par`: the authorization request and the client's authentication.
#[derive(Debug, Deserialize)]
pub(crate) struct ParForm {
    #[serde(flatten)]
    params: AuthorizeParams,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
    /// Only its presence matters (refused: the hub takes secrets in the Basic header).
    client_secret: Option<secrecy::SecretString>,
}

/// Why a `request_uri` at `/authorize` could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PushedRequestError {
    #[error("request_uri is not a pushed request of this hub")]
    NotPushed,
    #[error("request_uri unknown, expired or already used")]
    Unknown,
    #[error("request_uri was pushed by another client")]
    OtherClient,
    #[error("session store: {0}")]
    Unavailable(#[from] store::StoreError),
}

impl PushedRequestError {
    /// What the RP is told.
    pub(crate) fn reason(&self) -> Reason {
        match self {
            Self::NotPushed => Reason::RequestUriNotSupported,
            Self::Unknown | Self::OtherClient => Reason::RequestUriInvalid,
            Self::Unavailable(_) => Reason::HubUnavailable,
        }
    }

    /// What the verification log records; `None` when nothing was refused.
    pub(crate) fn audit_outcome(&self) -> Option<&'static str> {
        match self {
            Self::NotPushed => Some("request_uri_not_supported"),
            Self::Unknown => Some("request_uri_unknown"),
            Self::OtherClient => Some("request_uri_wrong_client"),
            Self::Unavailable(_) => None,
        }
    }
}

/// Takes the pushed request at `request_uri` for `client_id`: single use, and only by
/// the client that pushed it (a request_uri seen by another client is left alone, so it
/// cannot be used to spend someone else's request).
pub(crate) async fn take(
    op: &OpenIdProvider,
    client_id: &ClientId,
    request_uri: &str,
) -> Result<PushedRequest, PushedRequestError> {
    if !request_uri.starts_with(REQUEST_URI_PREFIX) {
        return Err(PushedRequestError::NotPushed);
    }
    let Some(json) = op.sessions.get(PUSHED_REQUESTS, request_uri).await? else {
        return Err(PushedRequestError::Unknown);
    };
    let pushed: PushedRequest = serde_json::from_str(&json).map_err(|e| {
        tracing::error!(error = %e, "stored pushed request unreadable");
        PushedRequestError::Unknown
    })?;
    if pushed.client_id != *client_id {
        return Err(PushedRequestError::OtherClient);
    }
    match op.sessions.take(PUSHED_REQUESTS, request_uri).await? {
        Some(_) => Ok(pushed),
        // Another request took it between our read and our take.
        None => Err(PushedRequestError::Unknown),
    }
}

/// `POST /par`.
pub(crate) async fn push(
    op: web::Data<OpenIdProvider>,
    req: HttpRequest,
    form: Result<web::Form<ParForm>, actix_web::Error>,
) -> HttpResponse {
    let form = match form {
        Ok(form) => form.into_inner(),
        Err(e) if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE => {
            return e.error_response();
        }
        Err(_) => {
            return invalid_request("The body must be application/x-www-form-urlencoded").response()
        }
    };
    match accept(&op, &req, form).await {
        Ok(request_uri) => HttpResponse::Created()
            .insert_header(("cache-control", "no-store"))
            .json(json!({"request_uri": request_uri, "expires_in": PUSHED_REQUEST_TTL_SECS})),
        Err(e) => e.response(),
    }
}

fn invalid_request(description: &'static str) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", description)
}

/// The JSON error for a request `/authorize` would refuse with `reason`.
fn refused_for(reason: Reason) -> OAuthError {
    OAuthError::new(
        StatusCode::BAD_REQUEST,
        reason.oidc_error(),
        reason.description(),
    )
}

/// Authenticates the client, validates its request and stores it: the `request_uri`.
async fn accept(
    op: &OpenIdProvider,
    req: &HttpRequest,
    form: ParForm,
) -> Result<String, OAuthError> {
    let credentials = ClientCredentials {
        client_id: form.params.client_id.as_deref(),
        client_assertion_type: form.client_assertion_type.as_deref(),
        client_assertion: form.client_assertion.as_deref(),
        client_secret_in_body: form.client_secret.is_some(),
    };
    let rp = authenticate(op, req, credentials).await?;
    let client_id = rp.client_id().as_str();
    let refuse = |outcome: &'static str, error: OAuthError| async move {
        tracing::info!(client_id, outcome, "pushed authorization request refused");
        op.trail.rejected(Some(client_id), None, outcome).await;
        Err(error)
    };
    let mut params = form.params;
    if params.request_uri.is_some() {
        return refuse(
            "request_uri_at_par",
            invalid_request(
                "request_uri is not allowed at the pushed authorization request endpoint",
            ),
        )
        .await;
    }
    if let Some(jwt) = params.request.take() {
        params = match request_object::verify(op, &rp, &jwt).await {
            Ok(params) => params,
            Err(request_object::RequestObjectError::Unavailable(_)) => {
                return Err(OAuthError::unavailable())
            }
            Err(e) => {
                tracing::info!(client_id, error = %e, "request object refused");
                return refuse(e.audit_outcome(), refused_for(Reason::InvalidRequestObject)).await;
            }
        };
    }
    let Some(redirect_uri) = registered_redirect_uri(&rp, &params) else {
        return refuse(
            "invalid_redirect_uri",
            invalid_request("redirect_uri is missing or not registered"),
        )
        .await;
    };
    let idp_hint = params.idp_hint.clone();
    let request = match validate(&op.levels, &rp, redirect_uri, params) {
        Ok(request) => request,
        Err(reason) => return refuse(reason.code(), refused_for(reason)).await,
    };
    let pushed = PushedRequest {
        client_id: rp.client_id().clone(),
        request,
        idp_hint,
    };
    let json = serde_json::to_string(&pushed).map_err(|_| OAuthError::unavailable())?;
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", token::random_opaque(32));
    let stored = op
        .sessions
        .put_if_absent(
            PUSHED_REQUESTS,
            &request_uri,
            json,
            Duration::from_secs(PUSHED_REQUEST_TTL_SECS),
        )
        .await;
    match stored {
        Ok(true) => {
            tracing::info!(client_id, "authorization request pushed");
            Ok(request_uri)
        }
        Ok(false) | Err(_) => Err(OAuthError::unavailable()),
    }
}
