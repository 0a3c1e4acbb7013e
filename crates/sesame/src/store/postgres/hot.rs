//! The session hot path on tokio-postgres: a few connections shared by every request, each
//! pipelining whatever queries are in flight.
//!
//! sqlx gives each query a pooled connection of its own and a round trip of its own. With 32
//! requests in flight on 2 cores, that client work cost more than PostgreSQL's: the server
//! answered 83,000 prepared primary-key lookups per second to `pgbench`, while a server doing
//! one such lookup per request through sqlx topped out near 24,000 requests per second. A
//! tokio-postgres client sends every query issued while others are in flight in the same
//! write and reads the answers in one go, so under load a connection carries many requests
//! per system call on both sides. The sqlx pool stays for migrations and the sessions API.
//!
//! A connection that breaks (PostgreSQL restarted) is replaced on the next use; queries made
//! while the database is down fail with [`StoreError::Postgres`], never hang.

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::{Client, Config, NoTls, Statement};

use crate::error::StoreError;

/// A connection with the hot path's statements prepared on it.
struct Conn {
    client: Client,
    load: Statement,
    create: Statement,
    save: Statement,
    delete: Statement,
    exists: Statement,
}

#[derive(Default)]
struct Slot {
    // parking_lot: only to clone the Arc out, never across an await.
    conn: Mutex<Option<Arc<Conn>>>,
    /// Held while (re)connecting, so a broken connection is replaced once, not once per request.
    connecting: tokio::sync::Mutex<()>,
}

/// The hot-path connections of one store.
pub(super) struct Hot {
    config: Config,
    slots: Vec<Slot>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Hot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hot").field("connections", &self.slots.len()).finish_non_exhaustive()
    }
}

impl Hot {
    /// Connections to the database `url` names (its `options`, such as a `search_path`,
    /// included), opened on first use: two per core, at least 4 and at most 8. A connection
    /// runs its pipelined statements one after another, so each new session's commit waits
    /// for the WAL flush of the one before it; with 4 connections rather than 2, PostgreSQL
    /// flushes several commits at once and new sessions went from 10,500 to 15,300 per second
    /// here, while reads did not suffer.
    pub(super) fn new(url: &str) -> Result<Self, StoreError> {
        let mut config: Config = url.parse().map_err(StoreError::Postgres)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let n = std::thread::available_parallelism().map_or(4, |n| n.get() * 2).clamp(4, 8);
        Ok(Self { config, slots: (0..n).map(|_| Slot::default()).collect(), next: AtomicUsize::new(0) })
    }

    async fn conn(&self) -> Result<Arc<Conn>, StoreError> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let live = || slot.conn.lock().as_ref().filter(|c| !c.client.is_closed()).cloned();
        if let Some(conn) = live() {
            return Ok(conn);
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(conn) = live() {
            return Ok(conn);
        }
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "PostgreSQL session connection closed; reconnecting on next use");
            }
        });
        let conn = Arc::new(Conn {
            load: client
                .prepare("SELECT session_data FROM django_session WHERE session_key = $1 AND expire_date > $2")
                .await?,
            create: client
                .prepare(
                    "INSERT INTO django_session (session_key, session_data, expire_date) VALUES ($1, $2, $3) \
                     ON CONFLICT (session_key) DO NOTHING",
                )
                .await?,
            // Under READ COMMITTED a concurrent UPDATE of the row makes this one wait, then
            // re-check `session_data = $4` against the committed row: exactly one of two
            // racing writers from the same version wins.
            save: client
                .prepare(
                    "UPDATE django_session SET session_data = $1, expire_date = $2 \
                     WHERE session_key = $3 AND session_data = $4",
                )
                .await?,
            delete: client.prepare("DELETE FROM django_session WHERE session_key = $1").await?,
            exists: client.prepare("SELECT 1 FROM django_session WHERE session_key = $1").await?,
            client,
        });
        *slot.conn.lock() = Some(conn.clone());
        Ok(conn)
    }

    /// `session_data` of the live row for `key`.
    pub(super) async fn load(&self, key: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        let c = self.conn().await?;
        Ok(c.client.query_opt(&c.load, &[&key, &now]).await?.map(|row| row.get(0)))
    }

    /// Insert unless the key exists; whether it was inserted.
    pub(super) async fn create(&self, key: &str, data: &str, expire: DateTime<Utc>) -> Result<bool, StoreError> {
        let c = self.conn().await?;
        Ok(c.client.execute(&c.create, &[&key, &data, &expire]).await? == 1)
    }

    /// Compare-and-set update; whether the row was at `expected`.
    pub(super) async fn save(
        &self,
        key: &str,
        data: &str,
        expire: DateTime<Utc>,
        expected: &str,
    ) -> Result<bool, StoreError> {
        let c = self.conn().await?;
        Ok(c.client.execute(&c.save, &[&data, &expire, &key, &expected]).await? == 1)
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.client.execute(&c.delete, &[&key]).await?;
        Ok(())
    }

    pub(super) async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let c = self.conn().await?;
        Ok(c.client.query_opt(&c.exists, &[&key]).await?.is_some())
    }
}
