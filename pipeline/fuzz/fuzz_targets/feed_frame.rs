//! Herald's JSON feed frames: never a panic; what is accepted has a valid subject,
//! bounded texts and in-range numbers.
#![no_main]

use herald_pipeline::products::signals::sources::websocket::{parse_frame, FeedEvent, Protocol};
use herald_schemas::checks::{self, ChainList};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let chains = ChainList::default();
    if let Ok(Some(event)) = parse_frame(Protocol::HeraldFeed, data, 1, &chains) {
        let out = event.output();
        for token in out.subject.split('.') {
            checks::subject_token(token).expect("subject tokens of accepted events are valid");
        }
        if let FeedEvent::Call(c) = event {
            assert!(c.symbol.as_deref().is_none_or(|s| s.chars().count() <= checks::MAX_SYMBOL));
            assert!(c.name.as_deref().is_none_or(|s| s.chars().count() <= checks::MAX_NAME));
            assert!(c.price_usd.is_none_or(|p| checks::price(p).is_ok()));
            assert!(c.fdv_usd.is_none_or(|f| checks::fdv(f).is_ok()));
        }
    }
});
