//! A Telegram Bot API emulator.
//!
//! Bot API methods under `/bot<token>/<method>` (JSON, form, multipart or query
//! parameters, see [`request`]):
//! `getMe`, `getUpdates` (long polling with offsets), `sendMessage`, `sendPoll` and
//! `stopPoll` (quiz rules below), `sendPhoto` (an
//! uploaded photo is checked as Telegram checks it and any QR code in it read, see
//! [`photo`]), `editMessageText`, `answerCallbackQuery`, `setWebhook`, `deleteWebhook`,
//! `setMyCommands`. Limits as
//! Telegram documents them (core.telegram.org/bots/faq): 30 messages/s overall (1000/s
//! with `allow_paid_broadcast`), 1/s per private chat, 20/min per group; a message over
//! a limit gets HTTP 429 `{"ok":false,"error_code":429,"description":"Too Many Requests:
//! retry after N","parameters":{"retry_after":N}}` and is not delivered. Short bursts
//! are tolerated as Telegram does (burst 5 overall, 2 per chat, 3 per group).
//!
//! Polls (core.telegram.org/bots/api#sendpoll): a question of 1–300 characters, 2–10
//! options of 1–100 characters, a quiz needs a `correct_option_id` among them, an
//! explanation of at most 200 characters, an `open_period` of 5–600 s. A user's vote is
//! a `poll_answer` update only for a non-anonymous poll the bot sent, while it is open
//! (`stopPoll` or the open period closes it); one vote per user, as in a quiz.
//!
//! Control API for tests: `POST /control/updates` (queue updates, numbered by the
//! emulator as Telegram numbers them), `GET /control/deliveries`, `GET /control/stats`, `POST /control/fail`
//! (`{"chat_id":1,"status":429|500|403,"retry_after":2,"times":1}`), `POST /control/block`,
//! and random 429s on any send ([`EmulatorLimits::p429`]). `copyMessage(s)` copies what
//! Telegram can: not a service message, protected content, or a deleted message
//! ([`Emulator::delete_user_message`]); `copyMessages` skips those and answers the ids
//! of the copies it made, in order.
//! `POST /control/vote` (`{"poll_id":"…","user_id":7,"option":1}`: a user votes).
//! `GET /healthz` answers `ok` (the container's healthcheck).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

mod entities;
pub mod photo;
pub mod request;

/// Emulated limits.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulatorLimits {
    /// Messages per second overall.
    #[arg(long, default_value_t = 30)]
    pub global_rate: u32,
    /// Messages per second overall for `allow_paid_broadcast` messages.
    #[arg(long, default_value_t = 1000)]
    pub paid_rate: u32,
    /// Messages per second per private chat.
    #[arg(long, default_value_t = 1)]
    pub chat_rate: u32,
    /// Messages per minute per group or channel.
    #[arg(long, default_value_t = 20)]
    pub group_rate_per_min: u32,
    /// Chance (0–1) that a send within the limits still gets a 429 (`retry_after` 1–2 s),
    /// as Telegram answers under load it does not explain: a fault to test against.
    #[arg(long, default_value_t = 0.0)]
    pub p429: f64,
}

impl Default for EmulatorLimits {
    fn default() -> Self {
        EmulatorLimits {
            global_rate: 30,
            paid_rate: 1000,
            chat_rate: 1,
            group_rate_per_min: 20,
            p429: 0.0,
        }
    }
}

/// One message the bot got through.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// Order of acceptance, from 1.
    pub seq: u64,
    pub method: String,
    pub chat_id: i64,
    pub message_id: i64,
    /// The message text, or a photo's caption.
    pub text: String,
    #[serde(default)]
    pub reply_markup: Option<Value>,
    /// For `sendPhoto`: the text of the QR code in the photo, as a phone would read it.
    #[serde(default)]
    pub photo_qr: Option<String>,
    /// For a copy: the chat and id of the message copied.
    #[serde(default)]
    pub source: Option<(i64, i64)>,
    /// The message it replies to (`reply_parameters.message_id`).
    #[serde(default)]
    pub reply_to: Option<i64>,
    /// For `sendPoll`: the poll's id, which votes name.
    #[serde(default)]
    pub poll_id: Option<String>,
    /// The Bot API call that made it, numbered from 1 (the messages of one
    /// `copyMessages` share it).
    #[serde(default)]
    pub call: u64,
    /// Sent with `protect_content` (the recipient cannot forward or save it).
    #[serde(default)]
    pub protected: bool,
    pub at_ms: u64,
}

/// Counters of what the emulator answered.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub delivered: u64,
    pub too_many_requests: u64,
    pub server_errors: u64,
    pub forbidden: u64,
    pub updates_served: u64,
}

/// A failure to inject for a chat's next sends.
#[derive(Debug, Clone, Deserialize)]
pub struct Fail {
    pub chat_id: i64,
    pub status: u16,
    #[serde(default = "one")]
    pub retry_after: u64,
    #[serde(default = "one")]
    pub times: u64,
}

fn one() -> u64 {
    1
}

