//! The Django sessions tutorial as a plain axum app on the Sesame engine, no Leptos.
//!
//! ```sh
//! cargo run -p sesame --example tutorial -- --addr 127.0.0.1:8000
//! curl -c jar -b jar http://127.0.0.1:8000/save-session-data/
//! curl -c jar -b jar http://127.0.0.1:8000/access-session-data/
//! ```
//! Settings come from `Leptos.toml` `[sessions]` and the environment (`DATABASE_URL`,
//! `SECRET_KEY`, ...), as for the Leptos app. It is also what the benchmarks run against.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use clap::Parser;
use serde_json::Value;
use sesame::{Session, Sessions, Settings};

#[derive(Parser)]
#[command(about = "The Django sessions tutorial served by Sesame")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: std::net::SocketAddr,
}

/// A session error as a response: logged, never shown in detail.
struct Failed(sesame::Error);

impl From<sesame::Error> for Failed {
    fn from(e: sesame::Error) -> Self {
        Failed(e)
    }
}

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        match self.0 {
            sesame::Error::Interrupted => (StatusCode::BAD_REQUEST, "session was deleted meanwhile").into_response(),
            e => {
                tracing::error!(error = %e, source = ?std::error::Error::source(&e), "session error");
                (StatusCode::SERVICE_UNAVAILABLE, "session store unavailable").into_response()
            }
        }
    }
}

type Reply = Result<String, Failed>;

async fn plain() -> &'static str {
    "ok"
}

async fn test_session(session: Session) -> Reply {
    session.set_test_cookie().await?;
    Ok("Testing session cookie".into())
}

async fn test_delete(session: Session) -> Reply {
    if session.test_cookie_worked().await? {
        session.delete_test_cookie().await?;
        Ok("Cookie test passed".into())
    } else {
        Ok("Cookie test failed".into())
    }
}

async fn save_session_data(session: Session) -> Reply {
    session.insert("id", 1).await?;
    session.insert("name", "root").await?;
    session.insert("password", "rootpass").await?;
    Ok("Session Data Saved".into())
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn access_session_data(session: Session) -> Reply {
    let mut response = String::new();
    for (label, key) in [("Id", "id"), ("Name", "name"), ("Password", "password")] {
        if let Some(v) = session.get_value(key).await? {
            response.push_str(&format!("{label} : {} <br>", show(&v)));
        }
    }
    Ok(if response.is_empty() { "No session data".into() } else { response })
}

async fn delete_session_data(session: Session) -> Reply {
    for key in ["id", "name", "password"] {
        session.remove(key).await?;
    }
    Ok("Session Data cleared".into())
}

async fn counter(session: Session) -> Reply {
    // modify() commits at once and retries on a concurrent save: exact under concurrency.
    let n = session
        .modify(|data| {
            let n = data.get("count").and_then(Value::as_i64).unwrap_or(0) + 1;
            data.insert("count".into(), n.into());
            n
        })
        .await?;
    Ok(n.to_string())
}

async fn health(State(sessions): State<Sessions>) -> &'static str {
    let _ = sessions.settings();
    "ok"
}

/// The same allocator in both benchmark servers (see the README's benchmarks section).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let settings = Settings::load()?;
    settings.log_secret_source();
    let sweep = settings.session_clear_expired_interval;
    let sessions = Sessions::connect(settings).await?;
    if let Some(secs) = sweep {
        sessions.spawn_sweeper(std::time::Duration::from_secs(secs));
    }
    let app = Router::new()
        .route("/plain/", get(plain))
        .route("/test-session/", get(test_session))
        .route("/test-delete/", get(test_delete))
        .route("/save-session-data/", get(save_session_data))
        .route("/access-session-data/", get(access_session_data))
        .route("/delete-session-data/", get(delete_session_data))
        .route("/counter/", get(counter))
        .route("/health/", get(health))
        .with_state(sessions.clone())
        .layer(sessions.layer());
    let listener = tokio::net::TcpListener::bind(args.addr).await?.tap_io(|tcp| {
        // Without TCP_NODELAY small responses wait ~40 ms for the peer's delayed ACK.
        let _ = tcp.set_nodelay(true);
    });
    tracing::info!(addr = %args.addr, "serving the sessions tutorial");
    axum::serve(listener, app).await?;
    Ok(())
}
