//! Per-session-key locks inside one process.
//!
//! Concurrent requests of one browser that write the same session take turns on its lock for
//! the few milliseconds of a save, so within a process a compare-and-set almost never fails.
//! Across processes the store's compare-and-set is what keeps updates from being lost; the lock
//! only saves work.
//!
//! The lock also guards the last state this process committed for the key (while anyone holds
//! the lock entry). A request whose loaded version is older than that starts its save from the
//! newer state directly instead of failing a compare-and-set and reloading: under a burst of
//! requests to one session (a counter), each save is one store write, not three operations.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// The last state committed by this process for a key: its version and data.
pub(crate) type Committed = Option<(crate::store::Version, crate::Data)>;

type KeyLock = tokio::sync::Mutex<Committed>;

/// A map from session key to a lock, holding only locks someone still uses.
#[derive(Debug, Default)]
pub(crate) struct KeyLocks {
    // parking_lot, not tokio: the map is only touched briefly and never across an await.
    map: Mutex<(HashMap<String, Weak<KeyLock>>, usize)>,
}

impl KeyLocks {
    /// The lock for `key`, created if nobody holds it.
    pub(crate) fn get(&self, key: &str) -> Arc<KeyLock> {
        let mut guard = self.map.lock();
        let (map, high_water) = &mut *guard;
        if let Some(lock) = map.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(KeyLock::new(None));
        map.insert(key.to_owned(), Arc::downgrade(&lock));
        // Sweep dead entries when the map has doubled since the last sweep: amortised O(1).
        if map.len() > (*high_water).max(64) * 2 {
            map.retain(|_, w| w.strong_count() > 0);
            *high_water = map.len();
        }
        lock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_lock_and_dead_entries_are_swept() {
        let locks = KeyLocks::default();
        let a = locks.get("a");
        assert!(Arc::ptr_eq(&a, &locks.get("a")));
        for i in 0..1000 {
            drop(locks.get(&format!("k{i}")));
        }
        assert!(locks.map.lock().0.len() < 300);
        assert!(Arc::ptr_eq(&a, &locks.get("a")));
    }
}
