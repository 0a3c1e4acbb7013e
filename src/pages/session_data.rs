//! Step 2, session data: the tutorial's save / access / delete views, and the [`SessionPanel`]
//! island that shows the decoded session and edits it through server functions.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::model::{PanelResult, SessionView};
#[cfg(feature = "ssr")]
use crate::server::{bad_input_for_forms, panel_result};
use crate::ui::{hydrated_attr, use_hydrated, CsrfField, ExpiryFacts, SessionTable};

/// The tutorial's three keys and their labels on `/access-session-data/`.
const TUTORIAL_KEYS: [(&str, &str); 3] = [("id", "Id"), ("name", "Name"), ("password", "Password")];

/// `/save-session-data/`: `id` = 1, `name` = "root", `password` = "rootpass".
#[server(prefix = "/api", endpoint = "save_session_data")]
pub async fn save_session_data() -> Result<(), AppError> {
    let session = crate::server::session().await?;
    session.insert("id", 1).await?;
    session.insert("name", "root").await?;
    session.insert("password", "rootpass").await?;
    Ok(())
}

/// `/delete-session-data/`: remove the three keys.
#[server(prefix = "/api", endpoint = "delete_session_data")]
pub async fn delete_session_data() -> Result<(), AppError> {
    let session = crate::server::session().await?;
    for (key, _) in TUTORIAL_KEYS {
        session.remove(key).await?;
    }
    Ok(())
}

/// What `/access-session-data/` renders.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessData {
    /// The tutorial's lines (`Id : 1` ...), one per key present.
    pub lines: Vec<String>,
    /// A masked CSRF token for the panel's forms.
    pub csrf: String,
    /// The whole session.
    pub view: SessionView,
}

/// Read the tutorial's keys, and everything the panel shows.
#[server(prefix = "/api", endpoint = "access_session_data")]
pub async fn access_session_data() -> Result<AccessData, AppError> {
    let session = crate::server::session().await?;
    let mut lines = Vec::new();
    for (key, label) in TUTORIAL_KEYS {
        if let Some(value) = session.get_value(key).await? {
            let shown = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            lines.push(format!("{label} : {shown} "));
        }
    }
    let csrf = crate::server::csrf::token(&session).await?;
    Ok(AccessData { lines, csrf, view: crate::server::snapshot(&session).await? })
}

/// A key a visitor may set or delete.
#[cfg(feature = "ssr")]
fn check_key(key: &str) -> Result<String, AppError> {
    let key = key.trim();
    if key.is_empty() || key.len() > 64 {
        return Err(AppError::BadInput("A key needs 1 to 64 characters.".into()));
    }
    if key.starts_with('_') {
        return Err(AppError::BadInput(
            "Keys starting with “_” belong to the framework (expiry, CSRF, messages).".into(),
        ));
    }
    Ok(key.to_string())
}

/// `session[key] = value`; the value is parsed as JSON when it is valid JSON, else stored as a
/// string.
#[server(prefix = "/api", endpoint = "set_session_value")]
pub async fn set_session_value(
    csrfmiddlewaretoken: String,
    key: String,
    value: String,
) -> Result<PanelResult, AppError> {
    let _ = csrfmiddlewaretoken; // checked by the CSRF middleware before we get here
    let key = match check_key(&key) {
        Ok(k) => k,
        Err(e) => return Err(bad_input_for_forms(e).await),
    };
    let parsed = serde_json::from_str::<serde_json::Value>(&value)
        .unwrap_or_else(|_| serde_json::Value::String(value.clone()));
    let session = crate::server::session().await?;
    let existed = session.contains_key(&key).await?;
    session.insert_value(&key, parsed.clone()).await?;
    let verb = if existed { "Changed" } else { "Added" };
    panel_result(&session, format!("{verb} “{key}” = {parsed}.")).await
}

/// `del session[key]`.
#[server(prefix = "/api", endpoint = "delete_session_value")]
pub async fn delete_session_value(
    csrfmiddlewaretoken: String,
    key: String,
) -> Result<PanelResult, AppError> {
    let _ = csrfmiddlewaretoken;
    let key = match check_key(&key) {
        Ok(k) => k,
        Err(e) => return Err(bad_input_for_forms(e).await),
    };
    let session = crate::server::session().await?;
    let note = match session.remove(&key).await? {
        Some(_) => format!("Deleted “{key}”."),
        None => format!("There was no “{key}” to delete."),
    };
    panel_result(&session, note).await
}