struct Emu {
    updates: Mutex<VecDeque<Value>>,
    next_update_id: AtomicI64,
    updates_ready: tokio::sync::Notify,
    deliveries: Mutex<Vec<Delivery>>,
    next_message_id: AtomicI64,
    global: DefaultDirectRateLimiter,
    paid: DefaultDirectRateLimiter,
    chat: DefaultKeyedRateLimiter<i64>,
    group: DefaultKeyedRateLimiter<i64>,
    failures: Mutex<HashMap<i64, VecDeque<Fail>>>,
    /// Failures answered from `failures`: (chat, status, ms since the epoch).
    injected: Mutex<Vec<(i64, u16, u64)>>,
    blocked: Mutex<HashSet<i64>>,
    stats: Mutex<Stats>,
    seq: AtomicU64,
    calls: AtomicU64,
    /// The menu of the last `setMyCommands`.
    menu: Mutex<Vec<Value>>,
    /// Every message the emulator knows, by (chat, message id): users' (from pushed
    /// updates) and the bot's; what `copyMessage` copies.
    messages: Mutex<HashMap<(i64, i64), Value>>,
    /// The bot's polls, by poll id.
    polls: Mutex<HashMap<String, SentPoll>>,
    /// [`EmulatorLimits::p429`].
    p429: f64,
}

/// A poll the bot sent.
#[derive(Debug, Clone)]
struct SentPoll {
    chat_id: i64,
    message_id: i64,
    options: usize,
    anonymous: bool,
    /// Closes then (ms since the epoch), from `open_period`.
    closes_at_ms: Option<u64>,
    stopped: bool,
    voters: HashSet<i64>,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("non-zero")
}

/// A running emulator.
///
/// ```no_run
/// use herald_loadtest::emulator::{Emulator, EmulatorLimits, Fail};
///
/// # async fn demo() -> anyhow::Result<()> {
/// let telegram = Emulator::start("127.0.0.1:0".parse()?, EmulatorLimits::default()).await?;
/// // point the bot at it: TELOXIDE_API_URL=telegram.url()
/// telegram.push_update(serde_json::json!({"message": {"message_id": 1, "date": 0,
///     "chat": {"id": 7, "type": "private"}, "from": {"id": 7, "is_bot": false, "first_name": "A"}, "text": "/start"}}));
/// telegram.fail(Fail { chat_id: 7, status: 429, retry_after: 3, times: 1 });
/// println!("{} delivered", telegram.deliveries().len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Emulator {
    emu: Arc<Emu>,
    pub addr: SocketAddr,
}

impl Emulator {
    /// Binds `addr` (port 0 for any free port) and serves until the runtime stops.
    pub async fn start(addr: SocketAddr, limits: EmulatorLimits) -> anyhow::Result<Self> {
        let emu = Arc::new(Emu {
            updates: Mutex::new(VecDeque::new()),
            next_update_id: AtomicI64::new(100_000),
            updates_ready: tokio::sync::Notify::new(),
            deliveries: Mutex::new(Vec::new()),
            next_message_id: AtomicI64::new(1),
            global: RateLimiter::direct(Quota::per_second(nz(limits.global_rate)).allow_burst(nz(5))),
            paid: RateLimiter::direct(Quota::per_second(nz(limits.paid_rate)).allow_burst(nz(50))),
            chat: RateLimiter::keyed(Quota::per_second(nz(limits.chat_rate)).allow_burst(nz(2))),
            group: RateLimiter::keyed(Quota::per_minute(nz(limits.group_rate_per_min)).allow_burst(nz(3))),
            failures: Mutex::new(HashMap::new()),
            injected: Mutex::new(Vec::new()),
            blocked: Mutex::new(HashSet::new()),
            stats: Mutex::new(Stats::default()),
            seq: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            menu: Mutex::new(Vec::new()),
            messages: Mutex::new(HashMap::new()),
            polls: Mutex::new(HashMap::new()),
            p429: limits.p429,
        });
        let app = Router::new()
            .route("/{bot}/{method}", any(bot_api))
            .route("/control/updates", post(control_updates))
            .route("/control/deliveries", get(control_deliveries))
            .route("/control/stats", get(control_stats))
            .route("/control/fail", post(control_fail))
            .route("/control/block", post(control_block))
            .route("/control/vote", post(control_vote))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(emu.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Emulator { emu, addr })
    }

    /// `http://addr`, the value for `TELOXIDE_API_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues an update for getUpdates under a fresh `update_id`. Returns it.
    pub fn push_update(&self, update: Value) -> i64 {
        push_update(&self.emu, update)
    }

    /// The command menu last set with `setMyCommands`.
    pub fn menu(&self) -> Vec<Value> {
        self.emu.menu.lock().unwrap().clone()
    }

