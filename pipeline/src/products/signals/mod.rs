//! Signals: token calls from websocket feeds, Solana pool creations and call channels,
//! deduplicated, filtered per user and fanned out; every notified call becomes a
//! tracked call whose price moves turn into multiplier alerts.
//!
//! ```text
//! sources ──> herald.calls.<chain>.<source> [CALLS] ──> dedup ──> herald.signals.<chain> [SIGNALS]
//!   ──> fanout ──> herald.out.notify.<chat> [OUTBOUND] + herald.tracked.<chain> [TRACKED] ──> track
//! herald.prices.<chain> [PRICES] ──> multiplier ──> herald.out.notify.<chat> (2x, 3x, 5x, ...)
//! herald.cmd.signals.<id> [COMMANDS] ──> signals_inbox ──> replies, calls from channel posts
//! ```

pub mod calls;
pub mod commands;
pub mod config;
pub mod dedup;
pub mod fanout;
pub mod inbox;
pub mod metrics;
pub mod posts;
pub mod presets;
pub mod samples;
pub mod sources;
pub mod stats;
pub mod token_state;
pub mod tracking;

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, FromArgMatches};
use futures::future::BoxFuture;
use herald_runtime::replica::Replica;
use herald_runtime::setup::{BucketDef, StreamDef};
use herald_runtime::{StageConfig, StageHandle};
use herald_schemas::{subjects, LegacyUser, MenuCommand, SignalsPrefs, User};

use crate::core::commands::menu_of;
use crate::core::limits::Limit;
use crate::core::product::{Ctx, Product, Registration, Welcome};
use commands::SignalsCommand;
use config::SignalsArgs;
use sources::websocket::{Protocol, WebsocketSource};
use tracking::backend::Backend;
use tracking::store::CallStore;
use tracking::tracker;

/// The registry entry.
pub const REGISTRATION: Registration = Registration {
    name: "signals",
    args: SignalsArgs::augment_args,
    build: |m| Ok(Some(Box::new(Signals(SignalsArgs::from_arg_matches(m)?)))),
    requires: &[],
    operator: None,
};

/// The signals product, configured.
pub struct Signals(pub SignalsArgs);

