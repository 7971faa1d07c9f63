//! The multiplier tracker: an in-memory index token -> tracked calls, two stages that
//! feed it (new tracked calls, price updates) and the alert decision.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use herald_schemas::{subjects, OutboundMessage, PriceUpdate, Priority, TrackedCalls};

use super::stats::CallerBook;
use super::store::{CallStore, Progress, TrackedCall};
use herald_runtime::{Decision, MsgMeta, Output, Stage, StageError};
use super::super::fanout::render::price;
use herald_schemas::escape_html;

/// Default alert thresholds, multiples of the entry price.
pub const DEFAULT_THRESHOLDS: [f64; 7] = [2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0];

/// What a price update means for one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossing {
    /// Price / entry price.
    pub multiple: f64,
    /// Thresholds alerted after this update (never fewer than before).
    pub alerted: u8,
    /// Index of the highest threshold newly crossed, if any: one alert names it (lower
    /// thresholds crossed by the same jump are recorded, not sent separately).
    pub alert: Option<usize>,
}

/// The alert decision for one call, free of I/O.
///
/// ```
/// use herald_pipeline::products::signals::tracking::tracker::{crossing, DEFAULT_THRESHOLDS};
/// let c = crossing(&DEFAULT_THRESHOLDS, 0.001, 0, 0.0055); // 5.5x: 2x, 3x and 5x crossed
/// assert_eq!((c.alerted, c.alert), (3, Some(2)));
/// assert_eq!(crossing(&DEFAULT_THRESHOLDS, 0.001, 3, 0.0055).alert, None); // never twice
/// ```
pub fn crossing(thresholds: &[f64], entry_price: f64, alerted: u8, price: f64) -> Crossing {
    let multiple = if entry_price > 0.0 { price / entry_price } else { 0.0 };
    let reached = thresholds.iter().take_while(|t| multiple >= **t).count().min(u8::MAX as usize) as u8;
    let alert = (reached > alerted).then(|| reached as usize - 1);
    Crossing {
        multiple,
        alerted: alerted.max(reached),
        alert,
    }
}

/// Idempotency key of an alert: `alert.<user>.<chain>.<token>.<threshold index>`.
pub fn alert_key(user_id: i64, token_key: &str, threshold: usize) -> String {
    subjects::kv_key(&format!("alert.{user_id}.{token_key}.{threshold}").replace(':', "."))
}

/// One call in the index (what a price update needs).
#[derive(Debug, Clone)]
struct Slot {
    user_id: i64,
    chat_id: i64,
    called_at_ms: u64,
    entry: f64,
    last: f64,
    best: f64,
    alerted: u8,
    /// The best multiple rose past [`CHECKPOINT_STEP`] of the stored one since the
    /// last checkpoint.
    dirty: bool,
    /// The best multiple in the store (f32 fits in the slot's padding).
    stored_best: f32,
}

/// A best multiple is worth a checkpoint write once it exceeds the stored one by 1%: a
/// token on a steady climb would otherwise rewrite every call every second. After a
/// crash, a best multiple may read up to 1% (and one checkpoint period) low; alert
/// records are exact.
pub const CHECKPOINT_STEP: f64 = 1.01;

impl Slot {
    fn progress(&self, token_key: &str) -> Progress {
        Progress {
            token_key: token_key.to_string(),
            user_id: self.user_id,
            called_at_ms: self.called_at_ms,
            last_multiple: self.last,
            best_multiple: self.best,
            alerted: self.alerted,
        }
    }
}

/// One call's move after a price update: its position among the token's calls (calls
/// are only appended while the process runs, so positions hold) and its new values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Move {
    slot: usize,
    last: f64,
    best: f64,
    alerted: u8,
}

/// What one price update moved: the token's calls whose multiple changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Moves {
    token_key: String,
    moved: Vec<Move>,
}

/// token key -> its tracked calls; symbol per token for alert texts.
#[derive(Default)]
pub struct CallIndex {
    by_token: HashMap<String, Vec<Slot>>,
    symbols: HashMap<String, Option<String>>,
    /// Callers of each token (for channel statistics).
    callers: HashMap<String, Vec<String>>,
    calls: usize,
}

