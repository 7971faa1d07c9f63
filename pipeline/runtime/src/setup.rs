//! `pipeline setup`: applies the stream definitions in `nats/streams/*.json` (NATS's own
//! stream-config format, what `nats stream add --config FILE` reads) and the KV buckets.
//!
//! Idempotent: an identical existing stream is left alone; a conflicting one is an error
//! naming the differing fields, unless `update` asks to edit it in place.
//!
//! Each stream and bucket is created on the server of its durability class
//! ([`crate::classes`]): money on the server that fsyncs every write, events on the other.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

use crate::classes::{Class, Js, CLASS_KEY};

/// A stream definition checked in under `nats/streams/` (NATS's stream-config JSON),
/// embedded in the binary with `include_str!` so it needs no files at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamDef {
    /// File name under `nats/streams/`, for error messages.
    pub file: &'static str,
    pub json: &'static str,
}

impl StreamDef {
    /// The stream configuration the file holds.
    ///
    /// Errors: the file is not a valid stream config (names the file).
    pub fn config(&self) -> anyhow::Result<stream::Config> {
        serde_json::from_str(self.json).map_err(|e| anyhow::anyhow!("nats/streams/{}: {e}", self.file))
    }

    /// The durability class the file declares (`"metadata": {"herald.class": "money"}`).
    ///
    /// Errors: the file does not parse, declares no class, or an unknown one.
    pub fn class(&self) -> anyhow::Result<Class> {
        let config = self.config()?;
        let class = config.metadata.get(CLASS_KEY).ok_or_else(|| {
            anyhow::anyhow!(
                "nats/streams/{}: no durability class: add \"metadata\": {{\"{CLASS_KEY}\": \"events\"}} (or \"money\")",
                self.file
            )
        })?;
        class.parse().map_err(|e| anyhow::anyhow!("nats/streams/{}: {e}", self.file))
    }
}

/// A KV bucket: one revision per key, file storage, on its class's server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketDef {
    pub name: &'static str,
    /// How long a key lives; zero = for good.
    pub max_age: Duration,
    /// Where it is stored: [`Class::Money`] for a bucket whose loss would lose or
    /// repeat money.
    pub class: Class,
}

impl BucketDef {
    /// An events bucket whose keys are kept for good.
    pub const fn forever(name: &'static str) -> Self {
        BucketDef::expiring(name, Duration::ZERO)
    }

    /// An events bucket whose keys live `max_age`.
    pub const fn expiring(name: &'static str, max_age: Duration) -> Self {
        BucketDef {
            name,
            max_age,
            class: Class::Events,
        }
    }

    /// The same bucket in the money class.
    pub const fn money(self) -> Self {
        BucketDef {
            class: Class::Money,
            ..self
        }
    }

    fn config(&self, replicas: usize) -> kv::Config {
        kv::Config {
            bucket: self.name.into(),
            history: 1,
            max_age: self.max_age,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        }
    }
}

/// What `setup` did to one stream or bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Created(String),
    Unchanged(String),
    Updated(String),
}

/// Parses stream definitions.
///
/// Errors: a file is not a valid stream config (names the file).
pub fn stream_configs(defs: &[StreamDef]) -> anyhow::Result<Vec<stream::Config>> {
    defs.iter().map(StreamDef::config).collect()
}

/// How many copies of each stream and bucket a cluster keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Replicas {
    /// What exists stays as it is (it is not compared); what is created gets the
    /// definition's count (1). What `pipeline run` and the bot use, so that they accept
    /// the streams `pipeline setup --replicas N` made.
    #[default]
    Existing,
    /// Every stream and bucket has this many (`pipeline setup --replicas 3`): created so,
    /// an existing one with another count is a difference (edited with `update`).
    Exactly(usize),
}

