//! The operators' desk: `/admin stats`, `/admin status` and `/admin broadcast`,
//! answered by the core for every product running.
//!
//! ```text
//! herald.cmd.desk.<admin> [COMMANDS] ──> admin_desk ──> herald.out.reply.<admin>
//!   /admin stats   each running product's own section (Product::stats), in registry order
//!   /admin status  processes (heartbeats), NATS and Redis health, every consumer's
//!                  pending and oldest unacknowledged message, dead letters
//!   /admin broadcast  see [`super::broadcast`]: drafts, Send/Cancel, status, cancel
//! herald.cmd.desk.report.<broadcast> ──> admin_desk ──> the copy's outcome, counted once
//! ```
//!
//! Stats and status only read (in `decide`); a broadcast's changes are the desk's apply
//! step, each found made on a redelivery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_runtime::processes::Heartbeat;
use herald_runtime::{Applied, Decision, Effect, MsgMeta, Output, Stage, StageConfig, StageError};
use herald_schemas::{escape_html, subjects, Content, DeliveryReport, OutboundMessage, Outcome, Priority, RoutedUpdate};

use super::broadcast::{self, Ask, Broadcasts, Job, State};
use redis::aio::ConnectionManager;

use super::product::{Product, StatsEnv};
use super::reply::Reply;

/// The `/admin` subcommands the desk answers.
pub const SUBCOMMANDS: &[&str] = &["stats", "status", "broadcast"];

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
    pub broadcasts: Broadcasts,
}

/// What the desk takes: a routed update, or a broadcast copy's delivery report.
#[derive(Debug)]
pub enum DeskInput {
    Routed(Box<RoutedUpdate>),
    /// A report of broadcast `id`'s copy.
    Report {
        id: i64,
        report: DeliveryReport,
    },
}

