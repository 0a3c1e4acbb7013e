//! Step 1, the cookie test: `/test-session/` sets Django's test cookie, `/test-delete/` checks
//! that the browser sent it back and deletes it. The [`CookieTest`] island runs both steps in
//! place, without a reload.
//!
//! Both server functions are GETs, like the tutorial's views: they only touch the `testcookie`
//! key, and a visitor whose browser blocks cookies has no session to hold a CSRF secret.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use leptos_meta::Title;

use crate::error::AppError;
use crate::ui::{hydrated_attr, use_hydrated};

/// One server function for both steps (one function keeps the wasm smaller):
/// `check = false` → `set_test_cookie()`, answers `true`;
/// `check = true` → `test_cookie_worked()`, then `delete_test_cookie()` when it did.
#[server(prefix = "/api", endpoint = "cookie_test", input = GetUrl, output = crate::model::PlainText)]
pub async fn cookie_test(check: bool) -> Result<bool, AppError> {
    let session = crate::server::session().await?;
    if !check {
        session.set_test_cookie().await?;
        return Ok(true);
    }
    let worked = session.test_cookie_worked().await?;
    if worked {
        session.delete_test_cookie().await?;
    }
    Ok(worked)
}

/// `/test-session/`: sets the test cookie while rendering (the route is async-rendered, so the
/// `Set-Cookie` is in the response head).
#[component]
pub fn TestSessionPage() -> impl IntoView {
    view! {
        <Title text="Test session cookie"/>
        <h1>"Cookie test"</h1>
        <Suspense>
            {Suspend::new(async move {
                match cookie_test(false).await {
                    Ok(_) => {
                        view! {
                            <p class="tutorial-output" data-testid="output">
                                "Testing session cookie"
                            </p>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
        <p>
            "This page stored " <code>"testcookie = \"worked\""</code>
            " in a new session. If your browser keeps cookies, it will send the "
            <code>"sessionid"</code> " cookie back on the next request: "
            <a href="/test-delete/" data-testid="check-link">
                "check it on /test-delete/"
            </a> "."
        </p>
        <CookieTest/>
    }
}

/// `/test-delete/`: "Cookie test passed" (and the test cookie is deleted) or "Cookie test failed".
#[component]
pub fn TestDeletePage() -> impl IntoView {
    view! {
        <Title text="Cookie test result"/>
        <h1>"Cookie test result"</h1>
        <Suspense>
            {Suspend::new(async move {
                match cookie_test(true).await {
                    Ok(true) => {
                        view! {
                            <p class="tutorial-output ok" data-testid="output">
                                "Cookie test passed"
                            </p>
                            <p>"The test cookie came back, and has been deleted."</p>
                        }
                            .into_any()
                    }
                    Ok(false) => {
                        view! {
                            <p class="tutorial-output bad" data-testid="output">
                                "Cookie test failed"
                            </p>
                            <p>
                                "No test cookie came back. Visit "
                                <a href="/test-session/">"/test-session/"</a>
                                " first; if this still fails, your browser blocks cookies."
                            </p>
                            <AllowCookiesHint/>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
        <p>
            <a href="/test-session/">"Run the test again"</a>
        </p>
    }
}

/// How to allow cookies, for the failure cases.
#[component]
fn AllowCookiesHint() -> impl IntoView {
    view! {
        <div class="hint" data-testid="allow-cookies-hint">
            <p>
                <strong>"To allow cookies for this site: "</strong>
                "in Chrome or Chromium, open Settings → Privacy and security → Site settings → "
                "Additional content settings → On-device site data, and allow this site; in "
                "Firefox, Settings → Privacy & Security → Cookies and Site Data → Manage "
                "Exceptions → Allow. Then reload this page."
            </p>
        </div>
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Blocked,
    Failed,
}

/// Island: set the test cookie, then check it, in place. Without JavaScript its form simply
/// goes to `/test-delete/`, which does the same check on the server.
#[island]
pub fn CookieTest() -> impl IntoView {
    let hydrated = use_hydrated();
    let (pending, set_pending) = signal(false);
    let (outcome, set_outcome) = signal(None::<Outcome>);
    // Two requests on purpose: the browser must carry the cookie from the first to the second.
    let run = move || {
        set_pending.set(true);
        leptos::task::spawn_local(async move {
            let result = match cookie_test(false).await {
                Ok(_) => cookie_test(true).await,
                Err(e) => Err(e),
            };
            set_outcome.set(Some(match result {
                Ok(true) => Outcome::Passed,
                Ok(false) => Outcome::Blocked,
                Err(_) => Outcome::Failed,
            }));
            set_pending.set(false);
        });
    };
    view! {
        <section class="card island" data-testid="cookie-test" data-hydrated=hydrated_attr(hydrated)>
            <h2>"Run the test here"</h2>
            <p class="muted">"Sets the test cookie and checks it, without leaving this page."</p>
            <form
                method="get"
                action="/test-delete/"
                on:submit=move |ev| {
                    ev.prevent_default();
                    run();
                }
            >
                <button type="submit" class="button" disabled=move || pending.get()>
                    {move || if pending.get() { "Testing…" } else { "Run cookie test" }}
                </button>
            </form>
            <div aria-live="polite" data-testid="cookie-test-result">
                {move || {
                    outcome
                        .get()
                        .map(|o| {
                            let (class, text) = match o {
                                Outcome::Passed => {
                                    ("result ok", "Cookie test passed: your browser keeps cookies.")
                                }
                                Outcome::Blocked => {
                                    (
                                        "result bad",
                                        "Cookie test failed: your browser blocks cookies for this site.",
                                    )
                                }
                                Outcome::Failed => {
                                    (
                                        "result bad",
                                        "The test could not run: the server did not answer. Try again.",
                                    )
                                }
                            };
                            view! {
                                <p class=class>{text}</p>
                                {(o == Outcome::Blocked).then(AllowCookiesHint)}
                            }
                        })
                }}
            </div>
        </section>
    }
}
