//! Each Herald process's heartbeat: every [`EVERY`] a process writes what it is (role,
//! host, pid), how long it has run, its CPU and memory, and whether it is ready, to KV
//! bucket [`BUCKET`] under its own key. Keys expire after [`BUCKET_MAX_AGE`], so the
//! bucket lists the processes alive now: `/admin status` reads it.
//!
//! The figures come from `metrics_process::collector::collect` (the same /proc reading
//! as the `process_*` metrics on `/metrics`).
//!
//! ```no_run
//! # async fn demo(js: herald_runtime::Js, ready: herald_runtime::telemetry::Readiness) -> anyhow::Result<()> {
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! tokio::spawn(herald_runtime::processes::beat(js.clone(), "pipeline", ready, shutdown));
//! for p in herald_runtime::processes::alive(&js).await? {
//!     println!("{} up {} s, {} MiB", p.key(), p.uptime_ms() / 1000, p.rss_bytes >> 20);
//! }
//! # Ok(()) }
//! ```

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::classes::Js;
use crate::telemetry::Readiness;

/// The heartbeats' KV bucket (events class).
pub const BUCKET: &str = "herald_processes";
/// How often a process writes its heartbeat.
pub const EVERY: Duration = Duration::from_secs(5);
/// A heartbeat not renewed for this long is gone (six missed beats): its process is
/// no longer listed.
pub const BUCKET_MAX_AGE: Duration = Duration::from_secs(30);

/// One process's heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// `pipeline`, `bot`, `signer`.
    pub role: String,
    pub host: String,
    pub pid: u32,
    /// When the process started, ms since epoch.
    pub started_ms: u64,
    /// When this heartbeat was written, ms since epoch.
    pub at_ms: u64,
    /// CPU time used since start (user + system), seconds.
    pub cpu_seconds: f64,
    /// CPU used over the last beat's interval, percent of one core (200 = two cores busy).
    pub cpu_percent: f64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    pub threads: u64,
    /// `/readyz` would answer 200.
    pub ready: bool,
    /// Dependencies down now (`nats money server`), as `/readyz` names them.
    pub missing: Vec<String>,
}

impl Heartbeat {
    /// Its KV key: `<role>.<host>.<pid>` (KV-safe).
    pub fn key(&self) -> String {
        herald_schemas::subjects::kv_key(&format!("{}.{}.{}", self.role, self.host, self.pid))
    }

    /// Time since start, ms.
    pub fn uptime_ms(&self) -> u64 {
        self.at_ms.saturating_sub(self.started_ms)
    }

    /// This process now, as `role`, after `previous` (for the CPU share since then).
    pub fn now(role: &str, ready: &Readiness, started_ms: u64, previous: Option<&Heartbeat>) -> Self {
        let m = metrics_process::collector::collect();
        let at_ms = herald_schemas::now_ms();
        let cpu_seconds = m.cpu_seconds_total.unwrap_or_default();
        let cpu_percent = previous
            .filter(|p| at_ms > p.at_ms)
            .map(|p| (cpu_seconds - p.cpu_seconds).max(0.0) * 100_000.0 / (at_ms - p.at_ms) as f64)
            .unwrap_or_default();
        Heartbeat {
            role: role.to_string(),
            host: hostname(),
            pid: std::process::id(),
            started_ms,
            at_ms,
            cpu_seconds,
            cpu_percent,
            rss_bytes: m.resident_memory_bytes.unwrap_or_default(),
            threads: m.threads.unwrap_or_default(),
            ready: ready.is_ready(),
            missing: ready.missing().into_iter().map(str::to_string).collect(),
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Writes this process's heartbeat as `role` every [`EVERY`] until `shutdown`, then
/// removes it (a clean stop is not listed for the rest of its 30 s). A failed write is
/// logged and retried at the next beat: the heartbeat never stops the process.
///
/// Errors: none: a missing bucket (`pipeline setup` not run yet) is looked for again at
/// each beat.
pub async fn beat(js: Js, role: &'static str, ready: Readiness, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut kv = None;
    let started_ms = metrics_process::collector::collect()
        .start_time_seconds
        .map(|s| s * 1000)
        .unwrap_or_else(herald_schemas::now_ms);
    let mut last: Option<Heartbeat> = None;
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if kv.is_none() {
            // the bucket may come later (`pipeline setup` run after this process)
            kv = js
                .get_key_value(BUCKET)
                .await
                .inspect_err(|e| tracing::warn!(error = %e, "no heartbeat bucket yet"))
                .ok();
        }
        let Some(store) = &kv else { continue };
        let hb = Heartbeat::now(role, &ready, started_ms, last.as_ref());
        match store.put(hb.key(), serde_json::to_vec(&hb)?.into()).await {
            Ok(_) => last = Some(hb),
            Err(e) => tracing::warn!(error = %e, "heartbeat not written; next beat as planned"),
        }
    }
    if let (Some(store), Some(hb)) = (&kv, last) {
        let _ = store.delete(hb.key()).await;
    }
    Ok(())
}

/// The heartbeats of the processes alive now (written within [`BUCKET_MAX_AGE`]),
/// by role then host then pid.
///
/// Errors: the bucket is missing or NATS failed.
pub async fn alive(js: &Js) -> anyhow::Result<Vec<Heartbeat>> {
    let kv = js.get_key_value(BUCKET).await?;
    let mut keys = kv.keys().await?;
    let mut out = Vec::new();
    while let Some(key) = keys.next().await {
        if let Some(bytes) = kv.get(key?).await? {
            if let Ok(hb) = serde_json::from_slice::<Heartbeat>(&bytes) {
                out.push(hb);
            }
        }
    }
    out.sort_by(|a, b| (&a.role, &a.host, a.pid).cmp(&(&b.role, &b.host, b.pid)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_reads_this_process() {
        let ready = Readiness::default();
        let first = Heartbeat::now("test", &ready, 1, None);
        assert_eq!(first.pid, std::process::id());
        assert!(first.rss_bytes > 0 && first.threads > 0, "{first:?}");
        assert!(!first.ready, "no part registered: not ready");
        assert_eq!(first.cpu_percent, 0.0, "no earlier beat to compare with");
        let earlier = Heartbeat {
            at_ms: first.at_ms.saturating_sub(100),
            ..first.clone()
        };
        let second = Heartbeat::now("test", &ready, 1, Some(&earlier));
        assert!(second.cpu_seconds >= first.cpu_seconds && second.cpu_percent >= 0.0);
        assert!(second.key().starts_with("test."), "{}", second.key());
    }
}
