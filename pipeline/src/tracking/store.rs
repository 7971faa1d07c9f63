//! The tracked-call store: one trait, backends in sibling modules.

use std::future::Future;

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
    /// Latest price seen, as a multiple of the entry price (1.0 until a price arrives).
    #[serde(default = "one")]
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
    pub token_key: String,
    pub user_id: i64,
    pub last_multiple: f64,
    pub best_multiple: f64,
    pub alerted: u8,
}

fn one() -> f64 {
    1.0
}

/// Where tracked calls live. Every method is idempotent, so a redelivered event can be
/// applied twice.
pub trait CallStore: Send + Sync + 'static {
    /// Inserts calls that are not stored yet (same token and user: kept as is).
    fn insert(&self, calls: Vec<TrackedCall>) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Sets latest multiples; raises best multiples and alerted counts (never lowers them).
    fn update_progress(&self, progress: Vec<Progress>) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Every stored call made at or after `since_ms`, for rebuilding the index.
    fn load_since(&self, since_ms: u64) -> impl Future<Output = anyhow::Result<Vec<TrackedCall>>> + Send;

    /// A user's calls, newest first: `limit` from `offset`, and the user's total.
    fn for_user(&self, user_id: i64, offset: usize, limit: usize)
        -> impl Future<Output = anyhow::Result<(Vec<TrackedCall>, usize)>> + Send;

    /// Deletes calls made before `before_ms` (retention); returns how many.
    fn expire(&self, before_ms: u64) -> impl Future<Output = anyhow::Result<u64>> + Send;
}
