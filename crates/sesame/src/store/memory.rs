//! An in-process store: for tests, examples and single-process apps that can lose sessions on
//! restart. Not one of Django's engines (`SESSION_ENGINE = "memory"`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Created, Inspected, Loaded, Record, Saved, SessionStore, Summary, Version};
use crate::{error::StoreError, Data};

#[derive(Debug)]
struct Entry {
    data: Data,
    expire_date: DateTime<Utc>,
    version: Version,
}

/// Sessions in a `HashMap` behind a mutex.
#[derive(Debug, Default)]
pub struct MemoryStore {
    // A parking_lot mutex, not tokio's: nothing awaits while it is held.
    entries: Mutex<HashMap<String, Entry>>,
    next_version: AtomicU64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn version(&self) -> Version {
        Version(self.next_version.fetch_add(1, Ordering::Relaxed).to_string())
    }

    /// Number of records, expired ones included.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether the store holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Loaded>, StoreError> {
        Ok(self
            .entries
            .lock()
            .get(key)
            .filter(|e| e.expire_date > now)
            .map(|e| Loaded { data: e.data.clone().into(), version: e.version.clone() }))
    }

    async fn create(&self, key: &str, record: Record<'_>) -> Result<Created, StoreError> {
        let version = self.version();
        let mut entries = self.entries.lock();
        if entries.contains_key(key) {
            return Ok(Created::KeyTaken);
        }
        entries.insert(
            key.to_owned(),
            Entry { data: record.data.clone(), expire_date: record.expire_date, version: version.clone() },
        );
        Ok(Created::Created { key: key.to_owned(), version })
    }

    async fn save(&self, key: &str, record: Record<'_>, expected: &Version) -> Result<Saved, StoreError> {
        let version = self.version();
        let mut entries = self.entries.lock();
        match entries.get_mut(key) {
            Some(e) if &e.version == expected => {
                e.data = record.data.clone();
                e.expire_date = record.expire_date;
                e.version = version.clone();
                Ok(Saved::Saved { key: key.to_owned(), version })
            }
            _ => Ok(Saved::Conflict),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.entries.lock().remove(key);
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.entries.lock().contains_key(key))
    }

    async fn clear_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut entries = self.entries.lock();
        let before = entries.len();
        entries.retain(|_, e| e.expire_date >= now);
        Ok((before - entries.len()) as u64)
    }

    async fn inspect(&self, key: &str) -> Result<Option<Inspected>, StoreError> {
        Ok(self.entries.lock().get(key).map(|e| Inspected {
            data: Ok(e.data.clone()),
            expire_date: e.expire_date,
            size: serde_json::to_string(&e.data).map_or(0, |s| s.len()),
        }))
    }

    async fn list(&self, now: DateTime<Utc>, expired_only: bool, limit: u64) -> Result<Vec<Summary>, StoreError> {
        let entries = self.entries.lock();
        let mut rows: Vec<Summary> = entries
            .iter()
            .filter(|(_, e)| !expired_only || e.expire_date <= now)
            .map(|(k, e)| Summary {
                key: k.clone(),
                expire_date: e.expire_date,
                size: serde_json::to_string(&e.data).map_or(0, |s| s.len()),
            })
            .collect();
        rows.sort_by(|a, b| a.expire_date.cmp(&b.expire_date).then_with(|| a.key.cmp(&b.key)));
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(rows)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.entries.lock().len() as u64)
    }

    fn is_shared(&self) -> bool {
        false
    }
}
