//! Freeing a swapped-out session table a paced batch at a time.
//!
//! `DROP TABLE` frees a table in one statement, reading every page to put it on the free list:
//! about 75 ms under the write lock for a million sessions, which writes waiting behind it
//! felt at p99 (73–105 ms in `bench/clearsessions.sh`'s open loop). SQLite has no statement
//! that frees part of a b-tree, but deleting rows in the order they are stored empties whole
//! pages, which go to the free list as they empty. Each page is then written to the WAL about
//! once (in WAL mode SQLite writes a page dirtied and freed in one transaction all the same):
//! about 230 MB for a million sessions, which the pacer's checkpoints copy back, a twentieth
//! of what deleting them in place writes. That works on a table without indexes. An index,
//! though, is freed only by `DROP INDEX`, all at once, and deleting the table's rows in rowid
//! order removes index entries at random (the very cost the swap avoids).
//!
//! So the swap unbinds each index from the old table ([`unbind`]): its row in the schema
//! becomes a `WITHOUT ROWID` table whose primary key is the index's columns followed by the
//! rowid. That is how the index's b-tree is already laid out: an index entry is a record of its
//! columns then the rowid, kept in an index b-tree sorted by the whole record, and a
//! `WITHOUT ROWID` table's row is a record of its key columns, kept in an index b-tree sorted
//! by them. Nothing on disk changes; the edit follows the `writable_schema` procedure of
//! SQLite's ALTER TABLE documentation ("Making Other Kinds Of Table Schema Changes"), in the
//! swap's one transaction. It holds only for indexes of plain columns in binary ascending
//! order, whose records sort as the new key does; `swap` rules the rest out. Every b-tree is
//! then a table with no index, emptied in key order (from the end) and dropped once empty (a
//! few pages).
//!
//! Tables named with [`PREFIX`] belong to the sweep: one an interrupted sweep left is finished
//! by the next.

use rusqlite::{types::Value, Connection, OptionalExtension, TransactionBehavior};

use super::pacer::Pacer;

/// The names of the tables left to free.
pub(super) const PREFIX: &str = "sesame_swept_";

/// The name a b-tree to free goes by: its root page, unique among the database's b-trees.
pub(super) fn name(root: i64) -> String {
    format!("{PREFIX}{root}")
}

