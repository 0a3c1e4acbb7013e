//! The HTML shell, the shared layout and the routes.
//!
//! Every route renders with `SsrMode::Async`: each page reads the session (flash messages at
//! least) and many write it (the test cookie, the CSRF token, the tutorial's data), and a write
//! made after the response head has gone out could not change `Set-Cookie` any more. Async mode
//! renders the whole page first and only then builds the response, so the session layer sees the
//! final state. The pages are small; the cost is time-to-first-byte, not throughput.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    path, SsrMode,
};

use crate::pages::{
    cookie_test::{TestDeletePage, TestSessionPage},
    expiry::ExpiryPage,
    home::HomePage,
    login::{LoginPage, LogoutPage, SecretPage},
    session_data::{AccessSessionDataPage, DeleteSessionDataPage, SaveSessionDataPage},
};
use crate::ui::MessageList;

/// The document around every page (server-only; the islands script loads the wasm when idle).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.ico"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The app: shared layout (the templates' `base.html`) and the tutorial's routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Stylesheet id="leptos" href="/pkg/sesame-app.css"/>
        // Each page sets its own <Title text=.../>, as the templates' {% block title %} did.
        <Title formatter=|title: String| {
            if title.is_empty() { "Sesame".to_string() } else { format!("{title} · Sesame") }
        }/>
        <Router>
            <header class="site-header">
                <div class="wrap">
                    <a class="brand" href="/">
                        <span class="brand-mark" aria-hidden="true">"◆"</span>
                        " Sesame"
                    </a>
                    <nav class="site-nav" aria-label="Tutorial steps">
                        <A href="/test-session/">"Cookie test"</A>
                        <A href="/access-session-data/">"Session data"</A>
                        <A href="/expiry/">"Expiry"</A>
                        <A href="/lousy-login/">"Lousy login"</A>
                    </nav>
                </div>
            </header>
            <main class="wrap content">
                <Flash/>
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=HomePage ssr=SsrMode::Async/>
                    <Route path=path!("/test-session/") view=TestSessionPage ssr=SsrMode::Async/>
                    <Route path=path!("/test-delete/") view=TestDeletePage ssr=SsrMode::Async/>
                    <Route
                        path=path!("/save-session-data/")
                        view=SaveSessionDataPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/access-session-data/")
                        view=AccessSessionDataPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/delete-session-data/")
                        view=DeleteSessionDataPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/expiry/") view=ExpiryPage ssr=SsrMode::Async/>
                    <Route path=path!("/lousy-login/") view=LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/lousy-secret/") view=SecretPage ssr=SsrMode::Async/>
                    <Route path=path!("/lousy-logout/") view=LogoutPage ssr=SsrMode::Async/>
                </Routes>
            </main>
            <footer class="site-footer">
                <div class="wrap">
                    "Sesame: Django's server-side sessions for Rust. The browser holds only the "
                    <code>"sessionid"</code>
                    " cookie; everything else stays on the server."
                </div>
            </footer>
        </Router>
    }
}

/// Flash messages left for this request (Django's messages, shown once).
#[component]
fn Flash() -> impl IntoView {
    view! {
        <Suspense>
            {Suspend::new(async move {
                let messages = take_messages().await.unwrap_or_default();
                view! { <MessageList messages/> }
            })}
        </Suspense>
    }
}

/// Read and consume the flash messages stored in the session.
#[server(prefix = "/api", endpoint = "take_messages")]
pub async fn take_messages() -> Result<Vec<crate::model::FlashMessage>, crate::error::AppError> {
    let session = crate::server::session().await?;
    crate::server::messages::take(&session).await
}

/// 404 page (also what `file_and_error_handler` renders for unknown paths).
#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found"/>
        <h1>"Page not found"</h1>
        <p>"There is no page at this address. " <a href="/">"Back to the start"</a> "."</p>
    }
}
