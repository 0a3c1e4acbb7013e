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

/// `set_test_cookie()`.
#[server(prefix = "/api", endpoint = "set_test_cookie", input = GetUrl)]
pub async fn set_test_cookie() -> Result<(), AppError> {
    let session = crate::server::session().await?;
    session.set_test_cookie().await?;
    Ok(())
}

/// `test_cookie_worked()`, then `delete_test_cookie()` when it did.
#[server(prefix = "/api", endpoint = "check_test_cookie", input = GetUrl)]
pub async fn check_test_cookie() -> Result<bool, AppError> {
    let session = crate::server::session().await?;
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
                match set_test_cookie().await {
                    Ok(()) => {
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
                match check_test_cookie().await {
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
    let run = Action::new(|_: &()| async move {
        set_test_cookie().await?;
        check_test_cookie().await
    });
    let outcome = move || {
        run.value().get().map(|r| match r {
            Ok(true) => Outcome::Passed,
            Ok(false) => Outcome::Blocked,
            Err(_) => Outcome::Failed,
        })
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
                    run.dispatch(());
                }
            >
                <button type="submit" class="button" disabled=move || run.pending().get()>
                    {move || if run.pending().get() { "Testing…" } else { "Run cookie test" }}
                </button>
            </form>
            <div aria-live="polite" data-testid="cookie-test-result">
                {move || match outcome() {
                    None => ().into_any(),
                    Some(Outcome::Passed) => {
                        view! {
                            <p class="result ok">
                                "Cookie test passed: your browser keeps cookies."
                            </p>
                        }
                            .into_any()
                    }
                    Some(Outcome::Blocked) => {
                        view! {
                            <p class="result bad">
                                "Cookie test failed: your browser blocks cookies for this site."
                            </p>
                            <AllowCookiesHint/>
                        }
                            .into_any()
                    }
                    Some(Outcome::Failed) => {
                        view! {
                            <p class="result bad">
                                "The test could not run: the server did not answer. Try again."
                            </p>
                        }
                            .into_any()
                    }
                }}
            </div>
        </section>
    }
}
