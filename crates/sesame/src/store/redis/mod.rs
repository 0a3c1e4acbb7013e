//! Django's `cache` engine on Redis: sessions live only in Redis, under Django's cache keys,
//! and expire by Redis TTL.
//!
//! - **Keys** follow Django's cache key scheme, `KEY_PREFIX:VERSION:` + the engine's prefix +
//!   the session key: with Django's defaults (`KEY_PREFIX = ""`, `VERSION = 1`),
//!   `:1:django.contrib.sessions.cache<key>` ([`CACHE_PREFIX`]).
//! - **Values** are the same signed `session_data` string the database engines store. Django's
//!   Redis cache backend pickles the session dict instead, so a Django site and Sesame cannot
//!   share sessions through the `cache` engine byte for byte; they can through `db` or
//!   `cached_db` (whose database is the source of truth).
//! - **Expiry** is the key's TTL, set from `expire_date` on every write; Redis removes expired
//!   sessions itself, so [`SessionStore::clear_expired`] does nothing and there are never
//!   expired records to list.
//! - **Compare-and-set**: `create` is `SET NX`; `save` is a Lua script that replaces the value
//!   only if the key still exists and still holds the version the request read, atomically on
//!   the server. A session deleted by a logout is therefore never brought back, and two server
//!   processes sharing Redis never lose each other's updates.
//!
//! # Limits
//! Redis is memory: a restart without persistence logs everyone out, and under `maxmemory`
//! with an eviction policy sessions may be evicted early.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use std::sync::LazyLock;
use std::time::Duration;

use super::{Created, Inspected, Loaded, Record, Saved, SessionStore, Summary, Version};

mod pipelined;
use crate::codec::Codec;
use crate::error::StoreError;

/// Django's cache key for the `cache` engine with default cache settings:
/// `":1:" + "django.contrib.sessions.cache"`; the session key follows.
pub const CACHE_PREFIX: &str = ":1:django.contrib.sessions.cache";
/// Django's cache key prefix for the `cached_db` engine.
pub const CACHED_DB_PREFIX: &str = ":1:django.contrib.sessions.cached_db";

/// Keys per SCAN round trip when counting or listing.
const SCAN_COUNT: usize = 1_000;

/// Replace the value at KEYS[1] with ARGV[2] (TTL ARGV[3] ms; delete if <= 0) only if it
/// currently equals ARGV[1]. A missing key fails the comparison, so a save never creates.
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        if tonumber(ARGV[3]) > 0 then
            redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
        else
            redis.call('DEL', KEYS[1])
        end
        return 1
        ",
    )
});

/// A Redis connection that reconnects by itself, with timeouts short enough that an
/// unreachable Redis fails a request quickly instead of hanging it.
pub(crate) fn connection_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(200))
}

/// Milliseconds from now until `expire_date` (may be zero or negative: already expired).
pub(crate) fn ttl_ms(expire_date: DateTime<Utc>) -> i64 {
    (expire_date - Utc::now()).num_milliseconds()
}

