//! Every schema's decoder: never a panic, and what decodes encodes and decodes again.
#![no_main]

use herald_schemas::*;
use libfuzzer_sys::fuzz_target;

fn round_trip<T: Versioned + std::fmt::Debug>(data: &[u8]) {
    if let Ok(value) = decode::<T>(data) {
        let again = encode(&value);
        decode::<T>(&again).expect("what decodes re-encodes to something decodable");
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<CallEvent>(data);
    round_trip::<Signal>(data);
    round_trip::<FeedFrame>(data);
    round_trip::<ChannelStats>(data);
    round_trip::<DeliveryReport>(data);
    round_trip::<LotteryEntry>(data);
    round_trip::<OutboundMessage>(data);
    round_trip::<Deposit>(data);
    round_trip::<LedgerEntry>(data);
    round_trip::<RoutedUpdate>(data);
    round_trip::<PriceUpdate>(data);
    round_trip::<TrackedCalls>(data);
    round_trip::<TriviaAnswer>(data);
    round_trip::<TriviaResult>(data);
    round_trip::<TriviaGameEvent>(data);
    round_trip::<BoardChange>(data);
    round_trip::<ExplainRequest>(data);
    round_trip::<User>(data);
    round_trip::<Access>(data);
    round_trip::<SignalsPrefs>(data);
    round_trip::<LegacyUser>(data);
});
