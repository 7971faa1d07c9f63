//! One Bot API call per outbound message, and what its failure means.

use std::time::Duration;

use herald_schemas::{Button, Content, OutboundMessage, Photo};
use teloxide::prelude::*;
use teloxide::types::{
    BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, InputPollOption, MessageId, ParseMode, PollType, ReplyParameters,
    WebAppInfo,
};
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

fn keyboard(buttons: &[Vec<Button>]) -> Option<InlineKeyboardMarkup> {
    (!buttons.is_empty()).then(|| {
        InlineKeyboardMarkup::new(buttons.iter().map(|row| {
            row.iter()
                .map(|b| match b.url.as_deref().map(reqwest::Url::parse) {
                    Some(Ok(url)) => InlineKeyboardButton::url(b.text.clone(), url),
                    // a link that does not parse is sent as its text (Telegram would refuse
                    // the whole message with BUTTON_URL_INVALID)
                    Some(Err(_)) => InlineKeyboardButton::callback(b.text.clone(), String::from("-")),
                    None => InlineKeyboardButton::callback(b.text.clone(), b.callback_data.clone()),
                })
                .collect::<Vec<_>>()
        }))
    })
}

/// The photo to upload or reference, or `None` (logged) when a QR code cannot be drawn:
/// the caption alone still carries what the code encodes.
fn input_file(photo: &Photo) -> Option<InputFile> {
    match photo {
        Photo::QrCode { data } => super::qr::png(data)
            .map_err(|e| tracing::warn!(error = %e, "QR code not rendered; sending the text alone"))
            .ok()
            .map(|png| InputFile::memory(png).file_name("qr.png")),
        Photo::FileId { file_id } => Some(InputFile::file_id(teloxide::types::FileId(file_id.clone()))),
        Photo::Bytes { bytes, file_name } => Some(InputFile::memory(bytes.clone()).file_name(file_name.clone())),
    }
}

/// What Telegram made of one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The ids of the messages made, in order (one for most calls, one per message for
    /// `copyMessages`; for calls that make no message, the id they concern, or 0).
    pub message_ids: Vec<i32>,
    /// For `sendPoll`: the poll's id, which `poll_answer` updates carry.
    pub poll_id: Option<String>,
}

/// Makes the Bot API call `out.content`.
pub async fn send(bot: &Bot, out: &OutboundMessage, paid_broadcast: bool) -> Result<Sent, RequestError> {
    if let Content::SendPoll {
        question,
        options,
        correct_option_id,
        explanation,
        open_period,
        is_anonymous,
    } = &out.content
    {
        let options = options.iter().map(|o| InputPollOption::new(o.clone()));
        let mut req = bot
            .send_poll(ChatId(out.chat_id), question.clone(), options)
            .is_anonymous(*is_anonymous);
        if let Some(correct) = correct_option_id {
            req = req.type_(PollType::Quiz).correct_option_id(*correct);
        }
        if let Some(e) = explanation {
            req = req.explanation(e.clone()).explanation_parse_mode(ParseMode::Html);
        }
        if let Some(secs) = open_period {
            req = req.open_period(*secs);
        }
        let message = req.await?;
        return Ok(Sent {
            message_ids: vec![message.id.0],
            poll_id: message.poll().map(|p| p.id.to_string()),
        });
    }
    if let Content::CopyMessages {
        from_chat_id,
        message_ids,
        protect_content,
    } = &out.content
    {
        let ids: Vec<MessageId> = message_ids.iter().map(|i| MessageId(*i)).collect();
        let copied = bot
            .copy_messages(ChatId(out.chat_id), ChatId(*from_chat_id), ids)
            .protect_content(*protect_content)
            .await?;
        return Ok(Sent {
            message_ids: copied.iter().map(|m| m.0).collect(),
            poll_id: None,
        });
    }
    let id = send_one(bot, out, paid_broadcast).await?;
    Ok(Sent {
        message_ids: vec![id],
        poll_id: None,
    })
}