/// Turn each index of `table` into a `WITHOUT ROWID` table of its own (named by [`name`]), and
/// `table` into one without a key, so that each can be emptied in its own order. Runs inside
/// the caller's write transaction.
pub(super) fn unbind(tx: &Connection, table: &str) -> rusqlite::Result<()> {
    let version: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    let columns: usize = tx.query_row("SELECT count(*) FROM pragma_table_info(?1)", [table], |r| r.get(0))?;
    // Each index's entry holds its columns and then the rowid (`index_xinfo` lists both).
    let indexes = tx
        .prepare(
            "SELECT m.rootpage, (SELECT count(*) FROM pragma_index_xinfo(m.name)), m.name
             FROM sqlite_master AS m WHERE m.type = 'index' AND m.tbl_name = ?1",
        )?
        .query_map([table], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, usize>(1)?, r.get::<_, String>(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    tx.execute_batch("PRAGMA writable_schema = ON")?;
    for (root, fields, index) in &indexes {
        let to = name(*root);
        let key = placeholders(*fields);
        tx.execute(
            "UPDATE sqlite_master SET type = 'table', name = ?1, tbl_name = ?1, sql = ?2
             WHERE type = 'index' AND name = ?3",
            (&to, format!("CREATE TABLE \"{to}\" ({key}, PRIMARY KEY ({key})) WITHOUT ROWID"), index),
        )?;
    }
    tx.execute(
        "UPDATE sqlite_master SET sql = ?1 WHERE type = 'table' AND name = ?2",
        (format!("CREATE TABLE \"{table}\" ({})", placeholders(columns)), table),
    )?;
    // A new schema version makes every connection, this one included (RESET), read the
    // schema again.
    tx.execute_batch(&format!("PRAGMA schema_version = {}; PRAGMA writable_schema = RESET", version + 1))
}

/// `c0, c1, …`: column names for a table that is only ever emptied.
fn placeholders(n: usize) -> String {
    (0..n).map(|i| format!("c{i}")).collect::<Vec<_>>().join(", ")
}

/// Free every table named with [`PREFIX`], one paced batch at a time.
pub(super) fn all(conn: &Connection, pacer: &mut Pacer) -> rusqlite::Result<()> {
    let tables = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?1 ESCAPE '\\' ORDER BY name")?
        .query_map([PREFIX.replace('_', "\\_") + "%"], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for table in tables {
        free(conn, pacer, &table)?;
    }
    Ok(())
}

/// The two statements of a batch over a table keyed by `key`.
struct Batch {
    /// The batch's first key: the `?1`-th row from the end, none when fewer are left.
    first: String,
    /// Every row from a first key (bound as `?1`, `?2`, …) to the end.
    delete: String,
    /// Columns in the key.
    columns: usize,
}

impl Batch {
    // From the last row back to the batch's first key: the last `size` rows (backwards, each
    // deletion takes the last cell of its page, and a batch took half the time it took
    // forwards). When fewer are left there is no first key; the rest go, with the table, in
    // one batch. The first key is read by a statement of its own and bound into the `DELETE`:
    // given as a subquery on the same table, it made SQLite (3.46) delete in two passes,
    // gathering the batch's keys (into a row set, or a temporary b-tree for a `WITHOUT ROWID`
    // table) and then seeking each one again: about two thirds of the sweep's user CPU time.
    fn new(table: &str, key: &[String]) -> Self {
        let descending = key.iter().map(|c| format!("{c} DESC")).collect::<Vec<_>>().join(", ");
        let params = (1..=key.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        let columns = key.len();
        let key = key.join(", ");
        Batch {
            first: format!("SELECT {key} FROM \"{table}\" ORDER BY {descending} LIMIT 1 OFFSET ?1"),
            delete: format!("DELETE FROM \"{table}\" WHERE ({key}) >= ({params})"),
            columns,
        }
    }

    /// The first key of a batch of `size` rows, none when fewer are left. Both statements are
    /// cached on the connection: a table takes hundreds of batches.
    fn first_key(&self, conn: &Connection, size: usize) -> rusqlite::Result<Option<Vec<Value>>> {
        conn.prepare_cached(&self.first)?
            .query_row([size.saturating_sub(1)], |r| (0..self.columns).map(|i| r.get(i)).collect())
            .optional()
    }

    /// Delete every row from `first` to the end.
    fn delete_from(&self, conn: &Connection, first: Vec<Value>) -> rusqlite::Result<usize> {
        conn.prepare_cached(&self.delete)?.execute(rusqlite::params_from_iter(first))
    }
}

/// Empty `table` in its key's order, a batch per transaction, and drop it.
fn free(conn: &Connection, pacer: &mut Pacer, table: &str) -> rusqlite::Result<()> {
    let (indexed, without_rowid): (bool, bool) = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1),
                EXISTS (SELECT 1 FROM pragma_table_list WHERE schema = 'main' AND name = ?1 AND wr)",
        [table],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if indexed {
        // Left by an earlier version's swap, which kept the primary key's index with the old
        // table: emptying it would touch that index at random, so it goes in one statement.
        return conn.execute_batch(&format!("DROP TABLE IF EXISTS \"{table}\""));
    }
    let key: Vec<String> = if without_rowid {
        conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([table], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?
    } else {
        vec!["rowid".to_owned()]
    };
    let batch = Batch::new(table, &key);
    let (started, batches) = (std::time::Instant::now(), pacer.batches);
    pacer.longest = std::time::Duration::ZERO;
    let (mut dropped, mut rows) = (false, 0);
    while !dropped {
        rows += pacer.batch(conn, |size| {
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            // Another sweep, running beside this one, may have finished it.
            let there: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                [table],
                |r| r.get(0),
            )?;
            if !there {
                dropped = true;
                return Ok(0);
            }
            let deleted = match batch.first_key(&tx, size)? {
                Some(first) => batch.delete_from(&tx, first)?,
                None => {
                    let deleted = tx.execute(&format!("DELETE FROM \"{table}\""), [])?;
                    tx.execute_batch(&format!("DROP TABLE \"{table}\""))?;
                    dropped = true;
                    deleted
                }
            };
            tx.commit()?;
            Ok(deleted)
        })?;
    }
    tracing::debug!(table, rows, batches = pacer.batches - batches, longest = ?pacer.longest, took = ?started.elapsed(), "freed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The opcodes SQLite compiles `sql` to.
    fn opcodes(conn: &Connection, sql: &str) -> Vec<String> {
        let mut explain = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let nulls = vec![Value::Null; explain.parameter_count()];
        explain
            .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(1))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_batch_deletes_in_one_pass_over_rowid_and_without_rowid_tables() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (c0, c1, c2);
             CREATE TABLE w (c0, c1, PRIMARY KEY (c0, c1)) WITHOUT ROWID;",
        )
        .unwrap();
        for (table, key) in [("t", vec!["rowid"]), ("w", vec!["c0", "c1"])] {
            let key: Vec<String> = key.into_iter().map(String::from).collect();
            let ops = opcodes(&conn, &Batch::new(table, &key).delete);
            assert!(ops.iter().any(|o| o == "Delete"), "{table}: {ops:?}");
            // Two passes gather the keys first (a row set, or a temporary b-tree) and look
            // each one up again before deleting it.
            for two_pass in ["OpenEphemeral", "RowSetAdd", "RowSetRead", "NotFound", "NotExists"] {
                assert!(!ops.iter().any(|o| o == two_pass), "{table}: {two_pass} in {ops:?}");
            }
        }
    }

    #[test]
    fn a_batch_takes_the_last_rows_and_has_no_first_key_when_fewer_are_left() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE w (c0, c1, PRIMARY KEY (c0, c1)) WITHOUT ROWID;
             WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 10)
             INSERT INTO w SELECT 'k' || (x % 3), x FROM n;",
        )
        .unwrap();
        let batch = Batch::new("w", &["c0".to_owned(), "c1".to_owned()]);
        let left = |conn: &Connection| -> Vec<(String, i64)> {
            conn.prepare("SELECT c0, c1 FROM w ORDER BY c0, c1")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let all = left(&conn);
        let bound = batch.first_key(&conn, 4).unwrap().unwrap();
        assert_eq!(bound, [Value::Text("k1".into()), Value::Integer(10)]);
        assert_eq!(batch.delete_from(&conn, bound).unwrap(), 4);
        assert_eq!(left(&conn), all[..6]);
        // Fewer rows than a batch: no first key.
        let none = batch.first_key(&conn, 7).unwrap();
        assert_eq!(none, None);
    }
}