/// The tutorial's nested-dict case. `step` is `create` (`session["prefs"] = {"clicks": 0}`),
/// `nested` (`session["prefs"]["clicks"] += 1` only), or `nested_modified` (the same, then
/// `session.modified = True`).
#[server(prefix = "/api", endpoint = "nested_demo")]
pub async fn nested_demo(csrfmiddlewaretoken: String, step: String) -> Result<PanelResult, AppError> {
    let _ = csrfmiddlewaretoken;
    let session = crate::server::session().await?;
    let clicks = |v: &serde_json::Value| v.get("clicks").and_then(serde_json::Value::as_i64).unwrap_or(0);
    let note = match step.as_str() {
        "create" => {
            session.insert_value("prefs", serde_json::json!({ "clicks": 0 })).await?;
            "session[\"prefs\"] = {\"clicks\": 0}: assigning a key marks the session modified; saved.".to_string()
        }
        "nested" | "nested_modified" => {
            let Some(mut prefs) = session.get_value("prefs").await? else {
                return Err(bad_input_for_forms(AppError::BadInput(
                    "Create session[\"prefs\"] first.".into(),
                ))
                .await);
            };
            let n = clicks(&prefs) + 1;
            prefs["clicks"] = serde_json::Value::from(n);
            if step == "nested" {
                // Changing the nested value does not tell the session anything: like Django's
                // `session["prefs"]["clicks"] += 1`, the change is not saved.
                format!(
                    "session[\"prefs\"][\"clicks\"] = {n} without marking the session modified: \
                     NOT saved, the stored value is unchanged."
                )
            } else {
                // Sesame's values are copies, so "marking modified" means storing the changed
                // value back; set_modified() is Django's `session.modified = True`.
                session.insert_value("prefs", prefs).await?;
                session.set_modified();
                format!(
                    "session[\"prefs\"][\"clicks\"] = {n}, then session.modified = True: saved."
                )
            }
        }
        _ => return Err(AppError::BadInput("Unknown step.".into())),
    };
    panel_result(&session, note).await
}

