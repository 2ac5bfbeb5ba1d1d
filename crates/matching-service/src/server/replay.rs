//! Refusing a captured request played again.

use std::collections::HashMap;
use std::sync::Mutex;

/// Remembers the `jti` of accepted requests until they expire, so a captured request
/// cannot be played again. In memory: each instance of a service keeps its own (requests
/// live at most [`crate::protocol::MAX_LIFETIME_SECS`], so the map stays small).
#[derive(Debug, Default)]
pub(super) struct ReplayCache {
    seen: Mutex<HashMap<String, i64>>,
}

impl ReplayCache {
    /// True when `jti` is new (and now remembered until `exp`).
    pub(super) fn first_use(&self, jti: &str, exp: i64, now: i64, leeway: i64) -> bool {
        let mut seen = match self.seen.lock() {
            Ok(seen) => seen,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.len() >= 1024 {
            seen.retain(|_, e| *e + leeway >= now);
        }
        if seen.contains_key(jti) {
            return false;
        }
        seen.insert(jti.to_owned(), exp);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_accepted_once() {
        let cache = ReplayCache::default();
        assert!(cache.first_use("a", 160, 100, 5));
        assert!(!cache.first_use("a", 160, 100, 5));
        assert!(cache.first_use("b", 160, 100, 5));
    }
}
