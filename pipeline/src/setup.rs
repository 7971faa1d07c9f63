//! `pipeline setup`: applies the stream definitions in `nats/streams/*.json` (NATS's own
//! stream-config format, what `nats stream add --config FILE` reads) and the KV buckets.
//!
//! Idempotent: an identical existing stream is left alone; a conflicting one is an error
//! naming the differing fields, unless `update` asks to edit it in place.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use herald_schemas::subjects;

/// The checked-in stream definitions, embedded so the binary needs no files at run time.
pub const STREAM_DEFINITIONS: &[(&str, &str)] = &[
    ("calls.json", include_str!("../../nats/streams/calls.json")),
    ("signals.json", include_str!("../../nats/streams/signals.json")),
    ("outbound.json", include_str!("../../nats/streams/outbound.json")),
    ("updates.json", include_str!("../../nats/streams/updates.json")),
    ("dlq.json", include_str!("../../nats/streams/dlq.json")),
    ("prices.json", include_str!("../../nats/streams/prices.json")),
    ("tracked.json", include_str!("../../nats/streams/tracked.json")),
    ("deposits.json", include_str!("../../nats/streams/deposits.json")),
    ("ledger.json", include_str!("../../nats/streams/ledger.json")),
];

/// What `setup` did to one stream or bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Created(String),
    Unchanged(String),
    Updated(String),
}

/// Parses every embedded stream definition.
///
/// Errors: a file is not a valid stream config (names the file).
pub fn stream_configs() -> anyhow::Result<Vec<stream::Config>> {
    STREAM_DEFINITIONS
        .iter()
        .map(|(file, json)| serde_json::from_str(json).map_err(|e| anyhow::anyhow!("nats/streams/{file}: {e}")))
        .collect()
}

/// Creates missing streams and KV buckets; checks existing ones.
///
/// Errors: an existing stream differs from its definition and `update` is false (the
/// message lists each differing field, existing vs wanted), or NATS refused a request.
pub async fn apply(js: &jetstream::Context, update: bool) -> anyhow::Result<Vec<Applied>> {
    let mut applied = Vec::new();
    for want in stream_configs()? {
        applied.push(apply_stream(js, want, update).await?);
    }
    for cfg in kv_buckets() {
        let name = cfg.bucket.clone();
        match js.get_key_value(&name).await {
            Ok(_) => applied.push(Applied::Unchanged(format!("KV {name}"))),
            Err(_) => {
                js.create_key_value(cfg)
                    .await
                    .map_err(|e| anyhow::anyhow!("creating KV bucket {name}: {e}"))?;
                applied.push(Applied::Created(format!("KV {name}")));
            }
        }
    }
    Ok(applied)
}

async fn apply_stream(js: &jetstream::Context, want: stream::Config, update: bool) -> anyhow::Result<Applied> {
    let name = want.name.clone();
    let mut existing = match js.get_stream(&name).await {
        Ok(s) => s,
        Err(_) => {
            js.create_stream(want)
                .await
                .map_err(|e| anyhow::anyhow!("creating stream {name}: {e}"))?;
            return Ok(Applied::Created(name));
        }
    };
    let have = existing.info().await?.config.clone();
    let diffs = differences(&have, &want);
    if diffs.is_empty() {
        return Ok(Applied::Unchanged(name));
    }
    if !update {
        anyhow::bail!(
            "stream {name} exists with a conflicting configuration:\n  {}\nFix it with `pipeline setup --update` (or `nats stream edit {name}`), or delete the stream.",
            diffs.join("\n  ")
        );
    }
    js.update_stream(want)
        .await
        .map_err(|e| anyhow::anyhow!("updating stream {name}: {e}"))?;
    Ok(Applied::Updated(name))
}

