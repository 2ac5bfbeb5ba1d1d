//! The virtual user's cookie jar, emptied at the start of every journey.
//!
//! Each journey is a new citizen's browser: a session left from the last journey would
//! let an OP skip its login and consent (oidc-provider does), which is not the flow being
//! measured. Emptying the jar rather than building a new client keeps the connections.

use std::sync::{PoisonError, RwLock};

use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::HeaderValue;
use url::Url;

/// reqwest's own jar, replaced by an empty one on [`FreshJar::empty`].
#[derive(Debug, Default)]
pub(crate) struct FreshJar {
    jar: RwLock<Jar>,
}

impl FreshJar {
    /// Forgets every cookie.
    pub(crate) fn empty(&self) {
        *self.jar.write().unwrap_or_else(PoisonError::into_inner) = Jar::default();
    }
}

impl CookieStore for FreshJar {
    fn set_cookies(&self, cookie_headers: &mut dyn Iterator<Item = &HeaderValue>, url: &Url) {
        self.jar
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .set_cookies(cookie_headers, url);
    }

    fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        self.jar
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .cookies(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emptying_forgets_cookies() {
        let jar = FreshJar::default();
        let url = Url::parse("http://127.0.0.1:8080/authorize").unwrap();
        let set = HeaderValue::from_static("hub_session=abc; Path=/; HttpOnly");
        jar.set_cookies(&mut std::iter::once(&set), &url);
        assert_eq!(jar.cookies(&url).unwrap(), "hub_session=abc");
        jar.empty();
        assert!(jar.cookies(&url).is_none());
    }
}
