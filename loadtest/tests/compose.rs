//! `docker-compose.yml` running for real: `scripts/compose-test` builds the images,
//! starts the whole stack under podman and runs this test against it (ignored
//! otherwise: it needs that stack). Recorded call-channel posts go in through the Bot
//! API emulator's container and come out as notifications; Prometheus scrapes every
//! Herald process with every alert rule; a restart of the pipeline containers, with
//! posts in flight, loses and repeats nothing.
//!
//! Environment (set by `scripts/compose-test`): `HERALD_COMPOSE_EMULATOR`,
//! `HERALD_COMPOSE_PROMETHEUS` (URLs published on 127.0.0.1), `HERALD_COMPOSE_PROJECT`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use herald_loadtest::demo::recorded_posts;
use herald_loadtest::emulator::Delivery;
use herald_loadtest::stack::{channel_post, private_text};
use serde_json::Value;

const ALICE: i64 = 7_001;
const BOB: i64 = 7_002;
/// Notifications each user without filters gets from [`recorded_posts`]: four channel
/// calls and one trending call (the two chatter posts carry no token); the same count
/// as the end-to-end demo's (`loadtest/tests/end_to_end.rs`).
const CALLS_IN_POSTS: usize = 5;
/// Herald processes Prometheus scrapes: two pipeline replicas, tracker, trivia, bot.
const SCRAPED: usize = 5;

struct Deployed {
    http: reqwest::Client,
    emulator: String,
    prometheus: String,
    project: String,
}

