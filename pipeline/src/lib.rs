//! Herald's stream-processing pipeline.
//!
//! Every stage reads: consume subject -> decide -> publish subject -> ack. The machinery
//! for acks, retries, dead-lettering and backpressure lives once in [`runtime`]; each
//! stage in [`stages`] only decides. Sources in [`sources`] turn the outside world
//! (websocket feeds, Telegram channel posts, Solana transactions) into [`CallEvent`]s.
//!
//! [`CallEvent`]: herald_schemas::CallEvent

pub mod config;
pub mod ops;
pub mod payments;
pub mod replica;
pub mod runtime;
pub mod setup;
pub mod sources;
pub mod stages;
pub mod telemetry;
pub mod testkit;
pub mod tracking;
pub mod users_store;
