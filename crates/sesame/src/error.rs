//! Errors of the session engine.

/// What can go wrong with a session.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store could not be reached or failed.
    #[error("session store error")]
    Store(#[from] StoreError),
    /// A value could not be converted to or from JSON.
    #[error("session value is not representable as the requested type")]
    Serde(#[source] serde_json::Error),
    /// The session was deleted (logout, flush, `cycle_key`) by another request while this one
    /// ran; saving it would bring it back. Django answers 400 (`SessionInterrupted`).
    #[error("the session was deleted before the request completed")]
    Interrupted,
    /// The session was used outside a request handled by `SessionLayer`.
    #[error("no session in this request: is SessionLayer installed?")]
    MissingLayer,
}

/// A failure inside a store backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A database error (connection, query, migration).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A SQLite error on the session hot path.
    #[cfg(feature = "sqlite")]
    #[error("SQLite error")]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL error on the session hot path.
    #[cfg(feature = "postgres")]
    #[error("PostgreSQL error")]
    Postgres(#[from] tokio_postgres::Error),
    /// Migrations could not be applied.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A Redis error (connection, command, script).
    #[cfg(feature = "redis")]
    #[error("redis error")]
    Redis(#[from] redis::RedisError),
    /// A file-system error of the file engine.
    #[error("session file error")]
    Io(#[from] std::io::Error),
    /// The encoded session does not fit where the engine keeps it (the signed-cookie engine:
    /// browsers drop cookies over about 4 kB, which would silently lose the session).
    #[error("session data is too large for this engine: {size} bytes, limit {limit}")]
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The engine's limit in bytes.
        limit: usize,
    },
    /// A stored `expire_date` could not be parsed.
    #[error("unreadable expire_date {0:?}")]
    BadExpireDate(String),
    /// The database or file the settings name does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Could not find a free key after several attempts (the RNG is broken or the store lies).
    #[error("could not allocate a unique session key")]
    KeyExhausted,
    /// A session key (or a name built from one) that a store refuses to use.
    #[error("invalid session key or file name: {0}")]
    InvalidKey(String),
    /// The settings name a store this build does not have.
    #[error("unsupported store: {0}")]
    Unsupported(String),
    /// The failure of a write shared by several requests (group commit): each of them gets it.
    #[error(transparent)]
    Shared(std::sync::Arc<StoreError>),
    /// Anything else a backend reports.
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    /// The error of a write shared by several requests, for one of them: the error itself for
    /// the last holder, a copy where the variant carries only data (so that, say, a session
    /// too large for its engine is still reported as such), [`StoreError::Shared`] otherwise.
    pub(crate) fn from_shared(e: std::sync::Arc<StoreError>) -> StoreError {
        std::sync::Arc::try_unwrap(e).unwrap_or_else(|e| match &*e {
            StoreError::TooLarge { size, limit } => StoreError::TooLarge { size: *size, limit: *limit },
            StoreError::NotFound(m) => StoreError::NotFound(m.clone()),
            StoreError::InvalidKey(m) => StoreError::InvalidKey(m.clone()),
            StoreError::Other(m) => StoreError::Other(m.clone()),
            _ => StoreError::Shared(e),
        })
    }
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Serde(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_shared_error_keeps_its_kind_for_every_request_of_the_batch() {
        let shared = Arc::new(StoreError::TooLarge { size: 5000, limit: 4093 });
        let _other_holder = shared.clone();
        assert!(matches!(StoreError::from_shared(shared), StoreError::TooLarge { size: 5000, limit: 4093 }));
        let io = Arc::new(StoreError::Io(std::io::Error::other("disk")));
        let _other_holder = io.clone();
        assert!(matches!(StoreError::from_shared(io), StoreError::Shared(_)));
        let last = Arc::new(StoreError::Io(std::io::Error::other("disk")));
        assert!(matches!(StoreError::from_shared(last), StoreError::Io(_)));
    }
}
