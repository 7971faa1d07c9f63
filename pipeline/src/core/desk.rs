//! The operators' desk: `/admin stats` and `/admin status`, answered by the core for
//! every product running.
//!
//! ```text
//! herald.cmd.desk.<admin> [COMMANDS] ──> admin_desk ──> herald.out.reply.<admin>
//!   /admin stats   each running product's own section (Product::stats), in registry order
//!   /admin status  processes (heartbeats), NATS and Redis health, every consumer's
//!                  pending and oldest unacknowledged message, dead letters
//! ```
//!
//! The desk only reads: its `decide` builds the answer, nothing is written.

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_runtime::processes::Heartbeat;
use herald_runtime::{Decision, MsgMeta, Stage, StageConfig, StageError};
use herald_schemas::{escape_html, subjects, RoutedUpdate};
use redis::aio::ConnectionManager;

use super::product::{Product, StatsEnv};
use super::reply::Reply;

/// The `/admin` subcommands the desk answers.
pub const SUBCOMMANDS: &[&str] = &["stats", "status"];

/// The routed name of the desk: `herald.cmd.desk.<admin>`.
pub const ROUTE: &str = "desk";

/// Telegram's longest message text is 4096 characters; the answer is cut before, at a
/// line's end.
const MAX_TEXT: usize = 4000;

/// The desk's consumer: COMMANDS' `herald.cmd.desk.>`.
pub fn consumer() -> StageConfig {
    StageConfig::new(subjects::COMMANDS_STREAM, "admin_desk", vec![subjects::routed_all(ROUTE)])
}

/// The stage.
pub struct Desk {
    /// The products running in this deployment, in registry order.
    pub products: Vec<Arc<dyn Product>>,
    pub js: herald_runtime::Js,
    /// Redis, for the products' sections that live there and for the status' health
    /// line; `None` when this deployment has no Redis.
    pub redis: Option<ConnectionManager>,
    /// The consumers whose backlog `/admin status` shows: the router's, the bot's, the
    /// desk's and every running product's.
    pub consumers: Vec<StageConfig>,
}

impl Desk {
    /// `/admin stats`: a heading, then each product's section (a product whose section
    /// fails says so in one line; the others still answer).
    pub async fn stats(&self) -> String {
        let env = StatsEnv {
            js: self.js.clone(),
            redis: self.redis.clone(),
            now_ms: herald_schemas::now_ms(),
        };
        let mut text = String::from("📊 <b>Stats</b> (today = since 00:00 UTC)\n\n");
        text.push_str(&match self.users(env.today_ms()).await {
            Ok(line) => line,
            Err(e) => format!("<b>Users</b>: unavailable ({})", escape_html(&format!("{e:#}"))),
        });
        for p in &self.products {
            match p.stats(&env).await {
                Ok(Some(section)) => text.push_str(&format!("\n\n{section}")),
                Ok(None) => {}
                Err(e) => text.push_str(&format!(
                    "\n\n<b>{}</b>: unavailable ({})",
                    p.name(),
                    escape_html(&format!("{e:#}"))
                )),
            }
        }
        text
    }

    /// The core's line: users, new today, locked, inactive (blocked the bot).
    async fn users(&self, today_ms: u64) -> anyhow::Result<String> {
        let all = herald_core::users::all(&self.js.get_key_value(subjects::USERS_BUCKET).await?).await?;
        Ok(format!(
            "<b>Users</b>\nusers: {} (new today {}, {} locked, {} inactive)",
            all.len(),
            all.iter().filter(|u| u.created_at_ms >= today_ms).count(),
            all.iter().filter(|u| u.locked).count(),
            all.iter().filter(|u| !u.active).count()
        ))
    }

    /// `/admin status`: processes, servers, consumers, dead letters.
    pub async fn status(&self) -> String {
        let mut text = String::from("🩺 <b>Status</b>");
        text.push_str(&processes(herald_runtime::processes::alive(&self.js).await));
        text.push_str(&self.servers().await);
        text.push_str(&self.backlog().await);
        text.push_str(&dead_letters(&self.js).await);
        text
    }

