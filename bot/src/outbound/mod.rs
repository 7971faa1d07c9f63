//! Outbound: OUTBOUND stream -> Telegram, a stage on the shared runtime, so it has the
//! pipeline's pull, ack, retry, `max_deliver` and dead-letter handling.
//!
//! Two consumers of one [`Outbound`] stage: `bot_replies` (interactive,
//! `herald.out.reply.>`) and `bot_notify` (bulk, `herald.out.notify.>`).
//!
//! Per message: `decide` skips it if its idempotency key is in the `herald_delivered`
//! KV bucket (a redelivery of something Telegram already accepted); `apply` waits for
//! the limits, sends, and records the key. A crash between Telegram's answer and the
//! record is the only window in which a message can be sent twice (Telegram has no
//! idempotency key). A message Telegram refuses for good is dead-lettered on
//! `herald.dlq.bot` with its original subject, so `pipeline dlq redrive` resends it.
//!
//! A message with a `report` subject gets a [`DeliveryReport`] there once Telegram has
//! answered (sent with the new message ids, blocked, or refused). A report lost to a
//! crash is published again by the redelivery, from the ids the delivered key holds.

pub mod limits;
pub mod qr;
mod send;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use herald_runtime::{Applied, Decision, Effect, MsgMeta, Output, Stage, StageConfig, StageError, StageHandle};
use herald_schemas::{subjects, DeliveryReport, OutboundMessage, Outcome, Priority};

use limits::Limits;
pub use send::{classify, SendFailure, Sent};

/// Everything the sender needs.
#[derive(Clone)]
pub struct Outbound {
    pub bot: teloxide::Bot,
    pub delivered: kv::Store,
    pub users: kv::Store,
    pub limits: Arc<Limits>,
    pub paid_broadcast: bool,
}

/// Attempts at a 5xx or network failure within one delivery before the message is
/// handed back to the stream (which redelivers it later, up to `max_deliver`).
const SEND_ATTEMPTS: u32 = 4;

impl Outbound {
    /// The two consumers: replies (`reply_in_flight` at once) and broadcasts
    /// (`notify_in_flight`), each a [`StageHandle`] to run.
    pub fn stages(self, reply_in_flight: usize, notify_in_flight: usize) -> Vec<StageHandle> {
        let [replies, notify] = herald_core::streams::bot_consumers();
        let in_flight = |cfg: StageConfig, n: usize| StageConfig { max_in_flight: n, ..cfg };
        // what the compliance harness sends each consumer
        let sample = |key: &str, priority| herald_schemas::encode(&OutboundMessage::html(key, 1, "compliance", priority, 0));
        vec![
            StageHandle::new(self.clone(), in_flight(replies, reply_in_flight))
                .with_sample(subjects::reply(1), sample("sample.reply", Priority::Reply)),
            StageHandle::new(self, in_flight(notify, notify_in_flight))
                .with_sample(subjects::notify(1), sample("sample.notify", Priority::Broadcast)),
        ]
    }

