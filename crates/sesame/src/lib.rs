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
mod sessions;
pub mod settings;
pub mod store;

use std::sync::Arc;

pub use clock::Clock;
pub use error::{Error, Result, StoreError};
pub use expiry::Expiry;
pub use layer::{SessionLayer, SessionService};
pub use session::Session;
pub use sessions::{SessionInfo, Sessions};
pub use settings::{ConfigError, Engine, Settings};
pub use store::SessionStore;

/// A session's data: JSON values by string key, in insertion order (as Python dicts keep it).
pub type Data = serde_json::Map<String, serde_json::Value>;

/// The store named by the settings, created (with its table) if missing.
pub async fn connect_store(settings: &Settings) -> Result<Arc<dyn SessionStore>> {
    open_store(settings, true).await
}

pub(crate) async fn open_store(settings: &Settings, create: bool) -> Result<Arc<dyn SessionStore>> {
    let codec = codec::Codec::new(&settings.secret_key, &settings.secret_key_fallbacks);
    match settings.session_engine {
        Engine::Memory => Ok(Arc::new(store::MemoryStore::new())),
        #[cfg(feature = "sqlite")]
        Engine::Db if settings.database_url.starts_with("sqlite:") => {
            let url = &settings.database_url;
            Ok(Arc::new(if create {
                store::SqliteStore::connect(url, codec).await?
            } else {
                store::SqliteStore::connect_existing(url, codec).await?
            }))
        }
        Engine::Db => Err(StoreError::Unsupported(format!(
            "DATABASE_URL {:?}: this build supports sqlite: URLs",
            settings.redacted_database_url()
        ))
        .into()),
        other => {
            let _ = codec;
            Err(StoreError::Unsupported(format!("SESSION_ENGINE {other:?} is not available in this build")).into())
        }
    }
}
