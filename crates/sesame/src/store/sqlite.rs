//! Django's database engine on SQLite: the `django_session` table, Django's encoding.
//!
//! - `expire_date` is text in the format Django's SQLite backend writes
//!   (`YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC), so that both sides' string comparisons agree.
//! - WAL journal: readers never wait for the writer.
//! - The session hot path (load, create, save, delete) uses rusqlite: reads run inline on the
//!   caller's thread from a pool of read-only connections (`readers`), or not at all while
//!   nothing was committed since the row was last read (`rows`, `wal_stamp`); writes go to one
//!   writer thread that commits every write waiting at that moment in one transaction
//!   (`writer`: group commit), while WAL checkpoints run on a thread of their own so that no
//!   write waits for one. sqlx, which hands every statement to a worker thread, serves
//!   the migrations and the sessions API (list, count, inspect), where that cost does not
//!   matter; the sweep has a blocking thread and a connection of its own (`sweep`).
//! - `synchronous = NORMAL` in WAL: a committed session survives a crash of the process; a
//!   power loss can lose the last commits (never corrupt the file). See the README.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

use std::sync::Arc;

use super::{Created, Inspected, Loaded, Record, Saved, SessionStore, Summary, Version};

mod checkpoint;
mod kept_open;
mod pacer;
mod readers;
mod rows;
mod shred;
mod swap;
mod sweep;
mod timeline;
mod wal_stamp;
mod writer;
use crate::codec::Codec;
use crate::error::StoreError;

/// Sessions in SQLite's `django_session` table.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    hot_readers: Arc<readers::Readers>,
    hot_writer: writer::Writer,
    /// Rows as last read, served while the database is unchanged ([`rows`], [`wal_stamp`]).
    rows: Arc<rows::Rows>,
    codec: Codec,
    /// The database file (the sweep opens its own connection to it).
    path: std::path::PathBuf,
    /// The WAL's stamp and length, shared with the writer, the row cache and the sweep.
    wal: Option<Arc<wal_stamp::WalStamp>>,
    /// Whether a sweep may swap a nearly all-expired table ([`swap`]) instead of deleting
    /// from it in batches.
    swap: bool,
}

impl SqliteStore {
    /// Open (creating the file if needed) the database at `url` (`sqlite:path`,
    /// `sqlite://path?mode=rwc`, ...) and create `django_session` if it is missing.
    ///
    /// # Errors
    /// When the file cannot be opened or created, or the migration fails.
    pub async fn connect(url: &str, codec: Codec) -> Result<Self, StoreError> {
        Self::open(url, codec, true).await
    }

    /// Open an existing database without creating or migrating anything (for tools such as the
    /// CLI, which should report a wrong `DATABASE_URL` rather than create an empty database).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the file does not exist; [`StoreError::Database`]
    /// otherwise.
    pub async fn connect_existing(url: &str, codec: Codec) -> Result<Self, StoreError> {
        Self::open(url, codec, false).await
    }

    /// Whether `clear_expired` may clear a table that is nearly all expired (at least 100,000
    /// expired rows, at most 1,000 live) by moving the live rows to a fresh table and freeing
    /// the old one a batch at a time (the default: a million rows in about 8 s, with one hold
    /// of the write lock of a few milliseconds and then 1 ms batches), or must always delete
    /// the expired rows in place (`SESSION_CLEAR_EXPIRED_SWAP = false`: 1 ms batches too, but
    /// a page of WAL per row, 23–26 s for a million).
    #[must_use]
    pub fn swapping_when_mostly_expired(mut self, swap: bool) -> Self {
        self.swap = swap;
        self
    }

