//! An edited message's text and entities, as a partner gets them: whatever the text
//! and entity list, `relay::edited` renders HTML whose visible text, once sanitized for sending, is the
//! original (typed markup never becomes formatting; issue 21, finding 1).
//!
//! Input: byte 0 = entity count (mod 8), then 3 bytes per entity (kind, offset,
//! length), then the text (UTF-8).
#![no_main]

use herald_pipeline::products::chat::relay::edited;
use herald_schemas::html::{sanitize, visible_text};
use libfuzzer_sys::fuzz_target;

const KINDS: &[&str] = &[
    "mention", "hashtag", "url", "email", "bold", "italic", "underline", "strikethrough", "spoiler", "blockquote", "code",
    "pre", "text_link", "text_mention", "custom_emoji", "bot_command",
];

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = (n % 8) as usize;
    if rest.len() < n * 3 {
        return;
    }
    let (raw, text) = rest.split_at(n * 3);
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let entities: Vec<serde_json::Value> = raw
        .chunks(3)
        .map(|e| {
            let mut v = serde_json::json!({"type": KINDS[e[0] as usize % KINDS.len()], "offset": e[1], "length": e[2]});
            v["url"] = "https://example.com/?a=1&b=2".into();
            v["user"] = serde_json::json!({"id": 7, "is_bot": false, "first_name": "U"});
            v["custom_emoji_id"] = "1".into();
            v
        })
        .collect();
    let message = serde_json::json!({"text": text, "entities": entities});
    let html = edited(&message).expect("a text").html;
    // as the partner gets it: through the outbound sanitizer
    let sent = sanitize(&html);
    assert_eq!(visible_text(&sent), text, "the visible text is what was typed: {sent}");
});
