//! `/authorize`: validates the RP's request, starts a journey, shows the IdP picker.

use actix_web::{web, HttpRequest, HttpResponse};

use super::authorization_request::{registered_redirect_uri, validate, AuthorizeParams};
use super::{browser_session, now, session_cookie};
use crate::journey::engine::{JourneyEngine, Journeys};
use crate::journey::{Journey, JourneyId, RpRequest};
use crate::reason::{rp_error_url, Reason};
use crate::relying_party::provider::OpenIdProvider;
use crate::relying_party::{ClientId, RedirectUri, RelyingParty};
use crate::web_edge::error_pages::{see_other, PageError};
use crate::web_edge::language::Lang;
use crate::web_edge::{journey_pages, pushed_authorization, request_object};
use audit::EventType;

pub(crate) async fn authorize_get(
    journeys: web::Data<Journeys>,
    req: HttpRequest,
    params: web::Query<AuthorizeParams>,
) -> Result<HttpResponse, PageError> {
    authorize(&journeys, req, params.into_inner()).await
}

pub(crate) async fn authorize_post(
    journeys: web::Data<Journeys>,
    req: HttpRequest,
    params: web::Form<AuthorizeParams>,
) -> Result<HttpResponse, PageError> {
    authorize(&journeys, req, params.into_inner()).await
}

/// Records a failure sent back to the RP before any journey started (`journey_failed`
/// with the reason code): every failure an RP receives is in the log, also while the
/// session store is down. A refusal issues nothing, so it stands if the log is down too.
async fn failed_before_start(op: &OpenIdProvider, client_id: &ClientId, reason: Reason) {
    let mut event = op.trail.event(EventType::JourneyFailed);
    event.rp = Some(client_id.to_string());
    event.outcome = Some(reason.code().to_owned());
    let _ = op.trail.record(event).await;
}

/// Where a refused authorization request is answered.
enum Refusal {
    /// On a hub page: no trustworthy redirect URI is known.
    Page(PageError),
    /// On the RP's registered redirect URI.
    Redirect {
        redirect_uri: RedirectUri,
        state: Option<String>,
        reason: Reason,
    },
}

/// A refusal before the request's parameters are trusted (a pushed request that is gone, a
/// request object that does not verify): it may only go to a redirect URI the query
/// names and the RP registered; otherwise it ends on a hub page.
fn untrusted_refusal(rp: &RelyingParty, query: &AuthorizeParams, reason: Reason) -> Refusal {
    match registered_redirect_uri(rp, query) {
        Some(redirect_uri) => Refusal::Redirect {
            redirect_uri,
            state: query.state.clone(),
            reason,
        },
        None => Refusal::Page(PageError::Refused(reason)),
    }
}

/// The authorization request `query` stands for: a pushed request (`request_uri`), a
/// request object (`request`) or the plain parameters, validated, with its `idp_hint`.
async fn authorization_request(
    op: &OpenIdProvider,
    rp: &RelyingParty,
    mut query: AuthorizeParams,
) -> Result<(RpRequest, Option<String>), Refusal> {
    let client_id = rp.client_id().as_str();
    let refused = |outcome: &'static str, reason: Reason| async move {
        tracing::info!(client_id, outcome, "authorization request refused");
        op.trail.rejected(Some(client_id), None, outcome).await;
        reason
    };
    if let Some(request_uri) = &query.request_uri {
        // RFC 9126 §4: only the pushed parameters count; the query's others are ignored.
        return match pushed_authorization::take(op, rp.client_id(), request_uri).await {
            Ok(pushed) => Ok((pushed.request, pushed.idp_hint)),
            Err(e) => {
                let reason = e.reason();
                if let Some(outcome) = e.audit_outcome() {
                    refused(outcome, reason).await;
                }
                Err(untrusted_refusal(rp, &query, reason))
            }
        };
    }
    if rp.settings.require_pushed_authorization_requests {
        let reason = refused("par_required", Reason::ParRequired).await;
        return Err(untrusted_refusal(rp, &query, reason));
    }
    if let Some(jwt) = query.request.take() {
        query = match request_object::verify(op, rp, &jwt).await {
            Ok(params) => params,
            Err(request_object::RequestObjectError::Unavailable(_)) => {
                return Err(untrusted_refusal(rp, &query, Reason::HubUnavailable))
            }
            Err(e) => {
                tracing::info!(client_id, error = %e, "request object refused");
                let reason = refused(e.audit_outcome(), Reason::InvalidRequestObject).await;
                return Err(untrusted_refusal(rp, &query, reason));
            }
        };
    }
    let Some(redirect_uri) = registered_redirect_uri(rp, &query) else {
        tracing::info!(client_id, "unregistered redirect_uri refused");
        op.trail
            .rejected(Some(client_id), None, "invalid_redirect_uri")
            .await;
        return Err(Refusal::Page(PageError::BadRedirectUri));
    };
    let state = query.state.clone();
    let idp_hint = query.idp_hint.clone();
    match validate(&op.levels, rp, redirect_uri.clone(), query) {
        Ok(request) => Ok((request, idp_hint)),
        Err(reason) => Err(Refusal::Redirect {
            redirect_uri,
            state,
            reason: refused(reason.code(), reason).await,
        }),
    }
}

