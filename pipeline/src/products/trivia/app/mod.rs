//! The trivia Mini App: a page Telegram opens from a `web_app` button, and the API it
//! plays through, authenticated by Telegram's `initData` exchanged for a JWT.

pub mod auth;
pub mod http;
