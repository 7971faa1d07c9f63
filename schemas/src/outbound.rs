//! Messages for Telegram: one [`OutboundMessage`] per Bot API call, its [`Content`] an
//! enum with a constructor per method. HTML escaping happens in [`escape_html`] and the
//! text constructors' callers; nothing else builds Telegram markup.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Versioned;

/// Which queue a message waits in. Interactive traffic never waits behind bulk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Interactive: a reply to the user's own command, a relayed chat message, a quiz.
    Reply,
    /// Bulk: a notification or broadcast, kept under Telegram's 30 messages/s.
    Broadcast,
}

/// An inline keyboard button: callback data (at most 64 bytes, Telegram's limit), or,
/// with `url` set, a link that opens (an https URL; `callback_data` is then ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Button {
    pub text: String,
    pub callback_data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Button {
    /// A button that sends `data` back as a callback query.
    ///
    /// ```
    /// let b = herald_schemas::Button::callback("Cancel", "wd:no:wd-1-2");
    /// assert_eq!((b.callback_data.as_str(), b.url), ("wd:no:wd-1-2", None));
    /// ```
    pub fn callback(text: impl Into<String>, data: impl Into<String>) -> Self {
        Button {
            text: text.into(),
            callback_data: data.into(),
            url: None,
        }
    }

    /// A button that opens `url`.
    ///
    /// ```
    /// let b = herald_schemas::Button::link("Pay", "https://nowpayments.io/payment/?iid=1");
    /// assert_eq!(b.url.as_deref(), Some("https://nowpayments.io/payment/?iid=1"));
    /// ```
    pub fn link(text: impl Into<String>, url: impl Into<String>) -> Self {
        Button {
            text: text.into(),
            callback_data: String::new(),
            url: Some(url.into()),
        }
    }
}

/// A photo to send: drawn by the bot from a string (a QR code), or already on
/// Telegram's servers (`file_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Photo {
    /// A QR code (PNG) encoding `data`, drawn by the bot.
    QrCode { data: String },
    /// A photo Telegram already has.
    FileId { file_id: String },
    /// Image bytes (JPEG or PNG) uploaded with the call.
    Bytes { bytes: Vec<u8>, file_name: String },
}

/// One Bot API call. Texts are HTML (`parse_mode=HTML`): message texts at most 4096
/// characters, captions at most 1024 (core.telegram.org/bots/api#sendmessage,
/// #sendphoto).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Content {
    /// `sendMessage`.
    SendMessage {
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        buttons: Vec<Vec<Button>>,
        /// Reply to this message of the same chat.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<i32>,
    },
    /// `sendMessage` with one button that opens a Mini App (`web_app`; Telegram opens
    /// only `https://` pages, and only from private chats).
    SendWebApp { text: String, button: String, url: String },
    /// `editMessageText`: replace a message's text and keyboard (inline menus).
    EditMessageText {
        message_id: i32,
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        buttons: Vec<Vec<Button>>,
    },
    /// `editMessageCaption`.
    EditMessageCaption { message_id: i32, caption: String },
    /// `editMessageReplyMarkup`: new buttons, same text.
    EditMessageReplyMarkup { message_id: i32, buttons: Vec<Vec<Button>> },
    /// `sendPhoto` with an HTML caption.
    SendPhoto {
        photo: Photo,
        caption: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        buttons: Vec<Vec<Button>>,
    },
    /// `copyMessage`: a message of another chat, without "forwarded from".
    CopyMessage {
        from_chat_id: i64,
        message_id: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<i32>,
        #[serde(default)]
        protect_content: bool,
    },
    /// `copyMessages`: 1–100 messages of another chat in increasing id order (albums
    /// stay albums).
    CopyMessages {
        from_chat_id: i64,
        message_ids: Vec<i32>,
        #[serde(default)]
        protect_content: bool,
    },
    /// `sendPoll`; with `correct_option_id` a quiz.
    SendPoll {
        question: String,
        options: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        correct_option_id: Option<u8>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        explanation: Option<String>,
        /// Seconds the poll stays open (5–600).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        open_period: Option<u16>,
        #[serde(default)]
        is_anonymous: bool,
    },
    /// `answerCallbackQuery`: the toast after a button press.
    AnswerCallbackQuery {
        callback_query_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// `deleteMessage`.
    DeleteMessage { message_id: i32 },
    /// `setMyCommands`: the command menu (`chat_id` is ignored; 0 by convention).
    SetMyCommands { commands: Vec<MenuCommand> },
}

