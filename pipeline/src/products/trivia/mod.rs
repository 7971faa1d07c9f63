//! Trivia: quiz games in private chats (native quiz polls) and groups (buttons, timed
//! by the server), a daily challenge, leaderboards, flags, and a worker that scores
//! every answer exactly once.
//!
//! ```text
//! herald.cmd.trivia.<user> [COMMANDS] ──> trivia_inbox ──> games bucket (new game, join, start)
//!     /trivia /daily /top /stats /flag, buttons,     ──> herald.trivia.answer.<game> [TRIVIA]
//!     poll answers (via the polls bucket)            ──> herald.out.reply.<chat>
//! herald.trivia.answer.<game> ──> trivia_scorer ──> game (CAS) ──> herald.trivia.result.<game>,
//!     herald.trivia.board.<player> ──> stats and leaderboards (Redis, once per answer)
//! herald.trivia.poll.<game> (the bot's reports) ──> trivia_polls ──> polls bucket
//! herald.trivia.explain.<question> ──> trivia_explainer (optional) ──> AI endpoint
//!     ──> explanations (Redis, once per question)
//! trivia_clock (task): watches the games; deadlines, early ends, dropouts, lobbies;
//!     announces each state ──> herald.out.reply.<chat>, herald.trivia.game.<game>
//! trivia_http (task): the Mini App and its JWT API ──> games bucket,
//!     herald.trivia.answer.<game> (scored by trivia_scorer like every answer)
//! ```
//!
//! Questions are the Open Trivia DB's (see [`bank`]); the rules of points, streaks and
//! periods are [`scoring`]'s; a game's rules are [`game`]'s.

pub mod ai;
pub mod app;
pub mod bank;
pub mod clock;
pub mod commands;
pub mod config;
pub mod game;
pub mod inbox;
pub mod metrics;
pub mod operator;
pub mod polls;
pub mod present;
pub mod scorer;
pub mod scoring;
pub mod service;
pub mod store;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::object_store;
use clap::{Args, FromArgMatches};
use futures::future::BoxFuture;
use herald_runtime::setup::{BucketDef, StreamDef};
use herald_runtime::{StageConfig, StageHandle};
use herald_schemas::{subjects, MenuCommand};
use tokio::io::AsyncReadExt;

use crate::core::commands::menu_of;
use crate::core::limits::Limit;
use crate::core::product::{sample_command, Ctx, Product, Registration};
use bank::Bank;
use config::TriviaArgs;
use service::Trivia;

/// The registry entry.
pub const REGISTRATION: Registration = Registration {
    name: "trivia",
    args: TriviaArgs::augment_args,
    build: |m| {
        let args = TriviaArgs::from_arg_matches(m)?;
        args.check()?;
        Ok(Some(Box::new(TriviaProduct(args))))
    },
    requires: &[],
    operator: Some(operator::OPERATOR),
};

/// The object store holding an imported question bank (`bank.json`, an opentdb dump);
/// without it the built-in sample is played.
pub const BANK_STORE: &str = "herald_trivia_bank";
const BANK_OBJECT: &str = "bank.json";

/// Trivia, configured.
pub struct TriviaProduct(pub TriviaArgs);

