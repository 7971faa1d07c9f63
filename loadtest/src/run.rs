//! `loadtest run`: drives a scenario at a fixed, stepped or ramped rate against a
//! running stack and measures, in the same run, the raw JetStream ceiling for the same
//! message size.
//!
//! Scenarios (each event is new, so every expected message must arrive exactly once):
//! - `signals`: feed calls; users are split into FDV bands so each call matches exactly
//!   `matches_per_event` users; measured at the notification subject (and at the
//!   emulator when one is given)
//! - `broadcast`: one call matching every user; measured at the emulator (Telegram's
//!   limits make this the bot's delivery rate)
//! - `commands`: an inbound storm of `/help` from `users` users through the emulator;
//!   measured from injection to the reply the emulator received
//! - `mixed`: signals plus one command per ten calls
//! - `prices`: tracked calls are seeded (`rate * duration / 7` tokens, each tracked by
//!   `matches_per_event` users), then price updates, each crossing the next of the seven
//!   default thresholds of its token, so each must become one alert per user; measured
//!   price -> alert on the notification subject
//!
//! Stepped and ramped rates find the saturation point: the first second whose p99
//! latency exceeds `latency_target_ms`; the run stops three seconds after it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use herald_schemas::{subjects, Filters, SignalsPrefs, User};

use crate::emulator::Delivery;
use crate::feed::FeedServer;
use crate::report::{cpu_ticks, histogram, rss_mb, Ceiling, Percentiles, Report, Tick};

/// What load to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    Signals,
    Broadcast,
    Commands,
    Mixed,
    /// Price updates on tracked calls: every update crosses the next alert threshold
    /// for its token's users; measured price -> alert on the notification subject.
    Prices,
}

/// How the rate moves over the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateMode {
    /// `rate` for `duration`.
    Fixed,
    /// `rate`, plus `step_rate` every `step_secs`, until `duration`.
    Stepped,
    /// Linear from `rate` to `max_rate` over `duration`.
    Ramp,
}

/// Parameters of a run.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub nats: herald_runtime::config::ServersArgs,
    #[arg(long, value_enum, default_value = "signals")]
    pub scenario: Scenario,
    #[arg(long, value_enum, default_value = "fixed")]
    pub mode: RateMode,
    /// Events per second (the starting rate when stepped or ramped).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds to send for.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Added to the rate every `step_secs` (stepped).
    #[arg(long, default_value_t = 1000)]
    pub step_rate: u64,
    #[arg(long, default_value_t = 5)]
    pub step_secs: u64,
    /// Final rate (ramp).
    #[arg(long, default_value_t = 20_000)]
    pub max_rate: u64,
    /// p99 latency above which the pipeline counts as saturated (ms).
    #[arg(long, default_value_t = 100)]
    pub latency_target_ms: u64,
    /// Users to seed (ids 1..=users).
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Users each call matches (signals, mixed).
    #[arg(long, default_value_t = 1)]
    pub matches_per_event: usize,
    /// Where the feed server listens; start the pipeline with `--feed-url ws://<this>`.
    #[arg(long, default_value = "127.0.0.1:9700")]
    pub feed_listen: std::net::SocketAddr,
    /// Bot API emulator URL (required by broadcast, commands and mixed).
    #[arg(long)]
    pub emulator_url: Option<String>,
    /// Process ids whose memory and CPU are sampled during the run (pipeline, bot).
    #[arg(long, value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Skip the raw JetStream ceiling measurement.
    #[arg(long)]
    pub no_ceiling: bool,
    /// Write the JSON report here too.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Write an SVG chart of throughput and latency over time here.
    #[arg(long)]
    pub chart: Option<std::path::PathBuf>,
}

