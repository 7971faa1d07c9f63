//! The chain watcher's I/O: an alloy provider over JSON-RPC asks for the head, the
//! final block and `Transfer` logs of the configured token contracts, and the
//! [`Follower`] decides. One [`Watcher::step`] is one round; `run` repeats it with
//! backoff on RPC errors.
//!
//! Logs are fetched per block range (`max_range` blocks a request). With up to
//! `TOPIC_FILTER_MAX` deposit addresses the node filters on the recipient topic;
//! beyond that a request asks for every `Transfer` of the tokens and the watcher
//! filters locally (a topic list of 100,000 addresses is more than nodes accept).

use std::collections::{BTreeSet, HashMap};

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use anyhow::Context;

use super::follow::{DepositEvent, Follower};
use super::transfers::{self, Transfer};

/// Addresses the node is asked to filter on, at most; more are filtered locally.
pub const TOPIC_FILTER_MAX: usize = 1_000;

/// Where and what to watch.
#[derive(Debug, Clone)]
pub struct WatcherConfig {
    /// JSON-RPC endpoint (http).
    pub rpc_url: String,
    /// BEP-20 token contracts whose transfers count as deposits.
    pub tokens: Vec<Address>,
    /// Use the `finalized` block tag (BSC has fast finality); when false, or when the
    /// node does not know the tag, a block is final `confirmations` blocks below the head.
    pub finalized_tag: bool,
    /// Blocks below the head at which a block counts as final without the tag.
    pub confirmations: u64,
    /// Blocks per `eth_getLogs` request.
    pub max_range: u64,
}

/// Follows one chain for transfers to our deposit addresses.
pub struct Watcher {
    provider: RootProvider,
    cfg: WatcherConfig,
    /// What the follower decided so far (persist `follower.resume_point()`).
    pub follower: Follower,
    /// Deposit address -> its user.
    owners: HashMap<Address, i64>,
    /// JSON-RPC requests made (for the benchmark and metrics).
    pub rpc_calls: u64,
}

