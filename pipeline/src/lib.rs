//! Herald's stream-processing pipeline: the [`core`] and the [`products`] on it.
//!
//! Every stage reads: consume subject -> decide -> publish subject -> commit -> ack. The
//! machinery for that (acks, retries, dead letters, backpressure) is the shared runtime
//! crate, `herald_runtime`; each stage here only decides. The [`core::router`] hands
//! each Telegram update to one product; each product (its folder under [`products`])
//! owns its commands, stages, streams and buckets, and plugs in through
//! [`core::product::Product`] and one line of [`products::REGISTRY`].

pub mod core;
pub mod ops;
pub mod products;
