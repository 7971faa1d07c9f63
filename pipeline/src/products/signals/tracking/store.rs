//! The tracked-call store: one trait, backends in sibling modules ([`super::embedded`]
//! by default, [`super::scylla`] at scale).
//!
//! The store keeps what the tracker must not lose; the rules (one call per user and
//! token, progress never going back) live in the tracker, which writes each token's
//! calls in order. Every write is idempotent, so a redelivered event can be applied
//! twice.

use std::future::Future;

use futures::stream::BoxStream;
use herald_schemas::Chain;
use serde::{Deserialize, Serialize};

/// One user's tracked call of one token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedCall {
    pub user_id: i64,
    pub chat_id: i64,
    pub chain: Chain,
    pub token: String,
    pub symbol: Option<String>,
    pub caller_ids: Vec<String>,
    /// Price at the call (USD), the base of every multiple.
    pub entry_price_usd: f64,
    /// When the call entered Herald (ms since epoch).
    pub called_at_ms: u64,
    /// Best price seen, as a multiple of the entry price.
    pub best_multiple: f64,
    /// Latest price stored, as a multiple of the entry price (1.0 until a price arrives).
    pub last_multiple: f64,
    /// How many thresholds (in ascending order) were already alerted.
    pub alerted: u8,
}

impl TrackedCall {
    /// `<chain>:<token>`.
    pub fn token_key(&self) -> String {
        format!("{}:{}", self.chain, self.token)
    }
}

/// Progress of one call after a price update.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// `<chain>:<token>`.
    pub token_key: String,
    pub user_id: i64,
    /// When the call was made (ms since epoch): a store with TTLs keeps the progress
    /// exactly as long as the call.
    pub called_at_ms: u64,
    pub last_multiple: f64,
    pub best_multiple: f64,
    pub alerted: u8,
}

/// Where tracked calls live.
///
/// ```no_run
/// # async fn demo(store: impl herald_pipeline::products::signals::tracking::store::CallStore) -> anyhow::Result<()> {
/// use futures::TryStreamExt;
/// let (newest, total) = store.for_user(42, 0, 10).await?; // /calls, page 1
/// let all: Vec<_> = store.load_since(0).try_collect().await?; // index rebuild
/// # Ok(()) }
/// ```
pub trait CallStore: Send + Sync + 'static {
    /// Stores new calls. Re-inserting a stored call (same token and user) keeps its
    /// progress; the tracker inserts only calls its index lacks.
    fn insert(&self, calls: Vec<TrackedCall>) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Writes calls' progress as given (the tracker sends each call's merged maximums,
    /// in order). Progress of a call that is not stored is ignored.
    fn update_progress(&self, progress: Vec<Progress>) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Every stored call made at or after `since_ms`, streamed (10M calls do not fit in
    /// one `Vec` next to the index being built from them).
    fn load_since(&self, since_ms: u64) -> BoxStream<'static, anyhow::Result<TrackedCall>>;

    /// A user's calls, newest first: `limit` from `offset`, and the user's total.
    fn for_user(&self, user_id: i64, offset: usize, limit: usize)
        -> impl Future<Output = anyhow::Result<(Vec<TrackedCall>, usize)>> + Send;

    /// Deletes calls made before `before_ms` (retention); returns how many. A backend
    /// with TTLs expires calls by itself and returns 0.
    fn expire(&self, before_ms: u64) -> impl Future<Output = anyhow::Result<u64>> + Send;
}
