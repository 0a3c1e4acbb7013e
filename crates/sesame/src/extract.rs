//! Getting the [`Session`] in an axum handler (and so in a Leptos server function through
//! `leptos_axum::extract`), whatever the router's state type.

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::Session;

/// The request did not pass through [`SessionLayer`](crate::SessionLayer).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no session in this request: is SessionLayer installed around this route?")]
pub struct MissingSession;

impl IntoResponse for MissingSession {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSession;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Session>().cloned().ok_or(MissingSession)
    }
}
