//! Django's `cached_db` engine: Redis in front of the database, write-through.
//!
//! The database (SQLite or PostgreSQL, by `DATABASE_URL`) is the source of truth; Redis only
//! saves reads. Both hold the same signed `session_data` string, which is also the version
//! compare-and-set works with, so a value read from either is a valid version for the other.
//!
//! - **Reads** try Redis (`:1:django.contrib.sessions.cached_db<key>`), then the database, and
//!   refill Redis with `SET NX` (never over a newer value a writer put there meanwhile).
//! - **Writes** go to the database first (compare-and-set there). After a successful write,
//!   Redis gets the new value only if it still holds the version this write replaced (or
//!   nothing); otherwise, and after a conflict, the entry is replaced by a short-lived
//!   *tombstone* so the next read goes to the database. A tombstone also blocks a slow
//!   reader's refill with the value it read before the write (the classic cache-aside race),
//!   which is what keeps a logout from coming back through the cache.
//! - **Redis down or failing**: every Redis error is logged as a warning and the request is
//!   served from the database, never failed. After an error Redis is left alone for
//!   [`RETRY_AFTER`] (so a dead Redis costs no time per request); keys written meanwhile are
//!   remembered and invalidated in Redis once it answers again, so a Redis that was merely cut
//!   off does not come back with data older than the database.
//!
//! # Limits
//! Invalidations remembered during an outage are per process and capped at
//! [`MAX_PENDING`] keys; a process restarted during an outage forgets them, and a cut-off Redis
//! may then serve older data for those sessions until they are next written (the write itself
//! is still safe: the database compare-and-set fails, the entry is invalidated, and the write
//! retried) or expire. Django's `cached_db` has the same window without the remedy.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use redis::Script;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use super::redis::{connection_config, ttl_ms};
use super::{Created, Inspected, Loaded, Record, Saved, SessionStore, Summary, Version};
use crate::codec::{Codec, DecodeCache};
use crate::error::StoreError;

/// How long Redis is bypassed after an error (see [`CachedDbStore::with_retry_after`]).
pub const RETRY_AFTER: Duration = Duration::from_secs(2);
/// Life of a tombstone, in milliseconds: longer than any read-then-refill takes.
const TOMBSTONE_MS: i64 = 30_000;
/// Most keys remembered for invalidation while Redis is unreachable.
pub const MAX_PENDING: usize = 100_000;

/// After a database write that replaced ARGV[1]: store ARGV[2] with TTL ARGV[3] ms if Redis
/// holds ARGV[1] or nothing, else leave a tombstone (an empty value) for ARGV[4] ms.
static REPLACE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local cur = redis.call('GET', KEYS[1])
        if (cur == false or cur == ARGV[1]) and tonumber(ARGV[3]) > 0 then
            redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
            return 1
        end
        redis.call('SET', KEYS[1], '', 'PX', ARGV[4])
        return 0
        ",
    )
});

struct Cache {
    conn: ConnectionManager,
    prefix: String,
    retry_after: Duration,
    /// Redis is bypassed until then after an error.
    down_until: Mutex<Option<Instant>>,
    /// Keys written while Redis was bypassed: invalidated when it answers again.
    pending: Mutex<HashSet<String>>,
}

