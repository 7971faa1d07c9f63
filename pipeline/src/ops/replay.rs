//! `pipeline replay`: re-deliver a stream's messages, selected by sequence or time range
//! and subject filter, to their own subject (back into the stage that consumes it) or
//! another subject, at a chosen rate.
//!
//! Replaying into the live pipeline does not re-notify anyone: every stage's outputs
//! carry idempotency keys, and fan-out skips users already sent a token.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::HeaderMap;
use time::OffsetDateTime;

use herald_runtime::reader::scan;

/// Which messages to replay. Bounds are inclusive; unset bounds are open.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub stream: String,
    pub from_seq: Option<u64>,
    pub to_seq: Option<u64>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    /// Subject filter within the stream (wildcards allowed).
    pub subject: Option<String>,
}

impl Selection {
    fn start(&self) -> DeliverPolicy {
        match (self.from_seq, self.since) {
            (Some(seq), _) => DeliverPolicy::ByStartSequence { start_sequence: seq },
            (None, Some(t)) => DeliverPolicy::ByStartTime { start_time: t },
            (None, None) => DeliverPolicy::All,
        }
    }

    /// Whether a message at `seq`, stored at `at`, is past the end of the selection.
    fn past_end(&self, seq: u64, at: OffsetDateTime) -> bool {
        self.to_seq.is_some_and(|to| seq > to) || self.until.is_some_and(|u| at > u)
    }

    /// Whether it is inside (the start is enforced by the consumer; both bounds are
    /// checked again here so a sequence and a time bound combine).
    fn contains(&self, seq: u64, at: OffsetDateTime) -> bool {
        self.from_seq.is_none_or(|f| seq >= f) && self.since.is_none_or(|s| at >= s) && !self.past_end(seq, at)
    }
}

/// Where replayed messages go.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Each message's own subject: back into the stream and the stage consuming it.
    Original,
    /// One subject for all.
    Subject(String),
}

/// How to replay.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Messages per second; `None` = as fast as the acks come back.
    pub rate: Option<u32>,
    /// Only count what would be replayed.
    pub dry_run: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub matched: u64,
    pub published: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub elapsed: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let range = match (self.first_seq, self.last_seq) {
            (Some(a), Some(b)) => format!("sequences {a}..={b}"),
            _ => "no messages".into(),
        };
        write!(
            f,
            "matched {} ({range}), published {} in {:.1} s",
            self.matched,
            self.published,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Replays the selection. Each published copy carries `Herald-Replay-Of:
/// <stream>:<seq>` and the message id `replay:<stream>:<seq>` (a replay repeated within
/// the target stream's duplicate window is dropped there). A target subject no stream
/// captures (a tap for a debugging subscriber) gets plain core-NATS publishes.
///
/// Errors: the stream does not exist, or a publish was not acknowledged (the summary up
/// to that point is lost; rerun with `--from-seq` past the last good sequence).
///
/// ```no_run
/// use herald_pipeline::ops::{parse_time, replay};
///
/// # async fn demo(js: herald_runtime::Js) -> anyhow::Result<()> {
/// let last_hour = replay::Selection { stream: "CALLS".into(), since: Some(parse_time("1h")?), ..Default::default() };
/// let summary = replay::replay(&js, &last_hour, &replay::Target::Original, &replay::Options { rate: Some(500), ..Default::default() }).await?;
/// println!("{summary}");
/// # Ok(()) }
/// ```
pub async fn replay(js: &herald_runtime::Js, sel: &Selection, target: &Target, opts: &Options) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let last = js.get_stream(&sel.stream).await?.info().await?.state.last_sequence;
    let first = sel.from_seq.unwrap_or(1);
    // never past what was there at the start: replaying into the same stream appends
    let end = sel.to_seq.unwrap_or(last).min(last);
    let bar = indicatif::ProgressBar::new(end.saturating_sub(first) + 1);
    if !opts.progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}").expect("static template"));
    let core = match target {
        Target::Subject(s) => {
            let server = js.for_subject(s)?;
            server.stream_by_subject(s.as_str()).await.is_err().then(|| server.client())
        }
        _ => None,
    };
    let interval = opts.rate.map(|r| Duration::from_secs_f64(1.0 / r.max(1) as f64));
    let mut next_at = Instant::now();
    let mut summary = Summary::default();
    scan(js, &sel.stream, sel.subject.as_deref(), sel.start(), async |m| {
        let info = m.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        let (seq, at) = (info.stream_sequence, info.published);
        bar.set_position(seq.saturating_sub(first));
        if seq > end || sel.past_end(seq, at) {
            return Ok(false);
        }
        if !sel.contains(seq, at) {
            return Ok(true);
        }
        summary.matched += 1;
        summary.first_seq.get_or_insert(seq);
        summary.last_seq = Some(seq);
        if opts.dry_run {
            return Ok(true);
        }
        if let Some(step) = interval {
            tokio::time::sleep_until(next_at.into()).await;
            next_at = next_at.max(Instant::now() - step) + step;
        }
        let subject = match target {
            Target::Original => m.subject.to_string(),
            Target::Subject(s) => s.clone(),
        };
        let mut headers = HeaderMap::new();
        for (name, values) in m.headers.iter().flat_map(|h| h.iter()) {
            if AsRef::<str>::as_ref(name) != AsRef::<str>::as_ref(&async_nats::header::NATS_MESSAGE_ID) {
                for v in values {
                    headers.append(name.clone(), v.clone());
                }
            }
        }
        headers.insert("Herald-Replay-Of", format!("{}:{seq}", sel.stream).as_str());
        headers.insert(async_nats::header::NATS_MESSAGE_ID, format!("replay:{}:{seq}", sel.stream).as_str());
        match &core {
            Some(client) => client.publish_with_headers(subject, headers, m.payload.clone()).await?,
            None => {
                js.publish_with_headers(subject, headers, m.payload.clone()).await?.await?;
            }
        }
        summary.published += 1;
        Ok(true)
    })
    .await?;
    if let Some(client) = core {
        client.flush().await?;
    }
    bar.finish_and_clear();
    summary.elapsed = started.elapsed();
    Ok(summary)
}
