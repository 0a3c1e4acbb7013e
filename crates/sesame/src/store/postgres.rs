//! Django's database engine on PostgreSQL: the `django_session` table exactly as Django's
//! migration creates it (`timestamp with time zone`, the `_like` index), Django's encoding.
//!
//! - The table is created if missing (idempotent DDL under an advisory lock, see
//!   `migrations/postgres/`); a table Django already created is used untouched.
//! - `save` is a compare-and-set on the encoded `session_data` (`UPDATE ... WHERE
//!   session_data = $expected`): PostgreSQL's row lock makes it atomic across any number of
//!   server processes, with no schema change.
//! - The session hot path (load, create, save, delete, exists) runs on a few tokio-postgres
//!   connections that pipeline concurrent requests (`hot`); sqlx serves the migrations and
//!   the sessions API.
//! - `clear_expired` deletes in batches of [`SWEEP_BATCH`] keys, skipping rows a live request
//!   holds locked, so a sweep of a large table never blocks logins for its whole duration.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

use super::{Created, Inspected, Loaded, Record, Saved, SessionStore, Summary, Version};

mod hot;
use crate::codec::Codec;
use crate::error::StoreError;

/// Rows deleted per statement by [`PostgresStore::clear_expired`].
pub const SWEEP_BATCH: i64 = 5_000;

/// The idempotent DDL for `django_session` (Django's `sqlmigrate sessions 0001`), in one
/// transaction under an advisory lock: two servers starting at once would otherwise race
/// inside `CREATE TABLE IF NOT EXISTS` (a unique violation in `pg_type`). The lock key is any
/// constant; this one spells "sesame" in ASCII. One simple-protocol string rather than
/// statements on a `Transaction`, whose futures are not `Send` for every lifetime and would
/// keep `connect` out of `tokio::spawn`.
const DDL: &str = concat!(
    "BEGIN;\nSELECT pg_advisory_xact_lock(126879564655973);\n",
    include_str!("../../migrations/postgres/20240101000000_django_session.sql"),
    "COMMIT;\n"
);

/// Sessions in PostgreSQL's `django_session` table.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    hot: std::sync::Arc<hot::Hot>,
    codec: Codec,
    /// Decoded data of recently read rows, reused while the stored bytes are unchanged.
    decoded: std::sync::Arc<crate::codec::DecodeCache>,
}

impl PostgresStore {
    /// Connect to `url` (`postgres://user[:password]@host[:port]/database`) and create
    /// `django_session` if it is missing.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the server cannot be reached or the DDL fails.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo() -> Result<(), sesame::StoreError> {
    /// use sesame::{codec::Codec, store::PostgresStore, Sessions, Settings};
    /// let settings = Settings::with_secret_key("secret");
    /// let codec = Codec::new(&settings.secret_key, &settings.secret_key_fallbacks);
    /// let store = PostgresStore::connect("postgres://postgres@127.0.0.1:5432/app", codec).await?;
    /// let sessions = Sessions::new(std::sync::Arc::new(store), settings);
    /// # let _ = sessions; Ok(()) }
    /// ```
    pub async fn connect(url: &str, codec: Codec) -> Result<Self, StoreError> {
        Self::open(url, codec, true).await
    }

    /// Connect without creating anything (for tools such as the CLI, which should report a
    /// wrong `DATABASE_URL` rather than create a table in the wrong database).
    ///
    /// Connection settings such as a `search_path` go in the URL's `options` parameter
    /// (`postgres://host/db?options=-c%20search_path%3Dmyschema`), as libpq takes them.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the database has no `django_session` table.
    pub async fn connect_existing(url: &str, codec: Codec) -> Result<Self, StoreError> {
        Self::open(url, codec, false).await
    }

