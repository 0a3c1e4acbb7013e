//! Step 2, session data: the tutorial's save / access / delete views, and the [`SessionPanel`]
//! island that shows the decoded session and edits it through server functions.

use leptos::either::Either;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::model::{PanelResult, SessionView};
#[cfg(feature = "ssr")]
use crate::server::{bad_input_for_forms, panel_result};
use crate::ui::{hydrated_attr, island_props, use_hydrated, CsrfField, IslandProps};

/// The tutorial's three keys and their labels on `/access-session-data/`.
#[cfg(feature = "ssr")]
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

/// Every change the session panel and the expiry panel make, in one server function (one
/// function instead of one per button keeps the wasm smaller: each server function type brings
/// its own request, response and form decoding code to the browser).
///
/// `action`:
/// - `set`: `session[key] = value` (`value` parsed as JSON when it is valid JSON, else a string);
/// - `delete`: `del session[key]`;
/// - `nested_create`, `nested`, `nested_modified`: the tutorial's nested-dict case
///   (`session["prefs"] = {"clicks": 0}`; `session["prefs"]["clicks"] += 1` alone; the same
///   followed by `session.modified = True`);
/// - `expire_seconds` (`value` = seconds), `expire_browser_close`, `expire_default`:
///   `set_expiry(N)`, `set_expiry(0)`, `set_expiry(None)`.
#[server(prefix = "/api", endpoint = "session_action", output = crate::model::PanelText)]
pub async fn session_action(
    csrfmiddlewaretoken: String,
    action: String,
    #[server(default)] key: String,
    #[server(default)] value: String,
) -> Result<PanelResult, AppError> {
    let _ = csrfmiddlewaretoken; // checked by the CSRF middleware before we get here
    let session = crate::server::session().await?;
    let note = match action.as_str() {
        "set" => set_value(&session, &key, &value).await,
        "delete" => delete_value(&session, &key).await,
        "nested_create" | "nested" | "nested_modified" => nested(&session, &action).await,
        "expire_seconds" | "expire_browser_close" | "expire_default" => {
            crate::pages::expiry::change_expiry(&session, &action, &value).await
        }
        _ => Err(AppError::BadInput("Unknown action.".into())),
    };
    match note {
        Ok(note) => panel_result(&session, note).await,
        Err(e @ AppError::BadInput(_)) => Err(bad_input_for_forms(e).await),
        Err(e) => Err(e),
    }
}

#[cfg(feature = "ssr")]
async fn set_value(session: &sesame::Session, key: &str, value: &str) -> Result<String, AppError> {
    let key = check_key(key)?;
    let parsed = serde_json::from_str::<serde_json::Value>(value)
        .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
    let existed = session.contains_key(&key).await?;
    session.insert_value(&key, parsed.clone()).await?;
    let verb = if existed { "Changed" } else { "Added" };
    Ok(format!("{verb} “{key}” = {parsed}."))
}

#[cfg(feature = "ssr")]
async fn delete_value(session: &sesame::Session, key: &str) -> Result<String, AppError> {
    let key = check_key(key)?;
    Ok(match session.remove(&key).await? {
        Some(_) => format!("Deleted “{key}”."),
        None => format!("There was no “{key}” to delete."),
    })
}

#[cfg(feature = "ssr")]
async fn nested(session: &sesame::Session, step: &str) -> Result<String, AppError> {
    if step == "nested_create" {
        session.insert_value("prefs", serde_json::json!({ "clicks": 0 })).await?;
        return Ok("session[\"prefs\"] = {\"clicks\": 0}: assigning a key marks the session \
                   modified; saved."
            .to_string());
    }
    let Some(mut prefs) = session.get_value("prefs").await? else {
        return Err(AppError::BadInput("Create session[\"prefs\"] first.".into()));
    };
    let n = prefs.get("clicks").and_then(serde_json::Value::as_i64).unwrap_or(0) + 1;
    prefs["clicks"] = serde_json::Value::from(n);
    if step == "nested" {
        // Changing the nested value does not tell the session anything: like Django's
        // `session["prefs"]["clicks"] += 1`, the change is not saved.
        Ok(format!(
            "session[\"prefs\"][\"clicks\"] = {n} without marking the session modified: NOT \
             saved, the stored value is unchanged."
        ))
    } else {
        // Sesame's values are copies, so "marking modified" means storing the changed value
        // back; set_modified() is Django's `session.modified = True`.
        session.insert_value("prefs", prefs).await?;
        session.set_modified();
        Ok(format!("session[\"prefs\"][\"clicks\"] = {n}, then session.modified = True: saved."))
    }
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
                            {panel_island(data.csrf, &data.view, false)}
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

/// The state a session panel island shows, and how its forms submit.
///
/// Its forms are plain `<form method="post" action=SessionAction::url()>`: without JavaScript
/// they post and the server redirects back. Hydrated, [`Panel::submit`] does what `ActionForm`
/// would (read the form, including the clicked button's name and value, and call the server
/// function in place) with less wasm: no boxed children per form, no serde_qs decoding of the
/// form, no `Action`.
#[derive(Clone, Copy)]
pub struct Panel {
    /// The session as last reported by the server.
    pub state: RwSignal<SessionView>,
    /// The outcome of the last change: (ok, text).
    pub note: RwSignal<Option<(bool, String)>>,
}

impl Panel {
    /// A panel showing `initial`.
    pub fn new(initial: SessionView) -> Self {
        Panel { state: RwSignal::new(initial), note: RwSignal::new(None) }
    }

    /// The `on:submit` handler for the panel's forms.
    pub fn submit(self) -> impl Fn(leptos::ev::SubmitEvent) + Copy + 'static {
        move |ev| {
            ev.prevent_default();
            let Ok(form) = leptos::form::form_data_from_event(&ev) else {
                return;
            };
            let field = |name: &str| form.get(name).as_string().unwrap_or_default();
            let (csrf, action) = (field(crate::ui::CSRF_FIELD), field("action"));
            let (key, value) = (field("key"), field("value"));
            leptos::task::spawn_local(async move {
                match session_action(csrf, action, key, value).await {
                    Ok(r) => {
                        self.state.set(r.view);
                        self.note.set(Some((true, r.note)));
                    }
                    Err(e) => self.note.set(Some((false, e.to_string()))),
                }
            });
        }
    }

    /// The outcome line.
    pub fn note_view(self) -> impl IntoView {
        move || {
            self.note.get().map(|(ok, text)| {
                view! { <p class=if ok { "note ok" } else { "note bad" }>{text}</p> }
            })
        }
    }
}

