//! The trivia Mini App end to end: the API's JWT rules against a running pipeline, and
//! a real headless browser (Debian's chromium, driven through chromedriver) that opens
//! the page as Telegram would, answers a question and sees the score change.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use herald_loadtest::stack::{Stack, StackOptions, DEMO_TOKEN};
use herald_pipeline::products::trivia::app::auth::{sign_init_data, AppUser, Tokens};
use herald_pipeline::products::trivia::bank::Bank;
use herald_testkit::free_port;
use serde_json::{json, Value};

const ANN: i64 = 601;
const BEN: i64 = 602;

async fn stack() -> (Stack, String) {
    let port = free_port();
    let args = [
        "--products",
        "trivia",
        "--trivia-bot-token",
        DEMO_TOKEN,
        "--trivia-http",
        &format!("127.0.0.1:{port}"),
    ];
    let s = Stack::start(StackOptions {
        pipeline_args: args.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    // the Mini App task starts with the pipeline; wait for its port
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/trivia/app")).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the Mini App did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (s, base)
}

/// `initData` for `user` as Telegram signs it for the demo bot, dated now.
fn init_data(user: i64, name: &str) -> String {
    let now = (herald_schemas::now_ms() / 1000).to_string();
    let user = json!({"id": user, "first_name": name}).to_string();
    sign_init_data(DEMO_TOKEN, &[("auth_date", &now), ("query_id", "AAF"), ("user", &user)])
}

async fn session(base: &str, init_data: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/trivia/api/session"))
        .json(&json!({"init_data": init_data}))
        .send()
        .await
        .unwrap()
}

async fn token(base: &str, user: i64, name: &str) -> String {
    let r = session(base, &init_data(user, name)).await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_api_refuses_bad_tokens_and_other_players_games() {
    let (_s, base) = stack().await;
    let http = reqwest::Client::new();
    // initData: valid, tampered, stale
    let good = init_data(ANN, "Ann");
    assert_eq!(session(&base, &good).await.status(), 200);
    let tampered = good.replace(&format!("%22id%22%3A{ANN}"), &format!("%22id%22%3A{BEN}"));
    assert_ne!(tampered, good);
    assert_eq!(session(&base, &tampered).await.status(), 401);
    let stale = sign_init_data(DEMO_TOKEN, &[("auth_date", "1000"), ("user", r#"{"id":601,"first_name":"Ann"}"#)]);
    let r = session(&base, &stale).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("old"));

    let ann = token(&base, ANN, "Ann").await;
    let ben = token(&base, BEN, "Ben").await;
    let created = http
        .post(format!("{base}/trivia/api/games"))
        .bearer_auth(&ann)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let game: Value = created.json().await.unwrap();
    let id = game["id"].as_str().unwrap();
    assert!(
        game["question"]["text"].is_string() && game["question"].get("correct").is_none(),
        "no answer leaked: {game}"
    );

    // no token, a forged one, an expired one: 401 with a Bearer challenge
    let secret = Tokens::derived_secret(DEMO_TOKEN);
    let now = herald_schemas::now_ms() / 1000;
    let ann_user = AppUser {
        id: ANN,
        first_name: "Ann".into(),
    };
    let expired = Tokens::new(&secret, 60).issue(&ann_user, now - 61).unwrap();
    let forged = Tokens::new(b"not the deployment's key", 900).issue(&ann_user, now).unwrap();
    let url = format!("{base}/trivia/api/games/{id}");
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    for bad in [expired, forged, "not.a.jwt".to_string()] {
        assert_eq!(http.get(&url).bearer_auth(bad).send().await.unwrap().status(), 401);
    }
    // Ben may neither see nor answer Ann's game
    assert_eq!(http.get(&url).bearer_auth(&ben).send().await.unwrap().status(), 403);
    let answer = json!({"question": 0, "option": 0});
    let r = http
        .post(format!("{url}/answers"))
        .bearer_auth(&ben)
        .json(&answer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(http.get(&url).bearer_auth(&ann).send().await.unwrap().status(), 200);
    assert_eq!(
        http.get(format!("{base}/trivia/api/games/nope"))
            .bearer_auth(&ann)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let board = http
        .get(format!("{base}/trivia/api/leaderboard?period=week"))
        .bearer_auth(&ann)
        .send()
        .await
        .unwrap();
    assert_eq!(board.status(), 200);
    assert_eq!(board.json::<Value>().await.unwrap()["top"], json!([]), "app games are practice");
}

/// chromedriver on a free port, ended with the test (its process group: it starts
/// chromium itself).
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let bin = std::env::var("HERALD_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let child = std::os::unix::process::CommandExt::process_group(
            Command::new(&bin)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            0,
        )
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e} (scripts/install-deps installs chromium and chromium-driver)"));
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // the whole group: chromedriver and the browsers it started ("--": a negative
        // pid names a group, never an option such as -1, every process)
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-s", "KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_headless_browser_plays_the_mini_app_and_sees_its_score_change() {
    let (_s, base) = stack().await;
    let driver = Driver::start();
    let chromium = std::env::var("HERALD_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut client = None;
    for _ in 0..100 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let c = client.expect("chromedriver answers");
    // Telegram opens the page with initData in the fragment
    let data: String = form_urlencoded::byte_serialize(init_data(ANN, "Ann").as_bytes()).collect();
    c.goto(&format!("{base}/trivia/app#tgWebAppData={data}")).await.unwrap();
    c.wait().for_element(Locator::Css("body[data-ready='true']")).await.unwrap();
    assert_eq!(c.find(Locator::Id("who")).await.unwrap().text().await.unwrap(), "Ann");
    assert_eq!(c.find(Locator::Id("score")).await.unwrap().text().await.unwrap(), "0");

    c.find(Locator::Id("play")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("button.option")).await.unwrap();
    let question = c.find(Locator::Id("question")).await.unwrap().text().await.unwrap();
    let bank = Bank::sample();
    let q = bank
        .questions
        .iter()
        .find(|q| q.text == question)
        .unwrap_or_else(|| panic!("{question:?} is not a bank question"));
    let options = c.find_all(Locator::Css("button.option")).await.unwrap();
    assert_eq!(options.len(), q.options.len());
    options[q.correct as usize].clone().click().await.unwrap();

    // scored by the worker, then shown: the score changes from 0
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let score = loop {
        let text = c.find(Locator::Id("score")).await.unwrap().text().await.unwrap();
        if text != "0" {
            break text;
        }
        assert!(tokio::time::Instant::now() < deadline, "the score never changed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let points: u64 = score.parse().unwrap();
    assert!((500..=1000).contains(&points), "a right answer within the time: {points}");
    let status = c.find(Locator::Id("status")).await.unwrap().text().await.unwrap();
    assert!(status.starts_with("✓ Right!"), "{status}");
    c.close().await.unwrap();
}
