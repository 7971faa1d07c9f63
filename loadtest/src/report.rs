//! Run reports: latency percentiles from an HDR histogram, as text and JSON.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// A histogram of microseconds, 1 µs to 1 h, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds")
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: h.max() as f64 / 1000.0,
        }
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} p50={:.2} ms p99={:.2} ms p99.9={:.2} ms max={:.2} ms",
            self.count, self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms
        )
    }
}

/// The raw JetStream ceiling for the same message size.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Ceiling {
    pub messages: u64,
    pub message_bytes: usize,
    pub publish_per_s: f64,
    pub consume_per_s: f64,
    /// Messages / (publish time + consume time): one publish and one consume each.
    pub publish_and_consume_per_s: f64,
}

/// One second of a run.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Tick {
    /// End of the second, from the start of sending.
    pub t_s: u64,
    /// Events per second the generator aimed at.
    pub target_rate: f64,
    /// Messages that arrived in this second.
    pub received: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Resident memory of the sampled processes, summed.
    pub rss_mb: Option<f64>,
    /// CPU of the sampled processes, summed, in percent of one core.
    pub cpu_pct: Option<f64>,
}

/// Everything a load run measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub scenario: String,
    /// fixed, stepped or ramp.
    pub mode: String,
    pub rate_per_s: u64,
    pub duration_s: u64,
    pub users: usize,
    pub events_sent: u64,
    pub notifications_expected: u64,
    /// Unique notifications seen on the subject.
    pub notifications_seen: u64,
    /// Retried publishes of an already-published notification (JetStream's duplicate
    /// window dropped them; no user sees them).
    pub republished_dropped: u64,
    /// Messages the Bot API emulator accepted during the run (when one was given).
    pub delivered_to_telegram: Option<u64>,
    pub throughput_per_s: f64,
    /// Feed send -> notification published on `herald.out.notify.>`.
    pub latency_to_subject: Percentiles,
    /// Feed send -> accepted by the Bot API emulator (when an emulator URL was given).
    pub latency_to_telegram: Option<Percentiles>,
    pub ceiling: Option<Ceiling>,
    /// throughput / ceiling.publish_and_consume_per_s
    pub ratio_to_ceiling: Option<f64>,
    pub max_rss_mb: Option<f64>,
    pub max_cpu_pct: Option<f64>,
    /// Stepped and ramped runs: the target rate of the first second whose p99 broke the
    /// latency target.
    pub saturation_rate_per_s: Option<f64>,
    /// The throughput run only: the same load through the null pipeline
    /// ([`crate::null_pipeline`]) on a fresh stack.
    pub null_pipeline: Option<NullFigures>,
    pub timeline: Vec<Tick>,
}

/// The null pipeline's run beside Herald's (issue 25): Herald ÷ null is the runtime's
/// efficiency, null ÷ raw the cost of the hops.
#[derive(Debug, Clone, Serialize)]
pub struct NullFigures {
    pub throughput_per_s: f64,
    pub notifications_seen: u64,
    pub notifications_expected: u64,
    pub latency_to_subject: Percentiles,
    /// Payload bytes per hop, read from Herald's streams after its run.
    pub sizes: crate::null_pipeline::HopSizes,
    pub max_cpu_pct: Option<f64>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "scenario {} ({}): {} events/s for {} s, {} users",
            self.scenario, self.mode, self.rate_per_s, self.duration_s, self.users
        )?;
        writeln!(f, "  events sent:            {}", self.events_sent)?;
        writeln!(
            f,
            "  notifications seen:     {} of {} expected ({} retried publishes dropped by the duplicate window)",
            self.notifications_seen, self.notifications_expected, self.republished_dropped
        )?;
        writeln!(f, "  throughput:             {:.0} notifications/s", self.throughput_per_s)?;
        writeln!(f, "  feed -> subject:        {}", self.latency_to_subject)?;
        if let Some(t) = &self.latency_to_telegram {
            writeln!(f, "  feed -> Telegram:       {t}")?;
        }
        if let Some(c) = &self.ceiling {
            writeln!(
                f,
                "  raw JetStream ceiling:  {:.0} msg/s publish+consume ({:.0} publish, {:.0} consume; {} msgs of {} B)",
                c.publish_and_consume_per_s, c.publish_per_s, c.consume_per_s, c.messages, c.message_bytes
            )?;
        }
        if let Some(r) = self.ratio_to_ceiling {
            writeln!(f, "  ratio to ceiling:       {:.2}", r)?;
        }
        if let Some(n) = &self.null_pipeline {
            writeln!(
                f,
                "  null pipeline:          {:.0} notifications/s ({} of {}; {}); Herald / null {:.2}",
                n.throughput_per_s,
                n.notifications_seen,
                n.notifications_expected,
                n.latency_to_subject,
                self.throughput_per_s / n.throughput_per_s
            )?;
            if let Some(c) = &self.ceiling {
                writeln!(
                    f,
                    "  null / raw ceiling:     {:.2}",
                    n.throughput_per_s / c.publish_and_consume_per_s
                )?;
            }
        }
        if let Some(d) = self.delivered_to_telegram {
            writeln!(f, "  delivered to Telegram:  {d}")?;
        }
        if let Some(m) = self.max_rss_mb {
            writeln!(f, "  max RSS (sampled pids): {m:.1} MB")?;
        }
        if let Some(c) = self.max_cpu_pct {
            writeln!(f, "  max CPU (sampled pids): {c:.0}% of one core")?;
        }
        match self.saturation_rate_per_s {
            Some(r) => writeln!(f, "  saturation:             p99 broke the target at {r:.0} events/s")?,
            None if self.mode != "fixed" => writeln!(f, "  saturation:             not reached")?,
            None => {}
        }
        Ok(())
    }
}

/// Resident memory of a process in MB, from `/proc/<pid>/status` (Linux).
pub fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// User plus system CPU time of processes, in clock ticks (1/100 s on Linux), from
/// `/proc/<pid>/stat`.
pub fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // fields after the parenthesised command name; utime and stime are 14 and 15
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}
