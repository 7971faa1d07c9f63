//! The money class's promise, checked: the servers holding money fsync every write
//! before they acknowledge it.
//!
//! nats-server reports its JetStream sync policy on its monitoring port: `/varz` has
//! `jetstream.config.sync_always` (true with `sync_interval: always`). Jepsen's NATS
//! 2.12.1 analysis (jepsen.io/analyses/nats-2.12.1, 2025-12-08) lost acknowledged
//! writes to power failures and OS crashes under the default two-minute flush.

use std::time::Duration;

use crate::classes::{Class, Js};

/// What a nats-server's `/varz` says of its storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSync {
    /// The monitoring URL asked.
    pub monitor: String,
    /// `server_id` (matches the connected client's `server_info().server_id`).
    pub server_id: String,
    /// `server_name`.
    pub server_name: String,
    /// `jetstream.config.sync_always`: every write fsync'd before its ack.
    pub sync_always: bool,
    /// `jetstream.config.sync_interval`, nanoseconds (the flush timer otherwise).
    pub sync_interval_ns: u64,
}

/// Reads `monitor`'s `/varz` (2 s timeout).
///
/// Errors: unreachable, not a nats-server, or JetStream off.
pub async fn read_varz(monitor: &str) -> anyhow::Result<ServerSync> {
    let url = format!("{}/varz", monitor.trim_end_matches('/'));
    let varz: serde_json::Value = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?
        .get(&url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read {url}: {e}"))?
        .error_for_status()?
        .json()
        .await
        .map_err(|e| anyhow::anyhow!("{url} is not a nats-server's /varz: {e}"))?;
    let config = &varz["jetstream"]["config"];
    anyhow::ensure!(config.is_object(), "{url}: JetStream is not enabled on that server");
    Ok(ServerSync {
        monitor: monitor.to_string(),
        server_id: varz["server_id"].as_str().unwrap_or_default().to_string(),
        server_name: varz["server_name"].as_str().unwrap_or_default().to_string(),
        sync_always: config["sync_always"].as_bool().unwrap_or(false),
        sync_interval_ns: config["sync_interval"].as_u64().unwrap_or(0),
    })
}

/// Checks that the money class is served by servers that fsync every write: each of
/// `monitors` reports `sync_always`, and the server the money connection reached is
/// one of them (so the monitor describes the server that holds the money).
///
/// Returns what each monitor said.
///
/// Errors (each names the server and the setting): a monitor unreachable; a server
/// without `sync_interval: always`; the money connection on a server no monitor
/// describes.
pub async fn check_money(js: &Js, monitors: &[&str]) -> anyhow::Result<Vec<ServerSync>> {
    let money = js.of(Class::Money)?;
    let connected = money.client().server_info();
    anyhow::ensure!(
        !monitors.is_empty(),
        "no monitoring URL for the money server (--nats-money-monitor)"
    );
    let mut seen = Vec::new();
    for monitor in monitors {
        let sync = read_varz(monitor).await?;
        anyhow::ensure!(
            sync.sync_always,
            "the money server {:?} ({}) does not fsync every write: its JetStream sync_interval is {} s, not `always`. \
             Set `sync_interval: always` in its jetstream block (nats/nats-money.conf), or pass --allow-unsynced-money (development only)",
            sync.server_name,
            sync.monitor,
            sync.sync_interval_ns / 1_000_000_000
        );
        seen.push(sync);
    }
    anyhow::ensure!(
        seen.iter().any(|s| s.server_id == connected.server_id),
        "the money connection reached server {:?} ({}), which none of the monitors {} describes: \
         --nats-money-monitor must be the money server's monitoring address",
        connected.server_name,
        connected.server_id,
        monitors.join(", ")
    );
    Ok(seen)
}

/// [`check_money`] unless `allow_unsynced` (development), in which case a failure is a
/// warning.
///
/// Errors: as [`check_money`], when not allowed.
pub async fn require_synced_money(js: &Js, monitors: &[&str], allow_unsynced: bool) -> anyhow::Result<()> {
    if !js.classes().has_money() {
        return Ok(());
    }
    match check_money(js, monitors).await {
        Ok(servers) => {
            for s in servers {
                tracing::info!(server = %s.server_name, monitor = %s.monitor, "money server fsyncs every write");
            }
            Ok(())
        }
        Err(e) if allow_unsynced => {
            tracing::warn!(error = %format!("{e:#}"), "--allow-unsynced-money: money may be lost to a power failure");
            Ok(())
        }
        Err(e) => Err(e),
    }
}
