//! The one helper for periodic work (checkpoints, reminders, expiry, statistics).

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Runs `tick` now and then every `period` until `shutdown`. A failed tick is logged
/// (with `name`) and counted in `herald_periodic_failures_total`; the next tick runs as
/// planned. A tick that overruns delays the next one rather than bunching them.
///
/// ```no_run
/// # async fn demo(shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
/// use std::time::Duration;
/// herald_runtime::periodic::every("heartbeat", Duration::from_secs(5), shutdown, || async {
///     tracing::info!("still here");
///     anyhow::Ok(())
/// })
/// .await
/// # }
/// ```
pub async fn every<F, Fut>(name: &'static str, period: Duration, shutdown: CancellationToken, mut tick: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = interval.tick() => {}
        }
        if let Err(e) = tick().await {
            metrics::counter!(crate::metric::PERIODIC_FAILURES.name, "task" => name).increment(1);
            tracing::warn!(task = name, error = %format!("{e:#}"), "periodic task failed; next tick as planned");
        }
    }
}