    /// Every delivery so far, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.emu.deliveries.lock().unwrap().clone()
    }

    /// The deliveries after the first `skip` (a reader that keeps its place).
    pub fn deliveries_from(&self, skip: usize) -> Vec<Delivery> {
        self.emu.deliveries.lock().unwrap().iter().skip(skip).cloned().collect()
    }

    /// The failures injected with [`Emulator::fail`] that were answered, in order:
    /// (chat, HTTP status, when in ms since the epoch).
    pub fn injected_failures(&self) -> Vec<(i64, u16, u64)> {
        self.emu.injected.lock().unwrap().clone()
    }

    pub fn stats(&self) -> Stats {
        self.emu.stats.lock().unwrap().clone()
    }

    /// Answers every later send to `chat_id` with 403 (the user blocked the bot).
    pub fn block(&self, chat_id: i64) {
        self.emu.blocked.lock().unwrap().insert(chat_id);
    }

    /// `user_id` votes `option` in poll `poll_id`: a `poll_answer` update, if Telegram
    /// would make one. Returns its update id.
    ///
    /// Errors: why not (no such poll, anonymous, closed, voted already, no such option).
    pub fn vote(&self, poll_id: &str, user_id: i64, option: usize) -> Result<i64, String> {
        vote(&self.emu, poll_id, user_id, option)
    }

    /// The user deletes message `message_id` of chat `chat_id`: a later copy of it finds
    /// nothing (`copyMessages` skips it, `copyMessage` answers "message to copy not
    /// found"). Whether it existed.
    pub fn delete_user_message(&self, chat_id: i64, message_id: i64) -> bool {
        self.emu.messages.lock().unwrap().remove(&(chat_id, message_id)).is_some()
    }

    /// Makes the next `f.times` sends to `f.chat_id` fail with `f.status`.
    pub fn fail(&self, f: Fail) {
        self.emu.failures.lock().unwrap().entry(f.chat_id).or_default().push_back(f);
    }
}

/// Queues an update under a fresh `update_id`: like Telegram, the emulator numbers
/// updates itself, monotonically (recorded fixtures carry ids from other bots).
fn push_update(emu: &Emu, mut update: Value) -> i64 {
    let id = emu.next_update_id.fetch_add(1, Ordering::SeqCst);
    if let Some(obj) = update.as_object_mut() {
        obj.insert("update_id".into(), json!(id));
    }
    if let Some(m) = update.get("message") {
        if let (Some(chat), Some(mid)) = (m.pointer("/chat/id").and_then(Value::as_i64), m["message_id"].as_i64()) {
            emu.messages.lock().unwrap().insert((chat, mid), m.clone());
        }
    }
    emu.updates.lock().unwrap().push_back(update);
    emu.updates_ready.notify_waiters();
    id
}

fn ok(result: Value) -> Response {
    Json(json!({"ok": true, "result": result})).into_response()
}

fn err(code: u16, description: &str, retry_after: Option<u64>) -> Response {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(r) = retry_after {
        body["parameters"] = json!({"retry_after": r});
    }
    (StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST), Json(body)).into_response()
}

fn int(p: &Value, key: &str) -> Option<i64> {
    match p.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn bot_user() -> Value {
    json!({"id": 7000000001i64, "is_bot": true, "first_name": "Herald", "username": "herald_emulator_bot",
        "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
        "can_connect_to_business": false, "has_main_web_app": false})
}

async fn bot_api(
    State(emu): State<Arc<Emu>>,
    Path((bot, method)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !bot.starts_with("bot") || bot.len() < 4 {
        return err(404, "Not Found", None);
    }
    let req = match request::parse(q, &headers, body).await {
        Ok(req) => req,
        Err(e) => return err(400, &format!("Bad Request: {e}"), None),
    };
    let p = &req.params;
    // Bot API method names are case-insensitive (teloxide sends `SendMessage`).
    match method.to_ascii_lowercase().as_str() {
        "getme" => ok(bot_user()),
        "getupdates" => get_updates(&emu, p).await,
        "sendmessage" => send(&emu, "sendMessage", &req),
        "sendphoto" => send(&emu, "sendPhoto", &req),
        "editmessagetext" => send(&emu, "editMessageText", &req),
        "editmessagecaption" => send(&emu, "editMessageCaption", &req),
        "editmessagereplymarkup" => send(&emu, "editMessageReplyMarkup", &req),
        "sendpoll" => send(&emu, "sendPoll", &req),
        "stoppoll" => stop_poll(&emu, p),
        "copymessage" => copy(&emu, &req, false),
        "copymessages" => copy(&emu, &req, true),
        "deletemessage" => delete(&emu, p),
        "setmycommands" => set_my_commands(&emu, p),
        "answercallbackquery" | "setwebhook" | "deletewebhook" => ok(json!(true)),
        "getwebhookinfo" => ok(json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0})),
        _ => err(404, "Not Found: method not found", None),
    }
}

