//! The ScyllaDB store (`pipeline run --store scylla`), for more tracked calls than one
//! machine's disk should hold. Schema: `schemas/cql/tracked_calls.cql`, applied at
//! connect (every statement is `IF NOT EXISTS`).
//!
//! - Calls are partitioned by token (`calls_by_token`, what the tracker reads) and by user
//!   (`calls_by_user`, `/calls`).
//! - Every statement is prepared once; the driver routes a prepared statement with a bound
//!   partition key to a replica owning it (token-aware, and shard-aware on ScyllaDB).
//! - Reads that can be large are paged (`PAGE_SIZE` rows a page).
//! - Expiry is by TTL: a call written at age `a` gets `USING TTL retention - a`.
//!
//! No ScyllaDB server can run on the development machines; the shared store tests run
//! against one when `SCYLLA_URI` is set (`docker compose up scylla` starts one).

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use herald_schemas::Chain;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::prepared::PreparedStatement;

use super::store::{CallStore, Progress, TrackedCall};

/// The CQL schema, with the keyspace named `herald`.
pub const SCHEMA: &str = include_str!("../../../../../schemas/cql/tracked_calls.cql");

/// Rows per page for paged reads.
const PAGE_SIZE: i32 = 5_000;

/// Writes in flight at once per store call.
const CONCURRENT_WRITES: usize = 256;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ScyllaConfig {
    /// Contact points, `host:port` (9042 is CQL's port).
    pub nodes: Vec<String>,
    /// Keyspace replacing `herald` in the schema.
    pub keyspace: String,
    /// Replication factor of the keyspace when it is created (NetworkTopologyStrategy).
    pub replication_factor: u32,
    /// How long a call is kept (the TTL of a new call).
    pub retention: Duration,
}

/// The schema's statements for `keyspace`: comments dropped, the keyspace renamed, the
/// replication factor set.
///
/// ```
/// let s = herald_pipeline::products::signals::tracking::scylla::schema_statements("herald_test", 1);
/// assert!(s[0].contains("herald_test") && s[0].contains("'replication_factor': 1"));
/// assert!(s[1].starts_with("CREATE TABLE IF NOT EXISTS herald_test.calls_by_token"));
/// ```
pub fn schema_statements(keyspace: &str, replication_factor: u32) -> Vec<String> {
    let text: String = SCHEMA
        .lines()
        .map(|l| l.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.replace("KEYSPACE IF NOT EXISTS herald ", &format!("KEYSPACE IF NOT EXISTS {keyspace} "))
                .replace("'replication_factor': 3", &format!("'replication_factor': {replication_factor}"))
                .replace(" herald.", &format!(" {keyspace}."))
        })
        .collect()
}

/// A row of `calls_by_token`.
#[derive(scylla::DeserializeRow)]
struct CallRow {
    token_key: String,
    user_id: i64,
    chat_id: Option<i64>,
    symbol: Option<String>,
    caller_ids: Option<Vec<String>>,
    entry_price_usd: Option<f64>,
    called_at_ms: Option<i64>,
    best_multiple: Option<f64>,
    last_multiple: Option<f64>,
    alerted: Option<i8>,
}

impl CallRow {
    /// The call, or `None` for a row holding only progress (its call expired or was
    /// never written).
    fn into_call(self) -> Option<TrackedCall> {
        let (chain, token) = self.token_key.split_once(':')?;
        Some(TrackedCall {
            user_id: self.user_id,
            chat_id: self.chat_id?,
            chain: Chain::from(chain),
            token: token.to_string(),
            symbol: self.symbol,
            caller_ids: self.caller_ids.unwrap_or_default(),
            entry_price_usd: self.entry_price_usd?,
            called_at_ms: u64::try_from(self.called_at_ms?).ok()?,
            best_multiple: self.best_multiple.unwrap_or(1.0),
            last_multiple: self.last_multiple.unwrap_or(1.0),
            alerted: self.alerted.unwrap_or(0).max(0) as u8,
        })
    }
}

const CALL_COLUMNS: &str =
    "token_key, user_id, chat_id, symbol, caller_ids, entry_price_usd, called_at_ms, best_multiple, last_multiple, alerted";

/// Tracked calls in ScyllaDB (or Cassandra).
///
/// ```no_run
/// use herald_pipeline::products::signals::tracking::scylla::{ScyllaConfig, ScyllaStore};
/// # async fn demo() -> anyhow::Result<()> {
/// let store = ScyllaStore::connect(ScyllaConfig {
///     nodes: vec!["127.0.0.1:9042".into()],
///     keyspace: "herald".into(),
///     replication_factor: 1,
///     retention: std::time::Duration::from_secs(30 * 86_400),
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub struct ScyllaStore {
    session: Arc<Session>,
    retention: Duration,
    insert_call: PreparedStatement,
    insert_by_user: PreparedStatement,
    update_progress: PreparedStatement,
    scan: PreparedStatement,
    get_call: PreparedStatement,
    user_page: PreparedStatement,
    user_count: PreparedStatement,
}

