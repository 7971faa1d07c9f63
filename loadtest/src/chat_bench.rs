//! `loadtest bench --scenario chat`: the random chat under load, on a fresh local stack
//! (nats-server, redis-server, `pipeline` and `bot` processes, the Bot API emulator).
//!
//! 1. Pairing: `--users` (10,000) users send `/chat` at 500/s; for each pair, the time
//!    from the `/chat` that made it (pushed to the emulator) to its sender's "Partner
//!    found" accepted by the emulator. (The other partner, told "Searching…" a moment
//!    before in this run, gets theirs after Telegram's one message per second per chat.)
//! 2. Relay: the pairs talk at `rate` (1,000) messages/s for `secs` (20) s, round-robin
//!    over the pairs and alternating direction, as conversations do (each partner gets
//!    a message every 10 s, well inside Telegram's one per second per chat); for each
//!    message, the time from its push to the emulator's acceptance of its copy in the
//!    partner's chat. Copies are counted per message: none may be missing or doubled.
//! 3. The RSS of `pipeline` plus `bot`, sampled every 500 ms, and the raw JetStream
//!    ceiling for a message of the relay's size.
//!
//! Telegram allows a bot about 30 messages/s (1,000 with paid broadcasts): the run
//! raises the emulator's and the bot's global limits to measure Herald's side.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::demo::chat::from_user;
use crate::emulator::Delivery;
use crate::report::{histogram, rss_mb, Ceiling, Percentiles};
use crate::stack::{private_text, Stack, StackOptions};

/// What the chat scenario measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ChatReport {
    pub users: usize,
    pub pairs: usize,
    /// `/chat` that made a pair -> its sender told "Partner found".
    pub pairing: Percentiles,
    pub rate_per_s: u64,
    pub duration_s: u64,
    pub messages_sent: u64,
    pub messages_relayed: u64,
    /// Messages copied more than once (must be 0).
    pub relayed_twice: u64,
    pub relay_throughput_per_s: f64,
    /// Message pushed by the sender -> its copy accepted in the partner's chat.
    pub relay: Percentiles,
    pub max_rss_mb: Option<f64>,
    pub ceiling: Option<Ceiling>,
}

impl std::fmt::Display for ChatReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "scenario chat: {} users in {} pairs", self.users, self.pairs)?;
        writeln!(f, "  pairing (/chat -> told):       {}", self.pairing)?;
        writeln!(
            f,
            "  relay: {} messages at {}/s for {} s: {} relayed, {} twice, {:.0}/s",
            self.messages_sent, self.rate_per_s, self.duration_s, self.messages_relayed, self.relayed_twice, self.relay_throughput_per_s
        )?;
        writeln!(f, "  sender -> partner:             {}", self.relay)?;
        if let Some(m) = self.max_rss_mb {
            writeln!(f, "  max RSS pipeline + bot:        {m:.1} MB")?;
        }
        if let Some(c) = &self.ceiling {
            writeln!(
                f,
                "  raw JetStream ceiling:         {:.0} msg/s publish+consume ({} msgs of {} B)",
                c.publish_and_consume_per_s, c.messages, c.message_bytes
            )?;
        }
        Ok(())
    }
}

/// Reads the emulator's deliveries as they come.
struct Reader {
    seen: usize,
}

impl Reader {
    fn next(&mut self, stack: &Stack) -> Vec<Delivery> {
        let d = stack.emulator.deliveries_from(self.seen);
        self.seen += d.len();
        d
    }
}

