//! Batches that live requests can slip between: the pace of every sweep that writes.
//!
//! SQLite has one write lock. A single `DELETE` of a million rows holds it for seconds and every
//! login waits behind it (Django ticket #23830). Here each batch is one short transaction,
//! sized so that it holds the lock for about [`BATCH_TARGET`]: a write that arrives during a
//! batch waits at most about that long. Between batches the sweep rests, so waiting writers
//! (whose busy handlers retry every 100 µs) take the lock first: for half the batch's time
//! while no one else commits. Once someone has committed during the last rest, batches aim at
//! [`CONTENDED_BATCH_TARGET`] and rests are [`GENTLE_REST`] times as long while the sweep is
//! ahead of [`FLOOR_ROWS_PER_SEC`], [`CONTENDED_REST`] times once behind it: a sweep alone
//! runs at full speed, and beside a server that writes it holds the lock a sixth of the time
//! (a quarter when behind) instead of two thirds, in shorter stretches. A session write that
//! lands on a batch waits for it and, if its session's next write is queued behind it, for the
//! next one too.
//! Only where batches are bound by the CPU ([`Pacer::yields`]): freeing a swapped table's
//! b-trees, not the in-place sweep, which is bound by the disk.
//! Measured with `bench/clearsessions.sh` (two tries of each, then four runs of the kept one),
//! open loop, 2,000 counter writes/s, write p99 and sweep time: 1 ms batches resting half
//! their time (the old pace) 2.8–3.7 ms, 2.9–3.1 s; resting 3× 1.9–2.0 ms, 6.5–6.9 s; 4×
//! 1.7–2.1 ms, 8.6–9.4 s; 0.25 ms batches resting 3× 1.6–1.8 ms, 9.1–9.5 s; 0.5 ms batches
//! resting 3× 1.3–1.6 ms, 7.9–8.2 s (kept then). Once batches became cheaper (one pass each,
//! `shred.rs`), the paces were measured again (`docs/benchmark-history.md`, "The sweep's pace
//! (18cd668)"): resting 5× a batch of 0.25 ms kept the closed loop's write p99 under 2× idle
//! in every run where 0.5 ms resting 3× never did, at twice the sweep's time under load;
//! hence the long rest only while the floor allows it.
//! Between batches, too, the WAL is checkpointed by its length, so that it stays short.

use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::checkpoint::{self, Checkpointer};
use super::timeline;
use super::wal_stamp::{Stamp, WalStamp};

/// How long one batch should hold the write lock.
const BATCH_TARGET: Duration = Duration::from_millis(1);
/// How long one batch should hold the write lock once someone else is committing.
const CONTENDED_BATCH_TARGET: Duration = Duration::from_micros(250);
/// The rest after a batch, as a multiple of its time, while no one else commits.
const REST: f64 = 0.5;
/// The rest after a batch once another connection has committed during the last rest, while
/// the sweep keeps ahead of [`FLOOR_ROWS_PER_SEC`].
const GENTLE_REST: f64 = 5.0;
/// The rest after a batch once another connection has committed during the last rest, when
/// the sweep has fallen behind [`FLOOR_ROWS_PER_SEC`].
const CONTENDED_REST: f64 = 3.0;
/// The pace, in rows written a second since the sweep began (the swap and any leftovers of an
/// interrupted sweep included), that the sweep keeps before it rests longer: a million expired
/// sessions are three million rows once swapped (the table and its two indexes), so this
/// aims to free them in about 8 s, inside the 10 s that issue #4 asks for. Rows are counted
/// alike whatever their size (the benchmark's sessions are about 100 bytes); a sweep of
/// larger rows falls behind sooner and keeps the shorter rest. Ahead of it the sweep gives a
/// server that writes more room; behind it, it rests [`CONTENDED_REST`] times a batch, which
/// cannot make it faster than that pace allows.
const FLOOR_ROWS_PER_SEC: f64 = 375_000.0;
/// Bounds of the batch size, in rows.
const MIN_BATCH: f64 = 32.0;
const MAX_BATCH: f64 = 5_000.0;

/// WAL growth (frames of 4 KB: 32 MB) between two checkpoints of the sweep, and the WAL length
/// ([`checkpoint::WAL_LIMIT`]) past which it checkpoints at once, finishing under the write
/// lock so that the WAL starts over. Counted in frames, not rows: a row's cost in WAL depends
/// on its key. With random keys, as Django makes them, each row deleted in place dirties its
/// own page of the key index, about 4.3 KB of WAL per row; with keys in rowid order (what the
/// benchmark used to seed) a page of the index holds a run of them, about 0.65 KB per
/// row. A checkpoint every 10,000 rows, tuned on the latter, let random keys take the WAL to
/// the 96 MB ceiling, where the server's own writer stops to copy it back: counter writes
/// waited 110 ms at p99 during a sweep (`RATE=250` in `bench/clearsessions.sh`). Checkpoints
/// every 8,192 frames (2,048 tried too: more copying, as fewer pages are copied once for
/// several commits, and a 32 s sweep instead of 24 s without load) keep it at 66–67 MB.
pub(super) const CHECKPOINT_FRAMES: u32 = 8_192;