    /// Records that Telegram accepted `key`, retried in place (the same put: idempotent)
    /// for up to [`herald_runtime::stage::PUBLISH_PATIENCE`]: the bucket can be briefly
    /// unwritable (a cluster electing its leaders), and a key not recorded is one a
    /// redelivery could send again. Logged as an error if it still fails.
    async fn record_delivered(&self, key: &str, record: String) {
        const RETRY: herald_runtime::backoff::Backoff =
            herald_runtime::backoff::Backoff::new(std::time::Duration::from_millis(250), std::time::Duration::from_secs(5));
        let deadline = std::time::Instant::now() + herald_runtime::stage::PUBLISH_PATIENCE;
        let record = bytes::Bytes::from(record);
        let mut attempt = 0;
        loop {
            match self.delivered.put(key, record.clone()).await {
                Ok(_) => return,
                Err(e) if std::time::Instant::now() < deadline => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "recording a delivered key failed; retrying");
                    tokio::time::sleep(RETRY.delay(attempt)).await;
                }
                Err(e) => {
                    // Telegram has it; only a redelivery could repeat it now
                    tracing::error!(error = %e, "recording a delivered key failed");
                    return;
                }
            }
        }
    }

    /// Sends until Telegram accepts, or says why not: what it answered.
    ///
    /// Errors: 5xx or network failures [`SEND_ATTEMPTS`] times (transient), or the
    /// delivered bucket unreadable.
    async fn send_with_retries(&self, out: &OutboundMessage) -> Result<Sending, StageError> {
        let key = subjects::kv_key(&out.idempotency_key);
        let mut attempt = 0;
        let mut retry = false;
        loop {
            if out.makes_message() {
                self.limits.acquire_for(out.chat_id, out.priority, retry).await;
            }
            retry = true;
            let paid = self.paid_broadcast && out.priority == Priority::Broadcast;
            match send::send(&self.bot, out, paid).await.map_err(classify) {
                Ok(sent) => {
                    self.record_delivered(&key, delivered_record(&sent)).await;
                    record_sent(out);
                    return Ok(Sending::Sent(sent));
                }
                Err(SendFailure::RetryAfter(wait)) => {
                    metrics::counter!(crate::metrics::TOO_MANY_REQUESTS.name).increment(1);
                    tracing::info!(retry_after_secs = wait.as_secs(), "429 from Telegram; holding that chat");
                    self.limits.hold(out.chat_id, wait);
                }
                Err(SendFailure::Transient(e)) if attempt + 1 < SEND_ATTEMPTS => {
                    attempt += 1;
                    metrics::counter!(crate::metrics::SEND_RETRIES.name).increment(1);
                    tracing::warn!(error = %e, attempt, "send failed, retrying");
                    tokio::time::sleep(SEND_BACKOFF.delay(attempt)).await;
                }
                Err(SendFailure::Transient(e)) => {
                    return Err(StageError::Transient(anyhow::anyhow!("send failed {SEND_ATTEMPTS} times: {e}")));
                }
                Err(SendFailure::Blocked) => {
                    metrics::counter!(crate::metrics::BLOCKED.name).increment(1);
                    if out.chat_id > 0 {
                        herald_core::users::set_active(&self.users, out.chat_id, false).await?;
                    }
                    return Ok(Sending::Blocked);
                }
                Err(SendFailure::Rejected(reason)) => return Ok(Sending::Rejected(reason)),
            }
        }
    }
}

/// How Telegram answered: the outcome, and the poll id of a sent poll.
struct Answer {
    outcome: Outcome,
    poll_id: Option<String>,
}

impl From<Sent> for Answer {
    fn from(sent: Sent) -> Self {
        Answer {
            outcome: Outcome::Sent {
                message_ids: sent.message_ids,
            },
            poll_id: sent.poll_id,
        }
    }
}

/// A refusal: nothing was sent.
fn refused(outcome: Outcome) -> Answer {
    Answer { outcome, poll_id: None }
}

/// The report of `out`'s outcome on its `report` subject, if it asks for one.
fn report_output(out: &OutboundMessage, answer: impl Into<Answer>) -> Option<Output> {
    let subject = out.report.clone()?;
    let answer = answer.into();
    let mut report = DeliveryReport::new(out.idempotency_key.clone(), out.chat_id, out.content.clone(), answer.outcome);
    report.poll_id = answer.poll_id;
    Some(Output {
        subject,
        msg_id: format!("report:{}", out.idempotency_key),
        payload: herald_schemas::encode(&report),
    })
}

/// What a delivered key holds: the message ids, `31,32,33`, and for a poll its id
/// after a `|` (`31|5001`), so a redelivery can publish the report again.
fn delivered_record(sent: &Sent) -> String {
    let ids = sent.message_ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    match &sent.poll_id {
        Some(poll) => format!("{ids}|{poll}"),
        None => ids,
    }
}

/// The [`Sent`] a delivered key's record holds (see [`delivered_record`]).
fn parse_delivered(record: &[u8]) -> Sent {
    let record = String::from_utf8_lossy(record);
    let (ids, poll) = match record.split_once('|') {
        Some((ids, poll)) => (ids, Some(poll.to_string())),
        None => (record.as_ref(), None),
    };
    Sent {
        message_ids: ids.split(',').filter_map(|i| i.parse().ok()).collect(),
        poll_id: poll,
    }
}

