//! The store conformance suite on the in-memory store.
mod common;

use sesame::store::{MemoryStore, SessionStore};
use std::sync::Arc;

async fn make() -> (Arc<dyn SessionStore>, ()) {
    (Arc::new(MemoryStore::new()), ())
}

store_conformance!(make());
