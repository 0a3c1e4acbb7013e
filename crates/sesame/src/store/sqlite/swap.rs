//! Clearing a table that is nearly all expired by keeping its live rows instead of deleting its
//! expired ones.
//!
//! Deleting a row in place costs a page of the key index per row: Django's keys are random, so
//! neighbouring rows sit on different index pages, and a batch short enough to let live writes
//! through (about 125 rows in a millisecond) dirties about one index page per row. A million
//! rows then write ~4.3 GB of WAL and another 3–4 GB of checkpoint copies: 23–26 s on a
//! machine of this kind, bound by its disk (README, "`clearsessions` at scale").
//!
//! When few rows are live, it is far cheaper to move those few into a fresh table and drop the
//! old one: dropping a table only puts its pages on the free list (a few hundred KB of WAL for
//! a million rows) after reading each once, about a microsecond a page. The write lock is held
//! twice: once to rename the table, copy the live rows into a new one made from the same DDL,
//! and make its indexes again (each old index is dropped just before, to free its name), and
//! once to drop the old table. Every write waiting meanwhile lands after the first hold, in the new
//! table; readers keep the snapshot they began with.
//!
//! The swap is skipped, and the rows are deleted in place, when anything else in the schema
//! names the table (a trigger, a view, a foreign key): renaming would rewrite those to point at
//! the table about to be dropped.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// The old table between the two holds. A sweep interrupted between them leaves it behind; the
/// next sweep drops it before anything else (its rows are no longer sessions).
pub(super) const OLD: &str = "sesame_swept_sessions";

/// When a swap is worth it, from counts read without the write lock.
#[derive(Debug, Clone, Copy)]
pub(super) struct Threshold {
    /// Fewer expired rows than this are deleted in place: a few seconds of short batches at
    /// most, without the swap's two longer holds.
    pub(super) min_expired: u64,
    /// More live rows than this are not copied: the copy takes 2–3 µs a row under the write
    /// lock (the first hold took 30–116 ms with 10,000 live rows beside a million expired ones,
    /// 16–41 ms with one).
    pub(super) max_live: u64,
}

impl Threshold {
    pub(super) const DEFAULT: Self = Self { min_expired: 100_000, max_live: 10_000 };
    /// Never swap.
    pub(super) const NEVER: Self = Self { min_expired: u64::MAX, max_live: 0 };
}

/// Drop the old table a sweep interrupted between its two holds left behind, if any.
pub(super) fn drop_leftover(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!("DROP TABLE IF EXISTS {OLD}"))
}

/// Whether to swap rather than delete in place: enough expired rows, few live ones, and nothing
/// else in the schema naming the table.
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
    Ok(live <= threshold.max_live && total - live >= threshold.min_expired && !named_elsewhere(conn)?)
}

/// Whether a trigger, a view or another table's definition names `django_session`.
fn named_elsewhere(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE sql LIKE '%django_session%'
             AND (type IN ('trigger', 'view') OR (type = 'table' AND name <> 'django_session')))",
        [],
        |r| r.get(0),
    )
}

/// Keep the rows live at `now` (Django's text form) in a new `django_session` and drop the old
/// one; the number of rows removed, or `None` when the schema changed since [`worth_it`] so
/// that the swap no longer applies.
pub(super) fn run(conn: &Connection, now: &str) -> rusqlite::Result<Option<u64>> {
    let started = std::time::Instant::now();
    let kept = {
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        if named_elsewhere(&tx)? {
            return Ok(None);
        }
        let Some(table) = tx
            .query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'django_session'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
        else {
            return Ok(None);
        };
        // The indexes Django made (the primary key's comes with the table's DDL).
        let indexes = tx
            .prepare(
                "SELECT name, sql FROM sqlite_master
                 WHERE type = 'index' AND tbl_name = 'django_session' AND sql IS NOT NULL",
            )?
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        tx.execute_batch(&format!("ALTER TABLE django_session RENAME TO {OLD}"))?;
        tx.execute_batch(&table)?;
        // Live is what the in-place DELETE (`expire_date < now`) would keep. Copied while the
        // old table still has its expire_date index (without it, a scan of every row).
        let kept =
            tx.execute(&format!("INSERT INTO django_session SELECT * FROM {OLD} WHERE expire_date >= ?1"), [now])?;
        for (name, sql) in &indexes {
            tx.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))?;
            tx.execute_batch(sql)?;
        }
        tx.commit()?;
        kept as u64
    };
    let swapped = started.elapsed();
    // No one writes to the old table any more: count it without the lock.
    let old: u64 = conn.query_row(&format!("SELECT count(*) FROM {OLD}"), [], |r| r.get(0))?;
    let removed = old.saturating_sub(kept);
    let dropping = std::time::Instant::now();
    // The expired rows are gone from django_session either way: a failed drop only leaves
    // their table to the next sweep.
    if let Err(e) = drop_leftover(conn) {
        tracing::warn!(error = %e, "dropping the swept table failed; the next sweep drops it");
    }
    tracing::debug!(kept, removed, ?swapped, dropped = ?dropping.elapsed(), "session table swapped");
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

    #[test]
    fn the_live_rows_are_kept_as_they_were_and_the_schema_is_django_s_again() {
        let (_dir, conn) = database("");
        let before = schema(&conn);
        let live: Vec<_> = rows(&conn).into_iter().filter(|(_, _, e)| e.as_str() >= NOW).collect();
        assert_eq!(live.len(), 31);
        assert!(worth_it(&conn, NOW, LOW).unwrap());
        // Two commits: the swap itself (rename, copy, indexes: no other connection ever sees
        // the table without its live rows), then the drop of the old table.
        let commits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = commits.clone();
        conn.commit_hook(Some(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            false
        }));
        assert_eq!(run(&conn, NOW).unwrap(), Some(3001 - 31));
        conn.commit_hook(None::<fn() -> bool>);
        assert_eq!(commits.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(rows(&conn), live);
        assert_eq!(schema(&conn), before, "the same table and indexes, by the same DDL");
        // The old table's pages are free, not lost.
        let free: u64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0)).unwrap();
        assert!(free > 10, "{free} free pages");
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
        // The expire_date index is there and used.
        let plan: String = conn
            .query_row("EXPLAIN QUERY PLAN SELECT 1 FROM django_session WHERE expire_date < ?1", [NOW], |r| r.get(3))
            .unwrap();
        assert!(plan.contains("django_session_expire_date_a5c62663"), "{plan}");
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
    fn a_trigger_a_view_or_a_foreign_key_on_the_table_rules_the_swap_out() {
        for setup in [
            "CREATE VIEW recent AS SELECT * FROM django_session WHERE expire_date > '2025'",
            "CREATE TABLE audit (k text); CREATE TRIGGER gone AFTER DELETE ON django_session
                 BEGIN INSERT INTO audit VALUES (old.session_key); END",
            "CREATE TABLE visits (k varchar(40) REFERENCES django_session (session_key))",
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
    fn an_old_table_left_by_an_interrupted_sweep_is_dropped() {
        let (_dir, conn) = database(&format!("CREATE TABLE {OLD} AS SELECT * FROM django_session"));
        drop_leftover(&conn).unwrap();
        let left: u64 =
            conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = ?1", [OLD], |r| r.get(0)).unwrap();
        assert_eq!(left, 0);
        assert_eq!(rows(&conn).len(), 3001);
    }
}