/// The fields Herald's definitions set, as `field: existing != wanted` lines.
pub fn differences(have: &stream::Config, want: &stream::Config) -> Vec<String> {
    let mut d = Vec::new();
    let mut cmp = |field: &str, a: String, b: String| {
        if a != b {
            d.push(format!("{field}: existing {a} != wanted {b}"));
        }
    };
    cmp("subjects", format!("{:?}", have.subjects), format!("{:?}", want.subjects));
    cmp("retention", format!("{:?}", have.retention), format!("{:?}", want.retention));
    cmp("storage", format!("{:?}", have.storage), format!("{:?}", want.storage));
    cmp("discard", format!("{:?}", have.discard), format!("{:?}", want.discard));
    cmp("max_age", format!("{:?}", have.max_age), format!("{:?}", want.max_age));
    cmp("max_bytes", have.max_bytes.to_string(), want.max_bytes.to_string());
    cmp(
        "max_message_size",
        have.max_message_size.to_string(),
        want.max_message_size.to_string(),
    );
    cmp(
        "duplicate_window",
        format!("{:?}", have.duplicate_window),
        format!("{:?}", want.duplicate_window),
    );
    cmp("num_replicas", have.num_replicas.to_string(), want.num_replicas.to_string());
    d
}

/// KV buckets, one revision per key, on file: users, channel statistics, ledger
/// references, coupons, deposit addresses and the watcher's cursor kept for good;
/// delivered idempotency keys expire after 7 days (longer than any redelivery).
pub fn kv_buckets() -> Vec<kv::Config> {
    let bucket = |name: &str, max_age: Duration| kv::Config {
        bucket: name.into(),
        history: 1,
        max_age,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    let forever = Duration::ZERO;
    vec![
        bucket(subjects::USERS_BUCKET, forever),
        bucket(subjects::CHANNELS_BUCKET, forever),
        bucket(subjects::CREDITS_BUCKET, forever),
        bucket(subjects::COUPONS_BUCKET, forever),
        bucket(subjects::WALLET_BUCKET, forever),
        bucket(subjects::WATCHER_BUCKET, forever),
        bucket(subjects::DELIVERED_BUCKET, Duration::from_secs(7 * 24 * 3600)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_parse_and_use_the_schema_names() {
        let configs = stream_configs().unwrap();
        let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                subjects::CALLS_STREAM,
                subjects::SIGNALS_STREAM,
                subjects::OUTBOUND_STREAM,
                subjects::UPDATES_STREAM,
                subjects::DLQ_STREAM,
                subjects::PRICES_STREAM,
                subjects::TRACKED_STREAM,
                subjects::DEPOSITS_STREAM,
                subjects::LEDGER_STREAM
            ]
        );
        let calls = &configs[0];
        assert_eq!(calls.duplicate_window, Duration::from_secs(120));
        assert!(calls.subjects.iter().any(|s| s == "herald.calls.>"));
        // every subject the schemas build falls inside exactly one stream
        for subject in [
            subjects::call("solana", "feed"),
            subjects::signal("bsc"),
            subjects::notify(1),
            subjects::reply(-5),
            subjects::update("message"),
            subjects::dead_letter("x"),
            subjects::price("solana"),
            subjects::deposit(herald_schemas::DepositStage::Final, "bsc"),
            subjects::ledger(42),
            subjects::tracked("solana"),
        ] {
            let owners = configs
                .iter()
                .filter(|c| {
                    c.subjects
                        .iter()
                        .any(|p| !p.trim_end_matches('>').is_empty() && subject.starts_with(p.trim_end_matches('>')))
                })
                .count();
            assert_eq!(owners, 1, "{subject}");
        }
    }

    /// nats-server refuses a stream whose `max_bytes` would take the reserved total past
    /// `max_file_store` ("insufficient storage resources available").
    #[test]
    fn stream_reservations_fit_the_server_config() {
        let conf = include_str!("../../nats/nats-server.conf");
        let limit = conf
            .lines()
            .find_map(|l| l.trim().strip_prefix("max_file_store:"))
            .and_then(|v| v.trim().strip_suffix("GB"))
            .and_then(|gb| gb.parse::<i64>().ok())
            .expect("nats-server.conf sets max_file_store in GB")
            << 30;
        let reserved: i64 = stream_configs().unwrap().iter().map(|c| c.max_bytes.max(0)).sum();
        assert!(
            reserved <= limit / 4 * 3,
            "streams reserve {reserved} bytes; keep a quarter of max_file_store ({limit}) for KV buckets and growth"
        );
    }

    #[test]
    fn differences_name_each_field() {
        let configs = stream_configs().unwrap();
        let mut other = configs[0].clone();
        other.subjects = vec!["x.>".into()];
        other.max_age = Duration::from_secs(1);
        let d = differences(&other, &configs[0]);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("subjects:"));
        assert!(differences(&configs[0], &configs[0]).is_empty());
    }
}
