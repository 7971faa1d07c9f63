//! What an fsync on every write costs, as shipped (issue 20, durability classes): the
//! same JetStream work on the events server (nats-server's default `sync_interval`, 2
//! minutes) and on the money server (`sync_interval: always`), both fresh, on this
//! machine's disk.
//!
//! - pipelined: the raw JetStream ceiling ([`crate::run::ceiling`]): 20,000 publishes of
//!   300 bytes with up to 4,096 acks outstanding, then consumed (what a busy stream does);
//! - one at a time: 2,000 publishes of a ledger entry's size with a message id, each
//!   waiting for its ack before the next (what the credit stage does per deposit), with
//!   p50/p99 latency; on the money server into LEDGER itself.

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

/// Both classes' servers: `default` is the events server, `always` the money server.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub default: Setting,
    pub always: Setting,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "| server (sync_interval) | pipelined publish/s | pipelined publish+consume/s | one-at-a-time publish/s | p50 µs | p99 µs |"
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

/// Measures on `js` (one server): the pipelined ceiling, then `N` one-at-a-time
/// publishes on `subject(i)` with a message id each (as a stage publishes), into a
/// stream that must exist.
async fn measure(label: &str, js: &async_nats::jetstream::Context, subject: impl Fn(u64) -> String) -> anyhow::Result<Setting> {
    let ceiling = crate::run::ceiling(js, 20_000, 300).await?;
    let mut latencies = hdrhistogram::Histogram::<u64>::new(3)?;
    // a ledger entry's size (schemas/json/ledger_entry.v1.json, encoded)
    let entry = bytes::Bytes::from(vec![b'x'; 250]);
    let started = Instant::now();
    const N: u64 = 2_000;
    for i in 0..N {
        let headers = herald_runtime::msg_id_headers(&format!("durability-bench:{i}"));
        let t = Instant::now();
        js.publish_with_headers(subject(i), headers, entry.clone()).await?.await?;
        latencies.record(t.elapsed().as_micros() as u64)?;
    }
    Ok(Setting {
        sync_interval: label.to_string(),
        pipelined_publish_per_s: ceiling.publish_per_s,
        pipelined_publish_and_consume_per_s: ceiling.publish_and_consume_per_s,
        sequential_publish_per_s: N as f64 / started.elapsed().as_secs_f64(),
        sequential_p50_us: latencies.value_at_quantile(0.5),
        sequential_p99_us: latencies.value_at_quantile(0.99),
    })
}

/// Both classes' servers as shipped (`nats/nats-server.conf`, `nats/nats-money.conf`),
/// fresh, every stream set up: on the events server into a scratch stream, on the money
/// server into the real LEDGER stream (`herald.ledger.<user>`, 100 users): a ledger
/// entry's publish -> ack, fsync'd.
///
/// Errors: a server would not start, or a publish failed.
pub async fn run() -> anyhow::Result<Report> {
    let nats = LocalNats::start()?;
    let js = herald_pipeline::app::compose::connect(&nats.servers_args()).await?;
    herald_pipeline::app::compose::setup_all(&js, false, herald_runtime::setup::Replicas::Existing).await?;
    let events = js.events();
    events
        .create_stream(async_nats::jetstream::stream::Config {
            name: "DURABILITY".into(),
            subjects: vec!["durability.>".into()],
            storage: async_nats::jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let default = measure("events (2m, default)", events, |i| format!("durability.{}", i % 100)).await?;
    let money = js.of(herald_runtime::Class::Money)?;
    let always = measure("money (always)", money, |i| {
        herald_schemas::subjects::ledger(1_000_000 + (i % 100) as i64)
    })
    .await?;
    Ok(Report { default, always })
}
