//! The store chosen at start-up (`--store embedded|scylla`).

use futures::stream::BoxStream;

use super::embedded::EmbeddedStore;
use super::scylla::{ScyllaConfig, ScyllaStore};
use super::store::{CallStore, Progress, TrackedCall};
use super::super::config::{StoreKind, TrackerArgs};

/// One of the two backends, behind [`CallStore`].
pub enum Backend {
    Embedded(EmbeddedStore),
    Scylla(Box<ScyllaStore>),
}

impl Backend {
    /// Opens the configured backend.
    ///
    /// Errors: the embedded file cannot be opened (locked by another process), or no
    /// ScyllaDB node answers / the schema is refused.
    pub async fn open(args: &TrackerArgs) -> anyhow::Result<Self> {
        Ok(match args.store {
            StoreKind::Embedded => Backend::Embedded(EmbeddedStore::open_with_cache(&args.store_path, args.store_cache_mb << 20)?),
            StoreKind::Scylla => Backend::Scylla(Box::new(
                ScyllaStore::connect(ScyllaConfig {
                    nodes: args.scylla_nodes.clone(),
                    keyspace: args.scylla_keyspace.clone(),
                    replication_factor: args.scylla_replication_factor,
                    retention: args.retention(),
                })
                .await?,
            )),
        })
    }
}

impl CallStore for Backend {
    async fn insert(&self, calls: Vec<TrackedCall>) -> anyhow::Result<()> {
        match self {
            Backend::Embedded(s) => s.insert(calls).await,
            Backend::Scylla(s) => s.insert(calls).await,
        }
    }

    async fn update_progress(&self, progress: Vec<Progress>) -> anyhow::Result<()> {
        match self {
            Backend::Embedded(s) => s.update_progress(progress).await,
            Backend::Scylla(s) => s.update_progress(progress).await,
        }
    }

    fn load_since(&self, since_ms: u64) -> BoxStream<'static, anyhow::Result<TrackedCall>> {
        match self {
            Backend::Embedded(s) => s.load_since(since_ms),
            Backend::Scylla(s) => s.load_since(since_ms),
        }
    }

    async fn for_user(&self, user_id: i64, offset: usize, limit: usize) -> anyhow::Result<(Vec<TrackedCall>, usize)> {
        match self {
            Backend::Embedded(s) => s.for_user(user_id, offset, limit).await,
            Backend::Scylla(s) => s.for_user(user_id, offset, limit).await,
        }
    }

    async fn expire(&self, before_ms: u64) -> anyhow::Result<u64> {
        match self {
            Backend::Embedded(s) => s.expire(before_ms).await,
            Backend::Scylla(s) => s.expire(before_ms).await,
        }
    }
}
