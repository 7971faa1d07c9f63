//! `loadtest run`: the signals scenario. Seeds users, serves a feed at a fixed rate,
//! measures feed -> notification-subject latency (and feed -> emulator when one is
//! given) and throughput, then measures the raw JetStream ceiling for the same message
//! size in the same run.
//!
//! Users are split into FDV bands so that each event matches exactly
//! `matches_per_event` users; every event is a new token, so every event must become
//! that many notifications (none lost, none repeated).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use herald_schemas::{subjects, Filters, UserSettings};

use crate::feed::FeedServer;
use crate::report::{histogram, rss_mb, Ceiling, Percentiles, Report};

/// Parameters of a run.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[arg(long, env = "HERALD_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Events per second.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds to send for.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Users to seed (ids 1..=users).
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Users each event matches.
    #[arg(long, default_value_t = 1)]
    pub matches_per_event: usize,
    /// Where the feed server listens; start the pipeline with `--feed-url ws://<this>`.
    #[arg(long, default_value = "127.0.0.1:9700")]
    pub feed_listen: std::net::SocketAddr,
    /// Bot API emulator control URL, to measure feed -> Telegram latency too.
    #[arg(long)]
    pub emulator_url: Option<String>,
    /// Process ids whose resident memory is sampled during the run (pipeline, bot).
    #[arg(long, value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Skip the raw JetStream ceiling measurement.
    #[arg(long)]
    pub no_ceiling: bool,
    /// Write the JSON report here too.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// The two fields of an [`herald_schemas::OutboundMessage`] a run needs: decoding only
/// these keeps the load generator's own CPU use low.
#[derive(serde::Deserialize)]
struct Probe {
    idempotency_key: String,
    origin_ts_ms: u64,
}

