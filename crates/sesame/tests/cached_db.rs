//! The store conformance suite on `cached_db` (Redis in front of SQLite, and of PostgreSQL),
//! also with Redis down; plus the cache's own behaviour: reads from Redis, write-through,
//! invalidation, and serving from the database when Redis is unreachable.
mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use chrono::{TimeDelta, Utc};
use common::*;
use redis::AsyncCommands;
use sesame::store::{CachedDbStore, Saved, SessionStore, SqliteStore};
use std::sync::Arc;
use tower::ServiceExt;

fn codec() -> sesame::codec::Codec {
    sesame::codec::Codec::new(SECRET, &[])
}

struct Guard {
    _dir: tempfile::TempDir,
    prefix: RedisPrefix,
    db: SqliteStore,
}

async fn over_sqlite(redis: &str) -> (CachedDbStore, Guard) {
    let (db, dir) = sqlite_store().await;
    let prefix = RedisPrefix::new();
    let store = CachedDbStore::new(Arc::new(db.clone()), redis, prefix.prefix.clone(), codec(), 1_209_600).unwrap();
    (store, Guard { _dir: dir, prefix, db })
}

async fn make() -> (Arc<dyn SessionStore>, Guard) {
    let (store, guard) = over_sqlite(&redis_url()).await;
    (Arc::new(store), guard)
}

store_conformance!(make());

/// Redis unreachable (nothing listens on port 1): every check still passes, from the database.
mod redis_down {
    use super::*;

    async fn make() -> (Arc<dyn SessionStore>, Guard) {
        let (store, guard) = over_sqlite("redis://127.0.0.1:1").await;
        (Arc::new(store), guard)
    }

    store_conformance!(make());
}

/// Over PostgreSQL, the database two servers would share.
mod over_postgres {
    use super::*;

    pub async fn make() -> (Arc<dyn SessionStore>, (PgSchema, RedisPrefix)) {
        let schema = PgSchema::new().await;
        let prefix = RedisPrefix::new();
        let db = schema.store().await;
        let store = CachedDbStore::new(Arc::new(db), &redis_url(), prefix.prefix.clone(), codec(), 1_209_600).unwrap();
        (Arc::new(store), (schema, prefix))
    }

    store_conformance!(make());
}

