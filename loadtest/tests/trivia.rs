//! Trivia end to end: real nats-server and redis-server, `pipeline` and `bot`
//! processes, the Bot API emulator. A private game of quiz polls answered by votes, a
//! group game of three through buttons with a dropout, and a pipeline killed mid-game
//! whose timer fires after the restart.

use std::time::Duration;

use herald_loadtest::emulator::Delivery;
use herald_loadtest::stack::{private_text, Stack, StackOptions};
use herald_pipeline::products::trivia::bank::{Bank, Question};
use herald_schemas::escape_html;
use serde_json::{json, Value};

const ANN: i64 = 501;
const BEN: i64 = 502;
const CAL: i64 = 503;
const GROUP: i64 = -100_501;
const MINUTE: Duration = Duration::from_secs(60);

fn opts(args: &[&str]) -> StackOptions {
    let mut pipeline_args: Vec<String> = ["--products", "trivia", "--trivia-question-time", "5s"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    pipeline_args.extend(args.iter().map(|s| s.to_string()));
    StackOptions {
        pipeline_args,
        ..Default::default()
    }
}

fn name(user: i64) -> &'static str {
    match user {
        ANN => "Ann",
        BEN => "Ben",
        _ => "Cal",
    }
}

/// A message in the group from `user`.
fn group_text(user: i64, text: &str) -> Value {
    json!({"message": {"message_id": 7, "from": {"id": user, "is_bot": false, "first_name": name(user)},
        "chat": {"id": GROUP, "type": "supergroup", "title": "Quiz night"}, "date": herald_schemas::now_ms() / 1000, "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": text.split_whitespace().next().unwrap_or("").len()}]}})
}

/// `user` presses a button of the group message `message_id`.
fn group_press(user: i64, message_id: i64, data: &str) -> Value {
    json!({"callback_query": {"id": format!("cb-{user}-{message_id}-{data}"),
        "from": {"id": user, "is_bot": false, "first_name": name(user)}, "chat_instance": "9", "data": data,
        "message": {"message_id": message_id, "date": 0, "chat": {"id": GROUP, "type": "supergroup", "title": "Quiz night"}, "text": "q"}}})
}

/// The callback data of a delivery's buttons, in order.
fn buttons(d: &Delivery) -> Vec<String> {
    d.reply_markup
        .as_ref()
        .and_then(|m| m["inline_keyboard"].as_array().cloned())
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["callback_data"].as_str().map(str::to_string))
        .collect()
}

/// The bank's question a delivery asks (a poll's plain text, or a group message's HTML).
fn asked<'a>(bank: &'a Bank, d: &Delivery) -> &'a Question {
    bank.questions
        .iter()
        .find(|q| d.text.ends_with(&q.text) || d.text.contains(&format!("\n{}\n", escape_html(&q.text))))
        .unwrap_or_else(|| panic!("no bank question in {:?}", d.text))
}

async fn wait_for(s: &Stack, what: &str, pred: impl Fn(&Delivery) -> bool) -> Delivery {
    let d = s
        .wait_for_deliveries(MINUTE, |d| d.iter().any(&pred))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}; see {}", s.log_dir.display()));
    d.into_iter().find(|x| pred(x)).unwrap()
}

/// The pipeline's own count of answers applied to stats and boards.
async fn scored(s: &Stack) -> f64 {
    let text = s.pipeline.metrics().await.unwrap();
    herald_runtime::metric::sum_in(&text, "herald_trivia_scored_total", &[])
}

