//! The real Prometheus (Debian's `prometheus`, `$HERALD_PROMETHEUS`) with Herald's
//! alert rules (`nats/alerts.yml`), scraping a running stack (pipeline and bot): every
//! target is up, no alert fires while nothing is wrong, and malformed commands made on
//! purpose dead-letter and fire `HeraldDeadLetters` for their stage, as read from
//! Prometheus' own HTTP API. Needs `cargo build --workspace --bins`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use herald_loadtest::stack::{Stack, StackOptions};
use herald_testkit::free_port;
use serde_json::Value;

/// A Prometheus server, killed when dropped.
struct Prometheus {
    child: Child,
    port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus in `dir` scraping `targets` (job, host:port) every second and
    /// evaluating Herald's rules every second.
    fn start(dir: &Path, targets: &[(&str, u16)]) -> Prometheus {
        std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/../nats/alerts.yml"), dir.join("alerts.yml")).unwrap();
        let jobs: String = targets
            .iter()
            .map(|(job, port)| format!("  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"))
            .collect();
        let config =
            format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - alerts.yml\nscrape_configs:\n{jobs}");
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let bin = std::env::var("HERALD_PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}; run scripts/install-deps (Debian's prometheus)"));
        Prometheus { child, port }
    }

    async fn api(&self, path: &str) -> Option<Value> {
        let url = format!("http://127.0.0.1:{}/api/v1/{path}", self.port);
        let body: Value = reqwest::get(url).await.ok()?.json().await.ok()?;
        (body["status"] == "success").then(|| body["data"].clone())
    }

    /// Polls `path` until `f` finds what it wants in the answer (a condition, bounded
    /// by `secs`).
    async fn until<T>(&self, what: &str, path: &str, secs: u64, f: impl Fn(&Value) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        let mut last = Value::Null;
        loop {
            if let Some(data) = self.api(path).await {
                if let Some(found) = f(&data) {
                    return found;
                }
                last = data;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what} within {secs} s; last answer: {last}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The alerts Prometheus holds now, as (name, state, stage label).
fn alerts(data: &Value) -> Vec<(String, String, String)> {
    data["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (s(&a["labels"]["alertname"]), s(&a["state"]), s(&a["labels"]["stage"]))
        })
        .collect()
}

#[tokio::test]
async fn prometheus_scrapes_the_stack_and_dead_letters_fire_the_alert() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prom = Prometheus::start(
        dir.path(),
        &[
            ("herald-pipeline", stack.pipeline.metrics_port),
            ("herald-bot", stack.bot.metrics_port),
        ],
    );

    // every target up
    let up = prom
        .until("both targets up", "targets", 60, |d| {
            let targets = d["activeTargets"].as_array()?;
            (targets.len() == 2 && targets.iter().all(|t| t["health"] == "up")).then_some(targets.len())
        })
        .await;
    assert_eq!(up, 2);
    // the rules loaded and evaluated with the stack healthy: nothing pending or firing
    // (the stage's dead-letter counter scraped at 0 before anything is wrong)
    prom.until(
        "the signals inbox's dead-letter counter scraped at 0",
        "query?query=herald_dead_lettered_total%7Bstage%3D%22signals_inbox%22%7D",
        30,
        |d| {
            let v = d["result"].as_array()?.first()?["value"][1].as_str()?.to_string();
            (v == "0").then_some(())
        },
    )
    .await;
    prom.until("the rules evaluated", "rules", 30, |d| {
        let rules = d["groups"][0]["rules"].as_array()?;
        (rules.len() == 8
            && rules
                .iter()
                .all(|r| r["lastEvaluation"].as_str().is_some_and(|t| !t.starts_with("0001"))))
        .then_some(())
    })
    .await;
    let quiet = alerts(&prom.api("alerts").await.unwrap());
    assert!(quiet.is_empty(), "alerts with nothing wrong: {quiet:?}");

    // malformed commands to the signals inbox: each is dead-lettered with its reason
    let js = stack.jetstream().await.unwrap();
    for i in 0..3 {
        js.publish_with_id("herald.cmd.signals.77", &format!("poison-{i}"), "{not json".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let firing = prom
        .until("HeraldDeadLetters firing for signals_inbox", "alerts", 60, |d| {
            alerts(d)
                .into_iter()
                .find(|(name, state, stage)| name == "HeraldDeadLetters" && state == "firing" && stage == "signals_inbox")
        })
        .await;
    assert_eq!(firing.2, "signals_inbox");
    let others: Vec<_> = alerts(&prom.api("alerts").await.unwrap())
        .into_iter()
        .filter(|(name, ..)| name != "HeraldDeadLetters")
        .collect();
    assert!(others.is_empty(), "only the dead letters fire: {others:?}");
    let dead = herald_runtime::reader::read(&js, "DLQ", "herald.dlq.signals_inbox").await.unwrap();
    assert_eq!(dead.len(), 3, "each poison message dead-lettered once");
}
