//! A NOWPayments IPN body, as the endpoint reads it: signed with the right secret (so
//! the reader is reached), any bytes either refused with a reason or read into a
//! payment of a user with an exact USD price; unsigned or signed with another secret,
//! always refused. Never a panic.
#![no_main]

use herald_pipeline::products::payments::nowpayments::ipn::{sign, Refused};
use herald_pipeline::products::payments::nowpayments::server::event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sig) = sign(b"fuzz secret", data) else {
        return;
    };
    if let Ok(p) = event(b"fuzz secret", data, Some(&sig)) {
        assert!(p.user_id > 0 && !p.price_usd.is_empty() && p.price_usd.bytes().all(|b| b.is_ascii_digit()));
    }
    assert_eq!(event(b"another secret", data, Some(&sig)), Err(Refused::BadSignature));
    assert_eq!(event(b"fuzz secret", data, None), Err(Refused::NoSignature));
});
