//! The store conformance suite on SQLite (a real database file), plus SQLite specifics.
mod common;

use common::*;
use sesame::store::SessionStore;
use std::sync::Arc;

async fn make() -> (Arc<dyn SessionStore>, tempfile::TempDir) {
    let (store, dir) = sqlite_store().await;
    (Arc::new(store), dir)
}

store_conformance!(make());

#[tokio::test]
async fn table_matches_djangos_ddl_and_migrations_are_idempotent() {
    let (store, dir) = sqlite_store().await;
    let url = format!("sqlite:{}", dir.path().join("db.sqlite3").display());
    let schema = || async {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT sql FROM sqlite_master WHERE tbl_name = 'django_session' ORDER BY name")
                .fetch_all(store.writer_pool())
                .await
                .unwrap();
        rows.into_iter().map(|r| r.0).collect::<Vec<_>>()
    };
    let before = schema().await;
    assert!(before[0].contains(r#""session_key" varchar(40) NOT NULL PRIMARY KEY"#), "{before:?}");
    assert!(before.iter().any(|s| s.contains("django_session_expire_date_a5c62663")), "{before:?}");
    // Connecting again (a second server, the CLI) neither fails nor changes the table.
    let again = sesame::store::SqliteStore::connect(&url, sesame::codec::Codec::new(SECRET, &[])).await.unwrap();
    drop(again);
    assert_eq!(schema().await, before);
}

#[tokio::test]
async fn an_existing_django_table_is_used_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    // The table exactly as Django's `migrate` creates it, with a row Django wrote.
    let ddl = "CREATE TABLE \"django_session\" (\"session_key\" varchar(40) NOT NULL PRIMARY KEY, \"session_data\" text NOT NULL, \"expire_date\" datetime NOT NULL);\n\
               CREATE INDEX \"django_session_expire_date_a5c62663\" ON \"django_session\" (\"expire_date\");";
    let status = std::process::Command::new("sqlite3").arg(&path).arg(ddl).status().unwrap();
    assert!(status.success());
    let codec = sesame::codec::Codec::new(SECRET, &[]);
    let encoded = codec.encode(&data(serde_json::json!({"from": "django"})));
    let insert = format!(
        "INSERT INTO django_session VALUES ('djangowrotethis000000000000000000', '{encoded}', '2999-01-01 00:00:00');"
    );
    assert!(std::process::Command::new("sqlite3").arg(&path).arg(insert).status().unwrap().success());
    let store = sesame::store::SqliteStore::connect(&format!("sqlite:{}", path.display()), codec).await.unwrap();
    let loaded = store.load("djangowrotethis000000000000000000", chrono::Utc::now()).await.unwrap().unwrap();
    assert_eq!(*loaded.data, data(serde_json::json!({"from": "django"})));
}

#[tokio::test]
async fn tampered_rows_read_as_empty_and_can_be_overwritten() {
    let (store, _dir) = sqlite_store().await;
    let k = "tampered000000000000000000000000";
    created(&store, k, &data(serde_json::json!({"user": "alice"})), later()).await;
    sqlx::query(
        "UPDATE django_session SET session_data = 'eyJ1c2VyIjoiYWRtaW4ifQ:1r31eq:forged' WHERE session_key = ?1",
    )
    .bind(k)
    .execute(store.writer_pool())
    .await
    .unwrap();
    let loaded = store.load(k, chrono::Utc::now()).await.unwrap().unwrap();
    assert!(loaded.data.is_empty());
    // Django keeps the key and overwrites the bad row on the next save.
    let fresh = data(serde_json::json!({"ok": 1}));
    assert!(matches!(
        store.save(k, record(&fresh, later()), &loaded.version).await.unwrap(),
        sesame::store::Saved::Saved { .. }
    ));
}

#[tokio::test]
async fn a_missing_directory_is_a_clear_error() {
    let err = sesame::store::SqliteStore::connect(
        "sqlite:/nonexistent-dir/sub/db.sqlite3",
        sesame::codec::Codec::new(SECRET, &[]),
    )
    .await
    .unwrap_err();
    let text = format!("{err}: {:?}", std::error::Error::source(&err));
    assert!(text.contains("database") || text.contains("unable to open"), "{text}");
}

/// Two independent `Sessions` over one database file stand for two server processes: no
/// shared in-process lock, only the store's compare-and-set.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_lost_updates_across_two_processes() {
    let (store_a, dir) = sqlite_store().await;
    let url = format!("sqlite:{}", dir.path().join("db.sqlite3").display());
    let store_b = sesame::store::SqliteStore::connect(&url, sesame::codec::Codec::new(SECRET, &[])).await.unwrap();
    let a = sesame::Sessions::new(Arc::new(store_a), sesame::Settings::with_secret_key(SECRET));
    let b = sesame::Sessions::new(Arc::new(store_b), sesame::Settings::with_secret_key(SECRET));
    two_process_increments(&a, &b).await;
}

