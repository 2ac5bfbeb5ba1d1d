//! [`SessionStore`] on Redis, shared by every hub instance.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, RedisError, Script};
use thread_local::ThreadLocal;

use crate::error::{redact_url, StoreError};
use crate::session::{Exchange, Put, SessionStore};

/// How long to wait for a connection to Redis, and for each reply, before
/// answering [`StoreError::Unavailable`]: a dead or unreachable Redis makes
/// the hub answer 503 promptly instead of holding the request open.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Longest TTL sent to Redis (about 100 years). Redis rejects an expiry past
/// the end of its clock; an entry this long-lived never expires in practice,
/// which is what [`crate::MemorySessionStore`] does with `Duration::MAX`.
const MAX_TTL_MS: u64 = 100 * 365 * 24 * 60 * 60 * 1000;

/// `take_and_follow`: KEYS[1] is the index and KEYS[2] its receipt; ARGV[1] is the key
/// prefix of the entries the index names, ARGV[2] the call's attempt id and ARGV[3] the
/// receipt's TTL in ms. The taken value is kept under the receipt behind the attempt id,
/// so the same call run again (a retry after a lost reply) gets it again and any other
/// call finds nothing. Every key the script reads through the index is derived from its
/// value, which a Redis Cluster would refuse; the hub uses one Redis (or a primary and
/// replicas).
static TAKE_AND_FOLLOW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local value = redis.call('GETDEL', KEYS[1])
if value then
  redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. value, 'PX', ARGV[3])
else
  local receipt = redis.call('GET', KEYS[2])
  local mine = ARGV[2] .. ' '
  if not receipt or string.sub(receipt, 1, #mine) ~= mine then return false end
  value = string.sub(receipt, #mine + 1)
end
return {value, redis.call('GET', ARGV[1] .. value)}",
    )
});

/// How long a `take_and_follow` receipt is kept: far longer than a retry takes (two
/// reply timeouts), short enough that receipts do not pile up.
const TAKE_RECEIPT_TTL_MS: u64 = 30_000;

/// `GETDEL` of KEYS[1] and, if it was there, its value `SET` under KEYS[2] and
/// ARGV[2] (KEYS[2]'s key without the prefix) under KEYS[3], both `PX` ARGV[1]. If it
/// was not, but the receipt KEYS[3] names ARGV[2], this exchange already happened (a
/// retry whose first reply was lost): the value kept under KEYS[2] again.
static EXCHANGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local value = redis.call('GETDEL', KEYS[1])
if not value then
  if redis.call('GET', KEYS[3]) == ARGV[2] then return redis.call('GET', KEYS[2]) end
  return false
end
redis.call('SET', KEYS[2], value, 'PX', ARGV[1])
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[1])
return value",
    )
});

/// [`SessionStore`] on Redis (6.2 or newer, for `GETDEL`), so several hub
/// instances share journeys, codes and replay caches.
///
/// Keys are `{prefix}:{namespace}:{key}`; every entry carries its TTL as a
/// Redis expiry (`PX`), so Redis removes it and nothing needs sweeping.
/// Atomicity comes from single Redis commands: `take` is `GETDEL` (one
/// redemption of a code across all instances) and `put_if_absent` is
/// `SET NX PX`.
///
/// One multiplexed connection per thread that uses the store, each managed by
/// redis' `ConnectionManager` and driven by that thread's runtime, so that a
/// command never wakes another thread (the hub runs one runtime per worker
/// thread). Connections open lazily, so [`RedisSessionStore::connect`]
/// succeeds while Redis is down and the hub can start; each operation then
/// fails with [`StoreError::Unavailable`] within about two seconds, and the
/// manager reconnects by itself once Redis is back. Every Redis error, of any
/// kind, is `Unavailable`. Cheap to clone (clones share the connections).
#[derive(Clone)]
pub struct RedisSessionStore {
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// Each thread's connection, made on its first command.
    conns: Arc<ThreadLocal<ConnectionManager>>,
    prefix: String,
    /// For `Debug`: the URL without its password.
    shown_url: String,
}

