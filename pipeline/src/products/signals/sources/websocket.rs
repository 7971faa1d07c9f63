//! A websocket source: connects, reconnects with exponential backoff and full jitter,
//! turns frames into calls, publishes them with `Nats-Msg-Id`, dead-letters bad frames.
//!
//! Publishing is pipelined (up to `max_in_flight` unacknowledged publishes); when the
//! stream falls behind, reading the socket pauses (backpressure reaches the feed's TCP
//! window). A publish that fails is retried with the same message id until it is
//! acknowledged, so nothing read from the socket is lost while the process lives.

use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use herald_schemas::checks::{self, ChainList};
use herald_schemas::{subjects, CallEvent, CallSource, Caller, Chain, FeedFrame, PriceUpdate};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::raw_text::TextAsBinary;
use super::raydium;
use herald_runtime::backoff::Backoff;
use herald_runtime::{dead_letter, DeadLetter, Output};

/// What speaks on the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Herald's JSON token feed ([`FeedFrame`]).
    HeraldFeed,
    /// Solana `transactionSubscribe` notifications (Raydium pool creations).
    SolanaTransactions,
}

impl Protocol {
    /// Name used for dead-letter subjects and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::HeraldFeed => "feed",
            Protocol::SolanaTransactions => "solana",
        }
    }
}

/// Frames larger than this are dead-lettered unread (64 KiB; real frames are < 16 KiB).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// What a frame carries.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    Call(CallEvent),
    Price(PriceUpdate),
}

impl FeedEvent {
    /// The message to publish for it.
    pub fn output(&self) -> Output {
        match self {
            FeedEvent::Call(c) => call_output(c),
            FeedEvent::Price(p) => Output {
                subject: subjects::price(p.chain.as_str()),
                msg_id: p.msg_id(),
                payload: herald_schemas::encode(p),
            },
        }
    }
}

/// Turns one frame into an event (the frame is parsed once), checked against
/// [`checks::call`] / [`checks::price_update`] (`chains`: the accepted chains).
/// `Ok(None)` for frames that carry none (heartbeats, swaps, confirmations).
///
/// Errors: oversized, not UTF-8, not JSON, not a known frame shape, or a value out of
/// range or grammar (the reason says which).
pub fn parse_frame(protocol: Protocol, frame: &[u8], now_ms: u64, chains: &ChainList) -> Result<Option<FeedEvent>, String> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(format!("oversized frame: {} bytes > {MAX_FRAME_BYTES}", frame.len()));
    }
    if let Err(e) = std::str::from_utf8(frame) {
        return Err(format!("frame is not UTF-8: invalid byte at {}", e.valid_up_to()));
    }
    let checked = |event: Option<FeedEvent>| -> Result<Option<FeedEvent>, String> {
        Ok(match event {
            Some(FeedEvent::Call(c)) => Some(FeedEvent::Call(checks::call(c, chains).map_err(|e| format!("rejected call: {e}"))?)),
            Some(FeedEvent::Price(p)) => {
                Some(FeedEvent::Price(checks::price_update(p, chains).map_err(|e| format!("rejected price: {e}"))?))
            }
            None => None,
        })
    };
    checked(parse_unchecked(protocol, frame, now_ms)?)
}

fn parse_unchecked(protocol: Protocol, frame: &[u8], now_ms: u64) -> Result<Option<FeedEvent>, String> {
    let origin = |ts_ms: u64| if ts_ms > 0 { ts_ms } else { now_ms };
    if protocol == Protocol::SolanaTransactions {
        let value: serde_json::Value = serde_json::from_slice(frame).map_err(|e| format!("malformed Solana frame: {e}"))?;
        return Ok(raydium::parse_frame(&value, now_ms)?.map(FeedEvent::Call));
    }
    Ok(
        match serde_json::from_slice::<FeedFrame>(frame).map_err(|e| format!("malformed feed frame: {e}"))? {
            FeedFrame::Heartbeat { .. } => None,
            FeedFrame::Price {
                chain,
                token,
                price_usd,
                ts_ms,
                ..
            } => Some(FeedEvent::Price(PriceUpdate {
                    v: 1,
                    chain: Chain::from(chain),
                    token,
                    price_usd,
                    source: "feed".into(),
                    ts_ms: origin(ts_ms),
                })),
            FeedFrame::Call {
                id,
                chain,
                token,
                symbol,
                name,
                price_usd,
                fdv_usd,
                caller_id,
                caller_name,
                caller_stats,
                ts_ms,
            } => Some(FeedEvent::Call(CallEvent {
                    v: 1,
                    source_event_id: id,
                    chain: Chain::from(chain),
                    token,
                    symbol,
                    name,
                    price_usd,
                    price_native: None,
                    fdv_usd,
                    caller: Caller {
                        id: caller_id,
                        name: caller_name,
                        source: CallSource::Feed,
                    },
                    caller_stats,
                links: Vec::new(),
                origin_ts_ms: origin(ts_ms),
            })),
        },
    )
}

