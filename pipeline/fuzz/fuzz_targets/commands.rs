//! The router's update decoding and command split, and every registered product's
//! parsers of user input (`Product::check_parsers`: commands, arguments, callback
//! data, with each product's own invariants): never a panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use herald_pipeline::app::compose;
use herald_pipeline::core::product::Product;
use herald_pipeline::core::router::{referrer, split_command};
use libfuzzer_sys::fuzz_target;

/// The registry's products, built once.
fn products() -> &'static [Arc<dyn Product>] {
    static PRODUCTS: OnceLock<Vec<Arc<dyn Product>>> = OnceLock::new();
    PRODUCTS.get_or_init(compose::all_products)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(update) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(kind) = herald_schemas::telegram::update_kind(&update) {
            let _ = herald_schemas::telegram::update_sender(&update);
            let _ = kind;
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = split_command(text);
    let _ = referrer(text);
    for p in products() {
        p.check_parsers(text);
    }
});
