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
mod group_commit;
pub mod key;
pub mod layer;
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
        Engine::Db => open_db(settings, codec, create).await,
        #[cfg(feature = "redis")]
        Engine::Cache => {
            let prefix = format!(":1:{}", settings.session_cache_key_prefix);
            Ok(Arc::new(store::RedisStore::connect(&settings.redis_url, prefix, codec).await?))
        }
        #[cfg(feature = "cached-db")]
        Engine::CachedDb => {
            let db = open_db(settings, codec.clone(), create).await?;
            // Django keys cached_db entries under its own prefix; a configured
            // SESSION_CACHE_KEY_PREFIX replaces it.
            let prefix = if settings.session_cache_key_prefix == settings::DEFAULT_CACHE_KEY_PREFIX {
                store::redis::CACHED_DB_PREFIX.to_owned()
            } else {
                format!(":1:{}", settings.session_cache_key_prefix)
            };
            let store = store::CachedDbStore::new(db, &settings.redis_url, prefix, codec, settings.session_cookie_age)?;
            Ok(Arc::new(store))
        }
        #[cfg(feature = "file")]
        Engine::File => Ok(Arc::new(store::FileStore::open(
            &settings.session_file_path,
            &settings.session_cookie_name,
            codec,
            settings.session_cookie_age,
            create,
        )?)),
        #[cfg(feature = "signed-cookies")]
        Engine::SignedCookies => Ok(Arc::new(store::SignedCookieStore::new(
            &settings.secret_key,
            &settings.secret_key_fallbacks,
            settings.session_cookie_age,
        ))),
        #[allow(unreachable_patterns)]
        other => Err(StoreError::Unsupported(format!(
            "SESSION_ENGINE {:?} is not available in this build (enable the sesame feature {})",
            other.name(),
            engine_feature(other)
        ))
        .into()),
    }
}

/// The cargo feature that provides an engine.
fn engine_feature(engine: Engine) -> &'static str {
    match engine {
        Engine::Db => "sqlite or postgres",
        Engine::Cache => "redis",
        Engine::CachedDb => "cached-db",
        Engine::File => "file",
        Engine::SignedCookies => "signed-cookies",
        Engine::Memory => "(none)",
    }
}

/// The database engine `DATABASE_URL` names (SQLite or PostgreSQL).
async fn open_db(settings: &Settings, codec: codec::Codec, create: bool) -> Result<Arc<dyn SessionStore>> {
    let url = settings.database_url.as_str();
    let _ = (url, &codec, create); // unused when no database feature is enabled
    #[cfg(feature = "sqlite")]
    if url.starts_with("sqlite:") {
        let store = if create {
            store::SqliteStore::connect(url, codec).await?
        } else {
            store::SqliteStore::connect_existing(url, codec).await?
        };
        return Ok(Arc::new(store.swapping_when_mostly_expired(settings.session_clear_expired_swap)));
    }
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(if create {
            store::PostgresStore::connect(url, codec).await?
        } else {
            store::PostgresStore::connect_existing(url, codec).await?
        }));
    }
    let supported: &[&str] = &[
        #[cfg(feature = "sqlite")]
        "sqlite:",
        #[cfg(feature = "postgres")]
        "postgres://",
    ];
    Err(StoreError::Unsupported(format!(
        "DATABASE_URL {:?} (SESSION_ENGINE {:?}): this build supports {} URLs",
        settings.redacted_database_url(),
        settings.session_engine.name(),
        if supported.is_empty() { "no database".to_owned() } else { supported.join(" and ") }
    ))
    .into())
}
