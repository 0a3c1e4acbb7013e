//! Django's `SessionMiddleware` decision table, through `tower::ServiceExt::oneshot`.
mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use common::*;
use sesame::store::{MemoryStore, SessionStore};
use sesame::{Expiry, Session, Sessions, Settings};
use std::sync::Arc;
use tower::ServiceExt;

struct App {
    store: Arc<Counting<MemoryStore>>,
    sessions: Sessions,
    router: Router,
}

fn app_with(settings: Settings) -> App {
    let store = Arc::new(Counting::new(MemoryStore::new()));
    let sessions = Sessions::new(store.clone(), settings);
    let s2 = sessions.clone();
    let router = Router::new()
        .route("/plain", get(|| async { "ok" }))
        .route("/read", get(|s: Session| async move { format!("{:?}", s.get_value("name").await.unwrap()) }))
        .route(
            "/write",
            get(|s: Session| async move {
                s.insert("name", "root").await.unwrap();
                "saved"
            }),
        )
        .route(
            "/flush",
            get(|s: Session| async move {
                s.flush().await.unwrap();
                "flushed"
            }),
        )
        .route(
            "/clear",
            get(|s: Session| async move {
                s.clear().await.unwrap();
                "cleared"
            }),
        )
        .route(
            "/browser-close",
            get(|s: Session| async move {
                s.set_expiry(Expiry::BrowserClose).await.unwrap();
                "ok"
            }),
        )
        .route(
            "/expiry-300",
            get(|s: Session| async move {
                s.set_expiry(Expiry::Seconds(300)).await.unwrap();
                "ok"
            }),
        )
        .route(
            "/fail",
            get(|s: Session| async move {
                s.insert("name", "never").await.unwrap();
                (StatusCode::INTERNAL_SERVER_ERROR, "boom")
            }),
        )
        .route(
            "/vary",
            get(|s: Session| async move {
                s.get_value("x").await.unwrap();
                ([(header::VARY, "Accept-Encoding")], "ok")
            }),
        )
        .route(
            "/deleted-meanwhile",
            get(move |s: Session| {
                let store = s2.store().clone();
                async move {
                    s.insert("late", true).await.unwrap();
                    // Another request (a logout) deletes the session while this one runs.
                    store.delete(&s.session_key().unwrap()).await.unwrap();
                    "too late"
                }
            }),
        )
        .layer(sessions.layer());
    App { store, sessions, router }
}

fn app() -> App {
    app_with(Settings::with_secret_key(SECRET))
}