/// The call in a frame, if it carries one (see [`parse_frame`]).
pub fn frame_to_call(protocol: Protocol, frame: &[u8], now_ms: u64, chains: &ChainList) -> Result<Option<CallEvent>, String> {
    Ok(match parse_frame(protocol, frame, now_ms, chains)? {
        Some(FeedEvent::Call(call)) => Some(call),
        _ => None,
    })
}

/// The call's subject and message id.
pub fn call_output(call: &CallEvent) -> Output {
    Output {
        subject: subjects::call(call.chain.as_str(), call.caller.source.as_str()),
        msg_id: call.msg_id(),
        payload: herald_schemas::encode(call),
    }
}

/// A reconnecting websocket source.
#[derive(Clone)]
pub struct WebsocketSource {
    pub url: String,
    pub protocol: Protocol,
    pub js: herald_runtime::Js,
    /// Unacknowledged publishes before reading pauses.
    pub max_in_flight: usize,
    /// The chains accepted (others are dead-lettered).
    pub chains: ChainList,
}

impl WebsocketSource {
    /// Runs until `shutdown`, reconnecting on every error (250 ms doubling to 30 s, full
    /// jitter; reset after a connection that delivered frames).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut attempt: u32 = 0;
        while !shutdown.is_cancelled() {
            match self.session(&shutdown).await {
                Ok(frames) if frames > 0 => attempt = 0,
                Ok(_) => attempt += 1,
                Err(e) => {
                    attempt += 1;
                    tracing::warn!(source = self.protocol.name(), error = %e, attempt, "websocket disconnected");
                }
            }
            metrics::counter!(super::super::metrics::SOURCE_RECONNECTS.name, "source" => self.protocol.name()).increment(1);
            let delay = RECONNECT.delay(attempt);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One connection: returns the number of frames read.
    async fn session(&self, shutdown: &CancellationToken) -> anyhow::Result<u64> {
        let (mut ws, _) = connect(&self.url).await?;
        tracing::info!(source = self.protocol.name(), url = %self.url, "websocket connected");
        if self.protocol == Protocol::SolanaTransactions {
            ws.send(Message::text(raydium::subscribe_request())).await?;
        }
        let mut pending = FuturesUnordered::new();
        let mut frames = 0u64;
        loop {
            while pending.len() >= self.max_in_flight {
                pending.next().await;
            }
            let msg = tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(()) = pending.next(), if !pending.is_empty() => continue,
                msg = ws.next() => msg,
            };
            let bytes = match msg {
                None => break,
                Some(Err(e)) => {
                    while pending.next().await.is_some() {}
                    return Err(e.into());
                }
                Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                Some(Ok(Message::Binary(b))) => b.to_vec(),
                Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => continue,
            };
            frames += 1;
            metrics::counter!(super::super::metrics::SOURCE_FRAMES.name, "source" => self.protocol.name()).increment(1);
            match parse_frame(self.protocol, &bytes, herald_schemas::now_ms(), &self.chains) {
                Ok(None) => {}
                Ok(Some(event)) => pending.push(publish_until_acked(self.js.clone(), event.output(), shutdown.clone())),
                Err(reason) => {
                    let letter = DeadLetter {
                        stage: self.protocol.name(),
                        error: &reason,
                        original_subject: &self.url,
                        original_sequence: None,
                        payload: &bytes,
                    };
                    if let Err(e) = dead_letter(&self.js, letter).await {
                        tracing::error!(error = %e, "dead-letter publish failed");
                    }
                }
            }
        }
        while pending.next().await.is_some() {}
        Ok(frames)
    }
}

