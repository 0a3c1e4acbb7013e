//! Copying the WAL back into the database file, and keeping the WAL short, without making
//! writers wait for the copy.
//!
//! SQLite starts the WAL over (writes it from the beginning again) only when a writer begins
//! after a checkpoint has copied *all* of it back. A passive checkpoint never blocks a writer,
//! but under a steady stream of commits (the server's writer, a `clearsessions` sweep) new
//! frames land while it copies, so it never copies them all, and the WAL grows without bound.
//! Finishing the copy needs a moment with no commit. [`Checkpointer::run`] copies the bulk
//! passively; once the WAL is past [`WAL_LIMIT`], it catches up until what is left to copy is
//! short and then holds the write lock on a second connection (`BEGIN IMMEDIATE`, nothing
//! written) for as long as a passive checkpoint takes to copy that rest (0.2–1 ms, timed). The
//! next write, by anyone, then starts the WAL over.
//!
//! A checkpoint that copies everything ends with an `fsync` of the database file (and starts
//! with one of the WAL), which flushes every page earlier passive checkpoints copied without
//! one: under the lock that took 40–60 ms during a sweep. So both files are flushed first,
//! without the lock, and the `fsync`s under it find little left to write.
//!
//! Before, the server's writer thread ran that last checkpoint itself, whatever was left to
//! copy. During a sweep, whose WAL grows fast, it took up to 98 ms; writes made at a steady
//! rate during the sweep waited 16–25 ms at p99 (`bench/clearsessions.sh` with `RATE`, three
//! runs), and since the sweep kept committing while the writer copied, the WAL seldom started
//! over and grew past 550 MB. Now: 2.0–2.4 ms at p99, and 67–71 MB.

use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::kept_open;
use super::wal_stamp::WalStamp;
use super::writer::retry_soon;

/// WAL length in frames (pages; 64 MB of 4 KB pages) past which a checkpoint is finished under
/// the write lock, so that the WAL starts over.
pub(super) const WAL_LIMIT: u32 = 16_384;

/// WAL length (96 MB) past which a writer (the server's writer thread, a sweep) stops to copy
/// the WAL itself, see [`bound`].
pub(super) const WAL_CEILING: u32 = 24_576;

/// Frames (4 MB) left to copy that are short enough to copy under the write lock.
const SHORT_BACKLOG: u32 = 1_024;

/// Most flushes (each followed by catching up on what was written during it) before the lock.
const FLUSH_ROUNDS: usize = 3;

/// Copies tried again under the lock when a reader held back the first (see `finish`).
const FINISH_RETRIES: usize = 5;

/// Most passive checkpoints run, one after the other, to bring the backlog down to
/// [`SHORT_BACKLOG`] before the lock is taken anyway (commits landing faster than a passive
/// checkpoint copies them, on a busy machine, must not let the WAL grow without bound).
const CATCH_UP_ROUNDS: usize = 8;

/// Two connections to one database: one copies, the other holds the write lock while the last
/// of the WAL is copied.
pub(super) struct Checkpointer {
    path: std::path::PathBuf,
    conn: Connection,
    lock: Connection,
    wal: Option<Arc<WalStamp>>,
    /// [`WAL_LIMIT`], smaller in tests.
    pub(super) limit: u32,
}

