//! Herald's stream-processing pipeline: the [`core`], the [`products`] on it, and the
//! [`app`] that composes them (layers point one way: app -> products -> core ->
//! `herald_runtime`; [`ops`], the operator tools, sit beside the core).
//!
//! Every stage reads: consume subject -> decide -> (apply) -> publish subject -> commit
//! -> ack. The machinery for that (acks, retries, dead letters, backpressure) is the
//! shared runtime crate, `herald_runtime`; each stage here decides, and names the one
//! effect its outputs depend on as an idempotent apply step. The [`core::router`] hands
//! each Telegram update to one product; each product (its folder under [`products`])
//! owns its commands, stages, streams and buckets, and plugs in through
//! [`core::product::Product`] and one line of [`products::REGISTRY`].

pub mod app;
pub mod core;
pub mod ops;
pub mod products;
