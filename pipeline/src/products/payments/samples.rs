//! A valid input for each payments stage: the compliance harness feeds these.

use herald_schemas::{encode, subjects, Deposit, DepositStage, WithdrawalOutcome, WithdrawalStage};

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

/// The ledger hold the withdrawal sample settles (seeded by `seed_samples`).
pub const WITHDRAWAL_HOLD: &str = "withdraw:sample";

/// Where [`withdrawal_final`] is published.
pub fn withdrawal_subject() -> String {
    subjects::withdrawal_outcome(WithdrawalStage::Final, "bsc")
}

/// A final withdrawal of user 1 (withdrawal_outcomes' input: its apply step settles the
/// hold once).
pub fn withdrawal_final() -> Vec<u8> {
    encode(&WithdrawalOutcome {
        v: 1,
        id: "wd-1-sample".into(),
        user_id: 1,
        chain: "bsc".into(),
        hold: WITHDRAWAL_HOLD.into(),
        stage: WithdrawalStage::Final,
        tx_hash: Some(format!("0x{}", "33".repeat(32))),
        nonce: Some(0),
        reason: None,
        ts_ms: 1,
    })
}

/// Where [`gateway_finished`] is published.
pub fn gateway_subject() -> String {
    subjects::gateway_payment("nowpayments", 1)
}

/// A finished NOWPayments payment of 15 USD by user 1 (gateway_payments' input: its
/// apply step credits it once).
pub fn gateway_finished() -> Vec<u8> {
    encode(&herald_schemas::GatewayPayment {
        v: 1,
        gateway: "nowpayments".into(),
        payment_id: "5077125051".into(),
        status: "finished".into(),
        order_id: "np-1-1".into(),
        user_id: 1,
        price_usd: "15000000000000000000".into(),
        actually_paid: Some("15".into()),
        pay_currency: Some("usdtbsc".into()),
        received_ms: 1,
    })
}
