//! What an fsync on every write costs (issue 13, money durability): the same JetStream
//! work on a nats-server with nats-server's default `sync_interval` (2 minutes) and on
//! one with Herald's `sync_interval: always` (`nats/nats-server.conf`), each fresh, on
//! this machine's disk.
//!
//! - pipelined: the raw JetStream ceiling ([`crate::run::ceiling`]): 20,000 publishes of
//!   300 bytes with up to 4,096 acks outstanding, then consumed (what a busy stream does);
//! - one at a time: 2,000 publishes of a ledger entry's size, each waiting for its ack
//!   before the next (what the credit stage does per deposit), with p50/p99 latency.

use std::time::Instant;

use herald_testkit::LocalNats;
use serde::Serialize;

/// The figures of one server setting.
#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    pub sync_interval: String,
    pub pipelined_publish_per_s: f64,
    pub pipelined_publish_and_consume_per_s: f64,
    pub sequential_publish_per_s: f64,
    pub sequential_p50_us: u64,
    pub sequential_p99_us: u64,
}

/// Both settings, and the cost of `always` as a share of the default's rate.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub default: Setting,
    pub always: Setting,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "| sync_interval | pipelined publish/s | pipelined publish+consume/s | one-at-a-time publish/s | p50 µs | p99 µs |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|")?;
        for s in [&self.default, &self.always] {
            writeln!(
                f,
                "| {} | {:.0} | {:.0} | {:.0} | {} | {} |",
                s.sync_interval,
                s.pipelined_publish_per_s,
                s.pipelined_publish_and_consume_per_s,
                s.sequential_publish_per_s,
                s.sequential_p50_us,
                s.sequential_p99_us
            )?;
        }
        write!(
            f,
            "always / default: pipelined {:.2}, one at a time {:.2}",
            self.always.pipelined_publish_per_s / self.default.pipelined_publish_per_s,
            self.always.sequential_publish_per_s / self.default.sequential_publish_per_s
        )
    }
}

async fn measure(sync_interval: Option<&str>) -> anyhow::Result<Setting> {
    let nats = LocalNats::start_syncing(sync_interval)?;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    let ceiling = crate::run::ceiling(&js, 20_000, 300).await?;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "DURABILITY".into(),
        subjects: vec!["durability.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    let mut latencies = hdrhistogram::Histogram::<u64>::new(3)?;
    let entry = bytes::Bytes::from(vec![b'x'; 250]);
    let started = Instant::now();
    const N: u64 = 2_000;
    for i in 0..N {
        let t = Instant::now();
        js.publish(format!("durability.{}", i % 100), entry.clone()).await?.await?;
        latencies.record(t.elapsed().as_micros() as u64)?;
    }
    Ok(Setting {
        sync_interval: sync_interval.unwrap_or("always").to_string(),
        pipelined_publish_per_s: ceiling.publish_per_s,
        pipelined_publish_and_consume_per_s: ceiling.publish_and_consume_per_s,
        sequential_publish_per_s: N as f64 / started.elapsed().as_secs_f64(),
        sequential_p50_us: latencies.value_at_quantile(0.5),
        sequential_p99_us: latencies.value_at_quantile(0.99),
    })
}

/// Runs both settings, one after the other, each on a fresh server.
///
/// Errors: a server would not start, or a publish failed.
pub async fn run() -> anyhow::Result<Report> {
    Ok(Report {
        default: measure(Some("2m")).await?,
        always: measure(None).await?,
    })
}
