//! A valid input for each payments stage: the compliance harness feeds these.

use herald_schemas::{encode, subjects, Deposit, DepositStage};

fn deposit_event() -> Deposit {
    Deposit {
        v: 1,
        stage: DepositStage::Final,
        chain: "bsc".into(),
        token: "0xe9e7cea3dedca5984780bafc599bd69add087d56".into(),
        from: "0x0000000000000000000000000000000000000001".into(),
        to: "0x0000000000000000000000000000000000000002".into(),
        user_id: 1,
        value: "1000000000000000000".into(),
        block_number: 1,
        block_hash: format!("0x{}", "11".repeat(32)),
        tx_hash: format!("0x{}", "22".repeat(32)),
        log_index: 0,
        ts_ms: 1,
    }
}

/// Where [`deposit`] is published.
pub fn deposit_subject() -> String {
    subjects::deposit(DepositStage::Final, "bsc")
}

/// A final deposit of 1 BUSD (credit's input: its apply step credits it once).
pub fn deposit() -> Vec<u8> {
    encode(&deposit_event())
}

/// `/deposit` from user 1, routed (payments_inbox's input: its apply step assigns the
/// user's address once).
pub fn routed_deposit() -> Vec<u8> {
    crate::core::product::sample_command("/deposit")
}
