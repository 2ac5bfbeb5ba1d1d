//! Request rate limits on the endpoints anyone can call unauthenticated and that cost the
//! hub work: `/authorize` (a journey, an audit event), `/par` and `/token` (client
//! authentication, signatures).
//!
//! Two token buckets per request, in process (limits are per instance): one per source
//! address and endpoint, one per registered client named in the request (its `client_id`
//! is taken unauthenticated, only as a key; a name that is not registered gets no bucket
//! of its own, so made-up names cannot grow the table or dodge the address limit). Over
//! either: 429 with `Retry-After`; at `/token` and `/par` an OAuth JSON error
//! `temporarily_unavailable`, at `/authorize` a hub page (the client is not validated yet,
//! so the hub must not redirect).

use std::collections::HashSet;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use serde_json::json;

use crate::config::Settings;
use crate::registry::live::LiveRegistry;
use crate::web_edge::error_pages::PageError;

/// The limited endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Endpoint {
    Authorize,
    Par,
    Token,
}

impl Endpoint {
    fn of(path: &str) -> Option<Self> {
        match path {
            "/authorize" => Some(Self::Authorize),
            "/par" => Some(Self::Par),
            "/token" => Some(Self::Token),
            _ => None,
        }
    }
}

/// How often (in checks) buckets idle long enough to be full again are forgotten.
const SWEEP_EVERY: u64 = 4096;

/// The buckets of one hub instance.
#[derive(Debug)]
pub(crate) struct RateLimits {
    enabled: bool,
    trusted_proxies: Vec<IpNet>,
    by_address: DefaultKeyedRateLimiter<(Endpoint, IpAddr)>,
    by_client: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    checks: AtomicU64,
    /// Client ids limited per client: the active relying parties (the registry's) and
    /// the auditors' and operators' (an unregistered name would let anyone fill the
    /// table).
    service_clients: HashSet<String>,
    registry: Arc<LiveRegistry>,
}

/// Over a limit: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exceeded(Duration);

impl RateLimits {
    pub(crate) fn new(settings: &Settings, registry: Arc<LiveRegistry>) -> Self {
        let limits = &settings.rate_limits;
        let quota = |per_minute: u32, burst: u32| {
            let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            Quota::per_minute(per_minute).allow_burst(burst)
        };
        Self {
            enabled: limits.enabled,
            trusted_proxies: settings.server.trusted_proxies.clone(),
            by_address: DefaultKeyedRateLimiter::keyed(quota(
                limits.per_ip_per_minute,
                limits.per_ip_burst,
            )),
            by_client: DefaultKeyedRateLimiter::keyed(quota(
                limits.per_client_per_minute,
                limits.per_client_burst,
            )),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
            service_clients: settings
                .auditors
                .iter()
                .map(|a| a.client_id.clone())
                .chain(settings.operators.iter().map(|o| o.client_id.clone()))
                .collect(),
            registry,
        }
    }

    fn is_registered(&self, client: &str) -> bool {
        self.service_clients.contains(client) || self.registry.relying_party(client).is_some()
    }

    fn sweep_now_and_then(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.by_address.retain_recent();
            self.by_address.shrink_to_fit();
            self.by_client.retain_recent();
            self.by_client.shrink_to_fit();
        }
    }

    fn check_address(&self, endpoint: Endpoint, address: IpAddr) -> Result<(), Exceeded> {
        self.sweep_now_and_then();
        self.by_address
            .check_key(&(endpoint, address))
            .map_err(|not_until| Exceeded(not_until.wait_time_from(self.clock.now())))
    }

    fn check_client(&self, client_id: &str) -> Result<(), Exceeded> {
        self.by_client
            .check_key(&client_id.to_owned())
            .map_err(|not_until| Exceeded(not_until.wait_time_from(self.clock.now())))
    }
}

/// The address a request comes from: the TCP peer, unless the peer is a trusted proxy,
/// then the right-most `X-Forwarded-For` entry that is not itself a trusted proxy (entries
/// further left were written by the client and prove nothing). IPv6 addresses are keyed
/// by their /64, which one subscriber usually holds whole.
fn source_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut source = peer;
    if is_trusted(&peer) {
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if is_trusted(&ip) => source = ip,
                Ok(ip) => {
                    source = ip;
                    break;
                }
                // Garbage: the last trusted hop is the best we know.
                Err(_) => break,
            }
        }
    }
    bucket_address(source)
}

