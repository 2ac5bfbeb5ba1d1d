//! What only the Redis session store does, against a real Redis
//! (`REDIS_URL`): its key layout, prefixes, retries, and outages. The
//! behaviour every store shares is the contract in `session_contract.rs`.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::session_contract::RedisKeys;
use crate::common::{redis_store, redis_url, scratch_redis_store};
use store::test_support::{redis_take_and_follow_as, scratch_redis_prefix};
use store::{Put, RedisSessionStore, SessionStore, StoreError};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const MINUTE: Duration = Duration::from_secs(60);

fn put<'a>(namespace: &'a str, key: &'a str, value: &str, ttl: Duration) -> Put<'a> {
    Put {
        namespace,
        key,
        value: value.to_owned(),
        ttl,
    }
}

/// A store on a prefix of its own, whose keys go when the guard is dropped.
async fn scratch_store_with_keys() -> (RedisSessionStore, RedisKeys, String) {
    let prefix = scratch_redis_prefix();
    (redis_store(&prefix).await, RedisKeys::new(&prefix), prefix)
}

#[tokio::test]
async fn prefixes_separate_deployments_and_namespaces_exclude_the_separator() {
    let (store, _keys, prefix) = scratch_store_with_keys().await;
    store.put("journey", "k", "v".into(), MINUTE).await.unwrap();
    store.put("state", "s", "k".into(), MINUTE).await.unwrap();
    // Another prefix (another deployment, or another test) sees nothing, and
    // writing there changes nothing here.
    let other_prefix = scratch_redis_prefix();
    let _other_keys = RedisKeys::new(&other_prefix);
    let other = redis_store(&other_prefix).await;
    assert_eq!(other.get("journey", "k").await.unwrap(), None);
    assert_eq!(
        other
            .take_and_follow("state", "s", "journey")
            .await
            .unwrap(),
        None
    );
    other
        .put("journey", "k", "other".into(), MINUTE)
        .await
        .unwrap();
    assert_eq!(
        store.get("journey", "k").await.unwrap().as_deref(),
        Some("v")
    );
    // The same prefix is the same data (a second hub instance).
    let twin = redis_store(&prefix).await;
    assert_eq!(
        twin.get("journey", "k").await.unwrap().as_deref(),
        Some("v")
    );
    store.delete("journey", "k").await.unwrap();
    assert_eq!(
        other.get("journey", "k").await.unwrap().as_deref(),
        Some("other")
    );
    // Keys may contain the separator; namespaces may not.
    assert!(matches!(
        store.get("co:de", "b").await,
        Err(StoreError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn keys_are_prefix_namespace_key_with_an_expiry() {
    let (store, _keys, prefix) = scratch_store_with_keys().await;
    store
        .put("code", "c1", "grant".into(), MINUTE)
        .await
        .unwrap();
    store
        .put_all(vec![
            put("journey", "j1", "state", MINUTE),
            put("upstream_state", "s1", "j1", Duration::from_secs(5)),
        ])
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
    // Each entry of a `put_all` carries its own expiry.
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}:upstream_state:s1"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 5_000, "{pttl}");
}

#[tokio::test]
async fn put_all_with_a_bad_namespace_sends_nothing() {
    let (store, _keys, _) = scratch_store_with_keys().await;
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

/// The IdP's callback whose Redis reply was lost: the same call run again gets the journey
/// it took (the store retries once after a broken connection); any other call, such as
/// the callback URL replayed, gets nothing.
#[tokio::test]
async fn take_and_follow_retried_by_its_caller_gets_the_same_answer() {
    let (first_instance, _keys, prefix) = scratch_store_with_keys().await;
    let second_instance = redis_store(&prefix).await;
    first_instance
        .put("journey", "j1", "{}".into(), MINUTE)
        .await
        .unwrap();
    first_instance
        .put("state", "s1", "j1".into(), MINUTE)
        .await
        .unwrap();
    let call = ("state", "s1", "journey");
    let expected = Some(("j1".to_owned(), Some("{}".to_owned())));
    let first = redis_take_and_follow_as(&first_instance, call, "attempt-1").await;
    assert_eq!(first.unwrap(), expected);
    let retried = redis_take_and_follow_as(&second_instance, call, "attempt-1").await;
    assert_eq!(retried.unwrap(), expected, "the retry gets what it took");
    for other in ["attempt-2", "attempt", ""] {
        let replayed = redis_take_and_follow_as(&second_instance, call, other).await;
        assert_eq!(
            replayed.unwrap(),
            None,
            "another call ({other:?}) gets nothing"
        );
    }
    assert_eq!(
        first_instance
            .take_and_follow("state", "s1", "journey")
            .await
            .unwrap(),
        None
    );
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
    let prefix = scratch_redis_prefix();
    let _keys = RedisKeys::new(&prefix);
    let store = RedisSessionStore::connect(via_proxy.as_str(), &prefix)
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
