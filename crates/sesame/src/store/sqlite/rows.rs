//! Session rows as last read, decoded, each noted with the WAL stamp it was read under and
//! its `expire_date`.
//!
//! Two uses. While the database is unchanged since a row was read (same [`Stamp`]), a read of
//! that session is answered from here without SQLite; only the expiry is checked again, against
//! the caller's clock, as the query would. When the database changed but the row's bytes did
//! not, the decoded map is reused, as [`DecodeCache`] does for every store: the signature was
//! verified on those very bytes.

use super::wal_stamp::{Stamp, WalStamp};
use crate::codec::{Codec, DecodeCache, DecodeError};
use crate::Data;
use std::sync::Arc;

/// What a row was read under: the WAL stamp taken before the query (`None` when it could not
/// be read) and the row's `expire_date`.
type ReadUnder = (Option<Stamp>, String);

/// A live row, as a read returns it: the stored bytes and the decoded map.
pub(super) type Hit = (String, Arc<Data>);

#[derive(Debug)]
pub(super) struct Rows {
    stamps: Option<Arc<WalStamp>>,
    decoded: DecodeCache<ReadUnder>,
}

impl Rows {
    pub(super) fn new(stamps: Option<Arc<WalStamp>>) -> Self {
        Self { stamps, decoded: DecodeCache::default() }
    }

    /// The database's stamp now (read it before a query whose result is to be remembered).
    pub(super) fn stamp(&self) -> Option<Stamp> {
        self.stamps.as_ref()?.now()
    }

    /// The row of `key`, if it was read under `stamp` (so nothing has changed since):
    /// `Some(None)` when it has expired by `now` (Django's text form), `None` when it is not
    /// known at this stamp and must be read.
    pub(super) fn get(&self, key: &str, stamp: &Stamp, now: &str) -> Option<Option<Hit>> {
        self.decoded.peek(key, |raw, data, (read_under, expire_date)| {
            // The query's `expire_date > now`: both are Django's fixed-width text, compared as
            // SQLite compares text (bytewise).
            (read_under.as_ref() == Some(stamp))
                .then(|| (expire_date.as_str() > now).then(|| (raw.to_owned(), data.clone())))
        })
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
        self.decoded.decode_noting(codec, key, raw, (stamp, expire_date))
    }

    /// Forget `key` (after a delete).
    pub(super) fn forget(&self, key: &str) {
        self.decoded.forget(key);
    }
}