impl RunArgs {
    /// Defaults for a run against `emulator_url` (benchmarks and tests).
    pub fn new(scenario: Scenario, rate: u64, duration: u64, users: usize) -> Self {
        RunArgs {
            nats: herald_runtime::config::ServersArgs {
                nats: herald_runtime::config::NatsArgs { nats_url: String::new() },
                nats_money_url: String::new(),
                nats_money_monitor: String::new(),
            },
            scenario,
            mode: RateMode::Fixed,
            rate,
            duration,
            step_rate: 1000,
            step_secs: 5,
            max_rate: 20_000,
            latency_target_ms: 100,
            users,
            matches_per_event: 1,
            feed_listen: "127.0.0.1:0".parse().expect("static"),
            emulator_url: None,
            pids: Vec::new(),
            no_ceiling: true,
            json: None,
            chart: None,
        }
    }

    /// Target events per second at `t` seconds into the run.
    pub fn rate_at(&self, t: f64) -> f64 {
        match self.mode {
            RateMode::Fixed => self.rate as f64,
            RateMode::Stepped => (self.rate + self.step_rate * (t as u64 / self.step_secs.max(1))) as f64,
            RateMode::Ramp => self.rate as f64 + (self.max_rate as f64 - self.rate as f64) * (t / self.duration.max(1) as f64).min(1.0),
        }
    }
}

/// The two fields of an [`herald_schemas::OutboundMessage`] a run needs: decoding only
/// these keeps the load generator's own CPU use low.
#[derive(serde::Deserialize)]
struct Probe {
    idempotency_key: String,
    origin_ts_ms: u64,
}

/// Seeds `users` users (their core record and signals preferences), split into FDV
/// bands of `matches_per_event` users each (0 = no filters: every call matches everyone).
pub async fn seed_users(js: &herald_runtime::Js, users: usize, matches_per_event: usize) -> anyhow::Result<usize> {
    let kv = js.get_key_value(subjects::USERS_BUCKET).await?;
    let prefs_kv = js.get_key_value(subjects::SIGNALS_USERS_BUCKET).await?;
    let bands = users.checked_div(matches_per_event).map_or(1, |b| b.max(1));
    futures::stream::iter(1..=users as i64)
        .map(|id| {
            let (kv, prefs_kv) = (kv.clone(), prefs_kv.clone());
            async move {
                let band = (id as usize - 1) % bands;
                let filters = if matches_per_event == 0 {
                    Filters::default()
                } else {
                    Filters {
                        min_fdv_usd: Some(band as f64 * 1000.0),
                        max_fdv_usd: Some(band as f64 * 1000.0 + 999.0),
                        ..Default::default()
                    }
                };
                let prefs = SignalsPrefs {
                    filters,
                    ..SignalsPrefs::new(id)
                };
                prefs_kv.put(id.to_string(), herald_schemas::encode(&prefs).into()).await?;
                let user = User::new(id, id, herald_schemas::now_ms());
                kv.put(id.to_string(), herald_schemas::encode(&user).into()).await
            }
        })
        .buffer_unordered(256)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(bands)
}

/// A feed frame for event `n` of run `run_id`, matching FDV band `band`.
pub fn call_frame(run_id: &str, n: u64, band: usize) -> String {
    serde_json::json!({
        "type": "call", "id": format!("{run_id}-{n}"), "chain": "solana",
        "token": format!("LT{run_id}x{n}"), "symbol": "LOAD", "price_usd": 0.001,
        "fdv_usd": band as f64 * 1000.0 + 500.0,
        "caller_id": format!("loadtest-caller-{}", n % 50), "caller_name": "Load caller",
        "caller_stats": {"v": 1, "win_rate": 0.5, "avg_gain_pct": 120.0, "calls": 40},
        "ts_ms": herald_schemas::now_ms()
    })
    .to_string()
}

/// One measured arrival: when (ms into the run) and how late (µs).
#[derive(Clone, Copy)]
struct Sample {
    at_ms: u64,
    latency_us: u64,
}

/// Everything measured while the run goes on.
#[derive(Default)]
struct Measured {
    subject: Vec<Sample>,
    telegram: Vec<Sample>,
    /// Command replies matched to their command.
    replies: u64,
    seen_keys: std::collections::HashSet<String>,
    republished: u64,
    message_bytes: usize,
    delivered: u64,
}

