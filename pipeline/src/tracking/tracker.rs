//! The multiplier tracker: an in-memory index token -> tracked calls, two stages that
//! feed it (new tracked calls, price updates) and the alert decision.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use herald_schemas::{subjects, OutboundMessage, PriceUpdate, Priority, TrackedCalls};

use super::stats::CallerBook;
use super::store::{CallStore, Progress, TrackedCall};
use crate::runtime::{Decision, MsgMeta, Output, Stage, StageError};
use crate::stages::fanout::render::{html_escape, price};

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
/// use herald_pipeline::tracking::tracker::{crossing, DEFAULT_THRESHOLDS};
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
    entry: f64,
    last: f64,
    best: f64,
    alerted: u8,
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
            entry: c.entry_price_usd,
            last: c.last_multiple,
            best: c.best_multiple,
            alerted: c.alerted,
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

    fn apply(&mut self, token_key: &str, p: &Progress) {
        if let Some(slot) = self
            .by_token
            .get_mut(token_key)
            .and_then(|v| v.iter_mut().find(|s| s.user_id == p.user_id))
        {
            slot.last = p.last_multiple;
            slot.best = slot.best.max(p.best_multiple);
            slot.alerted = slot.alerted.max(p.alerted);
        }
    }
}

/// The tracker's shared state: the index and the store behind it.
pub struct Tracker<S> {
    pub store: S,
    pub index: RwLock<CallIndex>,
    pub thresholds: Vec<f64>,
    /// Callers' calls, for channel statistics.
    pub callers: std::sync::Mutex<CallerBook>,
}

impl<S: CallStore> Tracker<S> {
    /// Builds the index from every call made since `since_ms` (the retention window).
    /// `win_window_ms`: how long after a call a 2x counts as a win for its callers.
    pub async fn load(store: S, thresholds: Vec<f64>, since_ms: u64, win_window_ms: u64) -> anyhow::Result<Arc<Self>> {
        let mut index = CallIndex::default();
        let mut callers = CallerBook::new(win_window_ms);
        for c in store.load_since(since_ms).await? {
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
        }))
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

/// Every `period` until `shutdown`, writes the statistics of callers whose calls changed
/// to the `herald_channels` KV bucket (key: the caller id, KV-safe), whose replica feeds
/// the filter stage.
pub async fn publish_channel_stats<S>(
    tracker: Arc<Tracker<S>>,
    kv: async_nats::jetstream::kv::Store,
    period: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let mut every = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = every.tick() => {}
        }
        let changed = tracker.callers.lock().expect("callers lock").take_changed();
        for (caller, stats) in changed {
            if let Err(e) = kv.put(subjects::kv_key(&caller), herald_schemas::encode(&stats).into()).await {
                tracing::warn!(error = %e, "publishing channel statistics failed");
            }
        }
    }
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
/// notification subjects; progress stored after the alerts are acknowledged.
pub struct MultiplierStage<S>(pub Arc<Tracker<S>>);

impl<S: CallStore> Stage for MultiplierStage<S> {
    const NAME: &'static str = "multiplier";
    type Input = PriceUpdate;
    type Commit = Vec<Progress>;

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
        let mut progress = Vec::new();
        for s in slots {
            let c = crossing(&self.0.thresholds, s.entry, s.alerted, p.price_usd);
            if c.multiple != s.last || c.alerted > s.alerted {
                progress.push(Progress {
                    token_key: key.clone(),
                    user_id: s.user_id,
                    last_multiple: c.multiple,
                    best_multiple: c.multiple.max(s.best),
                    alerted: c.alerted,
                });
            }
            if let Some(t) = c.alert {
                let k = alert_key(s.user_id, &key, t);
                let name = symbol
                    .as_deref()
                    .map(|s| format!("${}", html_escape(s)))
                    .unwrap_or_else(|| html_escape(&p.token));
                let text = format!(
                    "🚀 <b>{name}</b> hit <b>{}x</b> ({:.1}x now)\n<code>{}</code> on {}\nCalled at {} · now {}",
                    self.0.thresholds[t],
                    c.multiple,
                    html_escape(&p.token),
                    html_escape(p.chain.as_str()),
                    price(s.entry),
                    price(p.price_usd)
                );
                let msg = OutboundMessage {
                    v: 1,
                    idempotency_key: k.clone(),
                    chat_id: s.chat_id,
                    text,
                    buttons: Vec::new(),
                    edit_message_id: None,
                    priority: Priority::Broadcast,
                    origin_ts_ms: p.ts_ms,
                };
                outputs.push(Output {
                    subject: subjects::notify(s.chat_id),
                    msg_id: k,
                    payload: herald_schemas::encode(&msg),
                });
            }
        }
        if progress.is_empty() {
            return Ok(Decision::Drop { reason: "price_unchanged" });
        }
        Ok(Decision::Forward { outputs, commit: progress })
    }

    async fn commit(&self, progress: Vec<Progress>) -> Result<(), StageError> {
        self.0.store.update_progress(progress.clone()).await?;
        let mut index = self.0.index.write().expect("index lock");
        let mut callers = self.0.callers.lock().expect("callers lock");
        let now = herald_schemas::now_ms();
        for p in &progress {
            index.apply(&p.token_key, p);
            for caller in index.callers.get(&p.token_key).into_iter().flatten() {
                callers.observe(caller, &p.token_key, p.last_multiple, now);
            }
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
        idx.apply(
            "solana:T",
            &Progress {
                token_key: "solana:T".into(),
                user_id: 2,
                last_multiple: 3.0,
                best_multiple: 3.0,
                alerted: 2,
            },
        );
        assert_eq!(idx.by_token["solana:T"][1].alerted, 2);
    }
}