impl ScyllaStore {
    /// Connects, applies the schema and prepares every statement.
    ///
    /// Errors: no node reachable, or a statement refused (the message names it).
    pub async fn connect(cfg: ScyllaConfig) -> anyhow::Result<Self> {
        let session = SessionBuilder::new()
            .known_nodes(&cfg.nodes)
            .build()
            .await
            .map_err(|e| anyhow::anyhow!("connecting to ScyllaDB at {:?}: {e}", cfg.nodes))?;
        for statement in schema_statements(&cfg.keyspace, cfg.replication_factor) {
            session
                .query_unpaged(statement.as_str(), ())
                .await
                .map_err(|e| anyhow::anyhow!("applying `{statement}`: {e}"))?;
        }
        session.await_schema_agreement().await?;
        let ks = &cfg.keyspace;
        let prepare = |cql: String| {
            let session = &session;
            async move {
                let mut p = session
                    .prepare(cql.as_str())
                    .await
                    .map_err(|e| anyhow::anyhow!("preparing `{cql}`: {e}"))?;
                p.set_page_size(PAGE_SIZE);
                anyhow::Ok(p)
            }
        };
        let insert_call = prepare(format!(
            "INSERT INTO {ks}.calls_by_token (token_key, user_id, chat_id, symbol, caller_ids, entry_price_usd, called_at_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?) USING TTL ?"
        ))
        .await?;
        let insert_by_user = prepare(format!(
            "INSERT INTO {ks}.calls_by_user (user_id, called_at_ms, token_key) VALUES (?, ?, ?) USING TTL ?"
        ))
        .await?;
        let update_progress = prepare(format!(
            "UPDATE {ks}.calls_by_token USING TTL ? SET best_multiple = ?, last_multiple = ?, alerted = ? \
             WHERE token_key = ? AND user_id = ?"
        ))
        .await?;
        let scan = prepare(format!("SELECT {CALL_COLUMNS} FROM {ks}.calls_by_token")).await?;
        let get_call = prepare(format!(
            "SELECT {CALL_COLUMNS} FROM {ks}.calls_by_token WHERE token_key = ? AND user_id = ?"
        ))
        .await?;
        let user_page = prepare(format!("SELECT token_key FROM {ks}.calls_by_user WHERE user_id = ?")).await?;
        let user_count = prepare(format!("SELECT COUNT(*) FROM {ks}.calls_by_user WHERE user_id = ?")).await?;
        Ok(ScyllaStore {
            session: Arc::new(session),
            retention: cfg.retention,
            insert_call,
            insert_by_user,
            update_progress,
            scan,
            get_call,
            user_page,
            user_count,
        })
    }

    /// Seconds a call made at `called_at_ms` has left, `None` once expired.
    fn ttl(&self, called_at_ms: u64) -> Option<i32> {
        let age = herald_schemas::now_ms().saturating_sub(called_at_ms) / 1000;
        let left = self.retention.as_secs().checked_sub(age).filter(|s| *s > 0)?;
        Some(left.min(i32::MAX as u64) as i32)
    }

    async fn get(&self, token_key: String, user_id: i64) -> anyhow::Result<Option<TrackedCall>> {
        let rows = self
            .session
            .execute_unpaged(&self.get_call, (token_key, user_id))
            .await?
            .into_rows_result()?;
        Ok(rows.maybe_first_row::<CallRow>()?.and_then(CallRow::into_call))
    }
}

impl CallStore for ScyllaStore {
    async fn insert(&self, calls: Vec<TrackedCall>) -> anyhow::Result<()> {
        stream::iter(calls.into_iter().filter_map(|c| self.ttl(c.called_at_ms).map(|ttl| (c, ttl))))
            .map(|(c, ttl)| async move {
                let key = c.token_key();
                let at = c.called_at_ms as i64;
                let values = (&key, c.user_id, c.chat_id, &c.symbol, &c.caller_ids, c.entry_price_usd, at, ttl);
                self.session.execute_unpaged(&self.insert_call, values).await?;
                self.session
                    .execute_unpaged(&self.insert_by_user, (c.user_id, at, &key, ttl))
                    .await?;
                anyhow::Ok(())
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .try_collect()
            .await
    }

    async fn update_progress(&self, progress: Vec<Progress>) -> anyhow::Result<()> {
        stream::iter(progress.into_iter().filter_map(|p| self.ttl(p.called_at_ms).map(|ttl| (p, ttl))))
            .map(|(p, ttl)| async move {
                let values = (ttl, p.best_multiple, p.last_multiple, p.alerted as i8, &p.token_key, p.user_id);
                self.session.execute_unpaged(&self.update_progress, values).await?;
                anyhow::Ok(())
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .try_collect()
            .await
    }

    fn load_since(&self, since_ms: u64) -> BoxStream<'static, anyhow::Result<TrackedCall>> {
        let (session, scan) = (self.session.clone(), self.scan.clone());
        stream::once(async move {
            let pager = session.execute_iter(scan, ()).await?;
            anyhow::Ok(pager.rows_stream::<CallRow>()?.map_err(anyhow::Error::from))
        })
        .try_flatten()
        .try_filter_map(move |row| async move { Ok(row.into_call().filter(|c| c.called_at_ms >= since_ms)) })
        .boxed()
    }

    async fn for_user(&self, user_id: i64, offset: usize, limit: usize) -> anyhow::Result<(Vec<TrackedCall>, usize)> {
        let total: i64 = self
            .session
            .execute_unpaged(&self.user_count, (user_id,))
            .await?
            .into_rows_result()?
            .single_row::<(i64,)>()?
            .0;
        let keys: Vec<String> = self
            .session
            .execute_iter(self.user_page.clone(), (user_id,))
            .await?
            .rows_stream::<(String,)>()?
            .skip(offset)
            .take(limit)
            .map_ok(|(k,)| k)
            .try_collect()
            .await?;
        let calls = futures::future::try_join_all(keys.into_iter().map(|k| self.get(k, user_id))).await?;
        Ok((calls.into_iter().flatten().collect(), total.max(0) as usize))
    }

    async fn expire(&self, _before_ms: u64) -> anyhow::Result<u64> {
        Ok(0) // TTLs expire calls
    }
}