fn bucket_address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// The `client_id` a request names (unauthenticated): Basic credentials, the query,
/// the form, or the issuer of a `private_key_jwt` assertion.
fn named_client(req: &ServiceRequest, body: Option<&[u8]>) -> Option<String> {
    if let Some((id, _)) = super::token_endpoint::basic_credentials(req.request()) {
        return Some(id);
    }
    let from_pairs = |pairs: url::form_urlencoded::Parse<'_>| {
        let mut assertion = None;
        for (name, value) in pairs {
            match name.as_ref() {
                "client_id" => return Some(value.into_owned()),
                "client_assertion" => assertion = Some(value.into_owned()),
                _ => {}
            }
        }
        assertion.as_deref().and_then(token::unverified_issuer)
    };
    from_pairs(url::form_urlencoded::parse(req.query_string().as_bytes()))
        .or_else(|| body.and_then(|b| from_pairs(url::form_urlencoded::parse(b))))
}

fn too_many(endpoint: Endpoint, Exceeded(wait): Exceeded) -> HttpResponse {
    let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let retry_after = retry_after.max(1);
    let mut response = match endpoint {
        Endpoint::Authorize => PageError::TooManyRequests.error_response(),
        Endpoint::Par | Endpoint::Token => HttpResponse::TooManyRequests()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "error": "temporarily_unavailable",
                "error_description": "Too many requests; retry later",
            })),
    };
    if let Ok(value) = header::HeaderValue::from_str(&retry_after.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The middleware: applies only to the limited endpoints.
pub(crate) async fn throttle(
    mut req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let (Some(endpoint), Some(limits)) = (
        Endpoint::of(req.path()),
        req.app_data::<web::Data<RateLimits>>().cloned(),
    ) else {
        return next.call(req).await;
    };
    if !limits.enabled {
        return next.call(req).await;
    }
    if let Some(peer) = req.peer_addr() {
        let address = source_address(peer.ip(), req.headers(), &limits.trusted_proxies);
        if let Err(exceeded) = limits.check_address(endpoint, address) {
            tracing::info!(?endpoint, %address, "rate limited by source address");
            return Ok(req.into_response(too_many(endpoint, exceeded)));
        }
    }
    let mut client = named_client(&req, None);
    if client.is_none() && super::request_shape::is_form(&req) {
        // Read the form (within the body limit) to find its client_id, then hand the
        // same bytes on to the handler.
        let body = match req.extract::<web::Bytes>().await {
            Ok(body) => body,
            Err(e) => return Ok(req.error_response(e)),
        };
        client = named_client(&req, Some(&body));
        req.set_payload(Payload::from(body));
    }
    if let Some(client) = client.filter(|c| limits.is_registered(c)) {
        if let Err(exceeded) = limits.check_client(&client) {
            tracing::info!(?endpoint, client_id = %client, "rate limited by client");
            return Ok(req.into_response(too_many(endpoint, exceeded)));
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in xff {
            map.append(
                header::HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let h = headers(&["203.0.113.9"]);
        assert_eq!(
            source_address(ip("198.51.100.1"), &h, &[]),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_source() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&["1.1.1.1, 203.0.113.9", "10.0.0.7"]);
        assert_eq!(
            source_address(ip("10.0.0.2"), &h, &trusted),
            ip("203.0.113.9")
        );
        let all_trusted = headers(&["10.0.0.9"]);
        assert_eq!(
            source_address(ip("10.0.0.2"), &all_trusted, &trusted),
            ip("10.0.0.9")
        );
        let garbage = headers(&["evil, 10.0.0.9"]);
        assert_eq!(
            source_address(ip("10.0.0.2"), &garbage, &trusted),
            ip("10.0.0.9")
        );
        assert_eq!(
            source_address(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn ipv6_sources_share_a_bucket_per_64() {
        assert_eq!(
            bucket_address(ip("2001:db8:1:2:aaaa::1")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(bucket_address(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
