//! Shared test helpers: a store wrapper that counts I/O, stores on real backends, and the
//! store conformance suite every engine runs.
#![allow(dead_code)]

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sesame::store::{Created, Loaded, Record, Saved, SessionStore, Version};
use sesame::{Data, StoreError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub const SECRET: &str = "test-secret-key-1234567890";

/// Counts every call to the wrapped store, so tests can assert "no I/O" and "one read".
/// Optionally makes each save take a while, as a network round trip does.
#[derive(Debug)]
pub struct Counting<S> {
    pub inner: S,
    pub loads: AtomicUsize,
    pub writes: AtomicUsize,
    pub save_delay: std::time::Duration,
}

impl<S> Counting<S> {
    pub fn new(inner: S) -> Self {
        Self::slow(inner, std::time::Duration::ZERO)
    }
    pub fn slow(inner: S, save_delay: std::time::Duration) -> Self {
        Self { inner, loads: AtomicUsize::new(0), writes: AtomicUsize::new(0), save_delay }
    }
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for Counting<S> {
    async fn load(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Loaded>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(key, now).await
    }
    async fn create(&self, key: &str, record: Record<'_>) -> Result<Created, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.create(key, record).await
    }
    async fn save(&self, key: &str, record: Record<'_>, expected: &Version) -> Result<Saved, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if !self.save_delay.is_zero() {
            tokio::time::sleep(self.save_delay).await;
        }
        self.inner.save(key, record, expected).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.exists(key).await
    }
    async fn clear_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.clear_expired(now).await
    }
    fn is_shared(&self) -> bool {
        self.inner.is_shared()
    }
}

/// A SQLite store in a fresh temporary file (kept alive by the returned guard).
pub async fn sqlite_store() -> (sesame::store::SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("db.sqlite3").display());
    let store = sesame::store::SqliteStore::connect(&url, sesame::codec::Codec::new(SECRET, &[])).await.unwrap();
    (store, dir)
}

pub fn data(v: serde_json::Value) -> Data {
    v.as_object().cloned().expect("an object")
}

pub fn record(data: &Data, expire_date: DateTime<Utc>) -> Record<'_> {
    Record { data, expire_date }
}

pub fn later() -> DateTime<Utc> {
    Utc::now() + TimeDelta::days(1)
}

pub fn earlier() -> DateTime<Utc> {
    Utc::now() - TimeDelta::seconds(10)
}

pub async fn created(store: &dyn SessionStore, key: &str, d: &Data, exp: DateTime<Utc>) -> Version {
    match store.create(key, record(d, exp)).await.unwrap() {
        Created::Created { version, .. } => version,
        Created::KeyTaken => panic!("key {key} unexpectedly taken"),
    }
}

// ---- The conformance suite: every store passes exactly these. ----

pub async fn create_then_load(store: Arc<dyn SessionStore>) {
    let d =
        data(serde_json::json!({"id": 1, "name": "root", "nested": {"a": [1, 2.5, null, true]}, "u": "Zoë 中文 😀"}));
    let v = created(&*store, "conformance0000000000000000000001", &d, later()).await;
    let loaded = store.load("conformance0000000000000000000001", Utc::now()).await.unwrap().unwrap();
    assert_eq!(*loaded.data, d);
    assert_eq!(loaded.version, v);
    assert!(store.exists("conformance0000000000000000000001").await.unwrap());
    assert!(store.load("conformance0000000000000000000404", Utc::now()).await.unwrap().is_none());
    assert!(!store.exists("conformance0000000000000000000404").await.unwrap());
}

pub async fn create_never_overwrites(store: Arc<dyn SessionStore>) {
    let first = data(serde_json::json!({"owner": "first"}));
    created(&*store, "conformance0000000000000000000002", &first, later()).await;
    let second = data(serde_json::json!({"owner": "second"}));
    let r = store.create("conformance0000000000000000000002", record(&second, later())).await.unwrap();
    assert!(matches!(r, Created::KeyTaken));
    let loaded = store.load("conformance0000000000000000000002", Utc::now()).await.unwrap().unwrap();
    assert_eq!(*loaded.data, first);
}

pub async fn save_never_creates(store: Arc<dyn SessionStore>) {
    let d = data(serde_json::json!({"x": 1}));
    let v = created(&*store, "conformance0000000000000000000003", &d, later()).await;
    store.delete("conformance0000000000000000000003").await.unwrap();
    let r = store.save("conformance0000000000000000000003", record(&d, later()), &v).await.unwrap();
    assert!(matches!(r, Saved::Conflict), "saving a deleted session must not bring it back");
    assert!(store.load("conformance0000000000000000000003", Utc::now()).await.unwrap().is_none());
    assert!(!store.exists("conformance0000000000000000000003").await.unwrap());
}