impl Content {
    /// The content as Telegram takes it: every HTML text and caption through
    /// [`crate::html::fit`] (well-formed, stray markup escaped, cut to 4,096 or 1,024
    /// characters), plain texts cut to their limits (poll question 300, option 100,
    /// callback toast 200; core.telegram.org/bots/api#sendpoll, #answercallbackquery).
    /// [`OutboundMessage::new`] applies it, so no product can skip it; applying it twice
    /// changes nothing.
    pub fn telegram_safe(self) -> Content {
        use crate::html::{fit, MAX_CAPTION, MAX_TEXT};
        match self {
            Content::SendMessage { text, buttons, reply_to } => Content::SendMessage {
                text: fit(&text, MAX_TEXT),
                buttons,
                reply_to,
            },
            Content::SendWebApp { text, button, url } => Content::SendWebApp {
                text: fit(&text, MAX_TEXT),
                button: cut_plain(&button, 64),
                url,
            },
            Content::EditMessageText { message_id, text, buttons } => Content::EditMessageText {
                message_id,
                text: fit(&text, MAX_TEXT),
                buttons,
            },
            Content::EditMessageCaption { message_id, caption } => Content::EditMessageCaption {
                message_id,
                caption: fit(&caption, MAX_CAPTION),
            },
            Content::SendPhoto { photo, caption, buttons } => Content::SendPhoto {
                photo,
                caption: fit(&caption, MAX_CAPTION),
                buttons,
            },
            Content::SendPoll {
                question,
                options,
                correct_option_id,
                explanation,
                open_period,
                is_anonymous,
            } => Content::SendPoll {
                question: cut_plain(&question, 300),
                options: options.iter().map(|o| cut_plain(o, 100)).collect(),
                correct_option_id,
                explanation: explanation.map(|e| fit(&e, 200)),
                open_period,
                is_anonymous,
            },
            Content::AnswerCallbackQuery { callback_query_id, text } => Content::AnswerCallbackQuery {
                callback_query_id,
                text: text.map(|t| cut_plain(&t, 200)),
            },
            other => other,
        }
    }

    /// `sendMessage` with HTML `text`.
    pub fn text(text: impl Into<String>) -> Self {
        Content::SendMessage {
            text: text.into(),
            buttons: Vec::new(),
            reply_to: None,
        }
    }

    /// `editMessageText` of `message_id`: new HTML text and buttons.
    pub fn edit_text(message_id: i32, text: impl Into<String>, buttons: Vec<Vec<Button>>) -> Self {
        Content::EditMessageText {
            message_id,
            text: text.into(),
            buttons,
        }
    }

    /// `editMessageCaption` of `message_id`.
    pub fn edit_caption(message_id: i32, caption: impl Into<String>) -> Self {
        Content::EditMessageCaption {
            message_id,
            caption: caption.into(),
        }
    }

    /// `editMessageReplyMarkup` of `message_id`.
    pub fn edit_buttons(message_id: i32, buttons: Vec<Vec<Button>>) -> Self {
        Content::EditMessageReplyMarkup { message_id, buttons }
    }

    /// `sendPhoto` with an HTML caption.
    pub fn photo(photo: Photo, caption: impl Into<String>) -> Self {
        Content::SendPhoto {
            photo,
            caption: caption.into(),
            buttons: Vec::new(),
        }
    }

    /// `copyMessage` of `message_id` in `from_chat_id`, as a reply to `reply_to`.
    pub fn copy(from_chat_id: i64, message_id: i32, reply_to: Option<i32>, protect_content: bool) -> Self {
        Content::CopyMessage {
            from_chat_id,
            message_id,
            reply_to,
            protect_content,
        }
    }