    async fn open(url: &str, codec: Codec, create: bool) -> Result<Self, StoreError> {
        let base = SqliteConnectOptions::from_str(url)?;
        let path = base.get_filename().to_owned();
        if path.as_os_str() == ":memory:" || path.as_os_str().is_empty() {
            return Err(StoreError::Other(
                "an in-memory SQLite database is private to each connection: use a file".into(),
            ));
        }
        if !create && path.as_os_str() != ":memory:" && !path.exists() {
            return Err(StoreError::NotFound(format!("database file {} does not exist", path.display())));
        }
        let opts = base
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .statement_cache_capacity(64);
        let writer = SqlitePoolOptions::new().max_connections(1).min_connections(1).connect_with(opts.clone()).await?;
        if create {
            sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        }
        let readers = std::thread::available_parallelism().map_or(4, |n| n.get() as u32 * 2);
        let reader = SqlitePoolOptions::new().max_connections(readers).connect_with(opts.read_only(true)).await?;
        // A read makes SQLite create the WAL-index (`-shm`) if no connection has yet.
        sqlx::query("SELECT count(*) FROM sqlite_master").execute(&writer).await?;
        let stamps = wal_stamp::WalStamp::open(&path).map(Arc::new);
        let hot_writer = writer::Writer::start(&path, stamps.clone())?;
        let hot_readers = Arc::new(readers::Readers::new(path.clone()));
        let rows = Arc::new(rows::Rows::new(stamps.clone()));
        Ok(Self { reader, writer, hot_readers, hot_writer, rows, codec, path, wal: stamps, swap: true })
    }

    /// The codec rows are encoded with.
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// The pool used for writes (tests and tools that seed rows).
    pub fn writer_pool(&self) -> &SqlitePool {
        &self.writer
    }
}

/// Django's SQLite text form of a UTC datetime: `str(naive_datetime)`.
///
/// Every session read formats "now" for its `expire_date > ?` comparison; writing the digits
/// directly costs a fraction of chrono's `format`, which parses its format string each time
/// (it showed in `perf` of the read path at about 1% of the server's CPU).
pub fn format_datetime(dt: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let naive = dt.naive_utc();
    let micros = dt.timestamp_subsec_micros();
    if !(0..=9999).contains(&naive.year()) || micros >= 1_000_000 {
        // Outside Django's range, or a leap second: chrono's general formatting.
        return if micros == 0 {
            naive.format("%Y-%m-%d %H:%M:%S").to_string()
        } else {
            naive.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
        };
    }
    let mut out = String::with_capacity(26);
    let mut push = |value: u32, width: usize, sep: Option<char>| {
        if let Some(c) = sep {
            out.push(c);
        }
        let mut digits = [b'0'; 6];
        let mut v = value;
        for d in digits[..width].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.push_str(std::str::from_utf8(&digits[..width]).expect("ASCII digits"));
    };
    push(naive.year() as u32, 4, None);
    push(naive.month(), 2, Some('-'));
    push(naive.day(), 2, Some('-'));
    push(naive.hour(), 2, Some(' '));
    push(naive.minute(), 2, Some(':'));
    push(naive.second(), 2, Some(':'));
    if micros != 0 {
        push(micros, 6, Some('.'));
    }
    out
}