/// Every call but `copyMessages`: the one message id.
async fn send_one(bot: &Bot, out: &OutboundMessage, paid_broadcast: bool) -> Result<i32, RequestError> {
    let chat = ChatId(out.chat_id);
    match &out.content {
        Content::SendMessage { text, buttons, reply_to } => {
            let mut req = bot.send_message(chat, text.clone()).parse_mode(ParseMode::Html);
            if let Some(k) = keyboard(buttons) {
                req = req.reply_markup(k);
            }
            if let Some(id) = reply_to {
                req = req.reply_parameters(ReplyParameters::new(MessageId(*id)).allow_sending_without_reply());
            }
            if paid_broadcast {
                req = req.allow_paid_broadcast(true);
            }
            Ok(req.await?.id.0)
        }
        Content::EditMessageText { message_id, text, buttons } => {
            let mut req = bot
                .edit_message_text(chat, MessageId(*message_id), text.clone())
                .parse_mode(ParseMode::Html);
            if let Some(k) = keyboard(buttons) {
                req = req.reply_markup(k);
            }
            unchanged_is_fine(req.await.map(|m| m.id.0), *message_id)
        }
        Content::EditMessageCaption { message_id, caption } => {
            let req = bot
                .edit_message_caption(chat, MessageId(*message_id))
                .caption(caption.clone())
                .parse_mode(ParseMode::Html);
            unchanged_is_fine(req.await.map(|m| m.id.0), *message_id)
        }
        Content::EditMessageReplyMarkup { message_id, buttons } => {
            let mut req = bot.edit_message_reply_markup(chat, MessageId(*message_id));
            if let Some(k) = keyboard(buttons) {
                req = req.reply_markup(k);
            }
            unchanged_is_fine(req.await.map(|m| m.id.0), *message_id)
        }
        Content::SendPhoto { photo, caption, buttons } => {
            let Some(file) = input_file(photo) else {
                let text = Content::SendMessage {
                    text: caption.clone(),
                    buttons: buttons.clone(),
                    reply_to: None,
                };
                return Box::pin(send_one(
                    bot,
                    &OutboundMessage {
                        content: text,
                        ..out.clone()
                    },
                    paid_broadcast,
                ))
                .await;
            };
            let mut req = bot.send_photo(chat, file).caption(caption.clone()).parse_mode(ParseMode::Html);
            if let Some(k) = keyboard(buttons) {
                req = req.reply_markup(k);
            }
            if paid_broadcast {
                req = req.allow_paid_broadcast(true);
            }
            Ok(req.await?.id.0)
        }
        Content::CopyMessage {
            from_chat_id,
            message_id,
            reply_to,
            protect_content,
        } => {
            let mut req = bot
                .copy_message(chat, ChatId(*from_chat_id), MessageId(*message_id))
                .protect_content(*protect_content);
            if let Some(id) = reply_to {
                req = req.reply_parameters(ReplyParameters::new(MessageId(*id)).allow_sending_without_reply());
            }
            Ok(req.await?.0)
        }
        Content::CopyMessages { .. } => unreachable!("copyMessages is sent by `send`"),
        Content::SendPoll { .. } => unreachable!("sendPoll is sent by `send`"),
        Content::SendWebApp { text, button, url } => {
            let url = url
                .parse()
                .map_err(|e| RequestError::Api(ApiError::Unknown(format!("Bad Request: Mini App URL {url:?}: {e}"))))?;
            let keyboard = InlineKeyboardMarkup::new([[InlineKeyboardButton::web_app(button.clone(), WebAppInfo { url })]]);
            Ok(bot
                .send_message(chat, text.clone())
                .parse_mode(ParseMode::Html)
                .reply_markup(keyboard)
                .await?
                .id
                .0)
        }
        Content::AnswerCallbackQuery { callback_query_id, text } => {
            let mut req = bot.answer_callback_query(teloxide::types::CallbackQueryId(callback_query_id.clone()));
            if let Some(t) = text {
                req = req.text(t.clone());
            }
            req.await?;
            Ok(0)
        }
        Content::DeleteMessage { message_id } => {
            match bot.delete_message(chat, MessageId(*message_id)).await {
                // gone already: what a redelivery would find
                Ok(_) | Err(RequestError::Api(ApiError::MessageToDeleteNotFound)) => Ok(*message_id),
                Err(e) => Err(e),
            }
        }
        Content::SetMyCommands { commands } => {
            let commands = commands.iter().map(|c| BotCommand::new(c.command.clone(), c.description.clone()));
            bot.set_my_commands(commands).await?;
            Ok(0)
        }
    }
}

/// "message is not modified" means the edit is already there.
fn unchanged_is_fine(result: Result<i32, RequestError>, message_id: i32) -> Result<i32, RequestError> {
    match result {
        Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(message_id),
        other => other,
    }
}