impl Deployed {
    fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is unset: run scripts/compose-test"));
        Deployed {
            http: reqwest::Client::new(),
            emulator: var("HERALD_COMPOSE_EMULATOR"),
            prometheus: var("HERALD_COMPOSE_PROMETHEUS"),
            project: var("HERALD_COMPOSE_PROJECT"),
        }
    }

    async fn push(&self, updates: Vec<Value>) {
        let answer = self
            .http
            .post(format!("{}/control/updates", self.emulator))
            .json(&updates)
            .send()
            .await
            .expect("the emulator's container answers");
        assert!(answer.status().is_success(), "{}", answer.status());
    }

    async fn deliveries(&self) -> Vec<Delivery> {
        let url = format!("{}/control/deliveries", self.emulator);
        let body = self.http.get(url).send().await.unwrap().text().await.unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// Waits until `done` holds for the emulator's deliveries, up to `within`.
    async fn wait_for(&self, within: Duration, what: &str, done: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        let deadline = Instant::now() + within;
        loop {
            let d = self.deliveries().await;
            if done(&d) {
                return d;
            }
            assert!(Instant::now() < deadline, "{what} within {within:?}; deliveries: {d:#?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until no delivery arrived for `quiet`.
    async fn wait_quiet(&self, quiet: Duration) -> Vec<Delivery> {
        let mut last = self.deliveries().await.len();
        let mut since = Instant::now();
        while since.elapsed() < quiet {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = self.deliveries().await.len();
            if now != last {
                (last, since) = (now, Instant::now());
            }
        }
        self.deliveries().await
    }

    /// Prometheus' `data` for an API path.
    async fn prometheus(&self, path: &str) -> Value {
        let body = self
            .http
            .get(format!("{}{path}", self.prometheus))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{path}: {body}");
        v["data"].clone()
    }

    /// The sum of an instant query's samples (0 for none).
    async fn sum(&self, promql: &str) -> f64 {
        let q: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
        let data = self.prometheus(&format!("/api/v1/query?query={q}")).await;
        data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["value"][1].as_str().unwrap().parse::<f64>().unwrap())
            .sum()
    }

    /// Waits until Prometheus has at least [`SCRAPED`] active targets, all up; returns
    /// their scrape URLs.
    async fn targets_up(&self, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let data = self.prometheus("/api/v1/targets?state=active").await;
            let targets: BTreeMap<String, String> = data["activeTargets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    (
                        t["scrapeUrl"].as_str().unwrap().to_string(),
                        t["health"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            if targets.len() >= SCRAPED && targets.values().all(|h| h == "up") {
                return targets.into_keys().collect();
            }
            assert!(
                Instant::now() < deadline,
                "{SCRAPED} targets, all up, within {within:?}: {targets:?}"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Waits (up to 30 s) until Prometheus' sum of the bot's Telegram sends made
    /// (`herald_stage_effects_total{stage="bot",effect="made"}`) reaches `n`; returns it.
    async fn bot_sends_at_least(&self, n: f64) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let made = self.sum(r#"herald_stage_effects_total{stage="bot",effect="made"}"#).await;
            if made >= n {
                return made;
            }
            assert!(Instant::now() < deadline, "the bot's sends made ({made}) reached {n} within 30 s");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The containers of a compose service, by the label podman-compose gives them.
    fn containers(&self, service: &str) -> Vec<String> {
        let out = Command::new("podman")
            .args(["ps", "--format", "{{.Names}}", "--filter"])
            .arg(format!("label=io.podman.compose.project={}", self.project))
            .arg("--filter")
            .arg(format!("label=com.docker.compose.service={service}"))
            .output()
            .expect("podman runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
    }
}

fn notifications(d: &[Delivery], after_seq: u64, chat: i64) -> Vec<String> {
    d.iter()
        .filter(|x| x.seq > after_seq && x.chat_id == chat)
        .map(|x| x.text.clone())
        .collect()
}

#[tokio::test]
#[ignore = "needs the compose stack: scripts/compose-test starts it and runs this"]
async fn the_deployed_stack_notifies_is_scraped_and_survives_a_pipeline_restart() {
    let stack = Deployed::from_env();

    let targets = stack.targets_up(Duration::from_secs(90)).await;
    println!("Prometheus targets, all up: {targets:?}");
    // the image carries nats/alerts.yml, and Prometheus loaded every rule of it
    let shipped = include_str!("../../nats/alerts.yml").matches("- alert:").count();
    let groups = stack.prometheus("/api/v1/rules?type=alert").await["groups"].clone();
    let loaded: usize = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().unwrap().len())
        .sum();
    assert_eq!(loaded, shipped, "alert rules loaded, against nats/alerts.yml");

    stack.push(vec![private_text(ALICE, "/start"), private_text(BOB, "/start")]).await;
    let d = stack
        .wait_for(Duration::from_secs(60), "both users welcomed", |d| {
            [ALICE, BOB].iter().all(|u| d.iter().any(|x| x.chat_id == *u))
        })
        .await;
    let welcomed = d.iter().map(|x| x.seq).max().unwrap();
    // the bot's own count of Telegram sends so far (it also counts calls that are not
    // messages, such as the command menu): wait until a scrape saw every welcome
    let sends_before = stack.bot_sends_at_least(d.len() as f64).await;

    let posts: Vec<Value> = recorded_posts()
        .iter()
        .enumerate()
        .map(|(i, (chat, title, text, urls))| channel_post(*chat, title, 500 + i as i64, text, urls))
        .collect();
    let (before, during) = posts.split_at(posts.len() / 2);
    stack.push(before.to_vec()).await;
    let first = stack
        .wait_for(Duration::from_secs(60), "the first posts' calls notified", |d| {
            !notifications(d, welcomed, ALICE).is_empty()
        })
        .await;
    println!("before the restart: {} notifications", first.len() as u64 - welcomed);

    // the pipeline containers go down with the rest of the posts in flight
    let replicas = stack.containers("pipeline");
    assert_eq!(replicas.len(), 2, "docker-compose.yml runs two pipeline replicas: {replicas:?}");
    stack.push(during.to_vec()).await;
    let restarted = Command::new("podman")
        .args(["restart", "-t", "10"])
        .args(&replicas)
        .status()
        .unwrap();
    assert!(restarted.success(), "podman restart {replicas:?}");

    stack
        .wait_for(Duration::from_secs(120), "every call notified to both users", |d| {
            [ALICE, BOB].iter().all(|u| notifications(d, welcomed, *u).len() >= CALLS_IN_POSTS)
        })
        .await;
    let d = stack.wait_quiet(Duration::from_secs(5)).await;
    for user in [ALICE, BOB] {
        let texts = notifications(&d, welcomed, user);
        let distinct: BTreeSet<&String> = texts.iter().collect();
        assert_eq!(texts.len(), CALLS_IN_POSTS, "every call once to {user}, none lost: {texts:#?}");
        assert_eq!(distinct.len(), texts.len(), "no call sent twice to {user}: {texts:#?}");
    }

    // the bot's own account agrees: one Telegram send made per notification, none
    // twice (Prometheus scrapes every 5 s)
    let notified = d.iter().filter(|x| x.seq > welcomed).count() as f64;
    let made = stack.bot_sends_at_least(sends_before + notified).await - sends_before;
    assert_eq!(
        made, notified,
        "the bot's sends made since the welcomes, against Telegram's deliveries"
    );
    assert_eq!(stack.sum("herald_dead_lettered_total").await, 0.0, "nothing dead-lettered");
    stack.targets_up(Duration::from_secs(60)).await;
}
