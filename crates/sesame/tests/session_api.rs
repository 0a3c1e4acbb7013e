//! Every `SessionBase` method, with Django's `accessed` / `modified` semantics, on the real
//! SQLite store and a controllable clock.
mod common;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use common::*;
use serde_json::json;
use sesame::{Clock, Expiry, Session, Sessions, Settings};
use std::sync::{Arc, Mutex};

struct Fixture {
    sessions: Sessions,
    now: Arc<Mutex<DateTime<Utc>>>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Self {
        Self::with(Settings::with_secret_key(SECRET)).await
    }

    async fn with(settings: Settings) -> Self {
        let (store, dir) = sqlite_store().await;
        let now = Arc::new(Mutex::new(Utc::now()));
        let n = now.clone();
        let sessions = Sessions::with_clock(Arc::new(store), settings, Clock::from_fn(move || *n.lock().unwrap()));
        Fixture { sessions, now, _dir: dir }
    }

    fn advance(&self, secs: i64) {
        *self.now.lock().unwrap() += TimeDelta::seconds(secs);
    }

    /// A saved session with `{"a": 1}`; returns its key.
    async fn saved(&self) -> String {
        let s = self.sessions.open(None);
        s.insert("a", 1).await.unwrap();
        s.save().await.unwrap();
        s.session_key().unwrap()
    }

    fn open(&self, key: &str) -> Session {
        self.sessions.open(Some(key))
    }
}

#[tokio::test]
async fn typed_get_and_insert() {
    let f = Fixture::new().await;
    let s = f.sessions.open(None);
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Cart {
        items: Vec<String>,
        total: f64,
    }
    let cart = Cart { items: vec!["apple".into()], total: 1.5 };
    s.insert("cart", &cart).await.unwrap();
    assert_eq!(s.get::<Cart>("cart").await.unwrap(), Some(cart));
    assert_eq!(s.get::<Cart>("missing").await.unwrap(), None);
    assert!(matches!(s.get::<i64>("cart").await, Err(sesame::Error::Serde(_))));
    // A map with non-string keys has no JSON form: a typed error, not a panic.
    let bad: std::collections::HashMap<(i32, i32), i32> = [((1, 2), 3)].into();
    assert!(s.insert("bad", bad).await.is_err());
}

#[tokio::test]
async fn reads_mark_accessed_not_modified() {
    let f = Fixture::new().await;
    let key = f.saved().await;
    let s = f.open(&key);
    assert!(!s.accessed() && !s.modified());
    assert_eq!(s.get_value("a").await.unwrap(), Some(json!(1)));
    assert!(s.contains_key("a").await.unwrap());
    assert_eq!(s.keys().await.unwrap(), vec!["a"]);
    assert_eq!(s.values().await.unwrap(), vec![json!(1)]);
    assert_eq!(s.items().await.unwrap(), vec![("a".to_owned(), json!(1))]);
    assert!(s.accessed() && !s.modified());
}

#[tokio::test]
async fn writes_follow_djangos_modified_rules() {
    let f = Fixture::new().await;
    let key = f.saved().await;
    // pop / remove of an absent key: not modified.
    let s = f.open(&key);
    assert_eq!(s.remove("nope").await.unwrap(), None);
    assert_eq!(s.pop::<i64>("nope").await.unwrap(), None);
    assert!(!s.modified());
    // setdefault of a present key: not modified; of an absent one: modified.
    assert_eq!(s.setdefault("a", json!(5)).await.unwrap(), json!(1));
    assert!(!s.modified());
    assert_eq!(s.setdefault("b", json!(5)).await.unwrap(), json!(5));
    assert!(s.modified());
    // update, even empty, marks modified.
    let s = f.open(&key);
    s.update(Vec::new()).await.unwrap();
    assert!(s.modified());
    let s = f.open(&key);
    s.update([("x".to_owned(), json!(1)), ("y".to_owned(), json!([1, 2]))]).await.unwrap();
    s.save().await.unwrap();
    assert_eq!(f.open(&key).data().await.unwrap(), data(json!({"a": 1, "x": 1, "y": [1, 2]})));
    // pop of a present key returns it and modifies.
    let s = f.open(&key);
    assert_eq!(s.pop::<i64>("x").await.unwrap(), Some(1));
    assert!(s.modified());
    s.save().await.unwrap();
    assert!(!f.open(&key).contains_key("x").await.unwrap());
}

