//! [`Sessions`]: what the sessions of one application share, and the sessions API for use
//! outside requests (Django's `Session.objects`, `get_decoded()`, `clearsessions`).

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

use crate::codec::{self, DecodeError};
use crate::store::Summary;
use crate::{Clock, Data, Result, Session, SessionLayer, SessionStore, Settings};

/// A session as the sessions API shows it.
#[derive(Debug)]
pub struct SessionInfo {
    /// Its key.
    pub key: String,
    /// The decoded data, or why it could not be decoded.
    pub data: std::result::Result<Data, DecodeError>,
    /// When it expires.
    pub expire_date: DateTime<Utc>,
    /// Whether that is in the past (an expired session is invisible to requests).
    pub expired: bool,
    /// Size of the stored data in bytes.
    pub size: usize,
}

/// The sessions of one application: a store, the settings and the clock, shared by the layer
/// and by code that works with sessions outside requests.
#[derive(Clone, Debug)]
pub struct Sessions {
    shared: Arc<crate::session::Shared>,
}

impl Sessions {
    /// Sessions over `store` with `settings`.
    pub fn new(store: Arc<dyn SessionStore>, settings: Settings) -> Self {
        Self::with_clock(store, settings, Clock::system())
    }

    /// Like [`Sessions::new`] with another clock (tests).
    pub fn with_clock(store: Arc<dyn SessionStore>, settings: Settings, clock: Clock) -> Self {
        Sessions {
            shared: Arc::new(crate::session::Shared {
                store,
                settings,
                clock,
                keys: crate::group_commit::KeyEntries::default(),
            }),
        }
    }

    /// Open the store the settings name (`SESSION_ENGINE`, `DATABASE_URL`), creating the
    /// `django_session` table if needed.
    ///
    /// # Errors
    /// [`StoreError::Unsupported`](crate::StoreError::Unsupported) for an engine this build lacks; connection or migration
    /// errors.
    pub async fn connect(settings: Settings) -> Result<Self> {
        let store = crate::connect_store(&settings).await?;
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

impl Sessions {
    /// Open the configured store for a tool: an existing database only, nothing created.
    ///
    /// # Errors
    /// [`crate::StoreError::NotFound`] if the database does not exist.
    pub async fn connect_existing(settings: Settings) -> Result<Self> {
        let store = crate::open_store(&settings, false).await?;
        Ok(Self::new(store, settings))
    }

    /// Look a session up by key, expired or not, with its decoded data (Django's
    /// `Session.objects.get(pk=key)` and `get_decoded()`).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo(sessions: sesame::Sessions) -> sesame::Result<()> {
    /// if let Some(info) = sessions.get("0123456789abcdefghijklmnopqrstuv").await? {
    ///     println!("expires {} ({} bytes)", info.expire_date, info.size);
    ///     match info.data {
    ///         Ok(data) => println!("{}", serde_json::Value::Object(data)),
    ///         Err(e) => eprintln!("cannot decode: {e}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, key: &str) -> Result<Option<SessionInfo>> {
        if !self.shared.store.accepts_key(key) {
            return Ok(None);
        }
        let now = self.shared.clock.now();
        Ok(self.shared.store.inspect(key).await?.map(|i| SessionInfo {
            key: key.to_owned(),
            data: i.data,
            expired: i.expire_date <= now,
            expire_date: i.expire_date,
            size: i.size,
        }))
    }

    /// Decode a raw `session_data` string with these settings' keys.
    ///
    /// # Errors
    /// [`DecodeError::BadSignature`] when neither `SECRET_KEY` nor a fallback signed it.
    pub fn decode(&self, session_data: &str) -> std::result::Result<Data, DecodeError> {
        self.codec().decode(session_data).map(|d| d.data)
    }

    /// Up to `limit` sessions ordered by expiry (only expired ones if `expired_only`).
    pub async fn list(&self, expired_only: bool, limit: u64) -> Result<Vec<Summary>> {
        Ok(self.shared.store.list(self.shared.clock.now(), expired_only, limit).await?)
    }

    /// Number of stored sessions, expired ones included.
    pub async fn count(&self) -> Result<u64> {
        Ok(self.shared.store.count().await?)
    }

    /// Delete the session `key`; whether it existed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        if !self.shared.store.accepts_key(key) || !self.shared.store.exists(key).await? {
            return Ok(false);
        }
        self.shared.store.delete(key).await?;
        Ok(true)
    }

    /// [`Sessions::clear_expired`], reporting the running total after each batch.
    pub async fn clear_expired_with_progress(&self, progress: &(dyn Fn(u64) + Send + Sync)) -> Result<u64> {
        Ok(self.shared.store.clear_expired_with_progress(self.shared.clock.now(), progress).await?)
    }

    /// Clear expired sessions every `every` in a background task (Sesame's
    /// `SESSION_CLEAR_EXPIRED_INTERVAL`; Django has only the command). Each sweep that removes
    /// something is logged; a failed sweep is logged and retried at the next tick.
    pub fn spawn_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let sessions = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                match sessions.clear_expired().await {
                    Ok(0) => tracing::debug!("session sweep: nothing expired"),
                    Ok(n) => tracing::info!(removed = n, "session sweep: cleared expired sessions"),
                    Err(e) => {
                        tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "session sweep failed")
                    }
                }
            }
        })
    }
}
