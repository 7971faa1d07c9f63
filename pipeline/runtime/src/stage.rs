//! The stage runner: the one place that consumes, publishes, acks, retries and
//! dead-letters.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, AckKind};
use async_nats::HeaderMap;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::classes::{msg_id_headers, Js};

use crate::backoff::Backoff;
use crate::dead_letter::{dead_letter, DeadLetter};
use crate::sequencer::Sequencer;
use crate::telemetry::ReadyPart;

/// One message to publish downstream. `msg_id` becomes `Nats-Msg-Id`, so a redelivered
/// input republishes into the target stream's duplicate window and is dropped there.
#[derive(Debug, Clone)]
pub struct Output {
    pub subject: String,
    pub msg_id: String,
    pub payload: Vec<u8>,
}

/// What a stage decided for one input. `E` is the stage's [`Stage::Effect`]; a
/// decision that [`Stage::apply`] returns has none (`Infallible`).
#[derive(Debug)]
pub enum Decision<C, E = std::convert::Infallible> {
    /// Publish `outputs` (all must be acknowledged by their streams), then run
    /// [`Stage::commit`] with `commit`, then ack the input.
    Forward { outputs: Vec<Output>, commit: C },
    /// Run [`Stage::apply`] with this effect (a change the outputs depend on), then
    /// carry out the decision it returns.
    Apply(E),
    /// Nothing to do: ack the input and count it under `reason`.
    Drop { reason: &'static str },
}

/// What an apply step found: the effect was made now, was already made by an earlier
/// delivery of the same input (so nothing changed), or was not made (refused: a
/// balance too low, a game already over). Counted as `herald_stage_effects_total`; the
/// compliance harness checks that a redelivery never makes an effect again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Made,
    AlreadyMade,
    NotMade,
}

impl Effect {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Made => "made",
            Effect::AlreadyMade => "already_made",
            Effect::NotMade => "not_made",
        }
    }
}

/// What [`Stage::apply`] returns: the decision to carry out and what the effect found.
#[derive(Debug)]
pub struct Applied<C> {
    pub decision: Decision<C>,
    pub effect: Effect,
}

/// Why a stage could not decide.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The input can never succeed (malformed, unknown kind): dead-letter it now.
    #[error("{0}")]
    Permanent(String),
    /// A dependency failed (Redis, NATS, KV): retry with backoff, dead-letter after
    /// `max_deliver` attempts.
    #[error(transparent)]
    Transient(#[from] anyhow::Error),
}

#[cfg(feature = "redis")]
impl From<redis::RedisError> for StageError {
    fn from(e: redis::RedisError) -> Self {
        StageError::Transient(e.into())
    }
}

/// Where an input came from.
#[derive(Debug, Clone)]
pub struct MsgMeta {
    pub subject: String,
    pub stream_sequence: u64,
    /// 1 on first delivery.
    pub delivered: i64,
    /// When the stream stored the message (ms since the epoch): the same on every
    /// redelivery, so a stage can time an input deterministically.
    pub published_ms: u64,
}