#[tokio::test]
async fn set_modified_saves_nested_changes() {
    let f = Fixture::new().await;
    let s = f.sessions.open(None);
    s.insert("cart", json!({"items": ["a"]})).await.unwrap();
    s.save().await.unwrap();
    let key = s.session_key().unwrap();
    // The tutorial's nested-dict case: a change inside a value that is not stored back is
    // only saved when the session is marked modified.
    let s = f.open(&key);
    let mut cart = s.get_value("cart").await.unwrap().unwrap();
    cart["items"].as_array_mut().unwrap().push(json!("b"));
    assert!(!s.modified());
    s.set_modified();
    assert!(s.modified());
    s.insert("cart", cart).await.unwrap();
    s.save().await.unwrap();
    assert_eq!(f.open(&key).get_value("cart").await.unwrap(), Some(json!({"items": ["a", "b"]})));
}

#[tokio::test]
async fn clear_and_is_empty() {
    let f = Fixture::new().await;
    let s = f.sessions.open(None);
    assert!(s.is_empty());
    s.insert("a", 1).await.unwrap();
    assert!(!s.is_empty());
    s.clear().await.unwrap();
    assert!(s.is_empty(), "no key and no data");
    let key = f.saved().await;
    let s = f.open(&key);
    assert!(!s.is_empty(), "a session with a key is not empty, without loading");
    assert!(!s.accessed());
    s.clear().await.unwrap();
    assert!(s.modified() && !s.is_empty());
    s.save().await.unwrap();
    assert!(f.open(&key).data().await.unwrap().is_empty());
}

#[tokio::test]
async fn flush_deletes_and_forgets_the_key() {
    let f = Fixture::new().await;
    let key = f.saved().await;
    let s = f.open(&key);
    s.flush().await.unwrap();
    assert_eq!(s.session_key(), None);
    assert!(s.is_empty());
    assert!(!f.sessions.store().exists(&key).await.unwrap());
    // Data added after a flush goes to a brand-new session.
    s.insert("message", "logged out").await.unwrap();
    s.save().await.unwrap();
    let new_key = s.session_key().unwrap();
    assert_ne!(new_key, key);
    assert_eq!(f.open(&new_key).data().await.unwrap(), data(json!({"message": "logged out"})));
}

#[tokio::test]
async fn cycle_key_keeps_data_under_a_new_key() {
    let f = Fixture::new().await;
    let key = f.saved().await;
    let s = f.open(&key);
    s.insert("user", "root").await.unwrap();
    s.cycle_key().await.unwrap();
    let new_key = s.session_key().unwrap();
    assert_ne!(new_key, key);
    assert!(s.modified());
    assert!(!f.sessions.store().exists(&key).await.unwrap(), "old key deleted");
    assert_eq!(f.open(&new_key).data().await.unwrap(), data(json!({"a": 1, "user": "root"})));
    // A new session (no key yet) gets one.
    let fresh = f.sessions.open(None);
    fresh.insert("x", 1).await.unwrap();
    fresh.cycle_key().await.unwrap();
    assert!(fresh.session_key().is_some());
}

#[tokio::test]
async fn test_cookie_trio() {
    let f = Fixture::new().await;
    let s = f.sessions.open(None);
    assert!(!s.test_cookie_worked().await.unwrap());
    s.set_test_cookie().await.unwrap();
    assert_eq!(s.get_value("testcookie").await.unwrap(), Some(json!("worked")));
    s.save().await.unwrap();
    let again = f.open(&s.session_key().unwrap());
    assert!(again.test_cookie_worked().await.unwrap());
    again.delete_test_cookie().await.unwrap();
    assert!(!again.test_cookie_worked().await.unwrap());
    // Deleting it twice is harmless.
    again.delete_test_cookie().await.unwrap();
}

