//! Wall-clock times for trace events, to set what the store did (a sweep's batches and
//! checkpoints, the writer's commits) beside a load generator's samples of the same seconds.
//! `RUST_LOG=sesame::store::sqlite=trace` prints them; `bench/stalls.py` matches them up.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When something that took `took` and has just ended began, in microseconds since the Unix
/// epoch. Called only inside `tracing::trace!`, whose arguments are not evaluated when the
/// event is off.
pub(super) fn began_us(took: Duration) -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    now.saturating_sub(took).as_micros() as u64
}
