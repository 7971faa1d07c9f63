//! Reading a stream without consuming it: an ephemeral consumer that acks nothing,
//! removed when done. The one reader operators' tools (replay, dead letters), products
//! (a user's ledger, a round's journal) and tests use.
//!
//! It reads what is stored when the call starts (a stream still being written to does
//! not keep the read going) and asks for exactly as many messages as are pending, so it
//! returns as soon as they are in, with no fetch expiry to wait out.

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use futures::StreamExt;

use crate::classes::Js;

/// Reads `stream` from `start` on subjects matching `filter` (all when `None`), oldest
/// first, calling `visit` for each message until it returns `false` or every message
/// stored at the call's start was visited.
///
/// Errors: the stream is missing, NATS failed, or `visit` failed.
///
/// ```no_run
/// # async fn demo(js: herald_runtime::Js) -> anyhow::Result<()> {
/// use async_nats::jetstream::consumer::DeliverPolicy;
/// let mut n = 0;
/// herald_runtime::reader::scan(&js, "DLQ", None, DeliverPolicy::All, async |_m| { n += 1; Ok(n < 10) }).await?;
/// # Ok(()) }
/// ```
pub async fn scan(
    js: &Js,
    stream: &str,
    filter: Option<&str>,
    start: DeliverPolicy,
    mut visit: impl AsyncFnMut(jetstream::Message) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let mut reader = Reader::open(js, stream, filter, start).await?;
    let result = async {
        while let Some(m) = reader.next().await? {
            if !visit(m).await? {
                break;
            }
        }
        Ok(())
    }
    .await;
    reader.close().await;
    result
}

/// Every message of `stream` on subjects matching `filter`, oldest first.
///
/// Errors: the stream is missing, or NATS failed.
pub async fn read(js: &Js, stream: &str, filter: &str) -> anyhow::Result<Vec<jetstream::Message>> {
    read_from(js, stream, filter, 1).await
}

/// As [`read`], from stream sequence `start` on (the messages after one already read).
///
/// Errors: the stream is missing, or NATS failed.
pub async fn read_from(js: &Js, stream: &str, filter: &str, start: u64) -> anyhow::Result<Vec<jetstream::Message>> {
    let start = DeliverPolicy::ByStartSequence {
        start_sequence: start.max(1),
    };
    let mut reader = Reader::open(js, stream, Some(filter), start).await?;
    let mut out = Vec::with_capacity(reader.pending);
    let result = async {
        while let Some(m) = reader.next().await? {
            out.push(m);
        }
        Ok(())
    }
    .await;
    reader.close().await;
    result.map(|()| out)
}

/// How many messages of `stream` on subjects matching `filter` (all when `None`) lie
/// from `start` on, counted by the server (an ephemeral consumer's pending count; no
/// message is read): `DeliverPolicy::ByStartTime` of today's midnight counts today's.
///
/// Errors: the stream is missing, or NATS failed.
///
/// ```no_run
/// # async fn demo(js: herald_runtime::Js) -> anyhow::Result<()> {
/// use async_nats::jetstream::consumer::DeliverPolicy;
/// use herald_runtime::reader::{count, since, today_start_ms};
/// let today = count(&js, "CALLS", None, since(today_start_ms(herald_schemas::now_ms()))).await?;
/// # Ok(()) }
/// ```
pub async fn count(js: &Js, stream: &str, filter: Option<&str>, start: DeliverPolicy) -> anyhow::Result<u64> {
    let reader = Reader::open(js, stream, filter, start).await?;
    let n = reader.pending as u64;
    reader.close().await;
    Ok(n)
}

/// Reading from the first message stored at or after `ms` (ms since epoch).
pub fn since(ms: u64) -> DeliverPolicy {
    let start_time = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    DeliverPolicy::ByStartTime { start_time }
}

/// The start of `now_ms`'s UTC day, ms since epoch ("today" in operators' figures).
///
/// ```
/// assert_eq!(herald_runtime::reader::today_start_ms(86_400_000 + 5), 86_400_000);
/// ```
pub fn today_start_ms(now_ms: u64) -> u64 {
    now_ms - now_ms % 86_400_000
}

/// An ephemeral consumer and how far it has read: [`scan`] as a loop the caller
/// writes (where a closure would not be `Send`).
///
/// ```no_run
/// # async fn demo(js: herald_runtime::Js) -> anyhow::Result<()> {
/// use herald_runtime::reader::{since, Reader};
/// let mut reader = Reader::open(&js, "CALLS", Some("herald.calls.>"), since(0)).await?;
/// while let Some(m) = reader.next().await? {
///     println!("{}", m.subject);
/// }
/// reader.close().await;
/// # Ok(()) }
/// ```
pub struct Reader {
    stream: jetstream::stream::Stream,
    consumer: jetstream::consumer::PullConsumer,
    /// Messages pending when it was opened: what it reads at most.
    pending: usize,
    seen: usize,
    /// The stream's last sequence when it was opened: nothing after it is read.
    last: u64,
    batch: Option<jetstream::consumer::pull::Batch>,
    /// `seen` when the current batch was asked for.
    batch_start: usize,
}

impl Reader {
    /// Reads `stream` from `start` on subjects matching `filter` (all when `None`).
    ///
    /// Errors: the stream is missing, or NATS failed.
    pub async fn open(js: &Js, stream: &str, filter: Option<&str>, start: DeliverPolicy) -> anyhow::Result<Self> {
        let mut handle = js.get_stream(stream).await.map_err(|e| anyhow::anyhow!("stream {stream}: {e}"))?;
        let last = handle.info().await?.state.last_sequence;
        let mut consumer: jetstream::consumer::PullConsumer = handle
            .create_consumer(pull::Config {
                deliver_policy: start,
                ack_policy: AckPolicy::None,
                filter_subject: filter.unwrap_or_default().to_string(),
                inactive_threshold: std::time::Duration::from_secs(60),
                ..Default::default()
            })
            .await?;
        let pending = consumer.info().await?.num_pending as usize;
        Ok(Reader {
            stream: handle,
            consumer,
            pending,
            seen: 0,
            last,
            batch: None,
            batch_start: 0,
        })
    }

    /// The next message, or `None` once everything pending at the start was read.
    ///
    /// Errors: NATS failed.
    pub async fn next(&mut self) -> anyhow::Result<Option<jetstream::Message>> {
        loop {
            if self.seen >= self.pending {
                return Ok(None);
            }
            if let Some(batch) = self.batch.as_mut() {
                match batch.next().await {
                    Some(m) => {
                        let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
                        if m.info().map(|i| i.stream_sequence > self.last).unwrap_or(false) {
                            return Ok(None);
                        }
                        self.seen += 1;
                        return Ok(Some(m));
                    }
                    None if self.batch_was_empty() => return Ok(None), // nothing came in 5 s: deleted meanwhile
                    None => self.batch = None,
                }
            }
            self.batch_start = self.seen;
            self.batch = Some(
                self.consumer
                    .fetch()
                    .max_messages((self.pending - self.seen).min(1000))
                    .expires(std::time::Duration::from_secs(5))
                    .messages()
                    .await?,
            );
        }
    }

    fn batch_was_empty(&self) -> bool {
        self.seen == self.batch_start
    }

    /// Removes the consumer now: an ephemeral one lingers until its inactivity
    /// threshold, and a caller reading often would pile them up (the server caps them).
    /// Removes the consumer (it would expire after a minute unused anyway).
    pub async fn close(self) {
        let name = self.consumer.cached_info().name.clone();
        let _ = self.stream.delete_consumer(&name).await;
    }
}