#[tokio::test]
async fn expiry_family() {
    let f = Fixture::new().await;
    *f.now.lock().unwrap() = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    let now = *f.now.lock().unwrap();
    let s = f.sessions.open(None);
    assert_eq!(s.get_expiry_age().await.unwrap(), 1_209_600);
    assert_eq!(s.get_expiry_date().await.unwrap(), now + TimeDelta::seconds(1_209_600));
    assert!(!s.get_expire_at_browser_close().await.unwrap());

    s.set_expiry(Expiry::Seconds(300)).await.unwrap();
    assert_eq!(s.get_expiry_age().await.unwrap(), 300);
    assert_eq!(s.get_expiry_date().await.unwrap(), now + TimeDelta::seconds(300));

    s.set_expiry(Expiry::BrowserClose).await.unwrap();
    assert!(s.get_expire_at_browser_close().await.unwrap());
    assert_eq!(s.get_expiry_age().await.unwrap(), 1_209_600);
    s.set_expiry(Expiry::Seconds(0)).await.unwrap();
    assert!(s.get_expire_at_browser_close().await.unwrap());

    let at = now + TimeDelta::hours(1);
    s.set_expiry(Expiry::At(at)).await.unwrap();
    assert_eq!(s.get_value("_session_expiry").await.unwrap(), Some(json!("2026-11-26T13:00:00+00:00")));
    assert_eq!(s.get_expiry_date().await.unwrap(), at);
    f.advance(600);
    assert_eq!(s.get_expiry_age().await.unwrap(), 3000, "a fixed date counts down");

    s.set_expiry(Expiry::In(std::time::Duration::from_secs(60))).await.unwrap();
    assert_eq!(s.get_expiry_age().await.unwrap(), 60);

    s.set_expiry(Expiry::Default).await.unwrap();
    assert!(!s.contains_key("_session_expiry").await.unwrap());
    assert_eq!(s.get_expiry_age().await.unwrap(), 1_209_600);
}

#[tokio::test]
async fn global_browser_close_setting() {
    let mut settings = Settings::with_secret_key(SECRET);
    settings.session_expire_at_browser_close = true;
    let f = Fixture::with(settings).await;
    let s = f.sessions.open(None);
    assert!(s.get_expire_at_browser_close().await.unwrap());
    s.set_expiry(Expiry::Seconds(10)).await.unwrap();
    assert!(!s.get_expire_at_browser_close().await.unwrap());
}

#[tokio::test]
async fn sessions_expire_in_the_store() {
    let f = Fixture::new().await;
    let s = f.sessions.open(None);
    s.set_expiry(Expiry::Seconds(60)).await.unwrap();
    s.insert("a", 1).await.unwrap();
    s.save().await.unwrap();
    let key = s.session_key().unwrap();
    assert!(s.exists().await.unwrap());
    // The fake clock drives loads; the row's expire_date was computed from it.
    f.advance(30);
    assert_eq!(f.open(&key).get_value("a").await.unwrap(), Some(json!(1)));
    f.advance(31);
    let late = f.open(&key);
    assert_eq!(late.get_value("a").await.unwrap(), None);
    assert_eq!(late.session_key(), None, "an expired key is dropped, not adopted");
    assert!(s.exists().await.unwrap(), "still stored until swept");
    assert_eq!(s.clear_expired().await.unwrap(), 1);
    assert!(!s.exists().await.unwrap());
}

#[tokio::test]
async fn save_delete_exists() {
    let f = Fixture::new().await;
    let s = f.sessions.open(None);
    assert!(!s.exists().await.unwrap());
    s.save().await.unwrap();
    assert!(s.exists().await.unwrap(), "save creates a session with a new key");
    s.delete().await.unwrap();
    assert!(!s.exists().await.unwrap());
    // Saving a session deleted elsewhere is refused, not resurrected.
    s.insert("x", 1).await.unwrap();
    assert!(matches!(s.save().await, Err(sesame::Error::Interrupted)));
    assert!(!s.exists().await.unwrap());
}