/// A pipeline stage: a pure decision, an optional named effect the outputs depend on,
/// and an optional commit of state that must only happen once the outputs are safely in
/// their streams.
///
/// The runner calls, per message: [`Stage::decode`] -> [`Stage::decide`] -> (if it
/// asked, [`Stage::apply`]) -> publish outputs and await their acks ->
/// [`Stage::commit`] -> ack.
///
/// ```no_run
/// use std::sync::Arc;
/// use herald_runtime::{run_stage, Decision, MsgMeta, Output, Stage, StageConfig, StageError};
///
/// /// Upper-cases text from `demo.in` onto `demo.out`.
/// struct Shout;
///
/// impl Stage for Shout {
///     const NAME: &'static str = "shout";
///     type Input = String;
///     type Commit = ();
///     type Effect = std::convert::Infallible;
///     fn decode(&self, payload: &[u8]) -> Result<String, String> {
///         String::from_utf8(payload.to_vec()).map_err(|e| e.to_string())
///     }
///     async fn decide(&self, text: String, meta: &MsgMeta) -> Result<Decision<()>, StageError> {
///         let out = Output { subject: "demo.out".into(), msg_id: format!("shout:{}", meta.stream_sequence), payload: text.to_uppercase().into_bytes() };
///         Ok(Decision::Forward { outputs: vec![out], commit: () })
///     }
///     async fn commit(&self, _: ()) -> Result<(), StageError> {
///         Ok(())
///     }
/// }
///
/// # async fn demo() -> anyhow::Result<()> {
/// let js = herald_runtime::config::NatsArgs { nats_url: "nats://127.0.0.1:4222".into() }.connect().await?.1;
/// let shutdown = tokio_util::sync::CancellationToken::new();
/// run_stage(js, Arc::new(Shout), StageConfig::new("DEMO", "shout", vec!["demo.in".into()]), shutdown).await?;
/// # Ok(()) }
/// ```
pub trait Stage: Send + Sync + 'static {
    /// Name used for metrics labels, the durable consumer and the dead-letter subject.
    const NAME: &'static str;
    type Input: Send;
    type Commit: Send;
    /// What [`Stage::decide`] can ask [`Stage::apply`] to change; `Infallible` for a
    /// stage without an apply step.
    type Effect: Send;

    /// Parses the payload; an `Err` dead-letters the message with that reason.
    fn decode(&self, payload: &[u8]) -> Result<Self::Input, String>;

    /// Decides what to publish for one input.
    ///
    /// `decide` only decides: it may read state (KV, Redis, a store) but must not change
    /// anything another delivery of the same input could see, because the input can be
    /// redelivered (a crash before the ack, a retry after a transient failure). State
    /// changes go into the returned commit and happen in [`Stage::commit`], after every
    /// output is in its stream; a change the outputs depend on (a ledger credit whose
    /// balance the message shows) is returned as [`Decision::Apply`] and made by
    /// [`Stage::apply`].
    fn decide(
        &self,
        input: Self::Input,
        meta: &MsgMeta,
    ) -> impl Future<Output = Result<Decision<Self::Commit, Self::Effect>, StageError>> + Send;

    /// Makes the change `decide` asked for, and decides the outputs from its result.
    ///
    /// Idempotent per input: the change is keyed by the input (a ledger reference, an
    /// answer's id, an update's op key), so a redelivery finds it made, changes nothing,
    /// says [`Effect::AlreadyMade`] and returns the same outputs under the same message
    /// ids. The default is for stages without effects (`Effect = Infallible`, never
    /// called).
    fn apply(&self, effect: Self::Effect, meta: &MsgMeta) -> impl Future<Output = Result<Applied<Self::Commit>, StageError>> + Send {
        let _ = (effect, meta);
        async {
            Err(StageError::Permanent(format!(
                "{}: decide asked for an effect but the stage has no apply step",
                Self::NAME
            )))
        }
    }

    /// Records state after every output was acknowledged downstream. Runs at least
    /// once per input that decided `Forward`, so it must be idempotent too (a crash
    /// between commit and ack redelivers the input). An `Err` is handled like one
    /// from `decide`: retried (transient) or dead-lettered (permanent).
    fn commit(&self, commit: Self::Commit) -> impl Future<Output = Result<(), StageError>> + Send;
}

/// Where and how a stage consumes.
#[derive(Debug, Clone)]
pub struct StageConfig {
    /// Stream to consume from (see `herald_schemas::subjects`).
    pub stream: String,
    /// Durable consumer name; defaults to the stage name.
    pub durable: String,
    /// Subject filters within the stream (empty = all).
    pub filter_subjects: Vec<String>,
    /// Bound on messages processed at once; also bounds unacked messages (backpressure).
    pub max_in_flight: usize,
    /// Deliveries before a transiently failing message is dead-lettered.
    pub max_deliver: i64,
    /// How long the server waits for an ack before redelivering. Work that takes
    /// longer (a send waiting on Telegram's limits) sends progress acks every third of it.
    pub ack_wait: Duration,
    /// Marked ready once the consumer exists (see [`crate::telemetry::Readiness`]).
    pub ready: Option<ReadyPart>,
    /// Process messages whose subjects end with the same token one after another, in
    /// stream order (others still run in parallel). Update and routed subjects end with
    /// the sender's id (`herald.updates.<kind>.<user>`, `herald.cmd.<product>.<user>`),
    /// so this keeps one user's updates in order, whatever their kinds; outbound
    /// subjects end with the chat (`herald.out.reply.<chat>`), so the bot sends a chat's
    /// messages in order. A message waiting for its turn sends progress acks. A message
    /// that fails transiently is handed back (nak) and can be overtaken by the next.
    pub in_order_per_sender: bool,
}

