//! The contract every [`SessionStore`] keeps, written once and run against
//! each store (`tests/it/session_contract.rs`): a test here takes [`Stores`],
//! two handles on one fresh, empty store, as two hub instances would hold
//! them. What only one store does (Redis' key layout and outages, the memory
//! store's sweep) is tested beside that store.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use store::test_support::scratch_redis_prefix;
use store::{Exchange, MemorySessionStore, Put, SessionStore};

use super::{redis_store, redis_url};

pub const MINUTE: Duration = Duration::from_secs(60);
/// A TTL that runs out during a test, and how long to wait for it to.
const SHORT: Duration = Duration::from_millis(100);
const PAST_SHORT: Duration = Duration::from_millis(250);

/// Two handles on one fresh, empty store (two hub instances sharing it).
pub struct Stores {
    pub one: Arc<dyn SessionStore>,
    pub two: Arc<dyn SessionStore>,
    _keys: Option<RedisKeys>,
}

impl Stores {
    /// A [`MemorySessionStore`]: both handles are the one store.
    pub fn memory() -> Self {
        let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::new());
        Self {
            one: Arc::clone(&store),
            two: store,
            _keys: None,
        }
    }

    /// Two Redis stores on one key prefix of their own, each with its own
    /// connections; the prefix's keys are deleted when `Stores` is dropped.
    pub async fn redis() -> Self {
        let prefix = scratch_redis_prefix();
        Self {
            one: Arc::new(redis_store(&prefix).await),
            two: Arc::new(redis_store(&prefix).await),
            _keys: Some(RedisKeys::new(&prefix)),
        }
    }
}

/// Deletes every key under one test's prefix when dropped (also when the test
/// panics): the Redis server is shared, so a test removes its own keys and no
/// others.
pub struct RedisKeys {
    prefix: String,
}

impl RedisKeys {
    pub fn new(prefix: &str) -> Self {
        assert!(
            prefix.starts_with("hub_test_"),
            "not a scratch prefix: {prefix}"
        );
        Self {
            prefix: prefix.to_owned(),
        }
    }
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(redis_url()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let pattern = format!("{}:*", self.prefix);
        let keys: Vec<String> = match redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter::<String>(&mut conn)
        {
            Ok(keys) => keys.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        if !keys.is_empty() {
            let _ = redis::cmd("DEL").arg(&keys).exec(&mut conn);
        }
    }
}

fn put<'a>(namespace: &'a str, key: &'a str, value: &str, ttl: Duration) -> Put<'a> {
    Put {
        namespace,
        key,
        value: value.to_owned(),
        ttl,
    }
}

/// Runs `attempt(store, i)` for `callers` callers released at once,
/// alternately on each handle; what the attempts that got something returned.
async fn race<T, F, Fut>(stores: &Stores, callers: usize, attempt: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn SessionStore>, usize) -> Fut,
    Fut: Future<Output = Option<T>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(callers));
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let store = if i % 2 == 0 { &stores.one } else { &stores.two };
            let attempt = attempt(Arc::clone(store), i);
            tokio::spawn(async move {
                barrier.wait().await;
                attempt.await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        winners.extend(t.await.unwrap());
    }
    winners
}

pub async fn ping_answers(stores: Stores) {
    stores.one.ping().await.unwrap();
    stores.two.ping().await.unwrap();
}

pub async fn put_get_delete_and_namespaces(stores: Stores) {
    let Stores { one, two, .. } = &stores;
    one.put("journey", "k", "v1".into(), MINUTE).await.unwrap();
    assert_eq!(
        one.get("journey", "k").await.unwrap().as_deref(),
        Some("v1")
    );
    assert_eq!(
        one.get("code", "k").await.unwrap(),
        None,
        "namespaces are separate"
    );
    one.put("journey", "k", "v2".into(), MINUTE).await.unwrap();
    assert_eq!(
        one.get("journey", "k").await.unwrap().as_deref(),
        Some("v2")
    );
    // The other instance sees the same data.
    assert_eq!(
        two.get("journey", "k").await.unwrap().as_deref(),
        Some("v2")
    );
    one.delete("journey", "k").await.unwrap();
    assert_eq!(two.get("journey", "k").await.unwrap(), None);
    // Deleting a missing entry is not an error.
    one.delete("journey", "k").await.unwrap();
    // Keys may contain the separator of a shared store's keys.
    one.put("code", "a:b", "x".into(), MINUTE).await.unwrap();
    assert_eq!(one.get("code", "a:b").await.unwrap().as_deref(), Some("x"));
    assert_eq!(one.get("code", "a").await.unwrap(), None);
}