/// Rows written between two checkpoints when the WAL's length cannot be read (no `-shm`).
const CHECKPOINT_ROWS: usize = 10_000;

/// Sizes, times and spaces out the batches of one sweep, and checkpoints between them.
pub(super) struct Pacer {
    wal: Option<Arc<WalStamp>>,
    checkpointer: Checkpointer,
    /// WAL growth, in frames, between two checkpoints.
    checkpoint_frames: u32,
    /// Rows in the next batch.
    size: f64,
    /// Rows written since the last checkpoint.
    since_checkpoint: usize,
    /// The WAL's length at the last checkpoint.
    copied_at: u32,
    /// The WAL-index header as the last rest began, to tell whether anyone committed during it.
    rested_at: Option<Stamp>,
    /// Whether someone else committed during the last rest.
    contended: bool,
    /// Whether to take the contended pace when someone else commits. Off for the in-place
    /// sweep, whose batches each write a WAL page per row: there the contended pace of the day
    /// (0.5 ms batches resting 3×) made a million rows take 48.8 s instead of 20.4 s under the
    /// open-loop benchmark, and writes waited no less (4.2 ms at p99 against 3.8 ms).
    pub(super) yields: bool,
    /// Batches run, and the longest (for the debug log).
    pub(super) batches: u64,
    pub(super) longest: Duration,
    /// When the sweep began, and the rows its batches have written since: its pace against
    /// [`FLOOR_ROWS_PER_SEC`].
    started: Instant,
    written: u64,
}

impl Pacer {
    /// `checkpoint_frames`: WAL growth between two checkpoints; `wal_limit`: the WAL length
    /// past which a checkpoint is due at once and is finished under the write lock.
    pub(super) fn new(
        path: &Path,
        wal: Option<Arc<WalStamp>>,
        checkpoint_frames: u32,
        wal_limit: u32,
    ) -> rusqlite::Result<Self> {
        let mut checkpointer = Checkpointer::open(path, wal.clone())?;
        checkpointer.limit = wal_limit;
        Ok(Self {
            wal,
            checkpointer,
            checkpoint_frames,
            size: 256.0,
            since_checkpoint: 0,
            copied_at: 0,
            rested_at: None,
            contended: false,
            yields: true,
            batches: 0,
            longest: Duration::ZERO,
            started: Instant::now(),
            written: 0,
        })
    }

    /// Run one batch on `conn`: `work` is given the number of rows it should write and returns
    /// how many it wrote (which it returns too). Afterwards the WAL is checkpointed if due, the
    /// next batch is sized from this one's time, and the sweep rests.
    pub(super) fn batch(
        &mut self,
        conn: &Connection,
        work: impl FnOnce(usize) -> rusqlite::Result<usize>,
    ) -> rusqlite::Result<usize> {
        if let (Some(wal), Some(before)) = (&self.wal, self.rested_at) {
            // Unreadable (a commit is rewriting it): someone is committing.
            self.contended = self.yields && wal.now() != Some(before);
        }
        let started = Instant::now();
        let rows = work(self.size as usize)?;
        let took = started.elapsed();
        tracing::trace!(
            at_us = timeline::began_us(took),
            took_us = took.as_micros() as u64,
            rows,
            contended = self.contended,
            "batch"
        );
        self.batches += 1;
        self.longest = self.longest.max(took);
        self.since_checkpoint += rows;
        self.written += rows as u64;
        let due = match self.wal.as_ref().and_then(|w| w.length()) {
            Some(l) => {
                // Less than at the last checkpoint: the WAL started over since.
                self.copied_at = self.copied_at.min(l.frames);
                l.frames > self.checkpointer.limit || l.frames - self.copied_at >= self.checkpoint_frames
            }
            None => self.since_checkpoint >= CHECKPOINT_ROWS,
        };
        if let Some(wal) = &self.wal {
            checkpoint::bound(conn, wal);
        }
        if due {
            self.since_checkpoint = 0;
            let started = Instant::now();
            self.checkpointer.run();
            let took = started.elapsed();
            tracing::trace!(at_us = timeline::began_us(took), took_us = took.as_micros() as u64, "checkpoint");
            self.copied_at = self.wal.as_ref().and_then(|w| w.length()).map_or(0, |l| l.frames);
        }
        // Aim the next batch at the target, moving at most 2× per step (one slow batch, say
        // a WAL checkpoint, must not shrink the next one to nothing).
        let (target, rest) =
            if self.contended { (CONTENDED_BATCH_TARGET, self.contended_rest()) } else { (BATCH_TARGET, REST) };
        let scale = (target.as_secs_f64() / took.as_secs_f64().max(1e-6)).clamp(0.5, 2.0);
        self.size = (self.size * scale).clamp(MIN_BATCH, MAX_BATCH);
        // Taken after this batch's checkpoint, which can start the WAL over (a new header).
        self.rested_at = self.wal.as_ref().and_then(|w| w.now());
        std::thread::sleep(took.mul_f64(rest));
        Ok(rows)
    }

