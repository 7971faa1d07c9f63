//! Issue 21, finding 1: what a user typed reaches the partner as text. Any text, with any
//! entity list Telegram could attach (formatting, links, mentions, out of range), renders
//! through `relay::edited` and the outbound sanitizer to HTML whose visible text is the
//! original: typed `<b>` or `<a href=…>` never becomes markup.

use herald_pipeline::products::chat::relay::edited;
use proptest::prelude::*;

/// The text a Telegram client shows for `html` (tags dropped, entities decoded).
fn visible(html: &str) -> String {
    herald_schemas::html::visible_text(html)
}

/// A Bot API `MessageEntity` as JSON.
fn entity(kind: &str, offset: usize, length: usize) -> serde_json::Value {
    let mut e = serde_json::json!({"type": kind, "offset": offset, "length": length});
    match kind {
        "text_link" => e["url"] = "https://example.com/?a=1&b=\"2\"".into(),
        "pre" => e["language"] = "rust".into(),
        "text_mention" => e["user"] = serde_json::json!({"id": 7, "is_bot": false, "first_name": "U"}),
        "custom_emoji" => e["custom_emoji_id"] = "5368324170671202286".into(),
        _ => {}
    }
    e
}

const KINDS: &[&str] = &[
    "mention",
    "hashtag",
    "cashtag",
    "bot_command",
    "url",
    "email",
    "phone_number",
    "bold",
    "italic",
    "underline",
    "strikethrough",
    "spoiler",
    "blockquote",
    "code",
    "pre",
    "text_link",
    "text_mention",
];

fn typed_text() -> impl Strategy<Value = String> {
    // markup-like pieces, multi-byte characters and plain words
    let piece = prop_oneof![
        Just("<b>not</b>".to_string()),
        Just("<a href=\"https://evil.example\">x</a>".to_string()),
        Just("&amp;".to_string()),
        Just("&".to_string()),
        Just("<".to_string()),
        Just(">".to_string()),
        Just("😀".to_string()),
        Just("é".to_string()),
        Just("\n".to_string()),
        "[a-z ]{1,8}",
    ];
    proptest::collection::vec(piece, 1..12).prop_map(|p| p.concat())
}

proptest! {
    #[test]
    fn any_text_with_any_entities_stays_text(
        text in typed_text(),
        raw in proptest::collection::vec((0..KINDS.len(), 0usize..60, 0usize..60), 0..5),
        caption in any::<bool>(),
    ) {
        let entities: Vec<serde_json::Value> = raw.iter().map(|&(k, o, l)| entity(KINDS[k], o, l)).collect();
        let message = match caption {
            true => serde_json::json!({"caption": text, "caption_entities": entities}),
            false => serde_json::json!({"text": text, "entities": entities}),
        };
        let e = edited(&message).expect("a text or caption");
        prop_assert_eq!(visible(&e.html), text.clone(), "rendered {}", e.html);
        // and as the partner gets it: through the outbound sanitizer
        let sent = herald_schemas::html::sanitize(&e.html);
        prop_assert_eq!(visible(&sent), text, "sent {}", sent);
    }
}

#[test]
fn the_issue_s_caption_edit_shows_the_typed_tags() {
    let caption = "see https://x.com <b>not</b> <a href=\"https://evil.example\">x</a>";
    let m = serde_json::json!({"caption": caption, "caption_entities": [entity("url", 4, 13)]});
    let e = edited(&m).unwrap();
    assert!(e.caption);
    assert!(!e.html.contains("<b>") && !e.html.contains("<a "), "{}", e.html);
    assert_eq!(visible(&e.html), caption);
}