pub async fn put_all_writes_every_entry_with_its_own_expiry(stores: Stores) {
    let store = &stores.one;
    store.put("code", "old", "x".into(), MINUTE).await.unwrap();
    store
        .put_all(vec![
            put("journey", "j1", "state", MINUTE),
            put("upstream_state", "s1", "j1", SHORT),
            // A zero TTL replaces with nothing, as `put` does.
            put("code", "old", "y", Duration::ZERO),
        ])
        .await
        .unwrap();
    let two = &stores.two;
    assert_eq!(
        two.get("journey", "j1").await.unwrap().as_deref(),
        Some("state")
    );
    assert_eq!(
        two.get("upstream_state", "s1").await.unwrap().as_deref(),
        Some("j1")
    );
    assert_eq!(two.get("code", "old").await.unwrap(), None);
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(store.get("upstream_state", "s1").await.unwrap(), None);
    assert_eq!(
        store.get("journey", "j1").await.unwrap().as_deref(),
        Some("state")
    );
}

pub async fn take_is_single_use(stores: Stores) {
    let store = &stores.one;
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
    assert_eq!(stores.two.take("code", "c1").await.unwrap(), None);
}

pub async fn take_is_single_use_under_50_concurrent_callers(stores: Stores) {
    for round in 0..5 {
        let key = format!("code-{round}");
        stores
            .one
            .put("code", &key, "grant".into(), MINUTE)
            .await
            .unwrap();
        let winners = race(&stores, 50, |store, _| {
            let key = key.clone();
            async move { store.take("code", &key).await.unwrap() }
        })
        .await;
        assert_eq!(winners, vec!["grant".to_owned()], "round {round}");
        assert_eq!(stores.two.get("code", &key).await.unwrap(), None);
    }
}

/// Journey `j1` holding `journey`, and upstream state `s1` naming it.
async fn put_journey_and_state(store: &dyn SessionStore, journey: &str) {
    store
        .put("journey", "j1", journey.into(), MINUTE)
        .await
        .unwrap();
    store.put("state", "s1", "j1".into(), MINUTE).await.unwrap();
}

pub async fn take_and_follow_consumes_the_index_and_reads_its_target(stores: Stores) {
    let Stores { one, two, .. } = &stores;
    put_journey_and_state(one.as_ref(), "{}").await;
    let taken = one.take_and_follow("state", "s1", "journey").await.unwrap();
    assert_eq!(taken, Some(("j1".to_owned(), Some("{}".to_owned()))));
    assert_eq!(
        two.take_and_follow("state", "s1", "journey").await.unwrap(),
        None
    );
    assert_eq!(two.get("state", "s1").await.unwrap(), None);
    assert_eq!(
        two.get("journey", "j1").await.unwrap().as_deref(),
        Some("{}"),
        "the target stays"
    );
    // An index whose target is gone is still consumed; the target is read in
    // the namespace asked for (the same key elsewhere is not read).
    one.put("state", "s2", "j2".into(), MINUTE).await.unwrap();
    one.put("code", "j2", "not a journey".into(), MINUTE)
        .await
        .unwrap();
    let taken = two.take_and_follow("state", "s2", "journey").await.unwrap();
    assert_eq!(taken, Some(("j2".to_owned(), None)));
    assert_eq!(one.get("state", "s2").await.unwrap(), None);
    // An expired index is absent.
    one.put("state", "s3", "j1".into(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        one.take_and_follow("state", "s3", "journey").await.unwrap(),
        None
    );
}

pub async fn take_and_follow_reads_the_target_once_under_concurrency(stores: Stores) {
    put_journey_and_state(stores.one.as_ref(), "{\"step\":1}").await;
    let winners = race(&stores, 20, |store, _| async move {
        store
            .take_and_follow("state", "s1", "journey")
            .await
            .unwrap()
    })
    .await;
    assert_eq!(
        winners,
        vec![("j1".to_owned(), Some("{\"step\":1}".to_owned()))],
        "one caller takes the index and gets the journey"
    );
    assert_eq!(stores.two.get("state", "s1").await.unwrap(), None);
    assert!(
        stores.two.get("journey", "j1").await.unwrap().is_some(),
        "the target stays"
    );
}

fn to_token<'a>(token: &'a str) -> Exchange<'a> {
    Exchange {
        to: ("token", token),
        receipt_namespace: "redeemed",
        ttl: MINUTE,
    }
}

