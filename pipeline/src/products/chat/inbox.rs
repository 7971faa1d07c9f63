//! The random chat's inbox stage: what the router hands to the chat
//! (`herald.cmd.chat.<user>`, one user's updates in order): `/chat`, `/next`, `/stop`,
//! `/report`, the chat's `/admin` subcommands, and a chatting user's messages and edits,
//! which it relays.
//!
//! Commands that change state are the stage's apply step: they go through
//! [`ChatState`]'s script, keyed by the update (a redelivery gets the same answer, so
//! the same outputs under the same message ids). A relayed
//! message is put in the partner's [`Outbox`] in `commit`, once per message, and sent
//! from there (copies of one sender's burst batched, albums whole).

use async_nats::jetstream::kv;
use herald_runtime::{Applied, Decision, Effect, MsgMeta, Output, Stage, StageError};
use herald_schemas::{escape_html, subjects, Content, RoutedUpdate};
use serde_json::Value;

use super::commands::{self as say, ChatCommand};
use super::outbox::{Item, Outbox};
use super::relay;
use super::state::{Change, ChatState, Peer};
use crate::core::reply::{date, notice, output, Reply};

/// What to change once the outputs are out.
#[derive(Debug, Default)]
pub enum ChatCommit {
    #[default]
    Nothing,
    /// Put the message in the partner's outbox and flush it.
    Relay { item: Item, recipient: i64, chat: u64 },
    /// The user is in the chat's session (their plain messages come here) or not.
    Session { user: i64, inside: bool },
}

/// The stage.
pub struct ChatInbox {
    pub state: ChatState,
    pub outbox: Outbox,
    /// Where the outbox publishes.
    pub js: herald_runtime::Js,
    /// `herald_sessions`.
    pub sessions: kv::Store,
    /// The moderators' chat, for reports' evidence.
    pub moderators: Option<i64>,
    /// Only text, stickers, dice and polls in a user's first chat.
    pub newcomer_text_only: bool,
}

/// One update's answer: outputs and a commit.
type Answer = Decision<ChatCommit>;

fn forward<E>(outputs: Vec<Output>, commit: ChatCommit) -> Decision<ChatCommit, E> {
    Decision::Forward { outputs, commit }
}

/// A change of the chat's state an update asks for: the apply step's effect, run by
/// [`ChatState`]'s script under the update's op key (`upd:<update id>`).
#[derive(Debug)]
pub enum ChatChange {
    /// `/chat`, `/next`, `/stop`, `/report`.
    Command { cmd: ChatCommand, user: i64, chat_id: i64, update_id: i64 },
    /// `/admin ban ID DAYS [reason]` (days 1–3650).
    Ban { id: i64, days: u64, reason: String, chat_id: i64, update_id: i64 },
    /// `/admin unban ID`.
    Unban { id: i64, chat_id: i64, update_id: i64 },
}

impl ChatChange {
    fn update_id(&self) -> i64 {
        match self {
            ChatChange::Command { update_id, .. } | ChatChange::Ban { update_id, .. } | ChatChange::Unban { update_id, .. } => *update_id,
        }
    }
}

/// A plain notice to `chat` under `key`.
fn tell(key: String, chat: i64, text: &str) -> Output {
    output(&notice(key, chat, Content::text(text)))
}

/// The partner of chat `chat` is told it ended, once whatever ended it.
pub fn partner_left(chat: u64, partner: i64, text: &str) -> Output {
    tell(format!("chat:end:{chat}:{partner}"), partner, text)
}