    async fn servers(&self) -> String {
        let mut out = String::from("\n\n<b>Servers</b>");
        for (class, ctx) in self.js.servers() {
            let client = ctx.client();
            let started = Instant::now();
            let flushed = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
            let line = match (client.connection_state(), flushed) {
                (async_nats::connection::State::Connected, Ok(Ok(()))) => {
                    format!("ok, {} ms round trip", millis(started.elapsed()))
                }
                (state, _) => format!("<b>DOWN</b> ({state:?})"),
            };
            out.push_str(&format!("\nNATS {}: {line}", class.as_str()));
        }
        out.push_str(&format!("\nRedis: {}", self.redis_health().await));
        out
    }

    async fn redis_health(&self) -> String {
        let Some(redis) = &self.redis else {
            return "not used".into();
        };
        let started = Instant::now();
        let pong = tokio::time::timeout(Duration::from_secs(2), redis::cmd("PING").query_async::<String>(&mut redis.clone())).await;
        match pong {
            Ok(Ok(_)) => format!("ok, {} ms round trip", millis(started.elapsed())),
            Ok(Err(e)) => format!("<b>DOWN</b> ({})", escape_html(&e.to_string())),
            Err(_) => "<b>DOWN</b> (no answer in 2 s)".into(),
        }
    }

    async fn backlog(&self) -> String {
        let mut out = String::from("\n\n<b>Consumers</b> (pending · unacked · oldest unacked)");
        for c in &self.consumers {
            out.push_str(&format!("\n{}: {}", c.durable, backlog_of(&self.js, c).await));
        }
        out
    }
}

/// One consumer's backlog line: pending (not yet delivered), unacknowledged (delivered,
/// not acked) and the age of the oldest message not acknowledged (the first after the
/// ack floor that matches the consumer's filter).
async fn backlog_of(js: &herald_runtime::Js, c: &StageConfig) -> String {
    let Ok(stream) = js.get_stream(&c.stream).await else {
        return "stream missing".into();
    };
    let Ok(info) = stream.consumer_info(&c.durable).await else {
        return "not created yet".into();
    };
    let mut line = format!("{} · {}", info.num_pending, info.num_ack_pending);
    if info.num_pending + info.num_ack_pending as u64 > 0 {
        let filter = c.filter_subjects.first().cloned().unwrap_or_else(|| ">".into());
        let oldest = stream
            .raw_message_builder()
            .sequence(info.ack_floor.stream_sequence + 1)
            .next_by_subject(filter)
            .send()
            .await;
        if let Ok(m) = oldest {
            let age_ms = herald_schemas::now_ms().saturating_sub((m.time.unix_timestamp_nanos() / 1_000_000) as u64);
            line.push_str(&format!(" · {}", duration(age_ms)));
        }
    }
    line
}

fn processes(alive: anyhow::Result<Vec<Heartbeat>>) -> String {
    let alive = match alive {
        Ok(a) => a,
        Err(e) => return format!("\n\n<b>Processes</b>: unreadable ({})", escape_html(&format!("{e:#}"))),
    };
    let mut out = format!("\n\n<b>Processes</b> ({} alive)", alive.len());
    for p in alive {
        let ready = match (p.ready, p.missing.is_empty()) {
            (true, _) => "ready".to_string(),
            (false, true) => "<b>not ready</b>".to_string(),
            (false, false) => format!("<b>not ready</b>: missing {}", escape_html(&p.missing.join(", "))),
        };
        out.push_str(&format!(
            "\n{} {}/{}: up {}, CPU {:.0}% ({:.0} s), {} MiB, {} threads, {ready}",
            escape_html(&p.role),
            escape_html(&p.host),
            p.pid,
            duration(p.uptime_ms()),
            p.cpu_percent,
            p.cpu_seconds,
            p.rss_bytes >> 20,
            p.threads
        ));
    }
    out
}

