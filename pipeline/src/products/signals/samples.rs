//! A valid input for each signals stage: the compliance harness feeds these.

use herald_schemas::{encode, CallEvent, CallSource, Caller, Chain, PriceUpdate, Recipient, Signal, TrackedCalls};

const TOKEN: &str = "SampLe1111111111111111111111111111111111pump";

/// A feed call (dedup's input).
pub fn call_event() -> CallEvent {
    CallEvent {
        v: 1,
        source_event_id: "sample-1".into(),
        chain: Chain::from("solana"),
        token: TOKEN.into(),
        symbol: Some("SMPL".into()),
        name: None,
        price_usd: Some(0.01),
        price_native: None,
        fdv_usd: Some(100_000.0),
        caller: Caller {
            id: "sample-caller".into(),
            name: Some("Sample caller".into()),
            source: CallSource::Feed,
        },
        caller_stats: None,
        links: Vec::new(),
        origin_ts_ms: 1,
    }
}

pub fn call() -> Vec<u8> {
    encode(&call_event())
}

/// A signal with one new caller (fan-out's input).
pub fn signal() -> Vec<u8> {
    let call = call_event();
    encode(&Signal {
        v: 1,
        new_callers: vec![call.caller.clone()],
        all_caller_ids: vec![call.caller.id.clone()],
        call,
    })
}

/// A notified call for user 1 (track's input).
pub fn tracked() -> Vec<u8> {
    encode(&TrackedCalls {
        v: 1,
        chain: Chain::from("solana"),
        token: TOKEN.into(),
        symbol: Some("SMPL".into()),
        caller_ids: vec!["sample-caller".into()],
        entry_price_usd: 0.01,
        called_at_ms: 1,
        recipients: vec![Recipient { user_id: 1, chat_id: 1 }],
    })
}

/// A price update (multiplier's input).
pub fn price() -> Vec<u8> {
    encode(&PriceUpdate {
        v: 1,
        chain: Chain::from("solana"),
        token: TOKEN.into(),
        price_usd: 0.02,
        source: "sample".into(),
        ts_ms: 1,
    })
}

/// `/pause` from user 1, routed (signals_inbox's input).
pub fn routed_pause() -> Vec<u8> {
    crate::core::product::sample_command("/pause")
}
