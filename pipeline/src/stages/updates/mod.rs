//! Routes raw Telegram updates (`herald.updates.>`): channel posts become calls,
//! private commands and menu buttons change settings and get replies, blocks and
//! unblocks mark users inactive or active. Unknown update kinds are dead-lettered.

pub mod admin;
pub mod calls;
pub mod commands;
pub mod payments;
pub mod wallet;

use async_nats::jetstream::kv;
use herald_schemas::{subjects, CallEvent, CallSource, Caller, OutboundMessage, Priority, UserSettings};
use serde_json::Value;

use crate::runtime::{Decision, MsgMeta, Output, Stage, StageError};
use crate::sources::channel_post::{parse_call, post_text_and_urls};
use crate::sources::websocket::call_output;
use crate::tracking::store::CallStore;
use crate::tracking::tracker::Tracker;
use crate::users_store;
use commands::{parse_callback, parse_command, Command, Reply};

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

/// A settings write to make after the reply is acknowledged.
pub struct UserWrite {
    settings: UserSettings,
    revision: Option<u64>,
}

/// The updates stage.
pub struct UpdatesStage<S> {
    pub users: kv::Store,
    /// The tracker, for `/calls` (when it runs in this process).
    pub calls: Option<std::sync::Arc<Tracker<S>>>,
    /// The deposit wallet and the ledger, for `/deposit` and `/balance` (when configured).
    pub payments: Option<std::sync::Arc<crate::payments::Payments>>,
}

impl<S: CallStore> UpdatesStage<S> {
    async fn command(
        &self,
        update_id: i64,
        user_id: i64,
        chat_id: i64,
        cmd: Command,
        edit: Option<i32>,
    ) -> Result<Decision<Option<UserWrite>>, StageError> {
        let current = users_store::load(&self.users, user_id).await?;
        if let (Command::Calls(page), Some(tracker), Some(_)) = (&cmd, &self.calls, &current) {
            let (list, total) = tracker.for_user(user_id, page * calls::PER_PAGE, calls::PER_PAGE).await?;
            let reply = calls::page(&list, total, *page);
            return Ok(Decision::Forward {
                outputs: vec![reply_output(update_id, chat_id, reply, edit)],
                commit: None,
            });
        }
        if let (Some((settings, _)), false) = (&current, matches!(cmd, Command::Start | Command::Help)) {
            if settings.locked {
                let reply = Reply::plain("Your account is locked. Contact support.");
                return Ok(Decision::Forward {
                    outputs: vec![reply_output(update_id, chat_id, reply, edit)],
                    commit: None,
                });
            }
        }
        // admins are checked on every command
        if let (Command::Admin(args), Some(p)) = (&cmd, &self.payments) {
            if p.admins.contains(&user_id) {
                let (reply, mut outputs) = admin::answer(p, &self.users, args, update_id).await?;
                outputs.insert(0, reply_output(update_id, chat_id, reply, edit));
                return Ok(Decision::Forward { outputs, commit: None });
            }
        }
        if let (Command::Deposit | Command::Balance | Command::Subscribe(_), Some(p), Some((settings, revision))) =
            (&cmd, &self.payments, &current)
        {
            let (reply, changed) = payments::answer(p, cmd, settings, update_id).await?;
            return Ok(Decision::Forward {
                outputs: vec![reply_output(update_id, chat_id, reply, edit)],
                commit: changed.map(|settings| UserWrite {
                    settings,
                    revision: Some(*revision),
                }),
            });
        }
        let is_new = current.is_none() && cmd == Command::Start;
        let now = herald_schemas::now_ms();
        let settings = current.as_ref().map(|(s, _)| s);
        let (mut new, mut reply) = commands::run(settings, cmd, user_id, chat_id, now, self.payments.is_some());
        if let (true, Some(p), Some(s)) = (is_new, &self.payments, new.as_mut()) {
            // the free trial
            let trial_days = p.trial.as_secs() / 86_400;
            s.paid_until_ms = Some(now + p.trial.as_millis() as u64);
            if trial_days > 0 {
                let length = payments::days(trial_days);
                reply
                    .text
                    .push_str(&format!("\n\nYour free trial: {length}. /subscribe to go on after it."));
            }
        }
        let write = new.map(|settings| UserWrite {
            settings,
            revision: current.map(|(_, r)| r),
        });
        Ok(Decision::Forward {
            outputs: vec![reply_output(update_id, chat_id, reply, edit)],
            commit: write,
        })
    }
}

fn reply_output(update_id: i64, chat_id: i64, reply: Reply, edit_message_id: Option<i32>) -> Output {
    let key = format!("upd.{update_id}");
    let msg = OutboundMessage {
        v: 1,
        idempotency_key: key.clone(),
        chat_id,
        text: reply.text,
        buttons: reply.buttons,
        edit_message_id,
        qr_code: reply.qr_code,
        priority: Priority::Reply,
        origin_ts_ms: herald_schemas::now_ms(),
    };
    Output {
        subject: subjects::reply(chat_id),
        msg_id: key,
        payload: herald_schemas::encode(&msg),
    }
}

