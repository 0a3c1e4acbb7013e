//! Step 3, expiry: `set_expiry(N)`, `set_expiry(0)` (browser close), `set_expiry(None)` (the
//! global policy), and what `get_expiry_age`, `get_expiry_date` and
//! `get_expire_at_browser_close` then say. The cookie's `Max-Age`/`Expires` follow.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::model::{PanelResult, SessionView};
use crate::ui::{hydrated_attr, use_hydrated, CsrfField, ExpiryFacts};

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

/// `set_expiry`: `mode` is `seconds` (with `seconds` > 0), `browser_close` or `default`.
#[server(prefix = "/api", endpoint = "change_expiry")]
pub async fn change_expiry(
    csrfmiddlewaretoken: String,
    mode: String,
    seconds: String,
) -> Result<PanelResult, AppError> {
    use sesame::Expiry;
    let _ = csrfmiddlewaretoken; // checked by the CSRF middleware
    let (expiry, note) = match mode.as_str() {
        "seconds" => match seconds.trim().parse::<i64>() {
            Ok(n) if (1..=10 * 365 * 86_400).contains(&n) => {
                (Expiry::Seconds(n), format!("set_expiry({n}): the session ends after {n} seconds of inactivity."))
            }
            _ => {
                return Err(crate::server::bad_input_for_forms(AppError::BadInput(
                    "Give a number of seconds between 1 and 315360000.".into(),
                ))
                .await)
            }
        },
        "browser_close" => {
            (Expiry::BrowserClose, "set_expiry(0): the session ends when the browser closes.".to_string())
        }
        "default" => (
            Expiry::Default,
            "set_expiry(None): back to the global policy (SESSION_COOKIE_AGE).".to_string(),
        ),
        _ => return Err(AppError::BadInput("Unknown expiry mode.".into())),
    };
    let session = crate::server::session().await?;
    session.set_expiry(expiry).await?;
    crate::server::panel_result(&session, note).await
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
                    Ok(data) => view! { <ExpiryPanel csrf=data.csrf initial=data.view/> }.into_any(),
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Island: the expiry facts and the `set_expiry` controls.
#[island]
pub fn ExpiryPanel(csrf: String, initial: SessionView) -> impl IntoView {
    let hydrated = use_hydrated();
    let (state, set_state) = signal(initial);
    let (note, set_note) = signal(None::<Result<String, String>>);
    let change = ServerAction::<ChangeExpiry>::new();
    Effect::new(move |_| match change.value().get() {
        Some(Ok(r)) => {
            set_state.set(r.view);
            set_note.set(Some(Ok(r.note)));
        }
        Some(Err(e)) => set_note.set(Some(Err(e.to_string()))),
        None => {}
    });
    view! {
        <section class="card island" data-testid="expiry-panel" data-hydrated=hydrated_attr(hydrated)>
            <h2>"This session"</h2>
            <div aria-live="polite" data-testid="panel-note">
                {move || {
                    note.get()
                        .map(|n| match n {
                            Ok(text) => view! { <p class="note ok">{text}</p> }.into_any(),
                            Err(text) => view! { <p class="note bad">{text}</p> }.into_any(),
                        })
                }}
            </div>
            {move || view! { <ExpiryFacts view=state.get()/> }}
            <ActionForm action=change>
                <CsrfField token=csrf/>
                <div class="controls">
                    <label>
                        "Expire after "
                        <input
                            name="seconds"
                            type="number"
                            min="1"
                            value="300"
                            class="narrow"
                            data-testid="seconds-input"
                        />
                        " seconds of inactivity "
                    </label>
                    <button type="submit" name="mode" value="seconds" class="button" data-testid="set-seconds">
                        "set_expiry(seconds)"
                    </button>
                </div>
                <div class="controls">
                    <button type="submit" name="mode" value="browser_close" class="button" data-testid="set-browser-close">
                        "set_expiry(0): at browser close"
                    </button>
                    <button type="submit" name="mode" value="default" class="button secondary" data-testid="set-default">
                        "set_expiry(None): default"
                    </button>
                </div>
            </ActionForm>
        </section>
    }
}