async fn call(app: &App, path: &str, cookie: Option<&str>) -> axum::response::Response {
    let mut req = Request::get(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    app.router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
}

fn set_cookies(res: &axum::response::Response) -> Vec<String> {
    res.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

fn vary(res: &axum::response::Response) -> Vec<String> {
    res.headers().get_all(header::VARY).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

fn session_key(res: &axum::response::Response) -> String {
    let c = set_cookies(res);
    let first = c.first().expect("a Set-Cookie");
    first.strip_prefix("sessionid=").unwrap().split(';').next().unwrap().to_owned()
}

async fn body(res: axum::response::Response) -> String {
    use http_body_util::BodyExt;
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

/// A stored session; returns its key.
async fn existing(app: &App) -> String {
    let res = call(app, "/write", None).await;
    session_key(&res)
}

#[tokio::test]
async fn untouched_session_costs_nothing() {
    let app = app();
    let res = call(&app, "/plain", None).await;
    assert!(set_cookies(&res).is_empty());
    assert!(vary(&res).is_empty());
    let key = existing(&app).await;
    let (loads, writes) = (app.store.loads(), app.store.writes());
    let res = call(&app, "/plain", Some(&format!("sessionid={key}"))).await;
    assert!(set_cookies(&res).is_empty());
    assert!(vary(&res).is_empty());
    assert_eq!((app.store.loads(), app.store.writes()), (loads, writes), "no store I/O");
}

#[tokio::test]
async fn reading_costs_one_load_no_write_and_varies_on_cookie() {
    let app = app();
    let key = existing(&app).await;
    let (loads, writes) = (app.store.loads(), app.store.writes());
    let res = call(&app, "/read", Some(&format!("sessionid={key}"))).await;
    assert_eq!(vary(&res), vec!["Cookie"]);
    assert!(set_cookies(&res).is_empty());
    assert_eq!(app.store.loads(), loads + 1);
    assert_eq!(app.store.writes(), writes);
    assert_eq!(body(res).await, r#"Some(String("root"))"#);
}

#[tokio::test]
async fn the_session_cookie_is_found_among_others_and_percent_decoded() {
    let app = app();
    let key = existing(&app).await;
    // The first character percent-encoded: only the decoding parse finds the key.
    let encoded = format!("%{:02X}{}", key.as_bytes()[0], &key[1..]);
    for header in [
        format!("a=1; sessionid={key}; b=2"),
        format!("csrftoken=x%20y; sessionid={key}"),
        format!("sessionid={encoded}"),
    ] {
        let res = call(&app, "/read", Some(&header)).await;
        assert_eq!(body(res).await, r#"Some(String("root"))"#, "{header}");
    }
    let loads = app.store.loads();
    let res = call(&app, "/read", Some(&format!("other={key}; sessionidx={key}"))).await;
    assert_eq!(body(res).await, "None");
    assert_eq!(app.store.loads(), loads, "no session cookie, no load");
}

#[tokio::test]
async fn a_write_saves_and_sets_a_django_cookie() {
    let app = app();
    let res = call(&app, "/write", None).await;
    assert_eq!(vary(&res), vec!["Cookie"]);
    let cookies = set_cookies(&res);
    assert_eq!(cookies.len(), 1);
    let c = &cookies[0];
    let key = session_key(&res);
    assert_eq!(key.len(), 32);
    assert!(key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=1209600", "Expires="] {
        assert!(c.contains(attr), "{attr} missing in {c}");
    }
    assert!(!c.contains("Secure"), "{c}");
    let stored = app.store.inner.load(&key, chrono::Utc::now()).await.unwrap().unwrap();
    assert_eq!(*stored.data, data(serde_json::json!({"name": "root"})));
}

#[tokio::test]
async fn the_cookie_is_reused_for_later_writes() {
    let app = app();
    let key = existing(&app).await;
    let res = call(&app, "/write", Some(&format!("sessionid={key}"))).await;
    assert_eq!(session_key(&res), key);
}

#[tokio::test]
async fn an_emptied_session_deletes_the_cookie() {
    let app = app();
    let key = existing(&app).await;
    let res = call(&app, "/flush", Some(&format!("sessionid={key}"))).await;
    let c = set_cookies(&res);
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].starts_with("sessionid=;"), "{}", c[0]);
    assert!(c[0].contains("Max-Age=0") && c[0].contains("Expires=Thu, 01 Jan 1970 00:00:00 GMT"), "{}", c[0]);
    assert!(c[0].contains("Path=/") && c[0].contains("SameSite=Lax"), "{}", c[0]);
    assert_eq!(vary(&res), vec!["Cookie"]);
    assert!(!app.store.inner.exists(&key).await.unwrap(), "flush deletes the record");
}

#[tokio::test]
async fn clear_keeps_the_key_and_saves_an_empty_map() {
    let app = app();
    let key = existing(&app).await;
    let res = call(&app, "/clear", Some(&format!("sessionid={key}"))).await;
    assert_eq!(session_key(&res), key);
    let stored = app.store.inner.load(&key, chrono::Utc::now()).await.unwrap().unwrap();
    assert!(stored.data.is_empty());
}

#[tokio::test]
async fn unknown_keys_are_never_adopted() {
    let app = app();
    let sent = "attackerchosenkey000000000000000";
    let res = call(&app, "/write", Some(&format!("sessionid={sent}"))).await;
    let key = session_key(&res);
    assert_ne!(key, sent);
    assert!(!app.store.inner.exists(sent).await.unwrap());
    // Reading with an unknown key: the session is empty, so the cookie is deleted.
    let res = call(&app, "/read", Some(&format!("sessionid={sent}"))).await;
    assert!(set_cookies(&res)[0].contains("Max-Age=0"));
}

#[tokio::test]
async fn malformed_cookies_never_reach_the_store() {
    let app = app();
    for bad in ["../../etc/passwd", "x", "UPPERCASEKEY0000000", "%00%01", &"a".repeat(300)] {
        let loads = app.store.loads();
        let res = call(&app, "/read", Some(&format!("sessionid={bad}"))).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(app.store.loads(), loads, "{bad} was looked up");
        assert!(set_cookies(&res)[0].contains("Max-Age=0"), "the bad cookie is deleted");
    }
    // A garbage Cookie header is ignored, not an error.
    let res = call(&app, "/read", Some("=;;;sessionid")).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn no_save_on_a_server_error() {
    let app = app();
    let res = call(&app, "/fail", None).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookies(&res).is_empty());
    assert_eq!(app.store.writes(), 0);
}

#[tokio::test]
async fn a_session_deleted_meanwhile_gives_400_not_a_resurrection() {
    let app = app();
    let key = existing(&app).await;
    let res = call(&app, "/deleted-meanwhile", Some(&format!("sessionid={key}"))).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookies(&res).is_empty());
    assert!(!app.store.inner.exists(&key).await.unwrap(), "the deleted session stays deleted");
}

#[tokio::test]
async fn save_every_request_writes_on_reads_too() {
    let mut settings = Settings::with_secret_key(SECRET);
    settings.session_save_every_request = true;
    let app = app_with(settings);
    let key = existing(&app).await;
    let writes = app.store.writes();
    let res = call(&app, "/read", Some(&format!("sessionid={key}"))).await;
    assert_eq!(session_key(&res), key);
    assert_eq!(app.store.writes(), writes + 1);
    // Even a route that never touches the session refreshes it (Django loads and saves).
    let res = call(&app, "/plain", Some(&format!("sessionid={key}"))).await;
    assert_eq!(session_key(&res), key);
    // ...but a visitor without a session gets none.
    let res = call(&app, "/plain", None).await;
    assert!(set_cookies(&res).is_empty());
}

#[tokio::test]
async fn browser_close_sessions_get_no_max_age_or_expires() {
    let app = app();
    let res = call(&app, "/browser-close", None).await;
    let c = &set_cookies(&res)[0];
    assert!(!c.contains("Max-Age") && !c.contains("Expires"), "{c}");
    let mut settings = Settings::with_secret_key(SECRET);
    settings.session_expire_at_browser_close = true;
    let app = app_with(settings);
    let c = &set_cookies(&call(&app, "/write", None).await)[0];
    assert!(!c.contains("Max-Age") && !c.contains("Expires"), "{c}");
    let c = &set_cookies(&call(&app, "/expiry-300", None).await)[0];
    assert!(c.contains("Max-Age=300"), "per-session expiry overrides the global policy: {c}");
}

#[tokio::test]
async fn per_session_expiry_sets_max_age() {
    let app = app();
    let res = call(&app, "/expiry-300", None).await;
    let c = &set_cookies(&res)[0];
    assert!(c.contains("Max-Age=300"), "{c}");
    let key = session_key(&res);
    let stored = app.store.inner.load(&key, chrono::Utc::now()).await.unwrap().unwrap();
    assert_eq!(stored.data.get("_session_expiry"), Some(&serde_json::json!(300)));
}

#[tokio::test]
async fn cookie_settings_are_honoured() {
    let mut settings = Settings::with_secret_key(SECRET);
    settings.session_cookie_name = "sid".into();
    settings.session_cookie_domain = Some("example.com".into());
    settings.session_cookie_path = "/app".into();
    settings.session_cookie_secure = true;
    settings.session_cookie_httponly = false;
    settings.session_cookie_samesite = Some(sesame::settings::SameSite::Strict);
    settings.session_cookie_age = 60;
    let app = app_with(settings);
    let res = call(&app, "/write", None).await;
    let c = &set_cookies(&res)[0];
    assert!(c.starts_with("sid="), "{c}");
    for attr in ["Domain=example.com", "Path=/app", "Secure", "SameSite=Strict", "Max-Age=60"] {
        assert!(c.contains(attr), "{attr} missing in {c}");
    }
    assert!(!c.contains("HttpOnly"), "{c}");
    let mut none = Settings::with_secret_key(SECRET);
    none.session_cookie_samesite = Some(sesame::settings::SameSite::None);
    let c = &set_cookies(&call(&app_with(none), "/write", None).await)[0];
    assert!(c.contains("SameSite=None") && c.contains("Secure"), "{c}");
    let mut off = Settings::with_secret_key(SECRET);
    off.session_cookie_samesite = None;
    let c = &set_cookies(&call(&app_with(off), "/write", None).await)[0];
    assert!(!c.contains("SameSite"), "{c}");
}

#[tokio::test]
async fn vary_is_appended_not_replaced() {
    let app = app();
    let res = call(&app, "/vary", None).await;
    assert_eq!(vary(&res), vec!["Accept-Encoding", "Cookie"]);
}

#[tokio::test]
async fn tampered_data_reads_as_empty_not_500() {
    let (store, _dir) = sqlite_store().await;
    let sessions = Sessions::new(Arc::new(store.clone()), Settings::with_secret_key(SECRET));
    let router = Router::new()
        .route("/read", get(|s: Session| async move { format!("{:?}", s.get_value("user").await.unwrap()) }))
        .layer(sessions.layer());
    let k = "tamperedkey00000000000000000000a";
    let encoded = sesame::codec::Codec::new("another-secret", &[]).encode(&data(serde_json::json!({"user": "admin"})));
    sqlx::query("INSERT INTO django_session VALUES (?1, ?2, '2999-01-01 00:00:00')")
        .bind(k)
        .bind(encoded)
        .execute(store.writer_pool())
        .await
        .unwrap();
    let req = Request::get("/read").header(header::COOKIE, format!("sessionid={k}")).body(Body::empty()).unwrap();
    let res = router.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, "None");
}

#[tokio::test]
async fn a_store_that_is_down_gives_503_and_the_handler_sees_the_error() {
    let (store, _dir) = sqlite_store().await;
    let pool = store.writer_pool().clone();
    let sessions = Sessions::new(Arc::new(store), Settings::with_secret_key(SECRET));
    let router = Router::new()
        .route(
            "/write",
            get(|s: Session| async move {
                match s.insert("a", 1).await {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => format!("error: {e}"),
                }
            }),
        )
        .layer(sessions.layer());
    sqlx::query("DROP TABLE django_session").execute(&pool).await.unwrap();
    let res = router.oneshot(Request::get("/write").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(set_cookies(&res).is_empty());
}

#[tokio::test]
async fn the_extractor_needs_the_layer() {
    let router: Router = Router::new().route("/", get(|_s: Session| async { "never" }));
    let res = router.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn sessions_are_usable_outside_requests() {
    let app = app();
    let key = existing(&app).await;
    let s = app.sessions.open(Some(&key));
    assert_eq!(s.get::<String>("name").await.unwrap().as_deref(), Some("root"));
    assert!(!app.store.is_shared(), "the memory store is per process");
}