#[tokio::test]
async fn sweeping_in_short_batches_removes_exactly_the_expired_rows() {
    let (store, _dir) = sqlite_store().await;
    let n: u64 = 20_000;
    sqlx::query(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1) \
         INSERT INTO django_session SELECT printf('expired%025d', x), 'x', '2020-01-01 00:00:00' FROM c",
    )
    .bind(n as i64)
    .execute(store.writer_pool())
    .await
    .unwrap();
    created(&store, "stillalive000000000000000000000", &data(serde_json::json!({})), later()).await;
    let totals = std::sync::Mutex::new(Vec::new());
    let removed =
        store.clear_expired_with_progress(chrono::Utc::now(), &|t| totals.lock().unwrap().push(t)).await.unwrap();
    assert_eq!(removed, n);
    let totals = totals.into_inner().unwrap();
    // Many short transactions, each reported, the running total rising to n.
    assert!(totals.len() > 4, "{} batches", totals.len());
    assert!(totals.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(totals.last(), Some(&n));
    assert_eq!(store.count().await.unwrap(), 1);
    assert!(store.load("stillalive000000000000000000000", chrono::Utc::now()).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_for_a_write_lock_held_by_another_process_then_commits() {
    let (store, dir) = sqlite_store().await;
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let sessions = sesame::Sessions::new(store.clone(), sesame::Settings::with_secret_key(SECRET));
    let s = sessions.open(None);
    s.insert("n", 1).await.unwrap();
    s.save().await.unwrap();
    let key = s.session_key().unwrap();

    // Another connection (as another process would) holds the write lock until told to let go.
    let path = dir.path().join("db.sqlite3");
    let (locked_tx, locked) = tokio::sync::oneshot::channel();
    let (release_tx, release) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let other = rusqlite::Connection::open(path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(()).unwrap();
        release.recv().unwrap();
        other.execute_batch("COMMIT").unwrap();
    });
    locked.await.unwrap();
    let writer = sessions.open(Some(&key));
    let write = tokio::spawn(async move { increment(&writer).await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!write.is_finished(), "the write cannot commit while another process holds the lock");
    // Reads go on meanwhile.
    assert_eq!(sessions.open(Some(&key)).get::<i64>("n").await.unwrap(), Some(1));
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    write.await.unwrap();
    assert_eq!(sessions.open(Some(&key)).get::<i64>("count").await.unwrap(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_off_the_write_path_and_stays_bounded() {
    let (store, dir) = sqlite_store().await;
    let wal = dir.path().join("db.sqlite3-wal");
    let d = data(serde_json::json!({"user": "someone", "n": 1}));
    let mut largest = 0;
    for i in 0..8_000 {
        created(&store, &format!("wal{i:029}"), &d, later()).await;
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    // The writer's own auto-checkpoint is off, and back-to-back writes never leave a passive
    // checkpoint a quiet moment to finish: without the checkpoints finished under the write
    // lock past 64 MB, and the writer's own past its 96 MB ceiling, these 8,000 commits of a
    // few pages each grow the WAL to about 115 MB. At most one group of writes lands past the
    // ceiling before the writer checks.
    assert!(largest < 104 << 20, "the WAL reached {largest} bytes");
    assert_eq!(store.count().await.unwrap(), 8_000);
}

/// `rows` expired sessions with random keys, as Django makes them, and Django-encoded data,
/// written straight into the database in `dir`, with the WAL then emptied.
fn seed_expired(dir: &std::path::Path, rows: u32) {
    let payload = sesame::codec::Codec::new(SECRET, &[]).encode(&data(serde_json::json!({"user": "someone"})));
    rusqlite::Connection::open(dir.join("db.sqlite3"))
        .unwrap()
        .execute_batch(&format!(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows})
             INSERT INTO django_session SELECT lower(hex(randomblob(16))), '{payload}',
                 datetime('2020-01-01', '+' || (x % 86400) || ' seconds') FROM c;
             PRAGMA wal_checkpoint(TRUNCATE);"
        ))
        .unwrap();
}

/// A sweep of expired rows beside a steady stream of the server's writes: neither leaves the
/// other a moment without commits, so a passive checkpoint never copies the whole WAL, and
/// only a checkpoint finished under the write lock lets it start over. Without that the WAL
/// grows by every page the sweep deletes from. Keys are random, as Django's are: each deleted
/// row then dirties its own page of the key index (about 430 MB of WAL for these 100,000
/// rows). Swaps are off (`SESSION_CLEAR_EXPIRED_SWAP = false`): a table this expired would
/// otherwise be swapped, see the next test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_beside_steady_writes_keeps_the_wal_bounded() {
    let (store, dir) = sqlite_store().await;
    let store = Arc::new(store.swapping_when_mostly_expired(false));
    seed_expired(dir.path(), 100000);
    let wal = dir.path().join("db.sqlite3-wal");
    let sweeper = store.clone();
    let sweep = tokio::spawn(async move { sweeper.clear_expired(chrono::Utc::now()).await });
    let d = data(serde_json::json!({"n": 1}));
    let (mut written, mut largest) = (0, 0);
    while !sweep.is_finished() {
        created(&*store, &format!("live{written:028}"), &d, later()).await;
        written += 1;
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    assert_eq!(sweep.await.unwrap().unwrap(), 100_000);
    assert!(written > 100, "the server wrote throughout the sweep ({written} writes)");
    // The sweep finishes a checkpoint as soon as the WAL passes 64 MB (about 66 MB alone),
    // and every writer stops to copy it past 96 MB; under the full suite's load a reader or
    // another checkpoint can hold a finish back (101 MB seen once). Unbounded, it would grow
    // by every page the sweep writes, about 430 MB.
    assert!(largest < 128 << 20, "the WAL reached {largest} bytes");
    assert_eq!(store.count().await.unwrap(), written);
}

/// A table that is nearly all expired is swapped (its live rows moved to a new table, the old
/// one freed a batch at a time) while the server creates and updates sessions: every write
/// lands, before the swap (and is copied) or after it (in the new table), and the count is
/// exact. The WAL, which the server's writes share with the freeing, is bounded as in the
/// previous test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mostly_expired_table_is_swapped_beside_steady_writes_and_no_write_is_lost() {
    let (store, dir) = sqlite_store().await;
    let store = Arc::new(store);
    seed_expired(dir.path(), 120000);
    // Sessions the server keeps updating throughout, each with its current version.
    let mut live = Vec::new();
    for i in 0..20 {
        let key = format!("updated{i:025}");
        let version = created(&*store, &key, &data(serde_json::json!({"n": 0})), later()).await;
        live.push((key, 0, version));
    }
    let sweeper = store.clone();
    let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reports.clone();
    let sweep = tokio::spawn(async move {
        sweeper.clear_expired_with_progress(chrono::Utc::now(), &move |t| seen.lock().unwrap().push(t)).await
    });
    let mut new = 0;
    while !sweep.is_finished() {
        created(&*store, &format!("new{new:029}"), &data(serde_json::json!({"n": new})), later()).await;
        new += 1;
        let (key, n, version) = &mut live[new % 20];
        match store.save(key, record(&data(serde_json::json!({"n": *n + 1})), later()), version).await.unwrap() {
            sesame::store::Saved::Saved { version: v, .. } => (*n, *version) = (*n + 1, v),
            sesame::store::Saved::Conflict => panic!("{key}: no one else writes it"),
        }
    }
    assert_eq!(sweep.await.unwrap().unwrap(), 120_000);
    assert_eq!(*reports.lock().unwrap(), [120_000], "one swap, not batches");
    assert!(new > 0, "the server wrote while the sweep ran");
    assert_eq!(store.count().await.unwrap(), 20 + new as u64);
    for (key, n, version) in &live {
        let loaded = store.load(key, chrono::Utc::now()).await.unwrap().unwrap();
        assert_eq!((&*loaded.data, &loaded.version), (&data(serde_json::json!({"n": n})), version), "{key}");
    }
    for i in 0..new {
        let loaded = store.load(&format!("new{i:029}"), chrono::Utc::now()).await.unwrap();
        assert_eq!(loaded.map(|l| (*l.data).clone()), Some(data(serde_json::json!({"n": i}))));
    }
    let wal = std::fs::metadata(dir.path().join("db.sqlite3-wal")).map_or(0, |m| m.len());
    assert!(wal < 128 << 20, "the WAL reached {wal} bytes");
}

/// Reads of an unchanged database are answered from memory (the WAL stamp); anything another
/// process commits, to this row or any other, must show at the next read.
#[tokio::test]
async fn a_row_read_before_shows_what_another_process_committed_since() {
    let (store, dir) = sqlite_store().await;
    let k = "readtwice00000000000000000000000";
    let codec = sesame::codec::Codec::new(SECRET, &[]);
    created(&store, k, &data(serde_json::json!({"n": 1})), later()).await;
    let first = store.load(k, chrono::Utc::now()).await.unwrap().unwrap();
    assert_eq!(*first.data, data(serde_json::json!({"n": 1})));
    assert_eq!(*store.load(k, chrono::Utc::now()).await.unwrap().unwrap().data, *first.data);

    // Another process (a plain SQLite connection) rewrites the row...
    let other = rusqlite::Connection::open(dir.path().join("db.sqlite3")).unwrap();
    let encoded = codec.encode(&data(serde_json::json!({"n": 2})));
    assert_eq!(
        other.execute("UPDATE django_session SET session_data = ?1 WHERE session_key = ?2", (&encoded, k)).unwrap(),
        1
    );
    let second = store.load(k, chrono::Utc::now()).await.unwrap().unwrap();
    assert_eq!(*second.data, data(serde_json::json!({"n": 2})));
    assert_eq!(second.version.0, encoded);

    // ...tampers with it (reads as empty, as in Django)...
    other.execute("UPDATE django_session SET session_data = 'e30:1r31eq:forged' WHERE session_key = ?1", [k]).unwrap();
    assert!(store.load(k, chrono::Utc::now()).await.unwrap().unwrap().data.is_empty());

    // ...makes it expire, and deletes it.
    other.execute("UPDATE django_session SET session_data = ?1 WHERE session_key = ?2", (&encoded, k)).unwrap();
    assert!(store.load(k, chrono::Utc::now()).await.unwrap().is_some());
    other.execute("UPDATE django_session SET expire_date = '2000-01-01 00:00:00' WHERE session_key = ?1", [k]).unwrap();
    assert!(store.load(k, chrono::Utc::now()).await.unwrap().is_none());
    other.execute("UPDATE django_session SET expire_date = '2999-01-01 00:00:00' WHERE session_key = ?1", [k]).unwrap();
    assert!(store.load(k, chrono::Utc::now()).await.unwrap().is_some());
    other.execute("DELETE FROM django_session WHERE session_key = ?1", [k]).unwrap();
    assert!(store.load(k, chrono::Utc::now()).await.unwrap().is_none());
}

/// A row served from memory still expires on the clock, with nothing committed meanwhile.
#[tokio::test]
async fn a_remembered_row_expires_without_any_commit() {
    let (store, _dir) = sqlite_store().await;
    let k = "expiresinmemory00000000000000000";
    let now = chrono::Utc::now();
    let expire = now + chrono::Duration::seconds(60);
    created(&store, k, &data(serde_json::json!({"a": 1})), expire).await;
    assert!(store.load(k, now).await.unwrap().is_some());
    assert!(store.load(k, expire - chrono::Duration::microseconds(1)).await.unwrap().is_some());
    assert!(store.load(k, expire).await.unwrap().is_none(), "live while expire_date > now, as the query");
    assert!(store.load(k, expire + chrono::Duration::days(1)).await.unwrap().is_none());
}
