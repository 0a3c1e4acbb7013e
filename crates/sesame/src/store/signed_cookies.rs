//! Django's `signed_cookies` engine: the session data is in the cookie itself.
//!
//! The cookie value is `signing.dumps(data, compress=True,
//! salt="django.contrib.sessions.backends.signed_cookies")`, byte for byte as Django makes it,
//! so a Django site and a Sesame service with the same `SECRET_KEY` read each other's session
//! cookies. Its timestamp is checked on load with `max_age = SESSION_COOKIE_AGE`, as Django
//! does; a cookie that fails the signature or is too old reads as a new, empty session.
//!
//! In the store seam the cookie value plays the part of the key: [`SessionStore::load`]
//! decodes it, and `create`/`save` return the newly signed data as the key the layer puts in
//! the cookie. There is nothing on the server, so `exists` is always false, `delete` and
//! `clear_expired` do nothing.
//!
//! # Security
//! - **No server-side logout.** A logout (or `flush`, or `cycle_key`) only tells *this*
//!   browser to drop its cookie. Anyone holding a copy of an earlier cookie — stolen, or simply
//!   kept — stays logged in until its timestamp is older than `SESSION_COOKIE_AGE`. Use a
//!   server-side engine where logging out must end the session everywhere.
//! - **Replay.** For the same reason an older cookie can be sent again to undo later changes
//!   (a spent one-time token, a decremented balance): keep nothing in such a session whose
//!   rollback matters.
//! - **Readable.** The data is signed, not encrypted: the user can base64-decode it.
//!
//! # Limits
//! Browsers drop cookies over about 4 kB (name, value and attributes), which would silently
//! lose the session; a session whose signed value exceeds [`MAX_VALUE_BYTES`] is refused with
//! [`StoreError::TooLarge`] instead (the layer answers 500 and logs it). Concurrent requests of
//! one browser each send back their own cookie and the browser keeps the last one, so the
//! no-lost-update guarantee of the server-side engines does not hold here.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Created, Loaded, Record, Saved, SessionStore, Version};
use crate::codec::{Codec, SIGNED_COOKIES_SALT};
use crate::error::StoreError;

/// Largest signed value stored in a cookie: what is left of a browser's 4096-byte cookie for
/// the value once `sessionid=` and the shortest attributes are counted.
pub const MAX_VALUE_BYTES: usize = 4093;
/// Longest cookie value even looked at: nothing a browser sends back is longer.
const MAX_ACCEPTED_BYTES: usize = 4096;

/// Sessions kept in the cookie, signed (Django's `signed_cookies` engine).
#[derive(Debug, Clone)]
pub struct SignedCookieStore {
    codec: Codec,
    max_age: i64,
}

impl SignedCookieStore {
    /// Sign with `secret_key` (verifying with `fallbacks` too) and accept cookies signed at
    /// most `max_age` seconds ago (`SESSION_COOKIE_AGE`).
    ///
    /// # Examples
    /// ```
    /// use sesame::store::{SessionStore, SignedCookieStore, Record, Created};
    /// # async fn demo() -> Result<(), sesame::StoreError> {
    /// let store = SignedCookieStore::new("secret", &[], 1_209_600);
    /// let data = serde_json::json!({"cart": [1, 2]}).as_object().cloned().unwrap();
    /// let expire_date = chrono::Utc::now() + chrono::TimeDelta::days(14);
    /// let Created::Created { key: cookie, .. } = store.create("ignored", Record { data: &data, expire_date }).await?
    /// else { unreachable!() };
    /// let loaded = store.load(&cookie, chrono::Utc::now()).await?.unwrap();
    /// assert_eq!(*loaded.data, data);
    /// # Ok(()) }
    /// ```
    pub fn new(secret_key: &str, fallbacks: &[String], max_age: i64) -> Self {
        Self { codec: Codec::with_salt(SIGNED_COOKIES_SALT, secret_key, fallbacks), max_age }
    }

    /// The signed cookie value for `data`, or [`StoreError::TooLarge`].
    fn sign(&self, data: &crate::Data) -> Result<String, StoreError> {
        let value = self.codec.encode(data);
        if value.len() > MAX_VALUE_BYTES {
            return Err(StoreError::TooLarge { size: value.len(), limit: MAX_VALUE_BYTES });
        }
        Ok(value)
    }
}

#[async_trait]
impl SessionStore for SignedCookieStore {
    async fn load(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Loaded>, StoreError> {
        match self.codec.decode(key) {
            // Django's TimestampSigner: `age > max_age` is expired.
            Ok(decoded) if now.timestamp() - decoded.timestamp <= self.max_age => {
                Ok(Some(Loaded { data: decoded.data.into(), version: Version(key.to_owned()) }))
            }
            Ok(_) => {
                tracing::debug!("signed session cookie older than SESSION_COOKIE_AGE; starting a new session");
                Ok(None)
            }
            Err(e) => {
                tracing::debug!(error = %e, "unreadable signed session cookie; starting a new session");
                Ok(None)
            }
        }
    }

    /// Signs the data; the value is the new cookie (the proposed key is not used).
    async fn create(&self, _key: &str, record: Record<'_>) -> Result<Created, StoreError> {
        let value = self.sign(record.data)?;
        Ok(Created::Created { key: value.clone(), version: Version(value) })
    }

    /// Signs the data; the value is the new cookie. There is no stored version to compare
    /// with: the cookie the browser keeps last wins.
    async fn save(&self, _key: &str, record: Record<'_>, _expected: &Version) -> Result<Saved, StoreError> {
        let value = self.sign(record.data)?;
        Ok(Saved::Saved { key: value.clone(), version: Version(value) })
    }

    /// Nothing to delete: the layer removes the cookie from the browser.
    async fn delete(&self, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Always false: nothing is stored (Django's `exists` returns `False` too).
    async fn exists(&self, _key: &str) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Nothing stored, nothing to clear.
    async fn clear_expired(&self, _now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// The "key" is the signed data: any non-empty cookie value of a plausible size.
    fn accepts_key(&self, key: &str) -> bool {
        !key.is_empty() && key.len() <= MAX_ACCEPTED_BYTES
    }
}
