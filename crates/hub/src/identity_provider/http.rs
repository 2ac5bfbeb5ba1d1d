//! The HTTP client the `openidconnect` crate uses to reach identity providers, with a
//! bound on how much of a response the hub reads. An IdP (or anyone who can answer for
//! one) could otherwise make the hub buffer an unbounded discovery, token or userinfo
//! body in memory.

use std::future::Future;

use openidconnect::{HttpRequest, HttpResponse};

/// The largest response body read from an identity provider. Discovery documents, JWKS,
/// token responses and userinfo are a few kilobytes.
pub(crate) const MAX_IDP_RESPONSE_BYTES: usize = 256 * 1024;

/// Why a call to an identity provider produced no usable response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdpHttpError {
    /// Not reached, timed out, or the connection broke.
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// It answered with more than [`MAX_IDP_RESPONSE_BYTES`].
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    #[error("http: {0}")]
    Http(#[from] openidconnect::http::Error),
}

impl IdpHttpError {
    /// True when the IdP could not be reached (worth retrying later), false when it
    /// answered with something the hub refuses.
    pub(crate) fn is_transport(&self) -> bool {
        matches!(self, Self::Transport(_))
    }
}

/// A boxed response future, as `openidconnect`'s async client calls want one.
type Call<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<HttpResponse, IdpHttpError>> + Send + 'a>>;

/// `http` as an `openidconnect` client that reads at most `limit` bytes of a body.
pub(crate) fn bounded<'a>(
    http: &'a reqwest::Client,
    limit: usize,
) -> impl Fn(HttpRequest) -> Call<'a> + 'a {
    move |request| Box::pin(call(http, request, limit))
}

async fn call(
    http: &reqwest::Client,
    request: HttpRequest,
    limit: usize,
) -> Result<HttpResponse, IdpHttpError> {
    let request = reqwest::Request::try_from(request)?;
    let response = http.execute(request).await?;
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(IdpHttpError::TooLarge(limit));
    }
    let mut builder = openidconnect::http::Response::builder()
        .status(response.status())
        .version(response.version());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(IdpHttpError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    note_error_status(response.status(), response.url().path(), &body);
    Ok(builder.body(body)?)
}

/// Logs an error status that `openidconnect` would report without it: a server error, or
/// any error with an empty body ("server returned empty error response"). Only the status,
/// the endpoint's path and the body's length: an IdP's body may hold personal data.
fn note_error_status(status: reqwest::StatusCode, endpoint: &str, body: &[u8]) {
    if status.is_server_error() || (!status.is_success() && body.is_empty()) {
        tracing::warn!(
            status = status.as_u16(),
            endpoint,
            bytes = body.len(),
            "identity provider answered with an error status"
        );
    }
}
