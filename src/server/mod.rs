//! Server-only glue between Leptos and the Sesame engine: getting the session in a server
//! function, CSRF protection, flash messages, and the axum router.

pub mod csrf;
pub mod messages;
pub mod router;

use axum::http::{header, HeaderValue};
use leptos::prelude::*;
use sesame::Session;

use crate::error::AppError;
use crate::model::{Item, PanelResult, SessionView};

/// This request's session (the `SessionLayer` put it in the request; server functions and SSR
/// both get it from the request parts Leptos keeps in context).
pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>().await.map_err(|e| {
        tracing::error!(error = ?e, "no session in request: is SessionLayer installed?");
        AppError::Internal
    })
}

/// Whether this request is a plain HTML form post or navigation (JavaScript off), as opposed to
/// a call from the server-function client in the browser. Same test leptos_axum's `redirect`
/// uses: the browser's `Accept` for a navigation contains `text/html`.
pub fn is_plain_form_post() -> bool {
    use_context::<axum::http::request::Parts>()
        .and_then(|p| p.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).map(|v| v.contains("text/html")))
        .unwrap_or(false)
}

/// The `Cache-Control` of every response that depends on who is logged in.
pub const NO_STORE: &str = "no-cache, no-store, must-revalidate, private";

/// Forbid caching of a page that depends on who is logged in, so that "back" after logout asks
/// the server again instead of showing a stored copy (Chromium also keeps `no-store` pages out of
/// its back/forward cache).
pub fn no_store() {
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.insert_header(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    }
}

/// The session as the pages and islands show it.
pub async fn snapshot(session: &Session) -> Result<SessionView, AppError> {
    let items = session
        .items()
        .await?
        .into_iter()
        .map(|(key, value)| {
            // The CSRF secret never goes into a page unmasked (BREACH): show that it is there.
            let json = if key == csrf::CSRF_SESSION_KEY {
                "\"(CSRF secret, not shown)\"".to_string()
            } else {
                value.to_string()
            };
            Item { key, json }
        })
        .collect::<Vec<_>>();
    let stored_expiry = items.iter().find(|i| i.key == "_session_expiry").map(|i| i.json.clone());
    let expiry_date = session.get_expiry_date().await?;
    Ok(SessionView {
        items,
        expiry_age: session.get_expiry_age().await?,
        expiry_date: expiry_date.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        browser_close: session.get_expire_at_browser_close().await?,
        stored_expiry,
        saved: session.session_key().is_some(),
    })
}

/// A panel server function's answer. Without JavaScript the browser is redirected back to the
/// page it came from, so the note also goes into the flash messages shown there.
pub async fn panel_result(session: &Session, note: String) -> Result<PanelResult, AppError> {
    if is_plain_form_post() {
        messages::add(session, messages::SUCCESS, &note).await?;
    }
    Ok(PanelResult { view: snapshot(session).await?, note })
}

/// Pass a bad-input error through; for a plain form post also queue it as a flash message, since
/// that browser will only see the page it is redirected back to.
pub async fn bad_input_for_forms(e: AppError) -> AppError {
    if is_plain_form_post() {
        if let Ok(session) = session().await {
            if let Err(err) = messages::add(&session, messages::ERROR, &e.to_string()).await {
                tracing::warn!(error = %err, "could not queue a flash message");
            }
        }
    }
    e
}
