//! Where broadcasts live: KV `herald_broadcasts` (events, 30 days) holds each job
//! (`job.<id>`), an album's parts as the admin sent them (`album.<chat>.<group>`) and one
//! key per recipient answered (`o.<id>.<sent|blocked|failed>.<chat>`); the object store
//! `herald_broadcast_lists` holds each job's recipients (chat ids, in order), which can
//! be far larger than a KV value.

use async_nats::jetstream::{kv, object_store};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::Progress;

/// The KV bucket.
pub const BUCKET: &str = "herald_broadcasts";
/// How long a broadcast's records are kept.
pub const KEPT: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
/// The object store of recipient lists.
pub const LISTS: &str = "herald_broadcast_lists";

/// A broadcast's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Previewed; waits for Send.
    #[default]
    Draft,
    /// Being sent (and once the cursor reached the end, done).
    Sending,
    Cancelled,
}

/// One broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Job {
    /// The update id of the `/admin broadcast` that made it.
    pub id: i64,
    /// The admin's chat: where the preview and the progress are.
    pub admin_chat: i64,
    /// What is copied: the admin's message, or an album's parts in order.
    pub from_chat: i64,
    pub message_ids: Vec<i32>,
    pub segment: String,
    pub state: State,
    /// Recipients in the list.
    pub total: u64,
    /// Recipients whose copy is stored in OUTBOUND (the next to publish).
    pub cursor: u64,
    /// The message showing the progress (the confirmation, once Send is pressed).
    pub progress_message: Option<i32>,
    pub started_ms: Option<u64>,
    /// The progress last shown, so an edit is made only when it changed.
    #[serde(default)]
    pub shown: u64,
}

/// The broadcasts' stores.
#[derive(Clone)]
pub struct Broadcasts {
    pub kv: kv::Store,
    pub lists: object_store::ObjectStore,
    /// The KV bucket's stream, for counting outcomes by subject.
    stream: async_nats::jetstream::stream::Stream,
}

impl Broadcasts {
    /// The stores (set up by `pipeline setup`).
    ///
    /// Errors: a store is missing.
    pub async fn open(js: &herald_runtime::Js) -> anyhow::Result<Self> {
        let lists = match js.get_object_store(LISTS).await {
            Ok(store) => store,
            Err(_) => {
                js.create_object_store(object_store::Config {
                    bucket: LISTS.into(),
                    max_age: KEPT,
                    ..Default::default()
                })
                .await?
            }
        };
        Ok(Broadcasts {
            kv: js.get_key_value(BUCKET).await?,
            lists,
            stream: js.events().get_stream(format!("KV_{BUCKET}")).await?,
        })
    }

    /// Creates job `job` with its recipients; `false` if it exists (a redelivery).
    ///
    /// Errors: NATS failed.
    pub async fn create(&self, job: &Job, recipients: &[i64]) -> anyhow::Result<bool> {
        let key = format!("job.{}", job.id);
        if self.kv.get(&key).await?.is_some() {
            return Ok(false);
        }
        // the list first: a job never exists without its recipients
        let bytes = serde_json::to_vec(recipients)?;
        let mut reader: &[u8] = &bytes;
        self.lists.put(job.id.to_string().as_str(), &mut reader).await?;
        Ok(self.kv.create(&key, serde_json::to_vec(job)?.into()).await.is_ok())
    }

    /// Job `id` and its revision.
    ///
    /// Errors: NATS failed or the value does not decode.
    pub async fn job(&self, id: i64) -> anyhow::Result<Option<(Job, u64)>> {
        match self.kv.entry(format!("job.{id}")).await? {
            Some(e) if e.operation == kv::Operation::Put => Ok(Some((serde_json::from_slice(&e.value)?, e.revision))),
            _ => Ok(None),
        }
    }

    /// Writes `job` over `revision`; whether it won (else someone moved it first).
    ///
    /// Errors: NATS failed.
    pub async fn update(&self, job: &Job, revision: u64) -> anyhow::Result<bool> {
        Ok(self
            .kv
            .update(format!("job.{}", job.id), serde_json::to_vec(job)?.into(), revision)
            .await
            .is_ok())
    }