/// The [`SessionPanel`] island with its data (server side).
pub fn panel_island(csrf: String, view: &SessionView, expiry: bool) -> impl IntoView {
    provide_context(IslandProps(format!("{csrf}\t{}\n{}", u8::from(expiry), view.encode())));
    view! { <SessionPanel/> }
}

/// Island: the session's decoded data with forms to add, change and delete keys, and the
/// nested-dict demonstration. Every form posts to the server function, so without JavaScript
/// the browser goes there and is redirected back to this page.
///
/// With `expiry`, it shows the expiry page's controls instead
/// ([`ExpiryControls`](crate::pages::expiry::ExpiryControls)).
#[island]
pub fn SessionPanel() -> impl IntoView {
    let hydrated = use_hydrated();
    // Its data, without island props (see `IslandProps`): `csrf \t expiry(0/1) \n view`.
    let props = island_props("session-panel");
    let (head, view_text) = props.split_once('\n').unwrap_or_default();
    let (csrf, expiry) = head.split_once('\t').unwrap_or_default();
    let (csrf, expiry) = (csrf.to_string(), expiry == "1");
    let panel = Panel::new(SessionView::decode(view_text).unwrap_or_default());
    if expiry {
        return Either::Left(view! {
            <crate::pages::expiry::ExpiryControls csrf panel hydrated props/>
        });
    }
    let state = panel.state;
    let submit = panel.submit();
    Either::Right(view! {
        <section
            class="card island"
            id="session-panel"
            data-props=props
            data-testid="session-panel"
            data-hydrated=hydrated_attr(hydrated)
        >
            <h2>"This session, decoded"</h2>
            <p class="muted">
                "What the server keeps under your " <code>"sessionid"</code>
                ". Keys starting with “_” are the framework's (expiry, CSRF secret, messages)."
            </p>
            <div aria-live="polite" data-testid="panel-note">
                {panel.note_view()}
            </div>
            <div inner_html=move || state.with(|s| s.table_html("panel-delete"))></div>
            // The table's delete buttons submit this (empty) form through their `form` attribute.
            <form id="panel-delete" method="post" action=SessionAction::url() on:submit=submit>
                <CsrfField token=csrf.clone()/>
                <input type="hidden" name="action" value="delete"/>
            </form>
            <div class="row">
                <h3>"Add or change a key"</h3>
                <form method="post" action=SessionAction::url() on:submit=submit>
                    <CsrfField token=csrf.clone()/>
                    <input type="hidden" name="action" value="set"/>
                    <label>
                        "key " <input name="key" required maxlength="64" data-testid="key-input"/>
                    </label>
                    <label>
                        "value " <input name="value" placeholder="\"text\", 42, {\"a\": 1}" data-testid="value-input"/>
                    </label>
                    <button type="submit" class="button" data-testid="set-button">
                        "Save key"
                    </button>
                </form>
            </div>
            <div class="row">
                <h3>"Nested values and " <code>"session.modified"</code></h3>
                <p class="muted">
                    "Changing a value inside a stored dict does not mark the session modified, so "
                    "the change is lost unless you mark it (Django: "
                    <code>"request.session.modified = True"</code> ")."
                </p>
                <form method="post" action=SessionAction::url() on:submit=submit>
                    <CsrfField token=csrf.clone()/>
                    <button type="submit" name="action" value="nested_create" class="button small" data-testid="nested-create">
                        "session[\"prefs\"] = {\"clicks\": 0}"
                    </button>
                    <button type="submit" name="action" value="nested" class="button small" data-testid="nested-change">
                        "prefs[\"clicks\"] += 1"
                    </button>
                    <button type="submit" name="action" value="nested_modified" class="button small" data-testid="nested-change-modified">
                        "prefs[\"clicks\"] += 1, then modified = True"
                    </button>
                </form>
            </div>
            <div class="row">
                <h3>"Expiry"</h3>
                <div inner_html=move || state.with(SessionView::expiry_html)></div>
                <p class="muted">"Change it on the " <a href="/expiry/">"expiry page"</a> "."</p>
            </div>
        </section>
    })
}
