//! What names a relying party and where its browsers go back to, once checked against
//! its registration. Serialized as the plain strings, so stored journeys, codes and
//! pushed requests read the same as before these types existed.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A registered relying party's `client_id`. Made once per RP from its settings (or read
/// back from what the hub stored), so a request's unchecked `client_id` parameter cannot
/// be passed where the hub means a client it knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// From a registered RP's settings (its registration or the registry's snapshot).
    pub(crate) fn new(id: String) -> Self {
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets the hub's map of relying parties be looked up by the `client_id` a request names.
impl Borrow<str> for ClientId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A redirect URI exactly equal to one its relying party registered: the only place the
/// hub sends a browser back to with a code or an error. Made only by the registration
/// check (or read back from a stored journey or code), so no other string can get there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// `uri` if it is exactly one of `registered` (no prefix or pattern matching).
    pub(super) fn registered(registered: &[String], uri: &str) -> Option<Self> {
        registered
            .iter()
            .any(|r| r == uri)
            .then(|| Self(uri.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_exactly_registered_uri_is_a_redirect_uri() {
        let registered = ["https://rp.example/cb".to_owned()];
        let uri = RedirectUri::registered(&registered, "https://rp.example/cb");
        assert_eq!(
            uri.map(|u| u.to_string()).as_deref(),
            Some("https://rp.example/cb")
        );
        for other in [
            "https://rp.example/cb/",
            "https://rp.example/cb?x=1",
            "https://rp.example/c",
            "HTTPS://rp.example/cb",
            "",
        ] {
            assert!(
                RedirectUri::registered(&registered, other).is_none(),
                "{other}"
            );
        }
    }

    #[test]
    fn stored_as_the_plain_strings_and_looked_up_by_one() {
        let registered = ["https://rp.example/cb".to_owned()];
        let uri = RedirectUri::registered(&registered, "https://rp.example/cb").unwrap();
        assert_eq!(
            serde_json::to_string(&uri).unwrap(),
            r#""https://rp.example/cb""#
        );
        let id = ClientId::new("rp".to_owned());
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""rp""#);
        assert_eq!(serde_json::from_str::<ClientId>(r#""rp""#).unwrap(), id);
        let parties: std::collections::HashMap<ClientId, ()> = [(id, ())].into();
        assert!(parties.contains_key("rp"));
    }
}
