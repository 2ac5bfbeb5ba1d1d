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
    use super::*;
    use std::sync::Arc;

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn put_all_writes_every_entry_with_its_own_expiry() {
        let store = MemorySessionStore::new();
        store.put("code", "old", "x".into(), MINUTE).await.unwrap();
        let put = |namespace, key, value: &str, ttl| Put {
            namespace,
            key,
            value: value.to_owned(),
            ttl,
        };
        store
            .put_all(vec![
                put("journey", "j1", "state", MINUTE),
                put("upstream_state", "s1", "j1", Duration::from_millis(30)),
                put("code", "old", "y", Duration::ZERO),
            ])
            .await
            .unwrap();
        assert_eq!(
            store.get("journey", "j1").await.unwrap().as_deref(),
            Some("state")
        );
        assert_eq!(
            store.get("upstream_state", "s1").await.unwrap().as_deref(),
            Some("j1")
        );
        assert_eq!(store.get("code", "old").await.unwrap(), None);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.get("upstream_state", "s1").await.unwrap(), None);
        assert_eq!(
            store.get("journey", "j1").await.unwrap().as_deref(),
            Some("state")
        );
    }

    #[tokio::test]
    async fn put_get_delete_and_namespaces() {
        let store = MemorySessionStore::new();
        store
            .put("journey", "k", "v1".into(), MINUTE)
            .await
            .unwrap();
        assert_eq!(
            store.get("journey", "k").await.unwrap().as_deref(),
            Some("v1")
        );
        assert_eq!(
            store.get("code", "k").await.unwrap(),
            None,
            "namespaces are separate"
        );
        store
            .put("journey", "k", "v2".into(), MINUTE)
            .await
            .unwrap();
        assert_eq!(
            store.get("journey", "k").await.unwrap().as_deref(),
            Some("v2")
        );
        store.delete("journey", "k").await.unwrap();
        assert_eq!(store.get("journey", "k").await.unwrap(), None);
        store.delete("journey", "k").await.unwrap();
    }

    #[tokio::test]
    async fn take_is_single_use() {
        let store = MemorySessionStore::new();
        store
            .put("code", "c1", "grant".into(), MINUTE)
            .await
            .unwrap();
        assert_eq!(
            store.take("code", "c1").await.unwrap().as_deref(),
            Some("grant")
        );
        assert_eq!(store.take("code", "c1").await.unwrap(), None);
        assert_eq!(store.get("code", "c1").await.unwrap(), None);
    }

    #[tokio::test]
    async fn exchange_moves_a_taken_entry_and_leaves_a_receipt() {
        let store = MemorySessionStore::new();
        store
            .put("code", "c1", "grant".into(), MINUTE)
            .await
            .unwrap();
        let exchange = Exchange {
            to: ("token", "t1"),
            receipt_namespace: "redeemed",
            ttl: MINUTE,
        };
        let taken = store.exchange("code", "c1", exchange).await.unwrap();
        assert_eq!(taken.as_deref(), Some("grant"));
        assert_eq!(store.get("code", "c1").await.unwrap(), None);
        assert_eq!(
            store.get("token", "t1").await.unwrap().as_deref(),
            Some("grant")
        );
        assert_eq!(
            store.get("redeemed", "c1").await.unwrap().as_deref(),
            Some("t1")
        );
        // The same exchange again (a retry) gets the value again; another finds nothing
        // and writes nothing.
        assert_eq!(
            store
                .exchange("code", "c1", exchange)
                .await
                .unwrap()
                .as_deref(),
            Some("grant")
        );
        let again = Exchange {
            to: ("token", "t2"),
            ..exchange
        };
        assert_eq!(store.exchange("code", "c1", again).await.unwrap(), None);
        assert_eq!(store.get("token", "t2").await.unwrap(), None);
        assert_eq!(
            store.get("redeemed", "c1").await.unwrap().as_deref(),
            Some("t1")
        );
        // Nor does an expired one.
        store
            .put("code", "c2", "old".into(), Duration::ZERO)
            .await
            .unwrap();
        let expired = Exchange {
            to: ("token", "t3"),
            ..exchange
        };
        assert_eq!(store.exchange("code", "c2", expired).await.unwrap(), None);
        assert_eq!(store.get("token", "t3").await.unwrap(), None);
    }

    #[tokio::test]
    async fn take_and_follow_consumes_the_index_and_reads_its_target() {
        let store = MemorySessionStore::new();
        store.put("state", "s1", "j1".into(), MINUTE).await.unwrap();
        store
            .put("journey", "j1", "{}".into(), MINUTE)
            .await
            .unwrap();
        let taken = store
            .take_and_follow("state", "s1", "journey")
            .await
            .unwrap();
        assert_eq!(taken, Some(("j1".to_owned(), Some("{}".to_owned()))));
        assert_eq!(
            store
                .take_and_follow("state", "s1", "journey")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store.get("journey", "j1").await.unwrap().as_deref(),
            Some("{}")
        );
        // An index whose target is gone is still consumed.
        store
            .put("state", "s2", "gone".into(), MINUTE)
            .await
            .unwrap();
        let taken = store
            .take_and_follow("state", "s2", "journey")
            .await
            .unwrap();
        assert_eq!(taken, Some(("gone".to_owned(), None)));
        assert_eq!(store.get("state", "s2").await.unwrap(), None);
        // An expired index is absent.
        store
            .put("state", "s3", "j1".into(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            store
                .take_and_follow("state", "s3", "journey")
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_take_gives_the_value_once() {
        let store = Arc::new(MemorySessionStore::new());
        store
            .put("code", "c", "grant".into(), MINUTE)
            .await
            .unwrap();
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.take("code", "c").await.unwrap() })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            if t.await.unwrap().is_some() {
                winners += 1;
            }
        }
        assert_eq!(winners, 1);
    }

    #[tokio::test]
    async fn entries_expire() {
        let store = MemorySessionStore::new();
        let short = Duration::from_millis(50);
        store.put("journey", "j", "v".into(), short).await.unwrap();
        store.put("code", "c", "v".into(), short).await.unwrap();
        store
            .put("journey", "keep", "v".into(), MINUTE)
            .await
            .unwrap();
        assert!(store.get("journey", "j").await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(store.get("journey", "j").await.unwrap(), None);
        assert_eq!(
            store.take("code", "c").await.unwrap(),
            None,
            "expired code cannot be taken"
        );
        assert!(store.get("journey", "keep").await.unwrap().is_some());

        store
            .put("journey", "zero", "v".into(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(store.get("journey", "zero").await.unwrap(), None);
        store
            .put("journey", "forever", "v".into(), Duration::MAX)
            .await
            .unwrap();
        assert!(store.get("journey", "forever").await.unwrap().is_some());
    }

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
    async fn put_if_absent_inserts_once_until_expiry() {
        let store = MemorySessionStore::new();
        let ttl = Duration::from_millis(50);
        assert!(store
            .put_if_absent("jti", "x", "1".into(), ttl)
            .await
            .unwrap());
        assert!(!store
            .put_if_absent("jti", "x", "2".into(), ttl)
            .await
            .unwrap());
        assert_eq!(
            store.get("jti", "x").await.unwrap().as_deref(),
            Some("1"),
            "not overwritten"
        );
        assert!(store
            .put_if_absent("other", "x", "1".into(), ttl)
            .await
            .unwrap());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(
            store
                .put_if_absent("jti", "x", "3".into(), ttl)
                .await
                .unwrap(),
            "expired counts as absent"
        );
        assert_eq!(store.get("jti", "x").await.unwrap().as_deref(), Some("3"));
    }

    #[tokio::test]
    async fn debug_hides_values() {
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
