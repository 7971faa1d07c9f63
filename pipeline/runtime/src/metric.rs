//! Metric definitions: every name a Herald process exports is declared once, typed,
//! with its unit, labels and help text, in its owner's list: the runtime's in
//! [`RUNTIME`], the core's and each product's in their `metrics.rs`, the bot's in
//! `herald_bot::metrics`. A process describes its lists to the exporter at start
//! ([`describe`]), so `/metrics` carries a `# HELP` line for each; tests check every
//! name is described and listed in `docs/operations.md`.
//!
//! ```
//! use herald_runtime::metric::Metric;
//! const PAIRS: Metric = Metric::counter("herald_chat_pairs_total", "Chats paired");
//! metrics::counter!(PAIRS.name).increment(1);
//! ```

use metrics::Unit;

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric: its Prometheus name, kind, unit, label names and help text.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    /// Label names every series of it carries (`stage`, `kind`, ...).
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

impl Metric {
    /// A counter of events (unit: count).
    pub const fn counter(name: &'static str, help: &'static str) -> Self {
        Metric {
            name,
            kind: Kind::Counter,
            unit: Unit::Count,
            labels: &[],
            help,
        }
    }

    /// A gauge of a count (messages pending, ...).
    pub const fn gauge(name: &'static str, help: &'static str) -> Self {
        Metric {
            kind: Kind::Gauge,
            ..Metric::counter(name, help)
        }
    }

    /// A histogram of durations in seconds.
    pub const fn seconds(name: &'static str, help: &'static str) -> Self {
        Metric {
            kind: Kind::Histogram,
            unit: Unit::Seconds,
            ..Metric::counter(name, help)
        }
    }

    /// The same metric with these labels.
    pub const fn labelled(self, labels: &'static [&'static str]) -> Self {
        Metric { labels, ..self }
    }
}

/// Describes `metrics` to the installed recorder (help text and unit), so the exporter
/// prints them with `# HELP`. Call once per list at start (after
/// [`crate::telemetry::install_metrics`]).
pub fn describe(metrics: &[Metric]) {
    for m in metrics {
        match m.kind {
            Kind::Counter => metrics::describe_counter!(m.name, m.unit, m.help),
            Kind::Gauge => metrics::describe_gauge!(m.name, m.unit, m.help),
            Kind::Histogram => metrics::describe_histogram!(m.name, m.unit, m.help),
        }
    }
}

/// The sum of the series of metric `name` in Prometheus text `text` whose labels
/// include every pair of `labels` (every series when empty); 0 when there is none.
/// Tests, demos and benches read a process's own counters with it.
///
/// ```
/// use herald_runtime::metric::sum_in;
/// let text = "herald_x_total{stage=\"a\"} 2\nherald_x_total{stage=\"b\"} 3\nherald_x_total_more 9\n";
/// assert_eq!(sum_in(text, "herald_x_total", &[]), 5.0);
/// assert_eq!(sum_in(text, "herald_x_total", &[("stage", "b")]), 3.0);
/// ```
pub fn sum_in(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{'])))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Batches a [`crate::batch::Batcher`] sent.
pub const BATCHES: Metric = Metric::counter(
    "herald_batches_total",
    "Batches of concurrent requests sent as one (one Redis round trip each)",
)
.labelled(&["batch"]);
/// Requests those batches carried.
pub const BATCHED_REQUESTS: Metric = Metric::counter(
    "herald_batched_requests_total",
    "Requests carried by those batches (divided by batches: the mean batch size)",
)
.labelled(&["batch"]);
/// Messages a stage took from its consumer.
pub const STAGE_IN: Metric = Metric::counter("herald_stage_in_total", "Messages a stage took from its consumer").labelled(&["stage"]);
/// Inputs decided `Forward` and committed.
pub const STAGE_FORWARDED: Metric = Metric::counter(
    "herald_stage_forwarded_total",
    "Inputs a stage forwarded and committed (zero or more outputs)",
)
.labelled(&["stage"]);
/// Outputs published.
pub const STAGE_OUT: Metric = Metric::counter("herald_stage_out_total", "Messages a stage published").labelled(&["stage"]);
/// Transient failures handed back for redelivery.
pub const STAGE_RETRIES: Metric = Metric::counter(
    "herald_stage_retries_total",
    "Transient failures handed back to the stream for redelivery",
)
.labelled(&["stage"]);
/// Inputs decided `Drop`, by reason.
pub const STAGE_DROPPED: Metric =
    Metric::counter("herald_stage_dropped_total", "Inputs a stage dropped on purpose, by reason").labelled(&["stage", "reason"]);
/// Apply steps run, by what they found (`made`, `already_made`, `not_made`).
pub const STAGE_EFFECTS: Metric = Metric::counter(
    "herald_stage_effects_total",
    "Apply steps a stage ran, by effect: made now, already made by an earlier delivery, or not made",
)
.labelled(&["stage", "effect"]);
/// Time per message, decode to ack.
pub const STAGE_SECONDS: Metric =
    Metric::seconds("herald_stage_seconds", "Time a stage spent on one message, decode to ack").labelled(&["stage"]);
/// Messages dead-lettered.
pub const DEAD_LETTERED: Metric = Metric::counter(
    "herald_dead_lettered_total",
    "Messages given up and published to the dead-letter subject",
)
.labelled(&["stage"]);
/// A consumer's messages not yet delivered.
pub const CONSUMER_PENDING: Metric =
    Metric::gauge("herald_consumer_pending", "Messages of a stage's consumer not yet delivered").labelled(&["stage"]);
/// A consumer's messages delivered and not yet acknowledged.
pub const CONSUMER_ACK_PENDING: Metric = Metric::gauge(
    "herald_consumer_ack_pending",
    "Messages of a stage's consumer delivered and not yet acknowledged",
)
.labelled(&["stage"]);
/// A consumer's messages delivered more than once.
pub const CONSUMER_REDELIVERED: Metric =
    Metric::gauge("herald_consumer_redelivered", "Messages of a stage's consumer being redelivered").labelled(&["stage"]);
/// Changes a KV replica applied.
pub const REPLICA_CHANGES: Metric =
    Metric::counter("herald_replica_changes_total", "Changes a local replica of a KV bucket applied").labelled(&["bucket"]);
/// Failed runs of a periodic task.
pub const PERIODIC_FAILURES: Metric =
    Metric::counter("herald_periodic_failures_total", "Failed runs of a periodic task").labelled(&["task"]);

/// Whether the process is ready (`/readyz` would answer 200): 1 or 0, set at each
/// scrape.
pub const READY: Metric = Metric::gauge(
    "herald_ready",
    "1 while the process is ready (/readyz answers 200), else 0; set at each scrape",
);

/// The runtime's metrics.
pub const RUNTIME: &[Metric] = &[
    READY,
    STAGE_IN,
    STAGE_FORWARDED,
    STAGE_OUT,
    STAGE_RETRIES,
    STAGE_DROPPED,
    STAGE_EFFECTS,
    STAGE_SECONDS,
    BATCHES,
    BATCHED_REQUESTS,
    DEAD_LETTERED,
    CONSUMER_PENDING,
    CONSUMER_ACK_PENDING,
    CONSUMER_REDELIVERED,
    REPLICA_CHANGES,
    PERIODIC_FAILURES,
];
