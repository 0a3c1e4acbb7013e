//! Reads on the caller's thread, from a small pool of read-only rusqlite connections.
//!
//! A session read is one primary-key lookup of a few microseconds. Sending it to another thread
//! (as sqlx does for every SQLite statement) costs more than the query; in WAL mode a reader
//! never waits for the writer, so running it inline on the async worker is both faster and
//! safe. The connection mutex is held only to take or return a connection.

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::PathBuf;
use std::time::Duration;

/// Connections kept for reuse; more may be opened under a burst and are then closed.
const KEEP: usize = 8;

#[derive(Debug)]
pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(path: PathBuf) -> Self {
        Self { path, idle: Mutex::new(Vec::new()) }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        // Only a WAL reset or recovery makes a WAL reader wait; bound it.
        conn.busy_timeout(Duration::from_millis(500))?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(conn)
    }

    /// Run `f` with a connection.
    pub(super) fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let taken = self.idle.lock().pop();
        let conn = match taken {
            Some(c) => c,
            None => self.open()?,
        };
        let result = f(&conn);
        let mut idle = self.idle.lock();
        if idle.len() < KEEP {
            idle.push(conn);
        }
        result
    }

    /// `session_data` and `expire_date` of a live row.
    pub(super) fn load(&self, key: &str, now: &str) -> rusqlite::Result<Option<(String, String)>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT session_data, expire_date FROM django_session WHERE session_key = ?1 AND expire_date > ?2",
            )?
            .query_row((key, now), |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
        })
    }

    /// Whether a row exists, expired or not.
    pub(super) fn exists(&self, key: &str) -> rusqlite::Result<bool> {
        self.with(|c| {
            c.prepare_cached("SELECT 1 FROM django_session WHERE session_key = ?1")?
                .query_row([key], |_| Ok(()))
                .optional()
                .map(|r| r.is_some())
        })
    }
}
