//! Outbound: OUTBOUND stream -> Telegram, exactly once per idempotency key as far as
//! Telegram allows.
//!
//! Per message: skip if its idempotency key is in the `herald_delivered` KV bucket
//! (a redelivery of something Telegram already accepted) -> wait for the limits -> send
//! -> record the key -> ack. A crash between Telegram's answer and the record is the
//! only window in which a message can be sent twice (Telegram has no idempotency key).

pub mod limits;
pub mod qr;
mod send;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, kv, AckKind};
use futures::StreamExt;
use herald_pipeline::runtime::{dead_letter, DeadLetter};
use herald_schemas::{subjects, OutboundMessage, Priority};
use tokio_util::sync::CancellationToken;

use limits::Limits;
pub use send::{classify, SendFailure};

/// Everything the sender needs.
#[derive(Clone)]
pub struct Outbound {
    pub bot: teloxide::Bot,
    pub js: jetstream::Context,
    pub delivered: kv::Store,
    pub users: kv::Store,
    pub limits: Arc<Limits>,
    pub paid_broadcast: bool,
    pub max_in_flight: usize,
}

/// Redelivery delay of a message whose bot died before acking it.
const ACK_WAIT: Duration = Duration::from_secs(15);

/// Attempts at a 5xx or network failure within one delivery before the message is
/// handed back to the stream (which redelivers it later).
const SEND_ATTEMPTS: u32 = 4;

impl Outbound {
    /// Consumes replies and broadcasts until `shutdown`, then finishes in-flight sends.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let replies = self.consume("bot_replies", subjects::REPLY_ALL, 64, shutdown.clone());
        let broadcasts = self.consume("bot_notify", subjects::NOTIFY_ALL, self.max_in_flight, shutdown);
        let (a, b) = tokio::join!(replies, broadcasts);
        a.and(b)
    }

    async fn consume(&self, durable: &str, filter: &str, in_flight: usize, shutdown: CancellationToken) -> anyhow::Result<()> {
        let stream = self.js.get_stream(subjects::OUTBOUND_STREAM).await?;
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(
                durable,
                pull::Config {
                    durable_name: Some(durable.into()),
                    filter_subject: filter.into(),
                    ack_policy: AckPolicy::Explicit,
                    // short, so a crashed bot's unacked messages come back quickly; a
                    // live bot extends it with progress acks while a message waits
                    ack_wait: ACK_WAIT,
                    max_ack_pending: (in_flight * 2) as i64,
                    ..Default::default()
                },
            )
            .await?;
        let messages = consumer.stream().max_messages_per_batch(in_flight).messages().await?;
        tracing::info!(durable, "outbound consumer started");
        messages
            .take_until(shutdown.cancelled_owned())
            .for_each_concurrent(in_flight, |m| async move {
                match m {
                    Ok(m) => self.deliver(m).await,
                    Err(e) => tracing::warn!(error = %e, "outbound consumer error"),
                }
            })
            .await;
        Ok(())
    }

    async fn deliver(&self, msg: jetstream::Message) {
        let ack = match herald_schemas::decode::<OutboundMessage>(&msg.payload) {
            Ok(out) => {
                // waiting on limits or a 429 hold can outlast ACK_WAIT: tell the server
                // the message is still being worked on
                let work = self.deliver_one(&out);
                tokio::pin!(work);
                let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + ACK_WAIT / 3, ACK_WAIT / 3);
                loop {
                    tokio::select! {
                        ack = &mut work => break ack,
                        _ = progress.tick() => { let _ = msg.ack_with(AckKind::Progress).await; }
                    }
                }
            }
            Err(e) => self.dead_letter(&msg, &e.to_string()).await,
        };
        if let Err(e) = msg.ack_with(ack).await {
            tracing::warn!(error = %e, "outbound ack failed; the message will be redelivered");
        }
    }

    async fn deliver_one(&self, out: &OutboundMessage) -> AckKind {
        let key = subjects::kv_key(&out.idempotency_key);
        match self.delivered.get(&key).await {
            Ok(Some(_)) => {
                metrics::counter!("herald_bot_redelivery_suppressed_total").increment(1);
                return AckKind::Ack;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "delivered-key lookup failed; retrying later");
                return AckKind::Nak(Some(Duration::from_secs(1)));
            }
        }
        let mut attempt = 0;
        loop {
            self.limits.acquire(out.chat_id, out.priority).await;
            let result = send::send(&self.bot, out, self.paid_broadcast && out.priority == Priority::Broadcast).await;
            match result.map_err(classify) {
                Ok(message_id) => {
                    if let Err(e) = self.delivered.put(&key, message_id.to_string().into()).await {
                        // Telegram has it; a redelivery could repeat it, so keep trying briefly.
                        tracing::error!(error = %e, "recording a delivered key failed");
                    }
                    record_sent(out);
                    return AckKind::Ack;
                }
                Err(SendFailure::RetryAfter(wait)) => {
                    metrics::counter!("herald_bot_429_total").increment(1);
                    tracing::info!(retry_after_secs = wait.as_secs(), "429 from Telegram; holding that chat");
                    self.limits.hold(out.chat_id, wait);
                }
                Err(SendFailure::Transient(e)) if attempt + 1 < SEND_ATTEMPTS => {
                    attempt += 1;
                    metrics::counter!("herald_bot_send_retries_total").increment(1);
                    tracing::warn!(error = %e, attempt, "send failed, retrying");
                    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
                }
                Err(SendFailure::Transient(e)) => {
                    tracing::warn!(error = %e, "send failed repeatedly; the stream will redeliver");
                    return AckKind::Nak(Some(Duration::from_secs(5)));
                }
                Err(SendFailure::Blocked) => {
                    metrics::counter!("herald_bot_blocked_total").increment(1);
                    if out.chat_id > 0 {
                        if let Err(e) = herald_pipeline::users_store::set_active(&self.users, out.chat_id, false).await {
                            tracing::warn!(error = %e, "marking a blocked user inactive failed");
                            return AckKind::Nak(Some(Duration::from_secs(1)));
                        }
                    }
                    return AckKind::Ack;
                }
                Err(SendFailure::Rejected(reason)) => {
                    let payload = herald_schemas::encode(out);
                    let letter = DeadLetter {
                        stage: "bot",
                        error: &reason,
                        original_subject: "herald.out",
                        original_sequence: None,
                        payload: &payload,
                    };
                    return match dead_letter(&self.js, letter).await {
                        Ok(()) => AckKind::Term,
                        Err(_) => AckKind::Nak(Some(Duration::from_secs(5))),
                    };
                }
            }
        }
    }

    async fn dead_letter(&self, msg: &jetstream::Message, reason: &str) -> AckKind {
        let seq = msg.info().ok().map(|i| i.stream_sequence);
        let letter = DeadLetter {
            stage: "bot",
            error: reason,
            original_subject: msg.subject.as_str(),
            original_sequence: seq,
            payload: &msg.payload,
        };
        match dead_letter(&self.js, letter).await {
            Ok(()) => AckKind::Term,
            Err(_) => AckKind::Nak(Some(Duration::from_secs(5))),
        }
    }
}

fn record_sent(out: &OutboundMessage) {
    let kind = match out.priority {
        Priority::Reply => "reply",
        Priority::Broadcast => "broadcast",
    };
    metrics::counter!("herald_bot_sent_total", "kind" => kind).increment(1);
    let latency = herald_schemas::now_ms().saturating_sub(out.origin_ts_ms) as f64 / 1000.0;
    metrics::histogram!("herald_bot_end_to_end_seconds", "kind" => kind).record(latency);
}
