//! `sesame`: Django's `manage.py clearsessions` and a sessions API on the command line.
//!
//! Reads the same settings as the server (`Leptos.toml` `[sessions]` + environment, with
//! `DATABASE_URL` and `SECRET_KEY`) and works on whichever store they name. Full session keys
//! are printed only where asked for (`sessions get`, `sessions list --show-keys`): a key is a
//! bearer credential.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use sesame::{key, Sessions, Settings};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "sesame", version, about = "Manage Sesame (Django-compatible) sessions")]
struct Cli {
    /// Settings file with a [sessions] table (default: ./Leptos.toml, or $SESAME_SETTINGS).
    #[arg(long, global = true, value_name = "PATH")]
    settings: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Delete expired sessions (in batches; progress on stderr).
    Clearsessions,
    /// Inspect and manage sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// Show a session's decoded data, expire date and whether it has expired (JSON).
    Get {
        /// The session key.
        key: String,
    },
    /// List sessions: key, expire date, size.
    List {
        /// Only expired sessions.
        #[arg(long)]
        expired: bool,
        /// At most this many rows.
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// Print full keys (they are credentials: shortened by default).
        #[arg(long)]
        show_keys: bool,
    },
    /// Delete a session.
    Delete {
        /// The session key.
        key: String,
    },
    /// Count stored sessions (expired ones included).
    Count,
    /// Decode a raw session_data string (as Django's get_decoded()).
    Decode {
        /// The session_data value.
        data: String,
    },
}

/// A failure the user can act on: printed as one line, exit status 1.
#[derive(Debug)]
struct UserError(String);

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

fn fail(msg: impl Into<String>) -> anyhow::Error {
    UserError(msg.into()).into()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut line = format!("error: {e}");
            if e.downcast_ref::<UserError>().is_none() {
                for cause in e.chain().skip(1) {
                    line.push_str(&format!(": {cause}"));
                }
            }
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    if let Some(path) = cli.settings.as_ref().filter(|p| !p.exists()) {
        bail!(fail(format!("settings file {} does not exist", path.display())));
    }
    let settings = match &cli.settings {
        Some(path) => Settings::load_from(path, |n| std::env::var(n).ok()),
        None => Settings::load(),
    }
    .context("invalid settings")?;
    settings.log_secret_source();
    let database = settings.redacted_database_url();
    let sessions = Sessions::connect_existing(settings).await.map_err(|e| fail(describe_store_error(&e, &database)))?;
    let out = std::io::stdout();
    let mut out = out.lock();
    match cli.command {
        Command::Clearsessions => {
            let show_progress = std::io::stderr().is_terminal() || std::env::var_os("SESAME_PROGRESS").is_some();
            let progress = move |n: u64| {
                if show_progress && n > 0 {
                    eprint!("\rdeleted {n} expired sessions…");
                }
            };
            let started = std::time::Instant::now();
            let n = sessions
                .clear_expired_with_progress(&progress)
                .await
                .map_err(|e| fail(describe_store_error(&e, &database)))?;
            if show_progress && n > 0 {
                eprintln!();
            }
            writeln!(out, "Deleted {n} expired sessions in {:.2} s.", started.elapsed().as_secs_f64())?;
        }
        Command::Sessions(SessionsCommand::Get { key: k }) => {
            let Some(info) = sessions.get(&k).await.map_err(|e| fail(describe_store_error(&e, &database)))? else {
                bail!(fail(format!("no session with key {}", key::redact(&k))));
            };
            let data = info.data.map_err(|e| {
                fail(format!("session {} cannot be decoded: {e}; is SECRET_KEY the server's?", key::redact(&k)))
            })?;
            let doc = serde_json::json!({
                "session_key": info.key,
                "expire_date": info.expire_date.to_rfc3339(),
                "expired": info.expired,
                "data": data,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        Command::Sessions(SessionsCommand::List { expired, limit, show_keys }) => {
            let rows = sessions.list(expired, limit).await.map_err(|e| fail(describe_store_error(&e, &database)))?;
            writeln!(out, "{:<34} {:<27} {:>8}", "SESSION KEY", "EXPIRE DATE (UTC)", "SIZE")?;
            // A wrong SECRET_KEY shows as no listed row verifying; one row that verifies settles
            // it, so in the usual case this costs one extra read, not one per row.
            let mut any_verifies = false;
            for r in &rows {
                let shown = if show_keys { r.key.clone() } else { key::redact(&r.key) };
                writeln!(out, "{:<34} {:<27} {:>8}", shown, r.expire_date.format("%Y-%m-%d %H:%M:%S"), r.size)?;
                if !any_verifies {
                    // A row deleted meanwhile (None) or unreadable says nothing about the key.
                    any_verifies = !matches!(sessions.get(&r.key).await, Ok(Some(info)) if info.data.is_err());
                }
            }
            if !rows.is_empty() && !any_verifies {
                bail!(fail(format!(
                    "none of the {} sessions listed verify with SECRET_KEY or its fallbacks: is it the server's key?",
                    rows.len()
                )));
            }
        }
        Command::Sessions(SessionsCommand::Delete { key: k }) => {
            if !sessions.delete(&k).await.map_err(|e| fail(describe_store_error(&e, &database)))? {
                bail!(fail(format!("no session with key {}", key::redact(&k))));
            }
            writeln!(out, "Deleted session {}.", key::redact(&k))?;
        }
        Command::Sessions(SessionsCommand::Count) => {
            let n = sessions.count().await.map_err(|e| fail(describe_store_error(&e, &database)))?;
            writeln!(out, "{n}")?;
        }
        Command::Sessions(SessionsCommand::Decode { data }) => {
            let decoded = sessions.decode(data.trim()).map_err(|e| fail(format!("cannot decode: {e}")))?;
            writeln!(out, "{}", serde_json::to_string_pretty(&serde_json::Value::Object(decoded))?)?;
        }
    }
    Ok(())
}

/// One line a user can act on, for errors of the store.
fn describe_store_error(e: &sesame::Error, database: &str) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    if text.contains("no such table") {
        format!("{database} has no django_session table: is DATABASE_URL the server's database?")
    } else {
        format!("{text} (DATABASE_URL={database})")
    }
}
