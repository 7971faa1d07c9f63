//! Call-channel posts: the text parser on any text, and whole `channel_post` objects.
#![no_main]

use herald_pipeline::products::signals::posts::channel_post_call;
use herald_pipeline::products::signals::sources::channel_post::parse_call;
use herald_schemas::checks::ChainList;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_call(text, &[]);
    }
    if let Ok(post) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(Some(call)) = channel_post_call(&post, 1, &ChainList::default()) {
            assert!(herald_schemas::checks::address(&call.token).is_ok());
        }
    }
});