impl CallIndex {
    /// Adds a call unless the same user already tracks the token.
    pub fn add(&mut self, c: &TrackedCall) {
        let key = c.token_key();
        let slots = self.by_token.entry(key.clone()).or_default();
        if slots.iter().any(|s| s.user_id == c.user_id) {
            return;
        }
        slots.push(Slot {
            user_id: c.user_id,
            chat_id: c.chat_id,
            called_at_ms: c.called_at_ms,
            entry: c.entry_price_usd,
            last: c.last_multiple,
            best: c.best_multiple,
            alerted: c.alerted,
            dirty: false,
            stored_best: c.best_multiple as f32,
        });
        self.symbols.entry(key.clone()).or_insert_with(|| c.symbol.clone());
        let callers = self.callers.entry(key).or_default();
        for id in &c.caller_ids {
            if !callers.contains(id) {
                callers.push(id.clone());
            }
        }
        self.calls += 1;
    }

    /// Tracked calls in the index.
    pub fn len(&self) -> usize {
        self.calls
    }

    pub fn is_empty(&self) -> bool {
        self.calls == 0
    }

    /// Whether `user_id` tracks `token_key`.
    pub fn contains(&self, token_key: &str, user_id: i64) -> bool {
        self.slot(token_key, user_id).is_some()
    }

    fn slot(&self, token_key: &str, user_id: i64) -> Option<&Slot> {
        self.by_token.get(token_key)?.iter().find(|s| s.user_id == user_id)
    }

    /// Applies a price update's moves (after [`Self::raised_alerts`] were stored): best
    /// and alerted never go back. Calls whose best rose without an alert are marked for
    /// the next checkpoint; returns whether there are any.
    fn apply(&mut self, moves: &Moves) -> bool {
        let Some(slots) = self.by_token.get_mut(&moves.token_key) else {
            return false;
        };
        let mut due = false;
        for m in &moves.moved {
            let Some(s) = slots.get_mut(m.slot) else { continue };
            if m.alerted > s.alerted {
                s.stored_best = m.best.max(s.best) as f32; // written through
            } else if m.best > s.stored_best as f64 * CHECKPOINT_STEP {
                s.dirty = true;
                due = true;
            }
            s.last = m.last;
            s.best = s.best.max(m.best);
            s.alerted = s.alerted.max(m.alerted);
        }
        due
    }

    /// The moves that raise an alert count, merged with the index: what to write through.
    fn raised_alerts(&self, moves: &Moves) -> Vec<Progress> {
        let Some(slots) = self.by_token.get(&moves.token_key) else {
            return Vec::new();
        };
        moves
            .moved
            .iter()
            .filter_map(|m| {
                let s = slots.get(m.slot)?;
                (m.alerted > s.alerted).then(|| Progress {
                    last_multiple: m.last,
                    best_multiple: m.best.max(s.best),
                    alerted: m.alerted,
                    ..s.progress(&moves.token_key)
                })
            })
            .collect()
    }

    /// Takes the progress of `token_key`'s calls whose best rose since the last checkpoint.
    fn take_dirty(&mut self, token_key: &str) -> Vec<Progress> {
        let slots = self.by_token.get_mut(token_key).into_iter().flatten();
        slots
            .filter(|s| s.dirty)
            .map(|s| {
                s.dirty = false;
                s.stored_best = s.best as f32;
                s.progress(token_key)
            })
            .collect()
    }

    /// Marks calls due again after a failed checkpoint.
    fn mark_dirty(&mut self, progress: &[Progress]) {
        for p in progress {
            if let Some(s) = self
                .by_token
                .get_mut(&p.token_key)
                .and_then(|v| v.iter_mut().find(|s| s.user_id == p.user_id))
            {
                s.dirty = true;
            }
        }
    }

    /// Overlays the live multiples on stored calls (the store holds the last durable ones).
    fn overlay(&self, calls: &mut [TrackedCall]) {
        for c in calls {
            if let Some(s) = self.slot(&c.token_key(), c.user_id) {
                c.last_multiple = s.last;
                c.best_multiple = c.best_multiple.max(s.best);
                c.alerted = c.alerted.max(s.alerted);
            }
        }
    }
}

/// Token shards, each a lock over the shard's tokens whose progress awaits the next
/// checkpoint. A token's store writes happen under its shard's lock, one at a time and
/// in order, so stored progress never goes back (the store writes what it is given).
struct TokenShards(Vec<tokio::sync::Mutex<HashSet<String>>>);

impl TokenShards {
    fn new() -> Self {
        TokenShards((0..64).map(|_| Default::default()).collect())
    }

    async fn lock(&self, token_key: &str) -> tokio::sync::MutexGuard<'_, HashSet<String>> {
        use std::hash::{BuildHasher, RandomState};
        static HASHER: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
        let h = HASHER.get_or_init(RandomState::new).hash_one(token_key);
        self.0[(h % self.0.len() as u64) as usize].lock().await
    }
}

