//! OpenID Provider metadata and the hub's public keys.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::language::Lang;
use crate::relying_party::provider::OpenIdProvider;

pub(crate) async fn configuration(op: web::Data<OpenIdProvider>) -> HttpResponse {
    let levels: Vec<String> = op.levels.all().iter().map(|l| l.to_string()).collect();
    HttpResponse::Ok().json(json!({
        "issuer": op.issuer,
        "authorization_endpoint": op.url("/authorize"),
        "token_endpoint": op.url("/token"),
        "pushed_authorization_request_endpoint": op.url("/par"),
        "require_pushed_authorization_requests": false,
        "userinfo_endpoint": op.url("/userinfo"),
        "jwks_uri": op.url("/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": token::ALLOWED_ALGORITHMS
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>(),
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "address"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "vot", "match",
            "given_name", "middle_name", "family_name", "birthdate", "gender", "address"],
        "acr_values_supported": levels,
        "vtr_supported": levels,
        "claims_parameter_supported": false,
        "request_parameter_supported": true,
        "request_uri_parameter_supported": false,
        "request_object_signing_alg_values_supported": token::ALLOWED_ALGORITHMS
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>(),
        "authorization_response_iss_parameter_supported": true,
        "ui_locales_supported": Lang::ALL.iter().map(|l| l.code()).collect::<Vec<_>>(),
    }))
}

pub(crate) async fn jwks(op: web::Data<OpenIdProvider>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            "cache-control",
            format!("public, max-age={}", crate::app::JWKS_MAX_AGE.as_secs()),
        ))
        .json(op.keys.snapshot().jwks())
}
