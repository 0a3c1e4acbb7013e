//! The storage seam: one async trait for every engine Django has.
//!
//! A store keeps `(key → data, expire_date)` records and supports exactly the operations the
//! session life cycle needs, with two guarantees the layer relies on:
//! - [`SessionStore::create`] inserts and never overwrites (a colliding key is reported, and
//!   the caller draws another);
//! - [`SessionStore::save`] updates only, and only if the record is still at the version the
//!   caller read (compare-and-set). A deleted session is never brought back, and a concurrent
//!   change is reported as [`Saved::Conflict`] so the caller can merge instead of clobbering.
//!
//! The key a store returns from `create` / `save` is what goes into the cookie. Database-like
//! stores return the key they were given; the signed-cookie engine returns the signed data
//! itself, which is why the seam lets a store choose the cookie value.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{error::StoreError, Data};
use std::sync::Arc;

#[cfg(feature = "cached-db")]
pub mod cached_db;
#[cfg(feature = "file")]
pub mod file;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "signed-cookies")]
pub mod signed_cookies;
#[cfg(feature = "sqlite")]
pub mod sqlite;

#[cfg(feature = "cached-db")]
pub use cached_db::CachedDbStore;
#[cfg(feature = "file")]
pub use file::FileStore;
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "redis")]
pub use redis::RedisStore;
#[cfg(feature = "signed-cookies")]
pub use signed_cookies::SignedCookieStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// An opaque token for the stored state a session was read from, compared by
/// [`SessionStore::save`]. SQL stores use the encoded `session_data` itself, so no schema
/// change is needed for compare-and-set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(pub String);

/// A record as read from a store.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The session data (empty when the stored data could not be decoded: Django reads a
    /// tampered session as empty and overwrites it on the next save). Shared, because the
    /// stores' decode caches hand the same map to every read of an unchanged session; a
    /// session copies it only when the request writes.
    pub data: Arc<Data>,
    /// The version to compare against when saving.
    pub version: Version,
}

impl Loaded {
    /// A stored record as a session: its data, or an empty session when it does not decode.
    /// Django does the same (and logs "Session data corrupted"); the raw value stays the
    /// version, so the next save overwrites the bad record.
    pub(crate) fn from_stored(
        key: &str,
        raw: String,
        decoded: Result<impl Into<Arc<Data>>, crate::codec::DecodeError>,
    ) -> Loaded {
        Loaded { data: data_or_empty(key, decoded), version: Version(raw) }
    }
}

/// The decoded data, or an empty map (logged) when it could not be decoded.
pub(crate) fn data_or_empty(key: &str, decoded: Result<impl Into<Arc<Data>>, crate::codec::DecodeError>) -> Arc<Data> {
    decoded.map(Into::into).unwrap_or_else(|e| {
        tracing::warn!(key = %crate::key::redact(key), error = %e, "session data corrupted; reading as empty");
        Arc::default()
    })
}

/// A record to write.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The session data.
    pub data: &'a Data,
    /// When the record stops being valid.
    pub expire_date: DateTime<Utc>,
}

/// Result of [`SessionStore::create`].
#[derive(Debug, Clone)]
pub enum Created {
    /// Stored; `key` goes in the cookie.
    Created {
        /// The cookie value.
        key: String,
        /// Version of what was written.
        version: Version,
    },
    /// A record with the proposed key already exists: draw another key.
    KeyTaken,
}

/// Result of [`SessionStore::save`].
#[derive(Debug, Clone)]
pub enum Saved {
    /// Written.
    Saved {
        /// The cookie value (the same key, for every engine but signed cookies).
        key: String,
        /// Version of what was written.
        version: Version,
    },
    /// The record changed (or vanished) since it was read: reload and merge.
    Conflict,
}

/// One row of a session listing (for the sessions API and CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The session key.
    pub key: String,
    /// When it expires.
    pub expire_date: DateTime<Utc>,
    /// Size of the stored data in bytes.
    pub size: usize,
}

/// A record as the sessions API shows it: expired or not, decoded or not.
#[derive(Debug)]
pub struct Inspected {
    /// The decoded data, or why it could not be decoded (a wrong `SECRET_KEY`, tampering).
    pub data: Result<Data, crate::codec::DecodeError>,
    /// When it expires (it may be in the past).
    pub expire_date: DateTime<Utc>,
    /// Size of the stored data in bytes.
    pub size: usize,
}

/// A session storage engine.
///
/// Implementations must be safe to share between requests (`Arc<dyn SessionStore>`).
/// `now` is passed in rather than read so expiry is testable with a fake clock.
#[async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug + 'static {
    /// The record for `key`, or `None` if there is none or it has expired.
    async fn load(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Loaded>, StoreError>;

    /// Insert a new record under `key`; never overwrites an existing one.
    async fn create(&self, key: &str, record: Record<'_>) -> Result<Created, StoreError>;

    /// Update the record for `key` if it is still at `expected`; never creates one.
    async fn save(&self, key: &str, record: Record<'_>, expected: &Version) -> Result<Saved, StoreError>;

    /// Delete the record for `key` (no error if there is none).
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Whether a record exists for `key`, expired or not (Django's `exists`, used to avoid
    /// key collisions).
    async fn exists(&self, key: &str) -> Result<bool, StoreError>;

    /// Delete every record that expired before `now`; returns how many were deleted.
    async fn clear_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// The record for `key` whether expired or not, with its decode result (sessions API).
    async fn inspect(&self, key: &str) -> Result<Option<Inspected>, StoreError> {
        let _ = key;
        Err(StoreError::Unsupported("inspecting sessions with this store".into()))
    }

    /// Up to `limit` records ordered by expiry, only expired ones if `expired_only`.
    async fn list(&self, now: DateTime<Utc>, expired_only: bool, limit: u64) -> Result<Vec<Summary>, StoreError> {
        let _ = (now, expired_only, limit);
        Err(StoreError::Unsupported("listing sessions with this store".into()))
    }

    /// Number of records, expired ones included.
    async fn count(&self) -> Result<u64, StoreError> {
        Err(StoreError::Unsupported("counting sessions with this store".into()))
    }

    /// [`SessionStore::clear_expired`] in batches, calling `progress` with the running total
    /// after each one (the CLI shows it on large tables).
    async fn clear_expired_with_progress(
        &self,
        now: DateTime<Utc>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, StoreError> {
        let n = self.clear_expired(now).await?;
        progress(n);
        Ok(n)
    }

    /// Whether a key sent by a client is worth looking up in this store. Database-like stores
    /// take Django's generated keys only ([`crate::key::is_valid`]); the signed-cookie engine,
    /// whose "key" is the signed data itself, overrides this.
    fn accepts_key(&self, key: &str) -> bool {
        crate::key::is_valid(key)
    }

    /// Whether records live in this process only (the in-process group commit is then the
    /// whole story; for shared stores compare-and-set does the cross-process part).
    fn is_shared(&self) -> bool {
        true
    }
}