impl ChatInbox {
    async fn command(&self, cmd: ChatCommand, user: i64, chat_id: i64, update_id: i64) -> Result<Answer, StageError> {
        let key = format!("upd:{update_id}");
        let reply = |text: String| Reply::plain(text).output(update_id, chat_id, None);
        Ok(match cmd {
            ChatCommand::Chat => {
                let change = self.state.search(user, &key).await?;
                forward(self.joined(change, user, update_id, chat_id).await?, ChatCommit::Session { user, inside: true })
            }
            ChatCommand::Next => {
                let next = self.state.next(user, &key).await?;
                let mut outputs: Vec<Output> = next
                    .ended
                    .map(|(partner, chat)| partner_left(chat, partner, say::PARTNER_LEFT))
                    .into_iter()
                    .collect();
                outputs.extend(self.joined(next.joined, user, update_id, chat_id).await?);
                forward(outputs, ChatCommit::Session { user, inside: true })
            }
            ChatCommand::Stop => {
                let outputs = match self.state.leave(user, &key).await? {
                    Change::Ended { partner, chat } => vec![reply(say::YOU_LEFT.into()), partner_left(chat, partner, say::PARTNER_LEFT)],
                    Change::LeftQueue => vec![reply(say::SEARCH_CANCELLED.into())],
                    _ => vec![reply(say::NOT_IN_CHAT.into())],
                };
                forward(outputs, ChatCommit::Session { user, inside: false })
            }
            ChatCommand::Report => {
                let Some(report) = self.state.report(user, &key).await? else {
                    return Ok(forward(vec![reply(say::NOTHING_TO_REPORT.into())], ChatCommit::Nothing));
                };
                let mut outputs = vec![reply(format!(
                    "🚩 Report #{} filed; moderators will review the chat. You will not be paired with this user again.{}",
                    report.id,
                    if report.ended_chat { " The chat has ended." } else { "" }
                ))];
                if report.ended_chat {
                    outputs.push(partner_left(report.chat, report.reported, say::PARTNER_LEFT));
                }
                outputs.extend(self.evidence(&report, user));
                metrics::counter!(super::metrics::REPORTS.name).increment(1);
                forward(outputs, ChatCommit::Nothing)
            }
        })
    }

    /// What a join (or the join of `/next`) answers.
    async fn joined(&self, change: Change, user: i64, update_id: i64, chat_id: i64) -> Result<Vec<Output>, StageError> {
        let reply = |text: String| Reply::plain(text).output(update_id, chat_id, None);
        Ok(match change {
            Change::Paired { partner, chat, .. } => {
                metrics::counter!(super::metrics::PAIRS.name).increment(1);
                [user, partner]
                    .into_iter()
                    .map(|u| {
                        let m = notice(format!("chat:paired:{chat}:{u}"), u, Content::text(say::PAIRED));
                        // a partner who blocked the bot ends the chat (see `delivery`)
                        output(&m.reported_to(subjects::chat_delivery(u)))
                    })
                    .collect()
            }
            Change::Queued { again: true, .. } => vec![reply(say::STILL_SEARCHING.into())],
            Change::Queued { online, .. } => vec![reply(say::searching(online))],
            Change::InChat { .. } => vec![reply(say::ALREADY_CHATTING.into())],
            Change::Banned => vec![reply(self.ban_text(user).await?)],
            Change::TooSoon { wait_ms } => vec![reply(say::too_soon(wait_ms))],
            Change::QueueFull => vec![reply(say::QUEUE_FULL.into())],
            _ => vec![reply(say::NOT_IN_CHAT.into())],
        })
    }

    async fn ban_text(&self, user: i64) -> Result<String, StageError> {
        Ok(match self.state.banned(user).await? {
            Some((reason, until)) => banned(&reason, until),
            None => say::NOT_IN_CHAT.into(),
        })
    }

