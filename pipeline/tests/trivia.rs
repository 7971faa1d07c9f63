//! Trivia's scorer and stores against a real nats-server and redis-server: each
//! (game, question, player) scored exactly once under redelivery and a crash between
//! the game write and the boards; boards roll over at UTC midnight and on Monday;
//! flags quarantine a question at three players.

mod common;

use std::sync::Arc;

use common::{drive, Env};
use herald_pipeline::products::trivia::bank::Pool;
use herald_pipeline::products::trivia::game::{Game, Mode, Setup};
use herald_pipeline::products::trivia::scorer::{ScoreCommit, TriviaScorer};
use herald_pipeline::products::trivia::service::Trivia;
use herald_runtime::{Decision, MsgMeta, Stage};
use herald_schemas::{subjects, AnswerVia, TriviaAnswer};

async fn trivia(env: &Env) -> Arc<Trivia> {
    let redis = redis::aio::ConnectionManager::new(redis::Client::open(env.redis.url()).unwrap())
        .await
        .unwrap();
    Arc::new(Trivia::open(env.js.clone(), redis, Trivia::default_args()).await.unwrap())
}

/// A ranked game (the daily challenge's mode) of `players`, asking its first question
/// from `now_ms` for 10 minutes.
async fn ranked_game(t: &Trivia, id: &str, players: &[i64], now_ms: u64) -> Game {
    let questions: Vec<String> = t.bank.questions.iter().take(3).map(|q| q.id.clone()).collect();
    let setup = Setup {
        id: id.into(),
        mode: Mode::Daily,
        chat_id: players[0],
        pool: Pool::default(),
        questions,
        limit_ms: 600_000,
        now_ms,
    };
    let mut game = Game::solo(setup, (players[0], "P0".into()));
    for p in &players[1..] {
        game.players.insert(*p, Default::default());
    }
    assert!(t.games.create(&game).await.unwrap());
    game
}

