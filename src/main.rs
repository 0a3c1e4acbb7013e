//! The Sesame app server: settings → session store → router wrapped in the session layer →
//! serve. Build and run it through cargo-leptos (`cargo leptos serve`), which also builds the
//! wasm and tells the binary where the site files are.

use anyhow::Context;
use axum::serve::ListenerExt;
use leptos::config::get_configuration;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();

    let conf = get_configuration(None).context("reading the Leptos configuration")?;
    let leptos_options = conf.leptos_options;
    let addr = leptos_options.site_addr;

    let settings = sesame::Settings::load().context("reading the [sessions] settings (Leptos.toml and environment)")?;
    settings.log_secret_source();
    let sessions = sesame::Sessions::connect(settings).await.context("opening the session store")?;

    let app = sesame_app::server::router::build(leptos_options, &sessions);

    // TCP_NODELAY: without it each streamed response stalls on Nagle's algorithm (~40 ms).
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::trace!(error = %e, "could not set TCP_NODELAY");
            }
        });
    tracing::info!("listening on http://{addr}");
    axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
