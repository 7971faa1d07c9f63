//! The null pipeline: the signal path's streams, hops, message sizes and acks, with
//! stages that decide nothing. Its throughput is the ceiling of Herald's runtime for the
//! same work; `loadtest bench --scenario throughput` runs it beside Herald's (issue 25).
//!
//! ```text
//! feed (websocket) ──> null source ──> herald.calls.solana.null [CALLS]
//!   ──> null_dedup ──> herald.signals.solana [SIGNALS]
//!   ──> null_fanout ──> herald.out.notify.<chat> [OUTBOUND] + herald.tracked.solana [TRACKED]
//!   ──> null_track (acks)
//! ```
//!
//! What it keeps from Herald: its own process (`loadtest null-pipeline`), one NATS
//! connection per stage and per source, the runtime's [`run_stage`] (pull batches,
//! in-flight bound, message ids, acks awaited before the input's ack, metrics), a
//! pipelined source, and each hop's payload size (measured from Herald's run). What it
//! leaves out: parsing and checking frames, Redis, the user index, rendering, the
//! tracked-call store. A payload is `{"idempotency_key":…,"origin_ts_ms":…,"chat":…,"pad":"xx…"}`
//! (what the run's probe reads), padded to the hop's size.

use std::sync::Arc;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use herald_runtime::{run_stage, Decision, MsgMeta, Output, Stage, StageConfig, StageError};
use herald_schemas::subjects;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Payload bytes per hop; Herald's sizes are read from its streams after its run
/// ([`HopSizes::of_streams`]).
#[derive(clap::Args, Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct HopSizes {
    /// A call on CALLS.
    #[arg(long, default_value_t = 420)]
    pub call_bytes: usize,
    /// A signal on SIGNALS.
    #[arg(long, default_value_t = 560)]
    pub signal_bytes: usize,
    /// A notification on OUTBOUND.
    #[arg(long, default_value_t = 620)]
    pub notify_bytes: usize,
    /// Tracked calls on TRACKED.
    #[arg(long, default_value_t = 330)]
    pub tracked_bytes: usize,
}

impl HopSizes {
    /// The payload size of the last message on each hop's stream (every message of a
    /// hop has about the same size in the throughput run).
    ///
    /// Errors: a stream is missing or empty.
    pub async fn of_streams(js: &async_nats::jetstream::Context) -> anyhow::Result<Self> {
        let last = |stream: &'static str| async move {
            let mut s = js.get_stream(stream).await?;
            let seq = s.info().await?.state.last_sequence;
            anyhow::ensure!(seq > 0, "stream {stream} is empty");
            Ok::<_, anyhow::Error>(s.get_raw_message(seq).await?.payload.len())
        };
        Ok(HopSizes {
            call_bytes: last(subjects::CALLS_STREAM).await?,
            signal_bytes: last(subjects::SIGNALS_STREAM).await?,
            notify_bytes: last(subjects::OUTBOUND_STREAM).await?,
            tracked_bytes: last(subjects::TRACKED_STREAM).await?,
        })
    }

    /// As `loadtest null-pipeline` flags.
    pub fn args(&self) -> Vec<String> {
        [
            ("--call-bytes", self.call_bytes),
            ("--signal-bytes", self.signal_bytes),
            ("--notify-bytes", self.notify_bytes),
            ("--tracked-bytes", self.tracked_bytes),
        ]
        .iter()
        .flat_map(|(k, v)| [k.to_string(), v.to_string()])
        .collect()
    }
}

