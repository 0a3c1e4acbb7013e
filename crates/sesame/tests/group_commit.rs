//! Group commit, seen from outside: concurrent writes of one session share store writes,
//! lose nothing, apply nothing twice, and survive requests that are cancelled midway.

mod common;

use common::*;
use sesame::{Sessions, Settings};
use std::sync::Arc;
use std::time::Duration;

/// SQLite (real) behind a wrapper that counts calls and makes each save take `ms`.
async fn slow_sqlite_ms(ms: u64) -> (Arc<Counting<sesame::store::SqliteStore>>, tempfile::TempDir) {
    let (store, dir) = sqlite_store().await;
    (Arc::new(Counting::slow(store, Duration::from_millis(ms))), dir)
}

async fn slow_sqlite() -> (Arc<Counting<sesame::store::SqliteStore>>, tempfile::TempDir) {
    slow_sqlite_ms(5).await
}

async fn seeded(sessions: &Sessions) -> String {
    let s = sessions.open(None);
    s.insert("seed", true).await.unwrap();
    s.save().await.unwrap();
    s.session_key().unwrap()
}

async fn count(sessions: &Sessions, key: &str) -> i64 {
    sessions.open(Some(key)).get::<i64>("count").await.unwrap().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_share_store_writes_and_end_exact() {
    let (store, _dir) = slow_sqlite().await;
    let sessions = Sessions::new(store.clone(), Settings::with_secret_key(SECRET));
    let key = seeded(&sessions).await;
    let writes_before = store.writes();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let s = sessions.open(Some(&key));
            tokio::spawn(async move { increment(&s).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(count(&sessions, &key).await, 200);
    let writes = store.writes() - writes_before;
    // One at a time this would be 200 writes of 5 ms each; batched, a handful.
    assert!(writes <= 20, "200 concurrent increments took {writes} store writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_returned_by_modify_is_distinct_and_the_last_is_stored() {
    let (store, _dir) = slow_sqlite().await;
    let sessions = Sessions::new(store, Settings::with_secret_key(SECRET));
    let key = seeded(&sessions).await;
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let s = sessions.open(Some(&key));
            tokio::spawn(async move {
                s.modify(|d| {
                    let n = d.get("count").and_then(|v| v.as_i64()).unwrap_or(0) + 1;
                    d.insert("count".into(), n.into());
                    n
                })
                .await
                .unwrap()
            })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    // Each request saw its own increment: 1..=100, none twice (a batch member never reports
    // a value that was not saved).
    assert_eq!(seen, (1..=100).collect::<Vec<i64>>());
    assert_eq!(count(&sessions, &key).await, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_two_processes_conflict_and_still_lose_nothing() {
    let (store, _dir) = slow_sqlite().await;
    // Two `Sessions` over one database: two processes, each with its own batches.
    let a = Sessions::new(store.clone(), Settings::with_secret_key(SECRET));
    let b = Sessions::new(store, Settings::with_secret_key(SECRET));
    two_process_increments(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_requests_leave_the_others_of_their_batch_answered() {
    let (store, _dir) = slow_sqlite_ms(50).await;
    let sessions = Sessions::new(store, Settings::with_secret_key(SECRET));
    let key = seeded(&sessions).await;
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let s = sessions.open(Some(&key));
            tokio::spawn(async move { increment(&s).await })
        })
        .collect();
    // Cancel every other request while batches are being written.
    tokio::time::sleep(Duration::from_millis(20)).await;
    for t in tasks.iter().step_by(2) {
        t.abort();
    }
    let mut finished = 0;
    for t in tasks {
        match tokio::time::timeout(Duration::from_secs(10), t).await.expect("a request hung") {
            Ok(()) => finished += 1,
            Err(e) => assert!(e.is_cancelled()),
        }
    }
    // Every request that finished is counted; a cancelled one may or may not be, as a
    // request cancelled after its save would be anywhere.
    assert!(finished < 100, "nothing was cancelled: the test did not test anything");
    let n = count(&sessions, &key).await;
    assert!(n >= finished && n <= 100, "{finished} finished, counter at {n}");
    // And the key still takes writes.
    increment(&sessions.open(Some(&key))).await;
    assert_eq!(count(&sessions, &key).await, n + 1);
}