    /// `copyMessages`: Telegram takes 1–100 ids in strictly increasing order
    /// (core.telegram.org/bots/api#copymessages).
    ///
    /// Errors: no ids, more than 100, or not increasing.
    ///
    /// ```
    /// use herald_schemas::Content;
    /// assert!(Content::copy_many(5, vec![1, 2, 3], false).is_ok());
    /// assert!(Content::copy_many(5, vec![3, 2], false).is_err());
    /// assert!(Content::copy_many(5, vec![], false).is_err());
    /// ```
    pub fn copy_many(from_chat_id: i64, message_ids: Vec<i32>, protect_content: bool) -> Result<Self, String> {
        if message_ids.is_empty() || message_ids.len() > 100 {
            return Err(format!("copyMessages takes 1 to 100 messages, not {}", message_ids.len()));
        }
        if message_ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err("copyMessages takes message ids in increasing order".into());
        }
        Ok(Content::CopyMessages {
            from_chat_id,
            message_ids,
            protect_content,
        })
    }

    /// `sendPoll` as a quiz: `correct` is the index of the right option; open for
    /// `open_period` seconds (Telegram: 5–600).
    pub fn quiz(
        question: impl Into<String>,
        options: Vec<String>,
        correct: u8,
        explanation: Option<String>,
        open_period: Option<u16>,
    ) -> Self {
        Content::SendPoll {
            question: question.into(),
            options,
            correct_option_id: Some(correct),
            explanation,
            open_period,
            is_anonymous: false,
        }
    }

    /// `answerCallbackQuery`: the toast after a button press.
    pub fn answer_callback(callback_query_id: impl Into<String>, text: Option<String>) -> Self {
        Content::AnswerCallbackQuery {
            callback_query_id: callback_query_id.into(),
            text,
        }
    }

    /// `deleteMessage`.
    pub fn delete(message_id: i32) -> Self {
        Content::DeleteMessage { message_id }
    }
}

/// One entry of Telegram's command menu: `command` without the slash, 1–32 characters
/// of `a-z0-9_`; `description` 1–256 characters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MenuCommand {
    pub command: String,
    pub description: String,
}

/// A message the bot sends, published on `herald.out.notify.<chat>` (bulk) or
/// `herald.out.reply.<chat>` (interactive).
///
/// `idempotency_key` is also the `Nats-Msg-Id`; the bot records it once Telegram has
/// accepted the call and never sends the same key twice.
///
/// ```
/// use herald_schemas::{OutboundMessage, Priority};
/// let m = OutboundMessage::html("upd.7", 42, "<b>hi</b>", Priority::Reply, 0);
/// assert_eq!(m.text(), Some("<b>hi</b>"));
/// let back: OutboundMessage = herald_schemas::decode(&herald_schemas::encode(&m)).unwrap();
/// assert_eq!(back, m);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct OutboundMessage {
    pub v: u32,
    pub idempotency_key: String,
    pub chat_id: i64,
    pub content: Content,
    pub priority: Priority,
    /// When the event that caused this message entered Herald (ms since epoch).
    pub origin_ts_ms: u64,
    /// Where the bot publishes a [`crate::DeliveryReport`] once Telegram has answered
    /// (sent, blocked or refused), for products that act on the outcome (the random
    /// chat maps message ids and ends a chat with a blocked partner). `None`: no report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

impl OutboundMessage {
    /// A message with any content.
    pub fn new(key: impl Into<String>, chat_id: i64, content: Content, priority: Priority, origin_ts_ms: u64) -> Self {
        OutboundMessage {
            v: 2,
            idempotency_key: key.into(),
            chat_id,
            content: content.telegram_safe(),
            priority,
            origin_ts_ms,
            report: None,
        }
    }

    /// The same message, with a [`crate::DeliveryReport`] published on `subject` once
    /// Telegram has answered.
    pub fn reported_to(self, subject: impl Into<String>) -> Self {
        OutboundMessage {
            report: Some(subject.into()),
            ..self
        }
    }

    /// `sendMessage` with HTML `text` (already escaped where it holds user input).
    pub fn html(key: impl Into<String>, chat_id: i64, text: impl Into<String>, priority: Priority, origin_ts_ms: u64) -> Self {
        Self::new(key, chat_id, Content::text(text), priority, origin_ts_ms)
    }

    /// The text or caption the user reads, if the call carries one.
    pub fn text(&self) -> Option<&str> {
        match &self.content {
            Content::SendMessage { text, .. } | Content::EditMessageText { text, .. } | Content::SendWebApp { text, .. } => Some(text),
            Content::SendPhoto { caption, .. } | Content::EditMessageCaption { caption, .. } => Some(caption),
            Content::SendPoll { question, .. } => Some(question),
            Content::AnswerCallbackQuery { text, .. } => text.as_deref(),
            _ => None,
        }
    }

