//! Deleting expired sessions in short batches that live requests can slip between.
//!
//! (A table that is nearly all expired is not deleted from at all: its live rows are moved to
//! a fresh table and the old one's pages freed in order, see [`swap`] and [`shred`]. What
//! follows is the in-place sweep, for every other table.)
//!
//! Each batch is one short transaction paced by [`Pacer`]: about a millisecond under the write
//! lock, then a rest. The sweep runs on a blocking thread with its own connection: its rests
//! must be precise to the tens of microseconds, which an async timer (millisecond ticks) is
//! not, and a batch is pure database work.

use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;

use super::checkpoint;
use super::pacer::{Pacer, CHECKPOINT_FRAMES};
use super::wal_stamp::WalStamp;
use super::{shred, swap};

/// Rowids read per round (8 bytes each): larger tables are swept in several rounds.
const COLLECT: usize = 1_000_000;

/// Delete every row that expired before `now` (Django's text form), reporting the running
/// total after each batch through `progress`.
/// `wal` is the store's WAL stamp, which tells the WAL's length; `may_swap`, whether a nearly
/// all-expired table may be swapped instead ([`swap`]).
pub(super) fn run(
    path: &Path,
    now: &str,
    wal: Option<Arc<WalStamp>>,
    may_swap: bool,
    progress: impl FnMut(u64),
) -> rusqlite::Result<u64> {
    let pace = if may_swap { Pace::DEFAULT } else { Pace { swap: swap::Threshold::NEVER, ..Pace::DEFAULT } };
    sweep(path, now, wal, pace, progress)
}

/// How a sweep reads and checkpoints; smaller in tests.
struct Pace {
    /// Rowids read per round.
    per_round: usize,
    /// WAL growth, in frames, between two checkpoints.
    checkpoint_frames: u32,
    /// WAL length, in frames, past which a checkpoint is due at once and is finished under the
    /// write lock.
    wal_limit: u32,
    /// When to keep the live rows instead of deleting the expired ones ([`swap`]).
    swap: swap::Threshold,
}

impl Pace {
    const DEFAULT: Self = Self {
        per_round: COLLECT,
        checkpoint_frames: CHECKPOINT_FRAMES,
        wal_limit: checkpoint::WAL_LIMIT,
        swap: swap::Threshold::DEFAULT,
    };
}

