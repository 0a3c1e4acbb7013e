//! One module per page of the tutorial: the page components, their islands and their server
//! functions together.

pub mod cookie_test;
pub mod expiry;
pub mod home;
pub mod login;
pub mod session_data;
