//! Payments: deposits on BNB Smart Chain: per-user deposit addresses from an HD wallet
//! ([`wallet`]), BEP-20 `Transfer` logs ([`transfers`]) followed to finality with
//! reorgs handled ([`follow`] decides, [`watcher`] does the RPC), credited once to
//! users' [`ledger`]s by the [`credit`] stage; subscriptions and coupons paid from the
//! balance ([`inbox`]); withdrawals requested, confirmed and approved ([`withdraw`]),
//! sent by `herald-signer`, settled from its outcomes ([`withdrawals`]); admin commands
//! ([`admin`]).
//!
//! ```text
//! chain ──> watcher ──> herald.deposits.<seen|final|orphaned>.<chain> [DEPOSITS] ──> credit
//!   ──> herald.ledger.<user> [LEDGER] + herald.out.notify.<chat>
//! herald.cmd.payments.<user> [COMMANDS] ──> payments_inbox ──> replies, ledger debits
//!   ──> herald.withdrawals.approved.<chain> [WITHDRAWALS] ──> herald-signer
//! herald-signer ──> herald.withdrawals.<sent|final|failed|queued>.<chain> [WITHDRAWALS]
//!   ──> withdrawal_outcomes ──> the hold settled or released + the user told
//! NOWPayments IPN ──> /nowpayments/ipn ──> herald.gateway.nowpayments.<user> [GATEWAY]
//!   ──> gateway_payments ──> the ledger credited once per payment ([`nowpayments`])
//! ```
//!
//! Off (not built) unless `--deposit-xpub` is set.

pub mod addresses;
pub mod admin;
pub mod caps;
pub mod commands;
pub mod config;
pub mod coupons;
pub mod credit;
pub mod destination;
pub mod follow;
pub mod inbox;
pub mod metrics;
pub mod nowpayments;
pub mod operator;
pub mod reminders;
pub mod replies;
pub mod samples;
pub mod subscriptions;
pub mod sweep;
pub mod transfers;
pub mod wallet;
pub mod watcher;
pub mod withdraw;
pub mod withdrawals;

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, FromArgMatches};
use futures::future::BoxFuture;
use herald_runtime::setup::{BucketDef, StreamDef};
use herald_runtime::{StageConfig, StageHandle};
use herald_schemas::{subjects, MenuCommand, User};

use crate::core::commands::menu_of;
use crate::core::limits::Limit;
use crate::core::product::{Ctx, Product, Registration, Welcome};
use config::PaymentsArgs;

/// The registry entry.
pub const REGISTRATION: Registration = Registration {
    name: "payments",
    args: PaymentsArgs::augment_args,
    build: |m| {
        let args = PaymentsArgs::from_arg_matches(m)?;
        if args.xpub().is_none() {
            tracing::info!("payments off: no --deposit-xpub");
            return Ok(None);
        }
        Ok(Some(Box::new(PaymentsProduct { args })))
    },
    requires: &[],
    operator: Some(operator::OPERATOR),
};

/// The payments product, configured.
pub struct PaymentsProduct {
    pub args: PaymentsArgs,
}

