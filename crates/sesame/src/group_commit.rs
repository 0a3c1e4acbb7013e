//! Group commit: concurrent writes to one session key share one store write.
//!
//! Requests of one browser that write the same session at the same moment (a burst of
//! counter increments, the parallel server-function calls of one page) each need a
//! compare-and-set against the store. Taken one after another, each waits for a full round
//! trip of the one before it, so N concurrent increments cost N round trips. Here a request
//! applies its change to the key's *open batch* in memory, then either writes the batch (when
//! no write of that key is in flight) or waits for the write that carries its change. While a
//! write is in flight the next batch gathers everything that arrives, built on top of the data
//! being written: a busy key costs one store write per round trip, not one per request.
//!
//! Correctness still rests on the store's compare-and-set. A batch is written against the
//! version it was built on; if another process wrote in between, the write fails, the writer
//! reloads the record, and every request of the batch (and of the batch stacked on it) applies
//! its change again on the fresh data. A request's change is in exactly one saved write:
//! nothing is lost and nothing is applied twice.
//!
//! Writes run in a task of their own, so a request that is cancelled (its client went away)
//! never leaves the others of its batch without an answer, and a write whose outcome nobody
//! learned cannot happen.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use tokio::sync::{watch, OwnedMutexGuard};

use crate::error::StoreError;
use crate::session::Shared;
use crate::store::{Record, Saved, Version};
use crate::{expiry, Data};

/// What became of a batch, as every request in it learns.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Written: the cookie value, the new version and the data now stored.
    Saved(Arc<Written>),
    /// Another writer got there first (or the write it was stacked on failed): apply the
    /// change again on the state now in [`KeyEntry`].
    Retry,
    /// The record is gone (logout elsewhere): saving would bring it back.
    Interrupted,
    /// The store failed.
    Failed(Arc<StoreError>),
}

/// A saved batch.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) key: String,
    pub(crate) version: Version,
    pub(crate) data: Data,
}

/// What a batch was built on.
#[derive(Debug)]
enum Base {
    /// A stored version.
    Version(Version),
    /// The data of the write in flight; its version is known when that write is done.
    InFlight,
    /// Nothing known (a session handle without a version): the writer reloads first.
    Unknown,
}

#[derive(Debug)]
struct Batch {
    data: Data,
    base: Base,
    done: watch::Sender<Option<Outcome>>,
}

#[derive(Debug, Default)]
struct Slot {
    /// The last state of the record this process knows: what it wrote, or reloaded after a
    /// conflict. Newer than what a request loaded before it, so a batch starts from it.
    committed: Option<(Version, Data)>,
    /// The data of the write in flight.
    in_flight: Option<Arc<Data>>,
    /// Changes waiting for the next write.
    open: Option<Batch>,
}

/// Per-key state of group commit. Lives as long as some request holds it.
#[derive(Debug, Default)]
pub(crate) struct KeyEntry {
    /// Held by the one task writing or deleting this key's record.
    io: Arc<tokio::sync::Mutex<()>>,
    // parking_lot: held for in-memory work only, never across an await.
    slot: Mutex<Slot>,
}

/// A request's place in a batch: what its change returned, and where the outcome arrives.
pub(crate) struct Joined<R> {
    pub(crate) value: R,
    done: watch::Receiver<Option<Outcome>>,
}

impl KeyEntry {
    /// Whether this process holds state for the key (a write just happened or is under way),
    /// so a change can be applied without loading the record first.
    pub(crate) fn is_active(&self) -> bool {
        let slot = self.slot.lock();
        slot.committed.is_some() || slot.in_flight.is_some() || slot.open.is_some()
    }