/// A JSON-RPC provider over HTTP or HTTPS. TLS is rustls with the ring crypto provider,
/// installed as the process default on first use (alloy's reqwest would otherwise bring
/// aws-lc, a long C build); certificates are checked against the system's roots.
///
/// Errors: `url` is not a URL.
///
/// ```
/// let p = herald_pipeline::products::payments::watcher::provider("https://bsc-dataseed.bnbchain.org").unwrap();
/// assert!(herald_pipeline::products::payments::watcher::provider("not a url").is_err());
/// ```
pub fn provider(url: &str) -> anyhow::Result<RootProvider> {
    static TLS: std::sync::Once = std::sync::Once::new();
    TLS.call_once(|| {
        // an error means some other provider is the default already: fine too
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let url = url.parse().map_err(|e| anyhow::anyhow!("RPC URL {url:?}: {e}"))?;
    Ok(RootProvider::new_http(url))
}

impl Watcher {
    /// A watcher that starts scanning at block `from`.
    ///
    /// Errors: `rpc_url` is not a URL.
    pub fn new(cfg: WatcherConfig, from: u64) -> anyhow::Result<Self> {
        Ok(Watcher {
            provider: provider(&cfg.rpc_url)?,
            cfg,
            follower: Follower::new(from),
            owners: HashMap::new(),
            rpc_calls: 0,
        })
    }

    /// The chain's head block number.
    ///
    /// Errors: the RPC request failed.
    pub async fn head(&self) -> anyhow::Result<u64> {
        self.provider.get_block_number().await.context("eth_blockNumber")
    }

    /// Adds deposit addresses to watch, each with its user.
    pub fn watch(&mut self, owners: impl IntoIterator<Item = (Address, i64)>) {
        self.owners.extend(owners);
    }

    /// The user owning a deposit address.
    pub fn owner(&self, address: &Address) -> Option<i64> {
        self.owners.get(address).copied()
    }

    /// One round: scan new blocks, then decide what became final.
    ///
    /// Errors: an RPC request failed or answered something that is not JSON-RPC of the
    /// expected shape (the message names the request); the state is unchanged for the
    /// part not done, so the next round goes on from there.
    pub async fn step(&mut self) -> anyhow::Result<Vec<DepositEvent>> {
        self.rpc_calls += 1;
        let head = self.head().await?;
        metrics::gauge!(super::metrics::WATCHER_BEHIND.name).set((head + 1).saturating_sub(self.follower.cursor) as f64);
        let final_block = self.final_block(head).await?;
        let mut events = Vec::new();
        while self.follower.cursor <= head {
            let from = self.follower.cursor;
            let to = head.min(from + self.cfg.max_range.max(1) - 1);
            let found = self.transfers(from, to).await?;
            events.extend(self.follower.scanned(to, found));
        }
        let due: BTreeSet<u64> = self
            .follower
            .pending
            .values()
            .map(|t| t.block_number)
            .filter(|n| *n <= final_block)
            .collect();
        let mut hashes = HashMap::new();
        for n in due {
            hashes.insert(n, self.block_hash(n).await?);
        }
        let (decided, reorged) = self.follower.finalize(final_block, |n| hashes.get(&n).copied().flatten());
        if reorged {
            metrics::counter!(super::metrics::WATCHER_REORGS.name).increment(1);
            tracing::warn!(final_block, "a seen transfer's block was reorganised out; rescanning");
        }
        events.extend(decided);
        metrics::gauge!(super::metrics::WATCHER_LAST_ROUND.name).set(herald_schemas::now_ms() as f64 / 1000.0);
        Ok(events)
    }

    /// The highest final block.
    async fn final_block(&mut self, head: u64) -> anyhow::Result<u64> {
        if self.cfg.finalized_tag {
            self.rpc_calls += 1;
            match self.provider.get_block_by_number(BlockNumberOrTag::Finalized).await {
                Ok(Some(b)) => return Ok(b.header.number),
                Ok(None) => {} // the node has no finalized block yet: count confirmations
                Err(e) => tracing::debug!(error = %e, "no finalized tag; counting confirmations"),
            }
        }
        Ok(head.saturating_sub(self.cfg.confirmations))
    }

    async fn block_hash(&mut self, n: u64) -> anyhow::Result<Option<B256>> {
        self.rpc_calls += 1;
        let block = self
            .provider
            .get_block_by_number(n.into())
            .await
            .with_context(|| format!("eth_getBlockByNumber({n})"))?;
        Ok(block.map(|b| b.header.hash))
    }

    /// Transfers to our addresses in blocks `from..=to`.
    async fn transfers(&mut self, from: u64, to: u64) -> anyhow::Result<Vec<transfers::TokenTransfer>> {
        let mut filter = Filter::new()
            .address(self.cfg.tokens.clone())
            .event_signature(Transfer::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        if self.owners.len() <= TOPIC_FILTER_MAX {
            if self.owners.is_empty() {
                return Ok(Vec::new());
            }
            filter = filter.topic2(self.owners.keys().map(|a| a.into_word()).collect::<Vec<B256>>());
        }
        self.rpc_calls += 1;
        let logs = self
            .provider
            .get_logs(&filter)
            .await
            .with_context(|| format!("eth_getLogs({from}..={to})"))?;
        let mut found = Vec::new();
        for log in &logs {
            match transfers::decode(log) {
                Ok(Some(t)) if self.owners.contains_key(&t.to) && !log.removed => found.push(t),
                Ok(_) => {}
                Err(e) => {
                    // a token contract emitting a malformed Transfer is not ours to fix
                    metrics::counter!(super::metrics::WATCHER_MALFORMED_LOGS.name).increment(1);
                    tracing::warn!(error = %e, tx = ?log.transaction_hash, "skipping a malformed Transfer log");
                }
            }
        }
        Ok(found)
    }
}

/// The [`herald_schemas::Deposit`] of a follower event on `chain`, for `user_id`.
pub fn deposit(event: &DepositEvent, chain: &str, user_id: i64) -> herald_schemas::Deposit {
    use herald_schemas::DepositStage;
    let (stage, t) = match event {
        DepositEvent::Seen(t) => (DepositStage::Seen, t),
        DepositEvent::Final(t) => (DepositStage::Final, t),
        DepositEvent::Orphaned(t) => (DepositStage::Orphaned, t),
    };
    herald_schemas::Deposit {
        v: 1,
        stage,
        chain: chain.to_string(),
        token: t.token.to_string(),
        from: t.from.to_string(),
        to: t.to.to_string(),
        user_id,
        value: t.value.to_string(),
        block_number: t.block_number,
        block_hash: format!("{:#x}", t.block_hash),
        tx_hash: format!("{:#x}", t.tx_hash),
        log_index: t.log_index,
        ts_ms: herald_schemas::now_ms(),
    }
}

/// Where the watcher of `chain` stopped (`herald_watcher` KV, key `cursor.<chain>`).
///
/// Errors: the bucket is missing (run `pipeline setup`) or the value is not a number.
pub async fn stored_resume_point(js: &herald_runtime::Js, chain: &str) -> anyhow::Result<Option<u64>> {
    let kv = js.get_key_value(herald_schemas::subjects::WATCHER_BUCKET).await?;
    match kv.get(format!("cursor.{chain}")).await? {
        Some(v) => Ok(Some(std::str::from_utf8(&v)?.trim().parse()?)),
        None => Ok(None),
    }
}

/// Between failed rounds: 250 ms doubling to 30 s, full jitter.
const ROUND_RETRY: herald_runtime::backoff::Backoff =
    herald_runtime::backoff::Backoff::new(std::time::Duration::from_millis(250), std::time::Duration::from_secs(30)).with_jitter();

/// Runs `watcher` every `poll` until `shutdown`, watching every deposit address assigned
/// in `herald_wallet` (those assigned before the start, then new ones as they are
/// assigned: the change feed is opened before the listing, so none falls in between).
/// Each round's events are published on
/// `herald.deposits.<stage>.<chain>` (message id [`herald_schemas::Deposit::msg_id`],
/// acks awaited) before the resume point is stored, so a crash repeats a round and
/// never skips one. RPC and NATS errors back off (full jitter, up to 30 s); events not
/// yet published wait in an outbox and go first.
///
/// Returns, at `shutdown`, how many deposit events this run published.
pub async fn run(
    mut watcher: Watcher,
    wallet: super::wallet::DepositWallet,
    chain: String,
    js: herald_runtime::Js,
    poll: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<u64> {
    use futures::{FutureExt, StreamExt};
    let mut published = 0u64;
    let kv = js.get_key_value(herald_schemas::subjects::WATCHER_BUCKET).await?;
    let assigned = js.get_key_value(herald_schemas::subjects::WALLET_BUCKET).await?;
    let mut new_addresses = assigned.watch("index.>").await?;
    for (index, user) in super::addresses::all(&assigned).await? {
        watcher.watch([(wallet.address(index)?, user)]);
    }
    let mut outbox: Vec<herald_schemas::Deposit> = Vec::new();
    let mut failures = 0u32;
    loop {
        let wait = if failures == 0 {
            poll
        } else {
            ROUND_RETRY.delay(failures)
        };
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(published),
            _ = tokio::time::sleep(wait) => {}
        }
        while let Some(Some(Ok(entry))) = new_addresses.next().now_or_never() {
            let parsed = entry
                .key
                .strip_prefix("index.")
                .and_then(|i| i.parse::<u32>().ok())
                .zip(std::str::from_utf8(&entry.value).ok().and_then(|u| u.trim().parse::<i64>().ok()));
            match parsed.map(|(i, user)| wallet.address(i).map(|a| (a, user))) {
                Some(Ok(owner)) => watcher.watch([owner]),
                _ => tracing::warn!(key = %entry.key, "herald_wallet: unreadable assignment"),
            }
        }
        let round = async {
            if outbox.is_empty() {
                let events = watcher.step().await?;
                outbox = events
                    .iter()
                    .filter_map(|e| Some(deposit(e, &chain, watcher.owner(&e.transfer().to)?)))
                    .collect();
            }
            while let Some(d) = outbox.first() {
                let subject = herald_schemas::subjects::deposit(d.stage, &chain);
                js.publish_with_id(subject, &d.msg_id(), herald_schemas::encode(d).into())
                    .await?
                    .await?;
                metrics::counter!(super::metrics::DEPOSITS.name, "stage" => d.stage.as_str()).increment(1);
                published += 1;
                outbox.remove(0);
            }
            kv.put(format!("cursor.{chain}"), watcher.follower.resume_point().to_string().into())
                .await?;
            anyhow::Ok(())
        };
        match round.await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                metrics::counter!(super::metrics::WATCHER_ERRORS.name).increment(1);
                tracing::warn!(error = %format!("{e:#}"), failures, "watcher round failed; backing off");
            }
        }
    }
}