pub async fn save_is_compare_and_set(store: Arc<dyn SessionStore>) {
    let k = "conformance0000000000000000000004";
    let v1 = created(&*store, k, &data(serde_json::json!({"n": 1})), later()).await;
    let v2 = match store.save(k, record(&data(serde_json::json!({"n": 2})), later()), &v1).await.unwrap() {
        Saved::Saved { key, version } => {
            assert_eq!(key, k);
            version
        }
        Saved::Conflict => panic!("save at the loaded version must succeed"),
    };
    assert_ne!(v1, v2);
    let stale = store.save(k, record(&data(serde_json::json!({"n": 99})), later()), &v1).await.unwrap();
    assert!(matches!(stale, Saved::Conflict), "a stale version must not overwrite");
    let loaded = store.load(k, Utc::now()).await.unwrap().unwrap();
    assert_eq!(*loaded.data, data(serde_json::json!({"n": 2})));
    assert_eq!(loaded.version, v2);
}

pub async fn expired_records_are_invisible(store: Arc<dyn SessionStore>) {
    let k = "conformance0000000000000000000005";
    created(&*store, k, &data(serde_json::json!({"old": true})), earlier()).await;
    assert!(store.load(k, Utc::now()).await.unwrap().is_none());
    assert!(store.exists(k).await.unwrap(), "exists() sees expired rows, as Django's does");
}

pub async fn delete_is_idempotent(store: Arc<dyn SessionStore>) {
    let k = "conformance0000000000000000000006";
    created(&*store, k, &data(serde_json::json!({})), later()).await;
    store.delete(k).await.unwrap();
    store.delete(k).await.unwrap();
    assert!(!store.exists(k).await.unwrap());
}

pub async fn clear_expired_removes_exactly_the_expired(store: Arc<dyn SessionStore>) {
    for i in 0..30 {
        let exp = if i % 3 == 0 { earlier() } else { later() };
        created(&*store, &format!("sweep{i:027}"), &data(serde_json::json!({"i": i})), exp).await;
    }
    let removed = store.clear_expired(Utc::now()).await.unwrap();
    assert_eq!(removed, 10);
    for i in 0..30 {
        let exists = store.exists(&format!("sweep{i:027}")).await.unwrap();
        assert_eq!(exists, i % 3 != 0, "row {i}");
    }
    assert_eq!(store.clear_expired(Utc::now()).await.unwrap(), 0);
}

pub async fn large_values_round_trip(store: Arc<dyn SessionStore>) {
    let k = "conformance0000000000000000000007";
    let big: String = (0..200_000).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
    let d = data(serde_json::json!({"big": big, "list": (0..1000).collect::<Vec<_>>()}));
    created(&*store, k, &d, later()).await;
    assert_eq!(*store.load(k, Utc::now()).await.unwrap().unwrap().data, d);
}

/// One exact increment of the session's `count`.
pub async fn increment(s: &sesame::Session) {
    s.modify(|d| {
        let n = d.get("count").and_then(|v| v.as_i64()).unwrap_or(0) + 1;
        d.insert("count".into(), n.into());
    })
    .await
    .unwrap();
}

