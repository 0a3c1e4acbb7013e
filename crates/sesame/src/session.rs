//! The session handle: Django's `SessionBase`, async because the first access loads from the
//! store.

use parking_lot::Mutex;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use std::sync::Arc;

use crate::error::{Error, Result, StoreError};
use crate::expiry::{self, Expiry, EXPIRY_KEY};
use crate::group_commit::Outcome;
use crate::store::{Created, Record, SessionStore, Version};
use crate::{key, Clock, Data, Settings};

/// Key and value of Django's test cookie.
pub const TEST_COOKIE_NAME: &str = "testcookie";
/// See [`TEST_COOKIE_NAME`].
pub const TEST_COOKIE_VALUE: &str = "worked";

/// Attempts at a compare-and-set before giving up; each failed one means another writer
/// committed, so running out means sustained contention, not a bug.
const MAX_SAVE_ATTEMPTS: usize = 100;

/// What sessions of one application share: the store, the settings, the clock and the
/// per-key group-commit state.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) settings: Settings,
    pub(crate) clock: Clock,
    pub(crate) keys: crate::group_commit::KeyEntries,
}

/// One change made by a request, kept until it is saved so that it can be applied again on
/// top of a newer stored version when another request saved in between.
#[derive(Debug, Clone)]
enum Op {
    Set(String, Value),
    Remove(String),
    SetDefault(String, Value),
    Clear,
}

