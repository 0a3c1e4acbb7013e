//! Two app instances on different ports sharing one store (PostgreSQL, Redis, or Redis in
//! front of PostgreSQL): log in on one and be logged in on the other; log out on one and be
//! logged out on both. Each instance has its own store connection (pool / connection
//! manager), its own `Sessions` and its own listener, as two server processes would; they
//! share nothing but the database or Redis.
mod common;

use axum::routing::get;
use common::*;
use sesame::store::SessionStore;
use sesame::{Session, Sessions, Settings};
use std::sync::Arc;

/// One app instance: login, whoami, logout. Returns its base URL.
async fn serve(store: Arc<dyn SessionStore>) -> String {
    let sessions = Sessions::new(store, Settings::with_secret_key(SECRET));
    let app =
        axum::Router::new()
            .route(
                "/login",
                get(|s: Session| async move {
                    s.cycle_key().await.unwrap();
                    s.insert("user", "root").await.unwrap();
                    "welcome"
                }),
            )
            .route(
                "/me",
                get(|s: Session| async move {
                    s.get::<String>("user").await.unwrap().unwrap_or_else(|| "anonymous".into())
                }),
            )
            .route(
                "/logout",
                get(|s: Session| async move {
                    s.flush().await.unwrap();
                    "bye"
                }),
            )
            .layer(sessions.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// GET `url` with the cookie; returns the body and the `sessionid` the server set, if any.
async fn get_with(url: &str, cookie: Option<&str>) -> (String, Option<String>) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(c) = cookie {
        req = req.header("cookie", format!("sessionid={c}"));
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{url}: {}", res.status());
    let set = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("sessionid=").map(|rest| rest.split(';').next().unwrap_or("").to_owned()));
    (res.text().await.unwrap(), set)
}

async fn login_here_logout_there(a: Arc<dyn SessionStore>, b: Arc<dyn SessionStore>) {
    let (one, two) = (serve(a).await, serve(b).await);
    assert_ne!(one, two);
    let (_, cookie) = get_with(&format!("{one}/login"), None).await;
    let cookie = cookie.expect("a session cookie");
    assert_eq!(get_with(&format!("{two}/me"), Some(&cookie)).await.0, "root", "logged in on the other instance");
    assert_eq!(get_with(&format!("{one}/me"), Some(&cookie)).await.0, "root");
    let (_, cleared) = get_with(&format!("{two}/logout"), Some(&cookie)).await;
    assert_eq!(cleared.as_deref(), Some(""), "the logout deletes the cookie");
    // Even a browser that kept the old cookie is logged out on both instances.
    assert_eq!(get_with(&format!("{one}/me"), Some(&cookie)).await.0, "anonymous");
    assert_eq!(get_with(&format!("{two}/me"), Some(&cookie)).await.0, "anonymous");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    let schema = PgSchema::new().await;
    login_here_logout_there(Arc::new(schema.store().await), Arc::new(schema.store().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis() {
    let prefix = RedisPrefix::new();
    let url = redis_url();
    let connect =
        || sesame::store::RedisStore::connect(&url, prefix.prefix.clone(), sesame::codec::Codec::new(SECRET, &[]));
    login_here_logout_there(Arc::new(connect().await.unwrap()), Arc::new(connect().await.unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_db_over_postgres() {
    let schema = PgSchema::new().await;
    let prefix = RedisPrefix::new();
    let mut stores: Vec<Arc<dyn SessionStore>> = Vec::new();
    for _ in 0..2 {
        let db = Arc::new(schema.store().await);
        let codec = sesame::codec::Codec::new(SECRET, &[]);
        stores.push(Arc::new(
            sesame::store::CachedDbStore::new(db, &redis_url(), prefix.prefix.clone(), codec, 1_209_600).unwrap(),
        ));
    }
    let b = stores.pop().unwrap();
    login_here_logout_there(stores.pop().unwrap(), b).await;
}
