//! `/authorize`: validates the RP's request, starts a journey, shows the IdP picker.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{browser_session, now, session_cookie};
use crate::app::Hub;
use crate::failure::{rp_error_url, see_other, PageError, Reason};
use crate::journey::{Journey, RpRequest};
use crate::pages::{html, Picker, PickerEntry};
use crate::relying_party::RelyingParty;
use crate::{journeys, web_edge::journey_steps};
use audit::EventType;

/// The authorization request parameters (OIDC Core §3.1.2.1).
#[derive(Debug, Deserialize)]
pub(crate) struct AuthorizeParams {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    acr_values: Option<String>,
    vtr: Option<String>,
    idp_hint: Option<String>,
    prompt: Option<String>,
    request: Option<String>,
    request_uri: Option<String>,
}

pub(crate) async fn authorize_get(
    hub: web::Data<Hub>,
    req: HttpRequest,
    params: web::Query<AuthorizeParams>,
) -> Result<HttpResponse, PageError> {
    authorize(hub, req, params.into_inner()).await
}

pub(crate) async fn authorize_post(
    hub: web::Data<Hub>,
    req: HttpRequest,
    params: web::Form<AuthorizeParams>,
) -> Result<HttpResponse, PageError> {
    authorize(hub, req, params.into_inner()).await
}

/// Checks that identify the RP; failures here are shown on a hub page, never redirected.
fn registered_client<'h>(
    hub: &'h Hub,
    p: &AuthorizeParams,
) -> Result<(&'h RelyingParty, String), PageError> {
    let rp = p
        .client_id
        .as_deref()
        .and_then(|id| hub.relying_parties.get(id))
        .ok_or(PageError::UnknownClient)?;
    let redirect_uri = p.redirect_uri.clone().ok_or(PageError::BadRedirectUri)?;
    if !rp.accepts_redirect_uri(&redirect_uri) {
        return Err(PageError::BadRedirectUri);
    }
    Ok((rp, redirect_uri))
}

/// The remaining checks, whose failures go back to the RP.
fn validate(
    hub: &Hub,
    rp: &RelyingParty,
    redirect_uri: String,
    p: AuthorizeParams,
) -> Result<RpRequest, Reason> {
    if p.request.is_some() || p.request_uri.is_some() {
        return Err(Reason::RequestNotSupported);
    }
    if p.response_type.as_deref() != Some("code") {
        return Err(Reason::UnsupportedResponseType);
    }
    let scope: Vec<String> = p
        .scope
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !scope.iter().any(|s| s == "openid") {
        return Err(Reason::InvalidScope);
    }
    let challenge = p.code_challenge.filter(|c| (43..=128).contains(&c.len()));
    let (Some(code_challenge), Some("S256")) = (challenge, p.code_challenge_method.as_deref())
    else {
        return Err(Reason::PkceRequired);
    };
    if p.prompt
        .as_deref()
        .is_some_and(|pr| pr.split_whitespace().any(|v| v == "none"))
    {
        return Err(Reason::LoginRequired);
    }
    let requested = hub
        .levels
        .requested(p.acr_values.as_deref(), p.vtr.as_deref())
        .map_err(|_| Reason::UnknownLevel)?;
    let (minimum_level, vectors) = match requested {
        Some(r) => (r.minimum, r.vectors),
        None => (
            hub.levels
                .parse(&rp.settings.default_level)
                .ok_or(Reason::UnknownLevel)?,
            None,
        ),
    };
    Ok(RpRequest {
        client_id: rp.settings.client_id.clone(),
        redirect_uri,
        state: p.state,
        nonce: p.nonce,
        code_challenge,
        scope,
        minimum_level,
        vectors,
    })
}

/// IdPs certified for the journey's level, in configured order.
pub(crate) fn eligible_idps<'h>(
    hub: &'h Hub,
    request: &RpRequest,
) -> Vec<&'h crate::upstream::IdentityProvider> {
    hub.identity_providers
        .iter()
        .filter(|idp| {
            hub.levels
                .parse(&idp.settings.max_level)
                .is_some_and(|max| hub.levels.satisfies(&max, &request.minimum_level))
        })
        .collect()
}

async fn authorize(
    hub: web::Data<Hub>,
    req: HttpRequest,
    p: AuthorizeParams,
) -> Result<HttpResponse, PageError> {
    let (rp, redirect_uri) = registered_client(&hub, &p)?;
    let state = p.state.clone();
    let idp_hint = p.idp_hint.clone();
    let deny = |reason: Reason| -> Result<HttpResponse, PageError> {
        let url = rp_error_url(&redirect_uri, state.as_deref(), &hub.issuer, reason)
            .ok_or(PageError::BadRedirectUri)?;
        tracing::info!(client_id = %rp.settings.client_id, reason = reason.code(), "authorization request refused");
        Ok(see_other(url.as_str()))
    };
    let request = match validate(&hub, rp, redirect_uri.clone(), p) {
        Ok(r) => r,
        Err(reason) => return deny(reason),
    };
    let eligible = eligible_idps(&hub, &request);
    if eligible.is_empty() {
        return deny(Reason::LevelNotAvailable);
    }
    let browser = browser_session(&req).unwrap_or_else(|| token::random_opaque(32));
    let mut journey = Journey::new(
        token::random_opaque(24),
        browser.clone(),
        token::random_opaque(24),
        request,
        now(),
        hub.settings.journey.ttl_secs as i64,
    );
    tracing::info!(journey = %journey.id, client_id = %rp.settings.client_id, level = %journey.request.minimum_level, "journey started");
    let started = hub.audit.journey_event(EventType::JourneyStarted, &journey);
    if hub.audit.record(started).await.is_err() {
        return deny(Reason::HubUnavailable);
    }
    let hinted = idp_hint.and_then(|h| {
        eligible
            .iter()
            .find(|i| i.settings.id == h)
            .map(|i| i.settings.id.clone())
    });
    let mut response = match hinted {
        Some(idp_id) => journey_steps::send_to_idp(&hub, &mut journey, &idp_id).await,
        None => {
            if journeys::save(&hub, &journey).await.is_err() {
                return deny(Reason::HubUnavailable);
            }
            html(
                StatusCode::OK,
                &Picker {
                    rp_name: &rp.settings.name,
                    level: journey.request.minimum_level.as_str(),
                    journey: &journey.id,
                    csrf: &journey.csrf,
                    idps: eligible
                        .iter()
                        .map(|i| PickerEntry {
                            id: i.settings.id.clone(),
                            name: i.settings.name.clone(),
                        })
                        .collect(),
                },
            )
        }
    };
    response
        .add_cookie(&session_cookie(&hub, browser))
        .map_err(|_| PageError::BadRequest)?;
    Ok(response)
}
