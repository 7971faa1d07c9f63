//! Sample inputs of the lottery's stage for the compliance harness.

use crate::core::product::sample_command;

/// `/buy 1` from user 1 (the inbox's apply step: a purchase, or a refusal when the
/// user cannot pay or no round is on sale).
pub fn routed_buy() -> Vec<u8> {
    sample_command("/buy 1")
}
