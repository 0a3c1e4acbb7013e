//! # Sesame: Django's sessions for axum and any tower service
//!
//! A browser holds one cookie, `sessionid`, with a random 32-character key; the data lives on
//! the server in Django's `django_session` table (or another store), encoded exactly as Django
//! encodes it, so a Django site and a Sesame service can share sessions.
//!
//! ## Life cycle of a session
//! 1. **Request in.** [`SessionLayer`] reads the key from the cookie and puts a lazy
//!    [`Session`] in the request. Nothing is loaded yet: a request that never touches its
//!    session costs no store I/O and gets no `Set-Cookie`.
//! 2. **First access.** The first read or write loads the record once. An unknown or expired
//!    key is dropped (never adopted: a client cannot choose its session key); a record that
//!    fails its signature check reads as an empty session and is logged, as in Django.
//! 3. **Changes** stay in memory and are recorded as operations (`insert`, `remove`, ...).
//! 4. **Response out.** As Django's `SessionMiddleware`: if the session was modified (or
//!    `SESSION_SAVE_EVERY_REQUEST`) and is not empty, it is saved and the cookie is (re)sent
//!    with the expiry's `Max-Age`/`Expires`; an emptied session deletes the cookie; an accessed
//!    session adds `Vary: Cookie`; nothing is saved on a 5xx.
//! 5. **Saving** creates a record under a fresh key (insert, never overwrite) or updates the
//!    existing one with compare-and-set against the version that was loaded. If another
//!    request of the same browser saved in between, the record is reloaded and this request's
//!    operations are replayed on top, so no update is lost; if the record was deleted
//!    meanwhile (logout elsewhere), the request gets a 400 instead of resurrecting it.
//!    [`Session::modify`] commits a read-modify-write at once, exact under concurrency.
//! 6. **Expiry.** Records carry `expire_date`; expired ones are invisible to loads and removed
//!    by [`Sessions::clear_expired`] (the `sesame clearsessions` command).
//!
//! ## Quick start
//! ```no_run
//! use axum::{routing::get, Router};
//! use sesame::{Session, Sessions, Settings};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sessions = Sessions::connect(Settings::load()?).await?;
//! let app: Router = Router::new()
//!     .route("/", get(|session: Session| async move {
//!         session.insert("seen", true).await.map(|_| "hello").map_err(|_| "error")
//!     }))
//!     .layer(sessions.layer());
//! # let _ = app; Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod clock;
pub mod codec;
pub mod error;
pub mod expiry;
pub mod extract;
pub mod key;
pub mod layer;
mod locks;
pub mod pyjson;
pub mod session;
pub mod settings;
pub mod store;

use std::sync::Arc;

pub use clock::Clock;
pub use error::{Error, Result, StoreError};
pub use expiry::Expiry;
pub use layer::{SessionLayer, SessionService};
pub use session::Session;
pub use settings::{ConfigError, Engine, Settings};
pub use store::SessionStore;

/// A session's data: JSON values by string key, in insertion order (as Python dicts keep it).
pub type Data = serde_json::Map<String, serde_json::Value>;

/// The sessions of one application: a store, the settings and the clock, shared by the layer
/// and by code that works with sessions outside requests.
#[derive(Clone, Debug)]
pub struct Sessions {
    shared: Arc<session::Shared>,
}

impl Sessions {
    /// Sessions over `store` with `settings`.
    pub fn new(store: Arc<dyn SessionStore>, settings: Settings) -> Self {
        Self::with_clock(store, settings, Clock::system())
    }

    /// Like [`Sessions::new`] with another clock (tests).
    pub fn with_clock(store: Arc<dyn SessionStore>, settings: Settings, clock: Clock) -> Self {
        Sessions {
            shared: Arc::new(session::Shared { store, settings, clock, locks: locks::KeyLocks::default() }),
        }
    }

    /// Open the store the settings name (`SESSION_ENGINE`, `DATABASE_URL`), creating the
    /// `django_session` table if needed.
    ///
    /// # Errors
    /// [`StoreError::Unsupported`] for an engine this build lacks; connection or migration
    /// errors.
    pub async fn connect(settings: Settings) -> Result<Self> {
        let store = connect_store(&settings).await?;
        Ok(Self::new(store, settings))
    }

    /// The layer to wrap a router with.
    pub fn layer(&self) -> SessionLayer {
        SessionLayer::new(self.shared.clone())
    }

    /// A session outside any request (Django's `SessionStore(session_key=key)`); `None` for a
    /// new one. Nothing is read until it is used.
    pub fn open(&self, key: Option<&str>) -> Session {
        Session::new(self.shared.clone(), key.map(str::to_owned))
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.shared.store
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// The codec for `session_data` under these settings' keys.
    pub fn codec(&self) -> codec::Codec {
        codec::Codec::new(&self.shared.settings.secret_key, &self.shared.settings.secret_key_fallbacks)
    }

    /// Delete expired sessions; returns how many.
    pub async fn clear_expired(&self) -> Result<u64> {
        Ok(self.shared.store.clear_expired(self.shared.clock.now()).await?)
    }
}

/// The store named by the settings.
pub async fn connect_store(settings: &Settings) -> Result<Arc<dyn SessionStore>> {
    let codec = codec::Codec::new(&settings.secret_key, &settings.secret_key_fallbacks);
    match settings.session_engine {
        Engine::Memory => Ok(Arc::new(store::MemoryStore::new())),
        #[cfg(feature = "sqlite")]
        Engine::Db if settings.database_url.starts_with("sqlite:") => {
            Ok(Arc::new(store::SqliteStore::connect(&settings.database_url, codec).await?))
        }
        Engine::Db => Err(StoreError::Unsupported(format!(
            "DATABASE_URL {:?}: this build supports sqlite: URLs",
            redact_url(&settings.database_url)
        ))
        .into()),
        other => {
            let _ = codec;
            Err(StoreError::Unsupported(format!("SESSION_ENGINE {other:?} is not available in this build")).into())
        }
    }
}

/// A database URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
