//! Whether anything was committed to the database since a moment, told without a transaction.
//!
//! In WAL mode every commit, from any connection of any process, ends by rewriting the
//! WAL-index header at the start of the `-shm` file: two copies of a 48-byte record whose
//! change counter, frame count, salts and checksum move with each commit
//! (<https://sqlite.org/walformat.html>, "The WAL-Index Header"). If the header reads the same
//! now as before a read, nothing was committed in between, and the read's result still
//! stands: the SQLite store serves an unchanged session from memory on that ground, instead of
//! a read transaction whose two `fcntl` calls on the read mark are most of its cost.
//!
//! The header is read with one `pread`, the same bytes SQLite's own readers look at first. A
//! read torn by a concurrent commit gives two copies that differ, and is not used. The `-shm`
//! file is neither truncated nor deleted while any connection has the database open (SQLite
//! does that only when it is the last one), and the store keeps its connections open for as
//! long as it lives.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// One copy of the WAL-index header, as bytes.
pub(super) type Stamp = [u8; 48];

/// The `-shm` file of one database, opened for reading.
#[derive(Debug)]
pub(super) struct WalStamp {
    /// Shared and never closed (see `kept_open`).
    shm: Arc<File>,
}

impl WalStamp {
    /// Open `<database>-shm`. `None` when it does not exist (the database is not in WAL mode,
    /// or no connection has read it yet).
    pub(super) fn open(database: &Path) -> Option<Self> {
        let mut name = database.as_os_str().to_owned();
        name.push("-shm");
        super::kept_open::file(Path::new(&name)).ok().map(|shm| Self { shm })
    }

    /// The header as it is now; `None` while a commit is rewriting it, before the WAL-index
    /// was built, or when the file cannot be read.
    pub(super) fn now(&self) -> Option<Stamp> {
        self.read::<96>().map(|both| both[..48].try_into().expect("48 bytes"))
    }

    /// The WAL's length now and how much of it a checkpoint has copied back: `mxFrame`
    /// (bytes 16..20 of the header) and `nBackfill` (bytes 96..100, the first field of the
    /// checkpoint information after the two header copies), in the machine's byte order. Both
    /// fall back to 0 when a writer starts the WAL over. A read torn by a commit is read
    /// again, a few times: the caller decides whether to checkpoint on it.
    pub(super) fn length(&self) -> Option<WalLength> {
        let bytes = (0..TORN_READ_RETRIES).find_map(|_| {
            let read = self.read::<100>();
            if read.is_none() {
                std::thread::yield_now();
            }
            read
        })?;
        let u32_at = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        Some(WalLength { frames: u32_at(16), backfilled: u32_at(96) })
    }

    /// The first `N` bytes of the `-shm` file (N ≥ 96: both header copies), if the two copies
    /// agree (no commit was rewriting them) and the WAL-index is built (byte 12, `isInit`).
    fn read<const N: usize>(&self) -> Option<[u8; N]> {
        let mut bytes = [0u8; N];
        self.shm.read_exact_at(&mut bytes, 0).ok()?;
        (bytes[..48] == bytes[48..96] && bytes[12] != 0).then_some(bytes)
    }
}

/// Reads of a header that a commit was rewriting, tried again before [`WalStamp::length`]
/// gives up.
const TORN_READ_RETRIES: usize = 16;

/// How long the WAL is, in frames (pages), and how many of them are copied back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WalLength {
    pub(super) frames: u32,
    pub(super) backfilled: u32,
}

impl WalLength {
    /// Frames a checkpoint would still have to copy.
    pub(super) fn backlog(self) -> u32 {
        self.frames.saturating_sub(self.backfilled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn the_stamp_moves_with_every_commit_of_any_connection_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let writer = Connection::open(&path).unwrap();
        writer.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x);").unwrap();
        let stamps = WalStamp::open(&path).expect("the -shm file exists once a WAL connection read");
        let before = stamps.now().expect("a built WAL-index");

        let reader = Connection::open(&path).unwrap();
        let _: i64 = reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(stamps.now(), Some(before), "a read commits nothing");

        let other = Connection::open(&path).unwrap();
        other.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        let length_before = stamps.length().unwrap();
        other.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let after_insert = stamps.now().unwrap();
        assert_ne!(after_insert, before);
        let long = stamps.length().unwrap();
        assert!(long.frames > length_before.frames, "a commit appends frames");
        assert_eq!(long.backlog(), long.frames, "nothing is copied back yet: {long:?}");

        // A passive checkpoint copies every frame back, and the WAL stays as long.
        other.execute_batch("PRAGMA wal_checkpoint(PASSIVE);").unwrap();
        let copied = stamps.length().unwrap();
        assert_eq!((copied.frames, copied.backlog()), (long.frames, 0), "{copied:?}");

        // The next write starts the WAL over: shorter than before; the stamp still differs.
        other.execute("UPDATE t SET x = 2", []).unwrap();
        let after_update = stamps.now().unwrap();
        assert_ne!(after_update, after_insert);
        assert_ne!(after_update, before);
        let restarted = stamps.length().unwrap();
        assert!(restarted.frames < long.frames, "the WAL started over: {restarted:?}");
        assert_eq!(restarted.backlog(), restarted.frames, "{restarted:?}");
    }

    #[test]
    fn a_database_not_in_wal_mode_has_no_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
        assert!(WalStamp::open(&path).is_none());
    }
}