/// The tracker's shared state: the index and the store behind it.
pub struct Tracker<S> {
    pub store: S,
    pub index: RwLock<CallIndex>,
    pub thresholds: Vec<f64>,
    /// Callers' calls, for channel statistics.
    pub callers: std::sync::Mutex<CallerBook>,
    shards: TokenShards,
}

impl<S: CallStore> Tracker<S> {
    /// Builds the index from every call made since `since_ms` (the retention window).
    /// `win_window_ms`: how long after a call a 2x counts as a win for its callers.
    pub async fn load(store: S, thresholds: Vec<f64>, since_ms: u64, win_window_ms: u64) -> anyhow::Result<Arc<Self>> {
        use futures::TryStreamExt;
        let mut index = CallIndex::default();
        let mut callers = CallerBook::new(win_window_ms);
        let mut stored = store.load_since(since_ms);
        while let Some(c) = stored.try_next().await? {
            index.add(&c);
            // the stored best is over the call's whole life: close enough after a restart
            record_callers(&mut callers, &c);
        }
        tracing::info!(calls = index.len(), "tracked-call index built");
        Ok(Arc::new(Tracker {
            store,
            index: RwLock::new(index),
            thresholds,
            callers: std::sync::Mutex::new(callers),
            shards: TokenShards::new(),
        }))
    }

    /// Writes the progress of every call whose best multiple rose since the last
    /// checkpoint (alert counts are written when they rise; a latest multiple alone is
    /// not worth a write: it is stored with the next best or alert, and the first price
    /// after a restart renews it). Returns
    /// how many calls were written.
    ///
    /// Errors: a store write failed; its tokens stay due for the next checkpoint.
    pub async fn checkpoint(&self) -> anyhow::Result<usize> {
        let writes = self.shards.0.iter().map(|shard| async move {
            let mut due = shard.lock().await;
            if due.is_empty() {
                return anyhow::Ok(0);
            }
            let progress: Vec<Progress> = {
                let mut index = self.index.write().expect("index lock");
                due.iter().flat_map(|key| index.take_dirty(key)).collect()
            };
            if let Err(e) = self.store.update_progress(progress.clone()).await {
                self.index.write().expect("index lock").mark_dirty(&progress);
                return Err(e);
            }
            due.clear();
            Ok(progress.len())
        });
        Ok(futures::future::try_join_all(writes).await?.into_iter().sum())
    }

    /// A user's calls for `/calls`: newest first, `limit` from `offset`, with the live
    /// multiples; and the user's total.
    pub async fn for_user(&self, user_id: i64, offset: usize, limit: usize) -> anyhow::Result<(Vec<TrackedCall>, usize)> {
        let (mut calls, total) = self.store.for_user(user_id, offset, limit).await?;
        self.index.read().expect("index lock").overlay(&mut calls);
        Ok((calls, total))
    }
}

impl<S> Tracker<S> {
    /// Addresses of every tracked token (what a price poller asks for).
    pub fn tracked_tokens(&self) -> Vec<String> {
        let index = self.index.read().expect("index lock");
        index
            .by_token
            .keys()
            .filter_map(|k| k.split_once(':').map(|(_, t)| t.to_string()))
            .collect()
    }
}

/// Checkpoints the tracker's progress every `period` (1 s in `pipeline run`), and once
/// more at `shutdown`. A failed checkpoint is logged; its tokens stay due.
pub async fn run_checkpoints<S: CallStore>(
    tracker: Arc<Tracker<S>>,
    period: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let t = tracker.clone();
    herald_runtime::periodic::every("checkpoints", period, shutdown, move || {
        let t = t.clone();
        async move {
            let n = t.checkpoint().await?;
            metrics::counter!(super::super::metrics::TRACKER_CHECKPOINTED.name).increment(n as u64);
            Ok(())
        }
    })
    .await?;
    let n = tracker.checkpoint().await.map_err(|e| e.context("final checkpoint"))?;
    metrics::counter!(super::super::metrics::TRACKER_CHECKPOINTED.name).increment(n as u64);
    Ok(())
}

/// Writes the statistics of callers whose calls changed since the last call to the
/// `herald_channels` KV bucket (key: the caller id, KV-safe), whose replica feeds the
/// filter stage. `pipeline run` calls it every 5 s.
///
/// Errors: a KV write failed (those callers are written again at the next change).
pub async fn publish_channel_stats<S>(tracker: Arc<Tracker<S>>, kv: async_nats::jetstream::kv::Store) -> anyhow::Result<()> {
    let changed = tracker.callers.lock().expect("callers lock").take_changed();
    for (caller, stats) in changed {
        kv.put(subjects::kv_key(&caller), herald_schemas::encode(&stats).into()).await?;
    }
    Ok(())
}

