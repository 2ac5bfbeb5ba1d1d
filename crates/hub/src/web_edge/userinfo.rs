//! `/userinfo`: the verified attributes the RP is entitled to, for a valid access token.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::relying_party::assertion;
use crate::relying_party::provider::OpenIdProvider;
use audit::EventType;

fn bearer(req: &HttpRequest) -> Option<&str> {
    let header = req.headers().get("authorization")?.to_str().ok()?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
}

fn unauthorized(error: &str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("www-authenticate", format!("Bearer error=\"{error}\"")))
        .insert_header(("cache-control", "no-store"))
        .json(json!({"error": error}))
}

pub(crate) async fn userinfo(op: web::Data<OpenIdProvider>, req: HttpRequest) -> HttpResponse {
    let Some(access_token) = bearer(&req) else {
        return unauthorized("invalid_request");
    };
    let grant = match assertion::access_grant(&op, access_token).await {
        // Its relying party was disabled or retired since the token was issued.
        Ok(Some(g)) if op.relying_party(g.client_id.as_str()).is_none() => {
            return unauthorized("invalid_token")
        }
        Ok(Some(g)) => g,
        Ok(None) => return unauthorized("invalid_token"),
        Err(e) => {
            tracing::error!(error = %e, "session store unavailable");
            return HttpResponse::ServiceUnavailable()
                .json(json!({"error": "temporarily_unavailable"}));
        }
    };
    let mut event = op.trail.event(EventType::UserinfoServed);
    event.journey_id = grant.journey_id.clone();
    event.rp = Some(grant.client_id.to_string());
    event.subject = Some(grant.sub.to_string());
    if op.trail.record(event).await.is_err() {
        return HttpResponse::ServiceUnavailable()
            .json(json!({"error": "temporarily_unavailable"}));
    }
    let mut body = grant.userinfo;
    body.insert("sub".into(), Value::String(grant.sub.as_str().to_owned()));
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(Value::Object(body))
}
