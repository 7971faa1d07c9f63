//! What the relay makes of a chatting user's message: which kind it is, whether it can
//! be copied, and the copy or edit for the partner. Pure functions of the message; the
//! inbox stage looks the partner and the message-id map up.

use herald_schemas::{escape_html, Content};
use serde_json::Value;

/// Kinds the relay copies (`copyMessage` keeps them as they are, without "forwarded
/// from"), by the field that carries each (core.telegram.org/bots/api#message).
pub const COPIED_KINDS: &[&str] = &[
    "text",
    "photo",
    "video",
    "animation",
    "sticker",
    "voice",
    "video_note",
    "audio",
    "document",
    "location",
    "venue",
    "contact",
    "dice",
    "poll",
];

/// Kinds a newcomer may send in their first chat.
const NEWCOMER_KINDS: &[&str] = &["text", "sticker", "dice", "poll"];

/// The kind of `message`: the first of [`COPIED_KINDS`] it carries (`venue` before
/// `location`, which a venue also carries), or `None` for anything else (a service
/// message, an invoice, a giveaway, paid media: Telegram cannot copy those).
///
/// ```
/// use herald_pipeline::products::chat::relay::kind;
/// assert_eq!(kind(&serde_json::json!({"text": "hi"})), Some("text"));
/// assert_eq!(kind(&serde_json::json!({"venue": {}, "location": {}})), Some("venue"));
/// assert_eq!(kind(&serde_json::json!({"pinned_message": {}})), None);
/// ```
pub fn kind(message: &Value) -> Option<&'static str> {
    if message.get("venue").is_some() {
        return Some("venue");
    }
    COPIED_KINDS.iter().copied().find(|k| message.get(*k).is_some())
}

/// Whether a newcomer (in their first chat) may send `message`: text without links,
/// a sticker, a dice or a poll.
///
/// ```
/// use herald_pipeline::products::chat::relay::newcomer_may_send;
/// use serde_json::json;
/// assert!(newcomer_may_send(&json!({"text": "hello"})));
/// assert!(!newcomer_may_send(&json!({"text": "see x.com", "entities": [{"type": "url", "offset": 4, "length": 5}]})));
/// assert!(!newcomer_may_send(&json!({"photo": []})));
/// ```
pub fn newcomer_may_send(message: &Value) -> bool {
    let linked = ["entities", "caption_entities"].iter().any(|field| {
        message[*field]
            .as_array()
            .is_some_and(|es| es.iter().any(|e| matches!(e["type"].as_str(), Some("url" | "text_link" | "mention" | "text_mention"))))
    });
    !linked && kind(message).is_some_and(|k| NEWCOMER_KINDS.contains(&k))
}

/// The text or caption of an edited message as HTML, with its formatting (its
/// entities) kept; which of the two it is. What the user typed stays text: its visible
/// text is the original, whatever entities come with it (`tests/chat_markup.rs`).
///
/// ```
/// use herald_pipeline::products::chat::relay::edited;
/// let m = serde_json::json!({"caption": "x.com <b>not</b>", "caption_entities": [{"type": "url", "offset": 0, "length": 5}]});
/// assert_eq!(edited(&m).unwrap().html, "x.com &lt;b&gt;not&lt;/b&gt;");
/// ```
pub fn edited(message: &Value) -> Option<Edited> {
    let (body, entities, caption) = match (message.get("text"), message.get("caption")) {
        (Some(t), _) => (t.as_str()?, message.get("entities"), false),
        (None, Some(c)) => (c.as_str()?, message.get("caption_entities"), true),
        _ => return None,
    };
    let entities: Vec<teloxide::types::MessageEntity> = entities.and_then(|e| serde_json::from_value(e.clone()).ok()).unwrap_or_default();
    let entities = well_nested(entities, body.encode_utf16().count());
    let html = match teloxide::utils::render::Renderer::new(body, &entities).as_html() {
        // no formatting entity among them (only url, mention, hashtag, ...): teloxide
        // returns the text as it is, unescaped, and typed tags would become markup
        rendered if rendered == body => escape_html(body),
        rendered => rendered,
    };
    Some(Edited { html, caption })
}

/// The entities Telegram's rules allow (core.telegram.org/bots/api#messageentity: "if
/// two entities have common characters, then one of them is fully contained inside
/// another"), within the text (`units`, UTF-16) and not empty; the others are dropped,
/// so the rendered tags always nest (a zero-length or overlapping entity would render
/// `</b><b>` or `<b><i></b></i>`, which the sanitizer then shows as text).
fn well_nested(mut entities: Vec<teloxide::types::MessageEntity>, units: usize) -> Vec<teloxide::types::MessageEntity> {
    entities.sort_by_key(|e| (e.offset, std::cmp::Reverse(e.length)));
    let mut kept: Vec<teloxide::types::MessageEntity> = Vec::with_capacity(entities.len());
    for e in entities {
        let (start, end) = (e.offset, e.offset.saturating_add(e.length));
        let inside = e.length > 0 && end <= units;
        let crosses = kept.iter().any(|k| {
            let (ks, ke) = (k.offset, k.offset + k.length);
            start < ke && ks < end && !(ks <= start && end <= ke) && !(start <= ks && ke <= end)
        });
        if inside && !crosses {
            kept.push(e);
        }
    }
    kept
}

/// An edit's new text or caption.
#[derive(Debug, Clone, PartialEq)]
pub struct Edited {
    /// HTML.
    pub html: String,
    /// A caption (else a message text).
    pub caption: bool,
}

impl Edited {
    /// The edit of the partner's copy `copy_id`.
    pub fn content(self, copy_id: i32) -> Content {
        match self.caption {
            true => Content::edit_caption(copy_id, self.html),
            false => Content::edit_text(copy_id, self.html, Vec::new()),
        }
    }
}