impl Product for TriviaProduct {
    fn name(&self) -> &'static str {
        "trivia"
    }

    fn commands(&self) -> Vec<MenuCommand> {
        menu_of::<commands::TriviaCommand>()
    }

    fn help(&self) -> Option<String> {
        Some(commands::HELP.into())
    }

    fn group_commands(&self) -> &'static [&'static str] {
        commands::GROUP
    }

    fn callback_prefixes(&self) -> &'static [&'static str] {
        &[present::PREFIX]
    }

    fn update_kinds(&self) -> &'static [&'static str] {
        &["poll_answer"]
    }

    fn segments(&self) -> &'static [(&'static str, &'static str)] {
        &[("trivia", "users who have played trivia")]
    }

    /// `trivia`: players with stats (`herald:trivia:stats:<user>`).
    fn segment<'a>(&'a self, _name: &'a str, env: &'a crate::core::product::StatsEnv) -> BoxFuture<'a, anyhow::Result<Vec<i64>>> {
        Box::pin(async move { crate::core::broadcast::users_in_keys(env, "herald:trivia:stats:").await })
    }

    /// Games started and ended today (by mode), players in them, answers scored today.
    fn stats<'a>(&'a self, env: &'a crate::core::product::StatsEnv) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move {
            use std::collections::{BTreeMap, HashSet};
            let (mut started, mut ended, mut players) = (BTreeMap::<String, u64>::new(), 0u64, HashSet::new());
            let since = herald_runtime::reader::since(env.today_ms());
            let mut reader = herald_runtime::reader::Reader::open(&env.js, subjects::TRIVIA_RESULTS_STREAM, Some("herald.trivia.game.>"), since).await?;
            while let Some(m) = reader.next().await? {
                if let Ok(e) = herald_schemas::decode::<herald_schemas::TriviaGameEvent>(&m.payload) {
                    match e.step {
                        herald_schemas::GameStep::Started { players: p, .. } => {
                            *started.entry(e.kind).or_default() += 1;
                            players.extend(p);
                        }
                        _ => ended += 1,
                    }
                }
            }
            reader.close().await;
            let answers = env.count_today(subjects::TRIVIA_RESULTS_STREAM, "herald.trivia.result.>").await?;
            let by_mode: Vec<String> = started.iter().map(|(mode, n)| format!("{mode} {n}")).collect();
            Ok(Some(format!(
                "<b>Trivia</b>\ngames today {} ({}) · ended {ended} · players {} · answers scored {answers}",
                started.values().sum::<u64>(),
                if by_mode.is_empty() { "none".into() } else { by_mode.join(", ") },
                players.len()
            )))
        })
    }

    fn admin_commands(&self) -> &'static [&'static str] {
        commands::ADMIN
    }

    /// 20 updates per 10 s: a group game's presses come one per question.
    fn inbound_limit(&self) -> Option<Limit> {
        Some(Limit {
            updates: 20,
            window: Duration::from_secs(10),
        })
    }

    fn streams(&self) -> Vec<StreamDef> {
        // TRIVIA first: an older deployment's TRIVIA held every trivia subject, and
        // must give up results and game events before TRIVIA_RESULTS can take them
        vec![crate::stream_def!("trivia.json"), crate::stream_def!("trivia.results.json")]
    }

    fn buckets(&self) -> Vec<BucketDef> {
        let day = Duration::from_secs(24 * 3600);
        vec![
            BucketDef::expiring(subjects::TRIVIA_GAMES_BUCKET, day),
            BucketDef::expiring(subjects::TRIVIA_POLLS_BUCKET, day),
        ]
    }

    fn consumers(&self) -> Vec<StageConfig> {
        let mut stages = vec!["trivia_inbox", "trivia_scorer", "trivia_polls"];
        if self.0.trivia_ai_url.is_some() {
            stages.push("trivia_explainer");
        }
        stages.into_iter().map(consumer).collect()
    }

    /// Game `p0` of user 1, asking the sample bank's first question: what the scorer's
    /// sample answers.
    fn seed_samples<'a>(&'a self, js: &'a herald_runtime::Js) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let first = bank::Bank::sample().questions[0].id.clone();
            let setup = game::Setup {
                id: "p0".into(),
                mode: game::Mode::Private,
                chat_id: 1,
                pool: bank::Pool::default(),
                questions: vec![first],
                limit_ms: 20_000,
                now_ms: 0,
            };
            let games = store::Games {
                kv: js.get_key_value(subjects::TRIVIA_GAMES_BUCKET).await?,
            };
            games.create(&game::Game::solo(setup, (1, "S".into()))).await?;
            Ok(())
        })
    }

    fn check_parsers(&self, text: &str) {
        let _ = commands::TriviaCommand::from_text(text);
    }

    fn metrics(&self) -> &'static [herald_runtime::metric::Metric] {
        metrics::ALL
    }

    fn start<'a>(&'a self, ctx: &'a mut Ctx) -> BoxFuture<'a, anyhow::Result<Vec<StageHandle>>> {
        Box::pin(async move {
            let trivia = Arc::new(self.open(ctx).await?);
            let mut stages = Vec::new();
            if ctx.wants("trivia_inbox") {
                let stage = inbox::TriviaInbox { trivia: trivia.clone() };
                let cfg = ctx.configure(consumer("trivia_inbox"));
                stages.push(StageHandle::new(stage, cfg).with_sample(subjects::routed("trivia", 1), sample_command("/stats")));
            }
            if ctx.wants("trivia_scorer") {
                let stage = scorer::TriviaScorer::new(trivia.clone());
                let cfg = ctx.configure(consumer("trivia_scorer"));
                let sample = herald_schemas::TriviaAnswer::new("p0", 0, 1, 0, 0, herald_schemas::AnswerVia::App, "S");
                stages.push(StageHandle::new(stage, cfg).with_sample(subjects::trivia("answer", "p0"), herald_schemas::encode(&sample)));
            }
            if ctx.wants("trivia_polls") {
                let stage = polls::TriviaPolls { trivia: trivia.clone() };
                let cfg = ctx.configure(consumer("trivia_polls"));
                let mut report = herald_schemas::DeliveryReport::new(
                    "trivia:p0:q0",
                    1,
                    herald_schemas::Content::text("sample"),
                    herald_schemas::Outcome::Sent { message_ids: vec![1] },
                );
                report.poll_id = Some("sample-poll".into());
                stages.push(StageHandle::new(stage, cfg).with_sample(subjects::trivia("poll", "p0"), herald_schemas::encode(&report)));
            }
            if let (Some(url), true) = (&self.0.trivia_ai_url, ctx.wants("trivia_explainer")) {
                let a = &self.0;
                let ai = ai::AiClient::new(url, &a.trivia_ai_key, &a.trivia_ai_model, a.trivia_ai_timeout)?;
                let stage = ai::TriviaExplainer { trivia: trivia.clone(), ai };
                let cfg = ctx.configure(consumer("trivia_explainer"));
                let id = &trivia.bank.questions[0].id;
                let sample = herald_schemas::ExplainRequest { v: 1, question_id: id.clone() };
                stages.push(StageHandle::new(stage, cfg).with_sample(subjects::trivia("explain", id), herald_schemas::encode(&sample)));
            }
            if ctx.wants("trivia_clock") {
                ctx.tasks.spawn(clock::run(trivia.clone(), self.0.trivia_tick, ctx.shutdown.clone()));
            }
            if ctx.wants("trivia_http") {
                match self.mini_app(trivia.clone()) {
                    Some(app) => {
                        ctx.tasks.spawn(app::http::serve(self.0.trivia_http, app, ctx.shutdown.clone()));
                    }
                    None => tracing::info!("trivia Mini App off: no --trivia-bot-token to check initData with"),
                }
            }
            Ok(stages)
        })
    }
}