/// The scorer's counter is one per process: tests that read it take turns.
static COUNTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits until the scorer has taken and acknowledged `n` deliveries and has none
/// pending (its outputs share the stream, so the stream's last sequence says nothing).
async fn scorer_done(env: &Env, n: u64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let stream = env.js.get_stream(subjects::TRIVIA_STREAM).await.unwrap();
        // the stage creates its consumer when it starts: until then, wait
        let Ok(mut c) = stream
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>("trivia_scorer")
            .await
        else {
            assert!(tokio::time::Instant::now() < deadline, "the scorer's consumer never appeared");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        let info = c.info().await.unwrap();
        if info.num_pending == 0 && info.num_ack_pending == 0 && info.ack_floor.consumer_sequence >= n {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the scorer did not finish: {info:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `herald_trivia_scored_total`: the scorer's own count of answers applied.
fn scored() -> f64 {
    herald_runtime::metric::sum_in(
        &herald_runtime::telemetry::install_metrics().render(),
        "herald_trivia_scored_total",
        &[],
    )
}

async fn publish(env: &Env, a: &TriviaAnswer, msg_id: &str) {
    env.js
        .publish_with_id(subjects::trivia("answer", &a.game), msg_id, herald_schemas::encode(a).into())
        .await
        .unwrap()
        .await
        .unwrap();
}

fn right(t: &Trivia, game: &Game, q: u32) -> u8 {
    t.bank.get(&game.questions[q as usize]).unwrap().correct
}

#[tokio::test]
async fn each_answer_is_scored_once_under_redelivery() {
    let env = Env::start().await;
    let t = trivia(&env).await;
    let now = herald_schemas::now_ms();
    let game = ranked_game(&t, "d1", &[11, 12], now).await;
    let _turn = COUNTER.lock().await;
    let before = scored();
    env.spawn(TriviaScorer::new(t.clone()), subjects::TRIVIA_STREAM, "herald.trivia.answer.>");
    let ann = TriviaAnswer::new("d1", 0, 11, right(&t, &game, 0), now + 2_000, AnswerVia::Poll, "Ann");
    let ben = TriviaAnswer::new("d1", 0, 12, (right(&t, &game, 0) + 1) % 2, now + 3_000, AnswerVia::Poll, "Ben");
    // three deliveries of Ann's answer under three message ids: the stream's duplicate
    // window lets them all through, so only the scorer can keep it once
    for id in ["a1", "a2", "a3"] {
        publish(&env, &ann, id).await;
    }
    publish(&env, &ben, "b1").await;
    scorer_done(&env, 4).await;

    assert_eq!(scored() - before, 2.0, "two answers, two scores");
    let stats = t.redis.stats(11).await.unwrap();
    assert_eq!((stats.answered, stats.correct), (1, 1));
    let (g, _) = t.games.load("d1").await.unwrap().unwrap();
    assert_eq!(g.answers.len(), 2);
    // Ann: 2 s of 600 -> round(1000·(1 − 2/1200)) = 998
    assert_eq!(g.players[&11].score, 998);
    let (top, _) = t.redis.top("global:all", 10, None).await.unwrap();
    assert_eq!(
        top.iter().map(|r| (r.player, r.points)).collect::<Vec<_>>(),
        [(11, 998)],
        "a wrong answer adds nobody to the board"
    );
    assert_eq!(top[0].name, "P0", "the name the game knows");
    env.shutdown.cancel();
}

fn metric(name: &str, labels: &[(&str, &str)]) -> f64 {
    herald_runtime::metric::sum_in(&herald_runtime::telemetry::install_metrics().render(), name, labels)
}

/// Issue 25: the answers waiting for one game share one read and one compare-and-set,
/// while another writer keeps rewriting the games (the clock's moves), and a second
/// press in the same moment is dropped, not scored or published twice.
#[tokio::test]
async fn a_games_pending_answers_share_one_write_and_each_scores_once() {
    let env = Env::start().await;
    let t = trivia(&env).await;
    let now = herald_schemas::now_ms();
    let (games, players) = (20, 5);
    let mut ids = Vec::new();
    for g in 0..games {
        let id = format!("b{g}");
        let ps: Vec<i64> = (0..players).map(|p| 1_000 + g * 10 + p).collect();
        ranked_game(&t, &id, &ps, now).await;
        ids.push((id, ps));
    }
    let _turn = COUNTER.lock().await;
    let (before, batches, requests) = (
        scored(),
        metric("herald_batches_total", &[("batch", "trivia_answers")]),
        metric("herald_batched_requests_total", &[("batch", "trivia_answers")]),
    );
    // every answer is in the stream before the scorer starts: they wait together
    let mut acks = Vec::new();
    for (id, ps) in &ids {
        for (i, p) in ps.iter().enumerate() {
            let a = TriviaAnswer::new(id, 0, *p, (i % 2) as u8, now + 1_000 + i as u64, AnswerVia::Button, "");
            let subject = subjects::trivia("answer", id);
            acks.push(
                env.js
                    .publish_with_id(subject.clone(), &format!("{id}:{p}"), herald_schemas::encode(&a).into())
                    .await
                    .unwrap(),
            );
            if i == 0 {
                // the same player presses again (another update: another message id)
                acks.push(
                    env.js
                        .publish_with_id(subject, &format!("{id}:{p}:again"), herald_schemas::encode(&a).into())
                        .await
                        .unwrap(),
                );
            }
        }
    }
    for ack in acks {
        ack.await.unwrap();
    }
    let published = (games * (players + 1)) as u64;
    // rival writers rewriting every game meanwhile (as the clock does when it moves one):
    // a scorer's write that loses the race must re-read and judge again
    let rounds = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let rivals: Vec<_> = (0..4)
        .map(|_| {
            let (t, ids, stop, rounds) = (t.clone(), ids.clone(), env.shutdown.clone(), rounds.clone());
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    for (id, _) in &ids {
                        if let Some((g, rev)) = t.games.load(id).await.unwrap() {
                            let _ = t.games.update(&g, rev).await;
                        }
                    }
                    rounds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    while rounds.load(std::sync::atomic::Ordering::SeqCst) < 4 {
        tokio::task::yield_now().await;
    }
    env.spawn(TriviaScorer::new(t.clone()), subjects::TRIVIA_STREAM, "herald.trivia.answer.>");
    scorer_done(&env, published).await;
    env.shutdown.cancel();
    for rival in rivals {
        rival.await.unwrap();
    }

    assert_eq!(
        scored() - before,
        (games * players) as f64,
        "each answer scored once, the second presses not"
    );
    for (id, ps) in &ids {
        let (g, _) = t.games.load(id).await.unwrap().unwrap();
        let mut answered: Vec<i64> = g.answers.iter().map(|s| s.player).collect();
        answered.sort();
        assert_eq!(&answered, ps, "game {id}");
    }
    let (batches, requests) = (
        metric("herald_batches_total", &[("batch", "trivia_answers")]) - batches,
        metric("herald_batched_requests_total", &[("batch", "trivia_answers")]) - requests,
    );
    assert_eq!(requests, published as f64, "every delivery went through the writer");
    assert!(
        batches * 4.0 < requests,
        "answers waiting together went one by one: {batches} batches for {requests}"
    );
    println!(
        "{requests} answers in {batches} batches; {} conflicts with the rivals re-read",
        metric("herald_trivia_game_write_conflicts_total", &[]) + 0.0
    );
}

/// The scorer's decide and apply steps on one delivery, without publishing or committing.
async fn write(scorer: &TriviaScorer, a: &TriviaAnswer, meta: &MsgMeta) -> herald_runtime::Applied<ScoreCommit> {
    let Decision::Apply(pending) = scorer.decide(a.clone(), meta).await.unwrap() else {
        panic!("an answer asks for its write into the game");
    };
    scorer.apply(pending, meta).await.unwrap()
}

#[tokio::test]
async fn a_crash_between_the_game_write_and_the_boards_is_healed_once() {
    let env = Env::start().await;
    let t = trivia(&env).await;
    let now = herald_schemas::now_ms();
    let game = ranked_game(&t, "d2", &[21], now).await;
    let scorer = TriviaScorer::new(t.clone());
    let a = TriviaAnswer::new("d2", 0, 21, right(&t, &game, 0), now, AnswerVia::Poll, "Cy");
    let subject = subjects::trivia("answer", "d2");
    let _turn = COUNTER.lock().await;
    let before = scored();
    // the apply step writes the score into the game, then the process dies before the commit
    let meta = MsgMeta {
        subject: subject.clone(),
        stream_sequence: 1,
        delivered: 1,
        published_ms: now,
    };
    let applied = write(&scorer, &a, &meta).await;
    assert!(matches!(applied.decision, Decision::Forward { .. }));
    assert_eq!(applied.effect, herald_runtime::Effect::Made);
    // a second press while the first is in flight (written, not yet committed) is dropped
    let twin = write(&scorer, &a, &meta).await;
    assert!(matches!(twin.decision, Decision::Drop { reason: "already_scored" }), "{twin:?}");
    assert_eq!(t.redis.stats(21).await.unwrap().answered, 0, "nothing on the boards yet");
    // the process dies: its commit never runs
    drop(applied);
    // the redelivery finds the score in the game and applies the boards once
    let outputs = drive(&scorer, &subject, &herald_schemas::encode(&a), true).await;
    assert_eq!(outputs[0].msg_id, "result:d2:0:21", "the same result event");
    // once committed, a repeat publishes nothing (issue 21: it re-published the result)
    let repeat = write(&scorer, &a, &meta).await;
    assert!(matches!(repeat.decision, Decision::Drop { reason: "already_scored" }), "{repeat:?}");
    assert_eq!(repeat.effect, herald_runtime::Effect::AlreadyMade);
    assert_eq!(scored() - before, 1.0);
    let stats = t.redis.stats(21).await.unwrap();
    assert_eq!((stats.answered, stats.points), (1, 1000));
    assert_eq!(t.games.load("d2").await.unwrap().unwrap().0.answers.len(), 1);
}

#[tokio::test]
async fn boards_roll_over_at_utc_midnight_and_on_monday() {
    let env = Env::start().await;
    let t = trivia(&env).await;
    let scorer = TriviaScorer::new(t.clone());
    let _turn = COUNTER.lock().await;
    // Sunday 2026-12-06 23:59:50 UTC; one answer 5 s before midnight, one 5 s after
    let sunday = 1_796_601_590_000;
    let game = ranked_game(&t, "d3", &[31], sunday).await;
    let q0 = TriviaAnswer::new("d3", 0, 31, right(&t, &game, 0), sunday + 5_000, AnswerVia::Poll, "Di");
    drive(&scorer, "herald.trivia.answer.d3", &herald_schemas::encode(&q0), true).await;
    // the next question, asked at 23:59:58, answered at 00:00:05 on Monday
    let (mut g, rev) = t.games.load("d3").await.unwrap().unwrap();
    g.end_question(sunday + 8_000);
    t.games.update(&g, rev).await.unwrap();
    let q1 = TriviaAnswer::new("d3", 1, 31, right(&t, &g, 1), sunday + 15_000, AnswerVia::Poll, "Di");
    drive(&scorer, "herald.trivia.answer.d3", &herald_schemas::encode(&q1), true).await;

    let (g, _) = t.games.load("d3").await.unwrap().unwrap();
    let (first, second) = (g.answers[0].points + g.answers[0].bonus, g.answers[1].points + g.answers[1].bonus);
    assert_eq!(g.answers[1].bonus, 100, "a streak of two");
    let points = |board: &'static str| {
        let t = t.clone();
        async move { t.redis.top(board, 10, None).await.unwrap().0.first().map(|r| r.points) }
    };
    assert_eq!(points("global:d:2026-12-06").await, Some(first as u64));
    assert_eq!(points("global:d:2026-12-07").await, Some(second as u64));
    assert_eq!(points("global:w:2026-W49").await, Some(first as u64));
    assert_eq!(points("global:w:2026-W50").await, Some(second as u64));
    assert_eq!(points("global:all").await, Some((first + second) as u64));
}

#[tokio::test]
async fn three_distinct_flags_quarantine_a_question_until_reviewed() {
    let env = Env::start().await;
    let t = trivia(&env).await;
    let id = t.bank.questions[0].id.clone();
    assert_eq!(t.redis.flag(&id, 1, 3).await.unwrap(), 1);
    assert_eq!(t.redis.flag(&id, 1, 3).await.unwrap(), 1, "one player flags once");
    assert_eq!(t.redis.flag(&id, 2, 3).await.unwrap(), 2);
    assert!(t.redis.quarantined().await.unwrap().is_empty());
    t.redis.flag(&id, 3, 3).await.unwrap();
    assert!(t.redis.quarantined().await.unwrap().contains(&id));
    assert!(!t
        .bank
        .pool(&Pool::default(), &t.redis.quarantined().await.unwrap())
        .contains(&id.as_str()));
    assert_eq!(t.redis.flagged().await.unwrap(), [(id.clone(), 3)]);
    t.redis.review(&id, true).await.unwrap();
    assert!(t.redis.quarantined().await.unwrap().is_empty(), "kept: back in play");
    for p in 4..8 {
        t.redis.flag(&id, p, 3).await.unwrap();
    }
    assert!(
        t.redis.quarantined().await.unwrap().is_empty(),
        "a reviewed question is not quarantined again"
    );
}

#[tokio::test]
async fn an_imported_bank_is_what_pipelines_load() {
    let env = Env::start().await;
    let dump = r#"{"results":[
        {"type":"multiple","difficulty":"hard","category":"Science &amp; Nature","question":"What is &quot;H2O&quot;?","correct_answer":"Water","incorrect_answers":["Salt","Sand","Air"]},
        {"type":"boolean","difficulty":"easy","category":"History","question":"Rome was built in a day.","correct_answer":"False","incorrect_answers":["True"]},
        {"type":"multiple","difficulty":"easy","category":"History","question":"Too long? ","correct_answer":"a","incorrect_answers":["a","b","c"]}]}"#;
    let imported = herald_pipeline::products::trivia::import_bank(&env.js, dump).await.unwrap();
    assert_eq!(
        (imported.questions.len(), imported.skipped.len()),
        (2, 1),
        "the question with a repeated answer is skipped"
    );
    let loaded = herald_pipeline::products::trivia::load_bank(&env.js).await.unwrap();
    assert_eq!(loaded.questions.len(), 2);
    assert_eq!(loaded.questions[0].text, "What is \"H2O\"?");
    assert_eq!(loaded.categories, ["History", "Science & Nature"]);
    assert!(herald_pipeline::products::trivia::import_bank(&env.js, "{}").await.is_err());
}

/// Issue 21: a vote on a poll nobody reported is retried while its report may still be
/// coming, then dropped under its own reason, not dead-lettered.
#[tokio::test]
async fn a_vote_on_an_unknown_poll_is_dropped_not_dead_lettered() {
    use herald_pipeline::products::trivia::inbox::TriviaInbox;
    let env = Env::start().await;
    let inbox = TriviaInbox {
        trivia: trivia(&env).await,
    };
    let update = serde_json::json!({"update_id": 9, "poll_answer": {"poll_id": "5170000000000000000",
        "user": {"id": 77, "is_bot": false, "first_name": "Stray"}, "option_ids": [1]}});
    let routed = herald_schemas::RoutedUpdate {
        v: 1,
        update_id: 9,
        kind: "poll_answer".into(),
        user_id: Some(77),
        chat_id: None,
        command: None,
        callback_data: None,
        message_id: None,
        admin: false,
        update,
        received_ms: 1,
    };
    let meta = |delivered| MsgMeta {
        subject: subjects::routed("trivia", 77),
        stream_sequence: 1,
        delivered,
        published_ms: 1,
    };
    for delivered in 1..=3 {
        let early = inbox.decide(routed.clone(), &meta(delivered)).await;
        assert!(
            matches!(early, Err(herald_runtime::StageError::Transient(_))),
            "retried while the report may come"
        );
    }
    let late = inbox.decide(routed, &meta(4)).await.unwrap();
    assert!(matches!(late, Decision::Drop { reason: "unknown_poll" }), "{late:?}");
}

/// Redis loses everything; `pipeline trivia rebuild` brings back the stats, the boards
/// (global and the group's) and the names from TRIVIA_RESULTS, and running it again
/// changes nothing (it clears and replays, never adds twice).
#[tokio::test]
async fn pipeline_trivia_rebuild_restores_boards_and_stats_after_redis_loses_them() {
    let mut env = Env::start().await;
    let t = trivia(&env).await;
    let now = herald_schemas::now_ms();
    let game = ranked_game(&t, "r1", &[41, 42], now).await;
    let other = ranked_game(&t, "r2", &[41, 42], now).await;
    let _turn = COUNTER.lock().await;
    env.spawn(TriviaScorer::new(t.clone()), subjects::TRIVIA_STREAM, "herald.trivia.answer.>");
    // Ann right in both games, Ben wrong then right
    let (q0, q1) = (right(&t, &game, 0), right(&t, &other, 0));
    let answers = [
        TriviaAnswer::new("r1", 0, 41, q0, now + 1_000, AnswerVia::Poll, "Ann"),
        TriviaAnswer::new("r1", 0, 42, (q0 + 1) % 2, now + 2_000, AnswerVia::Poll, "Ben"),
        TriviaAnswer::new("r2", 0, 41, q1, now + 3_000, AnswerVia::Poll, "Ann"),
        TriviaAnswer::new("r2", 0, 42, q1, now + 4_000, AnswerVia::Poll, "Ben"),
    ];
    for (i, a) in answers.iter().enumerate() {
        publish(&env, a, &format!("r{i}")).await;
    }
    scorer_done(&env, 4).await;
    // the game ends as the clock ends it: its event in TRIVIA_RESULTS, the game counted
    let (ended, _) = t.games.load("r1").await.unwrap().unwrap();
    let end = herald_schemas::TriviaGameEvent {
        v: 1,
        game: "r1".into(),
        kind: "daily".into(),
        group: None,
        at_ms: now + 5_000,
        step: herald_schemas::GameStep::Ended {
            scores: herald_pipeline::products::trivia::present::final_scores(&ended),
            duration_ms: 5_000,
        },
    };
    env.publish(subjects::trivia("game", "r1"), "game:r1:ended", herald_schemas::encode(&end))
        .await;
    assert!(t.redis.finish(&ended).await.unwrap());

    let snapshot = |t: Arc<Trivia>| async move {
        let (top, _) = t.redis.top("global:all", 10, None).await.unwrap();
        let top: Vec<(i64, String, u64)> = top.into_iter().map(|r| (r.player, r.name, r.points)).collect();
        (top, t.redis.stats(41).await.unwrap(), t.redis.stats(42).await.unwrap())
    };
    let before = snapshot(t.clone()).await;
    assert_eq!(before.0.len(), 2, "{before:?}");
    assert_eq!((before.1.games, before.1.answered, before.1.correct), (1, 2, 2));
    assert_eq!((before.2.games, before.2.answered, before.2.correct), (1, 2, 1));

    // Redis loses its data
    env.redis.restart_empty().unwrap();
    // the connection manager notices on its next command and reconnects
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while redis::cmd("PING").query_async::<String>(&mut t.redis.redis.clone()).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "Redis did not come back");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let lost = snapshot(t.clone()).await;
    assert!(lost.0.is_empty() && lost.1.answered == 0, "{lost:?}");

    let rebuild = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipeline"))
            .args(["trivia", "rebuild"])
            .args(env.nats.endpoints().args())
            .args(["--redis-url", &env.redis.url()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };
    let said = rebuild();
    assert!(said.contains("4 scored answers, 1 finished games"), "{said}");
    assert_eq!(snapshot(t.clone()).await, before, "the same boards, names and stats");
    rebuild();
    assert_eq!(snapshot(t.clone()).await, before, "a second rebuild adds nothing");
    env.shutdown.cancel();
}
