//! Telegram updates as they arrive: their kinds.

use serde_json::Value;

/// Update kinds of the Telegram Bot API (9.x); any other kind is dead-lettered.
pub const KNOWN_KINDS: &[&str] = &[
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
];

/// The update's kind: its one field besides `update_id`.
///
/// Errors: not an object, no `update_id`, or no content field.
pub fn update_kind(update: &Value) -> Result<&str, String> {
    let obj = update.as_object().ok_or("not a Telegram update: not a JSON object")?;
    obj.get("update_id")
        .and_then(Value::as_i64)
        .ok_or("not a Telegram update: no integer update_id")?;
    obj.keys()
        .map(String::as_str)
        .find(|k| *k != "update_id")
        .ok_or_else(|| "update with no content".to_string())
}

/// Who an update comes from: the user (`from`, or `user` for a poll answer), else the
/// chat (channel posts have no user).
///
/// ```
/// use herald_schemas::telegram::update_sender;
/// let v = serde_json::json!({"update_id": 1, "message": {"from": {"id": 7}, "chat": {"id": 9}}});
/// assert_eq!(update_sender(&v), Some(7));
/// let post = serde_json::json!({"update_id": 2, "channel_post": {"chat": {"id": -100}}});
/// assert_eq!(update_sender(&post), Some(-100));
/// ```
pub fn update_sender(update: &Value) -> Option<i64> {
    let kind = update_kind(update).ok()?;
    let body = &update[kind];
    ["/from/id", "/user/id", "/chat/id", "/voter_chat/id"]
        .iter()
        .find_map(|p| body.pointer(p).and_then(Value::as_i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_malformed_updates() {
        assert_eq!(update_kind(&serde_json::json!({"update_id":1,"message":{}})), Ok("message"));
        assert!(update_kind(&serde_json::json!({"message":{}})).is_err());
        assert!(update_kind(&serde_json::json!({"update_id":1})).is_err());
        assert!(update_kind(&serde_json::json!([1])).is_err());
    }
}
