//! Small helpers shared by both servers: strict parameter parsing, time, locks.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Parses `application/x-www-form-urlencoded` data (a query string or a form body).
///
/// OAuth 2.0 forbids repeated parameters, so a repeated name is an error naming it rather
/// than a silent "first one wins". Empty values count as absent.
pub(crate) fn parse_params(data: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(data) {
        if v.is_empty() {
            continue;
        }
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(format!("parameter `{k}` is repeated"));
        }
    }
    Ok(out)
}

/// Decodes one form-urlencoded component (`+` is a space), as RFC 6749 section 2.3.1 asks
/// for client ids and secrets in HTTP Basic credentials.
pub(crate) fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Seconds since the Unix epoch (JWT `NumericDate`).
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Locks a mutex, recovering from poisoning: these maps hold plain data that a panicking
/// handler cannot leave half-updated in a way that matters for a demo server.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_rejected() {
        assert!(parse_params(b"a=1&a=2").is_err());
        let p = parse_params(b"a=1&b=&c=x+y").expect("parses");
        assert_eq!(p.get("a").map(String::as_str), Some("1"));
        assert!(!p.contains_key("b"));
        assert_eq!(p.get("c").map(String::as_str), Some("x y"));
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%4"), None);
    }
}
