//! The store conformance suite on PostgreSQL (the server on 127.0.0.1:5432), plus PostgreSQL
//! specifics. Each test runs in a schema of its own (`search_path`), dropped afterwards, so
//! nextest's parallel test processes never see each other's rows.
mod common;

use common::*;
use sesame::store::{PostgresStore, SessionStore};
use std::sync::Arc;

async fn make() -> (Arc<dyn SessionStore>, PgSchema) {
    let schema = PgSchema::new().await;
    let store = schema.store().await;
    (Arc::new(store), schema)
}

store_conformance!(make());

/// Django's DDL for the sessions table, as `sqlmigrate sessions 0001` prints it.
const DJANGO_DDL: &str = include_str!("../../../tests/django/ddl_postgresql.sql");

async fn schema_of(store: &PostgresStore, schema: &str) -> Vec<String> {
    let cols: Vec<(String, String, Option<i32>, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text, character_maximum_length, is_nullable::text \
         FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'django_session' \
         ORDER BY ordinal_position",
    )
    .bind(schema)
    .fetch_all(store.pool())
    .await
    .unwrap();
    let idx: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'django_session' ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(store.pool())
    .await
    .unwrap();
    // Index definitions name the schema; compare without it.
    cols.into_iter()
        .map(|c| format!("{c:?}"))
        .chain(idx.into_iter().map(|i| format!("{i:?}").replace(&format!("{schema}."), "")))
        .collect()
}