/// Seeds `users` users into the users bucket, split into FDV bands.
pub async fn seed_users(js: &jetstream::Context, users: usize, matches_per_event: usize) -> anyhow::Result<usize> {
    let kv = js.get_key_value(subjects::USERS_BUCKET).await?;
    let bands = (users / matches_per_event.max(1)).max(1);
    futures::stream::iter(1..=users as i64)
        .map(|id| {
            let kv = kv.clone();
            async move {
                let band = (id as usize - 1) % bands;
                let filters = Filters {
                    min_fdv_usd: Some(band as f64 * 1000.0),
                    max_fdv_usd: Some(band as f64 * 1000.0 + 999.0),
                    ..Default::default()
                };
                let s = UserSettings {
                    filters,
                    ..UserSettings::new(id, id, herald_schemas::now_ms())
                };
                kv.put(id.to_string(), herald_schemas::encode(&s).into()).await
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

/// Runs the signals scenario and returns its report.
pub async fn run(args: RunArgs) -> anyhow::Result<Report> {
    let client = async_nats::connect(&args.nats_url).await?;
    herald_pipeline::setup::apply(&jetstream::new(client.clone()), false).await?;
    let feed = FeedServer::start(args.feed_listen).await?;
    drive(client, &feed, &args).await
}

/// Seeds the users, waits for a pipeline on `feed`, sends, measures. `args.nats_url`
/// and `args.feed_listen` are not used (the caller connected and started the feed).
pub async fn drive(client: async_nats::Client, feed: &FeedServer, args: &RunArgs) -> anyhow::Result<Report> {
    let js = jetstream::new(client.clone());
    let bands = seed_users(&js, args.users, args.matches_per_event).await?;
    eprintln!("seeded {} users; waiting for the pipeline to connect to {}", args.users, feed.url());
    feed.wait_for_clients(1, Duration::from_secs(60)).await?;
    // the pipeline's user replica catches up through KV change events
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A core subscription sees every publish, including a retried one that JetStream's
    // duplicate window then dropped: count unique idempotency keys, report the rest.
    let seen = Arc::new(Mutex::new((histogram(), 0u64, 0usize, None::<Instant>)));
    let republished = Arc::new(Mutex::new((std::collections::HashSet::<String>::new(), 0u64)));
    let mut sub = client.subscribe(subjects::NOTIFY_ALL).await?;
    let seen_task = {
        let seen = seen.clone();
        let republished = republished.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let Ok(out) = serde_json::from_slice::<Probe>(&msg.payload) else {
                    continue;
                };
                {
                    let mut r = republished.lock().unwrap();
                    if !r.0.insert(out.idempotency_key) {
                        r.1 += 1;
                        continue;
                    }
                }
                let lat_us = herald_schemas::now_ms().saturating_sub(out.origin_ts_ms) * 1000;
                let mut s = seen.lock().unwrap();
                let _ = s.0.record(lat_us.max(1));
                s.1 += 1;
                s.2 = msg.payload.len();
                s.3 = Some(Instant::now());
            }
        })
    };

    let run_id = format!("{:x}", herald_schemas::now_ms());
    let total = args.rate * args.duration;
    let mut send_ts: HashMap<String, u64> = HashMap::new();
    let mut rss_max: Option<f64> = None;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut last_sample = Instant::now();
    while sent < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * args.rate as f64) as u64).min(total);
        while sent < due {
            let band = (sent as usize) % bands;
            if args.emulator_url.is_some() {
                send_ts.insert(format!("LT{run_id}x{sent}"), herald_schemas::now_ms());
            }
            feed.publish(call_frame(&run_id, sent, band));
            sent += 1;
        }
        if last_sample.elapsed() > Duration::from_millis(500) {
            last_sample = Instant::now();
            rss_max = sample_rss(&args.pids, rss_max);
        }
    }
    let expected = total * args.matches_per_event as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().1 < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        rss_max = sample_rss(&args.pids, rss_max);
    }
    seen_task.abort();
    let (hist, count, msg_bytes, last) = seen.lock().unwrap().clone();
    let elapsed = last.map(|l| l.duration_since(started)).unwrap_or(started.elapsed()).as_secs_f64();
    let throughput = count as f64 / elapsed.max(1e-9);

    let latency_to_telegram = match &args.emulator_url {
        Some(url) => Some(telegram_latency(url, &send_ts).await?),
        None => None,
    };
    let ceiling = if args.no_ceiling {
        None
    } else {
        Some(ceiling(&js, count.clamp(10_000, 200_000), msg_bytes.max(64)).await?)
    };
    let republished_dropped = republished.lock().unwrap().1;
    let ratio = ceiling.as_ref().map(|c| throughput / c.publish_and_consume_per_s);
    Ok(Report {
        scenario: "signals".into(),
        rate_per_s: args.rate,
        duration_s: args.duration,
        users: args.users,
        events_sent: total,
        notifications_expected: expected,
        notifications_seen: count,
        republished_dropped,
        throughput_per_s: throughput,
        latency_to_subject: Percentiles::of(&hist),
        latency_to_telegram,
        ceiling,
        ratio_to_ceiling: ratio,
        max_rss_mb: rss_max,
    })
}

fn sample_rss(pids: &[u32], max: Option<f64>) -> Option<f64> {
    if pids.is_empty() {
        return max;
    }
    let total: f64 = pids.iter().filter_map(|p| rss_mb(*p)).sum();
    Some(max.unwrap_or(0.0).max(total))
}

async fn telegram_latency(url: &str, send_ts: &HashMap<String, u64>) -> anyhow::Result<Percentiles> {
    let deliveries: Vec<crate::emulator::Delivery> = reqwest::get(format!("{url}/control/deliveries")).await?.json().await?;
    let mut h = histogram();
    for d in deliveries {
        // the notification shows the token as <code>TOKEN</code>
        let token = d.text.split("<code>").nth(1).and_then(|t| t.split("</code>").next());
        if let Some(ts) = token.and_then(|t| send_ts.get(t)) {
            let _ = h.record((d.at_ms.saturating_sub(*ts) * 1000).max(1));
        }
    }
    Ok(Percentiles::of(&h))
}

/// Publishes `n` messages of `size` bytes to a scratch stream and consumes them back
/// with a durable pull consumer and explicit acks: the most this JetStream can do for
/// one hop, with no processing.
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
