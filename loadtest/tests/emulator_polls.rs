//! The emulator's polls behave as Telegram documents them
//! (core.telegram.org/bots/api#sendpoll, #stoppoll, #pollanswer): its rules refuse what
//! Telegram refuses, and a vote becomes a `poll_answer` update only for a
//! non-anonymous poll the bot sent, while it is open.

use herald_loadtest::emulator::{Emulator, EmulatorLimits};
use serde_json::{json, Value};

async fn call(e: &Emulator, method: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/bot1:T/{method}", e.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn quiz(options: Vec<&str>) -> Value {
    json!({"chat_id": 5, "question": "2+2?", "options": options, "type": "quiz", "correct_option_id": 1, "is_anonymous": false})
}

#[tokio::test]
async fn send_poll_refuses_what_telegram_refuses() {
    let e = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorLimits::default())
        .await
        .unwrap();
    let cases = [
        (quiz(vec!["4"]), "at least 2 option"),
        (quiz(vec!["1"; 11]), "more than 10 options"),
        (quiz(vec!["3", &"x".repeat(101)]), "options length"),
        (
            json!({"chat_id": 5, "question": "q", "options": ["a", "b"], "type": "quiz"}),
            "correct option ID must be specified",
        ),
        (
            json!({"chat_id": 5, "question": "q", "options": ["a", "b"], "type": "quiz", "correct_option_id": 2}),
            "wrong correct option ID",
        ),
        (
            json!({"chat_id": 5, "question": "q", "options": ["a", "b"], "open_period": 4}),
            "wrong open period",
        ),
        (
            json!({"chat_id": 5, "question": "q", "options": ["a", "b"], "open_period": 601}),
            "wrong open period",
        ),
        (
            json!({"chat_id": 5, "question": "q", "options": ["a", "b"], "explanation": "e".repeat(201)}),
            "explanation is too long",
        ),
        (json!({"chat_id": 5, "question": "", "options": ["a", "b"]}), "question length"),
    ];
    for (body, want) in cases {
        let (status, answer) = call(&e, "sendPoll", body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(answer["description"].as_str().unwrap().contains(want), "{body}: {answer}");
        assert_eq!(answer["ok"], json!(false));
    }
    let (status, ok) = call(&e, "sendPoll", quiz(vec!["3", "4"])).await;
    assert_eq!(status, 200);
    assert_eq!(ok["result"]["poll"]["type"], "quiz");
    assert_eq!(ok["result"]["poll"]["correct_option_id"], 1);
}

#[tokio::test]
async fn votes_reach_the_bot_only_for_its_open_non_anonymous_polls() {
    let e = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorLimits::default())
        .await
        .unwrap();
    let (_, sent) = call(&e, "sendPoll", quiz(vec!["3", "4"])).await;
    let poll = sent["result"]["poll"]["id"].as_str().unwrap().to_string();
    let message_id = sent["result"]["message_id"].as_i64().unwrap();
    let update = e.vote(&poll, 7, 1).unwrap();
    assert!(
        e.vote(&poll, 7, 0).unwrap_err().contains("one vote"),
        "a second vote by the same user"
    );
    assert!(e.vote(&poll, 8, 2).is_err(), "no option 2");
    assert!(e.vote("poll-999", 8, 0).is_err(), "not a poll the bot sent");
    let (_, updates) = call(&e, "getUpdates", json!({"timeout": 0})).await;
    let u = &updates["result"][0];
    assert_eq!(u["update_id"], update);
    assert_eq!(u["poll_answer"]["poll_id"], poll.as_str());
    assert_eq!(u["poll_answer"]["user"]["id"], 7);
    assert_eq!(u["poll_answer"]["option_ids"], json!([1]));
    // stopPoll closes it: no more votes, and a second stop is refused
    let (status, stopped) = call(&e, "stopPoll", json!({"chat_id": 5, "message_id": message_id})).await;
    assert_eq!((status, stopped["result"]["is_closed"].clone()), (200, json!(true)));
    assert!(e.vote(&poll, 9, 0).unwrap_err().contains("closed"));
    let (status, again) = call(&e, "stopPoll", json!({"chat_id": 5, "message_id": message_id})).await;
    assert_eq!(status, 400);
    assert!(again["description"].as_str().unwrap().contains("already been closed"));
    // an anonymous poll never sends the bot a vote
    let (_, anon) = call(&e, "sendPoll", json!({"chat_id": 5, "question": "q", "options": ["a", "b"]})).await;
    let anon_id = anon["result"]["poll"]["id"].as_str().unwrap();
    assert!(e.vote(anon_id, 7, 0).unwrap_err().contains("anonymous"));
    // a web_app button needs https, in a private chat
    let app = |url: &str, chat: i64| json!({"chat_id": chat, "text": "play", "reply_markup": {"inline_keyboard": [[{"text": "Open", "web_app": {"url": url}}]]}});
    assert_eq!(call(&e, "sendMessage", app("http://x/app", 6)).await.0, 400);
    assert_eq!(call(&e, "sendMessage", app("https://x/app", -100)).await.0, 400);
    assert_eq!(call(&e, "sendMessage", app("https://x/app", 6)).await.0, 200);
}
