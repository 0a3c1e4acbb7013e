//! One writer thread with group commit.
//!
//! SQLite has one writer at a time. Instead of every request taking the write lock for its own
//! transaction, requests hand their write to this thread, which runs every write waiting at that
//! moment in one transaction and answers each after the commit. Under load one commit carries
//! many sessions; alone, a write is committed at once. Each statement keeps its own outcome
//! (a key collision or a lost compare-and-set affects only its request).
//!
//! Committing on the requests' own threads instead (flat combining) was tried and measured:
//! it made writes immune to unrelated CPU load, but SQLite's auto-checkpoint and the wait for
//! a write lock held by another process (a `clearsessions` sweep) then ran on async workers
//! and stalled reads; with them moved off, the sweep of 1M rows took 22 s instead of 5. A
//! thread of its own keeps both off the request path.

use rusqlite::{Connection, ErrorCode};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Most writes carried by one commit.
const MAX_GROUP: usize = 256;

pub(super) enum Write {
    /// INSERT; `true` if created, `false` if the key exists.
    Create { key: String, data: String, expire: String },
    /// Compare-and-set UPDATE; `true` if the row was at `expected`.
    Save { key: String, data: String, expire: String, expected: String },
    /// DELETE.
    Delete { key: String },
}

type Reply = oneshot::Sender<Result<bool, String>>;

/// The sending side; the thread exits when every handle is dropped.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    tx: mpsc::Sender<(Write, Reply)>,
}

impl Writer {
    /// Open the write connection and start the thread.
    pub(super) fn start(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        // When another process (the CLI's sweep, a second server) holds the write lock, retry
        // every 100 µs for up to 10 s. SQLite's default handler backs off to sleeps of up to
        // 100 ms, so a write could wait long after the lock was free again.
        conn.busy_handler(Some(retry_soon))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.set_prepared_statement_cache_capacity(16);
        let (tx, rx) = mpsc::channel::<(Write, Reply)>();
        std::thread::Builder::new()
            .name("sesame-sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Self { tx })
    }

    /// Queue a write and wait for its commit.
    pub(super) async fn write(&self, w: Write) -> Result<bool, String> {
        let (reply, answer) = oneshot::channel();
        self.tx.send((w, reply)).map_err(|_| "the SQLite writer thread has stopped".to_owned())?;
        answer.await.map_err(|_| "the SQLite writer thread has stopped".to_owned())?
    }
}

/// Busy handler: retry every 100 µs, for up to 10 s.
pub(super) fn retry_soon(attempt: i32) -> bool {
    std::thread::sleep(Duration::from_micros(100));
    attempt < 100_000
}

fn run(conn: Connection, rx: mpsc::Receiver<(Write, Reply)>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Ok(first) = rx.recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let outcomes = commit_group(&conn, &group);
        for ((_, reply), outcome) in group.drain(..).zip(outcomes) {
            let _ = reply.send(outcome);
        }
    }
}

fn commit_group(conn: &Connection, group: &[(Write, Reply)]) -> Vec<Result<bool, String>> {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return group.iter().map(|_| Err(e.to_string())).collect();
    }
    let outcomes: Vec<Result<bool, String>> = group.iter().map(|(w, _)| apply(conn, w)).collect();
    match conn.execute_batch("COMMIT") {
        Ok(()) => outcomes,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            group.iter().map(|_| Err(format!("commit failed: {e}"))).collect()
        }
    }
}

fn apply(conn: &Connection, w: &Write) -> Result<bool, String> {
    let result = match w {
        Write::Create { key, data, expire } => conn
            .prepare_cached("INSERT INTO django_session (session_key, session_data, expire_date) VALUES (?1, ?2, ?3)")
            .and_then(|mut st| st.execute((key, data, expire))),
        Write::Save { key, data, expire, expected } => conn
            .prepare_cached(
                "UPDATE django_session SET session_data = ?1, expire_date = ?2 \
                 WHERE session_key = ?3 AND session_data = ?4",
            )
            .and_then(|mut st| st.execute((data, expire, key, expected))),
        Write::Delete { key } => conn
            .prepare_cached("DELETE FROM django_session WHERE session_key = ?1")
            .and_then(|mut st| st.execute([key])),
    };
    match result {
        Ok(rows) => Ok(rows == 1),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}
