//! Headers that tell browsers to confine the hub's pages, on every response.
//!
//! The hub's pages carry no script and no inline style (the stylesheet is
//! `/assets/hub.css`), so the policy can forbid both outright; nothing may frame them (click-
//! jacking of the picker), and no `Referer` leaves them (the IdP must not learn which service
//! the citizen came from). OAuth and page responses are not cached; the public documents
//! (`/jwks`, discovery) and the stylesheet keep the caching their handlers chose.

use std::collections::BTreeSet;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use url::Url;

use crate::config::Settings;

/// Security headers computed once per instance from its configuration.
#[derive(Debug, Clone)]
pub(crate) struct BrowserSecurity {
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Served over https: cookies are `Secure` and `__Host-` prefixed.
    https: bool,
}

impl BrowserSecurity {
    pub(crate) fn new(settings: &Settings) -> Self {
        let https = settings.server.public_url.scheme() == "https";
        let mut headers = vec![
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_str(&content_security_policy(settings))
                    .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'")),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
        ];
        if https {
            headers.push((
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            ));
        }
        Self { headers, https }
    }

    /// Whether cookies get the `Secure` attribute (when the hub is served over https).
    pub(crate) fn secure_cookies(&self) -> bool {
        self.https
    }
}

/// `form-action` also governs where a form submission may be redirected (Chrome enforces
/// it on the 303 to the IdP or back to the RP), so it allows the URL schemes of the IdPs
/// and RP redirect URIs the hub sends citizens to (https, plus http in the demo or an
/// app's own scheme) rather than `'self'` alone.
fn content_security_policy(settings: &Settings) -> String {
    let mut schemes: BTreeSet<String> = settings
        .relying_parties
        .iter()
        .flat_map(|rp| rp.redirect_uris.iter())
        .chain(settings.identity_providers.iter().map(|idp| &idp.issuer))
        .filter_map(|url| Url::parse(url).ok())
        .map(|url| url.scheme().to_owned())
        .collect();
    schemes.insert("https".into());
    let targets: Vec<String> = schemes.iter().map(|s| format!("{s}:")).collect();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         font-src 'self'; manifest-src 'self'; form-action 'self' {}; \
         frame-ancestors 'none'; base-uri 'none'",
        targets.join(" ")
    )
}

/// Public documents whose handlers choose their own caching.
fn cacheable(path: &str) -> bool {
    path == "/jwks" || path.starts_with("/.well-known/") || path.starts_with("/assets/")
}

/// The middleware.
pub(crate) async fn secure_responses(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(policy) = req.app_data::<web::Data<BrowserSecurity>>().cloned() else {
        return next.call(req).await;
    };
    let cache = !cacheable(req.path());
    // Handler and extractor errors arrive here as responses already.
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    for (name, value) in &policy.headers {
        headers.insert(name.clone(), value.clone());
    }
    if cache && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_documents_keep_their_caching() {
        assert!(cacheable("/jwks"));
        assert!(cacheable("/.well-known/openid-configuration"));
        assert!(cacheable("/assets/hub.css"));
        assert!(!cacheable("/token"));
        assert!(!cacheable("/authorize"));
    }
}
