//! Herald's Telegram edge.
//!
//! - [`inbound`]: long polling (default) or a webhook verifying Telegram's secret-token
//!   header; every update is published raw on `herald.updates.<kind>.<sender>` with its
//!   `update_id` as message id, so a re-fetched update is dropped by the stream.
//! - [`outbound`]: consumes `herald.out.reply.>` and `herald.out.notify.>` and sends with
//!   teloxide under Telegram's limits ([`outbound::limits`]); acks only after Telegram
//!   accepted, and records each idempotency key so a redelivery never sends twice.

pub mod config;
pub mod inbound;
pub mod metrics;
pub mod outbound;
