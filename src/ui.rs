//! Small view pieces shared by several pages and islands.

use leptos::prelude::*;

use crate::model::{FlashMessage, SessionView};

/// Name of the form field that carries the CSRF token (Django's).
pub const CSRF_FIELD: &str = "csrfmiddlewaretoken";

/// A signal that turns `true` once the island it is used in has hydrated: an `Effect` only ever
/// runs in the browser. Tests wait for the `data-hydrated="true"` attribute it drives.
pub fn use_hydrated() -> ReadSignal<bool> {
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    hydrated
}

/// `Some("true")` once hydrated, for a `data-hydrated` attribute.
pub fn hydrated_attr(hydrated: ReadSignal<bool>) -> impl Fn() -> Option<&'static str> + Copy {
    move || hydrated.get().then_some("true")
}

/// The hidden CSRF input every state-changing form carries.
#[component]
pub fn CsrfField(token: String) -> impl IntoView {
    view! { <input type="hidden" name=CSRF_FIELD value=token/> }
}

/// Flash messages, Django's `{% for message in messages %}` block.
#[component]
pub fn MessageList(messages: Vec<FlashMessage>) -> impl IntoView {
    (!messages.is_empty()).then(|| {
        view! {
            <ul class="messages" role="status">
                {messages
                    .into_iter()
                    .map(|m| {
                        let class = format!("message {}", m.tag());
                        view! { <li class=class>{m.text}</li> }
                    })
                    .collect_view()}
            </ul>
        }
    })
}

/// The session's decoded data as a table.
#[component]
pub fn SessionTable(view: SessionView) -> impl IntoView {
    if view.items.is_empty() {
        return view! { <p class="muted" data-testid="session-empty">"The session is empty."</p> }
            .into_any();
    }
    view! {
        <table class="kv" data-testid="session-table">
            <thead>
                <tr>
                    <th>"key"</th>
                    <th>"value (JSON)"</th>
                </tr>
            </thead>
            <tbody>
                {view
                    .items
                    .into_iter()
                    .map(|i| {
                        let internal = i.key.starts_with('_');
                        let data_key = i.key.clone();
                        view! {
                            <tr class:internal=internal data-key=data_key>
                                <td>
                                    <code>{i.key}</code>
                                </td>
                                <td>
                                    <code>{i.json}</code>
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// Expiry facts: `get_expiry_age`, `get_expiry_date`, `get_expire_at_browser_close`.
#[component]
pub fn ExpiryFacts(view: SessionView) -> impl IntoView {
    view! {
        <dl class="facts" data-testid="expiry-facts">
            <dt>"get_expiry_age()"</dt>
            <dd data-testid="expiry-age">{view.expiry_age}" seconds"</dd>
            <dt>"get_expiry_date()"</dt>
            <dd data-testid="expiry-date">{view.expiry_date}</dd>
            <dt>"get_expire_at_browser_close()"</dt>
            <dd data-testid="browser-close">
                {if view.browser_close { "True" } else { "False" }}
            </dd>
            <dt>"_session_expiry"</dt>
            <dd data-testid="stored-expiry">
                {view.stored_expiry.unwrap_or_else(|| "(not set: global policy)".to_string())}
            </dd>
        </dl>
    }
}