impl StageConfig {
    /// The durable pull consumer the stage runs on: explicit acks, `ack_wait`,
    /// `max_deliver`, and `max_ack_pending` four times the in-flight bound.
    pub fn consumer_config(&self) -> pull::Config {
        pull::Config {
            durable_name: Some(self.durable.clone()),
            filter_subjects: self.filter_subjects.clone(),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: self.max_deliver,
            max_ack_pending: (self.max_in_flight * 4) as i64,
            ..Default::default()
        }
    }

    /// Defaults: 256 in flight, 5 deliveries, 10 s ack wait (a message held by a crashed
    /// process comes back after that; a live stage decides in milliseconds).
    pub fn new(stream: &str, durable: &str, filter_subjects: Vec<String>) -> Self {
        StageConfig {
            stream: stream.to_string(),
            durable: durable.to_string(),
            filter_subjects,
            max_in_flight: 256,
            max_deliver: 5,
            ack_wait: Duration::from_secs(10),
            ready: None,
            in_order_per_sender: false,
        }
    }
}

/// Runs `stage` until `shutdown` is cancelled, then finishes in-flight work and returns.
///
/// Creates (or binds to) the durable pull consumer. Errors: the stream or consumer
/// cannot be created, or the message stream ended (connection lost for good).
pub async fn run_stage<S: Stage>(js: Js, stage: Arc<S>, cfg: StageConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let stream = js
        .get_stream(&cfg.stream)
        .await
        .map_err(|e| anyhow::anyhow!("stream {} not found ({e}); run `pipeline setup` first", cfg.stream))?;
    let want = cfg.consumer_config();
    let mut consumer: jetstream::consumer::PullConsumer = stream.get_or_create_consumer(&cfg.durable, want.clone()).await?;
    // a consumer left by an older version keeps its old settings unless told otherwise
    let drift = consumer_differences(&consumer.cached_info().config, &want);
    if !drift.is_empty() {
        tracing::warn!(stage = S::NAME, durable = %cfg.durable, drift = %drift.join("; "), "consumer configuration drifted; updating it");
        consumer = stream.update_consumer(want).await?;
    }
    spawn_pending_gauge(S::NAME, consumer.clone(), shutdown.clone());
    if let Some(ready) = &cfg.ready {
        ready.set_ready();
    }

    tracing::info!(stage = S::NAME, stream = %cfg.stream, durable = %cfg.durable, "stage started");
    let cfg = Arc::new(cfg);
    let counters = Arc::new(StageMetrics::new(S::NAME));
    let sequencer = Sequencer::default();
    // The message stream can end (consumer deleted, connection closed for good): pull
    // again rather than leave the stage silently dead.
    while !shutdown.is_cancelled() {
        let messages = match consumer.stream().max_messages_per_batch(cfg.max_in_flight).messages().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(stage = S::NAME, error = %e, "cannot pull; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        messages
            .take_until(shutdown.clone().cancelled_owned())
            // a pull nobody answered (the consumer not yet reachable from this server: a
            // cluster's start, a leader moving) would otherwise wait out the pull's 30 s
            // expiry before asking again; end the stream and pull anew at once
            .take_while(|m| {
                let unanswered = matches!(m, Err(e) if e.kind() == pull::MessagesErrorKind::NoResponders);
                if unanswered {
                    tracing::warn!(stage = S::NAME, "no responders to the pull; pulling again");
                }
                std::future::ready(!unanswered)
            })
            // turns are taken in delivery order, before the messages run concurrently
            .map(|msg| {
                let turn = match (&msg, cfg.in_order_per_sender) {
                    (Ok(m), true) => Some(sequencer.enqueue(m.subject.rsplit('.').next().unwrap_or_default())),
                    _ => None,
                };
                (msg, turn)
            })
            .for_each_concurrent(cfg.max_in_flight, |(msg, turn)| {
                let (js, stage, cfg, counters) = (js.clone(), stage.clone(), cfg.clone(), counters.clone());
                async move {
                    let mut turn = turn;
                    if let (Some(turn), Ok(m)) = (turn.as_mut(), &msg) {
                        wait_for_turn(turn, m, cfg.ack_wait).await;
                    }
                    match msg {
                        Ok(msg) => process(&js, &*stage, &cfg, &counters, msg).await,
                        Err(e) => tracing::warn!(stage = S::NAME, error = %e, "consumer error"),
                    }
                    drop(turn); // the subject's next message may go now
                }
            })
            .await;
        if !shutdown.is_cancelled() {
            tracing::warn!(stage = S::NAME, "message stream ended; pulling again");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    tracing::info!(stage = S::NAME, "stage stopped, in-flight work finished");
    Ok(())
}

/// Waits for `turn`, telling the server every third of `ack_wait` that `msg` is still
/// held: a message queued behind a slow one of its key (a chat held by a 429) would
/// otherwise be redelivered while it waits.
async fn wait_for_turn(turn: &mut crate::sequencer::Turn, msg: &jetstream::Message, ack_wait: Duration) {
    let waiting = turn.wait();
    tokio::pin!(waiting);
    loop {
        tokio::select! {
            _ = &mut waiting => return,
            _ = tokio::time::sleep(ack_wait / 3) => { let _ = msg.ack_with(AckKind::Progress).await; }
        }
    }
}

/// Metric handles of one stage, registered once (the macros would build and hash a key
/// per message).
struct StageMetrics {
    input: metrics::Counter,
    /// Inputs that decided `Forward` and were committed (with zero or more outputs).
    forwarded: metrics::Counter,
    output: metrics::Counter,
    retries: metrics::Counter,
    seconds: metrics::Histogram,
}

impl StageMetrics {
    fn new(stage: &'static str) -> Self {
        // present at 0 from the start, so the first dead letter is an increase an alert
        // sees (Prometheus' increase() cannot see a series' first sample as one)
        metrics::counter!(crate::metric::DEAD_LETTERED.name, "stage" => stage).increment(0);
        StageMetrics {
            input: metrics::counter!(crate::metric::STAGE_IN.name, "stage" => stage),
            forwarded: metrics::counter!(crate::metric::STAGE_FORWARDED.name, "stage" => stage),
            output: metrics::counter!(crate::metric::STAGE_OUT.name, "stage" => stage),
            retries: metrics::counter!(crate::metric::STAGE_RETRIES.name, "stage" => stage),
            seconds: metrics::histogram!(crate::metric::STAGE_SECONDS.name, "stage" => stage),
        }
    }
}

async fn process<S: Stage>(js: &Js, stage: &S, cfg: &StageConfig, counters: &StageMetrics, msg: jetstream::Message) {
    let started = Instant::now();
    let name = S::NAME;
    counters.input.increment(1);
    let info = msg
        .info()
        .map(|i| {
            (
                i.stream_sequence,
                i.delivered,
                (i.published.unix_timestamp_nanos() / 1_000_000) as u64,
            )
        })
        .unwrap_or((0, 1, 0));
    let meta = MsgMeta {
        subject: msg.subject.to_string(),
        stream_sequence: info.0,
        delivered: info.1,
        published_ms: info.2,
    };

    let result = match stage.decode(&msg.payload) {
        Ok(input) => {
            // work that outlasts a third of ack_wait tells the server it is still going
            let work = decide_publish_commit(js, stage, input, &meta, counters);
            tokio::pin!(work);
            loop {
                tokio::select! {
                    result = &mut work => break result,
                    _ = tokio::time::sleep(cfg.ack_wait / 3) => { let _ = msg.ack_with(AckKind::Progress).await; }
                }
            }
        }
        Err(reason) => Err(StageError::Permanent(reason)),
    };
    let ack = match result {
        Ok(()) => AckKind::Ack,
        Err(StageError::Permanent(reason)) => give_up(js, name, &meta, &msg.payload, &reason).await,
        Err(StageError::Transient(e)) if meta.delivered >= cfg.max_deliver => {
            let reason = format!("failed after {} deliveries: {e:#}", meta.delivered);
            give_up(js, name, &meta, &msg.payload, &reason).await
        }
        Err(StageError::Transient(e)) => {
            counters.retries.increment(1);
            tracing::warn!(stage = name, error = %format!("{e:#}"), delivered = meta.delivered, "transient failure, will retry");
            AckKind::Nak(Some(Backoff::STAGE.delay(meta.delivered.max(1) as u32)))
        }
    };
    if let Err(e) = msg.ack_with(ack).await {
        tracing::warn!(stage = name, error = %e, "ack failed; the message will be redelivered");
    }
    counters.seconds.record(started.elapsed().as_secs_f64());
}

async fn decide_publish_commit<S: Stage>(
    js: &Js,
    stage: &S,
    input: S::Input,
    meta: &MsgMeta,
    counters: &StageMetrics,
) -> Result<(), StageError> {
    let decision = match stage.decide(input, meta).await? {
        Decision::Forward { outputs, commit } => Decision::Forward { outputs, commit },
        Decision::Drop { reason } => Decision::Drop { reason },
        Decision::Apply(effect) => {
            let applied = stage.apply(effect, meta).await?;
            metrics::counter!(crate::metric::STAGE_EFFECTS.name, "stage" => S::NAME, "effect" => applied.effect.as_str()).increment(1);
            applied.decision
        }
    };
    match decision {
        Decision::Apply(never) => match never {},
        Decision::Drop { reason } => {
            metrics::counter!(crate::metric::STAGE_DROPPED.name, "stage" => S::NAME, "reason" => reason).increment(1);
            Ok(())
        }
        Decision::Forward { outputs, commit } => {
            let n = outputs.len() as u64;
            publish_patiently(js, outputs).await?;
            stage.commit(commit).await?;
            counters.forwarded.increment(1);
            counters.output.increment(n);
            Ok(())
        }
    }
}

/// The settings Herald gives a consumer, as `field: existing != wanted` lines (empty:
/// none differ).
///
/// ```
/// use async_nats::jetstream::consumer::IntoConsumerConfig;
/// use herald_runtime::stage::{consumer_differences, StageConfig};
/// let want = StageConfig::new("CALLS", "dedup", vec!["herald.calls.>".into()]);
/// let mut have = want.consumer_config();
/// have.max_deliver = 9;
/// let have = have.into_consumer_config();
/// assert_eq!(consumer_differences(&have, &want.consumer_config()), ["max_deliver: existing 9 != wanted 5"]);
/// ```
pub fn consumer_differences(have: &jetstream::consumer::Config, want: &pull::Config) -> Vec<String> {
    // one filter may be stored in either field
    let subjects = |c: &[String], one: &str| match (c.is_empty(), one.is_empty()) {
        (true, false) => vec![one.to_string()],
        _ => c.to_vec(),
    };
    crate::setup::Differences::default()
        .field(
            "filter_subjects",
            subjects(&have.filter_subjects, &have.filter_subject),
            subjects(&want.filter_subjects, &want.filter_subject),
        )
        .field("ack_policy", have.ack_policy, want.ack_policy)
        .field("ack_wait", have.ack_wait, want.ack_wait)
        .field("max_deliver", have.max_deliver, want.max_deliver)
        .field("max_ack_pending", have.max_ack_pending, want.max_ack_pending)
        .lines()
}

/// Acks awaited at most at once by [`publish_all`]. async-nats holds a permit per
/// unresolved ack, 5,000 by default (`ContextBuilder::max_ack_inflight`), and a publish
/// waits for a free one: publishing more than that before awaiting any ack never returns.
const ACKS_IN_FLIGHT: usize = 1_000;

/// Publishes every output, awaiting the acks as it goes (at most [`ACKS_IN_FLIGHT`]
/// outstanding): about one round trip per thousand outputs.
///
/// Errors: a publish failed or was not acknowledged (some outputs may be stored: each
/// carries its message id, so publishing them all again stores none twice).
pub async fn publish_all(js: &Js, outputs: Vec<Output>) -> anyhow::Result<()> {
    publish_ready(js, &ready(outputs)).await
}

/// An output ready to publish any number of times: subject, headers and payload are
/// shared buffers, so a retry copies no payload.
struct Ready {
    subject: async_nats::Subject,
    headers: HeaderMap,
    payload: bytes::Bytes,
}

fn ready(outputs: Vec<Output>) -> Vec<Ready> {
    outputs
        .into_iter()
        .map(|out| Ready {
            headers: msg_id_headers(&out.msg_id),
            subject: out.subject.into(),
            payload: out.payload.into(),
        })
        .collect()
}

async fn publish_ready(js: &Js, outputs: &[Ready]) -> anyhow::Result<()> {
    let mut acks = std::collections::VecDeque::with_capacity(outputs.len().min(ACKS_IN_FLIGHT));
    for out in outputs {
        if acks.len() == ACKS_IN_FLIGHT {
            let oldest: jetstream::context::PublishAckFuture = acks.pop_front().expect("a full window");
            oldest.await?;
        }
        acks.push_back(
            js.publish_with_headers(out.subject.clone(), out.headers.clone(), out.payload.clone())
                .await?,
        );
    }
    for ack in futures::future::join_all(acks.into_iter().map(std::future::IntoFuture::into_future)).await {
        ack?;
    }
    Ok(())
}

/// How long a stage keeps retrying the publish of its outputs before the failure counts
/// as one of the message's deliveries: longer than a stream leader election after a
/// node loss (4-8 s measured on a 3-node cluster, README "Faults").
pub const PUBLISH_PATIENCE: Duration = Duration::from_secs(60);

/// [`publish_all`], retried in place (250 ms doubling to 5 s; the same message ids, so
/// nothing is stored twice) for up to [`PUBLISH_PATIENCE`]: a stream without a leader
/// for a few seconds is not the input's fault, and must not spend its deliveries toward
/// the dead-letter subject.
///
/// Errors: the last publish error once the patience is spent.
async fn publish_patiently(js: &Js, outputs: Vec<Output>) -> anyhow::Result<()> {
    const RETRY: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
    let deadline = Instant::now() + PUBLISH_PATIENCE;
    let outputs = ready(outputs);
    let mut attempt = 0;
    loop {
        match publish_ready(js, &outputs).await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "publishing outputs failed; retrying");
                tokio::time::sleep(RETRY.delay(attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Dead-letters and returns `Term`; if even the dead-letter publish fails, `Nak` so the
/// message is kept (nothing is lost).
async fn give_up(js: &Js, stage: &str, meta: &MsgMeta, payload: &[u8], reason: &str) -> AckKind {
    let letter = DeadLetter {
        stage,
        error: reason,
        original_subject: &meta.subject,
        original_sequence: Some(meta.stream_sequence),
        payload,
    };
    match dead_letter(js, letter).await {
        Ok(()) => AckKind::Term,
        Err(e) => {
            tracing::error!(stage, error = %e, "dead-letter publish failed; keeping the message");
            AckKind::Nak(Some(Duration::from_secs(5)))
        }
    }
}

fn spawn_pending_gauge(stage: &'static str, consumer: jetstream::consumer::PullConsumer, shutdown: CancellationToken) {
    tokio::spawn(crate::periodic::every(
        "consumer_gauges",
        Duration::from_secs(2),
        shutdown,
        move || {
            let mut consumer = consumer.clone();
            async move {
                let info = consumer.info().await?;
                metrics::gauge!(crate::metric::CONSUMER_PENDING.name, "stage" => stage).set(info.num_pending as f64);
                metrics::gauge!(crate::metric::CONSUMER_ACK_PENDING.name, "stage" => stage).set(info.num_ack_pending as f64);
                metrics::gauge!(crate::metric::CONSUMER_REDELIVERED.name, "stage" => stage).set(info.num_redelivered as f64);
                Ok(())
            }
        },
    ));
}
