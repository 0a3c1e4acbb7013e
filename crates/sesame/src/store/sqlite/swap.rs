//! Clearing a table that is nearly all expired by keeping its live rows instead of deleting its
//! expired ones.
//!
//! Deleting a row in place costs a page of the key index per row: Django's keys are random, so
//! neighbouring rows sit on different index pages, and a batch short enough to let live writes
//! through (about 125 rows in a millisecond) dirties about one index page per row. A million
//! rows then write ~4.3 GB of WAL and another 3–4 GB of checkpoint copies: 23–26 s on a
//! machine of this kind, bound by its disk (`docs/benchmark-history.md`, the sixth machine).
//!
//! When few rows are live, it is far cheaper to move those few into a fresh table and free the
//! old one. In one transaction the table is renamed, a new `django_session` is made from the
//! same DDL, the live rows are copied into it, the old table's indexes are unbound from it
//! (each becomes a table of its own, [`shred::unbind`]) to free their names, and Django's
//! indexes are made again on the new table. Every write waiting meanwhile lands after it, in
//! the new table; readers keep the snapshot they began with. The old b-trees are then freed a
//! paced batch at a time ([`shred`]), never in one long hold.
//!
//! The swap is skipped, and the rows are deleted in place, when anything else in the schema
//! names the table (a trigger, a view, a foreign key: renaming would rewrite those to point at
//! the table about to be freed), or when an index or the table is of a kind [`shred`] cannot
//! free in order.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::shred;

/// When a swap is worth it, from counts read without the write lock.
#[derive(Debug, Clone, Copy)]
pub(super) struct Threshold {
    /// Fewer expired rows than this are deleted in place: a few seconds of short batches at
    /// most.
    pub(super) min_expired: u64,
    /// More live rows than this are not copied: the copy reads each through the old
    /// expire_date index under the write lock. Beside a million expired rows the whole swap
    /// held it about 2 ms with one live row, 5 ms with 1,000 and 33 ms with 10,000.
    pub(super) max_live: u64,
}

impl Threshold {
    pub(super) const DEFAULT: Self = Self { min_expired: 100_000, max_live: 1_000 };
    /// Never swap.
    pub(super) const NEVER: Self = Self { min_expired: u64::MAX, max_live: 0 };
}

/// Whether to swap rather than delete in place: enough expired rows, few live ones, and
/// nothing ruling the swap out.
pub(super) fn worth_it(conn: &Connection, now: &str, threshold: Threshold) -> rusqlite::Result<bool> {
    // count(*) without a condition counts the cells of the smallest b-tree, page by page
    // (milliseconds for a million rows); the live rows are counted through the expire_date
    // index, and only up to the limit. One statement, so one snapshot for both.
    let (total, live): (u64, u64) = conn.query_row(
        "SELECT (SELECT count(*) FROM django_session),
                (SELECT count(*) FROM (SELECT 1 FROM django_session WHERE expire_date >= ?1 LIMIT ?2))",
        (now, threshold.max_live.saturating_add(1)),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(live <= threshold.max_live && total - live >= threshold.min_expired && !ruled_out(conn)?)
}

/// Whether the schema rules the swap out: a trigger, a view or another table's definition
/// naming `django_session`, a `WITHOUT ROWID` session table, an index on it that is not a
/// plain list of columns in binary ascending order (see [`shred`]), or a table another sweep
/// is still freeing (its name could be one this swap would give: with `auto_vacuum`, SQLite
/// moves root pages, by which they are named).
fn ruled_out(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE sql LIKE '%django_session%'
                 AND (type IN ('trigger', 'view') OR (type = 'table' AND name <> 'django_session')))
             OR EXISTS (SELECT 1 FROM pragma_table_list WHERE schema = 'main' AND name = 'django_session' AND wr)
             OR EXISTS (SELECT 1 FROM sqlite_master AS m, pragma_index_xinfo(m.name) AS x
                 WHERE m.type = 'index' AND m.tbl_name = 'django_session' AND x.key
                   AND (x.cid < 0 OR x.desc OR x.coll <> 'BINARY'))
             OR EXISTS (SELECT 1 FROM sqlite_master WHERE name LIKE 'sesame!_swept!_%' ESCAPE '!')",
        [],
        |r| r.get(0),
    )
}

