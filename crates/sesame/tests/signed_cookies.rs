//! The signed-cookie engine: the data is the cookie. Of the conformance suite only the checks
//! that mean something without server-side state apply (round trip, large values, expiry);
//! `create`-never-overwrites, compare-and-set, `save`-never-creates, `exists`, `delete` and
//! `clear_expired` have no stored record to act on, and concurrent requests of one browser
//! each send back a cookie of their own (the browser keeps the last), so there is no
//! no-lost-update guarantee to test. What replaces them: Django's exact bytes, tampering,
//! `max_age`, the size limit, and the layer end to end.
mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use chrono::{TimeDelta, Utc};
use common::*;
use sesame::store::signed_cookies::MAX_VALUE_BYTES;
use sesame::store::{Created, Saved, SessionStore, SignedCookieStore, Version};
use sesame::StoreError;
use std::sync::Arc;
use tower::ServiceExt;

const AGE: i64 = 1_209_600;

fn store() -> SignedCookieStore {
    SignedCookieStore::new(SECRET, &[], AGE)
}

async fn cookie_for(store: &SignedCookieStore, d: &sesame::Data) -> String {
    match store.create("unused", record(d, later())).await.unwrap() {
        Created::Created { key, version } => {
            assert_eq!(key, version.0);
            key
        }
        Created::KeyTaken => panic!("never taken"),
    }
}

#[tokio::test]
async fn round_trip_and_the_value_is_the_key() {
    let s = store();
    let d = data(serde_json::json!({"id": 1, "name": "root", "u": "Zoë 中文 😀"}));
    let cookie = cookie_for(&s, &d).await;
    assert!(s.accepts_key(&cookie));
    let loaded = s.load(&cookie, Utc::now()).await.unwrap().unwrap();
    assert_eq!(*loaded.data, d);
    let d2 = data(serde_json::json!({"id": 2}));
    let Saved::Saved { key, .. } = s.save(&cookie, record(&d2, later()), &loaded.version).await.unwrap() else {
        panic!("saved")
    };
    assert_ne!(key, cookie);
    assert_eq!(*s.load(&key, Utc::now()).await.unwrap().unwrap().data, d2);
    // Nothing on the server.
    assert!(!s.exists(&key).await.unwrap());
    s.delete(&key).await.unwrap();
    assert_eq!(s.clear_expired(Utc::now()).await.unwrap(), 0);
}

#[tokio::test]
async fn large_compressible_values_fit() {
    let s = store();
    let d = data(serde_json::json!({"big": "x".repeat(100_000)}));
    let cookie = cookie_for(&s, &d).await;
    assert!(cookie.starts_with('.'), "compressed, as Django's compress=True");
    assert_eq!(*s.load(&cookie, Utc::now()).await.unwrap().unwrap().data, d);
}