/// Runs the scenario.
///
/// Errors: the stack did not start, or pairing did not finish within 2 minutes.
pub async fn run(users: usize, rate: u64, secs: u64) -> anyhow::Result<ChatReport> {
    // every product runs (signals idle): the deployment a bot would have
    let opts = StackOptions::unthrottled(Vec::new());
    let stack = Stack::start(opts).await?;
    let js = stack.jetstream().await?;
    crate::run::seed_users(&js, users, 0).await?;
    let pids: Vec<u32> = [stack.pipeline.pid(), stack.bot.pid()].into_iter().flatten().collect();
    let mut reader = Reader {
        seen: stack.emulator.deliveries().len(),
    };

    // 1. pairing
    let mut pushed: HashMap<i64, u64> = HashMap::new();
    let mut told: HashMap<i64, u64> = HashMap::new();
    let mut searching: HashSet<i64> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for chunk in (1..=users as i64).collect::<Vec<_>>().chunks(5) {
        tick.tick().await;
        for u in chunk {
            stack.emulator.push_update(private_text(*u, "/chat"));
            pushed.insert(*u, herald_schemas::now_ms());
        }
        collect_told(&mut reader, &stack, &mut told, &mut searching);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while told.len() < users / 2 * 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        collect_told(&mut reader, &stack, &mut told, &mut searching);
    }
    let pairs = partners(&stack, users).await?;
    let mut h = histogram();
    for (a, b) in &pairs {
        // the later /chat made the pair; the earlier user was told "Searching…" moments
        // before, so their notice waits out Telegram's one message per second per chat
        // (the earlier one was told "Searching…")
        let later = if searching.contains(a) { b } else { a };
        if let Some(t) = told.get(later) {
            h.record(t.saturating_sub(pushed[later]).max(1) * 1000)?;
        }
    }
    let pairing = Percentiles::of(&h);

    // 2. relay, round-robin over the pairs
    let total = rate * secs;
    let mut sent: HashMap<(i64, i64), u64> = HashMap::with_capacity(total as usize);
    let mut copies: HashMap<(i64, i64), (u64, u32)> = HashMap::with_capacity(total as usize);
    let per_tick = (rate / 100).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut max_rss: Option<f64> = None;
    let mut last_sample = Instant::now();
    let started = Instant::now();
    for i in 0..total {
        if i.is_multiple_of(per_tick) {
            tick.tick().await;
            collect_copies(&mut reader, &stack, &mut copies);
        }
        let (a, b) = pairs[(i as usize) % pairs.len()];
        let from = if (i as usize / pairs.len()).is_multiple_of(2) { a } else { b };
        let (id, update) = from_user(from, serde_json::json!({ "text": format!("bench message {i}") }));
        stack.emulator.push_update(update);
        sent.insert((from, id), herald_schemas::now_ms());
        if last_sample.elapsed() > Duration::from_millis(500) {
            max_rss = higher(max_rss, &pids);
            last_sample = Instant::now();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent.keys().any(|k| !copies.contains_key(k)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        collect_copies(&mut reader, &stack, &mut copies);
        max_rss = higher(max_rss, &pids);
    }
    let elapsed = started.elapsed().as_secs_f64();
    // late doubles would show here
    tokio::time::sleep(Duration::from_secs(2)).await;
    collect_copies(&mut reader, &stack, &mut copies);
    let mut h = histogram();
    let mut relayed_twice = 0;
    for (key, at) in &sent {
        if let Some((copied_at, n)) = copies.get(key) {
            h.record((copied_at.saturating_sub(*at)).max(1) * 1000)?;
            relayed_twice += u64::from(*n > 1);
        }
    }
    let relay = Percentiles::of(&h);
    let ceiling = crate::run::ceiling(js.events(), 100_000, 300).await.ok();
    Ok(ChatReport {
        users,
        pairs: pairs.len(),
        pairing,
        rate_per_s: rate,
        duration_s: secs,
        messages_sent: total,
        messages_relayed: relay.count,
        relayed_twice,
        relay_throughput_per_s: relay.count as f64 / elapsed,
        relay,
        max_rss_mb: max_rss,
        ceiling,
    })
}

/// The larger of `max` and the summed RSS of `pids` now.
fn higher(max: Option<f64>, pids: &[u32]) -> Option<f64> {
    let now: Option<f64> = pids.iter().map(|p| rss_mb(*p)).sum();
    match (max, now) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// "Partner found" (when, per user) and "Searching…" (who) from the new deliveries.
fn collect_told(reader: &mut Reader, stack: &Stack, told: &mut HashMap<i64, u64>, searching: &mut HashSet<i64>) {
    for d in reader.next(stack) {
        if d.text.contains("Partner found") {
            told.entry(d.chat_id).or_insert(d.at_ms);
        } else if d.text.contains("Searching") {
            searching.insert(d.chat_id);
        }
    }
}

fn collect_copies(reader: &mut Reader, stack: &Stack, copies: &mut HashMap<(i64, i64), (u64, u32)>) {
    for d in reader.next(stack) {
        if let Some(source) = d.source {
            let e = copies.entry(source).or_insert((d.at_ms, 0));
            e.1 += 1;
        }
    }
}

/// The pairs, read from the chat's state in Redis (each once).
async fn partners(stack: &Stack, users: usize) -> anyhow::Result<Vec<(i64, i64)>> {
    let mut conn = redis::Client::open(stack.redis.url())?.get_multiplexed_async_connection().await?;
    let mut pairs = Vec::new();
    for u in 1..=users as i64 {
        let p: Option<i64> = redis::cmd("HGET")
            .arg(format!("herald:chat:st:{u}"))
            .arg("p")
            .query_async(&mut conn)
            .await?;
        if let Some(p) = p.filter(|p| *p > u) {
            pairs.push((u, p));
        }
    }
    anyhow::ensure!(!pairs.is_empty(), "nobody was paired");
    Ok(pairs)
}