fn record_callers(book: &mut CallerBook, c: &TrackedCall) {
    for caller in &c.caller_ids {
        book.add(caller, &c.token_key(), c.called_at_ms, c.best_multiple);
    }
}

/// Stage: new tracked calls (`herald.tracked.>`) -> store and index.
pub struct TrackStage<S>(pub Arc<Tracker<S>>);

impl<S: CallStore> Stage for TrackStage<S> {
    const NAME: &'static str = "track";
    type Input = TrackedCalls;
    type Commit = Vec<TrackedCall>;
    type Effect = std::convert::Infallible;

    fn decode(&self, payload: &[u8]) -> Result<TrackedCalls, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, t: TrackedCalls, _meta: &MsgMeta) -> Result<Decision<Self::Commit>, StageError> {
        let calls = t
            .recipients
            .iter()
            .map(|r| TrackedCall {
                user_id: r.user_id,
                chat_id: r.chat_id,
                chain: t.chain.clone(),
                token: t.token.clone(),
                symbol: t.symbol.clone(),
                caller_ids: t.caller_ids.clone(),
                entry_price_usd: t.entry_price_usd,
                called_at_ms: t.called_at_ms,
                last_multiple: 1.0,
                best_multiple: 1.0,
                alerted: 0,
            })
            .collect();
        Ok(Decision::Forward {
            outputs: Vec::new(),
            commit: calls,
        })
    }

    async fn commit(&self, calls: Vec<TrackedCall>) -> Result<(), StageError> {
        let Some(first) = calls.first() else { return Ok(()) };
        let key = first.token_key(); // one event, one token
        let _token = self.0.shards.lock(&key).await;
        let calls: Vec<TrackedCall> = {
            let index = self.0.index.read().expect("index lock");
            calls.into_iter().filter(|c| !index.contains(&key, c.user_id)).collect()
        };
        if calls.is_empty() {
            return Ok(());
        }
        self.0.store.insert(calls.clone()).await?;
        let mut index = self.0.index.write().expect("index lock");
        let mut callers = self.0.callers.lock().expect("callers lock");
        for c in &calls {
            index.add(c);
            record_callers(&mut callers, c);
        }
        Ok(())
    }
}

/// Stage: price updates (`herald.prices.>`) -> multiplier alerts on the users'
/// notification subjects. A raised alert count is stored after the alerts are
/// acknowledged and before the update is acked (what must survive a restart); latest
/// and best multiples reach the store at the next [`Tracker::checkpoint`] (a crash
/// loses at most one checkpoint period of them, never an alert's record).
pub struct MultiplierStage<S>(pub Arc<Tracker<S>>);

impl<S: CallStore> Stage for MultiplierStage<S> {
    const NAME: &'static str = "multiplier";
    type Input = PriceUpdate;
    type Commit = Moves;
    type Effect = std::convert::Infallible;

