//! Herald's domain records, shared by the pipeline and the bot, on the generic runtime
//! (`herald_runtime`: stages, acks, dead letters, backoff, telemetry):
//! - [`users`]: the core user record in `herald_users`;
//! - [`sessions`]: which product a user is inside (`herald_sessions`);
//! - [`streams`]: the core streams (UPDATES, COMMANDS, OUTBOUND, DLQ), the core buckets
//!   and the bot's outbound consumers.
//!
//! ```no_run
//! # async fn demo(js: herald_runtime::Js) -> anyhow::Result<()> {
//! let users = js.get_key_value(herald_schemas::subjects::USERS_BUCKET).await?;
//! if let Some(user) = herald_core::users::load(&users, 42).await? {
//!     println!("user 42 is active: {}", user.0.active);
//! }
//! # Ok(()) }
//! ```

pub mod sessions;
pub mod streams;
pub mod users;