impl Cache {
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn bypassed(&self) -> bool {
        let mut down = self.down_until.lock();
        match *down {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *down = None;
                false
            }
            None => false,
        }
    }

    fn failed(&self, what: &str, e: &redis::RedisError) {
        let mut down = self.down_until.lock();
        if down.is_none() {
            tracing::warn!(error = %e, op = what, retry_in = ?self.retry_after, "redis unavailable; serving sessions from the database");
        } else {
            tracing::debug!(error = %e, op = what, "redis still unavailable");
        }
        *down = Some(Instant::now() + self.retry_after);
    }

    fn remember(&self, key: &str) {
        let mut pending = self.pending.lock();
        if pending.len() < MAX_PENDING {
            pending.insert(key.to_owned());
        } else if pending.len() == MAX_PENDING {
            tracing::warn!(
                limit = MAX_PENDING,
                "too many sessions written while redis was down; some cache entries may be stale until they expire"
            );
            pending.insert(String::new()); // marker: warn once
        }
    }

    /// Invalidate what was written while Redis was bypassed; `false` if Redis failed again.
    async fn flush_pending(&self) -> bool {
        let keys: Vec<String> =
            std::mem::take(&mut *self.pending.lock()).into_iter().filter(|k| !k.is_empty()).collect();
        if keys.is_empty() {
            return true;
        }
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.cmd("SET").arg(self.key(k)).arg("").arg("PX").arg(TOMBSTONE_MS).ignore();
        }
        match pipe.query_async::<()>(&mut self.conn.clone()).await {
            Ok(()) => {
                tracing::info!(sessions = keys.len(), "redis back; invalidated sessions written while it was down");
                true
            }
            Err(e) => {
                self.failed("invalidate", &e);
                let mut pending = self.pending.lock();
                pending.extend(keys);
                false
            }
        }
    }

    /// Run a Redis operation unless Redis is bypassed; errors are logged and become `None`.
    async fn run<T>(&self, what: &str, op: impl std::future::Future<Output = redis::RedisResult<T>>) -> Option<T> {
        if self.bypassed() || !self.flush_pending().await {
            return None;
        }
        match op.await {
            Ok(v) => Some(v),
            Err(e) => {
                self.failed(what, &e);
                None
            }
        }
    }

    async fn get(&self, key: &str) -> Option<(String, i64)> {
        let rkey = self.key(key);
        let mut conn = self.conn.clone();
        let (value, pttl): (Option<String>, i64) =
            self.run("get", redis::pipe().atomic().get(&rkey).pttl(&rkey).query_async(&mut conn)).await?;
        value.filter(|v| !v.is_empty()).map(|v| (v, pttl))
    }

    async fn fill(&self, key: &str, raw: &str, expire_date: DateTime<Utc>) {
        let ttl = ttl_ms(expire_date);
        if ttl <= 0 {
            return;
        }
        let rkey = self.key(key);
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(&rkey).arg(raw).arg("NX").arg("PX").arg(ttl);
        self.run("fill", cmd.query_async::<Option<String>>(&mut conn)).await;
    }

    /// After a database write: the new value if Redis still holds `replaced` (or nothing).
    async fn replace(&self, key: &str, replaced: &str, new: &str, expire_date: DateTime<Utc>) {
        let mut conn = self.conn.clone();
        let rkey = self.key(key);
        let mut call = REPLACE.key(&rkey);
        call.arg(replaced).arg(new).arg(ttl_ms(expire_date)).arg(TOMBSTONE_MS);
        if self.run("replace", call.invoke_async::<i64>(&mut conn)).await.is_none() {
            self.remember(key);
        }
    }

    /// Make the next read of `key` go to the database.
    async fn invalidate(&self, key: &str) {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg("").arg("PX").arg(TOMBSTONE_MS);
        if self.run("invalidate", cmd.query_async::<()>(&mut conn)).await.is_none() {
            self.remember(key);
        }
    }
}

/// Sessions in a database with Redis as a write-through cache (Django's `cached_db`).
#[derive(Clone)]
pub struct CachedDbStore {
    db: Arc<dyn SessionStore>,
    cache: Arc<Cache>,
    codec: Codec,
    cookie_age: i64,
    /// Values read from Redis, verified and decoded once per distinct value (the database
    /// store behind has its own for what it reads).
    decoded: Arc<DecodeCache>,
}

impl std::fmt::Debug for CachedDbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedDbStore")
            .field("db", &self.db)
            .field("prefix", &self.cache.prefix)
            .finish_non_exhaustive()
    }
}

