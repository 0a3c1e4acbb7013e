//! The store conformance suite on Redis (the server on 127.0.0.1:6379), in its TTL form:
//! Redis drops expired sessions itself. Each test keeps its keys under a prefix of its own.
mod common;

use chrono::{TimeDelta, Utc};
use common::*;
use redis::AsyncCommands;
use sesame::store::{RedisStore, Saved, SessionStore};
use std::sync::Arc;

async fn redis_store(prefix: &RedisPrefix) -> RedisStore {
    RedisStore::connect(&redis_url(), prefix.prefix.clone(), sesame::codec::Codec::new(SECRET, &[])).await.unwrap()
}

async fn make() -> (Arc<dyn SessionStore>, RedisPrefix) {
    let prefix = RedisPrefix::new();
    let store = redis_store(&prefix).await;
    (Arc::new(store), prefix)
}

store_conformance!(ttl make());

async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

#[test]
fn djangos_cache_key_scheme() {
    // Django: KEY_PREFIX ("") : VERSION (1) : "django.contrib.sessions.cache" + session key.
    assert_eq!(sesame::store::redis::CACHE_PREFIX, ":1:django.contrib.sessions.cache");
    assert_eq!(sesame::store::redis::CACHED_DB_PREFIX, ":1:django.contrib.sessions.cached_db");
}

#[tokio::test]
async fn values_are_django_session_data_with_the_expiry_as_ttl() {
    let prefix = RedisPrefix::new();
    let store = redis_store(&prefix).await;
    let k = "redisvalue000000000000000000000";
    let v = created(&store, k, &data(serde_json::json!({"a": 1})), Utc::now() + TimeDelta::seconds(300)).await;
    let mut conn = raw().await;
    let stored: String = conn.get(format!("{}{k}", prefix.prefix)).await.unwrap();
    assert_eq!(stored, v.0);
    assert_eq!(sesame::codec::Codec::new(SECRET, &[]).decode(&stored).unwrap().data, data(serde_json::json!({"a": 1})));
    let ttl: i64 = conn.ttl(format!("{}{k}", prefix.prefix)).await.unwrap();
    assert!((295..=300).contains(&ttl), "ttl {ttl}");
    // A save renews the TTL from the new expiry.
    let saved = store
        .save(k, record(&data(serde_json::json!({"a": 2})), Utc::now() + TimeDelta::seconds(900)), &v)
        .await
        .unwrap();
    assert!(matches!(saved, Saved::Saved { .. }));
    let ttl: i64 = conn.ttl(format!("{}{k}", prefix.prefix)).await.unwrap();
    assert!((895..=900).contains(&ttl), "ttl {ttl}");
}

#[tokio::test]
async fn a_save_with_a_past_expiry_removes_the_session() {
    let prefix = RedisPrefix::new();
    let store = redis_store(&prefix).await;
    let k = "redispast0000000000000000000000";
    let v = created(&store, k, &data(serde_json::json!({"a": 1})), later()).await;
    let saved = store.save(k, record(&data(serde_json::json!({"a": 2})), earlier()), &v).await.unwrap();
    assert!(matches!(saved, Saved::Saved { .. }));
    assert!(!store.exists(k).await.unwrap());
}

#[tokio::test]
async fn count_list_and_inspect_use_the_prefix_only() {
    let prefix = RedisPrefix::new();
    let other = RedisPrefix::new();
    let store = redis_store(&prefix).await;
    let neighbour = redis_store(&other).await;
    for i in 0..25 {
        created(&store, &format!("listed{i:026}"), &data(serde_json::json!({"i": i})), later()).await;
    }
    created(&neighbour, "notmine000000000000000000000000", &data(serde_json::json!({})), later()).await;
    assert_eq!(store.count().await.unwrap(), 25);
    let rows = store.list(Utc::now(), false, 10).await.unwrap();
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| r.key.starts_with("listed")));
    assert!(store.list(Utc::now(), true, 10).await.unwrap().is_empty(), "Redis keeps no expired sessions");
    let info = store.inspect("listed00000000000000000000000003").await.unwrap().unwrap();
    assert_eq!(info.data.unwrap(), data(serde_json::json!({"i": 3})));
    assert!(info.expire_date > Utc::now());
}

/// Two independent stores (two connection managers, no shared in-process lock) stand for two
/// server processes sharing Redis: only the Lua compare-and-set keeps updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_lost_updates_across_two_processes() {
    let prefix = RedisPrefix::new();
    let a = sesame::Sessions::new(Arc::new(redis_store(&prefix).await), sesame::Settings::with_secret_key(SECRET));
    let b = sesame::Sessions::new(Arc::new(redis_store(&prefix).await), sesame::Settings::with_secret_key(SECRET));
    two_process_increments(&a, &b).await;
}

#[tokio::test]
async fn session_engine_cache_selects_redis() {
    let mut settings = sesame::Settings::with_secret_key(SECRET);
    settings.session_engine = sesame::Engine::parse("django.contrib.sessions.backends.cache").unwrap();
    settings.redis_url = redis_url();
    let sessions = sesame::Sessions::connect(settings.clone()).await.unwrap();
    assert!(format!("{:?}", sessions.store()).contains(":1:django.contrib.sessions.cache"));
    settings.redis_url = "redis://127.0.0.1:1".into();
    let err = sesame::Sessions::connect(settings).await.unwrap_err();
    assert!(matches!(err, sesame::Error::Store(sesame::StoreError::Redis(_))), "{err:?}");
}

/// Reads and new sessions are batched into pipelines: under concurrency each caller must get
/// its own reply, a key taken stays taken, and an error reply fails only its own command.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_and_creates_each_get_their_own_reply() {
    let prefix = RedisPrefix::new();
    let store = Arc::new(redis_store(&prefix).await);
    let later = Utc::now() + TimeDelta::seconds(300);
    // A key holding a list: GET on it is a WRONGTYPE error reply from Redis.
    let mut conn = raw().await;
    let broken = "wrongtype0000000000000000000000";
    let _: i64 = conn.rpush(format!("{}{broken}", prefix.prefix), "x").await.unwrap();

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = format!("batched{i:024}");
                let d = data(serde_json::json!({ "i": i }));
                let first = store.create(&key, record(&d, later)).await.unwrap();
                assert!(matches!(first, sesame::store::Created::Created { .. }), "{key}");
                let again = store.create(&key, record(&d, later)).await.unwrap();
                assert!(matches!(again, sesame::store::Created::KeyTaken), "{key}");
                let loaded = store.load(&key, Utc::now()).await.unwrap().unwrap();
                assert_eq!(*loaded.data, d, "{key}");
                let wrong = store.load(broken, Utc::now()).await;
                assert!(wrong.is_err(), "a WRONGTYPE reply is an error for its own command");
                assert!(store.load(&format!("absent{i:025}"), Utc::now()).await.unwrap().is_none());
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}