#[test]
fn the_value_is_djangos_signing_dumps() {
    // signing.dumps({"foo": "bar"}, compress=True, salt=<signed_cookies salt>) at t=1700000000,
    // with the same secret: the codec is checked against Django's vectors for this salt in
    // codec_vectors.rs; here, that the store uses that salt and no other.
    let c = sesame::codec::Codec::with_salt(sesame::codec::SIGNED_COOKIES_SALT, SECRET, &[]);
    let d = data(serde_json::json!({"foo": "bar"}));
    let value = c.encode_at(&d, 1_700_000_000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let now = chrono::DateTime::from_timestamp(1_700_000_100, 0).unwrap();
    let loaded = rt.block_on(store().load(&value, now)).unwrap().unwrap();
    assert_eq!(*loaded.data, d);
    // The database engines' salt does not verify here.
    let db_value = sesame::codec::Codec::new(SECRET, &[]).encode_at(&d, 1_700_000_000);
    assert!(rt.block_on(store().load(&db_value, now)).unwrap().is_none());
}

#[tokio::test]
async fn tampered_foreign_and_too_old_cookies_read_as_new_sessions() {
    let s = store();
    let cookie = cookie_for(&s, &data(serde_json::json!({"user": "alice"}))).await;
    let other =
        cookie_for(&SignedCookieStore::new("another-secret", &[], AGE), &data(serde_json::json!({"user": "admin"})))
            .await;
    assert!(s.load(&other, Utc::now()).await.unwrap().is_none());
    let (payload, rest) = other.split_once(':').unwrap();
    let (_, sig) = cookie.split_once(':').unwrap();
    let _ = rest;
    assert!(s.load(&format!("{payload}:{sig}"), Utc::now()).await.unwrap().is_none());
    for junk in ["x", "a:b:c", "...", "sessionid"] {
        assert!(s.load(junk, Utc::now()).await.unwrap().is_none());
    }
    // max_age = SESSION_COOKIE_AGE: valid until then, not after (Django: age > max_age).
    let at = |secs| Utc::now() + TimeDelta::seconds(secs);
    assert!(s.load(&cookie, at(AGE - 5)).await.unwrap().is_some());
    assert!(s.load(&cookie, at(AGE + 5)).await.unwrap().is_none());
    // A fallback key still reads old cookies.
    let rotated = SignedCookieStore::new("new-secret", &[SECRET.to_owned()], AGE);
    assert!(rotated.load(&cookie, Utc::now()).await.unwrap().is_some());
}

#[tokio::test]
async fn too_large_is_a_typed_error_not_a_broken_cookie() {
    let s = store();
    // Incompressible data: random keys.
    let d: sesame::Data =
        (0..200).map(|_| (sesame::key::generate(), serde_json::Value::from(sesame::key::generate()))).collect();
    let err = s.create("unused", record(&d, later())).await.unwrap_err();
    match err {
        StoreError::TooLarge { size, limit } => {
            assert_eq!(limit, MAX_VALUE_BYTES);
            assert!(size > limit);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(s.save("x", record(&d, later()), &Version("x".into())).await, Err(StoreError::TooLarge { .. })));
}

#[test]
fn accepts_any_plausible_cookie_value() {
    let s = store();
    assert!(!s.accepts_key(""));
    assert!(s.accepts_key("eyJmb28iOiJiYXIifQ:1r31eq:sig"));
    assert!(!s.accepts_key(&"a".repeat(5000)));
}

fn app() -> axum::Router {
    let mut settings = sesame::Settings::with_secret_key(SECRET);
    settings.session_engine = sesame::Engine::SignedCookies;
    let sessions = sesame::Sessions::new(Arc::new(store()), settings);
    axum::Router::new()
        .route(
            "/write",
            get(|s: sesame::Session| async move {
                s.insert("name", "root").await.map(|_| "ok").map_err(|_| StatusCode::BAD_GATEWAY)
            }),
        )
        .route(
            "/read",
            get(|s: sesame::Session| async move {
                s.get::<String>("name").await.map(|n| n.unwrap_or_default()).map_err(|_| StatusCode::BAD_GATEWAY)
            }),
        )
        .route(
            "/huge",
            get(|s: sesame::Session| async move {
                for _ in 0..200 {
                    s.insert(&sesame::key::generate(), sesame::key::generate()).await.unwrap();
                }
                "written"
            }),
        )
        .route(
            "/logout",
            get(
                |s: sesame::Session| async move { s.flush().await.map(|_| "bye").map_err(|_| StatusCode::BAD_GATEWAY) },
            ),
        )
        .layer(sessions.layer())
}

async fn call(app: &axum::Router, path: &str, cookie: Option<&str>) -> axum::response::Response {
    let mut req = Request::get(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
}

async fn text(res: axum::response::Response) -> String {
    use http_body_util::BodyExt;
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

#[tokio::test]
async fn through_the_layer_the_cookie_carries_the_session() {
    let app = app();
    let res = call(&app, "/write", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let set = res.headers().get(header::SET_COOKIE).unwrap().to_str().unwrap().to_owned();
    let pair = set.split(';').next().unwrap().to_owned();
    let value = pair.strip_prefix("sessionid=").unwrap();
    // Sent as Django sends it: the colons are not percent-encoded (Django reads the raw value).
    assert_eq!(value.matches(':').count(), 2, "{set}");
    assert_eq!(
        *store().load(value, Utc::now()).await.unwrap().unwrap().data,
        data(serde_json::json!({"name": "root"}))
    );
    assert_eq!(text(call(&app, "/read", Some(&pair)).await).await, "root");
    // Logout deletes the cookie in this browser (the copy above would still work: documented).
    let res = call(&app, "/logout", Some(&pair)).await;
    let set = res.headers().get(header::SET_COOKIE).unwrap().to_str().unwrap();
    assert!(set.starts_with("sessionid=;") && set.contains("Max-Age=0"), "{set}");
    assert_eq!(text(call(&app, "/read", Some(&pair)).await).await, "root", "no server-side logout");
}

#[tokio::test]
async fn through_the_layer_too_large_is_a_500_without_a_cookie() {
    let app = app();
    let res = call(&app, "/huge", None).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(res.headers().get(header::SET_COOKIE).is_none());
}