impl CachedDbStore {
    /// Put Redis at `redis_url` in front of `db`, caching under `prefix` + key (use
    /// [`super::redis::CACHED_DB_PREFIX`] for Django's key scheme). `codec` must be the one
    /// `db` encodes with; `cookie_age` is `SESSION_COOKIE_AGE`.
    ///
    /// Redis is not contacted here: a server starts (and serves from the database) while Redis
    /// is down.
    ///
    /// # Errors
    /// [`StoreError::Redis`] only when `redis_url` is not a valid Redis URL.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo() -> Result<(), sesame::StoreError> {
    /// use sesame::store::{redis::CACHED_DB_PREFIX, CachedDbStore, PostgresStore};
    /// let codec = sesame::codec::Codec::new("secret", &[]);
    /// let db = PostgresStore::connect("postgres://postgres@127.0.0.1:5432/app", codec.clone()).await?;
    /// let store = CachedDbStore::new(std::sync::Arc::new(db), "redis://127.0.0.1:6379", CACHED_DB_PREFIX, codec, 1_209_600)?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn new(
        db: Arc<dyn SessionStore>,
        redis_url: &str,
        prefix: impl Into<String>,
        codec: Codec,
        cookie_age: i64,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(redis_url)?;
        let conn = ConnectionManager::new_lazy_with_config(client, connection_config())?;
        let cache = Cache {
            conn,
            prefix: prefix.into(),
            retry_after: RETRY_AFTER,
            down_until: Mutex::new(None),
            pending: Mutex::new(HashSet::new()),
        };
        Ok(Self { db, cache: Arc::new(cache), codec, cookie_age, decoded: Arc::default() })
    }

    /// Bypass Redis for `retry_after` after an error instead of [`RETRY_AFTER`].
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        if let Some(cache) = Arc::get_mut(&mut self.cache) {
            cache.retry_after = retry_after;
        }
        self
    }

    /// The database behind the cache.
    pub fn db(&self) -> &Arc<dyn SessionStore> {
        &self.db
    }

    /// When the stored row expires, from what a load returns: Django computes `expire_date`
    /// and signs `session_data` at the same instant, so the signature's timestamp is the time
    /// of the save (to the second, which only shortens the cache entry).
    fn expire_date_of(&self, loaded: &Loaded) -> Option<DateTime<Utc>> {
        let signed_at = self.codec.decode(&loaded.version.0).ok()?.timestamp;
        let signed_at = DateTime::<Utc>::from_timestamp(signed_at, 0)?;
        Some(crate::expiry::date(&loaded.data, self.cookie_age, signed_at))
    }
}

#[async_trait]
impl SessionStore for CachedDbStore {
    async fn load(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Loaded>, StoreError> {
        if let Some((raw, pttl)) = self.cache.get(key).await {
            let expire = if pttl < 0 { DateTime::<Utc>::MAX_UTC } else { Utc::now() + TimeDelta::milliseconds(pttl) };
            if expire > now {
                if let Ok(data) = self.decoded.decode(&self.codec, key, &raw) {
                    return Ok(Some(Loaded { data, version: Version(raw) }));
                }
                // A value that does not verify (another SECRET_KEY, tampering): ask the
                // database, which decides what Django would.
            }
        }
        let loaded = self.db.load(key, now).await?;
        if let Some(l) = &loaded {
            if let Some(expire) = self.expire_date_of(l) {
                self.cache.fill(key, &l.version.0, expire).await;
            }
        }
        Ok(loaded)
    }

    async fn create(&self, key: &str, record: Record<'_>) -> Result<Created, StoreError> {
        let created = self.db.create(key, record).await?;
        if let Created::Created { version, .. } = &created {
            // A fresh key: nothing older can be in Redis (a stale tombstone is overwritten).
            self.cache.replace(key, "", &version.0, record.expire_date).await;
        }
        Ok(created)
    }

    async fn save(&self, key: &str, record: Record<'_>, expected: &Version) -> Result<Saved, StoreError> {
        let saved = self.db.save(key, record, expected).await?;
        match &saved {
            Saved::Saved { version, .. } => self.cache.replace(key, &expected.0, &version.0, record.expire_date).await,
            // The version came from a stale cache entry, or another writer won: either way the
            // reload that follows must read the database.
            Saved::Conflict => self.cache.invalidate(key).await,
        }
        Ok(saved)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.db.delete(key).await?;
        self.decoded.forget(key);
        self.cache.invalidate(key).await;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.db.exists(key).await
    }

    /// Sweeps the database; Redis drops its entries at their TTL.
    async fn clear_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.db.clear_expired(now).await
    }

    async fn clear_expired_with_progress(
        &self,
        now: DateTime<Utc>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, StoreError> {
        self.db.clear_expired_with_progress(now, progress).await
    }

    async fn inspect(&self, key: &str) -> Result<Option<Inspected>, StoreError> {
        self.db.inspect(key).await
    }

    async fn list(&self, now: DateTime<Utc>, expired_only: bool, limit: u64) -> Result<Vec<Summary>, StoreError> {
        self.db.list(now, expired_only, limit).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.db.count().await
    }

    fn is_shared(&self) -> bool {
        self.db.is_shared()
    }
}
