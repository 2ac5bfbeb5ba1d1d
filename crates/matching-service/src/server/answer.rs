//! `POST /match`: a signed request in, a signed decision out, or a refusal that names a
//! code, never the request's content.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{error, MatchingService};
use crate::keys::VerifyError;
use crate::local::{decide_locally, Cycle};
use crate::protocol::{
    self, token_error_code, MatchRequest, MatchResponse, CONTENT_TYPE, MAX_LIFETIME_SECS,
    REQUEST_TYP, RESPONSE_TYP,
};

/// POST /match: a signed request in, a signed decision out.
pub(super) async fn match_endpoint(
    service: web::Data<MatchingService>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let media_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some(CONTENT_TYPE) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "the body must be a compact JWS of type application/jwt",
        );
    }
    let Ok(jws) = std::str::from_utf8(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is not UTF-8",
        );
    };
    match answer(&service, jws.trim()).await {
        Ok(response) => response,
        Err(rejection) => {
            tracing::warn!(code = rejection.code, "match request refused");
            error(rejection.status, rejection.code, rejection.description)
        }
    }
}

/// Why a request was refused.
struct Rejection {
    status: StatusCode,
    code: &'static str,
    description: &'static str,
}

fn unauthorized(code: &'static str) -> Rejection {
    Rejection {
        status: StatusCode::UNAUTHORIZED,
        code,
        description: "the request is not a valid signed match request from the hub",
    }
}

fn bad_request(description: &'static str) -> Rejection {
    Rejection {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_request",
        description,
    }
}

fn unavailable() -> Rejection {
    Rejection {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "temporarily_unavailable",
        description: "matching is temporarily unavailable",
    }
}

async fn answer(service: &MatchingService, jws: &str) -> Result<HttpResponse, Rejection> {
    let leeway = service.settings.leeway_secs;
    let expect = token::Expect {
        issuer: Some(service.settings.hub_issuer.clone()),
        audience: vec![service.identifier.clone()],
        leeway_secs: leeway,
    };
    let request: MatchRequest = service
        .hub_keys
        .verify(&service.http, jws, REQUEST_TYP, &expect)
        .await
        .map_err(|e| match e {
            VerifyError::Keys(e) => {
                tracing::error!(error = %e, "the hub's keys are unavailable");
                unavailable()
            }
            VerifyError::Token(e) => unauthorized(token_error_code(&e)),
        })?;
    let now = protocol::unix_now();
    if !protocol::lifetime_ok(request.iat, request.exp, now, leeway as i64) {
        return Err(unauthorized("lifetime"));
    }
    if request.jti.is_empty() || request.jti.len() > 256 {
        return Err(unauthorized("invalid_jti"));
    }
    if !service
        .replay
        .first_use(&request.jti, request.exp, now, leeway as i64)
    {
        return Err(unauthorized("replayed"));
    }
    let Some(policy) = service.settings.policy_for(&request.rp) else {
        return Err(Rejection {
            status: StatusCode::FORBIDDEN,
            code: "unknown_rp",
            description: "this service does not match for that relying party",
        });
    };
    let cycle = match (request.cycle, &request.attribute, &request.value) {
        (1, _, _) => Cycle::One,
        (3, Some(attribute), Some(value)) => Cycle::Three { attribute, value },
        (3, _, _) => return Err(bad_request("cycle 3 needs attribute and value")),
        _ => return Err(bad_request("cycle must be 1 or 3")),
    };
    let decision = decide_locally(&service.db, &request.rp, policy, &request.dataset, cycle)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "matching store unavailable");
            unavailable()
        })?;
    tracing::info!(
        rp = %request.rp,
        cycle = request.cycle,
        outcome = %decision.outcome,
        reasons = ?decision.reasons,
        "match request answered"
    );
    let response = MatchResponse {
        iss: service.identifier.clone(),
        aud: request.iss,
        iat: now,
        exp: now + MAX_LIFETIME_SECS,
        in_response_to: request.jti,
        decision,
    };
    let signed = service
        .signing_key
        .sign_typed(&response, RESPONSE_TYP)
        .map_err(|e| {
            tracing::error!(error = %e, "could not sign the response");
            unavailable()
        })?;
    Ok(HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .insert_header(("cache-control", "no-store"))
        .body(signed))
}
