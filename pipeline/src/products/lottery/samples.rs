//! Sample inputs of the lottery's stage for the compliance harness.

use crate::core::product::sample_command;

/// `/lottery` from user 1.
pub fn routed_lottery() -> Vec<u8> {
    sample_command("/lottery")
}