fn no_entity_left(d: &Delivery) -> bool {
    let entity = regex::Regex::new(r"&(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);").unwrap();
    match d.method.as_str() {
        // a poll's question is plain text: no entity at all
        "sendPoll" => !entity.is_match(&d.text),
        // HTML: escaped once, never an escaped entity
        _ => !regex::Regex::new(r"&amp;(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
            .unwrap()
            .is_match(&d.text),
    }
}

#[tokio::test]
async fn a_private_game_of_quiz_polls_scored_by_votes() {
    let s = Stack::start(opts(&["--trivia-questions", "3"])).await.unwrap();
    let bank = Bank::sample();
    s.emulator.push_update(private_text(ANN, "/start"));
    s.emulator.push_update(private_text(ANN, "/trivia any"));
    let mut right = 0;
    for i in 0..3 {
        let prefix = format!("{}/3 · ", i + 1);
        let poll = wait_for(&s, &format!("poll {i}"), |d| {
            d.method == "sendPoll" && d.chat_id == ANN && d.text.starts_with(&prefix)
        })
        .await;
        let q = asked(&bank, &poll);
        // right, wrong, right
        let option = if i == 1 {
            (q.correct as usize + 1) % q.options.len()
        } else {
            q.correct as usize
        };
        right += usize::from(option == q.correct as usize);
        s.emulator.vote(poll.poll_id.as_deref().unwrap(), ANN, option).unwrap();
        assert!(
            s.emulator.vote(poll.poll_id.as_deref().unwrap(), ANN, option).is_err(),
            "one vote per user"
        );
    }
    let end = wait_for(&s, "the game's end", |d| d.chat_id == ANN && d.text.contains("Game over")).await;
    assert!(end.text.contains(&format!("Correct: {right}/3")), "{}", end.text);
    let score: u64 = regex::Regex::new(r"Score: <b>(\d+)</b>").unwrap().captures(&end.text).unwrap()[1]
        .parse()
        .unwrap();
    assert!((1_000..=2_000).contains(&score), "two right answers within the time: {score}");
    assert_eq!(scored(&s).await, 3.0, "three answers, each applied once");

    s.emulator.push_update(private_text(ANN, "/stats"));
    let stats = wait_for(&s, "/stats", |d| d.chat_id == ANN && d.text.contains("Your trivia")).await;
    assert!(
        stats.text.contains("Games: 1") && stats.text.contains("Answers: 3 (66% correct)"),
        "{}",
        stats.text
    );
    assert!(stats.text.contains(&format!("Points: {score}")), "{}", stats.text);
    // a private game is practice: nothing on the global board
    s.emulator.push_update(private_text(ANN, "/top all"));
    let top = wait_for(&s, "/top", |d| d.chat_id == ANN && d.text.contains("Leaderboard")).await;
    assert!(top.text.contains("Nobody yet"), "{}", top.text);
    let all = s.emulator.deliveries();
    assert!(all.iter().all(no_entity_left), "an HTML entity reached a user");
    assert_eq!(all.iter().filter(|d| d.method == "sendPoll").count(), 3, "each question once");
}

#[tokio::test]
async fn a_group_game_of_three_with_a_dropout() {
    let s = Stack::start(opts(&["--trivia-questions", "4"])).await.unwrap();
    let bank = Bank::sample();
    s.emulator.push_update(group_text(ANN, "/trivia@herald_emulator_bot"));
    let lobby = wait_for(&s, "the lobby", |d| d.chat_id == GROUP && d.text.contains("Press <b>Join</b>")).await;
    let [join, start] = &buttons(&lobby)[..] else {
        panic!("lobby buttons {:?}", lobby.reply_markup)
    };
    s.emulator.push_update(group_press(BEN, lobby.message_id, join));
    s.emulator.push_update(group_press(CAL, lobby.message_id, join));
    // Ann starts once both joins are in (the game's state says so)
    let js = s.jetstream().await.unwrap();
    let games = js.get_key_value(herald_schemas::subjects::TRIVIA_GAMES_BUCKET).await.unwrap();
    let id = join.strip_prefix("tv:j:").unwrap().to_string();
    let deadline = tokio::time::Instant::now() + MINUTE;
    loop {
        let game: Value = serde_json::from_slice(&games.get(&id).await.unwrap().unwrap()).unwrap();
        if game["players"].as_object().unwrap().len() == 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "joins not recorded: {game}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.emulator.push_update(group_press(ANN, lobby.message_id, start));

    let mut questions = Vec::new();
    for i in 0..4 {
        let label = format!("<b>Question {}/4</b>", i + 1);
        let d = wait_for(&s, &label, |d| d.chat_id == GROUP && d.text.contains(&label)).await;
        let q = asked(&bank, &d);
        let data = buttons(&d);
        assert_eq!(data.len(), q.options.len());
        let wrong = (q.correct as usize + 1) % q.options.len();
        // Ann always right; Ben right twice, then wrong; Cal never answers
        s.emulator.push_update(group_press(ANN, d.message_id, &data[q.correct as usize]));
        s.emulator.push_update(group_press(
            BEN,
            d.message_id,
            &data[if i < 2 { q.correct as usize } else { wrong }],
        ));
        questions.push(d);
    }
    let end = wait_for(&s, "final scores", |d| d.chat_id == GROUP && d.text.contains("Final scores")).await;
    assert!(
        questions[3].text.contains("Cal dropped out (missed 3 in a row)"),
        "{}",
        questions[3].text
    );
    assert!(questions[1].text.contains("Cal — no answer"), "{}", questions[1].text);
    assert!(
        end.at_ms < questions[3].at_ms + 5_000,
        "the last question ended once Ann and Ben had answered, before its 5 s ran out"
    );
    let lines: Vec<&str> = end.text.lines().filter(|l| l.contains(" — ")).collect();
    assert!(
        lines[0].contains("🥇 Ann") && lines[0].contains("4 correct, best streak 4"),
        "{lines:?}"
    );
    assert!(lines[1].contains("Ben") && lines[1].contains("2 correct"), "{lines:?}");
    assert!(lines[2].contains("Cal — 0") && lines[2].contains("dropped out"), "{lines:?}");
    assert_eq!(scored(&s).await, 8.0, "Ann's and Ben's four answers, each applied once");

    // the group's board: Ann and Ben with their game scores
    s.emulator.push_update(group_text(BEN, "/top week"));
    let top = wait_for(&s, "the group's board", |d| d.chat_id == GROUP && d.text.contains("This group")).await;
    let game: Value = serde_json::from_slice(&games.get(&id).await.unwrap().unwrap()).unwrap();
    for (user, rank) in [(ANN, 1), (BEN, 2)] {
        let points = game["players"][user.to_string()]["score"].as_u64().unwrap();
        assert!(top.text.contains(&format!("{rank}. {} — {points}", name(user))), "{}", top.text);
    }
    let all = s.emulator.deliveries();
    assert!(all.iter().all(no_entity_left), "an HTML entity reached a user");
    for i in 1..=4 {
        let label = format!("<b>Question {i}/4</b>");
        assert_eq!(all.iter().filter(|d| d.text.contains(&label)).count(), 1, "question {i} sent once");
    }
}

#[tokio::test]
async fn a_timer_that_ran_out_while_the_pipeline_was_down_still_fires() {
    let mut s = Stack::start(opts(&["--trivia-questions", "2"])).await.unwrap();
    let bank = Bank::sample();
    s.emulator.push_update(private_text(BEN, "/start"));
    s.emulator.push_update(private_text(BEN, "/trivia"));
    // the menu: any category, any difficulty
    let menu = wait_for(&s, "the menu", |d| d.chat_id == BEN && d.text.contains("pick a category")).await;
    s.emulator
        .push_update(herald_loadtest::stack::callback_query(BEN, menu.message_id, &buttons(&menu)[0]));
    let level = wait_for(&s, "difficulty", |d| d.chat_id == BEN && d.text.contains("Difficulty?")).await;
    s.emulator.push_update(herald_loadtest::stack::callback_query(
        BEN,
        level.message_id,
        buttons(&level).last().unwrap(),
    ));
    let first = wait_for(&s, "question 1", |d| {
        d.method == "sendPoll" && d.chat_id == BEN && d.text.starts_with("1/2")
    })
    .await;
    let q = asked(&bank, &first);
    // the vote reaches the bot while the pipeline is dead; the question's time runs out
    s.pipeline.kill9();
    s.emulator.vote(first.poll_id.as_deref().unwrap(), BEN, q.correct as usize).unwrap();
    while herald_schemas::now_ms() < first.at_ms + 5_500 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.pipeline.restart().await.unwrap();
    let second = wait_for(&s, "question 2 after the restart", |d| {
        d.method == "sendPoll" && d.chat_id == BEN && d.text.starts_with("2/2")
    })
    .await;
    assert!(second.at_ms > first.at_ms + 5_000);
    // question 2 times out with no vote; the game ends
    let end = wait_for(&s, "the game's end", |d| d.chat_id == BEN && d.text.contains("Game over")).await;
    assert!(
        end.text.contains("Correct: 1/2"),
        "the vote sent in time counted after the restart: {}",
        end.text
    );
    assert_eq!(scored(&s).await, 1.0, "scored once, by the restarted pipeline");
    let all = s.emulator.deliveries();
    assert_eq!(
        all.iter().filter(|d| d.method == "sendPoll").count(),
        2,
        "no question sent twice across the restart"
    );
    assert_eq!(all.iter().filter(|d| d.text.contains("Game over")).count(), 1);
}
