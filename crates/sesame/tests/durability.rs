//! Kill the process mid-load (SIGKILL, no shutdown) and check that every session whose save
//! had returned is in the database, intact and decodable, and that the file passes SQLite's
//! integrity check. The "server" is this test binary re-executed with `SESAME_DURABILITY_DB`
//! set, so the child is a real separate process writing through the real SQLite store.
mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The child: writes sessions as fast as it can and prints each one after its save returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by killed_mid_load_loses_no_committed_session as a child process"]
async fn durability_child() {
    let Ok(url) = std::env::var("SESAME_DURABILITY_DB") else { return };
    let store = sesame::store::SqliteStore::connect(&url, sesame::codec::Codec::new(SECRET, &[])).await.unwrap();
    let sessions = sesame::Sessions::new(Arc::new(store), sesame::Settings::with_secret_key(SECRET));
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let sessions = sessions.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                let s = sessions.open(None);
                s.insert("worker", worker).await.unwrap();
                s.insert("payload", "x".repeat(200 + (i as usize % 50))).await.unwrap();
                s.save().await.unwrap();
                let key = s.session_key().unwrap();
                // Then a few exact increments of the same session.
                let mut n = 0;
                for _ in 0..3 {
                    n = s
                        .modify(|d| {
                            let n = d.get("n").and_then(|v| v.as_i64()).unwrap_or(0) + 1;
                            d.insert("n".into(), n.into());
                            n
                        })
                        .await
                        .unwrap();
                }
                println!("committed {key} {n}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn killed_mid_load_loses_no_committed_session() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("db.sqlite3").display());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "durability_child", "--ignored", "--nocapture", "--test-threads", "1"])
        .env("SESAME_DURABILITY_DB", &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut committed = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("committed ") {
                let (key, n) = rest.split_once(' ').unwrap();
                committed.push((key.to_owned(), n.parse::<i64>().unwrap()));
            }
        }
        committed
    });
    // Let it write for a while, then kill it without warning.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let committed = reader.join().unwrap();
    assert!(committed.len() > 50, "the child wrote too little to prove anything: {}", committed.len());

    let store = sesame::store::SqliteStore::connect(&url, sesame::codec::Codec::new(SECRET, &[])).await.unwrap();
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check").fetch_one(store.writer_pool()).await.unwrap();
    assert_eq!(check, "ok");
    let sessions = sesame::Sessions::new(Arc::new(store), sesame::Settings::with_secret_key(SECRET));
    for (key, n) in &committed {
        let info = sessions.get(key).await.unwrap().unwrap_or_else(|| panic!("committed session {key} lost"));
        let data = info.data.unwrap_or_else(|e| panic!("committed session {key} corrupted: {e}"));
        assert_eq!(data.get("n").and_then(|v| v.as_i64()), Some(*n), "session {key}");
        assert!(data.get("payload").and_then(|v| v.as_str()).is_some_and(|p| p.len() >= 200));
    }
    // Every row in the file, acknowledged or not, decodes.
    for row in sessions.list(false, u64::MAX).await.unwrap() {
        let info = sessions.get(&row.key).await.unwrap().unwrap();
        assert!(info.data.is_ok(), "row {} does not decode", row.key);
    }
}
