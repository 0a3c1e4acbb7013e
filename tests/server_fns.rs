//! The app's server functions and pages, driven over HTTP through the real router (session
//! layer, CSRF middleware, Leptos routes) against the real SQLite store in a temp directory.
//!
//! Run with `cargo test --features ssr` (the test needs the server build).
#![cfg(feature = "ssr")]

use axum::{
    body::Body,
    http::{header, Request, Response, StatusCode},
    Router,
};
use http_body_util::BodyExt;
use leptos::prelude::LeptosOptions;
use sesame::{Sessions, Settings};
use tower::ServiceExt;

struct App {
    router: Router,
    sessions: Sessions,
    _dir: tempfile::TempDir,
}

async fn app() -> App {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db.sqlite3");
    let settings = Settings {
        database_url: format!("sqlite:{}", db.display()),
        ..Settings::with_secret_key("test-secret-key-for-the-app-tests")
    };
    let sessions = Sessions::connect(settings).await.expect("SQLite store");
    let options = LeptosOptions::builder().output_name("sesame-app").build();
    let router = sesame_app::server::router::build(options, &sessions);
    App { router, sessions, _dir: dir }
}

/// A tiny browser: keeps the `sessionid` cookie between requests.
struct Client<'a> {
    app: &'a App,
    cookie: Option<String>,
}

struct Reply {
    status: StatusCode,
    location: Option<String>,
    set_cookie: Vec<String>,
    body: String,
}

impl<'a> Client<'a> {
    fn new(app: &'a App) -> Self {
        Client { app, cookie: None }
    }

    async fn send(&mut self, mut req: Request<Body>) -> Reply {
        if let Some(c) = &self.cookie {
            req.headers_mut().insert(header::COOKIE, format!("sessionid={c}").parse().unwrap());
        }
        req.headers_mut().insert(header::HOST, "127.0.0.1:3000".parse().unwrap());
        let res: Response<Body> = self.app.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let location = res.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_string());
        let set_cookie: Vec<String> =
            res.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect();
        for sc in &set_cookie {
            let value = sc.split(';').next().unwrap().trim_start_matches("sessionid=");
            self.cookie = if value.is_empty() || sc.contains("Max-Age=0") { None } else { Some(value.to_string()) };
        }
        let body = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        Reply { status, location, set_cookie, body }
    }

    async fn get(&mut self, path: &str) -> Reply {
        self.send(Request::get(path).header(header::ACCEPT, "text/html").body(Body::empty()).unwrap()).await
    }

    /// A form post: `html` = a browser without JavaScript, else the server-function client.
    async fn post(&mut self, path: &str, form: &[(&str, &str)], html: bool) -> Reply {
        let body = serde_urlencoded::to_string(form).unwrap();
        let accept = if html { "text/html,application/xhtml+xml" } else { "application/json" };
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, accept)
            .header(header::REFERER, "http://127.0.0.1:3000/access-session-data/")
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }

    fn session(&self) -> sesame::Session {
        self.app.sessions.open(self.cookie.as_deref())
    }
}

fn csrf_token(html: &str) -> String {
    let marker = "name=\"csrfmiddlewaretoken\" value=\"";
    let start = html.find(marker).expect("a CSRF field in the page") + marker.len();
    html[start..start + 64].to_string()
}

#[tokio::test]
async fn cookie_test_pages() {
    let app = app().await;
    let mut c = Client::new(&app);
    let r = c.get("/test-delete/").await;
    assert!(r.body.contains("Cookie test failed"));
    assert!(r.set_cookie.is_empty(), "no session for a read");

    let r = c.get("/test-session/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Testing session cookie"));
    assert_eq!(r.set_cookie.len(), 1, "SSR write → Set-Cookie in the head (async route)");
    assert!(r.set_cookie[0].contains("HttpOnly") && r.set_cookie[0].contains("SameSite=Lax"));
    assert_eq!(c.session().get::<String>("testcookie").await.unwrap().as_deref(), Some("worked"));

    let r = c.get("/test-delete/").await;
    assert!(r.body.contains("Cookie test passed"));
    assert_eq!(c.session().get::<String>("testcookie").await.unwrap(), None);
}

