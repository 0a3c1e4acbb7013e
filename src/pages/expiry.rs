//! Step 3, expiry: `set_expiry(N)`, `set_expiry(0)` (browser close), `set_expiry(None)` (the
//! global policy), and what `get_expiry_age`, `get_expiry_date` and
//! `get_expire_at_browser_close` then say. The cookie's `Max-Age`/`Expires` follow.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::model::SessionView;
use crate::pages::session_data::{panel_island, Panel, SessionAction};
use crate::ui::{hydrated_attr, CsrfField};

/// What the expiry page renders.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpiryData {
    /// A masked CSRF token for the forms.
    pub csrf: String,
    /// The session now.
    pub view: SessionView,
}

/// Load the page (creates the session's CSRF secret, so the session exists and has a cookie).
#[server(prefix = "/api", endpoint = "expiry_page")]
pub async fn expiry_page() -> Result<ExpiryData, AppError> {
    let session = crate::server::session().await?;
    let csrf = crate::server::csrf::token(&session).await?;
    Ok(ExpiryData { csrf, view: crate::server::snapshot(&session).await? })
}

/// `set_expiry` for [`session_action`](crate::pages::session_data::session_action)'s `expire_*` actions: `expire_seconds` (with `seconds`
/// between 1 and ten years), `expire_browser_close`, `expire_default`. Returns the note to show.
#[cfg(feature = "ssr")]
pub async fn change_expiry(session: &sesame::Session, action: &str, seconds: &str) -> Result<String, AppError> {
    use sesame::Expiry;
    let (expiry, note) = match action {
        "expire_seconds" => match seconds.trim().parse::<i64>() {
            Ok(n) if (1..=10 * 365 * 86_400).contains(&n) => {
                (Expiry::Seconds(n), format!("set_expiry({n}): the session ends after {n} seconds of inactivity."))
            }
            _ => return Err(AppError::BadInput("Give a number of seconds between 1 and 315360000.".into())),
        },
        "expire_browser_close" => {
            (Expiry::BrowserClose, "set_expiry(0): the session ends when the browser closes.".to_string())
        }
        _ => (Expiry::Default, "set_expiry(None): back to the global policy (SESSION_COOKIE_AGE).".to_string()),
    };
    session.set_expiry(expiry).await?;
    Ok(note)
}

/// `/expiry/`.
#[component]
pub fn ExpiryPage() -> impl IntoView {
    view! {
        <Title text="Session expiry"/>
        <h1>"Session expiry"</h1>
        <p>
            "By default a session lasts " <code>"SESSION_COOKIE_AGE"</code>
            " (two weeks) from its last save. " <code>"set_expiry"</code>
            " changes that for this session only; the " <code>"sessionid"</code>
            " cookie's " <code>"Max-Age"</code> " follows, and a browser-close session gets a "
            "cookie without one."
        </p>
        <Suspense>
            {Suspend::new(async move {
                match expiry_page().await {
                    Ok(data) => {
                        panel_island(data.csrf, &data.view, true).into_any()
                    }
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The expiry facts and the `set_expiry` controls: what the [`SessionPanel`] island shows on the
/// expiry page (one island type for both panels keeps the wasm smaller).
#[component]
pub fn ExpiryControls(
    csrf: String,
    panel: Panel,
    hydrated: ReadSignal<bool>,
    /// The island's data, written back into `data-props` for the browser.
    props: String,
) -> impl IntoView {
    let state = panel.state;
    view! {
        <section
            class="card island"
            id="session-panel"
            data-props=props
            data-testid="expiry-panel"
            data-hydrated=hydrated_attr(hydrated)
        >
            <h2>"This session"</h2>
            <div aria-live="polite" data-testid="panel-note">
                {panel.note_view()}
            </div>
            <div inner_html=move || state.with(SessionView::expiry_html)></div>
            <form method="post" action=SessionAction::url() on:submit=panel.submit()>
                <CsrfField token=csrf/>
                <div class="controls">
                    <label>
                        "Expire after "
                        <input
                            name="value"
                            type="number"
                            value="300"
                            class="narrow"
                            data-testid="seconds-input"
                        />
                        " seconds of inactivity "
                    </label>
                    <button type="submit" name="action" value="expire_seconds" class="button" data-testid="set-seconds">
                        "set_expiry(seconds)"
                    </button>
                </div>
                <div class="controls">
                    <button type="submit" name="action" value="expire_browser_close" class="button" data-testid="set-browser-close">
                        "set_expiry(0): at browser close"
                    </button>
                    <button type="submit" name="action" value="expire_default" class="button secondary" data-testid="set-default">
                        "set_expiry(None): default"
                    </button>
                </div>
            </form>
        </section>
    }
}