    /// Moves job `id` with `change` by compare-and-set, reading again on a conflict;
    /// `change` returns `false` to leave it. The job after, and whether this call moved
    /// it.
    ///
    /// Errors: NATS failed.
    pub async fn transition(&self, id: i64, change: impl Fn(&mut Job) -> bool) -> anyhow::Result<Option<(Job, bool)>> {
        loop {
            let Some((mut job, revision)) = self.job(id).await? else {
                return Ok(None);
            };
            if !change(&mut job) {
                return Ok(Some((job, false)));
            }
            if self.update(&job, revision).await? {
                return Ok(Some((job, true)));
            }
        }
    }

    /// Every job, newest first.
    ///
    /// Errors: NATS failed.
    pub async fn jobs(&self) -> anyhow::Result<Vec<Job>> {
        // the job keys only, filtered by the server: the bucket also holds one key per
        // answered copy, far too many to list every second
        let prefix = format!("$KV.{BUCKET}.job.");
        let mut subjects = self.stream.info_with_subjects(format!("{prefix}>")).await?;
        let mut ids = Vec::new();
        while let Some(subject) = subjects.next().await {
            if let Some(id) = subject?.0.strip_prefix(&prefix).and_then(|id| id.parse::<i64>().ok()) {
                ids.push(id);
            }
        }
        let mut out = Vec::new();
        for id in ids {
            if let Some((job, _)) = self.job(id).await? {
                out.push(job);
            }
        }
        out.sort_by_key(|j| std::cmp::Reverse(j.id));
        Ok(out)
    }

    /// Job `id`'s recipients (chat ids, in sending order).
    ///
    /// Errors: NATS failed, or the list is missing.
    pub async fn recipients(&self, id: i64) -> anyhow::Result<Vec<i64>> {
        use tokio::io::AsyncReadExt;
        let mut object = self.lists.get(id.to_string().as_str()).await?;
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Records how Telegram answered `chat`'s copy of broadcast `id`; `false` if it was
    /// recorded before (a redelivered report).
    ///
    /// Errors: NATS failed.
    pub async fn record(&self, id: i64, chat: i64, outcome: &str) -> anyhow::Result<bool> {
        // one answer per chat whatever the outcome: a later report of another outcome
        // for the same copy cannot exist (the bot reports once per key)
        Ok(self.kv.create(format!("o.{id}.{outcome}.{chat}"), "1".into()).await.is_ok())
    }

    /// The answers recorded for broadcast `id`, counted by the server (subjects of the
    /// bucket's stream; nothing read).
    ///
    /// Errors: NATS failed.
    pub async fn progress(&self, id: i64) -> anyhow::Result<Progress> {
        let count = |outcome: &str| {
            let filter = format!("$KV.{BUCKET}.o.{id}.{outcome}.>");
            let stream = self.stream.clone();
            async move {
                let mut subjects = stream.info_with_subjects(filter).await?;
                let mut n = 0u64;
                while let Some(s) = subjects.next().await {
                    s?;
                    n += 1;
                }
                anyhow::Ok(n)
            }
        };
        Ok(Progress {
            sent: count("sent").await?,
            blocked: count("blocked").await?,
            failed: count("failed").await?,
        })
    }

    /// Adds `message_id` to the album `group` the admin in `chat` is sending (a day).
    ///
    /// Errors: NATS failed.
    pub async fn add_album_part(&self, chat: i64, group: &str, message_id: i32) -> anyhow::Result<()> {
        let key = format!("album.{chat}.{}", herald_schemas::subjects::kv_key(group));
        loop {
            let entry = self.kv.entry(&key).await?.filter(|e| e.operation == kv::Operation::Put);
            let mut ids: Vec<i32> = match &entry {
                Some(e) => serde_json::from_slice(&e.value)?,
                None => Vec::new(),
            };
            if ids.contains(&message_id) {
                return Ok(());
            }
            ids.push(message_id);
            ids.sort_unstable();
            let bytes = serde_json::to_vec(&ids)?.into();
            let written = match entry {
                Some(e) => self.kv.update(&key, bytes, e.revision).await.is_ok(),
                None => self.kv.create(&key, bytes).await.is_ok(),
            };
            if written {
                return Ok(());
            }
        }
    }

    /// The parts of album `group` from `chat`, in order (empty if unknown).
    ///
    /// Errors: NATS failed.
    pub async fn album(&self, chat: i64, group: &str) -> anyhow::Result<Vec<i32>> {
        let key = format!("album.{chat}.{}", herald_schemas::subjects::kv_key(group));
        Ok(match self.kv.get(&key).await? {
            Some(v) => serde_json::from_slice(&v)?,
            None => Vec::new(),
        })
    }
}
