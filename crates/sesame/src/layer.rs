//! The tower layer: Django's `SessionMiddleware`, decision for decision.
//!
//! Per request: read the key from the cookie (never touching the store), hand the handler a
//! lazy [`Session`], and once the response head is back:
//! - cookie sent and session empty → a deletion cookie and `Vary: Cookie`;
//! - otherwise `Vary: Cookie` if the session was accessed, and if it was modified (or
//!   `SESSION_SAVE_EVERY_REQUEST`) and is not empty: save, then `Set-Cookie` with `Max-Age` and
//!   `Expires` from the session's expiry (neither for a browser-close session);
//! - no save and no cookie on a 5xx; a session deleted by another request meanwhile turns the
//!   response into a 400 instead of being brought back.

use cookie::Cookie;
use futures_util::future::BoxFuture;
use http::header::{HeaderValue, COOKIE, SET_COOKIE, VARY};
use http::{Request, Response, StatusCode};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

use crate::session::{Session, Shared};
use crate::settings::SameSite;
use crate::{Error, Sessions, StoreError};

/// Adds a [`Session`] to every request and saves it after the response.
///
/// # Examples
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let settings = sesame::Settings::load()?;
/// let sessions = sesame::Sessions::connect(settings).await?;
/// let app: axum::Router = axum::Router::new()
///     .route("/", axum::routing::get(|s: sesame::Session| async move {
///         let n: i64 = s.get("n").await.ok().flatten().unwrap_or(0);
///         s.insert("n", n + 1).await.ok();
///         format!("{n}")
///     }))
///     .layer(sessions.layer());
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SessionLayer {
    shared: Arc<Shared>,
}

impl SessionLayer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl From<&Sessions> for SessionLayer {
    fn from(s: &Sessions) -> Self {
        s.layer()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService { inner, shared: self.shared.clone() }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let name = &self.shared.settings.session_cookie_name;
        let sent = cookie_value(&req, name);
        let cookie_present = sent.is_some();
        let session = Session::new(self.shared.clone(), sent);
        req.extensions_mut().insert(session.clone());
        // The clone that was made ready is the one to call (tower's contract).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let mut res = inner.call(req).await?;
            finish(&shared, &session, cookie_present, &mut res).await;
            Ok(res)
        })
    }
}

/// The value of cookie `name` in the request's `Cookie` headers, if any, percent-decoded.
///
/// A header without `%` has nothing to decode, and it is parsed without the decoding pass:
/// on every request that pass was about a tenth of the session's own share of a session read
/// (callgrind, `/access-session-data/`). Session keys never contain `%`.
fn cookie_value<B>(req: &Request<B>, name: &str) -> Option<String> {
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| {
            let split = if h.contains('%') { Cookie::split_parse_encoded(h) } else { Cookie::split_parse(h) };
            split.filter_map(Result::ok)
        })
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

async fn finish<B: Default>(shared: &Shared, session: &Session, cookie_present: bool, res: &mut Response<B>) {
    let settings = &shared.settings;
    let empty = session.is_empty();
    if cookie_present && empty {
        let removal = deletion_cookie(settings);
        append_header(res, SET_COOKIE, &removal);
        patch_vary(res);
        return;
    }
    if session.accessed() {
        patch_vary(res);
    }
    if !(session.modified() || settings.session_save_every_request) || empty {
        return;
    }
    if res.status().is_server_error() {
        return;
    }
    if let Err(e) = session.save_for_response(settings.session_save_every_request).await {
        *res = error_response(&e);
        return;
    }
    let Some(key) = session.session_key() else {
        return;
    };
    let (browser_close, age) = match (session.get_expire_at_browser_close().await, session.get_expiry_age().await) {
        (Ok(b), Ok(a)) => (b, a),
        (Err(e), _) | (_, Err(e)) => {
            *res = error_response(&e);
            return;
        }
    };
    let mut c = base_cookie(settings, key);
    if !browser_close {
        c.set_max_age(cookie::time::Duration::seconds(age));
        let expires = cookie::time::OffsetDateTime::now_utc() + cookie::time::Duration::seconds(age);
        c.set_expires(expires);
    }
    append_header(res, SET_COOKIE, &cookie_header(&c));
}

/// The `Set-Cookie` value: as is when the value is made of RFC 6265 cookie-octets (session
/// keys; the signed-cookie engine's `payload:timestamp:signature`, which Django sends and
/// reads with its colons unescaped), percent-encoded otherwise.
fn cookie_header(c: &Cookie<'_>) -> String {
    let plain = c.value().bytes().all(|b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E));
    if plain {
        c.to_string()
    } else {
        c.encoded().to_string()
    }
}

fn base_cookie(settings: &crate::Settings, value: String) -> Cookie<'static> {
    let mut c = Cookie::new(settings.session_cookie_name.clone(), value);
    c.set_path(settings.session_cookie_path.clone());
    if let Some(d) = &settings.session_cookie_domain {
        c.set_domain(d.clone());
    }
    c.set_http_only(settings.session_cookie_httponly);
    let samesite_none = settings.session_cookie_samesite == Some(SameSite::None);
    // Browsers reject SameSite=None without Secure; Django's delete_cookie adds it too.
    c.set_secure(settings.session_cookie_secure || samesite_none);
    c.set_same_site(settings.session_cookie_samesite.map(|s| match s {
        SameSite::Lax => cookie::SameSite::Lax,
        SameSite::Strict => cookie::SameSite::Strict,
        SameSite::None => cookie::SameSite::None,
    }));
    c
}

/// Django's `delete_cookie`: empty value, `Max-Age=0`, an expiry in 1970.
fn deletion_cookie(settings: &crate::Settings) -> String {
    let mut c = base_cookie(settings, String::new());
    c.set_http_only(false);
    let prefixed =
        settings.session_cookie_name.starts_with("__Secure-") || settings.session_cookie_name.starts_with("__Host-");
    if !prefixed && settings.session_cookie_samesite != Some(SameSite::None) {
        c.set_secure(false);
    }
    c.set_max_age(cookie::time::Duration::ZERO);
    c.set_expires(cookie::time::OffsetDateTime::UNIX_EPOCH);
    c.encoded().to_string()
}

fn append_header<B>(res: &mut Response<B>, name: http::HeaderName, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(v) => {
            res.headers_mut().append(name, v);
        }
        Err(_) => tracing::error!("refusing to send an invalid {name} header"),
    }
}

/// Django's `patch_vary_headers(response, ("Cookie",))`.
fn patch_vary<B>(res: &mut Response<B>) {
    let existing: Vec<String> = res
        .headers()
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if existing.iter().any(|v| v == "*" || v.eq_ignore_ascii_case("cookie")) {
        return;
    }
    res.headers_mut().append(VARY, HeaderValue::from_static("Cookie"));
}

fn error_response<B: Default>(e: &Error) -> Response<B> {
    let status = match e {
        Error::Interrupted => {
            tracing::info!("session deleted by a concurrent request; not saving it (400)");
            StatusCode::BAD_REQUEST
        }
        Error::Store(StoreError::TooLarge { size, limit }) => {
            // A cookie this large would be dropped by the browser, losing the session
            // silently: refuse it loudly instead.
            tracing::error!(size, limit, "session too large for SESSION_ENGINE; not saved (store less in the session, or use a server-side engine)");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        other => {
            tracing::error!(error = %other, source = ?std::error::Error::source(other), "could not save the session");
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    let mut res = Response::new(B::default());
    *res.status_mut() = status;
    res
}