/// `setMyCommands`, with Telegram's rules (core.telegram.org/bots/api#botcommand): at
/// most 100 commands, each 1–32 characters of lowercase letters, digits and
/// underscores, with a description of 1–256 characters. The menu is kept.
fn set_my_commands(emu: &Emu, p: &Value) -> Response {
    let commands = match p.get("commands") {
        Some(Value::String(s)) => serde_json::from_str::<Value>(s).unwrap_or(Value::Null),
        Some(v) => v.clone(),
        None => return err(400, "Bad Request: parameter \"commands\" is required", None),
    };
    let Some(list) = commands.as_array() else {
        return err(400, "Bad Request: can't parse commands JSON object", None);
    };
    if list.len() > 100 {
        return err(400, "Bad Request: too many commands specified", None);
    }
    for c in list {
        let command = c["command"].as_str().unwrap_or_default();
        let description = c["description"].as_str().unwrap_or_default();
        let valid = (1..=32).contains(&command.len()) && command.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return err(400, "Bad Request: BOT_COMMAND_INVALID", None);
        }
        if !(1..=256).contains(&description.chars().count()) {
            return err(400, "Bad Request: command description is empty or too long", None);
        }
    }
    *emu.menu.lock().unwrap() = list.clone();
    ok(json!(true))
}

async fn get_updates(emu: &Emu, p: &Value) -> Response {
    let offset = int(p, "offset").unwrap_or(0);
    let limit = int(p, "limit").unwrap_or(100).clamp(1, 100) as usize;
    let timeout = Duration::from_secs(int(p, "timeout").unwrap_or(0).clamp(0, 50) as u64);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = emu.updates_ready.notified();
        {
            let mut q = emu.updates.lock().unwrap();
            // Telegram forgets updates below the offset: that is the confirmation.
            while q.front().and_then(|u| u["update_id"].as_i64()).is_some_and(|id| id < offset) {
                q.pop_front();
            }
            if !q.is_empty() {
                let batch: Vec<Value> = q.iter().take(limit).cloned().collect();
                emu.stats.lock().unwrap().updates_served += batch.len() as u64;
                return ok(Value::Array(batch));
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return ok(json!([]));
        }
    }
}

fn retry_after(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// The text (or caption) and the photo of a send, or Telegram's refusal.
fn content(method: &str, req: &request::Request) -> Result<(String, Option<photo::Photo>), String> {
    let field = |name: &str| req.params.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
    match method {
        "editMessageCaption" if field("caption").chars().count() > 1024 => return Err("Bad Request: message caption is too long".into()),
        "editMessageCaption" => return Ok((field("caption"), None)),
        "editMessageReplyMarkup" => return Ok((String::new(), None)),
        "sendPoll" => return poll(req).map(|q| (q, None)).map_err(String::from),
        _ => {}
    }
    let html = req.params.get("parse_mode").and_then(Value::as_str) == Some("HTML");
    // the limits count the text after entity parsing
    let length = |s: &str| -> Result<usize, String> {
        if html {
            entities::parse_html(s).map_err(|e| format!("Bad Request: {e}"))
        } else {
            Ok(s.encode_utf16().count())
        }
    };
    if method != "sendPhoto" {
        let text = field("text");
        return match length(&text)? {
            _ if text.is_empty() => Err("Bad Request: message text is empty".into()),
            4097.. => Err("Bad Request: message is too long".into()),
            _ => Ok((text, None)),
        };
    }
    let caption = field("caption");
    if length(&caption)? > 1024 {
        return Err("Bad Request: message caption is too long".into());
    }
    // an upload is the `photo` part itself, or a part named by `photo=attach://<name>`
    let attached = field("photo").strip_prefix("attach://").and_then(|name| req.files.get(name));
    match (req.files.get("photo").or(attached), req.params.get("photo")) {
        (Some(upload), _) => Ok((caption, Some(photo::read(upload).map_err(String::from)?))),
        (None, Some(Value::String(id))) if !id.starts_with("attach://") => Ok((caption, Some(photo::Photo::default()))), // a file_id or URL
        _ => Err("Bad Request: there is no photo in the request".into()),
    }
}

/// `sendPoll`'s rules (core.telegram.org/bots/api#sendpoll): a question of 1–300
/// characters, 2–10 options of 1–100 characters, a quiz with a `correct_option_id`
/// among them, an explanation of 0–200 characters, an `open_period` of 5–600 s. The
/// question, for the delivery.
fn poll(req: &request::Request) -> Result<String, &'static str> {
    let p = &req.params;
    let question = p.get("question").and_then(Value::as_str).unwrap_or_default().to_string();
    if !(1..=300).contains(&question.chars().count()) {
        return Err("Bad Request: poll question length must not exceed 300");
    }
    let options = match p.get("options") {
        Some(Value::String(s)) => serde_json::from_str::<Value>(s).unwrap_or(Value::Null),
        Some(v) => v.clone(),
        None => Value::Null,
    };
    let n = options.as_array().map_or(0, Vec::len);
    if n < 2 {
        return Err("Bad Request: poll must have at least 2 option");
    }
    if n > 10 {
        return Err("Bad Request: poll can't have more than 10 options");
    }
    let option_text = |o: &Value| {
        o.get("text")
            .and_then(Value::as_str)
            .or_else(|| o.as_str())
            .unwrap_or_default()
            .chars()
            .count()
    };
    if options
        .as_array()
        .into_iter()
        .flatten()
        .any(|o| !(1..=100).contains(&option_text(o)))
    {
        return Err("Bad Request: poll options length must not exceed 100");
    }
    if p.get("explanation")
        .and_then(Value::as_str)
        .is_some_and(|e| e.chars().count() > 200)
    {
        return Err("Bad Request: explanation is too long");
    }
    let quiz = p.get("type").and_then(Value::as_str) == Some("quiz");
    match int(p, "correct_option_id") {
        Some(c) if c < 0 || c as usize >= n => return Err("Bad Request: wrong correct option ID specified"),
        None if quiz => return Err("Bad Request: correct option ID must be specified in quiz polls"),
        _ => {}
    }
    if int(p, "open_period").is_some_and(|s| !(5..=600).contains(&s)) {
        return Err("Bad Request: wrong open period specified");
    }
    Ok(question)
}

