//! Short-lived key/value state shared by hub instances: journeys,
//! authorization codes, replay caches.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::StoreError;

/// Expiring key/value storage, partitioned by namespace (`"journey"`,
/// `"code"`, `"jti"`...).
///
/// A trait so the embedded in-process store and the shared one
/// ([`crate::RedisSessionStore`], for several hub instances) are
/// interchangeable. Values are opaque strings (callers serialise); an expired
/// entry behaves exactly like a missing one.
#[async_trait]
pub trait SessionStore: Send + Sync + fmt::Debug {
    /// Stores `value` under `(namespace, key)` for `ttl`, replacing any previous value.
    /// One entry of [`SessionStore::put_all`]: stores implement only that.
    async fn put(
        &self,
        namespace: &str,
        key: &str,
        value: String,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let put = Put {
            namespace,
            key,
            value,
            ttl,
        };
        self.put_all(vec![put]).await
    }
    /// Stores every entry of `entries` (as [`SessionStore::put`] each), all or
    /// none: state that must change together (a journey and its index, a code
    /// and the journey it completes) in one round trip to a shared store.
    async fn put_all(&self, entries: Vec<Put<'_>>) -> Result<(), StoreError>;
    /// The live value under `(namespace, key)`, if any.
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError>;
    /// Atomic get-and-delete: single use (codes).
    ///
    /// Of any number of concurrent callers at most one receives the value.
    async fn take(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError>;
    /// Takes an index entry (single use, as [`SessionStore::take`]) and reads the entry
    /// its value names in `target_namespace`, in one round trip to a shared store: a
    /// one-time handle and the state it leads to (an upstream `state` and its journey).
    ///
    /// `None` when the index entry is absent; `Some((value, None))` when it was
    /// taken but the entry it names is gone. A shared store's own retry after a lost
    /// reply gets the same answer; no other call does.
    async fn take_and_follow(
        &self,
        namespace: &str,
        key: &str,
        target_namespace: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError>;
    /// Takes a single-use entry (as [`SessionStore::take`]) and, only if it was there,
    /// stores its value again under `exchange.to` and a receipt naming that key under
    /// `(exchange.receipt_namespace, key)`, both for `exchange.ttl`: all in one round trip
    /// to a shared store. A code exchanged for a token that stands for what the code did,
    /// with the receipt to revoke the token by if the code is presented again.
    ///
    /// Of any number of concurrent callers at most one receives the value. The same
    /// exchange (the same `exchange.to`) repeated, as a retry after a lost reply does,
    /// receives it again: only a caller who knows the new key can.
    async fn exchange(
        &self,
        namespace: &str,
        key: &str,
        exchange: Exchange<'_>,
    ) -> Result<Option<String>, StoreError>;
    /// Removes the entry; removing a missing one is not an error.
    async fn delete(&self, namespace: &str, key: &str) -> Result<(), StoreError>;
    /// Set only if absent (replay caches); true when newly inserted.
    ///
    /// An expired entry counts as absent.
    async fn put_if_absent(
        &self,
        namespace: &str,
        key: &str,
        value: String,
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    /// Checks the store can serve requests right now (readiness checks);
    /// [`StoreError::Unavailable`] when it cannot.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// One entry for [`SessionStore::put_all`].
#[derive(Debug)]
pub struct Put<'a> {
    pub namespace: &'a str,
    pub key: &'a str,
    pub value: String,
    pub ttl: Duration,
}

/// Where [`SessionStore::exchange`] keeps what it took.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The new entry's namespace and key (`key` chosen by the caller, unguessable).
    pub to: (&'a str, &'a str),
    /// Namespace of the receipt, stored under the taken entry's key with `to`'s key as value.
    pub receipt_namespace: &'a str,
    /// Lifetime of the new entry and of the receipt.
    pub ttl: Duration,
}

/// How often (at most) a write also sweeps out every expired entry, so memory
/// stays bounded by what is live even for keys nobody reads again.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Entry {
    value: String,
    /// `None` when `now + ttl` overflows `Instant`: effectively never expires.
    expires: Option<Instant>,
}

impl Entry {
    fn new(value: String, ttl: Duration, now: Instant) -> Self {
        Self {
            value,
            expires: now.checked_add(ttl),
        }
    }

    fn is_live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| now < at)
    }
}

#[derive(Debug)]
struct State {
    namespaces: HashMap<String, HashMap<String, Entry>>,
    last_sweep: Instant,
}

impl State {
    fn live(&self, namespace: &str, key: &str, now: Instant) -> Option<&Entry> {
        self.namespaces
            .get(namespace)?
            .get(key)
            .filter(|e| e.is_live(now))
    }

    fn insert(&mut self, namespace: &str, key: &str, entry: Entry) {
        self.namespaces
            .entry(namespace.to_owned())
            .or_default()
            .insert(key.to_owned(), entry);
    }