/// The DLQ's count and its last dead letter's stage and reason.
async fn dead_letters(js: &herald_runtime::Js) -> String {
    let Ok(mut stream) = js.get_stream(subjects::DLQ_STREAM).await else {
        return "\n\n<b>Dead letters</b>: stream missing".into();
    };
    let Ok(info) = stream.info().await.map(|i| i.state.clone()) else {
        return "\n\n<b>Dead letters</b>: unreadable".into();
    };
    let mut out = format!("\n\n<b>Dead letters</b>: {}", info.messages);
    if info.messages > 0 {
        if let Ok(last) = stream.get_raw_message(info.last_sequence).await {
            let header = |name: &str| last.headers.get(name).map(|v| v.to_string()).unwrap_or_default();
            let age_ms = herald_schemas::now_ms().saturating_sub((last.time.unix_timestamp_nanos() / 1_000_000) as u64);
            out.push_str(&format!(
                "; last {} ago from {}: {}",
                duration(age_ms),
                escape_html(&header(subjects::HEADER_STAGE)),
                escape_html(&header(subjects::HEADER_ERROR))
            ));
        }
    }
    out
}

fn millis(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// `3 s`, `4 min`, `2 h 5 min`, `3 d 4 h`.
///
/// ```
/// use herald_pipeline::core::desk::duration;
/// assert_eq!(duration(3_400), "3 s");
/// assert_eq!(duration(7_500_000), "2 h 5 min");
/// assert_eq!(duration(3 * 86_400_000 + 4 * 3_600_000), "3 d 4 h");
/// ```
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `text` cut to Telegram's limit at a line's end, saying so.
fn fit(text: String) -> String {
    if text.chars().count() <= MAX_TEXT {
        return text;
    }
    let cut: String = text.chars().take(MAX_TEXT).collect();
    let end = cut.rfind('\n').unwrap_or(cut.len());
    format!("{}\n… (cut at Telegram's message limit)", &cut[..end])
}

impl Stage for Desk {
    const NAME: &'static str = "admin_desk";
    type Input = RoutedUpdate;
    type Commit = ();
    type Effect = std::convert::Infallible;

    fn decode(&self, payload: &[u8]) -> Result<RoutedUpdate, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, routed: RoutedUpdate, _meta: &MsgMeta) -> Result<Decision<()>, StageError> {
        let Some(chat_id) = routed.chat_id.filter(|_| routed.admin) else {
            return Ok(Decision::Drop {
                reason: "not_from_an_admin",
            });
        };
        let sub = routed
            .command
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .nth(1)
            .unwrap_or_default();
        let text = match sub {
            "stats" => self.stats().await,
            "status" => self.status().await,
            _ => {
                return Ok(Decision::Drop {
                    reason: "not_a_desk_command",
                })
            }
        };
        Ok(Decision::Forward {
            outputs: vec![Reply::plain(fit(text)).output(routed.update_id, chat_id, None)],
            commit: (),
        })
    }

    async fn commit(&self, _: ()) -> Result<(), StageError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_answer_is_cut_at_a_line_within_telegram_s_limit() {
        let long: String = (0..500).map(|i| format!("line {i} ✓\n")).collect();
        let cut = fit(long.clone());
        assert!(cut.chars().count() <= 4096, "{}", cut.chars().count());
        assert!(cut.ends_with("(cut at Telegram's message limit)"));
        assert!(long.starts_with(cut.lines().next().unwrap()));
        assert_eq!(fit("short".into()), "short");
    }

    #[test]
    fn a_process_line_escapes_what_it_did_not_write() {
        let hb = Heartbeat {
            role: "bot".into(),
            host: "<b>h</b>".into(),
            pid: 7,
            started_ms: 0,
            at_ms: 90_000,
            cpu_seconds: 1.0,
            cpu_percent: 12.0,
            rss_bytes: 64 << 20,
            threads: 9,
            ready: false,
            missing: vec!["nats money server".into()],
        };
        let text = processes(Ok(vec![hb]));
        assert!(
            text.contains("bot &lt;b&gt;h&lt;/b&gt;/7: up 1 min, CPU 12% (1 s), 64 MiB, 9 threads"),
            "{text}"
        );
        assert!(text.contains("missing nats money server"), "{text}");
    }
}