/// Runs a scenario against a stack whose pipeline reads `args.feed_listen`.
pub async fn run(args: RunArgs) -> anyhow::Result<Report> {
    let js = herald_pipeline::app::compose::connect(&args.nats).await?;
    herald_pipeline::app::compose::setup_all(&js, false, herald_runtime::setup::Replicas::Existing).await?;
    let feed = FeedServer::start(args.feed_listen).await?;
    drive(js, &feed, &args).await
}

/// Seeds the users, waits for a pipeline on `feed`, sends, measures. `args.nats` and
/// `args.feed_listen` are not used (the caller connected and started the feed).
pub async fn drive(js: herald_runtime::Js, feed: &FeedServer, args: &RunArgs) -> anyhow::Result<Report> {
    let client = js.events().client();
    let needs_emulator = !matches!(args.scenario, Scenario::Signals | Scenario::Prices);
    anyhow::ensure!(
        !needs_emulator || args.emulator_url.is_some(),
        "scenario {:?} needs --emulator-url",
        args.scenario
    );
    let matches = if args.scenario == Scenario::Broadcast {
        0
    } else {
        args.matches_per_event
    };
    let bands = seed_users(&js, args.users, matches).await?;
    eprintln!("seeded {} users; waiting for the pipeline to connect to {}", args.users, feed.url());
    feed.wait_for_clients(1, Duration::from_secs(60)).await?;
    let price_tokens = if args.scenario == Scenario::Prices {
        seed_tracked_calls(&js, args).await?
    } else {
        0
    };
    // the pipeline's user replica (and the tracker's index) catch up
    tokio::time::sleep(Duration::from_secs(2)).await;

    let started = Instant::now();
    let measured = Arc::new(Mutex::new(Measured::default()));
    let send_ts: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let command_ts: Arc<Mutex<HashMap<i64, VecDeque<u64>>>> = Arc::default();
    let subject_probe = tokio::spawn(probe_subject(
        client.subscribe(subjects::NOTIFY_ALL).await?,
        measured.clone(),
        started,
    ));
    let http = reqwest::Client::new();
    let emulator_probe = args.emulator_url.clone().map(|url| {
        tokio::spawn(probe_emulator(
            http.clone(),
            url,
            measured.clone(),
            send_ts.clone(),
            command_ts.clone(),
            started,
        ))
    });

    let run_id = format!("{:x}", herald_schemas::now_ms());
    let mut sent = 0u64;
    let mut due = 0f64;
    let mut timeline: Vec<Tick> = Vec::new();
    let (mut cpu_prev, mut saturated_at) = (cpu_ticks(&args.pids), None::<u64>);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut next_second = 1u64;
    let mut commands_sent = 0u64;
    while started.elapsed().as_secs_f64() < args.duration as f64 {
        tick.tick().await;
        let t = started.elapsed().as_secs_f64();
        due += args.rate_at(t) / 1000.0;
        if args.scenario == Scenario::Broadcast {
            due = 1.0; // one call, to every user, at once
        }
        let mut updates = Vec::new();
        while (sent as f64) < due.floor() {
            let n = sent;
            sent += 1;
            let now = herald_schemas::now_ms();
            match args.scenario {
                Scenario::Broadcast if n > 0 => {}
                Scenario::Signals | Scenario::Mixed | Scenario::Broadcast => {
                    if args.emulator_url.is_some() {
                        send_ts.lock().unwrap().insert(format!("LT{run_id}x{n}"), now);
                    }
                    feed.publish(call_frame(&run_id, n, n as usize % bands));
                }
                Scenario::Commands => {}
                Scenario::Prices => {
                    let (token, step) = (n % price_tokens, (n / price_tokens) as usize);
                    let multiple = herald_pipeline::products::signals::tracking::tracker::DEFAULT_THRESHOLDS[step.min(6)];
                    feed.publish(price_frame(&run_id, token, PRICE_ENTRY * multiple, n));
                }
            }
            let command = args.scenario == Scenario::Commands || (args.scenario == Scenario::Mixed && n.is_multiple_of(10));
            if command {
                let user = (commands_sent % args.users as u64) as i64 + 1;
                commands_sent += 1;
                command_ts.lock().unwrap().entry(user).or_default().push_back(now);
                updates.push(crate::stack::private_text(user, "/help"));
            }
        }
        if let (false, Some(url)) = (updates.is_empty(), &args.emulator_url) {
            http.post(format!("{url}/control/updates"))
                .json(&updates)
                .send()
                .await?
                .error_for_status()?;
        }
        if t >= next_second as f64 {
            let cpu_now = cpu_ticks(&args.pids);
            let tick = second_tick(
                &measured.lock().unwrap(),
                next_second,
                args.rate_at(t - 0.5),
                cpu_now.saturating_sub(cpu_prev),
                &args.pids,
            );
            cpu_prev = cpu_now;
            if saturated_at.is_none() && tick.p99_ms > args.latency_target_ms as f64 && args.mode != RateMode::Fixed {
                saturated_at = Some(next_second);
            }
            timeline.push(tick);
            next_second += 1;
            if saturated_at.is_some_and(|s| next_second > s + 3) {
                break;
            }
        }
    }
    let expected = expected_messages(args, sent, commands_sent);
    let deadline = Instant::now() + Duration::from_secs(if needs_emulator { 120 } else { 30 });
    while arrived(&measured.lock().unwrap(), args.scenario) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed().as_secs() >= next_second {
            let cpu_now = cpu_ticks(&args.pids);
            timeline.push(second_tick(
                &measured.lock().unwrap(),
                next_second,
                0.0,
                cpu_now.saturating_sub(cpu_prev),
                &args.pids,
            ));
            cpu_prev = cpu_now;
            next_second += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    subject_probe.abort();
    if let Some(p) = emulator_probe {
        p.abort();
    }
    let (count, throughput, message_bytes, republished, delivered, latency_to_subject, latency_to_telegram) = {
        let m = measured.lock().unwrap();
        let primary = if matches!(args.scenario, Scenario::Signals | Scenario::Mixed | Scenario::Prices) {
            &m.subject
        } else {
            &m.telegram
        };
        let last_ms = primary.iter().map(|s| s.at_ms).max().unwrap_or(1).max(1);
        let count = arrived(&m, args.scenario);
        let throughput = count as f64 * 1000.0 / last_ms as f64;
        let latency_to_subject = percentiles(&m.subject);
        let latency_to_telegram = (!m.telegram.is_empty()).then(|| percentiles(&m.telegram));
        (
            count,
            throughput,
            m.message_bytes,
            m.republished,
            m.delivered,
            latency_to_subject,
            latency_to_telegram,
        )
    };
    let ceiling = if args.no_ceiling {
        None
    } else {
        Some(ceiling(js.events(), count.clamp(10_000, 200_000), message_bytes.max(64)).await?)
    };
    let ratio = ceiling.as_ref().map(|c| throughput / c.publish_and_consume_per_s);
    let report = Report {
        scenario: format!("{:?}", args.scenario).to_lowercase(),
        mode: format!("{:?}", args.mode).to_lowercase(),
        rate_per_s: args.rate,
        duration_s: args.duration,
        users: args.users,
        events_sent: sent,
        notifications_expected: expected,
        notifications_seen: count,
        republished_dropped: republished,
        delivered_to_telegram: args.emulator_url.as_ref().map(|_| delivered),
        throughput_per_s: throughput,
        latency_to_subject,
        latency_to_telegram,
        ceiling,
        ratio_to_ceiling: ratio,
        max_rss_mb: timeline.iter().filter_map(|t| t.rss_mb).reduce(f64::max),
        max_cpu_pct: timeline.iter().filter_map(|t| t.cpu_pct).reduce(f64::max),
        null_pipeline: None,
        saturation_rate_per_s: saturated_at.and_then(|s| timeline.get(s as usize - 1)).map(|t| t.target_rate),
        timeline,
    };
    if let Some(path) = &args.chart {
        crate::chart::write_svg(&report, path)?;
    }
    Ok(report)
}

/// Messages a scenario must produce.
fn expected_messages(args: &RunArgs, sent: u64, commands: u64) -> u64 {
    match args.scenario {
        Scenario::Signals => sent * args.matches_per_event as u64,
        Scenario::Broadcast => args.users as u64,
        Scenario::Commands => commands,
        Scenario::Mixed => sent * args.matches_per_event as u64 + commands,
        Scenario::Prices => sent * args.matches_per_event as u64,
    }
}

/// Entry price of every seeded tracked call.
const PRICE_ENTRY: f64 = 0.001;

/// Publishes tracked calls for the prices scenario straight onto `herald.tracked.>`:
/// `rate * duration / 7` tokens (7 thresholds each), each tracked by
/// `matches_per_event` users. Returns the number of tokens.
async fn seed_tracked_calls(js: &herald_runtime::Js, args: &RunArgs) -> anyhow::Result<u64> {
    let tokens = (args.rate * args.duration).div_ceil(7).max(1);
    let per = args.matches_per_event.max(1);
    for t in 0..tokens {
        let recipients = (0..per)
            .map(|i| {
                let user = ((t as usize * per + i) % args.users) as i64 + 1;
                herald_schemas::Recipient {
                    user_id: user,
                    chat_id: user,
                }
            })
            .collect();
        let event = herald_schemas::TrackedCalls {
            v: 1,
            chain: "solana".into(),
            token: format!("PX{t}"),
            symbol: Some("PX".into()),
            caller_ids: vec!["loadtest-caller".into()],
            entry_price_usd: PRICE_ENTRY,
            called_at_ms: herald_schemas::now_ms(),
            recipients,
        };
        let id = format!("loadtest-tracked-{t}-{}", herald_schemas::now_ms());
        js.publish_with_id(subjects::tracked("solana"), &id, herald_schemas::encode(&event).into())
            .await?
            .await?;
    }
    Ok(tokens)
}

/// A price frame for token `PX<token>`.
fn price_frame(run_id: &str, token: u64, price: f64, n: u64) -> String {
    serde_json::json!({"type": "price", "id": format!("{run_id}-p{n}"), "chain": "solana", "token": format!("PX{token}"),
        "price_usd": price, "ts_ms": herald_schemas::now_ms()})
    .to_string()
}

/// Messages of the scenario that arrived where it is measured.
fn arrived(m: &Measured, scenario: Scenario) -> u64 {
    match scenario {
        Scenario::Signals | Scenario::Prices => m.subject.len() as u64,
        Scenario::Broadcast => m.telegram.len() as u64,
        Scenario::Commands => m.replies,
        Scenario::Mixed => m.subject.len() as u64 + m.replies,
    }
}

fn percentiles(samples: &[Sample]) -> Percentiles {
    let mut h = histogram();
    for s in samples {
        let _ = h.record(s.latency_us.max(1));
    }
    Percentiles::of(&h)
}

fn second_tick(m: &Measured, second: u64, target_rate: f64, cpu: u64, pids: &[u32]) -> Tick {
    let window = (second - 1) * 1000..second * 1000;
    let mut h = histogram();
    let mut received = 0;
    for s in m.subject.iter().chain(&m.telegram).filter(|s| window.contains(&s.at_ms)) {
        received += 1;
        let _ = h.record(s.latency_us.max(1));
    }
    let p = Percentiles::of(&h);
    Tick {
        t_s: second,
        target_rate,
        received,
        p50_ms: p.p50_ms,
        p99_ms: p.p99_ms,
        rss_mb: (!pids.is_empty()).then(|| pids.iter().filter_map(|p| rss_mb(*p)).sum()),
        // clock ticks are 1/100 s on Linux: ticks per second == percent of one core
        cpu_pct: (!pids.is_empty()).then_some(cpu as f64),
    }
}

async fn probe_subject(mut sub: async_nats::Subscriber, measured: Arc<Mutex<Measured>>, started: Instant) {
    while let Some(msg) = sub.next().await {
        let Ok(out) = serde_json::from_slice::<Probe>(&msg.payload) else {
            continue;
        };
        let mut m = measured.lock().unwrap();
        // A core subscription sees every publish, including a retried one that
        // JetStream's duplicate window dropped: count unique keys, report the rest.
        if !m.seen_keys.insert(out.idempotency_key) {
            m.republished += 1;
            continue;
        }
        m.message_bytes = msg.payload.len();
        let latency_us = herald_schemas::now_ms().saturating_sub(out.origin_ts_ms) * 1000;
        m.subject.push(Sample {
            at_ms: started.elapsed().as_millis() as u64,
            latency_us,
        });
    }
}

/// Polls the emulator's deliveries: signal notifications are matched to their call by
/// the token in `<code>…</code>`, command replies to the oldest open command of the chat.
async fn probe_emulator(
    http: reqwest::Client,
    url: String,
    measured: Arc<Mutex<Measured>>,
    send_ts: Arc<Mutex<HashMap<String, u64>>>,
    command_ts: Arc<Mutex<HashMap<i64, VecDeque<u64>>>>,
    started: Instant,
) {
    let mut since = 0;
    let start_wall = herald_schemas::now_ms().saturating_sub(started.elapsed().as_millis() as u64);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(r) = http.get(format!("{url}/control/deliveries?since={since}")).send().await else {
            continue;
        };
        let Ok(batch) = r.json::<Vec<Delivery>>().await else { continue };
        let mut m = measured.lock().unwrap();
        for d in batch {
            since = since.max(d.seq);
            m.delivered += 1;
            // notifications start with 🔔 and show the token as <code>TOKEN</code>
            let token = d
                .text
                .starts_with('🔔')
                .then(|| d.text.split("<code>").nth(1).and_then(|t| t.split("</code>").next()))
                .flatten();
            let sent = match token {
                Some(token) => send_ts.lock().unwrap().get(token).copied(),
                None => {
                    let ts = command_ts.lock().unwrap().get_mut(&d.chat_id).and_then(|q| q.pop_front());
                    m.replies += u64::from(ts.is_some());
                    ts
                }
            };
            if let Some(ts) = sent {
                m.telegram.push(Sample {
                    at_ms: d.at_ms.saturating_sub(start_wall),
                    latency_us: d.at_ms.saturating_sub(ts) * 1000,
                });
            }
        }
    }
}