fn sweep(
    path: &Path,
    now: &str,
    wal: Option<Arc<WalStamp>>,
    pace: Pace,
    mut progress: impl FnMut(u64),
) -> rusqlite::Result<u64> {
    let conn = Connection::open(path)?;
    conn.busy_handler(Some(super::writer::retry_soon))?;
    // Checkpoints between batches keep the WAL short (see `checkpoint.rs`).
    let mut pacer = Pacer::new(path, wal, pace.checkpoint_frames, pace.wal_limit)?;
    // As the server's writer: the WAL is synced at checkpoints, not at every commit. Under
    // SQLite's default (FULL) each of the thousands of batches waited for its pages (a batch
    // of scattered deletions writes megabytes of WAL) to reach the disk: 1M rows took 51 s
    // instead of 11 s on one machine of this kind. What a power loss can undo here is a
    // deletion of expired rows, which the next sweep repeats.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Checkpoints are run by the pacer, between batches, so that a batch's measured time is
    // the time it held the write lock (an auto-checkpoint would run inside the batch's COMMIT
    // and make the next batch shrink for nothing).
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // What an interrupted swap left behind goes first.
    shred::all(&conn, &mut pacer)?;
    if swap::worth_it(&conn, now, pace.swap)? {
        if let Some(removed) = swap::run(&conn, now)? {
            progress(removed);
            shred::all(&conn, &mut pacer)?;
            pacer.finish();
            return Ok(removed);
        }
    }
    // Rowids of expired rows are read first, without the write lock (a WAL reader blocks no
    // one), and deleted in rowid order, a range per batch: each batch then empties a run of
    // neighbouring table pages instead of touching one page per row wherever the expire_date
    // index leads. 1M rows under the benchmark's load: 8.1-8.6 s instead of 14.7-15.8 s.
    // The DELETE checks expire_date again, so a row refreshed meanwhile is never deleted.
    let mut collect = conn.prepare("SELECT rowid FROM django_session WHERE expire_date < ?1 LIMIT ?2")?;
    let mut delete = conn.prepare("DELETE FROM django_session WHERE rowid BETWEEN ?1 AND ?2 AND expire_date < ?3")?;
    let mut total = 0;
    // Bound by the disk, not by the lock: see `Pacer::yields`.
    pacer.yields = false;
    loop {
        let mut rowids =
            collect.query_map((now, pace.per_round), |row| row.get::<_, i64>(0))?.collect::<Result<Vec<_>, _>>()?;
        let last_round = rowids.len() < pace.per_round;
        rowids.sort_unstable();
        let mut at = 0;
        while at < rowids.len() {
            pacer.batch(&conn, |size| {
                let n = size.min(rowids.len() - at);
                let deleted = delete.execute((rowids[at], rowids[at + n - 1], now))?;
                at += n;
                total += deleted as u64;
                progress(total);
                Ok(deleted)
            })?;
        }
        if last_round {
            pacer.finish();
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL-mode database with Django's session table (and its index), seeded by `rows`.
    fn database(rows: &str) -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE django_session (session_key varchar(40) NOT NULL PRIMARY KEY,
                 session_data text NOT NULL, expire_date datetime NOT NULL);
             CREATE INDEX django_session_expire_date_a5c62663 ON django_session (expire_date);",
        )
        .unwrap();
        conn.execute_batch(rows).unwrap();
        (dir, path, conn)
    }

    #[test]
    fn rounds_of_rowid_ranges_delete_every_expired_row_and_no_live_one() {
        let (_dir, path, conn) = database(
            "-- Every 7th row live, so each rowid range of expired rows has live rows inside it.
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000)
             INSERT INTO django_session SELECT printf('k%031d', x), 'x',
                 CASE WHEN x % 7 = 0 THEN '2099-01-01 00:00:00'
                      ELSE printf('2020-01-01 00:00:%02d', x % 60) END FROM c;",
        );
        let live = 5000 / 7;
        let mut totals = Vec::new();
        // 700 rowids per round: seven rounds, the last one short.
        let wal = WalStamp::open(&path).map(Arc::new);
        let pace = Pace { per_round: 700, ..Pace::DEFAULT };
        let removed = sweep(&path, "2026-01-01 00:00:00", wal, pace, |t| totals.push(t)).unwrap();
        assert_eq!(removed, 5000 - live);
        assert_eq!(totals.last(), Some(&removed));
        let (left, expired): (u64, u64) = conn
            .query_row("SELECT count(*), count(*) FILTER (WHERE expire_date < '2026') FROM django_session", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((left, expired), (live, 0));
    }

    /// With random keys (Django's) each deleted row dirties its own page of the key index, so
    /// the WAL grows by about a page per row. The sweep checkpoints by the WAL's growth,
    /// whatever a row costs: here every 1,000 frames, and with nothing else using the database
    /// each checkpoint copies the whole WAL, so the next batch starts it over and it stays
    /// under 3,000 frames (about 1,300 measured). Checkpoints every 10,000 rows, as before,
    /// let it reach about 9,600.
    #[test]
    fn the_wal_is_checkpointed_by_its_length_whatever_a_row_costs() {
        let (_dir, path, _conn) = database(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000)
             INSERT INTO django_session SELECT lower(hex(randomblob(16))), hex(randomblob(80)),
                 '2020-01-01 00:00:00' FROM c;
             PRAGMA wal_checkpoint(TRUNCATE);",
        );
        let wal = Arc::new(WalStamp::open(&path).unwrap());
        let pace = Pace { checkpoint_frames: 1_000, wal_limit: 2_000, ..Pace::DEFAULT };
        let mut longest = 0;
        let removed = sweep(&path, "2026-01-01 00:00:00", Some(wal.clone()), pace, |_| {
            longest = longest.max(wal.length().map_or(0, |l| l.frames));
        })
        .unwrap();
        assert_eq!(removed, 30_000);
        assert!(longest > 1_000, "the sweep wrote {longest} frames at most: too few to test anything");
        assert!(longest < 3_000, "the WAL reached {longest} frames");
    }
}