    /// Whether the call puts a message in a chat, and so counts against Telegram's
    /// per-chat and overall message limits: the toast of `answerCallbackQuery` and
    /// `setMyCommands` do not.
    pub fn makes_message(&self) -> bool {
        !matches!(self.content, Content::AnswerCallbackQuery { .. } | Content::SetMyCommands { .. })
    }

    /// The inline keyboard, if any.
    pub fn buttons(&self) -> &[Vec<Button>] {
        match &self.content {
            Content::SendMessage { buttons, .. }
            | Content::EditMessageText { buttons, .. }
            | Content::EditMessageReplyMarkup { buttons, .. }
            | Content::SendPhoto { buttons, .. } => buttons,
            _ => &[],
        }
    }
}

/// The wire form: version 2 carries `content`; version 1 (written before it) carried
/// `text`, `buttons`, `edit_message_id` and `qr_code`, still read so messages in
/// flight across an upgrade are delivered.
#[derive(Deserialize)]
struct WireMessage {
    #[serde(default = "crate::one")]
    v: u32,
    idempotency_key: String,
    chat_id: i64,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    buttons: Vec<Vec<Button>>,
    #[serde(default)]
    edit_message_id: Option<i32>,
    #[serde(default)]
    qr_code: Option<String>,
    priority: Priority,
    origin_ts_ms: u64,
    #[serde(default)]
    report: Option<String>,
}

impl<'de> Deserialize<'de> for OutboundMessage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        WireMessage::deserialize(d).map(Into::into)
    }
}

impl From<WireMessage> for OutboundMessage {
    fn from(w: WireMessage) -> Self {
        let text = w.text.unwrap_or_default();
        let content = match (w.content, w.edit_message_id, w.qr_code) {
            (Some(c), _, _) => c,
            (None, Some(message_id), _) => Content::EditMessageText {
                message_id,
                text,
                buttons: w.buttons,
            },
            (None, None, Some(data)) => Content::SendPhoto {
                photo: Photo::QrCode { data },
                caption: text,
                buttons: w.buttons,
            },
            (None, None, None) => Content::SendMessage {
                text,
                buttons: w.buttons,
                reply_to: None,
            },
        };
        OutboundMessage {
            v: w.v,
            idempotency_key: w.idempotency_key,
            chat_id: w.chat_id,
            content,
            priority: w.priority,
            origin_ts_ms: w.origin_ts_ms,
            report: w.report,
        }
    }
}

impl Versioned for OutboundMessage {
    const VERSION: u32 = 2;
    const SCHEMA_NAME: &'static str = "outbound_message";
    fn version(&self) -> u32 {
        self.v
    }
}

/// A plain text cut to `max` UTF-16 code units (Telegram's unit), `…` at the end when
/// cut.
fn cut_plain(s: &str, max: usize) -> String {
    if s.encode_utf16().count() <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        if used + c.len_utf16() > max - 1 {
            break;
        }
        used += c.len_utf16();
        out.push(c);
    }
    out.push('…');
    out
}

/// Escapes `&`, `<` and `>` for Telegram's HTML parse mode, the three characters it
/// requires escaped outside tags (core.telegram.org/bots/api#html-style).
///
/// ```
/// assert_eq!(herald_schemas::escape_html("<a & b>"), "&lt;a &amp; b&gt;");
/// ```
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_one_messages_are_still_read() {
        let v1 = r#"{"v":1,"idempotency_key":"k","chat_id":5,"text":"addr","qr_code":"0xabc","priority":"reply","origin_ts_ms":1}"#;
        let m: OutboundMessage = crate::decode(v1.as_bytes()).unwrap();
        assert_eq!(
            m.content,
            Content::SendPhoto {
                photo: Photo::QrCode { data: "0xabc".into() },
                caption: "addr".into(),
                buttons: vec![]
            }
        );
        let edit = r#"{"idempotency_key":"k","chat_id":5,"text":"menu","edit_message_id":9,"priority":"reply","origin_ts_ms":1}"#;
        let m: OutboundMessage = crate::decode(edit.as_bytes()).unwrap();
        assert!(matches!(m.content, Content::EditMessageText { message_id: 9, .. }));
        let plain = r#"{"v":1,"idempotency_key":"k","chat_id":5,"text":"hi","priority":"broadcast","origin_ts_ms":1}"#;
        let m: OutboundMessage = crate::decode(plain.as_bytes()).unwrap();
        assert_eq!(m.text(), Some("hi"));
        assert!(matches!(m.content, Content::SendMessage { .. }));
    }
}