#[tokio::test]
async fn concurrent_writes_to_different_keys_merge() {
    let f = Fixture::new().await;
    let key = f.saved().await;
    let a = f.open(&key);
    let b = f.open(&key);
    a.insert("from_a", 1).await.unwrap();
    b.insert("from_b", 2).await.unwrap();
    b.remove("a").await.unwrap();
    a.save().await.unwrap();
    b.save().await.unwrap();
    assert_eq!(f.open(&key).data().await.unwrap(), data(json!({"from_a": 1, "from_b": 2})));
}

/// A store whose loads answer late, so another future of the same request can run meanwhile.
#[derive(Debug)]
struct SlowLoads(sesame::store::MemoryStore);

#[async_trait::async_trait]
impl sesame::SessionStore for SlowLoads {
    async fn load(&self, key: &str, now: DateTime<Utc>) -> Result<Option<sesame::store::Loaded>, sesame::StoreError> {
        // Read first, answer later: the row is read before a concurrent delete lands.
        let loaded = self.0.load(key, now).await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        loaded
    }
    async fn create(
        &self,
        key: &str,
        record: sesame::store::Record<'_>,
    ) -> Result<sesame::store::Created, sesame::StoreError> {
        self.0.create(key, record).await
    }
    async fn save(
        &self,
        key: &str,
        record: sesame::store::Record<'_>,
        expected: &sesame::store::Version,
    ) -> Result<sesame::store::Saved, sesame::StoreError> {
        self.0.save(key, record, expected).await
    }
    async fn delete(&self, key: &str) -> Result<(), sesame::StoreError> {
        self.0.delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool, sesame::StoreError> {
        self.0.exists(key).await
    }
    async fn clear_expired(&self, now: DateTime<Utc>) -> Result<u64, sesame::StoreError> {
        self.0.clear_expired(now).await
    }
}

/// A flush while another future of the same request is still loading the session must win:
/// the late load must not bring the logged-out data back (found by the app: pages render
/// concurrently and both touch the session).
#[tokio::test]
async fn flush_during_an_in_flight_load_stays_flushed() {
    let store = Arc::new(SlowLoads(sesame::store::MemoryStore::new()));
    let sessions = Sessions::new(store.clone(), Settings::with_secret_key(SECRET));
    let s = sessions.open(None);
    s.insert("username", "root").await.unwrap();
    s.save().await.unwrap();
    let key = s.session_key().unwrap();

    let req = sessions.open(Some(&key));
    let (seen, flushed) = tokio::join!(req.contains_key("username"), async {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        req.flush().await
    });
    flushed.unwrap();
    let _ = seen.unwrap();
    assert!(req.is_empty(), "the flushed session must stay empty");
    assert_eq!(req.get_value("username").await.unwrap(), None);
    assert!(!sesame::SessionStore::exists(&store.0, &key).await.unwrap());
    // And nothing is created at the end of the request.
    assert!(req.session_key().is_none());
    assert_eq!(store.0.len(), 0);
}

#[tokio::test]
async fn a_write_never_shows_in_another_sessions_read_of_the_same_record() {
    // Reads of an unchanged record share one decoded map (the store's decode cache); a write
    // must copy it first, or an unsaved change would leak into every other reader.
    let f = Fixture::new().await;
    let key = f.saved().await;
    let reader = f.open(&key);
    assert_eq!(reader.get_value("a").await.unwrap(), Some(json!(1)));
    let writer = f.open(&key);
    writer.insert("a", 2).await.unwrap();
    writer.insert("b", true).await.unwrap();
    writer.remove("a").await.unwrap();
    assert_eq!(writer.data().await.unwrap(), data(json!({"b": true})));
    assert_eq!(reader.data().await.unwrap(), data(json!({"a": 1})), "the first reader");
    let later = f.open(&key);
    assert_eq!(later.data().await.unwrap(), data(json!({"a": 1})), "a later reader, from the cache");
    writer.save().await.unwrap();
    let after = f.open(&key);
    assert_eq!(after.data().await.unwrap(), data(json!({"b": true})), "after the save");
    assert_eq!(reader.data().await.unwrap(), data(json!({"a": 1})), "a loaded session keeps its copy");
}