/// A broadcast change, run as the desk's apply step.
#[derive(Debug)]
pub enum DeskChange {
    /// Stores the draft and its recipients, then shows the preview and the buttons.
    Draft { job: Job, recipients: Vec<i64>, update_id: i64 },
    /// Send pressed on the confirmation `message` of draft `id`.
    Send { id: i64, chat: i64, message: i32 },
    /// Cancel pressed on the confirmation of draft `id`.
    Discard { id: i64, chat: i64, message: i32 },
    /// `/admin broadcast cancel [ID]`.
    Cancel { id: Option<i64>, chat: i64, update_id: i64 },
    /// A copy answered.
    Outcome { id: i64, chat: i64, outcome: &'static str },
    /// A part of an album an admin sent (to broadcast it whole later).
    AlbumPart { chat: i64, group: String, message: i32 },
}

impl Desk {
    /// `/admin stats`: a heading, then each product's section (a product whose section
    /// fails says so in one line; the others still answer).
    pub async fn stats(&self) -> String {
        let env = self.env();
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

/// A message to the admin on the interactive lane, under `key`.
fn to_admin(key: String, chat: i64, content: Content) -> Output {
    let m = OutboundMessage::new(key.clone(), chat, content, Priority::Reply, herald_schemas::now_ms());
    Output {
        subject: subjects::reply(chat),
        msg_id: key,
        payload: herald_schemas::encode(&m),
    }
}

impl Desk {
    fn env(&self) -> StatsEnv {
        StatsEnv {
            js: self.js.clone(),
            redis: self.redis.clone(),
            now_ms: herald_schemas::now_ms(),
        }
    }

    /// `/admin broadcast …`: a draft (as a reply), the status, or a cancel.
    async fn broadcast(&self, routed: &RoutedUpdate, chat_id: i64, args: &str) -> Result<Decision<(), DeskChange>, StageError> {
        let reply = |text: String| Decision::Forward {
            outputs: vec![Reply::plain(fit(text)).output(routed.update_id, chat_id, None)],
            commit: (),
        };
        let segment = match broadcast::parse(args) {
            Ask::Status => return Ok(reply(self.broadcast_status().await?)),
            Ask::Cancel { id } => {
                return Ok(Decision::Apply(DeskChange::Cancel {
                    id,
                    chat: chat_id,
                    update_id: routed.update_id,
                }))
            }
            Ask::Draft { segment } => segment,
        };
        let original = routed.update.pointer("/message/reply_to_message");
        let Some((original, message)) = original.and_then(|o| Some((o, o.get("message_id")?.as_i64()?))) else {
            return Ok(reply(broadcast::usage(&self.products)));
        };
        let message_ids = match original.get("media_group_id").and_then(|g| g.as_str()) {
            Some(group) => {
                let mut parts = self.broadcasts.album(chat_id, group).await?;
                if !parts.contains(&(message as i32)) {
                    parts.push(message as i32);
                    parts.sort_unstable();
                }
                parts
            }
            None => vec![message as i32],
        };
        let env = self.env();
        let Some(members) = broadcast::members(&self.products, &segment, &env).await? else {
            return Ok(reply(format!(
                "No segment {}.\n{}",
                escape_html(&segment),
                broadcast::usage(&self.products)
            )));
        };
        let recipients = broadcast::recipients(&env, &members).await?;
        if recipients.is_empty() {
            return Ok(reply(format!("Nobody to send to in segment {}.", escape_html(&segment))));
        }
        let job = Job {
            id: routed.update_id,
            admin_chat: chat_id,
            from_chat: chat_id,
            message_ids,
            segment,
            total: recipients.len() as u64,
            ..Job::default()
        };
        Ok(Decision::Apply(DeskChange::Draft {
            job,
            recipients,
            update_id: routed.update_id,
        }))
    }

    /// `/admin broadcast status`: the last five broadcasts' progress.
    async fn broadcast_status(&self) -> anyhow::Result<String> {
        let jobs = self.broadcasts.jobs().await?;
        if jobs.is_empty() {
            return Ok("No broadcasts yet.".into());
        }
        let mut lines = Vec::new();
        for job in jobs.iter().take(5) {
            let p = self.broadcasts.progress(job.id).await?;
            lines.push(broadcast::progress_text(job, &p, herald_schemas::now_ms()));
        }
        Ok(lines.join("\n"))
    }

    /// A broadcast button from an admin: Send or Cancel of a draft.
    fn button(routed: &RoutedUpdate, chat: i64) -> Option<DeskChange> {
        let data = routed.callback_data.as_deref()?.strip_prefix(broadcast::CALLBACK_PREFIX)?;
        let message = routed.message_id?;
        let (what, id) = data.split_once(':')?;
        let id = id.parse().ok()?;
        match what {
            "go" => Some(DeskChange::Send { id, chat, message }),
            "no" => Some(DeskChange::Discard { id, chat, message }),
            _ => None,
        }
    }

    /// Moves draft `id` of `chat` to `to` (Send or Cancel pressed); the job after and
    /// whether this press moved it.
    async fn press(&self, id: i64, chat: i64, to: State, now: u64, message: i32) -> anyhow::Result<Option<(Job, bool)>> {
        self.broadcasts
            .transition(id, |j| {
                let moves = j.state == State::Draft && j.admin_chat == chat;
                if moves {
                    j.state = to;
                    if to == State::Sending {
                        (j.progress_message, j.started_ms) = (Some(message), Some(now));
                    }
                }
                moves
            })
            .await
    }

    async fn change(&self, change: DeskChange) -> anyhow::Result<(Vec<Output>, Effect)> {
        let b = &self.broadcasts;
        let made = |moved: bool| if moved { Effect::Made } else { Effect::AlreadyMade };
        let now = herald_schemas::now_ms();
        Ok(match change {
            DeskChange::Draft {
                job,
                recipients,
                update_id,
            } => {
                let created = b.create(&job, &recipients).await?;
                let preview = to_admin(
                    format!("bc.{}.preview", job.id),
                    job.admin_chat,
                    broadcast::copy(job.from_chat, &job.message_ids),
                );
                let (text, buttons) = broadcast::confirmation(&job);
                let confirm = Reply::with_buttons(text, buttons).output(update_id, job.admin_chat, None);
                (vec![preview, confirm], made(created))
            }
            DeskChange::Send { id, chat, message } | DeskChange::Discard { id, chat, message } => {
                let sending = matches!(change, DeskChange::Send { .. });
                let to = if sending { State::Sending } else { State::Cancelled };
                let Some((job, moved)) = self.press(id, chat, to, now, message).await? else {
                    return Ok((Vec::new(), Effect::NotMade));
                };
                let text = match (sending, job.state) {
                    (_, State::Sending) => broadcast::progress_text(&job, &b.progress(id).await?, now),
                    (false, State::Cancelled) => format!("📣 Broadcast {id} cancelled; nothing was sent."),
                    _ => format!("📣 Broadcast {id} was cancelled."),
                };
                let key = format!("bc.{id}.{}", if sending { "started" } else { "discarded" });
                (
                    vec![to_admin(key, chat, Content::edit_text(message, text, Vec::new()))],
                    made(moved),
                )
            }
            DeskChange::Cancel { id, chat, update_id } => {
                let targets: Vec<i64> = match id {
                    Some(id) => vec![id],
                    None => b
                        .jobs()
                        .await?
                        .into_iter()
                        .filter(|j| j.state == State::Sending)
                        .map(|j| j.id)
                        .collect(),
                };
                let (mut lines, mut any) = (Vec::new(), false);
                for id in targets {
                    let stopped = b
                        .transition(id, |j| {
                            let stop = matches!(j.state, State::Sending | State::Draft) && j.cursor < j.total;
                            if stop {
                                j.state = State::Cancelled;
                            }
                            stop
                        })
                        .await?;
                    if let Some((job, moved)) = stopped {
                        any |= moved;
                        lines.push(broadcast::progress_text(&job, &b.progress(id).await?, now));
                    }
                }
                let text = match lines.is_empty() {
                    true => "No broadcast is being sent.".to_string(),
                    false => lines.join("\n"),
                };
                (vec![Reply::plain(text).output(update_id, chat, None)], made(any))
            }
            DeskChange::Outcome { id, chat, outcome } => (Vec::new(), made(b.record(id, chat, outcome).await?)),
            DeskChange::AlbumPart { chat, group, message } => {
                b.add_album_part(chat, &group, message).await?;
                (Vec::new(), Effect::Made)
            }
        })
    }
}

impl Stage for Desk {
    const NAME: &'static str = "admin_desk";
    type Input = DeskInput;
    type Commit = ();
    type Effect = DeskChange;

    /// A delivery report (it has an `outcome`) or a routed update.
    fn decode(&self, payload: &[u8]) -> Result<DeskInput, String> {
        let value: serde_json::Value = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
        if value.get("outcome").is_some() {
            let report: DeliveryReport = herald_schemas::decode(payload).map_err(|e| e.to_string())?;
            let id = report
                .idempotency_key
                .strip_prefix("bc.")
                .and_then(|k| k.split('.').next())
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| format!("a report of {:?}, not a broadcast copy", report.idempotency_key))?;
            return Ok(DeskInput::Report { id, report });
        }
        herald_schemas::decode(payload)
            .map(|r| DeskInput::Routed(Box::new(r)))
            .map_err(|e| e.to_string())
    }

    async fn decide(&self, input: DeskInput, _meta: &MsgMeta) -> Result<Decision<(), DeskChange>, StageError> {
        let routed = match input {
            DeskInput::Report { id, report } => {
                let outcome = match report.outcome {
                    Outcome::Sent { .. } => "sent",
                    Outcome::Blocked => "blocked",
                    Outcome::Rejected { .. } => "failed",
                };
                return Ok(Decision::Apply(DeskChange::Outcome {
                    id,
                    chat: report.chat_id,
                    outcome,
                }));
            }
            DeskInput::Routed(r) => r,
        };
        let Some(chat_id) = routed.chat_id.filter(|_| routed.admin) else {
            return Ok(Decision::Drop {
                reason: "not_from_an_admin",
            });
        };
        if let Some(change) = Self::button(&routed, chat_id) {
            return Ok(Decision::Apply(change));
        }
        let Some(command) = routed.command.as_deref() else {
            // an admin's album part, remembered so a reply to any part sends it whole
            let group = routed.update.pointer("/message/media_group_id").and_then(|g| g.as_str());
            let message = routed.update.pointer("/message/message_id").and_then(|m| m.as_i64());
            return Ok(match (group, message) {
                (Some(group), Some(message)) => Decision::Apply(DeskChange::AlbumPart {
                    chat: chat_id,
                    group: group.to_string(),
                    message: message as i32,
                }),
                _ => Decision::Drop {
                    reason: "not_a_desk_command",
                },
            });
        };
        // `/admin SUB ARGS`
        let rest = command.strip_prefix("/admin").unwrap_or(command).trim_start();
        let (sub, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let text = match sub {
            "stats" => self.stats().await,
            "status" => self.status().await,
            "broadcast" => return self.broadcast(&routed, chat_id, args).await,
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

    async fn apply(&self, change: DeskChange, _meta: &MsgMeta) -> Result<Applied<()>, StageError> {
        let (outputs, effect) = self.change(change).await?;
        Ok(Applied {
            decision: Decision::Forward { outputs, commit: () },
            effect,
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
