//! The pipeline's stages. Each owns its decision (pure, unit-tested) and nothing else;
//! [`crate::runtime`] does the consuming, publishing and acking.
//!
//! - [`dedup`]: `herald.calls.>` -> `herald.signals.<chain>` (tokens with new callers)
//! - [`fanout`]: `herald.signals.>` -> `herald.out.notify.<chat>` (per-user filters)
//! - [`updates`]: `herald.updates.>` -> calls (channel posts) and command replies

pub mod dedup;
pub mod fanout;
pub mod token_state;
pub mod updates;
