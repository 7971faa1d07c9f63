//! Lottery: weekly rounds paid from the ledger (deposits come from payments), multi-level referrals, and
//! draws anyone can verify (drand quicknet + commit-reveal + an RFC 6962 root of the
//! tickets). The rules are `docs/lottery.md`; the draw itself is the `herald-draw`
//! crate, which the standalone `herald-verify` shares.
//!
//! ```text
//! herald.cmd.lottery.<user> [COMMANDS] ──> lottery_inbox ──> ledger debit (LEDGER)
//!     /lottery /buy /tickets /draws /verify /ref     ──> herald.lottery.round.<r> [LOTTERY] (purchase)
//!     /admin lottery                                 ──> herald.out.reply.<chat>
//! lottery_scheduler (task): open ─> close ─> beacon (drand relays) ─> reveal ─> draw ─> settle
//!     ──> herald.lottery.round.<r> (each step once) · bundle ──> herald_lottery_bundles
//!     ──> ledger credits (prizes, referral rewards, refunds) · herald.out.notify.<chat>
//! lottery_http (task): GET /lottery/rounds/<r>/bundle.json, /lottery/rounds/<r>/proof/<ticket>.json
//! ```
//!
//! Runs with payments, whose ledger it is paid from.

pub mod commands;
pub mod config;
pub mod http;
pub mod inbox;
pub mod metrics;
pub mod journal;
pub mod orders;
pub mod purchase;
pub mod relays;
pub mod round;
pub mod samples;
pub mod scheduler;
pub mod service;
pub mod settle;
pub mod texts;
pub mod views;

use std::sync::Arc;

use async_nats::jetstream::object_store;
use clap::{Args, FromArgMatches};
use futures::future::BoxFuture;
use herald_runtime::setup::{BucketDef, StreamDef};
use herald_runtime::{StageConfig, StageHandle};
use herald_schemas::{subjects, MenuCommand};

use crate::core::commands::menu_of;
use crate::core::product::{Ctx, Product, Registration};
use crate::core::ledger::Ledger;
use config::LotteryArgs;
use service::Lottery;

/// The registry entry.
pub const REGISTRATION: Registration = Registration {
    name: "lottery",
    args: LotteryArgs::augment_args,
    build: |m| {
        let args = LotteryArgs::from_arg_matches(m)?;
        // refuse a bad configuration at start-up (referral rates above the fee, ...)
        args.rules()?;
        args.chain()?;
        Ok(Some(Box::new(LotteryProduct(args))))
    },
    requires: &["payments"],
    operator: None,
};

/// The lottery, configured.
pub struct LotteryProduct(pub LotteryArgs);

