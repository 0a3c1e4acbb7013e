//! The one error type of the app's server functions.
//!
//! Internal failures (store down, a bug) are logged on the server where they happen and reach
//! the browser only as [`AppError::Internal`], with a generic message: database error text never
//! leaves the server.
//!
//! On the wire an error is plain text, `Kind|message` ([`TextEncoding`]), not JSON: decoding it
//! in the browser then needs no serde_json enum code for this type and for server_fn's own error
//! enum, which keeps the wasm smaller.

use leptos::server_fn::{
    error::{FromServerFnError, ServerFnErrorErr},
    Bytes, ContentType, Decodes, Encodes, Format, FormatType,
};

/// What a server function of this app can fail with, as the browser sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// The server function machinery failed (network, encoding); the text is safe to show.
    #[error("The request failed: {0}")]
    Request(String),
}

impl FromServerFnError for AppError {
    type Encoder = TextEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Request(value.to_string())
    }
}

/// `Kind|message` as `text/plain`.
pub struct TextEncoding;

impl ContentType for TextEncoding {
    const CONTENT_TYPE: &'static str = "text/plain";
}

impl FormatType for TextEncoding {
    const FORMAT_TYPE: Format = Format::Text;
}

impl Encodes<AppError> for TextEncoding {
    type Error = std::convert::Infallible;

    fn encode(e: &AppError) -> Result<Bytes, Self::Error> {
        let text = match e {
            AppError::Internal => "Internal|".to_string(),
            AppError::Interrupted => "Interrupted|".to_string(),
            AppError::BadInput(m) => format!("BadInput|{m}"),
            AppError::Request(m) => format!("Request|{m}"),
        };
        Ok(Bytes::from(text))
    }
}

impl Decodes<AppError> for TextEncoding {
    type Error = std::convert::Infallible;

    fn decode(bytes: Bytes) -> Result<AppError, Self::Error> {
        let text = String::from_utf8_lossy(&bytes);
        let (kind, message) = text.split_once('|').unwrap_or(("Request", &text));
        Ok(match kind {
            "Internal" => AppError::Internal,
            "Interrupted" => AppError::Interrupted,
            "BadInput" => AppError::BadInput(message.to_string()),
            _ => AppError::Request(message.to_string()),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_text() {
        for e in [
            AppError::Internal,
            AppError::Interrupted,
            AppError::BadInput("a | b".into()),
            AppError::Request("x".into()),
        ] {
            let bytes = TextEncoding::encode(&e).unwrap();
            assert_eq!(TextEncoding::decode(bytes).unwrap(), e);
        }
    }
}
