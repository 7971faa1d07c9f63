//! Channel posts: a post with a contract address becomes a call, the channel its caller.

use herald_schemas::checks::{self, ChainList};
use herald_schemas::{CallEvent, CallSource, Caller};
use serde_json::Value;

use super::sources::channel_post::{parse_call, post_text_and_urls};

/// The call in a channel post, if any; the channel is the caller. `Ok(None)`: the post
/// names no token (most channel chatter).
///
/// Errors: the post has no chat id or message id, or its call fails [`checks::call`]
/// (a chain off the list, a price out of range; the reason says which).
pub fn channel_post_call(post: &Value, now_ms: u64, chains: &ChainList) -> Result<Option<CallEvent>, String> {
    let (text, urls) = post_text_and_urls(post);
    let Some(parsed) = parse_call(&text, &urls) else {
        return Ok(None);
    };
    let chat = post.get("chat").ok_or("channel post without a chat")?;
    let chat_id = chat.get("id").and_then(Value::as_i64).ok_or("channel post without a chat id")?;
    let message_id = post.get("message_id").and_then(Value::as_i64).ok_or("channel post without a message id")?;
    let call = CallEvent {
        v: 1,
        source_event_id: format!("{chat_id}:{message_id}"),
        chain: parsed.chain,
        token: parsed.token,
        symbol: parsed.symbol,
        name: None,
        price_usd: parsed.price_usd,
        price_native: None,
        fdv_usd: parsed.fdv_usd,
        caller: Caller {
            id: format!("tg:{chat_id}"),
            name: chat.get("title").and_then(Value::as_str).map(str::to_string),
            source: CallSource::TelegramChannel,
        },
        caller_stats: None,
        links: Vec::new(),
        origin_ts_ms: now_ms,
    };
    checks::call(call, chains).map(Some).map_err(|e| format!("rejected channel call: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_posts_become_calls_from_the_channel() {
        let post = serde_json::json!({"message_id": 9, "chat": {"id": -100123, "title": "Alpha Calls", "type": "channel"}, "date": 1,
            "text": "#kora ● $0.0225 258K FDV atualmente\nCA: 8neDcPFwrvRNM9WXHCtHwTcKZrVm6wr4cs4PSN9Hpump"});
        let call = channel_post_call(&post, 5, &ChainList::default()).unwrap().unwrap();
        assert_eq!(call.caller.id, "tg:-100123");
        assert_eq!(call.caller.name.as_deref(), Some("Alpha Calls"));
        assert_eq!(call.msg_id(), "telegram_channel:-100123:9");
        assert_eq!(call.fdv_usd, Some(258_000.0));
        assert_eq!(call.token, "8neDcPFwrvRNM9WXHCtHwTcKZrVm6wr4cs4PSN9Hpump");
    }
}
