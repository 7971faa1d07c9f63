//! The one compliance test every stage passes (as Vector requires of its components),
//! run on [`StageHandle`]s so a product's list of stages is its list of cases.
//!
//! For each stage, on a real nats-server, one after another (its input stream purged
//! first, so earlier stages' outputs are not its inputs):
//! 1. **redelivery**: its sample is processed, then the ack is "lost" after the commit
//!    (injected), so the input comes back; the second decision may republish the same
//!    message ids but no new one. Checked with the stage's own decisions, not a
//!    stream's duplicate window, which would hide repeats.
//!    A stage with an apply step makes its effect at most once, by its own account
//!    (`Effect::Made`): a later delivery finds it made, or needs no apply step.
//! 2. **metrics**: `herald_stage_in_total` and `herald_stage_seconds` are emitted.
//! 3. **malformed input** is dead-lettered on `herald.dlq.<stage>` with its reason.
//! 4. **a transient failure** (injected at every delivery) is retried, then
//!    dead-lettered after `max_deliver` deliveries, saying so.
//! 5. **shutdown** is clean: the stage returns within 5 s and its consumer has nothing
//!    pending or unacknowledged.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use herald_runtime::{Faults, StageHandle};
use tokio_util::sync::CancellationToken;

/// What one stage did in the harness: one row of the printed table.
#[derive(Debug, Clone)]
pub struct Report {
    pub stage: &'static str,
    /// Its durable consumer (one stage may run as several consumers).
    pub consumer: String,
    pub stream: String,
    /// Message ids the sample's first delivery published.
    pub outputs: usize,
    /// What the sample's apply steps found, delivery by delivery (empty: no apply step).
    pub effects: Vec<herald_runtime::Effect>,
    /// The reason the malformed input was dead-lettered with.
    pub malformed_reason: String,
    /// The reason the always-failing input was dead-lettered with.
    pub transient_reason: String,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<16} {:<16} {:<9} outputs {:>2} · redelivery: nothing new{} · malformed -> DLQ ({}) · transient -> DLQ ({}) · clean shutdown",
            self.stage,
            self.consumer,
            self.stream,
            self.outputs,
            match self.effects.first() {
                Some(herald_runtime::Effect::Made) => ", effect made once",
                Some(_) => ", effect not made",
                None => "",
            },
            cut(&self.malformed_reason),
            cut(&self.transient_reason)
        )
    }
}

fn cut(s: &str) -> String {
    s.chars().take(48).collect()
}

/// A stream's messages on `subject`, waiting up to 10 s for at least `n`.
async fn wait_for(js: &herald_runtime::Js, stream: &str, subject: &str, n: usize) -> Vec<jetstream::message::StreamMessage> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = js.get_stream(stream).await.expect("stream exists");
        let mut found = Vec::new();
        let info = s.info().await.expect("stream info");
        let (first, last) = (info.state.first_sequence, info.state.last_sequence);
        if info.state.messages > 0 {
            for seq in first..=last {
                if let Ok(m) = s.get_raw_message(seq).await {
                    if m.subject.as_str() == subject {
                        found.push(m);
                    }
                }
            }
        }
        if found.len() >= n || tokio::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes `payload` on `subject` with message id `id`; the stream sequence.
async fn publish(js: &herald_runtime::Js, subject: &str, id: &str, payload: Vec<u8>) -> u64 {
    js.publish_with_id(subject.to_string(), id, payload.into())
        .await
        .expect("publish")
        .await
        .expect("publish ack")
        .sequence
}

