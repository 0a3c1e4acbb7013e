//! Data shared by the server and the islands (serialized into island props and server function
//! results). Plain data, no server types.

use serde::{Deserialize, Serialize};

/// One key of the session, its value shown as compact JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The session key (e.g. `name`, or an internal one such as `_session_expiry`).
    pub key: String,
    /// The value as JSON text.
    pub json: String,
}

/// What the session looks like now: the decoded data and its expiry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// Every key, in insertion order (internal keys included, as Django's `items()`).
    pub items: Vec<Item>,
    /// `get_expiry_age()`: seconds left.
    pub expiry_age: i64,
    /// `get_expiry_date()`, formatted for people (UTC).
    pub expiry_date: String,
    /// `get_expire_at_browser_close()`.
    pub browser_close: bool,
    /// The raw `_session_expiry` value, if set (`None` = the global policy).
    pub stored_expiry: Option<String>,
    /// Whether the session has been saved under a key (the browser has a `sessionid`).
    pub saved: bool,
}

impl SessionView {
    /// Whether a key the visitor can see (not `_`-prefixed internals) is present.
    pub fn visible_items(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| !i.key.starts_with('_'))
    }
}

/// A flash message (Django's `messages` framework).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlashMessage {
    /// Django's level: 10 debug, 20 info, 25 success, 30 warning, 40 error.
    pub level: u8,
    /// The text (never treated as HTML).
    pub text: String,
}

impl FlashMessage {
    /// Django's default level tag, used as the CSS class.
    pub fn tag(&self) -> &'static str {
        match self.level {
            0..=10 => "debug",
            11..=20 => "info",
            21..=25 => "success",
            26..=30 => "warning",
            _ => "error",
        }
    }
}

/// A panel's answer after a change: the new state and what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelResult {
    /// The session after the change.
    pub view: SessionView,
    /// One sentence for the visitor.
    pub note: String,
}