pub async fn ceiling(js: &jetstream::Context, n: u64, size: usize) -> anyhow::Result<Ceiling> {
    let name = "LOADTEST_CEILING";
    let _ = js.delete_stream(name).await;
    let s = js
        .create_stream(stream::Config {
            name: name.into(),
            subjects: vec!["loadtest.ceiling".into()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let payload = bytes::Bytes::from(vec![b'x'; size]);
    let t0 = Instant::now();
    let mut acks = futures::stream::FuturesUnordered::new();
    for _ in 0..n {
        acks.push(std::future::IntoFuture::into_future(
            js.publish("loadtest.ceiling", payload.clone()).await?,
        ));
        if acks.len() >= 4096 {
            acks.next().await.transpose()?;
        }
    }
    while let Some(a) = acks.next().await {
        a?;
    }
    let publish_s = t0.elapsed().as_secs_f64();
    let consumer = s
        .create_consumer(pull::Config {
            durable_name: Some("ceiling".into()),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.stream().max_messages_per_batch(1000).messages().await?;
    let t1 = Instant::now();
    let mut got = 0;
    while got < n {
        let m = messages
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("ceiling consumer ended"))?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        got += 1;
    }
    let consume_s = t1.elapsed().as_secs_f64();
    js.delete_stream(name).await?;
    Ok(Ceiling {
        messages: n,
        message_bytes: size,
        publish_per_s: n as f64 / publish_s,
        consume_per_s: n as f64 / consume_s,
        publish_and_consume_per_s: n as f64 / (publish_s + consume_s),
    })
}
