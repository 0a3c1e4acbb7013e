//! CSRF protection in the style of Django's `CsrfViewMiddleware` with `CSRF_USE_SESSIONS = True`:
//! the browser holds only `sessionid`, so the CSRF secret lives in the session (key
//! `_csrftoken`, 32 chars of `[a-zA-Z0-9]`), and forms carry it masked (64 chars, a fresh mask
//! per render, against BREACH) in the `csrfmiddlewaretoken` field.
//!
//! Every unsafe request (POST, PUT, PATCH, DELETE — form posts and server function calls alike)
//! must pass two checks, else it gets a 403:
//! 1. it is not cross-site: `Sec-Fetch-Site` (sent by every current browser) must not be
//!    `cross-site`/`same-site`, and an `Origin` header, when present, must match `Host`;
//! 2. its form body carries a token whose secret equals the session's.
//!
//! GET stays safe by convention, as in Django: the only GET with a side effect is the tutorial's
//! test cookie, which is harmless.

use axum::{
    body::{to_bytes, Body},
    extract::{FromRequestParts, Request},
    http::{header, HeaderMap, Method, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Response},
};
use rand::Rng;
use sesame::Session;
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::ui::CSRF_FIELD;

/// Session key of the CSRF secret (Django's `CSRF_SESSION_KEY`).
pub const CSRF_SESSION_KEY: &str = "_csrftoken";
const SECRET_LEN: usize = 32;
const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Largest form body the check reads (the app's forms are tiny).
const MAX_FORM_BYTES: usize = 64 * 1024;

fn random_string() -> String {
    let mut rng = rand::rng();
    (0..SECRET_LEN).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

fn index(c: u8) -> Option<usize> {
    CHARS.iter().position(|&x| x == c)
}

/// Django's `_mask_cipher_secret`: `mask + (secret + mask) mod 62` per character.
pub fn mask(secret: &str) -> String {
    let mask = random_string();
    let cipher: String = secret
        .bytes()
        .zip(mask.bytes())
        .map(|(s, m)| {
            let (s, m) = (index(s).unwrap_or(0), index(m).unwrap_or(0));
            CHARS[(s + m) % CHARS.len()] as char
        })
        .collect();
    mask + &cipher
}

/// Django's `_unmask_cipher_token`; `None` if the token has foreign characters.
pub fn unmask(token: &str) -> Option<String> {
    let (mask, cipher) = token.as_bytes().split_at(SECRET_LEN);
    cipher
        .iter()
        .zip(mask)
        .map(|(&c, &m)| {
            let (c, m) = (index(c)?, index(m)?);
            Some(CHARS[(c + CHARS.len() - m) % CHARS.len()] as char)
        })
        .collect()
}

/// The masked token for a form, creating the session's secret on first use (which saves the
/// session: a page with a form therefore sets `sessionid`, as Django does with
/// `CSRF_USE_SESSIONS`).
pub async fn token(session: &Session) -> Result<String, AppError> {
    let secret = match session.get::<String>(CSRF_SESSION_KEY).await {
        Ok(Some(s)) if is_secret(&s) => s,
        _ => {
            let s = random_string();
            session.insert(CSRF_SESSION_KEY, &s).await?;
            s
        }
    };
    Ok(mask(&secret))
}

/// A new secret (Django's `rotate_token`, called on login).
pub async fn rotate(session: &Session) -> Result<(), AppError> {
    session.insert(CSRF_SESSION_KEY, random_string()).await?;
    Ok(())
}

fn is_secret(s: &str) -> bool {
    s.len() == SECRET_LEN && s.bytes().all(|b| index(b).is_some())
}

/// Whether `token` (masked, 64 chars, or a bare 32-char secret) matches `secret`.
pub fn matches(token: &str, secret: &str) -> bool {
    let candidate = match token.len() {
        n if n == 2 * SECRET_LEN => match unmask(token) {
            Some(s) => s,
            None => return false,
        },
        SECRET_LEN => token.to_string(),
        _ => return false,
    };
    is_secret(secret) && bool::from(candidate.as_bytes().ct_eq(secret.as_bytes()))
}

/// Why a request was refused; the text follows Django's 403 page.
#[derive(Debug, PartialEq, Eq)]
pub enum Reject {
    /// `Sec-Fetch-Site` says another site made the request.
    CrossSite(String),
    /// `Origin` does not match the host.
    BadOrigin(String),
    /// No token in the form.
    Missing,
    /// The token does not match the session's secret (or the session has none).
    Incorrect,
    /// The body is too big to check or not a form.
    Unreadable,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reject::CrossSite(s) => write!(f, "Cross-site request refused (Sec-Fetch-Site: {s})."),
            Reject::BadOrigin(o) => {
                write!(f, "Origin checking failed - {o} does not match any trusted origins.")
            }
            Reject::Missing => f.write_str("CSRF token missing."),
            Reject::Incorrect => f.write_str("CSRF token incorrect."),
            Reject::Unreadable => f.write_str("The request body could not be checked."),
        }
    }
}

