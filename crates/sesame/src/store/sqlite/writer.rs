//! Group commit on the callers' threads (flat combining).
//!
//! SQLite has one writer at a time. Instead of every request taking the write lock for its own
//! transaction, a request queues its write and, when the write connection is free, takes it
//! and commits every write queued at that moment in one transaction, answering each after the
//! commit. Under load one commit carries many sessions; alone, a write is committed at once,
//! on the request's own thread. Each statement keeps its own outcome (a key collision or a lost
//! compare-and-set affects only its request). After a commit the connection is handed to the
//! oldest queued write, so no request keeps committing for others.
//!
//! An earlier version committed on a dedicated writer thread. Every write then crossed threads
//! twice, and on a 2-core machine each crossing waits for a core whenever something else is
//! busy: one core's worth of unrelated CPU load raised the p99 of exact counter writes 3.9×,
//! while reads, which already ran inline, did not move.

use parking_lot::Mutex;
use rusqlite::{Connection, ErrorCode};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Notify};

/// Most writes carried by one commit.
const MAX_GROUP: usize = 256;

/// How long a queued write waits for its turn before looking at the connection itself (only
/// matters if the request it was handed to was cancelled in that instant).
const TURN_TIMEOUT: Duration = Duration::from_millis(5);

pub(super) enum Write {
    /// INSERT; `true` if created, `false` if the key exists.
    Create { key: String, data: String, expire: String },
    /// Compare-and-set UPDATE; `true` if the row was at `expected`.
    Save { key: String, data: String, expire: String, expected: String },
    /// DELETE.
    Delete { key: String },
}

struct Queued {
    write: Write,
    reply: oneshot::Sender<Result<bool, String>>,
    /// Woken when this write is the oldest queued and the connection is free.
    turn: Arc<Notify>,
}

/// The write connection and the writes waiting for it.
#[derive(Clone)]
pub(super) struct Writer(Arc<Inner>);

struct Inner {
    conn: Mutex<Connection>,
    queue: Mutex<VecDeque<Queued>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("queued", &self.0.queue.lock().len()).finish()
    }
}

impl Writer {
    /// Open the write connection.
    pub(super) fn start(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        // When another process (the CLI's sweep, a second server) holds the write lock, retry
        // every 100 µs for up to 10 s. SQLite's default handler backs off to sleeps of up to
        // 100 ms, so a write could wait long after the lock was free again.
        conn.busy_handler(Some(retry_soon))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(Self(Arc::new(Inner { conn: Mutex::new(conn), queue: Mutex::new(VecDeque::new()) })))
    }

    /// Queue a write and wait for its commit, committing it (with whatever else is queued)
    /// here whenever the connection is free.
    pub(super) async fn write(&self, write: Write) -> Result<bool, String> {
        let (reply, mut answer) = oneshot::channel();
        let turn = Arc::new(Notify::new());
        self.0.queue.lock().push_back(Queued { write, reply, turn: turn.clone() });
        loop {
            self.commit_group_if_free();
            tokio::select! {
                biased;
                outcome = &mut answer => return outcome.map_err(|_| "the SQLite write was dropped".to_owned())?,
                () = turn.notified() => {}
                () = tokio::time::sleep(TURN_TIMEOUT) => {}
            }
        }
    }

    /// If nobody holds the connection: commit the queued writes (up to [`MAX_GROUP`]) in one
    /// transaction, answer them, and wake the oldest write still queued.
    fn commit_group_if_free(&self) {
        let Some(conn) = self.0.conn.try_lock() else { return };
        let group: Vec<Queued> = {
            let mut queue = self.0.queue.lock();
            let n = queue.len().min(MAX_GROUP);
            queue.drain(..n).collect()
        };
        if !group.is_empty() {
            let outcomes = commit_group(&conn, &group);
            for (queued, outcome) in group.into_iter().zip(outcomes) {
                let _ = queued.reply.send(outcome);
            }
        }
        drop(conn);
        if let Some(next) = self.0.queue.lock().front() {
            next.turn.notify_one();
        }
    }
}

/// Busy handler: retry every 100 µs, for up to 10 s.
pub(super) fn retry_soon(attempt: i32) -> bool {
    std::thread::sleep(Duration::from_micros(100));
    attempt < 100_000
}

fn commit_group(conn: &Connection, group: &[Queued]) -> Vec<Result<bool, String>> {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return group.iter().map(|_| Err(e.to_string())).collect();
    }
    let outcomes: Vec<Result<bool, String>> = group.iter().map(|q| apply(conn, &q.write)).collect();
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