/// The journey engine starts the journey; the request itself is the OP side's.
async fn authorize(
    journeys: &Journeys,
    req: HttpRequest,
    query: AuthorizeParams,
) -> Result<HttpResponse, PageError> {
    let op = &*journeys.op;
    let Some(rp) = query
        .client_id
        .as_deref()
        .and_then(|id| op.relying_party(id))
    else {
        // The claimed client id is attacker-supplied: it is not written to the log.
        op.trail.rejected(None, None, "unknown_client").await;
        return Err(PageError::UnknownClient);
    };
    let deny_at = |redirect_uri: &RedirectUri, state: Option<&str>, reason: Reason| {
        let url = rp_error_url(redirect_uri, state, &op.issuer, reason)
            .ok_or(PageError::BadRedirectUri)?;
        tracing::info!(client_id = %rp.client_id(), reason = reason.code(), "authorization request refused");
        Ok(see_other(url.as_str()))
    };
    let (request, idp_hint) = match authorization_request(op, &rp, query).await {
        Ok(accepted) => accepted,
        Err(Refusal::Page(e)) => return Err(e),
        Err(Refusal::Redirect {
            redirect_uri,
            state,
            reason,
        }) => {
            failed_before_start(op, rp.client_id(), reason).await;
            return deny_at(&redirect_uri, state.as_deref(), reason);
        }
    };
    let (redirect_uri, state) = (request.redirect_uri.clone(), request.state.clone());
    let deny = |reason: Reason| deny_at(&redirect_uri, state.as_deref(), reason);
    let now = now();
    let offers = journeys.idps.offers(
        &request.minimum_level,
        rp.client_id().as_str(),
        crate::clock::utc(now),
    );
    if offers.is_empty() {
        failed_before_start(op, rp.client_id(), Reason::LevelNotAvailable).await;
        return deny(Reason::LevelNotAvailable);
    }
    let browser = browser_session(&req).unwrap_or_else(|| token::random_opaque(32));
    let journey = Journey::new(
        JourneyId::random(),
        browser.clone(),
        token::random_opaque(24),
        request,
        now,
        op.journey_ttl.as_secs() as i64,
    );
    tracing::debug!(journey = %journey.id, client_id = %rp.client_id(), level = %journey.request.minimum_level, "journey started");
    let hinted = idp_hint.filter(|h| {
        offers
            .iter()
            .any(|o| o.idp.settings.id == *h && o.availability.is_selectable())
    });
    // The RP's `ui_locales` choose the pages' language, and the cookie keeps it.
    let ui_locales = journey.request.ui_locales.clone();
    let lang = Lang::of(&req, ui_locales.as_deref());
    let outcome = JourneyEngine::new(journeys, now)
        .start(journey, hinted.as_deref())
        .await;
    let mut response = journey_pages::respond_in(&req, lang, Ok(outcome))?;
    response
        .add_cookie(&session_cookie(&req, browser))
        .map_err(|_| PageError::BadRequest)?;
    let asked = ui_locales.as_deref().and_then(Lang::from_ui_locales);
    if let (Some(asked), None) = (asked, super::language::requested(&req)) {
        let _ = response.add_cookie(&asked.cookie(super::secure_cookies(&req)));
    }
    Ok(response)
}
