//! The Redis session store against a real Redis (`REDIS_URL`).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{redis_store, redis_url, scratch_redis_store};
use store::test_support::{redis_take_and_follow_as, scratch_redis_prefix};
use store::{Exchange, Put, RedisSessionStore, SessionStore, StoreError};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn put_get_delete_with_namespaces_and_prefixes() {
    let prefix = scratch_redis_prefix();
    let store = redis_store(&prefix).await;
    store.ping().await.unwrap();
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

    // Another prefix (another deployment, or another test) sees nothing.
    let other = scratch_redis_store().await;
    assert_eq!(other.get("journey", "k").await.unwrap(), None);
    other
        .put("journey", "k", "other".into(), MINUTE)
        .await
        .unwrap();
    assert_eq!(
        store.get("journey", "k").await.unwrap().as_deref(),
        Some("v2")
    );
    // The same prefix is the same data (a second hub instance).
    let twin = redis_store(&prefix).await;
    assert_eq!(
        twin.get("journey", "k").await.unwrap().as_deref(),
        Some("v2")
    );

    store.delete("journey", "k").await.unwrap();
    assert_eq!(twin.get("journey", "k").await.unwrap(), None);
    store.delete("journey", "k").await.unwrap();
    assert_eq!(
        other.get("journey", "k").await.unwrap().as_deref(),
        Some("other")
    );
    // Keys may contain the separator; namespaces may not.
    store.put("code", "a:b", "x".into(), MINUTE).await.unwrap();
    assert_eq!(
        store.get("code", "a:b").await.unwrap().as_deref(),
        Some("x")
    );
    assert!(matches!(
        store.get("co:de", "b").await,
        Err(StoreError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn keys_are_prefix_namespace_key_with_an_expiry() {
    let prefix = scratch_redis_prefix();
    let store = redis_store(&prefix).await;
    store
        .put("code", "c1", "grant".into(), MINUTE)
        .await
        .unwrap();
    let client = redis::Client::open(redis_url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}:code:c1");
    let value: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some("grant"));
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(pttl > 50_000 && pttl <= 60_000, "{pttl}");
}

fn put<'a>(namespace: &'a str, key: &'a str, value: &str, ttl: Duration) -> Put<'a> {
    Put {
        namespace,
        key,
        value: value.to_owned(),
        ttl,
    }
}

#[tokio::test]
async fn put_all_writes_every_entry_with_its_own_expiry() {
    let prefix = scratch_redis_prefix();
    let store = redis_store(&prefix).await;
    store.put("code", "old", "x".into(), MINUTE).await.unwrap();
    store
        .put_all(vec![
            put("journey", "j1", "state", MINUTE),
            put("upstream_state", "s1", "j1", Duration::from_secs(5)),
            // A zero TTL replaces with nothing, as `put` does.
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
    let client = redis::Client::open(redis_url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}:upstream_state:s1"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 5_000, "{pttl}");
    // A bad namespace refuses the whole batch before anything is sent.
    let err = store
        .put_all(vec![
            put("journey", "j2", "v", MINUTE),
            put("bad:ns", "k", "v", MINUTE),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    assert_eq!(store.get("journey", "j2").await.unwrap(), None);
}

/// Two stores on one prefix, each with its own connections: two hub instances.
async fn two_instances() -> [Arc<RedisSessionStore>; 2] {
    let prefix = scratch_redis_prefix();
    [
        Arc::new(redis_store(&prefix).await),
        Arc::new(redis_store(&prefix).await),
    ]
}

/// Runs `attempt(store, i)` for `callers` callers released at once, alternately on
/// each instance; what the attempts that got something returned.
async fn race<T, F, Fut>(stores: &[Arc<RedisSessionStore>; 2], callers: usize, attempt: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<RedisSessionStore>, usize) -> Fut,
    Fut: std::future::Future<Output = Option<T>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(callers));
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let attempt = attempt(Arc::clone(&stores[i % 2]), i);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn take_is_single_use_under_50_concurrent_callers() {
    let stores = two_instances().await;
    for round in 0..5 {
        let key = format!("code-{round}");
        stores[0]
            .put("code", &key, "grant".into(), MINUTE)
            .await
            .unwrap();
        let winners = race(&stores, 50, |store, _| {
            let key = key.clone();
            async move { store.take("code", &key).await.unwrap() }
        })
        .await;
        assert_eq!(winners, vec!["grant".to_owned()], "round {round}");
        assert_eq!(stores[1].get("code", &key).await.unwrap(), None);
    }
}

/// Journey `j1` holding `journey`, and upstream state `s1` naming it.
async fn put_journey_and_state(store: &RedisSessionStore, journey: &str) {
    store
        .put("journey", "j1", journey.into(), MINUTE)
        .await
        .unwrap();
    store.put("state", "s1", "j1".into(), MINUTE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn take_and_follow_reads_the_target_once_in_one_script() {
    let stores = two_instances().await;
    put_journey_and_state(&stores[0], "{\"step\":1}").await;
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
    assert_eq!(stores[1].get("state", "s1").await.unwrap(), None);
    assert!(
        stores[1].get("journey", "j1").await.unwrap().is_some(),
        "the target stays"
    );

    // Taken, but the entry it names is gone; and the target namespace is the one asked
    // for (same key elsewhere is not read); and another prefix sees nothing.
    stores[0]
        .put("state", "s2", "j2".into(), MINUTE)
        .await
        .unwrap();
    stores[0]
        .put("code", "j2", "not a journey".into(), MINUTE)
        .await
        .unwrap();
    let other = scratch_redis_store().await;
    assert_eq!(
        other
            .take_and_follow("state", "s2", "journey")
            .await
            .unwrap(),
        None
    );
    let taken = stores[1]
        .take_and_follow("state", "s2", "journey")
        .await
        .unwrap();
    assert_eq!(taken, Some(("j2".to_owned(), None)));
    assert_eq!(stores[0].get("state", "s2").await.unwrap(), None);
}

/// The IdP's callback whose Redis reply was lost: the same call run again gets the journey
/// it took (the store retries once after a broken connection); any other call, such as
/// the callback URL replayed, gets nothing.
#[tokio::test]
async fn take_and_follow_retried_by_its_caller_gets_the_same_answer() {
    let stores = two_instances().await;
    put_journey_and_state(&stores[0], "{}").await;
    let call = ("state", "s1", "journey");
    let expected = Some(("j1".to_owned(), Some("{}".to_owned())));
    let first = redis_take_and_follow_as(&stores[0], call, "attempt-1").await;
    assert_eq!(first.unwrap(), expected);
    let retried = redis_take_and_follow_as(&stores[1], call, "attempt-1").await;
    assert_eq!(retried.unwrap(), expected, "the retry gets what it took");
    for other in ["attempt-2", "attempt", ""] {
        let replayed = redis_take_and_follow_as(&stores[1], call, other).await;
        assert_eq!(
            replayed.unwrap(),
            None,
            "another call ({other:?}) gets nothing"
        );
    }
    assert_eq!(
        stores[0]
            .take_and_follow("state", "s1", "journey")
            .await
            .unwrap(),
        None
    );
}

/// A code exchanged at `/token` by two instances at once: one gets it, and only its
/// token and receipt are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exchange_takes_once_and_keeps_the_value_under_the_new_key() {
    let stores = two_instances().await;
    stores[0]
        .put("code", "c1", "grant".into(), MINUTE)
        .await
        .unwrap();
    let winners = race(&stores, 20, |store, i| async move {
        let token = format!("t{i}");
        let exchange = Exchange {
            to: ("token", &token),
            receipt_namespace: "redeemed",
            ttl: MINUTE,
        };
        let taken = store.exchange("code", "c1", exchange).await.unwrap();
        taken.map(|value| (token, value))
    })
    .await;
    assert_eq!(winners.len(), 1, "{winners:?}");
    let (token, value) = &winners[0];
    assert_eq!(value, "grant");
    assert_eq!(stores[1].get("code", "c1").await.unwrap(), None);
    assert_eq!(
        stores[1].get("token", token).await.unwrap().as_deref(),
        Some("grant")
    );
    assert_eq!(
        stores[0].get("redeemed", "c1").await.unwrap().as_deref(),
        Some(token.as_str())
    );
    for i in 0..20 {
        let other = format!("t{i}");
        if other != *token {
            assert_eq!(stores[0].get("token", &other).await.unwrap(), None);
        }
    }
    // The winner's exchange repeated (a retry after a lost reply) gets the value again;
    // a loser's does not.
    let repeat = |to| Exchange {
        to: ("token", to),
        receipt_namespace: "redeemed",
        ttl: MINUTE,
    };
    let again = stores[1]
        .exchange("code", "c1", repeat(token))
        .await
        .unwrap();
    assert_eq!(again.as_deref(), Some("grant"));
    let loser = if token == "t0" { "t1" } else { "t0" };
    assert_eq!(
        stores[1]
            .exchange("code", "c1", repeat(loser))
            .await
            .unwrap(),
        None
    );
    // The token and receipt expire with the TTL given.
    stores[0]
        .put("code", "c2", "grant".into(), MINUTE)
        .await
        .unwrap();
    let short = Exchange {
        to: ("token", "short"),
        receipt_namespace: "redeemed",
        ttl: Duration::from_millis(100),
    };
    assert!(stores[0]
        .exchange("code", "c2", short)
        .await
        .unwrap()
        .is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stores[0].get("token", "short").await.unwrap(), None);
    assert_eq!(stores[0].get("redeemed", "c2").await.unwrap(), None);
}

#[tokio::test]
async fn entries_expire_by_ttl() {
    let store = scratch_redis_store().await;
    let short = Duration::from_millis(100);
    store.put("journey", "j", "v".into(), short).await.unwrap();
    store.put("code", "c", "v".into(), short).await.unwrap();
    store
        .put("journey", "keep", "v".into(), MINUTE)
        .await
        .unwrap();
    assert!(store.get("journey", "j").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(store.get("journey", "j").await.unwrap(), None);
    assert_eq!(
        store.take("code", "c").await.unwrap(),
        None,
        "expired code cannot be taken"
    );
    assert!(store.get("journey", "keep").await.unwrap().is_some());

    // A zero TTL stores nothing (and replaces what was there); a huge one
    // does not overflow Redis' clock.
    store
        .put("journey", "keep", "v".into(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(store.get("journey", "keep").await.unwrap(), None);
    store
        .put("journey", "forever", "v".into(), Duration::MAX)
        .await
        .unwrap();
    assert!(store.get("journey", "forever").await.unwrap().is_some());
    store.delete("journey", "forever").await.unwrap();
}

#[tokio::test]
async fn put_if_absent_inserts_once_until_expiry() {
    let store = scratch_redis_store().await;
    let ttl = Duration::from_millis(150);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_if_absent_has_one_winner_under_concurrency() {
    let prefix = scratch_redis_prefix();
    let stores = [
        Arc::new(redis_store(&prefix).await),
        Arc::new(redis_store(&prefix).await),
    ];
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&stores[i % 2]);
            tokio::spawn(async move {
                store
                    .put_if_absent("jti", "replayed", i.to_string(), MINUTE)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut inserted = 0;
    for t in tasks {
        inserted += usize::from(t.await.unwrap());
    }
    assert_eq!(inserted, 1);
}

/// Every operation on a store whose Redis is gone answers `Unavailable`, fast.
async fn assert_all_unavailable(store: &RedisSessionStore, within: Duration) {
    let started = Instant::now();
    let results = [
        store.ping().await.err(),
        store.put("n", "k", "v".into(), MINUTE).await.err(),
        store.get("n", "k").await.err(),
        store.take("n", "k").await.err(),
        store.take_and_follow("n", "k", "m").await.err(),
        store.delete("n", "k").await.err(),
        store
            .put_if_absent("n", "k", "v".into(), MINUTE)
            .await
            .err(),
        store.put_all(vec![put("n", "k", "v", MINUTE)]).await.err(),
    ];
    for (i, result) in results.into_iter().enumerate() {
        let err = result.unwrap_or_else(|| panic!("operation {i} succeeded without Redis"));
        assert!(err.is_unavailable(), "operation {i}: {err:?}");
    }
    assert!(started.elapsed() < within, "took {:?}", started.elapsed());
}

#[tokio::test]
async fn unreachable_redis_is_unavailable_quickly() {
    // Connecting is lazy: it succeeds with nothing listening.
    let store = RedisSessionStore::connect("redis://127.0.0.1:1", "p")
        .await
        .unwrap();
    assert_all_unavailable(&store, Duration::from_secs(2)).await;
    assert!(matches!(
        RedisSessionStore::connect("not a url", "p").await,
        Err(StoreError::InvalidUrl(_))
    ));
}

#[tokio::test]
async fn silent_redis_times_out_instead_of_hanging() {
    // Accepts connections and never answers: a hung server or a black hole.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let accept = {
        let held = Arc::clone(&held);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                held.lock().unwrap().push(socket);
            }
        })
    };
    let store = RedisSessionStore::connect(&format!("redis://{addr}"), "p")
        .await
        .unwrap();
    let started = Instant::now();
    let err = store.get("n", "k").await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(4500), "took {took:?}");
    accept.abort();
}

/// A TCP forwarder to the real Redis that can be cut and restored, standing
/// in for Redis going down and coming back.
struct Proxy {
    addr: std::net::SocketAddr,
    upstream: String,
    accept: Option<JoinHandle<()>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut proxy = Proxy {
            addr,
            upstream,
            accept: None,
            links: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let links = Arc::clone(&self.links);
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                links.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        }));
    }

    /// Closes every connection and stops listening: connections are refused.
    fn cut(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    async fn restore(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_recovers_when_redis_comes_back() {
    let url = url::Url::parse(&redis_url()).unwrap();
    let upstream = format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap()
    );
    // The real Redis must be up for this test to mean anything.
    let _ = scratch_redis_store().await;
    let mut proxy = Proxy::start(upstream).await;
    let mut via_proxy = url.clone();
    via_proxy.set_ip_host(proxy.addr.ip()).unwrap();
    via_proxy.set_port(Some(proxy.addr.port())).unwrap();
    let store = RedisSessionStore::connect(via_proxy.as_str(), &scratch_redis_prefix())
        .await
        .unwrap();
    store.put("journey", "j", "v".into(), MINUTE).await.unwrap();

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_all_unavailable(&store, Duration::from_secs(2)).await;
    // Let the reconnection attempt each failure starts in the background
    // fail too, as it would in a hub that sits idle while Redis is down.
    tokio::time::sleep(Duration::from_millis(200)).await;

    proxy.restore().await;
    // The first request after Redis is back is served: no restart, no
    // request sacrificed to notice the recovery.
    assert_eq!(
        store.get("journey", "j").await.unwrap().as_deref(),
        Some("v")
    );
    for _ in 0..5 {
        store.ping().await.unwrap();
    }
    proxy.cut();
}
