//! `loadtest bench --scenario trivia`: trivia's two figures, on a whole local stack
//! (real nats-server and redis-server, `pipeline` and `bot` processes, the Bot API
//! emulator with Telegram's global limit raised, so Herald's side is measured).
//!
//! 1. **Answers at once**: `players` players in group games of `group_size`, each game
//!    on its first question (written to the games bucket as a started game). Every
//!    player presses an answer button at once (all updates pushed to the emulator in
//!    one go). Per answer: from the server having the update (the result's `at_ms`,
//!    the UPDATES stream's timestamp) to its score recorded (the result event, which
//!    the scorer publishes after the game's compare-and-set write), and from the push
//!    to the emulator (so including the bot's long poll) to the same.
//! 2. **Leaderboard reads**: a weekly board of `board_players` players (filled in
//!    Redis directly), read through the Mini App API (`GET /trivia/api/leaderboard`,
//!    JWT checked, top 10 plus the caller's own rank) by `readers` concurrent clients,
//!    `reads` requests in all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use herald_pipeline::products::trivia::app::auth::{AppUser, Tokens};
use herald_pipeline::products::trivia::bank::{Bank, Pool};
use herald_pipeline::products::trivia::game::{Game, Mode, Setup};
use herald_pipeline::products::trivia::scoring::{board, Period};
use herald_pipeline::products::trivia::store::Games;
use herald_schemas::{subjects, TriviaResult};
use herald_testkit::free_port;
use serde::Serialize;
use serde_json::json;

use crate::report::{histogram, Percentiles};
use crate::stack::{Stack, StackOptions, DEMO_TOKEN};

/// The scenario's sizes.
#[derive(Debug, Clone, clap::Args)]
pub struct TriviaBenchArgs {
    /// Players answering at once.
    #[arg(long = "trivia-players", default_value_t = 2_000)]
    pub players: usize,
    /// Players per group game.
    #[arg(long = "trivia-group-size", default_value_t = 5)]
    pub group_size: usize,
    /// Players on the leaderboard read.
    #[arg(long = "trivia-board-players", default_value_t = 100_000)]
    pub board_players: usize,
    /// Leaderboard requests in all.
    #[arg(long = "trivia-reads", default_value_t = 20_000)]
    pub reads: usize,
    /// Concurrent leaderboard readers.
    #[arg(long = "trivia-readers", default_value_t = 16)]
    pub readers: usize,
}

/// What the scenario measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct TriviaReport {
    pub players: usize,
    pub games: usize,
    /// Answers scored (each once: the scorer's own counter).
    pub scored: u64,
    /// The scorer's game writes: batches of waiting answers (`herald_batches_total`
    /// of `trivia_answers`), each one read and one compare-and-set per game in it.
    pub write_batches: u64,
    /// Writes retried because the clock moved the game meanwhile.
    pub write_conflicts: u64,
    /// The server having the update -> its score recorded.
    pub answer_to_score: Percentiles,
    /// Of which: the update -> the answer event (router and trivia inbox).
    pub update_to_answer_event: Percentiles,
    /// Of which: the answer event -> its score recorded (the scorer: the worker).
    pub answer_event_to_score: Percentiles,
    /// The update pushed to the emulator -> its score recorded.
    pub push_to_score: Percentiles,
    /// All answers pushed -> the last scored, ms.
    pub all_scored_ms: u64,
    pub board_players: usize,
    pub readers: usize,
    /// `GET /trivia/api/leaderboard`, client side.
    pub board_read: Percentiles,
    pub reads_per_s: f64,
}

impl std::fmt::Display for TriviaReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = |x: &Percentiles| {
            format!(
                "p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
                x.p50_ms, x.p99_ms, x.p999_ms, x.max_ms
            )
        };
        writeln!(
            f,
            "scenario trivia: {} players answering at once in {} group games",
            self.players, self.games
        )?;
        writeln!(
            f,
            "  answer (server has it) -> score recorded: {} (goal p99 < 100 ms)",
            p(&self.answer_to_score)
        )?;
        writeln!(
            f,
            "    of which update -> answer event (router, inbox): {}",
            p(&self.update_to_answer_event)
        )?;
        writeln!(
            f,
            "    of which answer event -> score recorded (the scorer): {}",
            p(&self.answer_event_to_score)
        )?;
        writeln!(f, "  pushed to Telegram's side -> score recorded: {}", p(&self.push_to_score))?;
        writeln!(
            f,
            "  {} scored (scorer's counter), the last {} ms after the push",
            self.scored, self.all_scored_ms
        )?;
        writeln!(
            f,
            "  the scorer's writes: {} batches of waiting answers ({:.1} answers a batch), {} conflicts re-read",
            self.write_batches,
            self.scored as f64 / self.write_batches.max(1) as f64,
            self.write_conflicts
        )?;
        writeln!(
            f,
            "  leaderboard of {} players, {} readers: {} (goal p99 < 20 ms), {:.0} reads/s",
            self.board_players,
            self.readers,
            p(&self.board_read),
            self.reads_per_s
        )
    }
}