/// How a send ended.
enum Sending {
    Sent(Sent),
    /// 403: the user blocked the bot (marked inactive).
    Blocked,
    /// 400: Telegram refused the message, for this reason.
    Rejected(String),
}

/// Between send attempts within one delivery: 400 ms doubling, at most 5 s.
const SEND_BACKOFF: herald_runtime::backoff::Backoff =
    herald_runtime::backoff::Backoff::new(Duration::from_millis(400), Duration::from_secs(5));

impl Stage for Outbound {
    const NAME: &'static str = "bot";
    type Input = OutboundMessage;
    /// Why Telegram refused the message: it is dead-lettered once its report is out.
    type Commit = Option<String>;
    /// The message to send.
    type Effect = OutboundMessage;

    /// The message, its content made [`herald_schemas::Content::telegram_safe`] (producers that built it
    /// without [`OutboundMessage::new`] included).
    fn decode(&self, payload: &[u8]) -> Result<OutboundMessage, String> {
        let out: OutboundMessage = herald_schemas::decode(payload).map_err(|e| e.to_string())?;
        Ok(OutboundMessage {
            content: out.content.telegram_safe(),
            ..out
        })
    }

    /// Drops a message whose key Telegram has already accepted (publishing its report
    /// again, if it asks for one); otherwise asks `apply` to send it.
    async fn decide(&self, out: OutboundMessage, _meta: &MsgMeta) -> Result<Decision<Self::Commit, OutboundMessage>, StageError> {
        let key = subjects::kv_key(&out.idempotency_key);
        match self.delivered.get(&key).await {
            Ok(Some(record)) => {
                metrics::counter!(crate::metrics::REDELIVERY_SUPPRESSED.name).increment(1);
                match report_output(&out, parse_delivered(&record)) {
                    Some(report) => Ok(Decision::Forward {
                        outputs: vec![report],
                        commit: None,
                    }),
                    None => Ok(Decision::Drop {
                        reason: "already_delivered",
                    }),
                }
            }
            Ok(None) => Ok(Decision::Apply(out)),
            Err(e) => Err(StageError::Transient(anyhow::anyhow!("delivered-key lookup: {e}"))),
        }
    }

    /// Sends the message (recording its key as delivered), then publishes its report,
    /// if it asks for one. A redelivery after the send finds the key in `decide`.
    async fn apply(&self, out: OutboundMessage, _meta: &MsgMeta) -> Result<Applied<Self::Commit>, StageError> {
        let (answer, effect, rejected) = match self.send_with_retries(&out).await? {
            Sending::Sent(sent) => (Answer::from(sent), Effect::Made, None),
            Sending::Blocked => (refused(Outcome::Blocked), Effect::NotMade, None),
            Sending::Rejected(reason) => (refused(Outcome::Rejected { reason: reason.clone() }), Effect::NotMade, Some(reason)),
        };
        Ok(Applied {
            decision: Decision::Forward {
                outputs: report_output(&out, answer).into_iter().collect(),
                commit: rejected,
            },
            effect,
        })
    }

    async fn commit(&self, rejected: Self::Commit) -> Result<(), StageError> {
        match rejected {
            Some(reason) => Err(StageError::Permanent(reason)),
            None => Ok(()),
        }
    }
}

fn record_sent(out: &OutboundMessage) {
    let kind = match out.priority {
        Priority::Reply => "reply",
        Priority::Broadcast => "broadcast",
    };
    metrics::counter!(crate::metrics::SENT.name, "kind" => kind).increment(1);
    let latency = herald_schemas::now_ms().saturating_sub(out.origin_ts_ms) as f64 / 1000.0;
    metrics::histogram!(crate::metrics::END_TO_END.name, "kind" => kind).record(latency);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivered_record_keeps_the_ids_and_a_polls_id() {
        let poll = Sent {
            message_ids: vec![31],
            poll_id: Some("5001".into()),
        };
        assert_eq!(delivered_record(&poll), "31|5001");
        assert_eq!(parse_delivered(b"31|5001"), poll);
        // records written before polls had ids
        let copies = parse_delivered(b"31,32");
        assert_eq!((copies.message_ids, copies.poll_id), (vec![31, 32], None));
    }
}