    /// The rest beside someone else's commits: the longer one while the sweep is ahead of
    /// [`FLOOR_ROWS_PER_SEC`].
    fn contended_rest(&self) -> f64 {
        let floor = FLOOR_ROWS_PER_SEC * self.started.elapsed().as_secs_f64();
        if self.written as f64 >= floor {
            GENTLE_REST
        } else {
            CONTENDED_REST
        }
    }

    /// Checkpoint what the sweep wrote, at its end.
    pub(super) fn finish(&self) {
        self.checkpointer.run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pacer beside a second connection, on a WAL database with a table `t`.
    fn setup(dir: &tempfile::TempDir) -> (Pacer, Connection, Connection) {
        let path = dir.path().join("db.sqlite3");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let wal = WalStamp::open(&path).map(Arc::new);
        assert!(wal.is_some(), "the -shm file exists once a WAL connection has written");
        let pacer = Pacer::new(&path, wal, CHECKPOINT_FRAMES, 2 * CHECKPOINT_FRAMES).unwrap();
        let other = Connection::open(&path).unwrap();
        (pacer, conn, other)
    }

    fn insert(conn: &Connection) -> rusqlite::Result<usize> {
        conn.execute("INSERT INTO t VALUES (1)", [])
    }

    #[test]
    fn rests_longer_only_after_someone_else_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut pacer, conn, other) = setup(&dir);
        pacer.batch(&conn, |_| insert(&conn)).unwrap();
        pacer.batch(&conn, |_| insert(&conn)).unwrap();
        assert!(!pacer.contended, "its own commits are not someone else's");
        insert(&other).unwrap();
        pacer.batch(&conn, |_| insert(&conn)).unwrap();
        assert!(pacer.contended, "another connection committed during the rest");
        pacer.batch(&conn, |_| insert(&conn)).unwrap();
        assert!(!pacer.contended, "a quiet rest goes back to the short one");
    }

    #[test]
    fn a_pacer_that_does_not_yield_never_takes_the_contended_pace() {
        let dir = tempfile::tempdir().unwrap();
        let (mut pacer, conn, other) = setup(&dir);
        pacer.batch(&conn, |_| insert(&conn)).unwrap();
        insert(&other).unwrap();
        pacer.batch(&conn, |_| insert(&conn)).unwrap();
        assert!(pacer.contended);
        // As the sweep does after freeing what a swap left: the contended pace ends there.
        pacer.yields = false;
        insert(&other).unwrap();
        pacer.batch(&conn, |_| insert(&conn)).unwrap();
        assert!(!pacer.contended);
    }

    #[test]
    fn rests_longer_beside_commits_only_while_ahead_of_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        let (mut pacer, conn, _other) = setup(&dir);
        pacer.batch(&conn, |_| insert(&conn)).unwrap();
        assert_eq!(pacer.written, 1, "the batch's rows are counted");
        // A second's worth of rows at the floor's pace, written just now: ahead of it.
        pacer.started = Instant::now();
        pacer.written = FLOOR_ROWS_PER_SEC as u64;
        assert_eq!(pacer.contended_rest(), GENTLE_REST);
        // The same rows over two seconds: behind it.
        pacer.started = Instant::now().checked_sub(Duration::from_secs(2)).expect("two seconds of uptime");
        assert_eq!(pacer.contended_rest(), CONTENDED_REST);
        // Three seconds' worth over those two: ahead again.
        pacer.written = 3 * FLOOR_ROWS_PER_SEC as u64;
        assert_eq!(pacer.contended_rest(), GENTLE_REST);
    }

    #[test]
    fn a_read_by_someone_else_is_not_contention() {
        let dir = tempfile::tempdir().unwrap();
        let (mut pacer, conn, other) = setup(&dir);
        pacer.batch(&conn, |_| insert(&conn)).unwrap();
        let n: i64 = other.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
        pacer.batch(&conn, |_| insert(&conn)).unwrap();
        assert!(!pacer.contended);
    }
}
