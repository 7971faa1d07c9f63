//! The core every product shares: the [`router`] (one stage that hands each update to
//! one product after the locked, admin and [`limits`] checks), the core's own
//! [`commands`], [`reply`]s, the [`product`] trait, the [`ledger`] every product that
//! moves money writes through, and [`compose`], which builds a deployment from the
//! registry.

pub mod commands;
pub mod compose;
pub mod ledger;
pub mod limits;
pub mod metrics;
pub mod migrate;
pub mod product;
pub mod reply;
pub mod router;