/// Runs both parts on one fresh stack.
///
/// Errors: the stack does not start, or an answer is never scored.
pub async fn run(args: &TriviaBenchArgs) -> anyhow::Result<TriviaReport> {
    let port = free_port();
    let pipeline_args: Vec<String> = [
        "--products",
        "trivia",
        "--trivia-bot-token",
        DEMO_TOKEN,
        "--trivia-http",
        &format!("127.0.0.1:{port}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let stack = Stack::start(StackOptions::unthrottled(pipeline_args)).await?;
    let mut report = answers_at_once(&stack, args).await?;
    leaderboard_reads(&stack, args, &format!("http://127.0.0.1:{port}"), &mut report).await?;
    Ok(report)
}

/// A group member pressing answer `option` of game `game`'s first question.
fn press(user: i64, group: i64, game: &str, option: usize) -> serde_json::Value {
    json!({"callback_query": {"id": format!("cb-{user}"), "from": {"id": user, "is_bot": false, "first_name": format!("P{user}")},
        "chat_instance": "1", "data": format!("tv:a:{game}:0:{option}"),
        "message": {"message_id": 1, "date": 0, "chat": {"id": group, "type": "supergroup", "title": "G"}, "text": "q"}}})
}

async fn answers_at_once(stack: &Stack, args: &TriviaBenchArgs) -> anyhow::Result<TriviaReport> {
    let js = stack.jetstream().await?;
    let games = Games {
        kv: js.get_key_value(subjects::TRIVIA_GAMES_BUCKET).await?,
    };
    let bank = Bank::sample();
    let questions: Vec<String> = bank.questions.iter().take(3).map(|q| q.id.clone()).collect();
    let now = herald_schemas::now_ms();
    let n_games = args.players.div_ceil(args.group_size);
    let mut presses = Vec::new();
    for g in 0..n_games {
        let group = -1_000_000 - g as i64;
        let members: Vec<i64> = (0..args.group_size)
            .map(|i| 10_000_000 + (g * args.group_size + i) as i64)
            .take(args.players - g * args.group_size)
            .collect();
        let setup = Setup {
            id: format!("bench{g}"),
            mode: Mode::Group,
            chat_id: group,
            pool: Pool::default(),
            questions: questions.clone(),
            // long enough that no answer is late and the clock stays out of it
            limit_ms: 600_000,
            now_ms: now,
        };
        let mut game = Game::solo(setup, (members[0], format!("P{}", members[0])));
        for m in &members[1..] {
            game.players.insert(*m, Default::default());
        }
        games.create(&game).await?;
        for (i, m) in members.iter().enumerate() {
            presses.push((*m, group, game.id.clone(), i % 2));
        }
    }
    // every result, as the scorer publishes it
    let client = async_nats::connect(herald_runtime::config::servers(&stack.nats.url())).await?;
    let mut results = client.subscribe("herald.trivia.result.>").await?;
    let mut answers = client.subscribe("herald.trivia.answer.>").await?;
    let pushed: Arc<Mutex<HashMap<(String, i64), Instant>>> = Arc::default();
    // when each answer event was published (seen on its subject), and how long after
    // the server had the update
    let events: Arc<Mutex<HashMap<(String, i64), Instant>>> = Arc::default();
    let ingest = Arc::new(Mutex::new(histogram()));
    let watcher = {
        let (events, ingest) = (events.clone(), ingest.clone());
        tokio::spawn(async move {
            while let Some(msg) = answers.next().await {
                let Ok(a) = herald_schemas::decode::<herald_schemas::TriviaAnswer>(&msg.payload) else {
                    continue;
                };
                ingest
                    .lock()
                    .unwrap()
                    .record(herald_schemas::now_ms().saturating_sub(a.at_ms).max(1) * 1000)
                    .ok();
                events.lock().unwrap().insert((a.game, a.player), Instant::now());
            }
        })
    };
    let expected = presses.len();
    let collector = {
        let (pushed, events) = (pushed.clone(), events.clone());
        tokio::spawn(async move {
            let (mut server, mut push, mut worker) = (histogram(), histogram(), histogram());
            let mut last = Instant::now();
            while (server.len() as usize) < expected {
                let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(60), results.next()).await else {
                    break;
                };
                let Ok(r) = herald_schemas::decode::<TriviaResult>(&msg.payload) else {
                    continue;
                };
                let now_ms = herald_schemas::now_ms();
                server.record(now_ms.saturating_sub(r.at_ms).max(1) * 1000).ok();
                if let Some(t) = pushed.lock().unwrap().get(&(r.game.clone(), r.player)) {
                    push.record(t.elapsed().as_micros().max(1) as u64).ok();
                }
                if let Some(t) = events.lock().unwrap().get(&(r.game.clone(), r.player)) {
                    worker.record(t.elapsed().as_micros().max(1) as u64).ok();
                }
                last = Instant::now();
            }
            (server, push, worker, last)
        })
    };
    let start = Instant::now();
    for (user, group, game, option) in &presses {
        pushed.lock().unwrap().insert((game.clone(), *user), Instant::now());
        stack.emulator.push_update(press(*user, *group, game, *option));
    }
    let (server, push, worker, last) = collector.await?;
    watcher.abort();
    let ingest = Percentiles::of(&ingest.lock().unwrap());
    anyhow::ensure!(
        server.len() as usize == expected,
        "{} of {expected} answers scored within a minute",
        server.len()
    );
    let metrics = stack.pipeline.metrics().await?;
    let count = |name: &str, labels: &[(&str, &str)]| herald_runtime::metric::sum_in(&metrics, name, labels) as u64;
    let scored = count("herald_trivia_scored_total", &[]);
    anyhow::ensure!(
        scored == expected as u64,
        "the scorer counted {scored} scores for {expected} answers"
    );
    Ok(TriviaReport {
        players: args.players,
        games: n_games,
        scored,
        write_batches: count("herald_batches_total", &[("batch", "trivia_answers")]),
        write_conflicts: count("herald_trivia_game_write_conflicts_total", &[]),
        answer_to_score: Percentiles::of(&server),
        update_to_answer_event: ingest,
        answer_event_to_score: Percentiles::of(&worker),
        push_to_score: Percentiles::of(&push),
        all_scored_ms: last.duration_since(start).as_millis() as u64,
        ..Default::default()
    })
}

async fn leaderboard_reads(stack: &Stack, args: &TriviaBenchArgs, base: &str, report: &mut TriviaReport) -> anyhow::Result<()> {
    let mut redis = redis::aio::ConnectionManager::new(redis::Client::open(stack.redis.url())?).await?;
    let key = format!("herald:trivia:board:{}", board(None, &Period::Week.token(herald_schemas::now_ms())));
    for chunk in (0..args.board_players).collect::<Vec<_>>().chunks(5_000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            let player = 20_000_000 + *i as i64;
            pipe.zadd(&key, player, (*i * 7919) % 1_000_003).ignore();
            pipe.hset("herald:trivia:names", player, format!("Player {i}")).ignore();
        }
        pipe.query_async::<()>(&mut redis).await?;
    }
    // readers: players somewhere in the middle of the board, each with a token
    let secret = Tokens::derived_secret(DEMO_TOKEN);
    let tokens = Tokens::new(&secret, 3_600);
    let http = reqwest::Client::new();
    let url = format!("{base}/trivia/api/leaderboard?period=week");
    let per_reader = args.reads / args.readers.max(1);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for r in 0..args.readers {
        let user = AppUser {
            id: 20_000_000 + (r * 997 % args.board_players.max(1)) as i64,
            first_name: format!("Reader {r}"),
        };
        let token = tokens.issue(&user, herald_schemas::now_ms() / 1000)?;
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = histogram();
            for _ in 0..per_reader {
                let t = Instant::now();
                let r = http.get(&url).bearer_auth(&token).send().await?;
                anyhow::ensure!(r.status().is_success(), "leaderboard read: {}", r.status());
                let body: serde_json::Value = r.json().await?;
                anyhow::ensure!(body["top"].as_array().is_some_and(|t| t.len() == 10), "a top 10");
                h.record(t.elapsed().as_micros().max(1) as u64).ok();
            }
            Ok::<_, anyhow::Error>(h)
        }));
    }
    let mut all = histogram();
    for t in tasks {
        all.add(t.await??)?;
    }
    report.board_players = args.board_players;
    report.readers = args.readers;
    report.reads_per_s = all.len() as f64 / started.elapsed().as_secs_f64();
    report.board_read = Percentiles::of(&all);
    Ok(())
}
