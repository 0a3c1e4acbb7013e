//! One writer thread with group commit.
//!
//! SQLite has one writer at a time. Instead of every request taking the write lock for its own
//! transaction, requests hand their write to this thread, which runs every write waiting at that
//! moment in one transaction and answers each after the commit. Under load one commit carries
//! many sessions; alone, a write is committed at once. Each statement keeps its own outcome
//! (a key collision or a lost compare-and-set affects only its request).
//!
//! WAL checkpoints (copying committed pages back into the database file, with an fsync) do not
//! run on this thread: SQLite's auto-checkpoint would run one inside the COMMIT of whichever
//! group crossed 1,000 WAL pages, before that group is answered. While a `clearsessions`
//! sweep fills the WAL, that was nearly every group, and each counter write waited for a
//! checkpoint of the sweep's pages. Here this thread wakes a checkpointer thread every
//! [`CHECKPOINT_EVERY`] writes, which copies without blocking writers and keeps the WAL short
//! (see `checkpoint.rs`); only if the checkpoints fall so far behind that the WAL passes its
//! ceiling (96 MB) does this thread copy it itself (`checkpoint::bound`).
//!
//! Committing on the requests' own threads instead (flat combining) was tried and measured:
//! it made writes immune to unrelated CPU load, but SQLite's auto-checkpoint and the wait for
//! a write lock held by another process (a `clearsessions` sweep) then ran on async workers
//! and stalled reads; with them moved off, the sweep of 1M rows took 22 s instead of 5. So
//! did committing inline only when the lock was free at that instant and handing the rest to
//! this thread: every write then took the lock on its own, and a sweep, which waits for a free
//! lock, took 62 s. A thread of its own keeps both off the request path.

use rusqlite::{Connection, ErrorCode};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tokio::sync::oneshot;

use super::checkpoint::{self, Checkpointer};
use super::wal_stamp::WalStamp;

/// Most writes carried by one commit.
const MAX_GROUP: usize = 256;

/// Writes between two checkpoints. A session write adds about three pages to the WAL, so this
/// keeps it near SQLite's default auto-checkpoint of 1,000 pages under the server's own writes.
const CHECKPOINT_EVERY: usize = 300;

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
    /// Open the write connection and start the thread and its checkpointer; `wal` tells the
    /// checkpointer the WAL's length.
    pub(super) fn start(path: &Path, wal: Option<Arc<WalStamp>>) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        // When another process (the CLI's sweep, a second server) holds the write lock, retry
        // every 100 µs for up to 10 s. SQLite's default handler backs off to sleeps of up to
        // 100 ms, so a write could wait long after the lock was free again.
        conn.busy_handler(Some(retry_soon))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.set_prepared_statement_cache_capacity(16);
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = Checkpointer::open(path, wal.clone())?;
        let (tx, rx) = mpsc::channel::<(Write, Reply)>();
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map(drop)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
        };
        spawn("sesame-sqlite-checkpoint", Box::new(move || checkpoints(&checkpointer, &woken)))?;
        spawn("sesame-sqlite-writer", Box::new(move || run(conn, wal.as_deref(), rx, wake)))?;
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

/// Checkpoint whenever the writer asks, until the writer is gone.
fn checkpoints(checkpointer: &Checkpointer, woken: &mpsc::Receiver<()>) {
    while woken.recv().is_ok() {
        checkpointer.run();
    }
}

fn run(conn: Connection, wal: Option<&WalStamp>, rx: mpsc::Receiver<(Write, Reply)>, checkpoint: mpsc::SyncSender<()>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut written = 0;
    while let Ok(first) = rx.recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let outcomes = commit_group(&conn, &group);
        written += group.len();
        for ((_, reply), outcome) in group.drain(..).zip(outcomes) {
            let _ = reply.send(outcome);
        }
        if let Some(wal) = wal {
            checkpoint::bound(&conn, wal);
        }
        if written >= CHECKPOINT_EVERY {
            written = 0;
            // Full: a checkpoint is already pending, which covers this one.
            let _ = checkpoint.try_send(());
        }
    }
}

fn commit_group(conn: &Connection, group: &[(Write, Reply)]) -> Vec<Result<bool, String>> {
    let started = std::time::Instant::now();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return group.iter().map(|_| Err(e.to_string())).collect();
    }
    let locked = started.elapsed();
    let outcomes: Vec<Result<bool, String>> = group.iter().map(|(w, _)| apply(conn, w)).collect();
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            tracing::trace!(
                at_us = super::timeline::began_us(started.elapsed()),
                wait_us = locked.as_micros() as u64,
                took_us = started.elapsed().as_micros() as u64,
                writes = group.len(),
                "commit"
            );
            outcomes
        }
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
