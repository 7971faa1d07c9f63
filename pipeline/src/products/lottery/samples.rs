//! Sample inputs of the lottery's stage for the compliance harness.

use crate::core::product::sample_command;

/// `/buy 1` from user 1 (the inbox's apply step: a purchase, or a refusal when the
/// user cannot pay or no round is on sale).
pub fn routed_buy() -> Vec<u8> {
    sample_command("/buy 1")
}

/// User 1's standing order of 2 tickets in round 1 (seeded by `seed_samples`).
pub fn standing_order() -> super::orders::Order {
    super::orders::Order {
        user_id: 1,
        chat_id: 1,
        update_id: 777,
        count: 2,
        round: 1,
        expires_ms: u64::MAX,
    }
}

/// A deposit of 10 USD credited to user 1 (lottery_orders' input: it completes or lets
/// lapse user 1's [`standing_order`]).
pub fn deposit_credit() -> Vec<u8> {
    herald_schemas::encode(&herald_schemas::LedgerEntry {
        v: 1,
        user_id: 1,
        kind: herald_schemas::LedgerKind::Credit,
        amount: "10000000000000000000".into(),
        balance: "10000000000000000000".into(),
        held: "0".into(),
        hold: None,
        reference: "deposit:sample-order:0".into(),
        note: "sample deposit".into(),
        ts_ms: 1,
    })
}