impl Product for PaymentsProduct {
    fn name(&self) -> &'static str {
        "payments"
    }

    fn commands(&self) -> Vec<MenuCommand> {
        let withdrawals = self.args.withdraw.withdrawals;
        menu_of::<commands::PaymentsCommand>()
            .into_iter()
            .filter(|c| withdrawals || c.command != "withdraw")
            .collect()
    }

    fn help(&self) -> Option<String> {
        Some(commands::HELP.to_string())
    }

    fn callback_prefixes(&self) -> &'static [&'static str] {
        &["sub:", "wd:", "np:"]
    }

    fn admin_commands(&self) -> &'static [&'static str] {
        admin::SUBCOMMANDS
    }

    fn segments(&self) -> &'static [(&'static str, &'static str)] {
        &[("unpaid", "users without paid access now")]
    }

    /// `unpaid`: every user whose paid access (trial included) has run out or never was.
    fn segment<'a>(&'a self, _name: &'a str, env: &'a crate::core::product::StatsEnv) -> BoxFuture<'a, anyhow::Result<Vec<i64>>> {
        Box::pin(async move {
            let access = env.js.get_key_value(herald_schemas::subjects::ACCESS_BUCKET).await?;
            let paid: std::collections::HashSet<i64> = herald_runtime::records::all::<herald_schemas::Access>(&access)
                .await?
                .into_iter()
                .filter(|a| a.paid_at(env.now_ms))
                .map(|a| a.user_id)
                .collect();
            let users = env.js.get_key_value(herald_schemas::subjects::USERS_BUCKET).await?;
            Ok(herald_core::users::all(&users).await?.into_iter().map(|u| u.user_id).filter(|u| !paid.contains(u)).collect())
        })
    }

    fn stats<'a>(&'a self, env: &'a crate::core::product::StatsEnv) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move { Ok(Some(admin::section(&env.js, env.now_ms).await?)) })
    }

    fn inbound_limit(&self) -> Option<Limit> {
        Some(Limit {
            updates: 20,
            window: Duration::from_secs(60),
        })
    }

    /// The free trial.
    fn welcome(&self, _user: &User, now_ms: u64) -> Welcome {
        let trial = Duration::from_secs(self.args.trial_days * 86_400);
        Welcome {
            line: (self.args.trial_days > 0).then(|| {
                format!(
                    "Your free trial: {}. /subscribe to go on after it.",
                    commands::days(self.args.trial_days)
                )
            }),
            paid_until_ms: Some(now_ms + trial.as_millis() as u64),
        }
    }

    fn streams(&self) -> Vec<StreamDef> {
        vec![
            crate::stream_def!("payments.deposits.json"),
            crate::stream_def!("payments.withdrawals.json"),
            crate::stream_def!("payments.gateway.json"),
        ]
    }

    /// All money: a lost ledger reference or coupon redemption would pay twice, a lost
    /// address assignment or watcher cursor would miss or misplace a deposit, a lost
    /// signer journal entry could sign a withdrawal twice.
    fn buckets(&self) -> Vec<BucketDef> {
        [
            subjects::COUPONS_BUCKET,
            subjects::WALLET_BUCKET,
            subjects::WATCHER_BUCKET,
            subjects::SIGNER_BUCKET,
            subjects::WITHDRAWALS_BUCKET,
            subjects::GATEWAY_BUCKET,
        ]
        .into_iter()
        .map(|name| BucketDef::forever(name).money())
        .collect()
    }

    fn consumers(&self) -> Vec<StageConfig> {
        ["credit", "payments_inbox", "withdrawal_outcomes", "gateway_payments"]
            .into_iter()
            .map(consumer)
            .collect()
    }

    /// The withdrawal sample's hold: user 1 credited and 1 USD held under
    /// `withdraw:sample` (the sample's final outcome settles it).
    fn seed_samples<'a>(&'a self, js: &'a herald_runtime::Js) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let ledger = crate::core::ledger::Ledger::open(js.clone()).await?;
            let usd = crate::core::ledger::money::parse_usd("1")?;
            ledger.credit(1, usd, "deposit:sample", "sample").await?;
            ledger.hold(1, usd, samples::WITHDRAWAL_HOLD, "sample withdrawal").await?;
            Ok(())
        })
    }

    fn check_parsers(&self, text: &str) {
        let _ = commands::PaymentsCommand::from_text(text);
        let _ = commands::parse_callback(text);
        let _ = withdraw::Action::from_callback(text, true);
        let _ = withdraw::Action::from_admin(text);
        let _ = destination::destination(text, &[], None);
    }

    fn metrics(&self) -> &'static [herald_runtime::metric::Metric] {
        metrics::ALL
    }

    fn start<'a>(&'a self, ctx: &'a mut Ctx) -> BoxFuture<'a, anyhow::Result<Vec<StageHandle>>> {
        Box::pin(async move {
            let args = &self.args;
            let accepted = args.accepted_tokens()?;
            let payments = Arc::new(self.open(ctx, &accepted).await?);
            let mut stages = Vec::new();
            if ctx.wants("credit") {
                // expiry reminders ride with the credit stage (several processes may:
                // message ids and the bot's delivered keys keep each reminder single)
                let js = ctx.js.clone();
                let users = ctx.js.get_key_value(subjects::USERS_BUCKET).await?;
                let access = ctx.js.get_key_value(subjects::ACCESS_BUCKET).await?;
                ctx.tasks.spawn(herald_runtime::periodic::every(
                    "reminders",
                    Duration::from_secs(3600),
                    ctx.shutdown.clone(),
                    move || {
                        let (js, users, access) = (js.clone(), users.clone(), access.clone());
                        async move { reminders::publish_due(&js, &users, &access).await }
                    },
                ));
                let stage = credit::CreditStage {
                    ledger: payments.ledger.clone(),
                    tokens: accepted.iter().cloned().collect(),
                    min_deposit: crate::core::ledger::money::parse_usd(&args.min_deposit_usd)?,
                };
                let cfg = ctx.configure(consumer("credit"));
                stages.push(StageHandle::new(stage, cfg).with_sample(samples::deposit_subject(), samples::deposit()));
            }
            if let (true, Some(rpc_url)) = (ctx.wants("watcher"), args.rpc()) {
                self.start_watcher(ctx, &payments, rpc_url).await?;
            }
            if ctx.wants("payments_inbox") {
                let inbox = inbox::PaymentsInbox {
                    payments: payments.clone(),
                    users: ctx.js.get_key_value(subjects::USERS_BUCKET).await?,
                    access: ctx.js.get_key_value(subjects::ACCESS_BUCKET).await?,
                };
                let cfg = ctx.configure(consumer("payments_inbox"));
                stages.push(StageHandle::new(inbox, cfg).with_sample(subjects::routed("payments", 1), samples::routed_deposit()));
            }
            if ctx.wants("withdrawal_outcomes") {
                let stage = withdrawals::WithdrawalOutcomes {
                    ledger: payments.ledger.clone(),
                    admins: ctx.admins.clone(),
                };
                let cfg = ctx.configure(consumer("withdrawal_outcomes"));
                stages.push(StageHandle::new(stage, cfg).with_sample(samples::withdrawal_subject(), samples::withdrawal_final()));
            }
            if let (true, Some(gateway)) = (ctx.wants("gateway_payments"), &payments.gateway) {
                let a = &args.nowpayments;
                let endpoint = nowpayments::server::IpnEndpoint {
                    secret: zeroize::Zeroizing::new(a.nowpayments_ipn_secret.clone().unwrap_or_default().into_bytes()),
                    js: ctx.js.clone(),
                };
                ctx.tasks.spawn(nowpayments::server::serve(a.nowpayments_ipn_addr, Arc::new(endpoint), ctx.shutdown.clone()));
                let stage = nowpayments::stage::GatewayPayments {
                    ledger: payments.ledger.clone(),
                    store: gateway.store.clone(),
                    admins: ctx.admins.clone(),
                };
                let cfg = ctx.configure(consumer("gateway_payments"));
                stages.push(StageHandle::new(stage, cfg).with_sample(samples::gateway_subject(), samples::gateway_finished()));
            }
            Ok(stages)
        })
    }
}