/// Service messages (a member joined, a title changed, a pin...), invoices, paid media
/// and giveaways cannot be copied.
fn is_service(m: &Value) -> bool {
    [
        "new_chat_members",
        "left_chat_member",
        "new_chat_title",
        "new_chat_photo",
        "delete_chat_photo",
        "group_chat_created",
        "pinned_message",
        "migrate_to_chat_id",
        "successful_payment",
        "message_auto_delete_timer_changed",
        // not service messages, but not copyable either
        "invoice",
        "paid_media",
        "giveaway",
        "giveaway_winners",
    ]
    .iter()
    .any(|k| m.get(*k).is_some())
}

/// `copyMessage` and `copyMessages` (core.telegram.org/bots/api#copymessage): a missing
/// message is "message to copy not found" (one) or skipped (many); a service message
/// "can't be copied"; `copyMessages` takes 1–100 ids in strictly increasing order.
fn copy(emu: &Emu, req: &request::Request, many: bool) -> Response {
    let p = &req.params;
    let Some(from) = int(p, "from_chat_id") else {
        return err(400, "Bad Request: chat_id is empty", None);
    };
    let ids: Vec<i64> = if many {
        let list = match p.get("message_ids") {
            Some(Value::String(s)) => serde_json::from_str::<Vec<i64>>(s).unwrap_or_default(),
            Some(v) => serde_json::from_value::<Vec<i64>>(v.clone()).unwrap_or_default(),
            None => Vec::new(),
        };
        if list.is_empty() || list.len() > 100 {
            return err(400, "Bad Request: message identifiers are not specified", None);
        }
        if list.windows(2).any(|w| w[0] >= w[1]) {
            return err(400, "Bad Request: message identifiers must be in strictly increasing order", None);
        }
        list
    } else {
        vec![int(p, "message_id").unwrap_or(0)]
    };
    let sources: Vec<Value> = {
        let known = emu.messages.lock().unwrap();
        ids.iter().filter_map(|id| known.get(&(from, *id)).cloned()).collect()
    };
    // core.telegram.org/bots/api#copymessage: service messages, paid media, giveaways
    // and invoices can't be copied, and "a quiz poll can be copied only if the value of
    // the field correct_option_id is known to the bot"; copyMessages skips what it
    // cannot copy ("If some of the specified messages can't be found or copied, they
    // are skipped"), copyMessage refuses it
    let quiz_without_answer = |m: &Value| m.pointer("/poll/type") == Some(&json!("quiz")) && m.pointer("/poll/correct_option_id").is_none();
    // "has_protected_content: True, if the message can't be forwarded" (#message); the
    // Bot API refuses to copy it too
    let protected = |m: &Value| m.get("has_protected_content") == Some(&json!(true));
    let copyable = |m: &Value| !(is_service(m) || quiz_without_answer(m) || protected(m));
    if !many && !sources.iter().all(copyable) {
        return err(400, "Bad Request: message can't be copied", None);
    }
    let sources: Vec<Value> = sources.into_iter().filter(copyable).collect();
    if sources.is_empty() {
        return err(400, "Bad Request: message to copy not found", None);
    }
    let Some(chat_id) = int(p, "chat_id") else {
        return err(400, "Bad Request: chat_id is empty", None);
    };
    let call = emu.calls.fetch_add(1, Ordering::SeqCst) + 1;
    let mut copied = Vec::new();
    for (i, m) in sources.iter().enumerate() {
        let text = m
            .get("text")
            .or_else(|| m.get("caption"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let made = Made {
            method: if many { "copyMessages" } else { "copyMessage" },
            chat_id,
            text: text.to_string(),
            photo: None,
            source: Some((from, m)),
            // one call, counted once against the limits
            limited: i == 0,
            call,
        };
        match deliver(emu, made, p) {
            Ok(message) => copied.push(json!({"message_id": message["message_id"]})),
            Err(refused) => return *refused,
        }
    }
    match many {
        true => ok(Value::Array(copied)),
        false => ok(copied.remove(0)),
    }
}

/// `deleteMessage`: true, or "message to delete not found".
fn delete(emu: &Emu, p: &Value) -> Response {
    let (Some(chat_id), Some(id)) = (int(p, "chat_id"), int(p, "message_id")) else {
        return err(400, "Bad Request: message identifier is not specified", None);
    };
    if emu.messages.lock().unwrap().remove(&(chat_id, id)).is_none() {
        return err(400, "Bad Request: message to delete not found", None);
    }
    let delivery = Delivery {
        seq: emu.seq.fetch_add(1, Ordering::SeqCst) + 1,
        method: "deleteMessage".into(),
        chat_id,
        message_id: id,
        text: String::new(),
        reply_markup: None,
        photo_qr: None,
        source: None,
        reply_to: None,
        poll_id: None,
        call: emu.calls.fetch_add(1, Ordering::SeqCst) + 1,
        protected: false,
        at_ms: herald_schemas::now_ms(),
    };
    emu.deliveries.lock().unwrap().push(delivery);
    ok(json!(true))
}

fn send(emu: &Emu, method: &str, req: &request::Request) -> Response {
    let p = &req.params;
    let Some(chat_id) = int(p, "chat_id") else {
        return err(400, "Bad Request: chat_id is empty", None);
    };
    if let Some(refused) = web_app_buttons(p, chat_id) {
        return err(400, &refused, None);
    }
    let (text, photo) = match content(method, req) {
        Ok(c) => c,
        Err(description) => return err(400, &description, None),
    };
    let made = Made {
        method,
        chat_id,
        text,
        photo,
        source: None,
        limited: true,
        call: emu.calls.fetch_add(1, Ordering::SeqCst) + 1,
    };
    match deliver(emu, made, p) {
        Ok(message) => ok(message),
        Err(refused) => *refused,
    }
}

/// Telegram's rules for `web_app` buttons (core.telegram.org/bots/api#webappinfo,
/// #inlinekeyboardbutton): an https URL, in a private chat only; and for `url` buttons:
/// an http(s) or tg:// link to a public host (a local one is BUTTON_URL_INVALID).
fn web_app_buttons(p: &Value, chat_id: i64) -> Option<String> {
    let markup = match p.get("reply_markup")? {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        other => other.clone(),
    };
    let rows = markup["inline_keyboard"].as_array()?;
    for b in rows.iter().filter_map(Value::as_array).flatten() {
        // a link button: Telegram takes http(s) and tg:// links, not local ones
        if let Some(link) = b.get("url").and_then(Value::as_str) {
            let host = link
                .split("://")
                .nth(1)
                .unwrap_or_default()
                .split(['/', ':', '?'])
                .next()
                .unwrap_or_default();
            let scheme_ok = ["https://", "http://", "tg://"].iter().any(|s| link.starts_with(s));
            if !scheme_ok || host.is_empty() || host == "localhost" || host.starts_with("127.") {
                return Some("Bad Request: BUTTON_URL_INVALID".into());
            }
        }
        let Some(url) = b.pointer("/web_app/url").and_then(Value::as_str) else {
            continue;
        };
        if !url.starts_with("https://") {
            return Some(format!(
                "Bad Request: inline keyboard button Web App URL '{url}' is invalid: Only HTTPS links are allowed"
            ));
        }
        if chat_id < 0 {
            return Some("Bad Request: BUTTON_TYPE_INVALID".into());
        }
    }
    None
}

/// One message a call makes.
struct Made<'a> {
    method: &'a str,
    chat_id: i64,
    text: String,
    photo: Option<photo::Photo>,
    /// For a copy: the source chat and message, whose content the copy takes.
    source: Option<(i64, &'a Value)>,
    /// Whether it counts against Telegram's limits (a `copyMessages` call counts once).
    limited: bool,
    call: u64,
}

/// What a copy takes of its source: its content, not its identity or its album.
const NOT_COPIED: &[&str] = &[
    "message_id",
    "from",
    "chat",
    "date",
    "edit_date",
    "media_group_id",
    "reply_to_message",
    "forward_origin",
];

/// The part every send shares: injected failures, a blocked user, Telegram's limits,
/// then the delivery recorded and the message (as Telegram returns it) kept.
fn deliver(emu: &Emu, made: Made, p: &Value) -> Result<Value, Box<Response>> {
    let Made {
        method,
        chat_id,
        text,
        photo,
        source,
        limited,
        call,
    } = made;
    let injected = emu.failures.lock().unwrap().get_mut(&chat_id).and_then(|q| {
        let f = q.front_mut()?;
        f.times = f.times.saturating_sub(1);
        let out = f.clone();
        if f.times == 0 {
            q.pop_front();
        }
        Some(out)
    });
    if let Some(f) = injected {
        emu.injected.lock().unwrap().push((chat_id, f.status, herald_schemas::now_ms()));
        return Err(Box::new(refuse(emu, f.status, f.retry_after)));
    }
    if emu.blocked.lock().unwrap().contains(&chat_id) {
        return Err(Box::new(refuse(emu, 403, 0)));
    }
    let paid = p.get("allow_paid_broadcast").is_some_and(|v| v == &json!(true) || v == "true");
    if limited {
        let global = if paid { emu.paid.check() } else { emu.global.check() };
        let chat = emu.chat.check_key(&chat_id);
        let group = if chat_id < 0 { emu.group.check_key(&chat_id) } else { Ok(()) };
        let now = governor::clock::Clock::now(&governor::clock::DefaultClock::default());
        for check in [global, chat, group] {
            if let Err(not_until) = check {
                return Err(Box::new(refuse(emu, 429, retry_after(not_until.wait_time_from(now)))));
            }
        }
        if emu.p429 > 0.0 && rand::random::<f64>() < emu.p429 {
            return Err(Box::new(refuse(emu, 429, rand::random_range(1..=2))));
        }
    }
    let message_id = match method {
        "editMessageText" | "editMessageCaption" | "editMessageReplyMarkup" => int(p, "message_id").unwrap_or(0),
        _ => emu.next_message_id.fetch_add(1, Ordering::SeqCst),
    };
    let reply_markup = p.get("reply_markup").map(|m| match m {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        other => other.clone(),
    });
    let delivery = Delivery {
        seq: emu.seq.fetch_add(1, Ordering::SeqCst) + 1,
        method: method.to_string(),
        chat_id,
        message_id,
        text: text.clone(),
        reply_markup,
        photo_qr: photo.as_ref().and_then(|p| p.qr_text.clone()),
        source: source.and_then(|(chat, m)| Some((chat, m["message_id"].as_i64()?))),
        reply_to: reply_to(p),
        poll_id: (method == "sendPoll").then(|| format!("poll-{message_id}")),
        call,
        protected: p.get("protect_content").is_some_and(|v| v == &json!(true) || v == "true"),
        at_ms: herald_schemas::now_ms(),
    };
    if method == "sendPoll" {
        let poll = SentPoll {
            chat_id,
            message_id,
            options: poll_options(p).len(),
            anonymous: p.get("is_anonymous").is_none_or(|v| v == &json!(true) || v == "true"),
            closes_at_ms: int(p, "open_period").map(|s| herald_schemas::now_ms() + s as u64 * 1000),
            stopped: false,
            voters: HashSet::new(),
        };
        emu.polls.lock().unwrap().insert(format!("poll-{message_id}"), poll);
    }
    emu.deliveries.lock().unwrap().push(delivery);
    emu.stats.lock().unwrap().delivered += 1;
    let chat = if chat_id > 0 {
        json!({"id": chat_id, "type": "private", "first_name": "User"})
    } else {
        json!({"id": chat_id, "type": "supergroup", "title": "Group"})
    };
    let mut message = json!({"message_id": message_id, "from": bot_user(), "chat": chat, "date": herald_schemas::now_ms() / 1000});
    match (photo, method, source) {
        (_, _, Some((_, m))) => {
            for (k, v) in m.as_object().into_iter().flatten() {
                if !NOT_COPIED.contains(&k.as_str()) {
                    message[k] = v.clone();
                }
            }
        }
        (Some(p), _, _) => {
            let id = format!("emulator-photo-{message_id}");
            message["photo"] = json!([{"file_id": id, "file_unique_id": id, "width": p.width, "height": p.height}]);
            message["caption"] = json!(text);
        }
        (None, "sendPoll", _) => message["poll"] = poll_object(message_id, &text, p),
        (None, "editMessageCaption", _) => {
            message["photo"] = json!([{"file_id": "emulator-photo", "file_unique_id": "emulator-photo", "width": 1, "height": 1}]);
            message["caption"] = json!(text);
        }
        (None, _, _) => message["text"] = json!(if text.is_empty() { "(message)".to_string() } else { text }),
    }
    emu.messages.lock().unwrap().insert((chat_id, message_id), message.clone());
    Ok(message)
}

/// `reply_parameters.message_id` (a JSON object, or its string in a form).
fn reply_to(p: &Value) -> Option<i64> {
    let params = match p.get("reply_parameters")? {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        other => other.clone(),
    };
    int(&params, "message_id")
}

/// The option texts of a `sendPoll` call.
fn poll_options(p: &Value) -> Vec<String> {
    match p.get("options") {
        Some(Value::String(s)) => serde_json::from_str::<Vec<Value>>(s).unwrap_or_default(),
        Some(v) => serde_json::from_value::<Vec<Value>>(v.clone()).unwrap_or_default(),
        None => Vec::new(),
    }
    .into_iter()
    .map(|o| {
        o.get("text")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| o.as_str().map(str::to_string))
            .unwrap_or_default()
    })
    .collect()
}

/// The `Poll` object of a sent poll, as Telegram returns it.
fn poll_object(message_id: i64, question: &str, p: &Value) -> Value {
    let options = poll_options(p);
    let quiz = p.get("type").and_then(Value::as_str) == Some("quiz");
    let mut poll = json!({
        "id": format!("poll-{message_id}"),
        "question": question,
        "options": options.iter().map(|o| json!({"text": o, "voter_count": 0})).collect::<Vec<_>>(),
        "total_voter_count": 0,
        "is_closed": false,
        "is_anonymous": p.get("is_anonymous").is_none_or(|v| v == &json!(true) || v == "true"),
        "type": if quiz { "quiz" } else { "regular" },
        "allows_multiple_answers": false,
    });
    if let Some(c) = int(p, "correct_option_id") {
        poll["correct_option_id"] = json!(c);
    }
    poll
}

/// `stopPoll` (core.telegram.org/bots/api#stoppoll): closes a poll the bot sent and
/// returns it; "poll has already been closed" the second time.
fn stop_poll(emu: &Emu, p: &Value) -> Response {
    let (Some(chat_id), Some(message_id)) = (int(p, "chat_id"), int(p, "message_id")) else {
        return err(400, "Bad Request: message identifier is not specified", None);
    };
    let mut polls = emu.polls.lock().unwrap();
    let Some((id, poll)) = polls.iter_mut().find(|(_, q)| q.chat_id == chat_id && q.message_id == message_id) else {
        return err(400, "Bad Request: message with poll to stop not found", None);
    };
    let closed = poll.stopped || poll.closes_at_ms.is_some_and(|t| herald_schemas::now_ms() >= t);
    if closed {
        return err(400, "Bad Request: poll has already been closed", None);
    }
    poll.stopped = true;
    let mut object = emu
        .messages
        .lock()
        .unwrap()
        .get(&(chat_id, message_id))
        .and_then(|m| m.get("poll").cloned())
        .unwrap_or_else(|| json!({"id": id}));
    object["is_closed"] = json!(true);
    ok(object)
}

/// A vote: a `poll_answer` update if Telegram would send the bot one.
fn vote(emu: &Emu, poll_id: &str, user_id: i64, option: usize) -> Result<i64, String> {
    {
        let mut polls = emu.polls.lock().unwrap();
        let poll = polls.get_mut(poll_id).ok_or_else(|| format!("no poll {poll_id} sent by the bot"))?;
        if poll.anonymous {
            return Err("an anonymous poll sends the bot no poll_answer".into());
        }
        if poll.stopped || poll.closes_at_ms.is_some_and(|t| herald_schemas::now_ms() >= t) {
            return Err("the poll is closed".into());
        }
        if option >= poll.options {
            return Err(format!("the poll has {} options", poll.options));
        }
        if !poll.voters.insert(user_id) {
            return Err("a quiz takes one vote per user".into());
        }
    }
    let user = json!({"id": user_id, "is_bot": false, "first_name": format!("User{user_id}")});
    Ok(push_update(
        emu,
        json!({"poll_answer": {"poll_id": poll_id, "user": user, "option_ids": [option]}}),
    ))
}

#[derive(Deserialize)]
struct Vote {
    poll_id: String,
    user_id: i64,
    option: usize,
}

async fn control_vote(State(emu): State<Arc<Emu>>, Json(v): Json<Vote>) -> Response {
    match vote(&emu, &v.poll_id, v.user_id, v.option) {
        Ok(update_id) => Json(json!({"update_id": update_id})).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response(),
    }
}

fn refuse(emu: &Emu, status: u16, retry: u64) -> Response {
    let mut stats = emu.stats.lock().unwrap();
    match status {
        429 => {
            stats.too_many_requests += 1;
            err(429, &format!("Too Many Requests: retry after {retry}"), Some(retry.max(1)))
        }
        403 => {
            stats.forbidden += 1;
            err(403, "Forbidden: bot was blocked by the user", None)
        }
        // what Telegram answers a message whose HTML it cannot parse
        400 => err(
            400,
            "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0",
            None,
        ),
        _ => {
            stats.server_errors += 1;
            err(500, "Internal Server Error", None)
        }
    }
}

async fn control_updates(State(emu): State<Arc<Emu>>, Json(body): Json<Value>) -> Json<Value> {
    let updates = match body {
        Value::Array(a) => a,
        one => vec![one],
    };
    let ids: Vec<i64> = updates.into_iter().map(|u| push_update(&emu, u)).collect();
    Json(json!(ids))
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

async fn control_deliveries(State(emu): State<Arc<Emu>>, Query(s): Query<Since>) -> Json<Vec<Delivery>> {
    Json(emu.deliveries.lock().unwrap().iter().filter(|d| d.seq > s.since).cloned().collect())
}

async fn control_stats(State(emu): State<Arc<Emu>>) -> Json<Stats> {
    Json(emu.stats.lock().unwrap().clone())
}

async fn control_fail(State(emu): State<Arc<Emu>>, Json(f): Json<Fail>) -> StatusCode {
    emu.failures.lock().unwrap().entry(f.chat_id).or_default().push_back(f);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Block {
    chat_id: i64,
}

async fn control_block(State(emu): State<Arc<Emu>>, Json(b): Json<Block>) -> StatusCode {
    emu.blocked.lock().unwrap().insert(b.chat_id);
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after(Duration::from_secs(3)), 3);
    }
}