/// The call in a channel post, if any; the channel is the caller.
pub fn channel_post_call(post: &Value, now_ms: u64) -> Option<CallEvent> {
    let (text, urls) = post_text_and_urls(post);
    let parsed = parse_call(&text, &urls)?;
    let chat = post.get("chat")?;
    let chat_id = chat.get("id")?.as_i64()?;
    let message_id = post.get("message_id")?.as_i64()?;
    Some(CallEvent {
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
    })
}

impl<S: CallStore> Stage for UpdatesStage<S> {
    const NAME: &'static str = "updates";
    type Input = Value;
    type Commit = Option<UserWrite>;

    fn decode(&self, payload: &[u8]) -> Result<Value, String> {
        serde_json::from_slice(payload).map_err(|e| format!("malformed update: {e}"))
    }

    async fn decide(&self, update: Value, _meta: &MsgMeta) -> Result<Decision<Self::Commit>, StageError> {
        let kind = update_kind(&update).map_err(StageError::Permanent)?.to_string();
        let update_id = update["update_id"].as_i64().unwrap_or_default();
        let body = &update[kind.as_str()];
        let drop = |reason| Ok(Decision::Drop { reason });
        match kind.as_str() {
            "channel_post" => match channel_post_call(body, herald_schemas::now_ms()) {
                Some(call) => Ok(Decision::Forward {
                    outputs: vec![call_output(&call)],
                    commit: None,
                }),
                None => drop("no_call_in_post"),
            },
            "message" => {
                let private = body.pointer("/chat/type").and_then(Value::as_str) == Some("private");
                let cmd = body.get("text").and_then(Value::as_str).and_then(parse_command);
                match (
                    private,
                    cmd,
                    body.pointer("/from/id").and_then(Value::as_i64),
                    body.pointer("/chat/id").and_then(Value::as_i64),
                ) {
                    (true, Some(cmd), Some(user), Some(chat)) => self.command(update_id, user, chat, cmd, None).await,
                    _ => drop("not_a_private_command"),
                }
            }
            "callback_query" => {
                let data = body.get("data").and_then(Value::as_str).unwrap_or_default();
                let cmd = parse_callback(data)
                    .map(|e| Command::Filters(Some(e)))
                    .or_else(|| calls::parse_callback(data).map(Command::Calls))
                    .or_else(|| payments::parse_callback(data));
                let user = body.pointer("/from/id").and_then(Value::as_i64);
                let chat = body.pointer("/message/chat/id").and_then(Value::as_i64);
                let message_id = body.pointer("/message/message_id").and_then(Value::as_i64).map(|m| m as i32);
                match (cmd, user, chat) {
                    (Some(cmd), Some(user), Some(chat)) => self.command(update_id, user, chat, cmd, message_id).await,
                    _ => drop("unknown_callback"),
                }
            }
            "my_chat_member" => {
                let private = body.pointer("/chat/type").and_then(Value::as_str) == Some("private");
                let status = body.pointer("/new_chat_member/status").and_then(Value::as_str);
                let user = body.pointer("/from/id").and_then(Value::as_i64);
                match (private, status, user) {
                    (true, Some(s @ ("kicked" | "member")), Some(user)) => {
                        users_store::set_active(&self.users, user, s == "member").await?;
                        drop("membership_recorded")
                    }
                    _ => drop("ignored_membership"),
                }
            }
            k if KNOWN_KINDS.contains(&k) => drop("ignored_kind"),
            k => Err(StageError::Permanent(format!("unknown update kind '{k}'"))),
        }
    }

    async fn commit(&self, write: Self::Commit) -> Result<(), StageError> {
        if let Some(w) = write {
            users_store::save(&self.users, &w.settings, w.revision).await?;
        }
        Ok(())
    }
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

    #[test]
    fn channel_posts_become_calls_from_the_channel() {
        let post = serde_json::json!({"message_id": 9, "chat": {"id": -100123, "title": "Alpha Calls", "type": "channel"}, "date": 1,
            "text": "#kora ● $0.0225 258K FDV atualmente\nCA: 8neDcPFwrvRNM9WXHCtHwTcKZrVm6wr4cs4PSN9Hpump"});
        let call = channel_post_call(&post, 5).unwrap();
        assert_eq!(call.caller.id, "tg:-100123");
        assert_eq!(call.caller.name.as_deref(), Some("Alpha Calls"));
        assert_eq!(call.msg_id(), "telegram_channel:-100123:9");
        assert_eq!(call.fdv_usd, Some(258_000.0));
        assert_eq!(call.token, "8neDcPFwrvRNM9WXHCtHwTcKZrVm6wr4cs4PSN9Hpump");
    }
}