/// Creates missing streams and KV buckets, each on its class's server; checks existing
/// ones.
///
/// Errors: a definition declares no class; an existing stream differs from its
/// definition and `update` is false (the message lists each differing field, existing
/// vs wanted); a money stream or bucket exists on the events server (it holds money
/// written before the classes were split: see `docs/operations.md`, "Durability
/// classes"); or NATS refused a request (on a cluster, also: fewer JetStream servers
/// than `replicas`).
pub async fn apply(
    js: &Js,
    streams: &[StreamDef],
    buckets: &[BucketDef],
    update: bool,
    replicas: Replicas,
) -> anyhow::Result<Vec<Applied>> {
    let mut applied = Vec::new();
    let configs = stream_configs(streams)?;
    refuse_money_on_events(js, &configs, buckets).await?;
    for (def, mut want) in streams.iter().zip(configs.clone()) {
        if let Replicas::Exactly(n) = replicas {
            want.num_replicas = n;
        }
        let server = js.of(def.class()?)?;
        applied.push(apply_stream(server, want, update, replicas).await?);
    }
    for def in buckets {
        let name = def.name;
        let js = js.of(def.class)?;
        match js.get_key_value(name).await {
            Ok(store) => {
                let have = store_replicas(js, name).await?;
                match replicas {
                    Replicas::Exactly(n) if have != n && update => {
                        js.update_key_value(def.config(n))
                            .await
                            .map_err(|e| anyhow::anyhow!("updating KV bucket {name}: {e}"))?;
                        applied.push(Applied::Updated(format!("KV {name}")));
                    }
                    Replicas::Exactly(n) if have != n => {
                        anyhow::bail!("KV bucket {name} has {have} replicas, not {n}: run `pipeline setup --replicas {n} --update`")
                    }
                    _ => applied.push(Applied::Unchanged(format!("KV {name}"))),
                }
                drop(store);
            }
            Err(_) => {
                let n = match replicas {
                    Replicas::Exactly(n) => n,
                    Replicas::Existing => 1,
                };
                js.create_key_value(def.config(n))
                    .await
                    .map_err(|e| anyhow::anyhow!("creating KV bucket {name}: {e}"))?;
                applied.push(Applied::Created(format!("KV {name}")));
            }
        }
    }
    if matches!(replicas, Replicas::Exactly(n) if n > 1) {
        let mut names: Vec<String> = configs.iter().map(|c| c.name.clone()).collect();
        names.extend(buckets.iter().map(|b| format!("KV_{}", b.name)));
        wait_for_leaders(js, &names, LEADER_PATIENCE).await?;
        let mut subjects: Vec<String> = configs
            .iter()
            .filter_map(|c| c.subjects.first().map(|s| probe_subject(s)))
            .collect();
        subjects.extend(buckets.iter().map(|b| format!("$KV.{}.setup-probe", b.name)));
        wait_until_writable(js, &subjects, LEADER_PATIENCE).await?;
    }
    Ok(applied)
}

/// A concrete subject within `filter` (`herald.calls.>` -> `herald.calls.setup-probe`).
fn probe_subject(filter: &str) -> String {
    filter
        .split('.')
        .map(|t| if t == "*" || t == ">" { "setup-probe" } else { t })
        .collect::<Vec<_>>()
        .join(".")
}

/// Waits until a publish on each of `subjects` reaches its stream. A leader is not
/// enough: measured on a loaded 3-node cluster, publishes still found "no stream" for
/// 6-15 s after every stream had one (the subject's interest travelling the routes, and
/// leaders moving). The probe stores nothing: it expects a last sequence no stream has,
/// so the stream answers "wrong last sequence" (reached) instead of storing it.
///
/// Errors: a subject still reaches no stream after `patience`.
async fn wait_until_writable(js: &Js, subjects: &[String], patience: Duration) -> anyhow::Result<()> {
    use async_nats::jetstream::context::PublishErrorKind;
    let deadline = tokio::time::Instant::now() + patience;
    for subject in subjects {
        let what = format!("publishes on {subject} reach no stream after {patience:?}");
        poll_until(deadline, &what, async || {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(async_nats::header::NATS_EXPECTED_LAST_SEQUENCE, u64::MAX.to_string().as_str());
            match js.publish_with_headers(subject.clone(), headers, bytes::Bytes::new()).await {
                Ok(ack) => match ack.await {
                    Ok(_) => anyhow::bail!("the probe on {subject} was stored: the stream ignored its expected sequence"),
                    Err(e) => Ok(e.kind() == PublishErrorKind::WrongLastSequence),
                },
                Err(_) => Ok(false),
            }
        })
        .await?;
    }
    Ok(())
}

