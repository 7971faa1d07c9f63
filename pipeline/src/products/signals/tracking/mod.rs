//! Tracked calls and multiplier alerts.
//!
//! Every token a user is notified about becomes a tracked call (fan-out publishes one
//! [`herald_schemas::TrackedCalls`] event per signal on `herald.tracked.<chain>`). The
//! [`tracker`] keeps an in-memory index token -> tracked calls, built from the
//! [`store`] at start-up and updated incrementally, so a price update costs O(calls on
//! that token). When a price reaches a threshold multiple of a call's entry price, the
//! user gets one alert; the progress is stored after the alert is acknowledged, and the
//! alert's idempotency key keeps a redelivered or replayed price from alerting twice.

pub mod backend;
pub mod embedded;
pub mod scylla;
pub mod stats;
pub mod store;
pub mod tracker;