pub async fn exchange_moves_a_taken_entry_and_leaves_a_receipt(stores: Stores) {
    let Stores { one, two, .. } = &stores;
    one.put("code", "c1", "grant".into(), MINUTE).await.unwrap();
    let taken = one.exchange("code", "c1", to_token("t1")).await.unwrap();
    assert_eq!(taken.as_deref(), Some("grant"));
    assert_eq!(two.get("code", "c1").await.unwrap(), None);
    assert_eq!(
        two.get("token", "t1").await.unwrap().as_deref(),
        Some("grant")
    );
    assert_eq!(
        two.get("redeemed", "c1").await.unwrap().as_deref(),
        Some("t1")
    );
    // The same exchange again (a retry) gets the value again; another finds
    // nothing and writes nothing.
    let again = two.exchange("code", "c1", to_token("t1")).await.unwrap();
    assert_eq!(again.as_deref(), Some("grant"));
    assert_eq!(
        two.exchange("code", "c1", to_token("t2")).await.unwrap(),
        None
    );
    assert_eq!(one.get("token", "t2").await.unwrap(), None);
    assert_eq!(
        one.get("redeemed", "c1").await.unwrap().as_deref(),
        Some("t1")
    );
    // Nor does an expired one.
    one.put("code", "c2", "old".into(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        one.exchange("code", "c2", to_token("t3")).await.unwrap(),
        None
    );
    assert_eq!(one.get("token", "t3").await.unwrap(), None);
    // The new entry and the receipt expire with the TTL given.
    one.put("code", "c4", "grant".into(), MINUTE).await.unwrap();
    let short = Exchange {
        ttl: SHORT,
        ..to_token("short")
    };
    assert!(one.exchange("code", "c4", short).await.unwrap().is_some());
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(one.get("token", "short").await.unwrap(), None);
    assert_eq!(one.get("redeemed", "c4").await.unwrap(), None);
}

/// A code exchanged at `/token` by two instances at once: one gets it, and
/// only its new entry and receipt are written.
pub async fn exchange_takes_once_under_concurrency(stores: Stores) {
    stores
        .one
        .put("code", "c1", "grant".into(), MINUTE)
        .await
        .unwrap();
    let winners = race(&stores, 20, |store, i| async move {
        let token = format!("t{i}");
        let taken = store
            .exchange("code", "c1", to_token(&token))
            .await
            .unwrap();
        taken.map(|value| (token, value))
    })
    .await;
    assert_eq!(winners.len(), 1, "{winners:?}");
    let (token, value) = &winners[0];
    assert_eq!(value, "grant");
    let two = &stores.two;
    assert_eq!(two.get("code", "c1").await.unwrap(), None);
    assert_eq!(
        two.get("token", token).await.unwrap().as_deref(),
        Some("grant")
    );
    assert_eq!(
        stores.one.get("redeemed", "c1").await.unwrap().as_deref(),
        Some(token.as_str())
    );
    for i in 0..20 {
        let other = format!("t{i}");
        if other != *token {
            assert_eq!(stores.one.get("token", &other).await.unwrap(), None);
        }
    }
    // The winner's exchange repeated (a retry after a lost reply) gets the
    // value again; a loser's does not.
    let again = two.exchange("code", "c1", to_token(token)).await.unwrap();
    assert_eq!(again.as_deref(), Some("grant"));
    let loser = if token == "t0" { "t1" } else { "t0" };
    assert_eq!(
        two.exchange("code", "c1", to_token(loser)).await.unwrap(),
        None
    );
}

pub async fn entries_expire(stores: Stores) {
    let store = &stores.one;
    store.put("journey", "j", "v".into(), SHORT).await.unwrap();
    store.put("code", "c", "v".into(), SHORT).await.unwrap();
    store
        .put("journey", "keep", "v".into(), MINUTE)
        .await
        .unwrap();
    assert!(store.get("journey", "j").await.unwrap().is_some());
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(store.get("journey", "j").await.unwrap(), None);
    assert_eq!(
        store.take("code", "c").await.unwrap(),
        None,
        "expired code cannot be taken"
    );
    assert!(store.get("journey", "keep").await.unwrap().is_some());

    // A zero TTL stores nothing (and replaces what was there); the longest
    // one does not overflow anything.
    store
        .put("journey", "keep", "v".into(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(store.get("journey", "keep").await.unwrap(), None);
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
    store.delete("journey", "forever").await.unwrap();
}

pub async fn put_if_absent_inserts_once_until_expiry(stores: Stores) {
    let store = &stores.one;
    let ttl = Duration::from_millis(150);
    assert!(store
        .put_if_absent("jti", "x", "1".into(), ttl)
        .await
        .unwrap());
    assert!(!stores
        .two
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
    // Zero TTL: "inserted" only when nothing live is there, and never stored.
    assert!(!store
        .put_if_absent("jti", "x", "0".into(), Duration::ZERO)
        .await
        .unwrap());
    assert!(store
        .put_if_absent("jti", "y", "0".into(), Duration::ZERO)
        .await
        .unwrap());
    assert_eq!(store.get("jti", "y").await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        store
            .put_if_absent("jti", "x", "3".into(), ttl)
            .await
            .unwrap(),
        "expired counts as absent"
    );
    assert_eq!(store.get("jti", "x").await.unwrap().as_deref(), Some("3"));
}

pub async fn put_if_absent_has_one_winner_under_concurrency(stores: Stores) {
    let winners = race(&stores, 50, |store, i| async move {
        store
            .put_if_absent("jti", "replayed", i.to_string(), MINUTE)
            .await
            .unwrap()
            .then_some(i)
    })
    .await;
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = stores.two.get("jti", "replayed").await.unwrap();
    assert_eq!(stored, Some(winners[0].to_string()));
}

pub async fn debug_hides_values(stores: Stores) {
    stores
        .one
        .put("code", "secret-key", "secret-value".into(), MINUTE)
        .await
        .unwrap();
    let shown = format!("{:?}", stores.one);
    assert!(!shown.contains("secret"), "{shown}");
}

/// One `#[tokio::test]` per contract test, on the stores `$stores` makes
/// (an expression evaluated in each test, in an async context).
#[macro_export]
macro_rules! session_contract {
    ($stores:expr) => {
        use $crate::common::session_contract as contract;

        #[tokio::test]
        async fn ping_answers() {
            contract::ping_answers($stores).await;
        }

        #[tokio::test]
        async fn put_get_delete_and_namespaces() {
            contract::put_get_delete_and_namespaces($stores).await;
        }

        #[tokio::test]
        async fn put_all_writes_every_entry_with_its_own_expiry() {
            contract::put_all_writes_every_entry_with_its_own_expiry($stores).await;
        }

        #[tokio::test]
        async fn take_is_single_use() {
            contract::take_is_single_use($stores).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn take_is_single_use_under_50_concurrent_callers() {
            contract::take_is_single_use_under_50_concurrent_callers($stores).await;
        }

        #[tokio::test]
        async fn take_and_follow_consumes_the_index_and_reads_its_target() {
            contract::take_and_follow_consumes_the_index_and_reads_its_target($stores).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn take_and_follow_reads_the_target_once_under_concurrency() {
            contract::take_and_follow_reads_the_target_once_under_concurrency($stores).await;
        }

        #[tokio::test]
        async fn exchange_moves_a_taken_entry_and_leaves_a_receipt() {
            contract::exchange_moves_a_taken_entry_and_leaves_a_receipt($stores).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn exchange_takes_once_under_concurrency() {
            contract::exchange_takes_once_under_concurrency($stores).await;
        }

        #[tokio::test]
        async fn entries_expire() {
            contract::entries_expire($stores).await;
        }

        #[tokio::test]
        async fn put_if_absent_inserts_once_until_expiry() {
            contract::put_if_absent_inserts_once_until_expiry($stores).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn put_if_absent_has_one_winner_under_concurrency() {
            contract::put_if_absent_has_one_winner_under_concurrency($stores).await;
        }

        #[tokio::test]
        async fn debug_hides_values() {
            contract::debug_hides_values($stores).await;
        }
    };
}
