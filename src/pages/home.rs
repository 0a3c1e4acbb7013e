//! The start page: the tutorial's steps.

use leptos::prelude::*;
use leptos_meta::Title;

/// `/`: what Sesame is and where each step of the tutorial lives.
#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text="Django sessions, in Rust"/>
        <section class="hero">
            <h1>"Django sessions, in Rust"</h1>
            <p class="lead">
                "Every step of the Django sessions tutorial, served by Leptos on the Sesame session "
                "engine. The data stays on the server (SQLite, in Django's own "
                <code>"django_session"</code> " format); the browser only holds the "
                <code>"sessionid"</code> " cookie. Every page works with JavaScript on or off."
            </p>
        </section>
        <ol class="steps">
            <li class="step">
                <h2>
                    <a href="/test-session/">"1. Cookie test"</a>
                </h2>
                <p>
                    <a href="/test-session/">
                        <code>"/test-session/"</code>
                    </a> " sets Django's test cookie, "
                    <a href="/test-delete/">
                        <code>"/test-delete/"</code>
                    </a>
                    " checks that it came back. An interactive panel runs the same test in place "
                    "and tells you if your browser blocks cookies."
                </p>
            </li>
            <li class="step">
                <h2>
                    <a href="/access-session-data/">"2. Session data"</a>
                </h2>
                <p>
                    <a href="/save-session-data/">
                        <code>"/save-session-data/"</code>
                    </a> ", "
                    <a href="/access-session-data/">
                        <code>"/access-session-data/"</code>
                    </a> " and "
                    <a href="/delete-session-data/">
                        <code>"/delete-session-data/"</code>
                    </a>
                    ", plus a panel to add, change and delete keys — including the nested-dict "
                    "gotcha that needs "
                    <code>"session.modified = True"</code> "."
                </p>
            </li>
            <li class="step">
                <h2>
                    <a href="/expiry/">"3. Expiry"</a>
                </h2>
                <p>
                    <code>"set_expiry"</code>
                    " in seconds, at browser close, or back to the default; see "
                    <code>"get_expiry_age"</code> ", " <code>"get_expiry_date"</code> " and "
                    <code>"get_expire_at_browser_close"</code> " change with the cookie."
                </p>
            </li>
            <li class="step">
                <h2>
                    <a href="/lousy-login/">"4. Lousy login"</a>
                </h2>
                <p>
                    "Log in as " <code>"root"</code> " / " <code>"pass"</code>
                    ": a flash message on failure, a new session key on success, a guarded "
                    "secret page, and a logout that flushes the session."
                </p>
            </li>
        </ol>
    }
}