    async fn open(url: &str, codec: Codec, create: bool) -> Result<Self, StoreError> {
        let opts = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts.statement_cache_capacity(64))
            .await?;
        let hot = std::sync::Arc::new(hot::Hot::new(url)?);
        let store = Self { pool, hot, codec, decoded: Default::default() };
        if create {
            store.migrate().await?;
        } else {
            let (exists,): (bool,) =
                sqlx::query_as("SELECT to_regclass('django_session') IS NOT NULL").fetch_one(&store.pool).await?;
            if !exists {
                return Err(StoreError::NotFound("the database has no django_session table".into()));
            }
        }
        Ok(store)
    }

    /// Create `django_session` and its indexes if missing (safe to run from several processes
    /// at once, and against a table Django created).
    ///
    /// # Errors
    /// [`StoreError::Database`] when the DDL fails (e.g. no `CREATE` privilege).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::raw_sql(DDL).execute(&self.pool).await?;
        Ok(())
    }

    /// The codec rows are encoded with.
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// The connection pool (tests and tools that seed rows).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn load(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Loaded>, StoreError> {
        Ok(self.hot.load(key, now).await?.map(|raw| {
            let decoded = self.decoded.decode(&self.codec, key, &raw);
            Loaded::from_stored(key, raw, decoded)
        }))
    }

    async fn create(&self, key: &str, record: Record<'_>) -> Result<Created, StoreError> {
        let encoded = self.codec.encode(record.data);
        // ON CONFLICT DO NOTHING rather than catching the unique violation: a failed statement
        // would be logged by the server as an error on every (rare) collision.
        Ok(if self.hot.create(key, &encoded, record.expire_date).await? {
            Created::Created { key: key.to_owned(), version: Version(encoded) }
        } else {
            Created::KeyTaken
        })
    }

    async fn save(&self, key: &str, record: Record<'_>, expected: &Version) -> Result<Saved, StoreError> {
        let encoded = self.codec.encode(record.data);
        Ok(if self.hot.save(key, &encoded, record.expire_date, &expected.0).await? {
            Saved::Saved { key: key.to_owned(), version: Version(encoded) }
        } else {
            Saved::Conflict
        })
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.hot.delete(key).await?;
        self.decoded.forget(key);
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.hot.exists(key).await
    }

    async fn clear_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.clear_expired_with_progress(now, &|_| ()).await
    }

    async fn clear_expired_with_progress(
        &self,
        now: DateTime<Utc>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            // One short statement per batch (Django's single DELETE on a large table holds
            // its locks for the whole sweep: ticket #23830). SKIP LOCKED: a row a request is
            // saving right now is left for the next sweep instead of making the sweep wait.
            let done = sqlx::query(
                "DELETE FROM django_session WHERE session_key IN \
                 (SELECT session_key FROM django_session WHERE expire_date < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            )
            .bind(now)
            .bind(SWEEP_BATCH)
            .execute(&self.pool)
            .await?;
            total += done.rows_affected();
            progress(total);
            if done.rows_affected() < SWEEP_BATCH as u64 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    async fn inspect(&self, key: &str) -> Result<Option<Inspected>, StoreError> {
        let row: Option<(String, DateTime<Utc>)> =
            sqlx::query_as("SELECT session_data, expire_date FROM django_session WHERE session_key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(raw, expire_date)| Inspected {
            data: self.codec.decode(&raw).map(|d| d.data),
            expire_date,
            size: raw.len(),
        }))
    }

    async fn list(&self, now: DateTime<Utc>, expired_only: bool, limit: u64) -> Result<Vec<Summary>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // expire_date <= now: the same boundary load() uses (a row is live while > now).
        let rows: Vec<(String, DateTime<Utc>, i32)> = sqlx::query_as(
            "SELECT session_key, expire_date, octet_length(session_data) FROM django_session \
             WHERE (NOT $1 OR expire_date <= $2) ORDER BY expire_date, session_key LIMIT $3",
        )
        .bind(expired_only)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(key, expire_date, size)| Summary { key, expire_date, size: usize::try_from(size).unwrap_or(0) })
            .collect())
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM django_session").fetch_one(&self.pool).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