/// Parse an `expire_date` as Django's SQLite backend writes it.
pub fn parse_datetime(s: &str) -> Result<DateTime<Utc>, StoreError> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .map(|n| n.and_utc())
        .or_else(|_| crate::expiry::parse_iso(s).ok_or(()))
        .map_err(|_| StoreError::BadExpireDate(s.to_owned()))
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn load(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Loaded>, StoreError> {
        let now = format_datetime(now);
        // Taken before the query: a commit after it makes the stamp differ, never the reverse.
        let stamp = self.rows.stamp();
        if let Some(known) = stamp.as_ref().and_then(|s| self.rows.get(key, s, &now)) {
            return Ok(known.map(|(raw, data)| Loaded { data, version: Version(raw) }));
        }
        let row = self.hot_readers.load(key, &now)?;
        Ok(row.map(|(raw, expire_date)| {
            let decoded = self.rows.decode(&self.codec, key, &raw, expire_date, stamp);
            Loaded::from_stored(key, raw, decoded)
        }))
    }

    async fn create(&self, key: &str, record: Record<'_>) -> Result<Created, StoreError> {
        let encoded = self.codec.encode(record.data);
        let w = writer::Write::Create {
            key: key.to_owned(),
            data: encoded.clone(),
            expire: format_datetime(record.expire_date),
        };
        Ok(if self.hot_writer.write(w).await.map_err(StoreError::Other)? {
            Created::Created { key: key.to_owned(), version: Version(encoded) }
        } else {
            Created::KeyTaken
        })
    }

    async fn save(&self, key: &str, record: Record<'_>, expected: &Version) -> Result<Saved, StoreError> {
        let encoded = self.codec.encode(record.data);
        let w = writer::Write::Save {
            key: key.to_owned(),
            data: encoded.clone(),
            expire: format_datetime(record.expire_date),
            expected: expected.0.clone(),
        };
        Ok(if self.hot_writer.write(w).await.map_err(StoreError::Other)? {
            Saved::Saved { key: key.to_owned(), version: Version(encoded) }
        } else {
            Saved::Conflict
        })
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.hot_writer.write(writer::Write::Delete { key: key.to_owned() }).await.map_err(StoreError::Other)?;
        self.rows.forget(key);
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.hot_readers.exists(key)?)
    }

    async fn clear_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.clear_expired_with_progress(now, &|_| ()).await
    }

    async fn clear_expired_with_progress(
        &self,
        now: DateTime<Utc>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, StoreError> {
        let (now, path, wal, swap) = (format_datetime(now), self.path.clone(), self.wal.clone(), self.swap);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let sweep = tokio::task::spawn_blocking(move || {
            sweep::run(&path, &now, wal, swap, |total| {
                let _ = tx.send(total);
            })
        });
        while let Some(total) = rx.recv().await {
            progress(total);
        }
        match sweep.await {
            Ok(result) => Ok(result?),
            Err(e) => Err(StoreError::Other(format!("the sweep thread failed: {e}"))),
        }
    }

    async fn inspect(&self, key: &str) -> Result<Option<Inspected>, StoreError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT session_data, expire_date FROM django_session WHERE session_key = ?1")
                .bind(key)
                .fetch_optional(&self.reader)
                .await?;
        row.map(|(raw, expire)| {
            Ok(Inspected {
                data: self.codec.decode(&raw).map(|d| d.data),
                expire_date: parse_datetime(&expire)?,
                size: raw.len(),
            })
        })
        .transpose()
    }

    async fn list(&self, now: DateTime<Utc>, expired_only: bool, limit: u64) -> Result<Vec<Summary>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // expire_date <= now: the same boundary load() uses (a row is live while > now).
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT session_key, expire_date, length(session_data) FROM django_session \
             WHERE (?1 = 0 OR expire_date <= ?2) ORDER BY expire_date, session_key LIMIT ?3",
        )
        .bind(expired_only)
        .bind(format_datetime(now))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(key, expire, size)| {
                Ok(Summary { key, expire_date: parse_datetime(&expire)?, size: usize::try_from(size).unwrap_or(0) })
            })
            .collect()
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM django_session").fetch_one(&self.reader).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone};

    #[test]
    fn datetimes_match_djangos_sqlite_text() {
        let dt = Utc.with_ymd_and_hms(2026, 12, 10, 2, 19, 59).unwrap();
        assert_eq!(format_datetime(dt), "2026-12-10 02:19:59");
        let dt2 = dt + chrono::TimeDelta::microseconds(123_456);
        assert_eq!(format_datetime(dt2), "2026-12-10 02:19:59.123456");
        assert_eq!(parse_datetime("2026-12-10 02:19:59").unwrap(), dt);
        assert_eq!(parse_datetime("2026-12-10 02:19:59.123456").unwrap(), dt2);
        assert!(format_datetime(dt) < format_datetime(dt2), "text order is time order");
    }

    #[test]
    fn the_fast_format_is_chronos_format() {
        let chrono_format = |dt: DateTime<Utc>| {
            let fmt = if dt.timestamp_subsec_micros() == 0 { "%Y-%m-%d %H:%M:%S" } else { "%Y-%m-%d %H:%M:%S%.6f" };
            dt.naive_utc().format(fmt).to_string()
        };
        let mut dt = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap();
        // Across years 1..9999 with varied fields and fractions (including 000001 and 999999).
        for i in 0..20_000i64 {
            dt += chrono::TimeDelta::seconds(15_811_207 + i) + chrono::TimeDelta::microseconds((i * 7919) % 1_000_000);
            if dt.year() > 9999 {
                break;
            }
            assert_eq!(format_datetime(dt), chrono_format(dt));
        }
        let edge = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap() + chrono::TimeDelta::microseconds(999_999);
        assert_eq!(format_datetime(edge), "9999-12-31 23:59:59.999999");
        let tiny = Utc.with_ymd_and_hms(2000, 1, 2, 3, 4, 5).unwrap() + chrono::TimeDelta::microseconds(1);
        assert_eq!(format_datetime(tiny), "2000-01-02 03:04:05.000001");
    }
}