/// The consumer of each payments stage: the one place its stream and filter are named.
fn consumer(stage: &str) -> StageConfig {
    match stage {
        "credit" => StageConfig::new(subjects::DEPOSITS_STREAM, stage, vec!["herald.deposits.>".into()]),
        // the signer's outcomes; its input (`approved`) is not ours
        "withdrawal_outcomes" => StageConfig::new(
            subjects::WITHDRAWALS_STREAM,
            stage,
            ["sent", "final", "failed", "queued"]
                .iter()
                .map(|s| format!("herald.withdrawals.{s}.>"))
                .collect(),
        ),
        // one user's payments in order (the subject ends with the user id)
        "gateway_payments" => StageConfig {
            in_order_per_sender: true,
            ..StageConfig::new(subjects::GATEWAY_STREAM, stage, vec!["herald.gateway.>".into()])
        },
        // one user's updates in order (their subject ends with the user id)
        "payments_inbox" => StageConfig {
            in_order_per_sender: true,
            ..StageConfig::new(subjects::COMMANDS_STREAM, stage, vec![subjects::routed_all("payments")])
        },
        other => unreachable!("no payments stage {other}"),
    }
}

impl PaymentsProduct {
    /// The deposit wallet, address book, ledger, tiers and coupons.
    async fn open(&self, ctx: &Ctx, accepted: &[(alloy::primitives::Address, credit::DepositToken)]) -> anyhow::Result<Payments> {
        let args = &self.args;
        let xpub = args.xpub().ok_or_else(|| anyhow::anyhow!("payments need --deposit-xpub"))?;
        Ok(Payments {
            wallet: wallet::DepositWallet::from_xpub(xpub)?,
            addresses: ctx.js.get_key_value(subjects::WALLET_BUCKET).await?,
            ledger: ctx.ledger().await?,
            tokens: accepted.iter().map(|(address, t)| (t.symbol.clone(), *address)).collect(),
            tiers: subscriptions::parse_tiers(&args.tiers)?,
            coupons: ctx.js.get_key_value(subjects::COUPONS_BUCKET).await?,
            gateway: match args.nowpayments.on() {
                true => Some(nowpayments::Gateway {
                    api: nowpayments::api::Api {
                        base_url: args.nowpayments.nowpayments_api_url.clone(),
                        api_key: args.nowpayments.nowpayments_api_key.clone().unwrap_or_default(),
                        http: reqwest::Client::new(),
                    },
                    callback_url: args.nowpayments.nowpayments_callback_url.clone().unwrap_or_default(),
                    store: ctx.js.get_key_value(subjects::GATEWAY_BUCKET).await?,
                }),
                false => None,
            },
            withdraw: match withdraw::Rules::from_args(&args.withdraw, accepted, &args.deposit_chain)? {
                Some(rules) => Some(withdraw::Withdrawals {
                    rules,
                    store: ctx.js.get_key_value(subjects::WITHDRAWALS_BUCKET).await?,
                    admins: ctx.admins.clone(),
                }),
                None => None,
            },
        })
    }

