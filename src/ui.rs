//! Small view pieces shared by several pages and islands.

use leptos::prelude::*;

use crate::model::FlashMessage;

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

/// Data for an island, passed without island props.
///
/// Island props travel as JSON and cost the browser serde_json's decoder (~15 KB of gzipped
/// wasm here). Our islands take none: the page provides their data as this context on the
/// server, the island writes it into a `data-props` attribute of its root element (`id`), and in
/// the browser it reads that attribute back before rendering. The text format is the island's
/// own, decoded by hand.
#[derive(Clone, Debug)]
pub struct IslandProps(pub String);

/// The data for the island whose root element has this `id`: from context on the server, from
/// the element's `data-props` attribute in the browser.
pub fn island_props(id: &str) -> String {
    #[cfg(feature = "hydrate")]
    {
        document().get_element_by_id(id).and_then(|el| el.get_attribute("data-props")).unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = id;
        use_context::<IslandProps>().map(|p| p.0).unwrap_or_default()
    }
}
