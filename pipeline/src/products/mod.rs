//! The products, and the registry that composes them. A product is one folder here
//! (`products/<name>/mod.rs` with a `REGISTRATION`); adding one is that folder and its
//! name in the one [`registry!`] line below.

use crate::core::product::Registration;

/// Declares each product's module and lists its [`Registration`] in [`REGISTRY`].
macro_rules! registry {
    ($($product:ident),* $(,)?) => {
        $(pub mod $product;)*

        /// Every product this build has, in routing order (`/help` lists them so too).
        pub const REGISTRY: &[Registration] = &[$($product::REGISTRATION),*];
    };
}

registry!(signals, payments, chat, lottery, trivia);