impl Op {
    fn apply(&self, data: &mut Data) {
        match self {
            Op::Set(k, v) => {
                data.insert(k.clone(), v.clone());
            }
            Op::Remove(k) => {
                data.shift_remove(k);
            }
            Op::SetDefault(k, v) => {
                data.entry(k.clone()).or_insert_with(|| v.clone());
            }
            Op::Clear => data.clear(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// The key this session is stored under; `None` for a new session, after `flush`, or when
    /// the client sent a key the store does not know (such a key is never adopted).
    key: Option<String>,
    /// The data, once loaded (`None` = not loaded yet). Shared with the store's decode cache
    /// until this request writes (`Arc::make_mut` copies it then): reads copy nothing.
    cache: Option<Arc<Data>>,
    /// Version of the stored record `cache` is based on.
    version: Option<Version>,
    /// Django's `accessed`: the data was read or written (the response then varies by cookie).
    accessed: bool,
    /// Django's `modified`: the session must be saved and its cookie sent.
    modified: bool,
    /// Changes not yet written to the store.
    ops: Vec<Op>,
    /// Something must be written at the next save (changes, or `set_modified`).
    dirty: bool,
}

/// A request's session: a map of JSON values stored server-side under the key in the
/// `sessionid` cookie.
///
/// Cheap to clone (an `Arc`); every clone is the same session. Get it in an axum handler or a
/// Leptos server function as an extractor (see [`crate::extract`]), or from
/// [`Sessions::open`](crate::Sessions::open) outside a request.
///
/// Reads load the data from the store once, on first use; a request that never touches the
/// session costs no store I/O. Writes stay in memory until [`Session::save`] (which the layer
/// calls at the end of the request when the session was modified).
///
/// # Concurrency
/// Writes of concurrent requests of one browser merge: each request's changes are replayed on
/// top of the latest stored version, so changes to different keys all survive. A
/// read-modify-write of one key (a counter) is exact only through [`Session::modify`].
/// Concurrent saves of one session in one process share store writes (group commit: a burst
/// of N increments costs a few compare-and-sets, not N round trips).
///
/// # Examples
/// ```
/// # async fn demo(session: sesame::Session) -> sesame::Result<()> {
/// session.insert("name", "root").await?;
/// let name: Option<String> = session.get("name").await?;
/// let visits = session.modify(|data| {
///     let n = data.get("visits").and_then(|v| v.as_i64()).unwrap_or(0) + 1;
///     data.insert("visits".into(), n.into());
///     n
/// }).await?;
/// # let _ = (name, visits); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session(Arc<Inner>);

struct Inner {
    shared: Arc<Shared>,
    // parking_lot, not tokio: never held across an await.
    state: Mutex<State>,
    // Serialises the first load when clones of one handle race to it.
    load_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.0.state.lock();
        f.debug_struct("Session")
            .field("key", &st.key.as_deref().map(key::redact))
            .field("loaded", &st.cache.is_some())
            .field("accessed", &st.accessed)
            .field("modified", &st.modified)
            .finish()
    }
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, key: Option<String>) -> Self {
        let key = key.filter(|k| shared.store.accepts_key(k));
        Session(Arc::new(Inner {
            shared,
            state: Mutex::new(State { key, ..State::default() }),
            load_lock: tokio::sync::Mutex::new(()),
        }))
    }

    fn settings(&self) -> &Settings {
        &self.0.shared.settings
    }

    fn store(&self) -> &dyn SessionStore {
        &*self.0.shared.store
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.shared.clock.now()
    }

    /// Load the data on first use (Django's `_get_session`).
    async fn ensure_loaded(&self) -> Result<()> {
        {
            let mut st = self.0.state.lock();
            st.accessed = true;
            if st.cache.is_some() {
                return Ok(());
            }
        }
        let _loading = self.0.load_lock.lock().await;
        let key = {
            let st = self.0.state.lock();
            if st.cache.is_some() {
                return Ok(());
            }
            st.key.clone()
        };
        let loaded = match &key {
            Some(k) => self.store().load(k, self.now()).await?,
            None => None,
        };
        let mut st = self.0.state.lock();
        if st.cache.is_some() || st.key != key {
            // flush(), clear() or cycle_key() replaced the state while the load was in flight
            // (another future of the same request): the loaded data is stale, and installing
            // it would bring a logged-out session back.
            return Ok(());
        }
        match loaded {
            Some(l) => {
                st.cache = Some(l.data);
                st.version = Some(l.version);
            }
            None => {
                if let Some(k) = &key {
                    tracing::debug!(key = %key::redact(k), "unknown or expired session key; starting a new session");
                }
                st.key = None;
                st.version = None;
                st.cache = Some(Arc::default());
            }
        }
        Ok(())
    }

    /// Run `f` on the loaded state, to change it.
    async fn with_state<R>(&self, f: impl FnOnce(&mut State, &mut Data) -> R) -> Result<R> {
        self.ensure_loaded().await?;
        let mut st = self.0.state.lock();
        let mut data = st.cache.take().unwrap_or_default();
        let r = f(&mut st, Arc::make_mut(&mut data));
        st.cache = Some(data);
        Ok(r)
    }

    /// Run `f` on the loaded data, to read it.
    async fn with_data<R>(&self, f: impl FnOnce(&Data) -> R) -> Result<R> {
        self.ensure_loaded().await?;
        let st = self.0.state.lock();
        Ok(match st.cache.as_deref() {
            Some(data) => f(data),
            None => f(&Data::new()),
        })
    }

    fn record(st: &mut State, op: Op) {
        st.modified = true;
        st.dirty = true;
        st.ops.push(op);
    }

    /// The value under `key`, converted to `T`.
    ///
    /// # Errors
    /// [`Error::Store`] if loading failed; [`Error::Serde`] if the value is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get_value(key).await? {
            Some(v) => Ok(Some(serde_json::from_value(v)?)),
            None => Ok(None),
        }
    }

    /// The JSON value under `key`.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>> {
        self.with_data(|data| data.get(key).cloned()).await
    }

    /// Store `value` (anything `Serialize`) under `key`.
    ///
    /// # Errors
    /// [`Error::Serde`] if `value` cannot be represented as JSON (e.g. a map with non-string
    /// keys); [`Error::Store`] if loading failed.
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<()> {
        let v = serde_json::to_value(value)?;
        self.insert_value(key, v).await
    }

    /// Store a JSON value under `key` (Django's `session[key] = value`).
    pub async fn insert_value(&self, key: &str, value: Value) -> Result<()> {
        self.with_state(|st, data| {
            data.insert(key.to_owned(), value.clone());
            Self::record(st, Op::Set(key.to_owned(), value));
        })
        .await
    }

    /// Remove `key`, returning its value (Django's `del session[key]` / `pop`). Marks the
    /// session modified only if the key was there.
    pub async fn remove(&self, key: &str) -> Result<Option<Value>> {
        self.with_state(|st, data| {
            let old = data.shift_remove(key);
            if old.is_some() {
                Self::record(st, Op::Remove(key.to_owned()));
            }
            old
        })
        .await
    }

    /// Remove `key` and convert its value to `T`.
    pub async fn pop<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.remove(key).await? {
            Some(v) => Ok(Some(serde_json::from_value(v)?)),
            None => Ok(None),
        }
    }

    /// The value under `key`, first storing `default` there if it is absent.
    pub async fn setdefault(&self, key: &str, default: Value) -> Result<Value> {
        self.with_state(|st, data| {
            if let Some(v) = data.get(key) {
                return v.clone();
            }
            data.insert(key.to_owned(), default.clone());
            Self::record(st, Op::SetDefault(key.to_owned(), default.clone()));
            default
        })
        .await
    }

    /// Store every `(key, value)` pair (Django's `update`; marks the session modified even when
    /// empty, as Django does).
    pub async fn update(&self, items: impl IntoIterator<Item = (String, Value)>) -> Result<()> {
        let items: Vec<(String, Value)> = items.into_iter().collect();
        self.with_state(|st, data| {
            st.modified = true;
            st.dirty = true;
            for (k, v) in items {
                data.insert(k.clone(), v.clone());
                st.ops.push(Op::Set(k, v));
            }
        })
        .await
    }

    /// Whether `key` is present.
    pub async fn contains_key(&self, key: &str) -> Result<bool> {
        self.with_data(|data| data.contains_key(key)).await
    }

    /// The keys, in insertion order.
    pub async fn keys(&self) -> Result<Vec<String>> {
        self.with_data(|data| data.keys().cloned().collect()).await
    }

    /// The values, in insertion order.
    pub async fn values(&self) -> Result<Vec<Value>> {
        self.with_data(|data| data.values().cloned().collect()).await
    }

    /// The `(key, value)` pairs, in insertion order (internal keys such as `_session_expiry`
    /// included, as in Django).
    pub async fn items(&self) -> Result<Vec<(String, Value)>> {
        self.with_data(|data| data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).await
    }

    /// A copy of the whole map.
    pub async fn data(&self) -> Result<Data> {
        self.with_data(Data::clone).await
    }

    /// Remove every key (the key and the stored record stay; see [`Session::flush`]).
    pub async fn clear(&self) -> Result<()> {
        // Django's clear() does not load; it replaces the cache with an empty map.
        let mut st = self.0.state.lock();
        st.accessed = true;
        st.cache = Some(Arc::default());
        st.ops.clear();
        Self::record(&mut st, Op::Clear);
        Ok(())
    }

    /// Django's `is_empty`: no key and no data. Does not load.
    pub fn is_empty(&self) -> bool {
        let st = self.0.state.lock();
        st.key.is_none() && st.cache.as_ref().is_none_or(|d| d.is_empty())
    }

    /// Whether the data was read or written in this request.
    pub fn accessed(&self) -> bool {
        self.0.state.lock().accessed
    }

    /// Whether the session is to be saved at the end of the request.
    pub fn modified(&self) -> bool {
        self.0.state.lock().modified
    }

    /// Mark the session modified, so it is saved even though no key was assigned (Django's
    /// `request.session.modified = True`, for changes made inside a nested value that was
    /// read, changed and not stored back).
    pub fn set_modified(&self) {
        let mut st = self.0.state.lock();
        st.modified = true;
        st.dirty = true;
    }

    /// The session key, if the session has one (a new session gets one when first saved).
    pub fn session_key(&self) -> Option<String> {
        self.0.state.lock().key.clone()
    }

    /// Delete the stored session and start an empty one with no key (logout).
    ///
    /// A concurrent request of the same session that then tries to save gets
    /// [`Error::Interrupted`] instead of bringing the session back.
    pub async fn flush(&self) -> Result<()> {
        let old = {
            let mut st = self.0.state.lock();
            st.accessed = true;
            st.modified = true;
            st.dirty = false;
            st.cache = Some(Arc::default());
            st.ops.clear();
            st.version = None;
            st.key.take()
        };
        if let Some(k) = old {
            let entry = self.0.shared.keys.get(&k);
            let _writing = entry.lock_for_delete().await;
            self.store().delete(&k).await?;
        }
        Ok(())
    }

    /// Keep the data under a new key and delete the old record (call on login, against
    /// session fixation).
    pub async fn cycle_key(&self) -> Result<()> {
        self.ensure_loaded().await?;
        let old = {
            let mut st = self.0.state.lock();
            st.version = None;
            st.key.take()
        };
        self.commit(&|_| ()).await?;
        self.0.state.lock().modified = true;
        if let Some(k) = old {
            let entry = self.0.shared.keys.get(&k);
            let _writing = entry.lock_for_delete().await;
            self.store().delete(&k).await?;
        }
        Ok(())
    }

    /// Set Django's test cookie (`testcookie` = `worked`).
    pub async fn set_test_cookie(&self) -> Result<()> {
        self.insert_value(TEST_COOKIE_NAME, Value::from(TEST_COOKIE_VALUE)).await
    }

    /// Whether the test cookie came back, i.e. the browser keeps cookies.
    pub async fn test_cookie_worked(&self) -> Result<bool> {
        Ok(self.get_value(TEST_COOKIE_NAME).await?.as_ref().and_then(Value::as_str) == Some(TEST_COOKIE_VALUE))
    }

    /// Remove the test cookie.
    pub async fn delete_test_cookie(&self) -> Result<()> {
        self.remove(TEST_COOKIE_NAME).await.map(drop)
    }

    /// Set this session's expiry (Django's `set_expiry`).
    pub async fn set_expiry(&self, expiry: Expiry) -> Result<()> {
        match expiry::stored_value(expiry, self.now()) {
            Some(v) => self.insert_value(EXPIRY_KEY, v).await,
            None => self.remove(EXPIRY_KEY).await.map(drop),
        }
    }

    /// Seconds until the session expires (Django's `get_expiry_age`).
    pub async fn get_expiry_age(&self) -> Result<i64> {
        let (age, now) = (self.settings().session_cookie_age, self.now());
        self.with_data(|data| expiry::age(data, age, now)).await
    }

    /// When the session expires (Django's `get_expiry_date`).
    pub async fn get_expiry_date(&self) -> Result<chrono::DateTime<chrono::Utc>> {
        let (age, now) = (self.settings().session_cookie_age, self.now());
        self.with_data(|data| expiry::date(data, age, now)).await
    }

    /// Whether the cookie lasts only until the browser closes.
    pub async fn get_expire_at_browser_close(&self) -> Result<bool> {
        let global = self.settings().session_expire_at_browser_close;
        self.with_data(|data| expiry::at_browser_close(data, global)).await
    }

    /// Read-modify-write the data and commit it to the store now; returns what `f` returns.
    ///
    /// This is the exact way to update a value from its previous value (a counter) when
    /// requests of one session run concurrently: if another request saved in between, `f`
    /// runs again on the newer data, so no increment is lost. `f` may therefore run more than
    /// once and should only compute. Pending changes of this request are saved with it.
    ///
    /// # Errors
    /// [`Error::Interrupted`] if the session was deleted meanwhile; [`Error::Store`].
    pub async fn modify<R>(&self, f: impl Fn(&mut Data) -> R + Send + Sync) -> Result<R> {
        // While another request of this process is writing this key, its state is newer than
        // anything a load would return, and the compare-and-set catches a change from
        // elsewhere: skip the load (under a burst on one key, most requests then do no read).
        let skip_load = {
            let mut st = self.0.state.lock();
            let skip = st.cache.is_none() && st.key.as_deref().is_some_and(|k| self.0.shared.keys.is_active(k));
            st.accessed |= skip;
            skip
        };
        if !skip_load {
            self.ensure_loaded().await?;
        }
        let r = self.commit(&f).await?;
        self.0.state.lock().modified = true;
        Ok(r)
    }

    /// Write the session to the store now (creating it, with a new key, if it has none).
    pub async fn save(&self) -> Result<()> {
        self.ensure_loaded().await?;
        self.commit(&|_| ()).await
    }

    /// Save at the end of a request: only what needs writing (a session already committed by
    /// [`Session::modify`] or [`Session::cycle_key`] is not written twice).
    pub(crate) async fn save_for_response(&self, every_request: bool) -> Result<()> {
        let needed = {
            let st = self.0.state.lock();
            st.dirty || st.key.is_none() || st.cache.is_none() || every_request
        };
        if needed {
            self.save().await
        } else {
            Ok(())
        }
    }

    /// Delete the stored record (the data in this handle stays; see [`Session::flush`]).
    pub async fn delete(&self) -> Result<()> {
        let key = self.session_key();
        if let Some(k) = key {
            self.store().delete(&k).await?;
        }
        Ok(())
    }

    /// Whether the store has a record for this session's key.
    pub async fn exists(&self) -> Result<bool> {
        match self.session_key() {
            Some(k) => Ok(self.store().exists(&k).await?),
            None => Ok(false),
        }
    }

    /// Delete every expired session in the store (Django's `clear_expired`).
    pub async fn clear_expired(&self) -> Result<u64> {
        Ok(self.store().clear_expired(self.now()).await?)
    }

    /// Write the data (with `f` applied) to the store: create if there is no key, otherwise
    /// compare-and-set through the key's group commit (see [`crate::group_commit`]), applying
    /// this request's changes again on conflict.
    async fn commit<R>(&self, f: &(dyn Fn(&mut Data) -> R + Send + Sync)) -> Result<R> {
        let mut attempts = 0;
        loop {
            let Some(key) = self.session_key() else { return self.create(f).await };
            let entry = self.0.shared.keys.get(&key);
            loop {
                attempts += 1;
                if attempts > MAX_SAVE_ATTEMPTS {
                    let msg = format!("gave up saving after {MAX_SAVE_ATTEMPTS} concurrent updates");
                    return Err(StoreError::Other(msg).into());
                }
                let ops = self.0.state.lock().ops.clone();
                let own = || {
                    let st = self.0.state.lock();
                    st.cache.as_ref().map(|data| (st.version.clone(), Data::clone(data)))
                };
                let replay = |data: &mut Data| ops.iter().for_each(|op| op.apply(data));
                let Some(mut joined) = entry.join(own, replay, f) else {
                    // Nothing known in this process and nothing loaded (a `modify` that skipped
                    // its load just as the other writers finished): load, then start again.
                    self.ensure_loaded().await?;
                    break;
                };
                match entry.outcome(&mut joined, &self.0.shared, &key).await {
                    Outcome::Saved(w) => {
                        self.committed(w.key.clone(), w.data.clone(), w.version.clone());
                        return Ok(joined.value);
                    }
                    Outcome::Retry => continue,
                    Outcome::Interrupted => return Err(Error::Interrupted),
                    Outcome::Failed(e) => return Err(StoreError::from_shared(e).into()),
                }
            }
        }
    }

    /// Store a session that has no key yet under a fresh random one.
    async fn create<R>(&self, f: &(dyn Fn(&mut Data) -> R + Send + Sync)) -> Result<R> {
        let mut data = self.0.state.lock().cache.as_deref().cloned().unwrap_or_default();
        let r = f(&mut data);
        let expire_date = expiry::date(&data, self.settings().session_cookie_age, self.now());
        for _ in 0..8 {
            let candidate = key::generate();
            if let Created::Created { key, version } =
                self.store().create(&candidate, Record { data: &data, expire_date }).await?
            {
                self.committed(key, data, version);
                return Ok(r);
            }
        }
        Err(StoreError::KeyExhausted.into())
    }

    fn committed(&self, key: String, data: Data, version: Version) {
        let mut st = self.0.state.lock();
        st.key = Some(key);
        st.cache = Some(Arc::new(data));
        st.version = Some(version);
        st.ops.clear();
        st.dirty = false;
    }
}
