//! The one error type of the app's server functions.
//!
//! Internal failures (store down, a bug) are logged on the server where they happen and reach
//! the browser only as [`AppError::Internal`], with a generic message: database error text never
//! leaves the server.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

/// What a server function of this app can fail with, as the browser sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// Something failed on the server; details are in the server log.
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
    /// The session was deleted (logout elsewhere) while this request ran.
    #[error("Your session ended while this request was running. Please reload the page.")]
    Interrupted,
    /// The visitor sent something we cannot use; the message is safe to show.
    #[error("{0}")]
    BadInput(String),
    /// The server function machinery failed (network, encoding).
    #[error("The request failed: {0}")]
    ServerFn(ServerFnErrorErr),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::ServerFn(value)
    }
}

#[cfg(feature = "ssr")]
impl From<sesame::Error> for AppError {
    fn from(e: sesame::Error) -> Self {
        match e {
            sesame::Error::Interrupted => AppError::Interrupted,
            other => {
                tracing::error!(error = %other, source = ?std::error::Error::source(&other), "session error");
                AppError::Internal
            }
        }
    }
}