/// Asks `ready` every 100 ms until it says yes.
///
/// Errors: `ready`'s own, or `deadline` passed (the error is `what`).
async fn poll_until(
    deadline: tokio::time::Instant,
    what: &str,
    mut ready: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    while !ready().await? {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// When money has its own server, no money stream or bucket may sit on the events
/// server: it would hold the money written before the split, and a fresh, empty one on
/// the money server would hide it (balances would read zero).
///
/// Errors: one exists (the message names it and the way out).
async fn refuse_money_on_events(js: &Js, configs: &[stream::Config], buckets: &[BucketDef]) -> anyhow::Result<()> {
    let Ok(money) = js.of(Class::Money) else {
        return Ok(());
    };
    if same_server(js.events(), money) {
        return Ok(());
    }
    let mut names: Vec<String> = configs
        .iter()
        .filter(|c| js.classes().of_stream(&c.name) == Class::Money)
        .map(|c| c.name.clone())
        .collect();
    names.extend(buckets.iter().filter(|b| b.class == Class::Money).map(|b| format!("KV_{}", b.name)));
    for name in names {
        if js.events().get_stream(&name).await.is_ok() {
            anyhow::bail!(
                "stream {name} holds money but exists on the events server: it was made before the durability classes. \
                 Move it to the money server (`pipeline setup --move-money`) before anything runs, or delete it if it is empty."
            );
        }
    }
    Ok(())
}

/// True if both contexts reached the same nats-server (one server serving both classes).
pub fn same_server(a: &jetstream::Context, b: &jetstream::Context) -> bool {
    a.client().server_info().server_id == b.client().server_info().server_id
}

/// How long `setup` waits for every replicated stream to elect its leader.
const LEADER_PATIENCE: Duration = Duration::from_secs(60);

/// Waits until each stream in `names` reports a leader, so that the processes started
/// after `setup` find every stream writable.
///
/// Errors: a stream still has no leader after `patience`.
async fn wait_for_leaders(js: &Js, names: &[String], patience: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + patience;
    for name in names {
        let what = format!("stream {name} has no leader after {patience:?}");
        poll_until(deadline, &what, async || {
            Ok(match js.get_stream(name).await {
                Ok(mut s) => s.info().await.ok().and_then(|i| i.cluster.clone()).and_then(|c| c.leader).is_some(),
                Err(_) => false,
            })
        })
        .await?;
    }
    Ok(())
}

/// Replicas of a bucket's stream (`KV_<bucket>`).
async fn store_replicas(js: &jetstream::Context, bucket: &str) -> anyhow::Result<usize> {
    Ok(js.get_stream(format!("KV_{bucket}")).await?.info().await?.config.num_replicas)
}

async fn apply_stream(js: &jetstream::Context, mut want: stream::Config, update: bool, replicas: Replicas) -> anyhow::Result<Applied> {
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
    if replicas == Replicas::Existing {
        want.num_replicas = have.num_replicas;
    }
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
    Differences::default()
        .field("subjects", &have.subjects, &want.subjects)
        .field("retention", have.retention, want.retention)
        .field("storage", have.storage, want.storage)
        .field("discard", have.discard, want.discard)
        .field("max_age", have.max_age, want.max_age)
        .field("max_bytes", have.max_bytes, want.max_bytes)
        .field("max_message_size", have.max_message_size, want.max_message_size)
        .field("duplicate_window", have.duplicate_window, want.duplicate_window)
        .field("num_replicas", have.num_replicas, want.num_replicas)
        // a stream made before classes were declared has none: not a difference
        .field(
            "metadata.herald.class",
            have.metadata.get(CLASS_KEY).or(want.metadata.get(CLASS_KEY)),
            want.metadata.get(CLASS_KEY),
        )
        .lines()
}

/// The lines of a configuration check, `field: existing X != wanted Y`, one per field
/// that differs.
#[derive(Debug, Default)]
pub struct Differences(Vec<String>);

impl Differences {
    /// Compares one field (by its `Debug` form).
    pub fn field(mut self, name: &str, have: impl std::fmt::Debug, want: impl std::fmt::Debug) -> Self {
        let (have, want) = (format!("{have:?}"), format!("{want:?}"));
        if have != want {
            self.0.push(format!("{name}: existing {have} != wanted {want}"));
        }
        self
    }

    /// The lines, in the order compared.
    pub fn lines(self) -> Vec<String> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_field() {
        let defs = [StreamDef {
            file: "core.updates.json",
            json: include_str!("../../../nats/streams/core.updates.json"),
        }];
        let configs = stream_configs(&defs).unwrap();
        let mut other = configs[0].clone();
        other.subjects = vec!["x.>".into()];
        other.max_age = Duration::from_secs(1);
        let d = differences(&other, &configs[0]);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("subjects:"));
        assert!(differences(&configs[0], &configs[0]).is_empty());
    }
}
