//! The axum application: Leptos pages and server functions, the plain-POST login, static
//! files, CSRF protection, and the session layer around all of it.

use axum::{
    extract::{Form, Request},
    http::{header, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Router,
};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use serde::Deserialize;
use sesame::{Session, Sessions};

use crate::app::{shell, App};

/// Tutorial URLs, which end in a slash; the slash-less forms redirect (Django's `APPEND_SLASH`).
const SLASHED: &[&str] = &[
    "/test-session/",
    "/test-delete/",
    "/save-session-data/",
    "/access-session-data/",
    "/delete-session-data/",
    "/expiry/",
    "/lousy-login/",
    "/lousy-secret/",
    "/lousy-logout/",
];

/// Build the whole application. `SessionLayer` is the outermost layer, so every route — pages,
/// server functions, the CSRF check, even 404s — sees the session.
pub fn build(leptos_options: LeptosOptions, sessions: &Sessions) -> Router {
    let routes = generate_route_list(App);
    let mut router: Router<LeptosOptions> = Router::new()
        .leptos_routes(&leptos_options, routes, {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        // The login also accepts a plain form POST at its own URL, as the Django view does.
        .route("/lousy-login/", post(plain_login));
    for path in SLASHED {
        let target = *path;
        router = router.route(path.trim_end_matches('/'), get(move || async move { Redirect::permanent(target) }));
    }
    router
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(leptos_options)
        .layer(middleware::from_fn(login_required))
        .layer(middleware::from_fn(super::csrf::protect))
        .layer(sessions.layer())
}

/// `GET /lousy-secret/` is for logged-in visitors: anyone else is sent to the login page before
/// anything renders, as Django's `login_required` does. The page also redirects by itself, but
/// a redirect issued from inside the render once reached the browser as a 302 without its
/// `Location` header (seen under CPU load in the end-to-end tests, leptos_axum 0.8), leaving
/// the visitor on the page; a response made here cannot lose it.
async fn login_required(req: Request, next: Next) -> Response {
    if req.method() == Method::GET && req.uri().path() == "/lousy-secret/" {
        if let Some(session) = req.extensions().get::<Session>().cloned() {
            let user = session.get::<String>(crate::pages::login::USER_KEY).await.ok().flatten();
            if user.is_none() {
                let headers = [(header::LOCATION, "/lousy-login/"), (header::CACHE_CONTROL, super::NO_STORE)];
                return (StatusCode::FOUND, headers).into_response();
            }
        }
    }
    next.run(req).await
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /lousy-login/` without JavaScript or Leptos: check, then 302 like the Django view.
async fn plain_login(session: Session, Form(form): Form<LoginForm>) -> Response {
    match crate::pages::login::log_in(&session, &form.username, &form.password).await {
        Ok(ok) => {
            let to = if ok { "/lousy-secret/" } else { "/lousy-login/" };
            (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side.").into_response(),
    }
}