    /// Apply a request's change to the open batch, starting one if there is none.
    ///
    /// A batch starts from the newest state this process knows; only if it knows none does it
    /// start from `own` (the request's loaded version and data, its changes already applied),
    /// and `replay` (the request's changes) is then skipped. Returns `None` when a batch has to
    /// start from `own` and the request has loaded nothing: load, then join again.
    pub(crate) fn join<R>(
        &self,
        own: impl FnOnce() -> Option<(Option<Version>, Data)>,
        replay: impl FnOnce(&mut Data),
        change: &(dyn Fn(&mut Data) -> R + Send + Sync),
    ) -> Option<Joined<R>> {
        let mut guard = self.slot.lock();
        let slot = &mut *guard;
        let mut replay = Some(replay);
        if slot.open.is_none() {
            let (data, base) = if let Some(data) = &slot.in_flight {
                (Data::clone(data), Base::InFlight)
            } else if let Some((version, data)) = &slot.committed {
                (data.clone(), Base::Version(version.clone()))
            } else {
                let (version, data) = own()?;
                replay = None;
                (data, version.map_or(Base::Unknown, Base::Version))
            };
            slot.open = Some(Batch { data, base, done: watch::Sender::new(None) });
        }
        let batch = slot.open.as_mut().expect("an open batch was just ensured");
        if let Some(replay) = replay {
            replay(&mut batch.data);
        }
        let value = change(&mut batch.data);
        Some(Joined { value, done: batch.done.subscribe() })
    }

    /// Wait for the outcome of a joined batch, writing it if nobody else is.
    pub(crate) async fn outcome<R>(
        self: &Arc<Self>,
        joined: &mut Joined<R>,
        shared: &Arc<Shared>,
        key: &str,
    ) -> Outcome {
        loop {
            if let Some(outcome) = joined.done.borrow().clone() {
                return outcome;
            }
            let io = self.io.clone().lock_owned().await;
            if let Some(outcome) = joined.done.borrow().clone() {
                return outcome;
            }
            // Not published, and batches are taken only by a writer holding `io`, which
            // publishes before letting go: ours is still the open batch. Write it.
            let (entry, shared, key) = (self.clone(), shared.clone(), key.to_owned());
            tokio::spawn(async move { entry.write_open(io, &shared, &key).await });
            if joined.done.wait_for(Option::is_some).await.is_err() {
                return Outcome::Failed(Arc::new(StoreError::Other("the session write task panicked".into())));
            }
        }
    }

    /// Write the open batch and tell everyone in it what happened.
    async fn write_open(&self, io: OwnedMutexGuard<()>, shared: &Shared, key: &str) {
        let (base, done, data) = {
            let mut slot = self.slot.lock();
            let Some(Batch { data, base, done }) = slot.open.take() else { return };
            // Batches arriving meanwhile stack on this data: shared, copied only if one does.
            let data = Arc::new(data);
            slot.in_flight = Some(data.clone());
            (base, done, data)
        };
        let now = shared.clock.now();
        let saved = match &base {
            Base::Version(version) => {
                let expire_date = expiry::date(&data, shared.settings.session_cookie_age, now);
                shared.store.save(key, Record { data: &data, expire_date }, version).await
            }
            Base::InFlight | Base::Unknown => Ok(Saved::Conflict),
        };
        let fresh = match &saved {
            Ok(Saved::Conflict) => Some(shared.store.load(key, now).await),
            _ => None,
        };

        let mut slot = self.slot.lock();
        slot.in_flight = None;
        let outcome = match (saved, fresh) {
            (Ok(Saved::Saved { key: saved_key, version }), _) => {
                let data = Arc::try_unwrap(data).unwrap_or_else(|shared| Data::clone(&shared));
                let same_key = saved_key == key;
                slot.committed = same_key.then(|| (version.clone(), data.clone()));
                if let Some(next) = slot.open.as_mut().filter(|b| matches!(b.base, Base::InFlight)) {
                    // The next batch was built on what we just wrote: it is now at our version.
                    next.base = if same_key { Base::Version(version.clone()) } else { Base::Unknown };
                }
                Outcome::Saved(Arc::new(Written { key: saved_key, version, data }))
            }
            (Err(e), _) | (_, Some(Err(e))) => {
                slot.committed = None;
                Outcome::Failed(Arc::new(e))
            }
            (_, Some(Ok(Some(fresh)))) => {
                slot.committed = Some((fresh.version, Arc::unwrap_or_clone(fresh.data)));
                Outcome::Retry
            }
            (_, _) => {
                slot.committed = None;
                Outcome::Interrupted
            }
        };
        if !matches!(outcome, Outcome::Saved(_)) {
            // A batch stacked on this one was built on data that was not saved.
            if slot.open.as_ref().is_some_and(|b| matches!(b.base, Base::InFlight)) {
                let stacked = slot.open.take().expect("checked above");
                let again = if matches!(outcome, Outcome::Failed(_)) { outcome.clone() } else { Outcome::Retry };
                stacked.done.send_replace(Some(again));
            }
        }
        drop(slot);
        done.send_replace(Some(outcome));
        drop(io);
    }

