//! What the admin API accepts beyond what makes a party usable: the rules for a party
//! registered at run time, stricter than for the operator's own configuration file.

use url::{Host, Url};

use super::Registrable;
use crate::config::{IdentityProviderSettings, RelyingPartySettings, Secret};

/// What the admin API shows in place of a secret.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// A party's settings with the checks an operator's change must pass.
pub(crate) trait Registration: Registrable {
    /// Usable against the deployment's `levels`, and safe to register.
    fn check_registration(&self, levels: &[String]) -> Result<(), String>;
}

impl Registration for RelyingPartySettings {
    fn check_registration(&self, levels: &[String]) -> Result<(), String> {
        check_id("client_id", &self.client_id)?;
        for uri in &self.redirect_uris {
            secure_url("redirect_uris", uri)?;
        }
        if let Some(uri) = &self.jwks_uri {
            secure_url("jwks_uri", uri.as_str())?;
        }
        if let Some(remote) = &self.matching_service {
            secure_url("matching_service.url", remote.url.as_str())?;
            if let Some(uri) = &remote.jwks_uri {
                secure_url("matching_service.jwks_uri", uri.as_str())?;
            }
        }
        not_redacted(self.client_secret.as_ref())?;
        non_blank("name", &self.name)?;
        self.check(levels)
    }
}

impl Registration for IdentityProviderSettings {
    fn check_registration(&self, levels: &[String]) -> Result<(), String> {
        check_id("id", &self.id)?;
        secure_url("issuer", &self.issuer)?;
        non_blank("name", &self.name)?;
        not_redacted(self.client_secret.as_ref())?;
        for rp in self.relying_parties.iter().flatten() {
            check_id("relying_parties", rp)?;
        }
        if let (Some(registration), Some(authentication)) =
            (self.registration_until, self.authentication_until)
        {
            if registration > authentication {
                return Err("registration_until is after authentication_until".into());
            }
        }
        self.check(levels)
    }
}

/// Ids appear in URLs, logs and pairwise derivations: short and plain.
fn check_id(field: &str, id: &str) -> Result<(), String> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if id.is_empty() || id.len() > 64 || !id.chars().all(plain) {
        return Err(format!(
            "{field}: 1 to 64 letters, digits, '-', '_' or '.' (got {id:?})"
        ));
    }
    Ok(())
}

/// A secret copied back from `show`'s output is not a secret.
fn not_redacted(secret: Option<&Secret>) -> Result<(), String> {
    if secret.is_some_and(|s| s.expose() == REDACTED) {
        return Err(format!(
            "client_secret: {REDACTED:?} is what show prints, not a secret"
        ));
    }
    Ok(())
}

fn non_blank(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} is empty"));
    }
    Ok(())
}

/// An absolute https URL without a fragment; plain http only on a loopback host (a
/// developer's machine).
fn secure_url(field: &str, value: &str) -> Result<(), String> {
    let url = Url::parse(value)
        .map_err(|e| format!("{field}: {value:?} is not an absolute URL ({e})"))?;
    if url.fragment().is_some() {
        return Err(format!("{field}: {value:?} has a fragment"));
    }
    let loopback = match url.host() {
        Some(Host::Domain(d)) => d == "localhost",
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "{field}: {value:?} must be an https URL (http only on a loopback host)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_https_outside_loopback() {
        for good in [
            "https://rp.example/cb",
            "http://127.0.0.1:9000/cb",
            "http://localhost/cb",
            "http://[::1]/cb",
        ] {
            assert!(secure_url("u", good).is_ok(), "{good}");
        }
        for bad in [
            "http://rp.example/cb",
            "/cb",
            "rp.example/cb",
            "https://rp.example/cb#x",
            "myapp://cb",
            "ftp://rp.example/",
        ] {
            assert!(secure_url("u", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_plain() {
        assert!(check_id("id", "dwp-benefits_2.0").is_ok());
        for bad in ["", "has space", "slash/", &"x".repeat(65), "naïve"] {
            assert!(check_id("id", bad).is_err(), "{bad}");
        }
    }
}
