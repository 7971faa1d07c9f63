//! The products, and the registry that composes them. A product is one folder here
//! (`products/<name>/mod.rs` with a `REGISTRATION`); adding one is that folder and its
//! name in the one [`registry!`] line below.

use crate::core::product::Registration;

/// Declares each product's module and lists its [`Registration`] in [`REGISTRY`].
/// An entry may carry attributes (`#[cfg(feature = "...")]`), which apply to its
/// module and its registration alike.
macro_rules! registry {
    ($($(#[$attr:meta])* $product:ident),* $(,)?) => {
        $($(#[$attr])* pub mod $product;)*

        /// Every product this build has, in routing order (`/help` lists them so too).
        pub const REGISTRY: &[Registration] = &[$($(#[$attr])* $product::REGISTRATION),*];
    };
}

registry!(
    signals,
    payments,
    chat,
    lottery,
    trivia,
    #[cfg(feature = "example-product")]
    hello
);