/// Opens `url` (`ws://` only: this build has no TLS for feeds) through
/// [`TextAsBinary`], so text frames arrive as bytes.
async fn connect(
    url: &str,
) -> anyhow::Result<(
    tokio_tungstenite::WebSocketStream<TextAsBinary<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::handshake::client::Response,
)> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let request = url.into_client_request()?;
    let uri = request.uri();
    anyhow::ensure!(uri.scheme_str() == Some("ws"), "only ws:// feeds are supported, not {url}");
    let host = uri.host().ok_or_else(|| anyhow::anyhow!("no host in {url}"))?.to_string();
    let port = uri.port_u16().unwrap_or(80);
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(|c| c == '[' || c == ']'), port)).await?;
    Ok(tokio_tungstenite::client_async(request, TextAsBinary::new(tcp)).await?)
}

/// Publishes and waits for the ack, retrying (same message id) until acknowledged or
/// shut down.
async fn publish_until_acked(js: herald_runtime::Js, out: Output, shutdown: CancellationToken) {
    let mut attempt = 0;
    loop {
        match herald_runtime::publish_all(&js, vec![out.clone()]).await {
            Ok(()) => {
                metrics::counter!(super::super::metrics::SOURCE_PUBLISHED.name).increment(1);
                return;
            }
            Err(e) => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "publish failed, retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(PUBLISH_RETRY.delay(attempt)) => {}
                }
            }
        }
    }
}

/// Reconnecting: 250 ms doubling to 30 s, with full jitter so many clients dropped at
/// once do not come back at once (AWS architecture blog, "Exponential Backoff and
/// Jitter").
pub const RECONNECT: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30)).with_jitter();

/// Retrying a publish to JetStream: 250 ms doubling to 30 s.
const PUBLISH_RETRY: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_back_off_with_jitter_under_the_cap() {
        for attempt in 1..40 {
            assert!(RECONNECT.delay(attempt) <= Duration::from_secs(30), "{attempt}");
        }
        assert_eq!(PUBLISH_RETRY.delay(3), Duration::from_secs(1));
    }

    #[test]
    fn price_frames_become_price_updates() {
        let e = parse_frame(
            Protocol::HeraldFeed,
            br#"{"type":"price","chain":"sol","token":"T","price_usd":0.5,"ts_ms":9}"#,
            1,
            &ChainList::default(),
        )
        .unwrap()
        .unwrap();
        let out = e.output();
        assert_eq!(
            (out.subject.as_str(), out.msg_id.as_str()),
            ("herald.prices.solana", "feed:solana:T:9")
        );
        assert!(parse_frame(
            Protocol::HeraldFeed,
            br#"{"type":"price","chain":"sol","token":"T","price_usd":-1,"ts_ms":9}"#,
            1,
            &ChainList::default(),
        )
        .is_err());
    }

    #[test]
    fn bad_frames_have_reasons() {
        let chains = ChainList::default();
        let e = frame_to_call(Protocol::HeraldFeed, b"{not json", 0, &chains).unwrap_err();
        assert!(e.starts_with("malformed feed frame"), "{e}");
        let e = frame_to_call(Protocol::HeraldFeed, &vec![b' '; MAX_FRAME_BYTES + 1], 0, &chains).unwrap_err();
        assert!(e.starts_with("oversized frame"), "{e}");
        assert_eq!(frame_to_call(Protocol::HeraldFeed, br#"{"type":"heartbeat"}"#, 0, &chains), Ok(None));
        let call = frame_to_call(
            Protocol::HeraldFeed,
            br#"{"type":"call","id":"1","chain":"SOL","token":"T","caller_id":"c","ts_ms":0}"#,
            42,
            &chains,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (call.chain.as_str(), call.origin_ts_ms, call.msg_id().as_str()),
            ("solana", 42, "feed:1")
        );
    }
}