/// Characters SCAN's MATCH treats as glob syntax, escaped so a prefix matches literally.
pub(crate) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Sessions in Redis (Django's `cache` engine).
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    codec: Codec,
    decoded: std::sync::Arc<crate::codec::DecodeCache>,
    /// Session reads and new sessions, batched into pipelines.
    pipelined: pipelined::Pipelined,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connect to `url` (`redis://[:password@]host[:port][/db]`), keeping sessions under
    /// `prefix` + key (use [`CACHE_PREFIX`] to match Django's key scheme).
    ///
    /// # Errors
    /// [`StoreError::Redis`] when the URL is invalid or the server cannot be reached.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo() -> Result<(), sesame::StoreError> {
    /// use sesame::store::{redis::CACHE_PREFIX, RedisStore};
    /// let codec = sesame::codec::Codec::new("secret", &[]);
    /// let store = RedisStore::connect("redis://127.0.0.1:6379", CACHE_PREFIX, codec).await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub async fn connect(url: &str, prefix: impl Into<String>, codec: Codec) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new_with_config(client, connection_config()).await?;
        let pipelined = pipelined::Pipelined::start(conn.clone());
        Ok(Self { conn, prefix: prefix.into(), codec, decoded: Default::default(), pipelined })
    }

    /// The Redis key of session `key`.
    pub fn redis_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn conn(&self) -> ConnectionManager {
        // A cheap handle onto one multiplexed connection, as the redis crate intends.
        self.conn.clone()
    }

    /// Value and remaining TTL (ms) of a Redis key, read atomically.
    async fn get_with_ttl(&self, rkey: &str) -> Result<Option<(String, i64)>, StoreError> {
        let (value, pttl): (Option<String>, i64) =
            redis::pipe().atomic().get(rkey).pttl(rkey).query_async(&mut self.conn()).await?;
        // PTTL -1: no expiry (written by someone else); -2: gone between the two commands
        // cannot happen inside MULTI.
        Ok(value.map(|v| (v, if pttl == -1 { i64::MAX } else { pttl })))
    }

    fn expire_date(pttl_ms: i64) -> DateTime<Utc> {
        if pttl_ms == i64::MAX {
            return DateTime::<Utc>::MAX_UTC;
        }
        Utc::now() + TimeDelta::milliseconds(pttl_ms)
    }

    fn decoded(&self, key: &str, raw: &str) -> std::sync::Arc<crate::Data> {
        super::data_or_empty(key, self.decoded.decode(&self.codec, key, raw))
    }

    async fn scan(&self) -> Result<Vec<String>, StoreError> {
        let pattern = format!("{}*", glob_escape(&self.prefix));
        let mut conn = self.conn();
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut conn)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        // SCAN may return a key more than once.
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Loaded>, StoreError> {
        let rkey = self.redis_key(key);
        let raw = if (now - Utc::now()).abs() < TimeDelta::seconds(1) {
            // Redis drops the key at its TTL by the real clock: a plain GET is the whole check.
            let mut get = redis::cmd("GET");
            get.arg(&rkey);
            let raw: Option<String> = self.pipelined.query(get).await?;
            raw
        } else {
            // A `now` from another clock (tests): compare it with the remaining TTL.
            match self.get_with_ttl(&rkey).await? {
                Some((raw, pttl)) if Self::expire_date(pttl) > now => Some(raw),
                _ => None,
            }
        };
        match raw {
            Some(raw) if !raw.is_empty() => Ok(Some(Loaded { data: self.decoded(key, &raw), version: Version(raw) })),
            _ => Ok(None),
        }
    }

    async fn create(&self, key: &str, record: Record<'_>) -> Result<Created, StoreError> {
        let encoded = self.codec.encode(record.data);
        let rkey = self.redis_key(key);
        let ttl = ttl_ms(record.expire_date);
        if ttl <= 0 {
            // Already expired: there is nothing to keep (Redis would reject a zero TTL).
            let taken: bool = self.conn().exists(&rkey).await?;
            return Ok(if taken {
                Created::KeyTaken
            } else {
                Created::Created { key: key.to_owned(), version: Version(encoded) }
            });
        }
        let mut set = redis::cmd("SET");
        set.arg(&rkey).arg(&encoded).arg("NX").arg("PX").arg(ttl);
        let set: Option<String> = self.pipelined.query(set).await?;
        Ok(match set {
            Some(_) => Created::Created { key: key.to_owned(), version: Version(encoded) },
            None => Created::KeyTaken,
        })
    }

    async fn save(&self, key: &str, record: Record<'_>, expected: &Version) -> Result<Saved, StoreError> {
        let encoded = self.codec.encode(record.data);
        let done: i64 = SAVE
            .key(self.redis_key(key))
            .arg(&expected.0)
            .arg(&encoded)
            .arg(ttl_ms(record.expire_date))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(if done == 1 { Saved::Saved { key: key.to_owned(), version: Version(encoded) } } else { Saved::Conflict })
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let _: i64 = self.conn().del(self.redis_key(key)).await?;
        self.decoded.forget(key);
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.conn().exists(self.redis_key(key)).await?)
    }

    /// Redis removes expired keys itself: nothing to do.
    async fn clear_expired(&self, _now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn inspect(&self, key: &str) -> Result<Option<Inspected>, StoreError> {
        Ok(self.get_with_ttl(&self.redis_key(key)).await?.filter(|(raw, _)| !raw.is_empty()).map(|(raw, pttl)| {
            Inspected {
                data: self.codec.decode(&raw).map(|d| d.data),
                expire_date: Self::expire_date(pttl),
                size: raw.len(),
            }
        }))
    }

    /// Live sessions only (Redis keeps no expired ones), found by SCAN over the prefix: fine
    /// for tools, not for a request path.
    async fn list(&self, _now: DateTime<Utc>, expired_only: bool, limit: u64) -> Result<Vec<Summary>, StoreError> {
        if expired_only {
            return Ok(Vec::new());
        }
        let mut rows = Vec::new();
        let mut conn = self.conn();
        for rkey in self.scan().await? {
            let (size, pttl): (usize, i64) = redis::pipe().strlen(&rkey).pttl(&rkey).query_async(&mut conn).await?;
            if pttl == -2 || size == 0 {
                continue; // expired or deleted since the scan, or a cached_db tombstone
            }
            let key = rkey[self.prefix.len()..].to_owned();
            rows.push(Summary { key, expire_date: Self::expire_date(if pttl == -1 { i64::MAX } else { pttl }), size });
        }
        rows.sort_by(|a, b| a.expire_date.cmp(&b.expire_date).then_with(|| a.key.cmp(&b.key)));
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(rows)
    }

    /// Number of keys under the prefix, by SCAN (O(keys in the Redis database)).
    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.scan().await?.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape(":1:django.contrib.sessions.cache"), ":1:django.contrib.sessions.cache");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