impl Product for Signals {
    fn name(&self) -> &'static str {
        "signals"
    }

    fn commands(&self) -> Vec<MenuCommand> {
        menu_of::<SignalsCommand>()
    }

    fn help(&self) -> Option<String> {
        Some(commands::HELP.to_string())
    }

    fn segments(&self) -> &'static [(&'static str, &'static str)] {
        &[("signals", "signals subscribers: paid access now, signals not paused")]
    }

    fn segment<'a>(&'a self, _name: &'a str, env: &'a crate::core::product::StatsEnv) -> BoxFuture<'a, anyhow::Result<Vec<i64>>> {
        Box::pin(async move { stats::subscribers(env).await })
    }

    /// Calls and signals today, notifications queued today, today's top callers.
    fn stats<'a>(&'a self, env: &'a crate::core::product::StatsEnv) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move { Ok(Some(stats::section(env).await?)) })
    }

    fn callback_prefixes(&self) -> &'static [&'static str] {
        &["f:", "c:"]
    }

    /// `/admin preset …` (see [`presets`]).
    fn admin_commands(&self) -> &'static [&'static str] {
        &["preset"]
    }

    fn update_kinds(&self) -> &'static [&'static str] {
        &["channel_post"]
    }

    fn inbound_limit(&self) -> Option<Limit> {
        // menus are pressed quickly; a script is not a person
        Some(Limit {
            updates: 30,
            window: Duration::from_secs(10),
        })
    }

    fn welcome(&self, _user: &User, _now_ms: u64) -> Welcome {
        Welcome {
            line: Some("You will now receive token calls.".into()),
            paid_until_ms: None,
        }
    }

    /// A version 1 user record's pause and filters.
    fn adopt_legacy<'a>(&'a self, js: &'a herald_runtime::Js, legacy: &'a LegacyUser) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let prefs = js.get_key_value(subjects::SIGNALS_USERS_BUCKET).await?;
            herald_runtime::records::upsert::<SignalsPrefs>(&prefs, legacy.user_id, || legacy.signals(), |_| {}).await?;
            Ok(())
        })
    }

    fn streams(&self) -> Vec<StreamDef> {
        vec![
            crate::stream_def!("signals.calls.json"),
            crate::stream_def!("signals.signals.json"),
            crate::stream_def!("signals.prices.json"),
            crate::stream_def!("signals.tracked.json"),
        ]
    }

    fn buckets(&self) -> Vec<BucketDef> {
        vec![
            BucketDef::forever(subjects::CHANNELS_BUCKET),
            BucketDef::forever(subjects::SIGNALS_USERS_BUCKET),
            BucketDef::forever(presets::BUCKET),
        ]
    }

    fn consumers(&self) -> Vec<StageConfig> {
        STAGES.iter().map(|s| consumer(s)).collect()
    }

    /// Its commands and buttons; a filter edit that parses stays in range (a win rate
    /// within 0–1, an FDV band whose low end is not above its high end).
    fn check_parsers(&self, text: &str) {
        let chains = herald_schemas::checks::ChainList::default();
        let _ = commands::SignalsCommand::from_text(text);
        let _ = calls::parse_callback(text);
        let filters = herald_schemas::Filters::default();
        let edits = [commands::parse_filter_args(text, &chains).ok(), commands::parse_callback(text, &chains).and_then(Result::ok)];
        for edit in edits.into_iter().flatten() {
            if let Ok(f) = commands::edited(&filters, edit) {
                assert!(f.min_win_rate.is_none_or(|w| (0.0..=1.0).contains(&w)), "{text:?}");
                if let (Some(lo), Some(hi)) = (f.min_fdv_usd, f.max_fdv_usd) {
                    assert!(lo <= hi, "{text:?}");
                }
            }
        }
    }

    fn metrics(&self) -> &'static [herald_runtime::metric::Metric] {
        metrics::ALL
    }

    fn start<'a>(&'a self, ctx: &'a mut Ctx) -> BoxFuture<'a, anyhow::Result<Vec<StageHandle>>> {
        Box::pin(async move {
            let args = &self.0;
            let store = if ctx.wants("tracker") {
                Some(Backend::open(&args.tracker).await?)
            } else {
                None
            };
            let mut stages = self.signal_stages(ctx).await?;
            let tracker = match store {
                Some(store) => Some(start_tracker(args, store, ctx, &mut stages).await?),
                None => None,
            };
            if ctx.wants("signals_inbox") {
                let inbox = inbox::SignalsInbox {
                    users: ctx.js.get_key_value(subjects::USERS_BUCKET).await?,
                    prefs: ctx.js.get_key_value(subjects::SIGNALS_USERS_BUCKET).await?,
                    calls: tracker,
                    chains: args.chain_list()?,
                    presets: presets::Presets {
                        kv: ctx.js.get_key_value(presets::BUCKET).await?,
                    },
                };
                let cfg = ctx.configure(consumer("signals_inbox"));
                stages.push(StageHandle::new(inbox, cfg).with_sample(subjects::routed("signals", 1), samples::routed_pause()));
            }
            let feeds = args.feed_urls.iter().map(|u| (u.clone(), Protocol::HeraldFeed));
            let solana = args.solana_ws_url.iter().map(|u| (u.clone(), Protocol::SolanaTransactions));
            for (url, protocol) in feeds.chain(solana) {
                let source = WebsocketSource {
                    url,
                    protocol,
                    js: ctx.connect().await?,
                    max_in_flight: ctx.max_in_flight,
                    chains: args.chain_list()?,
                };
                let shutdown = ctx.shutdown.clone();
                ctx.tasks.spawn(async move {
                    source.run(shutdown).await;
                    Ok(())
                });
            }
            Ok(stages)
        })
    }
}

/// The signals stages.
const STAGES: [&str; 5] = ["dedup", "fanout", "track", "multiplier", "signals_inbox"];

/// The consumer of each signals stage: the one place its stream and filter are named.
fn consumer(stage: &str) -> StageConfig {
    let on = |stream: &str, filter: String| StageConfig::new(stream, stage, vec![filter]);
    match stage {
        "dedup" => on(subjects::CALLS_STREAM, "herald.calls.>".into()),
        "fanout" => on(subjects::SIGNALS_STREAM, "herald.signals.>".into()),
        "track" => on(subjects::TRACKED_STREAM, "herald.tracked.>".into()),
        "multiplier" => on(subjects::PRICES_STREAM, "herald.prices.>".into()),
        // one user's updates in order (their subject ends with the user id)
        "signals_inbox" => StageConfig {
            in_order_per_sender: true,
            ..on(subjects::COMMANDS_STREAM, subjects::routed_all("signals"))
        },
        other => unreachable!("no signals stage {other}"),
    }
}

