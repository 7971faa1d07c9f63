//! One Bot API call per outbound message, and what its failure means.

use std::time::Duration;

use herald_schemas::OutboundMessage;
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId, ParseMode};
use teloxide::{ApiError, RequestError};

/// What to do after a failed send.
#[derive(Debug)]
pub enum SendFailure {
    /// 429: hold that chat for this long, then retry.
    RetryAfter(Duration),
    /// 5xx, network, unparsable answer: retry with backoff.
    Transient(String),
    /// 403 and kin: the user blocked the bot or is gone; mark inactive, do not retry.
    Blocked,
    /// Telegram refused this message for good (400): dead-letter it.
    Rejected(String),
}

/// Maps a teloxide error to what the sender does next.
pub fn classify(e: RequestError) -> SendFailure {
    match e {
        RequestError::RetryAfter(s) => SendFailure::RetryAfter(s.duration()),
        RequestError::Api(
            ApiError::BotBlocked
            | ApiError::UserDeactivated
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::ChatNotFound,
        ) => SendFailure::Blocked,
        RequestError::Api(ApiError::Unknown(desc)) if is_server_error(&desc) => SendFailure::Transient(desc),
        RequestError::Api(api) => SendFailure::Rejected(format!("Telegram refused the message: {api}")),
        RequestError::MigrateToChatId(id) => SendFailure::Rejected(format!("group migrated to {id}")),
        other => SendFailure::Transient(other.to_string()),
    }
}

fn is_server_error(desc: &str) -> bool {
    ["Internal Server Error", "Bad Gateway", "Service Unavailable", "Gateway Timeout"]
        .iter()
        .any(|s| desc.contains(s))
}

fn keyboard(out: &OutboundMessage) -> Option<InlineKeyboardMarkup> {
    (!out.buttons.is_empty()).then(|| {
        InlineKeyboardMarkup::new(out.buttons.iter().map(|row| {
            row.iter()
                .map(|b| InlineKeyboardButton::callback(b.text.clone(), b.callback_data.clone()))
                .collect::<Vec<_>>()
        }))
    })
}

/// The QR code image, or `None` (logged) when it cannot be made: the text alone still
/// carries what the code encodes.
fn qr_png(data: &str) -> Option<Vec<u8>> {
    super::qr::png(data)
        .map_err(|e| tracing::warn!(error = %e, "QR code not rendered; sending the text alone"))
        .ok()
}

/// Sends (or edits, for menu updates) and returns Telegram's message id. A message with
/// a `qr_code` goes out as a photo (`sendPhoto`) with its text as the caption; edits
/// change the text only.
pub async fn send(bot: &Bot, out: &OutboundMessage, paid_broadcast: bool) -> Result<i32, RequestError> {
    let chat = ChatId(out.chat_id);
    if let Some(id) = out.edit_message_id {
        let mut req = bot
            .edit_message_text(chat, MessageId(id), out.text.clone())
            .parse_mode(ParseMode::Html);
        if let Some(k) = keyboard(out) {
            req = req.reply_markup(k);
        }
        return match req.await {
            Ok(m) => Ok(m.id.0),
            Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(id),
            Err(e) => Err(e),
        };
    }
    if let Some(png) = out.qr_code.as_deref().and_then(qr_png) {
        let mut req = bot
            .send_photo(chat, InputFile::memory(png).file_name("qr.png"))
            .caption(out.text.clone())
            .parse_mode(ParseMode::Html);
        if let Some(k) = keyboard(out) {
            req = req.reply_markup(k);
        }
        if paid_broadcast {
            req = req.allow_paid_broadcast(true);
        }
        return Ok(req.await?.id.0);
    }
    let mut req = bot.send_message(chat, out.text.clone()).parse_mode(ParseMode::Html);
    if let Some(k) = keyboard(out) {
        req = req.reply_markup(k);
    }
    if paid_broadcast {
        req = req.allow_paid_broadcast(true);
    }
    Ok(req.await?.id.0)
}
