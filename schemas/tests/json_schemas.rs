//! The checked-in JSON Schemas under `schemas/json/` must match the Rust types.
//! Run with `HERALD_BLESS=1` to rewrite them after changing a type.

use herald_schemas::*;
use std::path::PathBuf;

fn check<T: Versioned>() -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("json")
        .join(format!("{}.v{}.json", T::SCHEMA_NAME, T::VERSION));
    let want = json_schema::<T>();
    if std::env::var_os("HERALD_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return None;
    }
    match std::fs::read_to_string(&path) {
        Ok(have) if have == want => None,
        Ok(_) => Some(format!("{} differs from the type; rerun with HERALD_BLESS=1", path.display())),
        Err(e) => Some(format!("{}: {e}", path.display())),
    }
}

#[test]
fn checked_in_schemas_match_types() {
    let problems: Vec<String> = [
        check::<CallEvent>(),
        check::<herald_schemas::Withdrawal>(),
        check::<herald_schemas::WithdrawalOutcome>(),
        check::<herald_schemas::GatewayPayment>(),
        check::<Signal>(),
        check::<FeedFrame>(),
        check::<ChannelStats>(),
        check::<OutboundMessage>(),
        check::<User>(),
        check::<Access>(),
        check::<SignalsPrefs>(),
        check::<PriceUpdate>(),
        check::<TrackedCalls>(),
        check::<Deposit>(),
        check::<LedgerEntry>(),
        check::<RoutedUpdate>(),
        check::<DeliveryReport>(),
        check::<LotteryEntry>(),
        check::<TriviaAnswer>(),
        check::<TriviaResult>(),
        check::<TriviaGameEvent>(),
        check::<BoardChange>(),
        check::<ExplainRequest>(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn newer_versions_are_refused_not_half_read() {
    let mut s = User::new(1, 1, 0);
    s.v = 99;
    let err = decode::<User>(&encode(&s)).unwrap_err();
    assert!(matches!(err, DecodeError::UnsupportedVersion { found: 99, supported: 2 }), "{err}");
    assert!(matches!(decode::<User>(b"{}"), Err(DecodeError::Malformed(_))));
}
