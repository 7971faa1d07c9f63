//! The outbound text constructor: any text becomes well-formed Telegram HTML within the
//! limit, and sanitizing twice changes nothing.
#![no_main]

use herald_schemas::html::{fit, sanitize, visible_len, MAX_CAPTION};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let once = sanitize(text);
    assert_eq!(sanitize(&once), once);
    let cut = fit(text, MAX_CAPTION);
    assert!(visible_len(&cut) <= MAX_CAPTION);
    assert_eq!(sanitize(&cut), cut);
});