#[tokio::test]
async fn table_matches_djangos_ddl_and_migrations_are_idempotent() {
    let ours = PgSchema::new().await;
    let store = ours.store().await;
    let created_by_sesame = schema_of(&store, &ours.name).await;

    // The same table created by Django's own DDL in another schema.
    let theirs = PgSchema::new().await;
    let django = PostgresStore::connect_existing(&theirs.url(), sesame::codec::Codec::new(SECRET, &[])).await;
    assert!(matches!(django, Err(sesame::StoreError::NotFound(_))), "no table yet: {django:?}");
    let raw = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&theirs.url()).await.unwrap();
    sqlx::raw_sql(DJANGO_DDL).execute(&raw).await.unwrap();
    let by_django = schema_of(&store, &theirs.name).await;
    assert_eq!(created_by_sesame, by_django);
    assert!(by_django.iter().any(|s| s.contains("timestamp with time zone")), "{by_django:?}");
    assert!(by_django.iter().any(|s| s.contains("varchar_pattern_ops")), "{by_django:?}");

    // Connecting to Django's table (and again to ours) changes nothing.
    let on_django = PostgresStore::connect(&theirs.url(), sesame::codec::Codec::new(SECRET, &[])).await.unwrap();
    drop(on_django);
    drop(ours.store().await);
    assert_eq!(schema_of(&store, &theirs.name).await, by_django);
    assert_eq!(schema_of(&store, &ours.name).await, created_by_sesame);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_starting_at_once_all_create_the_table() {
    let schema = PgSchema::new().await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let url = schema.url();
        tasks.push(tokio::spawn(async move {
            PostgresStore::connect(&url, sesame::codec::Codec::new(SECRET, &[])).await.map(drop)
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn an_existing_django_row_is_read() {
    let schema = PgSchema::new().await;
    let store = schema.store().await;
    let codec = sesame::codec::Codec::new(SECRET, &[]);
    let encoded = codec.encode(&data(serde_json::json!({"from": "django"})));
    sqlx::query(
        "INSERT INTO django_session VALUES ('djangowrotethis000000000000000000', $1, '2999-01-01T00:00:00+00')",
    )
    .bind(&encoded)
    .execute(store.pool())
    .await
    .unwrap();
    let loaded = store.load("djangowrotethis000000000000000000", chrono::Utc::now()).await.unwrap().unwrap();
    assert_eq!(*loaded.data, data(serde_json::json!({"from": "django"})));
    let info = store.inspect("djangowrotethis000000000000000000").await.unwrap().unwrap();
    assert_eq!(info.expire_date.to_rfc3339(), "2999-01-01T00:00:00+00:00");
}

#[tokio::test]
async fn sweeping_in_batches_removes_every_expired_row() {
    let schema = PgSchema::new().await;
    let store = schema.store().await;
    let n = sesame::store::postgres::SWEEP_BATCH * 2 + 17;
    sqlx::query(
        "INSERT INTO django_session SELECT 'expired' || lpad(i::text, 20, '0'), 'x', now() - interval '1 day' \
         FROM generate_series(1, $1) AS i",
    )
    .bind(n)
    .execute(store.pool())
    .await
    .unwrap();
    created(&store, "stillalive000000000000000000000", &data(serde_json::json!({})), later()).await;
    let batches = std::sync::Mutex::new(Vec::new());
    let removed =
        store.clear_expired_with_progress(chrono::Utc::now(), &|t| batches.lock().unwrap().push(t)).await.unwrap();
    assert_eq!(removed, n as u64);
    assert_eq!(batches.lock().unwrap().len(), 3, "three batches: {:?}", batches.lock().unwrap());
    assert_eq!(store.count().await.unwrap(), 1);
    let listed = store.list(chrono::Utc::now(), false, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, "stillalive000000000000000000000");
}

#[tokio::test]
async fn inspect_list_and_count() {
    let schema = PgSchema::new().await;
    let store = schema.store().await;
    created(&store, "inspectme0000000000000000000000", &data(serde_json::json!({"a": 1})), earlier()).await;
    created(&store, "inspectme0000000000000000000001", &data(serde_json::json!({"b": 2})), later()).await;
    let info = store.inspect("inspectme0000000000000000000000").await.unwrap().unwrap();
    assert_eq!(info.data.unwrap(), data(serde_json::json!({"a": 1})));
    assert!(store.inspect("inspectme0000000000000000000404").await.unwrap().is_none());
    assert_eq!(store.count().await.unwrap(), 2);
    let expired = store.list(chrono::Utc::now(), true, 10).await.unwrap();
    assert_eq!(expired.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(), ["inspectme0000000000000000000000"]);
    assert_eq!(store.list(chrono::Utc::now(), false, 1).await.unwrap().len(), 1);
}

/// Two independent stores (two pools, no shared in-process lock) stand for two server
/// processes sharing one PostgreSQL: only the database's compare-and-set keeps updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_lost_updates_across_two_processes() {
    let schema = PgSchema::new().await;
    let a = sesame::Sessions::new(Arc::new(schema.store().await), sesame::Settings::with_secret_key(SECRET));
    let b = sesame::Sessions::new(Arc::new(schema.store().await), sesame::Settings::with_secret_key(SECRET));
    two_process_increments(&a, &b).await;
}

/// Through `Sessions::connect`: `SESSION_ENGINE = db` with a postgresql:// URL picks this
/// store and creates the table; the CLI's `connect_existing` then finds it.
#[tokio::test]
async fn database_url_selects_postgres() {
    let schema = PgSchema::new().await;
    let mut settings = sesame::Settings::with_secret_key(SECRET);
    let url = pg_url().replace("postgres://", "postgresql://");
    settings.database_url = format!("{url}?options=-c%20search_path%3D{}", schema.name);
    let missing = sesame::Sessions::connect_existing(settings.clone()).await.unwrap_err();
    assert!(matches!(missing, sesame::Error::Store(sesame::StoreError::NotFound(_))), "{missing:?}");
    let sessions = sesame::Sessions::connect(settings.clone()).await.unwrap();
    assert!(format!("{:?}", sessions.store()).contains("PostgresStore"));
    let s = sessions.open(None);
    s.insert("engine", "postgres").await.unwrap();
    s.save().await.unwrap();
    let key = s.session_key().unwrap();
    let tool = sesame::Sessions::connect_existing(settings).await.unwrap();
    let info = tool.get(&key).await.unwrap().unwrap();
    assert_eq!(info.data.unwrap(), data(serde_json::json!({"engine": "postgres"})));
}