    /// The report and its evidence for the moderators' chat: a header, then the
    /// reported user's last messages, then the reporter's for context (see
    /// [`evidence`]), each run copied in order by one `copyMessages`, forwardable (no
    /// `protect_content`) so that moderators can escalate.
    fn evidence(&self, report: &super::state::Report, reporter: i64) -> Vec<Output> {
        let Some(mods) = self.moderators else {
            tracing::warn!(report = report.id, "report filed with no --chat-moderators: its evidence is not copied anywhere");
            return Vec::new();
        };
        let (theirs, context) = evidence(&report.evidence, report.reported);
        let header = format!(
            "🚩 Report #{}: user <code>{reporter}</code> reported user <code>{}</code> (chat {}). Their last {} messages follow, then {} of the reporter's for context.\n<code>/admin ban {} DAYS reason</code>",
            report.id,
            report.reported,
            report.chat,
            theirs.len(),
            context.len(),
            report.reported
        );
        let mut outputs = vec![tell(format!("chat:report:{}", report.id), mods, &header)];
        let runs = theirs.iter().chain(&context).fold(Vec::<(i64, Vec<i32>)>::new(), |mut runs, (from, msg)| {
            match runs.last_mut() {
                Some((f, ids)) if f == from && ids.last().is_some_and(|l| l < msg) => ids.push(*msg),
                _ => runs.push((*from, vec![*msg])),
            }
            runs
        });
        for (i, (from, ids)) in runs.into_iter().enumerate() {
            if let Ok(content) = Content::copy_many(from, ids, false) {
                outputs.push(output(&notice(format!("chat:report:{}:{i}", report.id), mods, content)));
            }
        }
        outputs
    }

    /// `/admin ban ID DAYS [reason]`, `/admin unban ID`: the change to apply, or the
    /// usage.
    fn admin(args: &str, chat_id: i64, update_id: i64) -> Decision<ChatCommit, ChatChange> {
        let usage = |text: &str| forward(vec![Reply::plain(text.to_string()).output(update_id, chat_id, None)], ChatCommit::Nothing);
        let words: Vec<&str> = args.split_whitespace().collect();
        match words.as_slice() {
            ["ban", id, days, reason @ ..] => match (id.parse::<i64>(), days.parse::<u64>()) {
                (Ok(id), Ok(days @ 1..=3650)) => {
                    let reason = match reason.join(" ") {
                        r if r.is_empty() => "breaking the chat rules".to_string(),
                        r => r,
                    };
                    Decision::Apply(ChatChange::Ban {
                        id,
                        days,
                        reason,
                        chat_id,
                        update_id,
                    })
                }
                _ => usage("Usage: <code>/admin ban ID DAYS [reason]</code> (DAYS 1–3650)."),
            },
            ["unban", id] => match id.parse::<i64>() {
                Ok(id) => Decision::Apply(ChatChange::Unban { id, chat_id, update_id }),
                Err(_) => usage("Usage: <code>/admin unban ID</code>"),
            },
            _ => usage("Usage: <code>/admin ban ID DAYS [reason]</code> · <code>/admin unban ID</code>"),
        }
    }

    /// Bans `id` for `days` (ending their chat) and tells them.
    async fn ban(&self, id: i64, days: u64, reason: &str, chat_id: i64, update_id: i64) -> Result<Answer, StageError> {
        let reply = |text: String| Reply::plain(text).output(update_id, chat_id, None);
        let ended = self.state.ban(id, days, reason, &format!("upd:{update_id}")).await?;
        let until = herald_schemas::now_ms() + days * 86_400_000;
        let mut outputs = vec![
            reply(format!("User <code>{id}</code> is banned from the random chat until {}.", date(until))),
            tell(format!("chat:ban:{update_id}"), id, &banned(reason, until)),
        ];
        if let Some((partner, chat)) = ended {
            outputs.push(partner_left(chat, partner, say::PARTNER_LEFT));
        }
        Ok(forward(outputs, ChatCommit::Session { user: id, inside: false }))
    }

    /// Lifts `id`'s ban and tells them.
    async fn unban(&self, id: i64, chat_id: i64, update_id: i64) -> Result<Answer, StageError> {
        let reply = |text: String| Reply::plain(text).output(update_id, chat_id, None);
        if !self.state.unban(id, &format!("upd:{update_id}")).await? {
            return Ok(forward(vec![reply(format!("User <code>{id}</code> was not banned."))], ChatCommit::Nothing));
        }
        let told = tell(format!("chat:unban:{update_id}"), id, "✅ Your ban from the random chat was lifted. /chat to start.");
        Ok(forward(vec![reply(format!("User <code>{id}</code> is no longer banned.")), told], ChatCommit::Nothing))
    }