impl Product for LotteryProduct {
    fn name(&self) -> &'static str {
        "lottery"
    }

    fn commands(&self) -> Vec<MenuCommand> {
        menu_of::<commands::LotteryCommand>()
    }

    fn help(&self) -> Option<String> {
        Some(commands::HELP.into())
    }

    fn segments(&self) -> &'static [(&'static str, &'static str)] {
        &[("lottery", "users who bought tickets")]
    }

    /// `lottery`: users with purchases on record (`user.<id>` in the lottery's bucket).
    fn segment<'a>(&'a self, _name: &'a str, env: &'a crate::core::product::StatsEnv) -> BoxFuture<'a, anyhow::Result<Vec<i64>>> {
        Box::pin(async move {
            use futures::TryStreamExt;
            let kv = env.js.get_key_value(herald_schemas::subjects::LOTTERY_BUCKET).await?;
            let keys: Vec<String> = kv.keys().await?.try_collect().await?;
            Ok(keys.iter().filter_map(|k| k.strip_prefix("user.")?.parse().ok()).collect())
        })
    }

    fn stats<'a>(&'a self, env: &'a crate::core::product::StatsEnv) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move { Ok(Some(views::section(&env.js).await?)) })
    }

    fn admin_commands(&self) -> &'static [&'static str] {
        commands::ADMIN
    }

    fn streams(&self) -> Vec<StreamDef> {
        vec![crate::stream_def!("lottery.json")]
    }

    fn buckets(&self) -> Vec<BucketDef> {
        // money: rounds' state and purchase records
        vec![BucketDef::forever(subjects::LOTTERY_BUCKET).money()]
    }

    fn consumers(&self) -> Vec<StageConfig> {
        vec![consumer(), orders_consumer()]
    }

    fn check_parsers(&self, text: &str) {
        let _ = commands::LotteryCommand::from_text(text);
    }

    /// User 1's standing order, which the `lottery_orders` sample (a deposit credited
    /// to user 1) completes or lets lapse.
    fn seed_samples<'a>(&'a self, js: &'a herald_runtime::Js) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let kv = js.get_key_value(subjects::LOTTERY_BUCKET).await?;
            let order = samples::standing_order();
            kv.put(format!("order.{}", order.user_id), serde_json::to_vec(&order)?.into()).await?;
            Ok(())
        })
    }

    fn metrics(&self) -> &'static [herald_runtime::metric::Metric] {
        metrics::ALL
    }

    fn start<'a>(&'a self, ctx: &'a mut Ctx) -> BoxFuture<'a, anyhow::Result<Vec<StageHandle>>> {
        Box::pin(async move {
            let args = &self.0;
            let lottery = self.open(&ctx.js, &ctx.admins).await?;
            let mut stages = Vec::new();
            if ctx.wants("lottery_inbox") {
                let inbox = inbox::LotteryInbox {
                    lottery: lottery.clone(),
                    users: ctx.js.get_key_value(subjects::USERS_BUCKET).await?,
                };
                let cfg = ctx.configure(consumer());
                stages.push(StageHandle::new(inbox, cfg).with_sample(subjects::routed("lottery", 1), samples::routed_buy()));
            }
            if ctx.wants("lottery_orders") {
                let stage = orders::LotteryOrders { lottery: lottery.clone() };
                let cfg = ctx.configure(orders_consumer());
                stages.push(StageHandle::new(stage, cfg).with_sample(subjects::ledger(1), samples::deposit_credit()));
            }
            if ctx.wants("lottery_scheduler") {
                let l = lottery.clone();
                ctx.tasks.spawn(herald_runtime::periodic::every(
                    "lottery_scheduler",
                    args.lottery_tick,
                    ctx.shutdown.clone(),
                    move || {
                        let l = l.clone();
                        async move {
                            let ticked = scheduler::tick(&l).await;
                            scheduler::record_overdue(&l).await?;
                            ticked
                        }
                    },
                ));
            }
            if ctx.wants("lottery_http") {
                ctx.tasks.spawn(http::serve(args.lottery_http, lottery.clone(), ctx.shutdown.clone()));
            }
            Ok(stages)
        })
    }
}

impl LotteryProduct {
    /// The lottery on its stores (the bundles' object store created if missing).
    ///
    /// Errors: a stream or bucket is missing (`pipeline setup`), NATS failed.
    pub async fn open(&self, js: &herald_runtime::Js, admins: &[i64]) -> anyhow::Result<Arc<Lottery>> {
        let args = &self.0;
        let bundles = match js.get_object_store(subjects::LOTTERY_BUNDLES).await {
            Ok(store) => store,
            Err(_) => {
                js.create_object_store(object_store::Config {
                    bucket: subjects::LOTTERY_BUNDLES.into(),
                    description: Some("Lottery draw bundles (round-<round>.json)".into()),
                    ..Default::default()
                })
                .await?
            }
        };
        let chain = args.chain()?;
        let mut lottery = Lottery::new(
            journal::Journal::open(js.clone()).await?,
            js.get_key_value(subjects::LOTTERY_BUCKET).await?,
            bundles,
            Ledger::open(js.clone()).await?,
            js.get_key_value(subjects::USERS_BUCKET).await?,
            js.clone(),
            args.rules()?,
            chain.clone(),
            relays::Relays::new(args.lottery_relays.clone(), chain),
        );
        lottery.reveal_deadline_s = args.lottery_reveal_deadline.as_secs();
        lottery.public_url = args.lottery_public_url.clone();
        lottery.bot_username = args.bot_username.clone();
        lottery.max_tickets = args.lottery_max_tickets;
        lottery.admins = admins.to_vec();
        Ok(Arc::new(lottery))
    }
}

/// The standing orders' consumer: the ledger's entries (credits from deposits complete
/// orders), one user's in order.
fn orders_consumer() -> StageConfig {
    StageConfig {
        in_order_per_sender: true,
        ..StageConfig::new(subjects::LEDGER_STREAM, "lottery_orders", vec!["herald.ledger.>".into()])
    }
}

/// The inbox's consumer: one user's commands in order.
fn consumer() -> StageConfig {
    StageConfig {
        in_order_per_sender: true,
        ..StageConfig::new(subjects::COMMANDS_STREAM, "lottery_inbox", vec![subjects::routed_all("lottery")])
    }
}
