//! Session rows as last read, decoded, each with the WAL stamp it was read under.
//!
//! Two uses. While the database is unchanged since a row was read (same [`Stamp`]), a read of
//! that session is answered from here without SQLite; only the expiry is checked again, against
//! the caller's clock, as the query would. When the database changed but the row's bytes did
//! not, the decoded map is reused (as [`crate::codec::DecodeCache`] does for the other stores):
//! the signature was verified on those very bytes.

use super::wal_stamp::{Stamp, WalStamp};
use crate::codec::{Codec, DecodeError};
use crate::Data;
use std::collections::HashMap;
use std::sync::Arc;

/// Entries kept before the cache starts over (a few MB for typical sessions).
const ENTRIES: usize = 10_000;

#[derive(Debug)]
struct Row {
    /// The header under which the row was read; `None` when it could not be read.
    stamp: Option<Stamp>,
    raw: String,
    expire_date: String,
    data: Arc<Data>,
}

/// A live row, as a read returns it: the stored bytes and the decoded map.
pub(super) type Hit = (String, Arc<Data>);

#[derive(Debug)]
pub(super) struct Rows {
    stamps: Option<WalStamp>,
    // parking_lot, held for a lookup and two clones; foldhash, as the decode cache (the keys
    // are the server's random session keys, and only verified records are inserted).
    entries: parking_lot::Mutex<HashMap<String, Row, foldhash::fast::RandomState>>,
}

impl Rows {
    pub(super) fn new(stamps: Option<WalStamp>) -> Self {
        Self { stamps, entries: parking_lot::Mutex::default() }
    }

    /// The database's stamp now (read it before a query whose result is to be remembered).
    pub(super) fn stamp(&self) -> Option<Stamp> {
        self.stamps.as_ref()?.now()
    }

    /// The row of `key`, if it was read under `stamp` (so nothing has changed since):
    /// `Some(None)` when it has expired by `now` (Django's text form), `None` when it is not
    /// known at this stamp and must be read.
    pub(super) fn get(&self, key: &str, stamp: &Stamp, now: &str) -> Option<Option<Hit>> {
        let entries = self.entries.lock();
        let row = entries.get(key).filter(|row| row.stamp.as_ref() == Some(stamp))?;
        // The query's `expire_date > now`: both are Django's fixed-width text, compared as
        // SQLite compares text (bytewise).
        Some((row.expire_date.as_str() > now).then(|| (row.raw.clone(), row.data.clone())))
    }

    /// Decode `raw`, read from the database under `stamp` (taken before the query), reusing
    /// the map of an entry with the same bytes, and remember the row.
    ///
    /// # Errors
    /// As [`Codec::decode`]; a row that does not decode is not remembered.
    pub(super) fn decode(
        &self,
        codec: &Codec,
        key: &str,
        raw: &str,
        expire_date: String,
        stamp: Option<Stamp>,
    ) -> Result<Arc<Data>, DecodeError> {
        if let Some(row) = self.entries.lock().get_mut(key) {
            if row.raw == raw {
                row.stamp = stamp;
                row.expire_date = expire_date;
                return Ok(row.data.clone());
            }
        }
        let data = Arc::new(codec.decode(raw)?.data);
        let mut entries = self.entries.lock();
        if entries.len() >= ENTRIES {
            entries.clear();
        }
        entries.insert(key.to_owned(), Row { stamp, raw: raw.to_owned(), expire_date, data: data.clone() });
        Ok(data)
    }

    /// Forget `key` (after a delete).
    pub(super) fn forget(&self, key: &str) {
        self.entries.lock().remove(key);
    }
}
