//! Random chat: anonymous pairing with a stranger and relay of every message kind.
//!
//! ```text
//! herald.cmd.chat.<user> [COMMANDS] ──> chat_inbox ──> state (Redis, atomic script)
//!     /chat /next /stop /report /admin ban|unban    ──> herald.out.reply.<chat> (notices)
//!     a chatting user's message                     ──> outbox (Redis) ──> herald.out.reply.<partner>
//!                                                       (copyMessage / copyMessages, report asked)
//! bot ──> herald.chat.delivery.<sender> [CHAT] ──> chat_delivery ──> message-id map,
//!     evidence, the outbox released for the next batch, a blocked partner ends the
//!     chat, a refused copy is reported to its sender
//! chat_outbox (task): paced and album batches · chat_sweeper (task): idle chats, old queue entries
//! ```
//!
//! States ([`state`]), the relay's decisions ([`relay`]), the outbox ([`outbox`]) and
//! the message-id map ([`ids`]) live in Redis under `herald:chat:`.

pub mod commands;
pub mod config;
pub mod delivery;
pub mod ids;
pub mod inbox;
pub mod metrics;
pub mod outbox;
pub mod relay;
pub mod samples;
pub mod state;
pub mod sweeper;

use std::time::Duration;

use clap::{Args, FromArgMatches};
use futures::future::BoxFuture;
use herald_runtime::setup::StreamDef;
use herald_runtime::{StageConfig, StageHandle};
use herald_schemas::{subjects, MenuCommand};

use crate::core::commands::menu_of;
use crate::core::limits::Limit;
use crate::core::product::{sample_command, Ctx, Product, Registration};
use config::ChatArgs;

/// The registry entry.
pub const REGISTRATION: Registration = Registration {
    name: "chat",
    args: ChatArgs::augment_args,
    build: |m| Ok(Some(Box::new(RandomChat(ChatArgs::from_arg_matches(m)?)))),
    requires: &[],
    operator: None,
};

/// The random chat, configured.
pub struct RandomChat(pub ChatArgs);

impl Product for RandomChat {
    fn name(&self) -> &'static str {
        "chat"
    }

    fn commands(&self) -> Vec<MenuCommand> {
        menu_of::<commands::ChatCommand>()
    }

    fn help(&self) -> Option<String> {
        Some(commands::HELP.into())
    }

    fn admin_commands(&self) -> &'static [&'static str] {
        commands::ADMIN
    }

    /// 12 messages per 5 s: a flood gets one warning (the seed's limit).
    fn inbound_limit(&self) -> Option<Limit> {
        Some(Limit {
            updates: 12,
            window: Duration::from_secs(5),
        })
    }

    fn streams(&self) -> Vec<StreamDef> {
        vec![crate::stream_def!("chat.delivery.json")]
    }

    fn consumers(&self) -> Vec<StageConfig> {
        ["chat_inbox", "chat_delivery"].into_iter().map(consumer).collect()
    }

    fn segments(&self) -> &'static [(&'static str, &'static str)] {
        &[("chat", "users who have chatted")]
    }

    /// `chat`: users with a chat count (`herald:chat:chats:<user>`).
    fn segment<'a>(&'a self, _name: &'a str, env: &'a crate::core::product::StatsEnv) -> BoxFuture<'a, anyhow::Result<Vec<i64>>> {
        Box::pin(async move { crate::core::broadcast::users_in_keys(env, "herald:chat:chats:").await })
    }

    /// Online (searching or chatting), pairs, the queue, reports today.
    fn stats<'a>(&'a self, env: &'a crate::core::product::StatsEnv) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move {
            let state = state::ChatState::new(env.redis()?, self.0.chat_queue_ttl);
            let counts = state.counts().await?;
            let reports = state.reports_since(env.today_ms()).await?;
            Ok(Some(format!(
                "<b>Random chat</b>\nonline {} · pairs {} · queue {}/{} · reports today {reports}",
                counts.queued + 2 * counts.pairs,
                counts.pairs,
                counts.queued,
                self.0.chat_queue_cap
            )))
        })
    }

    fn check_parsers(&self, text: &str) {
        let _ = commands::ChatCommand::from_text(text);
    }

    fn metrics(&self) -> &'static [herald_runtime::metric::Metric] {
        metrics::ALL
    }

    fn start<'a>(&'a self, ctx: &'a mut Ctx) -> BoxFuture<'a, anyhow::Result<Vec<StageHandle>>> {
        Box::pin(async move {
            let args = &self.0;
            let redis = ctx.redis.connect().await?;
            let state = state::ChatState::new(redis.clone(), args.chat_queue_ttl)
                .with_limits(args.chat_queue_cap, args.chat_search_cooldown);
            let outbox = outbox::Outbox::new(redis.clone(), args.timing(), args.chat_protect_content);
            let sessions = ctx.js.get_key_value(subjects::SESSIONS_BUCKET).await?;
            let mut stages = Vec::new();
            if ctx.wants("chat_inbox") {
                let inbox = inbox::ChatInbox {
                    state: state.clone(),
                    outbox: outbox.clone(),
                    js: ctx.connect().await?,
                    sessions,
                    moderators: args.chat_moderators,
                    newcomer_text_only: args.chat_newcomer_text_only,
                };
                let cfg = ctx.configure(consumer("chat_inbox"));
                stages.push(StageHandle::new(inbox, cfg).with_sample(subjects::routed("chat", 1), sample_command("/stop")));
            }
            if ctx.wants("chat_delivery") {
                let stage = delivery::ChatDelivery {
                    state: state.clone(),
                    outbox: outbox.clone(),
                    redis: redis.clone(),
                };
                let cfg = ctx.configure(consumer("chat_delivery"));
                stages.push(StageHandle::new(stage, cfg).with_sample(subjects::chat_delivery(1), samples::delivery()));
            }
            if ctx.wants("chat_outbox") {
                let js = ctx.js.clone();
                ctx.tasks.spawn(herald_runtime::periodic::every(
                    "chat_outbox",
                    Duration::from_millis(50),
                    ctx.shutdown.clone(),
                    move || {
                        let (outbox, js) = (outbox.clone(), js.clone());
                        async move { sweeper::flush_due(&outbox, &js).await }
                    },
                ));
            }
            if ctx.wants("chat_sweeper") {
                let (js, timeout) = (ctx.js.clone(), args.chat_timeout);
                let period = (timeout / 10).clamp(Duration::from_millis(200), Duration::from_secs(5));
                ctx.tasks.spawn(herald_runtime::periodic::every(
                    "chat_sweeper",
                    period,
                    ctx.shutdown.clone(),
                    move || {
                        let (state, js) = (state.clone(), js.clone());
                        async move { sweeper::sweep(&state, &js, timeout).await }
                    },
                ));
            }
            Ok(stages)
        })
    }
}

/// The consumer of each chat stage: the one place its stream and filter are named.
/// Both keep one user's messages in order (the subject ends with the user).
fn consumer(stage: &str) -> StageConfig {
    let (stream, filter) = match stage {
        "chat_inbox" => (subjects::COMMANDS_STREAM, subjects::routed_all("chat")),
        "chat_delivery" => (subjects::CHAT_STREAM, "herald.chat.delivery.>".to_string()),
        other => unreachable!("no chat stage {other}"),
    };
    StageConfig {
        in_order_per_sender: true,
        ..StageConfig::new(stream, stage, vec![filter])
    }
}
