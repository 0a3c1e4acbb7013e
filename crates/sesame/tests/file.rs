//! The store conformance suite on the file engine (a temporary folder), plus its specifics.
mod common;

use chrono::{TimeDelta, Utc};
use common::*;
use sesame::store::{FileStore, Saved, SessionStore};
use std::sync::Arc;

fn file_store(dir: &std::path::Path) -> FileStore {
    FileStore::open(dir, "sessionid", sesame::codec::Codec::new(SECRET, &[]), 1_209_600, true).unwrap()
}

async fn make() -> (Arc<dyn SessionStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Arc::new(file_store(dir.path())), dir)
}

store_conformance!(make());

#[tokio::test]
async fn foreign_files_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(dir.path());
    for name in ["README", "sessionid..", "sessionidUPPER0000000", "other0000000000000000000000000000"] {
        std::fs::write(dir.path().join(name), "x").unwrap();
    }
    created(&store, "realsession000000000000000000000", &data(serde_json::json!({})), earlier()).await;
    assert_eq!(store.count().await.unwrap(), 1);
    assert_eq!(store.clear_expired(Utc::now()).await.unwrap(), 1);
    for name in ["README", "sessionid..", "sessionidUPPER0000000", "other0000000000000000000000000000"] {
        assert!(dir.path().join(name).exists(), "{name}");
    }
}

#[tokio::test]
async fn path_traversal_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("sessions");
    let store = FileStore::open(&inner, "sessionid", sesame::codec::Codec::new(SECRET, &[]), 60, true).unwrap();
    std::fs::write(dir.path().join("secret"), "x").unwrap();
    for key in ["../secret", "/../../secret", "..%2fsecret000", "a/../../secret"] {
        assert!(!store.accepts_key(key));
        assert!(store.load(key, Utc::now()).await.unwrap().is_none());
        assert!(!store.exists(key).await.unwrap());
        store.delete(key).await.unwrap();
        assert!(store.create(key, record(&data(serde_json::json!({})), later())).await.is_err());
    }
    assert!(dir.path().join("secret").exists());
}

#[tokio::test]
async fn a_file_django_wrote_is_read_with_its_mtime_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(dir.path());
    let codec = sesame::codec::Codec::new(SECRET, &[]);
    // Django writes the encoded data; expiry = mtime + SESSION_COOKIE_AGE.
    let path = dir.path().join("sessioniddjangowrote0000000000000000");
    std::fs::write(&path, codec.encode(&data(serde_json::json!({"from": "django"})))).unwrap();
    let loaded = store.load("djangowrote0000000000000000", Utc::now()).await.unwrap().unwrap();
    assert_eq!(*loaded.data, data(serde_json::json!({"from": "django"})));
    // Fifteen days old: past the two-week cookie age.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(15 * 86_400);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(old).unwrap();
    assert!(store.load("djangowrote0000000000000000", Utc::now()).await.unwrap().is_none());
}

/// Two stores over one folder stand for two server processes: the flock'd compare-and-set
/// keeps every update.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_lost_updates_across_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    let a = sesame::Sessions::new(Arc::new(file_store(dir.path())), sesame::Settings::with_secret_key(SECRET));
    let b = sesame::Sessions::new(Arc::new(file_store(dir.path())), sesame::Settings::with_secret_key(SECRET));
    two_process_increments(&a, &b).await;
}

#[tokio::test]
async fn a_save_never_leaves_a_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(dir.path());
    let k = "tmpcheck00000000000000000000000";
    let v = created(&store, k, &data(serde_json::json!({"n": 1})), later()).await;
    let ok = store.save(k, record(&data(serde_json::json!({"n": 2})), later()), &v).await.unwrap();
    assert!(matches!(ok, Saved::Saved { .. }));
    let stale = store.save(k, record(&data(serde_json::json!({"n": 3})), later()), &v).await.unwrap();
    assert!(matches!(stale, Saved::Conflict));
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 2, "the session and the lock file only: {names:?}");
    let info = store.inspect(k).await.unwrap().unwrap();
    assert!((info.expire_date - later()).num_seconds().abs() < 5);
    assert!(info.expire_date > Utc::now() + TimeDelta::hours(23));
}

#[tokio::test]
async fn session_engine_file_selects_this_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = sesame::Settings::with_secret_key(SECRET);
    settings.session_engine = sesame::Engine::parse("django.contrib.sessions.backends.file").unwrap();
    settings.session_file_path = dir.path().join("made-on-connect");
    assert!(sesame::Sessions::connect_existing(settings.clone()).await.is_err(), "tools do not create the folder");
    let sessions = sesame::Sessions::connect(settings).await.unwrap();
    let s = sessions.open(None);
    s.insert("engine", "file").await.unwrap();
    s.save().await.unwrap();
    let key = s.session_key().unwrap();
    assert!(dir.path().join("made-on-connect").join(format!("sessionid{key}")).exists());
}
