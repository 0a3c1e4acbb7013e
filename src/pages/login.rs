//! Step 4, the lousy login: `/lousy-login/` (username `root`, password `pass`), the guarded
//! `/lousy-secret/`, and `/lousy-logout/`, which flushes the session.
//!
//! The form is an `ActionForm` over [`lousy_login`] inside the [`LoginForm`] island: hydrated,
//! it calls the server function and follows its redirect; without JavaScript it is a plain POST
//! to the same function, answered with a 302. A wrong password leaves a flash message in the
//! session (Django's messages format) that the login page shows once.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::ui::{hydrated_attr, island_props, use_hydrated, CsrfField, IslandProps};

/// The session key that says who is logged in.
pub const USER_KEY: &str = "username";
/// The failure message, same text whether the user or the password was wrong.
pub const LOGIN_ERROR: &str = "Error wrong username/password";

/// Check the credentials; on success rotate the session key (against session fixation) and the
/// CSRF secret, as Django's `login()` does; on failure queue the error message.
#[cfg(feature = "ssr")]
pub async fn log_in(session: &sesame::Session, username: &str, password: &str) -> Result<bool, AppError> {
    use subtle::ConstantTimeEq;
    let ok: bool = (username.as_bytes().ct_eq(b"root") & password.as_bytes().ct_eq(b"pass")).into();
    if ok {
        session.cycle_key().await?;
        session.insert(USER_KEY, username).await?;
        crate::server::csrf::rotate(session).await?;
    } else {
        crate::server::messages::add(session, crate::server::messages::ERROR, LOGIN_ERROR).await?;
    }
    Ok(ok)
}

/// The login form's server function: redirects to the secret page or back to the login page.
#[server(prefix = "/api", endpoint = "lousy_login", output = crate::model::PlainText)]
pub async fn lousy_login(csrfmiddlewaretoken: String, username: String, password: String) -> Result<(), AppError> {
    let _ = csrfmiddlewaretoken; // checked by the CSRF middleware
    let session = crate::server::session().await?;
    if log_in(&session, &username, &password).await? {
        leptos_axum::redirect("/lousy-secret/");
    } else {
        leptos_axum::redirect("/lousy-login/");
    }
    Ok(())
}

/// What the login page needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginData {
    /// A masked CSRF token for the form.
    pub csrf: String,
    /// Who is logged in already, if anyone.
    pub user: Option<String>,
}

/// Load the login page.
#[server(prefix = "/api", endpoint = "login_page")]
pub async fn login_page() -> Result<LoginData, AppError> {
    let session = crate::server::session().await?;
    crate::server::no_store();
    Ok(LoginData {
        csrf: crate::server::csrf::token(&session).await?,
        user: session.get::<String>(USER_KEY).await.ok().flatten(),
    })
}

/// The secret page's guard: the user's name, or a redirect to the login page.
#[server(prefix = "/api", endpoint = "secret_page")]
pub async fn secret_page() -> Result<Option<String>, AppError> {
    let session = crate::server::session().await?;
    crate::server::no_store();
    let user = session.get::<String>(USER_KEY).await.ok().flatten();
    if user.is_none() {
        leptos_axum::redirect("/lousy-login/");
    }
    Ok(user)
}

/// Log out: `session.flush()`.
#[server(prefix = "/api", endpoint = "log_out")]
pub async fn log_out() -> Result<(), AppError> {
    let session = crate::server::session().await?;
    crate::server::no_store();
    // Load first: the layout reads the session (flash messages) concurrently in this render,
    // and a load still in flight when flush() runs would put the old data back afterwards
    // (reported to the engine; loading here makes flush wait for it).
    session.contains_key(USER_KEY).await?;
    session.flush().await?;
    Ok(())
}

/// `/lousy-login/`.
#[component]
pub fn LoginPage() -> impl IntoView {
    view! {
        <Title text="Lousy login"/>
        <h1>"Lousy login"</h1>
        <Suspense>
            {Suspend::new(async move {
                match login_page().await {
                    Ok(data) => {
                        view! {
                            {data
                                .user
                                .map(|u| {
                                    view! {
                                        <p class="note ok">
                                            "You are logged in as " <strong>{u}</strong> ". "
                                            <a href="/lousy-secret/">"Go to the secret page"</a>
                                            " or " <a href="/lousy-logout/">"log out"</a> "."
                                        </p>
                                    }
                                })}
                            {
                                provide_context(IslandProps(data.csrf));
                                view! { <LoginForm/> }
                            }
                        }
                            .into_any()
                    }
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
        <p class="muted">
            "Hint: " <code>"root"</code> " / " <code>"pass"</code>
            ". A successful login gives your browser a new " <code>"sessionid"</code>
            " (the old key is deleted), so a key someone planted before login is useless after."
        </p>
    }
}

/// `/lousy-secret/`: only for logged-in visitors; never cached.
#[component]
pub fn SecretPage() -> impl IntoView {
    view! {
        <Title text="Lousy secret"/>
        <Suspense>
            {Suspend::new(async move {
                match secret_page().await {
                    Ok(Some(user)) => {
                        view! {
                            <h1>"The lousy secret"</h1>
                            <p class="tutorial-output" data-testid="output">
                                {format!("Welcome {user}, you are logged in.")}
                            </p>
                            <p>
                                "This page is shown only to a session with a user in it. "
                                <a href="/lousy-logout/" class="button" data-testid="logout-link">
                                    "Log out"
                                </a>
                            </p>
                        }
                            .into_any()
                    }
                    Ok(None) => {
                        view! {
                            <p>
                                "You need to " <a href="/lousy-login/">"log in"</a> " first."
                            </p>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// `/lousy-logout/`.
#[component]
pub fn LogoutPage() -> impl IntoView {
    view! {
        <Title text="Logged out"/>
        <h1>"Logged out"</h1>
        <Suspense>
            {Suspend::new(async move {
                match log_out().await {
                    Ok(()) => {
                        view! {
                            <p class="tutorial-output" data-testid="output">
                                "You are logged out."
                            </p>
                            <p>
                                "The session was flushed: its data and its key are gone. "
                                <a href="/lousy-login/" data-testid="login-again">
                                    "Log in again"
                                </a>
                            </p>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Island: the login form.
#[island]
pub fn LoginForm() -> impl IntoView {
    let hydrated = use_hydrated();
    // The CSRF token, without island props (see `IslandProps`).
    let csrf = island_props("login-form");
    let props = csrf.clone();
    let login = ServerAction::<LousyLogin>::new();
    let pending = login.pending();
    view! {
        <section
            class="card island login"
            id="login-form"
            data-props=props
            data-testid="login-form"
            data-hydrated=hydrated_attr(hydrated)
        >
            <ActionForm action=login>
                <CsrfField token=csrf/>
                <label class="field">
                    <span>"Username"</span>
                    <input name="username" autocomplete="username" data-testid="username"/>
                </label>
                <label class="field">
                    <span>"Password"</span>
                    <input
                        type="password"
                        name="password"
                        autocomplete="current-password"
                        data-testid="password"
                    />
                </label>
                <button type="submit" class="button" disabled=move || pending.get() data-testid="login-button">
                    {move || if pending.get() { "Logging in…" } else { "Log in" }}
                </button>
            </ActionForm>
            // Outcomes arrive as a redirect (success) or a flash message on the reloaded page
            // (failure), with or without JavaScript; only a failed request is reported here.
            {move || {
                login
                    .value()
                    .get()
                    .is_some_and(|r| r.is_err())
                    .then(|| view! { <p class="note bad">"The request failed. Please try again."</p> })
            }}
        </section>
    }
}