/// Waits until `faults` has seen `deliveries` decisions of input `seq`.
async fn wait_decisions(faults: &Faults, seq: u64, deliveries: usize, stage: &str) -> Vec<Option<Vec<String>>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let seen = faults.outputs(seq);
        if seen.len() >= deliveries {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{stage}: {} of {deliveries} deliveries decided within 15 s",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The reason header of the dead letter of stream sequence `original` of `stage`.
async fn dead_letter_reason(js: &herald_runtime::Js, stage: &str, original: u64) -> Option<String> {
    let subject = format!("herald.dlq.{stage}");
    let letters = wait_for(js, "DLQ", &subject, 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut letters = letters;
    loop {
        for m in &letters {
            let h = m.headers.clone();
            let seq = h.get("Herald-Original-Sequence").map(|v| v.as_str().to_string());
            if seq.as_deref() == Some(&original.to_string()) {
                return h.get("Herald-Error").map(|v| v.as_str().to_string());
            }
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        letters = wait_for(js, "DLQ", &subject, letters.len() + 1).await;
    }
}

/// Runs the whole contract on one stage. Panics, naming the stage and the check, on
/// the first failure.
pub async fn check(js: &herald_runtime::Js, metrics: &Render, mut handle: StageHandle) -> Report {
    let stage = handle.name;
    let (subject, sample) = handle.sample.clone().unwrap_or_else(|| panic!("{stage}: no sample input"));
    // quick retries: the harness waits for max_deliver of them
    handle.config.max_deliver = 3;
    handle.config.ack_wait = Duration::from_secs(5);
    let stream = handle.config.stream.clone();
    let durable = handle.config.durable.clone();
    // what earlier stages published into this stream is not this stage's test input
    js.get_stream(&stream).await.expect("stream").purge().await.expect("purge");
    let faults = Arc::new(Faults::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(handle.run_with_faults(js.clone(), shutdown.clone(), faults.clone()));

    // 1. redelivery after a lost ack: no new output
    faults.lose_ack.store(1, Ordering::SeqCst);
    let seq = publish(js, &subject, &format!("compliance.{durable}.sample"), sample.clone()).await;
    let first = wait_decisions(&faults, seq, 1, stage).await[0]
        .clone()
        .unwrap_or_else(|| panic!("{stage}: its sample input was dropped; the harness needs one it forwards"));
    let decided = wait_decisions(&faults, seq, 2, stage).await;
    for (n, again) in decided.iter().enumerate().skip(1) {
        let new: Vec<&String> = again.iter().flatten().filter(|id| !first.contains(id)).collect();
        assert!(
            new.is_empty(),
            "{stage}: delivery {} of one input published new message ids {new:?}",
            n + 1
        );
    }

    let effects = faults.effects(seq);
    let made = effects.iter().filter(|e| **e == herald_runtime::Effect::Made).count();
    assert!(made <= 1, "{stage}: one input made its effect {made} times: {effects:?}");

    // 2. metrics
    let text = metrics();
    for m in ["herald_stage_in_total", "herald_stage_seconds_count"] {
        assert!(text.contains(&format!("{m}{{stage=\"{stage}\"}}")), "{stage}: no {m}");
    }

    // 3. malformed input: dead-lettered with its reason
    let bad = publish(js, &subject, &format!("compliance.{durable}.malformed"), b"{not json".to_vec()).await;
    let malformed_reason = dead_letter_reason(js, stage, bad)
        .await
        .unwrap_or_else(|| panic!("{stage}: malformed input was not dead-lettered"));
    assert!(!malformed_reason.is_empty(), "{stage}: a dead letter without a reason");

    // 4. a transient failure at every delivery: retried, then dead-lettered
    faults.transient.store(3, Ordering::SeqCst);
    let failing = publish(js, &subject, &format!("compliance.{durable}.transient"), sample).await;
    let transient_reason = dead_letter_reason(js, stage, failing)
        .await
        .unwrap_or_else(|| panic!("{stage}: a failing input was not dead-lettered after max_deliver"));
    assert!(
        transient_reason.contains("failed after 3 deliveries"),
        "{stage}: dead-lettered for {transient_reason:?}, not after its 3 deliveries"
    );

    // 5. clean shutdown, nothing left
    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap_or_else(|_| panic!("{stage}: did not stop within 5 s of shutdown"));
    result.expect("stage task").unwrap_or_else(|e| panic!("{stage}: {e:#}"));
    let mut consumer: jetstream::consumer::PullConsumer = js
        .get_stream(&stream)
        .await
        .expect("stream")
        .get_consumer(&durable)
        .await
        .expect("consumer");
    let info = consumer.info().await.expect("consumer info");
    assert_eq!(info.num_ack_pending, 0, "{stage}: unacknowledged messages after shutdown");
    assert_eq!(info.num_pending, 0, "{stage}: unconsumed messages after shutdown");

    Report {
        stage,
        consumer: durable,
        stream,
        outputs: first.len(),
        effects,
        malformed_reason,
        transient_reason,
    }
}

/// Renders the process's Prometheus text (`PrometheusHandle::render`).
pub type Render = dyn Fn() -> String + Send + Sync;

/// Runs [`check`] on every handle in turn and prints the table.
pub async fn check_all(js: &herald_runtime::Js, metrics: &Render, handles: Vec<StageHandle>) -> Vec<Report> {
    let mut reports = Vec::new();
    for h in handles {
        reports.push(check(js, metrics, h).await);
    }
    println!("compliance: {} stages", reports.len());
    for r in &reports {
        println!("  {r}");
    }
    reports
}