/// `/save-session-data/`.
#[component]
pub fn SaveSessionDataPage() -> impl IntoView {
    view! {
        <Title text="Save session data"/>
        <h1>"Save session data"</h1>
        <Suspense>
            {Suspend::new(async move {
                match save_session_data().await {
                    Ok(()) => {
                        view! {
                            <p class="tutorial-output" data-testid="output">
                                "Session Data Saved"
                            </p>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
        <p>
            "Stored " <code>"id = 1"</code> ", " <code>"name = \"root\""</code> " and "
            <code>"password = \"rootpass\""</code> ". Next: "
            <a href="/access-session-data/">"read them back"</a> "."
        </p>
    }
}

/// `/access-session-data/`: the tutorial's output, then the session panel.
#[component]
pub fn AccessSessionDataPage() -> impl IntoView {
    view! {
        <Title text="Access session data"/>
        <h1>"Access session data"</h1>
        <Suspense>
            {Suspend::new(async move {
                match access_session_data().await {
                    Ok(data) => {
                        let output = if data.lines.is_empty() {
                            view! {
                                <p class="tutorial-output" data-testid="output">
                                    "No session data"
                                </p>
                            }
                                .into_any()
                        } else {
                            view! {
                                <p class="tutorial-output" data-testid="output">
                                    {data
                                        .lines
                                        .into_iter()
                                        .map(|l| view! { {l} <br/> })
                                        .collect_view()}
                                </p>
                            }
                                .into_any()
                        };
                        view! {
                            {output}
                            <p class="muted">
                                <a href="/save-session-data/">"Save"</a> " · "
                                <a href="/delete-session-data/">"Delete"</a>
                            </p>
                            <SessionPanel csrf=data.csrf initial=data.view/>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// `/delete-session-data/`.
#[component]
pub fn DeleteSessionDataPage() -> impl IntoView {
    view! {
        <Title text="Delete session data"/>
        <h1>"Delete session data"</h1>
        <Suspense>
            {Suspend::new(async move {
                match delete_session_data().await {
                    Ok(()) => {
                        view! {
                            <p class="tutorial-output" data-testid="output">
                                "Session Data cleared"
                            </p>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
        <p>
            "Removed " <code>"id"</code> ", " <code>"name"</code> " and " <code>"password"</code>
            ". " <a href="/access-session-data/">"Check"</a> "."
        </p>
    }
}

/// Island: the session's decoded data with forms to add, change and delete keys, and the
/// nested-dict demonstration. Every form is an `ActionForm`, so without JavaScript it posts to
/// the server function and the browser comes back to this page.
#[island]
pub fn SessionPanel(csrf: String, initial: SessionView) -> impl IntoView {
    let hydrated = use_hydrated();
    let (state, set_state) = signal(initial);
    let (note, set_note) = signal(None::<Result<String, String>>);
    let set_value = ServerAction::<SetSessionValue>::new();
    let delete_value = ServerAction::<DeleteSessionValue>::new();
    let nested = ServerAction::<NestedDemo>::new();

    let apply = move |r: Option<Result<PanelResult, AppError>>| match r {
        Some(Ok(r)) => {
            set_state.set(r.view);
            set_note.set(Some(Ok(r.note)));
        }
        Some(Err(e)) => set_note.set(Some(Err(e.to_string()))),
        None => {}
    };
    Effect::new(move |_| apply(set_value.value().get()));
    Effect::new(move |_| apply(delete_value.value().get()));
    Effect::new(move |_| apply(nested.value().get()));

    let token = StoredValue::new(csrf);
    view! {
        <section class="card island" data-testid="session-panel" data-hydrated=hydrated_attr(hydrated)>
            <h2>"This session, decoded"</h2>
            <p class="muted">
                "What the server keeps under your " <code>"sessionid"</code>
                ". Keys starting with “_” are the framework's (expiry, CSRF secret, messages)."
            </p>
            <div aria-live="polite" data-testid="panel-note">
                {move || {
                    note.get()
                        .map(|n| match n {
                            Ok(text) => view! { <p class="note ok">{text}</p> }.into_any(),
                            Err(text) => view! { <p class="note bad">{text}</p> }.into_any(),
                        })
                }}
            </div>
            {move || view! { <SessionTable view=state.get()/> }}
            <div class="row">
                <h3>"Add or change a key"</h3>
                <ActionForm action=set_value>
                    <CsrfField token=token.get_value()/>
                    <label>
                        "key " <input name="key" required maxlength="64" data-testid="key-input"/>
                    </label>
                    <label>
                        "value " <input name="value" placeholder="\"text\", 42, {\"a\": 1}" data-testid="value-input"/>
                    </label>
                    <button type="submit" class="button" data-testid="set-button">
                        "Save key"
                    </button>
                </ActionForm>
            </div>
            <div class="row">
                <h3>"Delete a key"</h3>
                {move || {
                    let keys: Vec<String> = state
                        .get()
                        .visible_items()
                        .map(|i| i.key.clone())
                        .collect();
                    if keys.is_empty() {
                        view! { <p class="muted">"No keys to delete."</p> }.into_any()
                    } else {
                        keys.into_iter()
                            .map(|k| {
                                view! {
                                    <ActionForm action=delete_value>
                                        <CsrfField token=token.get_value()/>
                                        <input type="hidden" name="key" value=k.clone()/>
                                        <button
                                            type="submit"
                                            class="button small danger"
                                            data-testid=format!("delete-{k}")
                                        >
                                            "Delete “"
                                            {k.clone()}
                                            "”"
                                        </button>
                                    </ActionForm>
                                }
                            })
                            .collect_view()
                            .into_any()
                    }
                }}
            </div>
            <div class="row">
                <h3>"Nested values and " <code>"session.modified"</code></h3>
                <p class="muted">
                    "Changing a value inside a stored dict does not mark the session modified, so "
                    "the change is lost unless you mark it (Django: "
                    <code>"request.session.modified = True"</code> ")."
                </p>
                <ActionForm action=nested>
                    <CsrfField token=token.get_value()/>
                    <button type="submit" name="step" value="create" class="button small" data-testid="nested-create">
                        "session[\"prefs\"] = {\"clicks\": 0}"
                    </button>
                    <button type="submit" name="step" value="nested" class="button small" data-testid="nested-change">
                        "prefs[\"clicks\"] += 1"
                    </button>
                    <button type="submit" name="step" value="nested_modified" class="button small" data-testid="nested-change-modified">
                        "prefs[\"clicks\"] += 1, then modified = True"
                    </button>
                </ActionForm>
            </div>
            <div class="row">
                <h3>"Expiry"</h3>
                {move || view! { <ExpiryFacts view=state.get()/> }}
                <p class="muted">"Change it on the " <a href="/expiry/">"expiry page"</a> "."</p>
            </div>
        </section>
    }
}