    /// A chatting user's message: to the partner's outbox; an edit: an edit of the
    /// partner's copy.
    async fn relay(&self, routed: &RoutedUpdate, user: i64, chat_id: i64) -> Result<Decision<ChatCommit, ChatChange>, StageError> {
        let edit = routed.kind == "edited_message";
        let body = &routed.update[routed.kind.as_str()];
        let Some(message_id) = body["message_id"].as_i64().map(|m| m as i32) else {
            return Err(StageError::Permanent(format!("{} without a message_id", routed.kind)));
        };
        let reply_to = |text: &str| {
            let content = Content::SendMessage {
                text: text.to_string(),
                buttons: Vec::new(),
                reply_to: Some(message_id),
            };
            output(&notice(format!("upd.{}", routed.update_id), chat_id, content))
        };
        let (partner, chat) = match self.state.partner(user).await? {
            Peer::Chatting { partner, chat } => (partner, chat),
            Peer::Queued if !edit => return Ok(forward(vec![reply_to(say::STILL_SEARCHING)], ChatCommit::Nothing)),
            Peer::Idle if !edit => return Ok(forward(vec![reply_to(say::NOT_IN_CHAT)], ChatCommit::Nothing)),
            _ => return Ok(Decision::Drop { reason: "edit_outside_a_chat" }),
        };
        let redis = self.state.redis();
        if edit {
            let (Some(edited), Some((to, copy))) = (relay::edited(body), super::ids::counterpart(&redis, chat_id, message_id).await?) else {
                // not copied yet: the copy, when made, carries the edit
                return Ok(Decision::Drop {
                    reason: "edit_of_a_message_not_copied",
                });
            };
            if to != partner {
                return Ok(Decision::Drop {
                    reason: "edit_of_a_previous_chat",
                });
            }
            let stamp = body["edit_date"].as_i64().unwrap_or(routed.update_id);
            let m = notice(format!("chat:edit:{chat_id}:{message_id}:{stamp}"), partner, edited.content(copy));
            return Ok(forward(vec![output(&m)], ChatCommit::Nothing));
        }
        // what Telegram cannot copy is never queued: the sender hears at once
        if relay::kind(body).is_none() {
            metrics::counter!(super::metrics::UNDELIVERABLE.name).increment(1);
            return Ok(forward(vec![reply_to(say::UNDELIVERABLE)], ChatCommit::Nothing));
        }
        if body["has_protected_content"] == Value::Bool(true) {
            metrics::counter!(super::metrics::UNDELIVERABLE.name).increment(1);
            return Ok(forward(vec![reply_to(say::PROTECTED)], ChatCommit::Nothing));
        }
        if self.newcomer_text_only && !relay::newcomer_may_send(body) && self.state.chats_of(user).await? <= 1 {
            return Ok(forward(vec![reply_to(say::NEWCOMER)], ChatCommit::Nothing));
        }
        let replied = match body.pointer("/reply_to_message/message_id").and_then(Value::as_i64) {
            Some(r) => super::ids::counterpart(&redis, chat_id, r as i32)
                .await?
                .filter(|(to, _)| *to == partner)
                .map(|(_, copy)| copy),
            None => None,
        };
        let item = Item {
            f: chat_id.to_string(),
            m: message_id,
            r: replied,
            g: body["media_group_id"].as_str().map(str::to_string),
            t: herald_schemas::now_ms().to_string(),
            s: relay::kind(body) == Some("poll"),
            a: false,
            n: Some(chat.to_string()),
        };
        Ok(forward(
            Vec::new(),
            ChatCommit::Relay {
                item,
                recipient: partner,
                chat,
            },
        ))
    }
}

/// A message of a chat: its sender's chat and its id there.
pub type Sent = (i64, i32);

/// Messages a report's evidence holds at most.
pub const EVIDENCE_CAP: usize = 20;
/// Of those, kept for the reporter's context when the reported user sent many.
const CONTEXT_MIN: usize = 5;