    async fn start_watcher(&self, ctx: &mut Ctx, payments: &Payments, rpc_url: &str) -> anyhow::Result<()> {
        let a = &self.args;
        let cfg = watcher::WatcherConfig {
            rpc_url: rpc_url.to_string(),
            tokens: payments.tokens.iter().map(|(_, t)| *t).collect(),
            finalized_tag: a.finalized_tag,
            confirmations: a.confirmations,
            max_range: a.max_block_range,
        };
        let from = match watcher::stored_resume_point(&ctx.js, &a.deposit_chain).await? {
            Some(block) => block,
            // first start: from the current head (nobody has an address yet)
            None => watcher::Watcher::new(cfg.clone(), 0)?.head().await?,
        };
        let running = watcher::run(
            watcher::Watcher::new(cfg, from)?,
            payments.wallet.clone(),
            a.deposit_chain.clone(),
            ctx.connect().await?,
            Duration::from_millis(a.watch_poll_ms),
            ctx.shutdown.clone(),
        );
        ctx.tasks.spawn(async move { running.await.map(|_| ()) });
        Ok(())
    }
}

/// What `/deposit` and `/balance` need.
pub struct Payments {
    pub wallet: wallet::DepositWallet,
    /// The `herald_wallet` bucket ([`addresses`]).
    pub addresses: async_nats::jetstream::kv::Store,
    pub ledger: crate::core::ledger::Ledger,
    /// Accepted tokens: symbol and contract.
    pub tokens: Vec<(String, alloy::primitives::Address)>,
    /// What `/subscribe` offers.
    pub tiers: Vec<subscriptions::Tier>,
    /// The `herald_coupons` bucket ([`coupons`]).
    pub coupons: async_nats::jetstream::kv::Store,
    /// `/withdraw`, when `--withdrawals` is on.
    pub withdraw: Option<withdraw::Withdrawals>,
    /// NOWPayments invoices, when configured.
    pub gateway: Option<nowpayments::Gateway>,
}
