//! A whole Herald stack on one machine, for the demo, end-to-end tests and load runs:
//! nats-server and redis-server (real, on free ports), the Bot API emulator, two feed
//! servers (Herald JSON feed, Solana transactions), and `pipeline` + `bot` as child
//! processes that can be killed (SIGKILL) and restarted.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use herald_testkit::{free_port, workspace_bin, Endpoints, LocalCluster, LocalNats, LocalRedis, ServerClass};

use crate::emulator::{Emulator, EmulatorLimits};
use crate::feed::FeedServer;

/// A child process of the stack.
pub struct Proc {
    name: &'static str,
    args: Vec<String>,
    child: Option<Child>,
    pub metrics_port: u16,
    log: PathBuf,
}

impl Proc {
    /// Starts the workspace binary `name` with `args`, its stderr appended to `log`;
    /// it serves `/readyz` on `metrics_port` (see [`Proc::wait_ready`]).
    ///
    /// Errors: the binary is not built or cannot start.
    pub fn start(name: &'static str, args: Vec<String>, metrics_port: u16, log: PathBuf) -> anyhow::Result<Self> {
        let mut p = Proc {
            name,
            args,
            child: None,
            metrics_port,
            log,
        };
        p.spawn()?;
        Ok(p)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let bin = workspace_bin(self.name)?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(bin)
            .args(&self.args)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .env_remove("TELOXIDE_TOKEN")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits for `/readyz` to answer 200.
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{}/readyz", self.metrics_port);
        for _ in 0..600 {
            if let Ok(r) = reqwest::get(&url).await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("{} not ready after 30 s; see {}", self.name, self.log.display())
    }

    /// `/readyz`'s status code and body (`ready`, `starting`, `missing: nats money server`).
    ///
    /// Errors: the process does not answer.
    pub async fn readyz(&self) -> anyhow::Result<(u16, String)> {
        let r = reqwest::get(format!("http://127.0.0.1:{}/readyz", self.metrics_port)).await?;
        Ok((r.status().as_u16(), r.text().await?))
    }

    /// Waits until `/readyz`'s body is `body` (at most 30 s).
    ///
    /// Errors: it did not come to say so.
    pub async fn wait_readyz(&self, body: &str) -> anyhow::Result<()> {
        let mut last = (0, String::new());
        for _ in 0..300 {
            if let Ok(r) = self.readyz().await {
                if r.1 == body {
                    return Ok(());
                }
                last = r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("{}'s /readyz never said {body:?}; last {last:?}", self.name)
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a graceful exit; returns its exit status success.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        for _ in 0..300 {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// Starts it again with the same arguments.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        self.spawn()?;
        self.wait_ready().await
    }

    /// OS process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Prometheus text from its /metrics.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(reqwest::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .await?
            .text()
            .await?)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Options of a stack.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Extra `pipeline run` arguments (e.g. shorter dedup TTLs).
    pub pipeline_args: Vec<String>,
    /// Extra `bot` arguments.
    pub bot_args: Vec<String>,
    pub limits: EmulatorLimits,
    /// Directory for process logs (a temporary one when `None`).
    pub log_dir: Option<PathBuf>,
    /// A JetStream cluster of this many nats-servers per durability class (events and
    /// money: twice as many servers), every stream and bucket with as many replicas
    /// (`pipeline setup --replicas N`); 0 or 1: one server per class.
    pub cluster: usize,
}

impl StackOptions {
    /// A stack for benchmarks of Herald's side: the bot's budgets and the emulator's
    /// global limit raised from Telegram's 30 messages/s to 1,000 (paid broadcasts,
    /// Telegram's highest) and 5,000.
    pub fn unthrottled(pipeline_args: Vec<String>) -> Self {
        let bot_args = [
            "--paid-broadcast",
            "--global-rate",
            "1000",
            "--interactive-rate",
            "1000",
            "--interactive-in-flight",
            "512",
        ];
        StackOptions {
            pipeline_args,
            bot_args: bot_args.iter().map(|s| s.to_string()).collect(),
            limits: EmulatorLimits {
                global_rate: 5_000,
                ..Default::default()
            },
            log_dir: None,
            cluster: 0,
        }
    }
}

/// The stack's NATS: one server per durability class, or a cluster per class.
pub enum Nats {
    Single(LocalNats),
    Cluster { events: LocalCluster, money: LocalCluster },
}

impl Nats {
    /// Where both classes' servers are.
    pub fn endpoints(&self) -> Endpoints {
        match self {
            Nats::Single(n) => n.endpoints(),
            Nats::Cluster { events, money } => Endpoints {
                url: events.url(),
                money_url: money.url(),
                money_monitor: money.monitors(),
            },
        }
    }

    /// What `--nats-url` takes: the events server's URL, or every member's.
    pub fn url(&self) -> String {
        self.endpoints().url
    }

    /// What `--nats-money-monitor` takes.
    pub fn money_monitor(&self) -> String {
        self.endpoints().money_monitor
    }

    /// The flags a Herald process takes to reach both classes.
    pub fn args(&self) -> Vec<String> {
        self.endpoints().args()
    }

    /// The same as parsed flags.
    pub fn servers_args(&self) -> herald_runtime::config::ServersArgs {
        self.endpoints().servers_args()
    }

    /// The single servers, when the stack runs on one per class.
    pub fn single(&mut self) -> Option<&mut LocalNats> {
        match self {
            Nats::Single(n) => Some(n),
            Nats::Cluster { .. } => None,
        }
    }

    /// The events cluster, when the stack runs on clusters.
    pub fn cluster(&mut self) -> Option<&mut LocalCluster> {
        match self {
            Nats::Single(_) => None,
            Nats::Cluster { events, .. } => Some(events),
        }
    }

    /// The money cluster, when the stack runs on clusters.
    pub fn money_cluster(&mut self) -> Option<&mut LocalCluster> {
        match self {
            Nats::Single(_) => None,
            Nats::Cluster { money, .. } => Some(money),
        }
    }
}

/// The running stack.
pub struct Stack {
    pub nats: Nats,
    pub redis: LocalRedis,
    pub emulator: Emulator,
    pub feed: FeedServer,
    pub solana: FeedServer,
    pub pipeline: Proc,
    pub bot: Proc,
    _logs: Option<tempfile::TempDir>,
    _data: tempfile::TempDir,
    pub log_dir: PathBuf,
}

/// The demo bot token: the emulator accepts any.
pub const DEMO_TOKEN: &str = "123456:HERALD-DEMO-TOKEN";

impl Stack {
    /// Starts everything and waits until pipeline and bot are ready.
    pub async fn start(opts: StackOptions) -> anyhow::Result<Self> {
        let nats = if opts.cluster > 1 {
            let events = LocalCluster::start(opts.cluster)?;
            let money = LocalCluster::start_class(opts.cluster, ServerClass::Money, "m")?;
            events.wait_for_jetstream(Duration::from_secs(30)).await?;
            money.wait_for_jetstream(Duration::from_secs(30)).await?;
            Nats::Cluster { events, money }
        } else {
            Nats::Single(LocalNats::start()?)
        };
        let redis = LocalRedis::start()?;
        let emulator = Emulator::start("127.0.0.1:0".parse()?, opts.limits.clone()).await?;
        let feed = FeedServer::start("127.0.0.1:0".parse()?).await?;
        let solana = FeedServer::start("127.0.0.1:0".parse()?).await?;
        let (logs, log_dir) = match opts.log_dir {
            Some(d) => {
                std::fs::create_dir_all(&d)?;
                (None, d)
            }
            None => {
                let t = tempfile::tempdir()?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        // setup once, before two processes race to create the same streams
        let mut setup = vec!["setup".to_string()];
        setup.extend(nats.args());
        if opts.cluster > 1 {
            setup.extend(["--replicas".to_string(), opts.cluster.to_string()]);
        }
        let setup_log = log_dir.join("setup.log");
        let status = Command::new(workspace_bin("pipeline")?)
            .args(&setup)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&setup_log)?)
            .status()?;
        anyhow::ensure!(status.success(), "pipeline setup failed; see {}", setup_log.display());
        let pm = free_port();
        let mut pipeline_args: Vec<String> = [
            "run",
            "--redis-url",
            &redis.url(),
            "--metrics-addr",
            &format!("127.0.0.1:{pm}"),
            "--feed-url",
            &feed.url(),
            "--solana-ws-url",
            &solana.url(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        pipeline_args.extend(nats.args());
        let data = tempfile::tempdir()?; // a fresh tracked-call store, kept across restarts
        pipeline_args.extend(["--store-path".to_string(), data.path().join("calls").display().to_string()]);
        pipeline_args.extend(opts.pipeline_args);
        // the feeds have clients only when signals runs (`--products` without it: none)
        let products = pipeline_args
            .iter()
            .position(|a| a == "--products")
            .and_then(|i| pipeline_args.get(i + 1));
        let signals = products.is_none_or(|p| p.split(',').any(|p| p == "signals"));
        let bm = free_port();
        let mut bot_args: Vec<String> = [
            "--token",
            DEMO_TOKEN,
            "--api-url",
            &emulator.url(),
            "--nats-url",
            &nats.url(),
            "--metrics-addr",
            &format!("127.0.0.1:{bm}"),
            "--poll-timeout-secs",
            "5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        bot_args.extend(opts.bot_args);
        let mut pipeline = Proc {
            name: "pipeline",
            args: pipeline_args,
            child: None,
            metrics_port: pm,
            log: log_dir.join("pipeline.log"),
        };
        let mut bot = Proc {
            name: "bot",
            args: bot_args,
            child: None,
            metrics_port: bm,
            log: log_dir.join("bot.log"),
        };
        pipeline.spawn()?;
        bot.spawn()?;
        pipeline.wait_ready().await?;
        bot.wait_ready().await?;
        if signals {
            feed.wait_for_clients(1, Duration::from_secs(15)).await?;
            solana.wait_for_clients(1, Duration::from_secs(15)).await?;
        }
        Ok(Stack {
            nats,
            redis,
            emulator,
            feed,
            solana,
            pipeline,
            bot,
            _logs: logs,
            _data: data,
            log_dir,
        })
    }

    /// JetStream on the stack's two classes' servers.
    pub async fn jetstream(&self) -> anyhow::Result<herald_runtime::Js> {
        herald_pipeline::app::compose::connect(&self.nats.servers_args()).await
    }

    /// Waits until the pipeline's fan-out index holds what `seed_users` wrote for `users`
    /// users: its replica counted that many changes of the users and the signals-users
    /// buckets (`herald_replica_changes_total`). A call fanned out before would find
    /// nobody, and its token would count as notified.
    ///
    /// Errors: not within 60 s.
    pub async fn wait_for_users(&self, users: usize) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let changes = |metrics: &str, bucket: &str| -> f64 {
            herald_runtime::metric::sum_in(metrics, herald_runtime::metric::REPLICA_CHANGES.name, &[("bucket", bucket)])
        };
        loop {
            let metrics = self.pipeline.metrics().await.unwrap_or_default();
            let seen = [
                herald_schemas::subjects::USERS_BUCKET,
                herald_schemas::subjects::SIGNALS_USERS_BUCKET,
            ]
            .map(|b| changes(&metrics, b));
            if seen.iter().all(|&n| n >= users as f64) {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the pipeline's user index has {seen:?} of {users} users after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `pred` holds for the emulator's deliveries, or fails after `timeout`.
    pub async fn wait_for_deliveries(
        &self,
        timeout: Duration,
        pred: impl Fn(&[crate::emulator::Delivery]) -> bool,
    ) -> anyhow::Result<Vec<crate::emulator::Delivery>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let d = self.emulator.deliveries();
            if pred(&d) {
                return Ok(d);
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("deliveries did not reach the expected state within {timeout:?}: {} so far", d.len());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until no new delivery arrived for `quiet`, at most `timeout`.
    pub async fn wait_quiet(&self, quiet: Duration, timeout: Duration) -> Vec<crate::emulator::Delivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = (self.emulator.deliveries().len(), tokio::time::Instant::now());
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let n = self.emulator.deliveries().len();
            if n != last.0 {
                last = (n, tokio::time::Instant::now());
            } else if last.1.elapsed() >= quiet {
                break;
            }
        }
        self.emulator.deliveries()
    }
}

/// How long after `since` a publish to CALLS is acknowledged again (the stream has a
/// leader and a quorum): the recovery time after a nats-server is lost. The probe goes
/// to `herald.calls.probe.feed` (no chain is called `probe`: dedup dead-letters it)
/// under message id `probe`.
///
/// Errors: not writable within 60 s.
pub async fn writable_after(js: &herald_runtime::Js, since: std::time::Instant, probe: &str) -> anyhow::Result<Duration> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(ack) = js.publish_with_id("herald.calls.probe.feed", probe, "{}".into()).await {
            if tokio::time::timeout(Duration::from_secs(2), ack).await.is_ok_and(|a| a.is_ok()) {
                return Ok(since.elapsed());
            }
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "not writable within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A private-chat text message update from `user_id` (Telegram's shape).
pub fn private_text(user_id: i64, text: &str) -> serde_json::Value {
    serde_json::json!({"message": {"message_id": 1, "from": {"id": user_id, "is_bot": false, "first_name": "Demo"},
        "chat": {"id": user_id, "type": "private", "first_name": "Demo"}, "date": herald_schemas::now_ms() / 1000, "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": text.split_whitespace().next().unwrap_or("").len()}]}})
}

/// A `channel_post` update from a channel.
pub fn channel_post(chat_id: i64, title: &str, message_id: i64, text: &str, urls: &[&str]) -> serde_json::Value {
    let entities: Vec<serde_json::Value> = urls
        .iter()
        .map(|u| serde_json::json!({"type": "text_link", "offset": 0, "length": 1, "url": u}))
        .collect();
    serde_json::json!({"channel_post": {"message_id": message_id, "chat": {"id": chat_id, "title": title, "type": "channel"},
        "date": herald_schemas::now_ms() / 1000, "text": text, "entities": entities}})
}

/// A `callback_query` update: `user_id` pressed the button carrying `data` under their
/// message `message_id` (Telegram's shape).
pub fn callback_query(user_id: i64, message_id: i64, data: &str) -> serde_json::Value {
    serde_json::json!({"callback_query": {"id": format!("cb-{user_id}-{message_id}-{data}"),
        "from": {"id": user_id, "is_bot": false, "first_name": "Demo"}, "chat_instance": "1", "data": data,
        "message": {"message_id": message_id, "date": 0, "chat": {"id": user_id, "type": "private", "first_name": "Demo"}, "text": "menu"}}})
}