/// Through the public API: 200 concurrent read-modify-writes of one counter end at 200, and
/// concurrent writes of different keys all survive.
pub async fn no_lost_updates(store: Arc<dyn SessionStore>) {
    let sessions = sesame::Sessions::new(store, sesame::Settings::with_secret_key(SECRET));
    let first = sessions.open(None);
    first.insert("seed", true).await.unwrap();
    first.save().await.unwrap();
    let key = first.session_key().unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = sessions.open(Some(&key));
        tasks.push(tokio::spawn(async move {
            // A plain write to a key of its own, and an exact increment.
            s.insert(&format!("k{i}"), i).await.unwrap();
            increment(&s).await;
            s.insert(&format!("after{i}"), i).await.unwrap();
            s.save().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let check = sessions.open(Some(&key));
    assert_eq!(check.get::<i64>("count").await.unwrap(), Some(200));
    for i in 0..200 {
        assert_eq!(check.get::<i64>(&format!("k{i}")).await.unwrap(), Some(i), "k{i} lost");
        assert_eq!(check.get::<i64>(&format!("after{i}")).await.unwrap(), Some(i), "after{i} lost");
    }
}

// ---- Variants for stores whose records expire by TTL (Redis): an expired record is gone,
// not kept until a sweep, so `exists` is false and `clear_expired` has nothing to do. ----

pub async fn expired_records_vanish(store: Arc<dyn SessionStore>) {
    let k = "conformance0000000000000000000005";
    created(&*store, k, &data(serde_json::json!({"old": true})), earlier()).await;
    assert!(store.load(k, Utc::now()).await.unwrap().is_none());
    assert!(!store.exists(k).await.unwrap(), "an expired record is gone");
    // A live record is invisible to a load at a later `now` (a test clock ahead of Redis).
    let live = "conformance0000000000000000000015";
    created(&*store, live, &data(serde_json::json!({"x": 1})), Utc::now() + TimeDelta::minutes(5)).await;
    assert!(store.load(live, Utc::now()).await.unwrap().is_some());
    assert!(store.load(live, Utc::now() + TimeDelta::minutes(6)).await.unwrap().is_none());
}

pub async fn clear_expired_is_left_to_the_ttl(store: Arc<dyn SessionStore>) {
    for i in 0..30 {
        let exp = if i % 3 == 0 { earlier() } else { later() };
        created(&*store, &format!("sweep{i:027}"), &data(serde_json::json!({"i": i})), exp).await;
    }
    assert_eq!(store.clear_expired(Utc::now()).await.unwrap(), 0);
    for i in 0..30 {
        let loaded = store.load(&format!("sweep{i:027}"), Utc::now()).await.unwrap();
        assert_eq!(loaded.is_some(), i % 3 != 0, "row {i}");
    }
}

/// Generates one `#[tokio::test]` per conformance check for a store made by `$make`
/// (an async expression giving `(Arc<dyn SessionStore>, guard)`). `store_conformance!(ttl
/// make())` is the same suite for stores whose records expire by TTL instead of a sweep.
#[macro_export]
macro_rules! store_conformance {
    ($make:expr) => {
        $crate::store_conformance!(@tests $make;
            create_then_load, create_never_overwrites, save_never_creates, save_is_compare_and_set,
            expired_records_are_invisible, delete_is_idempotent,
            clear_expired_removes_exactly_the_expired, large_values_round_trip, no_lost_updates);
    };
    (ttl $make:expr) => {
        $crate::store_conformance!(@tests $make;
            create_then_load, create_never_overwrites, save_never_creates, save_is_compare_and_set,
            expired_records_vanish, delete_is_idempotent,
            clear_expired_is_left_to_the_ttl, large_values_round_trip, no_lost_updates);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (store, _guard) = $make.await;
                common::$name(store).await;
            }
        )*
    };
}

/// 200 concurrent increments split between two `Sessions` over one shared store (two server
/// processes): the counter ends at 200 and every request's own key survives.
pub async fn two_process_increments(a: &sesame::Sessions, b: &sesame::Sessions) {
    let s = a.open(None);
    s.insert("seed", 1).await.unwrap();
    s.save().await.unwrap();
    let key = s.session_key().unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = if i % 2 == 0 { a.open(Some(&key)) } else { b.open(Some(&key)) };
        tasks.push(tokio::spawn(async move {
            s.insert(&format!("k{i}"), i).await.unwrap();
            increment(&s).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for sessions in [a, b] {
        let check = sessions.open(Some(&key));
        assert_eq!(check.get::<i64>("count").await.unwrap(), Some(200));
        for i in 0..200 {
            assert_eq!(check.get::<i64>(&format!("k{i}")).await.unwrap(), Some(i), "k{i} lost");
        }
    }
}

// ---- Real servers: PostgreSQL and Redis on this machine, isolated per test. ----

/// A random lowercase name part, for schemas and key prefixes.
pub fn unique(tag: &str) -> String {
    format!("{tag}_{}", &sesame::key::generate()[..16])
}

/// Where the tests' PostgreSQL is: `SESAME_TEST_PG_URL`, else the machine's trust-auth server.
pub fn pg_url() -> String {
    std::env::var("SESAME_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Where the tests' Redis is: `SESAME_TEST_REDIS_URL`, else the machine's server.
pub fn redis_url() -> String {
    std::env::var("SESAME_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A PostgreSQL schema of its own for one test (nextest runs tests as parallel processes):
/// created on [`PgSchema::new`], dropped with everything in it when the guard is dropped.
#[cfg(feature = "postgres")]
pub struct PgSchema {
    pub name: String,
}

#[cfg(feature = "postgres")]
impl PgSchema {
    pub async fn new() -> Self {
        use sqlx::Connection;
        let name = unique("sesame_test");
        let mut admin = sqlx::PgConnection::connect(&pg_url()).await.expect("PostgreSQL on 127.0.0.1:5432");
        // `name` is generated here from [a-z0-9_], never user input.
        sqlx::query(&format!("CREATE SCHEMA {name}")).execute(&mut admin).await.unwrap();
        PgSchema { name }
    }

    /// A database URL whose `search_path` is this schema only.
    pub fn url(&self) -> String {
        let base = pg_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-c%20search_path%3D{}", self.name)
    }

    pub async fn store(&self) -> sesame::store::PostgresStore {
        sesame::store::PostgresStore::connect(&self.url(), sesame::codec::Codec::new(SECRET, &[])).await.unwrap()
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgSchema {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut admin) = sqlx::PgConnection::connect(&pg_url()).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).execute(&mut admin).await;
                }
            });
        })
        .join();
    }
}

/// A Redis key prefix of its own for one test; its keys are deleted when the guard drops.
#[cfg(feature = "redis")]
pub struct RedisPrefix {
    pub prefix: String,
}

#[cfg(feature = "redis")]
impl RedisPrefix {
    pub fn new() -> Self {
        RedisPrefix { prefix: format!(":1:{}:", unique("sesame-test")) }
    }
}

#[cfg(feature = "redis")]
impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(redis_url()) else { return };
        let Ok(mut conn) = client.get_connection() else { return };
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}*", self.prefix)).query(&mut conn).unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}