    /// Take the write lock to delete the record: no write of the key is in flight while the
    /// guard lives, and later batches build on the store's state, not on what was deleted.
    pub(crate) async fn lock_for_delete(&self) -> tokio::sync::MutexGuard<'_, ()> {
        let guard = self.io.lock().await;
        self.slot.lock().committed = None;
        guard
    }
}

/// A map from session key to its [`KeyEntry`], holding only entries someone still uses.
#[derive(Debug, Default)]
pub(crate) struct KeyEntries {
    // parking_lot, not tokio: the map is only touched briefly and never across an await.
    map: Mutex<(HashMap<String, Weak<KeyEntry>>, usize)>,
}

impl KeyEntries {
    /// The entry for `key`, created if nobody holds it.
    pub(crate) fn get(&self, key: &str) -> Arc<KeyEntry> {
        let mut guard = self.map.lock();
        let (map, high_water) = &mut *guard;
        if let Some(entry) = map.get(key).and_then(Weak::upgrade) {
            return entry;
        }
        let entry = Arc::new(KeyEntry::default());
        map.insert(key.to_owned(), Arc::downgrade(&entry));
        // Sweep dead entries when the map has doubled since the last sweep: amortised O(1).
        if map.len() > (*high_water).max(64) * 2 {
            map.retain(|_, w| w.strong_count() > 0);
            *high_water = map.len();
        }
        entry
    }

    /// Whether some request of this process holds state for `key` (see [`KeyEntry::is_active`]).
    pub(crate) fn is_active(&self, key: &str) -> bool {
        let entry = self.map.lock().0.get(key).and_then(Weak::upgrade);
        entry.is_some_and(|e| e.is_active())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_entry_and_dead_entries_are_swept() {
        let entries = KeyEntries::default();
        let a = entries.get("a");
        assert!(Arc::ptr_eq(&a, &entries.get("a")));
        for i in 0..1000 {
            drop(entries.get(&format!("k{i}")));
        }
        assert!(entries.map.lock().0.len() < 300);
        assert!(Arc::ptr_eq(&a, &entries.get("a")));
    }

    #[test]
    fn a_batch_starts_from_the_newest_known_state_and_replays_only_on_it() {
        let entry = KeyEntry::default();
        let own = || Some((Some(Version("v0".into())), Data::from_iter([("n".into(), 1.into())])));
        let bump = |d: &mut Data| {
            let n = d.get("n").and_then(|v| v.as_i64()).unwrap_or(0) + 1;
            d.insert("n".into(), n.into());
            n
        };
        // Nothing known: the batch starts from the request's own state, without replay.
        let first = entry.join(own, |_| panic!("own state already has the changes"), &bump).unwrap();
        assert_eq!(first.value, 2);
        // A second request joins the same batch and replays its changes on it.
        let second = entry.join(|| None, |d| drop(d.insert("x".into(), true.into())), &bump).unwrap();
        assert_eq!(second.value, 3);
        let slot = entry.slot.lock();
        let open = slot.open.as_ref().unwrap();
        assert!(matches!(&open.base, Base::Version(v) if v.0 == "v0"));
        assert_eq!(open.data.get("x"), Some(&true.into()));
    }

    #[test]
    fn joining_with_nothing_known_and_nothing_loaded_asks_for_a_load() {
        let entry = KeyEntry::default();
        assert!(entry.join(|| None, |_| (), &|_| ()).is_none());
        assert!(!entry.is_active());
    }
}