#[tokio::test]
async fn tutorial_session_data() {
    let app = app().await;
    let mut c = Client::new(&app);
    assert!(c.get("/save-session-data/").await.body.contains("Session Data Saved"));
    let key = c.cookie.clone().expect("a session");
    let s = c.session();
    assert_eq!(s.get::<i64>("id").await.unwrap(), Some(1));
    assert_eq!(s.get::<String>("name").await.unwrap().as_deref(), Some("root"));
    assert_eq!(s.get::<String>("password").await.unwrap().as_deref(), Some("rootpass"));

    let r = c.get("/access-session-data/").await;
    assert!(
        r.body.contains("Id : 1 <br/>Name : root <br/>Password : rootpass <br/>") || r.body.contains("Id : 1 <br>"),
        "{}",
        r.body
    );

    assert!(c.get("/delete-session-data/").await.body.contains("Session Data cleared"));
    assert!(c.get("/access-session-data/").await.body.contains("No session data"));
    assert_eq!(c.cookie.as_deref(), Some(key.as_str()), "same session throughout");
}

#[tokio::test]
async fn panel_server_functions_with_and_without_js() {
    let app = app().await;
    let mut c = Client::new(&app);
    let token = csrf_token(&c.get("/access-session-data/").await.body);

    // JS client: JSON result with the new state.
    let r = c
        .post(
            "/api/session_action",
            &[("csrfmiddlewaretoken", &token), ("action", "set"), ("key", "n"), ("value", "[1,2]")],
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let result: sesame_app::model::PanelResult =
        <sesame_app::model::PanelEncoding as leptos::server_fn::Decodes<_>>::decode(r.body.clone().into()).unwrap();
    assert!(result.view.items.iter().any(|i| i.key == "n" && i.json == "[1,2]"));
    assert_eq!(c.session().get_value("n").await.unwrap(), Some(serde_json::json!([1, 2])));

    // No JS: a redirect back to the page, and the outcome as a flash message.
    let r = c
        .post("/api/session_action", &[("csrfmiddlewaretoken", &token), ("action", "delete"), ("key", "n")], true)
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    // Back to the Referer (server_fn strips its own error query, leaving a bare `?`).
    assert!(r.location.as_deref().unwrap_or("").starts_with("http://127.0.0.1:3000/access-session-data/"));
    assert_eq!(c.session().get_value("n").await.unwrap(), None);
    let page = c.get("/access-session-data/").await.body;
    assert!(page.contains("Deleted “n”."), "flash shown");
    assert!(!c.get("/access-session-data/").await.body.contains("Deleted “n”."), "and only once");

    // Framework keys are off limits.
    let r = c
        .post(
            "/api/session_action",
            &[("csrfmiddlewaretoken", &token), ("action", "set"), ("key", "_csrftoken"), ("value", "x")],
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.body.starts_with("BadInput|"), "{}", r.body);

    // Nested: a change to a copy is not saved; stored back (modified) it is.
    for (step, clicks) in [("nested_create", 0), ("nested", 0), ("nested_modified", 1)] {
        let r = c.post("/api/session_action", &[("csrfmiddlewaretoken", &token), ("action", step)], false).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let prefs = c.session().get_value("prefs").await.unwrap().unwrap();
        assert_eq!(prefs["clicks"], clicks, "after {step}");
    }
}

#[tokio::test]
async fn expiry_changes_the_cookie() {
    let app = app().await;
    let mut c = Client::new(&app);
    let r = c.get("/expiry/").await;
    assert!(r.set_cookie[0].contains("Max-Age=1209600"), "{:?}", r.set_cookie);
    let token = csrf_token(&r.body);

    let r = c
        .post(
            "/api/session_action",
            &[("csrfmiddlewaretoken", &token), ("action", "expire_seconds"), ("value", "300")],
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.set_cookie[0].contains("Max-Age=300"), "{:?}", r.set_cookie);
    assert_eq!(c.session().get_expiry_age().await.unwrap(), 300);

    let r = c
        .post("/api/session_action", &[("csrfmiddlewaretoken", &token), ("action", "expire_browser_close")], false)
        .await;
    assert!(!r.set_cookie[0].contains("Max-Age") && !r.set_cookie[0].contains("Expires"), "{:?}", r.set_cookie);
    assert!(c.session().get_expire_at_browser_close().await.unwrap());

    let r =
        c.post("/api/session_action", &[("csrfmiddlewaretoken", &token), ("action", "expire_default")], false).await;
    assert!(r.set_cookie[0].contains("Max-Age=1209600"), "{:?}", r.set_cookie);

    let r = c
        .post(
            "/api/session_action",
            &[("csrfmiddlewaretoken", &token), ("action", "expire_seconds"), ("value", "-1")],
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn lousy_login_flow() {
    let app = app().await;
    let mut c = Client::new(&app);

    let r = c.get("/lousy-secret/").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.location.as_deref(), Some("/lousy-login/"));

    let token = csrf_token(&c.get("/lousy-login/").await.body);
    let before = c.cookie.clone().expect("the CSRF secret made a session");

    // Wrong password: Django's message format in the session, shown once.
    let r = c
        .post("/api/lousy_login", &[("csrfmiddlewaretoken", &token), ("username", "root"), ("password", "x")], true)
        .await;
    assert_eq!((r.status, r.location.as_deref()), (StatusCode::FOUND, Some("/lousy-login/")));
    assert_eq!(
        c.session().get_value("_messages").await.unwrap(),
        Some(serde_json::Value::String(r#"[["__json_message",0,40,"Error wrong username/password"]]"#.into()))
    );
    assert!(c.get("/lousy-login/").await.body.contains("Error wrong username/password"));
    assert!(!c.get("/lousy-login/").await.body.contains("Error wrong username/password"));

    // Success: a new key, the old record gone.
    let r = c
        .post("/api/lousy_login", &[("csrfmiddlewaretoken", &token), ("username", "root"), ("password", "pass")], true)
        .await;
    assert_eq!((r.status, r.location.as_deref()), (StatusCode::FOUND, Some("/lousy-secret/")));
    let after = c.cookie.clone().unwrap();
    assert_ne!(before, after);
    assert!(!app.sessions.open(Some(&before)).exists().await.unwrap());
    let r = c.get("/lousy-secret/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Welcome root, you are logged in."), "{}", r.body);

    // The old token died with login (rotate_token); a fresh page has a new one.
    let r = c
        .post(
            "/api/session_action",
            &[("csrfmiddlewaretoken", &token), ("action", "set"), ("key", "a"), ("value", "1")],
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Logout flushes: record deleted, deletion cookie sent.
    let r = c.get("/lousy-logout/").await;
    assert!(r.body.contains("You are logged out."));
    assert!(r.set_cookie.iter().any(|s| s.starts_with("sessionid=;") || s.contains("Max-Age=0")), "{:?}", r.set_cookie);
    assert!(!app.sessions.open(Some(&after)).exists().await.unwrap());
    let r = c.get("/lousy-secret/").await;
    assert_eq!((r.status, r.location.as_deref()), (StatusCode::FOUND, Some("/lousy-login/")));
}

#[tokio::test]
async fn csrf_refusals() {
    let app = app().await;
    let mut c = Client::new(&app);
    let token = csrf_token(&c.get("/lousy-login/").await.body);
    let form = [("csrfmiddlewaretoken", token.as_str()), ("username", "root"), ("password", "pass")];

    let mut cross = Request::post("/api/lousy_login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, "http://evil.test")
        .body(Body::from(serde_urlencoded::to_string(form).unwrap()))
        .unwrap();
    assert_eq!(c.send(cross).await.status, StatusCode::FORBIDDEN);
    cross = Request::post("/lousy-login/")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(Body::from(serde_urlencoded::to_string(form).unwrap()))
        .unwrap();
    assert_eq!(c.send(cross).await.status, StatusCode::FORBIDDEN);

    let r = c.post("/api/lousy_login", &[("username", "root"), ("password", "pass")], true).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("CSRF token missing"));

    // A token from another session is refused.
    let mut other = Client::new(&app);
    let foreign = csrf_token(&other.get("/lousy-login/").await.body);
    let r = c
        .post(
            "/api/lousy_login",
            &[("csrfmiddlewaretoken", &foreign), ("username", "root"), ("password", "pass")],
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // The right token passes, same origin too.
    let r = c.post("/lousy-login/", &form, true).await;
    assert_eq!((r.status, r.location.as_deref()), (StatusCode::FOUND, Some("/lousy-secret/")));
}
