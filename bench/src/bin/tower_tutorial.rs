//! The same tutorial routes as Sesame's `tutorial` example, served by tower-sessions 0.14, so
//! the benchmark compares both in one run on one machine. Not part of Sesame.
//!
//! ```sh
//! tower_tutorial --addr 127.0.0.1:8700 --store sqlite --database-url sqlite:/tmp/ts.sqlite3
//! ```

use anyhow::Result;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use clap::{Parser, ValueEnum};
use std::str::FromStr;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

#[derive(Clone, Copy, ValueEnum)]
enum Store {
    Sqlite,
    Postgres,
    Redis,
}

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8700")]
    addr: std::net::SocketAddr,
    #[arg(long, value_enum)]
    store: Store,
    /// sqlite:... / postgres://... / redis://...
    #[arg(long)]
    database_url: String,
}

type Reply = Result<String, (axum::http::StatusCode, String)>;

fn err(e: impl std::fmt::Display) -> (axum::http::StatusCode, String) {
    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn plain() -> &'static str {
    "ok"
}

async fn save(session: Session) -> Reply {
    session.insert("id", 1).await.map_err(err)?;
    session.insert("name", "root").await.map_err(err)?;
    session.insert("password", "rootpass").await.map_err(err)?;
    Ok("Session Data Saved".into())
}

async fn access(session: Session) -> Reply {
    let mut out = String::new();
    for (label, key) in [("Id", "id"), ("Name", "name"), ("Password", "password")] {
        if let Some(v) = session.get::<serde_json::Value>(key).await.map_err(err)? {
            let shown = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            out.push_str(&format!("{label} : {shown} <br>"));
        }
    }
    Ok(if out.is_empty() { "No session data".into() } else { out })
}

async fn counter(session: Session) -> Reply {
    // The usual read-then-write: tower-sessions has no atomic form.
    let n: i64 = session.get("count").await.map_err(err)?.unwrap_or(0) + 1;
    session.insert("count", n).await.map_err(err)?;
    Ok(n.to_string())
}

fn routes() -> Router {
    Router::new()
        .route("/plain/", get(plain))
        .route("/save-session-data/", get(save))
        .route("/access-session-data/", get(access))
        .route("/counter/", get(counter))
}

/// The same allocator in both benchmark servers (see the README's benchmarks section).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let expiry = Expiry::OnInactivity(time::Duration::seconds(1_209_600));
    let app = match args.store {
        Store::Sqlite => {
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&args.database_url)?
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
            let pool = sqlx::SqlitePool::connect_with(opts).await?;
            let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
            store.migrate().await?;
            routes().layer(SessionManagerLayer::new(store).with_secure(false).with_expiry(expiry))
        }
        Store::Postgres => {
            let pool = sqlx::PgPool::connect(&args.database_url).await?;
            let store = tower_sessions_sqlx_store::PostgresStore::new(pool);
            store.migrate().await?;
            routes().layer(SessionManagerLayer::new(store).with_secure(false).with_expiry(expiry))
        }
        Store::Redis => {
            use tower_sessions_redis_store::fred::prelude::*;
            let config = Config::from_url(&args.database_url)?;
            let pool = Pool::new(config, None, None, None, 6)?;
            pool.connect();
            pool.wait_for_connect().await?;
            let store = tower_sessions_redis_store::RedisStore::new(pool);
            routes().layer(SessionManagerLayer::new(store).with_secure(false).with_expiry(expiry))
        }
    };
    let listener = tokio::net::TcpListener::bind(args.addr).await?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}