impl Checkpointer {
    /// `wal` tells how long the WAL is; without it the WAL is only ever copied passively.
    pub(super) fn open(path: &Path, wal: Option<Arc<WalStamp>>) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        // Another checkpoint under way (the other process's): leave the work to it.
        conn.busy_timeout(Duration::ZERO)?;
        let lock = Connection::open(path)?;
        lock.busy_handler(Some(retry_soon))?;
        Ok(Self { path: path.to_owned(), conn, lock, wal, limit: WAL_LIMIT })
    }

    /// Copy what can be copied without blocking anyone; if the WAL is past [`WAL_LIMIT`],
    /// catch up and finish the copy so that it starts over. Failures are logged: the next
    /// call retries.
    pub(super) fn run(&self) {
        if let Err(e) = passive(&self.conn) {
            tracing::debug!(error = %e, "WAL checkpoint skipped; the next one will retry");
            return;
        }
        let Some(wal) = &self.wal else { return };
        if wal.length().is_none_or(|l| l.frames <= self.limit) {
            return;
        }
        // What the lock covers is what lands after the last of these rounds. The flush (which
        // takes 80-170 ms during a sweep) is one of them: what is written meanwhile is copied
        // by the next round, and flushed by the next, shorter, flush. Without that second
        // round the server's checkpointer, flushing while a sweep wrote, held the lock 21 ms
        // to copy and `fsync` what the sweep had written during its flush.
        for _ in 0..FLUSH_ROUNDS {
            if !self.catch_up(wal) {
                return;
            }
            if let Err(e) = self.flush() {
                // Only slower: the checkpoint under the lock then does these fsyncs itself.
                tracing::debug!(error = %e, "WAL flush before the locked checkpoint failed");
                break;
            }
            if wal.length().is_none_or(|l| l.backlog() <= SHORT_BACKLOG) {
                break;
            }
        }
        if let Err(e) = self.finish(wal) {
            tracing::warn!(error = %e, "WAL checkpoint under the write lock failed; the next one will retry");
        }
    }

    /// Copy passively until what is left is [`SHORT_BACKLOG`] or less, or [`CATCH_UP_ROUNDS`]
    /// have run. False if a checkpoint failed (another one holds the checkpoint lock).
    fn catch_up(&self, wal: &WalStamp) -> bool {
        for _ in 0..CATCH_UP_ROUNDS {
            match wal.length() {
                Some(l) if l.backlog() > SHORT_BACKLOG => {
                    if passive(&self.conn).is_err() {
                        return false;
                    }
                }
                _ => break,
            }
        }
        true
    }

    /// Copy the rest of the WAL while no one can commit.
    fn finish(&self, wal: &WalStamp) -> rusqlite::Result<()> {
        let started = std::time::Instant::now();
        self.lock.execute_batch("BEGIN IMMEDIATE")?;
        let locked = started.elapsed();
        let mut copied = passive(&self.conn);
        // A reader that began just before the lock was taken can still hold a read mark one
        // commit old, which stops the copy one commit short (seen under load); it lets go
        // within microseconds, a long read excepted, so try again a few times.
        for _ in 0..FINISH_RETRIES {
            if copied.is_err() || wal.length().is_none_or(|l| l.backlog() == 0) {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
            copied = passive(&self.conn);
        }
        // An empty transaction: its rollback only releases the lock.
        self.lock.execute_batch("ROLLBACK")?;
        tracing::trace!(
            at_us = super::timeline::began_us(started.elapsed()),
            wait_us = locked.as_micros() as u64,
            held_us = (started.elapsed() - locked).as_micros() as u64,
            "locked checkpoint"
        );
        copied
    }

    /// `fsync` the WAL and the database file, outside the lock (through descriptors kept open:
    /// see `kept_open`).
    fn flush(&self) -> std::io::Result<()> {
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        kept_open::file(Path::new(&wal))?.sync_data()?;
        kept_open::file(&self.path)?.sync_data()
    }
}

/// Past [`WAL_CEILING`], copy the whole WAL back before the caller, a writer, writes again,
/// and wait for readers to move on so that the next write starts it over: the bound on the WAL
/// when the checkpoints above fall behind. They do when an `fsync` is slow: SQLite never waits
/// for the checkpoint lock, so while one checkpoint holds it, others give up at once; with
/// another process writing hundreds of megabytes to the same disk, back-to-back writes took
/// the WAL to 114 MB before the checkpointer had the lock back.
pub(super) fn bound(conn: &Connection, wal: &WalStamp) {
    let started = std::time::Instant::now();
    while wal.length().is_some_and(|l| l.frames > WAL_CEILING && l.backlog() > 0) {
        // RESTART waits (busy handler) for writers and readers; only the checkpoint lock is
        // never waited for, and reported as busy.
        match conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0)) {
            Ok(0) => return,
            Ok(_) if started.elapsed() < BOUND_WAIT => std::thread::sleep(Duration::from_millis(1)),
            Ok(_) => {
                tracing::warn!(frames = ?wal.length(), "the WAL is past its ceiling and could not be copied back; writing on");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed; the next write retries");
                return;
            }
        }
    }
}

/// Longest a writer waits in [`bound`] for another checkpoint to let go of the lock.
const BOUND_WAIT: Duration = Duration::from_secs(10);

/// Copy the WAL back as far as no reader still needs it; never waits for readers or writers
/// (blocked by another checkpoint, it leaves the work to that one).
pub(super) fn passive(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Salt-1 of the WAL header, which SQLite changes each time the WAL starts over (read
    /// again when a commit was rewriting the header).
    fn salt(wal: &WalStamp) -> [u8; 4] {
        loop {
            if let Some(header) = wal.now() {
                return header[32..36].try_into().unwrap();
            }
        }
    }

    #[test]
    fn past_the_limit_the_wal_starts_over_despite_back_to_back_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        // Kept open: the last connection to close deletes the `-shm` file.
        let setup = Connection::open(&path).unwrap();
        setup.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x);").unwrap();
        let wal = Arc::new(WalStamp::open(&path).unwrap());
        let mut checkpointer = Checkpointer::open(&path, Some(wal.clone())).unwrap();
        checkpointer.limit = 100;
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let conn = Connection::open(path).unwrap();
                conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
                conn.busy_handler(Some(retry_soon)).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    conn.execute("INSERT INTO t VALUES (randomblob(100))", []).unwrap();
                }
            })
        };
        while wal.length().is_none_or(|l| l.frames <= 200) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let before = salt(&wal);
        // Commits go on throughout, so a passive checkpoint alone never copies every frame
        // and the WAL never starts over.
        checkpointer.run();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while salt(&wal) == before && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let after = salt(&wal);
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        assert_ne!(after, before, "the WAL started over after the checkpoint");
        drop(setup);
    }
}
