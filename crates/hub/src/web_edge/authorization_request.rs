//! The authorization request (OIDC Core §3.1.2.1) as `/authorize` and `/par` receive it,
//! and the checks both apply once the client and redirect URI are known.

use serde::Deserialize;

use crate::journey::RpRequest;
use crate::level::Levels;
use crate::reason::Reason;
use crate::relying_party::{RedirectUri, RelyingParty};

/// The authorization request parameters (OIDC Core §3.1.2.1), from the query, a form,
/// a request object or a pushed request.
#[derive(Debug, Deserialize)]
pub(crate) struct AuthorizeParams {
    pub(crate) client_id: Option<String>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) response_type: Option<String>,
    /// Only `query` (the default for `code`) is supported.
    pub(crate) response_mode: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) code_challenge_method: Option<String>,
    pub(crate) acr_values: Option<String>,
    pub(crate) vtr: Option<String>,
    pub(crate) idp_hint: Option<String>,
    pub(crate) prompt: Option<String>,
    /// The citizen's preferred languages (the pages are in English and Welsh).
    pub(crate) ui_locales: Option<String>,
    /// A signed request object (RFC 9101).
    pub(crate) request: Option<String>,
    /// A pushed request (RFC 9126).
    pub(crate) request_uri: Option<String>,
}

/// The redirect URI of `p` if it is exactly one `rp` registered.
pub(crate) fn registered_redirect_uri(
    rp: &RelyingParty,
    p: &AuthorizeParams,
) -> Option<RedirectUri> {
    rp.registered_redirect_uri(p.redirect_uri.as_deref()?)
}

/// The checks after client and redirect URI, whose failures go back to the RP (at
/// `/authorize`) or to the client (at `/par`). Pure (only the configured `levels`), so
/// it can be fuzzed.
pub(crate) fn validate(
    levels: &Levels,
    rp: &RelyingParty,
    redirect_uri: RedirectUri,
    p: AuthorizeParams,
) -> Result<RpRequest, Reason> {
    if p.response_type.as_deref() != Some("code") {
        return Err(Reason::UnsupportedResponseType);
    }
    // `form_post`, `fragment`, `jwt`, ... would be silently answered in the query
    // instead: refuse them (the refusal itself goes back in the query, RFC 6749 §4.1.2.1).
    if p.response_mode.as_deref().is_some_and(|m| m != "query") {
        return Err(Reason::UnsupportedResponseMode);
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
    let requested = levels
        .requested(p.acr_values.as_deref(), p.vtr.as_deref())
        .map_err(|_| Reason::UnknownLevel)?;
    let (minimum_level, vectors) = match requested {
        Some(r) => (r.minimum, r.vectors),
        None => (
            levels
                .parse(&rp.settings.default_level)
                .ok_or(Reason::UnknownLevel)?,
            None,
        ),
    };
    Ok(RpRequest {
        client_id: rp.client_id().clone(),
        redirect_uri,
        state: p.state,
        nonce: p.nonce,
        code_challenge,
        scope,
        minimum_level,
        vectors,
        ui_locales: p.ui_locales.filter(|l| l.len() <= MAX_UI_LOCALES_BYTES),
    })
}

/// Longer `ui_locales` lists are ignored: a few tags is all a citizen's browser sends.
const MAX_UI_LOCALES_BYTES: usize = 128;