    fn decode(&self, payload: &[u8]) -> Result<PriceUpdate, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, p: PriceUpdate, _meta: &MsgMeta) -> Result<Decision<Self::Commit>, StageError> {
        let key = p.token_key();
        let index = self.0.index.read().expect("index lock");
        let Some(slots) = index.by_token.get(&key) else {
            return Ok(Decision::Drop { reason: "untracked_token" });
        };
        let symbol = index.symbols.get(&key).cloned().flatten();
        let mut outputs = Vec::new();
        let mut moved = Vec::new();
        for (slot, s) in slots.iter().enumerate() {
            let c = crossing(&self.0.thresholds, s.entry, s.alerted, p.price_usd);
            if c.multiple != s.last || c.alerted > s.alerted {
                moved.push(Move {
                    slot,
                    last: c.multiple,
                    best: c.multiple.max(s.best),
                    alerted: c.alerted,
                });
            }
            if let Some(t) = c.alert {
                let k = alert_key(s.user_id, &key, t);
                let name = symbol
                    .as_deref()
                    .map(|s| format!("${}", escape_html(s)))
                    .unwrap_or_else(|| escape_html(&p.token));
                let text = format!(
                    "🚀 <b>{name}</b> hit <b>{}x</b> ({:.1}x now)\n<code>{}</code> on {}\nCalled at {} · now {}",
                    self.0.thresholds[t],
                    c.multiple,
                    escape_html(&p.token),
                    escape_html(p.chain.as_str()),
                    price(s.entry),
                    price(p.price_usd)
                );
                let msg = OutboundMessage::html(k.clone(), s.chat_id, text, Priority::Broadcast, p.ts_ms);
                outputs.push(Output {
                    subject: subjects::notify(s.chat_id),
                    msg_id: k,
                    payload: herald_schemas::encode(&msg),
                });
            }
        }
        if moved.is_empty() {
            return Ok(Decision::Drop { reason: "price_unchanged" });
        }
        Ok(Decision::Forward {
            outputs,
            commit: Moves { token_key: key, moved },
        })
    }

    async fn commit(&self, moves: Moves) -> Result<(), StageError> {
        let mut due = self.0.shards.lock(&moves.token_key).await;
        // a raised alert count is written through (a restart must not alert again);
        // best multiples wait for the next checkpoint
        let alerts = self.0.index.read().expect("index lock").raised_alerts(&moves);
        if !alerts.is_empty() {
            self.0.store.update_progress(alerts).await?;
        }
        let mut index = self.0.index.write().expect("index lock");
        if index.apply(&moves) {
            due.insert(moves.token_key.clone());
        }
        // channel statistics: each caller's call of the token, at its best move
        let top = moves.moved.iter().map(|m| m.last).fold(0.0, f64::max);
        let mut callers = self.0.callers.lock().expect("callers lock");
        let now = herald_schemas::now_ms();
        for caller in index.callers.get(&moves.token_key).into_iter().flatten() {
            callers.observe(caller, &moves.token_key, top, now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossings_climb_and_never_repeat() {
        let t = DEFAULT_THRESHOLDS;
        assert_eq!(
            crossing(&t, 1.0, 0, 1.9),
            Crossing {
                multiple: 1.9,
                alerted: 0,
                alert: None
            }
        );
        assert_eq!(crossing(&t, 1.0, 0, 2.0).alert, Some(0));
        assert_eq!(crossing(&t, 1.0, 1, 2.5).alert, None, "2x was alerted");
        assert_eq!(
            crossing(&t, 1.0, 1, 3.0),
            Crossing {
                multiple: 3.0,
                alerted: 2,
                alert: Some(1)
            }
        );
        assert_eq!(crossing(&t, 1.0, 2, 1.0).alerted, 2, "a drop never lowers progress");
        assert_eq!(
            crossing(&t, 1.0, 0, 1000.0),
            Crossing {
                multiple: 1000.0,
                alerted: 7,
                alert: Some(6)
            }
        );
        assert_eq!(crossing(&t, 0.0, 0, 5.0).alert, None, "no entry price, no multiple");
    }

    #[test]
    fn the_index_keeps_one_call_per_user_and_token() {
        let mut idx = CallIndex::default();
        let c = TrackedCall {
            user_id: 1,
            chat_id: 1,
            chain: "solana".into(),
            token: "T".into(),
            symbol: None,
            caller_ids: vec![],
            entry_price_usd: 1.0,
            called_at_ms: 0,
            last_multiple: 1.0,
            best_multiple: 1.0,
            alerted: 0,
        };
        idx.add(&c);
        idx.add(&c);
        idx.add(&TrackedCall { user_id: 2, ..c.clone() });
        assert_eq!(idx.len(), 2);
        let moves = |last: f64, best: f64, alerted: u8| Moves {
            token_key: "solana:T".into(),
            moved: vec![Move {
                slot: 1,
                last,
                best,
                alerted,
            }],
        };
        assert_eq!(idx.raised_alerts(&moves(3.0, 3.0, 2)).len(), 1, "an alert is written through");
        assert!(!idx.apply(&moves(3.0, 3.0, 2)), "written through: nothing due");
        assert_eq!(idx.by_token["solana:T"][1].alerted, 2);
        assert!(idx.raised_alerts(&moves(1.5, 1.5, 0)).is_empty());
        assert!(!idx.apply(&moves(1.5, 1.5, 0)), "a fall is not worth a write");
        let s = &idx.by_token["solana:T"][1];
        assert_eq!((s.last, s.best, s.alerted), (1.5, 3.0, 2), "stale progress never lowers");
        assert!(
            idx.apply(&moves(4.0, 4.0, 2)),
            "a new best without an alert waits for the checkpoint"
        );
        let due = idx.take_dirty("solana:T");
        assert_eq!((due.len(), due[0].best_multiple, due[0].alerted), (1, 4.0, 2));
        assert!(idx.take_dirty("solana:T").is_empty(), "taken once");
        assert!(
            !idx.apply(&moves(4.02, 4.02, 2)),
            "under 1% above the stored best: not worth a write"
        );
        assert!(idx.apply(&moves(4.1, 4.1, 2)));
    }
}