/// Keep the rows live at `now` (Django's text form) in a new `django_session` and leave the
/// old one's b-trees to [`shred::all`]; the number of rows removed, or `None` when the schema
/// changed since [`worth_it`] so that the swap no longer applies.
pub(super) fn run(conn: &Connection, now: &str) -> rusqlite::Result<Option<u64>> {
    let started = std::time::Instant::now();
    let (old, kept) = {
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        if ruled_out(&tx)? {
            return Ok(None);
        }
        let Some((table, root)) = tx
            .query_row(
                "SELECT sql, rootpage FROM sqlite_master WHERE type = 'table' AND name = 'django_session'",
                [],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()?
        else {
            return Ok(None);
        };
        // The indexes Django made (the primary key's comes with the table's DDL).
        let indexes = tx
            .prepare(
                "SELECT sql FROM sqlite_master
                 WHERE type = 'index' AND tbl_name = 'django_session' AND sql IS NOT NULL",
            )?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let old = shred::name(root);
        tx.execute_batch(&format!("ALTER TABLE django_session RENAME TO \"{old}\""))?;
        tx.execute_batch(&table)?;
        // Live is what the in-place DELETE (`expire_date < now`) would keep. Copied while the
        // old table still has its expire_date index (without it, a scan of every row).
        let kept =
            tx.execute(&format!("INSERT INTO django_session SELECT * FROM \"{old}\" WHERE expire_date >= ?1"), [now])?;
        shred::unbind(&tx, &old)?;
        for sql in &indexes {
            tx.execute_batch(sql)?;
        }
        tx.commit()?;
        (old, kept as u64)
    };
    let swapped = started.elapsed();
    // No one writes to the old table any more: count it without the lock.
    let total: u64 = conn.query_row(&format!("SELECT count(*) FROM \"{old}\""), [], |r| r.get(0))?;
    let removed = total.saturating_sub(kept);
    tracing::debug!(kept, removed, ?swapped, "session table swapped");
    Ok(Some(removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(setup: &str) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("db.sqlite3")).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE \"django_session\" (\"session_key\" varchar(40) NOT NULL PRIMARY KEY,
                 \"session_data\" text NOT NULL, \"expire_date\" datetime NOT NULL);
             CREATE INDEX \"django_session_expire_date_a5c62663\" ON \"django_session\" (\"expire_date\");
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000)
             INSERT INTO django_session SELECT lower(hex(randomblob(16))), 'data' || x,
                 CASE WHEN x % 100 = 0 THEN printf('2099-01-01 00:00:%02d', x % 60)
                      ELSE '2020-01-01 00:00:00' END FROM c;
             -- Exactly now: expired for Django's DELETE (expire_date < now) only if before.
             INSERT INTO django_session VALUES ('atnow', 'x', '2026-01-01 00:00:00');",
        )
        .unwrap();
        conn.execute_batch(setup).unwrap();
        (dir, conn)
    }

    fn schema(conn: &Connection) -> Vec<(String, String, String, Option<String>)> {
        conn.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn rows(conn: &Connection) -> Vec<(String, String, String)> {
        conn.prepare("SELECT * FROM django_session ORDER BY session_key")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    const NOW: &str = "2026-01-01 00:00:00";
    const LOW: Threshold = Threshold { min_expired: 1_000, max_live: 100 };

    fn pacer(dir: &tempfile::TempDir) -> crate::store::sqlite::pacer::Pacer {
        let frames = crate::store::sqlite::pacer::CHECKPOINT_FRAMES;
        crate::store::sqlite::pacer::Pacer::new(&dir.path().join("db.sqlite3"), None, frames, 2 * frames).unwrap()
    }

    fn count_commits(conn: &Connection) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
        let commits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = commits.clone();
        conn.commit_hook(Some(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            false
        }));
        commits
    }

    fn integrity(conn: &Connection) -> String {
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
    }

    fn swept_tables(conn: &Connection) -> Vec<String> {
        conn.prepare("SELECT name FROM sqlite_master WHERE name LIKE 'sesame_swept_%' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn the_live_rows_are_kept_as_they_were_and_the_schema_is_django_s_again() {
        let (dir, conn) = database("");
        let before = schema(&conn);
        let live: Vec<_> = rows(&conn).into_iter().filter(|(_, _, e)| e.as_str() >= NOW).collect();
        assert_eq!(live.len(), 31);
        assert!(worth_it(&conn, NOW, LOW).unwrap());
        // One commit: rename, copy, unbind, indexes; no other connection ever sees the table
        // without its live rows.
        let commits = count_commits(&conn);
        assert_eq!(run(&conn, NOW).unwrap(), Some(3001 - 31));
        assert_eq!(commits.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(rows(&conn), live);
        // The old table and its two indexes (the primary key's, expire_date's) are three
        // tables now, and SQLite finds every b-tree as their schema says.
        assert_eq!(swept_tables(&conn).len(), 3);
        assert_eq!(integrity(&conn), "ok");
        // Freed a batch per commit, in several batches: batches start at 256 rows and at
        // most double, so the first 3,001-row b-tree alone takes four (the last one empties
        // and drops it); a fast machine may free each of the two others in one.
        commits.store(0, std::sync::atomic::Ordering::Relaxed);
        let mut pacer = pacer(&dir);
        shred::all(&conn, &mut pacer).unwrap();
        let n = commits.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(n as u64, pacer.batches);
        assert!(n >= 6, "{n} commits");
        conn.commit_hook(None::<fn() -> bool>);
        assert_eq!(swept_tables(&conn), Vec::<String>::new());
        assert_eq!(rows(&conn), live);
        assert_eq!(schema(&conn), before, "the same table and indexes, by the same DDL");
        // The old table's pages are free, not lost.
        let free: u64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0)).unwrap();
        assert!(free > 10, "{free} free pages");
        assert_eq!(integrity(&conn), "ok");
        // The expire_date index is there and used.
        let plan: String = conn
            .query_row("EXPLAIN QUERY PLAN SELECT 1 FROM django_session WHERE expire_date < ?1", [NOW], |r| r.get(3))
            .unwrap();
        assert!(plan.contains("django_session_expire_date_a5c62663"), "{plan}");
    }

    /// The (text, integer) pairs `sql` selects, in the order it returns them.
    fn pairs(conn: &Connection, sql: &str) -> Vec<(String, i64)> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn an_unbound_index_holds_exactly_its_entries_as_rows_in_its_own_order() {
        let (_dir, conn) = database("");
        let index_roots: Vec<i64> = conn
            .prepare("SELECT rootpage FROM sqlite_master WHERE type = 'index' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let table_root: i64 = conn
            .query_row("SELECT rootpage FROM sqlite_master WHERE name = 'django_session'", [], |r| r.get(0))
            .unwrap();
        // What each index holds, read through the index before the swap.
        let by_key = pairs(&conn, "SELECT session_key, rowid FROM django_session ORDER BY session_key, rowid");
        let by_expiry = pairs(&conn, "SELECT expire_date, rowid FROM django_session ORDER BY expire_date, rowid");
        run(&conn, NOW).unwrap();
        // Each read in its b-tree's own order (no ORDER BY: a scan of the WITHOUT ROWID key).
        let unbound: Vec<_> = index_roots
            .iter()
            .map(|root| pairs(&conn, &format!("SELECT c0, c1 FROM {}", shred::name(*root))))
            .collect();
        // By name: Django's expire_date index, then the primary key's.
        assert_eq!(unbound, [by_expiry, by_key]);
        let old: u64 =
            conn.query_row(&format!("SELECT count(*) FROM {}", shred::name(table_root)), [], |r| r.get(0)).unwrap();
        assert_eq!(old, 3001);
    }

    #[test]
    fn too_many_live_rows_or_too_few_expired_ones_are_deleted_in_place() {
        let (_dir, conn) = database("");
        assert!(!worth_it(&conn, NOW, Threshold { max_live: 30, ..LOW }).unwrap());
        assert!(worth_it(&conn, NOW, Threshold { max_live: 31, ..LOW }).unwrap());
        assert!(!worth_it(&conn, NOW, Threshold { min_expired: 2_971, ..LOW }).unwrap());
        assert!(worth_it(&conn, NOW, Threshold { min_expired: 2_970, ..LOW }).unwrap());
    }

    #[test]
    fn what_the_swap_cannot_free_in_order_rules_it_out() {
        for setup in [
            "CREATE VIEW recent AS SELECT * FROM django_session WHERE expire_date > '2025'",
            "CREATE TABLE audit (k text); CREATE TRIGGER gone AFTER DELETE ON django_session
                 BEGIN INSERT INTO audit VALUES (old.session_key); END",
            "CREATE TABLE visits (k varchar(40) REFERENCES django_session (session_key))",
            "CREATE INDEX newest ON django_session (expire_date DESC)",
            "CREATE INDEX folded ON django_session (session_data COLLATE NOCASE)",
            "CREATE INDEX computed ON django_session (length(session_data))",
            "CREATE TABLE sesame_swept_99 (c0)",
            "CREATE TABLE kept AS SELECT * FROM django_session; DROP TABLE django_session;
             CREATE TABLE django_session (session_key varchar(40) NOT NULL PRIMARY KEY,
                 session_data text NOT NULL, expire_date datetime NOT NULL) WITHOUT ROWID;
             INSERT INTO django_session SELECT * FROM kept; DROP TABLE kept;",
        ] {
            let (_dir, conn) = database(setup);
            let before = schema(&conn);
            assert!(!worth_it(&conn, NOW, LOW).unwrap(), "{setup}");
            // Even when the check before the lock is passed, the swap checks again under it.
            assert_eq!(run(&conn, NOW).unwrap(), None, "{setup}");
            assert_eq!(schema(&conn), before);
            assert_eq!(rows(&conn).len(), 3001);
        }
    }

    #[test]
    fn a_table_an_interrupted_sweep_left_is_freed_by_the_next() {
        // This version's: swapped, then stopped partway through freeing.
        let (dir, conn) = database("");
        let root: i64 = conn
            .query_row("SELECT rootpage FROM sqlite_master WHERE name = 'django_session'", [], |r| r.get(0))
            .unwrap();
        run(&conn, NOW).unwrap();
        let old = shred::name(root);
        conn.execute(&format!("DELETE FROM {old} WHERE rowid IN (SELECT rowid FROM {old} LIMIT 100)"), []).unwrap();
        // An earlier version's: the old table with its primary key's index.
        conn.execute_batch(
            "CREATE TABLE sesame_swept_sessions (session_key varchar(40) NOT NULL PRIMARY KEY, session_data text);
             INSERT INTO sesame_swept_sessions SELECT session_key, session_data FROM django_session;",
        )
        .unwrap();
        shred::all(&conn, &mut pacer(&dir)).unwrap();
        assert_eq!(swept_tables(&conn), Vec::<String>::new());
        assert_eq!(rows(&conn).len(), 31);
        assert_eq!(integrity(&conn), "ok");
    }
}
