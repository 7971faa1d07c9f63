//! In-memory replicas of KV buckets, kept current by the bucket's change events.
//!
//! Each pipeline process holds its own replica (no shared cache, no TTL staleness): the
//! KV bucket is the durable store, its watch is the change feed.

use std::sync::{Arc, RwLock};

use async_nats::jetstream::kv;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::classes::Js;

/// Receives the current values of one or more buckets and every later change.
pub trait ReplicaSink: Send + Sync + 'static {
    /// A key of `bucket` was written. Undecodable values are logged and skipped by the
    /// sink.
    fn put(&mut self, bucket: &str, key: &str, value: &[u8]);
    /// A key of `bucket` was deleted or purged.
    fn delete(&mut self, bucket: &str, key: &str);
}

/// A shared, read-mostly replica of one KV bucket.
///
/// ```no_run
/// use herald_runtime::replica::{Replica, ReplicaSink};
///
/// /// Counts the keys of a bucket.
/// #[derive(Default)]
/// struct Keys(std::collections::HashSet<String>);
///
/// impl ReplicaSink for Keys {
///     fn put(&mut self, _bucket: &str, key: &str, _: &[u8]) {
///         self.0.insert(key.to_string());
///     }
///     fn delete(&mut self, _bucket: &str, key: &str) {
///         self.0.remove(key);
///     }
/// }
///
/// # async fn demo(js: herald_runtime::Js) -> anyhow::Result<()> {
/// let users = Replica::start(&js, &["herald_users"], Keys::default(), Default::default()).await?;
/// println!("{} users", users.read(|k| k.0.len()));
/// # Ok(()) }
/// ```
pub struct Replica<S> {
    sink: Arc<RwLock<S>>,
}

impl<S> Clone for Replica<S> {
    fn clone(&self) -> Self {
        Replica { sink: self.sink.clone() }
    }
}

impl<S: ReplicaSink> Replica<S> {
    /// Loads `buckets` into `sink`, returns once every bucket's initial values are in,
    /// and keeps applying changes in the background until `shutdown`.
    ///
    /// Errors: a bucket does not exist (run `pipeline setup`) or cannot be watched.
    pub async fn start(js: &Js, buckets: &[&str], sink: S, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let replica = Replica {
            sink: Arc::new(RwLock::new(sink)),
        };
        for bucket in buckets {
            replica.follow(js, bucket, shutdown.clone()).await?;
        }
        Ok(replica)
    }

    /// Loads one bucket into the sink and keeps following it.
    async fn follow(&self, js: &Js, bucket: &str, shutdown: CancellationToken) -> anyhow::Result<()> {
        let store = js
            .get_key_value(bucket)
            .await
            .map_err(|e| anyhow::anyhow!("KV bucket {bucket}: {e}; run `pipeline setup` first"))?;
        let initial = store.status().await?.values();
        let mut watch = store.watch_with_history(">").await?;
        let (synced_tx, synced_rx) = tokio::sync::oneshot::channel::<()>();
        let mut synced_tx = Some(synced_tx);
        if initial == 0 {
            synced_tx.take().map(|tx| tx.send(()));
        }
        let sink = self.sink.clone();
        let bucket_name = bucket.to_string();
        tokio::spawn(async move {
            let mut last_revision = 0;
            loop {
                let entry = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    e = watch.next() => e,
                };
                let entry = match entry {
                    Some(Ok(e)) => e,
                    Some(Err(e)) => {
                        tracing::warn!(bucket = %bucket_name, error = %e, "KV watch error");
                        continue;
                    }
                    None => {
                        // the watch ended: resume after the last change applied
                        tracing::warn!(bucket = %bucket_name, last_revision, "KV watch ended; resuming");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        if let Ok(w) = store.watch_all_from_revision(last_revision + 1).await {
                            watch = w;
                        }
                        continue;
                    }
                };
                last_revision = entry.revision;
                {
                    let mut s = sink.write().expect("replica lock");
                    match entry.operation {
                        kv::Operation::Put => s.put(&bucket_name, &entry.key, &entry.value),
                        kv::Operation::Delete | kv::Operation::Purge => s.delete(&bucket_name, &entry.key),
                    }
                }
                metrics::counter!(crate::metric::REPLICA_CHANGES.name, "bucket" => bucket_name.clone()).increment(1);
                if entry.delta == 0 {
                    synced_tx.take().map(|tx| tx.send(()));
                }
            }
        });
        synced_rx
            .await
            .map_err(|_| anyhow::anyhow!("KV watch of {bucket} ended before the initial sync"))
    }

    /// Runs `f` with read access to the replica.
    pub fn read<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.sink.read().expect("replica lock"))
    }
}
