//! Every way a journey can fail, mapped once to what the relying party sees.
//!
//! Once the client and redirect URI are validated, a failure goes back to the RP as a
//! standard OIDC error with a stable `reason` code (documented in `docs/errors.md`).

use serde::{Deserialize, Serialize};
use url::Url;

use crate::relying_party::RedirectUri;

/// Why a journey ended without an assertion. The string codes are a public contract.
///
/// Stored in failed journeys by variant name, which is the code for every variant but
/// [`Reason::UserCancelledAtHub`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The citizen cancelled at the identity provider.
    UserCancelled,
    /// The citizen cancelled on the hub's own picker (same `reason` code, its own
    /// description).
    UserCancelledAtHub,
    IdpAccessDenied,
    IdpUnavailable,
    IdpError,
    LevelNotAvailable,
    LevelTooLow,
    NoMatch,
    MatchingUnavailable,
    JourneyExpired,
    JourneyFinished,
    UnsupportedResponseType,
    /// A `response_mode` other than `query`.
    UnsupportedResponseMode,
    InvalidScope,
    PkceRequired,
    UnknownLevel,
    LoginRequired,
    /// A `request_uri` that is not one of the hub's pushed-request URNs.
    RequestUriNotSupported,
    /// A pushed-request `request_uri` that is unknown, expired, used or another client's.
    RequestUriInvalid,
    /// A request object (JAR) that does not verify or whose claims are unacceptable.
    InvalidRequestObject,
    /// The RP is registered to send its requests through `/par` only.
    ParRequired,
    HubUnavailable,
}

impl Reason {
    /// The stable reason code sent as `reason`.
    pub fn code(self) -> &'static str {
        match self {
            Self::UserCancelled | Self::UserCancelledAtHub => "user_cancelled",
            Self::IdpAccessDenied => "idp_access_denied",
            Self::IdpUnavailable => "idp_unavailable",
            Self::IdpError => "idp_error",
            Self::LevelNotAvailable => "level_not_available",
            Self::LevelTooLow => "level_too_low",
            Self::NoMatch => "no_match",
            Self::MatchingUnavailable => "matching_unavailable",
            Self::JourneyExpired => "journey_expired",
            Self::JourneyFinished => "journey_finished",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::UnsupportedResponseMode => "unsupported_response_mode",
            Self::InvalidScope => "invalid_scope",
            Self::PkceRequired => "pkce_required",
            Self::UnknownLevel => "unknown_level",
            Self::LoginRequired => "login_required",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::RequestUriInvalid => "request_uri_invalid",
            Self::InvalidRequestObject => "invalid_request_object",
            Self::ParRequired => "par_required",
            Self::HubUnavailable => "hub_unavailable",
        }
    }

    /// The OIDC / OAuth `error` value.
    pub fn oidc_error(self) -> &'static str {
        match self {
            Self::UserCancelled
            | Self::UserCancelledAtHub
            | Self::IdpAccessDenied
            | Self::LevelNotAvailable
            | Self::LevelTooLow
            | Self::NoMatch
            | Self::JourneyExpired
            | Self::JourneyFinished => "access_denied",
            Self::IdpUnavailable | Self::MatchingUnavailable | Self::HubUnavailable => {
                "temporarily_unavailable"
            }
            Self::IdpError => "server_error",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::PkceRequired
            | Self::UnknownLevel
            | Self::ParRequired
            | Self::UnsupportedResponseMode => "invalid_request",
            Self::LoginRequired => "login_required",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::RequestUriInvalid => "invalid_request_uri",
            Self::InvalidRequestObject => "invalid_request_object",
        }
    }

    /// Plain-English `error_description`.
    pub fn description(self) -> &'static str {
        match self {
            Self::UserCancelled => "The user cancelled at the identity provider",
            Self::UserCancelledAtHub => "The user cancelled at the hub",
            Self::IdpAccessDenied => "The identity provider could not verify the user",
            Self::IdpUnavailable => "The identity provider is unavailable",
            Self::IdpError => "The identity provider returned an invalid response",
            Self::LevelNotAvailable => "No identity provider is certified for the requested level",
            Self::LevelTooLow => "The identity provider asserted a level below the one requested",
            Self::NoMatch => "No matching record was found",
            Self::MatchingUnavailable => "Matching is temporarily unavailable",
            Self::JourneyExpired => "The journey expired",
            Self::JourneyFinished => "The journey had already finished",
            Self::UnsupportedResponseType => "Only response_type=code is supported",
            Self::UnsupportedResponseMode => "Only response_mode=query is supported",
            Self::InvalidScope => "The openid scope is required",
            Self::PkceRequired => "PKCE with code_challenge_method=S256 is required",
            Self::UnknownLevel => "The requested level of assurance is not supported",
            Self::LoginRequired => "The hub always needs to interact with the user",
            Self::RequestUriNotSupported => {
                "Only request_uri values issued by the pushed authorization request endpoint are supported"
            }
            Self::RequestUriInvalid => {
                "The request_uri is unknown, expired, already used or was pushed by another client"
            }
            Self::InvalidRequestObject => "The request object is invalid",
            Self::ParRequired => "This client must push its authorization requests to /par",
            Self::HubUnavailable => "The hub is temporarily unavailable",
        }
    }
}

/// Builds the RP redirect carrying `reason` (RFC 6749 §4.1.2.1 plus RFC 9207 `iss`).
pub(crate) fn rp_error_url(
    redirect_uri: &RedirectUri,
    state: Option<&str>,
    issuer: &str,
    reason: Reason,
) -> Option<Url> {
    let mut url = Url::parse(redirect_uri.as_str()).ok()?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("error", reason.oidc_error());
        q.append_pair("error_description", reason.description());
        q.append_pair("reason", reason.code());
        if let Some(state) = state {
            q.append_pair("state", state);
        }
        q.append_pair("iss", issuer);
    }
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_redirect_carries_state_reason_and_issuer() {
        let redirect_uri = serde_json::from_value("https://rp.example/cb?x=1".into()).unwrap();
        let url = rp_error_url(
            &redirect_uri,
            Some("s 1"),
            "https://hub",
            Reason::UserCancelled,
        )
        .unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["x"], "1");
        assert_eq!(q["error"], "access_denied");
        assert_eq!(q["reason"], "user_cancelled");
        assert_eq!(q["state"], "s 1");
        assert_eq!(q["iss"], "https://hub");
    }
}
