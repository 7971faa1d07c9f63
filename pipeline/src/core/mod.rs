//! The core every product shares: the [`router`] (one stage that hands each update to
//! one product after the locked, admin and [`limits`] checks), the core's own
//! [`commands`], [`reply`]s, the operators' [`desk`] (`/admin stats|status`), [`kv_json`] (a KV record changed by compare-and-set), the [`product`] trait, the [`ledger`] every product that
//! moves money writes through, and its [`metrics`]. `crate::app::compose` builds a
//! deployment from the registry on top of it; nothing here imports a product.

pub mod broadcast;
pub mod commands;
pub mod desk;
pub mod kv_json;
pub mod ledger;
pub mod limits;
pub mod metrics;
pub mod migrate;
pub mod product;
pub mod reply;
pub mod router;
