//! The `sesame` command-line tool, run as a real process against a real SQLite database.
mod common;

use chrono::{TimeDelta, Utc};
use common::*;
use sesame::store::{Record, SessionStore, SqliteStore};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Db {
    dir: tempfile::TempDir,
    live: Vec<String>,
    expired: Vec<String>,
}

impl Db {
    fn url(&self) -> String {
        format!("sqlite:{}", self.path().display())
    }
    fn path(&self) -> PathBuf {
        self.dir.path().join("db.sqlite3")
    }
}

/// 5 live and 7 expired sessions, encoded as Django encodes them.
async fn seeded() -> Db {
    let (store, dir) = sqlite_store().await;
    let mut db = Db { dir, live: vec![], expired: vec![] };
    for i in 0..12 {
        let key = sesame::key::generate();
        let expire = if i < 5 { Utc::now() + TimeDelta::days(1) } else { Utc::now() - TimeDelta::hours(i) };
        let d = data(serde_json::json!({"user": format!("user{i}"), "i": i}));
        store.create(&key, Record { data: &d, expire_date: expire }).await.unwrap();
        if i < 5 {
            db.live.push(key)
        } else {
            db.expired.push(key)
        }
    }
    db
}

fn sesame(db_url: &str, secret: &str, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(args)
        .current_dir(cwd)
        .env("DATABASE_URL", db_url)
        .env("SECRET_KEY", secret)
        .env_remove("SESSION_ENGINE")
        .env_remove("SECRET_KEY_FALLBACKS")
        .env_remove("SESAME_SETTINGS")
        .env_remove("SESSION_CLEAR_EXPIRED_SWAP")
        .output()
        .unwrap()
}