/// `{"idempotency_key":"null.<id>","origin_ts_ms":<ts>,"chat":<chat>,"pad":"x…"}`,
/// `size` bytes long (or just long enough for its fields).
pub fn payload(id: &str, origin_ts_ms: u64, chat: i64, size: usize) -> Vec<u8> {
    let mut p = format!(r#"{{"idempotency_key":"null.{id}","origin_ts_ms":{origin_ts_ms},"chat":{chat},"pad":""#).into_bytes();
    resize(&mut p, size);
    p
}

/// Repads a [`payload`] to `size` bytes (its fields stay as they are).
fn repad(input: &[u8], size: usize) -> Vec<u8> {
    let head = input.len() - input.iter().rev().position(|b| *b == b':').unwrap_or(0);
    let mut p = input[..head + 1].to_vec(); // up to and with the pad's opening quote
    resize(&mut p, size);
    p
}

fn resize(p: &mut Vec<u8>, size: usize) {
    let pad = size.saturating_sub(p.len() + 2);
    p.extend(std::iter::repeat_n(b'x', pad));
    p.extend_from_slice(b"\"}");
}

/// The chat a payload is for (the only field a null stage reads).
fn chat_of(payload: &[u8]) -> Result<i64, String> {
    #[derive(serde::Deserialize)]
    struct Head {
        chat: i64,
    }
    serde_json::from_slice::<Head>(payload).map(|h| h.chat).map_err(|e| e.to_string())
}

/// CALLS -> SIGNALS, one output per input.
struct NullDedup(HopSizes);
/// SIGNALS -> a notification and a tracked-calls message.
struct NullFanout(HopSizes);
/// TRACKED: acks.
struct NullTrack;

impl Stage for NullDedup {
    const NAME: &'static str = "null_dedup";
    type Input = bytes::Bytes;
    type Commit = ();
    type Effect = std::convert::Infallible;
    fn decode(&self, payload: &[u8]) -> Result<bytes::Bytes, String> {
        Ok(bytes::Bytes::copy_from_slice(payload))
    }
    async fn decide(&self, input: bytes::Bytes, meta: &MsgMeta) -> Result<Decision<()>, StageError> {
        let out = Output {
            subject: subjects::signal("solana"),
            msg_id: format!("null|{}", meta.stream_sequence),
            payload: repad(&input, self.0.signal_bytes),
        };
        Ok(Decision::Forward {
            outputs: vec![out],
            commit: (),
        })
    }
    async fn commit(&self, _: ()) -> Result<(), StageError> {
        Ok(())
    }
}

impl Stage for NullFanout {
    const NAME: &'static str = "null_fanout";
    type Input = bytes::Bytes;
    type Commit = ();
    type Effect = std::convert::Infallible;
    fn decode(&self, payload: &[u8]) -> Result<bytes::Bytes, String> {
        Ok(bytes::Bytes::copy_from_slice(payload))
    }
    async fn decide(&self, input: bytes::Bytes, meta: &MsgMeta) -> Result<Decision<()>, StageError> {
        let chat = chat_of(&input).map_err(StageError::Permanent)?;
        let outputs = vec![
            Output {
                subject: subjects::notify(chat),
                msg_id: format!("null.n|{}", meta.stream_sequence),
                payload: repad(&input, self.0.notify_bytes),
            },
            Output {
                subject: subjects::tracked("solana"),
                msg_id: format!("null.t|{}", meta.stream_sequence),
                payload: repad(&input, self.0.tracked_bytes),
            },
        ];
        Ok(Decision::Forward { outputs, commit: () })
    }
    async fn commit(&self, _: ()) -> Result<(), StageError> {
        Ok(())
    }
}

impl Stage for NullTrack {
    const NAME: &'static str = "null_track";
    type Input = ();
    type Commit = ();
    type Effect = std::convert::Infallible;
    fn decode(&self, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
    async fn decide(&self, _: (), _: &MsgMeta) -> Result<Decision<()>, StageError> {
        Ok(Decision::Forward {
            outputs: Vec::new(),
            commit: (),
        })
    }
    async fn commit(&self, _: ()) -> Result<(), StageError> {
        Ok(())
    }
}

/// `loadtest null-pipeline`'s settings.
#[derive(clap::Args, Debug, Clone)]
pub struct NullArgs {
    #[command(flatten)]
    pub nats: herald_runtime::config::NatsArgs,
    /// The feed to read call frames from (`ws://`).
    #[arg(long)]
    pub feed_url: String,
    /// Serve `/metrics`, `/healthz` and `/readyz` here.
    #[arg(long, default_value = "127.0.0.1:9899")]
    pub metrics_addr: std::net::SocketAddr,
    /// Users the calls are spread over (chat = call number mod users + 1).
    #[arg(long, default_value_t = 10_000)]
    pub users: i64,
    /// Messages each stage processes at once (Herald's `--max-in-flight`).
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    #[command(flatten)]
    pub sizes: HopSizes,
}

/// Runs the null source and stages until SIGTERM.
///
/// Errors: NATS cannot be reached, or a stream is missing (`pipeline setup` first).
pub async fn run(args: NullArgs) -> anyhow::Result<()> {
    let shutdown = herald_runtime::telemetry::shutdown_on_signal();
    let ready = herald_runtime::telemetry::Readiness::default();
    tokio::spawn(herald_runtime::telemetry::serve(args.metrics_addr, ready.clone(), shutdown.clone()));
    let on = |stream: &str, durable: &str, filter: &str| StageConfig {
        max_in_flight: args.max_in_flight,
        ..StageConfig::new(stream, durable, vec![filter.into()])
    };
    let sizes = args.sizes;
    let mut tasks = tokio::task::JoinSet::new();
    let (js, s, cfg) = (
        args.nats.connect().await?.1,
        shutdown.clone(),
        on(subjects::CALLS_STREAM, "null_dedup", "herald.calls.>"),
    );
    tasks.spawn(run_stage(js, Arc::new(NullDedup(sizes)), cfg, s));
    let (js, s, cfg) = (
        args.nats.connect().await?.1,
        shutdown.clone(),
        on(subjects::SIGNALS_STREAM, "null_fanout", "herald.signals.>"),
    );
    tasks.spawn(run_stage(js, Arc::new(NullFanout(sizes)), cfg, s));
    let (js, s, cfg) = (
        args.nats.connect().await?.1,
        shutdown.clone(),
        on(subjects::TRACKED_STREAM, "null_track", "herald.tracked.>"),
    );
    tasks.spawn(run_stage(js, Arc::new(NullTrack), cfg, s));
    let source = Source {
        js: args.nats.connect().await?.1,
        url: args.feed_url.clone(),
        users: args.users,
        max_in_flight: args.max_in_flight,
        call_bytes: sizes.call_bytes,
    };
    tasks.spawn(source.run(shutdown.clone()));
    ready.set_ready();
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

/// The null source: a frame's `id` and the time it arrived, published to CALLS.
struct Source {
    js: herald_runtime::Js,
    url: String,
    users: i64,
    max_in_flight: usize,
    call_bytes: usize,
}

impl Source {
    async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        #[derive(serde::Deserialize)]
        struct Frame<'a> {
            #[serde(borrow)]
            id: Option<&'a str>,
        }
        let (mut ws, _) = tokio_tungstenite::connect_async(&self.url).await?;
        let mut pending = FuturesUnordered::new();
        loop {
            while pending.len() >= self.max_in_flight {
                pending.next().await.transpose()?;
            }
            let msg = tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(r) = pending.next(), if !pending.is_empty() => { r?; continue }
                msg = ws.next() => msg,
            };
            let text = match msg {
                None | Some(Ok(Message::Close(_))) => break,
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(_)) => continue,
            };
            let Ok(Frame { id: Some(id) }) = serde_json::from_str::<Frame>(&text) else {
                continue;
            };
            // the call number is the id's last part (`<run>-<n>`, crate::run::call_frame)
            let n: i64 = id.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let out = Output {
                subject: subjects::call("solana", "null"),
                msg_id: format!("null:{id}"),
                payload: payload(id, herald_schemas::now_ms(), n % self.users + 1, self.call_bytes),
            };
            let js = self.js.clone();
            pending.push(async move { herald_runtime::publish_all(&js, vec![out]).await });
        }
        while let Some(r) = pending.next().await {
            r?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_keep_their_fields_at_every_size() {
        let p = payload("ab-7", 123, 8, 400);
        assert_eq!(p.len(), 400);
        let minimal = repad(&p, 0).len();
        for size in [0, 100, 900] {
            let q = repad(&p, size);
            assert_eq!(q.len(), size.max(minimal), "{size}");
            let v: serde_json::Value = serde_json::from_slice(&q).unwrap();
            assert_eq!(
                (v["idempotency_key"].as_str(), v["origin_ts_ms"].as_u64()),
                (Some("null.ab-7"), Some(123))
            );
            assert_eq!(chat_of(&q), Ok(8));
        }
    }
}
