//! Requests the hub refuses before any handler sees them: request heads larger than
//! `server.max_header_bytes` (431), and query strings or form bodies that do not decode
//! to UTF-8 (400). The form parsers would otherwise replace bad bytes with U+FFFD and
//! carry on, so a `state` the RP sent would come back altered.

use actix_web::body::BoxBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};
use serde_json::json;

use crate::web_edge::error_pages::PageError;

/// Whether percent-decoding `encoded` (as `application/x-www-form-urlencoded`) gives UTF-8.
pub(crate) fn decodes_to_utf8(encoded: &[u8]) -> bool {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut decoded = Vec::with_capacity(encoded.len());
    let mut i = 0;
    while i < encoded.len() {
        let byte = encoded[i];
        if byte == b'%' {
            if let (Some(h), Some(l)) = (
                encoded.get(i + 1).copied().and_then(hex),
                encoded.get(i + 2).copied().and_then(hex),
            ) {
                decoded.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        decoded.push(byte);
        i += 1;
    }
    std::str::from_utf8(&decoded).is_ok()
}

/// A POST of an HTML form or OAuth request body.
pub(super) fn is_form(req: &ServiceRequest) -> bool {
    req.method() == Method::POST
        && req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// 400 in the form the endpoint's clients understand: OAuth JSON for the back-channel
/// endpoints, a hub page otherwise.
fn not_utf8(path: &str) -> HttpResponse {
    tracing::info!(path, "rejected a request that is not UTF-8");
    if matches!(path, "/token" | "/par" | "/userinfo") || path.starts_with("/audit/") {
        HttpResponse::BadRequest()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "error": "invalid_request",
                "error_description": "The request is not valid UTF-8",
            }))
    } else {
        PageError::BadRequest.error_response()
    }
}

/// `server.max_header_bytes`: the most a request's header lines may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MaxHeaderBytes(pub(crate) usize);

/// The middleware.
pub(crate) async fn well_formed(
    mut req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let max_header_bytes = req
        .app_data::<web::Data<MaxHeaderBytes>>()
        .map_or(usize::MAX, |max| max.0);
    let head_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if head_bytes > max_header_bytes {
        tracing::info!(head_bytes, "rejected oversized request headers");
        return Ok(req.into_response(
            HttpResponse::build(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
                .body("Request headers too large."),
        ));
    }
    if !decodes_to_utf8(req.query_string().as_bytes()) {
        let response = not_utf8(req.path());
        return Ok(req.into_response(response));
    }
    if is_form(&req) {
        // Within the body limit; the same bytes go on to the handler.
        let body = match req.extract::<web::Bytes>().await {
            Ok(body) => body,
            Err(e) => return Ok(req.error_response(e)),
        };
        if !decodes_to_utf8(&body) {
            let response = not_utf8(req.path());
            return Ok(req.into_response(response));
        }
        req.set_payload(Payload::from(body));
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoded_bytes_must_form_utf8() {
        assert!(decodes_to_utf8(b"state=caf%C3%A9&x=%E2%9C%93+ok"));
        assert!(
            decodes_to_utf8(b"odd=%%ZZ%4"),
            "stray percent signs are literal"
        );
        assert!(!decodes_to_utf8(b"state=%C3%28"));
        assert!(!decodes_to_utf8(b"client_id=%FF%FE"));
        assert!(!decodes_to_utf8(b"code=\xff\xfe"));
    }
}