fn run(db: &Db, args: &[&str]) -> Output {
    sesame(&db.url(), SECRET, db.dir.path(), args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn count_and_list() {
    let db = seeded().await;
    let o = run(&db, &["sessions", "count"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "12");

    let o = run(&db, &["sessions", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 13, "{text}");
    for k in db.live.iter().chain(&db.expired) {
        assert!(!text.contains(k.as_str()), "full key printed without --show-keys");
        assert!(text.contains(&k[..6]));
    }
    let o = run(&db, &["sessions", "list", "--expired"]);
    assert_eq!(stdout(&o).lines().count(), 8);
    let o = run(&db, &["sessions", "list", "--limit", "3", "--show-keys"]);
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 4);
    // Ordered by expiry: the oldest expired session comes first.
    assert!(text.contains(db.expired.last().unwrap().as_str()), "{text}");
}

#[tokio::test]
async fn get_shows_decoded_data_and_expiry() {
    let db = seeded().await;
    let o = run(&db, &["sessions", "get", &db.live[0]]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["session_key"], db.live[0].as_str());
    assert_eq!(v["data"], serde_json::json!({"user": "user0", "i": 0}));
    assert_eq!(v["expired"], false);
    assert!(v["expire_date"]
        .as_str()
        .unwrap()
        .starts_with(&(Utc::now() + TimeDelta::days(1)).format("%Y-%m-%d").to_string()));

    let o = run(&db, &["sessions", "get", &db.expired[0]]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["expired"], true);

    let o = run(&db, &["sessions", "get", "unknownkey0000000000000000000000"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("no session with key unknow…"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("unknownkey0000000000000000000000"));
}

#[tokio::test]
async fn a_wrong_secret_key_is_reported() {
    let db = seeded().await;
    let o = sesame(&db.url(), "not-the-servers-key", db.dir.path(), &["sessions", "get", &db.live[0]]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("SECRET_KEY"), "{}", stderr(&o));
    let o = sesame(&db.url(), "not-the-servers-key", db.dir.path(), &["sessions", "list"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("none of the 12 sessions listed verify"), "{}", stderr(&o));
    // A fallback key makes them readable again.
    let o = Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["sessions", "get", &db.live[1]])
        .current_dir(db.dir.path())
        .env("DATABASE_URL", db.url())
        .env("SECRET_KEY", "new-key")
        .env("SECRET_KEY_FALLBACKS", SECRET)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[tokio::test]
async fn decode_raw_session_data() {
    let db = seeded().await;
    let encoded = sesame::codec::Codec::new(SECRET, &[]).encode(&data(serde_json::json!({"a": [1, "é"]})));
    let o = run(&db, &["sessions", "decode", &encoded]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v, serde_json::json!({"a": [1, "é"]}));
    let o = sesame(&db.url(), "other", db.dir.path(), &["sessions", "decode", &encoded]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad signature"), "{}", stderr(&o));
    let o = run(&db, &["sessions", "decode", "garbage"]);
    assert_eq!(o.status.code(), Some(1));
}

#[tokio::test]
async fn delete_one_session() {
    let db = seeded().await;
    let o = run(&db, &["sessions", "delete", &db.live[0]]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains(db.live[0].as_str()), "logs never print a full key");
    assert_eq!(stdout(&run(&db, &["sessions", "count"])).trim(), "11");
    let o = run(&db, &["sessions", "delete", &db.live[0]]);
    assert_eq!(o.status.code(), Some(1));
}

#[tokio::test]
async fn clearsessions_deletes_exactly_the_expired() {
    let db = seeded().await;
    let o = run(&db, &["clearsessions"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("Deleted 7 expired sessions"), "{}", stdout(&o));
    let store = SqliteStore::connect(&db.url(), sesame::codec::Codec::new(SECRET, &[])).await.unwrap();
    for k in &db.live {
        assert!(store.exists(k).await.unwrap(), "a live session was deleted");
    }
    for k in &db.expired {
        assert!(!store.exists(k).await.unwrap());
    }
    let o = run(&db, &["clearsessions"]);
    assert!(stdout(&o).starts_with("Deleted 0 expired sessions"));
}

/// A table that is nearly all expired is swapped (a new `django_session`, so a new root page),
/// unless `SESSION_CLEAR_EXPIRED_SWAP = false`, which deletes in batches from the same table.
#[tokio::test]
async fn clearsessions_swaps_a_mostly_expired_table_unless_told_not_to() {
    for swap in [false, true] {
        let db = seeded().await;
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        conn.execute_batch(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
             INSERT INTO django_session SELECT lower(hex(randomblob(16))), 'x', '2020-01-01 00:00:00' FROM c",
        )
        .unwrap();
        let root = || -> i64 {
            conn.query_row("SELECT rootpage FROM sqlite_master WHERE name = 'django_session'", [], |r| r.get(0))
                .unwrap()
        };
        let before = root();
        let mut cli = Command::new(env!("CARGO_BIN_EXE_sesame"));
        cli.arg("clearsessions").current_dir(db.dir.path()).env("DATABASE_URL", db.url()).env("SECRET_KEY", SECRET);
        cli.env_remove("SESAME_SETTINGS").env_remove("SESSION_ENGINE").env_remove("SESSION_CLEAR_EXPIRED_SWAP");
        if !swap {
            cli.env("SESSION_CLEAR_EXPIRED_SWAP", "false");
        }
        let o = cli.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).starts_with("Deleted 100007 expired sessions"), "{}", stdout(&o));
        assert_eq!(root() != before, swap, "swap: {swap}");
        let store = SqliteStore::connect(&db.url(), sesame::codec::Codec::new(SECRET, &[])).await.unwrap();
        assert_eq!(store.count().await.unwrap(), 5);
        for k in &db.live {
            assert!(store.exists(k).await.unwrap(), "a live session was deleted");
        }
    }
}

#[tokio::test]
async fn clear_errors_for_bad_setups_and_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite:{}", dir.path().join("nope.sqlite3").display());
    let o = sesame(&missing, SECRET, dir.path(), &["sessions", "count"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    assert!(!dir.path().join("nope.sqlite3").exists(), "the CLI must not create a database");

    // A database without the table.
    let empty = dir.path().join("empty.sqlite3");
    assert!(Command::new("sqlite3").arg(&empty).arg("CREATE TABLE other(x);").status().unwrap().success());
    let o = sesame(&format!("sqlite:{}", empty.display()), SECRET, dir.path(), &["sessions", "count"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no django_session table"), "{}", stderr(&o));

    let db = seeded().await;
    for args in [&["sessions"][..], &["frobnicate"], &["sessions", "list", "--limit", "many"]] {
        let o = run(&db, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    let o = Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["sessions", "count"])
        .current_dir(db.dir.path())
        .env("DATABASE_URL", db.url())
        .env("SESSION_COOKIE_AGE", "soon")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("SESSION_COOKIE_AGE"), "{}", stderr(&o));
}

#[tokio::test]
async fn settings_file_is_read() {
    let db = seeded().await;
    let file = db.dir.path().join("custom.toml");
    std::fs::write(&file, format!("[sessions]\nDATABASE_URL = \"{}\"\nSECRET_KEY = \"{SECRET}\"\n", db.url())).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["--settings", file.to_str().unwrap(), "sessions", "get", &db.live[2]])
        .current_dir(db.dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("SECRET_KEY")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("user2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_sweeper_removes_only_expired_sessions() {
    let db = seeded().await;
    let mut settings = sesame::Settings::with_secret_key(SECRET);
    settings.database_url = db.url();
    let sessions = sesame::Sessions::connect(settings).await.unwrap();
    let task = sessions.spawn_sweeper(std::time::Duration::from_millis(50));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sessions.count().await.unwrap() > 5 {
        assert!(std::time::Instant::now() < deadline, "sweeper did not run");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    task.abort();
    for k in &db.live {
        assert!(sessions.get(k).await.unwrap().is_some());
    }
}