/// A report's evidence from a chat's delivered messages (oldest first): the `reported`
/// user's last messages, then the others' last for context, each oldest first, at most
/// [`EVIDENCE_CAP`] in all (at least [`CONTEXT_MIN`] context when there is some).
///
/// ```
/// use herald_pipeline::products::chat::inbox::evidence;
/// let chat: Vec<(i64, i32)> = (1..=30).map(|m| (1, m)).chain([(2, 7)]).collect();
/// let (theirs, context) = evidence(&chat, 2);
/// assert_eq!(theirs, [(2, 7)]);
/// assert_eq!(context.len(), 19);
/// assert_eq!(context.last(), Some(&(1, 30)));
/// ```
pub fn evidence(chat: &[Sent], reported: i64) -> (Vec<Sent>, Vec<Sent>) {
    let (theirs, others): (Vec<_>, Vec<_>) = chat.iter().copied().partition(|(from, _)| *from == reported);
    let last = |v: Vec<Sent>, n: usize| v[v.len().saturating_sub(n)..].to_vec();
    let context_min = CONTEXT_MIN.min(others.len());
    let theirs = last(theirs, EVIDENCE_CAP - context_min);
    let context = last(others, EVIDENCE_CAP - theirs.len());
    (theirs, context)
}

/// What a banned user reads.
pub fn banned(reason: &str, until_ms: u64) -> String {
    format!(
        "⛔ You are banned from the random chat until {}. Reason: {}",
        date(until_ms),
        escape_html(reason)
    )
}

impl Stage for ChatInbox {
    const NAME: &'static str = "chat_inbox";
    type Input = RoutedUpdate;
    type Commit = ChatCommit;
    type Effect = ChatChange;

    fn decode(&self, payload: &[u8]) -> Result<RoutedUpdate, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, routed: RoutedUpdate, _meta: &MsgMeta) -> Result<Decision<ChatCommit, ChatChange>, StageError> {
        let (Some(user), Some(chat_id)) = (routed.user_id, routed.chat_id) else {
            return Err(StageError::Permanent("routed update without a user or chat".into()));
        };
        let text = routed.command.as_deref().unwrap_or_default();
        if let (true, Some(args)) = (routed.admin, text.strip_prefix("/admin")) {
            return Ok(Self::admin(args, chat_id, routed.update_id));
        }
        match routed.command.as_deref().map(ChatCommand::from_text) {
            Some(Some(cmd)) => Ok(Decision::Apply(ChatChange::Command {
                cmd,
                user,
                chat_id,
                update_id: routed.update_id,
            })),
            Some(None) => Ok(Decision::Drop {
                reason: "not_a_chat_command",
            }),
            None => self.relay(&routed, user, chat_id).await,
        }
    }

    /// Runs the change through the state script under the update's op key: a
    /// redelivery finds the op done and gets its cached answer.
    async fn apply(&self, change: ChatChange, _meta: &MsgMeta) -> Result<Applied<ChatCommit>, StageError> {
        let effect = match self.state.op_done(&format!("upd:{}", change.update_id())).await? {
            true => Effect::AlreadyMade,
            false => Effect::Made,
        };
        let decision = match change {
            ChatChange::Command {
                cmd,
                user,
                chat_id,
                update_id,
            } => self.command(cmd, user, chat_id, update_id).await?,
            ChatChange::Ban {
                id,
                days,
                reason,
                chat_id,
                update_id,
            } => self.ban(id, days, &reason, chat_id, update_id).await?,
            ChatChange::Unban { id, chat_id, update_id } => self.unban(id, chat_id, update_id).await?,
        };
        Ok(Applied { decision, effect })
    }

    async fn commit(&self, commit: ChatCommit) -> Result<(), StageError> {
        match commit {
            ChatCommit::Nothing => {}
            ChatCommit::Relay { item, recipient, chat } => {
                self.outbox.enqueue(&item, recipient, chat).await?;
                // now if the partner's chat is free; else the outbox task sends it
                if let Err(e) = self.outbox.flush(&self.js, recipient).await {
                    tracing::warn!(error = %e, recipient, "outbox flush failed; the outbox task retries");
                }
            }
            ChatCommit::Session { user, inside: true } => herald_core::sessions::enter(&self.sessions, user, "chat").await?,
            ChatCommit::Session { user, inside: false } => herald_core::sessions::leave(&self.sessions, user, "chat").await?,
        }
        Ok(())
    }
}