    fn remove(&mut self, namespace: &str, key: &str) -> Option<Entry> {
        let entries = self.namespaces.get_mut(namespace)?;
        let removed = entries.remove(key);
        if entries.is_empty() {
            self.namespaces.remove(namespace);
        }
        removed
    }

    fn maybe_sweep(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_sweep) >= SWEEP_INTERVAL {
            self.sweep(now);
        }
    }

    fn sweep(&mut self, now: Instant) {
        self.namespaces.retain(|_, entries| {
            entries.retain(|_, e| e.is_live(now));
            !entries.is_empty()
        });
        self.last_sweep = now;
    }

    #[cfg(test)]
    fn stored(&self) -> usize {
        self.namespaces.values().map(HashMap::len).sum()
    }
}

/// In-process [`SessionStore`] for the embedded deployment (one hub instance).
///
/// Entries expire by TTL: expired ones are invisible at once and swept out
/// opportunistically during writes. Every operation holds one mutex briefly,
/// which is what makes `take` and `put_if_absent` atomic.
pub struct MemorySessionStore {
    state: Mutex<State>,
}

impl MemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                namespaces: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// The map never holds a half-applied update (no operation can panic
    /// between its reads and writes), so a poisoned lock is still consistent.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for MemorySessionStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemorySessionStore {
    /// Shows only the size: values are journeys and codes, never for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("MemorySessionStore");
        if let Ok(state) = self.state.try_lock() {
            let entries: usize = state.namespaces.values().map(HashMap::len).sum();
            d.field("entries", &entries);
        }
        d.finish_non_exhaustive()
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn put_all(&self, entries: Vec<Put<'_>>) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        state.maybe_sweep(now);
        for put in entries {
            state.insert(put.namespace, put.key, Entry::new(put.value, put.ttl, now));
        }
        Ok(())
    }

    async fn get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        let now = Instant::now();
        let state = self.lock();
        Ok(state.live(namespace, key, now).map(|e| e.value.clone()))
    }

    async fn take(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        state.maybe_sweep(now);
        Ok(state
            .remove(namespace, key)
            .filter(|e| e.is_live(now))
            .map(|e| e.value))
    }

    async fn take_and_follow(
        &self,
        namespace: &str,
        key: &str,
        target_namespace: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        state.maybe_sweep(now);
        let Some(index) = state.remove(namespace, key).filter(|e| e.is_live(now)) else {
            return Ok(None);
        };
        let target = state
            .live(target_namespace, &index.value, now)
            .map(|e| e.value.clone());
        Ok(Some((index.value, target)))
    }

    async fn exchange(
        &self,
        namespace: &str,
        key: &str,
        exchange: Exchange<'_>,
    ) -> Result<Option<String>, StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        state.maybe_sweep(now);
        let (to_namespace, to_key) = exchange.to;
        let Some(taken) = state.remove(namespace, key).filter(|e| e.is_live(now)) else {
            let receipt = state.live(exchange.receipt_namespace, key, now);
            if receipt.is_some_and(|r| r.value == to_key) {
                return Ok(state
                    .live(to_namespace, to_key, now)
                    .map(|e| e.value.clone()));
            }
            return Ok(None);
        };
        let receipt = Entry::new(to_key.to_owned(), exchange.ttl, now);
        state.insert(exchange.receipt_namespace, key, receipt);
        let value = taken.value;
        state.insert(
            to_namespace,
            to_key,
            Entry::new(value.clone(), exchange.ttl, now),
        );
        Ok(Some(value))
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        state.maybe_sweep(now);
        state.remove(namespace, key);
        Ok(())
    }

    async fn put_if_absent(
        &self,
        namespace: &str,
        key: &str,
        value: String,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        state.maybe_sweep(now);
        if state.live(namespace, key, now).is_some() {
            return Ok(false);
        }
        state.insert(namespace, key, Entry::new(value, ttl, now));
        Ok(true)
    }

    /// Always ready: the store is this process's memory.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! What only the memory store does; the behaviour every store shares is
    //! the contract in `tests/it/common/session_contract.rs`, run against
    //! this store by `tests/it/session_contract.rs`.
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn sweep_drops_expired_entries() {
        let store = MemorySessionStore::new();
        store
            .put("a", "old", "v".into(), Duration::from_millis(1))
            .await
            .unwrap();
        store.put("a", "live", "v".into(), MINUTE).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        {
            let mut state = store.lock();
            assert_eq!(state.stored(), 2, "not swept before the interval");
            state.last_sweep = Instant::now() - SWEEP_INTERVAL;
        }
        store.put("b", "new", "v".into(), MINUTE).await.unwrap();
        assert_eq!(store.lock().stored(), 2, "old swept; live and new remain");
    }

    #[tokio::test]
    async fn debug_shows_only_the_number_of_entries() {
        let store = MemorySessionStore::new();
        store
            .put("code", "secret-key", "secret-value".into(), MINUTE)
            .await
            .unwrap();
        let shown = format!("{store:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("entries: 1"), "{shown}");
    }
}
