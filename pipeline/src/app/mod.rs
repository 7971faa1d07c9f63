//! The top of the pipeline: [`compose`] builds a deployment from the products'
//! registry (`crate::products::REGISTRY`): the products `--products` names, their flags,
//! streams, buckets, operator commands and metrics, the router and their stages. Nothing
//! below imports it: products depend on the core, the core on the runtime.

pub mod compose;