impl Signals {
    /// dedup and fan-out.
    async fn signal_stages(&self, ctx: &mut Ctx) -> anyhow::Result<Vec<StageHandle>> {
        let args = &self.0;
        let mut stages = Vec::new();
        let token_state = |redis| token_state::TokenState::new(redis, args.dedup.accepted_ttl(), args.dedup.rejected_ttl());
        if ctx.wants("dedup") {
            let stage = dedup::DedupStage {
                state: token_state(ctx.redis.connect().await?),
            };
            let cfg = ctx.configure(consumer("dedup"));
            stages.push(StageHandle::new(stage, cfg).with_sample(subjects::call("solana", "feed"), samples::call()));
        }
        if ctx.wants("fanout") {
            let users = Replica::start(&ctx.js, &fanout::USER_BUCKETS, fanout::UserIndex::default(), ctx.shutdown.clone()).await?;
            let channels = Replica::start(&ctx.js, &[subjects::CHANNELS_BUCKET], fanout::ChannelIndex::default(), ctx.shutdown.clone()).await?;
            tracing::info!(users = users.read(|u| u.len()), "user replica loaded");
            let stage = fanout::FanoutStage {
                users,
                channels,
                state: token_state(ctx.redis.connect().await?),
                // a deployment that sells subscriptions sends signals to subscribers
                require_subscription: ctx.has_product("payments") && !args.free_signals,
            };
            let cfg = ctx.configure(consumer("fanout"));
            stages.push(StageHandle::new(stage, cfg).with_sample(subjects::signal("solana"), samples::signal()));
        }
        Ok(stages)
    }
}

/// The tracker: its stages (track, multiplier) and tasks (checkpoints, channel
/// statistics, retention, the DexScreener poller). Returned for `/calls`.
async fn start_tracker<S: CallStore>(
    args: &SignalsArgs,
    store: S,
    ctx: &mut Ctx,
    stages: &mut Vec<StageHandle>,
) -> anyhow::Result<Arc<tracker::Tracker<S>>> {
    let retention = args.tracker.retention();
    let since = herald_schemas::now_ms().saturating_sub(retention.as_millis() as u64);
    let win_window = args.tracker.win_window_hours * 3_600_000;
    let tracker = tracker::Tracker::load(store, args.tracker.thresholds.clone(), since, win_window).await?;
    ctx.tasks
        .spawn(tracker::run_checkpoints(tracker.clone(), Duration::from_secs(1), ctx.shutdown.clone()));
    // channel statistics: changed callers go to the herald_channels bucket every 5 s
    let kv = ctx.js.get_key_value(subjects::CHANNELS_BUCKET).await?;
    let t = tracker.clone();
    ctx.tasks.spawn(herald_runtime::periodic::every(
        "channel_stats",
        Duration::from_secs(5),
        ctx.shutdown.clone(),
        move || tracker::publish_channel_stats(t.clone(), kv.clone()),
    ));
    // retention: calls older than the window leave the store hourly (the index drops
    // them at the next start)
    let t = tracker.clone();
    ctx.tasks.spawn(herald_runtime::periodic::every(
        "expire_calls",
        Duration::from_secs(3600),
        ctx.shutdown.clone(),
        move || {
            let t = t.clone();
            async move {
                let before = herald_schemas::now_ms().saturating_sub(retention.as_millis() as u64);
                let n = t.store.expire(before).await?;
                if n > 0 {
                    tracing::info!(expired = n, "tracked calls expired");
                }
                Ok(())
            }
        },
    ));
    if let Some(base_url) = args.tracker.dexscreener_url.clone() {
        let cfg = sources::dexscreener::PollerConfig {
            base_url,
            per_minute: args.tracker.dexscreener_per_minute,
            interval: Duration::from_secs(args.tracker.dexscreener_interval_secs),
        };
        let (t, js, s) = (tracker.clone(), ctx.connect().await?, ctx.shutdown.clone());
        ctx.tasks.spawn(async move {
            sources::dexscreener::run(cfg, js, move || t.tracked_tokens(), s).await;
            Ok(())
        });
    }
    let track = ctx.configure(consumer("track"));
    stages.push(StageHandle::new(tracker::TrackStage(tracker.clone()), track).with_sample(subjects::tracked("solana"), samples::tracked()));
    let multiplier = ctx.configure(consumer("multiplier"));
    stages.push(StageHandle::new(tracker::MultiplierStage(tracker.clone()), multiplier).with_sample(subjects::price("solana"), samples::price()));
    Ok(tracker)
}