impl fmt::Debug for RedisSessionStore {
    /// Shows where, never what: values are journeys and codes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessionStore")
            .field("url", &self.shown_url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisSessionStore {
    /// A store on the Redis at `url` (`redis://[[user]:password@]host[:port][/db]`;
    /// `rediss://` is refused as this build has no TLS for Redis), with every
    /// key under `key_prefix` so several hubs (or test runs) can share one Redis.
    ///
    /// Does not contact Redis (see the type's documentation): only a malformed
    /// URL fails here, with [`StoreError::InvalidUrl`]. Call
    /// [`SessionStore::ping`] to find out whether Redis answers. Async because
    /// the connection manager belongs to the calling Tokio runtime.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Self, StoreError> {
        let shown_url = redact_url(url);
        let client = redis::Client::open(url).map_err(|e| {
            StoreError::InvalidUrl(format!("not a usable Redis url {shown_url}: {e}"))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            // No retry loop inside one call: the failed call answers at once
            // and the next one starts a fresh connection attempt.
            .set_number_of_retries(0);
        let store = Self {
            client,
            config,
            conns: Arc::default(),
            prefix: key_prefix.to_owned(),
            shown_url,
        };
        // Checks the configuration now rather than at the first command.
        store.conn()?;
        Ok(store)
    }

    /// The calling thread's connection manager (made on first use, on this thread's
    /// runtime).
    fn conn(&self) -> Result<ConnectionManager, StoreError> {
        self.conns
            .get_or_try(|| {
                ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
            })
            .cloned()
            .map_err(|e| {
                StoreError::InvalidUrl(format!("cannot use Redis at {}: {e}", self.shown_url))
            })
    }

    /// The Redis key for `(namespace, key)`. Namespaces must not contain `:`,
    /// so that no two `(namespace, key)` pairs share a Redis key.
    fn key(&self, namespace: &str, key: &str) -> Result<String, StoreError> {
        if namespace.contains(':') {
            return Err(StoreError::InvalidInput(format!(
                "session namespace {namespace:?} must not contain ':'"
            )));
        }
        Ok(format!("{}:{namespace}:{key}", self.prefix))
    }

    /// Runs one command. After an I/O failure (the connection died because
    /// Redis restarted, or the last connection attempt failed while it was
    /// down) the manager has just started a fresh connection attempt: try once
    /// more on it, so the first request after a recovery is served rather
    /// than failed. Not after a timeout: an unresponsive Redis must not cost
    /// two timeouts. A retried `GETDEL` or `SET NX` whose first attempt did
    /// reach Redis answers "gone" / "present": single use still holds (it
    /// fails closed).
    async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        self.retried(|mut conn| async move { cmd.query_async::<T>(&mut conn).await })
            .await
    }

    /// [`RedisSessionStore::run`] for a pipeline (a `MULTI` pipeline is
    /// applied whole or not at all).
    async fn run_pipeline(&self, pipe: &redis::Pipeline) -> Result<(), StoreError> {
        self.retried(|mut conn| async move { pipe.query_async::<()>(&mut conn).await })
            .await
    }

    /// `request` on the managed connection, once more after an I/O failure
    /// that is not a timeout (see [`RedisSessionStore::run`]).
    async fn retried<T, F, Fut>(&self, request: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn()?;
        match request(conn.clone()).await {
            Ok(value) => Ok(value),
            Err(e) if e.is_io_error() && !e.is_timeout() => {
                tracing::debug!(error = %e, "redis connection failed; retrying once");
                request(conn).await.map_err(|e| self.unavailable(&e))
            }
            Err(e) => Err(self.unavailable(&e)),
        }
    }

    fn unavailable(&self, e: &RedisError) -> StoreError {
        StoreError::Unavailable(format!("redis at {}: {e}", self.shown_url))
    }

    /// [`SessionStore::take_and_follow`] as the call `attempt`: run again with the same
    /// attempt id, as [`Self::retried`] does after a lost reply, it gets what the first
    /// run took; with another id, nothing.
    pub(crate) async fn take_and_follow_as(
        &self,
        namespace: &str,
        key: &str,
        target_namespace: &str,
        attempt: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let index = self.key(namespace, key)?;
        let receipt = self.key(&format!("{namespace}.taken"), key)?;
        let target_prefix = self.key(target_namespace, "")?;
        let mut invocation = TAKE_AND_FOLLOW.prepare_invoke();
        invocation
            .key(&index)
            .key(&receipt)
            .arg(&target_prefix)
            .arg(attempt)
            .arg(TAKE_RECEIPT_TTL_MS);
        let invocation = &invocation;
        self.retried(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await
    }
}

/// The TTL in milliseconds for `PX`, or `None` for a zero TTL (already expired).
fn ttl_millis(ttl: Duration) -> Option<u64> {
    if ttl.is_zero() {
        return None;
    }
    let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    // A sub-millisecond TTL still lives for a moment rather than never.
    Some(ms.clamp(1, MAX_TTL_MS))
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    /// `SET ... PX` for each entry (`DEL` for a zero TTL: an entry expired at
    /// once leaves nothing), sent as one pipeline; several entries as one
    /// `MULTI`/`EXEC` transaction.
    async fn put_all(&self, entries: Vec<Put<'_>>) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        if entries.len() > 1 {
            pipe.atomic();
        }
        for put in entries {
            let key = self.key(put.namespace, put.key)?;
            match ttl_millis(put.ttl) {
                Some(ms) => pipe.cmd("SET").arg(&key).arg(put.value).arg("PX").arg(ms),
                None => pipe.cmd("DEL").arg(&key),
            }
            .ignore();
        }
        self.run_pipeline(&pipe).await
    }

    async fn get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        let key = self.key(namespace, key)?;
        self.run(redis::cmd("GET").arg(&key)).await
    }

    async fn take(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        let key = self.key(namespace, key)?;
        self.run(redis::cmd("GETDEL").arg(&key)).await
    }

    /// A Lua script ([`TAKE_AND_FOLLOW`]): `GETDEL` of the index, then `GET` of the
    /// entry it names, atomically and in one round trip (`EVALSHA`, loaded on first use).
    /// Retried after a lost reply, it gets the same answer (see `take_and_follow_as`).
    async fn take_and_follow(
        &self,
        namespace: &str,
        key: &str,
        target_namespace: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let attempt = uuid::Uuid::new_v4().simple().to_string();
        self.take_and_follow_as(namespace, key, target_namespace, &attempt)
            .await
    }

    /// A Lua script ([`EXCHANGE`]): atomic, one round trip.
    async fn exchange(
        &self,
        namespace: &str,
        key: &str,
        exchange: Exchange<'_>,
    ) -> Result<Option<String>, StoreError> {
        let taken = self.key(namespace, key)?;
        let (to_namespace, to_key) = exchange.to;
        let to = self.key(to_namespace, to_key)?;
        let receipt = self.key(exchange.receipt_namespace, key)?;
        let Some(ms) = ttl_millis(exchange.ttl) else {
            // Kept for no time at all: an exchange that keeps nothing is a take.
            return self.take(namespace, key).await;
        };
        let mut invocation = EXCHANGE.prepare_invoke();
        invocation
            .key(&taken)
            .key(&to)
            .key(&receipt)
            .arg(ms)
            .arg(to_key);
        let invocation = &invocation;
        self.retried(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        let key = self.key(namespace, key)?;
        self.run::<()>(redis::cmd("DEL").arg(&key)).await
    }

    async fn put_if_absent(
        &self,
        namespace: &str,
        key: &str,
        value: String,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let key = self.key(namespace, key)?;
        match ttl_millis(ttl) {
            Some(ms) => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(&key).arg(value).arg("NX").arg("PX").arg(ms);
                // "OK" when set, nil when the key already existed.
                let reply: Option<String> = self.run(&cmd).await?;
                Ok(reply.is_some())
            }
            // An entry expired at once is never stored; it is "newly
            // inserted" exactly when nothing live is there (as in memory).
            None => {
                let exists: bool = self.run(redis::cmd("EXISTS").arg(&key)).await?;
                Ok(!exists)
            }
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let reply: String = self.run(&redis::cmd("PING")).await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "redis at {} answered PING with {reply:?}",
                self.shown_url
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls() {
        assert_eq!(ttl_millis(Duration::ZERO), None);
        assert_eq!(ttl_millis(Duration::from_micros(10)), Some(1));
        assert_eq!(ttl_millis(Duration::from_secs(60)), Some(60_000));
        assert_eq!(ttl_millis(Duration::MAX), Some(MAX_TTL_MS));
    }

    #[tokio::test]
    async fn connect_is_lazy_and_validates_the_url() {
        // Nothing listens on port 1: connecting still succeeds (lazily).
        let store = RedisSessionStore::connect("redis://:pw@127.0.0.1:1", "p")
            .await
            .unwrap();
        let shown = format!("{store:?}");
        assert!(!shown.contains("pw"), "{shown}");
        assert_eq!(store.key("code", "a:b").unwrap(), "p:code:a:b");
        assert!(matches!(
            store.key("co:de", "x"),
            Err(StoreError::InvalidInput(_))
        ));
        for bad in ["http://127.0.0.1", "rediss://127.0.0.1:6380"] {
            assert!(
                matches!(
                    RedisSessionStore::connect(bad, "p").await,
                    Err(StoreError::InvalidUrl(_))
                ),
                "{bad}"
            );
        }
    }
}