async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test]
async fn reads_come_from_redis_and_writes_go_through() {
    let (store, g) = over_sqlite(&redis_url()).await;
    let k = "cachedread000000000000000000000";
    let rkey = format!("{}{k}", g.prefix.prefix);
    let v1 = created(&store, k, &data(serde_json::json!({"n": 1})), later()).await;
    let mut conn = raw().await;
    let cached: String = conn.get(&rkey).await.unwrap();
    assert_eq!(cached, v1.0, "create writes through, same value as the database");
    // Remove the row behind the cache's back: a read is still served, from Redis.
    sqlx::query("DELETE FROM django_session").execute(g.db.writer_pool()).await.unwrap();
    assert_eq!(*store.load(k, Utc::now()).await.unwrap().unwrap().data, data(serde_json::json!({"n": 1})));
    // But a save checks the database: conflict, and the cache entry is invalidated so the
    // reload sees the truth (the session is gone).
    let r = store.save(k, record(&data(serde_json::json!({"n": 2})), later()), &v1).await.unwrap();
    assert!(matches!(r, Saved::Conflict));
    assert!(store.load(k, Utc::now()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_miss_refills_redis_with_the_rows_expiry() {
    let (store, g) = over_sqlite(&redis_url()).await;
    let k = "cachedfill000000000000000000000";
    let rkey = format!("{}{k}", g.prefix.prefix);
    // A session written to the database only (by Django, or while Redis was down).
    let exp = Utc::now() + TimeDelta::seconds(600);
    let v = created(&g.db, k, &data(serde_json::json!({"_session_expiry": 600, "a": 1})), exp).await;
    let mut conn = raw().await;
    assert!(!conn.exists::<_, bool>(&rkey).await.unwrap());
    let loaded = store.load(k, Utc::now()).await.unwrap().unwrap();
    assert_eq!(loaded.version, v);
    let cached: String = conn.get(&rkey).await.unwrap();
    assert_eq!(cached, v.0);
    let ttl: i64 = conn.ttl(&rkey).await.unwrap();
    assert!((590..=600).contains(&ttl), "TTL follows the row's expiry: {ttl}");
}

#[tokio::test]
async fn a_logout_leaves_a_tombstone_that_a_late_refill_cannot_overwrite() {
    let (store, g) = over_sqlite(&redis_url()).await;
    let k = "cachedlogout0000000000000000000";
    let rkey = format!("{}{k}", g.prefix.prefix);
    let v = created(&store, k, &data(serde_json::json!({"user": 1})), later()).await;
    store.delete(k).await.unwrap();
    let mut conn = raw().await;
    let tomb: String = conn.get(&rkey).await.unwrap();
    assert_eq!(tomb, "", "a tombstone, not the session");
    // A request that read the row before the logout tries to refill the cache with it.
    let refill: Option<String> =
        redis::cmd("SET").arg(&rkey).arg(&v.0).arg("NX").arg("EX").arg(60).query_async(&mut conn).await.unwrap();
    assert!(refill.is_none());
    assert!(store.load(k, Utc::now()).await.unwrap().is_none());
    assert!(!store.exists(k).await.unwrap());
}

#[tokio::test]
async fn a_stale_cache_entry_heals_on_the_next_write() {
    let (store, g) = over_sqlite(&redis_url()).await;
    let store = Arc::new(store);
    let sessions = sesame::Sessions::new(store.clone(), sesame::Settings::with_secret_key(SECRET));
    let s = sessions.open(None);
    s.insert("n", 1).await.unwrap();
    s.save().await.unwrap();
    let key = s.session_key().unwrap();
    let rkey = format!("{}{key}", g.prefix.prefix);
    let old: String = raw().await.get(&rkey).await.unwrap();
    // Another server updates the database while this Redis was unreachable for it.
    let other = sesame::Sessions::new(Arc::new(g.db.clone()), sesame::Settings::with_secret_key(SECRET));
    other
        .open(Some(&key))
        .modify(|d| {
            d.insert("n".into(), 2.into());
        })
        .await
        .unwrap();
    let cached: String = raw().await.get(&rkey).await.unwrap();
    assert_eq!(cached, old, "Redis still holds the older version");
    // An increment through the cache: its compare-and-set fails on the database, the entry
    // is invalidated, the reload reads the database, and the increment lands on 2.
    let n = sessions
        .open(Some(&key))
        .modify(|d| {
            let n = d.get("n").and_then(|v| v.as_i64()).unwrap() + 1;
            d.insert("n".into(), n.into());
            n
        })
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(other.open(Some(&key)).get::<i64>("n").await.unwrap(), Some(3));
}

#[tokio::test]
async fn redis_down_the_app_still_serves_and_logs_in() {
    let (store, _g) = over_sqlite("redis://127.0.0.1:1").await;
    let sessions = sesame::Sessions::new(Arc::new(store), sesame::Settings::with_secret_key(SECRET));
    let app = axum::Router::new()
        .route(
            "/login",
            get(|s: sesame::Session| async move {
                s.insert("user", "root").await.map(|_| "in").map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
            }),
        )
        .route(
            "/me",
            get(|s: sesame::Session| async move {
                s.get::<String>("user")
                    .await
                    .map(|u| u.unwrap_or_default())
                    .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
            }),
        )
        .layer(sessions.layer());
    let started = std::time::Instant::now();
    let res = app.clone().oneshot(Request::get("/login").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers().get(header::SET_COOKIE).unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
    for _ in 0..20 {
        let res = app
            .clone()
            .oneshot(Request::get("/me").header(header::COOKIE, &cookie).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        use http_body_util::BodyExt;
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "root");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "a dead Redis costs no time per request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_lost_updates_across_two_processes() {
    let schema = PgSchema::new().await;
    let prefix = RedisPrefix::new();
    let mut stores = Vec::new();
    for _ in 0..2 {
        let db = schema.store().await;
        stores.push(CachedDbStore::new(Arc::new(db), &redis_url(), prefix.prefix.clone(), codec(), 1_209_600).unwrap());
    }
    let b = sesame::Sessions::new(Arc::new(stores.pop().unwrap()), sesame::Settings::with_secret_key(SECRET));
    let a = sesame::Sessions::new(Arc::new(stores.pop().unwrap()), sesame::Settings::with_secret_key(SECRET));
    two_process_increments(&a, &b).await;
}

#[tokio::test]
async fn session_engine_cached_db_selects_this_store_with_djangos_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = sesame::Settings::with_secret_key(SECRET);
    settings.session_engine = sesame::Engine::parse("cached_db").unwrap();
    settings.database_url = format!("sqlite:{}?mode=rwc", dir.path().join("db.sqlite3").display());
    settings.redis_url = redis_url();
    let sessions = sesame::Sessions::connect(settings).await.unwrap();
    let text = format!("{:?}", sessions.store());
    assert!(text.contains("CachedDbStore") && text.contains(":1:django.contrib.sessions.cached_db"), "{text}");
}

/// A TCP proxy to the test Redis that can be cut off (connections dropped, new ones closed)
/// and restored: Redis "unreachable" while it keeps its data, as in a network partition.
struct Proxy {
    url: String,
    up: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start() -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let target = redis_url().trim_start_matches("redis://").trim_end_matches('/').to_owned();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the connection closes at once
                }
                let target = target.clone();
                conns2.lock().push(tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Proxy { url, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_during_a_redis_partition_is_not_undone_when_it_heals() {
    let proxy = Proxy::start().await;
    let (db, _dir) = sqlite_store().await;
    let prefix = RedisPrefix::new();
    let store = CachedDbStore::new(Arc::new(db), &proxy.url, prefix.prefix.clone(), codec(), 1_209_600)
        .unwrap()
        .with_retry_after(std::time::Duration::ZERO);
    let k = "partitioned000000000000000000000";
    created(&store, k, &data(serde_json::json!({"user": "root"})), later()).await;
    let cached: Option<String> = raw().await.get(format!("{}{k}", prefix.prefix)).await.unwrap();
    assert!(cached.is_some(), "cached before the partition");

    proxy.cut();
    store.delete(k).await.unwrap(); // the database row goes; Redis cannot be told
    assert!(store.load(k, Utc::now()).await.unwrap().is_none(), "served from the database meanwhile");
    proxy.restore();

    // Redis still holds the session. The first operations after the partition may fail on
    // the broken connection while it reconnects; none may ever return the session.
    for _ in 0..50 {
        assert!(store.load(k, Utc::now()).await.unwrap().is_none(), "the logout came back through Redis");
        let v: Option<String> = raw().await.get(format!("{}{k}", prefix.prefix)).await.unwrap();
        if v.as_deref() == Some("") {
            return; // invalidated: a tombstone replaced the stale entry
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the stale entry was never invalidated");
}
