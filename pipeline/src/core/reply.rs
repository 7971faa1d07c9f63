//! A reply to a user's update: HTML text, buttons, maybe a photo; turned into one
//! [`OutboundMessage`] on the interactive queue.

use herald_runtime::{Decision, Output};
use herald_schemas::{subjects, Button, Content, OutboundMessage, Photo, Priority};

/// What a command answers.
///
/// ```
/// use herald_pipeline::core::reply::Reply;
/// let out = Reply::plain("Paused.").output(7, 42, None);
/// assert_eq!(out.subject, "herald.out.reply.42");
/// assert_eq!(out.msg_id, "upd.7");
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reply {
    /// HTML text (`parse_mode=HTML`); user input in it is escaped by the caller.
    pub text: String,
    pub buttons: Vec<Vec<Button>>,
    /// Send as a photo with `text` as its caption (at most 1024 characters).
    pub photo: Option<Photo>,
}

impl Reply {
    /// Text without buttons.
    pub fn plain(text: impl Into<String>) -> Self {
        Reply {
            text: text.into(),
            ..Default::default()
        }
    }

    /// Text with an inline keyboard.
    pub fn with_buttons(text: impl Into<String>, buttons: Vec<Vec<Button>>) -> Self {
        Reply {
            text: text.into(),
            buttons,
            photo: None,
        }
    }

    /// The Bot API call: a new message, a photo, or (for a button press, `edit` = the
    /// message the button is on) an edit of that message.
    pub fn content(self, edit: Option<i32>) -> Content {
        match (edit, self.photo) {
            (_, Some(photo)) => Content::SendPhoto {
                photo,
                caption: self.text,
                buttons: self.buttons,
            },
            (Some(message_id), None) => Content::edit_text(message_id, self.text, self.buttons),
            (None, None) => Content::SendMessage {
                text: self.text,
                buttons: self.buttons,
                reply_to: None,
            },
        }
    }

    /// The reply to update `update_id` in `chat_id`: `herald.out.reply.<chat>`, message
    /// id `upd.<update_id>` (one reply per update, so a redelivery publishes the same).
    pub fn output(self, update_id: i64, chat_id: i64, edit: Option<i32>) -> Output {
        let key = format!("upd.{update_id}");
        let msg = OutboundMessage::new(key.clone(), chat_id, self.content(edit), Priority::Reply, herald_schemas::now_ms());
        Output {
            subject: subjects::reply(chat_id),
            msg_id: key,
            payload: herald_schemas::encode(&msg),
        }
    }
}

/// The answer to a product command from someone who never sent `/start`: a reply, no
/// state change (the commit's default: `None`, `()`).
pub fn send_start_first<C: Default, E>(update_id: i64, chat_id: i64) -> Decision<C, E> {
    Decision::Forward {
        outputs: vec![Reply::plain("Send /start first.").output(update_id, chat_id, None)],
        commit: C::default(),
    }
}

/// `2026-12-02 17:05 UTC`: a time (ms since epoch) as users read it.
///
/// ```
/// assert_eq!(herald_pipeline::core::reply::date(0), "1970-01-01 00:00 UTC");
/// ```
pub fn date(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .map(|t| {
            format!(
                "{}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}

/// A notice to `chat_id` that no update answers (a partner told, a timeout): an
/// interactive message under its own idempotency key `key`, which is also its
/// `Nats-Msg-Id`, so whatever path makes it, it is sent once.
pub fn notice(key: impl Into<String>, chat_id: i64, content: Content) -> OutboundMessage {
    OutboundMessage::new(key, chat_id, content, Priority::Reply, herald_schemas::now_ms())
}

/// `msg` as an output on `herald.out.reply.<chat>` under its idempotency key.
pub fn output(msg: &OutboundMessage) -> Output {
    Output {
        subject: subjects::reply(msg.chat_id),
        msg_id: msg.idempotency_key.clone(),
        payload: herald_schemas::encode(msg),
    }
}