/// Check 1: the request comes from this site.
pub fn check_origin(headers: &HeaderMap) -> Result<(), Reject> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site == "cross-site" || site == "same-site" {
            return Err(Reject::CrossSite(site.to_string()));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let origin_host = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
        if host.is_empty() || origin_host != Some(host) {
            return Err(Reject::BadOrigin(origin.to_string()));
        }
    }
    Ok(())
}

fn forbidden(reason: &Reject) -> Response {
    tracing::warn!(%reason, "CSRF check refused a request");
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>403 Forbidden</title>\
         </head><body><h1>Forbidden <span>(403)</span></h1><p>CSRF verification failed. Request \
         aborted.</p><p>Reason given for failure: {}</p><p><a href=\"/\">Back to Sesame</a></p>\
         </body></html>",
        html_escape(&reason.to_string())
    );
    (StatusCode::FORBIDDEN, Html(page)).into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// axum middleware: both checks on every unsafe request. Install inside `SessionLayer` (it reads
/// the session) and around every route, server functions included.
pub async fn protect(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE) {
        return next.run(req).await;
    }
    if let Err(reason) = check_origin(req.headers()) {
        return forbidden(&reason);
    }
    let (mut parts, body) = req.into_parts();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let header_token = parts.headers.get("x-csrftoken").and_then(|v| v.to_str().ok()).map(str::to_string);
    let bytes = match to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => return forbidden(&Reject::Unreadable),
    };
    let token = header_token.or_else(|| {
        is_form
            .then(|| {
                serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
                    .ok()?
                    .into_iter()
                    .find(|(k, _)| k == CSRF_FIELD)
                    .map(|(_, v)| v)
            })
            .flatten()
    });
    let Some(token) = token else {
        return forbidden(&Reject::Missing);
    };
    let session = match Session::from_request_parts(&mut parts, &()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = ?e, "CSRF check needs the session layer outside it");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let secret = match session.get::<String>(CSRF_SESSION_KEY).await {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            tracing::error!(error = %e, "could not read the CSRF secret from the session");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    if !matches(&token, &secret) {
        return forbidden(&Reject::Incorrect);
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn mask_round_trips_and_varies() {
        let secret = random_string();
        let (a, b) = (mask(&secret), mask(&secret));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b, "a fresh mask per render");
        assert_eq!(unmask(&a).as_deref(), Some(secret.as_str()));
        assert!(matches(&a, &secret) && matches(&b, &secret) && matches(&secret, &secret));
    }

    #[test]
    fn django_vector() {
        // Django: _unmask_cipher_token(mask + cipher) with mask "b"*32 shifts each char by 1.
        let secret = "a".repeat(32);
        let token = format!("{}{}", "b".repeat(32), "b".repeat(32));
        assert!(matches(&token, &secret));
    }

    #[test]
    fn wrong_tokens_fail() {
        let secret = random_string();
        assert!(!matches("", &secret));
        assert!(!matches(&mask(&random_string()), &secret));
        assert!(!matches(&"!".repeat(64), &secret));
        assert!(!matches(&mask(&secret), ""), "no secret in the session");
    }

    #[test]
    fn origin_checks() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
        assert!(check_origin(&h).is_ok(), "no Origin, no Sec-Fetch-Site: token decides");
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:3000"));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(check_origin(&h).is_ok());
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.test"));
        assert!(matches!(check_origin(&h), Err(Reject::BadOrigin(_))));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(matches!(check_origin(&h), Err(Reject::BadOrigin(_))));
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(matches!(check_origin(&h), Err(Reject::CrossSite(_))));
    }
}