impl TriviaProduct {
    /// The Mini App's state, when a bot token is configured.
    pub fn mini_app(&self, trivia: Arc<Trivia>) -> Option<app::http::App> {
        let a = &self.0;
        let bot_token = a.trivia_bot_token.clone()?;
        let secret = match &a.trivia_jwt_secret {
            Some(s) => s.as_bytes().to_vec(),
            None => app::auth::Tokens::derived_secret(&bot_token),
        };
        Some(app::http::App {
            trivia,
            tokens: app::auth::Tokens::new(&secret, a.trivia_jwt_ttl.as_secs()),
            bot_token,
            init_data_max_age_s: a.trivia_init_data_max_age.as_secs(),
        })
    }

    /// Trivia on its stores, with the imported bank or the built-in sample.
    ///
    /// Errors: a bucket is missing (`pipeline setup`), Redis or NATS unreachable, an
    /// imported bank that no longer loads.
    pub async fn open(&self, ctx: &mut Ctx) -> anyhow::Result<Trivia> {
        let js = ctx.connect().await?;
        Trivia::open(js, ctx.redis.connect().await?, self.0.clone()).await
    }
}

/// The imported bank, or the built-in sample when none was imported.
///
/// Errors: the store is unreachable, or the imported bank does not load.
pub async fn load_bank(js: &herald_runtime::Js) -> anyhow::Result<Bank> {
    let Ok(store) = js.get_object_store(BANK_STORE).await else {
        return Ok(Bank::sample());
    };
    let Ok(mut object) = store.get(BANK_OBJECT).await else {
        return Ok(Bank::sample());
    };
    let mut json = String::new();
    object.read_to_string(&mut json).await?;
    Bank::from_opentdb(&json).map_err(|e| anyhow::anyhow!("the imported trivia bank: {e}"))
}

/// `pipeline trivia import FILE`: checks an opentdb dump and stores it as the bank
/// every pipeline loads at start. Returns the bank as loaded (questions, skipped).
///
/// Errors: the file is not a usable dump, NATS unreachable.
pub async fn import_bank(js: &herald_runtime::Js, json: &str) -> anyhow::Result<Bank> {
    let bank = Bank::from_opentdb(json)?;
    let store = match js.get_object_store(BANK_STORE).await {
        Ok(s) => s,
        Err(_) => {
            js.create_object_store(object_store::Config {
                bucket: BANK_STORE.into(),
                description: Some("Trivia's imported question bank (bank.json, an opentdb dump)".into()),
                ..Default::default()
            })
            .await?
        }
    };
    store.put(BANK_OBJECT, &mut json.as_bytes()).await?;
    Ok(bank)
}

/// The consumer of each trivia stage: the one place its stream and filter are named.
fn consumer(stage: &str) -> StageConfig {
    let (stream, filter) = match stage {
        // one user's updates in order
        "trivia_inbox" => (subjects::COMMANDS_STREAM, subjects::routed_all("trivia")),
        // a game's answers run together: the writer gathers them into one write per game
        "trivia_scorer" => (subjects::TRIVIA_STREAM, "herald.trivia.answer.>".to_string()),
        "trivia_polls" => (subjects::TRIVIA_STREAM, "herald.trivia.poll.>".to_string()),
        "trivia_explainer" => (subjects::TRIVIA_STREAM, "herald.trivia.explain.>".to_string()),
        other => unreachable!("no trivia stage {other}"),
    };
    StageConfig {
        in_order_per_sender: stage != "trivia_scorer",
        ..StageConfig::new(stream, stage, vec![filter])
    }
}
