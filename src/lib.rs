//! Sesame's Leptos app: the Django sessions tutorial, server-rendered with interactive islands,
//! on the Sesame session engine.
//!
//! The server build (`ssr`) renders every page and runs the server functions; the browser build
//! (`hydrate`) contains only the `#[island]` components, so pages work without JavaScript and
//! the wasm stays small.

pub mod app;
pub mod error;
pub mod model;
pub mod pages;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod server;

/// Entry point of the wasm bundle: hydrate the islands (and nothing else).
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // Panic messages in the console in debug builds; release builds leave the formatting out.
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
